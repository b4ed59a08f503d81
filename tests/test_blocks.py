"""The block list on a memory node (what a blocked sender learns, what the recipient does not
get, groups, the cache), across nodes, and over every transport."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

BLOCKED = ErrorCode.BLOCKED_BY_RECIPIENT


@pytest.fixture
def node():
    return MemoryNode(**{"limits.idle_timeout": 1000.0, "blocks.max_blocked": 3})


def block(device: Device, peer_id: int, blocked: bool = True) -> pb.CIMBlockSetRsp:
    return device.call(Cmd.BLOCK_SET_REQ, pb.CIMBlockSetReq(peer_id=peer_id, blocked=blocked))


def block_list(device: Device) -> list[int]:
    return [b.user_id for b in device.call(Cmd.BLOCK_LIST_REQ, pb.CIMBlockListReq()).blocked]


def unread_from(device: Device, peer_id: int) -> int:
    rsp = device.call(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    return sum(s.unread_cnt for s in rsp.contact_session_list if s.session_id == peer_id)


def test_a_blocked_users_messages_are_refused_and_nothing_reaches_me(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    assert bob.conn.send_text(alice_id, "before").error_code == 0
    alice.pushes()
    alice2.pushes()
    rsp = block(alice, bob_id)
    assert (rsp.result_code, rsp.peer_id, rsp.blocked) == (200, bob_id, True)
    # her other device learns it; the blocked one is not told
    (notice,) = alice2.pushes(Cmd.BLOCK_CHANGED_NOTIFY)
    assert (notice.user_id, notice.peer_id, notice.blocked) == (alice_id, bob_id, True)
    assert alice.pushes(Cmd.BLOCK_CHANGED_NOTIFY) == [] and bob.pushes(Cmd.BLOCK_CHANGED_NOTIFY) == []
    ack = bob.conn.send_text(alice_id, "let me in")
    assert ack.error_code == BLOCKED and ack.server_msg_id == 0
    assert alice.pushes(Cmd.MSG_DATA) == [] and alice2.pushes(Cmd.MSG_DATA) == []
    history = alice.call(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=1, session_id=bob_id))
    assert [m.msg_data for m in history.msg_list] == [b"before"]  # nothing stored
    assert unread_from(alice, bob_id) == 1  # only "before"
    # she may still write to him; unblocking lets him write again
    assert alice.conn.send_text(bob_id, "I can still talk").error_code == 0
    assert block_list(alice) == [bob_id]
    assert block(alice, bob_id, False).result_code == 200
    assert block_list(alice) == []
    assert bob.conn.send_text(alice_id, "thanks").error_code == 0
    assert [m.msg_data for m in alice.pushes(Cmd.MSG_DATA)] == [b"thanks"]


def test_groups_still_deliver_a_blocked_members_messages(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    gid = alice.create([bob_id]).group_info.group_id
    block(alice, bob_id)
    alice.pushes()
    assert bob.send(gid, "group hello").error_code == 0
    assert [m.msg_data for m in alice.pushes(Cmd.MSG_DATA)] == [b"group hello"]
    members = alice.call(Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=gid))
    assert sorted(members.member_id_list) == sorted([alice_id, bob_id])


def test_block_requests_are_validated_and_bounded(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david", "erin1")]
    alice = Device(node, "alice")
    assert block(alice, ids[0]).result_code == ErrorCode.INVALID_ARGUMENT  # oneself
    assert block(alice, 0).result_code == ErrorCode.INVALID_ARGUMENT
    assert block(alice, 9999).result_code == ErrorCode.USER_NOT_EXIST
    for uid in ids[1:4]:
        assert block(alice, uid).result_code == 200
    assert block(alice, ids[1]).result_code == 200  # again: no change, no error
    assert block(alice, ids[4]).result_code == ErrorCode.TOO_MANY_BLOCKED  # max_blocked = 3
    assert block_list(alice) == [ids[3], ids[2], ids[1]]  # the most recent first
    assert block(alice, 9999, False).result_code == 200  # unblocking nobody changes nothing


def test_the_send_check_is_a_cache_hit_after_the_first_message(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    Device(node, "alice")
    bob = Device(node, "bobby")
    blocks = node.core.feature("blocks")
    for i in range(5):
        assert bob.conn.send_text(alice_id, f"m{i}").error_code == 0
    assert blocks.loads == 1  # one load of alice's (empty) list, then dict lookups
    assert node.result(blocks.is_blocked(alice_id, bob_id)) is False


def test_a_known_recipient_whose_check_must_load_is_still_checked(node):
    """The message path's fast case (recipient known) with a check that must load first: the
    message waits for the answer, refused or stored."""
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice = Device(node, "alice")
    bob = Device(node, "bobby")
    blocks = node.core.feature("blocks")
    assert bob.conn.send_text(alice_id, "first").error_code == 0  # alice is known from now on
    blocks._cache.clear()
    assert bob.conn.send_text(alice_id, "loaded").error_code == 0
    assert blocks.loads == 2
    block(alice, bob_id)
    blocks._cache.clear()
    ack = bob.conn.send_text(alice_id, "refused after a load")
    assert (ack.error_code, ack.server_msg_id, blocks.loads) == (BLOCKED, 0, 3)
    assert [p.msg_data for p in alice.pushes(Cmd.MSG_DATA)] == [b"first", b"loaded"]


def test_the_block_cache_is_invalidated_on_the_other_node():
    hub, (n1, n2) = memory_cluster(**{"limits.idle_timeout": 1000.0})
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice1, alice2, bob = Device(n1, "alice"), Device(n2, "alice"), Device(n2, "bobby")
    assert bob.conn.send_text(alice_id, "hi").error_code == 0  # n2 caches alice's empty list
    assert alice_id in n2.core.feature("blocks")._cache
    block(alice1, bob_id)
    n1.clock.advance(0)
    (notice,) = alice2.pushes(Cmd.BLOCK_CHANGED_NOTIFY)  # her device on n2 is told
    assert notice.blocked
    assert bob.conn.send_text(alice_id, "again").error_code == BLOCKED
    block(alice1, bob_id, False)
    n1.clock.advance(0)
    assert bob.conn.send_text(alice_id, "and again").error_code == 0


def test_block_changed_event_fires(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    seen = []
    node.core.registry.hook("block/changed", lambda *args: seen.append(args))
    alice = Device(node, "alice")
    block(alice, bob_id)
    block(alice, bob_id)
    block(alice, bob_id, False)
    assert seen == [(alice_id, bob_id, True), (alice_id, bob_id, False)]


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_blocks_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    alice2 = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    rsp = await alice.block(bob_id)
    assert (rsp.result_code, rsp.blocked) == (200, True)
    _, _, notice = await alice2.next_push(Cmd.BLOCK_CHANGED_NOTIFY)
    assert (notice.peer_id, notice.blocked) == (bob_id, True)
    listed = await alice.blocked_users()
    assert [(b.user_id, b.nick_name) for b in listed.blocked] == [(bob_id, "Bobby")]
    ack = await bob.send_message(alice_id, "blocked?")
    assert ack.error_code == BLOCKED
    assert (await alice.unblock(bob_id)).result_code == 200
    ack = await bob.send_message(alice_id, "not any more")
    assert ack.error_code == 0
    _, _, msg = await alice.next_push(Cmd.MSG_DATA)
    assert msg.msg_data == b"not any more"


def test_a_load_racing_a_change_is_answered_but_not_kept(node):
    from twisted.internet import defer

    alice_id, bob_id = node.user("alice"), node.user("bobby")
    blocks = node.core.feature("blocks")
    pending: list[defer.Deferred] = []
    real = blocks.store.blocks_of
    blocks.store.blocks_of = lambda owner, limit: pending.append(defer.Deferred()) or pending[-1]
    first, second = blocks.is_blocked(alice_id, bob_id), blocks.is_blocked(alice_id, bob_id)
    assert len(pending) == 1  # concurrent misses share one load
    blocks.invalidate(alice_id)  # a change committed while the load ran
    pending[0].callback([])
    assert node.result(first) is False and node.result(second) is False
    assert alice_id not in blocks._cache  # what the load read may be stale: not kept
    blocks.store.blocks_of = real
    assert node.result(blocks.is_blocked(alice_id, bob_id)) is False
    assert alice_id in blocks._cache


def test_the_cache_is_dropped_after_a_cluster_outage_and_bounded():
    hub, (n1, n2) = memory_cluster(**{"limits.idle_timeout": 1000.0, "blocks.cache_size": 2})
    ids = [n1.user(n) for n in ("alice", "bobby", "carol", "david")]
    blocks = n2.core.feature("blocks")
    for owner in ids[:3]:
        n2.result(blocks.is_blocked(owner, ids[3]))
    assert list(blocks._cache) == ids[1:3]  # at most cache_size lists, the oldest loaded go first
    n2.core.registry.fire("cluster/resumed", 0.0)
    assert not blocks._cache


def test_block_and_profile_pushes_cross_nodes_intact():
    from coffeechat.codec import from_wire, to_wire
    from coffeechat.features.blocks import BlockPush
    from coffeechat.features.directory import ProfilePush

    for push in (BlockPush(1, 2, True, 1700000000), ProfilePush(1, "alice", "Ålice", "https://x/a", "s", "{}", 9)):
        assert from_wire(type(push), json.loads(json.dumps(to_wire(push)))) == push


def test_forwarded_copies_to_a_user_who_blocked_the_forwarder_are_refused(node):
    from .test_forward import forward

    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    carol = Device(node, "carol")
    seq = carol.conn.send_text(bob_id, "pass it on").server_msg_id
    block(alice, bob_id)
    alice.pushes()
    rsp = forward(bob, carol_id, [seq], [(1, alice_id)])
    (result,) = rsp.results
    assert (result.session_id, result.result_code) == (alice_id, BLOCKED)
    assert alice.pushes(Cmd.MSG_DATA) == []


def test_block_changes_are_rate_limited_per_user():
    node = MemoryNode(**{"limits.idle_timeout": 1000.0, "blocks.change_burst": 2})
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    assert block(alice, bob_id).result_code == 200
    assert block(alice, bob_id, False).result_code == 200
    assert block(alice, bob_id).result_code == ErrorCode.RATE_LIMITED
    assert block(bob, alice_id).result_code == 200  # his own budget
    node.advance(2)  # 30 a minute: one more after two seconds
    assert block(alice, bob_id).result_code == 200
