"""A throwaway Redis server (and Sentinel) for the tests, started from the installed binary.

``redis_server``: a ``redis-server`` of its own for each test (it starts in milliseconds, and
tests that stop, restart or pause it then disturb nobody), on a free loopback port, persisting
nothing, its files in a temporary directory; killed at the end.  :meth:`RedisServer.stop` and
:meth:`RedisServer.start` restart it on the same port (all data lost, as in a real restart
without persistence), :meth:`~RedisServer.kill` is ``kill -9``, :meth:`~RedisServer.pause` and
:meth:`~RedisServer.resume` freeze it (SIGSTOP/SIGCONT: connections stay up, nothing answers).
:meth:`~RedisServer.command` sends one command from the test itself (blocking; loopback).

``redis_sentinel``: a Sentinel (``redis-server <conf> --sentinel``) monitoring that server as
``mymaster`` (quorum 1), ready once it names the master.

Without ``redis-server`` (on the PATH, in /usr/bin, or ``$REDIS_SERVER``) the tests that need it
are skipped, with the reason; when the environment variable ``CI`` is set they fail instead, so
that CI cannot go green by skipping.  conftest.py imports the fixtures from here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import free_port, unavailable

__all__ = ["RedisSentinel", "RedisServer", "find_redis_server", "redis_sentinel", "redis_server"]

START_TIMEOUT = 20.0
_running: set[subprocess.Popen] = set()  # killed at exit whatever happened to the fixtures


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        if process.poll() is None:
            process.kill()
            process.wait()


def find_redis_server() -> str | None:
    for candidate in (os.environ.get("REDIS_SERVER"), shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _encode(args: tuple) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError(f"unexpected reply {line!r}")


def command(port: int, *args, timeout: float = 5.0):
    """Send one command to the server on ``port`` and return its reply (bytes, int, list...)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_encode(args))
        with s.makefile("rb") as f:
            return _read_reply(f)


class _Process:
    """A redis-server process on a port of its own."""

    def __init__(self, exe: str, root: Path, name: str) -> None:
        self.exe = exe
        self.root = root
        self.name = name
        self.port = 0
        self.process: subprocess.Popen | None = None

    def _args(self) -> list[str]:
        raise NotImplementedError

    def _spawn(self) -> None:
        log = open(self.root / f"{self.name}.log", "ab")  # the child keeps its own copy
        try:
            self.process = subprocess.Popen(
                [self.exe, *self._args()], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        _running.add(self.process)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.log()}")
            try:
                if command(self.port, "PING", timeout=1.0) == "PONG":
                    return
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer PING within {START_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.01)

    def start(self) -> None:
        """Start; the first time on a free port (a few tries: it may be taken meanwhile), then
        always on the same one."""
        if self.running:
            return
        if self.port:
            self._spawn()
            self._wait_ready()
            return
        for attempt in range(5):
            self.port = free_port()
            self._spawn()
            try:
                self._wait_ready()
                return
            except RuntimeError:
                self.kill()
                if attempt == 4:
                    raise

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running else None

    def stop(self) -> None:
        """Stop it as a service manager would (SIGTERM), and wait until it is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _running.discard(self.process)
        self.process = None

    def kill(self) -> None:
        """kill -9, and wait until it is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        _running.discard(self.process)
        self.process = None

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open, nothing is answered."""
        if self.running:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            os.kill(self.process.pid, signal.SIGCONT)

    def command(self, *args, timeout: float = 5.0):
        return command(self.port, *args, timeout=timeout)

    def log(self) -> str:
        path = self.root / f"{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class RedisServer(_Process):
    """A throwaway redis-server; ``url`` is how to reach it."""

    def __init__(self, exe: str) -> None:
        super().__init__(exe, Path(tempfile.mkdtemp(prefix="coffeechat-redis-")), "redis")

    def _args(self) -> list[str]:
        return [
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.root), "--protected-mode", "no",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisSentinel(_Process):
    """A Sentinel watching ``server`` as ``master_name``; ``address`` goes in presence.sentinels."""

    def __init__(self, server: RedisServer, master_name: str = "mymaster") -> None:
        super().__init__(server.exe, server.root, "sentinel")
        self.server = server
        self.master_name = master_name

    def _args(self) -> list[str]:
        conf = self.root / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.root}\nprotected-mode no\n"
            f"sentinel monitor {self.master_name} 127.0.0.1 {self.server.port} 1\n"
            f"sentinel down-after-milliseconds {self.master_name} 1000\n"
        )
        return [str(conf), "--sentinel"]

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        while self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name) != [
            b"127.0.0.1",
            str(self.server.port).encode(),
        ]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Sentinel does not name the master:\n{self.log()}")
            time.sleep(0.02)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _redis_server_binary() -> str:
    exe = find_redis_server()
    if exe is None:
        unavailable("redis-server not found; install it (apt-get install redis-server) or set REDIS_SERVER")
    return exe


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own; skipped (failed under CI) without the binary."""
    server = RedisServer(_redis_server_binary())
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_sentinel(redis_server: RedisServer) -> Iterator[RedisSentinel]:
    """A Sentinel monitoring ``redis_server`` as ``mymaster``."""
    sentinel = RedisSentinel(redis_server)
    try:
        sentinel.start()
        yield sentinel
    finally:
        sentinel.kill()
