"""The server as users run it: ``twistd -n coffeechat`` as a real process, killed and restarted."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def twistd_command() -> list[str]:
    """The ``twistd`` script installed beside this Python (as ``pip install`` puts it)."""
    script = Path(sys.executable).parent / "twistd"
    found = str(script) if script.exists() else shutil.which("twistd")
    assert found, "twistd is not installed; run the README's install command"
    return [found]


def twistd(cwd: Path, *args: str) -> subprocess.Popen:
    """Start ``twistd -n coffeechat ARGS`` (this checkout first on the path) logging to cwd/twistd.log."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(cwd / "twistd.log", "ab")
    return subprocess.Popen(
        [*twistd_command(), "--pidfile=", "-n", "coffeechat", *args],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


async def wait_for_ports(process: subprocess.Popen, cwd: Path, *ports: int, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.1)):
        if all(port_open(p) for p in ports):
            return
        if process.poll() is not None:
            raise AssertionError(f"twistd exited with {process.returncode}:\n{(cwd / 'twistd.log').read_text()}")
        await task.deferLater(reactor, 0.1, lambda: None)
    process.kill()
    raise AssertionError(f"twistd did not listen on {ports}:\n{(cwd / 'twistd.log').read_text()}")


async def stop_cleanly(process: subprocess.Popen, cwd: Path, timeout: float = 30) -> None:
    """SIGTERM, then check twistd shut the core down in order (twistd re-raises the signal, so
    the exit status is -SIGTERM)."""
    process.send_signal(signal.SIGTERM)
    for _ in range(int(timeout / 0.1)):
        if process.poll() is not None:
            break
        await task.deferLater(reactor, 0.1, lambda: None)
    else:
        process.kill()
        raise AssertionError("twistd did not exit")
    log = (cwd / "twistd.log").read_text()
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "node stopped" in log, log
    assert "Traceback" not in log, log


@pytest_twisted.ensureDeferred
async def test_readme_run_command_serves_clients(tmp_path):
    """README: ``twistd -n coffeechat`` with no options: CIM on 8000, WebSocket on 8001, HTTP on 18080,
    SQLite in ./coffeechat-data."""
    busy = [p for p in (8000, 8001, 18080) if port_open(p)]
    assert not busy, f"the default ports {busy} must be free for this test"
    process = twistd(tmp_path)
    try:
        await wait_for_ports(process, tmp_path, 8000, 8001, 18080)
        base = "http://127.0.0.1:18080"
        for name in ("alice", "bobby"):
            answer = await cim_client.register(reactor, base, name, name.title(), cim_client.md5_password("pw"))
            assert answer["error_code"] == 200, answer
        alice = await cim_client.connect(reactor, "tcp:127.0.0.1:8000")
        bob = await cim_client.connect(reactor, "tcp:127.0.0.1:8000")
        assert (await alice.login_password("alice", cim_client.md5_password("pw"))).result_code == 200
        assert (await bob.login_password("bobby", cim_client.md5_password("pw"))).result_code == 200
        ack = await alice.send_message(bob.user_id, "hello from the README")
        _, _, push = await bob.next_push(Cmd.MSG_DATA)
        assert push.server_msg_id == ack.server_msg_id == 1
        assert (tmp_path / "coffeechat-data" / "coffeechat.sqlite3").exists()
        await stop_cleanly(process, tmp_path)
        await defer.DeferredList([alice.closed, bob.closed])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest_twisted.ensureDeferred
async def test_kill_9_after_acks_loses_nothing(tmp_path):
    cim, http, ws = free_port(), free_port(), free_port()
    args = (
        *("--cim", f"tcp:{cim}:interface=127.0.0.1", "--http", f"tcp:{http}:interface=127.0.0.1"),
        *("--ws", f"tcp:{ws}:interface=127.0.0.1", "--data-dir", "d", "--config", "load.toml"),
    )
    # Let one client have hundreds of messages in flight, so the kill lands mid-batch.
    (tmp_path / "load.toml").write_text("[limits]\nmessages_per_second = 10000.0\nmessage_burst = 10000\n")
    process = twistd(tmp_path, *args)
    try:
        await wait_for_ports(process, tmp_path, cim, http)
        base = f"http://127.0.0.1:{http}"
        for name in ("alice", "bobby"):
            answer = await cim_client.register(reactor, base, name, name.title(), cim_client.md5_password("pw"))
            assert answer["error_code"] == 200, answer
        alice = await cim_client.connect(reactor, f"tcp:127.0.0.1:{cim}")
        await alice.login_password("alice", cim_client.md5_password("pw"))
        bob_id = (await cim_client.http_login(reactor, base, "bobby", cim_client.md5_password("pw")))["user_id"]
        acked: dict[str, int] = {}

        def remember(ack):
            assert ack.res_code == 1, ack
            acked[ack.client_msg_id] = ack.server_msg_id

        # Many messages in flight at once, so the kill lands while batches are being committed.
        sends = [
            alice.send_message(bob_id, f"msg {i}", client_msg_id=f"c{i}").addCallback(remember) for i in range(400)
        ]
        await sends[199]
        process.send_signal(signal.SIGKILL)
        await defer.DeferredList(sends, consumeErrors=True)
        process.wait()
        assert len(acked) >= 200

        process = twistd(tmp_path, *args)
        await wait_for_ports(process, tmp_path, cim, http)
        bob = await cim_client.connect(reactor, f"tcp:127.0.0.1:{cim}")
        await bob.login_password("bobby", cim_client.md5_password("pw"))
        stored: dict[str, int] = {}
        end = 0
        while True:
            page = await bob.history(alice.user_id, end_msg_id=end, limit=100)
            if not page.msg_list:
                break
            stored.update((m.client_msg_id, m.server_msg_id) for m in page.msg_list)
            end = page.msg_list[0].server_msg_id
        for client_msg_id, seq in acked.items():
            assert stored.get(client_msg_id) == seq, client_msg_id
        assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # dense, no gaps
        await stop_cleanly(process, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_config_is_refused_with_the_key_named(tmp_path):
    config = tmp_path / "coffeechat.toml"
    config.write_text("[limits]\nmax_frame_bytes = 12\nfrobnicate = 1\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [*twistd_command(), "--pidfile=", "-n", "coffeechat", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "limits.frobnicate" in result.stdout + result.stderr
