"""``[server] workers = N`` (coffeechat/workers.py): the configuration it needs, and a real
supervisor with two workers on one set of ports, on a real PostgreSQL and Redis: users on
different workers chat, a killed worker comes back and its users reconnect, SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from coffeechat.config import ConfigError, load_config
from coffeechat.endpoints import bind_shared, offset_port, socket_address
from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd
from coffeechat.workers import shared_listeners, worker_name
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_process import free_port, port_open, twistd

LEASE = 2.0
CLUSTER = {"storage.backend": "postgres", "storage.dsn": "postgresql:///x", "presence.backend": "redis"}


# ---- configuration ------------------------------------------------------------------------------


def test_one_worker_is_the_default_and_auto_is_the_cores():
    assert load_config(None).server.worker_count == 1
    config = load_config(None, {"server.workers": "auto", **CLUSTER})
    assert config.server.workers == "auto"
    assert config.server.worker_count == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["two", 0, -1, 257, True, 1.5])
def test_a_bad_worker_count_is_refused(value):
    with pytest.raises(ConfigError, match="server.workers"):
        load_config(None, {"server.workers": value, **CLUSTER})


def test_several_workers_need_postgres_and_redis():
    with pytest.raises(ConfigError, match="storage.backend = 'postgres'"):
        load_config(None, {"server.workers": 2})
    with pytest.raises(ConfigError, match="presence.backend = 'redis'"):
        load_config(None, {"server.workers": 2, "storage.backend": "postgres"})
    assert load_config(None, {"server.workers": 2, **CLUSTER}).server.worker_count == 2


def test_several_workers_need_tcp_listeners():
    with pytest.raises(ConfigError, match="listen.cim: 'unix:/tmp/cim.sock'"):
        load_config(None, {"server.workers": 2, "listen.cim": ["unix:/tmp/cim.sock"], **CLUSTER})
    config = load_config(
        None, {"server.workers": 2, "listen.cim": ["haproxy:tcp:8000"], "listen.metrics": ["tcp:9100"], **CLUSTER}
    )
    shared = shared_listeners(config)
    assert "cim:haproxy:tcp:8000" in shared and not any(key.startswith("metrics:") for key in shared)
    assert len(shared) == sum(len(e) for name, e in config.listen.endpoints.items() if name != "metrics")


def test_worker_names_and_unshared_ports():
    config = load_config(None, {"server.node_name": "box"})
    assert [worker_name(config, i) for i in (0, 3)] == ["box-w0", "box-w3"]
    assert offset_port("tcp:9100:interface=127.0.0.1", 2) == "tcp:9102:interface=127.0.0.1"
    assert offset_port("tcp:port=9100:interface=\\:\\:1", 1) == "tcp:port=9101:interface=\\:\\:1"
    assert offset_port("haproxy:tcp:9100", 1) == "haproxy:tcp:9101"
    assert offset_port("tcp:0", 5) == "tcp:0"  # each worker its own free port
    assert offset_port("tcp:9100", 0) == "tcp:9100"


def test_a_shared_socket_is_bound_once_where_the_endpoint_says():
    address = socket_address(reactor, "tcp:0:interface=127.0.0.1:backlog=77")
    assert (address.family, address.interface, address.port, address.backlog) == (socket.AF_INET, "127.0.0.1", 0, 77)
    sock = bind_shared(address)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        with socket.create_connection((host, port), timeout=5):
            pass  # the kernel accepts into the backlog before any worker adopts it
    finally:
        sock.close()
    with pytest.raises(ConfigError, match="must be a TCP port"):
        socket_address(reactor, "unix:/tmp/x.sock")


# ---- a supervisor with two workers --------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _server_side_owner(pids: list[int], client_port: int) -> int | None:
    """Which of ``pids`` holds the accepted end of the connection from local port ``client_port``."""
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == client_port:
            inodes[fields[9]] = remote_port
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            return pid
    return None


async def _until(condition, timeout: float = 30.0, step: float = 0.1):
    for _ in range(int(timeout / step)):
        value = condition()
        if value:
            return value
        await task.deferLater(reactor, step, lambda: None)
    raise AssertionError("condition not met in time")


class Cluster:
    def __init__(self, folder: Path, dsn: str, redis_url: str) -> None:
        self.folder = folder
        self.cim, self.http = free_port(), free_port()
        self.config = folder / "coffeechat.toml"
        self.config.write_text(
            f"""
[server]
data_dir = "{folder / "data"}"
node_name = "box"
workers = 2
drain_timeout = 5.0
[listen]
cim = ["tcp:{self.cim}:interface=127.0.0.1"]
http = ["tcp:{self.http}:interface=127.0.0.1"]
ws = []
[storage]
backend = "postgres"
dsn = "{dsn}"
[presence]
backend = "redis"
redis = "{redis_url}"
lease_seconds = {LEASE}
timeout = 1.0
"""
        )
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        return (self.folder / "twistd.log").read_text(errors="replace")

    async def start(self) -> None:
        self.process = twistd(self.folder, "--config", str(self.config))
        await _until(lambda: port_open(self.cim) and len(self.workers()) == 2, timeout=60)
        await self.settled(2)

    async def settled(self, joins: int) -> None:
        """Both workers serve, and each knows the other: it refreshes the live nodes every
        lease/4 (0.5 s here), and routes to nobody else before (docs/deployment.md)."""
        await _until(lambda: self.log().count("joined the cluster") >= joins, timeout=60)
        await task.deferLater(reactor, 2 * LEASE, lambda: None)

    def workers(self) -> list[int]:
        return _children(self.process.pid) if self.process else []

    async def login(self, name: str) -> cim_client.CIMClient:
        client = await cim_client.connect(reactor, f"tcp:127.0.0.1:{self.cim}")
        rsp = await client.login_password(name, cim_client.md5_password("secret"))
        assert rsp.result_code == 200, rsp
        return client

    def worker_of(self, client: cim_client.CIMClient) -> int | None:
        return _server_side_owner(self.workers(), client.transport.getHost().port)


@pytest_twisted.async_yield_fixture
async def cluster(tmp_path, pg_server, redis_server):  # noqa: F811
    c = Cluster(tmp_path, pg_server.database(tmp_path), redis_server.url)
    await c.start()
    yield c
    if c.process is not None and c.process.poll() is None:
        c.process.kill()
        c.process.wait(10)
    for pid in c.workers():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    pg_server.release(tmp_path)


async def _register(c: Cluster, name: str) -> None:
    answer = await cim_client.register(
        reactor, f"http://127.0.0.1:{c.http}", name, name.title(), cim_client.md5_password("secret")
    )
    assert answer["error_code"] == 200, answer


async def _one_on_each_worker(c: Cluster) -> list[cim_client.CIMClient]:
    """Users logged in one connection each until both workers hold one: [client on one, on the other]."""
    placed: dict[int, cim_client.CIMClient] = {}
    others = []
    for i in range(30):
        name = f"user{i}"
        await _register(c, name)
        client = await c.login(name)
        owner = await _until(lambda client=client: c.worker_of(client), timeout=10)
        if owner in placed:
            others.append(client)
        else:
            placed[owner] = client
        if len(placed) == 2:
            for extra in others:
                extra.transport.loseConnection()
            return list(placed.values())
    raise AssertionError("30 connections in a row went to the same worker")


async def _chat(sender: cim_client.CIMClient, receiver: cim_client.CIMClient, text: str) -> None:
    ack = await sender.send_message(receiver.user_id, text)
    assert ack.server_msg_id > 0, ack
    _, _, push = await receiver.next_push(Cmd.MSG_DATA, timeout=10)
    assert (push.from_user_id, push.msg_data, push.server_msg_id) == (sender.user_id, text.encode(), ack.server_msg_id)


@pytest_twisted.ensureDeferred
async def test_two_workers_share_the_port_and_deliver_to_each_other(cluster):
    a, b = await _one_on_each_worker(cluster)
    assert cluster.worker_of(a) != cluster.worker_of(b)
    await _chat(a, b, "across workers")
    await _chat(b, a, "and back")
    a.transport.loseConnection()
    b.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_killed_worker_is_started_again_and_sigterm_stops_all(cluster):
    victim = sorted(cluster.workers())[0]
    os.kill(victim, signal.SIGKILL)
    await _until(lambda: len(cluster.workers()) == 2 and victim not in cluster.workers(), timeout=30)
    assert "exited (signal 9); starting it again" in cluster.log()
    await cluster.settled(3)
    a, b = await _one_on_each_worker(cluster)  # the new worker serves too
    await _chat(a, b, "after the restart")
    a.transport.loseConnection()
    b.transport.loseConnection()
    workers = cluster.workers()
    cluster.process.send_signal(signal.SIGTERM)
    await _until(lambda: cluster.process.poll() is not None, timeout=30)
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in workers)
    log = cluster.log()
    assert log.count("stopped (") == 2, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest_twisted.ensureDeferred
async def test_a_port_in_use_stops_the_supervisor_with_the_reason(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        config = tmp_path / "coffeechat.toml"
        config.write_text(
            f'[server]\ndata_dir = "{tmp_path / "data"}"\nworkers = 2\n'
            f'[listen]\ncim = ["tcp:{port}:interface=127.0.0.1"]\nhttp = []\nws = []\n'
            '[storage]\nbackend = "postgres"\ndsn = "postgresql:///nowhere"\n'
            '[presence]\nbackend = "redis"\n'
        )
        process = twistd(tmp_path, "--config", str(config))
        await _until(lambda: process.poll() is not None, timeout=30)
        log = (tmp_path / "twistd.log").read_text()
        assert "could not listen on cim:" in log and "Address already in use" in log, log[-2000:]
        assert "started (pid" not in log  # no worker was started
    finally:
        busy.close()
