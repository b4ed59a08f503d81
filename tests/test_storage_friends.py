"""The friends and online status storage facets on every built-in backend: SQLite (a file),
PostgreSQL (a throwaway server) and memory (coffeechat/testing/conformance_friends.py)."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_friends import FriendStoreConformanceTests, OnlineStatusStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)

_server: PgServer | None = None


def _sqlite(tmp_path) -> SQLiteStore:
    return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestSQLiteFriends(FriendStoreConformanceTests):
    def make_store(self, tmp_path):
        return _sqlite(tmp_path)


class TestSQLiteOnlineStatus(OnlineStatusStoreConformanceTests):
    def make_store(self, tmp_path):
        return _sqlite(tmp_path)


class TestMemoryFriends(FriendStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestMemoryOnlineStatus(OnlineStatusStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class _Postgres:
    @pytest.fixture(autouse=True)
    def _use_server(self, pg_server, tmp_path):  # noqa: F811
        """Every test has the database of its tmp_path to itself, emptied afterwards."""
        global _server
        _server = pg_server
        yield
        _server = None
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        assert _server is not None
        return PostgresStore(reactor, _server.database(tmp_path))


class TestPostgresFriends(_Postgres, FriendStoreConformanceTests):
    pass


class TestPostgresOnlineStatus(_Postgres, OnlineStatusStoreConformanceTests):
    pass
