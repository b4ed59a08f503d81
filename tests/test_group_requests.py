"""Group requests on a memory reactor: asking to join, approval by owner and admins (first decision
wins), invitations needing consent (the group's or the user's), withdrawal, expiry, bounds, the
pending list, ownership transfer, and all of it across two nodes."""

from __future__ import annotations

import json

import pytest

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, memory_cluster
from .test_groups import ADD, NOTIFICATION, ROLE, Device

OK = 200
NEED_AUTH = pb.kCIM_GROUP_JOIN_MODEL_NEED_AUTH
REJECT = pb.kCIM_GROUP_JOIN_MODEL_REJECT
NEED_AGREE = pb.kCIM_GROUP_BE_INVITE_MODEL_NEED_AGREE
JOIN, INVITE = 1, 2
PENDING, ACCEPTED, REJECTED, EXPIRED, WITHDRAWN = 0, 1, 2, 3, 4


def ask(device: Device, group_id: int, message: str = "") -> pb.CIMGroupJoinRsp:
    return device.call(Cmd.GROUP_JOIN_REQ, pb.CIMGroupJoinReq(group_id=group_id, message=message))


def decide(device: Device, request_id: int, accept: bool) -> pb.CIMGroupRequestDecideRsp:
    return device.call(Cmd.GROUP_REQUEST_DECIDE_REQ, pb.CIMGroupRequestDecideReq(request_id=request_id, accept=accept))


def pending(device: Device, group_id: int = 0, limit: int = 0) -> pb.CIMGroupRequestListRsp:
    return device.call(Cmd.GROUP_REQUEST_LIST_REQ, pb.CIMGroupRequestListReq(group_id=group_id, limit=limit))


def card(device: Device, group_id: int) -> pb.CIMGroupPublicInfoRsp:
    return device.call(Cmd.GROUP_PUBLIC_INFO_REQ, pb.CIMGroupPublicInfoReq(group_id=group_id))


def consent(device: Device, value: bool | None = None) -> pb.CIMGroupInviteSettingRsp:
    req = pb.CIMGroupInviteSettingReq() if value is None else pb.CIMGroupInviteSettingReq(need_consent=value)
    return device.call(Cmd.GROUP_INVITE_SETTING_REQ, req)


def transfer(device: Device, group_id: int, new_owner: int) -> pb.CIMGroupTransferOwnerRsp:
    return device.call(
        Cmd.GROUP_TRANSFER_OWNER_REQ, pb.CIMGroupTransferOwnerReq(group_id=group_id, new_owner_id=new_owner)
    )


def told(device: Device) -> list[tuple[int, int, int, int]]:
    """(request id, kind, status, decided_by) of the GROUP_REQUEST_NOTIFY pushes received."""
    return [
        (n.request.request_id, n.request.kind, n.request.status, n.request.decided_by)
        for n in device.pushes(Cmd.GROUP_REQUEST_NOTIFY)
    ]


def member_ids(device: Device, group_id: int) -> list[int]:
    return list(device.members(group_id).member_id_list)


@pytest.fixture
def node():
    return MemoryNode(**{"limits.idle_timeout": 10_000_000.0})


def moderated_group(node: MemoryNode) -> tuple[int, dict[str, int], dict[str, Device]]:
    """alice owns a NEED_AUTH group with bob as admin and dave as member; carol is outside."""
    ids = {n: node.user(n) for n in ("alice", "bobby", "carol", "david")}
    devices = {n: Device(node, n) for n in ids}
    devices["alice2"] = Device(node, "alice")
    devices["carol2"] = Device(node, "carol")
    alice = devices["alice"]
    gid = alice.create([ids["bobby"], ids["david"]], name="Moderated").group_info.group_id
    assert alice.update(gid, join_model=NEED_AUTH).result_code == OK
    assert alice.set_admin(gid, [ids["bobby"]]).result_code == OK
    for d in devices.values():
        d.pushes()
    return gid, ids, devices


def test_a_request_to_join_reaches_owner_and_admins_and_the_first_decision_wins(node):
    gid, ids, d = moderated_group(node)
    info = card(d["carol"], gid)
    assert (info.result_code, info.group_name, info.member_count, info.join_model, info.is_member) == (
        OK,
        "Moderated",
        3,
        NEED_AUTH,
        False,
    )
    rsp = ask(d["carol"], gid, "  hello, may I join?  ")
    assert rsp.result_code == OK
    req = rsp.request
    assert (req.kind, req.group_id, req.user_id, req.actor_id, req.message, req.status, req.group_name) == (
        JOIN,
        gid,
        ids["carol"],
        ids["carol"],
        "hello, may I join?",
        PENDING,
        "Moderated",
    )
    assert req.expire_time == req.create_time + 7 * 24 * 3600
    rid = req.request_id
    for name in ("alice", "alice2", "bobby", "carol2"):
        assert told(d[name]) == [(rid, JOIN, PENDING, 0)], name
    assert told(d["david"]) == [] and told(d["carol"]) == []  # plain members are not asked
    # asking again while it waits changes nothing and tells nobody again
    assert ask(d["carol"], gid, "again").request.request_id == rid
    assert told(d["alice"]) == []
    # a plain member may not decide; the requester may not approve herself
    assert decide(d["david"], rid, True).result_code == ErrorCode.GROUP_REQUEST_NOT_FOUND
    assert decide(d["carol"], rid, True).result_code == ErrorCode.FORBIDDEN
    # bob approves: carol is in, with the change notify and the invite notice
    done = decide(d["bobby"], rid, True)
    assert done.result_code == OK and done.request.status == ACCEPTED and done.request.decided_by == ids["bobby"]
    body = pb.CIMMsgData.FromString(done.attach_notificatino_msg)
    assert body.msg_type == NOTIFICATION and body.from_user_id == ids["bobby"]
    notice = json.loads(body.msg_data)
    assert notice["notificationType"] == 2
    assert notice["data"]["ids"] == [str(ids["carol"])] and notice["data"]["joinType"] == "request"
    assert member_ids(d["alice"], gid) == [ids["alice"], ids["bobby"], ids["david"], ids["carol"]]
    changed = d["carol2"].pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    assert [(c.user_id, c.type) for n in changed for c in n.changed_list] == [(ids["carol"], ADD)]
    assert any(m.msg_type == NOTIFICATION for m in d["david"].pushes(Cmd.MSG_DATA))
    # the others' devices are told it was handled, and alice's late decision loses
    for name in ("alice", "alice2", "carol", "carol2"):
        assert told(d[name]) == [(rid, JOIN, ACCEPTED, ids["bobby"])], name
    assert told(d["bobby"]) == []  # the deciding device has its answer
    late = decide(d["alice"], rid, False)
    assert late.result_code == ErrorCode.GROUP_REQUEST_HANDLED
    assert pending(d["alice"]).requests == []
    assert ask(d["carol"], gid).result_code == ErrorCode.ALREADY_GROUP_MEMBER
    assert card(d["carol"], gid).is_member


def test_reject_withdraw_and_which_groups_take_requests(node):
    gid, ids, d = moderated_group(node)
    rid = ask(d["carol"], gid).request.request_id
    rejected = decide(d["alice"], rid, False)
    assert rejected.result_code == OK and rejected.request.status == REJECTED
    assert rejected.attach_notificatino_msg == b""
    assert ids["carol"] not in member_ids(d["alice"], gid)
    assert told(d["carol"]) == [(rid, JOIN, REJECTED, ids["alice"])]
    # she may ask again (a new request), and withdraw it herself
    again = ask(d["carol"], gid).request.request_id
    assert again != rid
    assert decide(d["carol"], again, False).request.status == WITHDRAWN
    assert decide(d["bobby"], again, True).result_code == ErrorCode.GROUP_REQUEST_HANDLED
    # groups joined by invitation only, closed groups and missing ones all answer alike
    open_gid = d["alice"].create([ids["bobby"]], name="Open").group_info.group_id
    closed_gid = d["alice"].create([ids["bobby"]], name="Closed").group_info.group_id
    d["alice"].update(closed_gid, join_model=REJECT)
    for g in (open_gid, closed_gid, 999, 0):
        assert ask(d["carol"], g).result_code == ErrorCode.GROUP_NOT_JOINABLE, g
        assert card(d["carol"], g).result_code == ErrorCode.GROUP_NOT_JOINABLE, g
    assert card(d["bobby"], open_gid).is_member  # members see their own groups
    assert ask(d["carol"], gid, "x" * 201).result_code == ErrorCode.INVALID_ARGUMENT
    assert decide(d["carol"], 12345, True).result_code == ErrorCode.GROUP_REQUEST_NOT_FOUND


def test_requests_expire_and_are_bounded():
    node = MemoryNode(
        **{
            "limits.idle_timeout": 10_000_000.0,
            "group_requests.ttl": 3600,
            "group_requests.max_pending_per_group": 2,
            "group_requests.max_pending_per_user": 1,
        }
    )
    gid, ids, d = moderated_group(node)
    for name in ("erinn", "frank"):
        node.user(name)
    erin, frank = Device(node, "erinn"), Device(node, "frank")
    rid = ask(d["carol"], gid).request.request_id
    assert ask(erin, gid).result_code == OK
    assert ask(frank, gid).result_code == ErrorCode.TOO_MANY_GROUP_REQUESTS  # the group's bound
    second = d["alice"].create([ids["bobby"]], name="Second").group_info.group_id
    d["alice"].update(second, join_model=NEED_AUTH)
    assert ask(d["carol"], second).result_code == ErrorCode.TOO_MANY_GROUP_REQUESTS  # carol's bound
    assert len(pending(d["alice"]).requests) == 2
    assert [r.request_id for r in pending(d["alice"], limit=1).requests] == [rid]
    assert pending(d["alice"], limit=1).has_more
    node.advance(3601, step=3601)
    assert pending(d["alice"]).requests == []
    assert decide(d["alice"], rid, True).result_code == ErrorCode.GROUP_REQUEST_HANDLED
    renewed = ask(d["carol"], gid).request.request_id  # an expired request does not block a new one
    assert renewed != rid
    assert ask(frank, gid).result_code == OK


def test_invitations_to_a_group_needing_consent_wait_for_the_invitee(node):
    ids = {n: node.user(n) for n in ("alice", "bobby", "carol")}
    alice, bob, carol, carol2 = (
        Device(node, "alice"),
        Device(node, "bobby"),
        Device(node, "carol"),
        Device(node, "carol"),
    )
    gid = alice.create([ids["bobby"]], name="Agree first").group_info.group_id
    assert alice.update(gid, be_invite_model=NEED_AGREE).result_code == OK
    for x in (alice, bob, carol, carol2):
        x.pushes()
    rsp = bob.invite(gid, [ids["carol"]])
    assert rsp.result_code == OK and rsp.attach_notificatino_msg == b""  # nobody added yet
    assert ids["carol"] not in member_ids(alice, gid)
    (note,) = carol.pushes(Cmd.GROUP_REQUEST_NOTIFY)
    inv = note.request
    assert (inv.kind, inv.user_id, inv.actor_id, inv.status, inv.group_name) == (
        INVITE,
        ids["carol"],
        ids["bobby"],
        PENDING,
        "Agree first",
    )
    assert told(carol2) == [(inv.request_id, INVITE, PENDING, 0)]
    assert told(alice) == []  # invitations are the invitee's and the inviter's business
    # an invitee who was offline lists it
    late = Device(node, "carol")
    (listed,) = pending(late).requests
    assert listed.request_id == inv.request_id and listed.group_name == "Agree first"
    assert decide(alice, inv.request_id, True).result_code == ErrorCode.GROUP_REQUEST_NOT_FOUND
    done = decide(carol, inv.request_id, True)
    assert done.result_code == OK and done.request.status == ACCEPTED
    notice = json.loads(pb.CIMMsgData.FromString(done.attach_notificatino_msg).msg_data)
    assert notice["data"]["userId"] == str(ids["bobby"]) and notice["data"]["joinType"] == "invitation"
    assert member_ids(alice, gid)[-1] == ids["carol"]
    assert told(bob) == [(inv.request_id, INVITE, PENDING, 0), (inv.request_id, INVITE, ACCEPTED, ids["carol"])]
    assert told(carol2) == [(inv.request_id, INVITE, ACCEPTED, ids["carol"])]
    # declining, and the inviter withdrawing
    dave = node.user("david")
    dave_dev = Device(node, "david")
    alice.invite(gid, [dave])
    (note,) = dave_dev.pushes(Cmd.GROUP_REQUEST_NOTIFY)
    # a group closed meanwhile takes nobody in: the invitation waits, to be declined
    assert alice.update(gid, join_model=REJECT).result_code == OK
    assert decide(dave_dev, note.request.request_id, True).result_code == ErrorCode.FORBIDDEN
    assert alice.update(gid, join_model=0).result_code == OK
    assert decide(dave_dev, note.request.request_id, False).request.status == REJECTED
    assert dave not in member_ids(alice, gid)
    alice.invite(gid, [dave])
    (note,) = dave_dev.pushes(Cmd.GROUP_REQUEST_NOTIFY)
    assert decide(bob, note.request.request_id, False).result_code == ErrorCode.GROUP_REQUEST_NOT_FOUND
    assert decide(alice, note.request.request_id, False).request.status == WITHDRAWN
    assert told(dave_dev) == [(note.request.request_id, INVITE, WITHDRAWN, ids["alice"])]


def test_a_user_who_wants_to_consent_is_asked_others_are_added(node):
    ids = {n: node.user(n) for n in ("alice", "bobby", "carol")}
    alice, bob, bob2 = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    assert consent(bob).need_consent is False
    assert consent(bob, True).need_consent is True
    (note,) = bob2.pushes(Cmd.GROUP_INVITE_SETTING_NOTIFY)
    assert note.need_consent is True and note.user_id == ids["bobby"]
    assert consent(bob2).need_consent is True
    gid = alice.create([], name="Mixed").group_info.group_id
    rsp = alice.invite(gid, [ids["bobby"], ids["carol"]])
    notice = json.loads(pb.CIMMsgData.FromString(rsp.attach_notificatino_msg).msg_data)
    assert notice["data"]["ids"] == [str(ids["carol"])]  # carol at once, bob asked
    assert member_ids(alice, gid) == [ids["alice"], ids["carol"]]
    (inv,) = bob.pushes(Cmd.GROUP_REQUEST_NOTIFY)
    assert [r.request.request_id for r in alice.pushes(Cmd.GROUP_REQUEST_NOTIFY)] == [inv.request.request_id]
    # the inviter left before the invitee accepted: the invitation lapses
    assert alice.exit(gid).result_code == OK
    lapsed = decide(bob, inv.request.request_id, True)
    assert lapsed.result_code == ErrorCode.FORBIDDEN
    assert ids["bobby"] not in member_ids(Device(node, "carol"), gid)
    assert told(bob2)[-1] == (inv.request.request_id, INVITE, EXPIRED, ids["bobby"])
    assert pending(bob).requests == []
    assert consent(bob, False).need_consent is False
    carol = Device(node, "carol")
    carol.invite(gid, [ids["bobby"]])
    assert ids["bobby"] in member_ids(carol, gid)


def test_an_approval_that_cannot_be_carried_out_leaves_the_request_pending():
    node = MemoryNode(**{"limits.idle_timeout": 10_000_000.0, "groups.max_normal_members": 3})
    gid, ids, d = moderated_group(node)  # three members: full
    rid = ask(d["carol"], gid).request.request_id
    assert decide(d["alice"], rid, True).result_code == ErrorCode.GROUP_FULL
    (still,) = pending(d["alice"]).requests
    assert still.request_id == rid and still.status == PENDING
    d["alice"].kick(gid, [ids["david"]])
    assert decide(d["alice"], rid, True).result_code == OK


def test_the_owner_transfers_ownership_and_becomes_an_admin(node):
    gid, ids, d = moderated_group(node)
    assert transfer(d["bobby"], gid, ids["david"]).result_code == ErrorCode.FORBIDDEN
    assert transfer(d["alice"], gid, ids["carol"]).result_code == ErrorCode.INVALID_ARGUMENT
    assert transfer(d["alice"], gid, ids["alice"]).result_code == ErrorCode.INVALID_ARGUMENT
    assert transfer(d["alice"], 999, ids["david"]).result_code == ErrorCode.NOT_FOUND
    rsp = transfer(d["alice"], gid, ids["david"])
    assert rsp.result_code == OK and rsp.new_owner_id == ids["david"]
    notice = json.loads(pb.CIMMsgData.FromString(rsp.attach_notificatino_msg).msg_data)
    assert notice["notificationType"] == 5
    assert notice["data"] == {
        "groupId": str(gid),
        "userId": str(ids["alice"]),
        "owner": str(ids["david"]),
        "ownerNick": "David",
    }
    (change,) = d["david"].pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    assert [(c.user_id, c.type, c.role) for c in change.changed_list] == [
        (ids["david"], ROLE, 3),
        (ids["alice"], ROLE, 2),
    ]
    assert d["alice2"].pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    roles = {m.user_id: m.role for m in d["bobby"].members(gid).member_list}
    assert roles == {ids["alice"]: 2, ids["bobby"]: 2, ids["david"]: 3}
    (info,) = d["bobby"].info([(gid, 0)]).group_info_list
    assert info.group_owner_id == ids["david"]
    assert d["alice"].dismiss(gid).result_code == ErrorCode.FORBIDDEN  # no longer the owner
    assert transfer(d["alice"], gid, ids["bobby"]).result_code == ErrorCode.FORBIDDEN
    rid = ask(d["carol"], gid).request.request_id  # as an admin, alice still decides requests
    assert decide(d["alice"], rid, True).result_code == OK
    assert d["david"].dismiss(gid).result_code == OK


def test_requests_and_decisions_cross_nodes():
    _hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 10_000_000.0})
    ids = {n: n1.user(n) for n in ("alice", "bobby", "carol")}
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    carol1, carol2 = Device(n1, "carol"), Device(n2, "carol")
    gid = alice.create([ids["bobby"]], name="Spread").group_info.group_id
    alice.set_admin(gid, [ids["bobby"]])
    alice.update(gid, join_model=NEED_AUTH)
    n1.clock.advance(0)
    for x in (alice, bob, carol1, carol2):
        x.pushes()
    rid = ask(carol1, gid, "hi").request.request_id
    n1.clock.advance(0)
    assert told(bob) == told(alice) == [(rid, JOIN, PENDING, 0)]
    assert told(carol2) == [(rid, JOIN, PENDING, 0)]
    assert decide(bob, rid, True).result_code == OK  # on the other node, whose cache must see the admin
    n1.clock.advance(0)
    assert told(alice) == [(rid, JOIN, ACCEPTED, ids["bobby"])]
    assert told(carol1) == [(rid, JOIN, ACCEPTED, ids["bobby"])]
    assert carol1.pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    assert carol1.send(gid, "hello all").server_msg_id > 0  # node 1 knows she is a member now
    assert decide(alice, rid, False).result_code == ErrorCode.GROUP_REQUEST_HANDLED
    n1.clock.advance(0)
    bob.pushes()
    assert transfer(alice, gid, ids["carol"]).result_code == OK
    n1.clock.advance(0)
    changes = bob.pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    assert [(c.user_id, c.role) for n in changes for c in n.changed_list] == [(ids["carol"], 3), (ids["alice"], 2)]


def test_creating_a_group_invites_those_who_want_to_consent(node):
    ids = {n: node.user(n) for n in ("alice", "bobby", "carol")}
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    consent(bob, True)
    created = alice.create([ids["bobby"], ids["carol"]], name="Picnic")
    gid = created.group_info.group_id
    assert list(created.member_id_list) == [ids["alice"], ids["carol"]]
    assert json.loads(pb.CIMMsgData.FromString(created.attach_notificatino_msg).msg_data)["data"]["ids"] == [
        str(ids["carol"])
    ]
    (inv,) = bob.pushes(Cmd.GROUP_REQUEST_NOTIFY)
    assert (inv.request.kind, inv.request.group_id, inv.request.actor_id) == (INVITE, gid, ids["alice"])
    assert bob.groups().group_version_list == []
    # pending ones of a dismissed group are not listed any more, nor ones whose user got in
    second = alice.create([ids["carol"]], name="Second")
    assert second.result_code == OK
    assert alice.update(second.group_info.group_id, join_model=NEED_AUTH).result_code == OK
    carol.exit(second.group_info.group_id)
    ask(carol, second.group_info.group_id)
    assert len(pending(alice).requests) == 2
    consent(bob, False)
    alice.invite(second.group_info.group_id, [ids["carol"]])  # in again by invitation
    assert [r.request_id for r in pending(alice).requests] == [inv.request.request_id]
    alice.dismiss(gid)
    assert pending(alice).requests == [] and pending(bob).requests == []
    assert decide(bob, inv.request.request_id, True).result_code == ErrorCode.NOT_FOUND


def test_bad_config_is_refused_and_without_the_feature_consent_groups_take_no_invitations():
    from coffeechat.config import ConfigError, load_config

    for key, value in (
        ("group_requests.ttl", 10),
        ("group_requests.max_message", -1),
        ("group_requests.max_pending_per_group", 0),
        ("group_requests.max_pending_per_user", 0),
    ):
        with pytest.raises(ConfigError, match=key.split(".")[1]):
            load_config(None, {key: value})
    node = MemoryNode(**{"features.enabled": ["accounts", "messages", "groups"], "limits.idle_timeout": 1e7})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    gid = alice.create([], name="Strict").group_info.group_id
    alice.update(gid, be_invite_model=NEED_AGREE, join_model=NEED_AUTH)
    assert alice.invite(gid, [bob_id]).result_code == ErrorCode.NOT_SUPPORTED
    assert ask(Device(node, "bobby"), gid).error_code == ErrorCode.NOT_SUPPORTED  # ERROR_RSP: not served
    # ownership transfer belongs to the groups feature: it works without group_requests
    alice.update(gid, be_invite_model=0)
    alice.invite(gid, [bob_id])
    assert transfer(alice, gid, bob_id).result_code == OK
