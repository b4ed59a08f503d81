"""A lean CIM v1 client on raw asyncio for the load generators.

Why not :mod:`coffeechat.protocols.client`: that one runs on Twisted and decodes every frame; a
generator holding 10,000 connections or sending 10,000 messages a second must spend as little
CPU per frame as possible, so here a frame is a precompiled header struct plus bytes, bodies are
decoded only where a scenario needs a field, and nothing is logged per frame.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from coffeechat.protocols.cim import Cmd, pb
from coffeechat.protocols.framing import HEADER, HEADER_SIZE, VERSION, FrameDecoder, FrameError

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
ERROR_RSP = int(Cmd.ERROR_RSP)
KICKOUT_NOTIFY = int(Cmd.KICKOUT_NOTIFY)

SUCCESS = int(pb.kCIM_ERR_SUCCESS)
RES_OK = int(pb.kCIM_RES_CODE_OK)
SINGLE = int(pb.kCIM_SESSION_TYPE_SINGLE)
TEXT = int(pb.kCIM_MSG_TYPE_TEXT)
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


class Conn(asyncio.Protocol):
    """One client connection.

    Answers to :meth:`request` are matched by seq and expected command (or ERROR_RSP); every other
    frame goes to ``handler(conn, cmd, seq, body)``, which a scenario sets to its own hot path.
    ``tag`` carries the scenario's per-connection data (a pair, a user).
    """

    __slots__ = ("transport", "decoder", "handler", "pending", "seq", "user_id", "lost", "tag", "hb_at", "on_lost")

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

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as e:
            frames = e.frames
            self.transport.abort()
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
            self.transport.write(data)

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
        self.transport.write(frame(cmd, seq, body))
        return fut

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()


# Linux: bind() to a source address without picking the port yet, so that connect() chooses it
# per destination: each source address then has a whole ephemeral range towards the server.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


async def connect(
    host: str, port: int, handler: FrameHandler = _ignore, timeout: float = 10.0, source: str | None = None
) -> Conn:
    """Open one TCP connection (asyncio sets TCP_NODELAY on it), from ``source`` when given."""
    loop = asyncio.get_running_loop()
    if source is None:
        _, conn = await asyncio.wait_for(loop.create_connection(lambda: Conn(handler), host, port), timeout)
        return conn
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if sys.platform.startswith("linux"):
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        _, conn = await loop.create_connection(lambda: Conn(handler), sock=sock)
    except BaseException:
        sock.close()
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
