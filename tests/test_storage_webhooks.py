"""The webhooks and bots storage facets on SQLite, PostgreSQL and the memory backend:
coffeechat.testing.conformance_webhooks."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_webhooks import BotStoreConformanceTests, WebhookStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)


class TestSQLiteWebhooks(WebhookStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryWebhooks(WebhookStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestSQLiteBots(BotStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryBots(BotStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class _Postgres:
    @pytest.fixture(autouse=True)
    def _database(self, pg_server: PgServer, tmp_path):  # noqa: F811
        self._dsn = pg_server.database(tmp_path)
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        return PostgresStore(reactor, self._dsn)


class TestPostgresWebhooks(_Postgres, WebhookStoreConformanceTests):
    pass


class TestPostgresBots(_Postgres, BotStoreConformanceTests):
    pass
