"""Moderation over real loopback sockets: a node (SQLite) whose before-send callback goes to a real
twisted.web server on loopback that verifies the Standard Webhooks signature with the
``standardwebhooks`` package and answers allow / refuse / rewrite, or sleeps past the node's
timeout; clients over TCP and WebSocket JSON; the keyword filter; a group message."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from standardwebhooks import Webhook
from twisted.internet import defer, reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import node_config, start_node, stop_node

SECRET = "whsec_" + "ZTJlLW1vZGVyYXRpb24tc2VjcmV0LTAxMjM0NTY3ODk="
SLEEP = 30.0  # how long the app's server sleeps on "please sleep": far past the node's timeout
GROUP = pb.kCIM_SESSION_TYPE_GROUP


class AppServer(Resource):
    """The app's moderation endpoint, as an app developer would write it: verify, then decide by
    the message's body."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.webhook = Webhook(SECRET)
        self.seen: list[dict] = []
        self.bad_signatures = 0
        self.sleeping: list = []
        self.ports: list[int] = []  # the client port of each request: connections reused or not

    def render_POST(self, request):
        body = request.content.read()
        headers = {k.decode(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        try:
            event = self.webhook.verify(body, headers)
        except Exception:
            self.bad_signatures += 1
            request.setResponseCode(401)
            return b""
        self.seen.append(event)
        self.ports.append(request.getClientAddress().port)
        text = event["body"]
        if "please sleep" in text:
            call = reactor.callLater(SLEEP, self._late, request)
            self.sleeping.append(call)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return NOT_DONE_YET
        if "please refuse" in text:
            answer = {"action": "refuse", "reason": "not on this app"}
        elif "please rewrite" in text:
            answer = {"action": "rewrite", "body": text.replace("please rewrite", "[rewritten]")}
        else:
            answer = {"action": "allow"}
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(answer).encode()

    def _late(self, request) -> None:
        request.write(b'{"action": "allow"}')
        request.finish()


@pytest_twisted.async_yield_fixture
async def app_server():
    server = AppServer()
    port = reactor.listenTCP(0, Site(server), interface="127.0.0.1")
    server.url = f"http://127.0.0.1:{port.getHost().port}/moderate"
    yield server
    for call in server.sleeping:
        if call.active():
            call.cancel()
    await port.stopListening()


async def moderated_node(tmp_path, server: AppServer, **settings):
    overrides = {
        "moderation.callback_url": server.url,
        "moderation.secret": SECRET,
        "moderation.timeout": 0.5,
    }
    overrides.update({f"moderation.{k}": v for k, v in settings.items()})
    return await start_node(node_config(tmp_path, **overrides))


@pytest.fixture(params=["tcp", "ws-json"])
def transport(request) -> str:
    return request.param


async def pair(live, transport: str):
    await live.register("alice")
    await live.register("bobby")
    alice = await live.login("alice", transport=transport)
    bob = await live.login("bobby", transport=transport)
    return alice, bob


async def texts(client, peer: int, session_type: int = 1) -> list[bytes]:
    rsp = await client.history(peer, session_type=session_type)
    return [m.msg_data for m in rsp.msg_list if m.msg_type != 9]


async def next_message(client) -> pb.CIMMsgData:
    """The next MSG_DATA that is not a notice (group created ...)."""
    while True:
        _, _, msg = await client.next_push(Cmd.MSG_DATA)
        if msg.msg_type != 9:
            return msg


async def nothing_more(client) -> None:
    assert not [p for p in client.pushes if p[0] == Cmd.MSG_DATA and p[2].msg_type != 9]
    with pytest.raises(defer.TimeoutError):
        await client.next_push(Cmd.MSG_DATA, timeout=0.3)


@pytest_twisted.ensureDeferred
async def test_allow_refuse_rewrite_and_fail_open(tmp_path, app_server, transport):
    live = await moderated_node(tmp_path, app_server, on_failure="allow", keywords=["badword"])
    try:
        alice, bob = await pair(live, transport)
        other = await live.login("alice", transport=transport)  # the sender's other device

        ack = await alice.send_message(bob.user_id, "hello bob")
        assert ack.error_code == 0 and ack.server_msg_id == 1
        assert (await next_message(bob)).msg_data == b"hello bob"
        assert (await next_message(other)).msg_data == b"hello bob"

        ack = await alice.send_message(bob.user_id, "please refuse this")
        assert (ack.error_code, ack.error_msg, ack.server_msg_id) == (ErrorCode.MSG_REFUSED, "not on this app", 0)

        ack = await alice.send_message(bob.user_id, "please rewrite this")
        assert ack.error_code == 0 and ack.server_msg_id == 2
        assert (await next_message(bob)).msg_data == b"[rewritten] this"
        assert (await next_message(other)).msg_data == b"[rewritten] this"

        ack = await alice.send_message(bob.user_id, "a BADWORD")  # the filter runs first
        assert ack.server_msg_id == 3
        assert (await next_message(bob)).msg_data == b"a *******"
        assert app_server.seen[-1]["body"] == "a *******"

        ack = await alice.send_message(bob.user_id, "please sleep")  # past the timeout: fail-open
        assert ack.error_code == 0 and ack.server_msg_id == 4
        assert (await next_message(bob)).msg_data == b"please sleep"

        await nothing_more(bob)
        assert await texts(bob, alice.user_id) == [b"hello bob", b"[rewritten] this", b"a *******", b"please sleep"]
        assert app_server.bad_signatures == 0
        assert [e["sender"]["name"] for e in app_server.seen] == ["alice"] * 5
        assert len(set(app_server.ports)) < len(app_server.ports)  # the pool reused connections
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_fail_closed_refuses_with_moderation_unavailable(tmp_path, app_server, transport):
    live = await moderated_node(tmp_path, app_server, on_failure="refuse")
    try:
        alice, bob = await pair(live, transport)
        ack = await alice.send_message(bob.user_id, "please sleep", client_msg_id="c-1")
        assert ack.error_code == ErrorCode.MODERATION_UNAVAILABLE and ack.server_msg_id == 0
        assert ack.error_msg
        assert await texts(alice, bob.user_id) == []
        ack = await alice.send_message(bob.user_id, "hello", client_msg_id="c-2")
        assert ack.error_code == 0 and ack.server_msg_id == 1
        assert (await next_message(bob)).msg_data == b"hello"
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_a_resend_is_asked_once(tmp_path, app_server):
    live = await moderated_node(tmp_path, app_server)
    try:
        alice, bob = await pair(live, "tcp")
        first = alice.send_message(bob.user_id, "please rewrite me", client_msg_id="same")
        again = alice.send_message(bob.user_id, "please rewrite me", client_msg_id="same")
        one, two = await defer.gatherResults([first, again])
        assert one.server_msg_id == two.server_msg_id == 1
        later = await alice.send_message(bob.user_id, "please rewrite me", client_msg_id="same")
        assert later.server_msg_id == 1
        assert len(app_server.seen) == 1
        assert (await next_message(bob)).msg_data == b"[rewritten] me"
        await nothing_more(bob)
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_keyword_refuse(tmp_path, app_server, transport):
    live = await start_node(
        node_config(tmp_path, **{"moderation.keywords": ["badword", "禁止"], "moderation.keyword_action": "refuse"})
    )
    try:
        alice, bob = await pair(live, transport)
        ack = await alice.send_message(bob.user_id, "这是禁止的")
        assert (ack.error_code, ack.error_msg) == (ErrorCode.MSG_REFUSED, "the message contains a blocked word")
        ack = await alice.send_custom(bob.user_id, {"description": "a Badword card"})
        assert ack.error_code == ErrorCode.MSG_REFUSED
        ack = await alice.send_message(bob.user_id, "fine")
        assert ack.server_msg_id == 1
        assert (await next_message(bob)).msg_data == b"fine"
        assert await texts(bob, alice.user_id) == [b"fine"]
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_group_message(tmp_path, app_server, transport):
    live = await moderated_node(tmp_path, app_server, keywords=["badword"])
    try:
        alice, bob = await pair(live, transport)
        await live.register("carol")
        carol = await live.login("carol", transport=transport)
        rsp = await alice.request(
            Cmd.GROUP_CREATE_DEFAULT_REQ,
            pb.CIMGroupCreateReq(group_name="Mods", member_id_list=[bob.user_id, carol.user_id]),
        )
        gid = rsp.group_info.group_id
        ack = await alice.send_message(gid, "please rewrite the badword", session_type=GROUP)
        assert ack.error_code == 0
        for member in (bob, carol):
            assert (await next_message(member)).msg_data == b"[rewritten] the *******"
        ack = await alice.send_message(gid, "please refuse", session_type=GROUP)
        assert (ack.error_code, ack.error_msg) == (ErrorCode.MSG_REFUSED, "not on this app")
        assert await texts(carol, gid, GROUP) == [b"[rewritten] the *******"]
        event = app_server.seen[0]
        assert event["conversation"] == {"session_type": 2, "kind": "group", "to_id": gid}
    finally:
        await stop_node(live)
