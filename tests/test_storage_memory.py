"""The memory backend passes the same conformance suite (it keeps nothing across a restart)."""

from __future__ import annotations

from coffeechat.backends.memory import MemoryStore
from coffeechat.testing.conformance import (
    RecallStoreConformanceTests,
    SQLDatabaseConformanceTests,
    StoreConformanceTests,
)


class TestMemoryConformance(StoreConformanceTests):
    durable = False

    def make_store(self, tmp_path):
        return MemoryStore()


class TestMemorySQLDatabase(SQLDatabaseConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestMemoryRecall(RecallStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()
