"""The CIM v1 binary transport over TCP (or any stream endpoint: ssl:, unix:, systemd:)."""

from __future__ import annotations

from google.protobuf.message import Message as PbMessage
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from coffeechat.core import ChatCore
from coffeechat.errors import ErrorCode

from .cim import BODY_TYPES, BodyError, decode_body
from .cim.session import CIMSession
from .framing import FrameDecoder, FrameError, encode_header

log = Logger()


class CIMProtocol(Protocol):
    """Length-prefixed frames in, frames out; the meaning of a frame is the session's business."""

    session: CIMSession

    def __init__(self, core: ChatCore, max_frame_bytes: int) -> None:
        self.core = core
        self._decoder = FrameDecoder(max_frame_bytes)

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.session = CIMSession(self.core, self.send, self.transport.loseConnection, str(peer))

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
            self.transport.loseConnection()

    def send(self, cmd: int, seq: int, message: PbMessage, cache: dict | None) -> None:
        """Write one frame; a body shared by many recipients is serialized once, in ``cache``."""
        if cache is None:
            body = message.SerializeToString()
        else:
            body = cache.get("bin")
            if body is None:
                body = cache["bin"] = message.SerializeToString()
        self.transport.writeSequence((encode_header(cmd, seq, len(body)), body))

    def connectionLost(self, reason=None) -> None:
        self.session.connection_lost()


class CIMServerFactory(Factory):
    """Builds a :class:`CIMProtocol` per connection, all on one core."""

    def __init__(self, core: ChatCore) -> None:
        self.core = core
        self.max_frame_bytes = core.config.limits.max_frame_bytes

    def buildProtocol(self, addr) -> CIMProtocol:
        protocol = CIMProtocol(self.core, self.max_frame_bytes)
        protocol.factory = self
        return protocol
