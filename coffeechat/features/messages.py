"""Messages: send, delivery, read state, history and the conversation list, for every kind of
conversation.

The delivery contract (docs/delivery.md) lives here: the sender is the authenticated user; the
store assigns a dense seq in the transaction that commits the message; the sender is acked only
after that; then the message is pushed to the other participants' devices and the sender's other
devices (one Push, encoded once); resends with the same client_msg_id return the stored message
and push nothing.

What differs between 1:1 chats, groups (coffeechat/features/groups.py) and any later kind is a
:class:`ConversationKind`, registered per session type: who may send, who receives, what history
one may see, whom a read is told to.  The 1:1 kind is here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IDevice, IMessageStore, IStore, StorageUnavailable
from coffeechat.model import (
    AppendResult,
    ConversationEntry,
    Message,
    MsgType,
    NewMessage,
    Push,
    SessionType,
    User,
    conversation_key,
)
from coffeechat.modules import ModuleAPI
from coffeechat.schema import Cmd, pb
from coffeechat.schema.jsonform import json_depth_within
from coffeechat.session import Session

log = Logger()

CLIENT_MSG_TYPES = frozenset(
    {
        MsgType.TEXT,
        MsgType.FILE,
        MsgType.IMAGE,
        MsgType.AUDIO,
        MsgType.VIDEO,
        MsgType.LOCATION,
        MsgType.TIPS,
    }
)
# AVCHAT (a call record) is checked by its own checker (Messages.msg_types): the original shape
# below, or, with the calls feature on, refused from clients (the server writes call records).
AVCHAT_KEYS = frozenset({"hangupUserId", "hangupReason", "timeLen", "callType"})
_BYE_REASONS = frozenset(pb.CIMVoipByeReason.values())
_NEEDS_URL = frozenset({MsgType.FILE, MsgType.IMAGE, MsgType.AUDIO, MsgType.VIDEO})
MAX_CLIENT_MSG_ID = 64
# How deeply the JSON body of a FILE, LOCATION ... message may nest objects and arrays: clients
# put a flat object there; the limit keeps a crafted body from costing deep recursion anywhere.
MAX_CONTENT_DEPTH = 16
MAX_IDS_PER_LOOKUP = 20
MAX_SESSIONS_LISTED = 1000
DELIVERY_FLUSH_INTERVAL = 1.0
CATCH_UP_SLACK = 2  # seconds before the loss that a catch-up also covers (clocks, commit lag)
CATCH_UP_CONCURRENCY = 4
CATCH_UP_CONVERSATIONS = 200
CATCH_UP_MESSAGES = 100  # a page of a conversation's history, in a catch-up
CATCH_UP_PAGES = 10  # pages of one conversation, at most, in a catch-up

RES_OK = pb.kCIM_RES_CODE_OK
STATUS_UNREAD = pb.kCIM_MSG_STATUS_UNREAD
STATUS_READ = pb.kCIM_MSG_STATUS_READ
STATUS_SENT = pb.kCIM_MSG_STATUS_SENT
STATUS_RECALLED = pb.kCIM_MSG_STATUS_SendCacel  # CIM v1's "send cancelled": what a recall is
_RECALLED = int(MsgType.RECALLED)
_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)


# -- push kinds


@dataclass(slots=True)
class MessagePush(Push):
    """A stored message for devices (MSG_DATA), with its sender's nick; group messages carry the
    members they mention and @all."""

    message: Message
    nick: str
    mentions: tuple[int, ...] = ()
    at_all: bool = False


@dataclass(slots=True)
class ReadPush(Push):
    """A read position that moved, addressed to one user: ``reader_id`` has read up to ``seq`` in
    the conversation the addressee files under ``session_id`` (MSG_READ_NOTIFY)."""

    reader_id: int
    session_id: int
    session_type: int
    seq: int


def message_data(push: MessagePush) -> pb.CIMMsgData:
    """The MSG_DATA frame of a stored message (the same for every recipient)."""
    message = push.message
    return pb.CIMMsgData(
        at_user_list=push.mentions,
        at_all=push.at_all,
        from_user_id=message.sender_id,
        from_nick_name=push.nick,
        to_session_id=message.to_id,
        client_msg_id=message.client_msg_id,
        server_msg_id=message.seq,
        create_time=message.created_at,
        msg_type=message.msg_type,
        session_type=message.session_type,
        msg_data=message.data,
        forward_origin=message.origin,
    )


def read_notify(push: ReadPush) -> pb.CIMMsgDataReadNotify:
    return pb.CIMMsgDataReadNotify(
        user_id=push.reader_id, session_id=push.session_id, msg_id=push.seq, session_type=push.session_type
    )


def message_ack_key(push: MessagePush) -> tuple[str, str]:
    """What a delivery ack names: the client_msg_id within its conversation."""
    return push.message.client_msg_id, push.message.conv


def message_info(message: Message, viewer_id: int, my_read: int, peer_read: int) -> pb.CIMMsgInfo:
    """A history entry; its status says, for the viewer's own messages, whether the peer has read
    them (READ or SENT), and for the others' whether the viewer has (READ or UNREAD)."""
    if message.msg_type == _RECALLED:
        status = STATUS_RECALLED
    elif message.sender_id == viewer_id:
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
        forward_origin=message.origin,
    )


def session_info(entry: ConversationEntry, viewer_id: int) -> pb.CIMContactSessionInfo:
    info = pb.CIMContactSessionInfo(
        session_id=entry.session_id,
        session_type=entry.session_type,
        session_status=pb.kCIM_SESSION_STATUS_OK,
        unread_cnt=entry.unread,
        updated_time=entry.updated_at,
        at_me=entry.at_me,
        muted=entry.muted,
        pinned=entry.pinned,
        is_robot_session=entry.robot,
    )
    last = entry.last_message
    if last is not None:
        info.msg_id = last.client_msg_id
        info.server_msg_id = last.seq
        info.msg_time_stamp = last.created_at
        info.msg_data = last.data
        info.msg_type = last.msg_type
        info.msg_from_user_id = last.sender_id
        if last.msg_type == _RECALLED:
            info.msg_status = STATUS_RECALLED
        elif last.sender_id == viewer_id:
            info.msg_status = STATUS_SENT
        else:
            info.msg_status = STATUS_UNREAD if entry.read_seq < last.seq else STATUS_READ
    return info


# -- what clients may send


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python reads them, clients do not


#: ``checker(data, limits, origin)``: refuse (raise ChatError) the body of a msg_type a feature
#: added (``Messages.register_msg_type``); ``origin`` is "" for what clients send as MSG_DATA, the
#: origin JSON for what a feature sends through ``Messages.send(..., origin=...)``.
MsgTypeChecker = Callable[[bytes, Any, str], None]


def check_content(
    msg_type: int, data: bytes, limits: Any, registered: dict[int, MsgTypeChecker] | None = None, origin: str = ""
) -> None:
    """Refuse content the clients could not display: wrong type, too large, not UTF-8, bad JSON.
    A type a feature registered (``registered``) is checked by its own checker; the built-in
    types' path is unchanged."""
    if msg_type not in CLIENT_MSG_TYPES:
        checker = registered.get(msg_type) if registered else None
        if checker is None:
            raise ChatError(ErrorCode.INVALID_MSG, f"msg_type {msg_type} may not be sent by clients")
        checker(data, limits, origin)
        return
    if msg_type == MsgType.TEXT or msg_type == MsgType.TIPS:
        if len(data) > limits.max_text_bytes:
            raise ChatError(ErrorCode.MSG_TOO_LARGE, f"text is limited to {limits.max_text_bytes} bytes")
        if not data:
            raise ChatError(ErrorCode.INVALID_MSG, "empty text")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ChatError(ErrorCode.INVALID_MSG, "text must be UTF-8") from None
        return
    body = json_object_body(msg_type, data, limits.max_body_bytes)
    if msg_type in _NEEDS_URL and not isinstance(body.get("url"), str):
        raise ChatError(ErrorCode.INVALID_MSG, "file, image, audio and video messages need a url")
    if msg_type == MsgType.LOCATION:
        for key in ("latitude", "longitude"):
            if not isinstance(body.get(key), int | float) or isinstance(body.get(key), bool):
                raise ChatError(ErrorCode.INVALID_MSG, f"location messages need a numeric {key}")


def check_avchat(data: bytes, limits: Any, origin: str) -> None:
    """A client's AVCHAT body: exactly CIM v1's call record, with sane values (no other JSON
    passes as a call record)."""
    body = json_object_body(MsgType.AVCHAT, data, limits.max_body_bytes)
    if origin:  # a forward copies a stored record (one the server wrote may have more keys)
        return
    if set(body) != AVCHAT_KEYS:
        raise ChatError(ErrorCode.INVALID_MSG, "an AVCHAT body is {hangupUserId, hangupReason, timeLen, callType}")
    values = [body[k] for k in ("hangupUserId", "hangupReason", "timeLen", "callType")]
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
        raise ChatError(ErrorCode.INVALID_MSG, "AVCHAT fields are non-negative integers")
    if values[0] > 2**63 - 1 or values[1] not in _BYE_REASONS or values[2] > 10**7 or values[3] not in (1, 2):
        raise ChatError(ErrorCode.INVALID_MSG, "AVCHAT: a user id, a bye reason, seconds, callType 1 or 2")


def json_object_body(msg_type: int, data: bytes, max_bytes: int) -> dict:
    """The JSON object a message body must be (at most ``max_bytes``, bounded nesting, valid
    Unicode), parsed; ChatError MSG_TOO_LARGE or INVALID_MSG otherwise.  For features' types too."""
    if len(data) > max_bytes:
        raise ChatError(ErrorCode.MSG_TOO_LARGE, f"message bodies are limited to {max_bytes} bytes")
    try:
        body = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ChatError(ErrorCode.INVALID_MSG, f"msg_type {msg_type} needs a JSON object body") from None
    if not isinstance(body, dict):
        raise ChatError(ErrorCode.INVALID_MSG, f"msg_type {msg_type} needs a JSON object body")
    if not json_depth_within(data, body, MAX_CONTENT_DEPTH):
        raise ChatError(ErrorCode.INVALID_MSG, f"a message body nests at most {MAX_CONTENT_DEPTH} levels")
    if b"\\u" in data:
        try:  # an escaped lone surrogate ("\ud800") parses, but no client could display or re-encode it
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ChatError(ErrorCode.INVALID_MSG, "a message body must be valid Unicode") from None
    return body


def checked_client_msg_id(client_msg_id: str) -> str:
    """The id that makes resends safe.  A client that sends none (the original desktop client
    does not) gets one made by the server, returned in the ack: its messages are stored and
    delivered, only a resend of one of them cannot be recognised (docs/delivery.md)."""
    if not client_msg_id:
        return str(uuid.uuid4())
    if len(client_msg_id) > MAX_CLIENT_MSG_ID:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"client_msg_id is limited to {MAX_CLIENT_MSG_ID} characters")
    return client_msg_id


# -- conversation kinds


@dataclass(frozen=True, slots=True)
class Located:
    """A conversation as one participant sees it: its storage key, the first seq they may see,
    the peer of a 1:1 conversation (0 otherwise), everyone in it, and whether this participant
    moderates it (a group's owner and admins)."""

    conv: str
    first_seq: int
    peer_id: int
    members: Sequence[int] | Any
    moderator: bool = False


@dataclass(slots=True)
class Outgoing:
    """A message as a client sent it, before any check: to whom (a user, a group ...), its
    client_msg_id, type and body, and for groups whom it mentions."""

    to_id: int
    client_msg_id: str
    msg_type: int
    data: bytes
    client_type: int = 0
    mentions: tuple[int, ...] | Any = ()
    at_all: bool = False
    origin: str = ""  # a forwarded message's origin (JSON), pushed with it (Message.origin)
    push_content: str = ""  # the sender app's text for offline notifications (Message.push_content)


class ConversationKind:
    """What a kind of conversation decides (one per session type; see the module docstring)."""

    session_type: int

    def send(self, sender: User, device: IDevice | None, outgoing: Outgoing) -> defer.Deferred:
        """Store a message from ``sender`` and push it; fires with the AppendResult."""
        raise NotImplementedError

    def conversation_key(self, user_id: int, session_id: int) -> str:
        """The storage key of the conversation ``user_id`` files as ``session_id`` (no check that it
        is theirs: their conversation entry says that)."""
        raise NotImplementedError

    async def locate(self, user_id: int, session_id: int) -> Located:
        """The conversation ``user_id`` files as ``session_id``; ChatError NOT_FOUND or FORBIDDEN
        when there is none or it is not theirs."""
        raise NotImplementedError

    async def catch_up_from(self, user_id: int, entry: ConversationEntry) -> int | None:
        """The first seq ``user_id`` may be pushed again of a conversation of theirs (None: none)."""
        raise NotImplementedError

    async def audience(self, message: Message) -> Sequence[int]:
        """Everyone who is told of what happens to ``message`` (a recall): its conversation's
        participants now."""
        raise NotImplementedError

    def read_moved(self, user: User, device: IDevice | None, session_id: int, before: int, after: int) -> None:
        """``user`` read up to ``after`` (from ``before``): tell whom it concerns."""
        raise NotImplementedError


class DirectChats(ConversationKind):
    """1:1 conversations: one sequence per pair of users (``p:<low>:<high>``)."""

    session_type = _SINGLE

    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    def send(self, sender: User, device: IDevice | None, outgoing: Outgoing) -> defer.Deferred:
        messages = self.messages
        to_id = outgoing.to_id
        try:
            if to_id <= 0 or to_id == sender.user_id:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "to_session_id must be another user")
            client_msg_id = checked_client_msg_id(outgoing.client_msg_id)
            check_content(outgoing.msg_type, outgoing.data, messages.limits, messages.msg_types, outgoing.origin)
        except ChatError as e:
            return defer.fail(e)

        def append(_: object = None) -> defer.Deferred:
            # Built after the checks: a check may rewrite the body (moderation).
            return messages.append(
                NewMessage(
                    conv=conversation_key(_SINGLE, sender.user_id, to_id),
                    session_type=_SINGLE,
                    sender_id=sender.user_id,
                    to_id=to_id,
                    client_msg_id=client_msg_id,
                    msg_type=outgoing.msg_type,
                    data=outgoing.data,
                    created_at=int(messages.clock.seconds()),
                    client_type=outgoing.client_type,
                )
            )

        def recipient_checked(exists: bool) -> defer.Deferred:
            if not exists:
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {to_id}")
            if checks:
                pending = messages.run_checks(checks, sender, outgoing)
                if pending is not None:
                    return pending.addCallback(append)
            return append()

        def stored(result: AppendResult) -> AppendResult:
            if result.created:
                if outgoing.origin or outgoing.push_content:
                    result = AppendResult(
                        replace(result.message, origin=outgoing.origin, push_content=outgoing.push_content), True
                    )
                push = MessagePush(result.message, sender.nick_name)
                messages.router.push(to_id, push)
                messages.router.push(sender.user_id, push, device)
                messages.stored(result.message, sender, device)
            return result

        checks = messages.send_checks.get(_SINGLE)
        if messages.users.known(to_id):
            # The common case, without the Deferreds of a lookup: the recipient is cached and
            # every check answers at once, so the store's Deferred is the only one.
            try:
                pending = messages.run_checks(checks, sender, outgoing) if checks else None
            except ChatError as e:
                return defer.fail(e)
            d = append() if pending is None else pending.addCallback(append)
        else:
            d = messages.users.exists(to_id)
            d.addCallback(recipient_checked)
        return d.addCallback(stored)

    def conversation_key(self, user_id: int, session_id: int) -> str:
        if session_id <= 0:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_id must be a user id")
        return conversation_key(_SINGLE, user_id, session_id)

    async def locate(self, user_id: int, session_id: int) -> Located:
        conv = self.conversation_key(user_id, session_id)
        return Located(conv, 1, session_id, (user_id, session_id))

    async def catch_up_from(self, user_id: int, entry: ConversationEntry) -> int | None:
        return 1

    async def audience(self, message: Message) -> Sequence[int]:
        return (message.sender_id, message.to_id)

    def read_moved(self, user: User, device: IDevice | None, session_id: int, before: int, after: int) -> None:
        router = self.messages.router
        router.push(session_id, ReadPush(user.user_id, user.user_id, _SINGLE, after))
        router.push(user.user_id, ReadPush(user.user_id, session_id, _SINGLE, after), device)


# -- the service

#: ``check(sender, outgoing)``: refuse a message (raise, or return a Deferred that fails, with a
#: ChatError) before it is stored; None or a Deferred firing None lets it through.
SendCheck = Callable[[User, "Outgoing"], "defer.Deferred | None"]
#: ``view(user, entries)``: the user's conversation list as a feature changes it (filter, mark,
#: reorder; entries are frozen: ``dataclasses.replace``); returns the list or a Deferred of it.
SessionView = Callable[[User, list[ConversationEntry]], "list[ConversationEntry] | defer.Deferred"]
#: ``view(user_id, where, messages)``: a page of history (ascending) as the user may see it.
HistoryView = Callable[[int, "Located", list[Message]], "list[Message] | defer.Deferred"]
HISTORY_REFILLS = 4  # more pages fetched, at most, when history views took messages out of one


class DeliveryRecorder:
    """Coalesces delivery acks per (user, conversation) and writes them in one batch per flush,
    so that recording deliveries does not double the write load of messaging."""

    def __init__(self, store: IMessageStore) -> None:
        self.store = store
        self._pending: dict[tuple[int, str], int] = {}

    def record(self, user_id: int, conv: str, seq: int) -> None:
        key = (user_id, conv)
        if self._pending.get(key, 0) < seq:
            self._pending[key] = seq

    def flush(self) -> defer.Deferred:
        if not self._pending:
            return defer.succeed(None)
        receipts = [(user_id, conv, seq) for (user_id, conv), seq in self._pending.items()]
        self._pending = {}
        d = self.store.mark_delivered(receipts)
        d.addErrback(self._failed, receipts)
        return d

    def _failed(self, failure: Any, receipts: list[tuple[int, str, int]]) -> None:
        """Storage unavailable: keep the receipts for the next flush (the store logs the outage;
        at most one entry per user and conversation is kept, so this stays bounded)."""
        if not failure.check(StorageUnavailable):
            log.failure("recording delivery acks failed", failure)
            return
        for user_id, conv, seq in receipts:
            self.record(user_id, conv, seq)


class Messages:
    """Sends, reads and lists messages on behalf of an authenticated user, for every kind of
    conversation; other features extend it (``register_kind``) and use it (``append``,
    ``post_notice``, ``locate``)."""

    def __init__(self, api: ModuleAPI, users: Any) -> None:
        self.api = api
        self.store: IStore = api.store
        self.router = api.router
        self.clock: IReactorTime = api.clock
        self.limits = api.limits
        self.flow = api.flow
        self.users = users
        self.deliveries = DeliveryRecorder(api.store)
        self._kinds: dict[int, ConversationKind] = {}
        #: per session type, the checks every message of that type passes before it is stored
        self.send_checks: dict[int, list[SendCheck]] = {}
        self._session_views: list[tuple[int, int, SessionView]] = []
        self._history_views: list[HistoryView] = []
        #: msg types features added (custom, merged forwards), with their body checkers
        self.msg_types: dict[int, MsgTypeChecker] = {int(MsgType.AVCHAT): check_avchat}
        self.catching_up: defer.Deferred | None = None
        #: stored(message, sender, device): a new message was stored and pushed; tells the
        #: features that hook ``message/stored``
        self.stored = api.firer("message/stored")
        self._catch_up_next: int | None = None
        self.caught_up = 0  # messages pushed by catch-ups, for tests and metrics
        self.register_kind(DirectChats(self))

    def register_kind(self, kind: ConversationKind) -> None:
        """Serve conversations of ``kind.session_type`` (a feature adds groups, rooms ...)."""
        if kind.session_type in self._kinds:
            raise ValueError(f"session type {kind.session_type} is served twice")
        self._kinds[kind.session_type] = kind

    def add_send_check(self, session_type: int, check: SendCheck) -> None:
        """Run ``check(sender, outgoing)`` on every message of ``session_type`` before it is
        stored (blocks, friendship, member mutes); the kinds call :meth:`run_checks`.  Keep it
        cheap: it is on the message path."""
        self.send_checks.setdefault(session_type, []).append(check)

    def run_checks(self, checks: Sequence[SendCheck], sender: User, outgoing: Outgoing) -> defer.Deferred | None:
        """Run ``checks`` in order, raising the first refusal.  None when every check answered at
        once (from its cache: the common case, no Deferred on the message path), else a Deferred
        of the rest, failing with the first refusal."""
        for i, check in enumerate(checks):
            pending = check(sender, outgoing)
            if pending is not None:
                rest = checks[i + 1 :]
                if rest:
                    pending.addCallback(lambda _, rest=rest: self.run_checks(rest, sender, outgoing))
                return pending
        return None

    def register_msg_type(self, msg_type: int, checker: MsgTypeChecker) -> None:
        """Accept messages of ``msg_type`` (not a built-in one), their bodies checked by
        ``checker(data, limits, origin)`` (raise ChatError to refuse), in 1:1 chats and groups."""
        if msg_type in CLIENT_MSG_TYPES or msg_type in self.msg_types or msg_type in (MsgType.NOTIFICATION, _RECALLED):
            raise ValueError(f"msg_type {msg_type} is served twice")
        self.msg_types[msg_type] = checker

    def add_session_view(self, view: SessionView, priority: int = 0) -> None:
        """Let ``view`` change every conversation list a user is given (higher priorities first:
        hiding 30, marking 20, ordering 10)."""
        self._session_views.append((-priority, len(self._session_views), view))
        self._session_views.sort(key=lambda v: (v[0], v[1]))

    def add_history_view(self, view: HistoryView) -> None:
        """Let ``view`` filter or annotate every page of history a user is given."""
        self._history_views.append(view)

    def kind(self, session_type: int) -> ConversationKind:
        kind = self._kinds.get(session_type)
        if kind is None:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"session_type {session_type} is not served here")
        return kind

    # -- sending

    def send(
        self,
        sender: User,
        device: IDevice | None,
        session_type: int,
        to_id: int,
        client_msg_id: str,
        msg_type: int,
        data: bytes,
        client_type: int = 0,
        mentions: Iterable[int] = (),
        at_all: bool = False,
        origin: str = "",
        push_content: str = "",
    ) -> defer.Deferred:
        """Store a message from ``sender`` and, once committed, push it; fires with AppendResult.
        ``mentions`` and ``at_all`` are for group messages; ``origin`` (JSON) is pushed with a
        forwarded message (its feature keeps it)."""
        kind = self._kinds.get(session_type)
        if kind is None:
            return defer.fail(ChatError(ErrorCode.INVALID_ARGUMENT, "session_type must be 1 (single) or 2 (group)"))
        outgoing = Outgoing(to_id, client_msg_id, msg_type, data, client_type, mentions, at_all, origin, push_content)
        return kind.send(sender, device, outgoing)

    def append(self, message: NewMessage) -> defer.Deferred:
        """Store a message, counted by the node's flow control (transports stop reading from
        clients while too many writes are waiting for storage)."""
        self.flow.started()
        return self.store.append(message).addBoth(self.flow.finished)

    async def post_notice(
        self,
        actor: User,
        device: IDevice | None,
        session_type: int,
        to_id: int,
        body: dict,
        audience: Iterable[int],
    ) -> Message:
        """Append a NOTIFICATION message (msg_type 9, JSON ``body``) about a change just committed
        to a conversation, and push it to every device of ``audience`` but ``device``.  ``actor``
        is its sender."""
        conv = conversation_key(session_type, actor.user_id, to_id)
        message = NewMessage(
            conv=conv,
            session_type=session_type,
            sender_id=actor.user_id,
            to_id=to_id,
            client_msg_id=f"notice-{uuid.uuid4().hex}",
            msg_type=MsgType.NOTIFICATION,
            data=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            created_at=int(self.clock.seconds()),
        )
        result = await self.append(message)
        self.fan_out(MessagePush(result.message, actor.nick_name), audience, device)
        return result.message

    def fan_out(self, push: Push, users: Iterable[int], device: IDevice | None = None) -> None:
        """One Push to every device of ``users`` but ``device``, here and on other nodes: the
        transports encode it once (``Push.cache``), however many members and devices there are."""
        self.router.push_many(users, push, device)

    def delivered(self, user: User, conv: str, seq: int) -> None:
        """Record a device's delivery ack (coalesced; see :class:`DeliveryRecorder`)."""
        self.deliveries.record(user.user_id, conv, seq)

    # -- reading

    async def locate(self, user_id: int, session_type: int, session_id: int) -> Located:
        """The conversation ``user_id`` files as (``session_type``, ``session_id``)."""
        return await self.kind(session_type).locate(user_id, session_id)

    async def read(self, user: User, device: IDevice | None, session_type: int, session_id: int, seq: int) -> int:
        """Move the user's read position forward; tell whom the kind says when it moved.
        Returns the read position."""
        kind = self.kind(session_type)
        conv = kind.conversation_key(user.user_id, session_id)
        before = await self.store.conversation_entry(user.user_id, conv)
        if before is None:
            raise ChatError(ErrorCode.NOT_FOUND, "no such conversation")
        after = await self.store.mark_read(user.user_id, conv, seq)
        if after is not None and after > before.read_seq:
            kind.read_moved(user, device, session_id, before.read_seq, after)
        return after if after is not None else before.read_seq

    async def history(
        self, user: User, session_type: int, session_id: int, end_msg_id: int, limit: int
    ) -> tuple[list[Message], int, int]:
        """A page of messages before ``end_msg_id`` (0 = newest), ascending, with the user's and
        the peer's read positions (so a client can show what is unread and what the peer read).
        A limit of 0 means the default page; more than the maximum page is cut to it.  One sees
        a conversation from the first seq the kind allows (a group: from one's join)."""
        if limit <= 0:
            limit = self.limits.history_page_default
        limit = min(limit, self.limits.history_page_max)
        where = await self.locate(user.user_id, session_type, session_id)
        messages = await self.store.history(where.conv, end_msg_id, limit, where.first_seq)
        if self._history_views:
            messages = await self._viewed_history(user.user_id, where, messages, limit)
        return (messages, *await self._read_seqs(user.user_id, where))

    async def _viewed_history(self, user_id: int, where: Located, page: list[Message], limit: int) -> list[Message]:
        """The page through the history views; when they took messages out of a full page,
        older ones fill it (a bounded number of times), so that a client paging back does not
        take a short page for the start of the conversation."""
        shown = await self._apply_history_views(user_id, where, page)
        for _ in range(HISTORY_REFILLS):
            if len(page) < limit or len(shown) >= limit or not page or page[0].seq <= where.first_seq:
                break
            page = await self.store.history(where.conv, page[0].seq, limit, where.first_seq)
            shown = (await self._apply_history_views(user_id, where, page)) + shown
        return shown[-limit:]

    async def _apply_history_views(self, user_id: int, where: Located, messages: list[Message]) -> list[Message]:
        for view in self._history_views:
            messages = await defer.maybeDeferred(view, user_id, where, messages)
        return messages

    async def _read_seqs(self, user_id: int, where: Located) -> tuple[int, int]:
        mine = await self.store.conversation_entry(user_id, where.conv)
        peer = await self.store.conversation_entry(where.peer_id, where.conv) if where.peer_id else None
        return (mine.read_seq if mine else 0), (peer.read_seq if peer else 0)

    async def latest_seq(self, user: User, session_type: int, session_id: int) -> int:
        where = await self.locate(user.user_id, session_type, session_id)
        return await self.store.latest_seq(where.conv)

    async def messages_by_id(
        self, user: User, session_type: int, session_id: int, ids: Iterable[str]
    ) -> tuple[list[Message], int, int]:
        """Messages by server_msg_id (given as strings, as CIM v1 does), at most 20 at once, with
        the read positions as :meth:`history` gives them (only those the user may see)."""
        where = await self.locate(user.user_id, session_type, session_id)
        ids = list(ids)
        if len(ids) > MAX_IDS_PER_LOOKUP:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_IDS_PER_LOOKUP} ids per request")
        try:
            seqs = sorted({int(i) for i in ids})
        except ValueError:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "message ids must be decimal numbers") from None
        seqs = [s for s in seqs if s >= where.first_seq]
        messages = await self.store.messages_by_seq(where.conv, seqs)
        if self._history_views:
            messages = await self._apply_history_views(user.user_id, where, messages)
        return (messages, *await self._read_seqs(user.user_id, where))

    def conversations(self, user: User, updated_since: int) -> defer.Deferred:
        """The user's conversation list (ConversationEntry, most recent first, then as the
        session views change it: pinned ones first, hidden ones out ...)."""
        d = self.store.conversations_of(user.user_id, max(0, updated_since), MAX_SESSIONS_LISTED)
        for _, _, view in self._session_views:
            d.addCallback(lambda entries, v=view: v(user, entries))
        return d

    # -- catching up after a lost cluster subscription

    def resumed(self, lost_at: float) -> None:
        """Pushes sent to this node since ``lost_at`` may be lost: push each local device what
        storage holds since then and it does not have (by position: the router knows what each
        device was pushed, or sent itself, per conversation).  One catch-up at a time: another
        asked for meanwhile runs when it ends."""
        since = int(lost_at) - CATCH_UP_SLACK
        if self.catching_up is not None and not self.catching_up.called:
            if self._catch_up_next is None or since < self._catch_up_next:
                self._catch_up_next = since
            return
        self._start_catch_up(since)

    def _start_catch_up(self, since: int) -> None:
        d = defer.ensureDeferred(self._catch_up(since))
        d.addErrback(lambda f: log.failure("catching up after a lost subscription failed", f))
        self.catching_up = d
        d.addBoth(self._caught_up_all)

    def _caught_up_all(self, _: object) -> None:
        since, self._catch_up_next = self._catch_up_next, None
        if since is not None:
            self._start_catch_up(since)

    async def _catch_up(self, since: int) -> None:
        users = list({device.user_id for device in self.router.all_devices()})
        before = self.caught_up
        nicks: dict[int, str] = {}
        work = (defer.ensureDeferred(self._catch_up_one(user_id, since, nicks)) for user_id in users)
        coop = task.Cooperator(scheduler=lambda f: self.clock.callLater(0, f), started=True)
        await defer.DeferredList([coop.coiterate(work) for _ in range(CATCH_UP_CONCURRENCY)])
        coop.stop()
        log.info(
            "caught up {n} users from storage since {since}: {pushed} messages they lacked pushed",
            n=len(users),
            since=since,
            pushed=self.caught_up - before,
        )

    async def _catch_up_one(self, user_id: int, since: int, nicks: dict[int, str]) -> None:
        if not self.router.is_online(user_id):
            return
        entries = await self.store.conversations_of(user_id, since, CATCH_UP_CONVERSATIONS)
        for entry in entries:
            kind = self._kinds.get(entry.session_type)
            first = None if kind is None else await kind.catch_up_from(user_id, entry)
            if first is None:
                continue
            for message in await self._recent(entry.conv, first, since):
                await self._push_missed(user_id, message, since, nicks)

    async def _recent(self, conv: str, first: int, since: int) -> list[Message]:
        """The messages of ``conv`` (from ``first``) created since ``since``, ascending: pages
        from the newest back, at most CATCH_UP_PAGES of them."""
        found: list[Message] = []
        end = 0
        for _ in range(CATCH_UP_PAGES):
            page = await self.store.history(conv, end, CATCH_UP_MESSAGES, first)
            found[:0] = [m for m in page if m.created_at >= since]
            if len(page) < CATCH_UP_MESSAGES or page[0].created_at < since or page[0].seq <= first:
                break
            end = page[0].seq
        return found

    async def _push_missed(self, user_id: int, message: Message, since: int, nicks: dict[int, str]) -> None:
        """Push ``message`` to the devices of ``user_id`` here that lack it: not pushed to them
        (nor sent by them) on this connection, and newer than their login (what came before, a
        client fetches at login)."""
        router = self.router
        conv, seq = message.conv, message.seq
        lacking = []
        for device in router.devices_of(user_id):
            have = router.pushed(device)
            if have is not None and have.has(conv, seq):
                continue
            if message.created_at < getattr(device, "connected_at", 0) - CATCH_UP_SLACK:
                continue
            lacking.append(device)
        if not lacking:
            return
        nick = nicks.get(message.sender_id)
        if nick is None:
            sender = await self.store.user_by_id(message.sender_id)
            nick = nicks[message.sender_id] = sender.nick_name if sender else ""
        push = MessagePush(message, nick)
        for device in lacking:
            if router.push_device(device, push):  # checked again: a push may have come meanwhile
                self.caught_up += 1


# -- the module


def _message_position(push: MessagePush) -> tuple[str, int]:
    message = push.message
    return message.conv, message.seq


def _ack_conversation(user_id: int, req: pb.CIMMsgDataAck) -> str | None:
    """The conversation a delivery ack names: a group by ``to_session_id``; a 1:1 conversation by
    the pair ``from_user_id``/``to_session_id`` (clients fill it as the pushed message had it or as
    they file the conversation: both name the same pair), or this user and the one id given."""
    session_type = req.session_type
    if session_type == _GROUP:
        return f"g:{req.to_session_id}" if req.to_session_id > 0 else None
    if session_type != _SINGLE:
        return None
    a, b = req.from_user_id, req.to_session_id
    if a > 0 and b > 0 and a != b:
        return f"p:{a}:{b}" if a < b else f"p:{b}:{a}"
    other = a if a > 0 else b
    if other > 0 and other != user_id:
        return conversation_key(_SINGLE, user_id, other)
    return None


def setup(api: ModuleAPI) -> Messages:
    """Register the message commands, the two push kinds and the delivery-ack flush."""
    accounts = api.depends("accounts")
    messages = Messages(api, accounts.users)
    api.push_kind(MessagePush, name="message", cmd=Cmd.MSG_DATA, encode=message_data, ack_key=message_ack_key)
    api.push_kind(ReadPush, name="read", cmd=Cmd.MSG_READ_NOTIFY, encode=read_notify)
    api.router.track_positions(MessagePush, _message_position)

    def msg_data(session: Session, seq: int, req: pb.CIMMsgData) -> defer.Deferred:
        if not session.take_message_token():
            raise ChatError(ErrorCode.RATE_LIMITED, "too many messages")
        d = messages.send(
            session.user,
            session,
            req.session_type,
            req.to_session_id,
            req.client_msg_id,
            req.msg_type,
            req.msg_data,
            session.client_type,
            req.at_user_list,
            req.at_all,
            push_content=req.push_content,
        )

        def stored(result: AppendResult) -> None:
            message = result.message
            session.answer(
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

    def delivery_ack(session: Session, seq: int, req: pb.CIMMsgDataAck) -> None:
        """A device's delivery ack.  Matched by client_msg_id within the conversation the ack
        names: the original clients send ``server_msg_id = 0``, and the original server matched on
        client_msg_id alone."""
        cmid = req.client_msg_id
        wanted = req.server_msg_id
        conv = _ack_conversation(session.user_id, req)
        push = session.acknowledged((cmid, conv)) if conv is not None else None
        if push is None:
            push = session.acknowledged_where(lambda key, p: key[0] == cmid and (not wanted or p.message.seq == wanted))
        if push is not None:
            messages.delivered(session.user, push.message.conv, push.message.seq)

    def read_ack(session: Session, seq: int, req: pb.CIMMsgDataReadAck) -> defer.Deferred:
        return defer.ensureDeferred(
            messages.read(session.user, session, req.session_type, req.session_id, req.msg_id)
        ).addCallback(lambda _: None)

    api.command(Cmd.MSG_DATA, msg_data)
    api.command(Cmd.MSG_DATA_ACK, delivery_ack, counted=False)
    api.command(Cmd.MSG_READ_ACK, read_ack)

    @api.request(Cmd.MSG_GET_LATEST_MSG_ID_REQ)
    async def latest(session: Session, req: pb.CIMGetLatestMsgIdReq) -> pb.CIMGetLatestMsgIdRsp:
        last = await messages.latest_seq(session.user, req.session_type, req.session_id)
        return pb.CIMGetLatestMsgIdRsp(
            user_id=session.user_id, session_type=req.session_type, session_id=req.session_id, latest_msg_id=str(last)
        )

    @api.request(Cmd.MSG_GET_BY_MSG_ID_REQ)
    async def by_id(session: Session, req: pb.CIMGetMsgByIdReq) -> pb.CIMGetMsgByIdRsp:
        found, mine, peer = await messages.messages_by_id(
            session.user, req.session_type, req.session_id, req.msg_id_list
        )
        rsp = pb.CIMGetMsgByIdRsp(user_id=session.user_id, session_type=req.session_type, session_id=req.session_id)
        rsp.msg_list.extend(message_info(m, session.user_id, mine, peer) for m in found)
        return rsp

    @api.request(Cmd.LIST_MSG_REQ)
    async def history(session: Session, req: pb.CIMGetMsgListReq) -> pb.CIMGetMsgListRsp:
        found, mine, peer = await messages.history(
            session.user, req.session_type, req.session_id, req.end_msg_id, req.limit_count
        )
        rsp = pb.CIMGetMsgListRsp(
            user_id=session.user_id, session_type=req.session_type, session_id=req.session_id, end_msg_id=req.end_msg_id
        )
        rsp.msg_list.extend(message_info(m, session.user_id, mine, peer) for m in found)
        return rsp

    def sessions(session: Session, seq: int, req: pb.CIMRecentContactSessionReq) -> defer.Deferred:
        def listed(entries: list[ConversationEntry]) -> None:
            rsp = pb.CIMRecentContactSessionRsp(user_id=session.user_id, unread_counts=sum(e.unread for e in entries))
            rsp.contact_session_list.extend(session_info(e, session.user_id) for e in entries)
            session.answer(Cmd.LIST_RECENT_CONTACT_SESSION_RSP, seq, rsp)

        return messages.conversations(session.user, req.latest_update_time).addCallback(listed)

    api.command(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, sessions)
    api.periodic(DELIVERY_FLUSH_INTERVAL, messages.deliveries.flush)
    api.on_stop(messages.deliveries.flush)
    api.hook("cluster/resumed", messages.resumed)
    return messages
