"""Two real nodes on loopback sharing a real PostgreSQL and a real Redis (both started by the
tests): users on different nodes chat 1:1 and in groups, with devices spread over both nodes,
and Redis restarted mid-run loses nothing acknowledged."""

from __future__ import annotations

import uuid

import pytest_twisted
from twisted.internet import reactor, task

from coffeechat.schema import Cmd, pb
from tests.conftest import node_config, start_node, stop_node
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401

LEASE = 2.0


def cluster_config(tmp_path, name: str, dsn: str, redis_url: str, **overrides):
    return node_config(
        tmp_path / name,
        **{
            "server.node_name": name,
            "storage.backend": "postgres",
            "storage.dsn": dsn,
            "presence.backend": "redis",
            "presence.redis": redis_url,
            "presence.lease_seconds": LEASE,
            "presence.timeout": 1.0,
            **overrides,
        },
    )


@pytest_twisted.async_yield_fixture
async def two_nodes(tmp_path, pg_server, redis_server):  # noqa: F811
    dsn = pg_server.database(tmp_path)
    n1 = await start_node(cluster_config(tmp_path, "n1", dsn, redis_server.url))
    n2 = await start_node(cluster_config(tmp_path, "n2", dsn, redis_server.url))
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"} == n2.core.presence.live_nodes())
    yield n1, n2
    for node in (n2, n1):
        if node.core.running:
            await stop_node(node)
    pg_server.release(tmp_path)


async def until(condition, timeout: float = 10.0, step: float = 0.02) -> None:
    for _ in range(int(timeout / step)):
        if condition():
            return
        await task.deferLater(reactor, step, lambda: None)
    assert condition(), "condition not met in time"


async def pushes(client, count: int, cmd: int = Cmd.MSG_DATA, timeout: float = 10.0) -> list:
    return [(await client.next_push(cmd, timeout=timeout))[2] for _ in range(count)]


async def no_more(client, cmd: int = Cmd.MSG_DATA) -> None:
    await task.deferLater(reactor, 0.3, lambda: None)
    assert [p for p in client.pushes if p[0] == cmd] == []


@pytest_twisted.ensureDeferred
async def test_users_on_two_nodes_chat_one_to_one_and_in_a_group(two_nodes):
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n2.register("bobby")
    carol_id = await n1.register("carol")
    alice_1, alice_2 = await n1.login("alice"), await n2.login("alice", transport="ws-binary")
    bob = await n2.login("bobby")
    carol = await n1.login("carol", transport="ws-json")
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"})
    where = await n2.core.presence.devices_of(alice_id)
    assert sorted(node for node, _, _ in where) == ["n1", "n2"]

    ack = await alice_1.send_message(bob_id, "hello across nodes")
    (got,) = await pushes(bob, 1)
    assert (got.from_user_id, got.msg_data, got.server_msg_id) == (alice_id, b"hello across nodes", ack.server_msg_id)
    (copy,) = await pushes(alice_2, 1)  # the sender's other device, on the other node
    assert copy.server_msg_id == ack.server_msg_id
    reply = await bob.send_message(alice_id, "hello back")
    for device in (alice_1, alice_2):
        (got,) = await pushes(device, 1)
        assert (got.msg_data, got.server_msg_id) == (b"hello back", reply.server_msg_id)

    rsp = await alice_1.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="both", member_id_list=[bob_id, carol_id])
    )
    gid = rsp.group_info.group_id
    for device in (alice_2, bob, carol):
        await device.next_push(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    for device in (alice_2, bob, carol):  # the creation notice (alice_1 had it in its answer)
        await pushes(device, 1)
    sent = []
    for sender, text in ((bob, "from n2"), (carol, "from n1"), (alice_2, "alice on n2")):
        ack = await sender.send_message(gid, text, session_type=pb.kCIM_SESSION_TYPE_GROUP)
        sent.append((text.encode(), ack.server_msg_id))
    everyone = {"alice_1": alice_1, "alice_2": alice_2, "bob": bob, "carol": carol}
    senders = {"from n2": "bob", "from n1": "carol", "alice on n2": "alice_2"}
    for name, device in everyone.items():
        expected = [(t, s) for t, s in sent if senders[t.decode()] != name]
        got = await pushes(device, len(expected))
        assert sorted((m.msg_data, m.server_msg_id) for m in got) == sorted(expected), name
    for device in everyone.values():
        await no_more(device)
    assert n1.core.cluster.sent > 0 and n2.core.cluster.sent > 0


@pytest_twisted.ensureDeferred
async def test_typing_and_recall_cross_nodes_over_redis_and_postgresql(two_nodes):
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n2.register("bobby")
    alice = await n1.login("alice")
    bob = await n2.login("bobby", transport="ws-json")
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"})
    alice.typing(bob_id)
    _, _, typing = await bob.next_push(Cmd.MSG_TYPING_NOTIFY)
    assert (typing.user_id, typing.session_id, typing.typing) == (alice_id, alice_id, True)
    ack = await alice.send_message(bob_id, "regret this")
    await pushes(bob, 1)
    assert (await alice.recall(bob_id, ack.server_msg_id)).result_code == 200
    _, _, notice = await bob.next_push(Cmd.MSG_RECALL_NOTIFY)
    assert (notice.from_user_id, notice.server_msg_id, notice.recalled_by) == (alice_id, ack.server_msg_id, alice_id)
    history = await bob.history(alice_id)  # from the shared PostgreSQL, on the other node
    assert [m.msg_type for m in history.msg_list] == [pb.kCIM_MSG_TYPE_RECALLED]


@pytest_twisted.ensureDeferred
async def test_redis_restarted_mid_run_loses_nothing_acknowledged(two_nodes, redis_server):  # noqa: F811
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n2.register("bobby")
    alice = await n1.login("alice")
    bob = await n2.login("bobby")
    received: dict[int, bytes] = {}

    def collect(_=None):
        while True:
            found = [p for p in bob.pushes if p[0] == Cmd.MSG_DATA]
            if not found:
                return
            for item in found:
                bob.pushes.remove(item)
                received[item[2].server_msg_id] = item[2].msg_data

    acked: dict[int, bytes] = {}

    async def send(i: int) -> None:
        text = f"message {i}".encode()
        ack = await alice.send_message(bob_id, text.decode(), client_msg_id=str(uuid.uuid4()))
        assert ack.res_code == 1, ack
        acked[ack.server_msg_id] = text

    for i in range(20):
        await send(i)
    redis_server.stop()
    for i in range(20, 40):  # storage is PostgreSQL: sending goes on while Redis is down
        await send(i)
    redis_server.start()
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"} == n2.core.presence.live_nodes(), 15)
    await eventually(lambda: _online(n1, bob_id), 15)  # n2 re-wrote its devices into the new Redis
    for i in range(40, 60):
        await send(i)

    async def all_in():
        collect(None)
        return set(received) >= set(acked)

    await eventually(all_in, 15)
    assert sorted(acked) == list(range(1, 61))
    assert {seq: received.get(seq) for seq in acked} == acked  # every acknowledged message reached bob
    history = await bob.history(alice_id, limit=100)
    assert [m.server_msg_id for m in history.msg_list] == list(range(1, 61))


async def eventually(check, timeout: float = 10.0, step: float = 0.05) -> None:
    for _ in range(int(timeout / step)):
        if await check():
            return
        await task.deferLater(reactor, step, lambda: None)
    assert await check(), "condition not met in time"


async def _online(node, user_id: int) -> bool:
    try:
        return bool(await node.core.presence.devices_of(user_id))
    except Exception:
        return False


@pytest_twisted.ensureDeferred
async def test_a_user_on_two_nodes_gets_one_budget_not_two(tmp_path, pg_server, redis_server):  # noqa: F811
    """Per-user message budgets hold across nodes: a user's devices on two nodes together get the
    user's burst once (each node keeps half while the user has devices on both)."""
    dsn = pg_server.database(tmp_path)
    limits = {"limits.user_message_burst": 20, "limits.user_messages_per_second": 0.5}
    n1 = await start_node(cluster_config(tmp_path, "n1", dsn, redis_server.url, **limits))
    n2 = await start_node(cluster_config(tmp_path, "n2", dsn, redis_server.url, **limits))
    try:
        await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"} == n2.core.presence.live_nodes())
        for node in (n1, n2):
            node.core.user_budgets.SHARE_REFRESH = 0.2
        await n1.register("alice")
        bob_id = await n1.register("bobby")
        alice_1 = await n1.login("alice")
        alice_2 = await n2.login("alice")
        await task.deferLater(reactor, 0.3, lambda: None)
        # One message from the first device: its node notices the second node and halves its share.
        first = await alice_1.send_message(bob_id, "one")
        await task.deferLater(reactor, 0.3, lambda: None)
        sends = [device.send_message(bob_id, f"burst {i}") for i in range(30) for device in (alice_1, alice_2)]
        acks = [await d for d in sends]
        accepted = sum(1 for ack in acks if ack.res_code == pb.kCIM_RES_CODE_OK)
        assert first.res_code == pb.kCIM_RES_CODE_OK
        # 20 in all (less the one sent first, plus what refilled meanwhile), not 20 per node.
        assert 15 <= accepted <= 22, accepted
        assert n1.core.user_budgets._budgets[alice_1.user_id].nodes == 2
        assert n2.core.user_budgets._budgets[alice_2.user_id].nodes == 2
    finally:
        for node in (n2, n1):
            if node.core.running:
                await stop_node(node)
        pg_server.release(tmp_path)
