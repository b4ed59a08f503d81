"""What an idle WebSocket connection keeps: not the opening handshake (issue 16, ≤ 5 KB each)."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from coffeechat.protocols.websocket import _HANDSHAKE_ONLY, CIMWebSocketFactory

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
