"""What an idle WebSocket connection keeps: not the opening handshake (issue 16, ≤ 5 KB each)."""

from __future__ import annotations

import sys

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from coffeechat.protocols.framing import encode_frame
from coffeechat.protocols.websocket import _HANDSHAKE_ONLY, CIMWebSocketFactory, CIMWebSocketProtocol
from coffeechat.schema import Cmd

from .memory_node import MemoryNode

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
