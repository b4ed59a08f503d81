"""The storage facets of do-not-disturb and pinned conversations on every built-in backend:
SQLite files, PostgreSQL (a throwaway server, tests/pgserver.py) and the memory backend."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_dnd import DndStoreConformanceTests, PinStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)

_server: PgServer | None = None


@pytest.fixture
def _pg(pg_server, tmp_path):  # noqa: F811
    """A PostgreSQL test has the database of its tmp_path to itself, emptied afterwards."""
    global _server
    _server = pg_server
    yield
    _server = None
    pg_server.release(tmp_path)


def _sqlite(tmp_path) -> SQLiteStore:
    return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


def _postgres(tmp_path) -> PostgresStore:
    assert _server is not None
    return PostgresStore(reactor, _server.database(tmp_path))


class TestSQLiteDnd(DndStoreConformanceTests):
    def make_store(self, tmp_path):
        return _sqlite(tmp_path)


class TestSQLitePins(PinStoreConformanceTests):
    def make_store(self, tmp_path):
        return _sqlite(tmp_path)


@pytest.mark.usefixtures("_pg")
class TestPostgresDnd(DndStoreConformanceTests):
    def make_store(self, tmp_path):
        return _postgres(tmp_path)


@pytest.mark.usefixtures("_pg")
class TestPostgresPins(PinStoreConformanceTests):
    def make_store(self, tmp_path):
        return _postgres(tmp_path)


class TestMemoryDnd(DndStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestMemoryPins(PinStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()
