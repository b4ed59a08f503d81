"""Chat rooms over real sockets: TCP, WebSocket binary and WebSocket JSON clients in one room on one
node; a room of 300 connections; and two nodes sharing a real PostgreSQL and a real Redis, with
members on both (messages cross once per batch, counts are summed across the nodes)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.schema import Cmd, pb
from coffeechat.testing.conformance_rooms import RoomStoreConformanceTests
from tests.conftest import node_config, start_node, stop_node
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_cluster_e2e import cluster_config

OK = pb.kCIM_ERR_SUCCESS


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def until(condition, timeout: float = 10.0, step: float = 0.02) -> None:
    for _ in range(int(timeout / step)):
        if condition():
            return
        await sleep(step)
    assert condition(), "condition not met in time"


async def create(client, name: str, **fields) -> pb.CIMRoomInfo:
    rsp = await client.request(Cmd.ROOM_CREATE_REQ, pb.CIMRoomCreateReq(name=name, **fields))
    assert rsp.result_code == OK, rsp
    return rsp.room


async def join(client, room_id: int) -> pb.CIMRoomJoinRsp:
    rsp = await client.request(Cmd.ROOM_JOIN_REQ, pb.CIMRoomJoinReq(room_id=room_id))
    assert rsp.result_code == OK, rsp
    return rsp


def say(client, room_id: int, text: str):
    return client.request(Cmd.ROOM_MSG_REQ, pb.CIMRoomMsgReq(room_id=room_id, msg_type=1, msg_data=text.encode()))


def room_msgs(client) -> list[pb.CIMRoomMsg]:
    """Every message of the ROOM_MSG_NOTIFY pushes received so far (consumed)."""
    found = [p for p in client.pushes if p[0] == Cmd.ROOM_MSG_NOTIFY]
    for item in found:
        client.pushes.remove(item)
    return [m for _, _, notify in found for m in notify.msgs]


async def collect(client, count: int, timeout: float = 10.0) -> list[pb.CIMRoomMsg]:
    got: list[pb.CIMRoomMsg] = []
    for _ in range(int(timeout / 0.02)):
        got += room_msgs(client)
        if len(got) >= count:
            return got
        await sleep(0.02)
    raise AssertionError(f"{len(got)} room messages of {count}")


@pytest_twisted.async_yield_fixture
async def node(tmp_path):
    live = await start_node(node_config(tmp_path, **{"rooms.notice_interval": 0.3, "limits.max_devices": 20}))
    yield live
    await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_create_join_message_leave_over_tcp_and_websocket(node):
    await node.register("alice")
    bob_id = await node.register("bobby")
    await node.register("carol")
    alice = await node.login("alice")  # TCP
    bob = await node.login("bobby", transport="ws-json")
    carol = await node.login("carol", transport="ws-binary")

    room = await create(alice, "Launch", topic="the keynote")
    assert room.owner_id == alice.user_id and room.max_members == 10_000
    joined = await join(alice, room.room_id)
    assert joined.role == pb.kCIM_ROOM_ROLE_OWNER and list(joined.recent) == []
    ack = await say(alice, room.room_id, "welcome")
    assert ack.result_code == OK and ack.msg_id > 0
    for client in (bob, carol):
        rsp = await join(client, room.room_id)
        assert [m.msg_data for m in rsp.recent] == [b"welcome"]  # context for the newcomer
        assert rsp.role == pb.kCIM_ROOM_ROLE_MEMBER
    assert rsp.room.member_count == 3

    listed = await bob.request(Cmd.ROOM_LIST_REQ, pb.CIMRoomListReq())
    assert [(r.room_id, r.name, r.member_count) for r in listed.rooms] == [(room.room_id, "Launch", 3)]

    sent = [await say(client, room.room_id, f"hi from {name}") for client, name in ((bob, "bob"), (carol, "carol"))]
    assert all(a.result_code == OK for a in sent)
    for client in (alice, bob, carol):  # everyone, the senders too, in the order the room took them
        got = await collect(client, 3 if client is alice else 2)
        texts = [m.msg_data for m in got if m.msg_data != b"welcome"]
        assert texts == [b"hi from bob", b"hi from carol"], texts
    assert sorted(a.msg_id for a in sent) == [a.msg_id for a in sent]

    members = await alice.request(Cmd.ROOM_MEMBERS_REQ, pb.CIMRoomMembersReq(room_id=room.room_id))
    assert members.member_count == 3
    assert {m.user_id for m in members.sample} == {alice.user_id, bob_id, carol.user_id}

    # the coalesced notice: one, naming all three
    _, _, notice = await alice.next_push(Cmd.ROOM_EVENT_NOTIFY, timeout=5)
    assert notice.joined_count == 3 and notice.member_count == 3

    left = await bob.request(Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room.room_id))
    assert left.result_code == OK
    again = await bob.request(Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room.room_id))
    assert again.result_code == pb.kCIM_ERR_ROOM_NOT_JOINED and again.room_id == room.room_id
    refused = await say(bob, room.room_id, "not in it")
    assert refused.result_code == pb.kCIM_ERR_ROOM_NOT_JOINED
    await carol.close()
    await until(lambda: node.core.feature("rooms").member_count(room.room_id) == 1)

    await say(alice, room.room_id, "still here")
    assert [m.msg_data for m in await collect(alice, 1)] == [b"still here"]
    await sleep(0.2)
    assert room_msgs(bob) == []  # left: nothing more

    closed = await alice.request(Cmd.ROOM_CLOSE_REQ, pb.CIMRoomCloseReq(room_id=room.room_id))
    assert closed.result_code == OK
    _, _, gone = await alice.next_push(Cmd.ROOM_MODERATE_NOTIFY)
    assert gone.action == pb.kCIM_ROOM_ACTION_CLOSED
    missing = await bob.request(Cmd.ROOM_JOIN_REQ, pb.CIMRoomJoinReq(room_id=room.room_id))
    assert missing.result_code == pb.kCIM_ERR_NOT_FOUND


@pytest_twisted.ensureDeferred
async def test_the_json_form_over_websocket(node):
    """A browser's frames: the command by name, fields in camelCase."""
    await node.register("alice")
    alice = await node.login("alice", transport="ws-json")
    room = await create(alice, "JSON")
    rsp = await join(alice, room.room_id)
    assert rsp.room.name == "JSON"
    ack = await say(alice, room.room_id, "{json}")
    (msg,) = await collect(alice, 1)
    assert (msg.msg_id, msg.msg_data, msg.from_nick_name) == (ack.msg_id, b"{json}", "Alice")


@pytest_twisted.ensureDeferred
async def test_a_room_of_300_connections(node):
    accounts = node.core.feature("accounts")
    tokens = []
    for i in range(30):
        user = await accounts.create_user(f"fan{i:02d}", f"Fan {i}")
        tokens.append((user.user_id, (await accounts.issue_token(user.user_id))[0]))

    async def fan(i: int):
        client = await node.connect()
        user_id, token = tokens[i % 30]
        rsp = await client.login_token(user_id, token)
        assert rsp.result_code == OK, rsp
        return client

    clients = []
    for batch in range(0, 300, 50):
        clients += await defer.gatherResults([defer.ensureDeferred(fan(i)) for i in range(batch, batch + 50)])
    owner = clients[0]
    room = await create(owner, "Stadium")
    for batch in range(0, 300, 50):
        await defer.gatherResults([defer.ensureDeferred(join(c, room.room_id)) for c in clients[batch : batch + 50]])
    rooms = node.core.feature("rooms")
    assert rooms.member_count(room.room_id) == 300
    batches, delivered = rooms.batches, rooms.delivered
    acks = await defer.gatherResults([say(clients[i], room.room_id, f"goal {i}") for i in range(1, 6)])
    assert all(a.result_code == OK for a in acks)
    for client in clients:
        got = await collect(client, 5)
        assert sorted(m.msg_data for m in got) == [f"goal {i}".encode() for i in range(1, 6)]
    # one frame per member connection per batch, however many messages a batch holds
    assert rooms.delivered - delivered == 300 * (rooms.batches - batches)
    assert rooms.batches - batches <= 5


@pytest_twisted.async_yield_fixture
async def two_nodes(tmp_path, pg_server, redis_server):  # noqa: F811
    dsn = pg_server.database(tmp_path)
    fast = {"rooms.notice_interval": 0.3}
    n1 = await start_node(cluster_config(tmp_path, "n1", dsn, redis_server.url, **fast))
    n2 = await start_node(cluster_config(tmp_path, "n2", dsn, redis_server.url, **fast))
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"} == n2.core.presence.live_nodes())
    yield n1, n2
    for live in (n2, n1):
        if live.core.running:
            await stop_node(live)
    pg_server.release(tmp_path)


@pytest_twisted.ensureDeferred
async def test_members_on_two_nodes(two_nodes):
    n1, n2 = two_nodes
    await n1.register("alice")
    await n2.register("bobby")
    await n1.register("carol")
    alice = await n1.login("alice")
    carol = await n1.login("carol", transport="ws-json")
    bob = await n2.login("bobby")
    bob_2 = await n2.login("bobby", transport="ws-binary")
    rooms1, rooms2 = n1.core.feature("rooms"), n2.core.feature("rooms")

    room = await create(alice, "Both", persist_history=True)
    rid = room.room_id
    await join(alice, rid)
    await join(carol, rid)
    await join(bob, rid)
    await join(bob_2, rid)
    # each node learns the other's count (published at once on a change from none, then every tick)
    await until(lambda: rooms1.member_count(rid) == 4 == rooms2.member_count(rid))
    members = await bob.request(Cmd.ROOM_MEMBERS_REQ, pb.CIMRoomMembersReq(room_id=rid))
    assert members.member_count == 4
    assert {m.user_id for m in members.sample} == {alice.user_id, bob.user_id, carol.user_id}

    payloads, batches = rooms1.payloads, rooms1.batches
    for i in range(10):  # one write: read in one turn on n1, mostly
        alice.send(Cmd.ROOM_MSG_REQ, pb.CIMRoomMsgReq(room_id=rid, msg_type=1, msg_data=f"n1 {i}".encode()))
    expected = [f"n1 {i}".encode() for i in range(10)]
    for client in (alice, carol, bob, bob_2):
        got = await collect(client, 10)
        assert [m.msg_data for m in got] == expected
    # one cross-node payload per batch: n2 holds members, so each batch of n1 went there once
    assert rooms1.payloads - payloads == rooms1.batches - batches <= 10

    ack = await say(bob, rid, "from n2")
    for client in (alice, carol, bob, bob_2):
        (got,) = await collect(client, 1)
        assert (got.msg_data, got.msg_id, got.from_user_id) == (b"from n2", ack.msg_id, bob.user_id)

    # kicked on one node, out on the other
    kicked = await alice.request(
        Cmd.ROOM_MODERATE_REQ,
        pb.CIMRoomModerateReq(room_id=rid, target_user_id=bob.user_id, action=pb.kCIM_ROOM_ACTION_BAN),
    )
    assert kicked.result_code == OK
    for client in (bob, bob_2):
        _, _, notify = await client.next_push(Cmd.ROOM_MODERATE_NOTIFY)
        assert notify.action == pb.kCIM_ROOM_ACTION_BAN and notify.by_user_id == alice.user_id
    await until(lambda: rooms1.member_count(rid) == 2 == rooms2.member_count(rid))
    refused = await bob.request(Cmd.ROOM_JOIN_REQ, pb.CIMRoomJoinReq(room_id=rid))
    assert refused.result_code == pb.kCIM_ERR_ROOM_BANNED

    # a newcomer on n2, which holds nobody now, reads the context from the shared storage (once
    # the nodes wrote their batches: rooms.write_interval), and the whole history is kept
    await until(lambda: rooms1.writes > 0 and rooms2.writes > 0 and not rooms1._writes and not rooms2._writes)
    await n2.register("david")
    dave = await n2.login("david")
    rsp = await join(dave, rid)
    assert [m.msg_data for m in rsp.recent] == [*expected, b"from n2"]
    history = await dave.request(Cmd.ROOM_HISTORY_REQ, pb.CIMRoomHistoryReq(room_id=rid, limit=100))
    assert [m.msg_data for m in history.msgs] == [*expected, b"from n2"]


@pytest_twisted.ensureDeferred
async def test_the_admin_api_creates_lists_and_closes_rooms(node):
    from tests.test_admin_api import Admin

    admin = Admin(node)
    alice_id = await node.register("alice")
    alice = await node.login("alice")
    created = await admin.ok("POST", "/admin/rooms", {"name": "Town hall", "topic": "Q&A", "persistHistory": True})
    room = created["room"]
    assert (room["name"], room["ownerId"], room["persistHistory"], room["closedAt"]) == ("Town hall", 0, True, 0)
    owned = await admin.ok("POST", "/admin/rooms", {"name": "Alice's", "ownerId": alice_id, "maxMembers": 5})
    assert (owned["room"]["ownerId"], owned["room"]["maxMembers"]) == (alice_id, 5)
    await join(alice, room["room_id"])
    listed = await admin.ok("GET", "/admin/rooms?limit=1")
    assert [r["room_id"] for r in listed["rooms"]] == [room["room_id"]] and listed["next"] == room["room_id"]
    one = await admin.ok("GET", f"/admin/rooms/{room['room_id']}")
    assert one["room"]["memberCount"] == 1 and one["moderators"] == []
    for body in ({}, {"name": ""}, {"name": "x", "maxMembers": 10_001}, {"name": "x", "ownerId": "1"},
                 {"name": "x", "persistHistory": 1}):  # fmt: skip
        assert await admin.bad("POST", "/admin/rooms", body)
    assert await admin.bad("POST", "/admin/rooms", {"name": "x", "ownerId": 999}, status=404)
    assert await admin.bad("GET", "/admin/rooms/999", status=404)
    closed = await admin.ok("DELETE", f"/admin/rooms/{room['room_id']}")
    assert closed == {**closed, "room_id": room["room_id"], "closed": True}
    _, _, notify = await alice.next_push(Cmd.ROOM_MODERATE_NOTIFY)
    assert (notify.action, notify.by_user_id) == (pb.kCIM_ROOM_ACTION_CLOSED, 0)
    assert await admin.bad("DELETE", f"/admin/rooms/{room['room_id']}", status=404)
    listed = await admin.ok("GET", "/admin/rooms")
    assert [r["closedAt"] > 0 for r in listed["rooms"]] == [True, False]


@pytest_twisted.async_yield_fixture
async def small_output_node(tmp_path):
    settings = {
        "limits.max_output_bytes": 64 * 1024,
        "limits.request_burst": 5000,
        "rooms.connection_message_burst": 5000,
        "rooms.connection_messages_per_second": 5000.0,
    }
    live = await start_node(node_config(tmp_path, **settings))
    yield live
    await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_a_member_that_does_not_read_is_cut_off_not_buffered(small_output_node):
    node = small_output_node
    await node.register("alice")
    await node.register("bobby")
    alice = await node.login("alice")
    slow = await node.login("bobby")
    room = await create(alice, "Busy")
    await join(alice, room.room_id)
    await join(slow, room.room_id)
    slow.transport.pauseProducing()  # it reads nothing more: the kernel's buffers fill, then ours
    text = "x" * 12_000
    rooms = node.core.feature("rooms")
    for _ in range(2000):  # up to 24 MB for each member: more than loopback's socket buffers hold
        ack = await say(alice, room.room_id, text)
        assert ack.result_code == OK
        room_msgs(alice)
        if rooms.member_count(room.room_id) == 1:
            break
    await until(lambda: rooms.member_count(room.room_id) == 1)  # cut off (SLOW_CONSUMER) and out of the room
    assert await say(alice, room.room_id, "still fine")


# -- the storage facet on SQLite (a file), PostgreSQL and the memory backend: the SQL is written once


class TestSQLiteRoomStore(RoomStoreConformanceTests):
    def make_store(self, tmp_path):
        from coffeechat.backends.sqlite import SQLiteStore

        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryRoomStore(RoomStoreConformanceTests):
    def make_store(self, tmp_path):
        from coffeechat.backends.memory import MemoryStore

        return MemoryStore()


class TestPostgresRoomStore(RoomStoreConformanceTests):
    @pytest.fixture(autouse=True)
    def _pg(self, pg_server, tmp_path):  # noqa: F811
        self.server = pg_server
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        from coffeechat.backends.postgres import PostgresStore

        return PostgresStore(reactor, self.server.database(tmp_path))
