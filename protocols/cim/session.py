"""What a CIM frame means: one client connection's state and commands, independent of framing.

A transport (TCP, WebSocket binary, WebSocket JSON) decodes its framing into
``(command_id, seq, protobuf message)`` and hands it to :meth:`CIMSession.request_received`;
the session answers and pushes through the transport's ``send(command_id, seq, message,
cache)`` callable.  No chat rule lives here: every decision is a handler call on the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message as PbMessage
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from coffeechat.core import ChatCore
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IDevice
from coffeechat.model import (
    ConversationEntry,
    Group,
    GroupMember,
    GroupNotice,
    Message,
    Push,
    ReadCount,
    ReadReceipt,
    SessionType,
    User,
    conversation_key,
)
from coffeechat.ratelimit import TokenBucket

from . import Cmd, pb

log = Logger()

RES_OK = pb.kCIM_RES_CODE_OK
STATUS_UNREAD = pb.kCIM_MSG_STATUS_UNREAD
STATUS_READ = pb.kCIM_MSG_STATUS_READ
STATUS_SENT = pb.kCIM_MSG_STATUS_SENT
MAX_PUSH_SEQ = 65534
REDELIVERY_TRIES = 3
# Pushes a connection may have awaiting a delivery ack; beyond it the oldest is given up (it is
# stored: the client catches up at its next login), so a client that never acks costs bounded memory.
MAX_UNACKED = 1000
_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)

# send(command_id, seq, message, cache): ``cache`` is a dict shared by every recipient of one
# push, where a transport may keep its encoding of ``message`` (None for one-off frames).
Send = Callable[[int, int, PbMessage, dict | None], None]

_LOGIN_COMMANDS = frozenset({Cmd.LOGIN_AUTH_REQ, Cmd.LOGIN_AUTH_TOKEN_REQ})
_NOT_YET = frozenset(
    {
        Cmd.VOIP_INVITE_REQ,
        Cmd.VOIP_INVITE_REPLY,
        Cmd.VOIP_INVITE_REPLY_ACK,
        Cmd.VOIP_HEARTBEAT,
        Cmd.VOIP_BYE_REQ,
    }
)
# Group requests are answered, failures included, with their own response type: each carries a
# result_code (CIMGroupListRsp and CIMGroupMemberListRsp by our extension field).
_GROUP_RESPONSES: dict[int, tuple[int, type[PbMessage]]] = {
    Cmd.GROUP_CREATE_DEFAULT_REQ: (Cmd.GROUP_CREATE_DEFAULT_RSP, pb.CIMGroupCreateRsp),
    Cmd.GROUP_DISBINGDING_REQ: (Cmd.GROUP_DISBINGDING_RSP, pb.CIMGroupDisbandingRsp),
    Cmd.GROUP_EXIT_REQ: (Cmd.GROUP_EXIT_RSP, pb.CIMGroupExitRsp),
    Cmd.GROUP_LIST_REQ: (Cmd.GROUP_LIST_RSP, pb.CIMGroupListRsp),
    Cmd.GROUP_INFO_REQ: (Cmd.GROUP_INFO_RSP, pb.CIMGroupInfoRsp),
    Cmd.GROUP_INVITE_MEMBER_REQ: (Cmd.GROUP_INVITE_MEMBER_RSP, pb.CIMGroupInviteMemberRsp),
    Cmd.GROUP_KICK_OUT_MEMBER_REQ: (Cmd.GROUP_KICK_OUT_MEMBER_RSP, pb.CIMGroupKickOutMemberRsp),
    Cmd.GROUP_LIST_MEMBER_REQ: (Cmd.GROUP_LIST_MEMBER_RSP, pb.CIMGroupMemberListRsp),
    Cmd.GROUP_UPDATE_REQ: (Cmd.GROUP_UPDATE_RSP, pb.CIMGroupUpdateRsp),
    Cmd.GROUP_SET_ADMIN_REQ: (Cmd.GROUP_SET_ADMIN_RSP, pb.CIMGroupSetAdminRsp),
    Cmd.GROUP_READ_COUNT_REQ: (Cmd.GROUP_READ_COUNT_RSP, pb.CIMGroupReadCountRsp),
}
_OK = int(ErrorCode.SUCCESS)


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def user_info(user: User) -> pb.CIMUserInfo:
    return pb.CIMUserInfo(user_id=user.user_id, nick_name=user.nick_name, avatar_url=user.avatar_url, phone=user.phone)


def message_data(message: Message, nick: str, mentions: tuple[int, ...] = (), at_all: bool = False) -> pb.CIMMsgData:
    """The MSG_DATA push of a stored message (the same frame for every recipient)."""
    return pb.CIMMsgData(
        at_user_list=mentions,
        at_all=at_all,
        from_user_id=message.sender_id,
        from_nick_name=nick,
        to_session_id=message.to_id,
        client_msg_id=message.client_msg_id,
        server_msg_id=message.seq,
        create_time=message.created_at,
        msg_type=message.msg_type,
        session_type=message.session_type,
        msg_data=message.data,
    )


def message_info(message: Message, viewer_id: int, my_read: int, peer_read: int) -> pb.CIMMsgInfo:
    """A history entry; its status says, for the viewer's own messages, whether the peer has read
    them (READ or SENT), and for the others' whether the viewer has (READ or UNREAD)."""
    if message.sender_id == viewer_id:
        status = STATUS_READ if peer_read >= message.seq else STATUS_SENT
    else:
        status = STATUS_READ if my_read >= message.seq else STATUS_UNREAD
    return pb.CIMMsgInfo(
        client_msg_id=message.client_msg_id,
        server_msg_id=message.seq,
        msg_res_code=RES_OK,
        session_type=message.session_type,
        from_user_id=message.sender_id,
        to_session_id=message.to_id,
        create_time=message.created_at,
        msg_type=message.msg_type,
        msg_status=status,
        msg_data=message.data,
        sender_client_type=message.client_type,
    )


def session_info(entry: ConversationEntry, viewer_id: int) -> pb.CIMContactSessionInfo:
    info = pb.CIMContactSessionInfo(
        session_id=entry.session_id,
        session_type=entry.session_type,
        session_status=pb.kCIM_SESSION_STATUS_OK,
        unread_cnt=entry.unread,
        updated_time=entry.updated_at,
        at_me=entry.at_me,
    )
    last = entry.last_message
    if last is not None:
        info.msg_id = last.client_msg_id
        info.server_msg_id = last.seq
        info.msg_time_stamp = last.created_at
        info.msg_data = last.data
        info.msg_type = last.msg_type
        info.msg_from_user_id = last.sender_id
        if last.sender_id == viewer_id:
            info.msg_status = STATUS_SENT
        else:
            info.msg_status = STATUS_UNREAD if entry.read_seq < last.seq else STATUS_READ
    return info


def group_info(group: Group) -> pb.CIMGroupInfo:
    return pb.CIMGroupInfo(
        group_id=group.group_id,
        group_name=group.name,
        group_type=group.group_type,
        join_model=group.join_model,
        be_invite_model=group.be_invite_model,
        mute_model=group.mute_model,
        group_owner_id=group.owner_id,
        create_time=group.created_at,
        update_time=group.updated_at,
        group_intro=group.intro,
        announcement=group.announcement,
        group_avatar=group.avatar,
        group_version=group.version,
        member_count=group.member_count,
    )


def member_info(member: GroupMember) -> pb.CIMGroupMemberInfo:
    return pb.CIMGroupMemberInfo(user_id=member.user_id, role=member.role, join_time=member.joined_at)


def group_changed(notice: GroupNotice) -> pb.CIMGroupMemberChangedNotify:
    return pb.CIMGroupMemberChangedNotify(
        user_id=notice.actor_id,
        group_id=notice.group_id,
        group_version=notice.version,
        changed_list=[pb.CIMGroupMemberChangedInfo(user_id=u, type=t, role=r) for u, t, r in notice.changes],
    )


def attached(outcome: Any) -> bytes:
    """``attach_notificatino_msg``: the NOTIFICATION message about the change, as the MSG_DATA
    the members were pushed (serialized CIMMsgData), so the requester can show it at once."""
    if outcome.notice is None:
        return b""
    return message_data(outcome.notice, outcome.notice_nick).SerializeToString()


def error_answer(cmd: int, request: PbMessage | None, code: int, text: str, now: int) -> tuple[int, PbMessage]:
    """The answer to a failed request: its own response type where that carries a result code,
    otherwise our generic ERROR_RSP."""
    if cmd == Cmd.LOGIN_AUTH_REQ:
        return Cmd.LOGIN_AUTH_RSP, pb.CIMAuthRsp(server_time=now, result_code=code, result_string=text)
    if cmd == Cmd.LOGIN_AUTH_TOKEN_REQ:
        return Cmd.LOGIN_AUTH_TOKEN_RSP, pb.CIMAuthTokenRsp(server_time=now, result_code=code, result_string=text)
    if cmd == Cmd.LOGIN_AUTH_LOGOUT_REQ:
        return Cmd.LOGIN_AUTH_LOGOUT_RSP, pb.CIMLogoutRsp(result_code=code)
    if cmd == Cmd.MSG_DATA and isinstance(request, pb.CIMMsgData):
        return Cmd.MSG_DATA_ACK, pb.CIMMsgDataAck(
            to_session_id=request.to_session_id,
            client_msg_id=request.client_msg_id,
            res_code=pb.kCIM_RES_CODE_UNKNOWN,
            session_type=request.session_type,
            create_time=now,
            error_code=code,
            error_msg=text,
        )
    group = _GROUP_RESPONSES.get(cmd)
    if group is not None:
        rsp_cmd, rsp_type = group
        rsp = rsp_type(result_code=code)
        fields = rsp_type.DESCRIPTOR.fields_by_name
        for name in ("group_id", "msg_id"):
            if name in fields and request is not None and name in request.DESCRIPTOR.fields_by_name:
                setattr(rsp, name, getattr(request, name))
        return rsp_cmd, rsp
    return Cmd.ERROR_RSP, pb.CIMErrorRsp(cmd_id=cmd, error_code=code, error_msg=text)


@implementer(IDevice)
class CIMSession:
    """The state of one connection: login, liveness, rate limits, pushes awaiting delivery acks."""

    # Slots: a node holds tens of thousands of these, and a __dict__ each would double their size.
    __slots__ = (
        "core",
        "_send",
        "_close",
        "peer",
        "clock",
        "limits",
        "connected_at",
        "last_seen",
        "user",
        "user_id",
        "device_id",
        "client_type",
        "closed",
        "_logging_in",
        "_push_seq",
        "_unacked",
        "_acks_seen",
        "_given_up",
        "_redelivery_armed",
        "_requests",
        "_messages",
    )

    def __init__(self, core: ChatCore, send: Send, close: Callable[[], None], peer: str = "") -> None:
        self.core = core
        self._send = send
        self._close = close
        self.peer = peer
        self.clock = core.reactor
        limits = core.config.limits
        self.limits = limits
        now = self.clock.seconds()
        self.connected_at = now
        self.last_seen = now
        self.user: User | None = None
        self.user_id = 0
        self.device_id = ""
        self.client_type = 0
        self.closed = False
        self._logging_in = False
        self._push_seq = 0
        # (client_msg_id, conv) -> [push, sent_at, tries]; only pushes awaiting a delivery ack
        self._unacked: dict[tuple[str, str], list] = {}
        self._acks_seen = False  # this client acknowledges deliveries (not every original client does)
        self._given_up = 0  # pushes never acknowledged, for the log
        self._redelivery_armed = False
        self._requests = TokenBucket(self.clock, limits.requests_per_second, limits.request_burst)
        self._messages = TokenBucket(self.clock, limits.messages_per_second, limits.message_burst)
        core.wheel.schedule(now + limits.login_timeout, self._login_deadline)

    # -- transport side

    def request_received(self, cmd: int, seq: int, request: PbMessage) -> None:
        """Handle one decoded frame; every request gets an answer (or, for acks, none)."""
        if self.closed:
            return
        self.last_seen = self.clock.seconds()
        try:
            if self.user is None:
                if cmd not in _LOGIN_COMMANDS:
                    raise ChatError(ErrorCode.NOT_LOGGED_IN, "log in first")
                if self._logging_in:
                    raise ChatError(ErrorCode.ALREADY_LOGGED_IN, "a login is in progress")
            elif cmd in _LOGIN_COMMANDS:
                raise ChatError(ErrorCode.ALREADY_LOGGED_IN, "this connection is logged in already")
            elif not self._requests.take() and cmd != Cmd.MSG_DATA_ACK:
                raise ChatError(ErrorCode.RATE_LIMITED, "too many requests")
            handler = self._handlers.get(cmd)
            if handler is None:
                if cmd in _NOT_YET:
                    raise ChatError(ErrorCode.NOT_SUPPORTED, "this command is not supported by this server yet")
                raise ChatError(ErrorCode.UNKNOWN_COMMAND, f"unknown command 0x{cmd:04x}")
            result = handler(self, seq, request)
        except ChatError as e:
            self.answer_error(cmd, seq, request, e.code, e.message)
            return
        except Exception:
            log.failure("command 0x{cmd:04x} failed", cmd=cmd)
            self.answer_error(cmd, seq, request, ErrorCode.INTERNAL_ERROR, "internal error")
            return
        if result is not None:  # a Deferred (an isinstance check here costs ~6% under fan-out)
            result.addErrback(self._failed, cmd, seq, request)

    def bad_frame(self, cmd: int, seq: int, code: ErrorCode, text: str) -> None:
        """A frame whose body could not be decoded: answer it, keep the connection."""
        self.answer_error(cmd, seq, None, code, text)

    def connection_lost(self, how: str = "disconnected") -> None:
        """The connection is gone (``how`` says why, for the log; empty: logged already)."""
        if self.closed:
            return
        self.closed = True
        if self.user is not None:
            self.core.router.detach(self)
        if self.user is not None and how:
            log.info(
                "user {user_id} device {device} {how}{unacked}",
                user_id=self.user_id,
                device=self.device_id,
                how=how,
                unacked=f" ({self._given_up + len(self._unacked)} pushes never acknowledged)"
                if self._given_up or self._unacked
                else "",
            )
        self._unacked.clear()

    def answer(self, cmd: int, seq: int, message: PbMessage) -> None:
        if not self.closed:
            self._send(cmd, seq, message, None)

    def answer_error(self, cmd: int, seq: int, request: PbMessage | None, code: int, text: str) -> None:
        answer_cmd, body = error_answer(cmd, request, int(code), text, int(self.clock.seconds()))
        self.answer(answer_cmd, seq, body)

    def _failed(self, failure: Failure, cmd: int, seq: int, request: PbMessage) -> None:
        if failure.check(ChatError):
            self.answer_error(cmd, seq, request, failure.value.code, failure.value.message)
        else:
            log.failure("command 0x{cmd:04x} failed", failure, cmd=cmd)
            self.answer_error(cmd, seq, request, ErrorCode.INTERNAL_ERROR, "internal error")

    # -- IDevice

    def _next_push_seq(self) -> int:
        self._push_seq = self._push_seq % MAX_PUSH_SEQ + 1
        return self._push_seq

    def push(self, push: Push) -> None:
        if self.closed:
            return
        if push.kind == Push.MESSAGE:
            message = push.payload[0]
            body = push.encoded.get("pb")
            if body is None:
                body = push.encoded["pb"] = message_data(*push.payload)
            self._send(Cmd.MSG_DATA, self._next_push_seq(), body, push.encoded)
            unacked = self._unacked
            if len(unacked) >= MAX_UNACKED:
                del unacked[next(iter(unacked))]
                self._given_up += 1
            unacked[(message.client_msg_id, message.conv)] = [push, self.clock.seconds(), 1]
            if not self._redelivery_armed:
                self._arm_redelivery()
        elif push.kind == Push.READ:
            receipt: ReadReceipt = push.payload
            body = pb.CIMMsgDataReadNotify(
                user_id=receipt.reader_id,
                session_id=receipt.session_id,
                msg_id=receipt.seq,
                session_type=receipt.session_type,
            )
            self._send(Cmd.MSG_READ_NOTIFY, self._next_push_seq(), body, None)
        elif push.kind == Push.GROUP:
            body = push.encoded.get("pb")
            if body is None:
                body = push.encoded["pb"] = group_changed(push.payload)
            self._send(Cmd.GROUP_MEMBER_CHANGED_NOTIFY, self._next_push_seq(), body, push.encoded)
        elif push.kind == Push.READ_COUNT:
            count: ReadCount = push.payload
            body = pb.CIMGroupReadCountNotify(
                group_id=count.group_id, msg_id=count.seq, read_count=count.read_count, member_count=count.member_count
            )
            self._send(Cmd.GROUP_READ_COUNT_NOTIFY, self._next_push_seq(), body, None)

    def disconnect(self, code: int, reason: str) -> None:
        """Tell the client why (KICKOUT_NOTIFY), then close."""
        if self.closed:
            return
        if code != ErrorCode.SERVER_SHUTDOWN:  # the core logs one line for all of those
            log.info(
                "kicking out {who} from {peer}: {reason} ({code})",
                who=f"user {self.user_id} device {self.device_id}" if self.user is not None else "a connection",
                peer=self.peer,
                reason=reason,
                code=_code_name(code),
            )
        self._send(
            Cmd.KICKOUT_NOTIFY, self._next_push_seq(), pb.CIMKickoutNotify(reason_code=code, reason=reason), None
        )
        self.connection_lost("")
        self._close()

    # -- timers (one shared wheel, see coffeechat.timing)

    def _login_deadline(self, now: float) -> None:
        if self.user is None and not self.closed:
            self.disconnect(ErrorCode.LOGIN_TIMEOUT, "no login within the login timeout")

    def _idle_check(self, now: float) -> None:
        if self.closed:
            return
        deadline = self.last_seen + self.limits.idle_timeout
        if now >= deadline:
            self.disconnect(ErrorCode.IDLE_TIMEOUT, "no heartbeat within the idle timeout")
        else:
            self.core.wheel.schedule(deadline, self._idle_check)

    def _arm_redelivery(self) -> None:
        self._redelivery_armed = True
        self.core.wheel.schedule(self.clock.seconds() + self.limits.redeliver_after, self._redeliver)

    def _redeliver(self, now: float) -> None:
        """Resend pushes whose delivery ack is overdue, a few times, then give them up.

        Never a reason to disconnect: the message is stored, and the client catches up at its
        next login (docs/delivery.md).  A connection that has never acknowledged anything is a
        client that does not send delivery acks (the original desktop client): resending would
        only show it duplicates, so its pushes are given up at the first check."""
        self._redelivery_armed = False
        if self.closed or not self._unacked:
            return
        cutoff = now - self.limits.redeliver_after
        resent = given_up = 0
        unacked = self._unacked
        for key, entry in list(unacked.items()):
            push, sent_at, tries = entry
            if sent_at > cutoff:
                continue
            if tries >= REDELIVERY_TRIES or not self._acks_seen:
                del unacked[key]
                given_up += 1
                continue
            entry[1] = now
            entry[2] = tries + 1
            resent += 1
            self._send(Cmd.MSG_DATA, self._next_push_seq(), push.encoded["pb"], push.encoded)
        if given_up and not self._acks_seen and not self._given_up:
            log.info(
                "user {user_id} device {device} sends no delivery acks: its pushes are not resent "
                "(it catches up from storage at its next login)",
                user_id=self.user_id,
                device=self.device_id,
            )
        elif resent or given_up:
            log.info(
                "redelivery to user {user_id} device {device}: {resent} pushed again{given_up}",
                user_id=self.user_id,
                device=self.device_id,
                resent=resent,
                given_up=f", {given_up} given up after {REDELIVERY_TRIES} tries (stored: the client catches up "
                "at its next login)"
                if given_up
                else "",
            )
        self._given_up += given_up
        if unacked:
            self._arm_redelivery()

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    # -- login

    def _login_password(self, seq: int, req: pb.CIMAuthReq) -> defer.Deferred:
        self._logging_in = True

        async def login() -> None:
            try:
                user = await self.core.accounts.login_password(req.user_name, req.user_pwd)
                token, expires_at = await self.core.accounts.issue_token(user.user_id, "cim-password-login")
            except ChatError as e:
                self._login_refused(f"name {req.user_name[:64]!r}", e)
                raise
            finally:
                self._logging_in = False
            if self._logged_in(user, req.client_type, "password"):
                rsp = self._auth_ok(pb.CIMAuthRsp, user)
                rsp.user_token = token
                rsp.token_expire_time = expires_at
                self.answer(Cmd.LOGIN_AUTH_RSP, seq, rsp)

        return defer.ensureDeferred(login())

    def _login_token(self, seq: int, req: pb.CIMAuthTokenReq) -> defer.Deferred:
        self._logging_in = True

        async def login() -> None:
            try:
                user = await self.core.accounts.login_token(req.user_id, req.user_token)
            except ChatError as e:
                self._login_refused(f"user {req.user_id}", e)
                raise
            finally:
                self._logging_in = False
            if self._logged_in(user, req.client_type, "token"):
                self.answer(Cmd.LOGIN_AUTH_TOKEN_RSP, seq, self._auth_ok(pb.CIMAuthTokenRsp, user))

        return defer.ensureDeferred(login())

    def _auth_ok(self, rsp_type: type, user: User) -> PbMessage:
        return rsp_type(
            server_time=int(self.clock.seconds()),
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            user_info=user_info(user),
        )

    def _login_refused(self, who: str, error: ChatError) -> None:
        log.info(
            "login refused for {who} from {peer}: {reason} ({code})",
            who=who,
            peer=self.peer,
            reason=error.message,
            code=_code_name(error.code),
        )

    def _logged_in(self, user: User, client_type: int, method: str) -> bool:
        if self.closed:
            return False
        self.user = user
        self.user_id = user.user_id
        self.client_type = client_type
        self.device_id = self.core.new_device_id()
        log.info(
            "login: user {user_id} ({name}) device {device} from {peer}, client type {client_type}, by {method}",
            user_id=user.user_id,
            name=user.name,
            device=self.device_id,
            peer=self.peer,
            client_type=client_type,
            method=method,
        )
        for displaced in self.core.router.attach(self):
            displaced.disconnect(ErrorCode.SESSION_REPLACED, "too many devices: the oldest one was logged out")
        self.core.wheel.schedule(self.last_seen + self.limits.idle_timeout, self._idle_check)
        return True

    def _logout(self, seq: int, req: pb.CIMLogoutReq) -> None:
        self.answer(Cmd.LOGIN_AUTH_LOGOUT_RSP, seq, pb.CIMLogoutRsp(result_code=ErrorCode.SUCCESS))
        self.connection_lost("logged out")
        self._close()

    def _heartbeat(self, seq: int, req: pb.CIMHeartBeat) -> None:
        self.answer(Cmd.LOGIN_HEARTBEAT, seq, req)

    # -- messages

    def _msg_data(self, seq: int, req: pb.CIMMsgData) -> defer.Deferred:
        if not self._messages.take():
            raise ChatError(ErrorCode.RATE_LIMITED, "too many messages")
        d = self.core.messages.send(
            self.user,
            self,
            req.session_type,
            req.to_session_id,
            req.client_msg_id,
            req.msg_type,
            req.msg_data,
            self.client_type,
            req.at_user_list,
            req.at_all,
        )

        def stored(result: Any) -> None:
            message = result.message
            self.answer(
                Cmd.MSG_DATA_ACK,
                seq,
                pb.CIMMsgDataAck(
                    from_user_id=message.sender_id,
                    to_session_id=message.to_id,
                    client_msg_id=message.client_msg_id,
                    server_msg_id=message.seq,
                    res_code=RES_OK,
                    session_type=message.session_type,
                    create_time=message.created_at,
                ),
            )

        return d.addCallback(stored)

    def _delivery_ack(self, seq: int, req: pb.CIMMsgDataAck) -> None:
        """A device's delivery ack.  Matched by client_msg_id within the conversation the ack
        names: the original clients send ``server_msg_id = 0``, and the original server matched on
        client_msg_id alone."""
        cmid = req.client_msg_id
        conv = self._ack_conversation(req)
        entry = self._unacked.pop((cmid, conv), None) if conv is not None else None
        if entry is None:
            entry = self._unacked_by_client_msg_id(cmid, req.server_msg_id)
        elif req.server_msg_id and req.server_msg_id != entry[0].payload[0].seq:
            self._unacked[(cmid, conv)] = entry  # an ack of some other message: not this one
            return
        if entry is not None:
            self._acks_seen = True
            message = entry[0].payload[0]
            self.core.messages.delivered(self.user, message.conv, message.seq)

    def _ack_conversation(self, req: pb.CIMMsgDataAck) -> str | None:
        """The conversation an ack names: a group by ``to_session_id``; a 1:1 conversation by the
        pair ``from_user_id``/``to_session_id`` (clients fill it either as the pushed message had it
        or as they see the conversation: both name the same pair), or this user and the one id given."""
        if req.session_type == _GROUP:
            return f"g:{req.to_session_id}" if req.to_session_id > 0 else None
        if req.session_type != _SINGLE:
            return None
        ids = {i for i in (req.from_user_id, req.to_session_id) if i > 0}
        if len(ids) == 2:
            low, high = sorted(ids)
            return f"p:{low}:{high}"
        if len(ids) == 1 and self.user_id not in ids:
            return conversation_key(_SINGLE, self.user_id, ids.pop())
        return None

    def _unacked_by_client_msg_id(self, cmid: str, seq: int) -> list | None:
        """An ack that names no conversation we can match: look for the client_msg_id among this
        connection's pushes.  A scan, so it is paid for from the request budget."""
        if not cmid or not self._unacked or not self._requests.take():
            return None
        for key, entry in self._unacked.items():
            if key[0] == cmid and (not seq or entry[0].payload[0].seq == seq):
                del self._unacked[key]
                return entry
        return None

    def _read_ack(self, seq: int, req: pb.CIMMsgDataReadAck) -> defer.Deferred:
        return defer.ensureDeferred(
            self.core.messages.read(self.user, self, req.session_type, req.session_id, req.msg_id)
        ).addCallback(lambda _: None)

    def _latest(self, seq: int, req: pb.CIMGetLatestMsgIdReq) -> defer.Deferred:
        async def latest() -> None:
            last = await self.core.messages.latest_seq(self.user, req.session_type, req.session_id)
            self.answer(
                Cmd.MSG_GET_LATEST_MSG_ID_RSP,
                seq,
                pb.CIMGetLatestMsgIdRsp(
                    user_id=self.user_id,
                    session_type=req.session_type,
                    session_id=req.session_id,
                    latest_msg_id=str(last),
                ),
            )

        return defer.ensureDeferred(latest())

    def _by_id(self, seq: int, req: pb.CIMGetMsgByIdReq) -> defer.Deferred:
        async def by_id() -> None:
            messages, mine, peer = await self.core.messages.messages_by_id(
                self.user, req.session_type, req.session_id, req.msg_id_list
            )
            rsp = pb.CIMGetMsgByIdRsp(user_id=self.user_id, session_type=req.session_type, session_id=req.session_id)
            rsp.msg_list.extend(message_info(m, self.user_id, mine, peer) for m in messages)
            self.answer(Cmd.MSG_GET_BY_MSG_ID_RSP, seq, rsp)

        return defer.ensureDeferred(by_id())

    def _history(self, seq: int, req: pb.CIMGetMsgListReq) -> defer.Deferred:
        async def history() -> None:
            messages, mine, peer = await self.core.messages.history(
                self.user, req.session_type, req.session_id, req.end_msg_id, req.limit_count
            )
            rsp = pb.CIMGetMsgListRsp(
                user_id=self.user_id,
                session_type=req.session_type,
                session_id=req.session_id,
                end_msg_id=req.end_msg_id,
            )
            rsp.msg_list.extend(message_info(m, self.user_id, mine, peer) for m in messages)
            self.answer(Cmd.LIST_MSG_RSP, seq, rsp)

        return defer.ensureDeferred(history())

    def _sessions(self, seq: int, req: pb.CIMRecentContactSessionReq) -> defer.Deferred:
        def listed(entries: list[ConversationEntry]) -> None:
            rsp = pb.CIMRecentContactSessionRsp(user_id=self.user_id, unread_counts=sum(e.unread for e in entries))
            rsp.contact_session_list.extend(session_info(e, self.user_id) for e in entries)
            self.answer(Cmd.LIST_RECENT_CONTACT_SESSION_RSP, seq, rsp)

        return self.core.messages.conversations(self.user, req.latest_update_time).addCallback(listed)

    def _users(self, seq: int, req: pb.CIMFriendQueryUserListReq) -> defer.Deferred:
        async def users() -> None:
            found = await self.core.accounts.list_users(self.limits.users_listed_max)
            rsp = pb.CIMFriendQueryUserListRsp(user_id=self.user_id)
            rsp.user_info_list.extend(user_info(u) for u in found)
            self.answer(Cmd.FRIEND_QUERY_USER_LIST_RSP, seq, rsp)

        return defer.ensureDeferred(users())

    # -- groups (business rules in coffeechat/handlers/groups.py)

    def _group_create(self, seq: int, req: pb.CIMGroupCreateReq) -> defer.Deferred:
        async def create() -> None:
            out = await self.core.groups.create(self.user, self, req.group_name, req.member_id_list, req.group_type)
            rsp = pb.CIMGroupCreateRsp(
                user_id=self.user_id,
                result_code=_OK,
                group_info=group_info(out.group),
                member_id_list=out.member_ids,
                attach_notificatino_msg=attached(out),
            )
            self.answer(Cmd.GROUP_CREATE_DEFAULT_RSP, seq, rsp)

        return defer.ensureDeferred(create())

    def _group_dismiss(self, seq: int, req: pb.CIMGroupDisbandingReq) -> defer.Deferred:
        async def dismiss() -> None:
            out = await self.core.groups.dismiss(self.user, self, req.group_id)
            rsp = pb.CIMGroupDisbandingRsp(
                user_id=self.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
            )
            self.answer(Cmd.GROUP_DISBINGDING_RSP, seq, rsp)

        return defer.ensureDeferred(dismiss())

    def _group_exit(self, seq: int, req: pb.CIMGroupExitReq) -> defer.Deferred:
        async def leave() -> None:
            out = await self.core.groups.exit(self.user, self, req.group_id)
            rsp = pb.CIMGroupExitRsp(
                user_id=self.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
            )
            self.answer(Cmd.GROUP_EXIT_RSP, seq, rsp)

        return defer.ensureDeferred(leave())

    def _group_list(self, seq: int, req: pb.CIMGroupListReq) -> defer.Deferred:
        async def listed() -> None:
            versions = await self.core.groups.list_groups(self.user)
            rsp = pb.CIMGroupListRsp(user_id=self.user_id, result_code=_OK)
            rsp.group_version_list.extend(pb.CIMGroupVersionInfo(group_id=g, group_version=v) for g, v in versions)
            self.answer(Cmd.GROUP_LIST_RSP, seq, rsp)

        return defer.ensureDeferred(listed())

    def _group_info(self, seq: int, req: pb.CIMGroupInfoReq) -> defer.Deferred:
        async def info() -> None:
            versions = [(v.group_id, v.group_version) for v in req.group_version_list]
            groups = await self.core.groups.info(self.user, versions)
            rsp = pb.CIMGroupInfoRsp(user_id=self.user_id, result_code=_OK)
            rsp.group_info_list.extend(group_info(g) for g in groups)
            self.answer(Cmd.GROUP_INFO_RSP, seq, rsp)

        return defer.ensureDeferred(info())

    def _group_invite(self, seq: int, req: pb.CIMGroupInviteMemberReq) -> defer.Deferred:
        async def invite() -> None:
            out = await self.core.groups.invite(self.user, self, req.group_id, req.member_id_list)
            rsp = pb.CIMGroupInviteMemberRsp(
                user_id=self.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
            )
            self.answer(Cmd.GROUP_INVITE_MEMBER_RSP, seq, rsp)

        return defer.ensureDeferred(invite())

    def _group_kick(self, seq: int, req: pb.CIMGroupKickOutMemberReq) -> defer.Deferred:
        async def kick() -> None:
            out = await self.core.groups.kick(self.user, self, req.group_id, req.member_id_list)
            rsp = pb.CIMGroupKickOutMemberRsp(
                user_id=self.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
            )
            self.answer(Cmd.GROUP_KICK_OUT_MEMBER_RSP, seq, rsp)

        return defer.ensureDeferred(kick())

    def _group_members(self, seq: int, req: pb.CIMGroupMemberListReq) -> defer.Deferred:
        async def members() -> None:
            found = await self.core.groups.members(self.user, req.group_id)
            rsp = pb.CIMGroupMemberListRsp(
                user_id=self.user_id,
                group_id=req.group_id,
                result_code=_OK,
                member_id_list=[m.user_id for m in found],
                member_list=[member_info(m) for m in found],
            )
            self.answer(Cmd.GROUP_LIST_MEMBER_RSP, seq, rsp)

        return defer.ensureDeferred(members())

    def _group_update(self, seq: int, req: pb.CIMGroupUpdateReq) -> defer.Deferred:
        fields = {
            name: getattr(req, wire) if req.HasField(wire) else None
            for name, wire in (
                ("name", "group_name"),
                ("announcement", "announcement"),
                ("intro", "group_intro"),
                ("avatar", "group_avatar"),
                ("mute_model", "mute_model"),
                ("join_model", "join_model"),
                ("be_invite_model", "be_invite_model"),
            )
        }

        async def update() -> None:
            out = await self.core.groups.update(self.user, self, req.group_id, fields)
            rsp = pb.CIMGroupUpdateRsp(
                user_id=self.user_id,
                group_id=req.group_id,
                result_code=_OK,
                group_info=group_info(out.group),
                attach_notificatino_msg=attached(out),
            )
            self.answer(Cmd.GROUP_UPDATE_RSP, seq, rsp)

        return defer.ensureDeferred(update())

    def _group_set_admin(self, seq: int, req: pb.CIMGroupSetAdminReq) -> defer.Deferred:
        async def set_admins() -> None:
            out = await self.core.groups.set_admins(self.user, self, req.group_id, req.member_id_list, req.is_admin)
            rsp = pb.CIMGroupSetAdminRsp(
                user_id=self.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
            )
            self.answer(Cmd.GROUP_SET_ADMIN_RSP, seq, rsp)

        return defer.ensureDeferred(set_admins())

    def _group_read_count(self, seq: int, req: pb.CIMGroupReadCountReq) -> defer.Deferred:
        async def count() -> None:
            read, members = await self.core.groups.read_count(self.user, req.group_id, req.msg_id)
            rsp = pb.CIMGroupReadCountRsp(
                user_id=self.user_id,
                group_id=req.group_id,
                result_code=_OK,
                msg_id=req.msg_id,
                read_count=read,
                member_count=members,
            )
            self.answer(Cmd.GROUP_READ_COUNT_RSP, seq, rsp)

        return defer.ensureDeferred(count())

    _handlers: dict[int, Callable[..., Any]] = {
        Cmd.LOGIN_AUTH_REQ: _login_password,
        Cmd.LOGIN_AUTH_TOKEN_REQ: _login_token,
        Cmd.LOGIN_AUTH_LOGOUT_REQ: _logout,
        Cmd.LOGIN_HEARTBEAT: _heartbeat,
        Cmd.MSG_DATA: _msg_data,
        Cmd.MSG_DATA_ACK: _delivery_ack,
        Cmd.MSG_READ_ACK: _read_ack,
        Cmd.MSG_GET_LATEST_MSG_ID_REQ: _latest,
        Cmd.MSG_GET_BY_MSG_ID_REQ: _by_id,
        Cmd.LIST_MSG_REQ: _history,
        Cmd.LIST_RECENT_CONTACT_SESSION_REQ: _sessions,
        Cmd.FRIEND_QUERY_USER_LIST_REQ: _users,
        Cmd.GROUP_CREATE_DEFAULT_REQ: _group_create,
        Cmd.GROUP_DISBINGDING_REQ: _group_dismiss,
        Cmd.GROUP_EXIT_REQ: _group_exit,
        Cmd.GROUP_LIST_REQ: _group_list,
        Cmd.GROUP_INFO_REQ: _group_info,
        Cmd.GROUP_INVITE_MEMBER_REQ: _group_invite,
        Cmd.GROUP_KICK_OUT_MEMBER_REQ: _group_kick,
        Cmd.GROUP_LIST_MEMBER_REQ: _group_members,
        Cmd.GROUP_UPDATE_REQ: _group_update,
        Cmd.GROUP_SET_ADMIN_REQ: _group_set_admin,
        Cmd.GROUP_READ_COUNT_REQ: _group_read_count,
    }
