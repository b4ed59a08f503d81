"""What users do, over real loopback sockets against a node with SQLite storage.

The scenarios run over each transport of the one chat core (``transport`` fixture: TCP,
WebSocket binary, WebSocket JSON); mixed pairs check that the transports meet in the middle.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.errors import ErrorCode
from coffeechat.protocols.client import ServerError
from coffeechat.protocols.framing import encode_frame, encode_header
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


async def pair(live):
    alice_id = await live.register("alice")
    bob_id = await live.register("bobby")
    return alice_id, bob_id


@pytest_twisted.ensureDeferred
async def test_chat_offline_then_online(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport=transport)
    acks = [await alice.send_message(bob_id, f"while you were out {i}") for i in range(3)]
    assert [a.server_msg_id for a in acks] == [1, 2, 3]

    bob = await live_node.login("bobby", transport=transport)
    sessions = await bob.sessions()
    assert sessions.unread_counts == 3
    (entry,) = sessions.contact_session_list
    assert (entry.session_id, entry.unread_cnt, entry.msg_data) == (alice_id, 3, b"while you were out 2")
    history = await bob.history(alice_id)
    assert [m.msg_data for m in history.msg_list] == [f"while you were out {i}".encode() for i in range(3)]

    ack = await alice.send_message(bob_id, "now you are here")
    cmd, _, push = await bob.next_push(Cmd.MSG_DATA)
    assert (push.server_msg_id, push.from_user_id, push.msg_data) == (4, alice_id, b"now you are here")
    assert ack.server_msg_id == 4


@pytest_twisted.ensureDeferred
async def test_multi_device_delivery_and_sender_sync(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    alice_phone = await live_node.login("alice", transport=transport)
    alice_desktop = await live_node.login("alice", transport=transport)
    bob_phone = await live_node.login("bobby", transport=transport)
    bob_web = await live_node.login("bobby", transport=transport)
    ack = await alice_phone.send_message(bob_id, "to all your devices")
    for device in (bob_phone, bob_web, alice_desktop):
        _, _, push = await device.next_push(Cmd.MSG_DATA)
        assert push.client_msg_id == ack.client_msg_id and push.server_msg_id == ack.server_msg_id
    with pytest.raises(defer.TimeoutError):
        await alice_phone.next_push(Cmd.MSG_DATA, timeout=0.3)


@pytest_twisted.ensureDeferred
async def test_duplicate_resend_and_forged_sender(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    first = await alice.send_message(bob_id, "hello", client_msg_id="same-uuid")
    await bob.next_push(Cmd.MSG_DATA)
    again = await alice.send_message(bob_id, "hello", client_msg_id="same-uuid")
    assert again.server_msg_id == first.server_msg_id == 1
    with pytest.raises(defer.TimeoutError):
        await bob.next_push(Cmd.MSG_DATA, timeout=0.3)

    forged = pb.CIMMsgData(
        from_user_id=bob_id,
        from_nick_name="Bobby",
        to_session_id=bob_id,
        client_msg_id="forged",
        msg_type=1,
        session_type=1,
        msg_data=b"I am bob",
    )
    ack = await alice.request(Cmd.MSG_DATA, forged)
    assert ack.res_code == 1 and ack.from_user_id == alice_id
    _, _, push = await bob.next_push(Cmd.MSG_DATA)
    assert (push.from_user_id, push.from_nick_name) == (alice_id, "Alice")
    history = await bob.history(alice_id)
    assert [m.from_user_id for m in history.msg_list] == [alice_id, alice_id]


@pytest_twisted.ensureDeferred
async def test_history_paging_and_unread_after_partial_reads(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport=transport)
    sends = [alice.send_message(bob_id, f"m{i}") for i in range(1, 151)]
    acks = await defer.gatherResults(sends)
    assert sorted(a.server_msg_id for a in acks) == list(range(1, 151))

    bob = await live_node.login("bobby", transport=transport)
    page = await bob.history(alice_id, end_msg_id=0, limit=100)
    assert [m.server_msg_id for m in page.msg_list] == list(range(51, 151))
    page = await bob.history(alice_id, end_msg_id=51, limit=100)
    assert [m.server_msg_id for m in page.msg_list] == list(range(1, 51))
    page = await bob.history(alice_id, end_msg_id=1, limit=100)
    assert list(page.msg_list) == []
    page = await bob.history(alice_id, end_msg_id=0, limit=0)
    assert len(page.msg_list) == 20
    page = await bob.history(alice_id, end_msg_id=0, limit=1000)
    assert len(page.msg_list) == 100

    bob.read_ack(alice_id, 40)
    _, _, note = await alice.next_push(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.msg_id) == (bob_id, 40)
    assert (await bob.sessions()).contact_session_list[0].unread_cnt == 110
    bob.read_ack(alice_id, 10)  # never backwards
    bob.read_ack(alice_id, 149)
    _, _, note = await alice.next_push(Cmd.MSG_READ_NOTIFY)
    assert note.msg_id == 149
    sessions = await bob.sessions()
    assert sessions.unread_counts == 1 and sessions.contact_session_list[0].unread_cnt == 1
    latest = await bob.latest_msg_id(alice_id)
    assert latest.latest_msg_id == "150"
    by_id = await bob.messages_by_id(alice_id, [150, 1])
    assert [m.msg_data for m in by_id.msg_list] == [b"m1", b"m150"]


@pytest_twisted.ensureDeferred
async def test_user_list_logout_and_token_relogin(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport=transport)
    # CIM v1's user list holds the caller's contacts (docs/directory.md), not every account
    assert (await alice.users()).user_info_list == []
    await alice.send_message(bob_id, "hi")
    users = await alice.users()
    assert [(u.user_id, u.nick_name) for u in users.user_info_list] == [(bob_id, "Bobby")]
    token = alice.user_token
    rsp = await alice.logout()
    assert rsp.result_code == 200
    await alice.closed
    again = await live_node.connect(transport)
    rsp = await again.login_token(alice_id, token)
    assert rsp.result_code == 200 and rsp.user_info.user_id == alice_id
    empty = await live_node.connect(transport)
    rsp = await empty.login_token(alice_id, "")
    assert rsp.result_code == ErrorCode.LOGIN_INVALID_USER_TOKEN


@pytest_twisted.ensureDeferred
async def test_commands_before_login_unknown_commands_and_heartbeats(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    client = await live_node.connect(transport)
    with pytest.raises(ServerError) as err:
        await client.sessions()
    assert err.value.code == ErrorCode.NOT_LOGGED_IN
    rsp = await client.login_password("alice", "0" * 32)
    assert rsp.result_code == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    alice = await live_node.login("alice", transport=transport)
    with pytest.raises(ServerError) as err:
        await alice.request(0x0999, pb.CIMHeartBeat())
    assert (err.value.code, err.value.cmd) == (ErrorCode.UNKNOWN_COMMAND, 0x0999)
    bye = await alice.request(Cmd.VOIP_BYE_REQ, pb.CIMVoipByeReq())  # no call: answered, not an error frame
    assert bye.error_code == ErrorCode.CALL_NOT_FOUND
    rsp = await alice.request(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name="alice", user_pwd="0" * 32))
    assert rsp.result_code == ErrorCode.ALREADY_LOGGED_IN
    beats = [alice.heartbeat() for _ in range(200)]
    assert len(await defer.gatherResults(beats)) == 200
    ack = await alice.send_message(bob_id, "still here")
    assert ack.server_msg_id == 1


@pytest_twisted.ensureDeferred
async def test_refused_send_is_acked_with_the_reason(live_node, transport):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport=transport)
    ack = await alice.send_message(alice_id, "to myself")
    assert (ack.res_code, ack.error_code) == (pb.kCIM_RES_CODE_UNKNOWN, ErrorCode.INVALID_ARGUMENT)
    ack = await alice.send_message(9999, "to nobody")
    assert ack.error_code == ErrorCode.USER_NOT_EXIST and ack.error_msg


# -- transports meet


@pytest_twisted.ensureDeferred
async def test_tcp_user_and_json_user_chat(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport="tcp")
    bob = await live_node.login("bobby", transport="ws-json")

    ack = await alice.send_message(bob_id, "hello from TCP ☕")
    _, _, push = await bob.next_push(Cmd.MSG_DATA)
    assert (push.from_user_id, push.server_msg_id) == (alice_id, ack.server_msg_id)
    assert push.msg_data.decode() == "hello from TCP ☕"
    bob.read_ack(alice_id, 1)
    _, _, note = await alice.next_push(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.session_id, note.msg_id) == (bob_id, bob_id, 1)

    image = json.dumps({"url": "https://example.com/a.png", "name": "ünïcode"}).encode()
    ack = await bob.send_message(alice_id, image, msg_type=pb.kCIM_MSG_TYPE_IMAGE)
    assert ack.res_code == pb.kCIM_RES_CODE_OK, ack
    _, _, push = await alice.next_push(Cmd.MSG_DATA)
    assert (push.from_user_id, push.from_nick_name, push.msg_type, push.msg_data) == (
        bob_id,
        "Bobby",
        pb.kCIM_MSG_TYPE_IMAGE,
        image,
    )
    alice.read_ack(bob_id, 2)
    _, _, note = await bob.next_push(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.msg_id) == (alice_id, 2)

    for me, peer_id in ((alice, bob_id), (bob, alice_id)):
        sessions = await me.sessions()
        (entry,) = sessions.contact_session_list
        assert (entry.session_id, entry.unread_cnt, entry.server_msg_id) == (peer_id, 0, 2)
        assert [m.msg_status for m in (await me.history(peer_id)).msg_list] == [pb.kCIM_MSG_STATUS_READ] * 2


@pytest.mark.parametrize("ws", ["ws-binary", "ws-json"])
@pytest_twisted.ensureDeferred
async def test_one_user_on_tcp_and_websocket_gets_everything_on_both(live_node, ws):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport="tcp")
    bob_tcp = await live_node.login("bobby", transport="tcp")
    bob_ws = await live_node.login("bobby", transport=ws)
    both = (bob_tcp, bob_ws)

    ack = await alice.send_message(bob_id, "delivered twice")
    for device in both:
        _, _, push = await device.next_push(Cmd.MSG_DATA)
        assert (push.server_msg_id, push.msg_data) == (ack.server_msg_id, b"delivered twice")

    bob_ws.read_ack(alice_id, 1)  # read on one device: the peer and the other device hear of it
    _, _, note = await bob_tcp.next_push(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.session_id, note.msg_id) == (bob_id, alice_id, 1)
    _, _, note = await alice.next_push(Cmd.MSG_READ_NOTIFY)
    assert (note.user_id, note.msg_id) == (bob_id, 1)

    for sender, other in ((bob_tcp, bob_ws), (bob_ws, bob_tcp)):  # each device syncs the other's sends
        ack = await sender.send_message(alice_id, "sent from one device")
        _, _, push = await other.next_push(Cmd.MSG_DATA)
        assert (push.from_user_id, push.client_msg_id) == (bob_id, ack.client_msg_id)
        assert push.server_msg_id == ack.server_msg_id
        _, _, push = await alice.next_push(Cmd.MSG_DATA)
        assert push.server_msg_id == ack.server_msg_id

    alice.read_ack(bob_id, 3)
    for device in both:
        _, _, note = await device.next_push(Cmd.MSG_READ_NOTIFY)
        assert (note.user_id, note.msg_id) == (alice_id, 3)

    for device in both:
        assert not device.pushes
        with pytest.raises(defer.TimeoutError):
            await device.next_push(timeout=0.2)


# -- framing


@pytest_twisted.ensureDeferred
async def test_split_and_coalesced_frames(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice")
    body = pb.CIMMsgData(to_session_id=bob_id, client_msg_id="slow", msg_type=1, session_type=1, msg_data=b"byte")
    frame = encode_frame(Cmd.MSG_DATA, 4242, body.SerializeToString())
    waiter = alice.next_push(None, timeout=5)  # the ack carries a seq the client did not issue itself
    for i in range(len(frame)):
        alice.send_raw(frame[i : i + 1])
        await task.deferLater(reactor, 0, lambda: None)
    cmd, seq, ack = await waiter
    assert (cmd, seq, ack.server_msg_id) == (Cmd.MSG_DATA_ACK, 4242, 1)

    beats = [alice.heartbeat() for _ in range(200)]
    assert len(await defer.gatherResults(beats)) == 200


@pytest.mark.parametrize("ws", ["ws-binary", "ws-json"])
@pytest_twisted.ensureDeferred
async def test_websocket_fragmented_message_is_one_frame(live_node, ws):
    """The WebSocket equivalent of split frames: one frame in many continuation fragments."""
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice", transport=ws)
    body = pb.CIMMsgData(to_session_id=bob_id, client_msg_id="slow", msg_type=1, session_type=1, msg_data=b"byte")
    if ws == "ws-binary":
        message = encode_frame(Cmd.MSG_DATA, 4242, body.SerializeToString())
    else:
        fields = {"toSessionId": bob_id, "clientMsgId": "slow", "msgType": 1, "sessionType": "kCIM_SESSION_TYPE_SINGLE"}
        message = json.dumps({"cmd": "MSG_DATA", "seq": 4242, "body": {**fields, "msgData": "Ynl0ZQ=="}}).encode()
    waiter = alice.next_push(None, timeout=5)
    alice.websocket.sendMessage(message, ws == "ws-binary", fragmentSize=3)
    cmd, seq, ack = await waiter
    assert (cmd, seq, ack.server_msg_id, ack.client_msg_id) == (Cmd.MSG_DATA_ACK, 4242, 1, "slow")


@pytest_twisted.ensureDeferred
async def test_bad_frames_close_only_the_offender(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice")
    bob = await live_node.login("bobby")

    with pytest.raises(ServerError) as err:
        await alice.request(0x0999, pb.CIMHeartBeat())
    assert err.value.code == ErrorCode.UNKNOWN_COMMAND
    garbage_body = encode_frame(Cmd.LIST_MSG_REQ, 77, b"\xff\xff\xff\xff")
    waiter = alice.next_push(Cmd.ERROR_RSP)
    alice.send_raw(garbage_body)
    _, seq, error = await waiter
    assert seq == 77 and error.error_code == ErrorCode.MALFORMED_BODY

    oversized = await live_node.login("bobby")
    oversized.send_raw(encode_header(Cmd.MSG_DATA, 1, 50 * 1024 * 1024))
    await oversized.closed
    garbage = await live_node.connect()
    garbage.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await garbage.closed

    ack = await alice.send_message(bob_id, "we are fine")
    assert ack.server_msg_id == 1
    _, _, push = await bob.next_push(Cmd.MSG_DATA)
    assert push.msg_data == b"we are fine"
