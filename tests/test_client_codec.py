"""The wire schema (byte-exact against hand-encoded protobuf), the body codec, and the client
library's request/push handling, driven through StringTransport and MemoryReactorClock."""

from __future__ import annotations

import json
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from coffeechat.errors import ErrorCode
from coffeechat.protocols.client import (
    CIMClient,
    ServerError,
    connect,
    http_login,
    md5_password,
    register,
)
from coffeechat.protocols.framing import FrameDecoder, FrameError, encode_frame
from coffeechat.schema import (
    BODY_TYPES,
    PUSH_COMMANDS,
    RESPONSE_OF,
    BodyError,
    Cmd,
    decode_body,
    encode_body,
    pb,
)


def varint(n: int) -> bytes:
    """Protobuf base-128 varint, written independently of the protobuf library."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return key(field, 2) + varint(len(payload)) + payload


# -- the schema on the wire


def test_varint_helper() -> None:
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(1700000000) == b"\x80\xe2\xcf\xaa\x06"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_auth_req_bytes() -> None:
    pwd = md5_password("secret")
    wire = (
        b"\x0a\x05alice"  # 1 user_name
        + b"\x12\x20" + pwd.encode()  # 2 user_pwd, 32 hex chars
        + b"\x18\x02"  # 3 client_type = IOS
        + b"\x22\x031.0"  # 4 client_version
    )  # fmt: skip
    msg = pb.CIMAuthReq(user_name="alice", user_pwd=pwd, client_type=pb.kCIM_CLIENT_TYPE_IOS, client_version="1.0")
    assert msg.SerializeToString() == wire
    assert pb.CIMAuthReq.FromString(wire) == msg


def test_msg_data_bytes() -> None:
    wire = (
        b"\x08\xac\x02"  # 1 from_user_id = 300
        + b"\x18\x02"  # 3 to_session_id = 2
        + b"\x22\x02u1"  # 4 client_msg_id
        + b"\x28\x05"  # 5 server_msg_id = 5
        + b"\x30\x80\xe2\xcf\xaa\x06"  # 6 create_time = 1700000000 (int32)
        + b"\x38\x01"  # 7 msg_type = TEXT
        + b"\x40\x01"  # 8 session_type = SINGLE
        + b"\x4a\x03hi\xff"  # 9 msg_data: bytes, not necessarily UTF-8
        + b"\x52\x03\x03\x90\x03"  # 10 at_user_list = [3, 400], packed (extension)
        + b"\x58\x01"  # 11 at_all = true (extension)
    )  # fmt: skip
    msg = pb.CIMMsgData(
        from_user_id=300,
        to_session_id=2,
        client_msg_id="u1",
        server_msg_id=5,
        create_time=1700000000,
        msg_type=pb.kCIM_MSG_TYPE_TEXT,
        session_type=pb.kCIM_SESSION_TYPE_SINGLE,
        msg_data=b"hi\xff",
        at_user_list=[3, 400],
        at_all=True,
    )
    assert msg.SerializeToString() == wire
    assert pb.CIMMsgData.FromString(wire) == msg


def test_msg_data_create_time_is_int32() -> None:
    # int32 -1 is a 10-byte varint; a uint32 schema would have read 4294967295.
    wire = b"\x30" + b"\xff" * 9 + b"\x01"
    assert pb.CIMMsgData(create_time=-1).SerializeToString() == wire
    assert pb.CIMMsgData.FromString(wire).create_time == -1


def test_old_client_msg_data_without_extensions_parses() -> None:
    wire = b"\x08\x01\x18\x02\x22\x01x\x38\x01\x40\x01\x4a\x02ok"
    msg = pb.CIMMsgData.FromString(wire)
    assert (msg.from_user_id, msg.to_session_id, msg.client_msg_id, msg.msg_data) == (1, 2, "x", b"ok")
    assert list(msg.at_user_list) == [] and msg.at_all is False


def test_group_info_rsp_bytes() -> None:
    info = (
        b"\x08\x07"  # 1 group_id = 7
        + b"\x12\x01g"  # 2 group_name
        + b"\x18\x01"  # 3 group_type = NORMAL
        + b"\x38\x01"  # 7 group_owner_id = 1
        + b"\x40\x80\xe2\xcf\xaa\x06"  # 8 create_time
    )  # fmt: skip
    wire = b"\x08\x01" + b"\x1a" + varint(len(info)) + info  # 1 user_id, 3 group_info_list[0]
    msg = pb.CIMGroupInfoRsp(
        user_id=1,
        group_info_list=[
            pb.CIMGroupInfo(
                group_id=7,
                group_name="g",
                group_type=pb.kCIM_GROUP_TYPE_GROUP_NORMAL,
                group_owner_id=1,
                create_time=1700000000,
            )
        ],
    )
    assert msg.SerializeToString() == wire
    assert pb.CIMGroupInfoRsp.FromString(wire) == msg


def test_repeated_ids_parse_packed_and_unpacked() -> None:
    packed = b"\x08\x01" + ld(2, b"room") + ld(3, varint(2) + varint(300))
    unpacked = b"\x08\x01" + ld(2, b"room") + key(3, 0) + varint(2) + key(3, 0) + varint(300)
    expected = pb.CIMGroupCreateReq(user_id=1, group_name="room", member_id_list=[2, 300])
    assert expected.SerializeToString() == packed
    assert pb.CIMGroupCreateReq.FromString(packed) == expected
    assert pb.CIMGroupCreateReq.FromString(unpacked) == expected


def test_msg_ids_by_id_are_strings() -> None:
    wire = key(3, 0) + varint(9) + ld(4, b"1") + ld(4, b"22")
    assert pb.CIMGetMsgByIdReq(session_id=9, msg_id_list=["1", "22"]).SerializeToString() == wire


def test_extension_fields_bytes() -> None:
    rsp = pb.CIMAuthRsp(result_code=pb.kCIM_ERR_SUCCESS, user_token="tk", token_expire_time=1700000000)
    assert rsp.SerializeToString() == b"\x10\xc8\x01" + ld(5, b"tk") + b"\x30\x80\xe2\xcf\xaa\x06"
    ack = pb.CIMMsgDataAck(client_msg_id="c", error_code=pb.kCIM_ERR_MSG_TOO_LARGE, error_msg="big")
    assert ack.SerializeToString() == ld(3, b"c") + b"\x40\x95\x4e" + ld(9, b"big")
    err = pb.CIMErrorRsp(cmd_id=0x0205, error_code=pb.kCIM_ERR_NOT_LOGGED_IN, error_msg="no")
    assert err.SerializeToString() == b"\x08\x85\x04\x10\x93\x4e" + ld(3, b"no")
    kick = pb.CIMKickoutNotify(reason_code=pb.kCIM_ERR_SESSION_REPLACED, reason="elsewhere")
    assert kick.SerializeToString() == b"\x08\x9e\x4e" + ld(2, b"elsewhere")


def test_unknown_fields_from_newer_peers_are_skipped() -> None:
    wire = b"\x08\x05" + key(99, 0) + varint(1) + ld(98, b"future")
    assert pb.CIMLogoutRsp.FromString(wire).result_code == 5


def test_whole_frame_of_auth_req() -> None:
    body = pb.CIMAuthReq(user_name="bob").SerializeToString()
    assert body == b"\x0a\x03bob"
    assert encode_frame(Cmd.LOGIN_AUTH_REQ, 1, body) == (
        b"\x00\x00\x00\x15\x00\x01\x00\x00\x00\x00\x01\x07\x00\x01\x00\x00\x0a\x03bob"
    )


# -- the command table


def test_cmd_matches_the_proto_enum() -> None:
    from_proto = {name.removeprefix("kCIM_CID_"): value for name, value in pb.CIMCmdID.items() if value}
    assert {c.name: c.value for c in Cmd} == from_proto
    assert Cmd.GROUP_INFO_RSP == 0x0510 == 1296
    assert Cmd.ERROR_RSP == 0x0801 and Cmd.KICKOUT_NOTIFY == 0x0802


def test_every_command_has_a_body_type() -> None:
    assert set(BODY_TYPES) == set(Cmd)
    assert BODY_TYPES[Cmd.LOGIN_HEARTBEAT] is pb.CIMHeartBeat
    assert BODY_TYPES[Cmd.VOIP_HEARTBEAT] is pb.CIMVoipHeartbeat
    assert BODY_TYPES[Cmd.GROUP_INFO_RSP] is pb.CIMGroupInfoRsp
    assert BODY_TYPES[Cmd.ERROR_RSP] is pb.CIMErrorRsp
    for request, response in RESPONSE_OF.items():
        assert request in BODY_TYPES and response in BODY_TYPES
    assert not PUSH_COMMANDS & set(RESPONSE_OF.values())


def test_error_codes_match_coffeechat_errors() -> None:
    for code in ErrorCode:
        if code >= 10000:
            assert pb.CIMErrorCode.Value(f"kCIM_ERR_{code.name}") == code
        else:
            assert code in pb.CIMErrorCode.values()
    extensions = [v for v in pb.CIMErrorCode.values() if v >= 10000]
    assert sorted(extensions) == sorted(c for c in ErrorCode if c >= 10000)


def test_decode_body() -> None:
    msg = decode_body(Cmd.MSG_DATA, encode_body(pb.CIMMsgData(msg_data=b"x")))
    assert isinstance(msg, pb.CIMMsgData) and msg.msg_data == b"x"
    assert decode_body(Cmd.LOGIN_HEARTBEAT, b"") == pb.CIMHeartBeat()
    with pytest.raises(BodyError):
        decode_body(0x0999, b"")
    with pytest.raises(BodyError):
        decode_body(0, b"")
    with pytest.raises(BodyError):
        decode_body(Cmd.MSG_DATA, b"\x0a\x05ab")  # truncated length-delimited field
    with pytest.raises(BodyError):
        decode_body(Cmd.LOGIN_AUTH_REQ, b"\x0a\x02\xff\xfe")  # string field, not UTF-8
    assert issubclass(BodyError, ValueError)


# -- the client


class Harness:
    """A client on a StringTransport, with helpers playing the server."""

    def __init__(self, **kwargs) -> None:
        self.reactor = MemoryReactorClock()
        self.client = CIMClient(self.reactor, **kwargs)
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)
        self._decoder = FrameDecoder(1 << 20)

    def sent(self) -> list[tuple[int, int, object]]:
        """Frames the client wrote since the last call, decoded."""
        data = self.transport.value()
        self.transport.clear()
        return [(cmd, seq, decode_body(cmd, body)) for cmd, seq, body in self._decoder.feed(data)]

    def reply(self, cmd: int, seq: int, msg) -> None:
        self.client.dataReceived(encode_frame(cmd, seq, msg.SerializeToString()))


def result_of(d: defer.Deferred):
    """The result of a Deferred that has fired (raising its failure)."""
    results: list = []
    d.addBoth(results.append)
    assert results, "Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def failure_of(d: defer.Deferred) -> Failure:
    results: list = []
    d.addBoth(results.append)
    assert results and isinstance(results[0], Failure), results
    return results[0]


def test_md5_password() -> None:
    assert md5_password("123456") == "e10adc3949ba59abbe56e057f20f883e"


def test_requests_match_responses_by_seq() -> None:
    h = Harness()
    d1 = h.client.sessions()
    d2 = h.client.history(5, limit=10)
    (c1, s1, req1), (c2, s2, req2) = h.sent()
    assert (c1, c2) == (Cmd.LIST_RECENT_CONTACT_SESSION_REQ, Cmd.LIST_MSG_REQ)
    assert (s1, s2) == (1, 2)
    assert (req2.session_id, req2.limit_count, req2.end_msg_id) == (5, 10, 0)
    h.reply(Cmd.LIST_MSG_RSP, s2, pb.CIMGetMsgListRsp(session_id=5))
    assert not d1.called
    assert result_of(d2).session_id == 5
    h.reply(Cmd.LIST_RECENT_CONTACT_SESSION_RSP, s1, pb.CIMRecentContactSessionRsp(unread_counts=3))
    assert result_of(d1).unread_counts == 3
    assert not h.client.pushes


def test_responses_split_and_batched() -> None:
    h = Harness()
    ds = [h.client.heartbeat() for _ in range(3)]
    data = b"".join(encode_frame(Cmd.LOGIN_HEARTBEAT, seq, b"") for seq in (3, 1, 2))
    for i in range(len(data)):
        h.client.dataReceived(data[i : i + 1])
    assert all(result_of(d) == pb.CIMHeartBeat() for d in ds)


def test_seq_wraps_to_one_and_skips_outstanding() -> None:
    h = Harness()
    h.client._seq = 65533
    pending = h.client.heartbeat()  # 65534, left unanswered
    h.client.heartbeat()  # wraps to 1
    assert [seq for _, seq, _ in h.sent()] == [65534, 1]
    h.reply(Cmd.LOGIN_HEARTBEAT, 1, pb.CIMHeartBeat())
    h.client._seq = 65533
    h.client.heartbeat()  # 65534 is still waiting: skipped
    assert [seq for _, seq, _ in h.sent()] == [1]
    assert not pending.called


def test_pushes_are_queued_even_with_a_colliding_seq() -> None:
    h = Harness()
    d = h.client.heartbeat()  # seq 1
    notify = pb.CIMMsgDataReadNotify(user_id=2, session_id=1, msg_id=9, session_type=1)
    h.reply(Cmd.MSG_READ_NOTIFY, 1, notify)  # server push, its own counter happens to be 1
    assert not d.called
    assert list(h.client.pushes) == [(Cmd.MSG_READ_NOTIFY, 1, notify)]
    h.reply(Cmd.LIST_MSG_RSP, 77, pb.CIMGetMsgListRsp())  # no request with seq 77
    assert len(h.client.pushes) == 2
    assert result_of(h.client.next_push(Cmd.LIST_MSG_RSP))[:2] == (Cmd.LIST_MSG_RSP, 77)
    assert result_of(h.client.next_push()) == (Cmd.MSG_READ_NOTIFY, 1, notify)
    assert not h.client.pushes


def test_msg_data_ack_for_our_send_matches_the_request() -> None:
    h = Harness()
    h.client.user_id = 1
    d = h.client.send_message(2, "hello")
    [(cmd, seq, sent)] = h.sent()
    assert cmd == Cmd.MSG_DATA and sent.msg_data == b"hello" and sent.to_session_id == 2
    assert uuid.UUID(sent.client_msg_id).version == 4
    # A push of someone's MSG_DATA with the same seq comes first: it must not steal the answer.
    h.reply(Cmd.MSG_DATA, seq, pb.CIMMsgData(from_user_id=3, to_session_id=1, server_msg_id=4, session_type=1))
    assert not d.called
    ack = pb.CIMMsgDataAck(
        from_user_id=1, to_session_id=2, client_msg_id=sent.client_msg_id, server_msg_id=1, res_code=1
    )
    h.reply(Cmd.MSG_DATA_ACK, seq, ack)
    assert result_of(d) == ack
    assert [p[0] for p in h.client.pushes] == [Cmd.MSG_DATA]


def test_send_message_explicit_fields() -> None:
    h = Harness()
    h.client.send_message(9, b"\x00\x01", msg_type=3, session_type=2, client_msg_id="mine")
    [(_, _, sent)] = h.sent()
    assert (sent.msg_data, sent.msg_type, sent.session_type, sent.client_msg_id) == (b"\x00\x01", 3, 2, "mine")


def test_auto_delivery_ack() -> None:
    h = Harness()
    h.client.user_id = 1
    push = pb.CIMMsgData(
        from_user_id=2, to_session_id=1, client_msg_id="c-1", server_msg_id=41, session_type=1, msg_data=b"hi"
    )
    h.reply(Cmd.MSG_DATA, 500, push)
    [(cmd, seq, ack)] = h.sent()
    assert (cmd, seq) == (Cmd.MSG_DATA_ACK, 500)
    assert ack == pb.CIMMsgDataAck(
        from_user_id=1,
        to_session_id=2,  # the conversation as the receiver sees it: the peer
        client_msg_id="c-1",
        server_msg_id=41,
        session_type=1,
        res_code=pb.kCIM_RES_CODE_OK,
    )
    assert result_of(h.client.next_push(Cmd.MSG_DATA)) == (Cmd.MSG_DATA, 500, push)


def test_auto_delivery_ack_for_group_and_own_other_device() -> None:
    h = Harness()
    h.client.user_id = 1
    h.reply(Cmd.MSG_DATA, 1, pb.CIMMsgData(from_user_id=2, to_session_id=70, server_msg_id=1, session_type=2))
    h.reply(Cmd.MSG_DATA, 2, pb.CIMMsgData(from_user_id=1, to_session_id=5, server_msg_id=2, session_type=1))
    assert [(seq, ack.to_session_id) for _, seq, ack in h.sent()] == [(1, 70), (2, 5)]


def test_no_delivery_ack_when_disabled() -> None:
    h = Harness(auto_delivery_ack=False)
    h.reply(Cmd.MSG_DATA, 3, pb.CIMMsgData(from_user_id=2, server_msg_id=1))
    assert h.sent() == []
    assert len(h.client.pushes) == 1


def test_error_rsp_fails_the_request() -> None:
    h = Harness()
    d = h.client.history(3)
    [(_, seq, _)] = h.sent()
    h.reply(
        Cmd.ERROR_RSP,
        seq,
        pb.CIMErrorRsp(cmd_id=Cmd.LIST_MSG_REQ, error_code=pb.kCIM_ERR_NOT_LOGGED_IN, error_msg="log in first"),
    )
    err = failure_of(d).value
    assert isinstance(err, ServerError)
    assert (err.code, err.message, err.cmd) == (ErrorCode.NOT_LOGGED_IN, "log in first", Cmd.LIST_MSG_REQ)
    assert "kCIM_ERR_NOT_LOGGED_IN" in str(err)


def test_error_rsp_without_a_request_is_a_push() -> None:
    h = Harness()
    h.client.read_ack(2, 5)
    h.reply(Cmd.ERROR_RSP, 1, pb.CIMErrorRsp(cmd_id=Cmd.MSG_READ_ACK, error_code=pb.kCIM_ERR_FORBIDDEN))
    cmd, _, msg = result_of(h.client.next_push(Cmd.ERROR_RSP))
    assert msg.cmd_id == Cmd.MSG_READ_ACK


def test_read_ack_expects_no_answer() -> None:
    h = Harness()
    assert h.client.read_ack(2, 5, session_type=1) is None
    [(cmd, _, msg)] = h.sent()
    assert cmd == Cmd.MSG_READ_ACK and (msg.session_id, msg.msg_id) == (2, 5)
    assert not h.client._pending


def test_next_push_waits_then_fires() -> None:
    h = Harness()
    d = h.client.next_push(Cmd.KICKOUT_NOTIFY)
    h.reply(Cmd.MSG_READ_NOTIFY, 1, pb.CIMMsgDataReadNotify())
    assert not d.called
    kick = pb.CIMKickoutNotify(reason_code=pb.kCIM_ERR_SESSION_REPLACED, reason="logged in elsewhere")
    h.reply(Cmd.KICKOUT_NOTIFY, 2, kick)
    assert result_of(d) == (Cmd.KICKOUT_NOTIFY, 2, kick)
    assert [p[0] for p in h.client.pushes] == [Cmd.MSG_READ_NOTIFY]
    assert not h.reactor.getDelayedCalls()


def test_next_push_timeout() -> None:
    h = Harness()
    d = h.client.next_push(Cmd.MSG_DATA, timeout=2)
    h.reactor.advance(1.9)
    assert not d.called
    h.reactor.advance(0.2)
    assert failure_of(d).check(defer.TimeoutError)
    # A push arriving later is queued, not lost.
    h.reply(Cmd.MSG_DATA, 1, pb.CIMMsgData())
    assert len(h.client.pushes) == 1


def test_next_push_cancel() -> None:
    h = Harness()
    d = h.client.next_push()
    d.cancel()
    assert failure_of(d).check(defer.CancelledError)
    assert not h.reactor.getDelayedCalls()
    h.reply(Cmd.MSG_DATA, 1, pb.CIMMsgData())
    assert len(h.client.pushes) == 1


def test_push_handler_replaces_the_queue() -> None:
    h = Harness()
    seen = []
    h.client.push_handler = lambda cmd, seq, msg: seen.append((cmd, seq))
    h.reply(Cmd.MSG_READ_NOTIFY, 4, pb.CIMMsgDataReadNotify())
    assert seen == [(Cmd.MSG_READ_NOTIFY, 4)] and not h.client.pushes


def test_connection_loss_fails_pending_requests_and_waiters() -> None:
    h = Harness()
    d1 = h.client.heartbeat()
    d2 = h.client.users()
    w = h.client.next_push(timeout=30)
    closed = []
    h.client.closed.addCallback(closed.append)
    h.client.connectionLost(Failure(ConnectionLost("gone")))
    assert failure_of(d1).check(ConnectionLost)
    assert failure_of(d2).check(ConnectionLost)
    assert failure_of(w).check(ConnectionLost)
    assert isinstance(closed[0], ConnectionLost)
    assert not h.reactor.getDelayedCalls()
    # After the loss, requests fail at once, queued pushes can still be read.
    assert failure_of(h.client.heartbeat()).check(ConnectionLost)
    assert failure_of(h.client.next_push()).check(ConnectionLost)
    assert isinstance(result_of(h.client.when_closed()), ConnectionLost)


def test_close() -> None:
    h = Harness()
    d = h.client.close()
    assert h.transport.disconnecting
    assert not d.called
    h.client.connectionLost(Failure(ConnectionDone()))
    assert isinstance(result_of(d), ConnectionDone)


def test_garbage_from_the_server_aborts() -> None:
    h = Harness()
    d = h.client.heartbeat()
    h.client.dataReceived(encode_frame(Cmd.MSG_READ_NOTIFY, 1, b"") + b"\x00\x00\x00\x01nonsense")
    assert h.transport.disconnecting
    assert len(h.client.pushes) == 1  # the frame before the garbage was handled
    h.client.connectionLost(Failure(ConnectionLost()))
    assert failure_of(d).check(FrameError)


def test_malformed_response_body_fails_the_request() -> None:
    h = Harness()
    d = h.client.sessions()
    h.client.dataReceived(encode_frame(Cmd.LIST_RECENT_CONTACT_SESSION_RSP, 1, b"\x1a\x09\x08"))
    assert failure_of(d).check(BodyError)


def test_undecodable_push_is_kept_raw() -> None:
    h = Harness()
    h.client.dataReceived(encode_frame(0x0999, 3, b"\x01\x02"))
    assert list(h.client.pushes) == [(0x0999, 3, b"\x01\x02")]


def test_login_password_remembers_user_and_token() -> None:
    h = Harness(client_type=pb.kCIM_CLIENT_TYPE_MAC_OS)
    d = h.client.login_password("alice", md5_password("pw"))
    [(cmd, seq, req)] = h.sent()
    assert cmd == Cmd.LOGIN_AUTH_REQ
    assert (req.user_name, req.user_pwd, req.client_type) == ("alice", md5_password("pw"), 6)
    rsp = pb.CIMAuthRsp(
        result_code=pb.kCIM_ERR_SUCCESS, user_info=pb.CIMUserInfo(user_id=42, nick_name="Alice"), user_token="t0k"
    )
    h.reply(Cmd.LOGIN_AUTH_RSP, seq, rsp)
    assert result_of(d) == rsp
    assert (h.client.user_id, h.client.user_token) == (42, "t0k")
    h.client.logout()
    [(cmd, _, req)] = h.sent()
    assert cmd == Cmd.LOGIN_AUTH_LOGOUT_REQ and req.user_id == 42


def test_failed_login_remembers_nothing() -> None:
    h = Harness()
    d = h.client.login_password("alice", "0" * 32)
    h.reply(Cmd.LOGIN_AUTH_RSP, 1, pb.CIMAuthRsp(result_code=pb.kCIM_ERR_LOGIN_INVALID_USER_OR_PWD))
    assert result_of(d).result_code == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert (h.client.user_id, h.client.user_token) == (0, "")


def test_login_token() -> None:
    h = Harness()
    d = h.client.login_token(42, "t0k")
    [(cmd, seq, req)] = h.sent()
    assert cmd == Cmd.LOGIN_AUTH_TOKEN_REQ and (req.user_id, req.user_token) == (42, "t0k")
    h.reply(Cmd.LOGIN_AUTH_TOKEN_RSP, seq, pb.CIMAuthTokenRsp(result_code=200, user_info=pb.CIMUserInfo(user_id=42)))
    assert result_of(d).result_code == 200
    assert (h.client.user_id, h.client.user_token) == (42, "t0k")


def test_query_helpers_encode_their_requests() -> None:
    h = Harness()
    h.client.user_id = 1
    h.client.latest_msg_id(2)
    h.client.messages_by_id(2, [5, 7])
    h.client.users()
    (c1, _, r1), (c2, _, r2), (c3, _, _) = h.sent()
    assert (c1, r1.session_id, r1.session_type) == (Cmd.MSG_GET_LATEST_MSG_ID_REQ, 2, 1)
    assert (c2, list(r2.msg_id_list)) == (Cmd.MSG_GET_BY_MSG_ID_REQ, ["5", "7"])
    assert c3 == Cmd.FRIEND_QUERY_USER_LIST_REQ
    h.client.send_raw(b"\x00")
    assert h.transport.value() == b"\x00"


# -- over real sockets (one each for connect() and the HTTP helpers)


@pytest_twisted.inlineCallbacks
def test_connect_and_http_helpers_over_loopback():
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory, Protocol
    from twisted.web import resource, server

    class Echo(Protocol):
        """Answers a heartbeat with a heartbeat of the same seq."""

        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    class Json(resource.Resource):
        isLeaf = True

        def render_POST(self, request):
            body = json.loads(request.content.read())
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"error_code": 200, "path": request.path.decode(), "got": body}).encode()

    tcp = reactor.listenTCP(0, Factory.forProtocol(Echo), interface="127.0.0.1")
    web = reactor.listenTCP(0, server.Site(Json()), interface="127.0.0.1")
    try:
        client = yield connect(reactor, f"tcp:127.0.0.1:{tcp.getHost().port}")
        rsp = yield client.heartbeat()
        assert rsp == pb.CIMHeartBeat()
        yield client.close()

        base = f"http://127.0.0.1:{web.getHost().port}"
        answer = yield register(reactor, base, "alice", "Alice", md5_password("pw"))
        assert answer["path"] == "/user/register"
        assert answer["got"] == {"userName": "alice", "userNickName": "Alice", "userPwd": md5_password("pw")}
        answer = yield http_login(reactor, base + "/", "alice", md5_password("pw"))
        assert answer["path"] == "/api/login"
        assert answer["got"] == {"userName": "alice", "userPwd": md5_password("pw")}
    finally:
        yield tcp.stopListening()
        yield web.stopListening()
