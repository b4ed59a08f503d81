"""Property-based fuzzing of everything a client can send: the CIM framing, every command body
of the protocol table through a real Session, the WebSocket JSON form, and the HTTP API.

Bounded for every CI run: derandomized (the same examples each run, no example database), a
moderate number of examples per property, the whole file in well under a minute.  What each
fuzzer found is fixed and has its own regression test (tests/test_validation.py).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import pytest_twisted
from google.protobuf import json_format
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from coffeechat.errors import ErrorCode
from coffeechat.protocols.framing import HEADER_SIZE, FrameDecoder, FrameError, encode_frame
from coffeechat.protocols.http import ChatSite, Root
from coffeechat.schema import TABLE, Cmd, pb
from coffeechat.schema.jsonform import JsonFrameError, decode_json_frame

from .logcapture import logged_failures
from .memory_node import MemoryNode, md5
from .strategies import COMMANDS, command_bodies, headers, integers, json_texts, messages, texts

MAX_ID = 2**63 - 1  # the largest id storage keeps (coffeechat.schema.MAX_ID)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FEW = settings(FUZZ, max_examples=60)


@pytest.fixture(scope="module")
def node() -> MemoryNode:
    """One node for every example (building one costs a third of a second): alice and bobby,
    a group of theirs, a message between them, so that commands meet real state."""
    node = MemoryNode(
        **{
            "limits.request_burst": 100_000,
            "limits.message_burst": 100_000,
            "limits.user_request_burst": 100_000,
            "limits.user_message_burst": 100_000,
        }
    )
    node.user("alice")
    node.user("bobby")
    conn = node.connect()
    conn.login("alice")
    conn.send(Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="fuzz", member_id_list=[2]))
    conn.frames()
    conn.send_text(2, "hello")
    conn.close()
    return node


# -- (a) the CIM framing


frames = st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300)), max_size=8)


@FUZZ
@given(frames=frames, cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_frames_survive_any_split(frames, cuts):
    stream = b"".join(encode_frame(cmd, seq, body) for cmd, seq, body in frames)
    decoder = FrameDecoder(4096)
    got = []
    start = 0
    for cut in sorted(c for c in cuts if c < len(stream)) + [len(stream)]:
        got += decoder.feed(stream[start:cut])
        start = cut
    assert got == frames
    assert decoder.buffered() == 0


@FUZZ
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(headers, integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
            st.builds(
                lambda c, s, b: encode_frame(c, s, b),
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFF),
                st.binary(max_size=40),
            ),
        ),
        max_size=10,
    )
)
def test_any_bytes_are_frames_or_a_frame_error(chunks):
    decoder = FrameDecoder(1024)
    broken = False
    for chunk in chunks:
        try:
            for cmd, seq, body in decoder.feed(chunk):
                assert 0 <= cmd <= 0xFFFF and 0 <= seq <= 0xFFFF and len(body) <= 1024 - HEADER_SIZE
        except FrameError:
            broken = True
            with pytest.raises(FrameError):
                decoder.feed(b"")  # refused for good: the stream cannot be resynchronized
            break
        assert decoder.buffered() < 1024
    assert broken or decoder.buffered() < 1024


@FEW
@given(
    chunks=st.lists(
        st.one_of(st.binary(max_size=64), command_bodies().map(lambda cb: encode_frame(cb[0], 9, cb[1]))), max_size=6
    )
)
def test_any_bytes_into_a_connection(node, chunks):
    """Raw bytes into a CIM connection: nothing is logged, and the connection either keeps
    answering or was closed for a framing error."""
    conn = node.connect()
    with logged_failures() as failures:
        for chunk in chunks:
            conn.send_raw(chunk)
        conn.frames()
        if not conn.closed:
            mid_frame = conn.protocol._decoder.buffered() > 0
            conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat(), seq=4242)
            # Bytes left mid-frame make the heartbeat part of a frame still being read (the
            # login timeout ends such a connection); otherwise it is answered.
            assert any(seq == 4242 for _, seq, _ in conn.frames()) or conn.closed or mid_frame
    conn.close()
    assert failures == []


# -- (b) every command body through a Session


def must_answer(node, cmd: int, logged_in: bool) -> bool:
    """Whether a frame always gets an answer: everything before login; after it, requests, and
    whatever no feature serves.  Delivery and read acks, and typing notices, are answered only
    when refused."""
    if not logged_in:
        return True
    command = TABLE.get(cmd)
    return cmd not in node.core.registry.commands or (command is not None and command.answer is not None)


@FUZZ
@given(sent=st.lists(command_bodies(), min_size=1, max_size=4), logged_in=st.booleans())
def test_every_command_body_gets_an_answer_and_logs_nothing(node, sent, logged_in):
    conn = node.connect()
    if logged_in:
        conn.login("alice")
    with logged_failures() as failures:
        for seq, (cmd, body) in enumerate(sent, 1):
            conn.send_raw(encode_frame(cmd, seq, body))
            answers = conn.frames()  # decoding them also checks that every answer is a valid body
            if conn.closed:
                assert logged_in and cmd == Cmd.LOGIN_AUTH_LOGOUT_REQ, (cmd, answers)
                break
            if must_answer(node, cmd, logged_in):
                assert any(s == seq for _, s, _ in answers), (Cmd(cmd).name if cmd in TABLE else cmd, answers)
        else:
            # still usable: a heartbeat is answered (refused before login, echoed after)
            conn.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat(), seq=4242)
            ((cmd, seq, answer),) = [f for f in conn.frames() if f[1] == 4242]
            if logged_in:
                assert cmd == Cmd.LOGIN_HEARTBEAT
            else:
                assert (cmd, answer.error_code) == (Cmd.ERROR_RSP, ErrorCode.NOT_LOGGED_IN)
    conn.close()
    assert failures == []


def test_each_body_type_is_answered_or_refused(node):
    """Every command of the table, 8 fuzzed bodies of its own type each, from a logged-in device:
    an answer when it is a request, never a logged failure; the device still sends a message."""
    for cmd in COMMANDS:
        for message in drawn(messages(TABLE[cmd].body.DESCRIPTOR), 8):
            conn = node.connect()
            conn.login("bobby")
            with logged_failures() as failures:
                seq = conn.send(cmd, message)
                answers = conn.frames()
                if cmd == Cmd.LOGIN_AUTH_LOGOUT_REQ and conn.closed:
                    continue
                if must_answer(node, cmd, True):
                    assert any(s == seq for _, s, _ in answers), (Cmd(cmd).name, message, answers)
                assert conn.send_text(1, "still here").res_code == pb.kCIM_RES_CODE_OK
            conn.close()
            assert failures == [], (Cmd(cmd).name, message, failures)


def drawn(strategy: st.SearchStrategy, count: int) -> list:
    """``count`` examples of ``strategy``, the same on every run: for tests that must await (a
    real node), which hypothesis cannot drive itself.  No shrinking then: a failure names the
    example as drawn."""
    out: list = []

    @settings(FUZZ, max_examples=count, phases=[Phase.generate])
    @given(strategy)
    def collect(example) -> None:
        out.append(example)

    collect()
    return out


SQLITE_EXAMPLES = 150


@pytest_twisted.ensureDeferred
async def test_command_bodies_against_sqlite(live_node):
    """The command-body fuzzer's frames over real TCP to a node on SQLite, logged in: what only
    real storage shows (ids that SQLite cannot keep) is answered, never logged."""
    await live_node.register("alice")
    await live_node.register("bobby")
    # every command of the table with bodies of its own type, then the mixed fuzzer's frames
    examples = [
        (cmd, m.SerializeToString()) for cmd in COMMANDS for m in drawn(messages(TABLE[cmd].body.DESCRIPTOR), 3)
    ]
    examples += drawn(command_bodies(), SQLITE_EXAMPLES)
    client = await live_node.login("alice")
    await client.request(Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(member_id_list=[2]))
    with logged_failures() as failures:
        for seq, (cmd, body) in enumerate(examples, 1):  # fewer than 65,535
            if client.transport is None or not client.transport.connected:
                client = await live_node.login("alice")  # a logout ended the last one
            client.send_raw(encode_frame(cmd, seq, body))
            if not must_answer(live_node, cmd, True):
                continue
            while True:
                try:
                    answer_cmd, got, answer = await client.next_push(timeout=5)
                except Exception as e:
                    raise AssertionError(f"no answer to {cmd:#06x} {body[:60]!r}: {e!r}") from None
                if got == seq and answer_cmd != Cmd.MSG_DATA:
                    break
            if answer_cmd == Cmd.LOGIN_AUTH_LOGOUT_RSP and answer.result_code == ErrorCode.SUCCESS:
                await client.when_closed()
        if client.transport is None or not client.transport.connected:
            client = await live_node.login("alice")
        # frames answered only when refused (the call commands ...) go out unpaced: let the
        # connection's request budget refill before the last request
        await task.deferLater(reactor, 1.5, lambda: None)
        assert (await client.heartbeat()) == pb.CIMHeartBeat()
    assert failures == [], (len(failures), failures[:3])


# -- (c) the WebSocket JSON form

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        json_texts,
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(json_texts, children, max_size=4)),
    max_leaves=12,
)
NAMES = [c.name for c in Cmd]
# Values that once crashed the decoder or storage, put where a field's value or key goes.
POISON = [
    float("inf"),
    float("-inf"),
    float("nan"),
    1e300,
    2**63,
    2**64,
    -1,
    "18446744073709551615",
    "9223372036854775808",
]
POISON += ["\ud800", {"\ud800": 1}, [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]], "", None, True, 1.5, "1e999"]
poison = st.one_of(st.sampled_from(POISON), json_values)


def _json_text(value) -> str:
    # ensure_ascii: a lone surrogate is written as the escape "\ud800", as a hostile client would
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


@st.composite
def json_frames(draw) -> str:
    """Frames as a client could write them: right, nearly right (a field's value replaced by any
    JSON value, a key by any text), or any JSON at all; as text, with raw edits now and then."""
    cmd = draw(st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), integers(-5, 0x1_0000), json_values))
    body = json_format.MessageToDict(draw(messages(TABLE[draw(st.sampled_from(COMMANDS))].body.DESCRIPTOR)))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        if body and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(body)))
            body[key] = draw(poison)
        else:
            body[draw(st.one_of(json_texts, st.sampled_from(["zz\ud800", "msgType", "toSessionId"])))] = draw(poison)
    seq = draw(st.integers(0, 0xFFFF)) if draw(st.integers(0, 5)) != 3 else draw(poison)
    frame = {"cmd": cmd, "seq": seq, "body": body}
    if draw(st.integers(0, 9)) == 7:  # not 0: hypothesis draws the bounds often
        frame = draw(json_values)
    text = _json_text(frame)
    edit = draw(st.sampled_from(["", "", "", "", "", "", "surrogate", "nan", "deep", "cut"]))
    if edit == "surrogate":
        text = text.replace('"body": {"', '"body": {"\\ud800', 1)
    elif edit == "nan":
        text = text.replace("null", "Infinity").replace('"1e999"', "1e999")
    elif edit == "deep":
        text = text.replace('"body": {', '"body": {"x":' + "[" * 40 + "]" * 40 + ",", 1)
    elif edit == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(text=st.one_of(json_frames(), st.text(max_size=200)))
def test_json_frames_decode_or_are_refused_cleanly(text):
    try:
        cmd, seq, message = decode_json_frame(text)
    except JsonFrameError as e:
        assert e.code in (ErrorCode.MALFORMED_BODY, ErrorCode.UNKNOWN_COMMAND)
        assert 0 <= e.seq <= 0xFFFF and 0 <= e.cmd <= 0xFFFF
        pb.CIMErrorRsp(cmd_id=e.cmd, error_code=e.code, error_msg=e.message).SerializeToString()
        return
    assert 0 <= cmd <= 0xFFFF and 0 <= seq <= 0xFFFF
    if message is not None:
        message.SerializeToString()
        assert all(v <= MAX_ID for v in _ids(message))


def _ids(message):
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for v in values:
            if field.type == field.TYPE_MESSAGE:
                yield from _ids(v)
            elif field.type in (field.TYPE_UINT64, field.TYPE_FIXED64):
                yield v


@FEW
@given(text=json_frames())
def test_json_frames_through_a_session(node, text):
    """What the WebSocket transport does with a text message (protocols/websocket.py ``_text``),
    on a logged-in session: every frame is answered or served, nothing is logged."""
    conn = node.connect()
    conn.login("alice")
    session = conn.protocol.session
    with logged_failures() as failures:
        try:
            cmd, seq, request = decode_json_frame(text)
        except JsonFrameError as e:
            if e.in_body:
                session.bad_frame(e.cmd, e.seq, e.code, e.message)
            else:
                session.answer(
                    Cmd.ERROR_RSP, e.seq, pb.CIMErrorRsp(cmd_id=e.cmd, error_code=e.code, error_msg=e.message)
                )
            assert conn.frames()
        else:
            session.request_received(cmd, seq, request)
            answers = conn.frames()
            if must_answer(node, cmd, True) and cmd != Cmd.LOGIN_AUTH_LOGOUT_REQ:
                assert any(s == seq for _, s, _ in answers)
    conn.close()
    assert failures == []


# -- (d) the HTTP API

# (method, path) of every route; "{}" is a path parameter.  Static files that exist ("/",
# "/app/client.js") are streamed by a cooperative producer that a StringTransport does not drive:
# tests/test_webclient.py serves those over real sockets.
ROUTES = [("POST", "/user/register"), ("POST", "/api/login"), ("POST", "/api/logout"), ("GET", "/admin/users")]
ROUTES += [("POST", "/admin/users"), ("POST", "/admin/users/{}/disable"), ("POST", "/admin/users/{}/enable")]
ROUTES += [("POST", "/admin/users/{}/password"), ("POST", "/admin/users/{}/tokens"), ("POST", "/admin/messages/recall")]
ROUTES += [("GET", "/health"), ("GET", "/app/nope.js"), ("GET", "/app/protocol-table.js"), ("GET", "/ws")]
ROUTES += [("GET", "/admin"), ("GET", "/nope")]
SEGMENTS = ["1", "0", "-1", "²", "١٢", "9" * 19, "%00", "%ff", "%2e%2e", "..", "", "admin", "users", "x" * 300]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "BREW", "get"]


@st.composite
def http_requests(draw) -> bytes:
    method, path = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 3)) == 2:
        method = draw(st.sampled_from(METHODS))
    segment = draw(st.sampled_from(SEGMENTS)) if draw(st.integers(0, 3)) != 1 else draw(st.text(max_size=5))
    path = path.replace("{}", segment)
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        path = path.rstrip("/") + "/" + draw(st.one_of(st.sampled_from(SEGMENTS), st.text(max_size=8)))
    if draw(st.booleans()):
        path += "?" + draw(st.sampled_from(["after=²", "limit=0", "limit=99999999999999999999", "after=-1", "a=%00"]))
    raw_path = quote(path, safe="/?=&%", errors="surrogatepass").encode()  # as a client sends it
    body = draw(
        st.one_of(
            st.just(b""),
            json_values.map(lambda v: _json_text(v).encode("utf-8", "surrogatepass")),
            st.binary(max_size=100),
            st.builds(
                lambda name, nick, pwd: json.dumps({"userName": name, "userNickName": nick, "userPwd": pwd}).encode(),
                texts,
                texts,
                st.one_of(texts, st.just(md5("pw"))),
            ),
        )
    )
    lines = [b"%s %s HTTP/1.1" % (method.encode(), raw_path), b"Host: x"]
    if draw(st.integers(0, 3)) != 1:
        lines.append(
            b"Authorization: Bearer "
            + draw(st.sampled_from([b"admin-secret", b"admin-secret", b"admin-secret", b"nope", b"\xff"]))
        )
    lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def site(node):
    node.core.config.http.admin_token = "admin-secret"
    return ChatSite(Root(node.core), node.core, timeout=node.core.config.http.idle_timeout, reactor=node.clock)


def _http(node, site, request: bytes) -> tuple[int, bytes, list[str]]:
    """One raw request through the real site on a StringTransport: (status, response, failures)."""
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    transport.protocol = channel  # the WebSocket path takes the connection over, as from a real one
    channel.makeConnection(transport)
    with logged_failures() as failures:
        channel.dataReceived(request)
        node.clock.advance(0)
    response = transport.value()
    channel.connectionLost(None)
    assert response.startswith(b"HTTP/1.1 "), (request, response[:200])
    return int(response[9:12]), response, failures


@settings(FUZZ, max_examples=300)
@given(request=http_requests())
def test_http_api_answers_without_500(node, site, request):
    status, response, failures = _http(node, site, request)
    assert status != 500, response[:400]
    assert failures == []


def test_every_route_with_every_odd_segment(node, site):
    """A sweep rather than a search: each route, its own method and GET, each odd path segment
    where a parameter goes (or appended), with the admin token."""
    for method, route in ROUTES:
        if route.startswith("/app/"):
            continue  # static files: NUL is the "limits" branch's (protocols/http.py)
        for segment in SEGMENTS:
            path = route.replace("{}", segment) if "{}" in route else route.rstrip("/") + "/" + segment
            for verb in {method, "GET"}:
                raw = quote(path, safe="/?=&%").encode()
                request = b"%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-secret\r\n" % (verb.encode(), raw)
                request += b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                status, response, failures = _http(node, site, request)
                assert status != 500 and failures == [], (verb, path, response[:300], failures)
