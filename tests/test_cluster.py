"""Cross-node delivery, deterministically: several cores on one memory reactor, sharing a memory
store and a :class:`MemoryHub` (what Redis is to real nodes).  The same logic over real Redis and
PostgreSQL is in tests/test_cluster_e2e.py."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from twisted.internet import defer

from coffeechat.codec import from_wire, to_wire
from coffeechat.errors import ErrorCode
from coffeechat.features.group_reads import ReadCountPush
from coffeechat.features.groups import GroupChangedPush
from coffeechat.features.messages import MessagePush, ReadPush
from coffeechat.model import Message, Push
from coffeechat.schema import Cmd, pb
from tests.memory_node import memory_cluster
from tests.test_groups import Device


@pytest.fixture
def cluster():
    hub, nodes = memory_cluster(("n1", "n2", "n3"))
    return hub, nodes


def users(node, *names: str) -> list[int]:
    return [node.user(name) for name in names]


def texts(device: Device) -> list[str]:
    return [m.msg_data.decode() for m in device.pushes(Cmd.MSG_DATA)]


def payloads_to(hub, node: str) -> list[dict]:
    return [json.loads(p) for n, p in hub.delivered if n == node]


# -- the codec


@pytest.mark.parametrize(
    "push",
    [
        MessagePush(Message("1:2", 7, 1, 1, 2, "c-1", 1, "héllo \x00\xff".encode(), 1700000000, 2), "Alice"),
        MessagePush(Message("g:5", 3, 2, 1, 5, "c-2", 1, b"@bob", 1700000001), "Alice", (2, 3), True),
        ReadPush(1, 2, 1, 9),
        GroupChangedPush(5, 1, 4, ((2, 1, 0), (3, 2, 0))),
        ReadCountPush(5, 3, 2, 4),
    ],
)
def test_every_push_kind_survives_the_trip(push):
    data = json.loads(json.dumps(to_wire(push)))
    assert from_wire(type(push), data) == push


@dataclass(slots=True)
class Hologram(Push):
    """A push kind the other nodes do not know (a feature only this node has)."""

    depth: int


def test_a_push_kind_another_node_does_not_know_is_skipped_and_the_rest_delivered(cluster):
    """A push that cannot cross (unknown to the receiver, or not registered here) must never drop
    the other pushes of that turn's batch."""
    hub, (n1, n2, n3) = cluster
    _, bob_id = users(n1, "alice", "bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    n1.core.router.push(bob_id, Hologram(3))  # not registered anywhere: cannot be encoded
    alice.conn.send_text(bob_id, "still here")
    n1.clock.advance(0)
    assert texts(bob) == ["still here"]
    assert n1.core.cluster.skipped == 1
    # and one the receiver does not know, in the same payload as one it does
    payload = {
        "t": "push",
        "from": "n1",
        "d": [[{"k": "hologram", "f": {"depth": 3}}, [bob_id]], [to_wire_message(bob_id), [bob_id]]],
    }
    n2.core.cluster.received(json.dumps(payload).encode())
    assert texts(bob) == ["after an unknown one"]
    n2.core.cluster.received(b'{"t": "teleport", "from": "n9", "d": {}}')  # an unknown command: ignored
    assert n2.core.cluster.skipped == 2


def to_wire_message(to_id: int) -> dict:
    message = Message(f"p:1:{to_id}", 99, 1, 1, to_id, "x-1", 1, b"after an unknown one", 1700000000)
    return {"k": "message", "f": to_wire(MessagePush(message, "Alice"))}


# -- 1:1


def test_one_to_one_across_nodes_with_devices_on_both(cluster):
    hub, (n1, n2, n3) = cluster
    alice_id, bob_id = users(n1, "alice", "bobby")
    alice, alice_on_n2 = Device(n1, "alice"), Device(n2, "alice")
    bob = Device(n2, "bobby")
    seq = alice.conn.send_text(bob_id, "hello from n1").server_msg_id
    n1.clock.advance(0)
    assert texts(bob) == ["hello from n1"]
    assert texts(alice_on_n2) == ["hello from n1"]  # the sender's other device, on another node
    assert texts(alice) == []  # not back to the sending device
    assert payloads_to(hub, "n3") == []  # n3 holds none of them: it hears nothing
    (payload,) = payloads_to(hub, "n2")
    assert sorted(payload["d"][0][1]) == sorted([alice_id, bob_id])  # one push, encoded once, two users

    bob.conn.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=alice_id, msg_id=seq, session_type=1))
    n1.clock.advance(0)
    (note,) = alice.pushes(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.session_id, note.msg_id) == (bob_id, bob_id, seq)
    (note,) = alice_on_n2.pushes(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.msg_id) == (bob_id, seq)


def test_when_presence_cannot_locate_every_other_node_gets_the_batch(cluster):
    hub, (n1, n2, n3) = cluster
    _, bob_id = users(n1, "alice", "bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    n1.core.presence.locate = lambda user_ids: defer.fail(RuntimeError("Redis timed out"))
    alice.conn.send_text(bob_id, "found anyway")
    n1.clock.advance(0)
    assert texts(bob) == ["found anyway"]
    assert len(payloads_to(hub, "n2")) == len(payloads_to(hub, "n3")) == 1  # n3 holds nobody: it pushes nothing


def test_a_single_live_node_looks_nothing_up(cluster):
    hub, (n1, n2, n3) = cluster
    hub.kill("n2")
    hub.kill("n3")
    _, bob_id = users(n1, "alice", "bobby")
    alice, bob = Device(n1, "alice"), Device(n1, "bobby")
    alice.conn.send_text(bob_id, "local only")
    n1.clock.advance(0)
    assert texts(bob) == ["local only"]
    assert n1.core.cluster.sent == 0 and hub.delivered == []


def test_many_messages_arrive_in_order_batched(cluster):
    hub, (n1, n2, n3) = cluster
    _, bob_id = users(n1, "alice", "bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    for i in range(50):
        alice.conn.send(
            Cmd.MSG_DATA,
            pb.CIMMsgData(to_session_id=bob_id, client_msg_id=f"m{i}", msg_type=1, session_type=1, msg_data=b"%d" % i),
        )
    n1.clock.advance(0)
    n1.clock.advance(0)
    got = bob.pushes(Cmd.MSG_DATA)
    assert [m.msg_data for m in got] == [b"%d" % i for i in range(50)]
    assert [m.server_msg_id for m in got] == list(range(1, 51))
    assert len(payloads_to(hub, "n2")) < 50  # batched per reactor turn, not one payload per message


# -- groups


def test_group_messages_and_notices_reach_members_on_every_node(cluster):
    hub, (n1, n2, n3) = cluster
    ids = users(n1, "alice", "bobby", "carol")
    alice, bob, carol = Device(n1, "alice"), Device(n2, "bobby"), Device(n3, "carol")
    carol_on_n1 = Device(n1, "carol")
    gid = alice.create(ids[1:], name="everywhere").group_info.group_id
    n1.clock.advance(0)
    for device in (bob, carol, carol_on_n1):
        assert len(device.pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)) == 1
        device.pushes()
    bob.send(gid, "from n2")
    n1.clock.advance(0)
    for device in (alice, carol, carol_on_n1):
        assert texts(device) == ["from n2"]
    assert texts(bob) == []


def test_a_change_on_one_node_is_seen_by_the_cache_of_another(cluster):
    hub, (n1, n2, n3) = cluster
    ids = users(n1, "alice", "bobby", "carol")
    alice, bob, carol = Device(n1, "alice"), Device(n2, "bobby"), Device(n3, "carol")
    gid = alice.create([ids[1]]).group_info.group_id
    bob.send(gid, "n2 caches the group now")
    assert len(n2.core.feature("groups").cache) == 1
    alice.invite(gid, [ids[2]])  # on n1
    n1.clock.advance(0)
    carol.pushes()
    bob.send(gid, "carol is in")  # fanned out by n2, which must know carol joined
    n1.clock.advance(0)
    assert texts(carol) == ["carol is in"]
    alice.kick(gid, [ids[2]])
    n1.clock.advance(0)
    carol.pushes()
    bob.send(gid, "carol is out")
    n1.clock.advance(0)
    assert texts(carol) == []


def test_read_counts_move_when_members_read_on_other_nodes(cluster):
    hub, (n1, n2, n3) = cluster
    ids = users(n1, "alice", "bobby", "carol")
    alice, bob, carol = Device(n1, "alice"), Device(n2, "bobby"), Device(n3, "carol")
    gid = alice.create(ids[1:]).group_info.group_id
    seq = alice.send(gid, "read me").server_msg_id
    assert alice.read_count(gid, seq).read_count == 0
    bob.read(gid, seq)
    carol.read(gid, seq)
    n1.advance(3)
    notes = alice.pushes(Cmd.GROUP_READ_COUNT_NOTIFY)
    assert notes and (notes[-1].read_count, notes[-1].member_count) == (2, 2)


# -- nodes that die or lose their subscription


def test_a_dead_node_gets_nothing_and_its_users_look_offline(cluster):
    hub, (n1, n2, n3) = cluster
    _, bob_id = users(n1, "alice", "bobby")
    alice, _bob = Device(n1, "alice"), Device(n2, "bobby")
    assert len(n1.result(n1.core.presence.devices_of(bob_id))) == 1
    hub.kill("n2")
    assert n1.result(n1.core.presence.devices_of(bob_id)) == []
    alice.conn.send_text(bob_id, "anyone?")
    n1.clock.advance(0)
    assert payloads_to(hub, "n2") == []
    bob_again = Device(n3, "bobby")  # the client fails over to n3 and catches up by seq
    history = bob_again.call(
        Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=1, session_id=users_id(n1, "alice"), limit_count=10)
    )
    assert [m.msg_data for m in history.msg_list] == [b"anyone?"]
    alice.conn.send_text(bob_id, "there you are")
    n1.clock.advance(0)
    assert texts(bob_again) == ["there you are"]


def users_id(node, name: str) -> int:
    return node.result(node.store.user_by_name(name)).user_id


def test_a_node_that_lost_its_subscription_catches_up_from_storage(cluster):
    hub, (n1, n2, n3) = cluster
    alice_id, bob_id, carol_id = users(n1, "alice", "bobby", "carol")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    Device(n1, "carol")
    gid = alice.create([bob_id, carol_id]).group_info.group_id
    n1.clock.advance(0)
    bob.pushes()
    n1.advance(5)
    hub.cut("n2")
    alice.conn.send_text(bob_id, "lost 1")
    alice.send(gid, "lost 2")
    n1.clock.advance(0)
    assert texts(bob) == [] and hub.dropped >= 1
    n1.advance(1)
    hub.restore("n2")
    n1.clock.advance(0)
    n1.clock.advance(0)
    assert n2.core.feature("messages").catching_up.called
    assert sorted(texts(bob)) == ["lost 1", "lost 2"]
    alice.conn.send_text(bob_id, "live again")
    n1.clock.advance(0)
    assert texts(bob) == ["live again"]


def test_disabling_a_user_disconnects_their_devices_on_every_node(cluster):
    hub, (n1, n2, n3) = cluster
    _, bob_id = users(n1, "alice", "bobby")
    bob_n1, bob_n2, bob_n3 = Device(n1, "bobby"), Device(n2, "bobby"), Device(n3, "bobby")
    n1.result(defer.ensureDeferred(n1.core.feature("accounts").set_disabled(bob_id, True)))
    assert n1.core.disconnect_user(bob_id, ErrorCode.USER_DISABLED, "account disabled") == 1
    n1.clock.advance(0)
    for device in (bob_n1, bob_n2, bob_n3):
        assert device.conn.closed


def test_a_malformed_payload_harms_nothing(cluster):
    hub, (n1, n2, n3) = cluster
    _, bob_id = users(n1, "alice", "bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    for junk in (b"not json", b'{"t": "push"}', b'{"t": "push", "p": [[["message", [1]], [1]]]}', b"[]"):
        n2.core.cluster.received(junk)
    alice.conn.send_text(bob_id, "still fine")
    n1.clock.advance(0)
    assert texts(bob) == ["still fine"]
