"""The directory and blocks features' storage facets on every backend: memory, SQLite and
PostgreSQL (a throwaway server, tests/pgserver.py)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.testing.conformance_directory import BlockStoreConformanceTests, DirectoryStoreConformanceTests
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)

_server: PgServer | None = None


def _sqlite(tmp_path) -> SQLiteStore:
    return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryDirectory(DirectoryStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestSQLiteDirectory(DirectoryStoreConformanceTests):
    def make_store(self, tmp_path):
        return _sqlite(tmp_path)


class TestMemoryBlocks(BlockStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestSQLiteBlocks(BlockStoreConformanceTests):
    def make_store(self, tmp_path):
        return _sqlite(tmp_path)


class _OnPostgres:
    @pytest.fixture(autouse=True)
    def _use_server(self, pg_server, tmp_path):  # noqa: F811
        global _server
        _server = pg_server
        yield
        _server = None
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        assert _server is not None
        return PostgresStore(reactor, _server.database(tmp_path))


class TestPostgresDirectory(_OnPostgres, DirectoryStoreConformanceTests):
    pass


class TestPostgresBlocks(_OnPostgres, BlockStoreConformanceTests):
    pass


# -- a search is an index range scan on both engines, not a scan of the users


def _plan(txn, explain: str, params: tuple) -> list[str]:
    from coffeechat.features.directory import SQL_SEARCH

    if txn.engine == "postgres":
        # Tiny tables are cheaper to scan: forbid it, so that only a usable index avoids one.
        txn.execute("SET enable_seqscan = off")
        try:
            return [r[0] for r in txn.execute(explain + SQL_SEARCH, params).fetchall()]
        finally:
            txn.execute("RESET enable_seqscan")
    return [r[-1] for r in txn.execute(explain + SQL_SEARCH, params).fetchall()]


async def _search_plan(store) -> str:
    from coffeechat.features.directory import IDirectoryStore, SQLDirectoryStore
    from coffeechat.sql import load_migrations

    await store.start()
    try:
        await store.migrate("directory", load_migrations(SQLDirectoryStore.migrations))
        facet = SQLDirectoryStore(store)
        assert IDirectoryStore.providedBy(facet)
        ids = [(await store.create_user(f"user{i:03d}", f"Nick {i}", "", 0)).user_id for i in range(50)]
        await facet.index_users(ids, 0)
        explain = "EXPLAIN " if store.engine == "postgres" else "EXPLAIN QUERY PLAN "
        lines = await store.run_read("plan", _plan, explain, ("user01", "user02", "", 0, 21))
        return "\n".join(lines)
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_sqlite_search_plan_is_a_primary_key_range(tmp_path):
    plan = await _search_plan(_sqlite(tmp_path))
    assert "SEARCH k USING PRIMARY KEY (search_key>? AND search_key<?)" in plan, plan
    assert "SCAN u" not in plan and "SCAN k" not in plan, plan


class TestPostgresPlan(_OnPostgres):
    @pytest_twisted.ensureDeferred
    async def test_postgres_search_plan_is_an_index_range(self, tmp_path):
        plan = await _search_plan(self.make_store(tmp_path))
        assert "Index" in plan and "directory_keys_pkey" in plan, plan
        assert "Seq Scan" not in plan, plan

    @pytest_twisted.ensureDeferred
    async def test_the_block_limit_is_exact_across_two_nodes(self, tmp_path):
        """Two nodes (stores) on one database add blocks for one owner at once: the owner's
        advisory lock makes the count exact."""
        from twisted.internet import defer

        from coffeechat.features.blocks import SQLBlockStore, TooManyBlocked
        from coffeechat.sql import load_migrations

        stores = [self.make_store(tmp_path), self.make_store(tmp_path)]
        for store in stores:
            await store.start()
        try:
            await stores[0].migrate("blocks", load_migrations(SQLBlockStore.migrations))
            facets = [SQLBlockStore(s) for s in stores]
            attempts = [facets[i % 2].block(1, 100 + i, i, 5) for i in range(16)]
            results = await defer.DeferredList(attempts, consumeErrors=True)
            assert sum(1 for ok, _ in results if ok) == 5
            assert all(f.check(TooManyBlocked) for ok, f in results if not ok)
            assert len(await facets[1].blocks_of(1, 100)) == 5
        finally:
            for store in stores:
                await store.stop()
