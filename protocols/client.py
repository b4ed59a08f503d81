"""A small client for CoffeeChat's CIM v1 protocol, for the test-suite, load tests and bots.

It speaks the frames over TCP (``connect(reactor, "tcp:127.0.0.1:8000")``) or over WebSocket,
binary or JSON (``connect(reactor, "ws://127.0.0.1:8001/", encoding="json")``), with one API.
Requests and responses are matched by frame seq; anything else the server sends is a push, kept
in :attr:`CIMClient.pushes` until :meth:`CIMClient.next_push` takes it.  The client is lean on
purpose (no logging, no per-frame work beyond decoding) so that one process can drive many
connections.

:class:`ResilientClient` is a session on top of it that outlives connections: a list of
servers, failover with backoff and jitter, resuming by token, catch-up by seq, exactly-once and
in-order delivery per conversation, and resending unacknowledged messages (docs/client.md).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import urllib.parse
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, clientFromString, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionClosed
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from zope.interface import implementer

from coffeechat.schema import BODY_TYPES, PUSH_COMMANDS, RESPONSE_OF, BodyError, Cmd, pb
from coffeechat.schema.jsonform import encode_json_body, encode_json_frame

from .framing import DEFAULT_MAX_FRAME_BYTES, HEADER, HEADER_SIZE, FrameDecoder, FrameError, encode_frame
from .lean_websocket import SUBPROTOCOL_BINARY, SUBPROTOCOL_JSON, LeanWebSocketMixin

__all__ = [
    "Backoff",
    "ChatMessage",
    "CIMClient",
    "ClientStopped",
    "KickedOut",
    "LoginRefused",
    "ResilientClient",
    "SeqTracker",
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
# Never the answer of a request that expects "any" answer: pushes, and a call's later 0x0402
# replies (180/200/486 on the invite's seq, after its 100 Trying; docs/calls.md).
_UNSOLICITED_CMDS = _PUSH_COMMANDS | {int(Cmd.VOIP_INVITE_REPLY)}
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


@implementer(IHandshakeListener)
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
        self._handshake: Deferred | None = None  # over TLS: fires once the server is verified
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

    def handshakeCompleted(self) -> None:
        handshake = self._handshake
        if handshake is not None and not handshake.called:
            handshake.callback(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        reason = self._error or reason
        self._lost = reason
        handshake = self._handshake
        if handshake is not None and not handshake.called:
            handshake.errback(reason)  # the server's certificate was refused (or the connection lost)
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
            cmd == entry[0] or cmd == _ERROR_RSP or (entry[0] == 0 and cmd not in _UNSOLICITED_CMDS)
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
        """CIM v1's user list: this user's friends and recent 1:1 contacts (not every account:
        :meth:`search_users` finds anyone by name); fires with CIMFriendQueryUserListRsp."""
        return self.request(Cmd.FRIEND_QUERY_USER_LIST_REQ, pb.CIMFriendQueryUserListReq(user_id=self.user_id))

    def typing(self, session_id: int, typing: bool = True, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> None:
        """Tell the others in a conversation that this user is typing (or stopped); no answer on
        success (the server coalesces: send it as often as keys are pressed)."""
        req = pb.CIMTypingReq(user_id=self.user_id, session_type=session_type, session_id=session_id, typing=typing)
        self.send(Cmd.MSG_TYPING_REQ, req)

    def recall(self, session_id: int, msg_id: int, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """Recall message ``msg_id`` of a conversation; fires with CIMMsgRecallRsp (its
        ``result_code`` says whether it was: 200, or FORBIDDEN, NOT_FOUND, RECALL_TOO_LATE)."""
        req = pb.CIMMsgRecallReq(user_id=self.user_id, session_type=session_type, session_id=session_id, msg_id=msg_id)
        return self.request(Cmd.MSG_RECALL_REQ, req)

    def recalls(self, since_time: int = 0, limit: int = 0) -> Deferred:
        """The recalls in this user's conversations since ``since_time``; fires with
        CIMMsgRecallListRsp (``has_more``: ask again from the last one's ``recall_time``)."""
        req = pb.CIMMsgRecallListReq(user_id=self.user_id, since_time=since_time, limit=limit)
        return self.request(Cmd.MSG_RECALL_LIST_REQ, req)

    # -- directory and profiles (issue 12)

    def search_users(self, query: str, cursor: str = "", limit: int = 0) -> Deferred:
        """Users whose user name or nick name starts with ``query`` (case-insensitive); fires with
        CIMUserSearchRsp (ask again with its ``next_cursor`` for the next page, "" = no more)."""
        req = pb.CIMUserSearchReq(user_id=self.user_id, query=query, cursor=cursor, limit=limit)
        return self.request(Cmd.USER_SEARCH_REQ, req)

    def update_profile(
        self,
        nick_name: str | None = None,
        avatar_url: str | None = None,
        signature: str | None = None,
        ex: str | None = None,
    ) -> Deferred:
        """Change this user's profile (only the fields given; "" clears avatar, signature, ex);
        fires with CIMProfileUpdateRsp.  ``ex`` is a JSON object as text."""
        req = pb.CIMProfileUpdateReq(user_id=self.user_id)
        for name, value in (("nick_name", nick_name), ("avatar_url", avatar_url), ("signature", signature), ("ex", ex)):
            if value is not None:
                setattr(req, name, value)
        return self.request(Cmd.PROFILE_UPDATE_REQ, req)

    def profiles(self, user_ids: list[int]) -> Deferred:
        """The profiles of these users (those that exist); fires with CIMProfileGetRsp."""
        return self.request(Cmd.PROFILE_GET_REQ, pb.CIMProfileGetReq(user_id=self.user_id, user_id_list=user_ids))

    # -- friends and online status

    def friend_request(self, to_user_id: int, message: str = "") -> Deferred:
        """Ask ``to_user_id`` to be friends; fires with CIMFriendRequestRsp (``accepted``: they had
        asked first, so both are friends now)."""
        req = pb.CIMFriendRequestReq(user_id=self.user_id, to_user_id=to_user_id, message=message)
        return self.request(Cmd.FRIEND_REQUEST_REQ, req)

    def friend_answer(self, from_user_id: int, accept: bool = True) -> Deferred:
        """Accept or decline the pending request of ``from_user_id``; fires with CIMFriendAnswerRsp."""
        req = pb.CIMFriendAnswerReq(user_id=self.user_id, from_user_id=from_user_id, accept=accept)
        return self.request(Cmd.FRIEND_ANSWER_REQ, req)

    def friend_withdraw(self, to_user_id: int) -> Deferred:
        """Take back a pending request; fires with CIMFriendWithdrawRsp."""
        req = pb.CIMFriendWithdrawReq(user_id=self.user_id, to_user_id=to_user_id)
        return self.request(Cmd.FRIEND_WITHDRAW_REQ, req)

    def friend_requests(self, outgoing: bool = False, offset: int = 0, limit: int = 0) -> Deferred:
        """Pending requests to me (``outgoing``: from me), newest first; fires with
        CIMFriendRequestListRsp."""
        req = pb.CIMFriendRequestListReq(user_id=self.user_id, outgoing=outgoing, offset=offset, limit=limit)
        return self.request(Cmd.FRIEND_REQUEST_LIST_REQ, req)

    def friends(self, offset: int = 0, limit: int = 0) -> Deferred:
        """My friends with my remarks, by id; fires with CIMFriendListRsp."""
        req = pb.CIMFriendListReq(user_id=self.user_id, offset=offset, limit=limit)
        return self.request(Cmd.FRIEND_LIST_REQ, req)

    def friend_remark(self, friend_id: int, remark: str) -> Deferred:
        """Set ("" clears) the alias only I see for a friend; fires with CIMFriendRemarkRsp."""
        req = pb.CIMFriendRemarkReq(user_id=self.user_id, friend_id=friend_id, remark=remark)
        return self.request(Cmd.FRIEND_REMARK_REQ, req)

    def friend_delete(self, friend_id: int) -> Deferred:
        """End a friendship (for both sides); fires with CIMFriendDeleteRsp."""
        req = pb.CIMFriendDeleteReq(user_id=self.user_id, friend_id=friend_id)
        return self.request(Cmd.FRIEND_DELETE_REQ, req)

    def online_status(self, user_ids: list[int]) -> Deferred:
        """The status of friends and conversation partners (others: UNKNOWN); fires with
        CIMOnlineStatusRsp.  Those asked for are pushed (ONLINE_STATUS_NOTIFY) when they change."""
        req = pb.CIMOnlineStatusReq(user_id=self.user_id, user_ids=list(user_ids))
        return self.request(Cmd.ONLINE_STATUS_REQ, req)

    def online_privacy(self, hidden: bool | None = None) -> Deferred:
        """Hide (or show) my online status; None only asks.  Fires with CIMOnlinePrivacyRsp."""
        req = pb.CIMOnlinePrivacyReq(user_id=self.user_id, hidden=bool(hidden), query=hidden is None)
        return self.request(Cmd.ONLINE_PRIVACY_REQ, req)

    # -- block list

    def block(self, peer_id: int, blocked: bool = True) -> Deferred:
        """Block (or, ``blocked`` False, unblock) a user: their 1:1 messages to this user are
        refused (BLOCKED_BY_RECIPIENT); fires with CIMBlockSetRsp."""
        req = pb.CIMBlockSetReq(user_id=self.user_id, peer_id=peer_id, blocked=blocked)
        return self.request(Cmd.BLOCK_SET_REQ, req)

    def unblock(self, peer_id: int) -> Deferred:
        """Fires with CIMBlockSetRsp."""
        return self.block(peer_id, False)

    def blocked_users(self) -> Deferred:
        """Whom this user blocked, the most recent first; fires with CIMBlockListRsp."""
        return self.request(Cmd.BLOCK_LIST_REQ, pb.CIMBlockListReq(user_id=self.user_id))

    # -- do-not-disturb and pinned conversations

    def dnd_settings(self) -> Deferred:
        """This user's do-not-disturb: fires with CIMDndGetRsp (the global setting, the muted
        conversations, whether DND is active now)."""
        return self.request(Cmd.DND_GET_REQ, pb.CIMDndGetReq(user_id=self.user_id))

    def set_dnd(
        self,
        enabled: bool,
        window_start: int = 0,
        window_end: int = 0,
        time_zone: str = "",
        mentions_silenced: bool = False,
    ) -> Deferred:
        """Set the global do-not-disturb: all day (window_start == window_end) or daily between
        two times (minutes after midnight in the IANA ``time_zone``); fires with CIMDndSetRsp
        (``result_code`` 200, or DND_BAD_TIME_ZONE, INVALID_ARGUMENT)."""
        settings = pb.CIMDndSettings(
            enabled=enabled,
            window_start=window_start,
            window_end=window_end,
            time_zone=time_zone,
            mentions_silenced=mentions_silenced,
        )
        return self.request(Cmd.DND_SET_REQ, pb.CIMDndSetReq(user_id=self.user_id, settings=settings))

    def mute(self, session_id: int, muted: bool = True, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """Mute (or unmute) one conversation's notifications; fires with CIMDndMuteRsp
        (``result_code`` 200, or NOT_FOUND, FORBIDDEN, TOO_MANY_MUTES)."""
        req = pb.CIMDndMuteReq(user_id=self.user_id, session_type=session_type, session_id=session_id, muted=muted)
        return self.request(Cmd.DND_MUTE_REQ, req)

    def pin(self, session_id: int, pinned: bool = True, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """Pin (or unpin) a conversation to the top of the list; fires with CIMPinRsp
        (``result_code`` 200, or NOT_FOUND, FORBIDDEN, TOO_MANY_PINS)."""
        req = pb.CIMPinReq(user_id=self.user_id, session_type=session_type, session_id=session_id, pinned=pinned)
        return self.request(Cmd.PIN_REQ, req)

    def pins(self) -> Deferred:
        """This user's pinned conversations, the most recently pinned first: fires with CIMPinListRsp."""
        return self.request(Cmd.PIN_LIST_REQ, pb.CIMPinListReq(user_id=self.user_id))

    # -- message deletes

    def delete_messages(
        self, session_id: int, msg_ids: list[int], session_type: int = pb.kCIM_SESSION_TYPE_SINGLE
    ) -> Deferred:
        """Delete messages ``msg_ids`` of a conversation for this user only (at most [deletes]
        max_per_request); fires with CIMMsgDeleteRsp (``result_code`` 200, or NOT_FOUND,
        TOO_MANY_DELETES, DELETE_BATCH_TOO_LARGE ...)."""
        req = pb.CIMMsgDeleteReq(
            user_id=self.user_id, session_type=session_type, session_id=session_id, msg_ids=msg_ids
        )
        return self.request(Cmd.MSG_DELETE_REQ, req)

    def clear_history(self, session_id: int, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """Clear a conversation's history for this user up to its latest message; fires with
        CIMSessionClearRsp (``up_to_msg_id``)."""
        req = pb.CIMSessionClearReq(user_id=self.user_id, session_type=session_type, session_id=session_id)
        return self.request(Cmd.SESSION_CLEAR_REQ, req)

    def remove_session(self, session_id: int, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """Take a conversation out of this user's list until a new message arrives in it; fires
        with CIMSessionRemoveRsp (``removed_at_msg_id``)."""
        req = pb.CIMSessionRemoveReq(user_id=self.user_id, session_type=session_type, session_id=session_id)
        return self.request(Cmd.SESSION_REMOVE_REQ, req)

    def delete_state(self, session_id: int, session_type: int = pb.kCIM_SESSION_TYPE_SINGLE) -> Deferred:
        """What this user deleted in a conversation (for a device keeping messages of its own);
        fires with CIMMsgDeleteStateRsp."""
        req = pb.CIMMsgDeleteStateReq(user_id=self.user_id, session_type=session_type, session_id=session_id)
        return self.request(Cmd.MSG_DELETE_STATE_REQ, req)

    # -- forward and custom messages

    def forward(
        self,
        session_id: int,
        msg_ids: list[int],
        targets: list[tuple[int, int]],
        session_type: int = pb.kCIM_SESSION_TYPE_SINGLE,
        merged: bool = False,
        title: str = "",
        client_forward_id: str | None = None,
    ) -> Deferred:
        """Forward messages ``msg_ids`` of a conversation to ``targets`` ((session_type, session_id)
        pairs): one copy each, or one chat record when ``merged``.  Fires with CIMMsgForwardRsp
        (``results`` per target: the new server_msg_ids, or the target's refusal).  Resending with
        the same ``client_forward_id`` makes nothing twice."""
        req = pb.CIMMsgForwardReq(
            user_id=self.user_id,
            session_type=session_type,
            session_id=session_id,
            msg_ids=msg_ids,
            targets=[pb.CIMForwardTarget(session_type=t, session_id=i) for t, i in targets],
            merged=merged,
            title=title,
            client_forward_id=client_forward_id if client_forward_id is not None else uuid.uuid4().hex,
        )
        return self.request(Cmd.MSG_FORWARD_REQ, req)

    def send_custom(
        self,
        to_session_id: int,
        content: dict,
        session_type: int = pb.kCIM_SESSION_TYPE_SINGLE,
        client_msg_id: str | None = None,
    ) -> Deferred:
        """Send a custom message (msg_type 100): ``content`` a JSON object, its optional
        ``"description"`` the preview (docs/custom-messages.md); fires with the CIMMsgDataAck."""
        data = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return self.send_message(to_session_id, data, pb.kCIM_MSG_TYPE_CUSTOM, session_type, client_msg_id)

    # -- calls (docs/calls.md): the invitees' replies come after the 100 Trying, on the invite's
    # seq, as VOIP_INVITE_REPLY pushes (``next_push(Cmd.VOIP_INVITE_REPLY)``); the commands without
    # an answer return their seq (a refusal arrives as an ERROR_RSP push on it)

    def call_invite(
        self,
        user_ids: list[int],
        video: bool = False,
        sdp: str = "",
        group_id: int = 0,
        channel_name: str = "",
    ) -> Deferred:
        """Call ``user_ids`` (a group call for several, or with ``group_id``); fires with the 100
        Trying CIMVoipInviteReply, whose ``channel_info`` names the call in every later command."""
        req = pb.CIMVoipInviteReq(
            invite_user_list=list(user_ids),
            invite_type=pb.kCIM_VOIP_INVITE_TYPE_VIDEO_CALL if video else pb.kCIM_VOIP_INVITE_TYPE_VOICE_CALL,
            channel_info=pb.CIMChannelInfo(channel_name=channel_name),
            sdp=sdp,
            group_id=group_id,
        )
        return self.request(Cmd.VOIP_INVITE_REQ, req)

    def call_reply(self, channel_info: pb.CIMChannelInfo, code: int, sdp: str = "") -> int:
        """Answer a ringing call (the pushed VOIP_INVITE_REQ's ``channel_info``): 180 ringing,
        200 accept (``sdp``: the WebRTC answer) or 486 busy; returns the seq."""
        req = pb.CIMVoipInviteReply(user_id=self.user_id, rsp_code=code, channel_info=channel_info, sdp=sdp)
        return self.send(Cmd.VOIP_INVITE_REPLY, req)

    def call_reply_ack(self, channel_info: pb.CIMChannelInfo) -> int:
        """The caller acknowledges an answer (relayed to the answering device); returns the seq."""
        return self.send(Cmd.VOIP_INVITE_REPLY_ACK, pb.CIMVoipInviteReplyAck(channel_info=channel_info))

    def call_heartbeat(self) -> int:
        """Keep this user's current call (every 30 s, else the call drops); returns the seq."""
        return self.send(Cmd.VOIP_HEARTBEAT, pb.CIMVoipHeartbeat())

    def call_signal(self, channel_info: pb.CIMChannelInfo, kind: str, payload: str, to_user_id: int = 0) -> int:
        """Relay ``kind``/``payload`` (an ICE candidate, a renegotiation) as VOIP_SIGNAL_NOTIFY to
        ``to_user_id`` or to every other party (0); returns the seq."""
        req = pb.CIMVoipSignalReq(channel_info=channel_info, kind=kind, payload=payload, to_user_id=to_user_id)
        return self.send(Cmd.VOIP_SIGNAL_REQ, req)

    def call_bye(self, channel_info: pb.CIMChannelInfo, reason: int = pb.kCIM_VOIP_BYE_REASON_END) -> Deferred:
        """Hang up (cancel before an answer, decline while ringing); fires with CIMVoipByeRsp
        (``error_code`` 200, or CALL_NOT_FOUND)."""
        req = pb.CIMVoipByeReq(user_id=self.user_id, channel_info=channel_info, bye_reason=reason)
        return self.request(Cmd.VOIP_BYE_REQ, req)

    # -- chat rooms (docs/rooms.md): a connection joins; failures come as the answer's result_code

    def room_create(self, name: str, topic: str = "", max_members: int = 0, persist_history: bool = False) -> Deferred:
        """Create a room (its owner: this user); fires with CIMRoomCreateRsp."""
        req = pb.CIMRoomCreateReq(name=name, topic=topic, max_members=max_members, persist_history=persist_history)
        return self.request(Cmd.ROOM_CREATE_REQ, req)

    def room_list(self, before_room_id: int = 0, limit: int = 0) -> Deferred:
        """Open rooms, newest first; fires with CIMRoomListRsp (``has_more``: ask again below the last)."""
        return self.request(Cmd.ROOM_LIST_REQ, pb.CIMRoomListReq(before_room_id=before_room_id, limit=limit))

    def room_join(self, room_id: int) -> Deferred:
        """Join with this connection; fires with CIMRoomJoinRsp (``recent``: the last messages)."""
        return self.request(Cmd.ROOM_JOIN_REQ, pb.CIMRoomJoinReq(room_id=room_id))

    def room_leave(self, room_id: int) -> Deferred:
        return self.request(Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room_id))

    def room_send(
        self, room_id: int, text: str | bytes, msg_type: int = pb.kCIM_MSG_TYPE_TEXT, client_msg_id: str = ""
    ) -> Deferred:
        """Send to a room this connection is in; fires with CIMRoomMsgRsp (``msg_id``).  The room's
        messages, this one too, arrive as ROOM_MSG_NOTIFY pushes (several per push)."""
        data = text.encode() if isinstance(text, str) else text
        req = pb.CIMRoomMsgReq(room_id=room_id, client_msg_id=client_msg_id, msg_type=msg_type, msg_data=data)
        return self.request(Cmd.ROOM_MSG_REQ, req)

    def room_members(self, room_id: int, sample_size: int = 0) -> Deferred:
        """The room's member count across the cluster and a sample; fires with CIMRoomMembersRsp."""
        return self.request(Cmd.ROOM_MEMBERS_REQ, pb.CIMRoomMembersReq(room_id=room_id, sample_size=sample_size))

    # -- group requests, invitations, ownership transfer

    def group_public_info(self, group_id: int) -> Deferred:
        """What a non-member may see of a group that takes requests to join (and of one's own);
        fires with CIMGroupPublicInfoRsp (GROUP_NOT_JOINABLE for any other id)."""
        req = pb.CIMGroupPublicInfoReq(user_id=self.user_id, group_id=group_id)
        return self.request(Cmd.GROUP_PUBLIC_INFO_REQ, req)

    def ask_to_join_group(self, group_id: int, message: str = "") -> Deferred:
        """Ask to join a group whose join_model is NEED_AUTH; fires with CIMGroupJoinRsp (its
        ``request`` pending until an owner or admin decides)."""
        req = pb.CIMGroupJoinReq(user_id=self.user_id, group_id=group_id, message=message)
        return self.request(Cmd.GROUP_JOIN_REQ, req)

    def group_requests(self, group_id: int = 0, limit: int = 0) -> Deferred:
        """The pending requests to join and invitations this user may decide or made (group_id 0:
        of every group); fires with CIMGroupRequestListRsp."""
        req = pb.CIMGroupRequestListReq(user_id=self.user_id, group_id=group_id, limit=limit)
        return self.request(Cmd.GROUP_REQUEST_LIST_REQ, req)

    def decide_group_request(self, request_id: int, accept: bool) -> Deferred:
        """Approve or reject a request to join (owner, admins), accept or decline an invitation
        (the invitee), withdraw one's own (accept False); fires with CIMGroupRequestDecideRsp."""
        req = pb.CIMGroupRequestDecideReq(user_id=self.user_id, request_id=request_id, accept=accept)
        return self.request(Cmd.GROUP_REQUEST_DECIDE_REQ, req)

    def transfer_group_owner(self, group_id: int, new_owner_id: int) -> Deferred:
        """Hand the group to another member (the owner becomes an admin); fires with
        CIMGroupTransferOwnerRsp."""
        req = pb.CIMGroupTransferOwnerReq(user_id=self.user_id, group_id=group_id, new_owner_id=new_owner_id)
        return self.request(Cmd.GROUP_TRANSFER_OWNER_REQ, req)

    def group_invite_consent(self, need_consent: bool | None = None) -> Deferred:
        """Read (None) or set whether invitations to groups need this user's consent; fires with
        CIMGroupInviteSettingRsp."""
        req = pb.CIMGroupInviteSettingReq(user_id=self.user_id)
        if need_consent is not None:
            req.need_consent = need_consent
        return self.request(Cmd.GROUP_INVITE_SETTING_REQ, req)

    # -- group member mutes, tags and custom fields

    def mute_member(self, group_id: int, member_id: int, duration: int) -> Deferred:
        """Mute ``member_id`` in a group for ``duration`` seconds (0 lifts it; owner and admins);
        fires with CIMGroupMuteMemberRsp (``muted_until``, or the refusal in ``result_code``)."""
        req = pb.CIMGroupMuteMemberReq(user_id=self.user_id, group_id=group_id, member_id=member_id, duration=duration)
        return self.request(Cmd.GROUP_MUTE_MEMBER_REQ, req)

    def group_mutes(self, group_id: int) -> Deferred:
        """The group's mutes in force; fires with CIMGroupMuteListRsp (``mutes``)."""
        return self.request(Cmd.GROUP_MUTE_LIST_REQ, pb.CIMGroupMuteListReq(user_id=self.user_id, group_id=group_id))

    def set_group_tags(
        self,
        group_id: int,
        tags: list[str] | None = None,
        custom_fields: dict | str | None = None,
        discoverable: bool | None = None,
    ) -> Deferred:
        """Change a group's tags (the whole list), custom fields (a dict or JSON object text) or
        discoverability; what is None stays.  Fires with CIMGroupTagsSetRsp (``group_tags``)."""
        req = pb.CIMGroupTagsSetReq(user_id=self.user_id, group_id=group_id)
        if tags is not None:
            req.set_tags = True
            req.tags.extend(tags)
        if custom_fields is not None:
            req.custom_fields = custom_fields if isinstance(custom_fields, str) else json.dumps(custom_fields)
        if discoverable is not None:
            req.discoverable = discoverable
        return self.request(Cmd.GROUP_TAGS_SET_REQ, req)

    def group_tags(self, group_ids: list[int]) -> Deferred:
        """The tags, custom fields and info of those of ``group_ids`` this user is in; fires with
        CIMGroupTagsGetRsp (``group_tags_list``)."""
        return self.request(
            Cmd.GROUP_TAGS_GET_REQ, pb.CIMGroupTagsGetReq(user_id=self.user_id, group_id_list=group_ids)
        )

    def search_group_tags(
        self, tag: str, discoverable: bool = False, after_group_id: int = 0, limit: int = 0
    ) -> Deferred:
        """Groups tagged ``tag``: mine, or (``discoverable``) those anyone may find; a page by
        group id.  Fires with CIMGroupTagsSearchRsp (``has_more``: ask on after the last id)."""
        req = pb.CIMGroupTagsSearchReq(
            user_id=self.user_id,
            tag=tag,
            scope=pb.kCIM_GROUP_TAG_SCOPE_DISCOVERABLE if discoverable else pb.kCIM_GROUP_TAG_SCOPE_MINE,
            after_group_id=after_group_id,
            limit=limit,
        )
        return self.request(Cmd.GROUP_TAGS_SEARCH_REQ, req)

    # -- search

    def search(
        self,
        query: str,
        session_id: int = 0,
        session_type: int = 0,
        sender_id: int = 0,
        msg_type: int = 0,
        start_time: int = 0,
        end_time: int = 0,
        limit: int = 0,
        cursor: str = "",
    ) -> Deferred:
        """Search the messages this user may read (docs/search.md); fires with CIMMsgSearchRsp:
        hits newest first, each with a snippet and its highlighted stretches; ``next_cursor`` for the
        next page when ``has_more``.  ``session_id`` (with its ``session_type``) searches one
        conversation; ``session_type`` alone one kind."""
        req = pb.CIMMsgSearchReq(
            user_id=self.user_id,
            query=query,
            session_type=session_type,
            session_id=session_id,
            sender_id=sender_id,
            msg_type=msg_type,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            cursor=cursor,
        )
        return self.request(Cmd.MSG_SEARCH_REQ, req)

    # -- files and media (issue 13)
    # ANCHOR files client
    def sign_files(self, file_ids: list[str]) -> Deferred:
        """Signed URLs of files this user may read; fires with CIMFileSignRsp."""
        req = pb.CIMFileSignReq(user_id=self.user_id, file_ids=list(file_ids))
        return self.request(Cmd.FILE_SIGN_REQ, req)

    # -- push notifications
    # ANCHOR push client
    def push_register(
        self, platform: str, token: str, app_id: str = "", locale: str = "", extra: dict[str, str] | None = None
    ) -> Deferred:
        """Register where this device wants offline notifications (docs/push.md); fires with
        CIMPushRegisterRsp (``target_id``)."""
        req = pb.CIMPushRegisterReq(
            user_id=self.user_id, platform=platform, token=token, app_id=app_id, locale=locale, extra=extra or {}
        )
        return self.request(Cmd.PUSH_REGISTER_REQ, req)

    def push_unregister(self, target_id: int = 0, platform: str = "", token: str = "") -> Deferred:
        """Forget a target (by id, or platform and token; neither: this connection's); fires with
        CIMPushUnregisterRsp (``removed``)."""
        req = pb.CIMPushUnregisterReq(user_id=self.user_id, target_id=target_id, platform=platform, token=token)
        return self.request(Cmd.PUSH_UNREGISTER_REQ, req)

    def push_settings(self, show_preview: bool | None = None, show_sender: bool = True) -> Deferred:
        """Read (``show_preview`` None) or set this user's notification privacy; fires with
        CIMPushSettingsRsp."""
        settings = pb.CIMPushSettings(show_preview=bool(show_preview), show_sender=show_sender)
        req = pb.CIMPushSettingsReq(user_id=self.user_id, set=show_preview is not None, settings=settings)
        return self.request(Cmd.PUSH_SETTINGS_REQ, req)

    def app_state(self, background: bool) -> Deferred:
        """Say this app went to the background (notified as if offline) or came back."""
        return self.request(Cmd.APP_STATE_REQ, pb.CIMAppStateReq(user_id=self.user_id, background=background))

    def send_message_with(
        self,
        to_session_id: int,
        data: bytes | str,
        session_type: int = pb.kCIM_SESSION_TYPE_SINGLE,
        at_user_list: list[int] | tuple[int, ...] = (),
        at_all: bool = False,
        push_content: str = "",
        msg_type: int = pb.kCIM_MSG_TYPE_TEXT,
    ) -> Deferred:
        """Send a message with @mentions and the app's own notification text (``push_content``);
        fires with CIMMsgDataAck."""
        msg = pb.CIMMsgData(
            from_user_id=self.user_id,
            to_session_id=to_session_id,
            client_msg_id=str(uuid.uuid4()),
            create_time=int(self.reactor.seconds()) & 0x7FFFFFFF,
            msg_type=msg_type,
            session_type=session_type,
            msg_data=data.encode("utf-8") if isinstance(data, str) else data,
            at_user_list=list(at_user_list),
            at_all=at_all,
            push_content=push_content,
        )
        return self.request(Cmd.MSG_DATA, msg)

    # -- bots and moderation
    # ANCHOR bots client


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
    ca_file: str | None = None,
    server_hostname: str | None = None,
) -> Deferred:
    """Connect; fires with a :class:`CIMClient` (a :class:`WebSocketCIMClient` for WebSocket).

    ``endpoint`` is a client endpoint string such as ``tcp:127.0.0.1:8000``, ``tls:host:8443``
    (CIM over TLS), or a WebSocket URL (``ws://host:8001/``, ``ws://host:18080/ws``, ``wss://...``).
    Over TLS (``tls:``, ``wss://``) the server's certificate must chain to a CA of ``ca_file`` (PEM,
    one or more certificates), or of the system's store when it is None, and name the host
    (``server_hostname`` when it differs from the address connected to); otherwise the connection
    is refused and this fails (``OpenSSL.SSL.Error``, ``service_identity`` errors).  WebSocket only: ``encoding``
    ("binary" or "json") is what the client sends and, through the subprotocol it offers
    (``cim.v1`` or ``cim.v1.json``), what the server answers; ``subprotocols`` overrides the
    offer (``[]``: none, the server then answers in the encoding of the client's last message);
    ``origin`` sets the Origin header as a browser would; ``compression`` offers
    permessage-deflate.  A refused handshake fails with :class:`WebSocketClosed`.
    """
    if endpoint.startswith("tls:"):
        host, port = _host_port(endpoint[4:])
        client = CIMClient(reactor, max_frame_bytes, auto_delivery_ack, client_type)
        client._handshake = Deferred()
        tls = wrapClientTLS(_tls_options(host, ca_file, server_hostname), HostnameEndpoint(reactor, host, port))
        return connectProtocol(tls, client).addCallback(lambda _: client._handshake)
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
        tcp = wrapClientTLS(_tls_options(factory.host, ca_file, server_hostname), tcp)
    d = tcp.connect(factory)
    d.addCallback(lambda _: client._opened)
    return d


def _host_port(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` of a ``tls:`` endpoint."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"tls:{address}: expected tls:HOST:PORT")
    return host.strip("[]"), int(port)


def _tls_options(host: str, ca_file: str | None, server_hostname: str | None) -> Any:
    """Client TLS that verifies the server: its chain against ``ca_file``'s CAs (else the system's
    store), and its name (or IP address) against ``server_hostname`` or ``host``."""
    trust = None
    if ca_file is not None:
        with open(ca_file, "rb") as f:
            found = _PEM_CERTIFICATE.findall(f.read())
        if not found:
            raise ValueError(f"{ca_file}: no PEM certificate in it")
        trust = trustRootFromCertificates([Certificate.loadPEM(pem) for pem in found])
    return optionsForClientTLS(server_hostname or host, trustRoot=trust)


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


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
        self._opened: Deferred = Deferred(self._cancel_opening)
        self._tls_failure: Failure | None = None  # wss: why the server's certificate was refused

    def _cancel_opening(self, d: Deferred) -> None:
        """Cancelling :func:`connect` during the WebSocket handshake closes the socket."""
        websocket = self.websocket
        if websocket is not None and websocket.transport is not None:
            websocket.transport.abortConnection()

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
            self._opened.errback(self._tls_failure or closed)
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

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if reason.check(SSL.Error, VerificationError):
            self.client._tls_failure = reason  # connect() fails with it rather than a bare close
        super().connectionLost(reason)

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


def upload_file(
    reactor: Any,
    base_url: str,
    token: str,
    data: bytes,
    name: str,
    content_type: str = "application/octet-stream",
    duration: float | None = None,
) -> Deferred:
    """``POST {base_url}/files`` with the login token; fires with (HTTP status, JSON answer),
    whose ``file`` is the FileInfo to put in an IMAGE/FILE/AUDIO/VIDEO message (docs/media.md).
    Large files should go through tus (``/files/uploads``) instead, resumable."""
    headers = Headers(
        {
            b"Authorization": [b"Bearer " + token.encode("ascii")],
            b"Content-Type": [content_type.encode("ascii")],
            b"X-File-Name": [urllib.parse.quote(name).encode("ascii")],
        }
    )
    if duration is not None:
        headers.addRawHeader(b"X-Duration", b"%.3f" % duration)
    url = base_url.rstrip("/") + "/files"
    d = Agent(reactor).request(b"POST", url.encode("utf-8"), headers, FileBodyProducer(BytesIO(data)))

    def read(response: Any) -> Deferred:
        return _read_body(response).addCallback(lambda raw: (response.code, json.loads(raw.decode("utf-8"))))

    return d.addCallback(read)


# -- resilient sessions: failover, resume, catch-up

SINGLE = pb.kCIM_SESSION_TYPE_SINGLE
GROUP = pb.kCIM_SESSION_TYPE_GROUP
MAX_IDS_PER_REQUEST = 20  # MSG_GET_BY_MSG_ID_REQ takes at most 20 ids

_OK = pb.kCIM_ERR_SUCCESS
_RES_OK = pb.kCIM_RES_CODE_OK
_TOKEN_REFUSED = pb.kCIM_ERR_LOGIN_INVALID_USER_TOKEN
_RATE_LIMITED = pb.kCIM_ERR_RATE_LIMITED
# Refusals that say "not now": the message is sent again (same client_msg_id) after retry_delay.
_TRY_AGAIN = frozenset({_RATE_LIMITED, pb.kCIM_ERR_STORAGE_UNAVAILABLE})
_KICKOUT = int(Cmd.KICKOUT_NOTIFY)
# Login answers that another try cannot change: stop and report instead of retrying.
FATAL_LOGIN_CODES = frozenset(
    {
        pb.kCIM_ERR_LOGIN_VERSION_TOO_OLD,
        pb.kCIM_ERR_LOGIN_INVALID_USER_TOKEN,
        pb.kCIM_ERR_LOGIN_INVALID_USER_OR_PWD,
        pb.kCIM_ERR_USER_DISABLED,
    }
)
# Kickouts after which reconnecting would only kick another device, or be refused.
FATAL_KICKOUT_CODES = frozenset({pb.kCIM_ERR_SESSION_REPLACED, pb.kCIM_ERR_USER_DISABLED})
# Answers to a history request meaning "not yours to see": that range is given up.
_NOT_VISIBLE = frozenset({pb.kCIM_ERR_FORBIDDEN, pb.kCIM_ERR_NOT_FOUND, pb.kCIM_ERR_INVALID_ARGUMENT})
# Failures that mean "the connection is gone" (quiet), as opposed to a bug (logged).
_CONNECTION_GONE = (ConnectionClosed, defer.CancelledError, defer.TimeoutError, FrameError, ConnectionError)

ConversationKey = tuple[int, int]  # (session_type, session_id as this user sees it)

_log = Logger()


class LoginRefused(ServerError):
    """The server refused the login for good (bad password, disabled account, refused token and
    no password to fall back on): the :class:`ResilientClient` stops."""


class KickedOut(ServerError):
    """The server logged this device out for a reason reconnecting would not fix
    (``SESSION_REPLACED``, ``USER_DISABLED``): the :class:`ResilientClient` stops."""


class ClientStopped(Exception):
    """The :class:`ResilientClient` was stopped (sends still waiting fail with this)."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation, as a :class:`ResilientClient` hands it to the application.

    ``session_type``/``session_id`` name the conversation as this user sees it (the peer of a
    1:1 conversation, else the group); ``outgoing`` says this user sent it (from this or another
    device); ``source`` is where it came from: ``"push"`` (live MSG_DATA), ``"sync"`` (fetched
    by catch-up or gap filling) or ``"sent"`` (this client sent it and got the ack).  ``raw`` is
    the protobuf it was made from (CIMMsgData, CIMMsgInfo or the sent CIMMsgData).
    """

    session_type: int
    session_id: int
    server_msg_id: int
    client_msg_id: str
    from_user_id: int
    msg_type: int
    msg_data: bytes
    create_time: int
    outgoing: bool
    source: str
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> ConversationKey:
        return (self.session_type, self.session_id)

    @property
    def text(self) -> str:
        return self.msg_data.decode("utf-8", "replace")


class Backoff:
    """Delays between reconnection attempts: ``initial`` × ``multiplier``^attempt, at most
    ``maximum``, with jitter so that clients do not all come back at the same instant.

    ``jitter``: ``"full"`` (default: uniform in [0, delay]), ``"equal"`` (uniform in
    [½, 1] × the delay, as the web client does), ``"decorrelated"`` (uniform in
    [initial, 3 × the previous delay], capped) or ``"none"``.  ``rng`` is a ``random.Random`` (seed it for
    deterministic tests).  :meth:`reset` starts over (after a successful login).
    """

    JITTERS = ("full", "equal", "decorrelated", "none")

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        jitter: str = "full",
        rng: random.Random | None = None,
    ) -> None:
        if jitter not in self.JITTERS:
            raise ValueError(f"jitter must be one of {self.JITTERS}, not {jitter!r}")
        if initial <= 0 or maximum < initial or multiplier < 1:
            raise ValueError("need 0 < initial <= maximum and multiplier >= 1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self.rng = rng if rng is not None else random.Random()
        self.attempt = 0
        self._previous = 0.0

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter for attempt number ``attempt`` (0-based)."""
        delay = self.initial
        for _ in range(attempt):
            delay *= self.multiplier
            if delay >= self.maximum:
                return self.maximum
        return min(delay, self.maximum)

    def next(self) -> float:
        """The next delay, in seconds."""
        if self.jitter == "decorrelated":
            previous = self._previous or self.initial
            delay = min(self.maximum, self.rng.uniform(self.initial, previous * 3))
            self._previous = delay
        else:
            cap = self.ceiling(self.attempt)
            if self.jitter == "full":
                delay = self.rng.uniform(0, cap)
            elif self.jitter == "equal":
                delay = cap / 2 + self.rng.uniform(0, cap / 2)
            else:
                delay = cap
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
        self._previous = 0.0


class SeqTracker:
    """Exactly once and in order, per conversation, by the dense ``server_msg_id``.

    ``held[key]`` is the highest id up to which every message of the conversation was handed to
    ``deliver`` (0: none).  :meth:`offer` delivers the next one at once, drops one already held
    (a duplicate) and keeps one beyond a gap in ``waiting`` until the gap is filled;
    :meth:`complete` says a fetched range is whole (ids it lacks are not visible to this user,
    e.g. group messages from before one joined), so what waits behind it is delivered.
    """

    __slots__ = ("held", "waiting", "_deliver")

    def __init__(self, deliver: Callable[[ChatMessage], None], positions: dict | None = None) -> None:
        self.held: dict[ConversationKey, int] = dict(positions or {})
        self.waiting: dict[ConversationKey, dict[int, ChatMessage]] = {}
        self._deliver = deliver

    def offer(self, msg: ChatMessage) -> bool:
        """Deliver or keep ``msg``; False if it was a duplicate."""
        key = (msg.session_type, msg.session_id)
        seq = msg.server_msg_id
        held = self.held.get(key, 0)
        if seq <= held:
            return False
        waiting = self.waiting.get(key)
        if seq == held + 1:
            self.held[key] = seq
            self._deliver(msg)
            if waiting:
                self._drain(key, waiting)
            return True
        if waiting is None:
            waiting = self.waiting[key] = {}
        elif seq in waiting:
            return False
        waiting[seq] = msg
        return True

    def _drain(self, key: ConversationKey, waiting: dict[int, ChatMessage]) -> None:
        held = self.held.get(key, 0)
        for seq in [s for s in waiting if s <= held]:
            del waiting[seq]
        while waiting:
            held = self.held.get(key, 0)
            msg = waiting.pop(held + 1, None)
            if msg is None:
                break
            self.held[key] = held + 1
            self._deliver(msg)
        if not waiting and self.waiting.get(key) is waiting:
            del self.waiting[key]

    def complete(self, key: ConversationKey, upto: int, messages: list[ChatMessage]) -> None:
        """Offer ``messages`` (fetched), then treat every id up to ``upto`` as resolved."""
        for msg in sorted(messages, key=lambda m: m.server_msg_id):
            self.offer(msg)
        if self.held.get(key, 0) >= upto:
            return
        waiting = self.waiting.get(key)
        if waiting:
            for seq in sorted(s for s in waiting if s <= upto):
                msg = waiting.pop(seq)
                if seq > self.held.get(key, 0):
                    self.held[key] = seq
                    self._deliver(msg)
        if self.held.get(key, 0) < upto:
            self.held[key] = upto
        if waiting is not None:
            self._drain(key, waiting)

    def baseline(self, key: ConversationKey, seq: int) -> None:
        """Start ``key`` at ``seq`` without delivering what came before (what is already
        waiting is kept)."""
        waiting = self.waiting.get(key)
        if waiting:
            seq = min(seq, min(waiting) - 1)
        if seq > self.held.get(key, 0):
            self.held[key] = seq
        if waiting:
            self._drain(key, waiting)

    def top_waiting(self, key: ConversationKey) -> int:
        """The highest id waiting behind a gap (0: no gap)."""
        waiting = self.waiting.get(key)
        return max(waiting) if waiting else 0


@dataclass(slots=True)
class _Outgoing:
    message: pb.CIMMsgData
    result: Deferred
    on: CIMClient | None = None  # the connection it was last written to, None while unsent
    retry: Any = None  # DelayedCall after RATE_LIMITED or STORAGE_UNAVAILABLE


class ResilientClient:
    """A session that survives servers going away: one user, many servers, exactly-once delivery.

    ``servers`` are addresses as :func:`connect` takes them (``tcp:host:port``, ``ws://...``).
    The client connects to them in order (``randomize_start`` picks the first at random), logs
    in with ``password`` (or ``password_md5``) the first time and with the token the server
    then issued afterwards (or with ``token`` and ``user_id`` from the start); a refused token
    falls back to the password, and without one the client stops (:class:`LoginRefused`).

    A lost connection, a failed connect or login, a login not done within ``login_timeout`` or
    a heartbeat not answered within ``heartbeat_timeout`` moves on to the next server: after a
    random delay of up to ``failover_jitter`` (by default ``backoff_initial``) until every server
    was tried, then after a :class:`Backoff` delay (``backoff_initial`` doubling up to
    ``backoff_max``, ``jitter``, ``rng``).  A successful login resets it.

    After every login the client catches up: it lists the conversations updated since the last
    catch-up (less ``sync_margin`` seconds), fetches every message beyond the highest
    contiguous id it holds per conversation, and resends every message not yet acknowledged,
    with its original client_msg_id.  Live pushes with a gap are held back until the gap is
    filled (after ``gap_wait`` seconds, the missing push may just be late).  The application
    receives every message once, in server_msg_id order per conversation, through
    ``on_message(ChatMessage)``, or :meth:`next_message` when no callback is given.  Its own
    sends are part of that stream (``source="sent"``), so the stream has no gaps.

    ``positions`` (``{(session_type, session_id): highest contiguous id}``, as
    :meth:`positions` returned) and ``last_sync`` resume from an earlier run; without them the
    first catch-up delivers each conversation's whole history, or, with ``fetch_history=False``,
    starts each conversation at its latest message.  Other pushes (read receipts, group
    changes, kickouts) go to ``on_push(cmd, msg)``.
    """

    def __init__(
        self,
        reactor: Any,
        servers: list[str],
        user_name: str = "",
        password: str | None = None,
        *,
        password_md5: str | None = None,
        token: str = "",
        user_id: int = 0,
        on_message: Callable[[ChatMessage], None] | None = None,
        on_push: Callable[[int, Any], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_multiplier: float = 2.0,
        jitter: str = "full",
        rng: random.Random | None = None,
        failover_jitter: float | None = None,
        randomize_start: bool = False,
        heartbeat_interval: float = 30.0,
        heartbeat_timeout: float = 10.0,
        login_timeout: float = 10.0,
        gap_wait: float = 0.5,
        retry_delay: float = 1.0,
        sync_margin: int = 300,
        history_page: int = 20,
        catchup_concurrency: int = 4,
        fetch_history: bool = True,
        positions: dict[ConversationKey, int] | None = None,
        last_sync: int = 0,
        client_type: int = pb.kCIM_CLIENT_TYPE_DEFAULT,
        connect_options: dict[str, Any] | None = None,
        connector: Callable[[str], Deferred] | None = None,
    ) -> None:
        if not servers:
            raise ValueError("need at least one server")
        if password is not None and password_md5 is not None:
            raise ValueError("give password or password_md5, not both")
        if password is not None:
            password_md5 = md5_password(password)
        if not ((user_name and password_md5) or (token and user_id)):
            raise ValueError("need user_name and a password, or token and user_id")
        self.reactor = reactor
        self.servers = list(servers)
        self.user_name = user_name
        self._password_md5 = password_md5 or ""
        self.token = token
        self.user_id = user_id
        self.on_message = on_message
        self.on_push = on_push
        self.inbox: defer.DeferredQueue = defer.DeferredQueue()
        self.rng = rng if rng is not None else random.Random()
        self.backoff = Backoff(backoff_initial, backoff_max, backoff_multiplier, jitter, self.rng)
        self.failover_jitter = backoff_initial if failover_jitter is None else failover_jitter
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.login_timeout = login_timeout
        self.gap_wait = gap_wait
        self.retry_delay = retry_delay
        self.sync_margin = sync_margin
        self.history_page = history_page
        self.catchup_concurrency = max(1, catchup_concurrency)
        self.fetch_history = fetch_history
        self.client_type = client_type
        if connector is None:
            options = dict(connect_options or {})
            options.setdefault("client_type", client_type)
            connector = partial(connect, reactor, **options)
        self._connector = connector
        self.tracker = SeqTracker(self._deliver, positions)
        self.last_sync = last_sync
        self._baselined = bool(positions) or fetch_history

        # observable state
        self.server_index = self.rng.randrange(len(self.servers)) if randomize_start else 0
        self.client: CIMClient | None = None  # the logged-in connection, if any
        self.logins = 0
        self.failovers = 0  # logins after the first one: reconnections, to whichever server
        self.attempts = 0
        self.disconnects = 0
        self.heartbeat_timeouts = 0
        self.last_login_at: float | None = None
        self.login_method = ""  # "password" or "token": how the last login was done
        self.last_error: Any = None  # the last reason a connection or an attempt failed
        self.error: Exception | None = None  # why the client stopped by itself
        self.next_delay = 0.0  # the delay before the attempt scheduled last
        self.delivered = 0
        self.duplicates = 0
        self.synced = False  # the catch-up after the current login is done

        self._started = False
        self._stopped = False
        self._failures = 0  # failed attempts (or lost connection) since the last login
        self._attempt_call: Any = None
        self._attempt_d: Deferred | None = None
        self._beat_call: Any = None
        self._beat_timeout: Any = None
        self._kickout: pb.CIMKickoutNotify | None = None
        self._outbox: dict[str, _Outgoing] = {}
        self._gap_calls: dict[ConversationKey, Any] = {}
        self._fillers: dict[ConversationKey, Deferred] = {}
        self._want: dict[ConversationKey, int] = {}
        self._login_waiters: list[Deferred] = []
        self._sync_waiters: list[Deferred] = []
        self._stop_waiters: list[Deferred] = []

    # -- public API

    @property
    def server(self) -> str:
        """The address of the server connected to (or tried next)."""
        return self.servers[self.server_index]

    @property
    def logged_in(self) -> bool:
        return self.client is not None

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def pending_sends(self) -> int:
        """Messages sent but not acknowledged yet."""
        return len(self._outbox)

    def start(self) -> Deferred:
        """Start connecting; fires like :meth:`when_logged_in`."""
        if not self._started and not self._stopped:
            self._started = True
            self._attempt_now()
        return self.when_logged_in()

    def stop(self) -> Deferred:
        """Stop reconnecting, close the connection and fail the sends still waiting with
        :class:`ClientStopped`; fires once the connection is closed."""
        client = self.client
        self._shutdown(None)
        if client is not None:
            return client.close().addCallback(lambda _: None)
        return defer.succeed(None)

    def set_servers(self, servers: list[str]) -> None:
        """Replace the server list; the next attempt uses it."""
        if not servers:
            raise ValueError("need at least one server")
        current = self.server
        self.servers = list(servers)
        self.server_index = self.servers.index(current) if current in self.servers else 0

    def when_logged_in(self) -> Deferred:
        """Fires with the logged-in :class:`CIMClient` (at once if logged in now); fails with
        the error that stopped the client (:class:`ClientStopped` after :meth:`stop`)."""
        if self.client is not None:
            return defer.succeed(self.client)
        if self._stopped:
            return defer.fail(self.error or ClientStopped())
        d: Deferred = Deferred()
        self._login_waiters.append(d)
        return d

    def when_synced(self) -> Deferred:
        """Fires once logged in and caught up (at once if so now)."""
        if self.synced and self.client is not None:
            return defer.succeed(None)
        if self._stopped:
            return defer.fail(self.error or ClientStopped())
        d: Deferred = Deferred()
        self._sync_waiters.append(d)
        return d

    def when_stopped(self) -> Deferred:
        """Fires when the client stops: with None after :meth:`stop`, else with the error
        (:class:`LoginRefused`, :class:`KickedOut`); never fails."""
        if self._stopped:
            return defer.succeed(self.error)
        d: Deferred = Deferred()
        self._stop_waiters.append(d)
        return d

    def next_message(self, timeout: float | None = None) -> Deferred:
        """The next message, when no ``on_message`` callback was given."""
        d = self.inbox.get()
        if timeout is not None:
            d.addTimeout(timeout, self.reactor)
        return d

    def positions(self) -> dict[ConversationKey, int]:
        """The highest contiguous server_msg_id delivered, per conversation (to persist, with
        :attr:`last_sync`, and pass back as ``positions``)."""
        return dict(self.tracker.held)

    def send_text(self, to_session_id: int, text: str, session_type: int = SINGLE, **kwargs: Any) -> Deferred:
        """Send a text message; see :meth:`send_message`."""
        return self.send_message(to_session_id, text, pb.kCIM_MSG_TYPE_TEXT, session_type, **kwargs)

    def send_message(
        self,
        to_session_id: int,
        data: bytes | str,
        msg_type: int = pb.kCIM_MSG_TYPE_TEXT,
        session_type: int = SINGLE,
        client_msg_id: str | None = None,
        at_user_list: list[int] | tuple[int, ...] = (),
        at_all: bool = False,
    ) -> Deferred:
        """Send a message, now or once logged in, and again with the same client_msg_id after
        every reconnect until it is acknowledged; fires once with the CIMMsgDataAck.  Fails
        with :class:`ServerError` if the server refuses it, with :class:`ClientStopped` (or the
        error that stopped the client) if the client stops first."""
        if self._stopped:
            return defer.fail(self.error or ClientStopped())
        cmid = client_msg_id if client_msg_id is not None else str(uuid.uuid4())
        if cmid in self._outbox:
            return defer.fail(ValueError(f"client_msg_id {cmid!r} is being sent already"))
        msg = pb.CIMMsgData(
            from_user_id=self.user_id,
            to_session_id=to_session_id,
            client_msg_id=cmid,
            create_time=int(self.reactor.seconds()) & 0x7FFFFFFF,
            msg_type=msg_type,
            session_type=session_type,
            msg_data=data.encode("utf-8") if isinstance(data, str) else data,
            at_user_list=at_user_list,
            at_all=at_all,
        )
        entry = _Outgoing(msg, Deferred())
        self._outbox[cmid] = entry
        if self.client is not None:
            self._transmit(entry, self.client)
        return entry.result

    # -- connecting

    def _attempt_now(self) -> None:
        self._attempt_call = None
        if self._stopped:
            return
        self.attempts += 1
        d = defer.ensureDeferred(self._attempt(self.server))
        self._attempt_d = d
        if self.login_timeout:
            d.addTimeout(self.login_timeout, self.reactor)
        d.addCallbacks(self._attempt_succeeded, self._attempt_failed)

    async def _attempt(self, address: str) -> tuple[CIMClient, Any]:
        client = None
        try:
            client = await self._connector(address)
            client.push_handler = partial(self._on_push, client)
            return client, await self._login(client)
        except BaseException:
            if client is not None:
                _abort(client)
            raise

    async def _login(self, client: CIMClient) -> Any:
        if self.token and self.user_id:
            rsp = await client.login_token(self.user_id, self.token, self.client_type)
            if rsp.result_code == _OK:
                self.login_method = "token"
                return rsp
            if rsp.result_code != _TOKEN_REFUSED or not self._password_md5:
                raise LoginRefused(rsp.result_code, rsp.result_string, int(Cmd.LOGIN_AUTH_TOKEN_REQ))
            self.token = ""  # expired or revoked: the password gets a new one
        rsp = await client.login_password(self.user_name, self._password_md5, self.client_type)
        if rsp.result_code != _OK:
            raise LoginRefused(rsp.result_code, rsp.result_string, int(Cmd.LOGIN_AUTH_REQ))
        self.login_method = "password"
        self.token = rsp.user_token
        return rsp

    def _attempt_succeeded(self, result: tuple[CIMClient, Any]) -> None:
        self._attempt_d = None
        client, rsp = result
        if self._stopped:
            _abort(client)
            return
        if self.logins:
            self.failovers += 1
        self.logins += 1
        self.user_id = rsp.user_info.user_id
        self.client = client
        self.synced = False
        self._kickout = None
        self._failures = 0
        self.backoff.reset()
        self.last_login_at = self.reactor.seconds()
        self._schedule_heartbeat(client)
        # Resend what was never acknowledged, in the order it was first sent.
        for entry in list(self._outbox.values()):
            if entry.on is not client and entry.retry is None:
                self._transmit(entry, client)
        defer.ensureDeferred(self._catch_up(client, rsp.server_time)).addErrback(_log_failure, "catch-up failed")
        client.when_closed().addCallback(self._connection_lost, client)
        if self.client is client:
            waiters, self._login_waiters = self._login_waiters, []
            for d in waiters:
                d.callback(client)

    def _attempt_failed(self, failure: Failure) -> None:
        self._attempt_d = None
        if self._stopped:
            return
        error = failure.value
        self.last_error = error
        if isinstance(error, LoginRefused) and error.code in FATAL_LOGIN_CODES:
            self._shutdown(error)
            return
        self._failures += 1
        self._next_server()

    def _connection_lost(self, reason: Any, client: CIMClient) -> None:
        if client is not self.client:
            return
        self.client = None
        self.synced = False
        self.disconnects += 1
        self.last_error = reason
        self._stop_heartbeat()
        if self._stopped:
            return
        kickout = self._kickout
        if kickout is not None and kickout.reason_code in FATAL_KICKOUT_CODES:
            self._shutdown(KickedOut(kickout.reason_code, kickout.reason, _KICKOUT))
            return
        self._failures += 1
        self._next_server()

    def _next_server(self) -> None:
        self.server_index = (self.server_index + 1) % len(self.servers)
        if self._failures < len(self.servers):
            delay = self.rng.uniform(0, self.failover_jitter) if self.failover_jitter > 0 else 0.0
        else:
            delay = self.backoff.next()
        self.next_delay = delay
        self._attempt_call = self.reactor.callLater(delay, self._attempt_now)

    def _shutdown(self, error: Exception | None) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.error = error
        client, self.client = self.client, None
        self.synced = False
        self._stop_heartbeat()
        for call in (self._attempt_call, *self._gap_calls.values()):
            if call is not None and call.active():
                call.cancel()
        self._attempt_call = None
        self._gap_calls.clear()
        if self._attempt_d is not None:
            self._attempt_d.cancel()
        if client is not None and error is not None:
            _abort(client)
        reason = error or ClientStopped()
        outbox, self._outbox = self._outbox, {}
        for entry in outbox.values():
            if entry.retry is not None and entry.retry.active():
                entry.retry.cancel()
            entry.result.errback(reason)
        for waiters in (self._login_waiters, self._sync_waiters):
            pending = list(waiters)
            waiters.clear()
            for d in pending:
                d.errback(reason)
        stop_waiters, self._stop_waiters = self._stop_waiters, []
        for d in stop_waiters:
            d.callback(error)

    # -- liveness

    def _schedule_heartbeat(self, client: CIMClient) -> None:
        if self.heartbeat_interval and self.heartbeat_interval > 0:
            self._beat_call = self.reactor.callLater(self.heartbeat_interval, self._beat, client)

    def _beat(self, client: CIMClient) -> None:
        self._beat_call = None
        if client is not self.client:
            return
        self._beat_timeout = self.reactor.callLater(self.heartbeat_timeout, self._beat_missed, client)
        client.heartbeat().addCallbacks(self._beat_answered, lambda _: None, (client,))

    def _beat_answered(self, _: Any, client: CIMClient) -> None:
        if client is not self.client:
            return
        if self._beat_timeout is not None and self._beat_timeout.active():
            self._beat_timeout.cancel()
        self._beat_timeout = None
        self._schedule_heartbeat(client)

    def _beat_missed(self, client: CIMClient) -> None:
        self._beat_timeout = None
        if client is self.client:
            self.heartbeat_timeouts += 1
            _abort(client)

    def _stop_heartbeat(self) -> None:
        for call in (self._beat_call, self._beat_timeout):
            if call is not None and call.active():
                call.cancel()
        self._beat_call = self._beat_timeout = None

    # -- sending

    def _transmit(self, entry: _Outgoing, client: CIMClient) -> None:
        entry.on = client
        entry.retry = None
        entry.message.from_user_id = self.user_id
        d = client.request(Cmd.MSG_DATA, entry.message)
        d.addCallbacks(self._acked, self._send_failed, (entry, client), None, (entry, client))

    def _acked(self, ack: pb.CIMMsgDataAck, entry: _Outgoing, client: CIMClient) -> None:
        msg = entry.message
        if self._outbox.get(msg.client_msg_id) is not entry:
            return
        if ack.res_code != _RES_OK:
            self._refused(entry, ServerError(ack.error_code, ack.error_msg, int(Cmd.MSG_DATA)))
            return
        del self._outbox[msg.client_msg_id]
        sent = ChatMessage(
            msg.session_type,
            msg.to_session_id,
            ack.server_msg_id,
            msg.client_msg_id,
            self.user_id,
            msg.msg_type,
            msg.msg_data,
            ack.create_time or msg.create_time,
            True,
            "sent",
            msg,
        )
        self._offer(sent)
        entry.result.callback(ack)

    def _send_failed(self, failure: Failure, entry: _Outgoing, client: CIMClient) -> None:
        if self._outbox.get(entry.message.client_msg_id) is not entry:
            return
        if isinstance(failure.value, ServerError):
            self._refused(entry, failure.value)
        elif failure.check(*_CONNECTION_GONE):
            if entry.on is client:
                entry.on = None  # resent after the next login
        else:
            del self._outbox[entry.message.client_msg_id]
            entry.result.errback(failure)

    def _refused(self, entry: _Outgoing, error: ServerError) -> None:
        if error.code in _TRY_AGAIN:
            entry.on = None
            entry.retry = self.reactor.callLater(self.retry_delay, self._retry_send, entry)
            return
        del self._outbox[entry.message.client_msg_id]
        entry.result.errback(error)

    def _retry_send(self, entry: _Outgoing) -> None:
        entry.retry = None
        if self._outbox.get(entry.message.client_msg_id) is entry and self.client is not None:
            self._transmit(entry, self.client)

    # -- receiving

    def _on_push(self, client: CIMClient, cmd: int, seq: int, msg: Any) -> None:
        if cmd == _MSG_DATA:
            if type(msg) is pb.CIMMsgData:
                me = self.user_id
                sender = msg.from_user_id
                session_id = msg.to_session_id
                if msg.session_type == SINGLE and sender != me:
                    session_id = sender
                self._offer(
                    ChatMessage(
                        msg.session_type,
                        session_id,
                        msg.server_msg_id,
                        msg.client_msg_id,
                        sender,
                        msg.msg_type,
                        msg.msg_data,
                        msg.create_time,
                        sender == me,
                        "push",
                        msg,
                    )
                )
            return
        if cmd == _KICKOUT and client is self.client and not isinstance(msg, bytes):
            self._kickout = msg
        if self.on_push is not None:
            self.on_push(cmd, msg)

    def _offer(self, msg: ChatMessage) -> None:
        tracker = self.tracker
        if not tracker.offer(msg):
            self.duplicates += 1
            return
        key = (msg.session_type, msg.session_id)
        if key in tracker.waiting and key not in self._gap_calls and key not in self._fillers:
            self._gap_calls[key] = self.reactor.callLater(self.gap_wait, self._gap_due, key)

    def _deliver(self, msg: ChatMessage) -> None:
        self.delivered += 1
        callback = self.on_message
        if callback is None:
            self.inbox.put(msg)
            return
        try:
            callback(msg)
        except Exception:
            _log.failure("on_message failed for message {key} #{seq}", key=msg.key, seq=msg.server_msg_id)

    def _gap_due(self, key: ConversationKey) -> None:
        del self._gap_calls[key]
        if key not in self.tracker.waiting or self.client is None:
            return  # filled meanwhile, or the catch-up after the next login will
        if not self._baselined:  # the first catch-up is deciding where conversations start
            self._gap_calls[key] = self.reactor.callLater(self.gap_wait, self._gap_due, key)
            return
        self._fill_to(key, 0)

    # -- catching up

    async def _catch_up(self, client: CIMClient, server_time: int) -> None:
        tracker = self.tracker
        since = max(0, self.last_sync - self.sync_margin) if self.last_sync else 0
        delay = self.retry_delay
        while True:
            try:
                listing = await client.sessions(since)
                break
            except ServerError:  # rate limited or the server failed: again, a little later
                await _sleep(self.reactor, delay)
                delay = min(delay * 2, self.backoff.maximum)
            except _CONNECTION_GONE:
                return None
            if client is not self.client:
                return None
        if client is not self.client:
            return None
        jobs: dict[ConversationKey, int] = {}
        baseline = not self._baselined
        for entry in listing.contact_session_list:
            key = (entry.session_type, entry.session_id)
            latest = entry.server_msg_id
            if baseline and key not in tracker.held:
                tracker.baseline(key, latest)
            elif latest > tracker.held.get(key, 0):
                jobs[key] = latest
        self._baselined = True
        if self.last_sync and not await self._recalls_since(client, since):
            return None
        for key in list(tracker.waiting):
            jobs.setdefault(key, 0)
        todo = iter(list(jobs.items()))

        async def worker() -> bool:
            for key, upto in todo:
                if not await self._fill_to(key, upto):
                    return False
            return True

        workers = [defer.ensureDeferred(worker()) for _ in range(min(self.catchup_concurrency, len(jobs)))]
        done = await defer.gatherResults(workers, consumeErrors=True) if workers else []
        if all(done) and client is self.client:
            self.last_sync = server_time
            self.synced = True
            waiters, self._sync_waiters = self._sync_waiters, []
            for d in waiters:
                d.callback(None)
        return None

    async def _recalls_since(self, client: CIMClient, since: int) -> bool:
        """Messages held from before may have been recalled meanwhile: the recalls since the last
        catch-up go to ``on_push`` as MSG_RECALL_NOTIFY (False: the connection went away)."""
        while True:
            try:
                page = await client.recalls(since)
            except ServerError as e:
                return e.code in (pb.kCIM_ERR_NOT_SUPPORTED, pb.kCIM_ERR_UNKNOWN_COMMAND)  # no recall there
            except _CONNECTION_GONE:
                return False
            if client is not self.client:
                return False
            for notify in page.recalls:
                if self.on_push is not None:
                    self.on_push(Cmd.MSG_RECALL_NOTIFY, notify)
            if not page.has_more or not page.recalls or page.recalls[-1].recall_time == since:
                return True  # (over 1,000 recalls within one second: the rest is in history)
            since = page.recalls[-1].recall_time

    def typing(self, session_id: int, typing: bool = True, session_type: int = SINGLE) -> None:
        """Tell the others that this user is typing (nothing while offline: it is ephemeral)."""
        if self.client is not None:
            self.client.typing(session_id, typing, session_type)

    def recall(self, session_id: int, msg_id: int, session_type: int = SINGLE) -> Deferred:
        """Recall one of this user's messages; fires with CIMMsgRecallRsp (fails while offline)."""
        if self.client is None:
            return defer.fail(ConnectionClosed("not connected"))
        return self.client.recall(session_id, msg_id, session_type)

    def forward(self, session_id: int, msg_ids: list[int], targets: list[tuple[int, int]], **options: Any) -> Deferred:
        """Forward messages (``CIMClient.forward``; fails while offline: resend with the same
        ``client_forward_id`` once connected, nothing is made twice)."""
        if self.client is None:
            return defer.fail(ConnectionClosed("not connected"))
        return self.client.forward(session_id, msg_ids, targets, **options)

    def delete_messages(self, session_id: int, msg_ids: list[int], session_type: int = SINGLE) -> Deferred:
        """Delete messages for this user only (``CIMClient.delete_messages``; fails while offline:
        deleting again is harmless). Messages this client delivered already stay delivered: the
        application drops them (the other devices get MSG_DELETE_NOTIFY through ``on_push``)."""
        if self.client is None:
            return defer.fail(ConnectionClosed("not connected"))
        return self.client.delete_messages(session_id, msg_ids, session_type)

    def clear_history(self, session_id: int, session_type: int = SINGLE) -> Deferred:
        """Clear a conversation's history for this user (``CIMClient.clear_history``)."""
        if self.client is None:
            return defer.fail(ConnectionClosed("not connected"))
        return self.client.clear_history(session_id, session_type)

    def remove_session(self, session_id: int, session_type: int = SINGLE) -> Deferred:
        """Take a conversation out of this user's list (``CIMClient.remove_session``)."""
        if self.client is None:
            return defer.fail(ConnectionClosed("not connected"))
        return self.client.remove_session(session_id, session_type)

    def _fill_to(self, key: ConversationKey, upto: int) -> Deferred:
        """Fetch what is missing of ``key`` up to ``upto`` and behind its gaps; fires with
        True once done, False if the connection went first."""
        call = self._gap_calls.pop(key, None)
        if call is not None and call.active():
            call.cancel()
        if upto > self._want.get(key, 0):
            self._want[key] = upto
        running = self._fillers.get(key)
        if running is None:
            running = self._fillers[key] = Deferred()
            defer.ensureDeferred(self._run_filler(key)).addBoth(self._filler_done, key, running)
        return _observe(running)

    def _filler_done(self, result: Any, key: ConversationKey, running: Deferred) -> None:
        if self._fillers.get(key) is running:
            del self._fillers[key]
        if isinstance(result, Failure):
            _log_failure(result, "filling a gap failed")
            result = False
        running.callback(result)
        if result and key in self.tracker.waiting and self.client is not None and key not in self._gap_calls:
            self._gap_calls[key] = self.reactor.callLater(self.gap_wait, self._gap_due, key)

    async def _run_filler(self, key: ConversationKey) -> bool:
        tracker = self.tracker
        delay = self.retry_delay
        while True:
            client = self.client
            if client is None:
                return False
            want = max(self._want.get(key, 0), tracker.top_waiting(key) - 1)
            held = tracker.held.get(key, 0)
            if want <= held:
                self._want.pop(key, None)
                return True
            try:
                found = await self._fetch(client, key, held, want)
            except ServerError as e:
                if e.code not in _NOT_VISIBLE:  # rate limited or the server failed: again, later
                    await _sleep(self.reactor, delay)
                    delay = min(delay * 2, self.backoff.maximum)
                    continue
                found = []  # not (or no longer) ours to see: a group we left, say
            except _CONNECTION_GONE:
                return False
            tracker.complete(key, want, found)

    async def _fetch(self, client: CIMClient, key: ConversationKey, held: int, upto: int) -> list[ChatMessage]:
        session_type, session_id = key
        waiting = self.tracker.waiting.get(key) or {}
        missing = None
        if upto - held <= MAX_IDS_PER_REQUEST + len(waiting):
            missing = [i for i in range(held + 1, upto + 1) if i not in waiting]
        if missing is not None and len(missing) <= MAX_IDS_PER_REQUEST:
            if not missing:
                return []
            rsp = await client.messages_by_id(session_id, missing, session_type)
            infos = list(rsp.msg_list)
        else:
            infos = []
            end = upto + 1
            page = self.history_page
            while True:
                rsp = await client.history(session_id, end, page, session_type)
                batch = rsp.msg_list
                infos.extend(batch)
                if len(batch) < page or batch[0].server_msg_id <= held + 1:
                    break
                end = batch[0].server_msg_id
        me = self.user_id
        return [
            ChatMessage(
                session_type,
                session_id,
                m.server_msg_id,
                m.client_msg_id,
                m.from_user_id,
                m.msg_type,
                m.msg_data,
                m.create_time,
                m.from_user_id == me,
                "sync",
                m,
            )
            for m in infos
            if held < m.server_msg_id <= upto
        ]


def _abort(client: CIMClient) -> None:
    transport = client.transport
    if transport is not None and client._lost is None:
        transport.abortConnection()


def _log_failure(failure: Failure, what: str) -> None:
    _log.failure(what, failure)


def _observe(d: Deferred) -> Deferred:
    """A new Deferred with ``d``'s result, leaving ``d``'s own chain as it is."""
    out: Deferred = Deferred()

    def fire(result: Any) -> Any:
        out.callback(result)
        return result

    d.addBoth(fire)
    return out


def _sleep(reactor: Any, seconds: float) -> Deferred:
    return deferLater(reactor, seconds, lambda: None)
