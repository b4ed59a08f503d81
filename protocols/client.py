"""A small client for CoffeeChat's CIM v1 protocol, for the test-suite and load tests.

It speaks the frames over TCP (``connect(reactor, "tcp:127.0.0.1:8000")``) or over WebSocket,
binary or JSON (``connect(reactor, "ws://127.0.0.1:8001/", encoding="json")``), with one API.
Requests and responses are matched by frame seq; anything else the server sends is a push, kept
in :attr:`CIMClient.pushes` until :meth:`CIMClient.next_push` takes it.  The client is lean on
purpose (no logging, no per-frame work beyond decoding) so that one process can drive many
connections.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from functools import partial
from io import BytesIO
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from autobahn.websocket.types import ConnectionResponse
from google.protobuf import json_format
from google.protobuf.message import Message
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, clientFromString, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionClosed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from .cim import BODY_TYPES, PUSH_COMMANDS, RESPONSE_OF, BodyError, Cmd, pb
from .framing import DEFAULT_MAX_FRAME_BYTES, HEADER, HEADER_SIZE, FrameDecoder, FrameError, encode_frame
from .websocket import (
    SUBPROTOCOL_BINARY,
    SUBPROTOCOL_JSON,
    LeanWebSocketMixin,
    encode_json_body,
    encode_json_frame,
)

__all__ = [
    "CIMClient",
    "ServerError",
    "WebSocketCIMClient",
    "WebSocketClosed",
    "connect",
    "http_login",
    "md5_password",
    "register",
]

MAX_SEQ = 65534
CLIENT_VERSION = "coffeechat-client/0.2"

# Plain ints: comparing against IntEnum members on every frame is measurably slower.
_ERROR_RSP = int(Cmd.ERROR_RSP)
_MSG_DATA = int(Cmd.MSG_DATA)
_MSG_DATA_ACK = int(Cmd.MSG_DATA_ACK)
_SINGLE = pb.kCIM_SESSION_TYPE_SINGLE
_RESPONSE_OF = {int(k): int(v) for k, v in RESPONSE_OF.items()}
_PUSH_COMMANDS = frozenset(int(c) for c in PUSH_COMMANDS)
_BODY_TYPES = {int(k): v for k, v in BODY_TYPES.items()}

PushItem = tuple[int, int, Any]  # (command id, frame seq, message; raw bytes if undecodable)


def md5_password(password: str) -> str:
    """The 32-hex MD5 of a password, which is what CIM clients send instead of the password."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


class ServerError(Exception):
    """The server answered a request with ERROR_RSP."""

    def __init__(self, code: int, message: str = "", cmd: int = 0) -> None:
        super().__init__(code, message, cmd)
        self.code = code
        self.message = message
        self.cmd = cmd

    def __str__(self) -> str:
        try:
            name = pb.CIMErrorCode.Name(self.code)
        except ValueError:
            name = "unknown error"
        return f"{name} ({self.code}) for command 0x{self.cmd:04x}: {self.message}"


class CIMClient(Protocol):
    """One connection to a CIM server.

    ``auto_delivery_ack`` answers every pushed MSG_DATA with a delivery ack, as real clients do
    (turn it off to test the server's redelivery).  ``push_handler``, when set, receives every
    push ``(cmd, seq, msg)`` instead of the queue (load generators that only count).
    """

    def __init__(
        self,
        reactor: Any,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        auto_delivery_ack: bool = True,
        client_type: int = pb.kCIM_CLIENT_TYPE_DEFAULT,
    ) -> None:
        self.reactor = reactor
        self.auto_delivery_ack = auto_delivery_ack
        self.client_type = client_type
        self.push_handler: Callable[[int, int, Any], None] | None = None
        self.user_id = 0
        self.user_token = ""
        self.pushes: deque[PushItem] = deque()
        self._decoder = FrameDecoder(max_frame_bytes)
        self._seq = 0
        # seq -> (expected response cmd or 0 for "any", Deferred, request cmd)
        self._pending: dict[int, tuple[int, Deferred, int]] = {}
        self._waiters: list[tuple[int | None, Deferred, Any]] = []
        self._close_waiters: list[Deferred] = []
        self._lost: Failure | None = None
        self._error: Failure | None = None
        self.closed: Deferred = self.when_closed()

    # -- twisted.internet.protocol.Protocol

    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except FrameError as e:
            for frame in e.frames:
                self._frame(*frame)
            self._error = Failure(e)
            self.transport.abortConnection()
            return
        for cmd, seq, body in frames:
            self._frame(cmd, seq, body)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        reason = self._error or reason
        self._lost = reason
        pending, self._pending = self._pending, {}
        for _, d, _ in pending.values():
            if not d.called:
                d.errback(reason)
        waiters, self._waiters = self._waiters, []
        for _, d, timer in waiters:
            timer.cancel()
            d.errback(reason)
        close_waiters, self._close_waiters = self._close_waiters, []
        for d in close_waiters:
            d.callback(reason.value)

    # -- frames in

    def _frame(self, cmd: int, seq: int, body: bytes) -> None:
        entry = self._pending.get(seq)
        if entry is not None and (
            cmd == entry[0] or cmd == _ERROR_RSP or (entry[0] == 0 and cmd not in _PUSH_COMMANDS)
        ):
            del self._pending[seq]
            d = entry[1]
            if d.called:  # cancelled meanwhile
                return
            cls = _BODY_TYPES.get(cmd)
            try:
                if cls is None:
                    raise BodyError(cmd, "unknown command id")
                msg = self._decode(cls, body)
            except Exception as e:
                d.errback(e if isinstance(e, BodyError) else BodyError(cmd, str(e)))
                return
            if cmd == _ERROR_RSP:
                d.errback(ServerError(msg.error_code, msg.error_msg, msg.cmd_id or entry[2]))
            else:
                d.callback(msg)
            return
        self._push(cmd, seq, body)

    def _decode(self, cls: type[Message], body: Any) -> Message:
        """A frame body as a message (over WebSocket, ``body`` may be the JSON form's dict)."""
        return cls.FromString(body)

    def _write(self, cmd: int, seq: int, msg: Message) -> None:
        """Send one frame."""
        self.transport.write(encode_frame(cmd, seq, msg.SerializeToString()))

    def _push(self, cmd: int, seq: int, body: bytes) -> None:
        cls = _BODY_TYPES.get(cmd)
        msg: Any = body
        if cls is not None:
            try:
                msg = self._decode(cls, body)
            except Exception:
                msg = body
        if cmd == _MSG_DATA and self.auto_delivery_ack and cls is not None and msg is not body:
            self._delivery_ack(seq, msg)
        if self.push_handler is not None:
            self.push_handler(cmd, seq, msg)
            return
        item = (cmd, seq, msg)
        waiters = self._waiters
        for i, (want, d, timer) in enumerate(waiters):
            if want is None or want == cmd:
                del waiters[i]
                timer.cancel()
                d.callback(item)
                return
        self.pushes.append(item)

    def _delivery_ack(self, seq: int, msg: pb.CIMMsgData) -> None:
        # to_session_id names the conversation as this user sees it (the peer of a 1:1 message,
        # else the group), which is what the original clients meant to send.
        session_id = msg.to_session_id
        if msg.session_type == _SINGLE and msg.from_user_id != self.user_id:
            session_id = msg.from_user_id
        ack = pb.CIMMsgDataAck(
            from_user_id=self.user_id,
            to_session_id=session_id,
            client_msg_id=msg.client_msg_id,
            server_msg_id=msg.server_msg_id,
            session_type=msg.session_type,
            res_code=pb.kCIM_RES_CODE_OK,
        )
        self._write(_MSG_DATA_ACK, seq, ack)

    # -- frames out

    def _next_seq(self) -> int:
        pending = self._pending
        if len(pending) >= MAX_SEQ:
            raise RuntimeError("every seq is waiting for an answer")
        seq = self._seq
        while True:
            seq = seq + 1 if seq < MAX_SEQ else 1
            if seq not in pending:
                self._seq = seq
                return seq

    def request(self, cmd: int, msg: Message) -> Deferred:
        """Send a request; fires with the response message of the same seq.

        Fails with :class:`ServerError` for an ERROR_RSP answer and with the connection's
        close reason if it closes first.
        """
        if self._lost is not None:
            return defer.fail(self._lost)
        seq = self._next_seq()
        d = Deferred(partial(self._cancel_request, seq))
        self._pending[seq] = (_RESPONSE_OF.get(cmd, 0), d, cmd)
        self._write(cmd, seq, msg)
        return d

    def _cancel_request(self, seq: int, d: Deferred) -> None:
        entry = self._pending.get(seq)
        if entry is not None and entry[1] is d:
            del self._pending[seq]

    def send(self, cmd: int, msg: Message, seq: int | None = None) -> int:
        """Send a frame that gets no answer (acks); returns the seq used."""
        if seq is None:
            seq = self._next_seq()
        self._write(cmd, seq, msg)
        return seq

    def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes (tests of the server's handling of broken input)."""
        self.transport.write(data)

    def close(self) -> Deferred:
        """Close the connection; fires (with the close reason) once it is closed."""
        d = self.when_closed()
        if self._lost is None and self.transport is not None:
            self.transport.loseConnection()
        return d

    def when_closed(self) -> Deferred:
        """A new Deferred that fires with the close reason (an exception) when the connection is
        lost; never errbacks."""
        if self._lost is not None:
            return defer.succeed(self._lost.value)
        d: Deferred = Deferred()
        self._close_waiters.append(d)
        return d

    # -- pushes

    def next_push(self, cmd: int | None = None, timeout: float = 5) -> Deferred:
        """Fire with the oldest unconsumed push ``(cmd, seq, msg)`` of command ``cmd`` (any when
        None), waiting up to ``timeout`` seconds for one; fails with ``defer.TimeoutError``."""
        pushes = self.pushes
        if cmd is None:
            if pushes:
                return defer.succeed(pushes.popleft())
        else:
            for i, item in enumerate(pushes):
                if item[0] == cmd:
                    del pushes[i]
                    return defer.succeed(item)
        if self._lost is not None:
            return defer.fail(self._lost)
        d = Deferred(self._cancel_waiter)
        timer = self.reactor.callLater(timeout, self._push_timeout, d, cmd, timeout)
        self._waiters.append((cmd, d, timer))
        return d

    def _forget_waiter(self, d: Deferred) -> bool:
        for i, (_, waiting, timer) in enumerate(self._waiters):
            if waiting is d:
                del self._waiters[i]
                if timer.active():
                    timer.cancel()
                return True
        return False

    def _cancel_waiter(self, d: Deferred) -> None:
        self._forget_waiter(d)

    def _push_timeout(self, d: Deferred, cmd: int | None, timeout: float) -> None:
        if self._forget_waiter(d):
            what = "any push" if cmd is None else f"push 0x{cmd:04x}"
            d.errback(defer.TimeoutError(f"no {what} within {timeout}s"))

    # -- conveniences

    def login_password(
        self,
        name: str,
        password_md5: str,
        client_type: int | None = None,
        client_version: str = CLIENT_VERSION,
    ) -> Deferred:
        """Log in by name and password MD5; fires with CIMAuthRsp and remembers the user id and
        the reconnect token on success."""
        req = pb.CIMAuthReq(
            user_name=name,
            user_pwd=password_md5,
            client_type=self.client_type if client_type is None else client_type,
            client_version=client_version,
        )
        return self.request(Cmd.LOGIN_AUTH_REQ, req).addCallback(self._logged_in)

    def login_token(
        self,
        user_id: int,
        token: str,
        client_type: int | None = None,
        client_version: str = CLIENT_VERSION,
    ) -> Deferred:
        """Log in with a token from an earlier password login; fires with CIMAuthTokenRsp."""
        req = pb.CIMAuthTokenReq(
            user_id=user_id,
            user_token=token,
            client_type=self.client_type if client_type is None else client_type,
            client_version=client_version,
        )
        d = self.request(Cmd.LOGIN_AUTH_TOKEN_REQ, req)
        return d.addCallback(self._logged_in, token)

    def _logged_in(self, rsp: Any, token: str | None = None) -> Any:
        if rsp.result_code == pb.kCIM_ERR_SUCCESS:
            self.user_id = rsp.user_info.user_id
            self.user_token = token if token is not None else rsp.user_token
        return rsp

    def logout(self) -> Deferred:
        """Fires with CIMLogoutRsp."""
        req = pb.CIMLogoutReq(user_id=self.user_id, client_type=self.client_type)
        return self.request(Cmd.LOGIN_AUTH_LOGOUT_REQ, req)

    def heartbeat(self) -> Deferred:
        """Fires with the server's echoed CIMHeartBeat."""
        return self.request(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())

    def send_message(
        self,
        to_session_id: int,
        data: bytes | str,
        msg_type: int = pb.kCIM_MSG_TYPE_TEXT,
        session_type: int = pb.kCIM_SESSION_TYPE_SINGLE,
        client_msg_id: str | None = None,
    ) -> Deferred:
        """Send a message; fires with the server's CIMMsgDataAck (server_msg_id once stored)."""
        msg = pb.CIMMsgData(
            from_user_id=self.user_id,
            to_session_id=to_session_id,
            client_msg_id=client_msg_id if client_msg_id is not None else str(uuid.uuid4()),
            create_time=int(self.reactor.seconds()) & 0x7FFFFFFF,
            msg_type=msg_type,
            session_type=session_type,
            msg_data=data.encode("utf-8") if isinstance(data, str) else data,
        )
        return self.request(Cmd.MSG_DATA, msg)

    def read_ack(self, session_id: int, msg_id: int, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> None:
        """Mark a conversation read up to ``msg_id``; the server sends no answer."""
        msg = pb.CIMMsgDataReadAck(
            user_id=self.user_id, session_id=session_id, msg_id=msg_id, session_type=session_type
        )
        self.send(Cmd.MSG_READ_ACK, msg)

    def history(
        self,
        session_id: int,
        end_msg_id: int = 0,
        limit: int = 20,
        session_type: int = pb.kCIM_SESSION_TYPE_SINGLE,
    ) -> Deferred:
        """Messages before ``end_msg_id`` (0: the newest); fires with CIMGetMsgListRsp."""
        req = pb.CIMGetMsgListReq(
            user_id=self.user_id,
            session_type=session_type,
            session_id=session_id,
            end_msg_id=end_msg_id,
            limit_count=limit,
        )
        return self.request(Cmd.LIST_MSG_REQ, req)

    def sessions(self, latest_update_time: int = 0) -> Deferred:
        """Fires with CIMRecentContactSessionRsp."""
        req = pb.CIMRecentContactSessionReq(user_id=self.user_id, latest_update_time=latest_update_time)
        return self.request(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, req)

    def latest_msg_id(self, session_id: int, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """Fires with CIMGetLatestMsgIdRsp."""
        req = pb.CIMGetLatestMsgIdReq(user_id=self.user_id, session_type=session_type, session_id=session_id)
        return self.request(Cmd.MSG_GET_LATEST_MSG_ID_REQ, req)

    def messages_by_id(
        self, session_id: int, ids: list[int], session_type: int = pb.kCIM_SESSION_TYPE_SINGLE
    ) -> Deferred:
        """Fires with CIMGetMsgByIdRsp (the wire carries the ids as strings)."""
        req = pb.CIMGetMsgByIdReq(
            user_id=self.user_id,
            session_type=session_type,
            session_id=session_id,
            msg_id_list=[str(i) for i in ids],
        )
        return self.request(Cmd.MSG_GET_BY_MSG_ID_REQ, req)

    def users(self) -> Deferred:
        """Fires with CIMFriendQueryUserListRsp."""
        return self.request(Cmd.FRIEND_QUERY_USER_LIST_REQ, pb.CIMFriendQueryUserListReq(user_id=self.user_id))


def connect(
    reactor: Any,
    endpoint: str,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    auto_delivery_ack: bool = True,
    client_type: int = pb.kCIM_CLIENT_TYPE_DEFAULT,
    *,
    encoding: str = "binary",
    origin: str | None = None,
    subprotocols: list[str] | None = None,
    compression: bool = False,
    headers: dict[str, str] | None = None,
) -> Deferred:
    """Connect; fires with a :class:`CIMClient` (a :class:`WebSocketCIMClient` for WebSocket).

    ``endpoint`` is a client endpoint string such as ``tcp:127.0.0.1:8000``, or a WebSocket URL
    (``ws://host:8001/``, ``ws://host:18080/ws``, ``wss://...``).  WebSocket only: ``encoding``
    ("binary" or "json") is what the client sends and, through the subprotocol it offers
    (``cim.v1`` or ``cim.v1.json``), what the server answers; ``subprotocols`` overrides the
    offer (``[]``: none, the server then answers in the encoding of the client's last message);
    ``origin`` sets the Origin header as a browser would; ``compression`` offers
    permessage-deflate.  A refused handshake fails with :class:`WebSocketClosed`.
    """
    if not endpoint.startswith(("ws://", "wss://")):
        client = CIMClient(reactor, max_frame_bytes, auto_delivery_ack, client_type)
        return connectProtocol(clientFromString(reactor, endpoint), client)
    if encoding not in ("binary", "json"):
        raise ValueError(f"encoding must be 'binary' or 'json', not {encoding!r}")
    client = WebSocketCIMClient(reactor, max_frame_bytes, auto_delivery_ack, client_type, encoding == "json")
    if subprotocols is None:
        subprotocols = [SUBPROTOCOL_JSON if client.json else SUBPROTOCOL_BINARY]
    factory = WebSocketClientFactory(
        endpoint, origin=origin, protocols=subprotocols, useragent=CLIENT_VERSION, headers=headers, reactor=reactor
    )
    # Up to the server's frame limit, allowing for the JSON form's base64.
    limit = max_frame_bytes * 2 + 1024
    factory.setProtocolOptions(maxMessagePayloadSize=limit, maxFramePayloadSize=limit, failByDrop=False)
    if compression:
        factory.setProtocolOptions(
            perMessageCompressionOffers=[PerMessageDeflateOffer()],
            perMessageCompressionAccept=_accept_deflate_response,
        )

    def build(addr: Any) -> _ClientWebSocket:
        protocol = _ClientWebSocket(client)
        protocol.factory = factory
        return protocol

    factory.buildProtocol = build
    factory.noisy = False
    tcp = HostnameEndpoint(reactor, factory.host, factory.port)
    if factory.isSecure:
        tcp = wrapClientTLS(optionsForClientTLS(factory.host), tcp)
    d = tcp.connect(factory)
    d.addCallback(lambda _: client._opened)
    return d


def _accept_deflate_response(response: Any) -> PerMessageDeflateResponseAccept | None:
    if isinstance(response, PerMessageDeflateResponse):
        return PerMessageDeflateResponseAccept(response)
    return None


class WebSocketClosed(ConnectionClosed):
    """A WebSocket connection ended: the close code and reason; ``http_status`` is the server's
    answer when it refused the handshake itself (e.g. 403 for a refused Origin), else None."""

    def __init__(self, code: int | None, reason: str | None, was_clean: bool, http_status: int | None = None) -> None:
        super().__init__(code, reason, was_clean)
        self.code = code
        self.reason = reason or ""
        self.was_clean = was_clean
        self.http_status = http_status

    def __str__(self) -> str:
        return f"WebSocket closed ({self.code}): {self.reason}"


class WebSocketCIMClient(CIMClient):
    """A :class:`CIMClient` whose frames travel as WebSocket messages: binary frames, or their JSON
    form (``json``).  ``websocket`` is the autobahn protocol underneath; ``subprotocol`` what the
    server accepted (None: none); ``transport`` the TCP connection, once open."""

    def __init__(
        self,
        reactor: Any,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        auto_delivery_ack: bool = True,
        client_type: int = pb.kCIM_CLIENT_TYPE_DEFAULT,
        json: bool = False,
    ) -> None:
        super().__init__(reactor, max_frame_bytes, auto_delivery_ack, client_type)
        self.json = json
        self.max_frame_bytes = max_frame_bytes
        self.websocket: _ClientWebSocket | None = None
        self.subprotocol: str | None = None
        self._opened: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        raise RuntimeError("a WebSocket client receives messages, not bytes")

    def _decode(self, cls: type[Message], body: Any) -> Message:
        if type(body) is bytes:
            return cls.FromString(body)
        return json_format.ParseDict(body, cls(), ignore_unknown_fields=True)

    def _write(self, cmd: int, seq: int, msg: Message) -> None:
        websocket = self.websocket
        if websocket.state != websocket.STATE_OPEN:
            return  # closing: like a write on a closing TCP connection; waiting requests fail on close
        if self.json:
            self.websocket.sendMessage(encode_json_frame(cmd, seq, encode_json_body(msg)), False)
        else:
            self.websocket.sendMessage(encode_frame(cmd, seq, msg.SerializeToString()), True)

    def send_raw(self, data: bytes) -> None:
        """Send ``data`` as one binary message, whatever it holds."""
        self.websocket.sendMessage(data, True)

    def send_text(self, data: str | bytes) -> None:
        """Send one text message; bytes go as they are, even if they are not UTF-8."""
        self.websocket.sendMessage(data.encode("utf-8") if isinstance(data, str) else data, False)

    def close(self, code: int = 1000, reason: str | None = None) -> Deferred:
        """Close with the WebSocket closing handshake; fires (with the close reason) once closed."""
        d = self.when_closed()
        websocket = self.websocket
        if self._lost is None and websocket is not None:
            if websocket.state == websocket.STATE_OPEN:
                websocket.sendClose(code, reason)
            elif websocket.transport is not None:
                websocket.transport.loseConnection()
        return d

    # -- from the WebSocket

    def _message(self, payload: bytes, is_binary: bool) -> None:
        if is_binary:
            size = len(payload)
            if size < HEADER_SIZE or HEADER.unpack_from(payload)[0] != size or size > self.max_frame_bytes:
                self._broken(f"binary message of {size} bytes is not one frame")
                return
            _, _, _, _, cmd, seq, _ = HEADER.unpack_from(payload)
            self._frame(cmd, seq, payload[HEADER_SIZE:])
            return
        try:
            frame = json.loads(payload.decode("utf-8"))
            cmd, seq = frame["cmd"], frame["seq"]
            cmd = int(Cmd[cmd]) if isinstance(cmd, str) else int(cmd)
            body = frame.get("body") or {}
        except (ValueError, KeyError, TypeError) as e:
            self._broken(f"text message is not a JSON frame: {e}")
            return
        self._frame(cmd, seq, body)

    def _broken(self, reason: str) -> None:
        self._error = Failure(FrameError(reason))
        if self.transport is not None:
            self.transport.abortConnection()

    def _ws_closed(self, was_clean: bool, code: int | None, reason: str | None, http_status: int | None) -> None:
        closed = WebSocketClosed(code, reason, was_clean, http_status)
        if not self._opened.called:
            self._opened.errback(closed)
        if self._lost is None:
            self.connectionLost(Failure(closed))


class _ClientWebSocket(LeanWebSocketMixin, WebSocketClientProtocol):
    """The autobahn side of a :class:`WebSocketCIMClient`."""

    def __init__(self, client: WebSocketCIMClient) -> None:
        super().__init__()
        self.client = client
        client.websocket = self

    def onConnect(self, response: ConnectionResponse) -> None:
        self.client.subprotocol = response.protocol

    def onOpen(self) -> None:
        client = self.client
        client.transport = self.transport
        client._opened.callback(client)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.client._message(payload, isBinary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        status = None
        if not self.client._opened.called:
            words = (getattr(self, "http_status_line", None) or "").split()
            if len(words) > 1 and words[1].isdigit():
                status = int(words[1])
        self.client._ws_closed(wasClean, code, reason, status)


# -- HTTP


def _post_json(reactor: Any, url: str, payload: dict) -> Deferred:
    body = FileBodyProducer(BytesIO(json.dumps(payload).encode("utf-8")))
    headers = Headers({b"Content-Type": [b"application/json"]})
    d = Agent(reactor).request(b"POST", url.encode("utf-8"), headers, body)
    d.addCallback(_read_body)
    d.addCallback(lambda raw: json.loads(raw.decode("utf-8")))
    return d


def _read_body(response: Any) -> Deferred:
    # Agent hands readBody a transport proxy without abortConnection, which makes readBody warn
    # on every call (a Twisted quirk, harmless here: we never cancel).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using readBody with a transport", DeprecationWarning)
        return readBody(response)


def register(reactor: Any, base_url: str, name: str, nick: str, password_md5: str) -> Deferred:
    """``POST {base_url}/user/register``; fires with the JSON answer
    (``{"error_code": 200, ...}`` on success), whatever the HTTP status."""
    payload = {"userName": name, "userNickName": nick, "userPwd": password_md5}
    return _post_json(reactor, base_url.rstrip("/") + "/user/register", payload)


def http_login(reactor: Any, base_url: str, name: str, password_md5: str) -> Deferred:
    """``POST {base_url}/api/login``; fires with the JSON answer."""
    payload = {"userName": name, "userPwd": password_md5}
    return _post_json(reactor, base_url.rstrip("/") + "/api/login", payload)
