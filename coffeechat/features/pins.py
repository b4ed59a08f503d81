"""Pinned conversations: a user pins 1:1 chats and groups to the top of their conversation list.

A user pins a conversation they can see (``messages.locate``; a 1:1 peer must exist), at most
``[pins] max_pins`` of them.  The conversation list (0x0201) then gives the pinned ones first,
flagged ``pinned``, the most recently pinned first, and the others after them in their usual order
(most recent message first).  Every device of the user is told of a pin or unpin (PIN_NOTIFY,
across nodes); PIN_LIST_REQ lists them.  Unpinning works on any conversation (one left since).
docs/dnd.md tells the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import ConversationEntry, Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)


@dataclass
class Config:
    """[pins]: how many conversations one user may pin."""

    max_pins: int = 50

    def validate(self) -> None:
        if not 1 <= self.max_pins <= 1000:
            raise ConfigError("pins.max_pins must be between 1 and 1000")


@dataclass(frozen=True, slots=True)
class Pin:
    """A pinned conversation as the user files it (1:1: the peer; groups: the group)."""

    session_type: int
    session_id: int
    pinned_at: int


# -- storage


class PinRefused(Exception):
    """A pin the store refused in its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class IPinStore(Interface):
    """The pins feature's storage (a facet: an SQL backend gets :class:`SQLPinStore`; tested by
    ``coffeechat.testing.conformance_dnd.PinStoreConformanceTests``)."""

    def pins_of(user_id: int):
        """Fire with the user's Pins, the most recently pinned first (pins of one second keep the
        order they were made in)."""

    def pin(user_id: int, session_type: int, session_id: int, now: int, max_pins: int):
        """Pin a conversation at ``now``; fire with ``(Pin, new)``: ``new`` False when it was
        pinned already (it keeps its time and place).  A new pin beyond ``max_pins`` fails with
        :class:`PinRefused` (TOO_MANY_PINS), decided in the transaction that adds it."""

    def unpin(user_id: int, session_type: int, session_id: int):
        """Unpin a conversation; fire with True when it was pinned."""

    def forget_user(user_id: int):
        """Erase every pin of the user (a deleted account); fire with how many there were."""


def _lock_user(txn: ISQLTransaction, user_id: int) -> None:
    """PostgreSQL: one user's pins are written one transaction at a time (count, place)."""
    if txn.engine == "postgres":
        txn.execute("SELECT user_id FROM users WHERE user_id = ? FOR UPDATE", (user_id,))


def _pins_txn(txn: ISQLTransaction, user_id: int) -> list[Pin]:
    rows = txn.execute(
        "SELECT session_type, session_id, pinned_at FROM pinned_conversations WHERE user_id = ? ORDER BY position DESC",
        (user_id,),
    ).fetchall()
    return [Pin(int(t), int(i), int(at)) for t, i, at in rows]


def _pin_txn(
    txn: ISQLTransaction, user_id: int, session_type: int, session_id: int, now: int, max_pins: int
) -> tuple[Pin, bool]:
    _lock_user(txn, user_id)
    found = txn.execute(
        "SELECT pinned_at FROM pinned_conversations WHERE user_id = ? AND session_type = ? AND session_id = ?",
        (user_id, session_type, session_id),
    ).fetchone()
    if found is not None:
        return Pin(session_type, session_id, int(found[0])), False
    count, top = txn.execute(
        "SELECT count(*), COALESCE(MAX(position), 0) FROM pinned_conversations WHERE user_id = ?", (user_id,)
    ).fetchone()
    if count >= max_pins:
        raise PinRefused(ErrorCode.TOO_MANY_PINS, f"at most {max_pins} conversations may be pinned")
    txn.execute(
        "INSERT INTO pinned_conversations (user_id, session_type, session_id, pinned_at, position) "
        "VALUES (?, ?, ?, ?, ?)",
        (user_id, session_type, session_id, now, int(top) + 1),
    )
    return Pin(session_type, session_id, now), True


def _unpin_txn(txn: ISQLTransaction, user_id: int, session_type: int, session_id: int) -> bool:
    gone = txn.execute(
        "DELETE FROM pinned_conversations WHERE user_id = ? AND session_type = ? AND session_id = ? "
        "RETURNING session_id",
        (user_id, session_type, session_id),
    ).fetchall()
    return bool(gone)


def _forget_txn(txn: ISQLTransaction, user_id: int) -> int:
    gone = txn.execute("DELETE FROM pinned_conversations WHERE user_id = ? RETURNING session_id", (user_id,))
    return len(gone.fetchall())


@implementer(IPinStore)
class SQLPinStore:
    """IPinStore written once for every SQL backend (its table: pins.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def pins_of(self, user_id: int) -> defer.Deferred:
        return self.db.run_read("pins_of", _pins_txn, int(user_id))

    def pin(self, user_id: int, session_type: int, session_id: int, now: int, max_pins: int) -> defer.Deferred:
        return self.db.run_write(
            "pin", _pin_txn, int(user_id), int(session_type), int(session_id), int(now), int(max_pins)
        )

    def unpin(self, user_id: int, session_type: int, session_id: int) -> defer.Deferred:
        return self.db.run_write("unpin", _unpin_txn, int(user_id), int(session_type), int(session_id))

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("pins_forget_user", _forget_txn, int(user_id))


# -- the push


@dataclass(slots=True)
class PinPush(Push):
    """PIN_NOTIFY to the user's devices: a conversation was pinned or unpinned."""

    user_id: int
    session_type: int
    session_id: int
    pinned: bool
    pinned_at: int


def pin_notify(push: PinPush) -> pb.CIMPinNotify:
    return pb.CIMPinNotify(
        user_id=push.user_id,
        session_type=push.session_type,
        session_id=push.session_id,
        pinned=push.pinned,
        pinned_time=push.pinned_at,
    )


# -- the service


class Pins:
    """Pins and unpins conversations for users, and puts the pinned ones first in their lists."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IPinStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.clock = api.clock

    async def pin(self, user: User, device: Any, session_type: int, session_id: int, pinned: bool) -> Pin | None:
        """Pin (a conversation the user can see) or unpin; tell the user's other devices when it
        changed.  Returns the pin (None when unpinned)."""
        if session_type not in (_SINGLE, _GROUP):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_type must be 1 (single) or 2 (group)")
        if not 0 < session_id <= MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_id must be a positive id")
        if session_type == _SINGLE and session_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "a 1:1 conversation is with another user")
        if not pinned:
            if await self.store.unpin(user.user_id, session_type, session_id):
                self.api.router.push(user.user_id, PinPush(user.user_id, session_type, session_id, False, 0), device)
            return None
        await self.messages.locate(user.user_id, session_type, session_id)
        if session_type == _SINGLE and not await self.messages.users.exists(session_id):
            raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {session_id}")
        try:
            found, new = await self.store.pin(
                user.user_id, session_type, session_id, int(self.clock.seconds()), self.config.max_pins
            )
        except PinRefused as e:
            raise ChatError(e.code, str(e)) from None
        if new:
            push = PinPush(user.user_id, session_type, session_id, True, found.pinned_at)
            self.api.router.push(user.user_id, push, device)
        return found

    def pins_of(self, user_id: int) -> defer.Deferred:
        return self.store.pins_of(user_id)

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: the user's pins go (others' pins of a conversation with them stay)."""
        await self.store.forget_user(user.user_id)

    def order(self, user: User, entries: list[ConversationEntry]) -> defer.Deferred:
        """Session view (priority 10): the pinned conversations first, flagged, the most recently
        pinned first; the others after them in the order they came."""
        return self.store.pins_of(user.user_id).addCallback(self._ordered, entries)

    @staticmethod
    def _ordered(pins: list[Pin], entries: list[ConversationEntry]) -> list[ConversationEntry]:
        if not pins:
            return entries
        rank = {(p.session_type, p.session_id): i for i, p in enumerate(pins)}
        pinned: list[tuple[int, ConversationEntry]] = []
        rest: list[ConversationEntry] = []
        for entry in entries:
            place = rank.get((entry.session_type, entry.session_id))
            if place is None:
                rest.append(entry)
            else:
                pinned.append((place, replace(entry, pinned=True)))
        pinned.sort(key=lambda p: p[0])
        return [e for _, e in pinned] + rest


def pinned_session(p: Pin) -> pb.CIMPinnedSession:
    return pb.CIMPinnedSession(session_type=p.session_type, session_id=p.session_id, pinned_time=p.pinned_at)


def setup(api: ModuleAPI) -> Pins:
    """PIN_REQ, PIN_LIST_REQ, PIN_NOTIFY and the conversation-list order."""
    messages = api.depends("messages")
    pins = Pins(api, messages, api.open_store(IPinStore, SQLPinStore), api.config)
    api.push_kind(PinPush, name="pin", cmd=Cmd.PIN_NOTIFY, encode=pin_notify)
    messages.add_session_view(pins.order, priority=10)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(pins.account_deleted(user)))

    @api.request(Cmd.PIN_REQ)
    async def pin(session: Session, req: pb.CIMPinReq) -> pb.CIMPinRsp:
        found = await pins.pin(session.user, session, req.session_type, req.session_id, req.pinned)
        return pb.CIMPinRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            session_type=req.session_type,
            session_id=req.session_id,
            pinned=found is not None,
            pinned_time=found.pinned_at if found is not None else 0,
        )

    @api.request(Cmd.PIN_LIST_REQ)
    async def listed(session: Session, req: pb.CIMPinListReq) -> pb.CIMPinListRsp:
        found = await pins.pins_of(session.user_id)
        return pb.CIMPinListRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            pin_list=[pinned_session(p) for p in found],
        )

    return pins
