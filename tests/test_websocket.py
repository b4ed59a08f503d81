"""The WebSocket transport: its JSON codec, origins, subprotocols, limits and bad input.

The chat scenarios themselves run over WebSocket in test_e2e.py; here is what only WebSocket has.
"""

from __future__ import annotations

import base64
import json
import os
import struct

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from coffeechat.errors import ErrorCode
from coffeechat.protocols.client import WebSocketClosed, _read_body, md5_password
from coffeechat.protocols.framing import encode_frame, encode_header
from coffeechat.protocols.websocket import (
    CIMWebSocketFactory,
    CIMWebSocketProtocol,
    JsonFrameError,
    OriginPolicy,
    decode_json_frame,
    encode_json_body,
    encode_json_frame,
)
from coffeechat.schema import Cmd, pb

from .conftest import node_config, start_node, stop_node
from .memory_node import MemoryNode

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

SECRET = md5_password("secret")


# -- the JSON codec (no network)


def test_json_codec_round_trip():
    msg = pb.CIMMsgData(
        from_user_id=2**63 - 1,  # the largest id a client may send (schema.MAX_ID)
        to_session_id=7,
        client_msg_id="c-1",
        create_time=-3,
        msg_type=pb.kCIM_MSG_TYPE_TEXT,
        session_type=pb.kCIM_SESSION_TYPE_SINGLE,
        msg_data="héllo".encode(),
        at_user_list=[1, 2],
    )
    text = encode_json_frame(Cmd.MSG_DATA, 513, encode_json_body(msg))
    frame = json.loads(text)
    assert (frame["cmd"], frame["seq"]) == ("MSG_DATA", 513)
    body = frame["body"]
    assert body["fromUserId"] == str(2**63 - 1) and body["toSessionId"] == "7"  # 64-bit ints as strings
    assert body["msgData"] == base64.b64encode("héllo".encode()).decode()
    assert body["msgType"] == "kCIM_MSG_TYPE_TEXT" and body["createTime"] == -3
    assert body["atUserList"] == ["1", "2"] and "atAll" not in body and "serverMsgId" not in body  # defaults: left out
    assert decode_json_frame(text) == (Cmd.MSG_DATA, 513, msg)

    for message in (
        pb.CIMHeartBeat(),
        pb.CIMErrorRsp(cmd_id=0x0999, error_code=pb.kCIM_ERR_UNKNOWN_COMMAND, error_msg="nope"),
        pb.CIMAuthReq(user_name="alice", user_pwd="0" * 32, client_type=pb.kCIM_CLIENT_TYPE_WEB),
    ):
        cmd = {pb.CIMHeartBeat: Cmd.LOGIN_HEARTBEAT, pb.CIMErrorRsp: Cmd.ERROR_RSP, pb.CIMAuthReq: Cmd.LOGIN_AUTH_REQ}[
            type(message)
        ]
        assert decode_json_frame(encode_json_frame(cmd, 0, encode_json_body(message))) == (cmd, 0, message)


def test_json_codec_accepts_names_numbers_and_both_field_spellings():
    expected = pb.CIMMsgDataReadAck(user_id=1, session_id=2, msg_id=3, session_type=pb.kCIM_SESSION_TYPE_SINGLE)
    for frame in (
        {"cmd": "MSG_READ_ACK", "seq": 9, "body": {"userId": 1, "sessionId": "2", "msgId": 3, "sessionType": 1}},
        {
            "cmd": 0x0303,
            "seq": 9,
            "body": {"user_id": "1", "session_id": 2, "msg_id": "3", "session_type": "kCIM_SESSION_TYPE_SINGLE"},
        },
    ):
        assert decode_json_frame(json.dumps(frame)) == (Cmd.MSG_READ_ACK, 9, expected)
    beat = pb.CIMHeartBeat()
    assert decode_json_frame('{"cmd": "LOGIN_HEARTBEAT", "seq": 65535}') == (Cmd.LOGIN_HEARTBEAT, 65535, beat)
    # An unknown id has no body type: the session answers it (UNKNOWN_COMMAND), as over TCP.
    assert decode_json_frame(b'{"cmd": 2457, "seq": 1, "body": {"x": 1}}') == (0x0999, 1, None)
    assert encode_json_frame(0x0999, 4, b"{}") == b'{"cmd":2457,"seq":4,"body":{}}'


MALFORMED, UNKNOWN, MSG = ErrorCode.MALFORMED_BODY, ErrorCode.UNKNOWN_COMMAND, Cmd.MSG_DATA


@pytest.mark.parametrize(
    ("text", "code", "cmd", "seq", "in_body"),
    [
        (b"not json", MALFORMED, 0, 0, False),
        (b"[1, 2]", MALFORMED, 0, 0, False),
        (b'"MSG_DATA"', MALFORMED, 0, 0, False),
        (b"[" * 100_000 + b"]" * 100_000, MALFORMED, 0, 0, False),
        (b'{"cmd": "NO_SUCH_CMD", "seq": 5}', UNKNOWN, 0, 5, False),
        (b'{"cmd": 65536, "seq": 5}', UNKNOWN, 0, 5, False),
        (b'{"cmd": true, "seq": 5}', UNKNOWN, 0, 5, False),
        (b'{"seq": 5}', UNKNOWN, 0, 5, False),
        (b'{"cmd": "MSG_DATA"}', MALFORMED, MSG, 0, False),
        (b'{"cmd": "MSG_DATA", "seq": "5"}', MALFORMED, MSG, 0, False),
        (b'{"cmd": "MSG_DATA", "seq": 65536}', MALFORMED, MSG, 0, False),
        (b'{"cmd": "MSG_DATA", "seq": 1.5}', MALFORMED, MSG, 0, False),
        (b'{"cmd": "MSG_DATA", "seq": 5, "body": [1]}', MALFORMED, MSG, 5, True),
        (b'{"cmd": "MSG_DATA", "seq": 5, "body": {"nope": 1}}', MALFORMED, MSG, 5, True),
        (b'{"cmd": "MSG_DATA", "seq": 5, "body": {"toSessionId": -1}}', MALFORMED, MSG, 5, True),
        (b'{"cmd": "MSG_DATA", "seq": 5, "body": {"msgData": 5}}', MALFORMED, MSG, 5, True),
        (b'{"cmd": "MSG_DATA", "seq": 5, "body": {"msgType": "NOPE"}}', MALFORMED, MSG, 5, True),
        (b'{"cmd": "MSG_DATA", "seq": 5, "body": {"clientMsgId": "\\ud800"}}', MALFORMED, MSG, 5, True),
    ],
)
def test_json_codec_refusals_say_what_and_where(text, code, cmd, seq, in_body):
    with pytest.raises(JsonFrameError) as err:
        decode_json_frame(text)
    assert (err.value.code, err.value.cmd, err.value.seq, err.value.in_body) == (code, cmd, seq, in_body)
    assert err.value.message


def test_origin_policy():
    same = OriginPolicy([])
    assert same.allows("", "anything:1")  # no Origin: not a browser
    assert same.allows("http://chat.example.com:8001", "chat.example.com:8001")
    assert same.allows("HTTP://Chat.Example.com", "chat.example.com")
    assert same.allows("https://chat.example.com", "chat.example.com")  # TLS ended at a proxy
    assert same.allows("http://[::1]:18080", "[::1]:18080")
    assert not same.allows("http://chat.example.com:18080", "chat.example.com:8001")
    assert not same.allows("http://evil.example", "chat.example.com")
    assert not same.allows("https://chat.example.com:8443", "chat.example.com")
    assert not same.allows("null", "chat.example.com")
    assert not same.allows("http://chat.example.com:99999", "chat.example.com:99999")
    listed = OriginPolicy(["https://chat.example.com", "http://localhost:3000"])
    assert listed.allows("https://chat.example.com:443", "ws.example.com")
    assert listed.allows("http://localhost:3000", "ws.example.com")
    assert not listed.allows("http://chat.example.com", "chat.example.com")  # only the listed ones
    assert not listed.allows("http://localhost:3001", "localhost:3001")
    anyone = OriginPolicy(["*"])
    assert anyone.allows("null", "x") and anyone.allows("http://evil.example", "chat.example.com")


# -- the server's fast path for small binary frames (no network)


class Recorder(CIMWebSocketProtocol):
    """The server protocol with its messages recorded instead of handed to a session."""

    def onOpen(self) -> None:
        self.got: list[tuple[bytes, bool]] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.got.append((payload, isBinary))


def ws_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = b"\x1f\x2e\x3d\x4c") -> bytes:
    n = len(payload)
    if n < 126:
        length = bytes([n])
    elif n < 65536:
        length = bytes([126]) + struct.pack(">H", n)
    else:
        length = bytes([127]) + struct.pack(">Q", n)
    head = bytes([(0x80 if fin else 0) | opcode])
    if mask is None:
        return head + length + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + bytes([length[0] | 0x80]) + length[1:] + mask + masked


def open_recorder(fast: bool) -> tuple[Recorder, StringTransport]:
    factory = CIMWebSocketFactory(MemoryNode().core)
    factory.protocol = Recorder
    if not fast:
        factory.fast_path_max = -1
    return open_connection(factory)


def open_connection(factory: CIMWebSocketFactory) -> tuple[CIMWebSocketProtocol, StringTransport]:
    """A connection of ``factory`` past its opening handshake, its transport cleared."""
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert protocol.state == protocol.STATE_OPEN
    factory.node.reactor.advance(0)  # the handshake's answer is written at the end of the turn
    transport.clear()
    return protocol, transport


@pytest.mark.parametrize("step", [1, 3, 7, 130, 4099, 1 << 20])
def test_fast_path_reads_exactly_what_autobahn_reads(step):
    """Frames of every length encoding, fed in pieces of ``step`` bytes, with and without the fast path."""
    sizes = (0, 1, 16, 125, 126, 127, 1000, 4096, 4097) + ((70_000,) if step > 100 else ())
    payloads = [os.urandom(n) for n in sizes]
    stream = b"".join(ws_frame(2, p) for p in payloads)
    stream += ws_frame(9, b"ping") + ws_frame(1, b'{"cmd": 1}') + ws_frame(2, b"frag", fin=False)
    stream += ws_frame(0, b"mented") + ws_frame(2, payloads[3])
    expected = [(p, True) for p in payloads] + [(b'{"cmd": 1}', False), (b"fragmented", True), (payloads[3], True)]
    for fast in (True, False):
        protocol, transport = open_recorder(fast)
        for i in range(0, len(stream), step):
            protocol.dataReceived(stream[i : i + step])
        assert protocol.got == expected, (step, fast)
        protocol.flush()  # what the reactor does at the end of its turn
        assert ws_frame(10, b"ping", mask=None) in transport.value()  # the ping was answered
        protocol.connectionLost(Failure(ConnectionDone()))


def test_a_fan_out_encodes_once_per_encoding():
    """Every recipient of one push shares a cache: the body is encoded once per encoding."""
    json_a, json_b, binary = (open_recorder(fast=True) for _ in range(3))
    for protocol, _ in (json_a, json_b):
        protocol.json = True
    push = pb.CIMMsgData(from_user_id=1, to_session_id=2, client_msg_id="c", server_msg_id=7, msg_data=b"hi")
    cache: dict = {}
    json_a[0].send(Cmd.MSG_DATA, 1, push, cache)
    binary[0].send(Cmd.MSG_DATA, 2, push, cache)
    assert cache == {"ws-json": encode_json_body(push), "bin": push.SerializeToString()}
    cache["ws-json"] = b'{"cached":true}'  # a second JSON recipient takes the cached body as it is
    json_b[0].send(Cmd.MSG_DATA, 3, push, cache)
    outputs = []
    for protocol, transport in (json_a, json_b, binary):
        protocol.flush()
        outputs.append(transport.value())
        protocol.connectionLost(Failure(ConnectionDone()))
    assert outputs[0] == ws_frame(1, b'{"cmd":"MSG_DATA","seq":1,"body":' + encode_json_body(push) + b"}", mask=None)
    assert outputs[1] == ws_frame(1, b'{"cmd":"MSG_DATA","seq":3,"body":{"cached":true}}', mask=None)
    assert outputs[2] == ws_frame(2, encode_frame(Cmd.MSG_DATA, 2, push.SerializeToString()), mask=None)


@pytest.mark.parametrize("size", [0, 1, 80, 100, 110, 200, 5000, 60_000, 65_500, 65_536, 70_000])
@pytest.mark.parametrize("json_out", [False, True])
def test_send_frames_exactly_as_autobahn_does(size, json_out):
    """send() frames a message itself (no compression, autobahn's framing options at their
    defaults): the bytes on the wire are autobahn's own, at every length encoding."""
    limits = {"limits.max_frame_bytes": 1 << 20, "limits.max_output_bytes_before_login": 1 << 20}
    node = MemoryNode(**limits)
    outputs = []
    for plain in (True, False):
        factory = CIMWebSocketFactory(node.core)
        if not plain:
            factory.plain_send_max = -1  # every message through autobahn's sendMessage
        protocol, transport = open_connection(factory)
        protocol.json = json_out
        push = pb.CIMMsgData(from_user_id=1, to_session_id=2, client_msg_id="c", msg_data=b"x" * size)
        protocol.send(Cmd.MSG_DATA, 9, push, None)
        protocol.send(Cmd.MSG_DATA, 10, push, {})
        node.clock.advance(0)
        outputs.append(transport.value())
        protocol.connectionLost(Failure(ConnectionDone()))
    assert outputs[0] == outputs[1] and outputs[0]
    if not json_out:
        frame = encode_frame(Cmd.MSG_DATA, 9, push.SerializeToString())
        assert outputs[0].startswith(ws_frame(2, frame, mask=None))


@pytest.mark.parametrize(
    "bad",
    [
        ws_frame(2, b"unmasked", mask=None),  # clients must mask
        bytes([0x82, 0x80 | 126, 0, 5]) + b"\x00" * 4 + b"\x00" * 5,  # 16-bit length for 5 bytes
        bytes([0xC2, 0x85]) + b"\x00" * 4 + b"\x00" * 5,  # RSV1 without compression negotiated
    ],
)
def test_fast_path_leaves_protocol_errors_to_autobahn(bad):
    for fast in (True, False):
        protocol, transport = open_recorder(fast)
        protocol.dataReceived(ws_frame(2, b"fine") + bad + ws_frame(2, b"never"))
        assert protocol.got == [(b"fine", True)]
        protocol.flush()
        closing = transport.value()
        assert closing[0] == 0x88 and closing[2:4] == b"\x03\xea"  # close 1002 (protocol error)
        protocol.connectionLost(Failure(ConnectionDone()))


# -- live


async def node(tmp_path, **overrides):
    return await start_node(node_config(tmp_path, **overrides))


@pytest_twisted.async_yield_fixture
async def live(tmp_path):
    live = await node(tmp_path)
    await live.register("alice")
    await live.register("bobby")
    yield live
    await stop_node(live)


def record(client) -> list[tuple[bytes, bool]]:
    """Every WebSocket message the client receives, raw: (payload, is_binary)."""
    raw: list[tuple[bytes, bool]] = []
    original = client._message

    def spy(payload: bytes, is_binary: bool) -> None:
        raw.append((payload, is_binary))
        original(payload, is_binary)

    client._message = spy
    return raw


async def still_chatting(live, *clients) -> None:
    """The other connections are unaffected: a message goes through."""
    alice = await live.login("alice", transport="ws-binary")
    bob = await live.login("bobby", transport="ws-json")
    ack = await alice.send_message(bob.user_id, "we are fine")
    _, _, push = await bob.next_push(Cmd.MSG_DATA)
    assert push.server_msg_id == ack.server_msg_id
    for client in clients:
        assert (await client.heartbeat()) == pb.CIMHeartBeat()


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_text_closes_with_1007(live):
    bystander = await live.login("bobby", transport="ws-json")
    client = await live.login("alice", transport="ws-json")
    client.send_text(b'{"cmd": "LOGIN_HEARTBEAT", "seq": 1, "body": {"x": "\xff\xfe"}}')
    closed = await client.closed
    assert isinstance(closed, WebSocketClosed) and closed.code == 1007
    await still_chatting(live, bystander)


@pytest_twisted.ensureDeferred
async def test_bad_json_frames_get_error_rsp_and_the_connection_stays(live):
    client = await live.connect("ws-json")
    raw = record(client)
    for text, seq, code in (
        ("[1, 2, 3]", 0, ErrorCode.MALFORMED_BODY),
        ("this is not JSON", 0, ErrorCode.MALFORMED_BODY),
        ('{"cmd": "NO_SUCH_COMMAND", "seq": 41}', 41, ErrorCode.UNKNOWN_COMMAND),
        ('{"cmd": "LOGIN_HEARTBEAT"}', 0, ErrorCode.MALFORMED_BODY),
        ('{"cmd": "LOGIN_HEARTBEAT", "seq": -1}', 0, ErrorCode.MALFORMED_BODY),
        ('{"cmd": "LIST_MSG_REQ", "seq": 42, "body": "x"}', 42, ErrorCode.MALFORMED_BODY),
        ('{"cmd": "LIST_MSG_REQ", "seq": 43, "body": {"sessionId": "abc"}}', 43, ErrorCode.MALFORMED_BODY),
    ):
        raw.clear()
        client.send_text(text)
        _, got_seq, error = await client.next_push(Cmd.ERROR_RSP)
        assert (got_seq, error.error_code) == (seq, code), text
        ((payload, is_binary),) = raw
        answer = json.loads(payload)
        assert not is_binary and answer["cmd"] == "ERROR_RSP" and answer["seq"] == seq
        assert answer["body"]["errorCode"] == pb.CIMErrorCode.Name(code) and answer["body"]["errorMsg"]

    # A login whose body does not parse gets the login answer, as over TCP.
    client.send_text('{"cmd": "LOGIN_AUTH_REQ", "seq": 44, "body": {"userName": 5}}')
    _, seq, rsp = await client.next_push(Cmd.LOGIN_AUTH_RSP)
    assert (seq, rsp.result_code) == (44, ErrorCode.MALFORMED_BODY)
    client.send_text('{"cmd": 2457, "seq": 45}')  # an unknown id, before login
    _, seq, error = await client.next_push(Cmd.ERROR_RSP)
    assert (seq, error.error_code, error.cmd_id) == (45, ErrorCode.NOT_LOGGED_IN, 0x0999)

    rsp = await client.login_password("alice", SECRET)
    assert rsp.result_code == 200
    client.send_text('{"cmd": 2457, "seq": 46}')
    _, seq, error = await client.next_push(Cmd.ERROR_RSP)
    assert (seq, error.error_code) == (46, ErrorCode.UNKNOWN_COMMAND)
    raw.clear()
    client.send_text('{"cmd": 261, "seq": 47}')  # LOGIN_HEARTBEAT by number, no body
    _, seq, beat = await client.next_push(Cmd.LOGIN_HEARTBEAT)
    assert seq == 47 and json.loads(raw[0][0]) == {"cmd": "LOGIN_HEARTBEAT", "seq": 47, "body": {}}
    await still_chatting(live, client)


@pytest_twisted.ensureDeferred
async def test_binary_frame_errors(live):
    client = await live.login("alice", transport="ws-binary")
    waiter = client.next_push(Cmd.ERROR_RSP)
    client.send_raw(encode_frame(Cmd.LIST_MSG_REQ, 77, b"\xff\xff\xff\xff"))
    _, seq, error = await waiter
    assert (seq, error.error_code) == (77, ErrorCode.MALFORMED_BODY)  # the connection stays

    frame = encode_frame(Cmd.LOGIN_HEARTBEAT, 5, b"")
    for message, code in (
        (frame + b"\x00", 1002),  # header says 16, the message has 17
        (frame[:-1], 1002),  # shorter than a header
        (encode_header(Cmd.LOGIN_HEARTBEAT, 5, 100), 1002),  # header says 116
        (encode_frame(Cmd.LOGIN_HEARTBEAT, 6, b"") + encode_frame(Cmd.LOGIN_HEARTBEAT, 7, b""), 1002),  # two frames
    ):
        offender = await live.login("alice", transport="ws-binary")
        offender.send_raw(message)
        closed = await offender.closed
        assert closed.code == code, message
        assert "length" in closed.reason or "shorter" in closed.reason
    await still_chatting(live, client)


@pytest_twisted.ensureDeferred
async def test_oversized_messages_close_only_that_connection(live):
    limit = live.core.config.limits.max_frame_bytes
    bystander = await live.login("bobby", transport="ws-binary")
    for size, transport in ((limit + 1, "ws-binary"), (limit * 2, "ws-binary"), (limit * 2, "ws-json")):
        offender = await live.login("alice", transport=transport)
        if transport == "ws-binary":
            offender.send_raw(encode_header(Cmd.MSG_DATA, 1, size - 16) + b"\x00" * (size - 16))
        else:
            offender.send_text(b'{"cmd": "MSG_DATA", "seq": 1, "body": {"clientMsgId": "' + b"x" * size + b'"}}')
        closed = await offender.closed
        assert closed.code == 1009, (size, transport)
    # JSON within the text allowance whose frame would still be too large: refused once decoded.
    offender = await live.login("alice", transport="ws-json")
    offender.send_text(b'{"cmd": "MSG_DATA", "seq": 1, "body": {"clientMsgId": "' + b"x" * (limit + 100) + b'"}}')
    assert (await offender.closed).code == 1009
    # A max-size frame's JSON (bytes as base64) is allowed.
    sender = await live.login("alice", transport="ws-json")
    data = b"\x01" * (limit - 200)
    body = pb.CIMMsgData(
        to_session_id=bystander.user_id, client_msg_id="big", msg_type=2, session_type=1, msg_data=data
    )
    assert 16 + body.ByteSize() <= limit
    ack = await sender.request(Cmd.MSG_DATA, body)
    assert ack.error_code == ErrorCode.MSG_TOO_LARGE  # the content rule answers, not the framing
    await still_chatting(live, bystander, sender)


@pytest_twisted.ensureDeferred
async def test_subprotocol_picks_the_encoding(live):
    # Negotiated: the server answers in that encoding whatever the client sends.
    for offered, json_out in ((["cim.v1.json"], True), (["cim.v1"], False), (["chat", "cim.v1.json", "cim.v1"], True)):
        for encoding in ("binary", "json"):
            client = await live.connect("ws-binary", encoding=encoding, subprotocols=offered)
            assert client.subprotocol == next(p for p in offered if p.startswith("cim"))
            raw = record(client)
            await client.login_password("alice", SECRET)
            await client.heartbeat()
            assert [binary for _, binary in raw] == [not json_out] * 2, (offered, encoding)
            await client.close()

    # None negotiated (none or unknown offered): answers follow the client's last message.
    for offered in ([], ["chat"]):
        client = await live.connect("ws-binary", subprotocols=offered)
        assert client.subprotocol is None
        raw = record(client)
        await client.login_password("alice", SECRET)
        client.json = True
        await client.heartbeat()
        await client.heartbeat()
        client.json = False
        await client.heartbeat()
        assert [binary for _, binary in raw] == [True, False, False, True]


@pytest_twisted.ensureDeferred
async def test_pushes_use_each_connections_encoding(live):
    alice = await live.login("alice", transport="ws-binary")
    bob_json = await live.login("bobby", transport="ws-json")
    bob_bin = await live.login("bobby", transport="ws-binary")
    bob_auto = await live.login("bobby", transport="ws-json", subprotocols=[])
    raws = [record(c) for c in (bob_json, bob_bin, bob_auto)]
    ack = await alice.send_message(bob_json.user_id, "to three encodings")
    for client, raw, binary in zip((bob_json, bob_bin, bob_auto), raws, (False, True, False), strict=True):
        _, _, push = await client.next_push(Cmd.MSG_DATA)
        assert push.server_msg_id == ack.server_msg_id and push.msg_data == b"to three encodings"
        assert raw[0][1] is binary
    body = json.loads(raws[0][0][0])["body"]
    assert base64.b64decode(body["msgData"]) == b"to three encodings" and body["serverMsgId"] == "1"


@pytest_twisted.ensureDeferred
async def test_origins_default_to_same_origin(live):
    ws_port = live.node.listening_port("ws").getHost().port
    http_port = live.node.listening_port("http").getHost().port
    for origin in ("http://evil.example", f"http://127.0.0.1:{http_port}", "http://127.0.0.1", "null"):
        with pytest.raises(WebSocketClosed) as err:
            await live.connect("ws-binary", origin=origin)
        assert err.value.http_status == 403, origin
    client = await live.connect("ws-json", origin=f"http://127.0.0.1:{ws_port}")
    assert (await client.login_password("alice", SECRET)).result_code == 200
    # The web client's case: its page and /ws on the HTTP port are one origin.
    client = await live.connect("ws-json", url=live.ws_http_url, origin=f"http://127.0.0.1:{http_port}")
    assert (await client.login_password("bobby", SECRET)).result_code == 200
    with pytest.raises(WebSocketClosed) as err:
        await live.connect("ws-json", url=live.ws_http_url, origin=f"http://127.0.0.1:{ws_port}")
    assert err.value.http_status == 403


@pytest_twisted.ensureDeferred
async def test_listed_and_any_origins(tmp_path):
    listed = await node(tmp_path / "a", **{"websocket.allowed_origins": ["https://chat.example.com"]})
    anyone = await node(tmp_path / "b", **{"websocket.allowed_origins": ["*"]})
    try:
        await listed.connect("ws-binary", origin="https://chat.example.com")
        await listed.connect("ws-binary")
        ws_port = listed.node.listening_port("ws").getHost().port
        for origin in ("http://chat.example.com", f"http://127.0.0.1:{ws_port}"):
            with pytest.raises(WebSocketClosed) as err:
                await listed.connect("ws-binary", origin=origin)
            assert err.value.http_status == 403
        await anyone.connect("ws-binary", origin="http://evil.example")
        await anyone.connect("ws-binary", url=anyone.ws_http_url, origin="null")
    finally:
        await stop_node(listed)
        await stop_node(anyone)


@pytest_twisted.ensureDeferred
async def test_websocket_on_the_http_port(live):
    alice = await live.login("alice", transport="ws-binary", url=live.ws_http_url)
    bob = await live.login("bobby", transport="ws-json", url=live.ws_http_url)
    ack = await alice.send_message(bob.user_id, "via /ws")
    _, _, push = await bob.next_push(Cmd.MSG_DATA)
    assert push.server_msg_id == ack.server_msg_id

    # The rest of the site is as it was; a plain GET of /ws is told to upgrade.
    agent = Agent(reactor)
    response = await agent.request(b"GET", (live.http_url + "/health").encode())
    assert response.code == 200 and json.loads(await _read_body(response))["devices"] == 2
    response = await agent.request(b"GET", (live.http_url + "/ws").encode(), Headers({}))
    assert response.code == 426  # (autobahn then drops the connection without a body length)


@pytest_twisted.ensureDeferred
async def test_http_path_off(tmp_path):
    live = await node(tmp_path, **{"websocket.http_path": ""})
    try:
        assert live.ws_http_url is None
        with pytest.raises(WebSocketClosed) as err:
            await live.connect("ws-binary", url=live.http_url.replace("http", "ws") + "/ws")
        assert err.value.http_status == 404
        await live.connect("ws-binary")
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_compression_is_negotiated_when_offered_and_enabled(tmp_path):
    on = await node(tmp_path / "on")
    off = await node(tmp_path / "off", **{"websocket.compression": False})
    try:
        for live, expected in ((on, True), (off, False)):
            await live.register("alice")
            await live.register("bobby")
            for transport in ("ws-binary", "ws-json"):
                alice = await live.login("alice", transport=transport, compression=True)
                bob = await live.login("bobby", transport=transport, compression=True)
                plain = await live.login("bobby", transport=transport)
                assert bool(alice.websocket.websocket_extensions_in_use) is expected
                assert not plain.websocket.websocket_extensions_in_use
                ack = await alice.send_message(bob.user_id, "squeeze me " * 100)
                for client in (bob, plain):
                    _, _, push = await client.next_push(Cmd.MSG_DATA)
                    assert push.server_msg_id == ack.server_msg_id and push.msg_data == b"squeeze me " * 100
    finally:
        await stop_node(on)
        await stop_node(off)


@pytest_twisted.ensureDeferred
async def test_websocket_pings_count_as_activity(tmp_path):
    """A browser tab that never sends the protocol heartbeat stays logged in while it answers
    WebSocket pings (every idle_timeout / 2 here); a TCP client is idled out."""
    live = await node(tmp_path, **{"limits.idle_timeout": 2.0})
    try:
        await live.register("alice")
        ws = await live.login("alice", transport="ws-json")
        tcp = await live.login("alice", transport="tcp")
        _, _, kick = await tcp.next_push(Cmd.KICKOUT_NOTIFY, timeout=6)
        assert kick.reason_code == ErrorCode.IDLE_TIMEOUT
        await tcp.closed
        assert ws.websocket.state == ws.websocket.STATE_OPEN and not ws.pushes
        assert (await ws.heartbeat()) == pb.CIMHeartBeat()
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_logout_and_kickout_close_the_websocket_cleanly(tmp_path):
    live = await node(tmp_path, **{"limits.max_devices": 1})
    try:
        await live.register("alice")
        first = await live.login("alice", transport="ws-json")
        rsp = await first.logout()
        assert rsp.result_code == 200
        closed = await first.closed
        assert (closed.code, closed.was_clean) == (1000, True)
        old = await live.login("alice", transport="ws-binary")
        await live.login("alice", transport="ws-json")
        _, _, kick = await old.next_push(Cmd.KICKOUT_NOTIFY)
        assert kick.reason_code == ErrorCode.SESSION_REPLACED
        closed = await old.closed
        assert (closed.code, closed.was_clean) == (1000, True)
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_client_disconnect_detaches_the_device(live):
    clients = [await live.login("alice", transport=t) for t in ("ws-binary", "ws-json")]
    agent = Agent(reactor)

    async def devices() -> int:
        response = await agent.request(b"GET", (live.http_url + "/health").encode())
        return json.loads(await _read_body(response))["devices"]

    assert await devices() == 2
    await clients[0].close()
    clients[1].transport.abortConnection()
    await clients[1].closed
    for _ in range(100):
        if await devices() == 0:
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    assert await devices() == 0
    with pytest.raises(WebSocketClosed):
        await clients[0].heartbeat()
