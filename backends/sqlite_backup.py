"""SQLite's part of backups (coffeechat/ops/backup.py): an online copy through the backup API, its
check, the "is a server using it" probe, and putting a copy back.

Why a read transaction around the copy: ``sqlite3_backup_step`` restarts from the first page
whenever another connection commits between two steps, so under a steady stream of messages a
stepped backup may never end.  Holding a read transaction on the source connection pins one WAL
snapshot for every step: the copy is that snapshot exactly, it is taken in steps (a progress bar,
a cancel between steps), and in WAL mode a reader never holds up the writer (the WAL only grows
until the copy is done, as checkpoints cannot pass a reader's snapshot).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any

__all__ = ["check_copy", "copy_online", "is_live", "restore_copy", "schema_of"]

#: pages copied per step: 4 MiB with 4 KiB pages, a few milliseconds each
STEP_PAGES = 1024

Progress = Callable[[int, int], None]  # (pages done, pages in all); may raise to cancel


def schema_of(conn: sqlite3.Connection) -> dict[str, int]:
    """The schema versions a database holds: ``core`` and every feature component."""
    versions: dict[str, int] = {}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" in tables:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        versions["core"] = row[0] if row else 0
    if "schema_components" in tables:
        versions.update(conn.execute("SELECT component, version FROM schema_components ORDER BY component"))
    return versions


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("users", "messages") if t in tables}


def copy_online(source: str, target: str, progress: Progress | None = None) -> dict[str, Any]:
    """Copy the database at ``source`` (in use or not) to a new file ``target``: one consistent
    snapshot, in steps.  The copy is a self-contained file (rollback journal, not WAL).  Returns
    its schema versions, counts and page figures."""
    if not os.path.exists(source):
        raise FileNotFoundError(f"no database at {source}")
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists already")
    src = sqlite3.connect(source, isolation_level=None, check_same_thread=False)
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        src.execute("PRAGMA query_only = ON")
        src.execute("BEGIN")
        schema = schema_of(src)  # the first read opens the snapshot the backup then copies
        dst = sqlite3.connect(target, isolation_level=None)
        try:

            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            src.backup(dst, pages=STEP_PAGES, progress=step)
            src.execute("COMMIT")
            dst.execute("PRAGMA journal_mode = DELETE")
            page_size = dst.execute("PRAGMA page_size").fetchone()[0]
            pages = dst.execute("PRAGMA page_count").fetchone()[0]
            counts = _counts(dst)
        finally:
            dst.close()
    finally:
        src.close()
    with open(target, "rb+") as f:
        os.fsync(f.fileno())
    return {"schema": schema, "counts": counts, "page_size": page_size, "pages": pages}


def check_copy(path: str, quick: bool = False) -> tuple[list[str], dict[str, int]]:
    """Open a copy read-only and check it (``PRAGMA integrity_check``, or ``quick_check``):
    (the problems found, at most 20; its schema versions)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return [f"cannot open {path}: {e}"], {}
    try:
        rows = conn.execute(f"PRAGMA {'quick_check' if quick else 'integrity_check'}(20)").fetchall()
        problems = [r[0] for r in rows if r[0] != "ok"]
        return problems, schema_of(conn) if not problems else {}
    except sqlite3.DatabaseError as e:
        return [f"{path} is not a sound SQLite database: {e}"], {}
    finally:
        conn.close()


def is_live(path: str) -> bool:
    """Whether some connection (a running server, a ``coffeechat`` command) has the database
    open.  In WAL mode every open connection holds a shared lock on the file, so an exclusive
    lock is refused at once; nothing is written."""
    if not os.path.exists(path):
        return False
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return True
        raise
    finally:
        conn.close()


def restore_copy(copy: str, target: str, live: bool = False, progress: Progress | None = None) -> None:
    """Put the database ``copy`` at ``target``.

    Not ``live``: written beside the target, fsynced, and renamed over it (the old file's WAL
    removed first, as SQLite would otherwise replay it onto the new file).  ``live`` (forced over
    a database in use): through the backup API into the target itself, one transaction under
    SQLite's locks, so its users see the old database or the new one, never a torn file."""

    def step(status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        if live:
            dst = sqlite3.connect(target, isolation_level=None, timeout=30)
            try:
                src.backup(dst, pages=-1, progress=step)
            finally:
                dst.close()
            return
        folder = os.path.dirname(os.path.abspath(target))
        os.makedirs(folder, exist_ok=True)
        temporary = target + ".restoring"
        for leftover in (temporary, temporary + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        dst = sqlite3.connect(temporary, isolation_level=None)
        try:
            src.backup(dst, pages=STEP_PAGES, progress=step)
        finally:
            dst.close()
    finally:
        src.close()
    with open(temporary, "rb+") as f:
        os.fsync(f.fileno())
    for stale in (target + "-wal", target + "-shm", target + "-journal"):
        if os.path.exists(stale):
            os.unlink(stale)
    os.replace(temporary, target)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
