"""Recall: on a memory reactor (who may, when, what everyone sees) and over every transport."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

SINGLE, GROUP = 1, 2
RECALLED = pb.kCIM_MSG_TYPE_RECALLED


def recall(device: Device, session_id: int, msg_id: int, session_type: int = SINGLE) -> pb.CIMMsgRecallRsp:
    return device.call(
        Cmd.MSG_RECALL_REQ, pb.CIMMsgRecallReq(session_type=session_type, session_id=session_id, msg_id=msg_id)
    )


def recall_notices(device: Device) -> list[tuple[int, int, int, int]]:
    return [
        (n.from_user_id, n.server_msg_id, n.recalled_by, n.session_type) for n in device.pushes(Cmd.MSG_RECALL_NOTIFY)
    ]


@pytest.fixture
def node():
    return MemoryNode(**{"recall.window": 120.0, "limits.idle_timeout": 1000.0})


def test_the_sender_recalls_within_the_window_and_every_device_learns_it(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    seq = alice.conn.send_text(bob_id, "oops, wrong chat").server_msg_id
    for d in (alice2, bob):
        d.pushes()
    rsp = recall(alice, bob_id, seq)
    assert (rsp.result_code, rsp.session_id, rsp.msg_id) == (200, bob_id, seq)
    assert recall_notices(bob) == recall_notices(alice2) == [(alice_id, seq, alice_id, SINGLE)]
    assert recall_notices(alice) == []  # the recalling device has its answer
    # the content is gone from storage, not hidden: history and the list show the tombstone
    history = bob.call(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=SINGLE, session_id=alice_id))
    (entry,) = history.msg_list
    assert (entry.msg_type, entry.msg_status) == (RECALLED, pb.kCIM_MSG_STATUS_SendCacel)
    assert json.loads(entry.msg_data) == {"recalledBy": alice_id, "recallTime": int(node.clock.seconds()), "msgType": 1}
    assert b"wrong chat" not in entry.msg_data
    stored = node.result(node.store.messages_by_seq(f"p:{alice_id}:{bob_id}", [seq]))
    assert stored[0].data == entry.msg_data and stored[0].msg_type == RECALLED
    listing = bob.call(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    (preview,) = listing.contact_session_list
    assert (preview.server_msg_id, preview.msg_type) == (seq, RECALLED)
    assert recall(alice, bob_id, seq).result_code == 200  # again: the same recall, nobody told twice
    assert recall_notices(bob) == []


def test_who_may_recall_and_until_when(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seq = alice.conn.send_text(bob_id, "mine").server_msg_id
    assert recall(bob, alice_id, seq).result_code == ErrorCode.FORBIDDEN  # the peer may not
    assert recall(alice, bob_id, 99).result_code == ErrorCode.NOT_FOUND
    node.advance(121)
    assert recall(alice, bob_id, seq).result_code == ErrorCode.RECALL_TOO_LATE
    node.user("carol")
    carol = Device(node, "carol")
    assert recall(carol, bob_id, seq).result_code == ErrorCode.NOT_FOUND  # not her conversation with bob


def test_group_owner_and_admins_recall_any_time_members_their_own_in_time(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create(ids[1:]).group_info.group_id
    by_bob = bob.send(gid, "bob's").server_msg_id
    by_carol = carol.send(gid, "carol's").server_msg_id
    for d in (alice, bob, carol):
        d.pushes()
    assert recall(bob, gid, by_carol, GROUP).result_code == ErrorCode.FORBIDDEN
    node.advance(200)
    assert recall(bob, gid, by_bob, GROUP).result_code == ErrorCode.RECALL_TOO_LATE
    assert recall(alice, gid, by_bob, GROUP).result_code == 200  # the owner, any time
    assert recall_notices(bob) == recall_notices(carol) == [(ids[1], by_bob, ids[0], GROUP)]
    notice = 1  # the group's creation notice: never recalled
    assert recall(alice, gid, notice, GROUP).result_code == ErrorCode.FORBIDDEN


def test_the_recall_list_catches_up_a_device_that_was_away(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice = Device(node, "alice")
    first = alice.conn.send_text(bob_id, "one").server_msg_id
    alice.conn.send_text(bob_id, "two")
    t0 = int(node.clock.seconds())
    node.advance(5)
    recall(alice, bob_id, first)
    bob = Device(node, "bobby")  # comes back later, holding "one" from before
    rsp = bob.call(Cmd.MSG_RECALL_LIST_REQ, pb.CIMMsgRecallListReq(since_time=t0))
    assert [(r.from_user_id, r.server_msg_id, r.recalled_by) for r in rsp.recalls] == [(alice_id, first, alice_id)]
    assert not rsp.has_more
    later = bob.call(Cmd.MSG_RECALL_LIST_REQ, pb.CIMMsgRecallListReq(since_time=t0 + 100))
    assert list(later.recalls) == []


def test_recall_crosses_nodes():
    hub, (n1, n2) = memory_cluster(("n1", "n2"))
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    seq = alice.conn.send_text(bob_id, "across").server_msg_id
    n1.clock.advance(0)
    bob.pushes()
    assert recall(alice, bob_id, seq).result_code == 200
    n1.clock.advance(0)
    assert recall_notices(bob) == [(alice_id, seq, alice_id, SINGLE)]


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_recall_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    ack = await alice.send_message(bob_id, "take this back")
    await bob.next_push(Cmd.MSG_DATA)
    rsp = await alice.recall(bob_id, ack.server_msg_id)
    assert rsp.result_code == 200
    _, _, notice = await bob.next_push(Cmd.MSG_RECALL_NOTIFY)
    assert (notice.from_user_id, notice.server_msg_id, notice.recalled_by) == (alice_id, ack.server_msg_id, alice_id)
    history = await bob.history(alice_id)
    assert [m.msg_type for m in history.msg_list] == [RECALLED]
    listing = await bob.recalls(0)
    assert [r.server_msg_id for r in listing.recalls] == [ack.server_msg_id]


@pytest_twisted.ensureDeferred
async def test_the_admin_api_recalls_any_message(live_node):
    from .test_http import Api

    api = Api(live_node.node)
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice")
    bob = await live_node.login("bobby")
    ack = await alice.send_message(bob_id, "reported")
    await bob.next_push(Cmd.MSG_DATA)
    body = {"sessionType": 1, "userId": alice_id, "sessionId": bob_id, "msgId": ack.server_msg_id}
    assert (await api.call("POST", "/admin/messages/recall", body))[0] == 401  # the admin token is needed
    answer = await api.post("/admin/messages/recall", body, token="admin-secret")
    assert answer["error_code"] == 200 and answer["recalled"]["recalledBy"] == 0
    status, refused = await api.call("POST", "/admin/messages/recall", {**body, "msgId": 99}, token="admin-secret")
    assert (status, refused["error_code"]) == (404, ErrorCode.NOT_FOUND)
    _, _, notice = await bob.next_push(Cmd.MSG_RECALL_NOTIFY)
    assert (notice.server_msg_id, notice.recalled_by) == (ack.server_msg_id, 0)
