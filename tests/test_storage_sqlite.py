"""The SQLite backend: the conformance suite, plus what only SQLite has (migrations, WAL,
group commit, savepoint isolation inside a batch)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from coffeechat.backends import sqlite as sqlite_backend
from coffeechat.backends.sql import messages as sql_messages
from coffeechat.backends.sqlite import SQLiteStore, StoreClosed, create_store
from coffeechat.interfaces import NotGroupMember, UserExists
from coffeechat.model import SessionType
from coffeechat.sql import SQLMigration
from coffeechat.testing.conformance import (
    T0,
    RecallStoreConformanceTests,
    SQLDatabaseConformanceTests,
    StoreConformanceTests,
    new_group,
    new_message,
)


def _path(tmp_path) -> str:
    return str(tmp_path / "store.sqlite3")


class TestSQLiteConformance(StoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, _path(tmp_path))


class TestSQLiteSQLDatabase(SQLDatabaseConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, _path(tmp_path))


class TestSQLiteRecall(RecallStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, _path(tmp_path))


async def _open(tmp_path, **options) -> SQLiteStore:
    store = create_store(reactor, {"path": _path(tmp_path), **options})
    await store.start()
    return store


def _fail(cur, message="boom"):
    raise RuntimeError(message)


# ---- schema and migrations ------------------------------------------------------------------


def _recording(migrations: list[SQLMigration]) -> list[SQLMigration]:
    """The migrations, each also recording in a table ``ran`` that it ran."""
    record = "CREATE TABLE IF NOT EXISTS ran (version INTEGER);\nINSERT INTO ran VALUES ({});"
    return [
        SQLMigration(m.version, m.description, {"": m.sql_for("sqlite") + record.format(m.version)}) for m in migrations
    ]


def _ran(tmp_path) -> list[int]:
    conn = sqlite3.connect(_path(tmp_path))
    try:
        return [row[0] for row in conn.execute("SELECT version FROM ran ORDER BY rowid")]
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_migrations_run_once_and_version_is_recorded(tmp_path, monkeypatch):
    original = list(sqlite_backend.MIGRATIONS)
    monkeypatch.setattr(sqlite_backend, "MIGRATIONS", _recording(original))
    store = await _open(tmp_path)
    assert store.schema_version == len(original)
    await store.stop()
    assert _ran(tmp_path) == list(range(1, len(original) + 1))
    conn = sqlite3.connect(_path(tmp_path))
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(len(original),)]
    conn.close()

    store = await _open(tmp_path)  # reopening runs nothing again
    await store.stop()
    assert _ran(tmp_path) == list(range(1, len(original) + 1))

    # a later release adds a migration: only that one runs, and the version moves on
    add_column = SQLMigration(
        len(original) + 1, "bio", {"": "ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';"}
    )
    monkeypatch.setattr(sqlite_backend, "MIGRATIONS", _recording([*original, add_column]))
    store = await _open(tmp_path)
    try:
        assert store.schema_version == len(original) + 1
        assert _ran(tmp_path) == list(range(1, len(original) + 2))
        assert (await store.user_by_name("nobody")) is None
    finally:
        await store.stop()
    conn = sqlite3.connect(_path(tmp_path))
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (len(original) + 1,)
    assert "bio" in [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    conn.close()


@pytest_twisted.ensureDeferred
async def test_failing_migration_is_rolled_back_and_start_fails(tmp_path, monkeypatch):
    broken = SQLMigration(
        len(sqlite_backend.MIGRATIONS) + 1,
        "broken",
        {"": "ALTER TABLE users ADD COLUMN half_done TEXT;\nSELECT * FROM no_such_table;"},
    )
    monkeypatch.setattr(sqlite_backend, "MIGRATIONS", [*sqlite_backend.MIGRATIONS, broken])
    store = create_store(reactor, {"path": _path(tmp_path)})
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        await store.start()
    conn = sqlite3.connect(_path(tmp_path))
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (len(sqlite_backend.MIGRATIONS) - 1,)
    assert "half_done" not in [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    conn.close()
    with pytest.raises(StoreClosed):
        await store.append(new_message(1, 2, "x"))


@pytest_twisted.ensureDeferred
async def test_core_steps_keep_their_sqlite_numbers(tmp_path, monkeypatch):
    """A SQLite database at version 1 has no groups, at 2 the groups, at 3 the token expiry
    index: as the first releases numbered them."""
    original = list(sqlite_backend.MIGRATIONS)
    expected = {1: [], 2: ["chat_groups", "group_members"], 3: ["chat_groups", "group_members", "tokens_expires_at"]}
    for version in (1, 2, 3):
        monkeypatch.setattr(sqlite_backend, "MIGRATIONS", original[:version])
        store = await _open(tmp_path)
        await store.stop()
        conn = sqlite3.connect(_path(tmp_path))
        names = "('chat_groups', 'group_members', 'tokens_expires_at', 'schema_components')"
        found = [r[0] for r in conn.execute(f"SELECT name FROM sqlite_master WHERE name IN {names} ORDER BY name")]
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(version,)]
        conn.close()
        assert found == expected[version]


@pytest_twisted.ensureDeferred
async def test_newer_schema_is_refused(tmp_path):
    store = await _open(tmp_path)
    await store.stop()
    conn = sqlite3.connect(_path(tmp_path))
    conn.execute("UPDATE schema_version SET version = 999")
    conn.commit()
    conn.close()
    store = create_store(reactor, {"path": _path(tmp_path)})
    with pytest.raises(RuntimeError, match="newer"):
        await store.start()


@pytest_twisted.ensureDeferred
async def test_wal_mode_and_synchronous(tmp_path):
    store = await _open(tmp_path)
    try:
        conn = sqlite3.connect(_path(tmp_path))
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert await store.run_write("sync", lambda cur: cur.execute("PRAGMA synchronous").fetchone()[0]) == 2
    finally:
        await store.stop()
    store = await _open(tmp_path, synchronous="normal")
    try:
        assert await store.run_write("sync", lambda cur: cur.execute("PRAGMA synchronous").fetchone()[0]) == 1
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_hot_queries_use_indexes(tmp_path):
    store = await _open(tmp_path)
    try:

        def plans(cur):
            queries = {
                "history": (sql_messages.SQL_HISTORY, ("c", 1, 10, 5)),
                "resend": (sqlite_backend.SQL_FIND_RESEND, (1, "x")),
                "entries": (sql_messages.SQL_CONVERSATIONS_OF, (1, 0, 10)),
            }
            return {
                name: " / ".join(row[3] for row in cur.execute("EXPLAIN QUERY PLAN " + sql, params))
                for name, (sql, params) in queries.items()
            }

        found = await store.run_read("plans", plans)
        assert "USING PRIMARY KEY" in found["history"], found
        assert "messages_sender_client_msg_id" in found["resend"], found
        assert "SCAN uc" not in found["entries"], found
        assert "SCAN" not in found["history"] and "SCAN" not in found["resend"], found
    finally:
        await store.stop()


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
        # one callFromThread per batch, not one per operation
        assert len([f for f in calls if f == store._fire]) == batches
    finally:
        store._reactor = reactor
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
async def test_a_failing_operation_fails_alone_and_leaves_no_gap(tmp_path):
    store = await _open(tmp_path, group_commit_ms=50)
    try:

        def append_then_fail(cur, message):
            sqlite_backend._append_txn(cur, message)  # takes seq 2 ...
            raise ValueError("changed my mind")  # ... and gives it back

        commits, replays = store.commits, store.replays
        d1 = store.append(new_message(1, 2, "first"))
        d_bad = store.run_write("bad", append_then_fail, new_message(1, 2, "doomed"))
        d_dup = store.create_user("alice", "A", "", T0)
        d_dup2 = store.create_user("ALICE", "A", "", T0)
        d2 = store.append(new_message(2, 1, "second"))
        d3 = store.append(new_message(1, 2, "first"))  # a resend of d1, in the same batch
        with pytest.raises(ValueError, match="changed my mind"):
            await d_bad
        with pytest.raises(UserExists):
            await d_dup2
        r1, user, r2, r3 = await defer.gatherResults([d1, d_dup, d2, d3])
        assert store.commits - commits == 1, "expected everything in one batch"
        assert store.replays - replays == 1
        assert (r1.message.seq, r2.message.seq) == (1, 2)
        assert r3.created is False and r3.message == r1.message
        assert user.name == "alice"
        stored = await store.history("p:1:2", 0, 10)
        assert [m.client_msg_id for m in stored] == ["first", "second"]
        assert await store.latest_seq("p:1:2") == 2
        assert (await store.conversation_entry(1, "p:1:2")).read_seq == 1
        assert (await store.append(new_message(1, 2, "third"))).message.seq == 3
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
        assert writer.name.startswith("sqlite-writer")
        with pytest.raises(sqlite3.OperationalError):  # readers are read-only
            await store.run_read("write", lambda cur: cur.execute("DELETE FROM users"))
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
async def test_group_append_writes_no_member_rows(tmp_path):
    """A group message writes the sender's row only (and a mentioned member's), whatever the
    size of the group: member rows come from joins."""
    store = await _open(tmp_path)
    try:
        group = await new_group(store, 5, list(range(6, 106)))
        gid = group.group_id

        def rows(cur):
            return cur.execute(
                "SELECT user_id, read_seq, mention_seq FROM user_conversations ORDER BY user_id"
            ).fetchall()

        before = await store.run_read("rows", rows)
        assert len(before) == 101
        for i in range(3):
            mentions = (50,) if i == 1 else ()
            await store.append(new_message(5, gid, f"g{i}", session_type=SessionType.GROUP, mentions=mentions))
        after = await store.run_read("rows", rows)
        assert [r for r in after if r not in before] == [(5, 3, 0), (50, 0, 2)]
        assert (await store.conversation_entry(50, group.conv)).at_me
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_migration_2_keeps_data_written_before_it(tmp_path, monkeypatch):
    """A database written by the release before groups: its rows stay, including group messages
    written without membership (their stray sender rows are reset when that user joins)."""
    monkeypatch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:1])
    store = await _open(tmp_path)
    await store.append(new_message(1, 2, "old"))

    def legacy(cur):
        cur.execute("INSERT INTO conversations VALUES ('g:1', 2, 1, 0)")
        cur.execute("INSERT INTO messages VALUES ('g:1', 1, 2, 3, 1, 'legacy', 1, x'00', 0, 0)")
        cur.execute("INSERT INTO user_conversations VALUES (3, 'g:1', 2, 1, 1, 0)")

    await store.run_write("legacy group message", legacy)
    await store.stop()
    monkeypatch.undo()
    store = await _open(tmp_path)
    try:
        assert store.schema_version == len(sqlite_backend.MIGRATIONS)
        entry = await store.conversation_entry(2, "p:1:2")
        assert (entry.unread, entry.mention_seq) == (1, 0)
        group = await new_group(store, 1, [3])
        assert group.group_id == 1  # the first group takes the id the legacy rows used
        assert (await store.conversation_entry(3, "g:1")).read_seq == 1
        sent = await store.append(new_message(3, 1, "new", session_type=SessionType.GROUP))
        assert sent.message.seq == 2
    finally:
        await store.stop()


# ---- lifecycle ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_calls_before_start_and_after_stop_fail_with_store_closed(tmp_path):
    store = create_store(reactor, {"path": _path(tmp_path)})
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


def test_create_store_options(tmp_path):
    store = create_store(
        reactor,
        {
            "path": _path(tmp_path),
            "group_commit_ms": "5",
            "max_batch": "64",
            "reader_threads": 2,
            "synchronous": "NORMAL",
        },
    )
    assert (store.group_commit_ms, store.max_batch, store.reader_threads, store.synchronous) == (5.0, 64, 2, "normal")
    store = create_store(reactor, {"path": _path(tmp_path)})
    assert (store.group_commit_ms, store.max_batch, store.reader_threads, store.synchronous) == (0.0, 512, 4, "full")
    with pytest.raises(ValueError):
        create_store(reactor, {})
    with pytest.raises(ValueError):
        create_store(reactor, {"path": _path(tmp_path), "synchronous": "off"})
    with pytest.raises(ValueError):
        create_store(reactor, {"path": ":memory:"})


@pytest_twisted.ensureDeferred
async def test_appends_by_another_connection_are_seen(tmp_path):
    """The writer remembers last seqs; a commit from elsewhere (another process) must not
    make it hand out a seq twice."""
    store = await _open(tmp_path)
    try:
        assert (await store.append(new_message(1, 2, "a"))).message.seq == 1
        other = sqlite3.connect(_path(tmp_path), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO messages VALUES ('p:1:2', 2, 1, 2, 1, 'elsewhere', 1, x'00', ?, 0)", (T0,))
        other.execute("UPDATE conversations SET last_seq = 2 WHERE conv = 'p:1:2'")
        other.execute("COMMIT")
        other.close()
        replays = store.replays
        assert (await store.append(new_message(1, 2, "b"))).message.seq == 3
        assert store.replays == replays  # noticed up front, not by tripping over seq 2
        assert [m.client_msg_id for m in await store.history("p:1:2", 0, 10)] == ["a", "elsewhere", "b"]
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_refused_group_message_does_not_replay_its_batch(tmp_path):
    """A refusal is returned by the append, not raised: the other writes of its group-commit batch
    are not rolled back and replayed."""
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


# ---- a batch of 1:1 appends against the same appends one by one ---------------------------------


def _dump(path: str) -> dict[str, list[tuple]]:
    """Every row the 1:1 append path writes, in a stable order."""
    conn = sqlite3.connect(path)
    try:
        return {
            "messages": conn.execute("SELECT * FROM messages ORDER BY conv, seq").fetchall(),
            "conversations": conn.execute("SELECT * FROM conversations ORDER BY conv").fetchall(),
            "user_conversations": conn.execute("SELECT * FROM user_conversations ORDER BY user_id, conv").fetchall(),
        }
    finally:
        conn.close()


def _random_appends(rng, count: int, resends: float) -> list:
    """1:1 messages among five users, a share ``resends`` of them resent (same sender and
    client_msg_id), some with an empty client_msg_id, times going back and forth."""
    sent = []
    out = []
    for i in range(count):
        if sent and rng.random() < resends:
            out.append(rng.choice(sent))  # a resend, possibly of a message in the same batch
            continue
        sender = rng.randint(1, 5)
        to = rng.choice([u for u in range(1, 6) if u != sender])
        cmid = "" if rng.random() < 0.1 else f"m{i}"
        m = new_message(sender, to, cmid, at=T0 + rng.randint(-5, 5))
        out.append(m)
        if cmid:
            sent.append(m)
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest_twisted.ensureDeferred
async def test_a_batch_of_appends_writes_what_appends_one_by_one_write(tmp_path, seed):
    """A group commit of many 1:1 appends (with the writer's last_seq cache) must write exactly
    the rows, and give exactly the answers, of the same appends run one at a time: resends
    (of earlier batches and within the batch) and new conversations included."""
    import random

    rng = random.Random(seed)
    messages = _random_appends(rng, rng.randint(1, 80), 0.15 if seed % 3 == 0 else 0)
    (tmp_path / "one").mkdir()
    (tmp_path / "batch").mkdir()
    one = await _open(tmp_path / "one")
    batched = await _open(tmp_path / "batch", group_commit_ms=50)
    try:
        if rng.random() < 0.5:  # sometimes the conversations exist already
            for m in messages[:3]:
                await one.run_write("seed", sqlite_backend._append_txn, m)
                await batched.append(m)
        expected = []
        for m in messages:
            expected.append(await one.run_write("one", sqlite_backend._append_txn, m))
        commits = batched.commits
        got = await defer.gatherResults([batched.append(m) for m in messages])
        assert batched.commits - commits <= 2
        assert [(r.created, r.message) for r in got] == [(r.created, r.message) for r in expected]
    finally:
        await one.stop()
        await batched.stop()
    assert _dump(_path(tmp_path / "batch")) == _dump(_path(tmp_path / "one"))


@pytest_twisted.ensureDeferred
async def test_resends_in_a_batch_are_answered_with_the_stored_message(tmp_path):
    """A resend in a batch, of a message of an earlier batch or of the same one: answered with
    the stored message, no seq skipped, read positions as if it had not been sent."""
    store = await _open(tmp_path, group_commit_ms=50)
    try:
        first = await store.append(new_message(1, 2, "a"))
        ds = [
            store.append(new_message(1, 2, "b")),
            store.append(new_message(1, 2, "a")),  # a resend of an earlier batch's message
            store.append(new_message(2, 1, "c")),
            store.append(new_message(2, 1, "c")),  # a resend within this batch
            store.append(new_message(1, 3, "d")),
        ]
        b, a_again, c, c_again, d = await defer.gatherResults(ds)
        assert (a_again.created, a_again.message) == (False, first.message)
        assert (c_again.created, c_again.message) == (False, c.message)
        assert [b.message.seq, c.message.seq, d.message.seq] == [2, 3, 1]
        assert await store.latest_seq("p:1:2") == 3
        assert (await store.conversation_entry(2, "p:1:2")).read_seq == 3
        assert (await store.conversation_entry(1, "p:1:2")).read_seq == 2
        assert (await store.conversation_entry(3, "p:1:3")).read_seq == 0
        assert (await store.append(new_message(2, 1, "e"))).message.seq == 4
    finally:
        await store.stop()
