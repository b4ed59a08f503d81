"""The PostgreSQL backend: the conformance suite, plus what only a shared database has —
migrations under an advisory lock, and several nodes (stores) writing one database at once:
dense seqs, idempotent resends and group checks must hold across them.

Runs against a throwaway server (tests/pgserver.py); every test gets its own database."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from coffeechat.backends import postgres as pg_backend
from coffeechat.backends.postgres import PostgresStore, StoreClosed, create_store
from coffeechat.backends.sql import groups as sql_groups
from coffeechat.interfaces import GroupForbidden, NotGroupMember, StorageUnavailable, UserExists
from coffeechat.model import GroupRole, MuteModel, SessionType
from coffeechat.sql import SQLMigration
from coffeechat.testing.conformance import (
    T0,
    RecallStoreConformanceTests,
    SQLDatabaseConformanceTests,
    StoreConformanceTests,
    new_group,
    new_message,
)
from tests.pgserver import PgServer, pg_server  # noqa: F401  (the session fixture)

_server: PgServer | None = None


@pytest.fixture(autouse=True)
def _use_server(pg_server, tmp_path):  # noqa: F811
    """Every test has the database of its tmp_path to itself, emptied afterwards for the next."""
    global _server
    _server = pg_server
    yield
    _server = None
    pg_server.release(tmp_path)


def _dsn(tmp_path) -> str:
    assert _server is not None
    return _server.database(tmp_path)


class TestPostgresConformance(StoreConformanceTests):
    def make_store(self, tmp_path):
        return PostgresStore(reactor, _dsn(tmp_path))


class TestPostgresSQLDatabase(SQLDatabaseConformanceTests):
    def make_store(self, tmp_path):
        return PostgresStore(reactor, _dsn(tmp_path))


class TestPostgresRecall(RecallStoreConformanceTests):
    def make_store(self, tmp_path):
        return PostgresStore(reactor, _dsn(tmp_path))


async def _open(tmp_path, **options) -> PostgresStore:
    store = create_store(reactor, {"dsn": _dsn(tmp_path), **options})
    await store.start()
    return store


def _sql(tmp_path, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on a connection of its own (as another process would)."""
    with psycopg.connect(_dsn(tmp_path), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def _fail(cur, message="boom"):
    raise RuntimeError(message)


def _seqs(messages) -> list[int]:
    return [m.seq for m in messages]


# ---- schema and migrations ------------------------------------------------------------------


def _recording(migrations: list[SQLMigration], pause: float = 0) -> list[SQLMigration]:
    """The migrations, each also recording in a table ``ran`` that it ran (after ``pause`` s)."""
    record = "\nCREATE TABLE IF NOT EXISTS ran (version INTEGER);\nINSERT INTO ran VALUES ({});"
    if pause:
        record += f"\nSELECT pg_sleep({pause});"
    return [
        SQLMigration(m.version, m.description, {"": m.sql_for("postgres") + record.format(m.version)})
        for m in migrations
    ]


def _ran(tmp_path) -> list[int]:
    return [row[0] for row in _sql(tmp_path, "SELECT version FROM ran")]


@pytest_twisted.ensureDeferred
async def test_migrations_run_once_and_version_is_recorded(tmp_path, monkeypatch):
    original = list(pg_backend.MIGRATIONS)
    monkeypatch.setattr(pg_backend, "MIGRATIONS", _recording(original))
    store = await _open(tmp_path)
    assert store.schema_version == len(original)
    await store.stop()
    assert _ran(tmp_path) == list(range(1, len(original) + 1))
    assert _sql(tmp_path, "SELECT version FROM schema_version") == [(len(original),)]

    store = await _open(tmp_path)  # reopening runs nothing again
    await store.stop()
    assert _ran(tmp_path) == list(range(1, len(original) + 1))

    # a later release adds a migration: only that one runs
    add_column = SQLMigration(
        len(original) + 1, "bio", {"": "ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';"}
    )
    monkeypatch.setattr(pg_backend, "MIGRATIONS", _recording([*original, add_column]))
    store = await _open(tmp_path)
    try:
        assert store.schema_version == len(original) + 1
        assert _ran(tmp_path) == list(range(1, len(original) + 2))
        assert await store.user_by_name("nobody") is None
    finally:
        await store.stop()
    assert _sql(tmp_path, "SELECT version FROM schema_version") == [(len(original) + 1,)]


@pytest_twisted.ensureDeferred
async def test_two_nodes_starting_at_once_migrate_once(tmp_path, monkeypatch):
    """Both start together; the advisory lock makes one wait, and it then finds the work done."""
    original = list(pg_backend.MIGRATIONS)
    # wide open for the other nodes to race in, were it not for the lock
    monkeypatch.setattr(pg_backend, "MIGRATIONS", _recording(original, pause=0.2))
    stores = [create_store(reactor, {"dsn": _dsn(tmp_path)}) for _ in range(3)]
    try:
        await defer.gatherResults([s.start() for s in stores])
        assert _ran(tmp_path) == list(range(1, len(original) + 1))
        assert all(s.schema_version == len(original) for s in stores)
        assert _sql(tmp_path, "SELECT version FROM schema_version") == [(len(original),)]
        first = await stores[0].append(new_message(1, 2, "a"))
        second = await stores[2].append(new_message(2, 1, "b"))
        assert (first.message.seq, second.message.seq) == (1, 2)
    finally:
        await defer.gatherResults([s.stop() for s in stores])


@pytest_twisted.ensureDeferred
async def test_failing_migration_is_rolled_back_and_start_fails(tmp_path, monkeypatch):
    broken = SQLMigration(
        len(pg_backend.MIGRATIONS) + 1,
        "broken",
        {"": "ALTER TABLE users ADD COLUMN half_done TEXT;\nSELECT * FROM no_such_table;"},
    )
    monkeypatch.setattr(pg_backend, "MIGRATIONS", [*pg_backend.MIGRATIONS, broken])
    store = create_store(reactor, {"dsn": _dsn(tmp_path)})
    with pytest.raises(psycopg.errors.UndefinedTable, match="no_such_table"):
        await store.start()
    assert _sql(tmp_path, "SELECT version FROM schema_version") == [(len(pg_backend.MIGRATIONS) - 1,)]
    columns = _sql(tmp_path, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    assert ("half_done",) not in columns
    with pytest.raises(StoreClosed):
        await store.append(new_message(1, 2, "x"))


@pytest_twisted.ensureDeferred
async def test_core_steps_keep_their_postgres_numbers(tmp_path, monkeypatch):
    """A PostgreSQL database at version 1 has the groups and no append function, at 2 the
    function, at 3 the token expiry index: as the first releases numbered them."""
    original = list(pg_backend.MIGRATIONS)
    probe = (
        "SELECT to_regclass('chat_groups') IS NOT NULL, to_regproc('coffeechat_append') IS NOT NULL, "
        "to_regclass('tokens_expires_at') IS NOT NULL"
    )
    expected = {1: (True, False, False), 2: (True, True, False), 3: (True, True, True)}
    for version in (1, 2, 3):
        monkeypatch.setattr(pg_backend, "MIGRATIONS", original[:version])
        store = await _open(tmp_path)
        await store.stop()
        assert _sql(tmp_path, "SELECT version FROM schema_version") == [(version,)]
        assert _sql(tmp_path, probe) == [expected[version]]
    assert _sql(tmp_path, "SELECT to_regclass('schema_components')") == [(None,)]  # made only when needed


@pytest_twisted.ensureDeferred
async def test_newer_schema_is_refused(tmp_path):
    store = await _open(tmp_path)
    await store.stop()
    _sql(tmp_path, "UPDATE schema_version SET version = 999")
    store = create_store(reactor, {"dsn": _dsn(tmp_path)})
    with pytest.raises(RuntimeError, match="newer"):
        await store.start()


@pytest_twisted.ensureDeferred
async def test_unreachable_database_fails_start(tmp_path):
    assert _server is not None
    store = create_store(reactor, {"dsn": f"host=127.0.0.1 port={_server.port} user=nobody_here dbname=nope"})
    with pytest.raises(psycopg.OperationalError):
        await store.start()
    with pytest.raises(StoreClosed):
        await store.user_by_id(1)


# ---- group commit and batch isolation ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_group_commit_batches_many_appends_into_few_commits(tmp_path):
    store = await _open(tmp_path)
    calls = []
    real_call = reactor.callFromThread

    class CountingReactor:
        def __getattr__(self, name):
            return getattr(reactor, name)

        def callFromThread(self, f, *args, **kwargs):
            calls.append(f)
            return real_call(f, *args, **kwargs)

    store._reactor = CountingReactor()
    try:
        commits, ops = store.commits, store.ops_committed
        results = await defer.gatherResults([store.append(new_message(1 + i % 7, 100, f"b{i}")) for i in range(200)])
        assert all(r.created for r in results)
        batches = store.commits - commits
        assert store.ops_committed - ops == 200
        assert 1 <= batches <= 10, batches
        assert len([f for f in calls if f == store._fire]) == batches  # one callFromThread per batch
    finally:
        store._reactor = reactor
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_a_failing_operation_fails_alone_and_leaves_no_gap(tmp_path):
    store = await _open(tmp_path, group_commit_ms=50)
    try:

        def append_then_fail(cur, message):
            pg_backend._append_txn(cur, message)  # takes seq 2 ...
            raise ValueError("changed my mind")  # ... and gives it back

        commits, replays = store.commits, store.replays
        d1 = store.append(new_message(1, 2, "first"))
        d_bad = store.run_write("bad", append_then_fail, new_message(1, 2, "doomed"))
        d_dup = store.create_user("alice", "A", "", T0)
        d_dup2 = store.create_user("ALICE", "A", "", T0)
        d2 = store.append(new_message(2, 1, "second"))
        d3 = store.append(new_message(1, 2, "first"))  # a resend of d1, in the same batch
        d_sql = store.run_write("bad sql", lambda cur: cur.execute("SELECT * FROM no_such_table"))
        with pytest.raises(ValueError, match="changed my mind"):
            await d_bad
        with pytest.raises(UserExists):
            await d_dup2
        with pytest.raises(psycopg.errors.UndefinedTable):
            await d_sql
        r1, user, r2, r3 = await defer.gatherResults([d1, d_dup, d2, d3])
        assert store.commits - commits == 1, "expected everything in one batch"
        assert store.replays - replays == 1
        assert (r1.message.seq, r2.message.seq) == (1, 2)
        assert r3.created is False and r3.message == r1.message
        assert user.name == "alice"
        assert [m.client_msg_id for m in await store.history("p:1:2", 0, 10)] == ["first", "second"]
        assert await store.latest_seq("p:1:2") == 2
        assert (await store.append(new_message(1, 2, "third"))).message.seq == 3
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_results_fire_in_the_order_operations_were_queued(tmp_path):
    store = await _open(tmp_path, group_commit_ms=20)
    try:
        order = []
        ds = []
        for i in range(60):
            if i % 3 == 0:
                d = store.create_user(f"u{i}", "U", "", T0)
            elif i % 3 == 1:
                d = store.append(new_message(i, i + 1000, f"o{i}"))
            else:
                d = store.run_write("fail", _fail)
                d.addErrback(lambda f: None)
            d.addBoth(lambda r, i=i: order.append(i) or r)
            ds.append(d)
        await defer.DeferredList(ds)
        assert order == list(range(60))
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_run_write_and_run_read_use_database_threads(tmp_path):
    store = await _open(tmp_path)
    try:
        main = threading.current_thread()
        writer = await store.run_write("who", lambda cur: threading.current_thread())
        reader = await store.run_read("who", lambda cur: threading.current_thread())
        assert writer is not main and reader is not main and writer is not reader
        assert writer.name == "postgres-writer"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # readers are read-only
            await store.run_read("write", lambda cur: cur.execute("DELETE FROM users"))
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_synchronous_maps_to_synchronous_commit(tmp_path):
    for synchronous, expected in (("full", "on"), ("normal", "off")):
        store = await _open(tmp_path, synchronous=synchronous)
        try:
            got = await store.run_write("sync", lambda cur: cur.execute("SHOW synchronous_commit").fetchone()[0])
            assert got == expected
        finally:
            await store.stop()


@pytest_twisted.ensureDeferred
async def test_empty_client_msg_id_is_never_a_resend(tmp_path):
    store = await _open(tmp_path)
    try:
        a = await store.append(new_message(1, 2, ""))
        b = await store.append(new_message(1, 2, ""))
        assert (a.created, b.created) == (True, True)
        assert (a.message.seq, b.message.seq) == (1, 2)
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_empty_client_msg_ids_in_one_batch_are_all_stored(tmp_path):
    store = await _open(tmp_path, group_commit_ms=20)
    try:
        commits = store.commits
        results = await defer.gatherResults([store.append(new_message(1 + i % 2, 2 - i % 2, "")) for i in range(50)])
        assert store.commits - commits == 1
        assert all(r.created for r in results) and [r.message.seq for r in results] == list(range(1, 51))
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_message_to_oneself(tmp_path):
    store = await _open(tmp_path)
    try:
        sent = [await store.append(new_message(4, 4, f"note{i}")) for i in range(2)]
        assert [r.message.seq for r in sent] == [1, 2]
        entry = await store.conversation_entry(4, "p:4:4")
        assert (entry.read_seq, entry.last_seq) == (2, 2)
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_refused_group_message_does_not_replay_its_batch(tmp_path):
    store = await _open(tmp_path, group_commit_ms=20)
    try:
        group = await new_group(store, 1, [2])
        replays = store.replays
        ds = [
            store.append(new_message(1 + i % 2, group.group_id, f"ok{i}", session_type=SessionType.GROUP))
            for i in range(10)
        ]
        refused = store.append(new_message(3, group.group_id, "outsider", session_type=SessionType.GROUP))
        ds += [store.append(new_message(4, 5, f"single{i}")) for i in range(5)]
        results = await defer.gatherResults(ds)
        with pytest.raises(NotGroupMember):
            await refused
        assert store.replays == replays
        assert sorted(r.message.seq for r in results[:10]) == list(range(1, 11))
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_calls_before_start_and_after_stop_fail_with_store_closed(tmp_path):
    store = create_store(reactor, {"dsn": _dsn(tmp_path)})
    with pytest.raises(StoreClosed, match="not started"):
        await store.append(new_message(1, 2, "early"))
    await store.start()
    await store.stop()
    with pytest.raises(StoreClosed, match="stopped"):
        await store.append(new_message(1, 2, "late"))
    with pytest.raises(StoreClosed, match="stopped"):
        await store.run_write("late", lambda cur: None)
    with pytest.raises(StoreClosed, match="stopped"):
        await store.user_by_id(1)
    with pytest.raises(StoreClosed):
        await store.start()
    await store.stop()  # stopping twice is harmless


@pytest_twisted.ensureDeferred
async def test_stop_waits_for_reads_in_flight(tmp_path):
    store = await _open(tmp_path)
    release = threading.Event()

    def slow(cur):
        release.wait(5)
        return cur.execute("SELECT 42").fetchone()[0]

    read = store.run_read("slow", slow)
    stopped = store.stop()
    assert not stopped.called
    reactor.callLater(0.05, release.set)
    assert await read == 42
    await stopped


def test_create_store_options_and_repr():
    store = create_store(
        reactor,
        {
            "dsn": "postgresql://chat:s3cret@db.example/chat",
            "group_commit_ms": "5",
            "max_batch": "64",
            "reader_threads": 2,
            "synchronous": "NORMAL",
        },
    )
    assert (store.group_commit_ms, store.max_batch, store.reader_threads, store.synchronous) == (5.0, 64, 2, "normal")
    assert "s3cret" not in repr(store) and "db.example" in repr(store)
    store = create_store(reactor, {})
    assert (store.dsn, store.group_commit_ms, store.max_batch, store.reader_threads, store.synchronous) == (
        "",
        2.0,
        512,
        4,
        "full",
    )
    with pytest.raises(ValueError):
        create_store(reactor, {"synchronous": "off"})
    with pytest.raises(psycopg.ProgrammingError):
        create_store(reactor, {"dsn": "host=x nonsense"})


def test_registered_as_a_storage_backend():
    from coffeechat.config import load_config
    from coffeechat.plugins import storage_factory

    assert storage_factory("postgres") is create_store
    config = load_config(None, {"storage.backend": "postgres", "storage.dsn": "postgresql://u@h/d"})
    assert config.storage.dsn == "postgresql://u@h/d"
    sample = load_config(Path(__file__).resolve().parent.parent / "etc" / "coffeechat-postgres.toml")
    assert sample.storage.backend == "postgres" and sample.storage.dsn.startswith("postgresql://")


@pytest_twisted.ensureDeferred
async def test_build_core_passes_the_dsn(tmp_path):
    from coffeechat.config import load_config
    from coffeechat.node import build_node

    config = load_config(
        None,
        {
            "server.data_dir": str(tmp_path / "data"),
            "storage.backend": "postgres",
            "storage.dsn": _dsn(tmp_path),
            "storage.max_batch": 7,
        },
    )
    core = build_node(config, reactor)
    assert isinstance(core.store, PostgresStore) and core.store.dsn == _dsn(tmp_path)
    assert core.store.max_batch == 7
    await core.open()
    try:
        assert (await core.store.append(new_message(1, 2, "via core"))).message.seq == 1
    finally:
        await core.close()


@pytest_twisted.ensureDeferred
async def test_batched_appends_answer_as_one_at_a_time(tmp_path):
    """A random mix of 1:1 appends, resends (of stored messages and of ones in the same batch),
    messages to oneself and group messages, fired at once so
    that they share batches (the set-based path), answers exactly as the memory backend does
    one call after the other."""
    import random

    from backends.memory import MemoryStore

    rng = random.Random(6)
    store = await _open(tmp_path, group_commit_ms=5, max_batch=64)
    reference = MemoryStore()
    await reference.start()
    try:
        for s in (store, reference):
            await new_group(s, 1, [2, 3])
        sent = []
        for i in range(600):
            roll = rng.random()
            if roll < 0.15 and sent:
                m = rng.choice(sent[-80:])  # a resend, maybe of something in the same batch
                m = new_message(
                    m.sender_id, m.to_id, m.client_msg_id, data=b"resent", at=T0 + i, session_type=m.session_type
                )
            elif roll < 0.3:
                m = new_message(rng.randint(1, 4), 1, f"g{i}", at=T0 + i, session_type=SessionType.GROUP)
            else:
                m = new_message(rng.randint(1, 6), rng.randint(1, 6), f"m{i}", at=T0 + i)
            sent.append(m)

        def outcome(d):
            d.addErrback(lambda f: type(f.value).__name__)
            return d

        got = await defer.gatherResults([outcome(store.append(m)) for m in sent])
        expected = [await outcome(reference.append(m)) for m in sent]
        assert store.commits < 100 and store.replays == 0 and store.retries == 0
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert a == b, (i, sent[i])
        for user in range(1, 7):
            assert await store.conversations_of(user, 0, 100) == await reference.conversations_of(user, 0, 100)
    finally:
        await store.stop()
        await reference.stop()


@pytest_twisted.ensureDeferred
async def test_a_real_node_chats_on_postgres(tmp_path):
    """Registration, login, a message, the offline list and history, over loopback TCP, with
    ``[storage] backend = "postgres"``."""
    from coffeechat.schema import Cmd
    from tests.conftest import node_config, start_node, stop_node

    live = await start_node(node_config(tmp_path, **{"storage.backend": "postgres", "storage.dsn": _dsn(tmp_path)}))
    try:
        assert isinstance(live.core.store, PostgresStore)
        alice_id = await live.register("alice")
        bob_id = await live.register("bobby")
        alice = await live.login("alice")
        acks = [await alice.send_message(bob_id, f"hello {i}") for i in range(3)]
        assert [a.server_msg_id for a in acks] == [1, 2, 3]
        bob = await live.login("bobby")
        (entry,) = (await bob.sessions()).contact_session_list
        assert (entry.session_id, entry.unread_cnt, entry.msg_data) == (alice_id, 3, b"hello 2")
        ack = await alice.send_message(bob_id, "live")
        _, _, push = await bob.next_push(Cmd.MSG_DATA)
        assert (push.server_msg_id, push.msg_data) == (ack.server_msg_id, b"live") == (4, b"live")
        history = await bob.history(alice_id)
        assert [m.msg_data for m in history.msg_list][-1] == b"live"
    finally:
        await stop_node(live)


# ---- several nodes on one database --------------------------------------------------------------


async def _nodes(tmp_path, n: int = 2, **options) -> list[PostgresStore]:
    stores = [create_store(reactor, {"dsn": _dsn(tmp_path), **options}) for _ in range(n)]
    await defer.gatherResults([s.start() for s in stores])
    return stores


async def _stop_all(stores) -> None:
    await defer.gatherResults([s.stop() for s in stores])


@pytest_twisted.ensureDeferred
async def test_concurrent_appends_from_two_nodes_are_dense(tmp_path):
    """Two nodes fire 300 appends each at one conversation, all at once: seqs are exactly
    1..600, each message got the seq it is stored under.  Small batches, so that the two
    writers' transactions interleave on the conversation's row lock many times."""
    a, b = await _nodes(tmp_path, max_batch=20)
    try:
        n = 300
        ds = []
        for i in range(n):  # interleaved, so both writers have work queued from the first moment
            ds.append(a.append(new_message(1, 2, f"a{i}", at=T0 + i // 50)))
            ds.append(b.append(new_message(2, 1, f"b{i}", at=T0 + i // 50)))
        results = await defer.gatherResults(ds)
        assert all(r.created for r in results)
        assert sorted(r.message.seq for r in results) == list(range(1, 2 * n + 1))
        stored = await a.history("p:1:2", 0, 2 * n + 10)
        assert _seqs(stored) == list(range(1, 2 * n + 1))
        assert {m.seq: m.client_msg_id for m in stored} == {r.message.seq: r.message.client_msg_id for r in results}
        assert await b.latest_seq("p:1:2") == 2 * n
        # both nodes' writers really interleaved (more than one batch each)
        assert a.commits > 1 and b.commits > 1
        # each node's own messages keep their queue order
        for prefix in ("a", "b"):
            mine = [int(m.client_msg_id[1:]) for m in stored if m.client_msg_id[0] == prefix]
            assert mine == sorted(mine)
        entry = await b.conversation_entry(1, "p:1:2")
        assert entry.last_seq == 2 * n and entry.last_message == stored[-1]
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_concurrent_appends_from_two_nodes_to_many_conversations(tmp_path):
    """Batches of two nodes lock overlapping sets of conversations: sorted pre-locking keeps
    them from deadlocking (a deadlock would cost a second before PostgreSQL broke it)."""
    a, b = await _nodes(tmp_path)
    try:
        started = time.monotonic()
        ds = []
        for i in range(400):
            ds.append(a.append(new_message(100, 200 + i % 20, f"a{i}")))
            ds.append(b.append(new_message(200 + (19 - i % 20), 100, f"b{i}")))  # the other way round
        results = await defer.gatherResults(ds)
        per_conv: dict[str, list[int]] = {}
        for r in results:
            per_conv.setdefault(r.message.conv, []).append(r.message.seq)
        assert len(per_conv) == 20
        assert all(sorted(seqs) == list(range(1, 41)) for seqs in per_conv.values())
        assert a.retries == b.retries == 0
        assert time.monotonic() - started < 5
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_same_client_msg_id_from_two_nodes_is_stored_once(tmp_path):
    """A client's resend lands on another node while the first copy is being stored: one
    message, and both nodes answer with it."""
    a, b = await _nodes(tmp_path)
    try:
        pairs = []
        for i in range(100):
            pairs.append(
                (
                    a.append(new_message(1, 2, f"dup{i}", data=b"from a")),
                    b.append(new_message(1, 2, f"dup{i}", data=b"from b")),
                )
            )
        for i, (da, db) in enumerate(pairs):
            ra, rb = await defer.gatherResults([da, db])
            assert ra.message == rb.message, i
            assert sorted([ra.created, rb.created]) == [False, True], i
        stored = await a.history("p:1:2", 0, 500)
        assert _seqs(stored) == list(range(1, 101))
        assert [m.client_msg_id for m in stored] == [f"dup{i}" for i in range(100)]
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_duplicate_waits_for_the_uncommitted_first_copy(tmp_path):
    """Node A has stored the message but not committed yet; node B's copy waits for A's
    transaction and then returns A's message (and gives no seq away)."""
    a, b = await _nodes(tmp_path)
    try:
        inside = threading.Event()

        def append_and_linger(cur, message):
            result = pg_backend._append_txn(cur, message)
            inside.set()
            time.sleep(0.3)  # the transaction stays open, its row locks held
            return result

        first = a.run_write("slow append", append_and_linger, new_message(1, 2, "once", data=b"a"))
        await threads.deferToThread(inside.wait, 5)
        second = b.append(new_message(1, 2, "once", data=b"b"))
        ra, rb = await defer.gatherResults([first, second])
        assert ra.created and not rb.created and rb.message == ra.message and rb.message.data == b"a"
        assert (await b.append(new_message(2, 1, "next"))).message.seq == 2
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_duplicate_racing_into_another_conversation_gives_no_seq_away(tmp_path):
    """The odd client that reuses a client_msg_id for another conversation, while the first copy
    is uncommitted on another node: the batched insert finds the duplicate only after it has
    numbered the batch, so the batch is replayed one append at a time — no gap in p:1:3."""
    a, b = await _nodes(tmp_path, group_commit_ms=20)
    try:
        inside = threading.Event()

        def append_and_linger(cur, message):
            result = pg_backend._append_txn(cur, message)
            inside.set()
            time.sleep(0.3)
            return result

        first = a.run_write("slow append", append_and_linger, new_message(1, 2, "reused"))
        await threads.deferToThread(inside.wait, 5)
        replays = b.replays
        ds = [
            b.append(new_message(1, 3, "before")),
            b.append(new_message(1, 3, "reused")),
            b.append(new_message(3, 1, "after")),
        ]
        ra, (r1, r2, r3) = await defer.gatherResults([first, defer.gatherResults(ds)])
        assert b.replays == replays + 1
        assert ra.created and not r2.created and r2.message == ra.message
        assert (r1.message.seq, r3.message.seq) == (1, 2)
        assert _seqs(await b.history("p:1:3", 0, 10)) == [1, 2]
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_first_message_of_a_conversation_from_two_nodes(tmp_path):
    """Both nodes create the conversation at once (INSERT ... ON CONFLICT): seqs 1 and 2."""
    a, b = await _nodes(tmp_path)
    try:
        for round_no in range(20):
            ra, rb = await defer.gatherResults(
                [
                    a.append(new_message(10 + round_no, 99, f"hi{round_no}")),
                    b.append(new_message(99, 10 + round_no, f"ho{round_no}")),
                ]
            )
            assert ra.created and rb.created
            assert sorted([ra.message.seq, rb.message.seq]) == [1, 2]
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_group_message_racing_a_kick_on_another_node(tmp_path):
    """The kick's transaction is open (on node A) while node B stores a message from the kicked
    member: B waits for the kick and then refuses.  The other way round, the message is first
    and stands.  Also for mute."""
    a, b = await _nodes(tmp_path)
    try:
        group = await new_group(a, 1, [2, 3, 4])
        gid = group.group_id
        inside = threading.Event()

        def linger_after(fn):
            def run(cur, *args):
                result = fn(cur, *args)
                inside.set()
                time.sleep(0.3)
                return result

            return run

        kick = a.run_write(
            "slow kick",
            linger_after(sql_groups.remove_members_txn),
            gid,
            1,
            int(GroupRole.ADMIN),
            [2],
            T0,
            int(GroupRole.OWNER),
        )
        await threads.deferToThread(inside.wait, 5)
        message = b.append(new_message(2, gid, "too late", session_type=SessionType.GROUP))
        results = await defer.DeferredList([kick, message], consumeErrors=True)
        assert results[0][0] and [m.user_id for m in results[0][1].removed] == [2]
        assert not results[1][0] and results[1][1].check(NotGroupMember)
        assert await b.latest_seq(group.conv) == 0

        inside.clear()
        mute = a.run_write(
            "slow mute",
            linger_after(sql_groups.update_group_txn),
            gid,
            1,
            int(GroupRole.ADMIN),
            {"mute_model": int(MuteModel.ALL)},
            T0,
        )
        await threads.deferToThread(inside.wait, 5)
        with pytest.raises(GroupForbidden):
            await b.append(new_message(3, gid, "muted meanwhile", session_type=SessionType.GROUP))
        await mute
        await a.update_group(gid, 1, GroupRole.ADMIN, {"mute_model": MuteModel.DEFAULT}, T0)

        inside.clear()
        sent = b.run_write(
            "slow message",
            linger_after(pg_backend._append_txn),
            new_message(3, gid, "just in time", session_type=SessionType.GROUP),
        )
        await threads.deferToThread(inside.wait, 5)
        kicked = await a.remove_members(gid, 1, GroupRole.ADMIN, [3], T0, GroupRole.OWNER)
        sent = await sent
        assert sent.created and sent.message.seq == 1 and [m.user_id for m in kicked.removed] == [3]
        assert [m.client_msg_id for m in await a.history(group.conv, 0, 10)] == ["just in time"]
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_group_messages_and_kicks_racing_on_two_nodes(tmp_path):
    """Many members write while another node kicks them one by one: every stored message was
    written by someone who was a member at that point of the conversation — that is, before the
    kick's notice (which the kick appends in its own transaction here, as the core does next)."""
    a, b = await _nodes(tmp_path)
    try:
        members = list(range(2, 12))
        group = await new_group(a, 1, members)
        gid = group.group_id

        def kick_and_notice(cur, uid):
            change = sql_groups.remove_members_txn(cur, gid, 1, int(GroupRole.ADMIN), [uid], T0, 0)
            notice = new_message(1, gid, f"kicked {uid}", session_type=SessionType.GROUP, msg_type=9)
            pg_backend._append_txn(cur, notice)
            return change

        ds = []
        for i in range(30):
            for uid in members:
                d = b.append(new_message(uid, gid, f"{uid}-{i}", session_type=SessionType.GROUP))
                d.addErrback(lambda f: f.trap(NotGroupMember))
                ds.append(d)
            if i % 3 == 0 and members:
                uid = members.pop(0)
                ds.append(a.run_write("kick", kick_and_notice, uid, locks=(group.conv,)))
        await defer.gatherResults(ds)
        history = await a.history(group.conv, 0, 1000)
        assert _seqs(history) == list(range(1, len(history) + 1))
        kicked_at = {int(m.client_msg_id.split()[1]): m.seq for m in history if m.client_msg_id.startswith("kicked")}
        assert len(kicked_at) == 10
        for m in history:
            if not m.client_msg_id.startswith("kicked"):
                assert m.seq < kicked_at[m.sender_id], m
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_group_limits_hold_across_nodes(tmp_path):
    """Two nodes add the same user to different groups at once with a limit of one group per
    user: exactly one succeeds (the per-user advisory lock makes the count exact)."""
    a, b = await _nodes(tmp_path)
    try:
        for round_no in range(10):
            user = 1000 + round_no
            ga = await new_group(a, 1, [])
            gb = await new_group(b, 2, [])
            results = await defer.DeferredList(
                [
                    a.add_members(ga.group_id, 1, GroupRole.MEMBER, [user], T0, 200, 1),
                    b.add_members(gb.group_id, 2, GroupRole.MEMBER, [user], T0, 200, 1),
                ],
                consumeErrors=True,
            )
            assert sorted(ok for ok, _ in results) == [False, True], round_no
            assert len(await a.groups_of(user)) == 1
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_users_created_on_two_nodes_at_once(tmp_path):
    a, b = await _nodes(tmp_path)
    try:
        ds = [s.create_user(f"user{i}", "U", "", T0) for i in range(50) for s in (a, b)]
        results = await defer.DeferredList(ds, consumeErrors=True)
        created = [r for ok, r in results if ok]
        refused = [r for ok, r in results if not ok]
        assert len(created) == 50 and all(f.check(UserExists) for f in refused)
        assert sorted(u.name for u in created) == sorted(f"user{i}" for i in range(50))
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_deadlock_between_nodes_is_retried(tmp_path):
    """Two nodes lock two rows in opposite orders (undeclared, so not pre-locked): PostgreSQL
    breaks the deadlock by failing one transaction, and that batch is run again."""
    a, b = await _nodes(tmp_path)
    try:
        await a.create_user("x", "X", "", T0)
        await a.create_user("y", "Y", "", T0)
        barrier = threading.Barrier(2, timeout=5)

        def lock_both(first, second):
            runs = []

            def run(cur):
                cur.execute("UPDATE users SET nick_name = nick_name WHERE name_key = ?", (first,))
                if not runs:  # the first run: wait until both hold their first row
                    runs.append(1)
                    barrier.wait()
                cur.execute("UPDATE users SET nick_name = nick_name || '+' WHERE name_key = ?", (second,))
                return True

            return run

        results = await defer.gatherResults(
            [a.run_write("xy", lock_both("x", "y")), b.run_write("yx", lock_both("y", "x"))]
        )
        assert results == [True, True]
        assert a.retries + b.retries == 1
        assert {u.nick_name for u in await a.list_users(0, 10)} == {"X+", "Y+"}
    finally:
        await _stop_all([a, b])


@pytest_twisted.ensureDeferred
async def test_writer_reconnects_after_losing_its_connection(tmp_path):
    store = await _open(tmp_path)
    try:
        assert (await store.append(new_message(1, 2, "before"))).message.seq == 1
        _sql(
            tmp_path,
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name "
            "IN ('coffeechat-writer', 'coffeechat-reader') AND pid <> pg_backend_pid()",
        )
        with pytest.raises(StorageUnavailable):
            await store.append(new_message(1, 2, "lost"))  # its connection was gone: failed, not hung
        after = await store.append(new_message(1, 2, "after"))
        assert after.message.seq == 2
        assert _seqs(await store.history("p:1:2", 0, 10)) == [1, 2]  # the read reconnected too
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_plans_made_on_an_empty_database_still_use_the_indexes(tmp_path):
    """PostgreSQL caches one generic plan per prepared statement and connection.  Planned while
    the tables were empty, a plan could read whole tables for as long as the connection lives;
    the store's connections price sequential scans out so that it cannot."""
    import re

    from coffeechat.backends import postgres as pg_backend

    store = await _open(tmp_path)
    try:
        await store.run_write("analyze", lambda cur: cur.execute("ANALYZE messages; ANALYZE conversations"))

        def generic_plan(cur) -> str:
            numbered = iter(range(1, 100))
            stmt = re.sub(r"%s", lambda _: f"${next(numbered)}", pg_backend.SQL_APPEND_SINGLES)
            types = "text[], bigint[], bigint[], text[], smallint[], bytea[], bigint[], smallint[]"
            cur.execute(f"PREPARE probe({types}) AS {stmt}")
            cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            explained = cur.execute(
                "EXPLAIN EXECUTE probe(array['p:1:2'], array[1], array[2], array['c'], array[1]::smallint[], "
                "array['x'::bytea], array[0], array[0]::smallint[])"
            )
            plan = "\n".join(row[0] for row in explained.fetchall())
            cur.execute("DEALLOCATE probe")
            return plan

        plan = await store.run_read("plan", generic_plan)
        assert "Index Scan using messages_sender_client_msg_id" in plan, plan
        assert "Seq Scan on messages" not in plan and "Seq Scan on conversations" not in plan, plan
    finally:
        await store.stop()
