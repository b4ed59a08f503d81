"""Every core of a machine: ``[server] workers = N`` worker processes behind one set of ports.

One CPython process runs on one core, so one node cannot use a big machine.  With ``workers``
above 1 the process twistd runs becomes a supervisor: it binds every listening socket once
(port 0 resolved once, so all workers serve the same port) and starts N workers, each
``twistd -n coffeechat --worker I`` with the same configuration and flags, the sockets passed as
inherited file descriptors (Twisted's ``adoptStreamPort``).  The kernel hands each new connection
to whichever worker accepts it first.

Each worker is a full node of a cluster (node name ``<server.node_name or host>-w<I>``): a
message between users on two workers takes the cross-node path (Redis), so workers need what a
cluster needs, PostgreSQL and Redis presence (``Config._validate_workers`` refuses SQLite: its
single writer remembers each conversation's last seq in memory).  Listeners that are scraped per
process (``[listen] metrics``) are not shared: worker I listens I ports above the configured one.

Supervision: a worker that exits is started again after a back-off (0.5 s doubling to 30 s, back
to 0.5 s once a worker stayed up a minute); its clients reconnect and land on the others
meanwhile.  SIGTERM (or SIGINT) to the supervisor is passed to every worker, each drains as a
single node does (coffeechat/drain.py), and the supervisor exits once all have, killing those
still running ``server.drain_timeout`` + 5 s later.  SIGHUP is passed on (certificates reload
in every worker).  A worker's output is relayed into the supervisor's log, line by line, with
its name; a worker dies with its supervisor (``PR_SET_PDEATHSIG``), even after a ``kill -9``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import sys
import threading
from typing import Any

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from coffeechat.config import Config
from coffeechat.endpoints import bind_shared, socket_address

__all__ = ["Supervisor", "enter_worker", "shared_listeners", "worker_name"]

log = Logger()

#: Where a worker finds its shared sockets: JSON, listener name -> file descriptor.
SHARED_FDS_ENV = "COFFEECHAT_SHARED_FDS"
#: The supervisor's pid, which a worker checks (it exits if its parent is already gone).
SUPERVISOR_ENV = "COFFEECHAT_SUPERVISOR_PID"
#: Transports every worker serves on a port of its own (``offset_port``), not a shared one.
UNSHARED = frozenset({"metrics"})

RESTART_FIRST = 0.5
RESTART_MAX = 30.0
STABLE_AFTER = 60.0  # seconds up after which a worker's next exit restarts it after RESTART_FIRST
KILL_MARGIN = 5.0  # seconds past server.drain_timeout before a worker that did not exit is killed
MAX_LINE = 64 * 1024  # a worker's output is relayed in pieces of at most this many bytes

_FIRST_FD = 3
_PR_SET_PDEATHSIG = 1
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ")


def worker_name(config: Config, index: int) -> str:
    """Worker ``index``'s node name: stable across its restarts, so that it finds its own entries."""
    return f"{config.server.node_name or os.uname().nodename}-w{index}"


def shared_listeners(config: Config) -> list[str]:
    """The listener names (``<transport>:<endpoint>``) whose socket all workers share."""
    return [
        f"{name}:{endpoint}"
        for name, endpoints in config.listen.endpoints.items()
        if name not in UNSHARED
        for endpoint in endpoints
    ]


def enter_worker(config: Config, index: int) -> dict[str, int]:
    """In worker ``index``: take its node name, die with the supervisor, leave the terminal's
    process group (Ctrl-C goes to the supervisor, which stops the workers in order); return the
    shared sockets by listener name."""
    config.set("server.node_name", worker_name(config, index))
    _die_with_parent()
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    try:
        shared = json.loads(os.environ.get(SHARED_FDS_ENV, "{}"))
    except ValueError:
        shared = {}
    return {str(key): int(fd) for key, fd in shared.items()}


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    expected = os.environ.get(SUPERVISOR_ENV)
    if expected and os.getppid() != int(expected):
        os._exit(1)  # the supervisor died before the death signal was armed


class WorkerProcess(protocol.ProcessProtocol):
    """One worker: its output relayed line by line into the supervisor's log."""

    def __init__(self, supervisor: Supervisor, index: int, name: str) -> None:
        self.supervisor = supervisor
        self.index = index
        self.name = name
        self.started_at = supervisor.reactor.seconds()
        self.pid: int | None = None
        self._pending = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        self.pid = self.transport.pid
        log.info("worker {worker} started (pid {pid})", worker=self.name, pid=self.pid)

    def childDataReceived(self, fd: int, data: bytes) -> None:
        buffered = self._pending.get(fd, b"") + data
        *lines, rest = buffered.split(b"\n")
        while len(rest) > MAX_LINE:
            lines.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._pending[fd] = rest
        for line in lines:
            self._relay(line)

    def _relay(self, raw: bytes) -> None:
        line = _TIMESTAMP.sub("", raw.decode("utf-8", "replace").rstrip("\r"))
        if line:
            log.info("[{worker}] {line}", worker=self.name, line=line)

    def processEnded(self, reason: Failure) -> None:
        for rest in self._pending.values():
            if rest:
                self._relay(rest)
        self._pending = {}
        self.supervisor.worker_ended(self, reason)


class Supervisor(service.Service):
    """Binds the shared sockets, runs ``config.server.worker_count`` workers and keeps them
    running; ``plugin_args`` are the coffeechat flags the workers get (the supervisor's own)."""

    def __init__(self, config: Config, plugin_args: list[str], reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.plugin_args = list(plugin_args)
        self.reactor = reactor
        self.count = config.server.worker_count
        self.workers: dict[int, WorkerProcess] = {}
        self.restarts = 0
        self._sockets: dict[str, socket.socket] = {}
        self._delay = dict.fromkeys(range(self.count), RESTART_FIRST)
        self._pending_restarts: dict[int, Any] = {}
        self._stopping = False
        self._all_ended: defer.Deferred | None = None
        self._undo_sighup = lambda: None

    # -- start

    def startService(self) -> None:
        service.Service.startService(self)
        from coffeechat.service import with_backlog

        for key in shared_listeners(self.config):
            endpoint = key.partition(":")[2]
            try:
                sock = bind_shared(socket_address(self.reactor, endpoint, with_backlog))
            except Exception:
                # As a single node does when it cannot listen: say why and exit, start no worker.
                log.failure("CoffeeChat could not listen on {key}", key=key)
                self._close_sockets(None)
                self.reactor.callWhenRunning(self.reactor.stop)
                return
            self._sockets[key] = sock
            host, port = sock.getsockname()[:2]
            log.info(
                "{key}: listening on {host}:{port} for {count} workers", key=key, host=host, port=port, count=self.count
            )
        self._undo_sighup = self._forward_sighup()
        for index in range(self.count):
            self._spawn(index)

    def bound_port(self, key: str) -> int:
        """The port of a shared listener (tests configure port 0)."""
        return self._sockets[key].getsockname()[1]

    def _spawn(self, index: int) -> None:
        self._pending_restarts.pop(index, None)
        if self._stopping:
            return
        child_fds: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        shared = {}
        for offset, (key, sock) in enumerate(self._sockets.items()):
            child_fds[_FIRST_FD + offset] = sock.fileno()
            shared[key] = _FIRST_FD + offset
        env = {**os.environ, SHARED_FDS_ENV: json.dumps(shared), SUPERVISOR_ENV: str(os.getpid())}
        args = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "coffeechat",
            *self.plugin_args,
            "--worker",
            str(index),
        ]
        worker = WorkerProcess(self, index, worker_name(self.config, index))
        self.workers[index] = worker
        self.reactor.spawnProcess(worker, sys.executable, args, env=env, childFDs=child_fds)

    # -- supervision

    def worker_ended(self, worker: WorkerProcess, reason: Failure) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        code = getattr(reason.value, "exitCode", None)
        how = f"exit status {code}" if code is not None else f"signal {getattr(reason.value, 'signal', '?')}"
        if self._stopping:
            log.info("worker {worker} stopped ({how})", worker=worker.name, how=how)
            if not self.workers and self._all_ended is not None:
                d, self._all_ended = self._all_ended, None
                d.callback(None)
            return
        index = worker.index
        if self.reactor.seconds() - worker.started_at >= STABLE_AFTER:
            self._delay[index] = RESTART_FIRST
        delay = self._delay[index]
        self._delay[index] = min(delay * 2, RESTART_MAX)
        self.restarts += 1
        log.warn(
            "worker {worker} exited ({how}); starting it again in {delay:.1f} s",
            worker=worker.name,
            how=how,
            delay=delay,
        )
        self._pending_restarts[index] = self.reactor.callLater(delay, self._spawn, index)

    def _signal_all(self, name: str) -> None:
        for worker in list(self.workers.values()):
            try:
                worker.transport.signalProcess(name)
            except (error.ProcessExitedAlready, OSError):
                pass

    def _forward_sighup(self):
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self._signal_all, "HUP")

        previous = signal.signal(signal.SIGHUP, handler)

        def undo() -> None:
            if signal.getsignal(signal.SIGHUP) is handler:
                signal.signal(signal.SIGHUP, previous if previous is not None else signal.SIG_DFL)

        return undo

    # -- stop

    def stopService(self) -> defer.Deferred:
        """Every worker drains and exits; killed if it has not ``drain_timeout`` + 5 s later."""
        service.Service.stopService(self)
        self._stopping = True
        self._undo_sighup()
        for call in self._pending_restarts.values():
            if call.active():
                call.cancel()
        self._pending_restarts.clear()
        done: defer.Deferred = defer.Deferred()
        if self.workers:
            self._all_ended = done
            self._signal_all("TERM")
            killer = self.reactor.callLater(self.config.server.drain_timeout + KILL_MARGIN, self._signal_all, "KILL")
            done.addBoth(lambda result: (killer.cancel() if killer.active() else None, result)[1])
        else:
            done.callback(None)
        done.addBoth(self._close_sockets)
        return done

    def _close_sockets(self, result: Any) -> Any:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        return result
