"""The server under test: a ``twistd`` subprocess the benchmark starts (or one already running),
its /proc figures, and the admin HTTP API that creates the load users.

Why a subprocess and not an in-process node: the figures (RSS per connection, CPU per heartbeat)
must be those of the process users run, measured from outside, and the generators must not share
its interpreter, its GIL or its core.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Limits raised so that the load, not the server's abuse protection, is measured.
LOAD_LIMITS: dict[str, Any] = {
    "messages_per_second": 1_000_000.0,
    "message_burst": 1_000_000,
    "requests_per_second": 1_000_000.0,
    "request_burst": 1_000_000,
    "user_messages_per_second": 1_000_000.0,
    "user_message_burst": 1_000_000,
    "user_requests_per_second": 1_000_000.0,
    "user_request_burst": 1_000_000,
    "max_devices": 100,
    # Connect storms of many thousands take a while before every connection has logged in.
    "login_timeout": 120.0,
    # Thousands of connections come from one address (loopback), none of them hostile.
    "max_unauthenticated_per_address": 1_000_000,
    "max_connections_per_address": 1_000_000,
    # A generator that falls behind is measured as latency, not cut off as a slow consumer.
    "max_output_bytes": 1 << 30,
}
LOAD_HTTP: dict[str, Any] = {"max_connections_per_address": 100_000}
# The generators log in from a few loopback addresses: the per-address KDF share must not refuse
# the password logins a scenario times (--password-logins).
LOAD_AUTH: dict[str, Any] = {"kdf_jobs_per_address": 1024, "kdf_queue_max": 4096}
ACCEPT_BACKLOG = 4096
BULK_USERS = 1000  # the admin API's per-request maximum
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """The server could not be started, or refused a setup request."""


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def twistd_command() -> list[str]:
    """The ``twistd`` script installed beside this Python, else the one on PATH."""
    script = Path(sys.executable).parent / "twistd"
    found = str(script) if script.exists() else shutil.which("twistd")
    if not found:
        raise ServerError("twistd is not installed (pip install . installs it with Twisted)")
    return [found]


def checkout_root() -> Path | None:
    """The source checkout holding this package, when run from one (its twisted/plugins dropin must
    be on the server's path), else None (an installed package brings the plugin along)."""
    import coffeechat

    root = Path(coffeechat.__file__).resolve().parent.parent
    return root if (root / "twisted" / "plugins" / "coffeechat_plugin.py").is_file() else None


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, table by table."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table: covers sub-tables and arrays of tables alike
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(config: dict[str, dict[str, Any]]) -> str:
    """The server configuration as TOML: a table per section, deeper tables inline."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def available_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


@dataclass
class Target:
    """Where the load goes and what the benchmark knows of the server."""

    host: str
    cim_port: int
    http_url: str
    admin_token: str
    pid: int | None = None
    managed: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    cpus: list[int] | None = None
    # The WebSocket listener (``listen.ws``: any path there); None when the server has none.
    ws_port: int | None = None
    ws_path: str = "/"


# ---- /proc ----------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None if it is gone or /proc is not there)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, all its threads included (/proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # after "pid (comm)": state is field 3, utime 14, stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def thread_cpu_seconds(pid: int) -> dict[int, float] | None:
    """utime + stime of each thread of a process by thread id (/proc/<pid>/task/<tid>/stat): the
    server's main thread runs the reactor, the others are its SQLite writer and reader threads."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot (/proc/stat), all cores summed:
    what the server and generators did not use of ``busy`` went to other processes."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    busy = sum(values[:8]) - idle - steal
    return busy / _CLK_TCK, steal / _CLK_TCK


def per_cpu_busy_seconds() -> dict[int, float] | None:
    """Busy CPU seconds of each core since boot (/proc/stat's cpuN lines, steal and idle left out):
    whether one core was full while the other had room, whoever used it."""
    out: dict[int, float] = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *rest = line.split()
                if name == "cpu":
                    continue
                values = [int(v) for v in rest]
                idle = values[3] + values[4]
                steal = values[7] if len(values) > 7 else 0
                out[int(name[3:])] = (sum(values[:8]) - idle - steal) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return None
    return out or None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def machine_memory_used_kib() -> int | None:
    """MemTotal - MemAvailable: the whole machine's memory in use (every process and the kernel)."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(values) < 2:
        return None
    return values["MemTotal"] - values["MemAvailable"]


def kernel_socket_kib() -> int | None:
    """Kernel memory that grows with sockets: slab (socket, inode, file and epoll objects) plus
    the TCP buffer pages of /proc/net/sockstat.  Machine-wide, so only a large delta means much."""
    slab = tcp_pages = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Slab:"):
                    slab = int(line.split()[1])
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    tcp_pages = int(parts[parts.index("mem") + 1])
    except (OSError, ValueError):
        return None
    if slab is None or tcp_pages is None:
        return None
    return slab + tcp_pages * _PAGE // 1024


# ---- the managed server -----------------------------------------------------------------------


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In the child before exec: get ``sig`` if the benchmark dies without cleaning up."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    except Exception:
        pass


def stop_process(process: subprocess.Popen | None, sig: int | None, timeout: float) -> int | None:
    """Send ``sig`` (None: it was sent already), wait, SIGKILL after ``timeout``; the exit code
    (None if there was no process)."""
    if process is None:
        return None
    if process.poll() is None:
        try:
            if sig is not None:
                process.send_signal(sig)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        except BaseException:  # a second Ctrl-C while waiting: do not leave it running
            process.kill()
            process.wait()
            raise
    return process.returncode


class ManagedServer:
    """A ``twistd --pidfile= -n coffeechat`` subprocess with a temporary data dir and a generated
    config (free loopback ports, an admin token, load limits), pinned to ``cpus`` when given.

    Always stop it (``with``/``stop``): it is SIGTERMed, then SIGKILLed if it lingers.
    """

    def __init__(
        self,
        extra_config: Path | None = None,
        cpus: list[int] | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        forced: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.extra_config = extra_config
        self.overrides = overrides or {}
        # Merged over --server-config too: a cluster node's name, storage and presence.
        self.forced = forced or {}
        self.cpus = cpus
        self.dir = Path(tempfile.mkdtemp(prefix="coffeechat-bench-"))
        self.process: subprocess.Popen | None = None
        self.target: Target | None = None
        self.exit_code: int | None = None
        self._ports: tuple[int, int, int] | None = None
        self._config: dict[str, Any] | None = None
        self._admin_token = ""
        self._terminated = False

    def config(self, cim_port: int, http_port: int, admin_token: str, ws_port: int) -> dict[str, Any]:
        """The generated config: load limits, then the scenario's ``overrides`` (a group larger
        than the default member limit), then ``--server-config``; the listeners are the bench's."""
        config: dict[str, Any] = {
            "server": {"node_name": "bench"},
            "listen": {},
            "limits": dict(LOAD_LIMITS),
            "auth": dict(LOAD_AUTH),
            "http": dict(LOAD_HTTP),
        }
        config = deep_merge(config, self.overrides)
        if self.extra_config is not None:
            with open(self.extra_config, "rb") as f:
                config = deep_merge(config, tomllib.load(f))
        config = deep_merge(config, self.forced)
        # Where it listens, where it keeps data and its admin token are the benchmark's to choose.
        config.setdefault("server", {})["data_dir"] = str(self.dir / "data")
        from coffeechat.plugins import transports

        # Transports the benchmark does not load (the server's list grows) are turned off, so that
        # it never collides on their default ports; CIM, HTTP and WebSocket get free ports.
        config["listen"] = {name: [] for name in transports()}
        config["listen"]["cim"] = [f"tcp:{cim_port}:interface=127.0.0.1:backlog={ACCEPT_BACKLOG}"]
        config["listen"]["http"] = [f"tcp:{http_port}:interface=127.0.0.1"]
        # The WebSocket transport on a port of its own (--transport ws); no browser is involved.
        config["listen"]["ws"] = [f"tcp:{ws_port}:interface=127.0.0.1:backlog={ACCEPT_BACKLOG}"]
        config.setdefault("http", {})["admin_token"] = admin_token
        return config

    def start(self, timeout: float = 60.0) -> Target:
        """Launch the server and wait until it answers on every listener."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Write the config and start ``twistd`` (without waiting for it: several nodes of a
        cluster start together)."""
        from coffeechat.config import ConfigError, load_config

        cim_port, http_port, ws_port = free_port(), free_port(), free_port()
        while len({cim_port, http_port, ws_port}) < 3:
            http_port, ws_port = free_port(), free_port()
        admin_token = secrets.token_urlsafe(24)
        config = self.config(cim_port, http_port, admin_token, ws_port)
        path = self.dir / "coffeechat.toml"
        path.write_text(to_toml(config))
        try:
            load_config(path)
        except ConfigError as e:
            raise ServerError(f"server config: {e}") from None
        self._ports, self._config, self._admin_token = (cim_port, http_port, ws_port), config, admin_token
        env = dict(os.environ)
        root = checkout_root()
        if root is not None:
            env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
        command = [*twistd_command(), "--pidfile=", "-n", "coffeechat", "--config", str(path)]
        preexec = die_with_parent
        if self.cpus:
            taskset = shutil.which("taskset")
            if taskset:
                command = [taskset, "-c", ",".join(map(str, self.cpus)), *command]
            else:
                cpus = set(self.cpus)

                def preexec() -> None:
                    die_with_parent()
                    os.sched_setaffinity(0, cpus)

        log = open(self.dir / "twistd.log", "wb")
        try:
            self.process = subprocess.Popen(
                command,
                cwd=self.dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops the server itself
                preexec_fn=preexec,
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 60.0) -> Target:
        """Wait (at most ``timeout``) until the launched server answers on CIM, WebSocket and
        ``/health``; its :class:`Target`."""
        if self.process is None or self._ports is None or self._config is None:
            raise ServerError("the server was not launched")
        cim_port, http_port, ws_port = self._ports
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"twistd exited with {self.process.returncode}:\n{self.log_tail()}")
            if port_open("127.0.0.1", cim_port) and port_open("127.0.0.1", ws_port) and _health(base):
                self.target = Target(
                    "127.0.0.1",
                    cim_port,
                    base,
                    self._admin_token,
                    self.process.pid,
                    True,
                    self._config,
                    self.cpus,
                    ws_port,
                )
                return self.target
            time.sleep(0.1)
        raise ServerError(f"twistd did not start within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.dir / "twistd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        try:
            return (self.dir / "twistd.log").read_text(errors="replace")
        except OSError:
            return ""

    def terminate(self) -> None:
        """SIGTERM without waiting (the nodes of a cluster shut down together); ``stop`` waits."""
        if self.process is not None and self.process.poll() is None and not self._terminated:
            try:
                self.process.send_signal(signal.SIGTERM)
                self._terminated = True
            except OSError:
                pass

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a clean shutdown flushes storage), SIGKILL after ``timeout``; remove the data."""
        process = self.process
        # A second SIGTERM would interrupt the clean shutdown.
        sig = None if self._terminated else signal.SIGTERM
        self._terminated = True
        if process is not None:
            self.exit_code = stop_process(process, sig, timeout)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.exit_code

    def __enter__(self) -> ManagedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _health(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


# ---- admin API --------------------------------------------------------------------------------


def _post_json(url: str, payload: dict[str, Any], admin_token: str, timeout: float) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin_token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise ServerError(f"POST {url}: HTTP {e.code}: {e.read()[:300]!r}") from None


def create_users(
    target: Target, names: list[str], password_md5: str | None = None, timeout: float = 300.0
) -> list[tuple[int, str]]:
    """Create accounts in bulk (``POST /admin/users`` with tokens, 1000 per request); returns
    ``(user_id, token)`` in the order of ``names``.  Without a password they are token-only."""
    url = target.http_url.rstrip("/") + "/admin/users"
    out: list[tuple[int, str]] = []
    for start in range(0, len(names), BULK_USERS):
        chunk = names[start : start + BULK_USERS]
        specs: list[dict[str, str]] = []
        for name in chunk:
            spec = {"userName": name}
            if password_md5:
                spec["userPwd"] = password_md5
            specs.append(spec)
        answer = _post_json(url, {"users": specs, "issueTokens": True}, target.admin_token, timeout)
        if answer.get("error_code") != 200:
            raise ServerError(f"creating users failed: {answer}")
        for entry in answer["users"]:
            if "error_code" in entry or "token" not in entry:
                raise ServerError(f"creating user {entry.get('userName')!r} failed: {entry}")
            out.append((int(entry["user_id"]), entry["token"]))
    return out
