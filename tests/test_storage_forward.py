"""The forward feature's storage facet on every backend: SQLite files, PostgreSQL, memory."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_forward import ForwardStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)


class TestSQLiteForward(ForwardStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryForward(ForwardStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestPostgresForward(ForwardStoreConformanceTests):
    @pytest.fixture(autouse=True)
    def _server(self, pg_server, tmp_path):  # noqa: F811
        """Every test has the database of its tmp_path to itself, emptied afterwards."""
        self.server: PgServer = pg_server
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        return PostgresStore(reactor, self.server.database(tmp_path))
