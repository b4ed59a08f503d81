"""PostgreSQL's part of backups (coffeechat/ops/backup.py): ``pg_dump --format=custom`` of the
database the node uses, its check with ``pg_restore --list``, and ``pg_restore`` into a database.

The dump is taken from a snapshot exported by a connection of ours (``pg_export_snapshot``), in
which the schema versions written to the manifest are read too: manifest and dump describe the
same moment.  pg_dump must be at least the server's version (Debian's ``pg_dump`` wrapper picks
the newest installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import psycopg

__all__ = ["check_dump", "database_state", "dump", "restore_dump", "tool"]


class ToolMissing(RuntimeError):
    """pg_dump or pg_restore is not installed (or not where the config says)."""


def tool(name: str) -> str:
    """The path of ``name`` (a command on the PATH, or a path), or ToolMissing."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} not found")
    return found


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{what} failed ({done.returncode}): {tail}")
    return done.stdout


def _schema(conn: psycopg.Connection) -> dict[str, int]:
    versions: dict[str, int] = {}
    tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    if "schema_version" in tables:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        versions["core"] = row[0] if row else 0
    if "schema_components" in tables:
        versions.update(conn.execute("SELECT component, version FROM schema_components ORDER BY component").fetchall())
    return versions


def dump(dsn: str, target: str, pg_dump: str = "pg_dump") -> dict[str, Any]:
    """``pg_dump --format=custom`` of ``dsn`` into ``target``; returns the schema versions and
    counts read in the dump's own snapshot."""
    command = tool(pg_dump)
    with psycopg.connect(dsn) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        schema = _schema(conn)
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("users", "messages") if t in tables
        }
        _run(
            [command, "--format=custom", f"--snapshot={snapshot}", f"--file={target}", f"--dbname={dsn}"],
            "pg_dump",
        )
        conn.execute("COMMIT")
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    return {"schema": schema, "counts": counts}


def check_dump(path: str, pg_restore: str = "pg_restore") -> list[str]:
    """The problems ``pg_restore --list`` finds reading the archive (none: it lists its table of
    contents, so the archive is whole and readable)."""
    try:
        listing = _run([tool(pg_restore), "--list", path], "pg_restore --list")
    except RuntimeError as e:
        return [str(e)]
    if "TABLE DATA" not in listing:
        return [f"{path} holds no table data"]
    return []


def database_state(dsn: str) -> tuple[int, int]:
    """(tables in the database's schema, other sessions connected to the database)."""
    with psycopg.connect(dsn) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()[0]
        sessions = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    return tables, sessions


def restore_dump(path: str, dsn: str, pg_restore: str = "pg_restore", clean: bool = False) -> None:
    """``pg_restore`` the archive into ``dsn`` in one transaction (all or nothing); ``clean``
    drops what the archive holds first."""
    command = [tool(pg_restore), "--no-owner", "--exit-on-error", "--single-transaction", f"--dbname={dsn}"]
    if clean:
        command += ["--clean", "--if-exists"]
    _run([*command, path], "pg_restore")
