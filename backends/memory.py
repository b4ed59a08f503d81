"""The in-memory storage backend: SQLite in memory, on the calling thread.  Nothing survives a
restart.  For tests and demos only: it runs SQL on the reactor thread.

It is the SQLite backend without threads: the same domain stores (``backends/sql/``), the same
append (``backends/sqlite.py``) and the same migrations, on one ``sqlite3`` ``:memory:``
connection.  Every call runs at once, each write in its own transaction (rolled back if it
raises), and returns an already-fired Deferred: the deterministic test harness
(``tests/memory_node.py``) drives the whole core on a memory reactor and relies on that.  One
store may be shared by several cores (a cluster in one process) and started and stopped again;
it keeps its data until it is garbage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.backends import sqlite as sqlite_backend
from coffeechat.backends.sql.engine import SQLiteTransaction
from coffeechat.backends.sql.migrations import CORE, migrate_sqlite
from coffeechat.backends.sql.store import SQLStore
from coffeechat.interfaces import ISQLDatabase, IStore, StoreClosed
from coffeechat.sql import SQLMigration

__all__ = ["MemoryStore", "create_store"]


@implementer(IStore, ISQLDatabase)
class MemoryStore(SQLStore):
    """IStore (and ISQLDatabase) on an in-memory SQLite database; every method returns an
    already-fired Deferred."""

    engine = "sqlite"

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False, cached_statements=256)
        self._txn = SQLiteTransaction(self._conn.cursor())
        # Like the writer's cache in the SQLite backend; emptied whenever a write is rolled back.
        self._last_seqs: dict[str, int] = {}
        self._stopped = False
        self.schema_version = self._migrate_now(CORE, sqlite_backend.MIGRATIONS)

    def __repr__(self) -> str:
        return f"<MemoryStore at {id(self):#x}>"

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> defer.Deferred:
        self._stopped = False
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        self._stopped = True
        return defer.succeed(None)

    def _closed(self) -> defer.Deferred:
        return defer.fail(StoreClosed(f"{self!r} is stopped"))

    def _shortcut(self, value: Any) -> defer.Deferred:
        return self._closed() if self._stopped else defer.succeed(value)

    # ---- ISQLDatabase ------------------------------------------------------------------------

    def run_read(self, description: str, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run ``fn(txn, *args)`` now (autocommit) and return the fired Deferred."""
        if self._stopped:
            return self._closed()
        try:
            return defer.succeed(fn(self._txn, *args))
        except Exception:
            failure = defer.fail()
            if self._conn.in_transaction:  # a read that opened a snapshot (BEGIN) and failed
                self._txn.cursor.execute("ROLLBACK")
            return failure

    def run_write(
        self,
        description: str,
        fn: Callable[..., Any],
        *args: Any,
        locks: Iterable[str] = (),
        user_locks: Iterable[int] = (),
    ) -> defer.Deferred:
        """Run ``fn(txn, *args)`` now in a transaction of its own: committed before this
        returns, or rolled back (and the Deferred failed) if it raises.  There is one writer:
        ``locks`` need nothing."""
        if self._stopped:
            return self._closed()
        execute = self._txn.cursor.execute
        execute("BEGIN")
        try:
            result = fn(self._txn, *args)
        except Exception:
            execute("ROLLBACK")
            self._last_seqs.clear()
            return defer.fail()
        execute("COMMIT")
        return defer.succeed(result)

    def migrate(self, component: str, migrations: Iterable[SQLMigration]) -> defer.Deferred:
        """Apply ``component``'s pending migrations now, each in its own transaction."""
        if component == CORE:
            return defer.fail(ValueError(f"{CORE!r} is the core's component"))
        if self._stopped:
            return self._closed()
        try:
            return defer.succeed(self._migrate_now(str(component), list(migrations)))
        except Exception:
            return defer.fail()

    def _migrate_now(self, component: str, migrations: list[SQLMigration]) -> int:
        try:
            return migrate_sqlite(self._txn, component, migrations)
        finally:
            self._last_seqs.clear()

    # ---- IMessageStore.append ------------------------------------------------------------------

    def append(self, message: Any) -> defer.Deferred:
        d = self.run_write("append", sqlite_backend.append_txn, message, self._last_seqs)
        if message.session_type != sqlite_backend.SessionType.SINGLE:
            d.addCallback(sqlite_backend.refusal)
        return d

    # ---- for tests that look inside -------------------------------------------------------------

    @property
    def _tokens(self) -> dict[str, list]:
        """``{token hash: [user_id, expires_at, revoked]}``, as the dict-based store had them
        (tests/test_session.py looks at them)."""
        rows = self._txn.cursor.execute("SELECT token_hash, user_id, expires_at, revoked FROM tokens").fetchall()
        return {r[0]: [r[1], r[2], bool(r[3])] for r in rows}


def create_store(reactor: Any, options: dict) -> MemoryStore:
    """Entry point for ``storage.backend = "memory"``."""
    return MemoryStore()
