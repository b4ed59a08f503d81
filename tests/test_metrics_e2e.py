"""/metrics, /ready and the SIGTERM drain as operators meet them: over real sockets, scraped by
Debian's real ``prometheus``, and on a real ``twistd`` process sent SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor, task

from coffeechat.errors import ErrorCode
from coffeechat.protocols import client as cim_client
from coffeechat.protocols.client import ResilientClient, WebSocketClosed
from coffeechat.schema import Cmd

from .conftest import node_config, start_node, stop_node
from .test_process import free_port, port_open, twistd, wait_for_ports

PW = cim_client.md5_password("pw")


async def get(url: str, token: str = "") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await treq.get(url, headers=headers)
    return response.code, await treq.content(response)


def parse(text: bytes) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def eventually(check, timeout: float = 30.0, every: float = 0.2):
    """``await check()`` until it returns something true (returned), or fail with its last value."""
    last = None
    for _ in range(int(timeout / every)):
        last = await check()
        if last:
            return last
        await sleep(every)
    raise AssertionError(f"not true within {timeout} s: last {last!r}")


# -- in-process, real sockets


@pytest_twisted.ensureDeferred
async def test_metrics_and_ready_over_http_with_sqlite(tmp_path):
    live = await start_node(node_config(tmp_path))
    try:
        await live.register("alice")
        bob_id = await live.register("bobby")
        alice = await live.login("alice")
        bob = await live.login("bobby", transport="ws-binary")
        for i in range(5):
            await alice.send_message(bob_id, f"hello {i}")
        for _ in range(5):
            await bob.next_push(Cmd.MSG_DATA)
        await bob.heartbeat()  # the delivery acks were read before this answer

        status, text = await get(live.http_url + "/metrics")
        assert status == 200
        values = parse(text)
        assert values["coffeechat_connections", (("transport", "cim"),)] == 1
        assert values["coffeechat_connections", (("transport", "ws"),)] == 1
        assert values["coffeechat_connections", (("transport", "http"),)] >= 1  # this scrape's
        assert values["coffeechat_messages_received_total", (("kind", "single"),)] == 5
        assert values["coffeechat_pushes_sent_total", (("kind", "message"),)] == 5
        assert values["coffeechat_delivery_ack_seconds_count", ()] == 5
        assert values["coffeechat_logins_total", (("method", "password"), ("result", "ok"))] == 2
        # The SQLite writer's group commits: a commit per batch, five messages and the registrations.
        assert values["coffeechat_store_commit_seconds_count", ()] >= 1
        assert values["coffeechat_store_batch_size_sum", ()] >= 5
        assert values["coffeechat_store_commits_total", ()] == values["coffeechat_store_commit_seconds_count", ()]
        storage = (("backend", "sqlite"), ("dependency", "storage"))
        assert values["coffeechat_dependency_up", storage] == 1
        assert values["coffeechat_dependency_failures_total", storage] == 0
        assert values["process_resident_memory_bytes", ()] > 0

        # A WebSocket on the HTTP listener's path counts as a WebSocket, and every count comes
        # back down when the clients leave.
        await live.register("carol")
        carol = await live.login("carol", transport="ws-binary", url=live.ws_http_url)

        async def connections() -> dict:
            values = parse((await get(live.http_url + "/metrics"))[1])
            return {t: values["coffeechat_connections", (("transport", t),)] for t in ("cim", "ws")}

        assert await connections() == {"cim": 1, "ws": 2}
        for client in (alice, bob, carol):
            client.transport.loseConnection()

        async def emptied() -> bool:
            return await connections() == {"cim": 0, "ws": 0}

        await eventually(emptied, timeout=10)

        status, body = await get(live.http_url + "/ready")
        answer = json.loads(body)
        assert (status, answer["status"], answer["failing"]) == (200, "ready", [])
        assert answer["checks"]["storage"]["ok"] and answer["checks"]["presence"]["ok"]
        status, body = await get(live.http_url + "/health")
        assert status == 200
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_own_metrics_listener_with_a_token(tmp_path):
    config = node_config(
        tmp_path,
        **{"listen.metrics": ["tcp:0:interface=127.0.0.1"], "metrics.http": False, "metrics.token": "scrape-me"},
    )
    live = await start_node(config)
    try:
        port = live.node.listening_port("metrics").getHost().port
        base = f"http://127.0.0.1:{port}"
        assert (await get(base + "/metrics"))[0] == 401
        assert (await get(base + "/metrics", "wrong"))[0] == 401
        status, text = await get(base + "/metrics", "scrape-me")
        assert status == 200 and ("coffeechat_draining", ()) in parse(text)
        assert (await get(base + "/ready"))[0] == 200
        assert (await get(base + "/health"))[0] == 200
        # Only the monitoring routes there; and /metrics is off on the public HTTP listener.
        assert (await get(base + "/admin/stats", "admin-secret"))[0] == 404
        assert (await get(live.http_url + "/metrics", "scrape-me"))[0] == 404
    finally:
        await stop_node(live)


# -- a twistd process


def write_config(cwd: Path, ports: dict[str, int], extra: str = "", drain_delay: float = 1.0) -> None:
    listen = "\n".join(f'{name} = ["tcp:{port}:interface=127.0.0.1"]' for name, port in ports.items())
    (cwd / "node.toml").write_text(
        f'[server]\ndata_dir = "data"\nnode_name = "n1"\ndrain_delay = {drain_delay}\ndrain_timeout = 15.0\n'
        f"[listen]\n{listen}\n[auth]\nscrypt_n = 1024\n{extra}"
    )


async def exited(process: subprocess.Popen, cwd: Path, timeout: float = 30.0) -> str:
    for _ in range(int(timeout / 0.1)):
        if process.poll() is not None:
            break
        await sleep(0.1)
    else:
        process.kill()
        raise AssertionError(f"twistd did not exit:\n{(cwd / 'twistd.log').read_text()}")
    log = (cwd / "twistd.log").read_text()
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "Traceback" not in log, log
    return log


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (Debian package prometheus)")
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    return found


@pytest_twisted.ensureDeferred
async def test_real_prometheus_scrapes_a_running_node(tmp_path):
    binary = prometheus_binary()
    ports = {"cim": free_port(), "http": free_port(), "ws": free_port(), "metrics": free_port()}
    write_config(tmp_path, ports, '[metrics]\ntoken = "scrape-me"\nreactor_lag_interval = 0.5\n')
    node = twistd(tmp_path, "--config", "node.toml")
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: coffeechat\n    authorization:\n      credentials: scrape-me\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{ports['metrics']}']\n"
    )
    prom_log = open(tmp_path / "prometheus.log", "wb")
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{prom_port}/api/v1/query"
    try:
        await wait_for_ports(node, tmp_path, *ports.values())
        base = f"http://127.0.0.1:{ports['http']}"
        for name in ("alice", "bobby"):
            assert (await cim_client.register(reactor, base, name, name.title(), PW))["error_code"] == 200
        alice = await cim_client.connect(reactor, f"tcp:127.0.0.1:{ports['cim']}")
        bob = await cim_client.connect(reactor, f"tcp:127.0.0.1:{ports['cim']}")
        await alice.login_password("alice", PW)
        await bob.login_password("bobby", PW)
        for i in range(3):
            await alice.send_message(bob.user_id, f"scraped {i}")

        async def query(expr: str) -> list:
            response = await treq.get(api, params={"query": expr})
            answer = json.loads(await treq.content(response))
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        async def value(expr: str, wanted: float):
            try:
                result = await query(expr)
            except Exception:  # Prometheus still starting
                return None
            return result if result and float(result[0]["value"][1]) == wanted else None

        # Prometheus' own view: the target is up, and the values it scraped are the node's.
        await eventually(lambda: value('up{job="coffeechat"}', 1), timeout=60)
        found = await eventually(lambda: value('coffeechat_messages_received_total{kind="single"}', 3))
        assert found[0]["metric"]["instance"] == f"127.0.0.1:{ports['metrics']}"
        await eventually(lambda: value('coffeechat_connections{transport="cim"}', 2))
        await eventually(lambda: value('sum(coffeechat_logins_total{method="password",result="ok"})', 2))
        await eventually(lambda: value('coffeechat_node{node="n1"}', 1))
        lag = await eventually(lambda: query("coffeechat_reactor_lag_seconds_count"))
        assert float(lag[0]["value"][1]) >= 1
        alice.transport.loseConnection()
        bob.transport.loseConnection()
        node.send_signal(signal.SIGTERM)
        await exited(node, tmp_path)
    finally:
        for process in (node, prometheus):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        prom_log.close()


@pytest_twisted.ensureDeferred
async def test_sigterm_drains_the_node(tmp_path):
    """SIGTERM: /ready says 503 at once while the node still answers, the client listeners
    close, the connected clients are told SERVER_SHUTDOWN (WebSocket: close 1012) after
    drain_delay, a ResilientClient moves to the other server, everything acknowledged is on disk,
    and the process exits cleanly."""
    ports = {"cim": free_port(), "http": free_port(), "ws": free_port()}
    write_config(tmp_path, ports, drain_delay=3.0)  # time to look at the node while it drains
    process = twistd(tmp_path, "--config", "node.toml")
    other = await start_node(node_config(tmp_path / "other"))  # where clients go next
    try:
        await wait_for_ports(process, tmp_path, *ports.values())
        base = f"http://127.0.0.1:{ports['http']}"
        for name in ("alice", "bobby", "carol"):
            assert (await cim_client.register(reactor, base, name, name.title(), PW))["error_code"] == 200
            await other.register(name, "pw")
        alice = await cim_client.connect(reactor, f"tcp:127.0.0.1:{ports['cim']}")
        bob = await cim_client.connect(reactor, f"ws://127.0.0.1:{ports['ws']}/")
        await alice.login_password("alice", PW)
        await bob.login_password("bobby", PW)
        carol = ResilientClient(
            reactor,
            [f"tcp:127.0.0.1:{ports['cim']}", other.cim_endpoint],
            "carol",
            "pw",
            backoff_initial=0.1,
            failover_jitter=0.1,
        )
        await carol.start()
        await carol.when_logged_in()
        assert carol.server_index == 0
        acks = [await alice.send_message(bob.user_id, f"before SIGTERM {i}") for i in range(3)]
        for _ in acks:
            await bob.next_push(Cmd.MSG_DATA)  # and acked (auto_delivery_ack)
        await bob.heartbeat()
        assert (await get(base + "/ready"))[0] == 200

        signalled = reactor.seconds()
        process.send_signal(signal.SIGTERM)

        async def draining():
            status, body = await get(base + "/ready")
            return (status, json.loads(body)) if status == 503 else None

        status, answer = await eventually(draining, timeout=5, every=0.05)
        assert answer["failing"] == ["draining"] and answer["checks"]["draining"]["detail"] == "draining"
        assert process.poll() is None
        # The client listeners are closed, the connected clients are not told yet (drain_delay).
        await eventually(lambda: defer.succeed(not port_open(ports["cim"]) and not port_open(ports["ws"])), 5)
        assert alice.transport.connected
        # The HTTP port stays open for the balancer, but refuses new WebSocket clients there.
        with pytest.raises(WebSocketClosed) as refused:
            await cim_client.connect(reactor, f"ws://127.0.0.1:{ports['http']}/ws")
        assert refused.value.http_status == 503, refused.value
        _, values = await get(base + "/metrics")
        assert parse(values)["coffeechat_draining", ()] == 1

        _, _, kick = await alice.next_push(Cmd.KICKOUT_NOTIFY, timeout=10)
        assert kick.reason_code == ErrorCode.SERVER_SHUTDOWN
        assert reactor.seconds() - signalled >= 2.9  # not before drain_delay
        await alice.closed
        closed = await bob.closed
        assert isinstance(closed, WebSocketClosed) and closed.code == 1012, closed
        log = await exited(process, tmp_path)
        assert "draining: not ready any more" in log and "drained in" in log and "node stopped" in log, log

        # Carol was sent elsewhere and logged in there.
        await eventually(lambda: defer.succeed(carol.logged_in and carol.server_index == 1), timeout=10)
        assert carol.failovers == 1
        await carol.stop()

        # Every acknowledged message and the delivery acks are on disk.
        db = sqlite3.connect(tmp_path / "data" / "coffeechat.sqlite3")
        try:
            (stored,) = db.execute("SELECT count(*) FROM messages").fetchone()
            (delivered,) = db.execute(
                "SELECT max(delivered_seq) FROM user_conversations WHERE user_id = ?", (bob.user_id,)
            ).fetchone()
        finally:
            db.close()
        assert stored == 3 and delivered == max(a.server_msg_id for a in acks) == 3
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        await stop_node(other)
