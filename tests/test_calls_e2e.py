"""Calls over real sockets: a 1:1 call set up, answered and ended over TCP and WebSocket JSON
(with the record stored in the conversation), and a call across two nodes sharing PostgreSQL
and Redis, where caller and callee are on different nodes: answered elsewhere across nodes, busy
across nodes, bye forwarded to the call's home."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_cluster_e2e import two_nodes, until  # noqa: F401

OK, RINGING, TRYING, BUSY = (pb.KCIM_VOIP_INVITE_CODE_OK, pb.kCIM_VOIP_INVITE_CODE_RINGING,
                             pb.kCIM_VOIP_INVITE_CODE_TRYING, pb.kCIM_VOIP_INVITE_CODE_BUSY)  # fmt: skip
END, ELSEWHERE = pb.kCIM_VOIP_BYE_REASON_END, pb.kCIM_VOIP_BYE_REASON_ANSWERED_ELSEWHERE


def invite(client, *invitees: int, sdp: str = "v=0 offer"):
    req = pb.CIMVoipInviteReq(invite_user_list=list(invitees), invite_type=pb.kCIM_VOIP_INVITE_TYPE_VIDEO_CALL, sdp=sdp)
    return client.request(Cmd.VOIP_INVITE_REQ, req)


def reply(client, channel, code: int, sdp: str = "") -> None:
    client.send(Cmd.VOIP_INVITE_REPLY, pb.CIMVoipInviteReply(rsp_code=code, channel_info=channel, sdp=sdp))


async def record_of(client, result: str = "") -> dict:
    """The next call record pushed to ``client`` (with that ``result``)."""
    while True:
        _, _, msg = await client.next_push(Cmd.MSG_DATA, timeout=10)
        if msg.msg_type == pb.kCIM_MSG_TYPE_AVCHAT:
            record = json.loads(msg.msg_data)
            if not result or record["result"] == result:
                return record


@pytest.mark.parametrize("transport", ["tcp", "ws-json"])
@pytest_twisted.ensureDeferred
async def test_a_one_to_one_call_over_real_sockets(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    trying = await invite(alice, bob_id)
    assert trying.rsp_code == TRYING and trying.channel_info.creator_id == alice_id
    channel = trying.channel_info
    _, _, ring = await bob.next_push(Cmd.VOIP_INVITE_REQ)
    assert (ring.sdp, ring.from_nick_name, ring.ring_timeout, ring.channel_info) == ("v=0 offer", "Alice", 45, channel)
    reply(bob, channel, RINGING)
    _, _, ringing = await alice.next_push(Cmd.VOIP_INVITE_REPLY)
    assert (ringing.user_id, ringing.rsp_code) == (bob_id, RINGING)
    reply(bob, channel, OK, "v=0 answer")
    _, _, ok = await alice.next_push(Cmd.VOIP_INVITE_REPLY)
    assert (ok.rsp_code, ok.sdp) == (OK, "v=0 answer")
    alice.send(Cmd.VOIP_INVITE_REPLY_ACK, pb.CIMVoipInviteReplyAck(channel_info=channel))
    await bob.next_push(Cmd.VOIP_INVITE_REPLY_ACK)
    candidate = pb.CIMVoipSignalReq(channel_info=channel, kind="candidate", payload='{"candidate":"a=1"}')
    bob.send(Cmd.VOIP_SIGNAL_REQ, candidate)
    _, _, signal = await alice.next_push(Cmd.VOIP_SIGNAL_NOTIFY)
    assert (signal.from_user_id, signal.kind, signal.payload) == (bob_id, "candidate", '{"candidate":"a=1"}')
    alice.send(Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())
    bye = await alice.request(Cmd.VOIP_BYE_REQ, pb.CIMVoipByeReq(channel_info=channel, bye_reason=END))
    assert bye.error_code == ErrorCode.SUCCESS
    _, _, notice = await bob.next_push(Cmd.VOIP_BYE_NOTIFY)
    assert (notice.user_id, notice.byeReason) == (alice_id, END)
    record = await record_of(bob)
    assert (record["result"], record["hangupUserId"], record["callType"]) == ("ended", alice_id, 2)
    assert await record_of(alice) == record
    history = await bob.history(alice_id)
    assert [m.msg_type for m in history.msg_list] == [pb.kCIM_MSG_TYPE_AVCHAT]


@pytest_twisted.ensureDeferred
async def test_a_call_across_two_nodes_over_redis_and_postgresql(two_nodes):  # noqa: F811
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n1.register("bobby")
    await n1.register("carol")
    alice = await n1.login("alice")
    laptop = await n1.login("bobby", transport="ws-json")
    phone = await n2.login("bobby")
    carol = await n2.login("carol", transport="ws-json")
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"})

    trying = await invite(alice, bob_id)  # its home: n1
    channel = trying.channel_info
    for device in (phone, laptop):
        _, _, ring = await device.next_push(Cmd.VOIP_INVITE_REQ, timeout=10)
        assert ring.channel_info == channel
    await until(lambda: bob_id in n2.core.feature("calls").remote_users)

    busy = await invite(carol, bob_id)  # on n2: bob is claimed by n1's call
    assert busy.rsp_code == TRYING
    _, _, told = await carol.next_push(Cmd.VOIP_INVITE_REPLY, timeout=10)
    assert (told.user_id, told.rsp_code) == (bob_id, BUSY)
    assert (await record_of(carol))["result"] == "busy"

    reply(phone, channel, OK, "answer from n2")  # n2 forwards it to the home
    _, _, ok = await alice.next_push(Cmd.VOIP_INVITE_REPLY, timeout=10)
    assert (ok.user_id, ok.rsp_code, ok.sdp) == (bob_id, OK, "answer from n2")
    _, _, elsewhere = await laptop.next_push(Cmd.VOIP_BYE_NOTIFY, timeout=10)
    assert (elsewhere.user_id, elsewhere.byeReason) == (bob_id, ELSEWHERE)
    alice.send(Cmd.VOIP_SIGNAL_REQ, pb.CIMVoipSignalReq(channel_info=channel, kind="candidate", payload="c1"))
    _, _, signal = await phone.next_push(Cmd.VOIP_SIGNAL_NOTIFY, timeout=10)
    assert signal.payload == "c1"
    phone.send(Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())

    bye = await phone.request(Cmd.VOIP_BYE_REQ, pb.CIMVoipByeReq(channel_info=channel, bye_reason=END))
    assert bye.error_code == ErrorCode.SUCCESS  # answered by n1, through n2
    _, _, notice = await alice.next_push(Cmd.VOIP_BYE_NOTIFY, timeout=10)
    assert (notice.user_id, notice.byeReason) == (bob_id, END)
    assert (await record_of(phone, "ended"))["hangupUserId"] == bob_id
    again = await phone.request(Cmd.VOIP_BYE_REQ, pb.CIMVoipByeReq(channel_info=channel, bye_reason=END))
    assert again.error_code == ErrorCode.CALL_NOT_FOUND
    await until(lambda: bob_id not in n2.core.feature("calls").remote_users)
    assert (await invite(carol, bob_id)).rsp_code == TRYING  # bob is free again, for a call homed on n2
    _, _, ring = await laptop.next_push(Cmd.VOIP_INVITE_REQ, timeout=10)
    assert ring.creator_user_id != alice_id
