"""The group_requests storage facet and the group store's ownership transfer, on SQLite files, a
real PostgreSQL (tests/pgserver.py) and the memory backend."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.errors import ErrorCode
from coffeechat.features.group_requests import RequestRefused, SQLGroupRequestStore
from coffeechat.model import GroupRole
from coffeechat.sql import load_migrations
from coffeechat.testing.conformance import T0, new_group
from coffeechat.testing.conformance_group_requests import (
    GroupRequestStoreConformanceTests,
    GroupTransferConformanceTests,
)
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)


def _path(tmp_path) -> str:
    return str(tmp_path / "store.sqlite3")


class TestSQLiteGroupRequests(GroupRequestStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, _path(tmp_path))


class TestSQLiteGroupTransfer(GroupTransferConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, _path(tmp_path))


class TestMemoryGroupRequests(GroupRequestStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestMemoryGroupTransfer(GroupTransferConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class _Postgres:
    """Every test has the database of its tmp_path to itself, emptied afterwards."""

    @pytest.fixture(autouse=True)
    def _use_server(self, pg_server, tmp_path):  # noqa: F811
        self._server: PgServer = pg_server
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        return PostgresStore(reactor, self._server.database(tmp_path))


class TestPostgresGroupRequests(_Postgres, GroupRequestStoreConformanceTests):
    pass


class TestPostgresGroupTransfer(_Postgres, GroupTransferConformanceTests):
    pass


@pytest_twisted.ensureDeferred
async def test_two_nodes_decide_one_request_at_once(pg_server, tmp_path):  # noqa: F811
    """Two PostgreSQL nodes (stores) decide the same requests at the same moment: exactly one
    decision wins each time, and the bounds hold when both nodes create requests at once."""
    dsn = pg_server.database(tmp_path)
    stores = [PostgresStore(reactor, dsn) for _ in range(2)]
    try:
        for store in stores:
            await store.start()
            await store.migrate("group_requests", load_migrations(SQLGroupRequestStore.migrations))
        a, b = (SQLGroupRequestStore(s) for s in stores)
        owner = (await stores[0].create_user("owner", "o", "", T0)).user_id
        admin = (await stores[0].create_user("admin", "a", "", T0)).user_id
        gid = (await new_group(stores[0], owner, [admin])).group_id
        await stores[0].set_member_roles(gid, owner, GroupRole.OWNER, [admin], GroupRole.ADMIN, T0)
        for round_no in range(10):
            user = (await stores[0].create_user(f"asker{round_no}", "x", "", T0)).user_id
            ((req, _),) = await a.create(1, gid, user, [user], "", T0, T0 + 3600, 1000, 10)
            results = await defer.DeferredList(
                [a.decide(req.request_id, gid, owner, 1, T0 + 1), b.decide(req.request_id, gid, admin, 2, T0 + 1)],
                consumeErrors=True,
            )
            assert sorted(ok for ok, _ in results) == [False, True], round_no
            (loser,) = [r.value for ok, r in results if not ok]
            assert isinstance(loser, RequestRefused) and loser.code == ErrorCode.GROUP_REQUEST_HANDLED
        # both nodes fill the last pending slots of a group at once: the bound holds
        others = [(await stores[0].create_user(f"late{i}", "x", "", T0)).user_id for i in range(6)]
        results = await defer.DeferredList(
            [(a if i % 2 else b).create(1, gid, u, [u], "", T0, T0 + 3600, 3, 10) for i, u in enumerate(others)],
            consumeErrors=True,
        )
        assert sum(ok for ok, _ in results) == 3
        assert len(await a.pending_for(owner, gid, T0 + 1, 100)) == 3
    finally:
        for store in stores:
            await store.stop()
        pg_server.release(tmp_path)


@pytest_twisted.ensureDeferred
async def test_two_nodes_never_pass_a_users_bound_of_pending_requests(pg_server, tmp_path):  # noqa: F811
    """One user asks to join many groups at once through two PostgreSQL nodes: the per-user bound
    is counted across groups, so the groups' locks alone do not keep it (the users' do)."""
    dsn = pg_server.database(tmp_path)
    stores = [PostgresStore(reactor, dsn) for _ in range(2)]
    try:
        for store in stores:
            await store.start()
            await store.migrate("group_requests", load_migrations(SQLGroupRequestStore.migrations))
        a, b = (SQLGroupRequestStore(s) for s in stores)
        owner = (await stores[0].create_user("owner", "o", "", T0)).user_id
        asker = (await stores[0].create_user("asker", "x", "", T0)).user_id
        gids = [(await new_group(stores[0], owner, [])).group_id for _ in range(16)]
        for round_no in range(3):
            now = T0 + 10_000 * round_no  # the earlier rounds' requests have expired
            results = await defer.DeferredList(
                [
                    (a if i % 2 else b).create(1, gid, asker, [asker], "", now, now + 3600, 100, 3)
                    for i, gid in enumerate(gids)
                ],
                consumeErrors=True,
            )
            refused = [r.value for ok, r in results if not ok]
            assert all(isinstance(r, RequestRefused) for r in refused), refused
            assert sum(ok for ok, _ in results) == 3, round_no
    finally:
        for store in stores:
            await store.stop()
        pg_server.release(tmp_path)
