"""What both ends of a CIM WebSocket share: the subprotocol names and a leaner autobahn.

The server transport (:mod:`coffeechat.protocols.websocket`) and the client library
(:mod:`coffeechat.protocols.client`) both use it; it knows no server code.
"""

from __future__ import annotations

from autobahn.websocket.protocol import WebSocketProtocol

__all__ = ["SUBPROTOCOL_BINARY", "SUBPROTOCOL_JSON", "LeanWebSocketMixin"]

SUBPROTOCOL_BINARY = "cim.v1"
SUBPROTOCOL_JSON = "cim.v1.json"
_OPEN = WebSocketProtocol.STATE_OPEN


class LeanWebSocketMixin:
    """autobahn's per-message paths minus their per-message costs that nobody here uses.

    autobahn formats a debug log line (with terminal colours) for every read and every write
    whether or not debug logging is on, and fires an observer event (a Deferred) for every
    message; together that is about half of its CPU time per small message."""

    def dataReceived(self, data: bytes) -> None:
        self._dataReceived(data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if sync or chopsize or self.send_queue or self.state != _OPEN or self.logOctets:
            super().sendData(data, sync, chopsize)
            return
        self.transport.write(data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)

    def onMessageEnd(self) -> None:
        if not self.failedByMe:
            self.onMessage(b"".join(self.message_data), self.message_is_binary)
        self.message_data = None
