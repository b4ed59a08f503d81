"""The CIM frames over WebSocket, for browsers and anything else that cannot open a raw TCP socket.

Same session, same chat core as :mod:`coffeechat.protocols.tcp`; only the framing differs:

- a **binary** message carries exactly one CIM frame (16-byte header + protobuf body);
- a **text** message carries the JSON form of one frame, ``{"cmd": "MSG_DATA", "seq": 7, "body":
  {...}}``, where ``body`` is protobuf's canonical JSON mapping of the frame's message.

The subprotocol fixes the encoding of what the server sends (``cim.v1`` binary, ``cim.v1.json``
JSON); without one the server answers in the encoding of the client's last message.  See
docs/websocket.md.

The JSON form itself is part of the schema (:mod:`coffeechat.schema.jsonform`), which the client
library shares, as it shares :mod:`coffeechat.protocols.lean_websocket`.
"""

from __future__ import annotations

import inspect
import struct
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import txaio
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.protocol import TrafficStats, WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from autobahn.websocket.utf8validator import Utf8Validator
from google.protobuf.message import Message as PbMessage
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from coffeechat.addresses import TrustedProxies
from coffeechat.errors import ErrorCode
from coffeechat.schema import BODY_TYPES, BodyError, Cmd, decode_body, pb
from coffeechat.schema.jsonform import JsonFrameError, decode_json_frame, encode_json_body, encode_json_frame
from coffeechat.session import Session

from .framing import HEADER_SIZE, encode_header
from .lean_websocket import SUBPROTOCOL_BINARY, SUBPROTOCOL_JSON, LeanWebSocketMixin
from .tcp import OutputGuard, TurnFlusher, output_limit, queued_bytes, write_now

if TYPE_CHECKING:
    from coffeechat.node import ChatNode

__all__ = [
    "SUBPROTOCOL_BINARY",
    "SUBPROTOCOL_JSON",
    "CIMWebSocketFactory",
    "CIMWebSocketProtocol",
    "OriginPolicy",
    "create_factory",
    "websocket_resource",
]

log = Logger()
_NO_LIMIT = float("inf")

_SUBPROTOCOLS = {SUBPROTOCOL_BINARY: False, SUBPROTOCOL_JSON: True}  # name -> speaks JSON

# The JSON of a frame is larger than the frame (bytes travel as base64): text messages may be this
# much larger than limits.max_frame_bytes, and are held to the limit again once decoded.
TEXT_ALLOWANCE = 1.4
TEXT_OVERHEAD = 1024
# WebSocket pings keep a quiet but alive browser tab logged in (CIMWebSocketProtocol._keepalive).
AUTO_PING_INTERVAL = 30.0

CLOSE_PROTOCOL_ERROR = WebSocketProtocol.CLOSE_STATUS_CODE_PROTOCOL_ERROR  # 1002
CLOSE_MESSAGE_TOO_BIG = WebSocketProtocol.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG  # 1009
CLOSE_NORMAL = WebSocketProtocol.CLOSE_STATUS_CODE_NORMAL  # 1000
CLOSE_SERVICE_RESTART = 1012  # RFC 6455 registry: "service restart" (the node drains)
_OPEN = WebSocketProtocol.STATE_OPEN
_CLOSED = WebSocketProtocol.STATE_CLOSED

# length, command_id, seq_num: all the server needs from a header
_FIELDS = struct.Struct(">I6xHH2x")
_unpack_fields = _FIELDS.unpack_from
_MAX_U16 = 0xFFFF
_MALFORMED = ErrorCode.MALFORMED_BODY
# Client frames up to this size take CIMWebSocketProtocol's fast path (see processData).
_FAST_PATH_MAX = 4096
_FIN_BINARY = 0x82
_FIN_TEXT = 0x81
# What autobahn's server side keeps of the opening handshake and reads only during it.
_HANDSHAKE_ONLY = (
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "http_headers",
    "http_request_uri",
    "http_request_path",
    "http_request_params",
    "http_request_host",
    "websocket_protocols",
    "websocket_extensions",
    "websocket_origin",
    "_wskey",
    "_transport_details",  # the peer's address and TLS details, read at the handshake
    "trafficStats",  # nobody reads them: an open connection counts into its class's (trafficStats)
    "utf8validator",  # made again for the first text message (_LazyUtf8Validator)
    "_valid_events",  # autobahn's observer events, which CoffeeChat never fires: a class attribute
    "_results",
)

# ---- origins -----------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

_MISSING = object()
# The values autobahn gives these attributes of every connection and keeps until it closes: as
# class attributes, an open connection need not hold them (CIMWebSocketProtocol.onOpen).
_AT_OPEN = {
    **dict.fromkeys(
        (
            "closedByMe failedByMe droppedByMe wasClean wasServerConnectionDropTimeout wasOpenHandshakeTimeout "
            "wasCloseHandshakeTimeout wasServingFlashSocketPolicyFile wasMaxFramePayloadSizeExceeded "
            "wasMaxMessagePayloadSizeExceeded triggered inside_message"
        ).split(),
        False,
    ),
    **dict.fromkeys(
        (
            "wasNotCleanReason localCloseCode localCloseReason remoteCloseCode remoteCloseReason trackedTimings "
            "current_frame _perMessageCompress autoPingPending autoPingPendingSent autoPingTimeoutCall "
            "autoPingPendingCall "
            "closeHandshakeTimeoutCall openHandshakeTimeoutCall _send_queue _transport_details"
        ).split(),
        None,
    ),
    "data": b"",
    "autoPingPendingSeq": 0,
    "send_state": WebSocketProtocol.SEND_STATE_GROUND,
    "websocket_version": 13,
}


class _LazyUtf8Validator:
    """The incremental UTF-8 validator, made for a connection's first text message: binary clients
    never need one, and it is 176 bytes on every connection."""

    def __get__(self, protocol: WebSocketProtocol | None, owner: type | None = None) -> object:
        if protocol is None:
            return self
        validator = protocol.__dict__["utf8validator"] = Utf8Validator()
        return validator


def _origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the port filled in from the scheme; None if unparsable."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS.get(scheme, 0)


class OriginPolicy:
    """Which web pages may open a WebSocket: ``websocket.allowed_origins``.

    The Origin header protects browser users from other sites' pages; it is not a client
    authentication (anything but a browser can send any Origin, or none).  So: no Origin →
    allowed; ``["*"]`` → any; ``[]`` → only the page's own site (Origin host:port == Host);
    otherwise only the listed origins."""

    def __init__(self, allowed: list[str]) -> None:
        self.any = "*" in allowed
        self.listed = {key for key in map(_origin_key, allowed) if key is not None}

    def allows(self, origin: str, host: str) -> bool:
        if not origin:
            return True
        if self.any:
            return True
        key = _origin_key(origin)
        if key is None:
            return False
        if self.listed:
            return key in self.listed
        return _same_origin(key, host)


def _same_origin(origin: tuple[str, str, int], host: str) -> bool:
    """Whether an origin names the server the browser connected to (its Host header).  A Host
    without a port matches the origin scheme's default port (TLS often ends at a proxy, which then
    forwards the bare host name)."""
    try:
        parts = urlsplit("//" + host.strip())
        port = parts.port
    except ValueError:
        return False
    if not parts.hostname or parts.hostname.lower() != origin[1]:
        return False
    if port is None:
        return origin[2] == _DEFAULT_PORTS.get(origin[0])
    return origin[2] == port


# ---- the transport -----------------------------------------------------------------------------


class CIMWebSocketProtocol(OutputGuard, LeanWebSocketMixin, WebSocketServerProtocol):
    """One WebSocket connection: its messages in as ``(cmd, seq, message)``, the session's frames out
    in the connection's encoding."""

    factory: CIMWebSocketFactory
    session: Session | None = None
    # Answer in JSON?  Fixed by the subprotocol, else follows the client's last message.
    json = False
    websocket_protocol_in_use: str | None = None
    # This turn's output (see sendData): [bytes queued toward the client, output_limit() when the
    # turn began, frame, frame...], one attribute so that an open connection's dict stays small.
    _out: list | None = None
    # Output limits and closes, as over TCP (coffeechat.protocols.tcp.CIMProtocol).
    _out_bytes = 0  # set by OutputGuard._cut_off only
    _over = False
    _aborted = False
    _lost = False
    _refused = False
    _address: str | None = None  # the key this connection is counted by (node.addresses)
    _forwarded = False  # from a trusted proxy: counted at the handshake, by X-Forwarded-For
    # What autobahn would give each connection, shared (see _HANDSHAKE_ONLY, which onOpen drops).
    # One set of traffic counters for all open connections (autobahn keeps 176 bytes of them per
    # connection, which nothing reads): the node's totals since it started.
    trafficStats = TrafficStats()
    utf8validator = _LazyUtf8Validator()
    _valid_events = ("message",)
    _results = None
    websocket_extensions_in_use = ()

    @property
    def logged_in(self) -> bool:
        return self.session is not None and self.session.user is not None

    @property
    def encoding_fixed(self) -> bool:
        """A subprotocol was agreed: it fixes the encoding of what the server sends."""
        return self.websocket_protocol_in_use is not None

    # autobahn's queue of chopped or synchronous sends, which CoffeeChat never makes: kept only
    # once something is queued (an empty deque is 760 bytes, on every idle connection).
    @property
    def send_queue(self) -> deque | tuple:
        queue = self.__dict__.get("_send_queue")
        return () if queue is None else queue

    @send_queue.setter
    def send_queue(self, queue: deque) -> None:
        self.__dict__["_send_queue"] = queue if queue else None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.node.connections["ws"] += 1
        addresses = self.factory.node.addresses
        host = getattr(self.transport.getPeer(), "host", None)
        if self.factory.proxies.trusts(host):
            self._forwarded = True  # counted at the handshake, by the client X-Forwarded-For names
            return
        key = addresses.key(host)
        refused = addresses.admit(key, self)
        if refused is None:
            self._address = key
            return
        # Refused at once, before the opening handshake: an HTTP answer is what the client reads.
        self._refused = True
        body = refused.encode()
        write_now(
            self.transport,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body),
        )
        self._closeConnection()

    def connectionLost(self, reason) -> None:
        self._lost = True
        self._out = None
        self.factory.node.connections["ws"] -= 1
        self.factory.node.addresses.release(self._address, self)
        self._address = None
        super().connectionLost(reason)

    def onConnect(self, request: ConnectionRequest) -> str | None:
        """Check the Origin (403 if refused) and pick the subprotocol, i.e. the encoding."""
        if self._forwarded:
            self._admit_forwarded(request.headers.get("x-forwarded-for"))
        if not self.factory.origins.allows(request.origin or "", request.headers.get("host", "")):
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "origin not allowed")
        for name in request.protocols:
            speaks_json = _SUBPROTOCOLS.get(name)
            if speaks_json is not None:
                self.json = speaks_json
                return SUBPROTOCOL_JSON if speaks_json else SUBPROTOCOL_BINARY  # shared, not the header's copy
        return None

    def _admit_forwarded(self, forwarded: str | None) -> None:
        """The peer is a trusted proxy: the connection is the client's whom its X-Forwarded-For
        names (the session's address for logs and login limits), counted as theirs."""
        self._forwarded = False
        host = getattr(self.transport.getPeer(), "host", None) or ""
        client = self.factory.proxies.client(host, forwarded)
        if client != host:
            self.peer = f"tcp6:[{client}]:0" if ":" in client else f"tcp4:{client}:0"
        addresses = self.factory.node.addresses
        key = addresses.key(client)
        refused = addresses.admit(key, self)
        if refused is not None:
            raise ConnectionDeny(503, refused)
        self._address = key

    def onOpen(self) -> None:
        self.session = Session(self.factory.node, self.send, self._close, self.peer or "")
        node = self.factory.node
        node.wheel.schedule(node.reactor.seconds() + self.factory.ping_interval, self._keepalive)

    def succeedHandshake(self, res) -> None:
        super().succeedHandshake(res)
        if self.session is not None:
            self._compact()

    def _compact(self) -> None:
        """Keep of an open connection only what differs from its class: an idle connection is
        mostly the state autobahn leaves behind from the handshake (docs/performance.md)."""
        state = self.__dict__
        for name in _HANDSHAKE_ONLY:  # the opening handshake's request and answer, never read again
            state.pop(name, None)
        if not state.get("_send_queue"):
            state["_send_queue"] = None  # the handshake's answer went through it
        if state.get("websocket_extensions_in_use") == []:
            del state["websocket_extensions_in_use"]
        opened = state.get("_is_open")
        if opened is not None and opened.called:
            del state["_is_open"]  # fired, and nobody waits on it: is_open answers a fired one
        # What still has its class default (autobahn's flags and close codes, see _AT_OPEN) is
        # read from the class; a dict never shrinks, so the copy is sized for what stays.
        cls = type(self)
        self.__dict__ = {k: v for k, v in state.items() if getattr(cls, k, _MISSING) is not v}

    # autobahn makes two Deferreds for every connection, is_open and is_closed, which nothing on the
    # server waits on: made when asked for (or fired), not held by every idle connection.
    @property
    def is_open(self) -> Deferred:
        opened = self.__dict__.get("_is_open")
        if opened is None:
            if self.session is not None and self.state == _OPEN:
                return succeed(None)  # it has fired (and was dropped by _compact)
            opened = self.__dict__["_is_open"] = Deferred()
        return opened

    @is_open.setter
    def is_open(self, opened: Deferred) -> None:
        self.__dict__["_is_open"] = opened

    @property
    def is_closed(self) -> Deferred:
        closed = self.__dict__.get("_is_closed")
        if closed is None:
            closed = self.__dict__["_is_closed"] = Deferred()
        return closed

    @is_closed.setter
    def is_closed(self, closed: Deferred) -> None:
        if closed.called:
            self.__dict__["_is_closed"] = closed
        # else autobahn's own fresh one: the getter makes one when it is needed

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        self._dataReceived(data)
        flow = self.factory.flow
        if flow.overloaded:
            flow.hold(self.transport)  # storage is behind: stop reading, as the TCP transport does

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Collect the frames of a reactor turn and write them with one send, as the TCP transport
        does (:class:`~coffeechat.protocols.tcp.TurnFlusher`)."""
        if self._over or self._lost:
            return  # being cut off: what it misses is stored, and caught up at its next login
        if sync or chopsize or self.send_queue or self.state != _OPEN or self.logOctets:
            self.flush()
            if self.__dict__.get("_send_queue") is None:
                self.__dict__["_send_queue"] = deque()  # autobahn appends to it here
            super().sendData(data, sync, chopsize)
            return
        out = self._out
        if out is None:
            # What earlier turns left unsent counts too; no session yet (the handshake): no limit.
            limit = output_limit(self.session) if self.session is not None else _NO_LIMIT
            out = self._out = [self._queued() + len(data), limit, data]
            self.factory.flusher.add(self)
        else:
            out.append(data)
            out[0] += len(data)
        if out[0] > out[1] and not self._aborted:
            self._over = True  # cut off at this turn's flush, outside whatever fan-out is running

    def flush(self) -> None:
        out, self._out = self._out, None
        if self._over:
            self._cut_off(out[0] if out else self._queued())
            return
        if out and self.transport is not None and not self._lost:
            if write_now(self.transport, out[2] if len(out) == 3 else b"".join(out[2:])) and not self.send_queue:
                return
            if not self._aborted and self.session is not None:
                queued = self._queued()
                if queued > output_limit(self.session):
                    self._cut_off(queued)

    def _queued(self) -> int:
        """Bytes toward the client not taken yet: autobahn's own queue, then the transport's."""
        queued = sum(len(item[0]) for item in self.send_queue) if self.send_queue else 0
        return queued + (queued_bytes(self.transport) if self.transport is not None else 0)

    def _abort(self) -> None:
        """Reset the connection (after writing what is queued, the kick-out notice at most)."""
        if self._lost:
            return
        out, self._out = self._out, None
        if out and self.transport is not None:
            self.transport.write(b"".join(out[2:]))
        self._aborted = True
        if self.state != _CLOSED:
            self.droppedByMe = True
            self.wasClean = False
            self.wasNotCleanReason = "cut off by the server"
            self.state = _CLOSED
            txaio.resolve(self.is_closed, self)
        self._closeConnection(abort=True)

    def _closeConnection(self, abort: bool = False) -> None:
        if self._lost:
            return
        if abort:
            self._out = None
            self._lost = True
        else:
            self.flush()
            node = self.factory.node
            node.wheel.schedule(node.reactor.seconds() + node.config.limits.close_timeout, self._close_deadline)
        super()._closeConnection(abort)

    def _close_deadline(self, now: float) -> None:
        if self._lost or self.transport is None:
            return
        log.info(
            "{peer} did not take its last {queued} bytes within {timeout} s: connection aborted",
            peer=self.peer,
            queued=self._queued(),
            timeout=self.factory.node.config.limits.close_timeout,
        )
        self._lost = True
        self.transport.abortConnection()

    def processData(self) -> bool:
        """Take the frame of a typical request (small, binary, unfragmented, masked, uncompressed, all
        buffered) without autobahn's general frame machinery, whose mask object alone costs more than
        the rest of a frame; anything else goes the general way, which does all the checking."""
        data = self.data
        size = len(data)
        if (
            size < 6
            or data[0] != _FIN_BINARY
            or self.current_frame is not None
            or self.inside_message
            or self.failedByMe
            or self.state != _OPEN
            or self.logFrames
            or self.trackedTimings
        ):
            return super().processData()
        length = data[1] ^ 0x80  # 0..127 if the mask bit is set (clients must mask), else more
        if length < 126:
            start = 6
        elif length == 126 and size >= 8 and ((data[2] << 8) | data[3]) >= 126:  # 16-bit length, minimal
            length = (data[2] << 8) | data[3]
            start = 8
        else:
            return super().processData()
        end = start + length
        if length > self.factory.fast_path_max or end > size:
            return super().processData()
        mask = data[start - 4 : start]
        key = (mask * ((length >> 2) + 1))[:length]
        payload = (int.from_bytes(data[start:end], "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")
        self.data = data[end:]
        if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
            self._cancelAutoPingTimeoutCall()
        self.onMessage(payload, True)
        return len(self.data) > 0

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is None or session.closed:
            return
        if not isBinary:
            if not self.json and not self.encoding_fixed:
                self.json = True
            self._text(session, payload)
            return
        if self.json and not self.encoding_fixed:
            self.json = False
        size = len(payload)
        if size < HEADER_SIZE:
            self._refuse(CLOSE_PROTOCOL_ERROR, f"a binary message of {size} bytes is shorter than a frame header")
            return
        if size > self.factory.max_frame_bytes:
            self._refuse(CLOSE_MESSAGE_TOO_BIG, f"frame of {size} bytes exceeds {self.factory.max_frame_bytes}")
            return
        length, cmd, seq = _unpack_fields(payload)
        if length != size:
            self._refuse(CLOSE_PROTOCOL_ERROR, f"frame length {length} differs from the message length {size}")
            return
        try:
            request = decode_body(cmd, payload[HEADER_SIZE:])
        except BodyError as e:
            if cmd in BODY_TYPES:
                session.bad_frame(cmd, seq, _MALFORMED, str(e))
            else:
                session.request_received(cmd, seq, None)
            return
        session.request_received(cmd, seq, request)

    def _text(self, session: Session, payload: bytes) -> None:
        try:
            cmd, seq, request = decode_json_frame(payload)
        except JsonFrameError as e:
            if e.in_body:
                session.bad_frame(e.cmd, e.seq, e.code, e.message)
            else:
                error = pb.CIMErrorRsp(cmd_id=e.cmd, error_code=e.code, error_msg=e.message)
                session.answer(Cmd.ERROR_RSP, e.seq, error)
            return
        if request is not None and HEADER_SIZE + request.ByteSize() > self.factory.max_frame_bytes:
            self._refuse(CLOSE_MESSAGE_TOO_BIG, f"frame exceeds {self.factory.max_frame_bytes} bytes")
            return
        session.request_received(cmd, seq, request)

    def send(self, cmd: int, seq: int, message: PbMessage, cache: dict | None) -> None:
        """The session's output: one WebSocket message per frame, bodies shared by a fan-out
        encoded once per encoding (``cache["bin"]`` as over TCP, ``cache["ws-json"]``)."""
        if self.state != _OPEN:
            return  # closing: what was not sent is caught up from storage on the next login
        if self.json:
            if cache is None:
                body = encode_json_body(message)
            else:
                body = cache.get("ws-json")
                if body is None:
                    body = cache["ws-json"] = encode_json_body(message)
            frame = encode_json_frame(cmd, seq, body)
            if self._perMessageCompress is None and len(frame) <= self.factory.plain_send_max:
                self.sendData(_frame_head(_FIN_TEXT, len(frame)) + frame)
            else:
                self.sendMessage(frame, False)
        else:
            if cache is None:
                body = message.SerializeToString()
            else:
                body = cache.get("bin")
                if body is None:
                    body = cache["bin"] = message.SerializeToString()
            size = HEADER_SIZE + len(body)
            if self._perMessageCompress is None and size <= self.factory.plain_send_max:
                # The frame autobahn's sendMessage would make, without its general machinery
                # (a server frame is not masked): half of what sending a small message cost.
                self.sendData(b"".join((_frame_head(_FIN_BINARY, size), encode_header(cmd, seq, len(body)), body)))
            else:
                self.sendMessage(encode_header(cmd, seq, len(body)) + body, True)

    def _close(self) -> None:
        """The session is done with the connection (logout, kick-out): close it cleanly."""
        if self._aborted:
            return  # cut off: _cut_off resets the connection
        if self.state == _OPEN:
            if self.factory.node.draining:
                # A node that drains says "service restart": reconnect (to another node), not
                # "done".  sendClose() only lets an application send 1000 and 3000-4999, so the
                # frame is sent as autobahn sends its own protocol-level codes.
                self.sendCloseFrame(code=CLOSE_SERVICE_RESTART, isReply=False)
            else:
                self.sendClose(CLOSE_NORMAL)

    def _refuse(self, code: int, reason: str) -> None:
        """A message that breaks the framing: this connection ends, with a close code saying why."""
        if self.session is not None:
            self.session.connection_lost()
        self._fail_connection(code, reason)

    def _keepalive(self, now: float) -> None:
        """Ping a peer that was quiet for ``ping_interval``: browsers answer by themselves, so an open
        tab stays logged in, and one that does not answer is idled out by its session
        (``limits.idle_timeout``) like any quiet connection.  On the node's wheel: autobahn's
        auto-ping keeps a timer per connection, which is more memory than the rest of its state."""
        session = self.session
        if self._lost or self.state != _OPEN or session is None or session.closed:
            return
        interval = self.factory.ping_interval
        due = session.last_seen + interval
        if now >= due:
            self.sendPing()
            due = now + interval
        self.factory.node.wheel.schedule(due, self._keepalive)

    def _activity(self) -> None:
        session = self.session
        if session is not None:
            session.last_seen = session.clock.seconds()

    def onPing(self, payload: bytes) -> None:
        self._activity()
        if self.state == _OPEN:
            self.sendPong(payload)

    def onPong(self, payload: bytes) -> None:
        self._activity()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._out = None
        self.factory.flow.forget(self.transport)
        if self.session is not None:
            self.session.connection_lost()


for _name, _value in _AT_OPEN.items():
    if not hasattr(CIMWebSocketProtocol, _name):
        setattr(CIMWebSocketProtocol, _name, _value)


def _frame_head(first: int, length: int) -> bytes:
    """The header of an unmasked frame of ``length`` payload bytes (RFC 6455 section 5.2)."""
    if length < 126:
        return bytes((first, length))
    if length < 0x10000:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


def _refuse_compression(offers: list) -> None:
    return None


def _accept_deflate(offers: list) -> PerMessageDeflateOfferAccept | None:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


class CIMWebSocketFactory(WebSocketServerFactory):
    """Builds a :class:`CIMWebSocketProtocol` per connection, all on one core, with the limits of
    the TCP transport."""

    protocol = CIMWebSocketProtocol

    def __init__(self, node: ChatNode) -> None:
        super().__init__(server="CoffeeChat", reactor=node.reactor)
        self.node = node
        limits = node.config.limits
        config = node.config.websocket
        self.max_frame_bytes = limits.max_frame_bytes
        self.max_message_bytes = int(limits.max_frame_bytes * TEXT_ALLOWANCE) + TEXT_OVERHEAD
        self.fast_path_max = min(_FAST_PATH_MAX, self.max_message_bytes)
        self.origins = OriginPolicy(config.allowed_origins)
        self.proxies = TrustedProxies(node.config.http.trusted_proxies)
        self.flow = node.flow
        self.flusher = TurnFlusher(node.reactor)
        self.ping_interval = min(AUTO_PING_INTERVAL, limits.idle_timeout / 2)
        # One call: setProtocolOptions resets allowNullOrigin to False whenever it is called.
        self.setProtocolOptions(
            maxMessagePayloadSize=self.max_message_bytes,
            maxFramePayloadSize=self.max_message_bytes,
            autoPingInterval=0,  # pings go out from the node's wheel (CIMWebSocketProtocol._keepalive)
            utf8validateIncoming=True,  # text that is not UTF-8 closes with 1007 before it reaches us
            failByDrop=False,  # send the close code (1002, 1007, 1009) before closing
            webStatus=False,  # a plain GET gets 426, not autobahn's status page
            allowNullOrigin=True,  # origins are decided by OriginPolicy (403), not by autobahn (400)
            perMessageCompressionAccept=_accept_deflate if config.compression else _refuse_compression,
        )

    def setProtocolOptions(self, *args, **kwargs) -> None:
        """Autobahn copies some 40 options from the factory onto every connection, unless the
        protocol has them already: a subclass per factory holds them as class attributes, so an
        idle connection does not carry 40 more entries in its ``__dict__``."""
        super().setProtocolOptions(*args, **kwargs)
        # Messages up to this size are framed by CIMWebSocketProtocol.send itself; larger ones, and
        # every one when an option changes how autobahn frames them, go through autobahn.
        plain = not (self.maskServerFrames or self.autoFragmentSize or self.logFrames or self.trackTimings)
        self.plain_send_max = (self.maxMessagePayloadSize or 1 << 62) if plain else -1
        base = CIMWebSocketProtocol
        options = {}
        for name in base.CONFIG_ATTRS:
            value = getattr(self, name)
            options[name] = staticmethod(value) if inspect.isfunction(value) else value
        # The factory too: an open connection's own entry for it is dropped (CIMWebSocketProtocol._compact).
        self.protocol = type(base.__name__, (base,), {"__module__": base.__module__, "factory": self, **options})


def create_factory(node: ChatNode) -> CIMWebSocketFactory:
    """The ``ws`` transport of :mod:`coffeechat.plugins`: listened on by itself (``listen.ws``)."""
    return CIMWebSocketFactory(node)


class CIMWebSocketResource(WebSocketResource):
    """The WebSocket path of the HTTP site.  The connection leaves the HTTP transport here: it
    stops counting as an HTTP connection of its address (``handed_over`` of the channel) and is
    counted as a CIM connection from now on."""

    def render(self, request):
        if self._factory.node.draining:  # stopping: a new client belongs on another node
            request.setResponseCode(503)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.setHeader(b"Retry-After", b"1")
            return b"this node is shutting down: connect to another one"
        handed_over = getattr(request.channel, "handed_over", None)
        if handed_over is not None:
            handed_over()
        return super().render(request)


def websocket_resource(node: ChatNode) -> WebSocketResource:
    """The same transport as a twisted.web resource, mounted at ``websocket.http_path`` of the HTTP
    site so that a web page reaches it on its own origin and port."""
    return CIMWebSocketResource(CIMWebSocketFactory(node))
