"""A lean CIM v1 client on raw asyncio for the load generators, over TCP or WebSocket.

Why not :mod:`coffeechat.protocols.client`: that one runs on Twisted and decodes every frame; a
generator holding 10,000 connections or sending 10,000 messages a second must spend as little
CPU per frame as possible, so here a frame is a precompiled header struct plus bytes, bodies are
decoded only where a scenario needs a field, and nothing is logged per frame.

Why a WebSocket client of our own (:class:`WsConn`) rather than a library: the generator must not
be the bottleneck of a WebSocket run either.  The subprotocol ``cim.v1`` puts exactly one CIM
frame in one binary message, so a client needs only the handshake (with its
``Sec-WebSocket-Accept`` check), masked binary frames out, unmasked frames in, pong for ping and
the close handshake: about a hundred lines, with no per-message objects.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from coffeechat.protocols.framing import HEADER, HEADER_SIZE, VERSION, FrameDecoder, FrameError
from coffeechat.schema import Cmd, pb

# Plain ints: IntEnum comparisons cost more on every frame.
LOGIN_AUTH_TOKEN_REQ = int(Cmd.LOGIN_AUTH_TOKEN_REQ)
LOGIN_AUTH_TOKEN_RSP = int(Cmd.LOGIN_AUTH_TOKEN_RSP)
LOGIN_AUTH_REQ = int(Cmd.LOGIN_AUTH_REQ)
LOGIN_AUTH_RSP = int(Cmd.LOGIN_AUTH_RSP)
LOGIN_HEARTBEAT = int(Cmd.LOGIN_HEARTBEAT)
LIST_SESSIONS_REQ = int(Cmd.LIST_RECENT_CONTACT_SESSION_REQ)
LIST_SESSIONS_RSP = int(Cmd.LIST_RECENT_CONTACT_SESSION_RSP)
LIST_MSG_REQ = int(Cmd.LIST_MSG_REQ)
LIST_MSG_RSP = int(Cmd.LIST_MSG_RSP)
MSG_DATA = int(Cmd.MSG_DATA)
MSG_DATA_ACK = int(Cmd.MSG_DATA_ACK)
GROUP_CREATE_REQ = int(Cmd.GROUP_CREATE_DEFAULT_REQ)
GROUP_CREATE_RSP = int(Cmd.GROUP_CREATE_DEFAULT_RSP)
GROUP_MEMBER_CHANGED_NOTIFY = int(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
ERROR_RSP = int(Cmd.ERROR_RSP)
KICKOUT_NOTIFY = int(Cmd.KICKOUT_NOTIFY)

SUCCESS = int(pb.kCIM_ERR_SUCCESS)
RES_OK = int(pb.kCIM_RES_CODE_OK)
SINGLE = int(pb.kCIM_SESSION_TYPE_SINGLE)
GROUP = int(pb.kCIM_SESSION_TYPE_GROUP)
TEXT = int(pb.kCIM_MSG_TYPE_TEXT)
NOTIFICATION = int(pb.kCIM_MSG_TYPE_NOTIFACATION)
MAX_SEQ = 65534
CLIENT_VERSION = "coffeechat-bench/1"
# Frames from the server are small; a generous bound only guards against a broken stream.
MAX_FRAME = 4 * 1024 * 1024

_pack = HEADER.pack

FrameHandler = Callable[["Conn", int, int, bytes], None]


def frame(cmd: int, seq: int, body: bytes = b"") -> bytes:
    """One whole frame (the header struct is compiled once, in :mod:`coffeechat.protocols.framing`)."""
    return _pack(HEADER_SIZE + len(body), VERSION, 0, 0, cmd, seq, 0) + body


def _ignore(conn: Conn, cmd: int, seq: int, body: bytes) -> None:
    """Default frame handler: frames nobody waits for are dropped."""


class ServerClosed(ConnectionError):
    """The connection closed while a request waited for its answer."""


class HandshakeError(ConnectionError):
    """The server refused the WebSocket upgrade, or answered it wrongly."""


class Conn(asyncio.Protocol):
    """One client connection over TCP.

    Answers to :meth:`request` are matched by seq and expected command (or ERROR_RSP); every other
    frame goes to ``handler(conn, cmd, seq, body)``, which a scenario sets to its own hot path.
    ``tag`` carries the scenario's per-connection data (a pair, a user).  ``out(frame_bytes)``
    writes one whole CIM frame: the transport's own ``write`` here, the WebSocket framing in
    :class:`WsConn`, so scenarios are written once for both transports.
    """

    __slots__ = (
        "transport", "decoder", "handler", "pending", "seq", "user_id", "lost", "tag", "hb_at", "on_lost", "out",
        "raw", "why_closed",
    )  # fmt: skip

    def __init__(self, handler: FrameHandler = _ignore) -> None:
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder(MAX_FRAME)
        self.handler = handler
        self.pending: dict[int, tuple[int, asyncio.Future]] = {}
        self.seq = 0
        self.user_id = 0
        self.lost = False
        self.tag: Any = None
        self.hb_at = 0.0
        self.on_lost: Callable[[Conn], None] | None = None
        self.out: Callable[[bytes], object] = _ignore_bytes
        self.raw: Callable[[bytes], object] = _ignore_bytes  # bytes to the socket (``out`` adds framing)
        # Why the server ended the connection, when it said so (a WebSocket close code and reason).
        self.why_closed = ""

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.out = self.raw = transport.write  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as e:
            frames = e.frames
            self.transport.abort()
        self.dispatch(frames)

    def dispatch(self, frames: list[tuple[int, int, bytes]]) -> None:
        """Answers to the futures waiting on them, everything else to the handler.  What the
        handlers write on this connection while several frames of one read are handled goes out
        in one send (as the server does per reactor turn): one syscall, not one per answer."""
        if len(frames) < 2 or self.lost:
            self._dispatch(frames)
            return
        raw = self.raw
        plain = self.out is raw
        batch: list[bytes] = []
        self.raw = batch.append
        if plain:
            self.out = batch.append
        try:
            self._dispatch(frames)
        finally:
            self.raw = raw
            if plain:
                self.out = raw
        if batch and not self.lost:
            raw(b"".join(batch))

    def _dispatch(self, frames: list[tuple[int, int, bytes]]) -> None:
        pending = self.pending
        handler = self.handler
        for cmd, seq, body in frames:
            if pending:
                entry = pending.get(seq)
                if entry is not None and (cmd == entry[0] or cmd == ERROR_RSP):
                    del pending[seq]
                    if not entry[1].done():
                        entry[1].set_result((cmd, body))
                    continue
            handler(self, cmd, seq, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        pending, self.pending = self.pending, {}
        for _, fut in pending.values():
            if not fut.done():
                fut.set_exception(ServerClosed("connection closed"))
        if self.on_lost is not None:
            self.on_lost(self)

    # -- frames out

    def next_seq(self) -> int:
        self.seq = self.seq % MAX_SEQ + 1
        return self.seq

    def write(self, data: bytes) -> None:
        if not self.lost:
            self.out(data)

    def request(self, cmd: int, body: bytes, expect: int) -> asyncio.Future:
        """Send a request; the future gets ``(answer cmd, answer body)`` (ERROR_RSP included)."""
        fut = asyncio.get_running_loop().create_future()
        if self.lost:
            fut.set_exception(ServerClosed("connection closed"))
            return fut
        seq = self.next_seq()
        while seq in self.pending:
            seq = self.next_seq()
        self.pending[seq] = (expect, fut)
        self.out(frame(cmd, seq, body))
        return fut

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()


def _ignore_bytes(data: bytes) -> None:
    """``Conn.out`` before the connection is made."""


# ---- WebSocket (RFC 6455), subprotocol cim.v1: one CIM frame per binary message ----------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_SUBPROTOCOL = "cim.v1"
WS_MAX_HANDSHAKE = 16 * 1024
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FIN = 0x80
_MASKED = 0x80
_WS_HEAD_SHORT = struct.Struct(">BB")  # + 4-byte mask: payloads up to 125 bytes
_WS_HEAD_16 = struct.Struct(">BBH")
_WS_HEAD_64 = struct.Struct(">BBQ")
# length, command_id, seq_num of a CIM header
_CIM_FIELDS = struct.Struct(">I6xHH2x")
_unpack_cim = _CIM_FIELDS.unpack_from
# Masking keys: the RFC asks for unpredictable keys so that a browser page cannot craft bytes that
# a proxy would misread; a load generator talking to its own server on loopback needs only that
# they vary, and a Mersenne Twister draw costs a tenth of os.urandom's syscall.
_mask_key = random.Random(os.urandom(16)).getrandbits


def ws_accept(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``Sec-WebSocket-Key`` ``key``."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def ws_frame(opcode: int, payload: bytes, key: int | None = None) -> bytes:
    """One masked, final client frame (clients must mask everything they send)."""
    n = len(payload)
    if key is None:
        key = _mask_key(32)
    if n < 126:
        head = _WS_HEAD_SHORT.pack(_FIN | opcode, _MASKED | n)
    elif n < 65536:
        head = _WS_HEAD_16.pack(_FIN | opcode, _MASKED | 126, n)
    else:
        head = _WS_HEAD_64.pack(_FIN | opcode, _MASKED | 127, n)
    mask = key.to_bytes(4, "little")
    if not n:
        return head + mask
    # XOR the whole payload at once as one big integer: no per-byte Python loop.
    keys = (mask * ((n >> 2) + 1))[:n]
    return head + mask + (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


class WsConn(Conn):
    """A :class:`Conn` over WebSocket with the ``cim.v1`` subprotocol.

    ``opened`` resolves once the server accepted the upgrade (status 101, the right
    ``Sec-WebSocket-Accept`` and subprotocol, no extension we did not offer).  Then each binary
    message must hold exactly one CIM frame whose header length is the message's length; pings are
    answered with pongs; a close from the server is answered and ends the connection, with its code
    and reason kept in ``why_closed``.
    """

    __slots__ = ("opened", "key", "request_line", "buf", "frag", "close_sent", "ws_open")

    def __init__(self, handler: FrameHandler, host_header: str, path: str) -> None:
        super().__init__(handler)
        self.key = base64.b64encode(os.urandom(16))
        self.request_line = (
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {WS_SUBPROTOCOL}\r\nUser-Agent: {CLIENT_VERSION}\r\n\r\n"
        ).encode()
        self.opened: asyncio.Future | None = None
        self.buf = b""
        self.frag: list[bytes] | None = None  # the parts of a fragmented message so far
        self.close_sent = False
        self.ws_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.raw = transport.write  # type: ignore[attr-defined]
        self.out = self._send_binary
        self.opened = asyncio.get_running_loop().create_future()
        transport.write(self.request_line)  # type: ignore[attr-defined]

    def _send_binary(self, data: bytes) -> None:
        # ws_frame inlined for payloads under 126 bytes (acks, heartbeats, typical messages).
        n = len(data)
        if n < 126:
            mask = _mask_key(32).to_bytes(4, "little")
            keys = (mask * ((n >> 2) + 1))[:n]
            self.raw(
                _WS_HEAD_SHORT.pack(0x82, 0x80 | n)
                + mask
                + (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")
            )
        else:
            self.raw(ws_frame(_OP_BINARY, data))

    def _fail(self, why: str, code: int = 1002) -> None:
        """A protocol violation by the server: say so (close frame) and drop the connection."""
        self.why_closed = why
        if self.ws_open and not self.close_sent and not self.lost:
            self.close_sent = True
            self.transport.write(ws_frame(_OP_CLOSE, code.to_bytes(2, "big")))
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(HandshakeError(why))
        if self.transport is not None:
            self.transport.abort()

    def _handshake(self, data: bytes) -> bytes | None:
        """Read the server's upgrade answer; the bytes after it, or None while it is incomplete."""
        buf = self.buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > WS_MAX_HANDSHAKE:
                self._fail("WebSocket handshake answer too long")
            else:
                self.buf = buf
            return None
        self.buf = b""
        lines = buf[:end].decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            self._fail(f"WebSocket upgrade refused: {lines[0]}"[:200])
            return None
        if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
            self._fail("WebSocket handshake without Upgrade: websocket / Connection: Upgrade")
            return None
        if headers.get("sec-websocket-accept", "").encode() != ws_accept(self.key):
            self._fail("WebSocket handshake: wrong Sec-WebSocket-Accept")
            return None
        if headers.get("sec-websocket-protocol") != WS_SUBPROTOCOL:
            self._fail(f"WebSocket handshake: subprotocol {headers.get('sec-websocket-protocol')!r}, not cim.v1")
            return None
        if headers.get("sec-websocket-extensions"):
            self._fail("WebSocket handshake: an extension we did not offer")
            return None
        self.ws_open = True
        self.opened.set_result(None)
        return buf[end + 4 :]

    def data_received(self, data: bytes) -> None:
        if not self.ws_open:
            data = self._handshake(data)
            if not data:
                return
        if self.buf:
            data = self.buf + data
            self.buf = b""
        n = len(data)
        i = 0
        frames: list[tuple[int, int, bytes]] = []
        while n - i >= 2:
            b0 = data[i]
            length = data[i + 1]
            if length & 0x80:
                self._fail("the server masked a frame")
                return
            head = i + 2
            if length == 126:
                if n - i < 4:
                    break
                length = (data[head] << 8) | data[head + 1]
                head += 2
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if length > MAX_FRAME:
                self._fail(f"a WebSocket frame of {length} bytes", 1009)
                return
            end = head + length
            if end > n:
                break
            i = end
            if b0 == 0x82 and self.frag is None:  # the hot path: one whole binary message
                payload = data[head:end]
            else:
                payload = self._control_or_fragment(b0, data[head:end])
                if payload is None:
                    if self.lost or self.transport.is_closing():
                        n = i  # a close: nothing after it counts, what came before does
                        break
                    continue
            size = len(payload)
            if size < HEADER_SIZE:
                self._fail(f"a binary message of {size} bytes is shorter than a CIM header")
                return
            frame_len, cmd, seq = _unpack_cim(payload)
            if frame_len != size:
                self._fail(f"CIM frame length {frame_len} differs from its WebSocket message length {size}")
                return
            frames.append((cmd, seq, payload[HEADER_SIZE:]))
        if i < n:
            self.buf = data[i:]
        if frames:
            self.dispatch(frames)

    def _control_or_fragment(self, b0: int, payload: bytes) -> bytes | None:
        """Everything but a whole binary message: a whole message when a fragmented one ends,
        else None (control frames are handled here)."""
        if b0 & 0x70:
            self._fail("a frame with reserved bits set (no extension was negotiated)")
            return None
        fin = b0 & _FIN
        op = b0 & 0x0F
        if op >= 0x8:
            if not fin or len(payload) > 125:
                self._fail("a fragmented or oversized control frame")
            elif op == _OP_PING:
                if not self.close_sent:
                    self.transport.write(ws_frame(_OP_PONG, payload))
            elif op == _OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.why_closed = f"WebSocket close {code} {payload[2:].decode('utf-8', 'replace')}".strip()
                if not self.close_sent:
                    self.close_sent = True
                    self.transport.write(ws_frame(_OP_CLOSE, payload[:2]))
                self.transport.close()
            elif op != _OP_PONG:
                self._fail(f"unknown control opcode {op}")
            return None
        if op == _OP_TEXT:
            self._fail("a text message on the binary subprotocol cim.v1", 1003)
            return None
        if op == _OP_BINARY:
            if self.frag is not None:
                self._fail("a new message before the fragmented one ended")
                return None
            self.frag = [payload]
        elif op == _OP_CONT:
            if self.frag is None:
                self._fail("a continuation frame outside a message")
                return None
            self.frag.append(payload)
            if sum(map(len, self.frag)) > MAX_FRAME:
                self._fail("a fragmented message over the size limit", 1009)
                return None
        else:
            self._fail(f"unknown opcode {op}")
            return None
        if not fin:
            return None
        whole = b"".join(self.frag)
        self.frag = None
        return whole

    def connection_lost(self, exc: Exception | None) -> None:
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(HandshakeError(self.why_closed or "closed during the WebSocket handshake"))
        super().connection_lost(exc)

    def close(self) -> None:
        """The closing handshake's first half (code 1000), then the TCP close once it is written:
        on loopback the server reads the close frame before the FIN."""
        if self.transport is None or self.lost:
            return
        if self.ws_open and not self.close_sent:
            self.close_sent = True
            self.transport.write(ws_frame(_OP_CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()
        else:
            self.transport.abort()


# Linux: bind() to a source address without picking the port yet, so that connect() chooses it
# per destination: each source address then has a whole ephemeral range towards the server.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


async def connect(
    host: str,
    port: int,
    handler: FrameHandler = _ignore,
    timeout: float = 10.0,
    source: str | None = None,
    ws_path: str | None = None,
) -> Conn:
    """Open one connection (asyncio sets TCP_NODELAY on it), from ``source`` when given: plain
    TCP, or WebSocket at ``ws_path`` (upgrade included in ``timeout``) when that is given."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if ws_path is None:

        def factory() -> Conn:
            return Conn(handler)
    else:
        host_header = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"

        def factory() -> Conn:
            return WsConn(handler, host_header, ws_path)

    if source is None:
        _, conn = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if sys.platform.startswith("linux"):
                sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
            _, conn = await loop.create_connection(factory, sock=sock)
        except BaseException:
            sock.close()
            raise
    if isinstance(conn, WsConn):
        try:
            await asyncio.wait_for(conn.opened, max(0.01, deadline - loop.time()))
        except BaseException:
            conn.close()
            raise
    return conn


def token_login_body(user_id: int, token: str) -> bytes:
    return pb.CIMAuthTokenReq(
        user_id=user_id, user_token=token, client_type=pb.kCIM_CLIENT_TYPE_DEFAULT, client_version=CLIENT_VERSION
    ).SerializeToString()


async def login_token(conn: Conn, user_id: int, token: str, timeout: float = 30.0) -> int:
    """Token login (0x0101); returns the result code (200 on success)."""
    cmd, body = await asyncio.wait_for(
        conn.request(LOGIN_AUTH_TOKEN_REQ, token_login_body(user_id, token), LOGIN_AUTH_TOKEN_RSP), timeout
    )
    if cmd == ERROR_RSP:
        return int(pb.CIMErrorRsp.FromString(body).error_code)
    rsp = pb.CIMAuthTokenRsp.FromString(body)
    if rsp.result_code == SUCCESS:
        conn.user_id = rsp.user_info.user_id
    return int(rsp.result_code)


async def login_password(conn: Conn, name: str, password_md5: str, timeout: float = 60.0) -> int:
    """Password login (0x0107); returns the result code."""
    body = pb.CIMAuthReq(
        user_name=name, user_pwd=password_md5, client_type=pb.kCIM_CLIENT_TYPE_DEFAULT, client_version=CLIENT_VERSION
    ).SerializeToString()
    cmd, answer = await asyncio.wait_for(conn.request(LOGIN_AUTH_REQ, body, LOGIN_AUTH_RSP), timeout)
    if cmd == ERROR_RSP:
        return int(pb.CIMErrorRsp.FromString(answer).error_code)
    rsp = pb.CIMAuthRsp.FromString(answer)
    if rsp.result_code == SUCCESS:
        conn.user_id = rsp.user_info.user_id
    return int(rsp.result_code)


def msg_data_body(from_id: int, to_id: int, client_msg_id: str, payload: bytes) -> bytes:
    """An outgoing text message (encoded per message: its client_msg_id differs)."""
    return pb.CIMMsgData(
        from_user_id=from_id,
        to_session_id=to_id,
        client_msg_id=client_msg_id,
        create_time=int(time.time()),
        msg_type=TEXT,
        session_type=SINGLE,
        msg_data=payload,
    ).SerializeToString()


def delivery_ack_body(me: int, push: Any) -> bytes:
    """The receiver's delivery ack (0x0302) of a pushed MSG_DATA, as real clients send it."""
    return pb.CIMMsgDataAck(
        from_user_id=me,
        to_session_id=push.from_user_id,
        client_msg_id=push.client_msg_id,
        server_msg_id=push.server_msg_id,
        session_type=push.session_type,
        res_code=RES_OK,
    ).SerializeToString()


async def run_bounded(items: Iterable[Any], fn: Callable[[Any], Awaitable[None]], limit: int) -> None:
    """Run ``fn(item)`` for every item with at most ``limit`` running at once (connect and login
    storms must not overflow the server's accept backlog nor measure only queueing)."""
    it = iter(items)

    async def lane() -> None:
        for item in it:
            await fn(item)

    await asyncio.gather(*(lane() for _ in range(max(1, limit))))
