"""The database going away under a running node, over real sockets: PostgreSQL restarted (a
server of its own, started here), SQLite on a full disk (a size-limited tmpfs) and on a file
system that turned read-only (an ext4 image whose errors remount it read-only).

What must hold each time: every message is answered, acks stop with STORAGE_UNAVAILABLE (never
INTERNAL_ERROR, never left waiting), nothing acknowledged is lost, the outage is logged in one
line when it begins and one when it ends, and the node recovers by itself when the database is
back (read-only: after the file system is repaired and the node restarted).

Mounting needs root: without it these tests are skipped with the reason (they fail under CI,
where the machine allows it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from coffeechat.errors import ErrorCode
from coffeechat.protocols.client import ResilientClient, ServerError, md5_password
from coffeechat.schema import Cmd
from tests.conftest import node_config, start_node, stop_node
from tests.pgserver import PgServer, find_bindir, unavailable

ANSWER_WITHIN = 15.0  # seconds: a request left waiting longer than this fails the test


@pytest.fixture
def logged():
    lines: list[str] = []

    def observe(event):
        text = formatEvent(event) or ""
        if event.get("log_failure") is not None:
            text += " [traceback]"
        lines.append(text)

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def _need_root_mount(what: str) -> None:
    if os.geteuid() != 0:
        unavailable(f"{what} needs root (mount)")


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


async def send(client, to_id: int, text: str):
    """Send one message; the answer (a CIMMsgDataAck), which must come in time."""
    d = client.send_message(to_id, text, client_msg_id=str(uuid.uuid4()))
    return await d.addTimeout(ANSWER_WITHIN, reactor)


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def history_seqs(client, peer_id: int) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []
    end = 0
    for _ in range(50):  # pages of 100, newest first
        page = await client.history(peer_id, end_msg_id=end, limit=100)
        msgs = list(page.msg_list)
        found[:0] = [(m.server_msg_id, m.msg_data) for m in msgs]
        if len(msgs) < 100 or msgs[0].server_msg_id <= 1:
            break
        end = msgs[0].server_msg_id
    return found


def outage_lines(lines: list[str], name: str) -> tuple[list[str], list[str]]:
    down = [line for line in lines if line.startswith(f"{name} is down")]
    back = [line for line in lines if line.startswith(f"{name} is back")]
    return down, back


def assert_no_tracebacks(lines: list[str]) -> None:
    bad = [line for line in lines if "[traceback]" in line or "INTERNAL" in line]
    assert bad == [], bad[:5]


# -- PostgreSQL restarted


@pytest.fixture(scope="module")
def own_pg():
    """A PostgreSQL of this module's own: the tests stop and start it."""
    bindir = find_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def pg_ctl(server: PgServer, *args: str) -> None:
    server._run(f"{server.bindir}/pg_ctl", *args, "-w", "-D", str(server.datadir), timeout=60)


def pg_halt(server: PgServer) -> None:
    pg_ctl(server, "stop", "-m", "fast")


def pg_resume(server: PgServer) -> None:
    options = f"-p {server.port} -k {server.sockdir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
    pg_ctl(server, "start", "-l", str(server.logfile), "-o", options)


@pytest_twisted.ensureDeferred
async def test_postgresql_restarted_under_a_node_acks_pause_with_a_code_and_nothing_is_lost(tmp_path, own_pg, logged):
    dsn = own_pg.database(tmp_path)
    node = await start_node(node_config(tmp_path, **{"storage.backend": "postgres", "storage.dsn": dsn}))
    try:
        alice_id = await node.register("alice")
        bob_id = await node.register("bobby")
        alice = await node.login("alice")
        bob = await node.login("bobby")
        acked: dict[int, bytes] = {}
        refused = 0
        for i in range(5):
            ack = await send(alice, bob_id, f"before {i}")
            assert ack.res_code == 1
            acked[ack.server_msg_id] = f"before {i}".encode()
        resilient = ResilientClient(reactor, [node.cim_endpoint], "alice", "secret", retry_delay=0.2)
        await resilient.start().addTimeout(ANSWER_WITHIN, reactor)
        await deferToThread(pg_halt, own_pg)
        for i in range(5):  # every one answered, at once, with the code that says "try again"
            ack = await send(alice, bob_id, f"during {i}")
            assert (ack.res_code, ack.error_code) == (0, ErrorCode.STORAGE_UNAVAILABLE), ack
            refused += 1
        fresh = await node.connect()  # a login needs the database too: the same answer
        try:
            rsp = await fresh.login_password("bobby", md5_password("secret")).addTimeout(ANSWER_WITHIN, reactor)
            code = rsp.result_code
        except ServerError as e:
            code = e.code
        assert code == ErrorCode.STORAGE_UNAVAILABLE
        # The bundled resilient client takes the code as "send again later" and does.
        resent = resilient.send_message(bob_id, "sent while down, by the resilient client")
        await sleep(0.5)
        assert not resent.called and resilient.pending_sends == 1
        await deferToThread(pg_resume, own_pg)
        for _ in range(100):  # the node reconnects by itself
            ack = await send(alice, bob_id, "after")
            if ack.res_code == 1:
                acked[ack.server_msg_id] = b"after"
                break
            assert ack.error_code == ErrorCode.STORAGE_UNAVAILABLE, ack
            await sleep(0.1)
        else:
            raise AssertionError("the node did not recover within 10 s of PostgreSQL being back")
        ack = await resent.addTimeout(ANSWER_WITHIN, reactor)
        acked[ack.server_msg_id] = b"sent while down, by the resilient client"
        await resilient.stop()
        for i in range(5):
            ack = await send(alice, bob_id, f"later {i}")
            assert ack.res_code == 1
            acked[ack.server_msg_id] = f"later {i}".encode()
        assert sorted(acked) == list(range(1, 13))  # dense: the refused ones took no seq
        assert dict(await history_seqs(bob, alice_id)) == acked
        received = {}
        for _ in range(len(acked)):
            _, _, push = await bob.next_push(Cmd.MSG_DATA, timeout=5)
            received[push.server_msg_id] = push.msg_data
        assert received == acked
        down, back = outage_lines(logged, "storage (postgres)")
        assert len(down) == 1 and len(back) == 1, (down, back)
        assert_no_tracebacks(logged)
    finally:
        await stop_node(node)
        own_pg.release(tmp_path)


# -- SQLite on a full disk


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs at tmp_path/small."""
    _need_root_mount("a size-limited file system")
    where = tmp_path / "small"
    where.mkdir()
    try:
        _run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where))
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        unavailable(f"cannot mount a tmpfs here: {e}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=60)


def fill(where: Path) -> Path:
    """Fill the file system with one file; return it."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            for _ in range(10_000):  # at most 640 MB, far beyond the tmpfs
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


@pytest_twisted.ensureDeferred
async def test_sqlite_on_a_full_disk_refuses_with_a_code_keeps_what_it_acked_and_recovers(tmp_path, small_disk, logged):
    config = node_config(tmp_path, **{"server.data_dir": str(small_disk / "data")})
    node = await start_node(config)
    acked: dict[int, bytes] = {}
    try:
        alice_id = await node.register("alice")
        bob_id = await node.register("bobby")
        alice = await node.login("alice")
        bob = await node.login("bobby")
        for i in range(3):
            ack = await send(alice, bob_id, f"before {i}")
            assert ack.res_code == 1
            acked[ack.server_msg_id] = f"before {i}".encode()
        filler = fill(small_disk)
        # What SQLite had allocated already (free pages, the WAL) may still take a few: send
        # big ones until the disk full shows, and never more than this.
        big = "x" * 10_000
        refusals = 0
        for i in range(400):
            ack = await send(alice, bob_id, f"{i} {big}")
            if ack.res_code == 1:
                acked[ack.server_msg_id] = f"{i} {big}".encode()
                continue
            assert ack.error_code == ErrorCode.STORAGE_UNAVAILABLE, ack
            refusals += 1
            if refusals == 5:
                break
        assert refusals == 5, "the full disk never showed"
        filler.unlink()
        for _ in range(100):  # space is back: the node writes again, by itself
            ack = await send(alice, bob_id, "after")
            if ack.res_code == 1:
                acked[ack.server_msg_id] = b"after"
                break
            await sleep(0.1)
        else:
            raise AssertionError("no recovery within 10 s of space being back")
        assert sorted(acked) == list(range(1, len(acked) + 1))
        assert dict(await history_seqs(bob, alice_id)) == acked
        down, back = outage_lines(logged, "storage (sqlite)")
        assert len(down) == 1 and len(back) == 1, (down, back)
        assert_no_tracebacks(logged)
    finally:
        await stop_node(node)
    node = await start_node(config)  # and it is all on disk
    try:
        bob = await node.login("bobby")
        assert dict(await history_seqs(bob, alice_id)) == acked
    finally:
        await stop_node(node)


# -- SQLite on a file system that turned read-only


@pytest.fixture
def ext4_image(tmp_path):
    """A 16 MB ext4 image mounted at tmp_path/ro with errors=remount-ro; yields (mount point,
    image, sysfs error trigger)."""
    _need_root_mount("a file system that turns read-only")
    if not (shutil.which("mkfs.ext4") and shutil.which("e2fsck")):
        unavailable("mkfs.ext4 and e2fsck are needed to make a file system that turns read-only")
    image, where = tmp_path / "fs.img", tmp_path / "ro"
    where.mkdir()
    with open(image, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    try:
        _run("mkfs.ext4", "-q", "-F", str(image))
        _run("mount", "-o", "loop,errors=remount-ro", str(image), str(where))
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        unavailable(f"cannot mount a loop device here: {e}")
    try:
        source = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(where)], capture_output=True, text=True, check=True
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / os.path.basename(source) / "trigger_fs_error"
        if not trigger.exists():
            unavailable(f"{trigger} does not exist: cannot make the file system fail")
        yield where, image, trigger
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=60)


@pytest_twisted.ensureDeferred
async def test_sqlite_on_a_file_system_gone_read_only_refuses_with_a_code_and_loses_nothing(
    tmp_path, ext4_image, logged
):
    where, image, trigger = ext4_image
    config = node_config(tmp_path, **{"server.data_dir": str(where / "data")})
    node = await start_node(config)
    acked: dict[int, bytes] = {}
    try:
        alice_id = await node.register("alice")
        bob_id = await node.register("bobby")
        alice = await node.login("alice")
        for i in range(5):
            ack = await send(alice, bob_id, f"before {i}")
            assert ack.res_code == 1
            acked[ack.server_msg_id] = f"before {i}".encode()
        trigger.write_text("coffeechat test\n")  # ext4 now refuses every write (emergency_ro)
        for i in range(5):
            ack = await send(alice, bob_id, f"during {i}")
            assert (ack.res_code, ack.error_code) == (0, ErrorCode.STORAGE_UNAVAILABLE), ack
        down, _ = outage_lines(logged, "storage (sqlite)")
        assert len(down) == 1, down
        assert_no_tracebacks(logged)
    finally:
        await stop_node(node)
    # The operator repairs the file system and restarts the node: everything acked is there.
    subprocess.run(["umount", str(where)], capture_output=True, timeout=60)
    subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, timeout=60)
    _run("mount", "-o", "loop", str(image), str(where))
    node = await start_node(config)
    try:
        bob = await node.login("bobby")
        ack = await send(await node.login("alice"), bob_id, "after the repair")
        assert ack.res_code == 1
        acked[ack.server_msg_id] = b"after the repair"
        assert dict(await history_seqs(bob, alice_id)) == acked
    finally:
        await stop_node(node)
