"""Calls: the signalling of voice and video calls (CIM v1's 0x0401-0x0407 and 0x0A01-0x0A03).

The media is WebRTC between the devices (peer to peer, through TURN, or through the app's SFU:
never through CoffeeChat); the server relays the set-up (invite with the offer, replies with
100 Trying / 180 Ringing / 200 OK and the answer, ICE candidates, renegotiation) and keeps each
call's state: who rings, who answered on which device, who still sends heartbeats.  It tells
everyone what happened (bye notices with reasons the clients cannot know themselves: nobody
answered, the other side dropped, another device answered) and writes every call's outcome
into the conversation as one AVCHAT message (docs/calls.md).

Why a state machine on the server rather than a blind relay: the rules that make calls usable
need one place that decides: one call per user at a time (busy, 486), the other devices stop
ringing when one answers, a missed call is recorded even when both phones are off, a call whose
party vanished ends.

Across nodes: a call lives on its *home* node, where the invite arrived.  Each party is claimed
in shared storage (table ``call_parties``, one row per user, taken with ``INSERT ... ON CONFLICT
DO UPDATE ... WHERE`` the old claim expired), so two nodes cannot put one user in two calls; the
home refreshes its claims, so a dead node's run out.  The home tells the other nodes who is in
which of its calls (cluster command ``calls/state``), so a command that arrives on another node
(a callee's 200 OK, a heartbeat, a bye) is forwarded to the home (``calls/fwd``), which acts and
sends what concerns single devices back (``calls/dev``, ``calls/answer``).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message as PbMessage
from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.codec import from_wire, to_wire
from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import MessagePush, Outgoing, json_object_body
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import MsgType, NewMessage, Push, SessionType, User, conversation_key
from coffeechat.modules import ModuleAPI
from coffeechat.schema import BODY_TYPES, Cmd, pb
from coffeechat.session import Session

SECTION = "calls"

RINGING = pb.kCIM_VOIP_PARTY_RINGING
JOINED = pb.kCIM_VOIP_PARTY_JOINED
LEFT = pb.kCIM_VOIP_PARTY_LEFT

TRYING = pb.kCIM_VOIP_INVITE_CODE_TRYING
RING = pb.kCIM_VOIP_INVITE_CODE_RINGING
OK = pb.KCIM_VOIP_INVITE_CODE_OK
BUSY = pb.kCIM_VOIP_INVITE_CODE_BUSY

CANCEL = pb.kCIM_VOIP_BYE_REASON_CANCEL
REJECT = pb.kCIM_VOIP_BYE_REASON_REJECT
END = pb.kCIM_VOIP_BYE_REASON_END
BYE_BUSY = pb.kCIM_VOIP_BYE_REASON_BUSY
NO_ANSWER = pb.kCIM_VOIP_BYE_REASON_NO_ANSWER
DROPPED = pb.kCIM_VOIP_BYE_REASON_DROPPED
ELSEWHERE = pb.kCIM_VOIP_BYE_REASON_ANSWERED_ELSEWHERE

VOICE = pb.kCIM_VOIP_INVITE_TYPE_VOICE_CALL
VIDEO = pb.kCIM_VOIP_INVITE_TYPE_VIDEO_CALL

MAX_CHANNEL_NAME = 64
MAX_KIND = 32
MAX_PAYLOAD = 16 * 1024
MAX_PENDING_FORWARDS = 10_000
FORWARD_TIMEOUT = 5.0  # seconds a node waits for the home's answer to a forwarded bye
_AVCHAT = int(MsgType.AVCHAT)
_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)
_RESULT_OF_REASON = {CANCEL: "cancelled", REJECT: "declined", BYE_BUSY: "busy", NO_ANSWER: "missed", DROPPED: "dropped"}


@dataclass
class Config:
    """[calls]: call sizes and timers, and how many calls one node holds."""

    max_participants: int = 8  # the caller included
    ring_timeout: int = 45  # seconds an invitee rings before the call is missed
    heartbeat_timeout: int = 75  # seconds without VOIP_HEARTBEAT (clients send one every 30 s)
    max_calls: int = 100_000  # calls whose home is this node
    claim_ttl: int = 90  # seconds a party's claim in shared storage lasts unless its home refreshes it
    max_sdp_bytes: int = 32_768  # an offer or answer in an invite or reply

    def validate(self) -> None:
        if not 2 <= self.max_participants <= 64:
            raise ConfigError("calls.max_participants must be between 2 and 64 (the caller included)")
        if not 5 <= self.ring_timeout <= 600:
            raise ConfigError("calls.ring_timeout must be between 5 and 600 seconds")
        if not 10 <= self.heartbeat_timeout <= 3600:
            raise ConfigError("calls.heartbeat_timeout must be between 10 and 3600 seconds")
        if self.max_calls < 1:
            raise ConfigError("calls.max_calls must be at least 1")
        if self.claim_ttl < 15:
            raise ConfigError("calls.claim_ttl must be at least 15 seconds")
        if not 1024 <= self.max_sdp_bytes <= 1024 * 1024:
            raise ConfigError("calls.max_sdp_bytes must be between 1024 and 1048576")


# -- storage: the claims


class ICallStore(Interface):
    """Who is in a call, shared by the nodes (an SQL backend gets :class:`SQLCallStore`)."""

    def claim(caller_id: int, invitees: list[int], channel: str, token: str, node: str, now: int, expires_at: int):
        """Claim the caller and each invitee for the call ``token``, where no live claim (one
        whose ``expires_at`` is not before ``now``) of another call holds them; fire with the
        invitees that another call holds (busy).  When the caller is held by another call, fail
        with :class:`CallRefused` (ALREADY_IN_CALL) and claim nobody.  Idempotent for one token."""

    def release(user_ids: list[int], token: str):
        """Drop the claims of ``user_ids`` that the call ``token`` holds; fires with None."""

    def refresh(node: str, tokens: list[str], expires_at: int):
        """Extend the claims of this node's live calls (``tokens``) to ``expires_at``."""

    def forget_node(node: str):
        """Drop every claim of ``node`` (it starts: its calls of before are gone)."""


class CallRefused(ChatError):
    """A claim refused in its transaction."""


_UPSERT = (
    "INSERT INTO call_parties (user_id, channel, token, node, expires_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET channel = excluded.channel, token = excluded.token, "
    "node = excluded.node, expires_at = excluded.expires_at "
    "WHERE call_parties.expires_at < ? OR call_parties.token = excluded.token RETURNING user_id"
)


def _claim_txn(
    txn: ISQLTransaction,
    caller_id: int,
    invitees: list[int],
    channel: str,
    token: str,
    node: str,
    now: int,
    expires_at: int,
) -> list[int]:
    if txn.execute(_UPSERT, (caller_id, channel, token, node, expires_at, now)).fetchone() is None:
        raise CallRefused(ErrorCode.ALREADY_IN_CALL, "you are in another call: one call at a time")
    busy = []
    for user_id in invitees:
        if txn.execute(_UPSERT, (user_id, channel, token, node, expires_at, now)).fetchone() is None:
            busy.append(user_id)
    return busy


def _release_txn(txn: ISQLTransaction, user_ids: list[int], token: str) -> None:
    clause, params = txn.in_list("user_id", user_ids)
    txn.execute(f"DELETE FROM call_parties WHERE token = ? AND {clause}", (token, *params))


def _refresh_txn(txn: ISQLTransaction, node: str, tokens: list[str], expires_at: int) -> None:
    clause, params = txn.in_list("token", tokens)
    txn.execute(f"UPDATE call_parties SET expires_at = ? WHERE node = ? AND {clause}", (expires_at, node, *params))


def _forget_node_txn(txn: ISQLTransaction, node: str) -> None:
    txn.execute("DELETE FROM call_parties WHERE node = ?", (node,))


@implementer(ICallStore)
class SQLCallStore:
    """ICallStore written once for every SQL backend (its table: calls.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def claim(
        self, caller_id: int, invitees: list[int], channel: str, token: str, node: str, now: int, expires_at: int
    ) -> defer.Deferred:
        return self.db.run_write(
            "call_claim", _claim_txn, int(caller_id), [int(u) for u in invitees], channel, token, node, now, expires_at
        )

    def release(self, user_ids: list[int], token: str) -> defer.Deferred:
        return self.db.run_write("call_release", _release_txn, [int(u) for u in user_ids], token)

    def refresh(self, node: str, tokens: list[str], expires_at: int) -> defer.Deferred:
        return self.db.run_write("call_refresh", _refresh_txn, node, list(tokens), int(expires_at))

    def forget_node(self, node: str) -> defer.Deferred:
        return self.db.run_write("call_forget_node", _forget_node_txn, node)


# -- the pushes


@dataclass(slots=True)
class InvitePush(Push):
    """VOIP_INVITE_REQ to an invitee's devices: who calls, whom, the offer, the seconds left."""

    caller_id: int
    invitees: tuple[int, ...]
    invite_type: int
    channel: str
    token: str
    sdp: str
    group_id: int
    nick: str
    ring_timeout: int


@dataclass(slots=True)
class ReplyAckPush(Push):
    """VOIP_INVITE_REPLY_ACK to the answering device: the caller has the answer."""

    channel: str
    token: str
    creator_id: int


@dataclass(slots=True)
class ByePush(Push):
    """VOIP_BYE_NOTIFY: ``user_id`` left the call (or stops ringing) for ``reason``."""

    user_id: int
    channel: str
    token: str
    creator_id: int
    reason: int
    time_len: int


@dataclass(slots=True)
class SignalPush(Push):
    """VOIP_SIGNAL_NOTIFY: an ICE candidate or a renegotiation from another party."""

    from_user_id: int
    channel: str
    token: str
    creator_id: int
    kind: str
    payload: str


@dataclass(slots=True)
class StatePush(Push):
    """VOIP_CALL_STATE_NOTIFY: every party of a group call and its state."""

    channel: str
    token: str
    creator_id: int
    group_id: int
    parties: tuple[tuple[int, int], ...]


def _channel(name: str, token: str, creator_id: int) -> pb.CIMChannelInfo:
    return pb.CIMChannelInfo(channel_name=name, channel_token=token, creator_id=creator_id)


def invite_body(p: InvitePush) -> pb.CIMVoipInviteReq:
    return pb.CIMVoipInviteReq(
        creator_user_id=p.caller_id,
        invite_user_list=p.invitees,
        invite_type=p.invite_type,
        channel_info=_channel(p.channel, p.token, p.caller_id),
        sdp=p.sdp,
        group_id=p.group_id,
        from_nick_name=p.nick,
        ring_timeout=p.ring_timeout,
    )


def reply_ack_body(p: ReplyAckPush) -> pb.CIMVoipInviteReplyAck:
    return pb.CIMVoipInviteReplyAck(channel_info=_channel(p.channel, p.token, p.creator_id))


def bye_body(p: ByePush) -> pb.CIMVoipByeNotify:
    return pb.CIMVoipByeNotify(
        user_id=p.user_id,
        channel_info=_channel(p.channel, p.token, p.creator_id),
        byeReason=p.reason,
        call_time_len=p.time_len,
    )


def signal_body(p: SignalPush) -> pb.CIMVoipSignalNotify:
    return pb.CIMVoipSignalNotify(
        channel_info=_channel(p.channel, p.token, p.creator_id),
        from_user_id=p.from_user_id,
        kind=p.kind,
        payload=p.payload,
    )


def state_body(p: StatePush) -> pb.CIMVoipCallStateNotify:
    return pb.CIMVoipCallStateNotify(
        channel_info=_channel(p.channel, p.token, p.creator_id),
        group_id=p.group_id,
        parties=[pb.CIMVoipParty(user_id=u, state=s) for u, s in p.parties],
    )


PUSH_KINDS: dict[str, tuple[type, int, Any]] = {
    "call-invite": (InvitePush, Cmd.VOIP_INVITE_REQ, invite_body),
    "call-reply-ack": (ReplyAckPush, Cmd.VOIP_INVITE_REPLY_ACK, reply_ack_body),
    "call-bye": (ByePush, Cmd.VOIP_BYE_NOTIFY, bye_body),
    "call-signal": (SignalPush, Cmd.VOIP_SIGNAL_NOTIFY, signal_body),
    "call-state": (StatePush, Cmd.VOIP_CALL_STATE_NOTIFY, state_body),
}
_KIND_NAMES = {cls: name for name, (cls, _, _) in PUSH_KINDS.items()}


# -- the call state


class Party:
    """One user of a call: their state, the device in the call, their last heartbeat and, once
    they left, how (for the call record)."""

    __slots__ = ("device_id", "hangup_user", "joined_at", "last_beat", "left_at", "node", "reason", "result",
                 "state", "user_id", "acked", "rang")  # fmt: skip

    def __init__(self, user_id: int, state: int, device_id: str = "", node: str = "") -> None:
        self.user_id = user_id
        self.state = state
        self.device_id = device_id
        self.node = node
        self.joined_at: float | None = None  # None: never answered
        self.left_at = 0.0
        self.last_beat = 0.0
        self.result = ""
        self.reason = 0
        self.hangup_user = 0
        self.acked = False
        self.rang = False


class Call:
    """A call held by this node (its home)."""

    __slots__ = ("answered_at", "caller", "caller_session", "channel", "created_at", "ended", "group_id",
                 "invite_seq", "invite_type", "multi", "parties", "ring_deadline", "sdp", "token")  # fmt: skip

    def __init__(
        self, channel: str, token: str, caller: User, invite_type: int, group_id: int, sdp: str, now: float
    ) -> None:
        self.channel = channel
        self.token = token
        self.caller = caller
        self.invite_type = invite_type
        self.group_id = group_id
        self.sdp = sdp
        self.created_at = now
        self.ring_deadline = now
        self.answered_at: float | None = None  # None: nobody answered yet
        self.ended = False
        self.multi = False  # a group call: several invitees or a group
        #: the connection that invited, and the invite's seq: the invitees' replies (180, 200,
        #: 486) reach the caller as further answers of the invite, on its seq (as SIP's
        #: responses belong to their INVITE transaction)
        self.caller_session: Session | None = None
        self.invite_seq = 0
        self.parties: dict[int, Party] = {}

    @property
    def caller_id(self) -> int:
        return self.caller.user_id

    def live(self) -> list[Party]:
        return [p for p in self.parties.values() if p.state != LEFT]

    def time_len(self, now: float) -> int:
        return int(now - self.answered_at) if self.answered_at is not None else 0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a command came from: a device of this node (``session``) or of another one."""

    user_id: int
    device_id: str
    node: str
    seq: int
    session: Session | None = None


class Calls:
    """The call state machine of the calls whose home is this node, and the routing of commands
    about calls held elsewhere (see the module docstring)."""

    def __init__(self, api: ModuleAPI, messages: Any, store: ICallStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.users = messages.users
        self.store = store
        self.config = config
        self.clock = api.clock
        self.router = api.router
        self.node = api.node_name
        self.groups: Any = None
        self.push: Any = None
        #: calls held here, by channel name
        self.calls: dict[str, Call] = {}
        #: this node's calls by party (not left): the one call of each
        self.by_user: dict[int, Call] = {}
        #: calls held by other nodes, as they told: channel -> (home, {user: state})
        self.remote: dict[str, tuple[str, dict[int, int]]] = {}
        #: user -> channel of ``remote``
        self.remote_users: dict[int, str] = {}
        #: forwarded byes waiting for the home's answer: key -> (session, cmd, seq, timer)
        self.pending: dict[str, tuple[Session, int, int, Any]] = {}
        self._forward_no = 0
        self.stats = {"calls": 0, "answered": 0, "missed": 0, "busy": 0, "dropped": 0, "records": 0,
                      "forwarded": 0}  # fmt: skip
        #: calls ended, by their record's ``result`` (one per record: per pair without a group)
        self.results: dict[str, int] = {}
        #: set by the metrics feature: called with each call's set-up time (invite to first 200 OK)
        self.setup_observer: Callable[[float], None] | None = None

    # -- helpers

    def now(self) -> float:
        return self.clock.seconds()

    def _nick_of(self, user: User) -> str:
        return user.nick_name or user.name

    def send_checks(self) -> list:
        """The 1:1 send rules that apply to calling someone (blocks, friendship), without the
        content moderation (a call has no content to moderate)."""
        checks = self.messages.send_checks.get(_SINGLE, ())
        return [c for c in checks if "moderation" not in (getattr(c, "__module__", "") or "")]

    def _local_device(self, user_id: int, device_id: str) -> Session | None:
        for device in self.router.devices_of(user_id):
            if device.device_id == device_id:
                return device
        return None

    def push_device(self, user_id: int, device_id: str, node: str, push: Push) -> None:
        """Push to one device, on this node or another."""
        if node == self.node:
            device = self._local_device(user_id, device_id)
            if device is not None:
                self.router.push_device(device, push)
            return
        self._broadcast_dev(push, user_id, node=node, only=device_id)

    def push_user_except(self, user_id: int, device_id: str, push: Push) -> None:
        """Push to every device of ``user_id`` on every node but ``device_id``."""
        for device in self.router.devices_of(user_id):
            if device.device_id != device_id:
                self.router.push_device(device, push)
        self._broadcast_dev(push, user_id, exclude=device_id)

    def _broadcast_dev(self, push: Push, user_id: int, node: str = "", only: str = "", exclude: str = "") -> None:
        name = _KIND_NAMES[type(push)]
        data = {"n": node, "u": user_id, "o": only, "x": exclude, "k": name, "f": to_wire(push)}
        self.api.broadcast("calls/dev", data)

    def push_party(self, party: Party, push: Push) -> None:
        """Push to a party: to the device in the call once there is one, else to all of theirs."""
        if party.device_id:
            self.push_device(party.user_id, party.device_id, party.node, push)
        else:
            self.router.push(party.user_id, push)

    def to_caller(self, call: Call, user_id: int, code: int, sdp: str = "") -> None:
        """An invitee's reply, to the caller's inviting connection, on the invite's seq."""
        session = call.caller_session
        if session is not None and not session.closed:
            channel = _channel(call.channel, call.token, call.caller_id)
            reply = pb.CIMVoipInviteReply(user_id=user_id, rsp_code=code, channel_info=channel, sdp=sdp)
            session.answer(Cmd.VOIP_INVITE_REPLY, call.invite_seq, reply)

    def bye_push(self, call: Call, user_id: int, reason: int) -> ByePush:
        return ByePush(user_id, call.channel, call.token, call.caller_id, reason, call.time_len(self.now()))

    # -- invite (always on the home: where it arrives)

    async def invite(self, session: Session, seq: int, req: pb.CIMVoipInviteReq) -> None:
        caller: User = session.user
        caller_id = caller.user_id
        config = self.config
        invitees = list(dict.fromkeys(int(u) for u in req.invite_user_list))
        if not invitees:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "invite_user_list names nobody")
        if any(u <= 0 for u in invitees) or caller_id in invitees:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "invite_user_list must name other users")
        if len(invitees) + 1 > config.max_participants:
            raise ChatError(
                ErrorCode.CALL_TOO_MANY_INVITEES, f"at most {config.max_participants} participants, the caller included"
            )
        invite_type = int(req.invite_type) or VOICE
        if invite_type not in (VOICE, VIDEO):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "invite_type must be 1 (voice) or 2 (video)")
        if len(req.sdp.encode()) > config.max_sdp_bytes:
            raise ChatError(ErrorCode.MSG_TOO_LARGE, f"sdp is limited to {config.max_sdp_bytes} bytes")
        name = req.channel_info.channel_name
        if name:
            if len(name) > MAX_CHANNEL_NAME or not name.isprintable() or name != name.strip():
                raise ChatError(
                    ErrorCode.INVALID_ARGUMENT, f"channel_name: at most {MAX_CHANNEL_NAME} printable characters"
                )
            if name in self.calls or name in self.remote:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "channel_name is in use by another call")
        else:
            name = secrets.token_urlsafe(12)
        if caller_id in self.by_user:
            raise ChatError(ErrorCode.ALREADY_IN_CALL, "you are in another call: one call at a time")
        if len(self.calls) >= config.max_calls:
            raise ChatError(ErrorCode.RATE_LIMITED, "this server holds as many calls as it may: try again later")
        group_id = int(req.group_id)
        if group_id:
            await self._check_group(caller_id, group_id, invitees)
        else:
            await self._check_peers(caller, invitees)
        if caller_id in self.by_user:  # a second invite while the first was checked
            raise ChatError(ErrorCode.ALREADY_IN_CALL, "you are in another call: one call at a time")
        now = self.now()
        call = Call(name, secrets.token_urlsafe(16), caller, invite_type, group_id, req.sdp, now)
        call.multi = bool(group_id) or len(invitees) > 1
        call.caller_session, call.invite_seq = session, seq
        call.ring_deadline = now + config.ring_timeout
        call.parties[caller_id] = Party(caller_id, JOINED, session.device_id, self.node)
        call.parties[caller_id].joined_at = now
        self.calls[name] = call
        self.by_user[caller_id] = call
        try:
            busy = await self.store.claim(
                caller_id, invitees, name, call.token, self.node, int(now), int(now) + config.claim_ttl
            )
        except BaseException:
            self.calls.pop(name, None)
            if self.by_user.get(caller_id) is call:
                del self.by_user[caller_id]
            raise
        self.stats["calls"] += 1
        if call.ended:  # cancelled while the claims were written (the caller's connection closed)
            self._release(call, [caller_id, *invitees])
            session.answer(Cmd.VOIP_INVITE_REPLY, seq, self._reply_answer(call, TRYING))
            return
        busy_set = set(busy)
        for user_id in invitees:
            party = Party(user_id, RINGING)
            call.parties[user_id] = party
            if user_id in busy_set:
                party.state = LEFT
                party.result, party.reason, party.hangup_user = "busy", BYE_BUSY, user_id
                party.left_at = now
            else:
                self.by_user[user_id] = call
        session.answer(Cmd.VOIP_INVITE_REPLY, seq, self._reply_answer(call, TRYING))
        for user_id in busy:
            self.stats["busy"] += 1
            self.to_caller(call, user_id, BUSY)
        ringing = [p.user_id for p in call.parties.values() if p.state == RINGING]
        if not ringing:
            self._end(call, busy[0], BYE_BUSY, told=True)
            return
        push = InvitePush(
            caller_id, tuple(invitees), invite_type, name, call.token, req.sdp, group_id,
            self._nick_of(caller), config.ring_timeout,
        )  # fmt: skip
        self.router.push_many(ringing, push)
        self._announce(call)
        self.api.wheel.schedule(call.ring_deadline, lambda now, call=call: self._ring_expired(call))
        if self.push is not None:
            for user_id in ringing:
                self._notify_offline(call, user_id)

    def _reply_answer(self, call: Call, code: int) -> pb.CIMVoipInviteReply:
        return pb.CIMVoipInviteReply(
            user_id=call.caller_id, rsp_code=code, channel_info=_channel(call.channel, call.token, call.caller_id)
        )

    async def _check_group(self, caller_id: int, group_id: int, invitees: list[int]) -> None:
        if self.groups is None:
            raise ChatError(ErrorCode.NOT_SUPPORTED, "group calls need the groups feature")
        state = await self.groups.cache.get(group_id)
        if state is None or state.group.dismissed:
            raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
        if caller_id not in state.members:
            raise ChatError(ErrorCode.FORBIDDEN, "you are not a member of this group")
        outsiders = [u for u in invitees if u not in state.members]
        if outsiders:
            raise ChatError(ErrorCode.FORBIDDEN, f"user {outsiders[0]} is not a member of this group")

    async def _check_peers(self, caller: User, invitees: list[int]) -> None:
        checks = self.send_checks()
        for user_id in invitees:
            if not await self.users.exists(user_id):
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {user_id}")
            if checks:
                pending = self.messages.run_checks(checks, caller, Outgoing(user_id, "", _AVCHAT, b""))
                if pending is not None:
                    await pending

    def _notify_offline(self, call: Call, user_id: int) -> None:
        nick = self._nick_of(call.caller)
        kind = "video call" if call.invite_type == VIDEO else "call"
        data = {
            "call": call.channel,
            "caller_id": call.caller_id,
            "invite_type": call.invite_type,
            "group_id": call.group_id,
            "ring_timeout": self.config.ring_timeout,
        }
        d = defer.ensureDeferred(
            self.push.notify_call(
                user_id, nick, f"Incoming {kind} from {nick}", call.caller_id, data, self.config.ring_timeout
            )
        )
        d.addErrback(lambda f: self.api.log.failure("calls: the offline notification failed", f))

    # -- commands about an existing call (wherever they arrive)

    def command(self, session: Session, seq: int, cmd: int, req: PbMessage) -> None:
        """Act on a command of a local device: here when the call is held here, else at its home."""
        user_id = session.user_id
        origin = Origin(user_id, session.device_id, self.node, seq, session)
        call = self.by_user.get(user_id)
        if call is not None:
            self.act(call, cmd, origin, req)
            return
        channel = self._remote_channel(user_id)
        if channel is None:
            raise ChatError(ErrorCode.CALL_NOT_FOUND, "you are in no call")
        home = self.remote[channel][0]
        if cmd == Cmd.VOIP_BYE_REQ:
            if len(self.pending) >= MAX_PENDING_FORWARDS:
                session.answer(Cmd.VOIP_BYE_RSP, seq, pb.CIMVoipByeRsp(error_code=ErrorCode.SUCCESS))
            else:
                self._forward_no += 1
                key = f"{self.node}:{self._forward_no}"
                timer = self.clock.callLater(FORWARD_TIMEOUT, self._forward_timed_out, key)
                self.pending[key] = (session, cmd, seq, timer)
                origin = Origin(user_id, session.device_id, self.node, seq)
                self._forward(home, channel, origin, cmd, req, key)
                return
        self._forward(home, channel, origin, cmd, req, "")

    def _forward(self, home: str, channel: str, origin: Origin, cmd: int, req: PbMessage, key: str) -> None:
        self.stats["forwarded"] += 1
        data = {
            "h": home,
            "c": channel,
            "u": origin.user_id,
            "d": origin.device_id,
            "n": self.node,
            "s": origin.seq,
            "cmd": int(cmd),
            "b": base64.b64encode(req.SerializeToString()).decode("ascii"),
            "k": key,
        }
        self.api.broadcast("calls/fwd", data)

    def _forward_timed_out(self, key: str) -> None:
        entry = self.pending.pop(key, None)
        if entry is not None:  # the home is gone: so is the call
            session, cmd, seq, _ = entry
            session.answer(Cmd.VOIP_BYE_RSP, seq, pb.CIMVoipByeRsp(error_code=ErrorCode.SUCCESS))

    def answer(self, origin: Origin, key: str, cmd: int, code: int, text: str = "") -> None:
        """The answer (or refusal) of a command, to its device wherever it is."""
        if origin.session is not None:
            if cmd == Cmd.VOIP_BYE_REQ:
                origin.session.answer(Cmd.VOIP_BYE_RSP, origin.seq, pb.CIMVoipByeRsp(error_code=code))
            elif code != ErrorCode.SUCCESS:
                origin.session.answer_error(cmd, origin.seq, None, code, text)
            return
        if cmd != Cmd.VOIP_BYE_REQ and code == ErrorCode.SUCCESS:
            return
        self.api.broadcast(
            "calls/answer",
            {"n": origin.node, "u": origin.user_id, "d": origin.device_id, "s": origin.seq, "cmd": cmd,
             "code": int(code), "t": text[:200], "k": key},
        )  # fmt: skip

    def act(self, call: Call, cmd: int, origin: Origin, req: PbMessage, key: str = "") -> None:
        """Run a command on a call held here; its refusals raise ChatError."""
        party = call.parties.get(origin.user_id)
        if party is None or party.state == LEFT or call.ended:
            raise ChatError(ErrorCode.CALL_NOT_FOUND, "you are in no call")
        asked = req.channel_info.channel_name if cmd != Cmd.VOIP_HEARTBEAT else ""
        if asked and asked != call.channel:
            raise ChatError(ErrorCode.CALL_NOT_FOUND, f"you are not in call {asked[:64]!r}")
        if cmd == Cmd.VOIP_INVITE_REPLY:
            self.reply(call, party, origin, req)
        elif cmd == Cmd.VOIP_INVITE_REPLY_ACK:
            self.reply_ack(call, party)
        elif cmd == Cmd.VOIP_HEARTBEAT:
            self.heartbeat(party, origin)
        elif cmd == Cmd.VOIP_SIGNAL_REQ:
            self.signal(call, party, req)
        elif cmd == Cmd.VOIP_BYE_REQ:
            self.bye(call, party, origin)
            self.answer(origin, key, cmd, ErrorCode.SUCCESS)

    def reply(self, call: Call, party: Party, origin: Origin, req: pb.CIMVoipInviteReply) -> None:
        code = int(req.rsp_code)
        if party.user_id == call.caller_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "the caller does not reply to its own call")
        caller = call.parties[call.caller_id]
        if code == RING:
            if party.state == RINGING and not party.rang:
                party.rang = True
                self.to_caller(call, party.user_id, RING)
            return
        if code == BUSY:  # the callee's device is busy otherwise (a phone call): as a decline
            if party.state == RINGING:
                self.to_caller(call, party.user_id, BUSY)
                self._leave(call, party, party.user_id, BYE_BUSY, "busy", origin.device_id)
            return
        if code != OK:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "rsp_code must be 180 (ringing), 200 (ok) or 486 (busy)")
        if party.state == JOINED:
            if party.device_id == origin.device_id:
                return  # sent again
            raise ChatError(ErrorCode.CALL_NOT_FOUND, "the call was answered on another device")
        if len(req.sdp.encode()) > self.config.max_sdp_bytes:
            raise ChatError(ErrorCode.MSG_TOO_LARGE, f"sdp is limited to {self.config.max_sdp_bytes} bytes")
        now = self.now()
        party.state, party.device_id, party.node = JOINED, origin.device_id, origin.node
        party.joined_at = party.last_beat = now
        if call.answered_at is None:
            call.answered_at = now
            caller.last_beat = now
            self.stats["answered"] += 1
            if self.setup_observer is not None:
                self.setup_observer(now - call.created_at)
            self._watch(call, caller)
        self._watch(call, party)
        self.to_caller(call, party.user_id, OK, req.sdp)
        self.push_user_except(party.user_id, origin.device_id, self.bye_push(call, party.user_id, ELSEWHERE))
        self._announce(call)

    def reply_ack(self, call: Call, party: Party) -> None:
        if party.user_id != call.caller_id:
            return  # only the caller acknowledges answers
        push = ReplyAckPush(call.channel, call.token, call.caller_id)
        for other in call.parties.values():
            if other.state == JOINED and other.user_id != call.caller_id and not other.acked:
                other.acked = True
                self.push_party(other, push)

    def heartbeat(self, party: Party, origin: Origin) -> None:
        if party.state != JOINED:
            return
        party.last_beat = self.now()
        if party.device_id != origin.device_id:  # the device came back on a new connection
            party.device_id, party.node = origin.device_id, origin.node

    def signal(self, call: Call, party: Party, req: pb.CIMVoipSignalReq) -> None:
        kind = req.kind
        if not kind or len(kind) > MAX_KIND or not kind.isprintable():
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"kind: 1 to {MAX_KIND} printable characters")
        if len(req.payload.encode()) > MAX_PAYLOAD:
            raise ChatError(ErrorCode.MSG_TOO_LARGE, f"payload is limited to {MAX_PAYLOAD} bytes")
        to = int(req.to_user_id)
        if to:
            target = call.parties.get(to)
            if target is None or target.state == LEFT or to == party.user_id:
                raise ChatError(ErrorCode.CALL_NOT_FOUND, f"user {to} is not in this call")
            targets = [target]
        else:
            targets = [p for p in call.parties.values() if p.state != LEFT and p.user_id != party.user_id]
        push = SignalPush(party.user_id, call.channel, call.token, call.caller_id, kind, req.payload)
        for target in targets:
            self.push_party(target, push)

    def bye(self, call: Call, party: Party, origin: Origin) -> None:
        if party.user_id == call.caller_id and call.answered_at is None:
            self._leave(call, party, party.user_id, CANCEL, "cancelled", origin.device_id, end=True)
        elif party.state == RINGING:
            self._leave(call, party, party.user_id, REJECT, "declined", origin.device_id)
        else:
            self._leave(call, party, party.user_id, END, "ended", origin.device_id)

    # -- the state machine

    def _leave(
        self, call: Call, party: Party, actor: int, reason: int, result: str, device_id: str = "", end: bool = False
    ) -> None:
        """``party`` leaves the call (hung up, declined, timed out, dropped): the others are told;
        the call ends when it has no one left to talk to (or ``end``)."""
        now = self.now()
        was = party.state
        party.state, party.left_at = LEFT, now
        party.result, party.reason, party.hangup_user = result, reason, actor
        if self.by_user.get(party.user_id) is call:
            del self.by_user[party.user_id]
        push = self.bye_push(call, party.user_id, reason)
        for other in call.live():
            self.push_party(other, push)
        if was == RINGING or reason in (NO_ANSWER, DROPPED):
            # the user's devices stop ringing (or learn their call dropped), but the one that said so
            if device_id:
                self.push_user_except(party.user_id, device_id, push)
            elif party.device_id:
                self.push_party(party, push)
            else:
                self.router.push(party.user_id, push)
        live = call.live()
        # over when nobody is left to talk to: one party, or invitees ringing for nobody
        if end or len(live) < 2 or not any(p.state == JOINED for p in live):
            self._end(call, actor, reason, told=True, left=party.user_id)
            return
        self._release(call, [party.user_id])
        self._announce(call, left=party.user_id)

    def _end(self, call: Call, actor: int, reason: int, told: bool = False, left: int = 0) -> None:
        """The call is over: everyone still in is told (unless ``told`` of the departure that
        ends it already), the claims go, the records are written."""
        if call.ended:
            return
        call.ended = True
        now = self.now()
        push = self.bye_push(call, actor, reason)
        for party in call.parties.values():
            if party.state == LEFT:
                continue
            if not told and party.user_id != actor:
                self.push_party(party, push)
            party.state, party.left_at = LEFT, now
            party.reason, party.hangup_user = reason, actor
            if party.joined_at is not None:
                party.result = "dropped" if reason == DROPPED else "ended"
            else:
                party.result = "cancelled" if reason == CANCEL else "missed"
        for party in call.parties.values():
            if self.by_user.get(party.user_id) is call:
                del self.by_user[party.user_id]
        self.calls.pop(call.channel, None)
        self._release(call, list(call.parties))
        self._announce(call, ended=True, left=left)
        d = defer.ensureDeferred(self._record(call, now))
        d.addErrback(lambda f: self.api.log.failure("calls: writing the record of {channel} failed", f,
                                                    channel=call.channel))  # fmt: skip

    def _ring_expired(self, call: Call) -> None:
        if call.ended:
            return
        for party in list(call.parties.values()):
            if party.state == RINGING and not call.ended:
                self.stats["missed"] += 1
                self._leave(call, party, party.user_id, NO_ANSWER, "missed")

    def _watch(self, call: Call, party: Party) -> None:
        """Check ``party``'s heartbeats at their deadline (again and again while it moves)."""
        deadline = party.last_beat + self.config.heartbeat_timeout
        self.api.wheel.schedule(deadline, lambda now, c=call, p=party: self._beat_check(c, p, now))

    def _beat_check(self, call: Call, party: Party, now: float) -> None:
        if call.ended or party.state != JOINED:
            return
        if now >= party.last_beat + self.config.heartbeat_timeout:
            self.stats["dropped"] += 1
            self._leave(call, party, party.user_id, DROPPED, "dropped")
        else:
            self._watch(call, party)

    def _announce(self, call: Call, ended: bool = False, left: int = 0) -> None:
        """Tell the other nodes who is in the call (nobody once it ended), and the parties of a
        group call how it stands."""
        parties = [] if ended else [[p.user_id, p.state] for p in call.parties.values() if p.state != LEFT]
        self.api.broadcast("calls/state", {"h": self.node, "c": call.channel, "p": parties})
        if call.multi:
            push = StatePush(
                call.channel, call.token, call.caller_id, call.group_id,
                tuple((p.user_id, p.state) for p in call.parties.values()),
            )  # fmt: skip
            audience = [p.user_id for p in call.parties.values() if p.state != LEFT or p.user_id == left]
            self.router.push_many(audience, push)

    def _release(self, call: Call, user_ids: list[int]) -> None:
        d = self.store.release(user_ids, call.token)
        d.addErrback(lambda f: self.api.log.warn("calls: releasing claims failed: {e}", e=f.getErrorMessage()))

    # -- records

    async def _record(self, call: Call, now: float) -> None:
        """One AVCHAT message per call (per caller-invitee pair without a group)."""
        invitees = [p for uid, p in call.parties.items() if uid != call.caller_id]
        if call.group_id:
            results = {p.result for p in invitees}
            if call.answered_at is not None:
                result = "dropped" if results == {"dropped"} else "ended"
            elif len(results) == 1:
                result = results.pop()
            else:
                result = "cancelled" if "cancelled" in results else "missed"
            last = max(call.parties.values(), key=lambda p: p.left_at)
            body = self._record_body(call, last.hangup_user or call.caller_id, last.reason, call.time_len(now), result)
            state = await self.groups.cache.get(call.group_id)
            audience = list(state.members) if state is not None else [p.user_id for p in call.parties.values()]
            await self._store_record(call, _GROUP, call.group_id, body, audience)
            return
        for party in invitees:
            time_len = int(party.left_at - party.joined_at) if party.joined_at is not None else 0
            body = self._record_body(call, party.hangup_user, party.reason, time_len, party.result)
            await self._store_record(call, _SINGLE, party.user_id, body, [call.caller_id, party.user_id])

    def _record_body(self, call: Call, hangup: int, reason: int, time_len: int, result: str) -> dict:
        self.results[result] = self.results.get(result, 0) + 1  # once per record (metrics)
        return {
            "hangupUserId": hangup,
            "hangupReason": reason,
            "timeLen": max(0, time_len),
            "callType": call.invite_type,
            "result": result,
            "channel": call.channel,
        }

    async def _store_record(self, call: Call, session_type: int, to_id: int, body: dict, audience: list[int]) -> None:
        caller = call.caller
        message = NewMessage(
            conv=conversation_key(session_type, caller.user_id, to_id),
            session_type=session_type,
            sender_id=caller.user_id,
            to_id=to_id,
            client_msg_id=f"call-{call.token[:16]}-{to_id}",
            msg_type=_AVCHAT,
            data=json.dumps(body, separators=(",", ":")).encode(),
            created_at=int(self.now()),
        )
        result = await self.messages.append(message)
        if result.created:
            self.stats["records"] += 1
            self.messages.fan_out(MessagePush(result.message, self._nick_of(caller)), audience)
            self.messages.stored(result.message, caller, None)

    # -- devices coming and going

    def device_online(self, session: Session) -> None:
        """A device logs in while a call to its user rings: it rings too (for the time left)."""
        user_id = session.user_id
        call = self.by_user.get(user_id)
        if call is not None:
            party = call.parties.get(user_id)
            if party is not None and party.state == RINGING:
                # after the login's answer, which the accounts feature sends once this hook ran
                self.clock.callLater(0, self._ring_device, call, session)
            return
        channel = self._remote_channel(user_id)
        if channel is not None and self.remote[channel][1].get(user_id) == RINGING:
            home = self.remote[channel][0]
            self.api.broadcast("calls/ring", {"h": home, "c": channel, "u": user_id, "d": session.device_id,
                                              "n": self.node})  # fmt: skip

    def _ring_device(self, call: Call, session: Session) -> None:
        party = call.parties.get(session.user_id)
        push = self._invite_push(call, self.now())
        if not session.closed and not call.ended and party is not None and party.state == RINGING and push:
            self.router.push_device(session, push)

    def _invite_push(self, call: Call, now: float) -> InvitePush | None:
        left = int(call.ring_deadline - now)
        if left <= 0:
            return None
        invitees = tuple(u for u in call.parties if u != call.caller_id)
        return InvitePush(
            call.caller_id, invitees, call.invite_type, call.channel, call.token, call.sdp, call.group_id,
            self._nick_of(call.caller), left,
        )  # fmt: skip

    def device_offline(self, session: Session) -> None:
        """The caller's device closed while its call rings: cancelled, unless the caller has
        another device."""
        call = self.by_user.get(session.user_id)
        if call is None or call.answered_at is not None or session.user_id != call.caller_id:
            return
        if call.parties[call.caller_id].device_id != session.device_id:
            return
        if self.router.devices_of(session.user_id):
            return
        d = self.router.presence.devices_of(session.user_id)

        def found(devices: list) -> None:
            if not devices and not call.ended and call.answered_at is None:
                self._leave(call, call.parties[call.caller_id], call.caller_id, CANCEL, "cancelled", end=True)

        d.addCallback(found)
        d.addErrback(lambda f: found([]))

    # -- the other nodes

    def _remote_channel(self, user_id: int) -> str | None:
        channel = self.remote_users.get(user_id)
        if channel is None:
            return None
        entry = self.remote.get(channel)
        if entry is None or entry[0] not in self.router.presence.live_nodes():
            self._forget_remote(channel)
            return None
        return channel

    def _forget_remote(self, channel: str) -> None:
        entry = self.remote.pop(channel, None)
        if entry is not None:
            for user_id in entry[1]:
                if self.remote_users.get(user_id) == channel:
                    del self.remote_users[user_id]

    def state_elsewhere(self, data: dict, from_node: str) -> None:
        """``calls/state``: who is in a call of another node (nobody: it ended)."""
        channel = str(data["c"])
        home = str(data.get("h") or from_node)
        self._forget_remote(channel)
        parties = {int(u): int(s) for u, s in data.get("p") or ()}
        if not parties:
            return
        while len(self.remote) >= 2 * self.config.max_calls:
            self._forget_remote(next(iter(self.remote)))
        self.remote[channel] = (home, parties)
        for user_id in parties:
            self.remote_users[user_id] = channel

    def forwarded(self, data: dict, from_node: str) -> None:
        """``calls/fwd``: a command for a call held here, from a device on ``from_node``."""
        if data.get("h") != self.node:
            return
        cmd = int(data["cmd"])
        origin = Origin(int(data["u"]), str(data["d"]), str(data["n"]), int(data["s"]))
        key = str(data.get("k") or "")
        body_type = BODY_TYPES.get(cmd)
        if body_type is None or cmd not in _FORWARDED:
            return
        req = body_type.FromString(base64.b64decode(data["b"]))
        call = self.by_user.get(origin.user_id)
        try:
            if call is None:
                raise ChatError(ErrorCode.CALL_NOT_FOUND, "you are in no call")
            self.act(call, cmd, origin, req, key)
        except ChatError as e:
            self.answer(origin, key, cmd, e.code, e.message)

    def answered_elsewhere(self, data: dict, from_node: str) -> None:
        """``calls/answer``: the home's answer to a command forwarded from here."""
        if data.get("n") != self.node:
            return
        key = str(data.get("k") or "")
        cmd, code, seq = int(data["cmd"]), int(data["code"]), int(data["s"])
        if key:
            entry = self.pending.pop(key, None)
            if entry is None:
                return
            session, _, _, timer = entry
            if timer.active():
                timer.cancel()
        else:
            session = self._local_device(int(data["u"]), str(data["d"]))
            if session is None:
                return
        if cmd == Cmd.VOIP_BYE_REQ:
            session.answer(Cmd.VOIP_BYE_RSP, seq, pb.CIMVoipByeRsp(error_code=code))
        else:
            session.answer_error(cmd, seq, None, code, str(data.get("t", "")))

    def device_push(self, data: dict, from_node: str) -> None:
        """``calls/dev``: push to this node's devices of a user (one, or all but one)."""
        node = data.get("n") or ""
        if node and node != self.node:
            return
        kind = PUSH_KINDS.get(str(data.get("k")))
        if kind is None:
            return
        push = from_wire(kind[0], data["f"])
        user_id, only, exclude = int(data["u"]), data.get("o") or "", data.get("x") or ""
        for device in self.router.devices_of(user_id):
            if (only and device.device_id != only) or (exclude and device.device_id == exclude):
                continue
            self.router.push_device(device, push)

    def ring_elsewhere(self, data: dict, from_node: str) -> None:
        """``calls/ring``: a device of a ringing invitee came online on another node."""
        if data.get("h") != self.node:
            return
        user_id = int(data["u"])
        call = self.by_user.get(user_id)
        if call is None or call.channel != data.get("c"):
            return
        party = call.parties.get(user_id)
        push = self._invite_push(call, self.now())
        if party is not None and party.state == RINGING and push is not None:
            self._broadcast_dev(push, user_id, node=str(data["n"]), only=str(data["d"]))

    def resumed(self, lost_at: float) -> None:
        """Notices may have been lost, both ways: forget what the other nodes said, ask them to
        say it again, and tell them again what this one holds."""
        self.remote.clear()
        self.remote_users.clear()
        self.api.broadcast("calls/sync", {})
        self.sync_asked({}, "")

    def sync_asked(self, data: dict, from_node: str) -> None:
        """``calls/sync``: another node lost notices: tell it what this one holds."""
        for call in list(self.calls.values()):
            self.api.broadcast(
                "calls/state",
                {"h": self.node, "c": call.channel, "p": [[p.user_id, p.state] for p in call.live()]},
            )

    # -- claims kept alive

    def refresh(self) -> defer.Deferred | None:
        tokens = [call.token for call in self.calls.values()]
        if not tokens:
            return None
        return self.store.refresh(self.node, tokens, int(self.now()) + self.config.claim_ttl)

    def started(self) -> None:
        d = self.store.forget_node(self.node)
        d.addErrback(lambda f: self.api.log.warn("calls: dropping old claims failed: {e}", e=f.getErrorMessage()))

    def stopping(self) -> defer.Deferred:
        """The node stops (its devices are told already): the other nodes forget its calls, and
        its claims go now rather than when they expire."""
        for call in list(self.calls.values()):
            call.ended = True
            self.api.broadcast("calls/state", {"h": self.node, "c": call.channel, "p": []})
        self.calls.clear()
        self.by_user.clear()
        d = self.store.forget_node(self.node)
        d.addErrback(lambda f: self.api.log.warn("calls: dropping claims failed: {e}", e=f.getErrorMessage()))
        return d

    def __len__(self) -> int:
        return len(self.calls)


_FORWARDED = frozenset(
    {Cmd.VOIP_INVITE_REPLY, Cmd.VOIP_INVITE_REPLY_ACK, Cmd.VOIP_HEARTBEAT, Cmd.VOIP_BYE_REQ, Cmd.VOIP_SIGNAL_REQ}
)


def refuse_client_record(data: bytes, limits: Any, origin: str) -> None:
    """With calls on, AVCHAT messages are the server's call records: clients may not send one
    (a forward of a stored record, ``origin`` set, is a copy and may)."""
    if not origin:
        raise ChatError(ErrorCode.INVALID_MSG, "call records are written by the server")
    json_object_body(_AVCHAT, data, limits.max_body_bytes)


def setup(api: ModuleAPI) -> Calls:
    """The VOIP commands, their pushes, the claims table and the cluster commands."""
    config: Config = api.config
    messages = api.depends("messages")
    calls = Calls(api, messages, api.open_store(ICallStore, SQLCallStore), config)
    try:
        calls.groups = api.depends("groups")
    except ConfigError:
        calls.groups = None
    try:
        push = api.depends("push")
        calls.push = push if getattr(push, "providers", None) and hasattr(push, "notify_call") else None
    except ConfigError:
        calls.push = None
    messages.msg_types[_AVCHAT] = refuse_client_record
    for name, (cls, cmd, encode) in PUSH_KINDS.items():
        api.push_kind(cls, name=name, cmd=cmd, encode=encode)

    def invite(session: Session, seq: int, req: pb.CIMVoipInviteReq) -> defer.Deferred:
        return defer.ensureDeferred(calls.invite(session, seq, req))

    def on_call(cmd: int) -> Any:
        def handler(session: Session, seq: int, req: PbMessage) -> None:
            calls.command(session, seq, cmd, req)

        return handler

    api.command(Cmd.VOIP_INVITE_REQ, invite)
    for cmd in _FORWARDED:
        api.command(cmd, on_call(cmd))
    api.cluster_command("calls/state", calls.state_elsewhere)
    api.cluster_command("calls/fwd", calls.forwarded)
    api.cluster_command("calls/answer", calls.answered_elsewhere)
    api.cluster_command("calls/dev", calls.device_push)
    api.cluster_command("calls/ring", calls.ring_elsewhere)
    api.cluster_command("calls/sync", calls.sync_asked)
    api.hook("device/online", calls.device_online)
    api.hook("device/offline", calls.device_offline)
    api.hook("cluster/resumed", calls.resumed)
    api.on_start(calls.started)
    api.on_stop(calls.stopping)
    api.periodic(max(5.0, config.claim_ttl / 3), calls.refresh)
    return calls
