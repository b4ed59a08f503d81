"""The group_mutes storage facet on SQLite, PostgreSQL and the memory backend."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_group_mutes import GroupMuteStoreConformanceTests
from tests.pgserver import pg_server  # noqa: F401  (the session fixture)


class TestSQLiteGroupMutes(GroupMuteStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryGroupMutes(GroupMuteStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestPostgresGroupMutes(GroupMuteStoreConformanceTests):
    @pytest.fixture(autouse=True)
    def _server(self, pg_server, tmp_path):  # noqa: F811
        self._pg = pg_server
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        return PostgresStore(reactor, self._pg.database(tmp_path))
