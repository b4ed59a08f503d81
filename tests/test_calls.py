"""Calls on a memory reactor: set-up, ringing timeout, busy, answered elsewhere, decline, cancel,
heartbeat drop, signal relay, group calls, call records, the AVCHAT loophole, bad input, offline
push and ringing on login, and two nodes sharing a hub."""

from __future__ import annotations

import json

import pytest

from coffeechat.errors import ErrorCode
from coffeechat.protocols.framing import encode_frame
from coffeechat.schema import Cmd, pb

from .logcapture import logged_failures
from .memory_node import MemoryNode, md5, memory_cluster
from .test_groups import Device

VOICE, VIDEO = 1, 2
END, CANCEL, REJECT = pb.kCIM_VOIP_BYE_REASON_END, pb.kCIM_VOIP_BYE_REASON_CANCEL, pb.kCIM_VOIP_BYE_REASON_REJECT
NO_ANSWER, DROPPED = pb.kCIM_VOIP_BYE_REASON_NO_ANSWER, pb.kCIM_VOIP_BYE_REASON_DROPPED
ELSEWHERE, BYE_BUSY = pb.kCIM_VOIP_BYE_REASON_ANSWERED_ELSEWHERE, pb.kCIM_VOIP_BYE_REASON_BUSY
RINGING, JOINED, LEFT = pb.kCIM_VOIP_PARTY_RINGING, pb.kCIM_VOIP_PARTY_JOINED, pb.kCIM_VOIP_PARTY_LEFT


def invite(device: Device, *invitees: int, **fields):
    return device.call(
        Cmd.VOIP_INVITE_REQ,
        pb.CIMVoipInviteReq(invite_user_list=list(invitees), invite_type=fields.pop("invite_type", VIDEO), **fields),
    )


def send(device: Device, cmd: int, msg) -> list:
    """Send a command that is not answered on success; return what came back on its seq."""
    seq = device.conn.send(cmd, msg)
    answers = []
    for frame in device._frames():
        if frame[1] == seq and frame[0] in (Cmd.ERROR_RSP, Cmd.VOIP_BYE_RSP):
            answers.append(frame[2])
        else:
            device.inbox.append(frame)
    return answers


def reply(device: Device, channel, code: int, sdp: str = "") -> list:
    return send(device, Cmd.VOIP_INVITE_REPLY, pb.CIMVoipInviteReply(rsp_code=code, channel_info=channel, sdp=sdp))


def bye(device: Device, channel=None, reason: int = END):
    return device.call(Cmd.VOIP_BYE_REQ, pb.CIMVoipByeReq(channel_info=channel, bye_reason=reason))


def byes(device: Device) -> list[tuple[int, int, int]]:
    return [(n.user_id, n.byeReason, n.call_time_len) for n in device.pushes(Cmd.VOIP_BYE_NOTIFY)]


def records(device: Device) -> list[dict]:
    return [json.loads(m.msg_data) for m in device.pushes(Cmd.MSG_DATA) if m.msg_type == pb.kCIM_MSG_TYPE_AVCHAT]


def claims(node: MemoryNode) -> list[tuple]:
    return MemoryNode.result(
        node.store.run_read("t", lambda txn: txn.execute("SELECT user_id, node FROM call_parties").fetchall())
    )


@pytest.fixture
def node():
    return MemoryNode()


@pytest.fixture
def people(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    return ids


def test_a_call_rings_every_device_is_answered_on_one_and_ends_with_a_record(node, people):
    alice_id, bob_id, _ = people
    alice, phone, laptop = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    trying = invite(alice, bob_id, sdp="v=0 offer")
    assert trying.rsp_code == pb.kCIM_VOIP_INVITE_CODE_TRYING
    channel = trying.channel_info
    assert channel.channel_name and len(channel.channel_token) >= 16 and channel.creator_id == alice_id
    for device in (phone, laptop):
        (ring,) = device.pushes(Cmd.VOIP_INVITE_REQ)
        assert (ring.creator_user_id, list(ring.invite_user_list), ring.sdp) == (alice_id, [bob_id], "v=0 offer")
        assert (ring.from_nick_name, ring.ring_timeout, ring.channel_info) == ("Alice", 45, channel)
    assert sorted(u for u, _ in claims(node)) == [alice_id, bob_id]

    assert reply(phone, channel, 180) == [] and reply(laptop, channel, 180) == []
    (ringing,) = alice.pushes(Cmd.VOIP_INVITE_REPLY)  # relayed once
    assert (ringing.user_id, ringing.rsp_code) == (bob_id, pb.kCIM_VOIP_INVITE_CODE_RINGING)
    node.advance(2)
    assert reply(laptop, channel, 200, sdp="v=0 answer") == []
    (ok,) = alice.pushes(Cmd.VOIP_INVITE_REPLY)
    assert (ok.user_id, ok.rsp_code, ok.sdp) == (bob_id, pb.KCIM_VOIP_INVITE_CODE_OK, "v=0 answer")
    assert byes(phone) == [(bob_id, ELSEWHERE, 0)] and byes(laptop) == []
    assert reply(phone, channel, 200)[0].error_code == ErrorCode.CALL_NOT_FOUND  # too late on the phone
    assert send(alice, Cmd.VOIP_INVITE_REPLY_ACK, pb.CIMVoipInviteReplyAck(channel_info=channel)) == []
    assert len(laptop.pushes(Cmd.VOIP_INVITE_REPLY_ACK)) == 1 and phone.pushes(Cmd.VOIP_INVITE_REPLY_ACK) == []

    node.advance(20)
    assert bye(laptop, channel).error_code == ErrorCode.SUCCESS
    assert byes(alice) == [(bob_id, END, 20)]
    (record,) = records(alice)
    assert record == {"hangupUserId": bob_id, "hangupReason": END, "timeLen": 20, "callType": VIDEO,
                      "result": "ended", "channel": channel.channel_name}  # fmt: skip
    assert records(laptop) == [record] and records(phone) == [record]
    assert claims(node) == [] and len(node.core.feature("calls")) == 0
    assert bye(alice, channel).error_code == ErrorCode.CALL_NOT_FOUND  # over already


def test_nobody_answers_within_the_ring_timeout_a_missed_call(node, people):
    alice_id, bob_id, _ = people
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    channel = invite(alice, bob_id, invite_type=VOICE).channel_info
    node.advance(44)
    assert byes(alice) == [] and byes(bob) == []
    node.advance(2)
    assert byes(alice) == [(bob_id, NO_ANSWER, 0)] and byes(bob) == [(bob_id, NO_ANSWER, 0)]
    (record,) = records(bob)
    assert (record["result"], record["timeLen"], record["callType"], record["hangupReason"]) == (
        "missed",
        0,
        VOICE,
        NO_ANSWER,
    )
    assert record["channel"] == channel.channel_name
    assert invite(alice, bob_id).rsp_code == pb.kCIM_VOIP_INVITE_CODE_TRYING  # both free again


def test_busy_callee_and_a_caller_already_in_a_call(node, people):
    alice_id, bob_id, carol_id = people
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    invite(carol, bob_id)  # bob rings: busy already
    trying = invite(alice, bob_id)
    assert trying.rsp_code == pb.kCIM_VOIP_INVITE_CODE_TRYING
    (busy,) = alice.pushes(Cmd.VOIP_INVITE_REPLY)
    assert (busy.user_id, busy.rsp_code) == (bob_id, pb.kCIM_VOIP_INVITE_CODE_BUSY)
    assert [(r["result"], r["hangupReason"]) for r in records(alice)] == [("busy", BYE_BUSY)]
    assert len(bob.pushes(Cmd.VOIP_INVITE_REQ)) == 1  # carol's call only
    error = invite(carol, alice_id)
    assert (error.cmd_id, error.error_code) == (Cmd.VOIP_INVITE_REQ, ErrorCode.ALREADY_IN_CALL)
    assert invite(alice, carol_id).rsp_code == pb.kCIM_VOIP_INVITE_CODE_TRYING  # carol calls bob: busy
    assert [(b.user_id, b.rsp_code) for b in alice.pushes(Cmd.VOIP_INVITE_REPLY)] == [
        (carol_id, pb.kCIM_VOIP_INVITE_CODE_BUSY)
    ]


def test_decline_stops_every_device_and_cancel_tells_the_callee(node, people):
    alice_id, bob_id, _ = people
    alice, phone, laptop = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    channel = invite(alice, bob_id).channel_info
    assert bye(phone, channel, REJECT).error_code == ErrorCode.SUCCESS
    assert byes(alice) == [(bob_id, REJECT, 0)] and byes(laptop) == [(bob_id, REJECT, 0)] and byes(phone) == []
    assert [r["result"] for r in records(alice)] == ["declined"]

    channel = invite(alice, bob_id).channel_info
    node.advance(3)
    assert bye(alice, channel, CANCEL).error_code == ErrorCode.SUCCESS
    assert byes(phone) == [(alice_id, CANCEL, 0)] and byes(laptop) == [(alice_id, CANCEL, 0)]
    assert [(r["result"], r["hangupUserId"]) for r in records(phone)] == [("declined", bob_id), ("cancelled", alice_id)]
    assert claims(node) == []


def test_a_ringing_caller_whose_connection_closes_cancels(node, people):
    alice_id, bob_id, _ = people
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    invite(alice, bob_id)
    alice.conn.close()
    assert byes(bob) == [(alice_id, CANCEL, 0)]
    assert [r["result"] for r in records(bob)] == ["cancelled"]
    assert claims(node) == []


def test_a_party_without_heartbeats_is_dropped(node, people):
    alice_id, bob_id, _ = people
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    channel = invite(alice, bob_id).channel_info
    reply(bob, channel, 200, "answer")
    alice.pushes()
    for _ in range(3):  # both beat for 90 s: still in the call
        node.advance(30)
        assert send(alice, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat()) == []
        assert send(bob, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat()) == []
    assert byes(alice) == [] and len(node.core.feature("calls")) == 1
    for _ in range(3):  # bob's call stopped beating (his connection lives on)
        node.advance(30)
        send(alice, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())
        bob.conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
    assert byes(alice) == [(bob_id, DROPPED, 165)]
    assert byes(bob) == [(bob_id, DROPPED, 165)]
    (record,) = records(alice)
    assert (record["result"], record["hangupUserId"], record["timeLen"]) == ("dropped", bob_id, 165)
    assert send(bob, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())[0].error_code == ErrorCode.CALL_NOT_FOUND


def test_signals_are_relayed_to_the_other_party_only_within_the_call(node, people):
    alice_id, bob_id, carol_id = people
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    channel = invite(alice, bob_id).channel_info
    candidate = pb.CIMVoipSignalReq(channel_info=channel, to_user_id=bob_id, kind="candidate", payload='{"c":1}')
    assert send(alice, Cmd.VOIP_SIGNAL_REQ, candidate) == []
    (notice,) = bob.pushes(Cmd.VOIP_SIGNAL_NOTIFY)
    assert (notice.from_user_id, notice.kind, notice.payload, notice.channel_info) == (
        alice_id,
        "candidate",
        '{"c":1}',
        channel,
    )
    reply(bob, channel, 200, "answer")
    everyone = pb.CIMVoipSignalReq(channel_info=channel, kind="offer", payload="renegotiate")
    assert send(bob, Cmd.VOIP_SIGNAL_REQ, everyone) == []
    assert [n.kind for n in alice.pushes(Cmd.VOIP_SIGNAL_NOTIFY)] == ["offer"]
    assert bob.pushes(Cmd.VOIP_SIGNAL_NOTIFY) == []

    stranger = pb.CIMVoipSignalReq(channel_info=channel, to_user_id=alice_id, kind="candidate", payload="x")
    assert send(carol, Cmd.VOIP_SIGNAL_REQ, stranger)[0].error_code == ErrorCode.CALL_NOT_FOUND
    outsider = pb.CIMVoipSignalReq(channel_info=channel, to_user_id=carol_id, kind="candidate", payload="x")
    assert send(alice, Cmd.VOIP_SIGNAL_REQ, outsider)[0].error_code == ErrorCode.CALL_NOT_FOUND
    huge = pb.CIMVoipSignalReq(channel_info=channel, kind="candidate", payload="x" * (16 * 1024 + 1))
    assert send(alice, Cmd.VOIP_SIGNAL_REQ, huge)[0].error_code == ErrorCode.MSG_TOO_LARGE
    for kind in ("", "k" * 33, "a\nb"):
        bad = pb.CIMVoipSignalReq(channel_info=channel, kind=kind, payload="x")
        assert send(alice, Cmd.VOIP_SIGNAL_REQ, bad)[0].error_code == ErrorCode.INVALID_ARGUMENT
    assert carol.pushes(Cmd.VOIP_SIGNAL_NOTIFY) == []


def test_a_group_call_in_a_group(node, people):
    alice_id, bob_id, carol_id = people
    dave_id = node.user("david")
    alice, bob, carol, dave = (Device(node, n) for n in ("alice", "bobby", "carol", "david"))
    group_id = alice.create([bob_id, carol_id], "team").group_info.group_id
    for device in (alice, bob, carol):
        device.pushes()
    assert invite(alice, bob_id, dave_id, group_id=group_id).error_code == ErrorCode.FORBIDDEN
    assert invite(dave, bob_id, group_id=group_id).error_code == ErrorCode.FORBIDDEN
    trying = invite(alice, bob_id, carol_id, group_id=group_id)
    channel = trying.channel_info
    states = alice.pushes(Cmd.VOIP_CALL_STATE_NOTIFY)
    assert [(p.user_id, p.state) for p in states[-1].parties] == [(alice_id, JOINED), (bob_id, RINGING),
                                                                   (carol_id, RINGING)]  # fmt: skip
    assert states[-1].group_id == group_id
    assert (bob.pushes(Cmd.VOIP_INVITE_REQ)[0].group_id, len(carol.pushes(Cmd.VOIP_INVITE_REQ))) == (group_id, 1)
    reply(bob, channel, 200, "bob's answer")
    assert [(p.user_id, p.state) for p in carol.pushes(Cmd.VOIP_CALL_STATE_NOTIFY)[-1].parties][1] == (bob_id, JOINED)
    signal = pb.CIMVoipSignalReq(channel_info=channel, to_user_id=carol_id, kind="candidate", payload="c")
    assert send(bob, Cmd.VOIP_SIGNAL_REQ, signal) == []  # a ringing party takes signals too
    assert [n.from_user_id for n in carol.pushes(Cmd.VOIP_SIGNAL_NOTIFY)] == [bob_id]
    bye(carol, channel, REJECT)
    assert byes(alice) == [(carol_id, REJECT, 0)] and byes(bob) == [(carol_id, REJECT, 0)]
    assert len(node.core.feature("calls")) == 1  # alice and bob talk on
    node.advance(10)
    bye(alice, channel)
    assert byes(bob) == [(alice_id, END, 10)]
    (record,) = records(carol)  # one record, in the group
    assert (record["result"], record["timeLen"]) == ("ended", 10)
    message = [m for m in bob.conn.received if m[0] == Cmd.MSG_DATA][-1][2]
    assert (message.session_type, message.to_session_id) == (pb.kCIM_SESSION_TYPE_GROUP, group_id)
    assert records(dave) == []


def test_several_invitees_without_a_group_get_one_record_each(node, people):
    alice_id, bob_id, carol_id = people
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    channel = invite(alice, bob_id, carol_id).channel_info
    node.advance(5)
    reply(bob, channel, 200, "answer")
    node.advance(50)  # carol never answers; alice and bob beat
    for device in (alice, bob):
        send(device, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())
    carol.conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())  # carol's app is open: not idle
    assert (carol_id, NO_ANSWER, 40) in byes(alice)  # 40 s since bob answered
    node.advance(5)
    bye(bob, channel)
    found = {(r["result"], r["timeLen"]) for r in records(alice)}
    assert found == {("ended", 55), ("missed", 0)}
    assert [r["result"] for r in records(carol)] == ["missed"] and [r["result"] for r in records(bob)] == ["ended"]


def avchat(device: Device, to: int, body) -> pb.CIMMsgDataAck:
    msg = pb.CIMMsgData(
        to_session_id=to, client_msg_id="c1", msg_type=pb.kCIM_MSG_TYPE_AVCHAT, session_type=1,
        msg_data=json.dumps(body).encode(),
    )  # fmt: skip
    return device.call(Cmd.MSG_DATA, msg)


def test_clients_cannot_write_call_records():
    original = {"hangupUserId": 1, "hangupReason": 3, "timeLen": 12, "callType": 1}
    node = MemoryNode()
    node.user("alice")
    bob_id = node.user("bobby")
    ack = avchat(Device(node, "alice"), bob_id, original)
    assert (ack.error_code, ack.res_code) == (ErrorCode.INVALID_MSG, pb.kCIM_RES_CODE_UNKNOWN)

    features = [f for f in MemoryNode().config.features.enabled if f != "calls"]
    node = MemoryNode(**{"features.enabled": features})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = Device(node, "alice")
    assert avchat(alice, bob_id, original).res_code == pb.kCIM_RES_CODE_OK
    for bad in ({"anything": 1}, {**original, "extra": 1}, {**original, "callType": 3}, {**original, "timeLen": -1},
                {**original, "hangupReason": 99}, {**original, "timeLen": "12"}):  # fmt: skip
        assert avchat(alice, bob_id, bad).error_code == ErrorCode.INVALID_MSG, bad
    assert alice.call(Cmd.VOIP_BYE_REQ, pb.CIMVoipByeReq()).error_code == ErrorCode.NOT_SUPPORTED


def test_bad_input_is_refused_without_a_traceback(node, people):
    alice_id, bob_id, carol_id = people
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    with logged_failures() as failures:
        assert invite(alice).error_code == ErrorCode.INVALID_ARGUMENT
        assert invite(alice, alice_id).error_code == ErrorCode.INVALID_ARGUMENT
        assert invite(alice, bob_id, invite_type=7).error_code == ErrorCode.INVALID_ARGUMENT
        assert invite(alice, 999).error_code == ErrorCode.USER_NOT_EXIST
        assert invite(alice, *range(100, 108)).error_code == ErrorCode.CALL_TOO_MANY_INVITEES
        assert invite(alice, bob_id, sdp="x" * 40_000).error_code == ErrorCode.MSG_TOO_LARGE
        for name in ("x" * 65, "bad\nname", " padded"):
            named = invite(alice, bob_id, channel_info=pb.CIMChannelInfo(channel_name=name))
            assert named.error_code == ErrorCode.INVALID_ARGUMENT
        assert bye(alice).error_code == ErrorCode.CALL_NOT_FOUND
        for cmd, body in ((Cmd.VOIP_INVITE_REPLY, pb.CIMVoipInviteReply(rsp_code=200)),
                          (Cmd.VOIP_INVITE_REPLY_ACK, pb.CIMVoipInviteReplyAck()),
                          (Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat()),
                          (Cmd.VOIP_SIGNAL_REQ, pb.CIMVoipSignalReq(kind="x"))):  # fmt: skip
            assert send(alice, cmd, body)[0].error_code == ErrorCode.CALL_NOT_FOUND
        alice.conn.send_raw(encode_frame(Cmd.VOIP_INVITE_REQ, 5, b"\xff" * 7))
        assert alice.conn.frames()[0][2].error_code == ErrorCode.MALFORMED_BODY
        named = invite(alice, bob_id, channel_info=pb.CIMChannelInfo(channel_name="room-1", creator_id=carol_id))
        assert (named.channel_info.channel_name, named.channel_info.creator_id) == ("room-1", alice_id)
        assert reply(bob, named.channel_info, 100)[0].error_code == ErrorCode.INVALID_ARGUMENT
        wrong = pb.CIMChannelInfo(channel_name="other")
        assert reply(bob, wrong, 200)[0].error_code == ErrorCode.CALL_NOT_FOUND
        assert reply(alice, named.channel_info, 200)[0].error_code == ErrorCode.INVALID_ARGUMENT
        carol = Device(node, "carol")
        assert invite(carol, alice_id, channel_info=pb.CIMChannelInfo(channel_name="room-1")).error_code == (
            ErrorCode.INVALID_ARGUMENT  # the name is in use
        )
        block = carol.call(Cmd.BLOCK_SET_REQ, pb.CIMBlockSetReq(peer_id=bob_id, blocked=True))
        assert block.result_code == ErrorCode.SUCCESS
        bye(alice, named.channel_info, CANCEL)
        assert invite(bob, carol_id).error_code == ErrorCode.BLOCKED_BY_RECIPIENT
    assert failures == []


def test_an_offline_callee_is_pushed_and_rings_when_it_logs_in():
    from .test_push import RECORDERS

    node = MemoryNode(**{"push.providers": {"rec": {"factory": "tests.test_push:create"}}})
    recorder = RECORDERS[-1]
    recorder.supports_voip = True  # as the APNs provider: VoIP pushes for PushKit tokens
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, phone = Device(node, "alice"), Device(node, "bobby")
    target = pb.CIMPushRegisterReq(platform="rec", token="ab" * 32, extra={"voip": "true"})
    assert phone.call(Cmd.PUSH_REGISTER_REQ, target).result_code == ErrorCode.SUCCESS
    phone.conn.close()
    invite(alice, bob_id)
    node.advance(0)
    ((_, note),) = [s for s in recorder.sent if s[1].data.get("kind") == "call"]
    assert (note.voip, note.high_priority, note.body) == (True, True, "Incoming video call from Alice")
    assert note.data["caller_id"] == alice_id
    node.advance(10)
    conn = node.connect()
    conn.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name="bobby", user_pwd=md5("secret"), client_type=2))
    frames = conn.frames()
    assert [f[0] for f in frames] == [Cmd.LOGIN_AUTH_RSP, Cmd.VOIP_INVITE_REQ]  # it rings after the login
    ring = frames[1][2]
    assert ring.ring_timeout in (34, 35) and ring.creator_user_id == alice_id
    conn.send(Cmd.VOIP_INVITE_REPLY, pb.CIMVoipInviteReply(rsp_code=200, channel_info=ring.channel_info))
    assert alice.pushes(Cmd.VOIP_INVITE_REPLY)[-1].rsp_code == pb.KCIM_VOIP_INVITE_CODE_OK


def test_two_nodes_answered_elsewhere_busy_and_bye_across_nodes():
    _, (n1, n2) = memory_cluster()
    bob_id = n1.user("bobby")
    n1.user("alice"), n1.user("carol")
    alice = Device(n1, "alice")
    phone, laptop = Device(n2, "bobby"), Device(n1, "bobby")
    carol = Device(n2, "carol")
    channel = invite(alice, bob_id).channel_info
    n1.advance(0)
    assert len(phone.pushes(Cmd.VOIP_INVITE_REQ)) == 1 and len(laptop.pushes(Cmd.VOIP_INVITE_REQ)) == 1
    assert invite(carol, bob_id).rsp_code == pb.kCIM_VOIP_INVITE_CODE_TRYING  # on n2: bob is busy on n1
    n2.advance(0)
    assert [b.rsp_code for b in carol.pushes(Cmd.VOIP_INVITE_REPLY)] == [pb.kCIM_VOIP_INVITE_CODE_BUSY]
    assert reply(phone, channel, 200, "from n2") == []  # forwarded to n1
    n1.advance(0)
    assert [(r.rsp_code, r.sdp) for r in alice.pushes(Cmd.VOIP_INVITE_REPLY)] == [
        (pb.KCIM_VOIP_INVITE_CODE_OK, "from n2")
    ]
    assert byes(laptop) == [(bob_id, ELSEWHERE, 0)] and byes(phone) == []
    send(alice, Cmd.VOIP_SIGNAL_REQ, pb.CIMVoipSignalReq(channel_info=channel, kind="candidate", payload="c"))
    n1.advance(0)
    assert [n.payload for n in phone.pushes(Cmd.VOIP_SIGNAL_NOTIFY)] == ["c"]
    assert laptop.pushes(Cmd.VOIP_SIGNAL_NOTIFY) == []
    n1.advance(5)
    assert bye(phone, channel).error_code == ErrorCode.SUCCESS  # answered by n1, through n2
    assert byes(alice) == [(bob_id, END, 5)]
    assert bye(phone, channel).error_code == ErrorCode.CALL_NOT_FOUND
    assert claims(n1) == [] and len(n1.core.feature("calls")) == 0


def test_a_dead_nodes_claims_expire_and_live_ones_are_refreshed(node, people):
    alice_id, bob_id, carol_id = people
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    store = node.core.feature("calls").store
    now = int(node.clock.seconds())
    # bob is in a call held by a node that died: his claim lasts until it expires
    assert MemoryNode.result(store.claim(carol_id, [bob_id], "gone", "tok", "dead-node", now, now + 90)) == []
    MemoryNode.result(store.release([carol_id], "tok"))
    invite(alice, bob_id)
    assert [r.rsp_code for r in alice.pushes(Cmd.VOIP_INVITE_REPLY)] == [pb.kCIM_VOIP_INVITE_CODE_BUSY]
    for _ in range(3):  # 90 s, the connections kept alive
        node.advance(30)
        for device in (alice, bob, carol):
            device.conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
    node.advance(2)
    channel = invite(alice, bob_id).channel_info
    assert alice.pushes(Cmd.VOIP_INVITE_REPLY) == [] and len(bob.pushes(Cmd.VOIP_INVITE_REQ)) == 1
    reply(bob, channel, 200, "answer")
    for _ in range(10):  # a long call: the claims are refreshed, carol cannot take bob
        node.advance(30)
        send(alice, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())
        send(bob, Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())
        carol.conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
    assert sorted(u for u, n in claims(node) if n == node.core.node) == [alice_id, bob_id]
    invite(carol, bob_id)
    assert [r.rsp_code for r in carol.pushes(Cmd.VOIP_INVITE_REPLY)] == [pb.kCIM_VOIP_INVITE_CODE_BUSY]


def test_a_callee_logging_in_on_another_node_rings_there():
    _, (n1, n2) = memory_cluster()
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice = Device(n1, "alice")
    channel = invite(alice, bob_id).channel_info
    n1.advance(5)
    alice.conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
    conn = n2.connect()
    conn.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name="bobby", user_pwd=md5("secret"), client_type=2))
    n1.advance(0)
    frames = conn.frames()
    assert [f[0] for f in frames] == [Cmd.LOGIN_AUTH_RSP, Cmd.VOIP_INVITE_REQ]
    ring = frames[1][2]
    assert (ring.channel_info, ring.creator_user_id, ring.ring_timeout) == (channel, alice_id, 40)
    conn.send(Cmd.VOIP_INVITE_REPLY, pb.CIMVoipInviteReply(rsp_code=200, channel_info=channel, sdp="from n2"))
    n2.advance(0)
    assert [(r.rsp_code, r.sdp) for r in alice.pushes(Cmd.VOIP_INVITE_REPLY)] == [
        (pb.KCIM_VOIP_INVITE_CODE_OK, "from n2")
    ]


def test_a_stopping_node_lets_go_of_its_claims(node, people):
    alice_id, bob_id, _ = people
    alice = Device(node, "alice")
    invite(alice, bob_id)
    assert len(claims(node)) == 2
    calls, left = node.core.feature("calls"), []
    forget = calls.store.forget_node
    calls.store.forget_node = lambda name: forget(name).addCallback(lambda _: left.append(claims(node)))
    MemoryNode.result(node.core.stop())
    assert left == [[]]  # dropped before the store closed
