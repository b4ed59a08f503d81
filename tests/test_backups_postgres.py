"""``coffeechat backup`` and ``restore`` on PostgreSQL: the real pg_dump and pg_restore against a
real server (tests/pgserver.py), the refusals, and a clear error without the tools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from coffeechat.ops import backup as ops

from .pgserver import PgServer, free_port, pg_server, unavailable  # noqa: F401  (the session fixture)
from .test_backups import FEATURES, make_files, one_line_error, run_command


@pytest.fixture
def databases(tmp_path, pg_server):  # noqa: F811
    """Two empty databases: the node's, and one to restore into."""
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found (install postgresql-client)")
    other = tmp_path / "other"
    yield pg_server.database(tmp_path), pg_server.database(other)
    pg_server.release(tmp_path)
    pg_server.release(other)


def config_for(path: Path, dsn: str, extra: str = "") -> Path:
    path.write_text(
        f"[features]\nenabled = {json.dumps(FEATURES)}\n[auth]\nscrypt_n = 1024\n"
        f'[storage]\nbackend = "postgres"\ndsn = "{dsn}"\n{extra}'
    )
    return path


def users(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM users ORDER BY user_id")]


def test_pg_dump_backup_and_pg_restore(tmp_path, databases):
    source, other = databases
    node = config_for(tmp_path / "node.toml", source)
    restored = config_for(tmp_path / "restored.toml", other)
    data = tmp_path / "data"
    assert run_command(node, "user", "add", "alice", "--password", "pw", data=data).returncode == 0
    blobs = make_files(data / "files")

    done = run_command(node, "backup", "--dir", str(tmp_path / "backups"), data=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backup written and verified: ") and "2 files" in done.stdout
    (path,) = (tmp_path / "backups").iterdir()
    manifest = ops.read_manifest(path)
    assert manifest["engine"] == "postgres" and manifest["database"] == "database.pgdump"
    assert manifest["counts"]["users"] == 1 and manifest["schema"]["core"] >= 1
    verified = run_command(node, "backup", "verify", str(path), data=data)
    assert verified.returncode == 0 and verified.stdout.startswith(f"{path}: OK (postgres, "), verified.stderr

    # into the empty database (and an empty data dir for the files)
    fresh = tmp_path / "fresh"
    done = run_command(restored, "restore", str(path), data=fresh)
    assert done.returncode == 0, done.stderr
    assert users(other) == ["alice"]
    for key, content in blobs.items():
        assert (fresh / "files" / key).read_bytes() == content
    listed = run_command(restored, "user", "list", data=fresh)
    assert listed.stdout == "1\talice\talice\tactive\n", listed.stderr

    # not while a server is connected, not over data, unless forced
    with psycopg.connect(other):
        error = one_line_error(run_command(restored, "restore", str(path), data=fresh))
        assert "other session(s) are connected to the database" in error and "--force" in error
    assert "holds data already" in one_line_error(run_command(restored, "restore", str(path), data=fresh))
    assert run_command(restored, "user", "add", "bobby", "--password", "pw", data=fresh).returncode == 0
    done = run_command(restored, "restore", str(path), "--force", data=fresh)
    assert done.returncode == 0, done.stderr
    assert users(other) == ["alice"]

    # a damaged archive is refused before anything is touched
    dump = path / "database.pgdump"
    dump.write_bytes(dump.read_bytes()[:-100])
    error = one_line_error(run_command(restored, "restore", str(path), "--force", data=fresh))
    assert "failed verification: database.pgdump: " in error
    assert users(other) == ["alice"]


def test_without_pg_dump_the_error_says_what_to_do(tmp_path, databases):
    source, _ = databases
    node = config_for(tmp_path / "node.toml", source, '[backups]\npg_dump = "/nowhere/pg_dump"\n')
    data = tmp_path / "data"
    assert run_command(node, "user", "add", "alice", "--password", "pw", data=data).returncode == 0
    error = one_line_error(run_command(node, "backup", "--dir", str(tmp_path / "backups"), data=data))
    assert "/nowhere/pg_dump not found (backups.pg_dump)" in error and "pg_dump --format=custom" in error
    assert not any((tmp_path / "backups").iterdir())  # nothing half-written left


def test_the_documented_pg_basebackup_is_a_whole_copy(tmp_path, databases, pg_server):  # noqa: F811
    """docs/backups.md's physical backup: ``pg_basebackup -X stream`` of the running server,
    started as a server of its own, holds the node's data."""
    source, _ = databases
    node = config_for(tmp_path / "node.toml", source)
    assert run_command(node, "user", "add", "alice", "--password", "pw", data=tmp_path / "data").returncode == 0
    copy = PgServer(pg_server.bindir)  # only its directory and its way to run the tools as postgres
    try:
        copy._run(
            f"{pg_server.bindir}/pg_basebackup",
            f"--pgdata={copy.datadir}",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
            f"--dbname=host=127.0.0.1 port={pg_server.port} user={pg_server.user}",
        )
        copy._run("mkdir", "-p", str(copy.sockdir))
        copy.port = free_port()
        copy._run(
            f"{pg_server.bindir}/pg_ctl",
            "start",
            "-w",
            "-D",
            str(copy.datadir),
            "-l",
            str(copy.logfile),
            "-o",
            f"-p {copy.port} -k {copy.sockdir} -c listen_addresses=127.0.0.1",
        )
        dbname = psycopg.conninfo.conninfo_to_dict(source)["dbname"]
        assert users(copy.dsn(dbname)) == ["alice"]
    finally:
        copy.stop()
