"""PostgreSQL storage backend: several nodes on one database, group commit per node.

Why this shape: a node's reactor never waits on the database, so every call runs on a thread
with a psycopg 3 (synchronous) connection.  Writes go through ONE writer thread per store that
gathers whatever was queued during ``group_commit_ms`` (at most ``max_batch`` operations),
runs it in one transaction and fires all of its Deferreds, in queue order, with one
``reactor.callFromThread`` after the COMMIT: one WAL flush per batch instead of one per message,
and a node's own writes keep their order.  Reads run on a small ThreadPool, each thread with
its own autocommit connection.  That machinery, the queries of users, messages and groups and
the migrations are shared with SQLite (``backends/sql/``); what is PostgreSQL's own is here.

Unlike SQLite, other nodes write the same tables at the same time, so nothing is cached across
transactions and every guarantee comes from PostgreSQL's locks:

* **Dense seqs**: an append first locks its conversation row (``SELECT ... FOR UPDATE``; a first
  message inserts it with ``ON CONFLICT DO NOTHING`` and then locks it), then takes
  ``last_seq + 1``.  Any other transaction appending to that conversation, on any node, waits
  for the COMMIT or ROLLBACK of this one, so seqs have no gaps and no duplicates.
* **Idempotent resends**: the message is inserted with ``ON CONFLICT DO NOTHING``; the unique
  index on ``(sender_id, client_msg_id)`` makes an insert racing an uncommitted duplicate from
  another node wait for it, and then return the stored message.
* **Group checks**: a group's membership, roles and mute are read after the conversation lock,
  and every group write (kick, mute, role change, join, dismissal) takes the same lock first,
  so a message racing a kick is decided by who locked first, exactly.
* **No deadlocks between batches**: a batch locks all the conversation rows (then the users,
  for group-count limits) that its operations declare (``run_write(..., locks=...)``), in sorted
  order, before running them.  A deadlock or serialization failure that happens anyway rolls the
  batch back and runs it again.

Round trips and statements are what a batch costs: a run of 1:1 appends in a batch is ONE
set-based statement (``SQL_APPEND_SINGLES``); any other append is one call of the
``coffeechat_append`` PL/pgSQL function (the whole append in one round trip; core migration 2),
and a run of them goes in one pipeline.  A failing operation fails only its own Deferred: the
batch is then rolled back and replayed with a SAVEPOINT per operation (and one function call per
append).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from twisted.internet import defer
from zope.interface import implementer

from coffeechat import grouprules
from coffeechat.backends.sql.engine import MIGRATION_LOCK, USER_LOCK_BASE, PostgresTransaction
from coffeechat.backends.sql.migrations import apply_migrations, core_migrations
from coffeechat.backends.sql.threaded import _RUNNING, NO_LOCKS, ThreadedSQLDatabase
from coffeechat.interfaces import IStore, StoreClosed
from coffeechat.model import AppendResult, Message, MsgType, SessionType
from coffeechat.sql import SQLMigration

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "PostgresStore", "StoreClosed", "append_txn", "create_store"]

#: The core's migrations (``backends/sql/core.sql``); ``schema_version`` records how many ran.
MIGRATIONS: list[SQLMigration] = core_migrations()

# --------------------------------------------------------------------------------------------
# The append hot path
# --------------------------------------------------------------------------------------------

SQL_APPEND = (
    "SELECT * FROM coffeechat_append(%s::text, %s::smallint, %s::bigint, %s::bigint, %s::text, %s::smallint, "
    "%s::bytea, %s::bigint, %s::smallint, %s::boolean, %s::bigint[], %s::boolean)"
)
# A run of 1:1 appends of one batch in ONE statement (set-based: PL/pgSQL costs ~25 us per
# statement it runs, which is most of an append).  Only ever run after the batch has locked
# (and created) every conversation it names, so this statement's snapshot is newer than every
# commit to them: ``old`` finds every earlier copy of a resend in those conversations, and
# ``last_seq`` is the latest.  Within the run, the first copy of a (sender, client_msg_id) is
# stored and later ones answer with it; new messages are numbered in queue order per
# conversation.  ``stored`` < ``fresh`` means an insert met a duplicate committed meanwhile
# elsewhere (another node, another conversation): the caller then replays the batch one
# append at a time (``coffeechat_append`` handles that case), so no seq is lost.
SQL_APPEND_SINGLES = """
WITH input AS (
    SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::smallint[], %s::bytea[],
                         %s::bigint[], %s::smallint[])
        WITH ORDINALITY AS t(conv, sender_id, to_id, client_msg_id, msg_type, data, created_at, client_type, i)
), old AS (
    SELECT t.i, m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.msg_type, m.data, m.created_at,
           m.client_type
      FROM input AS t JOIN messages AS m ON m.sender_id = t.sender_id AND m.client_msg_id = t.client_msg_id
     WHERE t.client_msg_id <> '' AND m.client_msg_id <> ''  -- (the index is partial)
), first_of AS (
    SELECT t.i, CASE WHEN t.client_msg_id = '' THEN t.i
                     ELSE min(t.i) OVER (PARTITION BY t.sender_id, t.client_msg_id) END AS f
      FROM input AS t
), fresh AS (
    SELECT t.*, c.last_seq + row_number() OVER (PARTITION BY t.conv ORDER BY t.i) AS seq
      FROM input AS t JOIN first_of AS f ON f.i = t.i AND f.f = t.i JOIN conversations AS c ON c.conv = t.conv
     WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.i = t.i)
), ins AS (
    INSERT INTO messages (conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at,
                          client_type)
    SELECT conv, seq, 1, sender_id, to_id, client_msg_id, msg_type, data, created_at, client_type FROM fresh
    ON CONFLICT DO NOTHING RETURNING 1
), bump AS (
    UPDATE conversations AS c SET last_seq = n.last_seq, updated_at = greatest(c.updated_at, n.updated_at)
      FROM (SELECT conv, max(seq) AS last_seq, max(created_at) AS updated_at FROM fresh GROUP BY conv) AS n
     WHERE c.conv = n.conv
), reads AS (
    INSERT INTO user_conversations AS uc (user_id, conv, session_type, session_id, read_seq)
    SELECT user_id, conv, 1, max(session_id), max(read_seq) FROM (
        SELECT sender_id AS user_id, conv, to_id AS session_id, seq AS read_seq FROM fresh
        UNION ALL SELECT to_id, conv, sender_id, 0 FROM fresh
    ) AS x GROUP BY user_id, conv
    ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = excluded.read_seq WHERE excluded.read_seq > uc.read_seq
)
SELECT f.f, n.seq, o.conv, o.seq, o.session_type, o.sender_id, o.to_id, o.msg_type, o.data, o.created_at,
       o.client_type, (SELECT count(*) FROM ins), (SELECT count(*) FROM fresh)
  FROM first_of AS f LEFT JOIN fresh AS n ON n.i = f.f LEFT JOIN old AS o ON o.i = f.i
 ORDER BY f.i
"""
# Sorted, so that two batches never wait for each other's locks in a circle.
SQL_CREATE_CONVS = (
    "INSERT INTO conversations (conv, session_type, last_seq, updated_at) "
    "SELECT c, 1, 0, 0 FROM unnest(%s::text[]) AS c ORDER BY c ON CONFLICT (conv) DO NOTHING"
)
SQL_LOCK_CONVS = "SELECT 1 FROM conversations WHERE conv = ANY(%s::text[]) ORDER BY conv FOR UPDATE"
SQL_LOCK_USERS = "SELECT pg_advisory_xact_lock(%s + u) FROM (SELECT DISTINCT unnest(%s::bigint[]) AS u ORDER BY u) AS t"

_SINGLE = int(SessionType.SINGLE)
_NOTIFICATION = int(MsgType.NOTIFICATION)
_MAX_TRIES = 8  # runs of one batch that hit a deadlock or serialization failure before it fails


def _append_params(m: Any) -> tuple:
    st = int(m.session_type)
    check = st != _SINGLE and int(m.msg_type) != _NOTIFICATION
    return (
        m.conv,
        st,
        m.sender_id,
        m.to_id,
        m.client_msg_id,
        int(m.msg_type),
        bytes(m.data),
        m.created_at,
        int(m.client_type),
        check,
        list(m.mentions) if st != _SINGLE else [],
        bool(m.at_all) and st != _SINGLE,
    )


def _append_result(m: Any, row: tuple) -> AppendResult | Exception:
    """The function's row as an AppendResult, or the refusal (returned: see :func:`refusal`)."""
    status = row[0]
    if status == 0:
        return AppendResult(
            Message(
                m.conv,
                row[1],
                int(m.session_type),
                m.sender_id,
                m.to_id,
                m.client_msg_id,
                int(m.msg_type),
                bytes(m.data),
                m.created_at,
                int(m.client_type),
            ),
            True,
        )
    if status == 1:
        return AppendResult(
            Message(row[2], row[1], row[3], row[4], row[5], m.client_msg_id, row[6], bytes(row[7]), row[8], row[9]),
            False,
        )
    return _REFUSALS[status](m)


# coffeechat_append's refusal statuses, as coffeechat.grouprules words them.
_REFUSALS = {
    2: lambda m: grouprules.not_found(m.to_id),
    3: lambda m: grouprules.not_member(m.to_id, m.sender_id),
    4: lambda m: grouprules.muted(m.to_id),
    5: lambda m: grouprules.at_all_forbidden(m.to_id),
}


def append_txn(txn: PostgresTransaction, m: Any) -> AppendResult | Exception:
    """One append: one round trip to ``coffeechat_append``; a refusal is returned."""
    return _append_result(m, txn.cursor.execute(SQL_APPEND, _append_params(m)).fetchone())


def _append_txn(txn: PostgresTransaction, m: Any) -> AppendResult:
    """``append_txn`` for ``run_write`` callers (tests, tools): a refusal is raised."""
    return refusal(append_txn(txn, m))


def _append_singles(cur: psycopg.Cursor, msgs: list) -> list[AppendResult]:
    """A run of 1:1 appends in one statement (``SQL_APPEND_SINGLES``); same results as one
    ``append_txn`` after the other.  Raises if the run must be replayed one by one."""
    columns: list[list] = [[], [], [], [], [], [], [], []]
    conv, sender, to, cmid, msg_type, data, created, client_type = columns
    for m in msgs:
        conv.append(m.conv)
        sender.append(m.sender_id)
        to.append(m.to_id)
        cmid.append(m.client_msg_id)
        msg_type.append(int(m.msg_type))
        data.append(bytes(m.data))
        created.append(m.created_at)
        client_type.append(int(m.client_type))
    rows = cur.execute(SQL_APPEND_SINGLES, columns).fetchall()
    if rows and rows[0][11] != rows[0][12]:
        raise _ConcurrentDuplicate(f"{rows[0][12] - rows[0][11]} resends raced a copy stored elsewhere")
    results = []
    for k, r in enumerate(rows):
        m = msgs[k]
        if r[2] is not None:  # stored before this run
            results.append(
                AppendResult(
                    Message(r[2], r[3], r[4], r[5], r[6], m.client_msg_id, r[7], bytes(r[8]), r[9], r[10]), False
                )
            )
            continue
        first = msgs[r[0] - 1]  # this message, or its first copy in the run
        stored = Message(
            first.conv,
            r[1],
            _SINGLE,
            first.sender_id,
            first.to_id,
            first.client_msg_id,
            int(first.msg_type),
            bytes(first.data),
            first.created_at,
            int(first.client_type),
        )
        results.append(AppendResult(stored, first is m))
    return results


class _ConcurrentDuplicate(Exception):
    """A set-based run of appends met a duplicate committed elsewhere meanwhile."""


def refusal(result: Any) -> Any:
    """Turn a refusal returned by :func:`append_txn` into the failure of the append."""
    if isinstance(result, Exception):
        raise result
    return result


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


def _retryable(e: BaseException) -> bool:
    """Errors that abort the whole transaction through no fault of the operation."""
    sqlstate = getattr(e, "sqlstate", None)
    return sqlstate is not None and sqlstate.startswith("40")


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and repr."""
    try:
        params = pg_conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    params.pop("password", None)
    return pg_conninfo.make_conninfo(**params) or "<libpq defaults>"


@implementer(IStore)
class PostgresStore(ThreadedSQLDatabase):
    """IStore (and ISQLDatabase) on a PostgreSQL database that several nodes may share.

    Counters, so group commit can be observed: ``commits`` (write transactions, one per
    batch), ``ops_committed`` (the operations they carried), ``replays`` (batches re-run with
    savepoints because an operation failed) and ``retries`` (batches re-run after a deadlock
    or serialization failure)."""

    engine = "postgres"
    _kind = "postgres"

    def __init__(
        self,
        reactor: Any,
        dsn: str = "",
        group_commit_ms: float = 2,
        max_batch: int = 512,
        reader_threads: int = 4,
        synchronous: str = "full",
        connect_timeout: int = 10,
    ) -> None:
        super().__init__(reactor, group_commit_ms, max_batch, reader_threads, synchronous)
        pg_conninfo.conninfo_to_dict(dsn)  # a malformed DSN fails here, not in a thread later
        self.dsn = dsn
        self.connect_timeout = int(connect_timeout)
        self.retries = 0
        self._writer_conn: psycopg.Connection | None = None

    def __repr__(self) -> str:
        return f"<PostgresStore {_safe_dsn(self.dsn)!r}>"

    def _core_migrations(self) -> list[SQLMigration]:
        return MIGRATIONS

    # ---- connections -------------------------------------------------------------------------

    def _connect(self, role: str) -> psycopg.Connection:
        """An autocommit connection (transactions are explicit BEGIN/COMMIT)."""
        conn = psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=self.connect_timeout, application_name=f"coffeechat-{role}"
        )
        try:
            # Every statement here finds rows by key.  psycopg prepares a statement after a few
            # runs and PostgreSQL then caches one generic plan per connection; planned while the
            # tables were small (a new database), that plan reads whole tables, and it would stay
            # as they grow.  With sequential scans priced out, plans use the indexes at any size.
            conn.execute("SET enable_seqscan = off")
            if role == "writer":
                # "normal": COMMIT returns before the WAL is flushed (a crash of the database
                # server may lose the last moments of acknowledged writes, never corrupts).
                conn.execute("SET synchronous_commit = " + ("on" if self.synchronous == "full" else "off"))
            else:
                conn.execute("SET default_transaction_read_only = on")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_writer(self) -> None:
        self._writer_conn = self._connect("writer")

    def _close_writer(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            conn.close()

    def _writer_txn(self) -> PostgresTransaction:
        conn = self._writer_conn
        if conn is None or conn.closed:
            self._writer_conn = conn = self._connect("writer")
        return PostgresTransaction(conn.cursor())

    def _reader_conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect("reader")
            self._local.conn = conn
            with self._reader_conns_lock:
                self._reader_conns.append(conn)
        return conn

    def _in_reader(self, fn: Callable[..., Any], args: tuple) -> Any:
        conn = self._reader_conn()
        try:
            with conn.cursor() as cur:
                return fn(PostgresTransaction(cur), *args)
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            # The server went away (restart, failover): a read is safe to try once more.
            conn.close()
            with self._reader_conns_lock:
                if conn in self._reader_conns:
                    self._reader_conns.remove(conn)
            with self._reader_conn().cursor() as cur:
                return fn(PostgresTransaction(cur), *args)

    def _migrate_now(self, component: str, migrations: list[SQLMigration]) -> int:
        """Each step in its own transaction under the migration advisory lock: nodes starting
        together take turns, and whoever comes second finds the work done."""
        txn = self._writer_txn()
        execute = txn.cursor.execute

        def begin() -> None:
            execute("BEGIN")
            execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

        return apply_migrations(txn, component, migrations, begin, execute)

    # ---- the writer's batches ------------------------------------------------------------------

    def _begin(self, txn: PostgresTransaction, batch: list) -> None:
        """BEGIN, then lock every conversation (then user) the batch declares, in sorted order."""
        cur = txn.cursor
        cur.execute("BEGIN")
        convs: set[str] = set()
        users: set[int] = set()
        new_single: set[str] = set()
        for op in batch:
            if op[3]:
                convs.update(op[3])
                if op[0] is append_txn and op[1][0].session_type == _SINGLE:
                    new_single.add(op[1][0].conv)
            if op[4]:
                users.update(op[4])
        if new_single:
            # Two nodes creating the same new conversations would otherwise wait for each
            # other's uncommitted inserts in whatever order their messages came.
            cur.execute(SQL_CREATE_CONVS, (sorted(new_single),))
        if convs:
            cur.execute(SQL_LOCK_CONVS, (sorted(convs),))
        if users:
            cur.execute(SQL_LOCK_USERS, (USER_LOCK_BASE, sorted(users)))

    def _fatal(self, e: BaseException) -> bool:
        conn = self._writer_conn
        return _retryable(e) or conn is None or conn.broken or self._unavailable(e) is not None

    def _abandon(self, e: BaseException) -> None:
        conn = self._writer_conn
        if conn is None or conn.closed:
            return
        if conn.broken:
            conn.close()
            self._writer_conn = None
            return
        try:
            conn.rollback()
        except psycopg.Error:
            conn.close()
            self._writer_conn = None

    def _unavailable(self, e: BaseException, read: bool = False) -> str | None:
        """The server is down or restarting, or the connection to it broke (the next batch
        connects again); disk full and read-only (a standby) too."""
        sqlstate = getattr(e, "sqlstate", None) or ""
        # connection, insufficient resources (disk full), operator intervention (shutdown), read-only
        if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError) or (
            sqlstate[:2] in ("08", "53", "57") or (sqlstate == "25006" and not read)
        ):
            text = str(e).strip()
            return f"PostgreSQL is unavailable: {text.splitlines()[0] if text else type(e).__name__}"
        return None

    def _retry(self, e: BaseException, attempt: int) -> bool:
        if _retryable(e) and attempt + 1 < _MAX_TRIES:
            self.retries += 1
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            return True
        return False

    def _run_plain(self, txn: PostgresTransaction, batch: list) -> list:
        """Every op in turn, without savepoints; a run of 1:1 appends is one statement, a run
        of group appends one pipeline."""
        cur = txn.cursor
        results = []
        record = results.append
        i, n = 0, len(batch)
        while i < n:
            fn, args, d = batch[i][:3]
            if fn is append_txn:
                single = args[0].session_type == _SINGLE
                j = i + 1
                while j < n and batch[j][0] is append_txn and (batch[j][1][0].session_type == _SINGLE) == single:
                    j += 1
                if j - i > 1:
                    msgs = [batch[k][1][0] for k in range(i, j)]
                    if single:
                        for k, result in enumerate(_append_singles(cur, msgs)):
                            record((batch[i + k][2], True, result))
                    else:  # group messages: one function call each, all in one pipeline
                        cur.executemany(SQL_APPEND, [_append_params(m) for m in msgs], returning=True)
                        for k, m in enumerate(msgs):
                            if k:
                                cur.nextset()
                            record((batch[i + k][2], True, _append_result(m, cur.fetchone())))
                    i = j
                    continue
            record((d, True, fn(txn, *args)))
            i += 1
        return results

    # ---- IMessageStore.append ------------------------------------------------------------------

    def append(self, message: Any) -> defer.Deferred:
        if self._state != _RUNNING:
            return self._closed()
        d: defer.Deferred = defer.Deferred()
        self._put((append_txn, (message,), d, (message.conv,), NO_LOCKS))
        if message.session_type != _SINGLE:
            d.addCallback(refusal)
        return d


def create_store(reactor: Any, options: dict) -> PostgresStore:
    """The ``coffeechat.storage`` entry point: build an (unstarted) store from config options.

    ``dsn`` is a libpq connection string or URI; empty means libpq's defaults and ``PG*``
    environment variables."""
    return PostgresStore(
        reactor,
        dsn=str(options.get("dsn", "")),
        group_commit_ms=float(options.get("group_commit_ms", 2)),
        max_batch=int(options.get("max_batch", 512)),
        reader_threads=int(options.get("reader_threads", 4)),
        synchronous=str(options.get("synchronous", "full")),
    )
