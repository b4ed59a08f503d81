"""Running migrations (``coffeechat.sql`` files) on a database, per component.

The core's version stays where it always was, in the one-row ``schema_version`` table; every
other component (a feature module's tables) has a row in ``schema_components``, created the first
time such a component migrates.  Each pending step runs in its own transaction together with its
version bump, so a failing step leaves nothing behind.  The engines differ only in how that
transaction starts (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``BEGIN`` and the migration advisory
lock, so nodes starting together take turns and the later ones find the work done) and in how a
step's statements are sent (SQLite runs them one by one: ``executescript`` would commit).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coffeechat.sql import SQLMigration, load_migrations

__all__ = ["CORE", "SchemaTooNew", "apply_migrations", "core_migrations", "migrate_sqlite", "sqlite_statements"]

CORE = "core"
_CORE_FILE = Path(__file__).with_name("core.sql")
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


class SchemaTooNew(RuntimeError):
    """The database holds a newer version of a component than this code knows: refuse it
    rather than run old code on a schema it does not understand."""


def core_migrations() -> list[SQLMigration]:
    """The core's migrations (``backends/sql/core.sql``)."""
    return load_migrations(_CORE_FILE)


@functools.lru_cache(maxsize=256)
def sqlite_statements(script: str) -> tuple[str, ...]:
    """Split a script into statements, safely: ``sqlite3.complete_statement`` knows strings,
    comments and trigger bodies, so a ``;`` inside them does not end a statement.  Cached: every
    in-memory store runs the core's scripts."""
    statements = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _COMMENT.sub("", pending).strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if _COMMENT.sub("", pending).strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:80]!r}")
    return tuple(statements)


def _read_version(txn: Any, component: str) -> int:
    if component == CORE:
        txn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = txn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            txn.execute("INSERT INTO schema_version (version) VALUES (0)")
            return 0
        return row[0]
    txn.execute("CREATE TABLE IF NOT EXISTS schema_components (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    row = txn.execute("SELECT version FROM schema_components WHERE component = ?", (component,)).fetchone()
    return 0 if row is None else row[0]


def _write_version(txn: Any, component: str, version: int) -> None:
    if component == CORE:
        txn.execute("UPDATE schema_version SET version = ?", (version,))
    else:
        txn.execute(
            "INSERT INTO schema_components (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (component, version),
        )


def apply_migrations(
    txn: Any,
    component: str,
    migrations: Sequence[SQLMigration],
    begin: Callable[[], None],
    run_script: Callable[[str], None],
) -> int:
    """Bring ``component`` up to the last of ``migrations``; return that version.

    ``begin()`` opens a transaction (the engine's way); this commits or rolls it back.  The
    version is read again in every transaction, so that a second node arriving meanwhile (or a
    second process on the same file) finds the work done instead of doing it twice."""
    migrations = list(migrations)
    for expected, migration in enumerate(migrations, 1):
        if migration.version != expected:
            raise ValueError(f"{component}: migrations must be numbered from 1 without gaps (got {migration.version})")
    known = len(migrations)
    while True:
        begin()
        try:
            version = _read_version(txn, component)
            if version > known:
                raise SchemaTooNew(
                    f"database schema version {version} of {component!r} is newer than this code knows ({known})"
                )
            if version == known:
                txn.execute("COMMIT")
                return version
            run_script(migrations[version].sql_for(txn.engine))
            _write_version(txn, component, version + 1)
            txn.execute("COMMIT")
        except BaseException:
            try:
                txn.execute("ROLLBACK")
            except Exception:  # the connection is gone, or no transaction is open: nothing to undo
                pass
            raise


def migrate_sqlite(txn: Any, component: str, migrations: Sequence[SQLMigration]) -> int:
    """:func:`apply_migrations` on a SQLite connection: ``BEGIN IMMEDIATE`` (another process
    on the file waits), and a step's statements one by one."""
    execute = txn.cursor.execute

    def run_script(script: str) -> None:
        for statement in sqlite_statements(script):
            execute(statement)

    return apply_migrations(txn, component, migrations, lambda: execute("BEGIN IMMEDIATE"), run_script)
