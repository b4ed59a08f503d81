"""Bots on the memory node: flagging, what a bot receives on its webhook (1:1 messages, group
mentions), answering as the bot, ROBOT messages, and the robot-session mark."""

from __future__ import annotations

import json

from twisted.internet import defer

from coffeechat.errors import ChatError, ErrorCode
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode
from .test_webhooks import SECRET, Receiver

HOOK = "http://127.0.0.1:9/bot"


def bot_node():
    node = MemoryNode()
    receiver = Receiver(node.clock)
    node.core.feature("webhooks").post = receiver
    return node, receiver


def flag(node, user_id, secret=SECRET):
    return node.result(defer.ensureDeferred(node.core.feature("bots").flag(user_id, HOOK, secret)))


def bot_send(node, key, body):
    bots = node.core.feature("bots")

    async def go():
        user = await bots.authenticate(key)
        return await bots.send(user, body)

    return node.result(defer.ensureDeferred(go()))


def test_a_bot_receives_its_messages_and_answers():
    node, receiver = bot_node()
    a, helper = node.user("alice"), node.user("helper")
    b = node.user("bobby")
    bot, key = flag(node, helper)
    assert key.startswith("bot_") and bot.endpoint.name == f"bot:{helper}"
    alice = node.connect()
    alice.login("alice")
    alice.send_text(helper, "hello bot")
    alice.send_text(b, "not for the bot")
    node.advance(2)
    posts = [(p[1], json.loads(p[2])) for p in receiver.posts]
    assert [(url, body["type"], body["data"]["msg_data"]) for url, body in posts] == [
        (HOOK, "message.created", "hello bot")
    ]
    answer = bot_send(node, key, {"to_session_id": a, "msg_data": "hi alice"})
    assert answer.created and answer.message.sender_id == helper
    frames = alice.frames()
    data = [f[2] for f in frames if f[0] == Cmd.MSG_DATA]
    assert [d.msg_data for d in data] == [b"hi alice"] and data[0].from_user_id == helper
    node.advance(2)
    assert len(receiver.posts) == 1  # the bot's own message is not sent back to it


def test_robot_messages_are_for_bots_and_validated():
    node, _ = bot_node()
    a, helper = node.user("alice"), node.user("helper")
    _, key = flag(node, helper)
    alice = node.connect()
    alice.login("alice")
    seq = alice.send(
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=helper, client_msg_id="r1", msg_type=7, session_type=1, msg_data=b"{}"),
    )
    acks = [f for f in alice.frames() if f[1] == seq]
    assert acks and acks[0][2].error_code == ErrorCode.ROBOT_ONLY
    sent = bot_send(node, key, {"to_session_id": a, "msg_type": 7, "msg_data": {"card": {"title": "Weather"}}})
    assert json.loads(sent.message.data) == {"card": {"title": "Weather"}}
    for bad in ("not json", "[1, 2]", "{" + '"x": "' + "y" * 20000 + '"}'):
        try:
            bot_send(node, key, {"to_session_id": a, "msg_type": 7, "msg_data": bad})
        except ChatError as e:
            assert e.code in (ErrorCode.INVALID_MSG, ErrorCode.MSG_TOO_LARGE)
        else:
            raise AssertionError(f"{bad[:20]!r} was accepted")


def test_a_wrong_key_is_refused():
    node, _ = bot_node()
    helper = node.user("helper")
    flag(node, helper)
    for key in ("", "bot_nope", "not-a-bot-key"):
        try:
            bot_send(node, key, {"to_session_id": 1, "msg_data": "x"})
        except ChatError as e:
            assert e.code == ErrorCode.BOT_KEY_INVALID
        else:
            raise AssertionError("accepted")


def test_group_mentions_reach_the_bot():
    node, receiver = bot_node()
    _a, b, helper = node.user("alice"), node.user("bobby"), node.user("helper")
    flag(node, helper)
    alice = node.connect()
    alice.login("alice")
    alice.send(Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="g", member_id_list=[b, helper]))
    rsp = [f[2] for f in alice.frames() if f[0] == Cmd.GROUP_CREATE_DEFAULT_RSP][0]
    gid = rsp.group_info.group_id
    for text, mentions in (("no mention", []), ("hey @helper", [helper]), ("@bobby only", [b])):
        alice.send(
            Cmd.MSG_DATA,
            pb.CIMMsgData(
                to_session_id=gid,
                client_msg_id=text,
                msg_type=1,
                session_type=2,
                msg_data=text.encode(),
                at_user_list=mentions,
            ),
        )
        alice.frames()
    node.advance(2)
    bodies = [json.loads(p[2]) for p in receiver.posts]
    assert [(b["data"]["msg_data"], b["data"]["mentioned"]) for b in bodies] == [("hey @helper", True)]


def test_the_session_list_marks_robot_sessions():
    node, _ = bot_node()
    _a, b, helper = node.user("alice"), node.user("bobby"), node.user("helper")
    flag(node, helper)
    alice = node.connect()
    alice.login("alice")
    alice.send_text(helper, "hi")
    alice.send_text(b, "hi")
    alice.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    rsp = alice.only(Cmd.LIST_RECENT_CONTACT_SESSION_RSP)
    marks = {s.session_id: s.is_robot_session for s in rsp.contact_session_list}
    assert marks == {helper: True, b: False}


def test_unflagging_drops_the_endpoint():
    node, receiver = bot_node()
    _a, helper = node.user("alice"), node.user("helper")
    flag(node, helper)
    bots = node.core.feature("bots")
    assert node.result(defer.ensureDeferred(bots.unflag(helper)))
    assert f"bot:{helper}" not in node.core.feature("webhooks").workers
    alice = node.connect()
    alice.login("alice")
    alice.send_text(helper, "hello?")
    node.advance(2)
    assert receiver.posts == []
