"""The CIM v1 binary transport over TCP (or any stream endpoint: ssl:, unix:, systemd:)."""

from __future__ import annotations

from google.protobuf.message import Message as PbMessage
from twisted.internet import tcp
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from coffeechat.errors import ErrorCode
from coffeechat.node import ChatNode
from coffeechat.schema import BODY_TYPES, BodyError, decode_body
from coffeechat.session import Session

from .framing import FrameDecoder, FrameError, encode_header

log = Logger()


class TurnFlusher:
    """Sends what each connection was given during one reactor turn, with one ``send`` each.

    Frames are collected per connection and written together by a ``callLater(0)``, which runs
    right after the current batch of I/O and thread callbacks.  On a plain TCP connection whose
    buffer is empty the bytes go straight to the socket, which spares the reactor the
    add-writer/remove-writer round trip (two ``epoll_ctl`` and one wake-up) per write; anything
    the kernel does not take, and every other transport, goes through ``transport.write``.
    """

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self._dirty: list[CIMProtocol] = []
        self._scheduled = False

    def add(self, protocol: CIMProtocol) -> None:
        self._dirty.append(protocol)
        if not self._scheduled:
            self._scheduled = True
            self.reactor.callLater(0, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for protocol in dirty:
            protocol.flush()


def write_now(transport, data: bytes) -> None:
    """Write ``data``, straight to the socket when that cannot reorder anything."""
    if (
        type(transport) is tcp.Server
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
    ):
        try:
            sent = transport.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # let Twisted's own write path meet the error and close properly
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def peer_text(address) -> str:
    """``host:port`` of a TCP peer (``[v6]:port``), for the log; other addresses as they print."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None or port is None:
        return str(address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class CIMProtocol(Protocol):
    """Length-prefixed frames in, frames out; the meaning of a frame is the session's business."""

    session: Session

    def __init__(self, node: ChatNode, max_frame_bytes: int, flusher: TurnFlusher) -> None:
        self.node = node
        self.flow = node.flow
        self._decoder = FrameDecoder(max_frame_bytes)
        self._flusher = flusher
        self._out: list[bytes] | None = None

    def connectionMade(self) -> None:
        self.session = Session(self.node, self.send, self.close, peer_text(self.transport.getPeer()))

    def dataReceived(self, data: bytes) -> None:
        error = None
        try:
            frames = self._decoder.feed(data)
        except FrameError as e:
            frames, error = e.frames, e
        session = self.session
        for cmd, seq, body in frames:
            try:
                request = decode_body(cmd, body)
            except BodyError as e:
                if cmd in BODY_TYPES:
                    session.bad_frame(cmd, seq, ErrorCode.MALFORMED_BODY, str(e))
                else:
                    session.request_received(cmd, seq, None)
                continue
            session.request_received(cmd, seq, request)
        if error is not None:
            log.info("closing {peer}: {error}", peer=session.peer, error=str(error))
            session.connection_lost()
            self.close()
        elif self.flow.overloaded:
            self.flow.hold(self.transport)

    def send(self, cmd: int, seq: int, message: PbMessage, cache: dict | None) -> None:
        """Queue one frame for this turn's flush; a body shared by many recipients is serialized
        once, in ``cache``."""
        if cache is None:
            body = message.SerializeToString()
        else:
            body = cache.get("bin")
            if body is None:
                body = cache["bin"] = message.SerializeToString()
        out = self._out
        if out is None:
            out = self._out = []
            self._flusher.add(self)
        out.append(encode_header(cmd, seq, len(body)))
        out.append(body)

    def flush(self) -> None:
        out, self._out = self._out, None
        if out:
            write_now(self.transport, b"".join(out))

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self._out = None
        self.flow.forget(self.transport)
        self.session.connection_lost()


class CIMServerFactory(Factory):
    """Builds a :class:`CIMProtocol` per connection, all on one node (the ``cim`` transport)."""

    def __init__(self, node: ChatNode) -> None:
        self.node = node
        self.max_frame_bytes = node.config.limits.max_frame_bytes
        self.flusher = TurnFlusher(node.reactor)

    def buildProtocol(self, addr) -> CIMProtocol:
        protocol = CIMProtocol(self.node, self.max_frame_bytes, self.flusher)
        protocol.factory = self
        return protocol
