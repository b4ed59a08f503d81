"""Group requests over real loopback sockets (SQLite storage), on TCP, WebSocket binary and
WebSocket JSON: ask, approve on one admin device while the other is told, an invitation needing
consent accepted, the pending list after reconnecting, and an ownership transfer."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS

NEED_AUTH = pb.kCIM_GROUP_JOIN_MODEL_NEED_AUTH
NEED_AGREE = pb.kCIM_GROUP_BE_INVITE_MODEL_NEED_AGREE


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_group_requests_over_every_transport(live_node, transport):
    ids = {n: await live_node.register(n) for n in ("alice", "bobby", "carol", "david")}
    alice = await live_node.login("alice", transport=transport)
    alice2 = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    carol = await live_node.login("carol", transport=transport)
    created = await alice.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="Club", member_id_list=[ids["bobby"]])
    )
    gid = created.group_info.group_id
    update = pb.CIMGroupUpdateReq(group_id=gid, join_model=NEED_AUTH, be_invite_model=NEED_AGREE)
    assert (await alice.request(Cmd.GROUP_UPDATE_REQ, update)).result_code == 200
    admin = pb.CIMGroupSetAdminReq(group_id=gid, member_id_list=[ids["bobby"]], is_admin=True)
    assert (await alice.request(Cmd.GROUP_SET_ADMIN_REQ, admin)).result_code == 200
    # carol finds it by id and asks
    info = await carol.group_public_info(gid)
    assert (info.result_code, info.group_name, info.member_count) == (200, "Club", 2)
    asked = await carol.ask_to_join_group(gid, "hello 👋")
    assert asked.result_code == 200 and asked.request.message == "hello 👋"
    rid = asked.request.request_id
    for device in (alice, alice2, bob):
        _, _, note = await device.next_push(Cmd.GROUP_REQUEST_NOTIFY)
        assert (note.request.request_id, note.request.status, note.request.user_id) == (rid, 0, ids["carol"])
    assert [r.request_id for r in (await alice.group_requests()).requests] == [rid]
    # alice approves on one device; the other learns it was handled, carol is a member
    done = await alice.decide_group_request(rid, True)
    assert done.result_code == 200 and done.request.status == 1
    assert json.loads(pb.CIMMsgData.FromString(done.attach_notificatino_msg).msg_data)["data"]["ids"] == [
        str(ids["carol"])
    ]
    _, _, handled = await alice2.next_push(Cmd.GROUP_REQUEST_NOTIFY)
    assert (handled.request.request_id, handled.request.status, handled.request.decided_by) == (rid, 1, ids["alice"])
    _, _, told = await carol.next_push(Cmd.GROUP_REQUEST_NOTIFY)
    assert told.request.status == 1
    _, _, changed = await carol.next_push(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    assert [c.user_id for c in changed.changed_list] == [ids["carol"]]
    assert (await alice2.decide_group_request(rid, False)).result_code == ErrorCode.GROUP_REQUEST_HANDLED
    # an invitation in this NEED_AGREE group waits for david, who lists it after logging in
    invite = pb.CIMGroupInviteMemberReq(group_id=gid, member_id_list=[ids["david"]])
    assert (await bob.request(Cmd.GROUP_INVITE_MEMBER_REQ, invite)).result_code == 200
    david = await live_node.login("david", transport=transport)
    (waiting,) = (await david.group_requests()).requests
    assert (waiting.kind, waiting.actor_id, waiting.group_name) == (2, ids["bobby"], "Club")
    accepted = await david.decide_group_request(waiting.request_id, True)
    assert accepted.result_code == 200
    members = await alice.request(Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=gid))
    assert list(members.member_id_list) == [ids["alice"], ids["bobby"], ids["carol"], ids["david"]]
    # the consent setting, and handing the group to bob
    assert (await carol.group_invite_consent(True)).need_consent is True
    assert (await carol.group_invite_consent()).need_consent is True
    moved = await alice.transfer_group_owner(gid, ids["bobby"])
    assert moved.result_code == 200 and moved.new_owner_id == ids["bobby"]
    roles = await bob.request(Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=gid))
    assert {m.user_id: m.role for m in roles.member_list}[ids["alice"]] == 2  # owner, then admin
    refused = await alice.transfer_group_owner(gid, ids["carol"])
    assert refused.result_code == ErrorCode.FORBIDDEN and refused.group_id == gid
