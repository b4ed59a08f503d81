"""The deletes feature's storage facet on every backend: SQLite, PostgreSQL and memory."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_deletes import DeleteStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)


class TestSQLiteDeletes(DeleteStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryDeletes(DeleteStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestPostgresDeletes(DeleteStoreConformanceTests):
    @pytest.fixture(autouse=True)
    def _server(self, pg_server, tmp_path):  # noqa: F811
        self.pg = pg_server
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        return PostgresStore(reactor, self.pg.database(tmp_path))
