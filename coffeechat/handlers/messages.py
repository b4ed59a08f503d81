"""Messages, 1:1 and group: send, delivery, read state, history, conversation list.

The delivery contract (docs/delivery.md) lives here: the sender is the authenticated user; the
store assigns a dense seq in the transaction that commits the message; the caller acks only
after that; then the message is pushed to the recipient's devices and the sender's other
devices (for a group: to every device of every member but the sending one, one Push encoded
once); resends with the same client_msg_id return the stored message and push nothing.
Group rules (membership, mute, history visibility) are in docs/groups.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from coffeechat.config import LimitsConfig
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.flow import FlowControl
from coffeechat.handlers.group_state import GroupCache, GroupState, translate_refusal
from coffeechat.handlers.readcount import GroupReadCounter
from coffeechat.interfaces import IDevice, IMessageStore, IStore, IUserStore
from coffeechat.model import (
    AppendResult,
    GroupMember,
    Message,
    MsgType,
    NewMessage,
    Push,
    ReadReceipt,
    SessionType,
    User,
    conversation_key,
)
from coffeechat.router import Router

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
        MsgType.AVCHAT,
    }
)
_NEEDS_URL = frozenset({MsgType.FILE, MsgType.IMAGE, MsgType.AUDIO, MsgType.VIDEO})
MAX_CLIENT_MSG_ID = 64
MAX_IDS_PER_LOOKUP = 20
MAX_SESSIONS_LISTED = 1000


def check_content(msg_type: int, data: bytes, limits: LimitsConfig) -> None:
    """Refuse content the clients could not display: wrong type, too large, not UTF-8, bad JSON."""
    if msg_type not in CLIENT_MSG_TYPES:
        raise ChatError(ErrorCode.INVALID_MSG, f"msg_type {msg_type} may not be sent by clients")
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
    if len(data) > limits.max_body_bytes:
        raise ChatError(ErrorCode.MSG_TOO_LARGE, f"message bodies are limited to {limits.max_body_bytes} bytes")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ChatError(ErrorCode.INVALID_MSG, f"msg_type {msg_type} needs a JSON object body") from None
    if not isinstance(body, dict):
        raise ChatError(ErrorCode.INVALID_MSG, f"msg_type {msg_type} needs a JSON object body")
    if msg_type in _NEEDS_URL and not isinstance(body.get("url"), str):
        raise ChatError(ErrorCode.INVALID_MSG, "file, image, audio and video messages need a url")
    if msg_type == MsgType.LOCATION:
        for key in ("latitude", "longitude"):
            if not isinstance(body.get(key), int | float) or isinstance(body.get(key), bool):
                raise ChatError(ErrorCode.INVALID_MSG, f"location messages need a numeric {key}")


def checked_client_msg_id(client_msg_id: str) -> str:
    """The id that makes resends safe.  A client that sends none (the original desktop client
    does not) gets one made by the server, returned in the ack: its messages are stored and
    delivered, only a resend of one of them cannot be recognised (docs/delivery.md)."""
    if not client_msg_id:
        return str(uuid.uuid4())
    if len(client_msg_id) > MAX_CLIENT_MSG_ID:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"client_msg_id is limited to {MAX_CLIENT_MSG_ID} characters")
    return client_msg_id


class UserDirectory:
    """Answers "does this user exist?" without a database read per message.

    Users are never deleted, so a positive answer is cached for good.  Concurrent lookups of one
    user share one query and resume in the order they were asked, so messages to a user not yet
    cached still reach storage in the order they were sent.
    """

    def __init__(self, store: IUserStore) -> None:
        self.store = store
        self._known: set[int] = set()
        self._waiting: dict[int, list[defer.Deferred]] = {}

    def exists(self, user_id: int) -> defer.Deferred:
        if user_id in self._known:
            return defer.succeed(True)
        d: defer.Deferred = defer.Deferred()
        waiters = self._waiting.get(user_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._waiting[user_id] = [d]
        self.store.user_by_id(user_id).addBoth(self._resolved, user_id)
        return d

    def _resolved(self, result: User | None | Failure, user_id: int) -> None:
        waiters = self._waiting.pop(user_id)
        if isinstance(result, Failure):
            for d in waiters:
                d.errback(result)
            return
        if result is not None:
            self._known.add(user_id)
        for d in waiters:
            d.callback(result is not None)


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
        d.addErrback(lambda f: log.failure("recording delivery acks failed", f))
        return d


class MessageHandler:
    """Sends, reads and lists 1:1 and group messages on behalf of an authenticated user."""

    def __init__(
        self,
        store: IStore,
        users: UserDirectory,
        router: Router,
        clock: IReactorTime,
        limits: LimitsConfig,
        groups: GroupCache | None = None,
        read_counts: GroupReadCounter | None = None,
    ) -> None:
        self.store = store
        self.users = users
        self.router = router
        self.clock = clock
        self.limits = limits
        self.deliveries = DeliveryRecorder(store)
        self.flow = FlowControl()
        self.groups = groups if groups is not None else GroupCache(store)
        self.read_counts = read_counts

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
    ) -> defer.Deferred:
        """Store a message from ``sender`` and, once committed, push it; fires with AppendResult.
        ``mentions`` and ``at_all`` are for group messages (ignored in 1:1 ones)."""
        if session_type == SessionType.GROUP:
            return self._send_group(sender, device, to_id, client_msg_id, msg_type, data, client_type, mentions, at_all)
        try:
            if session_type != SessionType.SINGLE:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_type must be 1 (single) or 2 (group)")
            if to_id <= 0 or to_id == sender.user_id:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "to_session_id must be another user")
            client_msg_id = checked_client_msg_id(client_msg_id)
            check_content(msg_type, data, self.limits)
        except ChatError as e:
            return defer.fail(e)
        message = NewMessage(
            conv=conversation_key(session_type, sender.user_id, to_id),
            session_type=session_type,
            sender_id=sender.user_id,
            to_id=to_id,
            client_msg_id=client_msg_id,
            msg_type=msg_type,
            data=data,
            created_at=int(self.clock.seconds()),
            client_type=client_type,
        )

        def recipient_checked(exists: bool) -> defer.Deferred:
            if not exists:
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {to_id}")
            self.flow.started()
            return self.store.append(message).addBoth(self.flow.finished)

        def stored(result: AppendResult) -> AppendResult:
            if result.created:
                self._fan_out(result.message, sender, device)
            return result

        d = self.users.exists(to_id)
        d.addCallback(recipient_checked)
        d.addCallback(stored)
        return d

    def _fan_out(self, message: Message, sender: User, device: IDevice | None) -> None:
        push = Push(Push.MESSAGE, (message, sender.nick_name))
        self.router.push(message.to_id, push)
        self.router.push(message.sender_id, push, except_device=device)

    def _send_group(
        self,
        sender: User,
        device: IDevice | None,
        group_id: int,
        client_msg_id: str,
        msg_type: int,
        data: bytes,
        client_type: int,
        mentions: Iterable[int],
        at_all: bool,
    ) -> defer.Deferred:
        """A group message: stored once for the group; membership, mute and @all are checked
        by the store in the storing transaction; then one Push goes to every member's devices."""
        try:
            if group_id <= 0:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "to_session_id must be a group id")
            client_msg_id = checked_client_msg_id(client_msg_id)
            check_content(msg_type, data, self.limits)
        except ChatError as e:
            return defer.fail(e)
        wanted = list(mentions)

        def group_found(state: GroupState | None) -> defer.Deferred:
            if state is None or state.group.dismissed:
                raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
            members = state.members
            mentioned = tuple(dict.fromkeys(u for u in wanted if u in members and u != sender.user_id))
            message = NewMessage(
                conv=state.group.conv,
                session_type=SessionType.GROUP,
                sender_id=sender.user_id,
                to_id=group_id,
                client_msg_id=client_msg_id,
                msg_type=msg_type,
                data=data,
                created_at=int(self.clock.seconds()),
                client_type=client_type,
                mentions=mentioned,
                at_all=bool(at_all),
            )
            self.flow.started()
            d = self.store.append(message).addBoth(self.flow.finished)
            d.addErrback(translate_refusal)
            return d.addCallback(stored, state, mentioned)

        def stored(result: AppendResult, state: GroupState, mentioned: tuple[int, ...]) -> AppendResult:
            if result.created:
                extra = (mentioned, bool(at_all)) if mentioned or at_all else ()
                push = Push(Push.MESSAGE, (result.message, sender.nick_name, *extra))
                self.fan_out_group(push, state.members, device)
                if self.read_counts is not None:  # the sender's read position moved too
                    self.read_counts.read_moved(group_id, sender.user_id, 0, result.message.seq - 1)
            return result

        return self.groups.get(group_id).addCallback(group_found)

    def fan_out_group(self, push: Push, members: Iterable[int], device: IDevice | None) -> None:
        """One Push to every local device of ``members`` but ``device``: the transports encode
        it once (``Push.encoded``), however many members and devices there are."""
        route = self.router.push
        for user_id in members:
            route(user_id, push, device)

    async def post_notice(
        self, actor: User, device: IDevice | None, group_id: int, body: dict, also_to: Iterable[int] = ()
    ) -> Message:
        """Append a NOTIFICATION message (msg_type 9, JSON ``body``) about a group change just
        committed, and push it like any group message, also to ``also_to`` (members just
        removed, who no longer are in the group).  ``actor`` is its sender."""
        message = NewMessage(
            conv=f"g:{group_id}",
            session_type=SessionType.GROUP,
            sender_id=actor.user_id,
            to_id=group_id,
            client_msg_id=f"notice-{uuid.uuid4().hex}",
            msg_type=MsgType.NOTIFICATION,
            data=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            created_at=int(self.clock.seconds()),
        )
        self.flow.started()
        try:
            result = await self.store.append(message)
        finally:
            self.flow.finished()
        state = await self.groups.get(group_id)
        push = Push(Push.MESSAGE, (result.message, actor.nick_name))
        members = state.members if state is not None else {}
        self.fan_out_group(push, [*members, *(u for u in also_to if u not in members)], device)
        return result.message

    def delivered(self, user: User, message_conv: str, seq: int) -> None:
        """Record a device's delivery ack (coalesced; see :class:`DeliveryRecorder`)."""
        self.deliveries.record(user.user_id, message_conv, seq)

    # -- reading

    def _conv(self, user: User, session_type: int, session_id: int) -> str:
        if session_type != SessionType.SINGLE:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_type must be 1 (single) or 2 (group)")
        if session_id <= 0:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_id must be a user id")
        return conversation_key(session_type, user.user_id, session_id)

    async def group_member(self, user: User, group_id: int) -> tuple[GroupState, GroupMember]:
        """The group and the user's membership; NOT_FOUND for no (or a dismissed) group,
        FORBIDDEN for a non-member (a kicked user included)."""
        state = await self.groups.get(group_id) if group_id > 0 else None
        if state is None or state.group.dismissed:
            raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
        member = state.members.get(user.user_id)
        if member is None:
            raise ChatError(ErrorCode.FORBIDDEN, "not a member of this group")
        return state, member

    async def read(self, user: User, device: IDevice | None, session_type: int, session_id: int, seq: int) -> int:
        """Move the user's read position forward; notify the peer's devices and the user's other
        devices when it moved.  Returns the read position."""
        if session_type == SessionType.GROUP:
            return await self._read_group(user, device, session_id, seq)
        conv = self._conv(user, session_type, session_id)
        before = await self.store.conversation_entry(user.user_id, conv)
        if before is None:
            raise ChatError(ErrorCode.NOT_FOUND, "no such conversation")
        after = await self.store.mark_read(user.user_id, conv, seq)
        if after is not None and after > before.read_seq:
            self.router.push(session_id, Push(Push.READ, ReadReceipt(user.user_id, user.user_id, session_type, after)))
            self.router.push(
                user.user_id,
                Push(Push.READ, ReadReceipt(user.user_id, session_id, session_type, after)),
                except_device=device,
            )
        return after if after is not None else before.read_seq

    async def _read_group(self, user: User, device: IDevice | None, group_id: int, seq: int) -> int:
        """A read in a group tells only the reader's other devices (not every member: that would
        be a frame per member per read); senders who watch a message's read count learn of it
        coalesced (:class:`GroupReadCounter`).  A mention is cleared by reading past it."""
        conv = f"g:{group_id}"
        before = await self.store.conversation_entry(user.user_id, conv) if group_id > 0 else None
        if before is None:
            raise ChatError(ErrorCode.NOT_FOUND, "not a member of this group")
        after = await self.store.mark_read(user.user_id, conv, seq)
        if after is not None and after > before.read_seq:
            receipt = ReadReceipt(user.user_id, group_id, SessionType.GROUP, after)
            self.router.push(user.user_id, Push(Push.READ, receipt), except_device=device)
            if self.read_counts is not None:
                self.read_counts.read_moved(group_id, user.user_id, before.read_seq, after)
        return after if after is not None else before.read_seq

    async def history(
        self, user: User, session_type: int, session_id: int, end_msg_id: int, limit: int
    ) -> tuple[list[Message], int, int]:
        """A page of messages before ``end_msg_id`` (0 = newest), ascending, with the user's and
        the peer's read positions (so a client can show what is unread and what the peer read).
        A limit of 0 means the default page; more than the maximum page is cut to it.  In a
        group, a member sees the messages from the one they joined at (no peer position: 0)."""
        if limit <= 0:
            limit = self.limits.history_page_default
        limit = min(limit, self.limits.history_page_max)
        if session_type == SessionType.GROUP:
            state, member = await self.group_member(user, session_id)
            messages = await self.store.history(state.group.conv, end_msg_id, limit, member.joined_seq)
            return messages, await self._my_read(user.user_id, state.group.conv), 0
        conv = self._conv(user, session_type, session_id)
        messages = await self.store.history(conv, end_msg_id, limit)
        return (messages, *await self._read_seqs(user.user_id, session_id, conv))

    async def _my_read(self, user_id: int, conv: str) -> int:
        entry = await self.store.conversation_entry(user_id, conv)
        return entry.read_seq if entry else 0

    async def _read_seqs(self, user_id: int, peer_id: int, conv: str) -> tuple[int, int]:
        mine = await self.store.conversation_entry(user_id, conv)
        peer = await self.store.conversation_entry(peer_id, conv)
        return (mine.read_seq if mine else 0), (peer.read_seq if peer else 0)

    async def latest_seq(self, user: User, session_type: int, session_id: int) -> int:
        if session_type == SessionType.GROUP:
            state, _ = await self.group_member(user, session_id)
            return await self.store.latest_seq(state.group.conv)
        return await self.store.latest_seq(self._conv(user, session_type, session_id))

    async def messages_by_id(
        self, user: User, session_type: int, session_id: int, ids: Iterable[str]
    ) -> tuple[list[Message], int, int]:
        """Messages by server_msg_id (given as strings, as CIM v1 does), at most 20 at once, with
        the read positions as :meth:`history` gives them (in a group, only those the user may see)."""
        group = None
        if session_type == SessionType.GROUP:
            group = await self.group_member(user, session_id)
            conv = group[0].group.conv
        else:
            conv = self._conv(user, session_type, session_id)
        ids = list(ids)
        if len(ids) > MAX_IDS_PER_LOOKUP:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_IDS_PER_LOOKUP} ids per request")
        try:
            seqs = sorted({int(i) for i in ids})
        except ValueError:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "message ids must be decimal numbers") from None
        if group is not None:
            seqs = [s for s in seqs if s >= group[1].joined_seq]
            return await self.store.messages_by_seq(conv, seqs), await self._my_read(user.user_id, conv), 0
        messages = await self.store.messages_by_seq(conv, seqs)
        return (messages, *await self._read_seqs(user.user_id, session_id, conv))

    def conversations(self, user: User, updated_since: int) -> defer.Deferred:
        """The user's conversation list (ConversationEntry, most recent first)."""
        return self.store.conversations_of(user.user_id, max(0, updated_since), MAX_SESSIONS_LISTED)
