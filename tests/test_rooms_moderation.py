"""Moderation of chat-room messages: on the memory node, the keyword filter (refuse, replace, in
CUSTOM JSON) and the before-send callback answered by a real twisted.web resource in memory
(treq's StubTreq, as tests/test_moderation.py does) with allow / refuse / rewrite, fail-closed on
no answer, ``[moderation] rooms = false``, a held message not holding up the room, and rooms
without the moderation feature; then over real loopback sockets, a twisted.web app server
answering allow / refuse / rewrite and a callback that is down (fail-closed)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from standardwebhooks import Webhook
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from coffeechat.config import DEFAULT_FEATURES
from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb
from tests.conftest import node_config, start_node, stop_node
from tests.memory_node import MemoryNode
from tests.test_moderation import SECRET, URL, AppServer
from tests.test_rooms import MUTE, create, join, moderate, people, say

OK = pb.kCIM_ERR_SUCCESS
REFUSED, UNAVAILABLE = ErrorCode.MSG_REFUSED, ErrorCode.MODERATION_UNAVAILABLE


def moderated(**settings) -> tuple[MemoryNode, AppServer | None, StubTreq | None]:
    node = MemoryNode(**{f"moderation.{k}": v for k, v in settings.items()})
    server = stub = None
    if "callback_url" in settings:
        server = AppServer()
        stub = StubTreq(server)
        node.core.feature("moderation").http = stub
    return node, server, stub


def callback_node(**settings):
    return moderated(callback_url=URL, secret=SECRET, **settings)


def a_room(node):
    """alice (the owner) and bob in one room: (room_id, alice, bob)."""
    alice, bob = people(node, "alice", "bobby")
    room_id = create(alice)
    join(alice, room_id)
    join(bob, room_id)
    alice.frames()
    bob.frames()
    return room_id, alice, bob


def rsps(frames) -> dict[int, pb.CIMRoomMsgRsp]:
    return {seq: body for cmd, seq, body in frames if cmd == Cmd.ROOM_MSG_RSP}


def delivered(frames) -> list[bytes]:
    return [m.msg_data for cmd, _, body in frames if cmd == Cmd.ROOM_MSG_NOTIFY for m in body.msgs]


def sent(conn, room_id, text, **fields) -> pb.CIMRoomMsgRsp:
    seq = say(conn, room_id, text, **fields)
    return rsps(conn.frames())[seq]


# -- the keyword filter


def test_keyword_refused_in_a_room_with_msg_refused():
    node, _, _ = moderated(keywords=["badword"], keyword_action="refuse")
    room_id, alice, bob = a_room(node)
    rsp = sent(bob, room_id, "a BADWORD here", client_msg_id="c-1")
    assert (rsp.result_code, rsp.result_string) == (REFUSED, "the message contains a blocked word")
    assert (rsp.room_id, rsp.client_msg_id, rsp.msg_id) == (room_id, "c-1", 0)
    assert delivered(alice.frames()) == []
    assert sent(bob, room_id, "fine").result_code == OK
    assert delivered(alice.frames()) == [b"fine"]


def test_keyword_masked_in_a_room_for_everyone_and_in_recent():
    node, _, _ = moderated(keywords=["badword", "坏词"])
    room_id, alice, bob = a_room(node)
    assert sent(bob, room_id, "a ｂａｄｗｏｒｄ and 坏词").result_code == OK
    assert delivered(alice.frames()) == [b"a ******* and **"]
    (carol,) = people(node, "carol")
    assert [m.msg_data for m in join(carol, room_id).recent] == [b"a ******* and **"]


def test_keyword_masked_in_a_rooms_custom_message():
    node, _, _ = moderated(keywords=["badword"])
    room_id, alice, bob = a_room(node)
    body = json.dumps({"description": "a badword", "n": 1})
    assert sent(bob, room_id, body, msg_type=100).result_code == OK
    assert json.loads(delivered(alice.frames())[0]) == {"description": "a *******", "n": 1}


# -- the callback


def test_callback_allow_gets_a_room_payload():
    node, server, _ = callback_node()
    room_id, alice, bob = a_room(node)
    rsp = sent(bob, room_id, "hello", client_msg_id="c-1")
    assert rsp.result_code == OK and rsp.msg_id > 0
    assert delivered(alice.frames()) == [b"hello"]
    (seen,) = server.seen
    assert seen["type"] == "message.before_send"
    assert seen["sender"] == {"user_id": bob.user_id, "name": "bobby", "nick": "Bobby"}
    assert seen["conversation"] == {"session_type": 0, "kind": "room", "to_id": room_id}
    assert (seen["msg_type"], seen["body"], seen["client_msg_id"]) == (1, "hello", "c-1")
    assert seen["mentions"] == [] and seen["at_all"] is False and seen["forwarded"] is False


def test_callback_refuse_answers_msg_refused_and_delivers_nothing():
    node, server, _ = callback_node()
    server.answer = {"action": "refuse", "reason": "no links, please"}
    room_id, alice, bob = a_room(node)
    rsp = sent(bob, room_id, "see http://spam.example", client_msg_id="c-2")
    assert (rsp.result_code, rsp.result_string, rsp.msg_id) == (REFUSED, "no links, please", 0)
    assert (rsp.room_id, rsp.client_msg_id) == (room_id, "c-2")
    assert delivered(alice.frames()) == []
    (carol,) = people(node, "carol")
    assert list(join(carol, room_id).recent) == []


def test_callback_rewrite_is_what_the_room_sees():
    node, server, _ = callback_node(keywords=["badword"])
    server.answer = {"action": "rewrite", "body": "hello [link removed]"}
    room_id, alice, bob = a_room(node)
    assert sent(bob, room_id, "a badword http://spam.example").result_code == OK
    assert delivered(alice.frames()) == [b"hello [link removed]"]
    assert server.seen[0]["body"] == "a ******* http://spam.example"  # the filter runs first


def test_a_bad_rewrite_follows_the_failure_policy():
    node, server, _ = callback_node(on_failure="refuse")
    server.answer = {"action": "rewrite", "body": ""}  # an empty text is not a valid body
    room_id, alice, bob = a_room(node)
    assert sent(bob, room_id, "hello").result_code == UNAVAILABLE
    assert delivered(alice.frames()) == []


def test_no_answer_fail_closed_answers_moderation_unavailable():
    node, server, _ = callback_node(timeout=1.0, on_failure="refuse")
    server.hold = True
    room_id, alice, bob = a_room(node)
    seq = say(bob, room_id, "hello")
    assert rsps(bob.frames()) == {}  # waiting for the app's server
    node.advance(1.1)
    frames = bob.frames()
    assert rsps(frames)[seq].result_code == UNAVAILABLE
    assert delivered(frames) == [] and delivered(alice.frames()) == []
    assert node.core.feature("rooms").held == 0


def test_no_answer_fail_open_delivers_it():
    node, server, _ = callback_node(timeout=1.0, on_failure="allow")
    server.hold = True
    room_id, alice, bob = a_room(node)
    seq = say(bob, room_id, "hello")
    node.advance(1.1)
    assert rsps(bob.frames())[seq].result_code == OK
    assert delivered(alice.frames()) == [b"hello"]


def test_a_held_message_does_not_hold_up_the_room_and_comes_when_allowed():
    node, server, stub = callback_node(timeout=5.0, msg_types=["custom"])  # only custom messages are asked
    server.hold = True
    room_id, alice, bob = a_room(node)
    held = say(bob, room_id, '{"description": "poll"}', msg_type=100)
    later = say(bob, room_id, "after it")  # text: not asked
    node.advance(0)
    frames = bob.frames()
    assert rsps(frames)[later].result_code == OK and held not in rsps(frames)
    assert delivered(alice.frames()) == [b"after it"]
    assert node.core.feature("rooms").held == 1
    server.release(stub)
    node.advance(0)
    frames = bob.frames()
    first = rsps(frames)[held]
    assert first.result_code == OK
    assert delivered(alice.frames()) == [b'{"description": "poll"}']
    (carol,) = people(node, "carol")
    recent = join(carol, room_id).recent
    assert [m.msg_data for m in recent] == [b"after it", b'{"description": "poll"}']  # in delivery order
    assert recent[0].msg_id < recent[1].msg_id == first.msg_id  # its id is given when it is allowed


def test_a_connection_that_leaves_while_held_gets_room_not_joined():
    node, server, stub = callback_node(timeout=5.0)
    server.hold = True
    room_id, alice, bob = a_room(node)
    seq = say(bob, room_id, "hello")
    answer_seq = bob.send(Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room_id))
    server.release(stub)
    node.advance(0)
    frames = bob.frames()
    assert [s for _, s, _ in frames if s == answer_seq]
    assert rsps(frames)[seq].result_code == ErrorCode.ROOM_NOT_JOINED
    assert delivered(alice.frames()) == []


def test_a_user_muted_while_held_gets_room_muted():
    node, server, stub = callback_node(timeout=5.0)
    server.hold = True
    room_id, alice, bob = a_room(node)
    seq = say(bob, room_id, "hello")
    assert moderate(alice, room_id, bob.user_id, MUTE).result_code == OK
    server.release(stub)
    node.advance(0)
    assert rsps(bob.frames())[seq].result_code == ErrorCode.ROOM_MUTED
    assert delivered(alice.frames()) == []


def test_rooms_false_keeps_the_callback_off_rooms_but_not_the_filter():
    node, server, _ = callback_node(rooms=False, keywords=["badword"])
    room_id, alice, bob = a_room(node)
    assert sent(bob, room_id, "a badword").result_code == OK
    assert delivered(alice.frames()) == [b"a *******"]
    assert server.seen == []


def test_unconfigured_moderation_puts_nothing_on_the_room_path():
    node = MemoryNode()
    assert node.core.feature("rooms").screen is None
    room_id, alice, bob = a_room(node)
    assert sent(bob, room_id, "a badword").result_code == OK


def test_rooms_work_without_the_moderation_feature():
    features = [f for f in DEFAULT_FEATURES if f != "moderation"]
    node = MemoryNode(**{"features.enabled": features})
    assert "moderation" not in node.core.features
    room_id, alice, bob = a_room(node)
    assert sent(bob, room_id, "a badword").result_code == OK
    assert delivered(alice.frames()) == [b"a badword"]


# -- over real sockets: a twisted.web app server on loopback


class RoomAppServer(Resource):
    """The app's endpoint: verifies the signature, refuses "please refuse", rewrites "please
    rewrite", allows the rest."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.webhook = Webhook(SECRET)
        self.seen: list[dict] = []

    def render_POST(self, request):
        headers = {k.decode(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        event = self.webhook.verify(request.content.read(), headers)
        self.seen.append(event)
        text = event["body"]
        if "please refuse" in text:
            answer = {"action": "refuse", "reason": "not in this room"}
        elif "please rewrite" in text:
            answer = {"action": "rewrite", "body": text.replace("please rewrite", "[rewritten]")}
        else:
            answer = {"action": "allow"}
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(answer).encode()


async def room_of_two(live):
    await live.register("alice")
    await live.register("bobby")
    alice = await live.login("alice")
    bob = await live.login("bobby", transport="ws-json")
    rsp = await alice.room_create("Live")
    room_id = rsp.room.room_id
    assert (await alice.room_join(room_id)).result_code == OK
    assert (await bob.room_join(room_id)).result_code == OK
    return room_id, alice, bob


async def next_room_msg(client) -> pb.CIMRoomMsg:
    _, _, notify = await client.next_push(Cmd.ROOM_MSG_NOTIFY)
    return notify.msgs[0]


@pytest_twisted.ensureDeferred
async def test_e2e_room_messages_allowed_refused_rewritten(tmp_path):
    server = RoomAppServer()
    port = reactor.listenTCP(0, Site(server), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/moderate"
    live = await start_node(node_config(tmp_path, **{"moderation.callback_url": url, "moderation.secret": SECRET}))
    try:
        room_id, alice, bob = await room_of_two(live)
        rsp = await bob.room_send(room_id, "hello room")
        assert rsp.result_code == OK and rsp.msg_id > 0
        assert (await next_room_msg(alice)).msg_data == b"hello room"
        rsp = await bob.room_send(room_id, "please refuse this")
        assert (rsp.result_code, rsp.result_string) == (REFUSED, "not in this room")
        rsp = await bob.room_send(room_id, "please rewrite this")
        assert rsp.result_code == OK
        assert (await next_room_msg(alice)).msg_data == b"[rewritten] this"
        assert [e["conversation"]["kind"] for e in server.seen] == ["room"] * 3
    finally:
        await stop_node(live)
        await port.stopListening()


@pytest.mark.parametrize("policy", ["refuse", "allow"])
@pytest_twisted.ensureDeferred
async def test_e2e_callback_down(tmp_path, policy):
    port = reactor.listenTCP(0, Site(RoomAppServer()), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/moderate"
    await port.stopListening()  # nobody listens there now: connections are refused
    overrides = {"moderation.callback_url": url, "moderation.secret": SECRET, "moderation.on_failure": policy}
    live = await start_node(node_config(tmp_path, **overrides))
    try:
        room_id, alice, bob = await room_of_two(live)
        rsp = await bob.room_send(room_id, "hello room")
        if policy == "refuse":
            assert (rsp.result_code, rsp.msg_id) == (UNAVAILABLE, 0)
        else:
            assert rsp.result_code == OK
            assert (await next_room_msg(alice)).msg_data == b"hello room"
    finally:
        await stop_node(live)
