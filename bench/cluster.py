"""Several server processes as one cluster (``--servers N`` of ``connections``, ``p2p`` and
``group``): N ``twistd coffeechat`` nodes sharing one PostgreSQL and one Redis, all on this
machine's loopback.

Why several processes: one process may hold at most 20,000 open files here, and one CPython
process uses one core, so 100,000 connections need at least six nodes (and the generators that
hold the other ends, at most ~19,000 sockets each, are processes too).  And messages between
users on different nodes go through Redis pub/sub: ``p2p``/``group`` with ``--placement`` measure
what that costs.

Where PostgreSQL and Redis come from: ``--dsn`` and ``--redis`` name running ones; without them
the benchmark starts throwaway ones from the installed binaries (``redis-server`` on a free port,
persisting nothing; PostgreSQL from ``/usr/lib/postgresql/<version>/bin``: ``initdb`` into a
temporary directory with trust authentication, then ``postgres`` in the foreground on a free
loopback port).  Root may not run PostgreSQL: as root it runs as the ``postgres`` system user
(the benchmark's child drops to that user before exec, so the server stays its direct child).
Every process started here is the benchmark's child with a parent-death signal, so even a
``kill -9`` of the benchmark takes them down; a normal end, an error or Ctrl-C stops them and
removes their files (:meth:`Cluster.stop`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .server import (
    ManagedServer,
    ServerError,
    Target,
    cpu_seconds,
    die_with_parent,
    free_port,
    rss_kib,
    stop_process,
)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# PostgreSQL's connections: each node holds one writer and ``reader_threads`` readers (4 by default).
PG_CONNECTIONS_PER_NODE = 6


class ServiceError(ServerError):
    """PostgreSQL or Redis could not be found, started or reached."""


def _child_setup(sig: int, user: pwd.struct_passwd | None) -> Callable[[], None]:
    """``preexec_fn``: become ``user`` (when given: root may not run PostgreSQL), then arm the
    parent-death signal (after the uid change, which would clear it)."""

    def setup() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        die_with_parent(sig)

    return setup


# ---- PostgreSQL -------------------------------------------------------------------------------


def find_pg_bindir() -> str | None:
    """The directory holding initdb and postgres: ``$PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/<version>/bin``, else wherever ``initdb`` is on the PATH."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
    candidates += versions
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    for bindir in candidates:
        if bindir and all(os.access(os.path.join(bindir, exe), os.X_OK) for exe in ("initdb", "postgres")):
            return bindir
    return None


class ThrowawayPostgres:
    """``initdb`` + ``postgres`` in a temporary directory on a free loopback port; ``stop`` ends
    it (fast shutdown) and removes the directory."""

    def __init__(self, bindir: str, max_connections: int = 200) -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="coffeechat-bench-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.run_as: pwd.struct_passwd | None = None
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                self.run_as = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
            self.user = "postgres"
            os.chown(self.root, self.run_as.pw_uid, self.run_as.pw_gid)
        os.chmod(self.root, 0o700)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def dsn(self, dbname: str = "coffeechat") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def start(self) -> str:
        """initdb, start, create the database ``coffeechat``; its DSN."""
        done = subprocess.run(
            [f"{self.bindir}/initdb", "-D", str(self.datadir), "-U", self.user, "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT, cwd=self.root,
            preexec_fn=_child_setup(signal.SIGKILL, self.run_as),
        )  # fmt: skip
        if done.returncode != 0:
            raise ServiceError(f"initdb failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        for attempt in range(5):  # the free port may be taken meanwhile
            self.port = free_port()
            self._spawn()
            try:
                self._wait_ready()
                break
            except ServiceError:
                stop_process(self.process, signal.SIGQUIT, 5)
                self.process = None
                if attempt == 4:
                    raise
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE DATABASE coffeechat TEMPLATE template0")
        return self.dsn()

    def _spawn(self) -> None:
        log = open(self.logfile, "ab")
        if self.run_as is not None:
            os.chown(self.logfile, self.run_as.pw_uid, self.run_as.pw_gid)
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "max_connections": str(self.max_connections),
            "shared_buffers": "128MB",
            "fsync": "on",  # as a deployment runs it: the users' creation commits for real
        }
        command = [f"{self.bindir}/postgres", "-D", str(self.datadir), "-p", str(self.port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        try:
            # SIGQUIT is PostgreSQL's immediate shutdown: what a dead benchmark should get.
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                start_new_session=True, preexec_fn=_child_setup(signal.SIGQUIT, self.run_as),
            )  # fmt: skip
        finally:
            log.close()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process is None or self.process.poll() is not None:
                raise ServiceError(f"postgres exited:\n{self.log_tail()}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ServiceError(f"postgres did not accept connections in {START_TIMEOUT:.0f} s") from None
                time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL if it lingers; remove its files."""
        try:
            stop_process(self.process, signal.SIGINT, STOP_TIMEOUT)
        finally:
            self.process = None
            shutil.rmtree(self.root, ignore_errors=True)


def postgres_pids(dsn: str) -> list[int]:
    """The processes of the PostgreSQL server behind ``dsn`` when it runs on this machine: its
    postmaster (the parent of any backend) and every child.  Empty when not visible here."""
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=5) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            postmaster = _ppid(backend)
    except Exception:
        return []
    if postmaster is None or postmaster <= 1:
        return []
    return [postmaster, *children(postmaster)]


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def pss_kib(pid: int) -> int | None:
    """Proportional set size (shared pages divided among their users): what a group of processes
    sharing memory (PostgreSQL's shared buffers) really uses, summed over the group."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def mask_dsn(dsn: str) -> str:
    """A DSN for the report, without its password."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return dsn
    return " ".join("password=***" if word.startswith("password=") else word for word in dsn.split())


# ---- Redis ------------------------------------------------------------------------------------


def find_redis_server() -> str | None:
    for candidate in (os.environ.get("REDIS_SERVER"), shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class ThrowawayRedis:
    """``redis-server`` on a free loopback port, persisting nothing, in a temporary directory."""

    def __init__(self, exe: str) -> None:
        self.exe = exe
        self.root = Path(tempfile.mkdtemp(prefix="coffeechat-bench-redis-"))
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self) -> str:
        for attempt in range(5):
            self.port = free_port()
            log = open(self.root / "redis.log", "ab")
            try:
                self.process = subprocess.Popen(
                    [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(self.root), "--protected-mode", "no", "--maxclients", "1000"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                    start_new_session=True, preexec_fn=_child_setup(signal.SIGTERM, None),
                )  # fmt: skip
            finally:
                log.close()
            deadline = time.monotonic() + 20
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    if redis_command(self.url, "PING", timeout=1.0) == "PONG":
                        return self.url
                except (OSError, ServiceError):
                    pass
                time.sleep(0.02)
            stop_process(self.process, signal.SIGKILL, 5)
            self.process = None
            if attempt == 4:
                log_text = (self.root / "redis.log").read_text(errors="replace")[-2000:]
                raise ServiceError(f"redis-server did not start:\n{log_text}")
        raise ServiceError("redis-server did not start")  # not reached

    def stop(self) -> None:
        try:
            stop_process(self.process, signal.SIGTERM, 10)
        finally:
            self.process = None
            shutil.rmtree(self.root, ignore_errors=True)


def _resp(args: tuple) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise ServiceError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise ServiceError(f"Redis: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_reply(f) for _ in range(n)]
    raise ServiceError(f"Redis: unexpected reply {line[:80]!r}")


def redis_command(url: str, *args: Any, timeout: float = 5.0) -> Any:
    """One command to the Redis at ``url`` (``redis://[:password@]host:port/db``), blocking."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", ""):
        raise ServiceError(f"only redis:// URLs are supported here, not {url!r}")
    db = parts.path.strip("/") or "0"
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout) as s:
        commands = []
        if parts.password:
            auth = (unquote(parts.username), unquote(parts.password)) if parts.username else (unquote(parts.password),)
            commands.append(("AUTH", *auth))
        if db != "0":
            commands.append(("SELECT", db))
        commands.append(args)
        s.sendall(b"".join(_resp(c) for c in commands))
        with s.makefile("rb") as f:
            replies = [_reply(f) for _ in commands]
    return replies[-1]


def redis_info(url: str) -> dict[str, str]:
    text = redis_command(url, "INFO")
    out: dict[str, str] = {}
    for line in (text or b"").decode(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            out[key] = value.strip()
    return out


def redis_pid(url: str) -> int | None:
    """The redis-server's pid when it runs on this machine (INFO's process_id, seen in /proc)."""
    try:
        pid = int(redis_info(url).get("process_id", "0"))
    except (OSError, ServiceError, ValueError):
        return None
    return pid if pid > 0 and os.path.exists(f"/proc/{pid}") else None


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return url


# ---- figures of a group of processes ----------------------------------------------------------


class ProcessGroup:
    """RSS, PSS and CPU of a service's processes (PostgreSQL: the postmaster and its children;
    Redis: one process), re-listed at each sample since backends come and go."""

    def __init__(self, name: str, lister: Callable[[], list[int]]) -> None:
        self.name = name
        self.lister = lister

    def pids(self) -> list[int]:
        try:
            return self.lister()
        except Exception:
            return []

    def sample(self) -> dict[str, Any]:
        pids = self.pids()
        if not pids:
            return {"processes": 0, "rss_kib": None, "pss_kib": None, "cpu_s": None}
        rss = [rss_kib(p) for p in pids]
        pss = [pss_kib(p) for p in pids]
        cpu = [cpu_seconds(p) for p in pids]
        return {
            "processes": len(pids),
            "rss_kib": sum(x for x in rss if x is not None),
            "pss_kib": sum(x for x in pss if x is not None) if any(x is not None for x in pss) else None,
            "cpu_s": sum(x for x in cpu if x is not None),
        }


# ---- the cluster ------------------------------------------------------------------------------


class Cluster:
    """N managed nodes on one PostgreSQL and one Redis (given, or started here).

    ``start`` returns the nodes' targets (in node order); ``stop`` stops the nodes, then the
    services it started, whatever happened before.
    """

    def __init__(
        self,
        servers: int,
        extra_config: Path | None,
        cpus_for: Callable[[int], list[int] | None],
        overrides: dict[str, dict[str, Any]] | None = None,
        dsn: str | None = None,
        redis: str | None = None,
        prefix: str = "bench",
        workers: int = 1,
    ) -> None:
        self.n = servers
        self.workers = workers
        self.extra_config = extra_config
        self.cpus_for = cpus_for
        self.overrides = overrides or {}
        self.dsn = dsn
        self.redis = redis
        self.prefix = prefix
        self.key_prefix = f"coffeechat-bench-{prefix}:"
        self.postgres: ThrowawayPostgres | None = None
        self.redis_server: ThrowawayRedis | None = None
        self.nodes: list[ManagedServer] = []
        self.targets: list[Target] = []
        self.exit_codes: list[int | None] = []

    def node_name(self, i: int) -> str:
        return f"bench-{i + 1}"

    def start(self) -> list[Target]:
        if self.dsn is None:
            bindir = find_pg_bindir()
            if bindir is None:
                raise ServiceError(
                    "PostgreSQL server binaries (initdb, postgres) not found: install postgresql, set PG_BINDIR, "
                    "or give --dsn"
                )
            self.postgres = ThrowawayPostgres(bindir, max(200, PG_CONNECTIONS_PER_NODE * self.n + 50))
            self.dsn = self.postgres.start()
        if self.redis is None:
            exe = find_redis_server()
            if exe is None:
                raise ServiceError("redis-server not found: install redis-server, set REDIS_SERVER, or give --redis")
            self.redis_server = ThrowawayRedis(exe)
            self.redis = self.redis_server.start()
        else:
            redis_command(self.redis, "PING")
        for i in range(self.n):
            cluster_config = {
                "server": {"node_name": self.node_name(i), "workers": self.workers},
                "storage": {"backend": "postgres", "dsn": self.dsn},
                "presence": {"backend": "redis", "redis": self.redis, "key_prefix": self.key_prefix},
            }
            node = ManagedServer(self.extra_config, self.cpus_for(i), self.overrides, forced=cluster_config)
            self.nodes.append(node)
        # The first node creates the schema (the others would wait on its advisory lock anyway),
        # then the others start together.
        self.targets = [self.nodes[0].start()]
        for node in self.nodes[1:]:
            node.launch()
        self.targets += [node.wait_ready() for node in self.nodes[1:]]
        return self.targets

    def live_nodes(self, timeout: float = 30.0) -> list[str]:
        """Node names with a lease in Redis, once all N have one (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        names: list[str] = []
        while True:
            names = sorted(
                self.node_name(i)
                for i in range(self.n)
                if redis_command(self.redis, "EXISTS", f"{self.key_prefix}lease:{self.node_name(i)}")
            )
            if len(names) == self.n or time.monotonic() > deadline:
                return names
            time.sleep(0.1)

    def presence_devices(self) -> list[int | None]:
        """Devices each node has registered in Redis (``SCARD <prefix>nd:<node>``)."""
        out: list[int | None] = []
        for i in range(self.n):
            try:
                out.append(int(redis_command(self.redis, "SCARD", f"{self.key_prefix}nd:{self.node_name(i)}")))
            except (OSError, ServiceError):
                out.append(None)
        return out

    def postgres_group(self) -> ProcessGroup:
        managed = self.postgres

        def lister() -> list[int]:
            if managed is not None and managed.pid is not None:
                return [managed.pid, *children(managed.pid)]
            return postgres_pids(self.dsn) if self.dsn else []

        return ProcessGroup("postgres", lister)

    def redis_group(self) -> ProcessGroup:
        managed = self.redis_server
        found: list[int | None] = []

        def lister() -> list[int]:
            if managed is not None and managed.pid is not None:
                return [managed.pid]
            if not found:
                found.append(redis_pid(self.redis) if self.redis else None)
            return [found[0]] if found[0] else []

        return ProcessGroup("redis", lister)

    def log_text(self) -> str:
        return "\n".join(node.log_text() for node in self.nodes)

    def describe(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "node_name": self.node_name(i),
                    "pid": node.target.pid if node.target else None,
                    "pinned_cpus": node.cpus,
                    "cim_port": node.target.cim_port if node.target else None,
                    "exit_code": self.exit_codes[i] if i < len(self.exit_codes) else None,
                }
                for i, node in enumerate(self.nodes)
            ],
            "postgres": {
                "managed": self.postgres is not None,
                "dsn": mask_dsn(self.dsn) if self.dsn else None,
                "bindir": self.postgres.bindir if self.postgres else None,
            },
            "redis": {
                "managed": self.redis_server is not None,
                "url": mask_url(self.redis) if self.redis else None,
                "key_prefix": self.key_prefix,
            },
        }

    def stop(self) -> list[int | None]:
        """Stop the nodes (together: SIGTERM to all, then wait), then Redis and PostgreSQL if they
        were started here; remove every temporary directory."""
        codes: list[int | None] = []
        try:
            for node in self.nodes:
                node.terminate()
            for node in self.nodes:
                codes.append(node.stop())
        finally:
            try:
                if self.redis_server is not None:
                    self.redis_server.stop()
                elif self.redis:
                    _forget_keys(self.redis, self.key_prefix)
            finally:
                if self.postgres is not None:
                    self.postgres.stop()
        self.exit_codes = codes
        return codes


def _forget_keys(url: str, prefix: str) -> None:
    """On a Redis the benchmark did not start, remove what its nodes left under their prefix."""
    with contextlib.suppress(OSError, ServiceError):
        cursor = b"0"
        for _ in range(10_000):  # bounded: SCAN returns every key eventually
            cursor, keys = redis_command(url, "SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
            if keys:
                redis_command(url, "UNLINK", *keys)
            if cursor in (b"0", 0, "0"):
                break
