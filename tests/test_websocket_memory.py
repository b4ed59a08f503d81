"""What an idle WebSocket connection keeps: not the opening handshake, no timer of its own, none of
autobahn's per-connection objects that nothing reads (issue 16, ≤ 5 KB each)."""

from __future__ import annotations

import gc
import sys
import tracemalloc

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from coffeechat.errors import ErrorCode
from coffeechat.protocols.framing import FrameDecoder, encode_frame
from coffeechat.protocols.websocket import _HANDSHAKE_ONLY, CIMWebSocketFactory, CIMWebSocketProtocol
from coffeechat.schema import Cmd, decode_body, pb

from .memory_node import MemoryNode, md5

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: cim.v1\r\nOrigin: http://x\r\n\r\n"
)


def test_an_open_connection_keeps_no_handshake_state():
    factory = CIMWebSocketFactory(MemoryNode().core)
    protocol = factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 1234))
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE)
    assert protocol.state == protocol.STATE_OPEN and protocol.session is not None
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    assert protocol.websocket_protocol_in_use == "cim.v1"  # what was negotiated stays
    kept = set(vars(protocol))
    assert kept.isdisjoint(_HANDSHAKE_ONLY), kept & set(_HANDSHAKE_ONLY)
    assert "http_headers" in _HANDSHAKE_ONLY and "http_request_data" in _HANDSHAKE_ONLY
    protocol.connectionLost(Failure(ConnectionDone()))


def test_an_open_connection_holds_only_what_differs_from_its_class():
    """autobahn's ~40 options live on a class per factory, its flags and close codes keep their
    class defaults until they change, the empty send queue is not kept, and the instance dict
    is sized for what stays: about 18 entries, not 80."""
    node = MemoryNode()
    factory = CIMWebSocketFactory(node.core)
    protocol = factory.buildProtocol(None)
    assert type(protocol) is not CIMWebSocketProtocol and isinstance(protocol, CIMWebSocketProtocol)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 1234))
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE)
    state = vars(protocol)
    assert not set(state) & set(CIMWebSocketProtocol.CONFIG_ATTRS)
    assert protocol.maxMessagePayloadSize == factory.maxMessagePayloadSize  # read from the class
    assert protocol.perMessageCompressionAccept([]) is None  # a function option stays a function
    assert "closedByMe" not in state and protocol.closedByMe is False
    assert protocol.send_queue == () and "_send_queue" not in state
    assert len(state) <= 24, sorted(state)
    assert sys.getsizeof(state) <= 700
    # it still works: a heartbeat is answered, a close is clean
    transport.clear()
    protocol.dataReceived(_masked_binary(encode_frame(Cmd.LOGIN_HEARTBEAT, 1, b"")))
    node.clock.advance(0)  # the turn's frames are written at its end
    assert transport.value()[:1] == b"\x82"  # a binary frame: the answer
    protocol.sendClose(1000)
    assert protocol.closedByMe is True and "closedByMe" in vars(protocol)
    protocol.connectionLost(Failure(ConnectionDone()))


def _masked_binary(payload: bytes) -> bytes:
    """A client's binary frame (clients must mask)."""
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x82, 0x80 | len(payload)]) + mask + masked


def _server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of what the server sent (server frames are not masked)."""
    frames = []
    while data:
        opcode, length, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        frames.append((opcode, data[start : start + length]))
        data = data[start + length :]
    return frames


def _open(factory: CIMWebSocketFactory, host: str = "10.0.0.1") -> tuple[CIMWebSocketProtocol, StringTransport]:
    protocol = factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 1234))
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE)
    transport.clear()
    return protocol, transport


def test_an_idle_connection_keeps_no_autobahn_objects_nobody_reads():
    """No timer, traffic counters, UTF-8 validator, observer lists or open/closed Deferreds of its
    own: nine attributes, and a few hundred bytes more than the session's."""
    factory = CIMWebSocketFactory(MemoryNode().core)
    protocol, _ = _open(factory)
    state = vars(protocol)
    for name in ("trafficStats", "utf8validator", "_valid_events", "_results", "autoPingPendingCall"):
        assert name not in state, name
    assert "_is_open" not in state and "_is_closed" not in state
    assert len(state) <= 10 and sys.getsizeof(state) <= 300, sorted(state)
    assert protocol.is_open.called  # a late waiter still hears that it is open
    closed = protocol.is_closed
    assert not closed.called
    protocol.sendClose(1000)
    protocol.connectionLost(Failure(ConnectionDone()))
    assert closed.called and protocol.is_closed is closed


def test_python_heap_per_idle_connection():
    """What 300 more open (not logged-in) connections take of the Python heap, StringTransports and
    the per-address counting included: 4.0 KB each with autobahn's timer and objects, about 2.2 KB
    without."""
    node = MemoryNode()
    factory = CIMWebSocketFactory(node.core)
    warm = [_open(factory, f"10.1.0.{i + 1}") for i in range(20)]
    node.clock.advance(0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [_open(factory, f"10.0.{i // 200}.{i % 200 + 1}") for i in range(300)]
        node.clock.advance(0)  # the end of the reactor turn: what it queued is written
        for _, transport in held:
            transport.clear()
        gc.collect()
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    assert per_connection < 2_800, per_connection
    assert all(p.state == p.STATE_OPEN for p, _ in held + warm)


def test_a_quiet_connection_is_pinged_and_idled_out_if_it_never_answers():
    """The node's wheel pings a connection quiet for ping_interval (idle_timeout / 2); a pong is a
    sign of life, and one that never answers is idled out by its session, as autobahn's own
    auto-ping timeout did."""
    node = MemoryNode(**{"limits.idle_timeout": 20.0})
    factory = CIMWebSocketFactory(node.core)
    assert factory.ping_interval == 10.0
    node.user("alice")
    answering, a_transport = _open(factory, "10.0.0.1")
    silent, s_transport = _open(factory, "10.0.0.2")
    for protocol, transport in ((answering, a_transport), (silent, s_transport)):
        login = pb.CIMAuthReq(user_name="alice", user_pwd=md5("secret"), client_type=2)
        protocol.dataReceived(_masked_binary(encode_frame(Cmd.LOGIN_AUTH_REQ, 1, login.SerializeToString())))
        node.clock.advance(0)
        ((opcode, payload),) = _server_frames(transport.value())
        ((cmd, _, body),) = FrameDecoder(1 << 20).feed(payload)
        assert opcode == 2 and cmd == Cmd.LOGIN_AUTH_RSP and decode_body(cmd, body).result_code == 200
        transport.clear()
    node.advance(5)
    assert a_transport.value() == s_transport.value() == b""  # not quiet for 10 s yet
    pings = 0
    for _ in range(40):  # 40 s: twice the idle timeout
        node.advance(1)
        for opcode, payload in _server_frames(a_transport.value()):
            if opcode == 9:
                pings += 1
                answering.dataReceived(_masked(0x8A, payload))  # the pong a browser sends by itself
        a_transport.clear()
    assert pings >= 3
    assert answering.state == answering.STATE_OPEN and answering.session.user is not None
    frames = _server_frames(s_transport.value())
    assert frames[0][0] == 9  # pinged, never answered
    kick = [p for op, p in frames if op == 2]
    ((cmd, _, body),) = FrameDecoder(1 << 20).feed(kick[0])
    assert cmd == Cmd.KICKOUT_NOTIFY and decode_body(cmd, body).reason_code == ErrorCode.IDLE_TIMEOUT
    assert silent.state != silent.STATE_OPEN
    answering.connectionLost(Failure(ConnectionDone()))
    silent.connectionLost(Failure(ConnectionDone()))


def test_a_talking_connection_is_not_pinged():
    node = MemoryNode(**{"limits.idle_timeout": 20.0, "limits.login_timeout": 60.0})
    factory = CIMWebSocketFactory(node.core)
    protocol, transport = _open(factory)
    for _ in range(30):
        node.advance(1)
        protocol.dataReceived(_masked_binary(encode_frame(Cmd.LOGIN_HEARTBEAT, 1, b"")))
    node.clock.advance(0)
    assert [op for op, _ in _server_frames(transport.value())] == [2] * 30  # 30 answers, no ping
    protocol.connectionLost(Failure(ConnectionDone()))


def _masked(first: int, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    assert len(payload) < 126
    return bytes([first, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
