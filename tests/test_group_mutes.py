"""Per-member mute in groups: on a memory reactor (who may mute whom, expiry by time, the send
check, pushes, the list, leaving, across nodes) and over every transport."""

from __future__ import annotations

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

GROUP = 2
MUTED = int(ErrorCode.MEMBER_MUTED)


def mute(device: Device, group_id: int, member_id: int, duration: int) -> pb.CIMGroupMuteMemberRsp:
    return device.call(
        Cmd.GROUP_MUTE_MEMBER_REQ, pb.CIMGroupMuteMemberReq(group_id=group_id, member_id=member_id, duration=duration)
    )


def mutes(device: Device, group_id: int) -> list[tuple[int, int, int]]:
    rsp = device.call(Cmd.GROUP_MUTE_LIST_REQ, pb.CIMGroupMuteListReq(group_id=group_id))
    assert rsp.result_code == 200, rsp
    return [(m.user_id, m.muted_until, m.muted_by) for m in rsp.mutes]


def notices(device: Device) -> list[tuple[int, int, int, int]]:
    return [(n.group_id, n.actor_id, n.member_id, n.muted_until) for n in device.pushes(Cmd.GROUP_MUTE_NOTIFY)]


@pytest.fixture
def node():
    return MemoryNode(**{"limits.idle_timeout": 100_000.0, "group_mutes.max_duration": 3600})


@pytest.fixture
def group(node):
    """alice owns a group with bob (admin), carol and dave; each has a device."""
    for name in ("alice", "bobby", "carol", "david"):
        node.user(name)
    alice, bob, carol, dave = (Device(node, n) for n in ("alice", "bobby", "carol", "david"))
    gid = alice.create([bob.user_id, carol.user_id, dave.user_id], "Team").group_info.group_id
    assert alice.set_admin(gid, [bob.user_id]).result_code == 200
    for d in (alice, bob, carol, dave):
        d.pushes()
    return gid, alice, bob, carol, dave


def test_a_muted_member_cannot_send_until_the_mute_ends(node, group):
    gid, alice, bob, carol, dave = group
    now = int(node.clock.seconds())
    rsp = mute(bob, gid, carol.user_id, 600)
    assert (rsp.result_code, rsp.member_id, rsp.muted_until) == (200, carol.user_id, now + 600)
    # every member's devices are told (the acting device has its answer)
    for d in (alice, carol, dave):
        assert notices(d) == [(gid, bob.user_id, carol.user_id, now + 600)]
    assert notices(bob) == []
    ack = carol.send(gid, "can I speak?")
    assert ack.error_code == MUTED and ack.server_msg_id == 0
    assert "until" in ack.error_msg and "Z" in ack.error_msg
    assert dave.pushes(Cmd.MSG_DATA) == []  # nothing stored, nothing pushed
    assert dave.send(gid, "others still talk").error_code == 0
    assert mutes(dave, gid) == [(carol.user_id, now + 600, bob.user_id)]
    node.advance(599)
    assert carol.send(gid, "still?").error_code == MUTED
    node.advance(2)  # the mute ends by itself: no sweeper, no notice
    assert carol.send(gid, "free again").error_code == 0
    assert mutes(alice, gid) == []


def test_unmute_and_mute_again(node, group):
    gid, alice, bob, carol, dave = group
    now = int(node.clock.seconds())
    assert mute(alice, gid, dave.user_id, 100).muted_until == now + 100
    assert mute(alice, gid, dave.user_id, 3600).muted_until == now + 3600  # a new mute replaces the old
    assert mutes(carol, gid) == [(dave.user_id, now + 3600, alice.user_id)]
    dave.pushes()
    rsp = mute(bob, gid, dave.user_id, 0)
    assert (rsp.result_code, rsp.muted_until) == (200, 0)
    assert notices(dave) == [(gid, bob.user_id, dave.user_id, 0)]
    assert dave.send(gid, "thanks").error_code == 0
    assert mutes(carol, gid) == []


def test_who_may_mute_whom(node, group):
    gid, alice, bob, carol, dave = group
    node.user("erinn")
    erin = Device(node, "erinn")
    cases = [
        (carol, dave.user_id, 60, ErrorCode.FORBIDDEN),  # a plain member
        (bob, alice.user_id, 60, ErrorCode.FORBIDDEN),  # an admin: not the owner
        (alice, alice.user_id, 60, ErrorCode.INVALID_ARGUMENT),  # nobody themselves
        (bob, bob.user_id, 60, ErrorCode.INVALID_ARGUMENT),
        (alice, erin.user_id, 60, ErrorCode.NOT_FOUND),  # not a member
        (erin, carol.user_id, 60, ErrorCode.FORBIDDEN),  # not in the group
        (alice, carol.user_id, 3601, ErrorCode.INVALID_ARGUMENT),  # beyond max_duration
        (alice, carol.user_id, -1, ErrorCode.INVALID_ARGUMENT),
        (alice, 0, 60, ErrorCode.INVALID_ARGUMENT),
    ]
    for actor, member, duration, code in cases:
        rsp = mute(actor, gid, member, duration) if duration >= 0 else None
        if rsp is None:  # uint32: a negative duration cannot be sent; the largest one can
            rsp = mute(actor, gid, member, 2**32 - 1)
        assert (rsp.result_code, rsp.group_id) == (code, gid), (actor.user_id, member, duration, rsp)
        assert rsp.result_string
    assert mute(alice, 999, carol.user_id, 60).result_code == ErrorCode.NOT_FOUND
    # an admin mutes plain members; the owner mutes admins too
    assert mute(bob, gid, carol.user_id, 60).result_code == 200
    assert mute(bob, gid, bob.user_id, 60).result_code == ErrorCode.INVALID_ARGUMENT
    assert mute(alice, gid, bob.user_id, 60).result_code == 200
    assert bob.send(gid, "muted admin").error_code == MUTED
    assert mute(bob, gid, dave.user_id, 60).result_code == 200  # a muted admin still manages
    assert erin.call(Cmd.GROUP_MUTE_LIST_REQ, pb.CIMGroupMuteListReq(group_id=gid)).result_code == ErrorCode.FORBIDDEN


def test_the_store_rechecks_the_roles(node, group):
    """A refusal decided in the transaction: the cache would have let an admin mute an admin."""
    from coffeechat.features.group_mutes import MuteRefused

    gid, alice, bob, carol, dave = group
    mutes_feature = node.core.feature("group_mutes")
    with pytest.raises(MuteRefused) as refused:
        node.result(mutes_feature.store.set_mute(gid, alice.user_id, bob.user_id, 10**10, 1))
    assert refused.value.code == ErrorCode.FORBIDDEN


def test_leaving_lifts_the_mute_and_a_new_owner_is_never_muted(node, group):
    gid, alice, bob, carol, dave = group
    assert mute(alice, gid, carol.user_id, 600).result_code == 200
    assert mute(alice, gid, bob.user_id, 600).result_code == 200
    assert carol.exit(gid).result_code == 200
    assert alice.invite(gid, [carol.user_id]).result_code == 200
    assert carol.send(gid, "back, and not muted").error_code == 0
    # bob (the longest-standing) inherits the group from alice while muted: owners are not muted
    assert alice.exit(gid).result_code == 200
    assert bob.send(gid, "my group now").error_code == 0
    assert [m[0] for m in mutes(bob, gid)] == []


def test_the_check_is_cached(node, group):
    """After the first message of a group, the check reads no storage."""
    gid, alice, bob, carol, dave = group
    feature = node.core.feature("group_mutes")
    loads = []
    original = feature.store.mutes_of
    feature.store.mutes_of = lambda *a: loads.append(a) or original(*a)
    assert carol.send(gid, "one").error_code == 0
    assert carol.send(gid, "two").error_code == 0
    assert dave.send(gid, "three").error_code == 0
    assert len(loads) == 1
    assert mute(alice, gid, carol.user_id, 60).result_code == 200
    assert carol.send(gid, "four").error_code == MUTED
    assert len(loads) == 1  # a mute committed here updates the cache


def test_a_mute_on_one_node_refuses_the_member_on_another():
    hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 100_000.0})
    for name in ("alice", "bobby", "carol"):
        n1.user(name)
    alice, bob = Device(n1, "alice"), Device(n1, "bobby")
    carol = Device(n2, "carol")
    gid = alice.create([bob.user_id, carol.user_id]).group_info.group_id
    n1.clock.advance(0)
    assert carol.send(gid, "n2 caches the group's mutes").error_code == 0
    rsp = mute(alice, gid, carol.user_id, 300)
    assert rsp.result_code == 200
    n1.clock.advance(0)
    assert [n[2:] for n in notices(carol)] == [(carol.user_id, rsp.muted_until)]
    assert carol.send(gid, "refused on n2").error_code == MUTED
    assert mute(alice, gid, carol.user_id, 0).result_code == 200
    n1.clock.advance(0)
    assert carol.send(gid, "unmuted on n2").error_code == 0


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_mute_over_every_transport(live_node, transport):
    await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    created = await alice.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="Quiet", member_id_list=[bob_id])
    )
    gid = created.group_info.group_id
    rsp = await alice.mute_member(gid, bob_id, 120)
    assert rsp.result_code == 200 and rsp.muted_until > 0
    _, _, note = await bob.next_push(Cmd.GROUP_MUTE_NOTIFY)
    assert (note.group_id, note.actor_id, note.member_id, note.muted_until) == (
        gid,
        alice.user_id,
        bob_id,
        rsp.muted_until,
    )
    ack = await bob.send_message(gid, "let me speak", session_type=GROUP)
    assert ack.error_code == MUTED and "until" in ack.error_msg
    listed = await bob.group_mutes(gid)
    assert [(m.user_id, m.muted_until, m.muted_by) for m in listed.mutes] == [(bob_id, rsp.muted_until, alice.user_id)]
    refused = await bob.mute_member(gid, alice.user_id, 60)
    assert refused.result_code == ErrorCode.FORBIDDEN and refused.result_string
    assert (await alice.mute_member(gid, bob_id, 0)).muted_until == 0
    ack = await bob.send_message(gid, "thank you", session_type=GROUP)
    assert ack.res_code == 1 and ack.error_code == 0
