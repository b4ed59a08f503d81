"""Friends and online status over real loopback sockets (SQLite storage), for each transport:
TCP, WebSocket binary and WebSocket JSON, through the client library."""

from __future__ import annotations

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS, node_config, start_node, stop_node
from .pgserver import pg_server  # noqa: F401  (session fixture)
from .redisserver import redis_server  # noqa: F401
from .test_cluster_e2e import cluster_config, until

ONLINE, OFFLINE = pb.kCIM_ONLINE_STATE_ONLINE, pb.kCIM_ONLINE_STATE_OFFLINE


@pytest_twisted.async_yield_fixture
async def live_node(tmp_path):
    settings = {"friends.require_friendship": True, "online_status.interval": 0.2}
    live = await start_node(node_config(tmp_path, **settings))
    yield live
    await stop_node(live)


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_friends_and_online_status(live_node, transport):
    a_id = await live_node.register("alice")
    b_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)

    ack = await alice.send_message(b_id, "hello stranger")
    assert ack.error_code == ErrorCode.NOT_FRIENDS and ack.server_msg_id == 0

    rsp = await alice.friend_request(b_id, "let's be friends")
    assert rsp.result_code == ErrorCode.SUCCESS and rsp.request.message == "let's be friends"
    _, _, notify = await bob.next_push(Cmd.FRIEND_NOTIFY)
    assert (notify.event, notify.peer_id, notify.request.message) == (
        pb.kCIM_FRIEND_EVENT_REQUESTED,
        a_id,
        "let's be friends",
    )
    listed = await bob.friend_requests()
    assert [r.from_user_id for r in listed.requests] == [a_id]
    assert [r.to_user_id for r in (await alice.friend_requests(outgoing=True)).requests] == [b_id]
    too_long = await alice.friend_request(b_id, "x" * 201)
    assert too_long.result_code == ErrorCode.INVALID_ARGUMENT

    answered = await bob.friend_answer(a_id, accept=True)
    assert answered.result_code == ErrorCode.SUCCESS and answered.friend.friend_id == a_id
    _, _, notify = await alice.next_push(Cmd.FRIEND_NOTIFY)
    assert (notify.event, notify.peer_id) == (pb.kCIM_FRIEND_EVENT_ACCEPTED, b_id)
    ack = await alice.send_message(b_id, "hello friend")
    assert ack.error_code == 0 and ack.server_msg_id > 0

    remark = await alice.friend_remark(b_id, "Bob")
    assert remark.result_code == ErrorCode.SUCCESS
    assert [(f.friend_id, f.remark) for f in (await alice.friends()).friends] == [(b_id, "Bob")]
    assert [(f.friend_id, f.remark) for f in (await bob.friends()).friends] == [(a_id, "")]

    status = await alice.online_status([b_id, 12345])
    assert [(s.user_id, s.state) for s in status.statuses] == [(b_id, ONLINE), (12345, pb.kCIM_ONLINE_STATE_UNKNOWN)]
    await bob.logout()
    while True:  # bob's login may have been pushed too (the tick after it came once we were friends)
        _, _, pushed = await alice.next_push(Cmd.ONLINE_STATUS_NOTIFY, timeout=5)
        if pushed.statuses[0].state != ONLINE:
            break
    assert [(s.user_id, s.state) for s in pushed.statuses] == [(b_id, OFFLINE)]
    assert pushed.statuses[0].last_seen > 0
    privacy = await alice.online_privacy(True)
    assert privacy.result_code == ErrorCode.SUCCESS and privacy.hidden
    assert (await alice.online_privacy()).hidden

    deleted = await alice.friend_delete(b_id)
    assert deleted.result_code == ErrorCode.SUCCESS
    assert (await alice.friends()).friends == []
    ack = await alice.send_message(b_id, "still there?")
    assert ack.error_code == ErrorCode.NOT_FRIENDS
    gone = await alice.friend_delete(b_id)
    assert gone.result_code == ErrorCode.NOT_FRIENDS


@pytest_twisted.async_yield_fixture
async def two_nodes(tmp_path, pg_server, redis_server):  # noqa: F811
    """Two real nodes sharing a real PostgreSQL and a real Redis."""
    dsn = pg_server.database(tmp_path)
    settings = {"friends.require_friendship": True, "online_status.interval": 0.2}
    n1 = await start_node(cluster_config(tmp_path, "n1", dsn, redis_server.url, **settings))
    n2 = await start_node(cluster_config(tmp_path, "n2", dsn, redis_server.url, **settings))
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"} == n2.core.presence.live_nodes())
    yield n1, n2
    for node in (n2, n1):
        if node.core.running:
            await stop_node(node)
    pg_server.release(tmp_path)


async def next_status(client) -> list[tuple[int, int]]:
    _, _, pushed = await client.next_push(Cmd.ONLINE_STATUS_NOTIFY, timeout=10)
    return [(s.user_id, s.state) for s in pushed.statuses]


@pytest_twisted.ensureDeferred
async def test_across_two_real_nodes(two_nodes):
    n1, n2 = two_nodes
    a_id = await n1.register("alice")
    b_id = await n2.register("bobby")
    alice = await n1.login("alice")
    bob = await n2.login("bobby", transport="ws-json")
    rsp = await alice.friend_request(b_id, "across nodes")
    assert rsp.result_code == ErrorCode.SUCCESS
    _, _, notify = await bob.next_push(Cmd.FRIEND_NOTIFY, timeout=10)
    assert (notify.event, notify.peer_id, notify.request.message) == (
        pb.kCIM_FRIEND_EVENT_REQUESTED,
        a_id,
        "across nodes",
    )
    assert (await bob.friend_answer(a_id)).result_code == ErrorCode.SUCCESS
    _, _, notify = await alice.next_push(Cmd.FRIEND_NOTIFY, timeout=10)
    assert notify.event == pb.kCIM_FRIEND_EVENT_ACCEPTED
    assert (await bob.send_message(a_id, "hi from n2")).error_code == 0  # n2 caches bob's set
    assert [(s.user_id, s.state) for s in (await alice.online_status([b_id])).statuses] == [(b_id, ONLINE)]
    alice.pushes.clear()
    await bob.logout()  # on n2: alice, on n1, is told
    while (state := await next_status(alice)) != [(b_id, OFFLINE)]:
        assert state == [(b_id, ONLINE)], state
    bob = await n2.login("bobby")
    assert await next_status(alice) == [(b_id, ONLINE)]
    assert (await alice.friend_delete(b_id)).result_code == ErrorCode.SUCCESS  # on n1: n2 drops its cache
    await until(lambda: n2.core.feature("friends").cached_friend_ids(b_id) is None)
    assert (await bob.send_message(a_id, "still friends?")).error_code == ErrorCode.NOT_FRIENDS
