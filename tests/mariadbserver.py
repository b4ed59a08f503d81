"""A throwaway MariaDB (or MySQL) server for the tests, started from the installed binaries.

One server per test session (``mariadb_server`` fixture): ``mariadb-install-db`` (or
``mysql_install_db``) into a temporary directory, then ``mariadbd`` (or ``mysqld``) with
``--skip-grant-tables`` on a free loopback port, its socket in that directory; at the end the
process is stopped and the directory removed.  :meth:`MariaDBServer.database` creates an empty
database per test.  Without the binaries the tests are skipped with the reason, or fail when
``CI`` is set (as for PostgreSQL, tests/pgserver.py).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import free_port, unavailable

__all__ = ["MariaDBServer", "mariadb_server"]

START_TIMEOUT = 60


def _find(*names: str) -> str | None:
    for name in names:
        for folder in (None, "/usr/sbin", "/usr/bin"):
            found = shutil.which(name, path=folder) if folder else shutil.which(name)
            if found:
                return found
    return None


class MariaDBServer:
    """A running throwaway server; :meth:`dsn` is how the importer reaches a database on it."""

    def __init__(self, server: str, install: str) -> None:
        self.server = server
        self.install = install
        self.root = Path(tempfile.mkdtemp(prefix="coffeechat-mariadb-"))
        self.datadir = self.root / "data"
        self.socket = self.root / "mysqld.sock"
        self.logfile = self.root / "server.log"
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._names = itertools.count(1)

    def start(self) -> None:
        user = ["--user=root"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [self.install, "--no-defaults", f"--datadir={self.datadir}", *user, "--skip-test-db",
             "--auth-root-authentication-method=normal"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{self.install} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        for attempt in range(5):
            self.port = free_port()
            with open(self.logfile, "ab") as log:
                self.process = subprocess.Popen(
                    [self.server, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
                     f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-log-bin",
                     "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", f"--pid-file={self.root}/pid",
                     "--character-set-server=utf8mb4", *user],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )  # fmt: skip
            if self._wait_ready():
                return
            self._kill()
            if attempt == 4:
                raise RuntimeError(f"{self.server} did not start:\n{self.logfile.read_text(errors='replace')[-4000:]}")

    def _wait_ready(self) -> bool:
        import pymysql

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # exited: the port was taken, try another
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2).close()
                return True
            except pymysql.MySQLError:
                time.sleep(0.05)
        return False

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        try:
            self._kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def database(self) -> str:
        """Create an empty database; return its name."""
        import pymysql

        name = f"cim_v1_{next(self._names)}"
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        finally:
            conn.close()
        return name

    def dsn(self, database: str) -> str:
        return f"mysql://root:any@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str):
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=database, autocommit=True)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """A MariaDB server for the whole session; skipped (failed under CI) without binaries."""
    server, install = _find("mariadbd", "mysqld"), _find("mariadb-install-db", "mysql_install_db")
    if server is None or install is None:
        unavailable("MariaDB server binaries (mariadbd, mariadb-install-db) not found; install mariadb-server")
    try:
        import pymysql  # noqa: F401
    except ImportError:
        unavailable("PyMySQL is not installed")
    instance = MariaDBServer(server, install)
    try:
        instance.start()
    except BaseException:
        instance.stop()
        raise
    try:
        yield instance
    finally:
        instance.stop()
