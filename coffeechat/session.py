"""One client connection as the node sees it, whatever its transport.

A transport (TCP, WebSocket binary, WebSocket JSON) decodes its framing into ``(command_id, seq,
protobuf message)`` and hands it to :meth:`Session.request_received`; the session answers and
pushes through the transport's ``send(command_id, seq, message, cache)`` callable.  What a
command means is the business of the feature that registered it (``ModuleAPI.command``): one dict
lookup per frame finds it.  The session keeps what every connection has: login state, liveness,
rate limits, and the pushes awaiting a delivery ack.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from google.protobuf.message import Message as PbMessage
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from coffeechat.errors import ChatError, ErrorCode, code_name
from coffeechat.interfaces import IDevice, StorageUnavailable
from coffeechat.model import Push, User
from coffeechat.ratelimit import TokenBucket, UserBudget
from coffeechat.schema import TABLE, Cmd, error_answer, pb

if TYPE_CHECKING:
    from coffeechat.node import ChatNode

log = Logger()

MAX_PUSH_SEQ = 65534
REDELIVERY_TRIES = 3
# Pushes a connection may have awaiting a delivery ack; beyond it the oldest is given up (it is
# stored: the client catches up at its next login), so a client that never acks costs bounded memory.
MAX_UNACKED = 1000

# send(command_id, seq, message, cache): ``cache`` is a dict shared by every recipient of one
# push, where a transport may keep its encoding of ``message`` (None for one-off frames).
Send = Callable[[int, int, PbMessage, dict | None], None]


@implementer(IDevice)
class Session:
    """The state of one connection: login, liveness, rate limits, pushes awaiting delivery acks."""

    # Slots: a node holds tens of thousands of these, and a __dict__ each would double their size.
    __slots__ = (
        "node",
        "_send",
        "_close",
        "_commands",
        "_push_kinds",
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
        "logging_in",
        "_push_seq",
        "_unacked",
        "_acks_seen",
        "_given_up",
        "_redelivery_armed",
        "_requests",
        "_messages",
        "_budget",
    )

    def __init__(self, node: ChatNode, send: Send, close: Callable[[], None], peer: str = "") -> None:
        self.node = node
        self._send = send
        self._close = close
        self._commands = node.registry.commands
        self._push_kinds = node.registry.push_kinds
        self.peer = peer
        self.clock = node.reactor
        limits = node.config.limits
        self.limits = limits
        now = self.clock.seconds()
        self.connected_at = now
        self.last_seen = now
        self.user: User | None = None
        self.user_id = 0
        self.device_id = ""
        self.client_type = 0
        self.closed = False
        self.logging_in = False
        self._push_seq = 0
        # ack key -> [push, sent_at, tries, command]; only pushes awaiting a delivery ack
        self._unacked: dict[Hashable, list] = {}
        self._acks_seen = False  # this client acknowledges deliveries (not every original client does)
        self._given_up = 0  # pushes never acknowledged, for the log
        self._redelivery_armed = False
        self._requests = TokenBucket(self.clock, limits.requests_per_second, limits.request_burst)
        self._messages = TokenBucket(self.clock, limits.messages_per_second, limits.message_burst)
        self._budget: UserBudget | None = None  # the user's, shared with their other devices here
        node.wheel.schedule(now + limits.login_timeout, self._login_deadline)

    # -- transport side

    def request_received(self, cmd: int, seq: int, request: PbMessage | None) -> None:
        """Handle one decoded frame (``request`` None: a command without a body type); every
        request gets an answer, success or a refusal (acks and a few notices only on failure)."""
        if self.closed:
            return
        self.last_seen = self.clock.seconds()
        entry = self._commands.get(cmd)
        try:
            if self.user is None:
                if entry is None or not entry.login:
                    raise ChatError(ErrorCode.NOT_LOGGED_IN, "log in first")
                if self.logging_in:
                    raise ChatError(ErrorCode.ALREADY_LOGGED_IN, "a login is in progress")
            elif entry is None:
                if not self.take_request_token():
                    raise ChatError(ErrorCode.RATE_LIMITED, "too many requests")
                if cmd in TABLE:
                    self.answer_unserved(
                        cmd, seq, ErrorCode.NOT_SUPPORTED, "this command is not supported by this server"
                    )
                else:
                    self.answer_unserved(cmd, seq, ErrorCode.UNKNOWN_COMMAND, f"unknown command 0x{cmd:04x}")
                return
            elif entry.login:
                raise ChatError(ErrorCode.ALREADY_LOGGED_IN, "this connection is logged in already")
            elif entry.counted and not self.take_request_token():
                raise ChatError(ErrorCode.RATE_LIMITED, "too many requests")
            result = entry.handler(self, seq, request)
        except ChatError as e:
            self.answer_error(cmd, seq, request, e.code, e.message)
            return
        except Exception:
            log.failure("command 0x{cmd:04x} failed", cmd=cmd)
            self.answer_error(cmd, seq, request, ErrorCode.INTERNAL_ERROR, "internal error")
            return
        if result is not None:  # a Deferred (an isinstance check here costs ~6% under fan-out)
            result.addErrback(self._failed, cmd, seq, request)

    def bad_frame(self, cmd: int, seq: int, code: int, text: str) -> None:
        """A frame whose body could not be decoded: answer it, keep the connection."""
        self.answer_error(cmd, seq, None, code, text)

    def take_message_token(self) -> bool:
        """Spend one of the connection's message budget (``limits.messages_per_second``) and one
        of its user's on this node (``limits.user_messages_per_second``)."""
        budget = self._budget
        if not self._messages.take():
            return False
        if budget is None:
            return True
        if budget.stale():
            self.node.user_budgets.refresh(self.user_id, budget)
        return budget.messages.take()

    def take_request_token(self) -> bool:
        """Likewise for requests (``limits.requests_per_second``, ``user_requests_per_second``)."""
        budget = self._budget
        if not self._requests.take():
            return False
        if budget is None:
            return True
        if budget.stale():
            self.node.user_budgets.refresh(self.user_id, budget)
        return budget.requests.take()

    def connection_lost(self, how: str = "disconnected") -> None:
        """The connection is gone (``how`` says why, for the log; empty: logged already)."""
        if self.closed:
            return
        self.closed = True
        if self.user is not None:
            self.node.router.detach(self)
            self.node.registry.fire("device/offline", self)
            if self._budget is not None:
                self._budget = None
                self.node.user_budgets.release(self.user_id)
            if how:
                unacked = self._given_up + len(self._unacked)
                log.info(
                    "user {user_id} device {device} {how}{unacked}",
                    user_id=self.user_id,
                    device=self.device_id,
                    how=how,
                    unacked=f" ({unacked} pushes never acknowledged)" if unacked else "",
                )
        self._unacked.clear()

    def answer(self, cmd: int, seq: int, message: PbMessage) -> None:
        if not self.closed:
            self._send(cmd, seq, message, None)

    def answer_error(self, cmd: int, seq: int, request: PbMessage | None, code: int, text: str) -> None:
        answer_cmd, body = error_answer(cmd, request, int(code), text, int(self.clock.seconds()))
        self.answer(answer_cmd, seq, body)

    def answer_unserved(self, cmd: int, seq: int, code: int, text: str) -> None:
        """ERROR_RSP for a command nobody here serves."""
        answer_cmd, body = error_answer(cmd, None, int(code), text, int(self.clock.seconds()), served=False)
        self.answer(answer_cmd, seq, body)

    def _failed(self, failure: Failure, cmd: int, seq: int, request: PbMessage) -> None:
        if failure.check(ChatError):
            self.answer_error(cmd, seq, request, failure.value.code, failure.value.message)
        elif failure.check(StorageUnavailable):  # logged once per outage, by the store
            self.answer_error(cmd, seq, request, ErrorCode.STORAGE_UNAVAILABLE, "storage unavailable: try again")
        else:
            log.failure("command 0x{cmd:04x} failed", failure, cmd=cmd)
            self.answer_error(cmd, seq, request, ErrorCode.INTERNAL_ERROR, "internal error")

    # -- login (the accounts feature decides who; the session keeps it)

    def logged_in(self, user: User, client_type: int, method: str) -> bool:
        """The connection now belongs to ``user`` (False: it closed meanwhile)."""
        if self.closed:
            return False
        self.user = user
        self.user_id = user.user_id
        self.client_type = client_type
        self.device_id = self.node.new_device_id()
        self._budget = self.node.user_budgets.acquire(user.user_id)
        log.info(
            "login: user {user_id} ({name}) device {device} from {peer}, client type {client_type}, by {method}",
            user_id=user.user_id,
            name=user.name,
            device=self.device_id,
            peer=self.peer,
            client_type=client_type,
            method=method,
        )
        for displaced in self.node.router.attach(self):
            displaced.disconnect(ErrorCode.SESSION_REPLACED, "too many devices: the oldest one was logged out")
        self.node.registry.fire("device/online", self)  # online_status: who is online (cheap: no storage)
        self.node.wheel.schedule(self.last_seen + self.limits.idle_timeout, self._idle_check)
        return True

    def login_refused(self, who: str, error: ChatError) -> None:
        if error.code == ErrorCode.RATE_LIMITED:  # a flood: one line per period, with a count
            self.node.refused_logins.event(
                "{count} login(s) refused by the login limits since the last such line; the latest for "
                "{who} from {peer}: {reason}",
                who=who,
                peer=self.peer,
                reason=error.message,
            )
            return
        log.info(
            "login refused for {who} from {peer}: {reason} ({code})",
            who=who,
            peer=self.peer,
            reason=error.message,
            code=code_name(error.code),
        )

    def end(self, how: str) -> None:
        """Close the connection after what was answered (a logout)."""
        self.connection_lost(how)
        self._close()

    # -- IDevice

    def _next_push_seq(self) -> int:
        self._push_seq = self._push_seq % MAX_PUSH_SEQ + 1
        return self._push_seq

    def push(self, push: Push) -> None:
        """Send ``push``, encoded once for all its recipients (``push.cache``); kinds that devices
        acknowledge wait for their ack here and are sent again without one."""
        if self.closed:
            return
        kind = self._push_kinds[type(push)]
        cache = push.cache
        body = cache.get("pb")
        if body is None:
            body = cache["pb"] = kind.encode(push)
        self._send(kind.cmd, self._next_push_seq(), body, cache)
        if kind.ack_key is not None:
            unacked = self._unacked
            if len(unacked) >= MAX_UNACKED:
                del unacked[next(iter(unacked))]
                self._given_up += 1
            unacked[kind.ack_key(push)] = [push, self.clock.seconds(), 1, kind.cmd]
            if not self._redelivery_armed:
                self._arm_redelivery()

    def acknowledged(self, key: Hashable) -> Push | None:
        """A delivery ack naming ``key`` (a push kind's ``ack_key``): the push, or None when none
        awaits that ack."""
        entry = self._unacked.pop(key, None)
        if entry is None:
            return None
        self._acks_seen = True
        observe = self.node.ack_observer
        if observe is not None:
            observe(self.clock.seconds() - entry[1])
        return entry[0]

    def acknowledged_where(self, match: Callable[[Hashable, Push], bool]) -> Push | None:
        """A delivery ack that names no key: the first awaiting push that ``match(key, push)``.  A
        scan, so it is paid for from the request budget."""
        if not self._unacked or not self._requests.take():
            return None
        for key, entry in self._unacked.items():
            if match(key, entry[0]):
                del self._unacked[key]
                self._acks_seen = True
                observe = self.node.ack_observer
                if observe is not None:
                    observe(self.clock.seconds() - entry[1])
                return entry[0]
        return None

    def disconnect(self, code: int, reason: str) -> None:
        """Tell the client why (KICKOUT_NOTIFY), then close."""
        if self.closed:
            return
        if code != ErrorCode.SERVER_SHUTDOWN:  # the node logs one line for all of those
            log.info(
                "kicking out {who} from {peer}: {reason} ({code})",
                who=f"user {self.user_id} device {self.device_id}" if self.user is not None else "a connection",
                peer=self.peer,
                reason=reason,
                code=code_name(code),
            )
        notice = pb.CIMKickoutNotify(reason_code=code, reason=reason)
        self._send(Cmd.KICKOUT_NOTIFY, self._next_push_seq(), notice, None)
        self.connection_lost("")
        self._close()

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

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
            self.node.wheel.schedule(deadline, self._idle_check)

    def _arm_redelivery(self) -> None:
        self._redelivery_armed = True
        self.node.wheel.schedule(self.clock.seconds() + self.limits.redeliver_after, self._redeliver)

    def _redeliver(self, now: float) -> None:
        """Resend pushes whose delivery ack is overdue, a few times, then give them up.

        Never a reason to disconnect: what was pushed is stored, and the client catches up at its
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
            push, sent_at, tries, cmd = entry
            if sent_at > cutoff:
                continue
            if tries >= REDELIVERY_TRIES or not self._acks_seen:
                del unacked[key]
                given_up += 1
                continue
            entry[1] = now
            entry[2] = tries + 1
            resent += 1
            self._send(cmd, self._next_push_seq(), push.cache["pb"], push.cache)
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


def heartbeat(session: Session, seq: int, request: PbMessage) -> None:
    """LOGIN_HEARTBEAT: echoed (any frame is a sign of life; this one asks for nothing else)."""
    session.answer(Cmd.LOGIN_HEARTBEAT, seq, request)
