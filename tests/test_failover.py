"""The failover drill (docs/deployment.md), for real: two ``twistd coffeechat`` processes sharing a
PostgreSQL and a Redis started by the tests; under a steady message load node 1 is killed with
SIGKILL; its clients (``ResilientClient`` with both servers listed) move to node 2, and every message
acknowledged before or after the kill reaches every device of its recipient exactly once, in
order, with no gap.  Presence shows node 1 dead within its lease, and the time from the kill to
every client logged in again is measured (docs/performance.md, "Failover")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.protocols import client as cim_client
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_process import ROOT, free_port, twistd, wait_for_ports

LEASE = 3.0
PAIRS = 6
SEND_INTERVAL = 0.05  # per sender: 6 pairs x 20 msgs/s
BEFORE_KILL = 1.5
AFTER_FAILOVER = 1.5
MAX_PER_SENDER = 400


def write_config(path: Path, name: str, dsn: str, redis_url: str, ports: dict[str, int]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = path / "coffeechat.toml"
    config.write_text(
        f"""
[server]
node_name = "{name}"
data_dir = "{path / "data"}"
[listen]
cim = ["tcp:{ports["cim"]}:interface=127.0.0.1"]
http = ["tcp:{ports["http"]}:interface=127.0.0.1"]
ws = ["tcp:{ports["ws"]}:interface=127.0.0.1"]
[storage]
backend = "postgres"
dsn = "{dsn}"
[presence]
backend = "redis"
redis = "{redis_url}"
lease_seconds = {LEASE}
[auth]
scrypt_n = 1024
[http]
admin_token = "admin-secret-for-tests"
"""
    )
    return config


class Node:
    def __init__(self, tmp_path: Path, name: str, dsn: str, redis_url: str) -> None:
        self.name = name
        self.dir = tmp_path / name
        self.ports = {"cim": free_port(), "http": free_port(), "ws": free_port()}
        self.config = write_config(self.dir, name, dsn, redis_url, self.ports)
        self.process: subprocess.Popen | None = None

    @property
    def cim(self) -> str:
        return f"tcp:127.0.0.1:{self.ports['cim']}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    async def start(self) -> None:
        self.process = twistd(self.dir, "--config", str(self.config))
        await wait_for_ports(self.process, self.dir, *self.ports.values())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def nodes_report(config: Path) -> dict[str, dict]:
    """``coffeechat nodes --json`` as the admin would run it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-m", "coffeechat.admin", "--config", str(config), "nodes", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return {n["name"]: n for n in json.loads(out.stdout)}


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_kill_9_of_a_node_under_load_loses_and_duplicates_nothing(tmp_path, pg_server, redis_server):  # noqa: F811
    dsn = pg_server.database(tmp_path)
    n1, n2 = Node(tmp_path, "n1", dsn, redis_server.url), Node(tmp_path, "n2", dsn, redis_server.url)
    clients: list[cim_client.ResilientClient] = []
    try:
        await n1.start()
        await n2.start()
        ids = {}
        for i in range(PAIRS):
            for role in ("sendr", "recvr"):
                name = f"{role}{i}"
                answer = await cim_client.register(reactor, n1.http, name, name, cim_client.md5_password("pw"))
                assert answer["error_code"] == 200, answer
                ids[name] = answer["user_id"]

        def resilient(name: str, servers: list[str], inbox: list | None = None) -> cim_client.ResilientClient:
            rc = cim_client.ResilientClient(
                reactor,
                servers,
                name,
                "pw",
                on_message=inbox.append if inbox is not None else None,
                heartbeat_interval=5,
                fetch_history=True,
            )
            clients.append(rc)
            return rc

        # Each receiver has one device that starts on n1 (and fails over) and one on n2.
        inboxes: dict[tuple[int, str], list[cim_client.ChatMessage]] = {}
        senders = []
        for i in range(PAIRS):
            for where, servers in (("on-n1", [n1.cim, n2.cim]), ("on-n2", [n2.cim, n1.cim])):
                inbox = inboxes[(i, where)] = []
                await resilient(f"recvr{i}", servers, inbox).start()
            senders.append(resilient(f"sendr{i}", [n1.cim, n2.cim]))
        await defer.gatherResults([s.start() for s in senders])
        assert all(rc.server == n1.cim for rc in clients if rc.servers[0] == n1.cim)
        report = nodes_report(n2.config)
        assert report["n1"]["alive"] and report["n2"]["alive"]
        assert report["n1"]["online_users"] == 2 * PAIRS and report["n2"]["online_users"] == PAIRS

        acked: dict[int, dict[int, str]] = {i: {} for i in range(PAIRS)}  # sender -> seq -> text
        running = True

        async def load(i: int) -> None:
            count = 0
            while running and count < MAX_PER_SENDER:
                text = f"s{i} #{count}"
                count += 1
                ack = await senders[i].send_text(ids[f"recvr{i}"], text)
                acked[i][ack.server_msg_id] = text
                await sleep(SEND_INTERVAL)

        loads = [defer.ensureDeferred(load(i)) for i in range(PAIRS)]
        await sleep(BEFORE_KILL)
        on_n1 = [rc for rc in clients if rc.server == n1.cim]
        logins_before = {id(rc): rc.logins for rc in on_n1}
        killed_at = time.monotonic()
        n1.kill()
        for _ in range(600):  # every client of n1 logged in on n2 again
            if all(rc.logins > logins_before[id(rc)] and rc.server == n2.cim for rc in on_n1):
                break
            await sleep(0.01)
        failover = time.monotonic() - killed_at
        assert all(rc.server == n2.cim and rc.client is not None for rc in on_n1), [rc.last_error for rc in on_n1]
        await sleep(AFTER_FAILOVER)
        running = False
        await defer.gatherResults(loads)

        for _ in range(400):
            if all(
                len([m for m in inboxes[(i, w)] if not m.outgoing]) >= len(acked[i])
                for i in range(PAIRS)
                for w in ("on-n1", "on-n2")
            ):
                break
            await sleep(0.05)
        total = 0
        for i in range(PAIRS):
            sent = acked[i]
            assert sorted(sent) == list(range(1, len(sent) + 1))  # dense: nothing stored twice
            for where in ("on-n1", "on-n2"):
                got = [m for m in inboxes[(i, where)] if not m.outgoing]
                assert [m.server_msg_id for m in got] == sorted(sent), (i, where)  # once each, in order, no gap
                assert [m.text for m in got] == [sent[s] for s in sorted(sent)]
                assert len({m.client_msg_id for m in got}) == len(got)
            total += len(sent)
        assert total > PAIRS * 20

        lease_deadline = killed_at + LEASE * 1.25 + 3
        while time.monotonic() < lease_deadline:
            report = nodes_report(n2.config)
            if "n1" not in report or not report["n1"]["alive"]:
                break
            await sleep(0.5)
        assert "n1" not in report or not report["n1"]["alive"], report
        assert report["n2"]["online_users"] == 2 * PAIRS  # every user is on n2 now
        print(f"\nfailover: {failover:.3f} s from kill -9 to {len(on_n1)} clients logged in on the other node")
    finally:
        for rc in clients:
            rc.stop()
        n1.kill()
        n2.kill()
        pg_server.release(tmp_path)
