"""A throwaway PostgreSQL server for the tests, started from the installed binaries.

One server per test session (``pg_server`` fixture): ``initdb`` into a temporary directory with
trust authentication, ``pg_ctl start`` on a free loopback port with its socket in that
directory, and at the end ``pg_ctl stop`` and the directory removed.  Databases are cheap on it
(``CREATE DATABASE`` from ``template0``), so every test gets its own: :meth:`PgServer.database`
hands out a database for a key (the test's ``tmp_path``), the same one for the same key, so that
a store reopened on the same ``tmp_path`` finds its data again; :meth:`PgServer.release` empties
it for the next test (much faster than creating one).

Without the binaries the tests that need the server are skipped, with the reason; when the
environment variable ``CI`` is set they fail instead, so that CI cannot go green by skipping.
Root may not run ``postgres``: as root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgServer", "find_bindir", "free_port", "pg_server", "unavailable"]

START_TIMEOUT = 60


def find_bindir() -> str | None:
    """The directory holding initdb, pg_ctl and postgres: ``$PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/<version>/bin``, else wherever ``pg_ctl`` is on the PATH."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
    candidates += versions
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    for bindir in candidates:
        if bindir and all(os.access(os.path.join(bindir, exe), os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def unavailable(reason: str) -> None:
    """A server binary the tests need is missing: skip with the reason, or fail under ``CI``
    (so that CI cannot go green by skipping)."""
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set: not skipping)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A running throwaway server; ``dsn(dbname)`` is how to reach one of its databases."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="coffeechat-pg-"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.logfile = self.root / "server.log"
        self.port = 0
        self.user = "postgres"
        self._as_user: list[str] = []
        self._made: list[str] = []  # every database created
        self._free: list[str] = []  # released ones, empty, ready for another key
        self._by_key: dict[object, str] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as e:
                raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from e
            self._as_user = ["runuser", "-u", "postgres", "--"]
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        os.chmod(self.root, 0o700)

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> None:
        command = [*self._as_user, *args]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-4000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")

    def start(self) -> None:
        """initdb, then start on a free port (a few tries: the port may be taken meanwhile)."""
        bin_ = self.bindir
        self._run(
            f"{bin_}/initdb",
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self._run("mkdir", "-p", str(self.sockdir))
        for attempt in range(5):
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 -c fsync=on "
                "-c max_connections=200 -c shared_buffers=64MB"
            )
            try:
                self._run(
                    f"{bin_}/pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                )
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (fast: nothing here is worth a clean shutdown) and remove its files."""
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run(f"{self.bindir}/pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.datadir))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def database(self, key: object) -> str:
        """The DSN of the database for ``key`` (e.g. a tmp_path): empty the first time, the same
        one again for the same key until :meth:`release`."""
        if key not in self._by_key:
            self._by_key[key] = self._free.pop() if self._free else self.create_database(f"cc_{len(self._made)}")
        return self.dsn(self._by_key[key])

    def release(self, key: object) -> None:
        """Empty the database of ``key`` and keep it for another key.

        Emptying (its connections ended, the public schema dropped and made again) takes a few
        milliseconds; a CREATE DATABASE copies a template through the WAL and, with fsync on,
        takes half a second on a slow disk."""
        name = self._by_key.pop(key, None)
        if name is None:
            return
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                (name,),
            )
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        self._free.append(name)

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` (from template0); returns the name."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self._made.append(name)
        return name


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session; skipped (failed under CI) without binaries."""
    bindir = find_bindir()
    if bindir is None:
        unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install postgresql or set PG_BINDIR"
        )
    server = PgServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()
