"""Deletes for oneself: on a memory reactor (history, list, unread, other devices, the other
side, recall, limits, across nodes) and over every transport."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.codec import from_wire, to_wire
from coffeechat.config import ConfigError, load_config
from coffeechat.errors import ErrorCode
from coffeechat.features.deletes import DeletePush
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .pgserver import pg_server  # noqa: F401  (session fixture, for two_nodes)
from .redisserver import redis_server  # noqa: F401
from .test_cluster_e2e import pushes, two_nodes, until  # noqa: F401
from .test_groups import Device

SINGLE, GROUP = 1, 2


def delete(device: Device, session_id: int, ids: list[int], session_type: int = SINGLE) -> pb.CIMMsgDeleteRsp:
    return device.call(
        Cmd.MSG_DELETE_REQ, pb.CIMMsgDeleteReq(session_type=session_type, session_id=session_id, msg_ids=ids)
    )


def clear(device: Device, session_id: int, session_type: int = SINGLE) -> pb.CIMSessionClearRsp:
    return device.call(Cmd.SESSION_CLEAR_REQ, pb.CIMSessionClearReq(session_type=session_type, session_id=session_id))


def remove(device: Device, session_id: int, session_type: int = SINGLE) -> pb.CIMSessionRemoveRsp:
    return device.call(Cmd.SESSION_REMOVE_REQ, pb.CIMSessionRemoveReq(session_type=session_type, session_id=session_id))


def history(device: Device, session_id: int, session_type: int = SINGLE, end: int = 0, limit: int = 0) -> list[int]:
    rsp = device.call(
        Cmd.LIST_MSG_REQ,
        pb.CIMGetMsgListReq(session_type=session_type, session_id=session_id, end_msg_id=end, limit_count=limit),
    )
    return [m.server_msg_id for m in rsp.msg_list]


def by_id(device: Device, session_id: int, ids: list[int], session_type: int = SINGLE) -> list[int]:
    rsp = device.call(
        Cmd.MSG_GET_BY_MSG_ID_REQ,
        pb.CIMGetMsgByIdReq(session_type=session_type, session_id=session_id, msg_id_list=[str(i) for i in ids]),
    )
    return [m.server_msg_id for m in rsp.msg_list]


def listing(device: Device) -> pb.CIMRecentContactSessionRsp:
    return device.call(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())


def entry(device: Device, session_id: int):
    found = [s for s in listing(device).contact_session_list if s.session_id == session_id]
    return found[0] if found else None


def notices(device: Device) -> list[tuple[int, int, tuple[int, ...], int]]:
    return [(n.session_id, n.action, tuple(n.msg_ids), n.up_to_msg_id) for n in device.pushes(Cmd.MSG_DELETE_NOTIFY)]


@pytest.fixture
def node():
    limits = {"deletes.max_per_request": 5, "deletes.max_per_conversation": 6}
    return MemoryNode(**{"limits.idle_timeout": 1000.0, **limits})


def texts(sender: Device, to_id: int, n: int) -> list[int]:
    return [sender.conn.send_text(to_id, f"m{i}").server_msg_id for i in range(n)]


def test_delete_for_me_hides_from_my_history_and_my_devices_only(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    seqs = texts(alice, bob_id, 4)
    for d in (alice2, bob):
        d.pushes()
    rsp = delete(alice, bob_id, [seqs[1], seqs[2]])
    assert (rsp.result_code, list(rsp.msg_ids)) == (200, [seqs[1], seqs[2]])
    assert history(alice, bob_id) == history(alice2, bob_id) == [seqs[0], seqs[3]]
    assert by_id(alice, bob_id, seqs) == [seqs[0], seqs[3]]
    assert history(bob, alice_id) == seqs  # never the other side's
    assert notices(alice2) == [(bob_id, pb.kCIM_DELETE_ACTION_MESSAGES, (seqs[1], seqs[2]), 0)]
    assert notices(alice) == [] and notices(bob) == []  # the acting device has its answer
    again = delete(alice, bob_id, [seqs[1]])  # idempotent: no error, nobody told again
    assert again.result_code == 200 and notices(alice2) == []


def test_deleting_the_last_message_shows_the_one_before_in_the_list_or_none(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = texts(alice, bob_id, 3)
    delete(bob, alice_id, [seqs[2]])
    preview = entry(bob, alice_id)
    assert preview.server_msg_id == seqs[1] and preview.msg_data == b"m1"
    assert entry(alice, bob_id).server_msg_id == seqs[2]  # alice still has it
    delete(bob, alice_id, [seqs[0], seqs[1]])
    preview = entry(bob, alice_id)
    assert preview is not None and preview.server_msg_id == 0 and preview.msg_data == b""  # none left
    assert history(bob, alice_id) == []


def test_unread_counts_leave_out_deleted_and_cleared_messages_and_nobody_is_told_of_a_read(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    node.user("carol")
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    seqs = texts(alice, bob_id, 4)
    texts(carol, bob_id, 2)
    listed = listing(bob)
    assert listed.unread_counts == 6
    delete(bob, alice_id, [seqs[0], seqs[3]])
    assert entry(bob, alice_id).unread_cnt == 2
    assert listing(bob).unread_counts == 4
    assert clear(bob, alice_id).up_to_msg_id == seqs[3]
    assert entry(bob, alice_id).unread_cnt == 0
    listed = listing(bob)
    assert listed.unread_counts == 2 == sum(s.unread_cnt for s in listed.contact_session_list)
    assert alice.pushes(Cmd.MSG_READ_NOTIFY) == []  # clearing is not reading
    later = alice.conn.send_text(bob_id, "after").server_msg_id
    assert history(bob, alice_id) == [later]  # later messages show as usual
    assert entry(bob, alice_id).unread_cnt == 1


def test_clear_hides_everything_up_to_now_on_every_device(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    seqs = texts(bob, alice_id, 3)
    alice2.pushes()
    rsp = clear(alice, bob_id)
    assert (rsp.result_code, rsp.up_to_msg_id) == (200, seqs[-1])
    assert notices(alice2) == [(bob_id, pb.kCIM_DELETE_ACTION_CLEAR, (), seqs[-1])]
    assert history(alice2, bob_id) == [] and by_id(alice, bob_id, seqs) == []
    assert history(bob, alice_id) == seqs
    preview = entry(alice, bob_id)
    assert preview is not None and preview.server_msg_id == 0  # in the list, without a preview
    assert clear(alice, bob_id).result_code == 200 and notices(alice2) == []  # nothing new: nobody told
    node.user("carol")
    assert clear(Device(node, "carol"), bob_id).result_code == ErrorCode.NOT_FOUND  # no such conversation


def test_removed_conversations_leave_the_list_until_a_new_message(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    seqs = texts(bob, alice_id, 2)
    alice2.pushes()
    assert listing(alice).unread_counts == 2
    rsp = remove(alice, bob_id)
    assert (rsp.result_code, rsp.removed_at_msg_id) == (200, seqs[-1])
    assert notices(alice2) == [(bob_id, pb.kCIM_DELETE_ACTION_REMOVE, (), seqs[-1])]
    listed = listing(alice2)
    assert list(listed.contact_session_list) == [] and listed.unread_counts == 0
    assert history(alice, bob_id) == seqs  # the history stays
    state = alice.call(Cmd.MSG_DELETE_STATE_REQ, pb.CIMMsgDeleteStateReq(session_type=SINGLE, session_id=bob_id))
    assert (state.removed, state.removed_at_msg_id, state.cleared_up_to) == (True, seqs[-1], 0)
    back = bob.conn.send_text(alice_id, "again").server_msg_id
    returned = entry(alice, bob_id)
    assert returned.server_msg_id == back and returned.unread_cnt == 1  # only what came after the removal
    assert listing(alice).unread_counts == 1
    state = alice.call(Cmd.MSG_DELETE_STATE_REQ, pb.CIMMsgDeleteStateReq(session_type=SINGLE, session_id=bob_id))
    assert state.removed is False


def test_a_recalled_message_i_deleted_stays_deleted(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = texts(alice, bob_id, 2)
    delete(bob, alice_id, [seqs[1]])
    rsp = alice.call(Cmd.MSG_RECALL_REQ, pb.CIMMsgRecallReq(session_type=SINGLE, session_id=bob_id, msg_id=seqs[1]))
    assert rsp.result_code == 200
    assert history(bob, alice_id) == [seqs[0]]
    assert entry(bob, alice_id).server_msg_id == seqs[0]
    assert [
        m.msg_type
        for m in alice.call(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=SINGLE, session_id=bob_id)).msg_list
    ] == [pb.kCIM_MSG_TYPE_TEXT, pb.kCIM_MSG_TYPE_RECALLED]


def test_search_follows_my_deletes_and_clears(node):
    """The search module (on by default) hooks this module's events: what I deleted or cleared
    is out of my results, not of the other side's."""
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = [alice.conn.send_text(bob_id, f"memo {i}").server_msg_id for i in range(4)]
    node.advance(1)  # the indexer's round

    def found(device: Device) -> list[str]:
        rsp = device.call(Cmd.MSG_SEARCH_REQ, pb.CIMMsgSearchReq(query="memo"))
        assert rsp.result_code == 200, rsp
        return [h.msg.msg_data.decode() for h in rsp.hits]

    delete(bob, alice_id, [seqs[3]])
    assert found(bob) == ["memo 2", "memo 1", "memo 0"]
    clear(bob, alice_id)
    assert found(bob) == []
    assert found(alice) == ["memo 3", "memo 2", "memo 1", "memo 0"]
    later = alice.conn.send_text(bob_id, "memo 4").server_msg_id
    node.advance(1)
    assert later and found(bob) == ["memo 4"]


def test_what_i_deleted_for_me_i_cannot_forward(node):
    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = texts(bob, alice_id, 2)
    delete(alice, bob_id, [seqs[1]])

    def forward(ids):
        target = pb.CIMForwardTarget(session_type=SINGLE, session_id=carol_id)
        req = pb.CIMMsgForwardReq(session_type=SINGLE, session_id=bob_id, msg_ids=ids, targets=[target])
        return alice.call(Cmd.MSG_FORWARD_REQ, req)

    assert forward([seqs[1]]).result_code == ErrorCode.NOT_FOUND  # gone for her, as in her history
    assert forward([seqs[0]]).result_code == 200
    rsp = bob.call(
        Cmd.MSG_FORWARD_REQ,
        pb.CIMMsgForwardReq(
            session_type=SINGLE,
            session_id=alice_id,
            msg_ids=[seqs[1]],
            targets=[pb.CIMForwardTarget(session_type=SINGLE, session_id=carol_id)],
        ),
    )
    assert rsp.result_code == 200  # bob still has it


def test_bad_requests_get_errors(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = texts(alice, bob_id, 2)
    assert delete(alice, bob_id, []).result_code == ErrorCode.INVALID_ARGUMENT
    assert delete(alice, bob_id, [0]).result_code == ErrorCode.INVALID_ARGUMENT
    assert delete(alice, bob_id, [2**63]).result_code == ErrorCode.MALFORMED_BODY  # the core checks ids
    assert delete(alice, bob_id, [1, 2, 3, 4, 5, 6]).result_code == ErrorCode.DELETE_BATCH_TOO_LARGE
    assert delete(alice, bob_id, [seqs[-1] + 1]).result_code == ErrorCode.NOT_FOUND
    assert delete(alice, bob_id, [1], session_type=7).result_code == ErrorCode.INVALID_ARGUMENT
    assert delete(alice, 424242, [1]).result_code == ErrorCode.NOT_FOUND
    assert history(alice, bob_id) == seqs and history(bob, alice_id) == seqs  # nothing happened
    assert remove(alice, 424242).result_code == ErrorCode.NOT_FOUND


def test_the_deleted_set_is_bounded_and_a_contiguous_run_folds_into_a_clear(node):
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    seqs = texts(alice, bob_id, 20)
    evens = seqs[1::2]  # 2, 4, ... : none contiguous from the start
    assert delete(alice, bob_id, evens[:5]).result_code == 200
    assert delete(alice, bob_id, evens[5:6]).result_code == 200  # 6 kept: the cap
    refused = delete(alice, bob_id, evens[6:7])
    assert refused.result_code == ErrorCode.TOO_MANY_DELETES and refused.result_string
    assert evens[6] in history(alice, bob_id)  # nothing changed by the refused one
    delete(alice, bob_id, [seqs[0], seqs[2]])  # 1 and 3: with 2 and 4, a run from the start
    state = alice.call(Cmd.MSG_DELETE_STATE_REQ, pb.CIMMsgDeleteStateReq(session_type=SINGLE, session_id=bob_id))
    assert state.cleared_up_to == 4 and list(state.msg_ids) == evens[2:6]
    assert delete(alice, bob_id, evens[6:7]).result_code == 200  # room again
    assert history(alice, bob_id) == [s for s in seqs if s > 4 and s not in evens[2:7]]


def test_short_pages_are_refilled_past_deleted_messages(node):
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    seqs = texts(alice, bob_id, 12)
    delete(alice, bob_id, [seqs[7], seqs[8], seqs[10]])  # 8, 9 and 11 of 12
    page = history(alice, bob_id, limit=5)
    assert page == [seqs[4], seqs[5], seqs[6], seqs[9], seqs[11]]  # a full page
    assert history(alice, bob_id, end=page[0], limit=5) == seqs[:4]


def test_groups_delete_clear_and_remove_for_one_member_only(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create(ids[1:]).group_info.group_id
    sent = [bob.send(gid, f"g{i}").server_msg_id for i in range(3)]
    carol.pushes()
    delete(carol, gid, [sent[2]], GROUP)
    assert history(carol, gid, GROUP)[-1] == sent[1]
    assert history(alice, gid, GROUP)[-1] == sent[2]
    assert entry(carol, gid).server_msg_id == sent[1]
    assert clear(carol, gid, GROUP).up_to_msg_id == sent[2]
    assert history(carol, gid, GROUP) == [] and entry(carol, gid).unread_cnt == 0
    assert remove(carol, gid, GROUP).result_code == 200 and entry(carol, gid) is None
    assert entry(alice, gid) is not None
    bob.send(gid, "back")
    assert entry(carol, gid).unread_cnt == 1
    dave = node.user("daves")
    assert delete(Device(node, "daves"), gid, [1], GROUP).result_code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND)
    assert dave


def test_a_member_cannot_delete_what_came_before_their_join_and_no_preview_leaks_it(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    gid = alice.create([ids[1]]).group_info.group_id
    before = alice.send(gid, "before carol").server_msg_id
    alice.call(Cmd.GROUP_INVITE_MEMBER_REQ, pb.CIMGroupInviteMemberReq(group_id=gid, member_id_list=[ids[2]]))
    carol = Device(node, "carol")
    assert delete(carol, gid, [before], GROUP).result_code == ErrorCode.NOT_FOUND
    mine = history(carol, gid, GROUP)
    assert before not in mine and mine
    delete(carol, gid, mine, GROUP)
    preview = entry(carol, gid)
    assert preview is not None and preview.server_msg_id == 0  # not the message from before her join
    assert bob


def test_events_for_search(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice = Device(node, "alice")
    seen = []
    registry = node.core.registry
    registry.hook("message/deleted", lambda *a: seen.append(("deleted", *a)))
    registry.hook("conversation/cleared", lambda *a: seen.append(("cleared", *a)))
    seqs = texts(alice, bob_id, 3)
    conv = f"p:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
    delete(alice, bob_id, [seqs[1], seqs[1]])
    delete(alice, bob_id, [seqs[1]])
    clear(alice, bob_id)
    assert seen == [("deleted", alice_id, conv, [seqs[1]]), ("cleared", alice_id, conv, seqs[2])]


def test_a_delete_on_one_node_reaches_my_device_on_another():
    hub, (n1, n2) = memory_cluster(("n1", "n2"))
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice, alice_b, bob = Device(n1, "alice"), Device(n2, "alice"), Device(n2, "bobby")
    seqs = texts(alice, bob_id, 3)
    n1.clock.advance(0)
    alice_b.pushes()
    delete(alice, bob_id, [seqs[0]])
    clear(alice, bob_id)
    remove(alice, bob_id)
    n1.clock.advance(0)
    assert notices(alice_b) == [
        (bob_id, pb.kCIM_DELETE_ACTION_MESSAGES, (seqs[0],), 0),
        (bob_id, pb.kCIM_DELETE_ACTION_CLEAR, (), seqs[2]),
        (bob_id, pb.kCIM_DELETE_ACTION_REMOVE, (), seqs[2]),
    ]
    assert history(alice_b, bob_id) == [] and entry(alice_b, bob_id) is None
    assert notices(bob) == [] and history(bob, alice_id) == seqs


def test_the_notify_survives_the_trip_between_nodes():
    push = DeletePush(5, SINGLE, 7, pb.kCIM_DELETE_ACTION_MESSAGES, (3, 9), 0)
    assert from_wire(DeletePush, json.loads(json.dumps(to_wire(push)))) == push


def test_a_device_that_was_offline_sees_the_deletes_on_its_next_fetch(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = texts(bob, alice_id, 3)
    delete(alice, bob_id, [seqs[2]])
    clear_to = seqs[0]
    delete(alice, bob_id, [clear_to])  # folds: 1 was the first
    alice.conn.close()
    later = Device(node, "alice")  # a device that was not connected then
    assert notices(later) == []
    assert history(later, bob_id) == [seqs[1]]
    assert entry(later, bob_id).server_msg_id == seqs[1]
    state = later.call(Cmd.MSG_DELETE_STATE_REQ, pb.CIMMsgDeleteStateReq(session_type=SINGLE, session_id=bob_id))
    assert (state.cleared_up_to, list(state.msg_ids), state.removed) == (1, [seqs[2]], False)


def test_a_deleted_mention_no_longer_marks_the_group(node):
    ids = [node.user(n) for n in ("alice", "bobby")]
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    gid = alice.create([ids[1]]).group_info.group_id
    mention = alice.send(gid, "@bob look", at_user_list=[ids[1]]).server_msg_id
    before = entry(bob, gid)
    assert before.at_me
    delete(bob, gid, [mention], GROUP)
    listed = entry(bob, gid)
    assert not listed.at_me and listed.unread_cnt == before.unread_cnt - 1
    assert entry(alice, gid).server_msg_id == mention


@pytest.mark.parametrize(
    "settings",
    [
        {"deletes.max_per_request": 0},
        {"deletes.max_per_request": 1001},
        {"deletes.max_per_request": 50, "deletes.max_per_conversation": 49},
    ],
)
def test_bad_limits_stop_the_node_at_start(settings):
    with pytest.raises(ConfigError, match="deletes.max_per"):
        load_config(None, settings)


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_delete_clear_and_remove_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    alice2 = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    acks = [await bob.send_message(alice_id, f"m{i}") for i in range(3)]
    seqs = [a.server_msg_id for a in acks]
    for _ in seqs:
        await alice.next_push(Cmd.MSG_DATA)
        await alice2.next_push(Cmd.MSG_DATA)
    rsp = await alice.delete_messages(bob_id, [seqs[1]])
    assert (rsp.result_code, list(rsp.msg_ids)) == (200, [seqs[1]])
    _, _, notice = await alice2.next_push(Cmd.MSG_DELETE_NOTIFY)
    assert (notice.action, list(notice.msg_ids)) == (pb.kCIM_DELETE_ACTION_MESSAGES, [seqs[1]])
    assert [m.server_msg_id for m in (await alice2.history(bob_id)).msg_list] == [seqs[0], seqs[2]]
    assert [m.server_msg_id for m in (await bob.history(alice_id)).msg_list] == seqs
    sessions = await alice.sessions()
    assert sessions.unread_counts == 2
    assert (await alice.clear_history(bob_id)).up_to_msg_id == seqs[2]
    _, _, notice = await alice2.next_push(Cmd.MSG_DELETE_NOTIFY)
    assert (notice.action, notice.up_to_msg_id) == (pb.kCIM_DELETE_ACTION_CLEAR, seqs[2])
    assert list((await alice.history(bob_id)).msg_list) == []
    assert (await alice.sessions()).unread_counts == 0
    assert (await alice.remove_session(bob_id)).removed_at_msg_id == seqs[2]
    _, _, notice = await alice2.next_push(Cmd.MSG_DELETE_NOTIFY)
    assert notice.action == pb.kCIM_DELETE_ACTION_REMOVE
    assert list((await alice2.sessions()).contact_session_list) == []
    state = await alice.delete_state(bob_id)
    assert (state.cleared_up_to, state.removed) == (seqs[2], True)
    refused = await alice.delete_messages(bob_id, [999])
    assert refused.result_code == ErrorCode.NOT_FOUND


@pytest_twisted.ensureDeferred
async def test_a_delete_on_one_real_node_reaches_my_device_on_another(two_nodes):  # noqa: F811
    """Two nodes sharing PostgreSQL and Redis: what Alice does on n1 reaches her device on n2."""
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n2.register("bobby")
    alice_1, alice_2 = await n1.login("alice"), await n2.login("alice", transport="ws-json")
    bob = await n2.login("bobby")
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"})
    seqs = [(await bob.send_message(alice_id, f"m{i}")).server_msg_id for i in range(3)]
    for device in (alice_1, alice_2):
        await pushes(device, 3)
    assert (await alice_1.delete_messages(bob_id, [seqs[2]])).result_code == 200
    (notice,) = await pushes(alice_2, 1, Cmd.MSG_DELETE_NOTIFY)
    assert (notice.action, list(notice.msg_ids)) == (pb.kCIM_DELETE_ACTION_MESSAGES, [seqs[2]])
    assert [m.server_msg_id for m in (await alice_2.history(bob_id)).msg_list] == seqs[:2]
    (listed,) = (await alice_2.sessions()).contact_session_list
    assert listed.server_msg_id == seqs[1]
    assert (await alice_2.clear_history(bob_id)).up_to_msg_id == seqs[2]
    (notice,) = await pushes(alice_1, 1, Cmd.MSG_DELETE_NOTIFY)
    assert (notice.action, notice.up_to_msg_id) == (pb.kCIM_DELETE_ACTION_CLEAR, seqs[2])
    assert list((await alice_1.history(bob_id)).msg_list) == []
    assert [m.server_msg_id for m in (await bob.history(alice_id)).msg_list] == seqs


@pytest_twisted.ensureDeferred
async def test_the_resilient_client_deletes_and_a_fresh_one_catches_up_without_them(live_node):
    from twisted.internet import reactor, task

    from coffeechat.protocols.client import ResilientClient

    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    bob = await live_node.login("bobby")
    seqs = [(await bob.send_message(alice_id, f"m{i}")).server_msg_id for i in range(3)]
    pushed: list = []
    first = ResilientClient(
        reactor, [live_node.cim_endpoint], "alice", "secret", on_push=lambda cmd, msg: pushed.append((cmd, msg))
    )
    second = None
    try:
        await first.start()
        await first.when_synced()
        other = await live_node.login("alice")  # another device of hers deletes one
        assert (await other.delete_messages(bob_id, [seqs[1]])).result_code == 200
        for _ in range(200):
            if any(cmd == Cmd.MSG_DELETE_NOTIFY for cmd, _ in pushed):
                break
            await task.deferLater(reactor, 0.02, lambda: None)
        (notice,) = [msg for cmd, msg in pushed if cmd == Cmd.MSG_DELETE_NOTIFY]
        assert list(notice.msg_ids) == [seqs[1]]
        assert (await first.clear_history(bob_id)).up_to_msg_id == seqs[2]
        after = (await bob.send_message(alice_id, "after the clear")).server_msg_id
        got: list = []
        second = ResilientClient(reactor, [live_node.cim_endpoint], "alice", "secret", on_message=got.append)
        await second.start()
        await second.when_synced()
        assert [m.server_msg_id for m in got] == [after]  # a fresh device: only what she still has
        assert (await second.remove_session(bob_id)).removed_at_msg_id == after
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
