"""Backups without a server: rotation, the schedule on a memory clock (real SQLite files, real
copies), verification catching a flipped byte, and the ``coffeechat backup``/``restore`` command
as a subprocess."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import sqlite3
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime
from pathlib import Path

import pytest
from twisted.internet import defer

from coffeechat.config import load_config
from coffeechat.ops import backup as ops
from tests.logcapture import logged_failures
from tests.memory_node import MemoryNode

REPO = Path(__file__).resolve().parent.parent
MAIN = "from coffeechat.admin import main; raise SystemExit(main())"
FEATURES = ["accounts", "messages", "files", "backups"]


def unix(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def make_database(path: Path, rows: int = 50) -> None:
    """A WAL database shaped like the node's (a schema version and a messages table)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (3)")
    conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO messages (body) VALUES (?)", [(f"message {i}" * 20,) for i in range(rows)])
    conn.close()


def make_files(root: Path) -> dict[str, bytes]:
    blobs = {"ab/abcdefghijklmnopqrstuv": os.urandom(3000), "cd/cdefghijklmnopqrstuvwx/thumb": b"thumb" * 100}
    for key, data in blobs.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return blobs


@pytest.fixture
def source(tmp_path) -> ops.Target:
    make_database(tmp_path / "db.sqlite3")
    make_files(tmp_path / "files")
    return ops.Target("sqlite", str(tmp_path / "db.sqlite3"), str(tmp_path / "files"), "local")


def test_rotation_keeps_the_newest_of_each_recent_day_and_week():
    backups = [(f"b-{d}-{h}", unix(f"2024-03-{d:02d} {h:02d}:00")) for d in range(1, 22) for h in (3, 15)]
    keep = ops.kept(backups, keep_daily=3, keep_weekly=2)
    # 2024-03-21 is a Thursday: days 21, 20, 19 (their 15:00 backups); ISO weeks of the 18th (newest:
    # the 21st) and of the 11th (newest: Sunday the 17th)
    assert keep == {"b-21-15", "b-20-15", "b-19-15", "b-17-15"}
    # days without a backup do not count: a job that failed for weeks keeps its last backups
    sparse = [
        ("old-1", unix("2024-01-01 03:00")),
        ("old-2", unix("2024-01-02 03:00")),
        ("new", unix("2024-03-01 03:00")),
    ]
    assert ops.kept(sparse, keep_daily=3, keep_weekly=0) == {"old-1", "old-2", "new"}
    # the newest is kept whatever the counts say; nothing to keep of nothing
    assert ops.kept(backups, 0, 0) == {"b-21-15"}
    assert ops.kept([], 3, 3) == set()


def test_scheduled_backups_on_a_memory_clock_are_taken_daily_and_rotated(tmp_path):
    make_database(tmp_path / "db.sqlite3")
    make_files(tmp_path / "data" / "files")
    node = MemoryNode(
        **{
            "features.enabled": FEATURES,
            "server.data_dir": str(tmp_path / "data"),
            "storage.path": str(tmp_path / "db.sqlite3"),
            "backups.dir": str(tmp_path / "backups"),
            "backups.keep_daily": 3,
            "backups.keep_weekly": 2,
        }
    )
    backups = node.core.feature("backups")
    backups.run_in_thread = lambda f, *args: defer.maybeDeferred(f, *args)
    assert backups.next_at == unix("1970-01-01 03:30")  # the memory clock starts at 1970-01-01 00:00 UTC
    node.advance(3 * 3600)
    assert not (tmp_path / "backups").exists()
    node.advance(31 * 86400, step=600)
    # a backup each day, Jan 1..31; kept: the 29th, 30th, 31st (a Saturday), and the newest of the
    # ISO week before (Mon 19 .. Sun 25)
    names = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert names == [f"coffeechat-backup-197001{d}T033000Z" for d in (25, 29, 30, 31)]
    status = backups.status()
    assert status["last_success"]["name"] == "coffeechat-backup-19700131T033000Z"
    assert status["last_success"]["files"] == 2 and status["last_failure"] is None
    assert status["next_at"] == unix("1970-02-01 03:30") and not status["running"]
    # every one is whole, and the unchanged files are shared with the previous backup (hard links)
    for name in names:
        ops.verify_backup(tmp_path / "backups" / name)
    blob = "files/ab/abcdefghijklmnopqrstuv"
    assert (tmp_path / "backups" / names[-1] / blob).stat().st_nlink == len(names)

    # a failure: one error line with the reason, no traceback, and the schedule goes on
    os.rename(tmp_path / "db.sqlite3", tmp_path / "moved.sqlite3")
    with logged_failures() as failures:
        node.advance(86400, step=600)
    assert failures == [f"backup failed: no database at {tmp_path / 'db.sqlite3'} (is server.data_dir right?)"]
    status = backups.status()
    assert status["last_failure"]["at"] == unix("1970-02-01 03:30")
    assert status["last_success"]["name"] == "coffeechat-backup-19700131T033000Z"
    assert status["next_at"] == unix("1970-02-02 03:30")
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == names  # nothing half-written left


def test_every_interval_when_one_is_set(tmp_path):
    make_database(tmp_path / "db.sqlite3")
    node = MemoryNode(
        **{
            "features.enabled": FEATURES,
            "server.data_dir": str(tmp_path / "data"),
            "storage.path": str(tmp_path / "db.sqlite3"),
            "backups.dir": str(tmp_path / "backups"),
            "backups.interval": 3600.0,
        }
    )
    backups = node.core.feature("backups")
    backups.run_in_thread = lambda f, *args: defer.maybeDeferred(f, *args)
    node.advance(3 * 3600 + 1, step=60)
    # hourly, all on one day: rotation keeps the newest of that day only
    assert [b["name"] for b in ops.list_backups(tmp_path / "backups")] == ["coffeechat-backup-19700101T030000Z"]
    assert backups.status()["schedule"] == "every 3600 s"


def test_the_backups_config_is_checked():
    for key, value, message in (
        ("backups.at", "3:30", "backups.at must be a UTC time"),
        ("backups.interval", 10.0, "backups.interval must be 0"),
        ("backups.keep_daily", -1, "keep_daily"),
    ):
        with pytest.raises(Exception, match=message):
            MemoryNode(**{"features.enabled": FEATURES, key: value})
    with pytest.raises(ops.BackupError, match="storage.backend 'memory' keeps nothing to back up"):
        ops.target_of(load_config(None, {"storage.backend": "memory"}))


def test_a_backup_is_consistent_and_verified_and_a_flipped_byte_is_caught(tmp_path, source):
    manifest = ops.create_backup(source, tmp_path / "backups", now=unix("2024-05-01 12:00"))
    path = Path(manifest["path"])
    assert path.name == "coffeechat-backup-20240501T120000Z"
    assert manifest["schema"] == {"core": 3} and manifest["counts"] == {"messages": 50}
    assert manifest["files"] == {"storage": "local", "included": True, "count": 2, "bytes": 3500}
    assert set(manifest["entries"]) == {
        "database.sqlite3",
        "files/ab/abcdefghijklmnopqrstuv",
        "files/cd/cdefghijklmnopqrstuvwx/thumb",
    }
    # the copy is a self-contained file (no WAL) and holds the rows
    copy = sqlite3.connect(path / "database.sqlite3")
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert copy.execute("SELECT count(*) FROM messages").fetchone()[0] == 50
    copy.close()
    assert ops.verify_backup(path)["name"] == path.name

    blob = path / "files/ab/abcdefghijklmnopqrstuv"
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(
        ops.BackupError, match=r"failed verification: files/ab/abcdefghijklmnopqrstuv: checksum mismatch"
    ):
        ops.verify_backup(path)
    data[1000] ^= 0x01
    blob.write_bytes(bytes(data))
    ops.verify_backup(path)

    # a damaged page whose checksum was "fixed" too: opening the database finds it
    database = path / "database.sqlite3"
    raw = bytearray(database.read_bytes())
    raw[4096 + 8 : 4096 + 24] = b"\xff" * 16  # page 2's b-tree header
    database.write_bytes(bytes(raw))
    m = json.loads((path / "manifest.json").read_text())
    m["entries"]["database.sqlite3"]["sha256"] = ops._sha256(database)
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ops.BackupError, match=r"failed verification: database.sqlite3: "):
        ops.verify_backup(path)

    (path / "manifest.json").unlink()
    with pytest.raises(ops.BackupError, match="no manifest.json: not a CoffeeChat backup"):
        ops.verify_backup(path)


def test_a_second_backup_in_the_same_second_gets_its_own_name(tmp_path, source):
    first = ops.create_backup(source, tmp_path / "b", now=unix("2024-05-01 12:00"))
    second = ops.create_backup(source, tmp_path / "b", now=unix("2024-05-01 12:00"))
    assert Path(second["path"]).name == Path(first["path"]).name + "-2"


# -- the command


def run_command(config: Path, *args: str, data: Path, terminal: bool = False) -> subprocess.CompletedProcess:
    """``coffeechat --config CONFIG --data-dir DATA ARGS`` as a process.  ``terminal``: its
    stderr is a pseudo-terminal (an operator's shell); what was drawn on it comes back as stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", MAIN, "--config", str(config), "--data-dir", str(data), *args]
    cwd = config.parent
    if not terminal:
        return subprocess.run(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
        )
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    try:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=side
        )
        os.close(side)
        side = -1
        screen = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the process has closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        stdout = process.stdout.read().decode()
        process.stdout.close()
        returncode = process.wait(timeout=120)
    finally:
        os.close(main)
        if side >= 0:
            os.close(side)
    return subprocess.CompletedProcess(command, returncode, stdout, screen.decode(errors="replace"))


@pytest.fixture
def cli(tmp_path):
    """``cli(*args, data=DIR)`` runs ``coffeechat`` on a config with the local file store."""
    config = tmp_path / "coffeechat.toml"
    config.write_text(f"[features]\nenabled = {json.dumps(FEATURES)}\n[auth]\nscrypt_n = 1024\n")

    def run(*args: str, data: Path, terminal: bool = False) -> subprocess.CompletedProcess:
        return run_command(config, *args, data=data, terminal=terminal)

    return run


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_backup_verify_and_restore_commands(tmp_path, cli):
    data = tmp_path / "data"
    assert cli("user", "add", "alice", "--password", "pw", data=data).returncode == 0
    blobs = make_files(data / "files")
    assert "pass --dir DIR or set backups.dir" in one_line_error(cli("backup", data=data))

    done = cli("backup", "--dir", str(tmp_path / "backups"), data=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backup written and verified: ") and "2 files" in done.stdout
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    (path,) = (tmp_path / "backups").iterdir()
    for where in (["list", "--dir", str(tmp_path / "backups")], ["--dir", str(tmp_path / "backups"), "list"]):
        listed = cli("backup", *where, data=data)
        assert listed.stdout.startswith(path.name + "\t") and "\tsqlite\t" in listed.stdout, listed
    verified = cli("backup", "verify", str(path), data=data)
    assert verified.returncode == 0 and verified.stdout.startswith(f"{path}: OK (sqlite, taken ")

    # restore into a fresh data dir: the account and the files are back
    fresh = tmp_path / "fresh"
    restored = cli("restore", str(path), data=fresh)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith(f"restored {path.name} ") and "2 files" in restored.stdout
    assert cli("user", "list", data=fresh).stdout == "1\talice\talice\tactive\n"
    for key, content in blobs.items():
        assert (fresh / "files" / key).read_bytes() == content

    # not over data that is there, unless forced
    assert "holds data already" in one_line_error(cli("restore", str(path), data=fresh))
    assert cli("user", "add", "bobby", "--password", "pw", data=fresh).returncode == 0
    forced = cli("restore", str(path), "--force", data=fresh)
    assert forced.returncode == 0, forced.stderr
    assert cli("user", "list", data=fresh).stdout == "1\talice\talice\tactive\n"

    # never from a damaged backup
    blob = path / "files" / "ab" / "abcdefghijklmnopqrstuv"
    blob.write_bytes(b"x" + blob.read_bytes()[1:])
    error = one_line_error(cli("backup", "verify", str(path), data=data))
    assert "failed verification: files/ab/abcdefghijklmnopqrstuv: checksum mismatch" in error
    error = one_line_error(cli("restore", str(path), "--force", data=tmp_path / "other"))
    assert "failed verification" in error and not (tmp_path / "other" / "coffeechat.sqlite3").exists()


def test_restore_refuses_a_database_in_use(tmp_path, cli, source):
    path = ops.create_backup(source, tmp_path / "b")["path"]
    data = tmp_path / "data"
    data.mkdir()
    make_database(data / "coffeechat.sqlite3", rows=1)
    holder = sqlite3.connect(data / "coffeechat.sqlite3", isolation_level=None)  # as a server's writer would
    holder.execute("SELECT count(*) FROM messages").fetchone()
    try:
        error = one_line_error(cli("restore", path, data=data))
        assert "is in use" in error and "--force" in error
        assert holder.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    finally:
        holder.close()
    assert "holds data already" in one_line_error(cli("restore", path, data=data))


def test_a_progress_bar_on_a_terminal(tmp_path, cli):
    data = tmp_path / "data"
    assert cli("user", "add", "alice", "--password", "pw", data=data).returncode == 0
    make_files(data / "files")
    done = cli("backup", "--dir", str(tmp_path / "backups"), data=data, terminal=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backup written and verified: ")
    # tqdm's bars, one per stage, drawn to the end
    for stage in ("database", "files", "verify"):
        assert f"{stage}: 100%" in done.stderr, done.stderr
    (path,) = (tmp_path / "backups").iterdir()
    restored = cli("restore", str(path), data=tmp_path / "fresh", terminal=True)
    assert restored.returncode == 0 and restored.stdout.startswith(f"restored {path.name} "), restored
    assert "database: 100%" in restored.stderr and "files: 100%" in restored.stderr


def test_a_forced_restore_into_a_database_in_use(tmp_path, cli, source):
    """--force over a database a server has open: written through SQLite's own locks, so the
    server's connection reads the restored data (and the operator is told to restart it)."""
    path = ops.create_backup(source, tmp_path / "b")["path"]
    data = tmp_path / "data"
    data.mkdir()
    make_database(data / "coffeechat.sqlite3", rows=1)
    holder = sqlite3.connect(data / "coffeechat.sqlite3", isolation_level=None)
    try:
        assert holder.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
        forced = cli("restore", path, "--force", data=data)
        assert forced.returncode == 0, forced.stderr
        assert "note: restored into a database in use: restart the server" in forced.stdout
        assert holder.execute("SELECT count(*) FROM messages").fetchone()[0] == 50
        assert holder.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        holder.close()
    for key in ("ab/abcdefghijklmnopqrstuv", "cd/cdefghijklmnopqrstuvwx/thumb"):
        assert (data / "files" / key).read_bytes() == (Path(path) / "files" / key).read_bytes()


def test_a_backup_of_a_newer_schema_or_another_engine_is_not_restored(tmp_path, source):
    conn = sqlite3.connect(source.database, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = 999")
    conn.close()
    path = ops.create_backup(source, tmp_path / "b")["path"]
    fresh = ops.Target("sqlite", str(tmp_path / "fresh" / "db.sqlite3"), str(tmp_path / "fresh" / "files"), "local")
    with pytest.raises(ops.BackupError, match=r"\(schema 999\), newer than this one"):
        ops.restore_backup(fresh, path)
    postgres = ops.Target("postgres", "host=127.0.0.1 dbname=none", None, "none (files feature off)")
    with pytest.raises(ops.BackupError, match="holds a sqlite database and the config uses postgres"):
        ops.restore_backup(postgres, path)
    assert not (tmp_path / "fresh").exists()
