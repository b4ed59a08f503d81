"""Forward and custom messages: on a memory reactor (who may forward what, where, what the
recipients see, resends, merged records, custom bodies), across nodes, and over every transport."""

from __future__ import annotations

import json
import uuid

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

SINGLE, GROUP = 1, 2
OK = 200
MERGED = pb.kCIM_MSG_TYPE_MERGED
CUSTOM = pb.kCIM_MSG_TYPE_CUSTOM
FILE = pb.kCIM_MSG_TYPE_FILE


def forward(
    device: Device,
    session_id: int,
    ids: list[int],
    targets: list[tuple[int, int]],
    session_type: int = SINGLE,
    **fields,
) -> pb.CIMMsgForwardRsp:
    req = pb.CIMMsgForwardReq(
        session_type=session_type,
        session_id=session_id,
        msg_ids=ids,
        targets=[pb.CIMForwardTarget(session_type=t, session_id=i) for t, i in targets],
        **fields,
    )
    return device.call(Cmd.MSG_FORWARD_REQ, req)


def send(device: Device, to: int, msg_type: int, body: bytes | str, session_type: int = SINGLE) -> pb.CIMMsgDataAck:
    data = body.encode() if isinstance(body, str) else body
    msg = pb.CIMMsgData(
        to_session_id=to, client_msg_id=str(uuid.uuid4()), msg_type=msg_type, session_type=session_type, msg_data=data
    )
    return device.call(Cmd.MSG_DATA, msg)


def history(device: Device, session_id: int, session_type: int = SINGLE) -> list[pb.CIMMsgInfo]:
    rsp = device.call(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=session_type, session_id=session_id))
    return list(rsp.msg_list)


@pytest.fixture
def node():
    return MemoryNode(**{"limits.idle_timeout": 1000.0})


def test_a_forwarded_message_reaches_the_target_with_its_origin(node):
    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol", nick="Carol C")
    alice, alice2, bob, carol = (Device(node, n) for n in ("alice", "alice", "bobby", "carol"))
    seq = carol.conn.send_text(alice_id, "from carol").server_msg_id
    node.advance(5)
    alice.pushes(), alice2.pushes()
    rsp = forward(alice, carol_id, [seq], [(SINGLE, bob_id)], client_forward_id="f-1")
    assert (rsp.result_code, rsp.client_forward_id) == (OK, "f-1")
    (result,) = rsp.results
    assert (result.session_type, result.session_id, result.result_code) == (SINGLE, bob_id, OK)
    (new_seq,) = result.server_msg_ids
    (pushed,) = bob.pushes(Cmd.MSG_DATA)
    assert (pushed.from_user_id, pushed.to_session_id, pushed.msg_data) == (alice_id, bob_id, b"from carol")
    assert pushed.server_msg_id == new_seq and pushed.client_msg_id == result.client_msg_ids[0]
    origin = json.loads(pushed.forward_origin)
    assert origin == {
        "fromUserId": carol_id,
        "fromNick": "Carol C",
        "sessionType": SINGLE,
        "toId": alice_id,
        "serverMsgId": seq,
        "time": int(node.clock.seconds()) - 5,
    }
    # every device of the forwarder sees the copy, the requesting one too (the answer has only ids)
    assert [m.server_msg_id for m in alice.pushes(Cmd.MSG_DATA)] == [new_seq]
    assert [m.server_msg_id for m in alice2.pushes(Cmd.MSG_DATA)] == [new_seq]
    # history keeps the origin (the core stores none: the feature's table does), for both sides
    (entry,) = history(bob, alice_id)
    assert json.loads(entry.forward_origin) == origin and entry.msg_data == b"from carol"
    assert json.loads(history(alice, bob_id)[0].forward_origin) == origin
    by_id = bob.call(
        Cmd.MSG_GET_BY_MSG_ID_REQ, pb.CIMGetMsgByIdReq(session_type=SINGLE, session_id=alice_id, msg_id_list=["1"])
    )
    assert json.loads(by_id.msg_list[0].forward_origin) == origin
    # an ordinary message has none
    bob.conn.send_text(alice_id, "thanks")
    assert [m.forward_origin for m in history(alice, bob_id)] == [entry.forward_origin, ""]
    # the same request again makes nothing twice
    again = forward(alice, carol_id, [seq], [(SINGLE, bob_id)], client_forward_id="f-1")
    assert list(again.results[0].server_msg_ids) == [new_seq]
    assert bob.pushes(Cmd.MSG_DATA) == []


def test_several_messages_to_several_targets_in_order_and_per_target_refusals(node):
    alice_id, bob_id, carol_id, dave_id = (node.user(n) for n in ("alice", "bobby", "carol", "david"))
    alice, bob, carol, dave = (Device(node, n) for n in ("alice", "bobby", "carol", "david"))
    gid = alice.create([carol_id]).group_info.group_id
    other = dave.create([bob_id]).group_info.group_id  # alice is not in it
    seqs = [bob.conn.send_text(alice_id, f"m{i}").server_msg_id for i in range(3)]
    carol.pushes()
    rsp = forward(alice, bob_id, list(reversed(seqs)), [(GROUP, gid), (GROUP, other), (SINGLE, dave_id)])
    assert rsp.result_code == OK
    to_group, to_other, to_dave = rsp.results
    assert to_group.result_code == OK and len(to_group.server_msg_ids) == 3
    assert to_other.result_code == ErrorCode.FORBIDDEN and not to_other.server_msg_ids  # the target's own checks
    assert to_dave.result_code == OK
    # copies go out in the order of the source conversation
    assert [m.msg_data for m in carol.pushes(Cmd.MSG_DATA)] == [b"m0", b"m1", b"m2"]
    texts = [(m.msg_data, json.loads(m.forward_origin)["serverMsgId"]) for m in history(carol, gid, GROUP)[-3:]]
    assert texts == [(b"m0", seqs[0]), (b"m1", seqs[1]), (b"m2", seqs[2])]
    assert [m.msg_data for m in dave.pushes(Cmd.MSG_DATA)][-3:] == [b"m0", b"m1", b"m2"]


def test_what_i_cannot_read_cannot_be_forwarded(node):
    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob, carol = (Device(node, n) for n in ("alice", "bobby", "carol"))
    seq = alice.conn.send_text(bob_id, "private").server_msg_id
    # carol names "her conversation with bob": the message is not in it
    assert forward(carol, bob_id, [seq], [(SINGLE, carol_id)]).result_code == ErrorCode.NOT_FOUND
    assert forward(carol, alice_id, [seq], [(SINGLE, bob_id)]).result_code == ErrorCode.NOT_FOUND
    # a group she is not in
    gid = alice.create([bob_id]).group_info.group_id
    in_group = bob.send(gid, "members only").server_msg_id
    rsp = forward(carol, gid, [in_group], [(SINGLE, alice_id)], GROUP)
    assert rsp.result_code == ErrorCode.FORBIDDEN and not rsp.results
    # joined later: what came before her join is not hers to read
    alice.call(Cmd.GROUP_INVITE_MEMBER_REQ, pb.CIMGroupInviteMemberReq(group_id=gid, member_id_list=[carol_id]))
    assert forward(carol, gid, [in_group], [(SINGLE, alice_id)], GROUP).result_code == ErrorCode.NOT_FOUND
    assert forward(alice, bob_id, [seq, 999], [(SINGLE, carol_id)]).result_code == ErrorCode.NOT_FOUND
    assert [m for m in carol.pushes(Cmd.MSG_DATA) if m.session_type == SINGLE] == []  # nothing was sent


def test_recalled_messages_and_notices_cannot_be_forwarded(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seq = alice.conn.send_text(bob_id, "oops").server_msg_id
    alice.call(Cmd.MSG_RECALL_REQ, pb.CIMMsgRecallReq(session_type=SINGLE, session_id=bob_id, msg_id=seq))
    rsp = forward(bob, alice_id, [seq], [(SINGLE, alice_id)])
    assert rsp.result_code == ErrorCode.NOT_FORWARDABLE and "recalled" in rsp.result_string
    gid = alice.create([bob_id]).group_info.group_id
    notices = [m for m in history(alice, gid, GROUP) if m.msg_type == pb.kCIM_MSG_TYPE_NOTIFACATION]
    assert notices
    rsp = forward(alice, gid, [notices[0].server_msg_id], [(SINGLE, bob_id)], GROUP)
    assert rsp.result_code == ErrorCode.NOT_FORWARDABLE


def test_bad_requests_get_an_error_and_limits_hold():
    node = MemoryNode(**{"forward.max_messages": 2, "forward.max_targets": 2, "forward.max_merged": 3})
    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice = Device(node, "alice")
    seqs = [alice.conn.send_text(bob_id, f"m{i}").server_msg_id for i in range(4)]
    assert forward(alice, bob_id, [], [(SINGLE, carol_id)]).result_code == ErrorCode.INVALID_ARGUMENT
    assert forward(alice, bob_id, seqs[:1], []).result_code == ErrorCode.INVALID_ARGUMENT
    assert forward(alice, bob_id, seqs[:1], [(3, carol_id)]).result_code == ErrorCode.INVALID_ARGUMENT
    assert forward(alice, bob_id, seqs[:1], [(SINGLE, 0)]).result_code == ErrorCode.INVALID_ARGUMENT
    assert forward(alice, bob_id, seqs[:3], [(SINGLE, carol_id)]).result_code == ErrorCode.FORWARD_TOO_MANY
    assert forward(alice, bob_id, seqs, [(SINGLE, carol_id)], merged=True).result_code == ErrorCode.FORWARD_TOO_MANY
    many = [(SINGLE, carol_id), (SINGLE, bob_id), (SINGLE, 12345)]
    assert forward(alice, bob_id, seqs[:1], many).result_code == ErrorCode.FORWARD_TOO_MANY
    assert forward(alice, bob_id, seqs[:1], [(SINGLE, carol_id)], title="x" * 65).result_code == (
        ErrorCode.INVALID_ARGUMENT
    )
    assert forward(alice, bob_id, seqs[:1], [(SINGLE, carol_id)], client_forward_id="x" * 65).result_code == (
        ErrorCode.INVALID_ARGUMENT
    )
    assert forward(alice, 0, seqs[:1], [(SINGLE, carol_id)]).result_code == ErrorCode.INVALID_ARGUMENT
    huge, refused = 2**64 - 1, (ErrorCode.MALFORMED_BODY, ErrorCode.INVALID_ARGUMENT)  # the schema's id range
    assert forward(alice, huge, seqs[:1], [(SINGLE, carol_id)]).result_code in refused
    assert forward(alice, bob_id, [huge], [(SINGLE, carol_id)]).result_code in refused
    assert forward(alice, bob_id, seqs[:1], [(GROUP, huge)]).result_code in refused
    # to oneself, to nobody: the target's own answer
    (res,) = forward(alice, bob_id, seqs[:1], [(SINGLE, alice_id)]).results
    assert res.result_code == ErrorCode.INVALID_ARGUMENT
    (res,) = forward(alice, bob_id, seqs[:1], [(SINGLE, 99999)]).results
    assert res.result_code == ErrorCode.USER_NOT_EXIST


def test_a_forward_of_a_forward_keeps_the_first_origin(node):
    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob, carol = (Device(node, n) for n in ("alice", "bobby", "carol"))
    seq = alice.conn.send_text(bob_id, "original").server_msg_id
    (first,) = forward(bob, alice_id, [seq], [(SINGLE, carol_id)]).results
    (second,) = forward(carol, bob_id, list(first.server_msg_ids), [(SINGLE, alice_id)]).results
    assert second.result_code == OK
    copy = [m for m in history(alice, carol_id) if m.server_msg_id == second.server_msg_ids[0]][0]
    origin = json.loads(copy.forward_origin)
    assert (origin["fromUserId"], origin["serverMsgId"], origin["toId"]) == (alice_id, seq, bob_id)


def test_a_merged_forward_is_one_chat_record_the_recipient_can_read(node):
    alice_id, bob_id, carol_id = node.user("alice", nick="Alice"), node.user("bobby", nick="Bob"), node.user("carol")
    alice, bob, carol = (Device(node, n) for n in ("alice", "bobby", "carol"))
    gid = alice.create([bob_id]).group_info.group_id
    s1 = alice.send(gid, "hello").server_msg_id
    s2 = bob.send(gid, "x" * 500).server_msg_id
    s3 = send(bob, gid, FILE, json.dumps({"url": "https://f/a.pdf", "displayName": "a.pdf"}), GROUP).server_msg_id
    s4 = send(alice, gid, CUSTOM, json.dumps({"type": "dice", "value": 5, "description": "[Dice] 5"}), GROUP)
    carol.pushes()
    rsp = forward(alice, gid, [s1, s2, s3, s4.server_msg_id], [(SINGLE, carol_id)], GROUP, merged=True)
    assert rsp.result_code == OK, rsp
    (result,) = rsp.results
    assert len(result.server_msg_ids) == 1
    (pushed,) = carol.pushes(Cmd.MSG_DATA)
    assert pushed.msg_type == MERGED and pushed.server_msg_id == result.server_msg_ids[0]
    record = json.loads(pushed.msg_data)
    assert record["title"] == "Chat history: Alice, Bob" and record["count"] == 4
    r1, r2, r3, r4 = record["records"]
    assert (r1["senderId"], r1["nick"], r1["msgType"], r1["content"]) == (alice_id, "Alice", 1, "hello")
    assert len(r2["content"]) == 200 and r2["truncated"] is True  # [forward] record_text_chars
    assert r3["content"] == "[File] a.pdf" and r3["body"]["url"] == "https://f/a.pdf"
    assert r4["content"] == "[Dice] 5" and r4["msgType"] == CUSTOM
    assert json.loads(pushed.forward_origin)["merged"] is True
    message = node.result(node.store.messages_by_seq(f"p:{alice_id}:{carol_id}", [pushed.server_msg_id]))[0]
    assert node.core.feature("forward").description(message) == "[Chat record] Chat history: Alice, Bob"
    (stored,) = [m for m in history(carol, alice_id) if m.msg_type == MERGED]
    assert json.loads(stored.msg_data) == record and json.loads(stored.forward_origin)["count"] == 4
    # a chat record can be forwarded on (one by one): it keeps its records
    (on,) = forward(carol, alice_id, [stored.server_msg_id], [(SINGLE, bob_id)]).results
    assert on.result_code == OK
    assert json.loads([m for m in bob.pushes(Cmd.MSG_DATA) if m.msg_type == MERGED][0].msg_data) == record
    # and titled by the forwarder
    (titled,) = forward(alice, gid, [s1], [(SINGLE, carol_id)], GROUP, merged=True, title="Our plans").results
    assert json.loads(carol.pushes(Cmd.MSG_DATA)[-1].msg_data)["title"] == "Our plans"
    assert titled.result_code == OK


def test_clients_cannot_make_chat_records_themselves(node):
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    fake = json.dumps({"title": "t", "records": [{"senderId": bob_id, "content": "I owe you"}]})
    ack = send(alice, bob_id, MERGED, fake)
    assert (ack.res_code, ack.error_code) == (0, ErrorCode.INVALID_MSG) and "server" in ack.error_msg


def test_a_merged_record_that_cannot_fit_is_cut_then_refused():
    node = MemoryNode(**{"limits.max_body_bytes": 4096, "limits.max_text_bytes": 4096})
    node.user("alice")
    bob_id = node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = [alice.conn.send_text(bob_id, "y" * 150).server_msg_id for _ in range(20)]
    (res,) = forward(alice, bob_id, seqs, [(SINGLE, bob_id)], merged=True).results
    assert res.result_code == OK
    (pushed,) = [m for m in bob.pushes(Cmd.MSG_DATA) if m.msg_type == MERGED]
    assert len(pushed.msg_data) <= 4096
    assert {len(r["content"]) for r in json.loads(pushed.msg_data)["records"]} == {50}  # the short form
    seqs += [alice.conn.send_text(bob_id, "z").server_msg_id for _ in range(40)]
    rsp = forward(alice, bob_id, seqs, [(SINGLE, bob_id)], merged=True)
    assert rsp.result_code == ErrorCode.FORWARD_TOO_LARGE


def test_forward_across_nodes():
    hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 1000.0})
    alice_id, bob_id, carol_id = n1.user("alice"), n1.user("bobby"), n1.user("carol")
    alice, bob, carol = Device(n1, "alice"), Device(n1, "bobby"), Device(n2, "carol")
    seq = bob.conn.send_text(alice_id, "travels").server_msg_id
    (res,) = forward(alice, bob_id, [seq], [(SINGLE, carol_id)]).results
    n1.clock.advance(0)
    (pushed,) = carol.pushes(Cmd.MSG_DATA)
    assert pushed.msg_data == b"travels" and json.loads(pushed.forward_origin)["fromUserId"] == bob_id
    (entry,) = history(carol, alice_id)  # history on the other node, from the shared storage
    assert entry.server_msg_id == res.server_msg_ids[0] and json.loads(entry.forward_origin)["serverMsgId"] == seq


# -- custom messages


def test_custom_messages_are_stored_and_delivered_like_text(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    gid = alice.create([bob_id]).group_info.group_id
    body = json.dumps({"type": "redPacket", "amount": 8.88, "description": "[Red packet] Happy new year"})
    ack = send(alice, bob_id, CUSTOM, body)
    assert ack.res_code == pb.kCIM_RES_CODE_OK and ack.server_msg_id
    (pushed,) = [m for m in bob.pushes(Cmd.MSG_DATA) if m.session_type == SINGLE]
    assert (pushed.msg_type, pushed.msg_data) == (CUSTOM, body.encode())
    assert [(m.msg_type, m.msg_data) for m in history(bob, alice_id)] == [(CUSTOM, body.encode())]
    listing = bob.call(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    assert [s.msg_type for s in listing.contact_session_list if s.session_type == SINGLE] == [CUSTOM]
    assert send(alice, gid, CUSTOM, "{}", GROUP).server_msg_id  # no description: allowed
    assert node.core.feature("custom_messages").description(body.encode()) == "[Red packet] Happy new year"
    assert node.core.feature("custom_messages").description(b"{}") == "[Custom message]"


def _refusal(node: MemoryNode, device: Device, to: int, body: bytes | str) -> int:
    ack = send(device, to, CUSTOM, body)
    assert ack.res_code == 0 and not ack.server_msg_id, ack
    return ack.error_code


def test_the_server_checks_only_size_json_and_the_description():
    node = MemoryNode(**{"limits.max_text_bytes": 100, "custom_messages.max_description_chars": 10})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    assert _refusal(node, alice, bob_id, "not json") == ErrorCode.INVALID_MSG
    assert _refusal(node, alice, bob_id, "[1, 2]") == ErrorCode.INVALID_MSG
    assert _refusal(node, alice, bob_id, b"\xff\xfe") == ErrorCode.INVALID_MSG
    assert _refusal(node, alice, bob_id, json.dumps({"pad": "x" * 100})) == ErrorCode.MSG_TOO_LARGE
    assert _refusal(node, alice, bob_id, json.dumps({"description": 5})) == ErrorCode.INVALID_MSG
    assert _refusal(node, alice, bob_id, json.dumps({"description": "y" * 11})) == ErrorCode.INVALID_MSG
    assert _refusal(node, alice, bob_id, '{"a":' + "[" * 20 + "]" * 20 + "}") == ErrorCode.INVALID_MSG
    ack = send(alice, bob_id, CUSTOM, json.dumps({"description": "y" * 10, "anything": [1, {"b": None}]}))
    assert ack.server_msg_id == 1


def test_without_the_features_the_types_are_refused():
    node = MemoryNode(**{"features.enabled": ["accounts", "messages", "groups", "group_reads", "recall", "typing"]})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    assert _refusal(node, alice, bob_id, "{}") == ErrorCode.INVALID_MSG
    rsp = alice.call(Cmd.MSG_FORWARD_REQ, pb.CIMMsgForwardReq(session_type=SINGLE, session_id=bob_id, msg_ids=[1]))
    assert rsp.error_code == ErrorCode.NOT_SUPPORTED


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_forward_and_custom_messages_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    carol_id = await live_node.register("carol")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    carol = await live_node.login("carol", transport=transport)
    sent = await bob.send_custom(alice_id, {"type": "card", "title": "Bob", "description": "[Card] Bob"})
    _, _, custom = await alice.next_push(Cmd.MSG_DATA)
    assert custom.msg_type == CUSTOM and json.loads(custom.msg_data)["description"] == "[Card] Bob"
    text = await bob.send_message(alice_id, "look at this")
    await alice.next_push(Cmd.MSG_DATA)
    ids = [sent.server_msg_id, text.server_msg_id]
    rsp = await alice.forward(bob_id, ids, [(SINGLE, carol_id)], client_forward_id="once")
    assert rsp.result_code == OK and len(rsp.results[0].server_msg_ids) == 2
    got = [(await carol.next_push(Cmd.MSG_DATA))[2] for _ in range(2)]
    assert [g.msg_type for g in got] == [CUSTOM, pb.kCIM_MSG_TYPE_TEXT]
    assert all(json.loads(g.forward_origin)["fromUserId"] == bob_id for g in got)
    again = await alice.forward(bob_id, ids, [(SINGLE, carol_id)], client_forward_id="once")
    assert list(again.results[0].server_msg_ids) == list(rsp.results[0].server_msg_ids)
    merged = await alice.forward(bob_id, ids, [(SINGLE, carol_id)], merged=True, title="From Bob")
    assert merged.result_code == OK
    _, _, record = await carol.next_push(Cmd.MSG_DATA)
    assert record.msg_type == MERGED and json.loads(record.msg_data)["title"] == "From Bob"
    listed = await carol.history(alice_id)
    assert [json.loads(m.forward_origin).get("serverMsgId") for m in listed.msg_list[:2]] == ids
    refused = await carol.forward(bob_id, ids, [(SINGLE, alice_id)])
    assert refused.result_code == ErrorCode.NOT_FOUND and refused.result_string


@pytest_twisted.ensureDeferred
async def test_the_resilient_client_forwards_and_its_messages_carry_the_origin(live_node):
    from twisted.internet import reactor

    from coffeechat.protocols.client import ResilientClient

    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    got = []
    bob = ResilientClient(reactor, [live_node.cim_endpoint], "bobby", "secret", on_message=got.append)
    try:
        await bob.start()
        await bob.when_synced()
        carol_id = await live_node.register("carol")
        carol = await live_node.login("carol")
        ack = await carol.send_message(alice_id, "pass it on")
        alice = await live_node.login("alice")
        rsp = await bob.forward(alice_id, [ack.server_msg_id], [(SINGLE, bob_id)])
        assert rsp.result_code == ErrorCode.NOT_FOUND  # not bob's conversation
        rsp = await alice.forward(carol_id, [ack.server_msg_id], [(SINGLE, bob_id)])
        assert rsp.results[0].result_code == OK
        deadline = reactor.seconds() + 10
        while not got and reactor.seconds() < deadline:
            await task_sleep(0.05)
        (message,) = got
        assert (message.msg_data, message.session_id, message.source) == (b"pass it on", alice_id, "push")
        assert json.loads(message.raw.forward_origin)["fromUserId"] == carol_id
        mine = await bob.forward(alice_id, [message.server_msg_id], [(SINGLE, carol_id)])
        assert mine.results[0].result_code == OK
    finally:
        await bob.stop()


async def task_sleep(seconds: float) -> None:
    from twisted.internet import reactor, task

    await task.deferLater(reactor, seconds, lambda: None)


def test_a_message_sent_under_a_copys_client_msg_id_gets_no_origin(node):
    """A copy's client_msg_id can be worked out by its forwarder (it is derived from the request),
    so one could send a text of one's own under it first: the forward then finds that message
    (a resend) and must not give it the forwarded message's origin, nor say it was forwarded."""
    from coffeechat.features.forward import derived_client_msg_id
    from coffeechat.model import conversation_key

    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob, carol = (Device(node, n) for n in ("alice", "bobby", "carol"))
    seq = carol.conn.send_text(alice_id, "the real words").server_msg_id
    source = conversation_key(SINGLE, alice_id, carol_id)
    forged = derived_client_msg_id(alice_id, "f-x", SINGLE, bob_id, source, str(seq))
    assert alice.conn.send_text(bob_id, "words carol never wrote", client_msg_id=forged).error_code == 0
    rsp = forward(alice, carol_id, [seq], [(SINGLE, bob_id)], client_forward_id="f-x")
    (result,) = rsp.results
    assert result.result_code == ErrorCode.INVALID_ARGUMENT and not result.server_msg_ids
    assert [(m.msg_data, m.forward_origin) for m in history(bob, alice_id)] == [(b"words carol never wrote", "")]
    # nor one with the same words in another conversation (resends are found in any)
    dave_id = node.user("david")
    elsewhere = derived_client_msg_id(alice_id, "f-y", SINGLE, bob_id, source, str(seq))
    assert alice.conn.send_text(dave_id, "the real words", client_msg_id=elsewhere).error_code == 0
    (result,) = forward(alice, carol_id, [seq], [(SINGLE, bob_id)], client_forward_id="f-y").results
    assert result.result_code == ErrorCode.INVALID_ARGUMENT and not result.server_msg_ids
    assert [m.forward_origin for m in history(alice, dave_id)] == [""]
    # a resent forward is still answered with the copies it made
    first = forward(alice, carol_id, [seq], [(SINGLE, bob_id)], client_forward_id="f-z").results[0]
    again = forward(alice, carol_id, [seq], [(SINGLE, bob_id)], client_forward_id="f-z").results[0]
    assert first.result_code == again.result_code == OK and first.server_msg_ids == again.server_msg_ids
