"""The client library's call helpers (protocols/client.py): a whole 1:1 call between two
CIMClients over real sockets against a real node (TCP and WebSocket JSON), a refusal of a command
without an answer arriving on its seq, and, on a StringTransport, that a call's later 0x0402
replies are pushes even when a request waiting for "any" answer has the invite's seq."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.task import deferLater

from coffeechat.errors import ErrorCode
from coffeechat.protocols.client import CIMClient, ServerError
from coffeechat.schema import Cmd, pb

from .test_client_codec import Harness, result_of

TRYING, RINGING, OK = (pb.kCIM_VOIP_INVITE_CODE_TRYING, pb.kCIM_VOIP_INVITE_CODE_RINGING,
                       pb.KCIM_VOIP_INVITE_CODE_OK)  # fmt: skip
END, VIDEO = pb.kCIM_VOIP_BYE_REASON_END, pb.kCIM_VOIP_INVITE_TYPE_VIDEO_CALL


async def record_of(client: CIMClient) -> dict:
    """The next call record (an AVCHAT MSG_DATA) pushed to ``client``."""
    while True:
        _, _, msg = await client.next_push(Cmd.MSG_DATA, timeout=10)
        if msg.msg_type == pb.kCIM_MSG_TYPE_AVCHAT:
            return json.loads(msg.msg_data)


@pytest.mark.parametrize("transport", ["tcp", "ws-json"])
@pytest_twisted.ensureDeferred
async def test_a_whole_call_with_the_client_helpers(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)

    trying = await alice.call_invite([bob_id], video=True, sdp="v=0 offer", channel_name="c-client")
    assert (trying.rsp_code, trying.channel_info.channel_name, trying.channel_info.creator_id) == (
        TRYING, "c-client", alice_id,
    )  # fmt: skip
    channel = trying.channel_info
    _, _, ring = await bob.next_push(Cmd.VOIP_INVITE_REQ)
    assert (ring.channel_info, ring.sdp, ring.invite_type) == (channel, "v=0 offer", VIDEO)

    bob.call_reply(ring.channel_info, RINGING)
    _, seq, ringing = await alice.next_push(Cmd.VOIP_INVITE_REPLY)
    assert (ringing.user_id, ringing.rsp_code) == (bob_id, RINGING)
    bob.call_reply(ring.channel_info, OK, sdp="v=0 answer")
    _, seq_ok, ok = await alice.next_push(Cmd.VOIP_INVITE_REPLY)
    assert (ok.user_id, ok.rsp_code, ok.sdp) == (bob_id, OK, "v=0 answer")
    assert seq == seq_ok  # both on the invite's seq

    alice.call_reply_ack(channel)
    _, _, acked = await bob.next_push(Cmd.VOIP_INVITE_REPLY_ACK)
    assert acked.channel_info == channel

    alice.call_signal(channel, "candidate", '{"candidate":"from alice"}')
    _, _, signal = await bob.next_push(Cmd.VOIP_SIGNAL_NOTIFY)
    assert (signal.from_user_id, signal.kind, signal.payload) == (alice_id, "candidate", '{"candidate":"from alice"}')
    bob.call_signal(channel, "offer", "v=0 renegotiate", to_user_id=alice_id)
    _, _, signal = await alice.next_push(Cmd.VOIP_SIGNAL_NOTIFY)
    assert (signal.from_user_id, signal.kind, signal.payload) == (bob_id, "offer", "v=0 renegotiate")

    call = live_node.core.feature("calls").calls["c-client"]
    beat = call.parties[bob_id].last_beat
    await deferLater(reactor, 0.05, lambda: None)
    bob.call_heartbeat()
    # a heartbeat has no answer: a signal sent after it on the same connection comes after it
    bob.call_signal(channel, "candidate", "after the heartbeat")
    _, _, signal = await alice.next_push(Cmd.VOIP_SIGNAL_NOTIFY)
    assert signal.payload == "after the heartbeat"
    assert call.parties[bob_id].last_beat > beat

    bye = await bob.call_bye(channel)
    assert bye.error_code == ErrorCode.SUCCESS
    _, _, notice = await alice.next_push(Cmd.VOIP_BYE_NOTIFY)
    assert (notice.user_id, notice.byeReason, notice.channel_info.channel_name) == (bob_id, END, "c-client")
    record = await record_of(alice)
    assert (record["result"], record["hangupUserId"], record["callType"], record["channel"]) == (
        "ended", bob_id, 2, "c-client",
    )  # fmt: skip
    assert await record_of(bob) == record
    # a real node's /metrics saw it (the set-up observer is wired at start)
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(live_node.core.feature("metrics").text().decode())
        for s in family.samples
    }
    assert scraped["coffeechat_calls_ended_total", (("result", "ended"),)] == 1
    assert scraped["coffeechat_call_setup_seconds_count", ()] == 1
    assert scraped["coffeechat_calls_active", ()] == 0
    again = await alice.call_bye(channel)
    assert again.error_code == ErrorCode.CALL_NOT_FOUND
    assert not [p for p in alice.pushes if p[0] == Cmd.ERROR_RSP]
    assert not [p for p in bob.pushes if p[0] == Cmd.ERROR_RSP]


@pytest_twisted.ensureDeferred
async def test_a_refused_command_without_an_answer_comes_as_an_error_push_on_its_seq(live_node):
    await live_node.register("alice")
    alice = await live_node.login("alice")
    seq = alice.call_signal(pb.CIMChannelInfo(channel_name="nope"), "candidate", "x")
    cmd, got_seq, error = await alice.next_push(Cmd.ERROR_RSP)
    assert (got_seq, error.cmd_id, error.error_code) == (seq, Cmd.VOIP_SIGNAL_REQ, ErrorCode.CALL_NOT_FOUND)
    with pytest.raises(ServerError) as refused:
        await alice.call_invite([alice.user_id])
    assert refused.value.code == ErrorCode.INVALID_ARGUMENT


def test_call_helpers_encode_their_commands_and_later_replies_are_pushes() -> None:
    h = Harness()
    h.client.user_id = 7
    d = h.client.call_invite([2, 3], sdp="offer", group_id=9)
    ((cmd, seq, req),) = h.sent()
    assert cmd == Cmd.VOIP_INVITE_REQ
    assert (list(req.invite_user_list), req.invite_type, req.sdp, req.group_id) == (
        [2, 3], pb.kCIM_VOIP_INVITE_TYPE_VOICE_CALL, "offer", 9,
    )  # fmt: skip
    channel = pb.CIMChannelInfo(channel_name="c", channel_token="t", creator_id=7)
    h.reply(Cmd.VOIP_INVITE_REPLY, seq, pb.CIMVoipInviteReply(user_id=7, rsp_code=TRYING, channel_info=channel))
    assert result_of(d).channel_info == channel
    # a request waiting for "any" answer happens to have the invite's seq (the seqs wrapped)
    h.client._seq = seq - 1
    waiting = h.client.request(Cmd.VOIP_SIGNAL_REQ, pb.CIMVoipSignalReq(channel_info=channel, kind="k"))
    assert h.sent()[0][1] == seq
    ok = pb.CIMVoipInviteReply(user_id=2, rsp_code=OK, channel_info=channel, sdp="answer")
    h.reply(Cmd.VOIP_INVITE_REPLY, seq, ok)
    assert not waiting.called
    assert result_of(h.client.next_push(Cmd.VOIP_INVITE_REPLY)) == (Cmd.VOIP_INVITE_REPLY, seq, ok)

    seqs = [
        h.client.call_reply(channel, RINGING),
        h.client.call_reply_ack(channel),
        h.client.call_heartbeat(),
        h.client.call_signal(channel, "candidate", "c1", to_user_id=2),
    ]
    sent = h.sent()
    assert [s for _, s, _ in sent] == seqs
    assert [c for c, _, _ in sent] == [
        Cmd.VOIP_INVITE_REPLY, Cmd.VOIP_INVITE_REPLY_ACK, Cmd.VOIP_HEARTBEAT, Cmd.VOIP_SIGNAL_REQ,
    ]  # fmt: skip
    assert (sent[0][2].rsp_code, sent[0][2].channel_info) == (RINGING, channel)
    assert (sent[3][2].kind, sent[3][2].payload, sent[3][2].to_user_id) == ("candidate", "c1", 2)
    bye = h.client.call_bye(channel)
    ((cmd, seq, req),) = h.sent()
    assert (cmd, req.bye_reason, req.channel_info) == (Cmd.VOIP_BYE_REQ, END, channel)
    h.reply(Cmd.VOIP_BYE_RSP, seq, pb.CIMVoipByeRsp(error_code=ErrorCode.SUCCESS))
    assert result_of(bye).error_code == ErrorCode.SUCCESS
