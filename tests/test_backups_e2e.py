"""Backups of a real node under load: messages are sent and acknowledged over loopback TCP while
the operator's ``POST /admin/backups`` takes the backup; the backup is restored with
``coffeechat restore`` into an empty data dir (SQLite) or an empty database (PostgreSQL, with the
real pg_dump and pg_restore), a new node is started on it, and the recipients' history holds
every message acknowledged before the backup's snapshot, and the uploaded files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor, task, threads

from coffeechat.backends import postgres_backup, sqlite_backup
from coffeechat.protocols import client as cim_client
from coffeechat.schema import pb

from .conftest import node_config, start_node, stop_node
from .pgserver import pg_server, unavailable  # noqa: F401  (the session fixture)

REPO = Path(__file__).resolve().parent.parent
MAIN = "from coffeechat.admin import main; raise SystemExit(main())"
ADMIN = {"Authorization": "Bearer admin-secret"}
SENDERS = [("alice", "bobby"), ("carol", "david"), ("erinn", "bobby")]
WINDOW = 4  # messages in flight per sender
# the load is faster than a person types: no rate limits in its way
UNLIMITED = {
    "limits.messages_per_second": 100_000.0,
    "limits.message_burst": 100_000,
    "limits.user_messages_per_second": 100_000.0,
    "limits.user_message_burst": 100_000,
    "limits.requests_per_second": 100_000.0,
    "limits.request_burst": 100_000,
    "limits.user_requests_per_second": 100_000.0,
    "limits.user_request_burst": 100_000,
}


def ballast(path: Path, megabytes: int) -> None:
    """Make the node's SQLite database as big as a used one, so that the copy takes many steps
    (4 MiB each) with commits between them."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("CREATE TABLE test_ballast (data BLOB)")
    conn.execute("BEGIN")
    chunk = os.urandom(64 * 1024)
    conn.executemany("INSERT INTO test_ballast VALUES (?)", [(chunk,)] * (megabytes * 16))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


class Load:
    """Senders that keep ``WINDOW`` messages each in flight until stopped; every ack is kept
    with the monotonic time it arrived."""

    def __init__(self) -> None:
        self.acks: list[tuple[float, int, int, int, bytes]] = []  # (time, from, to, server_msg_id, text)
        self.stopping = False
        self.running: list[defer.Deferred] = []

    def start(self, client: cim_client.CIMClient, to_id: int) -> None:
        for lane in range(WINDOW):
            self.running.append(defer.ensureDeferred(self._lane(client, to_id, lane)))

    async def _lane(self, client: cim_client.CIMClient, to_id: int, lane: int) -> None:
        n = 0
        while not self.stopping:
            text = f"{client.user_id}>{to_id} lane {lane} #{n}".encode()
            ack = await client.send_message(to_id, text)
            assert ack.res_code == 1 and ack.server_msg_id > 0, ack
            self.acks.append((time.monotonic(), client.user_id, to_id, ack.server_msg_id, text))
            n += 1

    async def stop(self) -> None:
        self.stopping = True
        await defer.gatherResults(self.running, consumeErrors=True)


async def until(condition, timeout: float = 120.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await task.deferLater(reactor, step, lambda: None)


async def admin(live, method: str, path: str):
    response = await treq.request(method, live.http_url + path, headers=ADMIN, reactor=reactor)
    return response.code, await response.json()


async def history(client: cim_client.CIMClient, peer: int) -> list[tuple[int, int, bytes]]:
    """The whole conversation with ``peer``, oldest first: (server_msg_id, from, text)."""
    found: list[tuple[int, int, bytes]] = []
    end = 0
    while True:
        page = await client.history(peer, end_msg_id=end, limit=100)
        if not page.msg_list:
            return sorted(found)
        found += [(m.server_msg_id, m.from_user_id, m.msg_data) for m in page.msg_list]
        end = min(m.server_msg_id for m in page.msg_list)
        if end <= 1:
            return sorted(found)


def run_cli(config: Path, *args: str) -> defer.Deferred:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return threads.deferToThread(
        subprocess.run,
        [sys.executable, "-c", MAIN, "--config", str(config), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    """The storage settings of the loaded node and of the node restored from its backup."""
    if request.param == "sqlite":
        yield "sqlite", {}, {}
        return
    for tool in ("pg_dump", "pg_restore"):
        if not postgres_backup.shutil.which(tool):
            unavailable(f"{tool} not found (install postgresql-client)")
    server = request.getfixturevalue("pg_server")
    restored_key = tmp_path / "restored"
    source = {"storage.backend": "postgres", "storage.dsn": server.database(tmp_path)}
    target = {"storage.backend": "postgres", "storage.dsn": server.database(restored_key)}
    try:
        yield "postgres", source, target
    finally:
        server.release(tmp_path)
        server.release(restored_key)


@pytest_twisted.ensureDeferred
async def test_a_backup_taken_under_load_restores_every_acknowledged_message(tmp_path, engine, monkeypatch):
    name, source, target = engine
    backups = tmp_path / "backups"
    settings = {"backups.dir": str(backups), "backups.interval": 86400.0, **UNLIMITED, **source}
    live = await start_node(node_config(tmp_path, **settings))
    load = Load()
    copy_window: list[float] = []  # when the database copy started and ended (in the backups thread)
    go_on = threading.Event()  # the backup waits after the copy until the test has looked at it
    held: list[bool] = []  # the wait is over (True: released by the test; False: timed out)

    def timed(real):
        def copy(*args, **kwargs):
            copy_window.append(time.monotonic())
            try:
                return real(*args, **kwargs)
            finally:
                copy_window.append(time.monotonic())
                held.append(go_on.wait(30))

        return copy

    if name == "sqlite":
        monkeypatch.setattr(sqlite_backup, "copy_online", timed(sqlite_backup.copy_online))
    else:
        monkeypatch.setattr(postgres_backup, "dump", timed(postgres_backup.dump))
    try:
        ids = {}
        for user in {u for pair in SENDERS for u in pair}:
            ids[user] = await live.register(user)
        clients = {sender: await live.login(sender) for sender, _ in SENDERS}
        # an uploaded file, sent as a message, before the backup
        document = os.urandom(200_000)
        status, answer = await cim_client.upload_file(
            reactor, live.http_url, clients["alice"].user_token, document, "report.bin"
        )
        assert status == 200, answer
        info = answer["file"]
        file_msg = json.dumps({"url": info["url"], "name": "report.bin", "size": len(document)})
        file_ack = await clients["alice"].send_message(ids["bobby"], file_msg, msg_type=pb.kCIM_MSG_TYPE_FILE)
        if name == "sqlite":
            await threads.deferToThread(ballast, live.core.config.sqlite_path, 48)

        for sender, recipient in SENDERS:
            load.start(clients[sender], ids[recipient])
        await until(lambda: len(load.acks) >= 100)
        code, answer = await admin(live, "POST", "/admin/backups")
        assert (code, answer) == (202, {"started": True, "running": True})
        await until(lambda: len(copy_window) == 2)
        during_copy = sum(1 for t, *_ in load.acks if copy_window[0] < t < copy_window[1])
        # the admin API answers while a backup runs, and says so; it is for admins only
        code, status = await admin(live, "GET", "/admin/backups")
        assert code == 200 and status["running"] and status["last_success"] is None, status
        assert held == []  # answered while the backup was still held, not after it
        assert (await treq.get(live.http_url + "/admin/backups", reactor=reactor)).code == 401
        go_on.set()
        while status["running"]:
            await task.deferLater(reactor, 0.1, lambda: None)
            code, status = await admin(live, "GET", "/admin/backups")
        acked_after = len(load.acks)
        await task.deferLater(reactor, 0.2, lambda: None)  # and the load goes on after it
        await load.stop()
        assert len(load.acks) > acked_after
    finally:
        go_on.set()
        await load.stop()
        await stop_node(live)

    assert status["last_failure"] is None and status["last_success"], status
    (listed,) = status["backups"]
    assert listed["name"] == status["last_success"]["name"] and listed["engine"] == name and listed["files"] >= 1
    # the node kept acknowledging messages while the database was being copied
    assert during_copy > 0, (copy_window, len(load.acks))
    before_copy = [a for a in load.acks if a[0] < copy_window[0]]
    assert len(before_copy) >= 100

    # the operator's restore drill: a config for the new node, `coffeechat restore`, start it
    restored = tmp_path / "restored"
    config = tmp_path / "restored.toml"
    storage = "".join(f"{k.split('.')[1]} = {json.dumps(v)}\n" for k, v in target.items())
    config.write_text(f'[server]\ndata_dir = "{restored / "data"}"\n[storage]\n{storage}[auth]\nscrypt_n = 1024\n')
    done = await run_cli(config, "restore", listed["path"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"restored {listed['name']} ") and "1 files" in done.stdout, done.stdout

    live = await start_node(node_config(restored, **target))
    try:
        sent: dict[tuple[int, int], dict[int, bytes]] = {}
        for _, sender, to, msg_id, text in load.acks:
            sent.setdefault((sender, to), {})[msg_id] = text
        must_have: dict[tuple[int, int], set[int]] = {}
        for _, sender, to, msg_id, _ in before_copy:
            must_have.setdefault((sender, to), set()).add(msg_id)
        readers = {r: await live.login(r) for r in {r for _, r in SENDERS}}
        checked = 0
        for sender, recipient in SENDERS:
            key = (ids[sender], ids[recipient])
            found = await history(readers[recipient], ids[sender])
            messages = {msg_id: text for msg_id, frm, text in found if frm == ids[sender]}
            if sender == "alice":
                assert messages.pop(file_ack.server_msg_id) == file_msg.encode()
            # every message acknowledged before the snapshot is back, with its text
            missing = must_have[key] - set(messages)
            assert not missing, f"{len(missing)} acknowledged messages lost: {sorted(missing)[:10]}"
            # and what is there is one moment of the conversation: a dense run of ids, all acknowledged
            if messages:
                first = min(messages)
                assert sorted(messages) == list(range(first, max(messages) + 1))
            for msg_id, text in messages.items():
                assert sent[key][msg_id] == text
            checked += len(messages)
        assert checked >= len(before_copy)
        # the uploaded file came back with the database
        response = await treq.get(live.http_url + info["url"], headers=ADMIN, reactor=reactor)
        assert response.code == 200 and await response.content() == document
        # and the restored node takes new messages where the conversation left off
        bobby_history = await history(readers["bobby"], ids["alice"])
        alice = await live.login("alice")
        ack = await alice.send_message(ids["bobby"], "after the restore")
        assert ack.server_msg_id == max(m for m, _, _ in bobby_history) + 1
    finally:
        await stop_node(live)
