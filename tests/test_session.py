"""The CIM session and the core, driven frame by frame on a memory reactor."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.protocols.framing import encode_frame, encode_header
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, md5


@pytest.fixture
def node() -> MemoryNode:
    return MemoryNode()


@pytest.fixture
def pair(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = node.connect(), node.connect()
    alice.login("alice")
    bob.login("bobby")
    return node, alice, bob, alice_id, bob_id


# -- login and liveness


def test_password_login_returns_user_and_token(node):
    uid = node.user("alice", nick="Alice A.")
    conn = node.connect()
    rsp = conn.login("alice")
    assert rsp.user_info.user_id == uid
    assert rsp.user_info.nick_name == "Alice A."
    assert len(rsp.user_token) >= 40 and rsp.token_expire_time > rsp.server_time
    token_conn = node.connect()
    token_conn.send(Cmd.LOGIN_AUTH_TOKEN_REQ, pb.CIMAuthTokenReq(user_id=uid, user_token=rsp.user_token))
    assert token_conn.only(Cmd.LOGIN_AUTH_TOKEN_RSP).result_code == 200


@pytest.mark.parametrize(
    ("name", "password", "code"),
    [("alice", "wrong", 2003), ("nobody", "secret", 2003), ("", "", 2003)],
)
def test_bad_password_login(node, name, password, code):
    node.user("alice")
    conn = node.connect()
    conn.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name=name, user_pwd=md5(password)))
    assert conn.only(Cmd.LOGIN_AUTH_RSP).result_code == code
    assert not conn.closed


def test_empty_unknown_or_foreign_token_never_logs_in(node):
    alice, bob = node.user("alice"), node.user("bobby")
    token = node.result(defer.ensureDeferred(node.core.feature("accounts").issue_token(alice)))[0]
    for user_id, tok in [(alice, ""), (alice, "x" * 43), (bob, token)]:
        conn = node.connect()
        conn.send(Cmd.LOGIN_AUTH_TOKEN_REQ, pb.CIMAuthTokenReq(user_id=user_id, user_token=tok))
        assert conn.only(Cmd.LOGIN_AUTH_TOKEN_RSP).result_code == ErrorCode.LOGIN_INVALID_USER_TOKEN


def test_expired_tokens_are_purged_every_hour():
    node = MemoryNode(**{"auth.token_ttl": 1800.0})
    alice = node.user("alice")
    node.result(defer.ensureDeferred(node.core.feature("accounts").issue_token(alice)))
    assert len(node.store._tokens) == 1
    node.advance(1800, step=60)
    assert len(node.store._tokens) == 1  # expired, not purged yet
    node.advance(1860, step=60)  # the hourly purge ran
    assert node.store._tokens == {}


def test_commands_before_login_are_refused(node):
    conn = node.connect()
    conn.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    err = conn.only(Cmd.ERROR_RSP)
    assert err.error_code == ErrorCode.NOT_LOGGED_IN and err.cmd_id == Cmd.LIST_RECENT_CONTACT_SESSION_REQ


def test_login_deadline_closes_silent_connection(node):
    conn = node.connect()
    node.advance(14)
    assert not conn.closed
    node.advance(2)
    assert conn.closed
    assert conn.only(Cmd.KICKOUT_NOTIFY).reason_code == ErrorCode.LOGIN_TIMEOUT


def test_heartbeat_is_echoed_and_keeps_connection_alive(node):
    node.user("alice")
    conn = node.connect()
    conn.login("alice")
    for _ in range(5):
        node.advance(30)
        seq = conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
        frames = conn.frames()
        assert frames == [(Cmd.LOGIN_HEARTBEAT, seq, pb.CIMHeartBeat())]
    assert not conn.closed
    node.advance(62)
    assert conn.closed
    assert conn.only(Cmd.KICKOUT_NOTIFY).reason_code == ErrorCode.IDLE_TIMEOUT
    assert not node.core.router.is_online(conn.user_id)


def test_logout_is_answered_and_closes(node):
    node.user("alice")
    conn = node.connect()
    conn.login("alice")
    conn.send(Cmd.LOGIN_AUTH_LOGOUT_REQ, pb.CIMLogoutReq())
    assert conn.only(Cmd.LOGIN_AUTH_LOGOUT_RSP).result_code == 200
    assert conn.closed
    assert not node.core.router.is_online(conn.user_id)


def test_second_login_on_one_connection_is_refused(node):
    node.user("alice")
    conn = node.connect()
    conn.login("alice")
    conn.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name="alice", user_pwd=md5("secret")))
    assert conn.only(Cmd.LOGIN_AUTH_RSP).result_code == ErrorCode.ALREADY_LOGGED_IN


def test_device_limit_logs_out_the_oldest():
    node = MemoryNode(**{"limits.max_devices": 2})
    node.user("alice")
    first, second, third = node.connect(), node.connect(), node.connect()
    first.login("alice")
    second.login("alice")
    third.login("alice")
    assert first.closed and first.only(Cmd.KICKOUT_NOTIFY).reason_code == ErrorCode.SESSION_REPLACED
    assert not second.closed and not third.closed
    assert len(node.core.router.devices_of(third.user_id)) == 2


# -- messages


def test_send_ack_push_and_sender_sync(pair):
    node, alice, bob, alice_id, bob_id = pair
    alice2 = node.connect()
    alice2.login("alice")
    ack = alice.send_text(bob_id, "hello")
    assert (ack.server_msg_id, ack.res_code, ack.from_user_id, ack.to_session_id) == (1, 1, alice_id, bob_id)
    ((cmd, _, push),) = bob.frames()
    assert cmd == Cmd.MSG_DATA and push.msg_data == b"hello" and push.from_user_id == alice_id
    assert push.server_msg_id == 1 and push.from_nick_name == "Alice"
    assert alice2.only(Cmd.MSG_DATA).client_msg_id == ack.client_msg_id
    assert alice.frames() == []


def test_sender_is_the_authenticated_user_whatever_the_frame_says(pair):
    node, alice, bob, alice_id, bob_id = pair
    ack = alice.send_text(bob_id, "forged?", from_user_id=bob_id, from_nick_name="Bobby")
    assert ack.from_user_id == alice_id
    push = bob.only(Cmd.MSG_DATA)
    assert push.from_user_id == alice_id and push.from_nick_name == "Alice"


def test_resend_returns_same_id_and_stores_nothing(pair):
    node, alice, bob, alice_id, bob_id = pair
    first = alice.send_text(bob_id, "once", client_msg_id="c-1")
    alice.close()
    bob.close()
    node.advance(3 * 24 * 3600, step=3600)
    alice, bob = node.connect(), node.connect()
    alice.login("alice")
    bob.login("bobby")
    again = alice.send_text(bob_id, "once", client_msg_id="c-1")
    assert again.server_msg_id == first.server_msg_id == 1
    assert bob.frames() == []
    assert alice.send_text(bob_id, "next").server_msg_id == 2
    assert node.result(node.store.latest_seq(f"p:{alice_id}:{bob_id}")) == 2


def test_seq_is_dense_per_conversation(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice = node.connect()
    alice.login("alice")
    assert [alice.send_text(ids[1], str(i)).server_msg_id for i in range(3)] == [1, 2, 3]
    assert alice.send_text(ids[2], "x").server_msg_id == 1


@pytest.mark.parametrize(
    ("msg_type", "data", "code"),
    [
        (1, b"x" * (12 * 1024 + 1), ErrorCode.MSG_TOO_LARGE),
        (1, b"", ErrorCode.INVALID_MSG),
        (1, b"\xff\xfe", ErrorCode.INVALID_MSG),
        (2, b"not json", ErrorCode.INVALID_MSG),
        (3, b"[1, 2]", ErrorCode.INVALID_MSG),
        (6, json.dumps({"latitude": "north"}).encode(), ErrorCode.INVALID_MSG),
        (9, b"{}", ErrorCode.INVALID_MSG),
        (42, b"x", ErrorCode.INVALID_MSG),
    ],
)
def test_bad_content_is_refused_with_a_reason(pair, msg_type, data, code):
    node, alice, bob, alice_id, bob_id = pair
    seq = alice.send(
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=bob_id, client_msg_id="c", msg_type=msg_type, session_type=1, msg_data=data),
    )
    ((cmd, rseq, ack),) = alice.frames()
    assert (cmd, rseq, ack.res_code, ack.error_code) == (Cmd.MSG_DATA_ACK, seq, 0, code)
    assert bob.frames() == []


def test_text_at_the_limit_and_json_bodies_are_accepted(pair):
    node, alice, bob, alice_id, bob_id = pair
    assert alice.send_text(bob_id, "é" * (6 * 1024)).res_code == 1
    file_body = json.dumps({"md5": "0" * 32, "size": 3, "url": "https://x/f", "displayName": "f"}).encode()
    seq = alice.send(
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=bob_id, client_msg_id="f", msg_type=2, session_type=1, msg_data=file_body),
    )
    assert alice.frames()[0][1] == seq


def test_message_to_unknown_user_or_self_fails(pair):
    node, alice, bob, alice_id, bob_id = pair
    for to, code in [(999, ErrorCode.USER_NOT_EXIST), (alice_id, ErrorCode.INVALID_ARGUMENT)]:
        alice.send(
            Cmd.MSG_DATA, pb.CIMMsgData(to_session_id=to, client_msg_id="c", msg_type=1, session_type=1, msg_data=b"x")
        )
        assert alice.only(Cmd.MSG_DATA_ACK).error_code == code


def test_offline_recipient_finds_message_in_session_list(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    for text in ("one", "two", "three"):
        alice.send_text(bob_id, text)
    bob = node.connect()
    bob.login("bobby")
    bob.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    rsp = bob.only(Cmd.LIST_RECENT_CONTACT_SESSION_RSP)
    assert rsp.unread_counts == 3
    (entry,) = rsp.contact_session_list
    assert (entry.session_id, entry.unread_cnt, entry.server_msg_id, entry.msg_data) == (alice_id, 3, 3, b"three")
    assert entry.msg_status == pb.kCIM_MSG_STATUS_UNREAD
    alice.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    mine = alice.only(Cmd.LIST_RECENT_CONTACT_SESSION_RSP)
    assert mine.unread_counts == 0 and mine.contact_session_list[0].session_id == bob_id


def test_read_ack_moves_forward_only_and_notifies(pair):
    node, alice, bob, alice_id, bob_id = pair
    bob2 = node.connect()
    bob2.login("bobby")
    for i in range(5):
        alice.send_text(bob_id, f"m{i}")
    bob.frames(), bob2.frames()
    bob.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=alice_id, msg_id=3, session_type=1))
    assert bob.frames() == []
    note = alice.only(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.session_id, note.msg_id) == (bob_id, bob_id, 3)
    other = bob2.only(Cmd.MSG_READ_NOTIFY)
    assert (other.user_id, other.session_id, other.msg_id) == (bob_id, alice_id, 3)
    bob.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=alice_id, msg_id=2, session_type=1))
    assert alice.frames() == [] and bob2.frames() == []
    bob.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    assert bob.only(Cmd.LIST_RECENT_CONTACT_SESSION_RSP).contact_session_list[0].unread_cnt == 2
    bob.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=alice_id, msg_id=99, session_type=1))
    assert alice.only(Cmd.MSG_READ_NOTIFY).msg_id == 5


def test_read_ack_for_a_conversation_one_is_not_in(pair):
    node, alice, bob, alice_id, bob_id = pair
    carol_id = node.user("carol")
    bob.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=carol_id, msg_id=1, session_type=1))
    err = bob.only(Cmd.ERROR_RSP)
    assert err.error_code == ErrorCode.NOT_FOUND and err.cmd_id == Cmd.MSG_READ_ACK


def test_history_paging_boundaries(pair):
    node, alice, bob, alice_id, bob_id = pair
    for i in range(1, 131):
        alice.send_text(bob_id, f"m{i}")

    def page(end: int, limit: int) -> list[int]:
        bob.frames()
        bob.send(
            Cmd.LIST_MSG_REQ,
            pb.CIMGetMsgListReq(session_type=1, session_id=alice_id, end_msg_id=end, limit_count=limit),
        )
        rsp = bob.only(Cmd.LIST_MSG_RSP)
        return [m.server_msg_id for m in rsp.msg_list]

    assert page(0, 10) == list(range(121, 131))
    assert page(121, 10) == list(range(111, 121))
    assert page(5, 10) == [1, 2, 3, 4]
    assert page(1, 10) == []
    assert page(0, 0) == list(range(111, 131))  # 0 means the default page of 20
    assert page(0, 500) == list(range(31, 131))  # more than 100 is cut to 100


def test_history_status_shows_what_the_peer_read(pair):
    node, alice, bob, alice_id, bob_id = pair
    for i in range(3):
        alice.send_text(bob_id, f"m{i}")
    bob.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=alice_id, msg_id=2, session_type=1))
    alice.frames()
    alice.send(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=1, session_id=bob_id, limit_count=10))
    statuses = [m.msg_status for m in alice.only(Cmd.LIST_MSG_RSP).msg_list]
    assert statuses == [pb.kCIM_MSG_STATUS_READ, pb.kCIM_MSG_STATUS_READ, pb.kCIM_MSG_STATUS_SENT]


def test_latest_and_by_id(pair):
    node, alice, bob, alice_id, bob_id = pair
    for i in range(4):
        alice.send_text(bob_id, f"m{i}")
    bob.frames()
    bob.send(Cmd.MSG_GET_LATEST_MSG_ID_REQ, pb.CIMGetLatestMsgIdReq(session_type=1, session_id=alice_id))
    assert bob.only(Cmd.MSG_GET_LATEST_MSG_ID_RSP).latest_msg_id == "4"
    bob.send(
        Cmd.MSG_GET_BY_MSG_ID_REQ, pb.CIMGetMsgByIdReq(session_type=1, session_id=alice_id, msg_id_list=["3", "1", "9"])
    )
    assert [m.msg_data for m in bob.only(Cmd.MSG_GET_BY_MSG_ID_RSP).msg_list] == [b"m0", b"m2"]
    bob.send(
        Cmd.MSG_GET_BY_MSG_ID_REQ, pb.CIMGetMsgByIdReq(session_type=1, session_id=alice_id, msg_id_list=["1"] * 21)
    )
    assert bob.only(Cmd.ERROR_RSP).error_code == ErrorCode.INVALID_ARGUMENT
    bob.send(Cmd.MSG_GET_BY_MSG_ID_REQ, pb.CIMGetMsgByIdReq(session_type=1, session_id=alice_id, msg_id_list=["x"]))
    assert bob.only(Cmd.ERROR_RSP).error_code == ErrorCode.INVALID_ARGUMENT


def test_user_list(pair):
    """CIM v1's user list: the caller's recent contacts (and friends), not every account."""
    node, alice, bob, alice_id, bob_id = pair
    alice.send(Cmd.FRIEND_QUERY_USER_LIST_REQ, pb.CIMFriendQueryUserListReq())
    assert list(alice.only(Cmd.FRIEND_QUERY_USER_LIST_RSP).user_info_list) == []
    bob.send_text(alice_id, "hello")
    alice.frames()
    alice.send(Cmd.FRIEND_QUERY_USER_LIST_REQ, pb.CIMFriendQueryUserListReq())
    rsp = alice.only(Cmd.FRIEND_QUERY_USER_LIST_RSP)
    assert [(u.user_id, u.nick_name) for u in rsp.user_info_list] == [(bob_id, "Bobby")]


# -- delivery acks and redelivery


def test_unacknowledged_push_is_resent_twice_then_given_up_and_the_connection_stays(pair):
    node, alice, bob, alice_id, bob_id = pair
    alice.send_text(bob_id, "first")
    ((_, seq, first),) = bob.frames()
    bob.ack_delivery(first, seq)  # bob's client acknowledges deliveries
    alice.send_text(bob_id, "are you there?")
    second = bob.only(Cmd.MSG_DATA)
    for _ in range(2):
        node.advance(16)
        bob.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
        again = [f for f in bob.frames() if f[0] == Cmd.MSG_DATA]
        assert [f[2].server_msg_id for f in again] == [second.server_msg_id]
    for _ in range(3):
        node.advance(16)
        bob.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
        assert [f[0] for f in bob.frames()] == [Cmd.LOGIN_HEARTBEAT]
    assert not bob.closed and bob.protocol.session.unacked_count == 0


def test_a_client_that_never_acks_is_neither_resent_to_nor_disconnected(pair):
    node, alice, bob, alice_id, bob_id = pair
    for i in range(3):
        alice.send_text(bob_id, f"m{i}")
    assert [f[0] for f in bob.frames()] == [Cmd.MSG_DATA] * 3
    for _ in range(6):
        node.advance(16)
        bob.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
        assert [f[0] for f in bob.frames()] == [Cmd.LOGIN_HEARTBEAT]
    assert not bob.closed and bob.protocol.session.unacked_count == 0
    # what it may have missed is in storage: the next login catches up
    bob.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    (entry,) = bob.only(Cmd.LIST_RECENT_CONTACT_SESSION_RSP).contact_session_list
    assert (entry.server_msg_id, entry.unread_cnt) == (3, 3)


def test_a_delivery_ack_with_server_msg_id_0_matches_by_client_msg_id(pair):
    """The original Go client acks with server_msg_id 0 (hard-coded), the other fields copied
    from the push; the original server matched on client_msg_id alone."""
    node, alice, bob, alice_id, bob_id = pair
    alice.send_text(bob_id, "hello", client_msg_id="same-id")
    ((_, seq, push),) = bob.frames()
    bob.send(
        Cmd.MSG_DATA_ACK,
        pb.CIMMsgDataAck(
            from_user_id=push.from_user_id,
            to_session_id=push.to_session_id,
            client_msg_id=push.client_msg_id,
            session_type=1,
            res_code=1,
        ),
        seq=seq,
    )
    assert bob.protocol.session.unacked_count == 0
    node.advance(40)
    assert bob.frames() == [] and not bob.closed
    conv = f"p:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
    node.advance(1)
    assert node.result(node.store.delivered_seq(bob_id, conv)) == 1


def test_an_ack_by_client_msg_id_clears_only_its_own_conversation(pair):
    """Client ids are the sender's: two senders may use the same one (a counter)."""
    node, alice, bob, alice_id, bob_id = pair
    carol_id = node.user("carol")
    carol = node.connect()
    carol.login("carol")
    alice.send_text(bob_id, "from alice", client_msg_id="1")
    carol.send_text(bob_id, "from carol", client_msg_id="1")
    pushes = bob.frames()
    assert len(pushes) == 2
    ack = pb.CIMMsgDataAck(from_user_id=carol_id, to_session_id=bob_id, client_msg_id="1", session_type=1)
    bob.send(Cmd.MSG_DATA_ACK, ack, seq=pushes[1][1])
    assert bob.protocol.session.unacked_count == 1
    node.advance(16)
    bob.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
    again = [f[2] for f in bob.frames() if f[0] == Cmd.MSG_DATA]
    assert [(m.from_user_id, m.msg_data) for m in again] == [(alice_id, b"from alice")]


def test_a_message_without_client_msg_id_gets_one_from_the_server(pair):
    node, alice, bob, alice_id, bob_id = pair
    msg = pb.CIMMsgData(to_session_id=bob_id, msg_type=1, session_type=1, msg_data=b"no id")
    seq = alice.send(Cmd.MSG_DATA, msg)
    ((cmd, ack_seq, ack),) = alice.frames()
    assert (cmd, ack_seq, ack.res_code, ack.server_msg_id) == (Cmd.MSG_DATA_ACK, seq, 1, 1)
    assert len(ack.client_msg_id) == 36 and not ack.error_code
    assert bob.only(Cmd.MSG_DATA).client_msg_id == ack.client_msg_id
    alice.send(Cmd.MSG_DATA, msg)  # the same again: a new message (nothing to recognise it by)
    assert [f[2].server_msg_id for f in alice.frames()] == [2]


def test_delivery_ack_stops_redelivery_and_is_recorded(pair):
    node, alice, bob, alice_id, bob_id = pair
    alice.send_text(bob_id, "hi")
    ((cmd, seq, push),) = bob.frames()
    bob.ack_delivery(push, seq)
    node.advance(40)
    assert bob.frames() == [] and not bob.closed
    conv = f"p:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
    assert node.result(node.store.delivered_seq(bob_id, conv)) == 1


def test_push_seq_wraps_to_one(pair):
    node, alice, bob, alice_id, bob_id = pair
    bob.protocol.session._push_seq = 65533
    for i in range(3):
        alice.send_text(bob_id, f"m{i}")
    assert [seq for cmd, seq, _ in bob.frames()] == [65534, 1, 2]


# -- bad input


def test_unknown_command_and_malformed_body_get_errors_and_connection_lives(pair):
    node, alice, bob, alice_id, bob_id = pair
    alice.send_raw(encode_frame(0x0999, 7, b"whatever"))
    err = alice.only(Cmd.ERROR_RSP)
    assert (err.error_code, err.cmd_id) == (ErrorCode.UNKNOWN_COMMAND, 0x0999)
    alice.send_raw(encode_frame(Cmd.MSG_DATA, 8, b"\xff\xff\xff"))
    ((cmd, seq, err),) = alice.frames()
    assert seq == 8 and err.error_code == ErrorCode.MALFORMED_BODY
    alice.send_raw(encode_frame(Cmd.VOIP_BYE_REQ, 9, b""))  # served (calls): answered in its own type
    assert alice.only(Cmd.VOIP_BYE_RSP).error_code == ErrorCode.CALL_NOT_FOUND
    assert alice.send_text(bob_id, "still here").server_msg_id == 1


def test_oversized_or_short_frame_closes_only_that_connection(pair):
    node, alice, bob, alice_id, bob_id = pair
    alice.send_raw(encode_header(Cmd.MSG_DATA, 1, 10 * 1024 * 1024))
    assert alice.closed
    assert not node.core.router.is_online(alice_id)
    bob.send_raw(b"\x00\x00\x00\x05" + b"\x00" * 12)
    assert bob.closed
    carol = node.connect()
    node.user("carol")
    carol.login("carol")
    assert carol.send_text(alice_id, "ok").server_msg_id == 1


def test_frames_byte_by_byte_and_many_in_one_segment(pair):
    node, alice, bob, alice_id, bob_id = pair
    frame = encode_frame(
        Cmd.MSG_DATA,
        5,
        pb.CIMMsgData(
            to_session_id=bob_id, client_msg_id="b1", msg_type=1, session_type=1, msg_data=b"byte"
        ).SerializeToString(),
    )
    for i in range(len(frame)):
        alice.send_raw(frame[i : i + 1])
    assert alice.only(Cmd.MSG_DATA_ACK).server_msg_id == 1
    batch = b"".join(encode_frame(Cmd.LOGIN_HEARTBEAT, 100 + i, b"") for i in range(50))
    alice.send_raw(batch)
    assert [seq for _, seq, _ in alice.frames()] == list(range(100, 150))


def test_message_rate_limit():
    node = MemoryNode(**{"limits.messages_per_second": 1.0, "limits.message_burst": 3})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    codes = [alice.send_text(bob_id, str(i)).error_code for i in range(5)]
    assert codes == [0, 0, 0, ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]
    node.advance(2)
    assert alice.send_text(bob_id, "later").res_code == 1


def test_shutdown_tells_every_device(pair):
    node, alice, bob, alice_id, bob_id = pair
    node.core.stop()
    for conn in (alice, bob):
        assert conn.closed and conn.only(Cmd.KICKOUT_NOTIFY).reason_code == ErrorCode.SERVER_SHUTDOWN
