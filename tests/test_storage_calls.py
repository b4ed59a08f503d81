"""The calls feature's storage facet (the busy claims) on every built-in backend: SQLite files,
PostgreSQL (a throwaway server, tests/pgserver.py) and the memory backend."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_calls import CallStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)

_server: PgServer | None = None


@pytest.fixture
def _pg(pg_server, tmp_path):  # noqa: F811
    global _server
    _server = pg_server
    yield
    _server = None
    pg_server.release(tmp_path)


class TestSQLiteCalls(CallStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


@pytest.mark.usefixtures("_pg")
class TestPostgresCalls(CallStoreConformanceTests):
    def make_store(self, tmp_path):
        assert _server is not None
        return PostgresStore(reactor, _server.database(tmp_path))


class TestMemoryCalls(CallStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()
