"""The CIM v1 binary transport over TCP (or any stream endpoint: ssl:, unix:, systemd:)."""

from __future__ import annotations

from google.protobuf.message import Message as PbMessage
from twisted.internet import tcp
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol

from coffeechat.errors import ErrorCode
from coffeechat.node import ChatNode
from coffeechat.schema import BODY_TYPES, BodyError, Cmd, decode_body, pb
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


def write_now(transport, data: bytes) -> bool:
    """Write ``data``, straight to the socket when that cannot reorder anything; True when the
    socket took it all (nothing is queued toward the peer then)."""
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
            return True
        data = data[sent:]
    transport.write(data)
    return False


def queued_bytes(transport) -> int:
    """Bytes written to ``transport`` that the peer has not taken yet (what the kernel holds aside):
    a socket's send buffer (``abstract.FileDescriptor``: ``dataBuffer`` past ``offset``, and
    ``_tempDataBuffer``), plus, under TLS, the cleartext waiting for the handshake."""
    total = 0
    while isinstance(transport, TLSMemoryBIOProtocol):
        total += sum(map(len, transport._appSendBuffer))
        transport = transport.transport
    buffer = getattr(transport, "dataBuffer", None)
    if buffer is None:
        return total
    return total + len(buffer) - transport.offset + transport._tempDataLen


def output_limit(session: Session | None) -> int:
    """The bytes a connection may have queued toward its client: ``limits.max_output_bytes`` once
    logged in, ``limits.max_output_bytes_before_login`` before (the answers are small then)."""
    if session is None or session.user is None:
        return session.limits.max_output_bytes_before_login if session is not None else 0
    return session.limits.max_output_bytes


def slow_consumer_reason(queued: int, limit: int) -> str:
    return f"{queued} bytes waiting to be sent, over the limit of {limit}: read faster or catch up from history"


def peer_text(address) -> str:
    """``host:port`` of a TCP peer (``[v6]:port``), for the log; other addresses as they print."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None or port is None:
        return str(address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OutputGuard:
    """The slow-consumer cut-off of the stream transports (CIM over TCP, WebSocket): a class
    that queues frames per turn keeps ``_out``/``_out_bytes``, ``_over`` (the turn went over the
    limit), ``_aborted``, ``_lost``, ``session`` and an ``_abort()`` that resets the connection."""

    def _cut_off(self, queued: int) -> None:
        """The client does not read what it is sent: tell it why (if it ever reads again) and
        drop the connection now; a close would wait for a buffer that never drains."""
        if self._aborted or self._lost:
            return
        session = self.session
        limit = output_limit(session)
        self._aborted = True
        self._over = False
        self._out = None
        self._out_bytes = 0
        if session is not None and not session.closed:
            # Logged at info, with the user and device; the notice goes after what it did not read.
            session.disconnect(ErrorCode.SLOW_CONSUMER, slow_consumer_reason(queued, limit))
        self._abort()


class CIMProtocol(OutputGuard, Protocol):
    """Length-prefixed frames in, frames out; the meaning of a frame is the session's business.

    What is queued toward the client (this turn's frames and the transport's buffer) is held to
    :func:`output_limit`: a client that does not read what it is sent is cut off (KICKOUT_NOTIFY
    SLOW_CONSUMER, then an abort), and every close ends within ``limits.close_timeout``."""

    session: Session

    def __init__(self, node: ChatNode, max_frame_bytes: int, flusher: TurnFlusher) -> None:
        self.node = node
        self.flow = node.flow
        self._decoder = FrameDecoder(max_frame_bytes)
        self._flusher = flusher
        self._out: list[bytes] | None = None
        self._out_bytes = 0  # this turn's frames and what was still queued when the turn began
        self._over = False  # that went over the limit: cut off at the flush
        self._turn_limit = 0  # output_limit() when this turn's first frame was queued
        self._closing = False
        self._aborted = False
        self._lost = False
        self._address: str | None = None  # the key this connection is counted by (node.addresses)

    @property
    def logged_in(self) -> bool:
        return self.session.user is not None

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        # Without TCP_NODELAY a frame written while the previous one waits for the client's
        # delayed ACK sits in the kernel for up to 40 ms (Nagle's algorithm): a call's 200 OK
        # after its 180, an ack after a push.  Frames are already coalesced into one write per
        # reactor turn (_flush), so this sends no more packets than it must.  (A TLS or PROXY
        # wrapper passes it to the socket; a transport without it, in tests, has none to set.)
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            try:
                no_delay(True)
            except OSError:
                pass
        self.node.connections["cim"] += 1
        self.session = Session(self.node, self.send, self.close, peer_text(peer))
        addresses = self.node.addresses
        key = addresses.key(getattr(peer, "host", None))
        refused = addresses.admit(key, self)
        if refused is None:
            self._address = key
            return
        # Refused at once: say why, and close (neither the session nor its timers matter now).
        self.session.connection_lost("")
        notice = pb.CIMKickoutNotify(reason_code=ErrorCode.TOO_MANY_CONNECTIONS, reason=refused)
        self.send(Cmd.KICKOUT_NOTIFY, 1, notice, None)
        self.close()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
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
        out = self._out
        if out is None:
            if self._over or self._lost:
                return  # being cut off: what it misses is stored, and caught up at its next login
            out = self._out = []
            self._flusher.add(self)
            self._out_bytes = queued_bytes(self.transport)  # what earlier turns left unsent counts too
            self._turn_limit = output_limit(self.session)
        elif self._over:
            return
        if cache is None:
            body = message.SerializeToString()
        else:
            body = cache.get("bin")
            if body is None:
                body = cache["bin"] = message.SerializeToString()
        out.append(encode_header(cmd, seq, len(body)))
        out.append(body)
        queued = self._out_bytes + 16 + len(body)
        self._out_bytes = queued
        if queued > self._turn_limit and not self._aborted:
            self._over = True  # cut off at this turn's flush, outside whatever fan-out is running

    def flush(self) -> None:
        out, self._out = self._out, None
        if self._over:
            self._cut_off(self._out_bytes)
            return
        self._out_bytes = 0
        if out and not self._lost:
            if write_now(self.transport, b"".join(out)):
                return
            if not self._aborted:
                queued = queued_bytes(self.transport)
                if queued > output_limit(self.session):
                    self._cut_off(queued)

    def _abort(self) -> None:
        if self._lost:
            return
        out, self._out = self._out, None
        if out:
            self.transport.write(b"".join(out))
        self._lost = True
        self.transport.abortConnection()

    def close(self) -> None:
        """Send what is queued, then close; a peer that does not take it within
        ``limits.close_timeout`` is cut off."""
        if self._aborted:
            self._abort()
            return
        if self._closing:
            return
        self._closing = True
        self.flush()
        if self._aborted:
            return
        self.transport.loseConnection()
        self.node.wheel.schedule(self.node.reactor.seconds() + self.session.limits.close_timeout, self._close_deadline)

    def _close_deadline(self, now: float) -> None:
        if self._lost:
            return
        log.info(
            "{peer} did not take its last {queued} bytes within {timeout} s: connection aborted",
            peer=self.session.peer,
            queued=queued_bytes(self.transport),
            timeout=self.session.limits.close_timeout,
        )
        self._lost = True
        self.transport.abortConnection()

    def connectionLost(self, reason=None) -> None:
        self._lost = True
        self._out = None
        self.node.connections["cim"] -= 1
        self.node.addresses.release(self._address, self)
        self._address = None
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
