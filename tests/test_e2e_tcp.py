"""What users do, over real loopback sockets against a node with SQLite storage."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.errors import ErrorCode
from coffeechat.protocols.cim import Cmd, pb
from coffeechat.protocols.client import ServerError
from coffeechat.protocols.framing import encode_frame, encode_header


async def pair(live):
    alice_id = await live.register("alice")
    bob_id = await live.register("bobby")
    return alice_id, bob_id


@pytest_twisted.ensureDeferred
async def test_chat_offline_then_online(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice")
    acks = [await alice.send_message(bob_id, f"while you were out {i}") for i in range(3)]
    assert [a.server_msg_id for a in acks] == [1, 2, 3]

    bob = await live_node.login("bobby")
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
async def test_multi_device_delivery_and_sender_sync(live_node):
    alice_id, bob_id = await pair(live_node)
    alice_phone = await live_node.login("alice")
    alice_desktop = await live_node.login("alice")
    bob_phone = await live_node.login("bobby")
    bob_web = await live_node.login("bobby")
    ack = await alice_phone.send_message(bob_id, "to all your devices")
    for device in (bob_phone, bob_web, alice_desktop):
        _, _, push = await device.next_push(Cmd.MSG_DATA)
        assert push.client_msg_id == ack.client_msg_id and push.server_msg_id == ack.server_msg_id
    with pytest.raises(defer.TimeoutError):
        await alice_phone.next_push(Cmd.MSG_DATA, timeout=0.3)


@pytest_twisted.ensureDeferred
async def test_duplicate_resend_and_forged_sender(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice")
    bob = await live_node.login("bobby")
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
async def test_history_paging_and_unread_after_partial_reads(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice")
    sends = [alice.send_message(bob_id, f"m{i}") for i in range(1, 151)]
    acks = await defer.gatherResults(sends)
    assert sorted(a.server_msg_id for a in acks) == list(range(1, 151))

    bob = await live_node.login("bobby")
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
async def test_user_list_logout_and_token_relogin(live_node):
    alice_id, bob_id = await pair(live_node)
    alice = await live_node.login("alice")
    users = await alice.users()
    assert [(u.user_id, u.nick_name) for u in users.user_info_list] == [(alice_id, "Alice"), (bob_id, "Bobby")]
    token = alice.user_token
    rsp = await alice.logout()
    assert rsp.result_code == 200
    await alice.closed
    again = await live_node.connect()
    rsp = await again.login_token(alice_id, token)
    assert rsp.result_code == 200 and rsp.user_info.user_id == alice_id
    empty = await live_node.connect()
    rsp = await empty.login_token(alice_id, "")
    assert rsp.result_code == ErrorCode.LOGIN_INVALID_USER_TOKEN


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
