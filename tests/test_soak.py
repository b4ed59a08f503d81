"""Soak: a real ``twistd coffeechat`` under churn for minutes, restarted now and then; its memory
and open files must end where they started, and every acknowledged message must be stored.

Opt-in (it takes as long as it is told): ``COFFEECHAT_SOAK=600 python -m pytest tests/test_soak.py``
runs it for 600 seconds.  Without the variable it is skipped.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.protocols import client as cim_client
from tests.test_process import free_port, stop_cleanly, twistd, wait_for_ports

SOAK_SECONDS = float(os.environ.get("COFFEECHAT_SOAK", "0") or 0)

pytestmark = pytest.mark.skipif(SOAK_SECONDS <= 0, reason="opt-in: set COFFEECHAT_SOAK=<seconds> to run the soak test")

USERS = 24
RESTARTS = 3
PASSWORD = cim_client.md5_password("soak-password")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    """The server process, its accounts, and what was acknowledged."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.cim, self.http, self.ws = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.users: list[tuple[str, int, str]] = []  # (name, user id, token)
        self.acked: dict[str, tuple[int, int, int]] = {}  # client_msg_id -> (sender, receiver, seq)
        self.cycles = 0
        self.refused = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    async def start(self) -> None:
        args = (
            *("--cim", f"tcp:{self.cim}:interface=127.0.0.1", "--http", f"tcp:{self.http}:interface=127.0.0.1"),
            *("--ws", f"tcp:{self.ws}:interface=127.0.0.1", "--data-dir", "d", "--config", "soak.toml"),
        )
        self.process = twistd(self.cwd, *args)
        await wait_for_ports(self.process, self.cwd, self.cim, self.http)

    async def restart(self) -> None:
        await stop_cleanly(self.process, self.cwd)
        await self.start()

    async def register(self) -> None:
        for i in range(USERS):
            name = f"soaker{i:03d}"
            answer = await cim_client.register(reactor, self.base, name, name, PASSWORD)
            assert answer["error_code"] == 200, answer
            login = await cim_client.http_login(reactor, self.base, name, PASSWORD)
            self.users.append((name, login["user_id"], login["token"]))

    async def connect(self, index: int) -> cim_client.CIMClient:
        name, user_id, token = self.users[index]
        client = await cim_client.connect(reactor, f"tcp:127.0.0.1:{self.cim}")
        if random.random() < 0.2:
            rsp = await client.login_password(name, PASSWORD)
        else:
            rsp = await client.login_token(user_id, token)
        assert rsp.result_code == 200, rsp
        return client

    async def cycle(self) -> None:
        """Some users come online, send to each other, read, and leave (logout, close or abort)."""
        chosen = random.sample(range(USERS), 8)
        clients = [await self.connect(i) for i in chosen]
        sends = []
        for _ in range(30):
            a, b = random.sample(range(len(clients)), 2)
            sender, receiver = clients[a], clients[b]
            cmid = f"soak-{self.cycles}-{len(sends)}"

            def remember(ack, sender=sender, receiver=receiver, cmid=cmid):
                if ack.res_code == 1:
                    self.acked[cmid] = (sender.user_id, receiver.user_id, ack.server_msg_id)
                else:
                    self.refused += 1

            sent = sender.send_message(receiver.user_id, f"soak {cmid}", client_msg_id=cmid)
            sends.append(sent.addCallback(remember))
        results = await defer.DeferredList(sends, consumeErrors=True)
        assert all(ok for ok, _ in results), [r for ok, r in results if not ok][:3]
        for client in clients:
            how = random.random()
            if how < 0.4:
                await client.logout()
                await client.close()
            elif how < 0.7:
                await client.close()
            else:
                client.transport.abortConnection()
                await client.when_closed()
        self.cycles += 1

    async def churn(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.cycle()
            await task.deferLater(reactor, 0.05, lambda: None)

    async def check_stored(self) -> None:
        """Every acknowledged message is in storage at its acknowledged position."""
        by_pair: dict[tuple[int, int], dict[str, int]] = {}
        for cmid, (sender, receiver, seq) in self.acked.items():
            by_pair.setdefault((min(sender, receiver), max(sender, receiver)), {})[cmid] = seq
        index = {user_id: i for i, (_, user_id, _) in enumerate(self.users)}
        for (low, high), wanted in random.sample(sorted(by_pair.items()), min(20, len(by_pair))):
            client = await self.connect(index[low])
            stored: dict[str, int] = {}
            end = 0
            while True:
                page = await client.history(high, end_msg_id=end, limit=100)
                if not page.msg_list:
                    break
                stored.update((m.client_msg_id, m.server_msg_id) for m in page.msg_list)
                end = page.msg_list[0].server_msg_id
                if end <= 1:
                    break
            await client.close()
            for cmid, seq in wanted.items():
                assert stored.get(cmid) == seq, (cmid, seq, stored.get(cmid))


@pytest_twisted.ensureDeferred
async def test_soak_memory_and_files_stay_flat(tmp_path):
    (tmp_path / "soak.toml").write_text(
        "[limits]\nmessages_per_second = 1000.0\nmessage_burst = 1000\nrequests_per_second = 1000.0\n"
        "request_burst = 1000\n[auth]\nregistration_burst = 100\n"
    )
    soak = Soak(tmp_path)
    await soak.start()
    try:
        await soak.register()
        # Churn with restarts for the first two thirds, then measure the last third on one process.
        for _ in range(RESTARTS):
            await soak.churn(SOAK_SECONDS * 2 / 3 / RESTARTS)
            await soak.restart()
        await soak.churn(min(30.0, SOAK_SECONDS / 10))  # warm up the new process
        pid = soak.process.pid
        rss_before, files_before = rss_kib(pid), open_files(pid)
        await soak.churn(SOAK_SECONDS / 3)
        await task.deferLater(reactor, 1.0, lambda: None)  # closes are noticed
        rss_after, files_after = rss_kib(pid), open_files(pid)
        await soak.check_stored()
        print(
            f"soak: {soak.cycles} cycles, {len(soak.acked)} messages acknowledged, {soak.refused} refused; "
            f"RSS {rss_before} -> {rss_after} KiB, open files {files_before} -> {files_after}"
        )
        assert files_after <= files_before, (files_before, files_after)
        assert rss_after <= rss_before * 1.10 + 4096, (rss_before, rss_after)
        assert soak.refused == 0
        log = (tmp_path / "twistd.log").read_text()
        assert "Traceback" not in log and "Unhandled" not in log, log[-5000:]
        await stop_cleanly(soak.process, tmp_path)
    finally:
        if soak.process is not None and soak.process.poll() is None:
            soak.process.kill()
            soak.process.wait()
