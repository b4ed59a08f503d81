"""Chat rooms: large open rooms for live events, joined per connection, nothing kept per member.

A room is stored (name, topic, owner, member cap, whether its whole history is kept), with its
moderators, mutes and bans; who is *in* it is not: a connection joins (ROOM_JOIN), leaves
(ROOM_LEAVE) or closes, and is out.  Messages (ROOM_MSG) go to whoever is in the room now:

- **batched per reactor turn**: all messages a room accepts during one turn go out as one
  ROOM_MSG_NOTIFY per member connection, encoded once for all of them (``Push.cache``), and as
  one ``rooms/msgs`` payload per other node holding members of a room (one per node per turn,
  whatever the number of rooms);
- **rate-limited per room** (a token bucket, this node's share of ``max_messages_per_second``):
  over the rate an ordinary member's message is refused with ROOM_BUSY, while the owner's and
  moderators' always pass (they spend tokens too, so members are dropped first);
- **kept as context**: every node holding members keeps a room's last ``recent`` messages in
  memory, handed to a newcomer in ROOM_JOIN_RSP; storage gets them in batches (one
  ``executemany`` per flush, off the ack path), trimmed to the last ``recent`` unless the room
  persists its history (ROOM_HISTORY pages through that);
- **moderated** when the optional moderation feature is configured: its keyword filter, and its
  before-send callback (``[moderation] rooms``), asked per message without holding up the room:
  a held message gets its id, and goes out, when it is allowed.

Across nodes, each node knows its own connections per room and publishes its counts (and a
sample of members, and who came and went) every ``notice_interval`` seconds and at once on a
big change; the member cap is checked against this node's count plus the others' last-known
counts.  Join/leave notices are coalesced: at most one ROOM_EVENT_NOTIFY per room per
``notice_interval``.  docs/rooms.md describes the protocol, the limits and what is kept.
"""

from __future__ import annotations

import base64
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from coffeechat import openapi
from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Push, User
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.openapi import ID, array, boolean, integer, obj, string
from coffeechat.ratelimit import TokenBucket
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

from .messages import Outgoing, check_content, checked_client_msg_id

SECTION = "rooms"

MEMBER = pb.kCIM_ROOM_ROLE_MEMBER
MODERATOR = pb.kCIM_ROOM_ROLE_MODERATOR
OWNER = pb.kCIM_ROOM_ROLE_OWNER
MUTE = pb.kCIM_ROOM_ACTION_MUTE
UNMUTE = pb.kCIM_ROOM_ACTION_UNMUTE
BAN = pb.kCIM_ROOM_ACTION_BAN
UNBAN = pb.kCIM_ROOM_ACTION_UNBAN
KICK = pb.kCIM_ROOM_ACTION_KICK
ADD_MODERATOR = pb.kCIM_ROOM_ACTION_ADD_MODERATOR
REMOVE_MODERATOR = pb.kCIM_ROOM_ACTION_REMOVE_MODERATOR
CLOSED = pb.kCIM_ROOM_ACTION_CLOSED

MAX_NAME = 64
MAX_TOPIC = 256
PAGE_MAX = 100  # rooms per ROOM_LIST page, messages per ROOM_HISTORY page
PAGE_DEFAULT = 20
SAMPLE_MAX = 100  # members in a ROOM_MEMBERS sample
SAMPLE_PUBLISHED = 20  # members per room in a node's published sample
NOTICE_NAMES = 10  # names each way in a ROOM_EVENT_NOTICE
MAX_SANCTIONS = 10_000  # mutes and bans (each) of one room
MAX_DURATION = 10 * 365 * 86400  # the longest mute or ban with an end
WRITE_BATCH = 1000  # messages per storage write
_NODE_BITS = 10
_COUNTER_BITS = 12


@dataclass
class Config:
    """[rooms]: how many rooms a user may own, members per room, rooms per connection, the
    message rates, how much context is kept, and how often counts and notices go out."""

    max_rooms_per_user: int = 10
    max_members: int = 10_000
    max_joined: int = 10
    max_messages_per_second: float = 100.0
    connection_messages_per_second: float = 5.0
    connection_message_burst: int = 10
    recent: int = 50
    notice_interval: float = 2.0
    notices_max_members: int = 1000
    cache_rooms: int = 10_000
    max_rooms_held: int = 10_000
    write_interval: float = 0.5
    max_pending_writes: int = 100_000

    def validate(self) -> None:
        if self.max_rooms_per_user < 0:
            raise ConfigError("rooms.max_rooms_per_user must be >= 0 (0: only administrators create rooms)")
        if not 1 <= self.max_members <= 1_000_000:
            raise ConfigError("rooms.max_members must be between 1 and 1000000")
        if not 1 <= self.max_joined <= 1000:
            raise ConfigError("rooms.max_joined must be between 1 and 1000")
        if self.max_messages_per_second <= 0 or self.connection_messages_per_second <= 0:
            raise ConfigError("rooms.max_messages_per_second and connection_messages_per_second must be positive")
        if self.connection_message_burst < 1:
            raise ConfigError("rooms.connection_message_burst must be >= 1")
        if not 0 <= self.recent <= 1000:
            raise ConfigError("rooms.recent must be between 0 and 1000")
        if self.notice_interval <= 0 or self.write_interval <= 0:
            raise ConfigError("rooms.notice_interval and rooms.write_interval must be positive")
        if self.notices_max_members < 0 or self.cache_rooms < 1 or self.max_rooms_held < 1:
            raise ConfigError("rooms.notices_max_members must be >= 0, cache_rooms and max_rooms_held >= 1")
        if self.max_pending_writes < WRITE_BATCH:
            raise ConfigError(f"rooms.max_pending_writes must be at least {WRITE_BATCH}")


# -- what is stored


@dataclass(frozen=True, slots=True)
class RoomRow:
    """A room as stored (``closed_at`` 0: open; ``owner_id`` 0: a room of the administrators)."""

    room_id: int
    name: str
    topic: str
    owner_id: int
    max_members: int
    persist_history: bool
    created_at: int
    closed_at: int = 0


@dataclass(slots=True)
class RoomMsg:
    """One message of a room, as it is pushed, kept and stored."""

    room_id: int
    msg_id: int
    client_msg_id: str
    from_user_id: int
    from_nick: str
    msg_type: int
    data: bytes
    create_time: int
    from_role: int
    encoded: Any = field(default=None, compare=False, repr=False)  # its CIMRoomMsg, made once

    def to_pb(self) -> pb.CIMRoomMsg:
        made = self.encoded
        if made is None:
            made = self.encoded = pb.CIMRoomMsg(
                room_id=self.room_id,
                msg_id=self.msg_id,
                client_msg_id=self.client_msg_id,
                from_user_id=self.from_user_id,
                from_nick_name=self.from_nick,
                msg_type=self.msg_type,
                msg_data=self.data,
                create_time=self.create_time,
                from_role=self.from_role,
            )
        return made

    def wire(self) -> list:
        return [
            self.msg_id,
            self.client_msg_id,
            self.from_user_id,
            self.from_nick,
            self.msg_type,
            base64.b64encode(self.data).decode("ascii"),
            self.create_time,
            self.from_role,
        ]

    @classmethod
    def from_wire(cls, room_id: int, w: list) -> RoomMsg:
        msg_id, cmid, uid, nick, msg_type, data, created, role = w
        for value in (msg_id, uid, msg_type, created, role):
            if type(value) is not int:
                raise ValueError("not an integer")
        if not isinstance(cmid, str) or not isinstance(nick, str) or not isinstance(data, str):
            raise ValueError("not a string")
        return cls(room_id, msg_id, cmid, uid, nick, msg_type, base64.b64decode(data), created, role)

    def row(self) -> tuple:
        return (
            self.room_id,
            self.msg_id,
            self.client_msg_id,
            self.from_user_id,
            self.from_nick,
            self.from_role,
            self.msg_type,
            self.data,
            self.create_time,
        )


class RoomRefused(Exception):
    """A change the store refused in its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class IRoomStore(Interface):
    """The rooms feature's storage (a facet: an SQL backend gets :class:`SQLRoomStore`)."""

    def create(name: str, topic: str, owner_id: int, max_members: int, persist: bool, now: int, max_owned: int):
        """Fire with the new :class:`RoomRow`; with ``max_owned`` > 0, fail with
        :class:`RoomRefused` (TOO_MANY_ROOMS) when the owner has that many open rooms already
        (counted in the same transaction)."""

    def load(room_id: int, now: int):
        """Fire with ``(RoomRow, {moderator: role}, {muted: until}, {banned: until})`` (the
        sanctions still in force at ``now``; until 0: no end), or None for no such room."""

    def list_open(before_id: int, limit: int):
        """Fire with up to ``limit`` open rooms below ``before_id`` (0: from the newest), newest first."""

    def list_rooms(after_id: int, limit: int):
        """Fire with up to ``limit`` rooms, closed ones too, above ``after_id``, by id."""

    def close(room_id: int, now: int):
        """Close the room; fire with True when it was open."""

    def set_role(room_id: int, user_id: int, role: int):
        """Make ``user_id`` a moderator (MODERATOR) or not (MEMBER); fires with None."""

    def sanction(room_id: int, user_id: int, kind: int, until: int, by: int, now: int, max_entries: int):
        """Record a mute or ban (replacing the user's earlier one of that kind); expired ones of
        the room go first; beyond ``max_entries`` of that kind fail with :class:`RoomRefused`."""

    def lift(room_id: int, user_id: int, kind: int):
        """Remove a mute or ban; fire with True when there was one."""

    def append(rows: list[tuple], trim: list[int], keep: int):
        """Store messages (:meth:`RoomMsg.row` tuples, one ``executemany``) and delete all but the
        last ``keep`` messages of each room in ``trim``; fires with None."""

    def recent(room_id: int, limit: int):
        """Fire with the room's last ``limit`` messages (:class:`RoomMsg`), oldest first."""

    def history(room_id: int, before_id: int, limit: int):
        """Fire with up to ``limit`` messages below ``before_id`` (0: the newest), newest first."""

    def forget_user(user_id: int, now: int):
        """A deleted account: its open rooms are closed at ``now``, its roles and sanctions go;
        fires with the ids of the rooms closed."""


_ROOM_COLS = "room_id, name, topic, owner_id, max_members, persist_history, created_at, closed_at"
_MSG_COLS = "room_id, msg_id, client_msg_id, sender_id, nick, role, msg_type, data, created_at"


def _room(row: Any) -> RoomRow:
    return RoomRow(int(row[0]), row[1], row[2], int(row[3]), int(row[4]), bool(row[5]), int(row[6]), int(row[7]))


def _msg(row: Any) -> RoomMsg:
    return RoomMsg(
        int(row[0]), int(row[1]), row[2], int(row[3]), row[4], int(row[6]), bytes(row[7]), int(row[8]), int(row[5])
    )


def _lock_owner(txn: ISQLTransaction, user_id: int) -> None:
    """PostgreSQL: one owner's creations one at a time (the count and the insert must not race)."""
    if txn.engine == "postgres" and user_id:
        txn.execute("SELECT user_id FROM users WHERE user_id = ? FOR UPDATE", (user_id,))


def _create_txn(
    txn: ISQLTransaction, name: str, topic: str, owner: int, max_members: int, persist: bool, now: int, max_owned: int
) -> RoomRow:
    if max_owned > 0:
        _lock_owner(txn, owner)
        (count,) = txn.execute("SELECT count(*) FROM rooms WHERE owner_id = ? AND closed_at = 0", (owner,)).fetchone()
        if count >= max_owned:
            raise RoomRefused(ErrorCode.TOO_MANY_ROOMS, f"at most {max_owned} open rooms per user")
    row = txn.execute(
        "INSERT INTO rooms (name, topic, owner_id, max_members, persist_history, created_at, closed_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, 0) RETURNING {_ROOM_COLS}",
        (name, topic, owner, max_members, persist, now),
    ).fetchone()
    return _room(row)


def _load_txn(txn: ISQLTransaction, room_id: int, now: int) -> tuple | None:
    row = txn.execute(f"SELECT {_ROOM_COLS} FROM rooms WHERE room_id = ?", (room_id,)).fetchone()
    if row is None:
        return None
    roles = {
        int(u): int(r) for u, r in txn.execute("SELECT user_id, role FROM room_roles WHERE room_id = ?", (room_id,))
    }
    mutes: dict[int, int] = {}
    bans: dict[int, int] = {}
    for user_id, kind, until in txn.execute(
        "SELECT user_id, kind, until FROM room_sanctions WHERE room_id = ? AND (until = 0 OR until > ?)",
        (room_id, now),
    ):
        (mutes if int(kind) == MUTE else bans)[int(user_id)] = int(until)
    return _room(row), roles, mutes, bans


def _list_open_txn(txn: ISQLTransaction, before_id: int, limit: int) -> list[RoomRow]:
    before = before_id if before_id > 0 else MAX_ID
    rows = txn.execute(
        f"SELECT {_ROOM_COLS} FROM rooms WHERE closed_at = 0 AND room_id < ? ORDER BY room_id DESC LIMIT ?",
        (before, limit),
    ).fetchall()
    return [_room(r) for r in rows]


def _list_rooms_txn(txn: ISQLTransaction, after_id: int, limit: int) -> list[RoomRow]:
    rows = txn.execute(
        f"SELECT {_ROOM_COLS} FROM rooms WHERE room_id > ? ORDER BY room_id LIMIT ?", (after_id, limit)
    ).fetchall()
    return [_room(r) for r in rows]


def _close_txn(txn: ISQLTransaction, room_id: int, now: int) -> bool:
    closed = txn.execute(
        "UPDATE rooms SET closed_at = ? WHERE room_id = ? AND closed_at = 0 RETURNING room_id", (now, room_id)
    ).fetchall()
    return bool(closed)


def _set_role_txn(txn: ISQLTransaction, room_id: int, user_id: int, role: int) -> None:
    if role == MEMBER:
        txn.execute("DELETE FROM room_roles WHERE room_id = ? AND user_id = ?", (room_id, user_id))
    else:
        txn.execute(
            "INSERT INTO room_roles (room_id, user_id, role) VALUES (?, ?, ?) "
            "ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role",
            (room_id, user_id, role),
        )


def _sanction_txn(
    txn: ISQLTransaction, room_id: int, user_id: int, kind: int, until: int, by: int, now: int, max_entries: int
) -> None:
    txn.execute("DELETE FROM room_sanctions WHERE room_id = ? AND until <> 0 AND until <= ?", (room_id, now))
    (count,) = txn.execute(
        "SELECT count(*) FROM room_sanctions WHERE room_id = ? AND kind = ? AND user_id <> ?", (room_id, kind, user_id)
    ).fetchone()
    if count >= max_entries:
        what = "mutes" if kind == MUTE else "bans"
        raise RoomRefused(ErrorCode.INVALID_ARGUMENT, f"a room has at most {max_entries} {what}: lift some first")
    txn.execute(
        "INSERT INTO room_sanctions (room_id, user_id, kind, until, by_user_id, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (room_id, user_id, kind) DO UPDATE SET until = excluded.until, by_user_id = excluded.by_user_id, "
        "created_at = excluded.created_at",
        (room_id, user_id, kind, until, by, now),
    )


def _lift_txn(txn: ISQLTransaction, room_id: int, user_id: int, kind: int) -> bool:
    gone = txn.execute(
        "DELETE FROM room_sanctions WHERE room_id = ? AND user_id = ? AND kind = ? RETURNING user_id",
        (room_id, user_id, kind),
    ).fetchall()
    return bool(gone)


def _append_txn(txn: ISQLTransaction, rows: list[tuple], trim: list[int], keep: int) -> None:
    txn.executemany(
        f"INSERT INTO room_messages ({_MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (room_id, msg_id) DO NOTHING",
        rows,
    )
    for room_id in trim:
        if keep <= 0:
            txn.execute("DELETE FROM room_messages WHERE room_id = ?", (room_id,))
            continue
        txn.execute(
            "DELETE FROM room_messages WHERE room_id = ? AND msg_id < (SELECT msg_id FROM room_messages "
            "WHERE room_id = ? ORDER BY msg_id DESC LIMIT 1 OFFSET ?)",
            (room_id, room_id, keep - 1),
        )


def _recent_txn(txn: ISQLTransaction, room_id: int, limit: int) -> list[RoomMsg]:
    rows = txn.execute(
        f"SELECT {_MSG_COLS} FROM room_messages WHERE room_id = ? ORDER BY msg_id DESC LIMIT ?", (room_id, limit)
    ).fetchall()
    return [_msg(r) for r in reversed(rows)]


def _history_txn(txn: ISQLTransaction, room_id: int, before_id: int, limit: int) -> list[RoomMsg]:
    before = before_id if before_id > 0 else MAX_ID
    rows = txn.execute(
        f"SELECT {_MSG_COLS} FROM room_messages WHERE room_id = ? AND msg_id < ? ORDER BY msg_id DESC LIMIT ?",
        (room_id, before, limit),
    ).fetchall()
    return [_msg(r) for r in rows]


def _forget_txn(txn: ISQLTransaction, user_id: int, now: int) -> list[int]:
    closed = txn.execute(
        "UPDATE rooms SET closed_at = ? WHERE owner_id = ? AND closed_at = 0 RETURNING room_id", (now, user_id)
    ).fetchall()
    txn.execute("DELETE FROM room_roles WHERE user_id = ?", (user_id,))
    txn.execute("DELETE FROM room_sanctions WHERE user_id = ?", (user_id,))
    return [int(r[0]) for r in closed]


@implementer(IRoomStore)
class SQLRoomStore:
    """IRoomStore written once for every SQL backend (its tables: rooms.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def create(
        self, name: str, topic: str, owner_id: int, max_members: int, persist: bool, now: int, max_owned: int
    ) -> defer.Deferred:
        return self.db.run_write(
            "room_create",
            _create_txn,
            name,
            topic,
            int(owner_id),
            int(max_members),
            bool(persist),
            int(now),
            int(max_owned),
        )

    def load(self, room_id: int, now: int) -> defer.Deferred:
        return self.db.run_read("room_load", _load_txn, int(room_id), int(now))

    def list_open(self, before_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("room_list", _list_open_txn, int(before_id), int(limit))

    def list_rooms(self, after_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("room_list_all", _list_rooms_txn, int(after_id), int(limit))

    def close(self, room_id: int, now: int) -> defer.Deferred:
        return self.db.run_write("room_close", _close_txn, int(room_id), int(now))

    def set_role(self, room_id: int, user_id: int, role: int) -> defer.Deferred:
        return self.db.run_write("room_role", _set_role_txn, int(room_id), int(user_id), int(role))

    def sanction(
        self, room_id: int, user_id: int, kind: int, until: int, by: int, now: int, max_entries: int
    ) -> defer.Deferred:
        return self.db.run_write(
            "room_sanction", _sanction_txn, int(room_id), int(user_id), int(kind), int(until), int(by), int(now),
            int(max_entries),
        )  # fmt: skip

    def lift(self, room_id: int, user_id: int, kind: int) -> defer.Deferred:
        return self.db.run_write("room_lift", _lift_txn, int(room_id), int(user_id), int(kind))

    def append(self, rows: list[tuple], trim: list[int], keep: int) -> defer.Deferred:
        return self.db.run_write("room_messages", _append_txn, list(rows), list(trim), int(keep))

    def recent(self, room_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("room_recent", _recent_txn, int(room_id), int(limit))

    def history(self, room_id: int, before_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("room_history", _history_txn, int(room_id), int(before_id), int(limit))

    def forget_user(self, user_id: int, now: int) -> defer.Deferred:
        return self.db.run_write("room_forget_user", _forget_txn, int(user_id), int(now))


# -- pushes


@dataclass(slots=True)
class RoomMsgPush(Push):
    """A batch of one room's messages (ROOM_MSG_NOTIFY), the same frame for every member."""

    room_id: int
    msgs: list = field(default_factory=list)


@dataclass(slots=True)
class RoomEventPush(Push):
    """Who came and went in a room since the last notice (ROOM_EVENT_NOTIFY)."""

    room_id: int
    member_count: int
    joined_count: int
    left_count: int
    joined: tuple = ()
    left: tuple = ()


@dataclass(slots=True)
class RoomModeratePush(Push):
    """A moderation action on a user of the room, or its closing (ROOM_MODERATE_NOTIFY)."""

    room_id: int
    target_user_id: int
    action: int
    by_user_id: int
    until: int = 0


def room_msg_notify(push: RoomMsgPush) -> pb.CIMRoomMsgNotify:
    return pb.CIMRoomMsgNotify(room_id=push.room_id, msgs=[m.to_pb() for m in push.msgs])


def _member_pb(entry: tuple) -> pb.CIMRoomMember:
    return pb.CIMRoomMember(user_id=entry[0], nick_name=entry[1], role=entry[2])


def room_event_notify(push: RoomEventPush) -> pb.CIMRoomEventNotify:
    return pb.CIMRoomEventNotify(
        room_id=push.room_id,
        member_count=push.member_count,
        joined_count=push.joined_count,
        left_count=push.left_count,
        joined=[_member_pb(e) for e in push.joined],
        left=[_member_pb(e) for e in push.left],
    )


def room_moderate_notify(push: RoomModeratePush) -> pb.CIMRoomModerateNotify:
    return pb.CIMRoomModerateNotify(
        room_id=push.room_id,
        target_user_id=push.target_user_id,
        action=push.action,
        by_user_id=push.by_user_id,
        until=push.until,
    )


# -- in memory


class RoomState:
    """A room's row and moderation (moderators, mutes and bans in force), cached per node."""

    __slots__ = ("row", "roles", "mutes", "bans")

    def __init__(self, row: RoomRow, roles: dict[int, int], mutes: dict[int, int], bans: dict[int, int]) -> None:
        self.row = row
        self.roles = roles
        self.mutes = mutes
        self.bans = bans

    def role_of(self, user_id: int) -> int:
        if user_id == self.row.owner_id and user_id:
            return OWNER
        return MODERATOR if user_id in self.roles else MEMBER

    @staticmethod
    def until(entries: dict[int, int], user_id: int, now: float) -> int | None:
        """When the user's mute or ban ends (0: never), or None when there is none in force."""
        until = entries.get(user_id)
        if until is None:
            return None
        if until and until <= now:
            del entries[user_id]
            return None
        return until


class RoomBucket:
    """A room's token bucket whose privileged spenders (owner, moderators) are never refused:
    they take tokens anyway, into debt down to ``-burst``, so that members are refused first."""

    __slots__ = ("_clock", "rate", "burst", "_tokens", "_stamp")

    def __init__(self, clock: Any, rate: float) -> None:
        self._clock = clock
        self.rate = rate
        self.burst = max(1.0, rate)
        self._tokens = self.burst
        self._stamp = clock.seconds()

    def share(self, rate: float) -> None:
        """This node's share of the room's rate changed (nodes holding members came or went)."""
        self.rate = rate
        self.burst = max(1.0, rate)
        self._tokens = min(self._tokens, self.burst)

    def take(self, privileged: bool) -> bool:
        now = self._clock.seconds()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        if privileged:
            self._tokens = max(-self.burst, tokens - 1.0)
            return True
        self._tokens = tokens
        return False


class Member:
    """One connection in one room."""

    __slots__ = ("user_id", "nick", "joined_at")

    def __init__(self, user_id: int, nick: str, joined_at: float) -> None:
        self.user_id = user_id
        self.nick = nick
        self.joined_at = joined_at


class Connection:
    """What rooms keep of one connection: the rooms it is in, and its room-message budget."""

    __slots__ = ("rooms", "bucket")

    def __init__(self, bucket: TokenBucket) -> None:
        self.rooms: set[int] = set()
        self.bucket = bucket


class Notice:
    """Who came and went since the last notice (counts, and the first few by name)."""

    __slots__ = ("joined_count", "left_count", "joined", "left")

    def __init__(self) -> None:
        self.joined_count = 0
        self.left_count = 0
        self.joined: list[tuple] = []
        self.left: list[tuple] = []

    def __bool__(self) -> bool:
        return bool(self.joined_count or self.left_count)

    def add(self, joined: bool, entry: tuple) -> None:
        if joined:
            self.joined_count += 1
            if len(self.joined) < NOTICE_NAMES:
                self.joined.append(entry)
        else:
            self.left_count += 1
            if len(self.left) < NOTICE_NAMES:
                self.left.append(entry)

    def merge(self, joined_count: int, left_count: int, joined: Iterable[tuple], left: Iterable[tuple]) -> None:
        self.joined_count += joined_count
        self.left_count += left_count
        self.joined.extend(list(joined)[: max(0, NOTICE_NAMES - len(self.joined))])
        self.left.extend(list(left)[: max(0, NOTICE_NAMES - len(self.left))])

    def wire(self) -> list:
        return [self.joined_count, self.left_count, [list(e) for e in self.joined], [list(e) for e in self.left]]


class LocalRoom:
    """A room this node holds members of: its members here, its recent messages, this turn's
    batch, its rate bucket, and what changed for the next notice."""

    __slots__ = ("room_id", "state", "members", "recent", "pending", "bucket", "notice", "remote_notice", "changed",
                 "announced", "loaded")  # fmt: skip

    def __init__(self, room_id: int, state: RoomState, recent: int, bucket: RoomBucket) -> None:
        self.room_id = room_id
        self.state = state
        self.members: dict[Session, Member] = {}
        self.recent: deque[RoomMsg] = deque(maxlen=recent)
        self.pending: list[RoomMsg] = []
        self.bucket = bucket
        self.notice = Notice()  # this node's joins and leaves since the last tick
        self.remote_notice = Notice()  # the other nodes', as they published them
        self.changed = False  # membership changed since the last published sample
        self.announced = 0  # the count last published
        self.loaded = False  # recent messages read from storage


class Rooms:
    """The rooms of this node (see the module docstring)."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IRoomStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.clock = api.clock
        self.node = api.node_name
        self.limits = api.limits
        self._node_bits = zlib.crc32(self.node.encode()) & ((1 << _NODE_BITS) - 1)
        self._last_ms = 0
        self._counter = 0
        self.rooms: dict[int, LocalRoom] = {}  # held: members here (or a first join loading)
        self._cache: OrderedDict[int, RoomState] = OrderedDict()
        self._loading: dict[int, list[defer.Deferred]] = {}
        self._waiting_loads: dict[int, list[defer.Deferred]] = {}  # joins waiting for a first join's load
        self._generation: dict[int, int] = {}  # changes seen while a load was in flight
        self._connections: dict[Session, Connection] = {}
        # other nodes' members: room -> node -> (count, sample); node -> its rooms; when last heard
        self._remote: dict[int, dict[str, tuple[int, list]]] = {}
        self._remote_rooms: dict[str, set[int]] = {}
        self._heard: dict[str, float] = {}
        self._dirty: list[LocalRoom] = []  # rooms with messages this turn (also those released meanwhile)
        self._flush_scheduled = False
        self._announce: set[int] = set()  # rooms whose count changed a lot: published at once
        self._announce_scheduled = False
        self._had_rooms = False
        self._writes: list[tuple[RoomMsg, bool]] = []  # (message, its room persists history)
        self._writing: list[tuple[RoomMsg, bool]] = []
        self._write_timer: Any = None
        self._write_in_flight: defer.Deferred | None = None
        # the moderation feature's check of a message (its keyword filter, its callback), if enabled
        self.screen: Callable[[User, Outgoing], defer.Deferred | None] | None = None
        self.stopping = False
        # counters, for tests and metrics
        self.delivered = 0  # ROOM_MSG_NOTIFY frames pushed to connections here
        self.batches = 0
        self.payloads = 0  # rooms/msgs payloads sent to other nodes
        self.busy = 0  # messages refused over a room's rate
        self.held = 0  # messages waiting for the moderation callback now
        self.accepted = 0  # messages this node accepted from its connections
        self.writes = 0
        self.write_failures = 0
        self.dropped_writes = 0

    # -- ids and time

    def now(self) -> int:
        return int(self.clock.seconds())

    def next_msg_id(self) -> int:
        """Milliseconds << 22 | this node's 10 bits << 12 | a 12-bit counter: increasing on this
        node (a clock going back reuses the last millisecond), unique per room in a cluster whose
        nodes' names hash to different bits."""
        ms = int(self.clock.seconds() * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._counter += 1
            if self._counter >> _COUNTER_BITS:
                ms += 1
                self._counter = 0
        else:
            self._counter = 0
        self._last_ms = ms
        return (ms << (_NODE_BITS + _COUNTER_BITS)) | (self._node_bits << _COUNTER_BITS) | self._counter

    # -- room state (cached)

    def state(self, room_id: int) -> defer.Deferred:
        """Fire with the room's :class:`RoomState` (ChatError NOT_FOUND for none or a closed one)."""
        d = self._state(room_id)
        return d.addCallback(self._open)

    @staticmethod
    def _open(state: RoomState | None) -> RoomState:
        if state is None or state.row.closed_at:
            raise ChatError(ErrorCode.NOT_FOUND, "no such room (or it was closed)")
        return state

    def _state(self, room_id: int) -> defer.Deferred:
        held = self.rooms.get(room_id)
        if held is not None:
            return defer.succeed(held.state)
        cached = self._cache.get(room_id)
        if cached is not None:
            self._cache.move_to_end(room_id)
            return defer.succeed(cached)
        d: defer.Deferred = defer.Deferred()
        waiters = self._loading.get(room_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._loading[room_id] = [d]
        self._load(room_id, 3)
        return d

    def _load(self, room_id: int, tries: int) -> None:
        generation = self._generation.get(room_id, 0)

        def loaded(found: tuple | None) -> None:
            if self._generation.get(room_id, 0) != generation and tries > 1:
                self._load(room_id, tries - 1)  # changed meanwhile: read it again
                return
            waiters = self._loading.pop(room_id, [])
            self._generation.pop(room_id, None)
            state = None if found is None else RoomState(*found)
            if state is not None:
                held = self.rooms.get(room_id)
                if held is not None:
                    state = held.state
                else:
                    self._cache[room_id] = state
                    while len(self._cache) > self.config.cache_rooms:
                        self._cache.popitem(last=False)
            for d in waiters:
                d.callback(state)

        def failed(failure: Failure) -> None:
            waiters = self._loading.pop(room_id, [])
            self._generation.pop(room_id, None)
            for d in waiters:
                d.errback(failure)

        self.store.load(room_id, self.now()).addCallbacks(loaded, failed)

    def _known_state(self, room_id: int) -> RoomState | None:
        held = self.rooms.get(room_id)
        if held is not None:
            return held.state
        return self._cache.get(room_id)

    def _changed(self, room_id: int) -> None:
        """A change to a room's row or moderation is coming from storage: a load in flight reads again."""
        if room_id in self._loading:
            self._generation[room_id] = self._generation.get(room_id, 0) + 1

    # -- counts

    def remote_count(self, room_id: int) -> int:
        nodes = self._remote.get(room_id)
        if not nodes:
            return 0
        return sum(count for count, _ in nodes.values())

    def member_count(self, room_id: int) -> int:
        held = self.rooms.get(room_id)
        return (len(held.members) if held is not None else 0) + self.remote_count(room_id)

    # -- create, list

    async def create(
        self, owner: User | None, name: str, topic: str, max_members: int, persist: bool, admin: bool = False
    ) -> RoomRow:
        name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(name) <= MAX_NAME:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a room name has 1 to {MAX_NAME} characters")
        if len(topic) > MAX_TOPIC:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a topic has at most {MAX_TOPIC} characters")
        if max_members == 0:
            max_members = self.config.max_members
        if not 1 <= max_members <= self.config.max_members:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"max_members is 1 to {self.config.max_members} (0: that)")
        if not admin and self.config.max_rooms_per_user == 0:
            raise ChatError(ErrorCode.TOO_MANY_ROOMS, "rooms are created by administrators here")
        owner_id = owner.user_id if owner is not None else 0
        limit = 0 if admin else self.config.max_rooms_per_user
        try:
            return await self.store.create(name, topic, owner_id, max_members, persist, self.now(), limit)
        except RoomRefused as e:
            raise ChatError(e.code, str(e)) from None

    def info(self, row: RoomRow) -> pb.CIMRoomInfo:
        return pb.CIMRoomInfo(
            room_id=row.room_id,
            name=row.name,
            topic=row.topic,
            owner_id=row.owner_id,
            member_count=self.member_count(row.room_id),
            max_members=row.max_members,
            persist_history=row.persist_history,
            create_time=row.created_at,
        )

    async def list_open(self, before_id: int, limit: int) -> tuple[list[RoomRow], bool]:
        limit = PAGE_DEFAULT if limit == 0 else min(limit, PAGE_MAX)
        rows = await self.store.list_open(before_id, limit + 1)
        return rows[:limit], len(rows) > limit

    # -- join, leave

    def _connection(self, session: Session) -> Connection:
        conn = self._connections.get(session)
        if conn is None:
            bucket = TokenBucket(
                self.clock, self.config.connection_messages_per_second, self.config.connection_message_burst
            )
            conn = self._connections[session] = Connection(bucket)
        return conn

    async def join(self, session: Session, room_id: int) -> tuple[LocalRoom, int]:
        """Put this connection in the room; returns the room held here and the user's mute end
        (0: not muted).  Joining again is not an error (the answer is the same)."""
        if not 0 < room_id <= MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "room_id must be a positive id")
        conn = self._connections.get(session)
        if conn is None or room_id not in conn.rooms:
            if conn is not None and len(conn.rooms) >= self.config.max_joined:
                raise ChatError(ErrorCode.TOO_MANY_ROOMS, f"a connection is in at most {self.config.max_joined} rooms")
            if room_id not in self.rooms and len(self.rooms) >= self.config.max_rooms_held:
                raise ChatError(ErrorCode.ROOM_BUSY, "this server holds as many rooms as it may: try later")
        state = await self.state(room_id)
        user_id = session.user_id
        now = self.clock.seconds()
        banned = RoomState.until(state.bans, user_id, now)
        if banned is not None:
            raise ChatError(ErrorCode.ROOM_BANNED, "banned from this room" + (f" until {banned}" if banned else ""))
        room = await self._hold(room_id, state)
        if session.closed:
            self._release_if_empty(room)
            raise ChatError(ErrorCode.ROOM_NOT_JOINED, "the connection closed")
        muted = RoomState.until(room.state.mutes, user_id, now) or 0
        if session in room.members:
            return room, muted
        conn = self._connection(session)
        if len(conn.rooms) >= self.config.max_joined:
            self._release_if_empty(room)
            raise ChatError(ErrorCode.TOO_MANY_ROOMS, f"a connection is in at most {self.config.max_joined} rooms")
        cap = min(room.state.row.max_members, self.config.max_members)
        if len(room.members) + self.remote_count(room_id) >= cap:
            self._release_if_empty(room)
            raise ChatError(ErrorCode.ROOM_FULL, f"the room has its {cap} members")
        nick = session.user.nick_name if session.user is not None else ""
        room.members[session] = Member(user_id, nick, now)
        conn.rooms.add(room_id)
        room.notice.add(True, (user_id, nick, room.state.role_of(user_id)))
        self._count_changed(room)
        return room, muted

    async def _hold(self, room_id: int, state: RoomState) -> LocalRoom:
        """The room held here, its recent messages read from storage by the first joiner."""
        room = self.rooms.get(room_id)
        if room is None:
            self._cache.pop(room_id, None)
            bucket = RoomBucket(self.clock, self.config.max_messages_per_second)
            room = self.rooms[room_id] = LocalRoom(room_id, state, self.config.recent, bucket)
            try:
                loaded = await self.store.recent(room_id, self.config.recent) if self.config.recent else []
            except Exception:
                self._release_if_empty(room)
                raise
            if self.rooms.get(room_id) is not room:  # closed meanwhile
                raise ChatError(ErrorCode.NOT_FOUND, "the room was closed")
            seen = {m.msg_id for m in loaded}
            unwritten = [m for m, _ in (*self._writing, *self._writes) if m.room_id == room_id and m.msg_id not in seen]
            arrived = [m for m in room.recent if m.msg_id not in seen]  # from other nodes meanwhile
            room.recent.clear()
            room.recent.extend(sorted([*loaded, *unwritten], key=lambda m: m.msg_id))
            room.recent.extend(arrived)
            room.loaded = True
            self._wake(room)
            return room
        if not room.loaded:
            d: defer.Deferred = defer.Deferred()
            # a first join is loading its recent messages: wait for it
            self._waiting_loads.setdefault(room_id, []).append(d)
            await d
            if self.rooms.get(room_id) is not room:
                raise ChatError(ErrorCode.NOT_FOUND, "the room was closed")
        return room

    def _wake(self, room: LocalRoom) -> None:
        for d in self._waiting_loads.pop(room.room_id, []):
            d.callback(None)

    def _release_if_empty(self, room: LocalRoom) -> None:
        if not room.members and room.loaded and self.rooms.get(room.room_id) is room:
            del self.rooms[room.room_id]  # a batch of this turn still goes out (self._dirty)
            if room.announced:
                self._announce_now(room.room_id)
        elif not room.loaded and not room.members and self.rooms.get(room.room_id) is room:
            del self.rooms[room.room_id]
            for d in self._waiting_loads.pop(room.room_id, []):
                d.callback(None)

    def leave(self, session: Session, room_id: int, notice: bool = True) -> bool:
        """Take the connection out of the room; False when it was not in it."""
        room = self.rooms.get(room_id)
        member = room.members.pop(session, None) if room is not None else None
        conn = self._connections.get(session)
        if conn is not None:
            conn.rooms.discard(room_id)
            if not conn.rooms:
                del self._connections[session]
        if member is None:
            return False
        if notice:
            room.notice.add(False, (member.user_id, member.nick, room.state.role_of(member.user_id)))
        self._count_changed(room)
        if not room.members:
            self._release_if_empty(room)
        return True

    def offline(self, session: Session) -> None:
        """``device/offline``: a closed connection leaves all its rooms."""
        conn = self._connections.get(session)
        if conn is not None:
            for room_id in list(conn.rooms):
                self.leave(session, room_id)

    def _count_changed(self, room: LocalRoom) -> None:
        room.changed = True
        count, last = len(room.members), room.announced
        if (count == 0) != (last == 0) or abs(count - last) >= max(10, last // 10):
            self._announce_now(room.room_id)

    # -- messages

    def send(self, session: Session, req: pb.CIMRoomMsgReq) -> RoomMsg | defer.Deferred:
        """Accept one message (or raise ChatError): it goes out at the end of this turn, or, when
        the moderation callback is asked, a Deferred of it, at the end of the turn its verdict
        arrives in (the room's other messages do not wait)."""
        room = self.rooms.get(req.room_id)
        member = room.members.get(session) if room is not None else None
        if member is None:
            raise ChatError(ErrorCode.ROOM_NOT_JOINED, "join the room first")
        conn = self._connections[session]
        if not conn.bucket.take():
            raise ChatError(ErrorCode.RATE_LIMITED, "too many room messages from this connection")
        state = room.state
        user_id = session.user_id
        if state.mutes:
            muted = RoomState.until(state.mutes, user_id, self.clock.seconds())
            if muted is not None:
                raise ChatError(ErrorCode.ROOM_MUTED, "muted in this room" + (f" until {muted}" if muted else ""))
        check_content(req.msg_type, req.msg_data, self.limits, self.messages.msg_types)
        client_msg_id = checked_client_msg_id(req.client_msg_id)
        role = state.role_of(user_id)
        if not room.bucket.take(role != MEMBER):
            self.busy += 1
            raise ChatError(ErrorCode.ROOM_BUSY, "the room is over its message rate: try again")
        data = req.msg_data
        if self.screen is not None:
            outgoing = Outgoing(room.room_id, client_msg_id, req.msg_type, data, session.client_type)
            verdict = self.screen(session.user, outgoing)  # raises a refusal; rewrites outgoing.data
            if verdict is not None:
                self.held += 1
                return verdict.addBoth(self._unhold).addCallback(self._screened, session, outgoing)
            data = outgoing.data
        return self._accept(room, member, client_msg_id, req.msg_type, data, role)

    def _unhold(self, result: object) -> object:
        self.held -= 1
        return result

    def _screened(self, _: object, session: Session, outgoing: Outgoing) -> RoomMsg:
        """The callback allowed the message (perhaps rewritten): accept it if the sender may still
        send it (the connection may have left, or the user been muted, meanwhile)."""
        room = self.rooms.get(outgoing.to_id)
        member = room.members.get(session) if room is not None else None
        if member is None or self.stopping:
            raise ChatError(ErrorCode.ROOM_NOT_JOINED, "the connection left the room while its message was moderated")
        user_id = session.user_id
        if room.state.mutes:
            muted = RoomState.until(room.state.mutes, user_id, self.clock.seconds())
            if muted is not None:
                raise ChatError(ErrorCode.ROOM_MUTED, "muted in this room" + (f" until {muted}" if muted else ""))
        role = room.state.role_of(user_id)
        return self._accept(room, member, outgoing.client_msg_id, outgoing.msg_type, outgoing.data, role)

    def _accept(
        self, room: LocalRoom, member: Member, client_msg_id: str, msg_type: int, data: bytes, role: int
    ) -> RoomMsg:
        """Give the message its id and put it in this turn's batch of its room."""
        msg = RoomMsg(
            room.room_id, self.next_msg_id(), client_msg_id, member.user_id, member.nick, msg_type, data, self.now(),
            role,
        )  # fmt: skip
        if not room.pending:
            self._dirty.append(room)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.clock.callLater(0, self._flush)
        room.pending.append(msg)
        self.accepted += 1
        return msg

    def _flush(self) -> None:
        """The end of a turn: each room's batch to its members here (one frame each), to the
        other nodes holding members (one payload per node), to its recent list and to storage."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        per_node: dict[str, list] = {}
        live = None
        for room in dirty:
            msgs, room.pending = room.pending, []
            if not msgs:
                continue
            self._deliver(room, msgs)
            self._store(room, msgs)
            remote = self._remote.get(room.room_id)
            if remote:
                if live is None:
                    live = self.api.presence.live_nodes()
                wire = None
                for node, (count, _) in remote.items():
                    if count and node in live:
                        if wire is None:
                            wire = [room.room_id, [m.wire() for m in msgs]]
                        per_node.setdefault(node, []).append(wire)
        for node, entries in per_node.items():
            self.api.send_to(node, "rooms/msgs", {"r": entries})
            self.payloads += 1

    def _deliver(self, room: LocalRoom, msgs: list[RoomMsg]) -> None:
        room.recent.extend(msgs)
        push = RoomMsgPush(room.room_id, msgs)
        for session in room.members:
            session.push(push)
        self.delivered += len(room.members)
        self.batches += 1

    def received_msgs(self, data: dict, from_node: str) -> None:
        """``rooms/msgs`` from another node: batches for the rooms held here."""
        entries = data.get("r")
        if not isinstance(entries, list):
            return
        for entry in entries:
            try:
                room_id, wire = entry
                room = self.rooms.get(room_id)
                if room is None:
                    continue
                msgs = [RoomMsg.from_wire(room_id, w) for w in wire]
            except (TypeError, ValueError):
                self.api.log.warn("a rooms/msgs entry from {node} could not be read", node=from_node)
                continue
            if not room.loaded:
                room.recent.extend(msgs)  # merged with storage's when the load ends
                continue
            if msgs:
                self._deliver(room, msgs)

    # -- storage of messages (batched, off the ack path)

    def _store(self, room: LocalRoom, msgs: list[RoomMsg]) -> None:
        persist = room.state.row.persist_history
        if not persist and self.config.recent == 0:
            return
        room_over = len(self._writes) + len(msgs) - self.config.max_pending_writes
        if room_over > 0:  # storage is far behind: the oldest unwritten go (bounded memory)
            self.dropped_writes += room_over
            del self._writes[:room_over]
            self.api.log.warn("rooms: storage is behind, {n} room messages not stored", n=room_over)
        self._writes.extend((m, persist) for m in msgs)
        if self._write_in_flight is None and self._write_timer is None:
            delay = 0 if len(self._writes) >= WRITE_BATCH else self.config.write_interval
            self._write_timer = self.clock.callLater(delay, self._write)

    def _write(self) -> defer.Deferred | None:
        self._write_timer = None
        if self._write_in_flight is not None or not self._writes:
            return self._write_in_flight
        batch, self._writes = self._writes[:WRITE_BATCH], self._writes[WRITE_BATCH:]
        self._writing = batch
        trim = sorted({m.room_id for m, persist in batch if not persist})
        self.api.flow.started()
        d = self.store.append([m.row() for m, _ in batch], trim, self.config.recent)
        self._write_in_flight = d
        d.addBoth(self.api.flow.finished)

        def written(_: object) -> None:
            self.writes += 1

        def failed(failure: Failure) -> None:
            self.write_failures += 1
            if len(self._writes) + len(batch) <= self.config.max_pending_writes:
                self._writes[:0] = batch  # tried again at the next write
            else:
                self.dropped_writes += len(batch)
            self.api.log.warn(
                "rooms: storing {n} messages failed: {error}", n=len(batch), error=failure.getErrorMessage()
            )

        def done(_: object) -> None:
            self._write_in_flight = None
            self._writing = []
            if self._writes and self._write_timer is None:
                self._write_timer = self.clock.callLater(self.config.write_interval, self._write)

        d.addCallbacks(written, failed)
        d.addBoth(done)
        return d

    def stop(self) -> defer.Deferred:
        """Write what is pending before storage closes (a message still waiting for the
        moderation callback is refused then: ROOM_NOT_JOINED)."""
        self.stopping = True
        if self._write_timer is not None and self._write_timer.active():
            self._write_timer.cancel()
        self._write_timer = None

        @defer.inlineCallbacks
        def drain():
            for _ in range(100):
                if self._write_in_flight is not None:
                    yield self._write_in_flight
                elif self._writes:
                    yield self._write()
                else:
                    return

        return drain()

    async def history(self, session: Session, room_id: int, before_id: int, limit: int) -> tuple[list[RoomMsg], bool]:
        state = await self.state(room_id)
        if RoomState.until(state.bans, session.user_id, self.clock.seconds()) is not None:
            raise ChatError(ErrorCode.ROOM_BANNED, "banned from this room")
        limit = PAGE_MAX if limit == 0 else min(limit, PAGE_MAX)
        msgs = await self.store.history(room_id, before_id, limit + 1)
        more = len(msgs) > limit
        return list(reversed(msgs[:limit])), more

    # -- members

    def members(self, room_id: int, size: int) -> tuple[int, list[tuple]]:
        size = SAMPLE_MAX if size == 0 else min(size, SAMPLE_MAX)
        seen: set[int] = set()
        sample: list[tuple] = []
        room = self.rooms.get(room_id)
        if room is not None:
            for member in room.members.values():
                if len(sample) >= size:
                    break
                if member.user_id not in seen:
                    seen.add(member.user_id)
                    sample.append((member.user_id, member.nick, room.state.role_of(member.user_id)))
        for _, published in (self._remote.get(room_id) or {}).values():
            for entry in published:
                if len(sample) >= size:
                    break
                if entry[0] not in seen:
                    seen.add(entry[0])
                    sample.append(tuple(entry))
        return self.member_count(room_id), sample

    # -- across nodes: counts, samples, notices

    def _sample(self, room: LocalRoom) -> list:
        out, seen = [], set()
        for member in room.members.values():
            if len(out) >= SAMPLE_PUBLISHED:
                break
            if member.user_id not in seen:
                seen.add(member.user_id)
                out.append([member.user_id, member.nick, room.state.role_of(member.user_id)])
        return out

    def _entry(self, room: LocalRoom, with_notice: bool) -> list:
        """What this node publishes of a room: its count, its sample (None: unchanged), and
        (at a tick) who came and went here since the last."""
        room.announced = len(room.members)
        sample = self._sample(room) if room.changed else None
        room.changed = False
        entry: list = [len(room.members), sample]
        if with_notice and room.notice:
            entry.append(room.notice.wire())
        return entry

    def _announce_now(self, room_id: int) -> None:
        self._announce.add(room_id)
        if not self._announce_scheduled:
            self._announce_scheduled = True
            self.clock.callLater(0, self._announce_flush)

    def _announce_flush(self) -> None:
        self._announce_scheduled = False
        rooms, self._announce = self._announce, set()
        out: dict[str, list] = {}
        for room_id in rooms:
            room = self.rooms.get(room_id)
            if room is None:
                out[str(room_id)] = [0, []]
            else:
                out[str(room_id)] = self._entry(room, False)
        if out:
            self.api.broadcast("rooms/counts", {"full": False, "rooms": out})

    def tick(self) -> None:
        """Every ``notice_interval``: publish this node's counts (all its rooms), and push each
        room's coalesced notice to its members here; forget nodes no longer heard from."""
        now = self.clock.seconds()
        live = self.api.presence.live_nodes()
        stale = self.config.notice_interval * 3
        for node in list(self._remote_rooms):
            if node not in live or now - self._heard.get(node, now) > stale:
                self._forget_node(node)
        if self.rooms or self._had_rooms:
            rooms = {str(room_id): self._entry(room, True) for room_id, room in self.rooms.items() if room.loaded}
            self.api.broadcast("rooms/counts", {"full": True, "rooms": rooms})
            self._had_rooms = bool(rooms)
        rate = self.config.max_messages_per_second
        for room_id, room in self.rooms.items():
            nodes = 1 + len(self._remote.get(room_id) or ())
            if room.bucket.rate != rate / nodes:
                room.bucket.share(rate / nodes)
        for room in self.rooms.values():
            local, remote = room.notice, room.remote_notice
            if not (local or remote):
                continue
            room.notice, room.remote_notice = Notice(), Notice()
            local.merge(remote.joined_count, remote.left_count, remote.joined, remote.left)
            count = self.member_count(room.room_id)
            names = count <= self.config.notices_max_members
            push = RoomEventPush(
                room.room_id, count, local.joined_count, local.left_count,
                tuple(local.joined) if names else (), tuple(local.left) if names else (),
            )  # fmt: skip
            for session in room.members:
                session.push(push)

    def received_counts(self, data: dict, from_node: str) -> None:
        """``rooms/counts`` from another node: its members per room (all of its rooms when
        ``full``), samples, and who came and went there."""
        rooms = data.get("rooms")
        if not isinstance(rooms, dict):
            return
        self._heard[from_node] = self.clock.seconds()
        known = self._remote_rooms.setdefault(from_node, set())
        seen: set[int] = set()
        for key, entry in rooms.items():
            try:
                room_id = int(key)
                count, sample = int(entry[0]), entry[1]
                if sample is not None:
                    sample = [(int(e[0]), str(e[1]), int(e[2])) for e in sample[:SAMPLE_PUBLISHED]]
                notice = entry[2] if len(entry) > 2 else None
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            seen.add(room_id)
            nodes = self._remote.setdefault(room_id, {})
            if count <= 0:
                nodes.pop(from_node, None)
                if not nodes:
                    del self._remote[room_id]
                known.discard(room_id)
            else:
                old = nodes.get(from_node)
                nodes[from_node] = (count, sample if sample is not None else (old[1] if old else []))
                known.add(room_id)
            room = self.rooms.get(room_id)
            if notice and room is not None:
                try:
                    jc, lc, joined, left = notice
                    room.remote_notice.merge(
                        int(jc), int(lc), [(int(e[0]), str(e[1]), int(e[2])) for e in joined[:NOTICE_NAMES]],
                        [(int(e[0]), str(e[1]), int(e[2])) for e in left[:NOTICE_NAMES]],
                    )  # fmt: skip
                except (TypeError, ValueError, IndexError):
                    pass
        if data.get("full"):
            for room_id in known - seen:
                self._drop_remote(room_id, from_node)
            known &= seen

    def _drop_remote(self, room_id: int, node: str) -> None:
        nodes = self._remote.get(room_id)
        if nodes is not None:
            nodes.pop(node, None)
            if not nodes:
                del self._remote[room_id]

    def _forget_node(self, node: str) -> None:
        for room_id in self._remote_rooms.pop(node, set()):
            self._drop_remote(room_id, node)
        self._heard.pop(node, None)

    def resumed(self, lost_at: float) -> None:
        """Broadcasts may have been missed: forget the cached moderation (held rooms read it
        again) and publish this node's counts at once."""
        self._cache.clear()
        for room_id, room in list(self.rooms.items()):
            if room.loaded:
                self._refresh(room_id)
            room.changed = True
        self.tick()

    def _refresh(self, room_id: int) -> None:
        def loaded(found: tuple | None) -> None:
            room = self.rooms.get(room_id)
            if room is None:
                return
            if found is None or found[0].closed_at:
                self._closed_here(room_id, 0)
                return
            fresh = RoomState(*found)
            state = room.state
            state.row, state.roles, state.mutes, state.bans = fresh.row, fresh.roles, fresh.mutes, fresh.bans
            if state.bans:  # bans whose broadcast was missed: their targets go now
                now = self.clock.seconds()
                for session, member in list(room.members.items()):
                    until = RoomState.until(state.bans, member.user_id, now)
                    if until is not None:
                        session.push(RoomModeratePush(room_id, member.user_id, BAN, 0, until))
                        self.leave(session, room_id)

        self.store.load(room_id, self.now()).addCallbacks(
            loaded,
            lambda f: self.api.log.warn("rooms: reloading room {r} failed: {e}", r=room_id, e=f.getErrorMessage()),
        )

    # -- moderation

    async def moderate(self, actor: User, room_id: int, target_id: int, action: int, duration: int) -> int:
        """Act on ``target_id`` in the room (see CIMRoomAction); returns the end time (0: none)."""
        if not 0 < target_id <= MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "target_user_id must be a positive id")
        if action not in (MUTE, UNMUTE, BAN, UNBAN, KICK, ADD_MODERATOR, REMOVE_MODERATOR):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"action {action} is not a moderation request")
        if duration > MAX_DURATION:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"duration is at most {MAX_DURATION} s (0: no end)")
        state = await self.state(room_id)
        by = actor.user_id
        mine, theirs = state.role_of(by), state.role_of(target_id)
        if target_id == by:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "not on oneself")
        if action in (ADD_MODERATOR, REMOVE_MODERATOR):
            if mine != OWNER:
                raise ChatError(ErrorCode.FORBIDDEN, "only the owner names moderators")
        elif mine == MEMBER or theirs >= mine:
            raise ChatError(ErrorCode.FORBIDDEN, "the owner moderates everyone, moderators ordinary members only")
        if action in (ADD_MODERATOR, MUTE, BAN) and not await self.messages.users.exists(target_id):
            raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {target_id}")
        now = self.now()
        until = now + duration if duration and action in (MUTE, BAN) else 0
        self._changed(room_id)
        try:
            if action in (ADD_MODERATOR, REMOVE_MODERATOR):
                await self.store.set_role(room_id, target_id, MODERATOR if action == ADD_MODERATOR else MEMBER)
            elif action in (MUTE, BAN):
                await self.store.sanction(room_id, target_id, action, until, by, now, MAX_SANCTIONS)
            elif action in (UNMUTE, UNBAN):
                await self.store.lift(room_id, target_id, MUTE if action == UNMUTE else BAN)
        except RoomRefused as e:
            raise ChatError(e.code, str(e)) from None
        change = {"room": room_id, "target": target_id, "action": int(action), "by": by, "until": until}
        self.apply(change)
        self.api.broadcast("rooms/moderated", change)
        return until

    def apply(self, change: dict) -> None:
        """A moderation change, made here or on another node: into the cached state, and to the
        target's connections here (KICK and BAN take them out)."""
        room_id, target, action, by, until = (change[k] for k in ("room", "target", "action", "by", "until"))
        self._changed(room_id)
        state = self._known_state(room_id)
        if state is not None:
            if action == ADD_MODERATOR:
                state.roles[target] = MODERATOR
            elif action == REMOVE_MODERATOR:
                state.roles.pop(target, None)
            elif action == MUTE:
                state.mutes[target] = until
            elif action == UNMUTE:
                state.mutes.pop(target, None)
            elif action == BAN:
                state.bans[target] = until
            elif action == UNBAN:
                state.bans.pop(target, None)
        room = self.rooms.get(room_id)
        if room is None:
            return
        targets = [s for s, m in room.members.items() if m.user_id == target]
        if not targets:
            return
        push = RoomModeratePush(room_id, target, action, by, until)
        for session in targets:
            session.push(push)
            if action in (KICK, BAN):
                self.leave(session, room_id)

    def moderated_elsewhere(self, data: dict, from_node: str) -> None:
        try:
            change = {k: int(data[k]) for k in ("room", "target", "action", "by", "until")}
        except (KeyError, TypeError, ValueError):
            return
        self.apply(change)

    async def close(self, actor: User | None, room_id: int) -> RoomRow:
        """Close the room (its owner, or an administrator: ``actor`` None)."""
        if not 0 < room_id <= MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "room_id must be a positive id")
        state = await self.state(room_id)
        by = actor.user_id if actor is not None else 0
        if actor is not None and state.role_of(by) != OWNER:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner closes a room")
        self._changed(room_id)
        await self.store.close(room_id, max(1, self.now()))  # closed_at 0 means open
        self._closed_here(room_id, by)
        self.api.broadcast("rooms/closed", {"room": room_id, "by": by})
        return state.row

    def _closed_here(self, room_id: int, by: int) -> None:
        self._cache.pop(room_id, None)
        self._remote.pop(room_id, None)
        room = self.rooms.get(room_id)
        if room is None:
            return
        push = RoomModeratePush(room_id, 0, CLOSED, by, 0)
        for session in list(room.members):
            session.push(push)
            self.leave(session, room_id, notice=False)
        self.rooms.pop(room_id, None)
        room.pending.clear()  # accepted this turn, never sent: the room is closed
        for d in self._waiting_loads.pop(room_id, []):
            d.callback(None)

    def closed_elsewhere(self, data: dict, from_node: str) -> None:
        room_id, by = data.get("room"), data.get("by", 0)
        if type(room_id) is int and type(by) is int:
            self._changed(room_id)
            self._closed_here(room_id, by)

    async def account_deleted(self, user: User) -> None:
        for room_id in await self.store.forget_user(user.user_id, max(1, self.now())):
            self._closed_here(room_id, 0)
            self.api.broadcast("rooms/closed", {"room": room_id, "by": 0})

    # -- admin API

    def row_json(self, row: RoomRow) -> dict:
        return {
            "room_id": row.room_id,
            "name": row.name,
            "topic": row.topic,
            "ownerId": row.owner_id,
            "maxMembers": row.max_members,
            "persistHistory": row.persist_history,
            "createdAt": row.created_at,
            "closedAt": row.closed_at,
            "memberCount": 0 if row.closed_at else self.member_count(row.room_id),
        }


def _msgs_pb(msgs: Iterable[RoomMsg]) -> list[pb.CIMRoomMsg]:
    return [m.to_pb() for m in msgs]


ROOM_JSON = obj(
    ["room_id", "name", "ownerId", "maxMembers", "persistHistory", "createdAt", "closedAt", "memberCount"],
    room_id=ID,
    name=string(1, MAX_NAME),
    topic=string(0, MAX_TOPIC),
    ownerId=integer(0),
    maxMembers=integer(1),
    persistHistory=boolean(),
    createdAt=integer(0),
    closedAt=integer(0),
    memberCount=integer(0),
)


def setup(api: ModuleAPI) -> Rooms:
    """The room commands, their pushes, the cross-node commands, the admin routes."""
    config: Config = api.config
    messages = api.depends("messages")
    rooms = Rooms(api, messages, api.open_store(IRoomStore, SQLRoomStore), config)
    api.push_kind(RoomMsgPush, name="room_msgs", cmd=Cmd.ROOM_MSG_NOTIFY, encode=room_msg_notify)
    api.push_kind(RoomEventPush, name="room_event", cmd=Cmd.ROOM_EVENT_NOTIFY, encode=room_event_notify)
    api.push_kind(RoomModeratePush, name="room_moderate", cmd=Cmd.ROOM_MODERATE_NOTIFY, encode=room_moderate_notify)
    api.cluster_command("rooms/msgs", rooms.received_msgs)
    api.cluster_command("rooms/counts", rooms.received_counts)
    api.cluster_command("rooms/moderated", rooms.moderated_elsewhere)
    api.cluster_command("rooms/closed", rooms.closed_elsewhere)
    api.hook("device/offline", rooms.offline)
    api.hook("cluster/resumed", rooms.resumed)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(rooms.account_deleted(user)))
    api.periodic(config.notice_interval, rooms.tick)
    api.on_stop(rooms.stop)
    ok = ErrorCode.SUCCESS

    @api.request(Cmd.ROOM_CREATE_REQ)
    async def create(session: Session, req: pb.CIMRoomCreateReq) -> pb.CIMRoomCreateRsp:
        row = await rooms.create(session.user, req.name, req.topic, req.max_members, req.persist_history)
        return pb.CIMRoomCreateRsp(user_id=session.user_id, result_code=ok, result_string="ok", room=rooms.info(row))

    @api.request(Cmd.ROOM_LIST_REQ)
    async def list_rooms(session: Session, req: pb.CIMRoomListReq) -> pb.CIMRoomListRsp:
        rows, more = await rooms.list_open(req.before_room_id, req.limit)
        return pb.CIMRoomListRsp(
            user_id=session.user_id, result_code=ok, result_string="ok", rooms=[rooms.info(r) for r in rows],
            has_more=more,
        )  # fmt: skip

    @api.request(Cmd.ROOM_JOIN_REQ)
    async def join(session: Session, req: pb.CIMRoomJoinReq) -> pb.CIMRoomJoinRsp:
        room, muted = await rooms.join(session, req.room_id)
        return pb.CIMRoomJoinRsp(
            user_id=session.user_id,
            result_code=ok,
            result_string="ok",
            room=rooms.info(room.state.row),
            role=room.state.role_of(session.user_id),
            recent=_msgs_pb(room.recent),
            muted_until=muted,
        )

    @api.request(Cmd.ROOM_LEAVE_REQ)
    async def leave(session: Session, req: pb.CIMRoomLeaveReq) -> pb.CIMRoomLeaveRsp:
        if not rooms.leave(session, req.room_id):
            raise ChatError(ErrorCode.ROOM_NOT_JOINED, "this connection is not in the room")
        return pb.CIMRoomLeaveRsp(user_id=session.user_id, room_id=req.room_id, result_code=ok, result_string="ok")

    def room_msg(session: Session, seq: int, req: pb.CIMRoomMsgReq) -> defer.Deferred | None:
        sent = rooms.send(session, req)
        if not isinstance(sent, RoomMsg):  # held by the moderation callback: answered on its verdict
            return sent.addCallback(lambda msg: accepted(session, seq, msg))
        accepted(session, seq, sent)
        return None

    def accepted(session: Session, seq: int, msg: RoomMsg) -> None:
        session.answer(
            Cmd.ROOM_MSG_RSP,
            seq,
            pb.CIMRoomMsgRsp(
                user_id=msg.from_user_id,
                room_id=msg.room_id,
                client_msg_id=msg.client_msg_id,
                msg_id=msg.msg_id,
                result_code=ok,
                result_string="ok",
                create_time=msg.create_time,
            ),
        )

    api.command(Cmd.ROOM_MSG_REQ, room_msg)
    if "moderation" in api.node_config.features.enabled:  # optional: rooms work without it
        rooms.screen = api.depends("moderation").room_check()

    @api.request(Cmd.ROOM_MEMBERS_REQ)
    async def members(session: Session, req: pb.CIMRoomMembersReq) -> pb.CIMRoomMembersRsp:
        await rooms.state(req.room_id)
        count, sample = rooms.members(req.room_id, req.sample_size)
        return pb.CIMRoomMembersRsp(
            user_id=session.user_id, room_id=req.room_id, result_code=ok, result_string="ok", member_count=count,
            sample=[_member_pb(e) for e in sample],
        )  # fmt: skip

    @api.request(Cmd.ROOM_MODERATE_REQ)
    async def moderate(session: Session, req: pb.CIMRoomModerateReq) -> pb.CIMRoomModerateRsp:
        await rooms.moderate(session.user, req.room_id, req.target_user_id, req.action, req.duration)
        return pb.CIMRoomModerateRsp(user_id=session.user_id, room_id=req.room_id, result_code=ok, result_string="ok")

    @api.request(Cmd.ROOM_CLOSE_REQ)
    async def close(session: Session, req: pb.CIMRoomCloseReq) -> pb.CIMRoomCloseRsp:
        await rooms.close(session.user, req.room_id)
        return pb.CIMRoomCloseRsp(user_id=session.user_id, room_id=req.room_id, result_code=ok, result_string="ok")

    @api.request(Cmd.ROOM_HISTORY_REQ)
    async def history(session: Session, req: pb.CIMRoomHistoryReq) -> pb.CIMRoomHistoryRsp:
        msgs, more = await rooms.history(session, req.room_id, req.before_msg_id, req.limit)
        return pb.CIMRoomHistoryRsp(
            user_id=session.user_id, room_id=req.room_id, result_code=ok, result_string="ok", msgs=_msgs_pb(msgs),
            has_more=more,
        )  # fmt: skip

    _admin_routes(api, rooms)
    return rooms


def _admin_routes(api: ModuleAPI, rooms: Rooms) -> None:
    """POST /admin/rooms, GET /admin/rooms (paged), GET and DELETE /admin/rooms/{room_id}."""

    def route(method: str, path: str, handler: Any, **kwargs: Any) -> None:
        api.route(method, path, handler, auth="admin", **kwargs)

    async def create(call: HttpCall) -> dict:
        """Create a room: {"name", "topic"?, "ownerId"? (0: the administrators'), "maxMembers"?,
        "persistHistory"?}."""
        body = call.json()
        name, topic = body.get("name"), body.get("topic", "")
        owner_id, max_members = body.get("ownerId", 0), body.get("maxMembers", 0)
        persist = body.get("persistHistory", False)
        if not isinstance(name, str) or not isinstance(topic, str):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, '"name" and "topic" must be strings')
        for key, value in (("ownerId", owner_id), ("maxMembers", max_members)):
            if type(value) is not int or not 0 <= value <= MAX_ID:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, f'"{key}" must be an integer >= 0')
        if type(persist) is not bool:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, '"persistHistory" must be true or false')
        owner = None
        if owner_id:
            owner = await api.store.user_by_id(owner_id)
            if owner is None:
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {owner_id}")
        row = await rooms.create(owner, name, topic, max_members, persist, admin=True)
        return {"room": rooms.row_json(row)}

    async def list_all(call: HttpCall) -> dict:
        """Rooms by id, closed ones too, paged (after: the last room_id of the previous page)."""
        after = call.query_int("after", 0, minimum=0)
        limit = min(call.query_int("limit", PAGE_DEFAULT, minimum=1), PAGE_MAX)
        rows = await rooms.store.list_rooms(after, limit)
        return {"rooms": [rooms.row_json(r) for r in rows], "next": rows[-1].room_id if rows else after}

    async def inspect(call: HttpCall) -> dict:
        """A room, with its member count across the cluster and its moderators."""
        state = await rooms._state(call.params["room_id"])
        if state is None:
            raise ChatError(ErrorCode.NOT_FOUND, "no such room")
        return {"room": rooms.row_json(state.row), "moderators": sorted(state.roles)}

    async def close(call: HttpCall) -> dict:
        """Close a room: everyone in it is told (ROOM_MODERATE_NOTIFY CLOSED) and is out."""
        row = await rooms.close(None, call.params["room_id"])
        return {"room_id": row.room_id, "closed": True}

    one = obj(["room"], room=ROOM_JSON)
    route(
        "POST",
        "/admin/rooms",
        create,
        request=obj(
            ["name"],
            name=string(1, MAX_NAME),
            topic=string(0, MAX_TOPIC),
            ownerId=integer(0, openapi.ID_MAX),
            maxMembers=integer(0, openapi.ID_MAX),
            persistHistory=boolean(),
        ),
        response=one,
    )
    route(
        "GET",
        "/admin/rooms",
        list_all,
        query=openapi.paging(PAGE_DEFAULT, PAGE_MAX),
        response=obj(["rooms", "next"], rooms=array(ROOM_JSON), next=integer(0)),
    )
    route(
        "GET",
        "/admin/rooms/{room_id:int}",
        inspect,
        response=obj(["room", "moderators"], room=ROOM_JSON, moderators=array(ID)),
    )
    route(
        "DELETE",
        "/admin/rooms/{room_id:int}",
        close,
        response=obj(["room_id", "closed"], room_id=ID, closed=boolean()),
    )
