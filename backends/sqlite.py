"""SQLite storage backend: one writer thread with group commit, a pool of reader threads.

Why this shape: SQLite allows one writer at a time and a durable COMMIT costs an fsync, so
every write goes through ONE thread that gathers whatever was queued while it committed the
previous batch (plus an optional window, ``group_commit_ms``; at most ``max_batch``
operations), runs it all in one transaction,
commits once (``synchronous=FULL``, WAL), and only then fires the Deferreds of the whole batch,
in queue order, with a single ``reactor.callFromThread``.  A failing operation fails only its
own Deferred: the batch is then replayed with a SAVEPOINT per operation.  Reads run on a small
ThreadPool, each thread with its own read-only connection; WAL lets them read while the writer
writes, and the writer checkpoints the WAL between batches.  The reactor thread never touches
the database.

What is SQLite's own here: the connections and pragmas, the WAL checkpoints, and the append
hot path (three statements, and the writer remembers each conversation's last seq).  The rest
is shared: the writer/reader machinery (``backends/sql/threaded.py``), the queries of users,
messages and groups (``backends/sql/``, written once) and the migrations (``backends/sql/core.sql``).

One process writes a database: the writer remembers each conversation's last seq, and while it
notices commits made by other connections (``PRAGMA data_version``) and then forgets, several
serving processes on one file are not a supported setup.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from coffeechat import grouprules
from coffeechat.backends.sql.engine import SQLiteTransaction
from coffeechat.backends.sql.migrations import core_migrations, migrate_sqlite
from coffeechat.backends.sql.threaded import _RUNNING, NO_LOCKS, ThreadedSQLDatabase
from coffeechat.interfaces import IStore, StoreClosed
from coffeechat.model import AppendResult, Message, MsgType, SessionType
from coffeechat.sql import SQLMigration

__all__ = ["MIGRATIONS", "SQLiteStore", "StoreClosed", "append_txn", "create_store"]

#: The core's migrations (``backends/sql/core.sql``); ``schema_version`` records how many ran.
MIGRATIONS: list[SQLMigration] = core_migrations()

# --------------------------------------------------------------------------------------------
# The append hot path (SQLite's own SQL: module constants, found in the statement cache)
# --------------------------------------------------------------------------------------------

_MSG_COLS = "conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at, client_type"
SQL_FIND_RESEND = f"SELECT {_MSG_COLS} FROM messages WHERE sender_id = ? AND client_msg_id = ? AND client_msg_id <> ''"
SQL_LAST_SEQ = "SELECT last_seq FROM conversations WHERE conv = ?"
# DO NOTHING on the (sender_id, client_msg_id) index is the resend check: a plain SELECT first
# would cost a statement on every append for the rare resend.
SQL_INSERT_MESSAGE = f"INSERT INTO messages ({_MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
# The writer is the only writer and knows last_seq (its cache, else SQL_LAST_SEQ), so it
# writes the new value back: cheaper than UPDATE ... RETURNING (which costs as much again in
# CPython's sqlite3) and one statement fewer per append.  conversations.last_seq belongs to
# append: nothing else may change it.
SQL_SET_LAST_SEQ = "UPDATE conversations SET last_seq = ?, updated_at = max(updated_at, ?) WHERE conv = ?"
SQL_NEW_CONVERSATION = "INSERT INTO conversations (conv, session_type, last_seq, updated_at) VALUES (?, ?, ?, ?)"
# The recipient's VALUES row has read_seq 0, so on conflict the WHERE leaves its row alone
# (not even rewritten: one dirty page less per append).
SQL_UPSERT_PAIR = (
    "INSERT INTO user_conversations (user_id, conv, session_type, session_id, read_seq, delivered_seq) "
    "VALUES (?, ?, ?, ?, ?, 0), (?, ?, ?, ?, 0, 0) "
    "ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = excluded.read_seq "
    "WHERE excluded.read_seq > read_seq"
)
# Group appends: the sender is a member (checked first), so its row exists; nobody else's row
# is touched, whatever the size of the group.
SQL_GROUP_SENDER = (
    "SELECT m.role, g.mute_model FROM group_members AS m JOIN chat_groups AS g ON g.group_id = m.group_id "
    "WHERE m.group_id = ? AND m.user_id = ? AND g.dismissed = 0"
)
SQL_GROUP_STATE = "SELECT dismissed FROM chat_groups WHERE group_id = ?"
SQL_GROUP_SENDER_READ = "UPDATE user_conversations SET read_seq = ? WHERE user_id = ? AND conv = ? AND read_seq < ?"
SQL_MENTION = "UPDATE user_conversations SET mention_seq = ? WHERE user_id = ? AND conv = ?"
SQL_AT_ALL = "UPDATE chat_groups SET at_all_seq = ? WHERE group_id = ?"

#: No window by default: one writer commits whatever queued while it was committing the previous
#: batch, so under load batches are as large as without a window, and at a moderate rate a
#: message waits for no timer (2 ms here halved the median ack at 2,000 msgs/s: 1.9 -> 1.0 ms,
#: docs/performance.md "Issue 16").
DEFAULT_GROUP_COMMIT_MS = 0.0

_SINGLE = int(SessionType.SINGLE)
_NOTIFICATION = int(MsgType.NOTIFICATION)
_LAST_SEQS_MAX = 100_000  # conversations whose last_seq the writer remembers
_WAL_CHECKPOINT_AT = 16 * 1024 * 1024  # bytes of WAL after which the writer checkpoints


def append_txn(txn: SQLiteTransaction, m: Any, last_seqs: dict[str, int] | None = None) -> AppendResult | Exception:
    """The hot path: insert (or find the resend), bump the conversation, upsert read state;
    plus reading last_seq when ``last_seqs`` (the writer's cache) does not know it.  A group
    message's refusal is returned, not raised (see :func:`refusal`)."""
    cur = txn.cursor
    conv = m.conv
    st = m.session_type
    sender = m.sender_id
    to_id = m.to_id
    cmid = m.client_msg_id
    created_at = m.created_at
    if st != _SINGLE and m.msg_type != _NOTIFICATION:
        refused = _group_sender_refusal(cur, m)
        if refused is not None:
            old = cur.execute(SQL_FIND_RESEND, (sender, cmid)).fetchone() if cmid else None
            return refused if old is None else AppendResult(Message(*old), False)
    last = None if last_seqs is None else last_seqs.get(conv)
    if last is None:
        row = cur.execute(SQL_LAST_SEQ, (conv,)).fetchone()
        last = None if row is None else row[0]
    seq = 1 if last is None else last + 1
    inserted = cur.execute(
        SQL_INSERT_MESSAGE,
        (conv, seq, st, sender, to_id, cmid, m.msg_type, m.data, created_at, m.client_type),
    ).rowcount
    if not inserted:
        # Nothing was written: this is a resend of (sender, client_msg_id).
        old = cur.execute(SQL_FIND_RESEND, (sender, cmid)).fetchone()
        if old is None:
            raise RuntimeError(f"conversation {conv!r} has seq {seq} already: last_seq is behind")
        return AppendResult(Message(*old), False)
    if last is None:
        cur.execute(SQL_NEW_CONVERSATION, (conv, st, seq, created_at))
    else:
        cur.execute(SQL_SET_LAST_SEQ, (seq, created_at, conv))
    if st == _SINGLE:
        # Both sides in one statement: the sender's read position follows its own message,
        # the recipient's entry is created if missing and otherwise left alone.
        cur.execute(SQL_UPSERT_PAIR, (sender, conv, st, to_id, seq, to_id, conv, st, sender))
    else:
        # A group append is O(1) writes (plus one per mentioned member): member rows come from
        # group joins, only the sender's read position moves.
        cur.execute(SQL_GROUP_SENDER_READ, (seq, sender, conv, seq))
        if m.mentions:
            cur.executemany(SQL_MENTION, [(seq, uid, conv) for uid in m.mentions])
        if m.at_all:
            cur.execute(SQL_AT_ALL, (seq, to_id))
    if last_seqs is not None:
        last_seqs[conv] = seq  # last: only once every statement of the append succeeded
    return AppendResult(
        Message(conv, seq, st, sender, to_id, cmid, m.msg_type, m.data, created_at, m.client_type),
        True,
    )


def _group_sender_refusal(cur: sqlite3.Cursor, m: Any) -> Exception | None:
    """Why the sender of group message ``m`` may not send it (:mod:`coffeechat.grouprules`),
    or None.  Returned, not raised: a raise would roll back and replay the whole batch."""
    row = cur.execute(SQL_GROUP_SENDER, (m.to_id, m.sender_id)).fetchone()
    if row is None:
        state = cur.execute(SQL_GROUP_STATE, (m.to_id,)).fetchone()
        live = state is not None and not state[0]
        return grouprules.sender_refusal(m.to_id, m.sender_id, live=live, role=None, mute_model=0, at_all=m.at_all)
    return grouprules.sender_refusal(m.to_id, m.sender_id, live=True, role=row[0], mute_model=row[1], at_all=m.at_all)


def refusal(result: Any) -> Any:
    """Turn a refusal returned by :func:`append_txn` into the failure of the append."""
    if isinstance(result, Exception):
        raise result
    return result


def _append_txn(txn: SQLiteTransaction, m: Any, last_seqs: dict[str, int] | None = None) -> AppendResult:
    """``append_txn`` for ``run_write`` callers (tests, tools): a refusal is raised."""
    return refusal(append_txn(txn, m, last_seqs))


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------

# SQLite's result codes (and their extended forms, which start alike) meaning "not now".
_UNAVAILABLE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_BUSY", "SQLITE_LOCKED")


@implementer(IStore)
class SQLiteStore(ThreadedSQLDatabase):
    """IStore (and ISQLDatabase) on one SQLite file.

    Counters, so group commit can be observed: ``commits`` (write transactions, one per
    batch), ``ops_committed`` (the operations they carried), ``replays`` (batches re-run with
    savepoints because an operation failed) and ``checkpoints``."""

    engine = "sqlite"
    _kind = "sqlite"

    def __init__(
        self,
        reactor: Any,
        path: str,
        group_commit_ms: float = DEFAULT_GROUP_COMMIT_MS,
        max_batch: int = 512,
        reader_threads: int = 4,
        synchronous: str = "full",
    ) -> None:
        if str(path) in ("", ":memory:") or str(path).startswith("file::memory:"):
            raise ValueError("SQLiteStore needs a database file (WAL is shared between threads)")
        super().__init__(reactor, group_commit_ms, max_batch, reader_threads, synchronous)
        self.path = str(path)
        self._wal_path = self.path + "-wal"
        self.checkpoints = 0
        # conv -> last_seq as of the writer's open transaction, so an append need not read
        # it.  Writer thread only.  Emptied whenever a batch is rolled back (in whole or in
        # part), when another connection has committed (PRAGMA data_version), and when big.
        self._last_seqs: dict[str, int] = {}
        self._data_version = -1
        self._conn: sqlite3.Connection | None = None
        self._txn: SQLiteTransaction | None = None

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    def _thread_suffix(self) -> str:
        return f":{self.path}"

    def _core_migrations(self) -> list[SQLMigration]:
        return MIGRATIONS

    # ---- connections -------------------------------------------------------------------------

    def _connect(self, reader: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
        conn.execute("PRAGMA busy_timeout = 10000")
        if reader:
            conn.execute("PRAGMA query_only = ON")
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"could not switch {self.path} to WAL (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            conn.execute("PRAGMA cache_size = -32000")
            conn.execute("PRAGMA temp_store = MEMORY")
            # The writer checkpoints between batches (see _after_batch), not in a COMMIT.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_CHECKPOINT_AT}")
        return conn

    def _open_writer(self) -> None:
        self._conn = self._connect(reader=False)
        self._txn = SQLiteTransaction(self._conn.cursor())

    def _close_writer(self) -> None:
        conn, self._conn, self._txn = self._conn, None, None
        if conn is not None:
            try:
                conn.close()  # the last connection: checkpoints and removes the WAL
            except sqlite3.Error:
                pass

    def _writer_txn(self) -> SQLiteTransaction:
        return self._txn

    def _in_reader(self, fn: Callable[..., Any], args: tuple) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(reader=True)
            self._local.conn = conn
            with self._reader_conns_lock:
                self._reader_conns.append(conn)
        cur = conn.cursor()
        try:
            return fn(SQLiteTransaction(cur), *args)
        finally:
            cur.close()

    def _migrate_now(self, component: str, migrations: list[SQLMigration]) -> int:
        try:
            return migrate_sqlite(self._txn, component, migrations)
        finally:
            self._last_seqs.clear()

    # ---- the writer's batches ------------------------------------------------------------------

    def _begin(self, txn: SQLiteTransaction, batch: list) -> None:
        cur = txn.cursor
        cur.execute("BEGIN IMMEDIATE")
        version = cur.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version or len(self._last_seqs) > _LAST_SEQS_MAX:
            self._last_seqs.clear()  # someone else wrote (another process?): trust nothing cached
            self._data_version = version

    def _forget(self) -> None:
        self._last_seqs.clear()

    def _unavailable(self, e: BaseException, read: bool = False) -> str | None:
        """Disk full, a read-only file or file system, an I/O error, or the database locked by
        another process beyond busy_timeout: nothing the operation did wrong, and it may work later."""
        if not isinstance(e, sqlite3.OperationalError | sqlite3.DatabaseError):
            return None
        name = getattr(e, "sqlite_errorname", "") or ""
        if read and name.startswith("SQLITE_READONLY"):
            return None  # readers are read-only (query_only): a write there is a bug
        if name.startswith(_UNAVAILABLE) or "disk is full" in str(e) or "readonly" in str(e):
            return f"SQLite cannot write {self.path}: {e} ({name or type(e).__name__})"
        return None

    def _fatal(self, e: BaseException) -> bool:
        """Disk full or read-only fails the whole batch at once: every op would fail the same."""
        return self._unavailable(e) is not None

    def _abandon(self, e: BaseException) -> None:
        self._last_seqs.clear()
        conn = self._conn
        try:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _after_batch(self) -> None:
        try:
            wal_size = os.stat(self._wal_path).st_size
        except OSError:
            return
        if wal_size > _WAL_CHECKPOINT_AT:
            # Here rather than inside a COMMIT (autocheckpoint): the batch's Deferreds are on
            # their way already, so the copy delays no acknowledgement of it.  With no write in
            # between, a PASSIVE checkpoint catches up and the next transaction restarts the WAL
            # from its beginning (truncated to journal_size_limit).
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error:
                pass

    # ---- IMessageStore.append ------------------------------------------------------------------

    def append(self, message: Any) -> defer.Deferred:
        # run_write inlined: this is the hottest call of the server.
        if self._state != _RUNNING:
            return self._closed()
        d: defer.Deferred = defer.Deferred()
        self._put((append_txn, (message, self._last_seqs), d, NO_LOCKS, NO_LOCKS))
        if message.session_type != _SINGLE:
            d.addCallback(refusal)
        return d


def create_store(reactor: Any, options: dict) -> SQLiteStore:
    """The ``coffeechat.storage`` entry point: build an (unstarted) store from config options."""
    if "path" not in options:
        raise ValueError("the sqlite store needs a 'path' option")
    return SQLiteStore(
        reactor,
        path=options["path"],
        group_commit_ms=float(options.get("group_commit_ms", DEFAULT_GROUP_COMMIT_MS)),
        max_batch=int(options.get("max_batch", 512)),
        reader_threads=int(options.get("reader_threads", 4)),
        synchronous=str(options.get("synchronous", "full")),
    )
