"""Do-not-disturb: silence notifications, globally (all day or in a daily window in the user's
time zone) or per conversation, without touching delivery.

DND changes *notifications* only: messages still reach every online device at once, unread counts
are unchanged.  What it decides is :meth:`DoNotDisturb.notify_wanted`, which the offline-push
feature asks before it notifies a user of a message: no for a muted conversation, no while the
global setting is on (and, with a window, while the user's local time is inside it), yes
otherwise; a message that mentions the user (or @all) notifies anyway unless the user turned
that off (``mentions_silenced``).  The conversation list (0x0201) marks muted conversations
(``CIMContactSessionInfo.muted``); global DND marks none (docs/dnd.md says why).

Settings are kept per user in memory (bounded, least recently used out), so ``notify_wanted``
answers from memory; a change drops the user's entry on every node (cluster command
``dnd/changed``) and is pushed to all of the user's devices (DND_NOTIFY).
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import ConversationEntry, Message, Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

MINUTES_PER_DAY = 24 * 60
MAX_TIME_ZONE = 64  # characters of an IANA name ("America/Argentina/ComodRivadavia" is 32)
_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)


@dataclass
class Config:
    """[dnd]: how many conversations a user may mute, and how many users' settings a node keeps
    in memory."""

    max_muted: int = 1000
    cache_users: int = 100_000

    def validate(self) -> None:
        if not 1 <= self.max_muted <= 100_000:
            raise ConfigError("dnd.max_muted must be between 1 and 100000")
        if self.cache_users < 0:
            raise ConfigError("dnd.cache_users must be >= 0 (0: no cache, storage is read each time)")


# -- the settings


@dataclass(frozen=True, slots=True)
class DndSettings:
    """A user's global do-not-disturb (see CIMDndSettings in cim.proto)."""

    enabled: bool = False
    window_start: int = 0  # minutes after local midnight; == window_end: all day
    window_end: int = 0
    time_zone: str = ""  # IANA name; "": UTC
    mentions_silenced: bool = False
    updated_at: int = 0

    def active_at(self, now: float) -> bool:
        """Whether these settings silence notifications at unix time ``now``."""
        if not self.enabled:
            return False
        start, end = self.window_start, self.window_end
        if start == end:
            return True
        local = datetime.datetime.fromtimestamp(now, zone(self.time_zone))
        minute = local.hour * 60 + local.minute
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end  # the window crosses midnight


@dataclass(frozen=True, slots=True)
class Mute:
    """A muted conversation, as the user files it (1:1: the peer; groups: the group)."""

    session_type: int
    session_id: int
    muted_at: int


@dataclass(slots=True)
class UserDnd:
    """Everything DND knows of one user: the global setting and the muted conversations."""

    settings: DndSettings = field(default_factory=DndSettings)
    muted: dict[tuple[int, int], int] = field(default_factory=dict)  # (type, id) -> muted_at


_ZONES: dict[str, ZoneInfo] = {}


def zone(name: str) -> ZoneInfo:
    """The time zone ``name`` ("" is UTC); ChatError DND_BAD_TIME_ZONE when there is none."""
    name = name or "UTC"
    found = _ZONES.get(name)
    if found is not None:
        return found
    if len(name) > MAX_TIME_ZONE or not name.isascii() or name.startswith(("/", ".")) or ".." in name:
        raise ChatError(ErrorCode.DND_BAD_TIME_ZONE, f"{name[:MAX_TIME_ZONE]!r} is not an IANA time zone")
    try:
        found = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ChatError(ErrorCode.DND_BAD_TIME_ZONE, f"{name!r} is not an IANA time zone") from None
    if len(_ZONES) < 1000:
        _ZONES[name] = found
    return found


def checked_settings(settings: pb.CIMDndSettings, now: int) -> DndSettings:
    """The settings a client asked for, or ChatError (window out of range, unknown zone)."""
    for name in ("window_start", "window_end"):
        if getattr(settings, name) >= MINUTES_PER_DAY:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{name} is minutes after midnight: 0 to 1439")
    zone(settings.time_zone)
    return DndSettings(
        enabled=settings.enabled,
        window_start=settings.window_start,
        window_end=settings.window_end,
        time_zone=settings.time_zone,
        mentions_silenced=settings.mentions_silenced,
        updated_at=now,
    )


# -- storage


class DndRefused(Exception):
    """A change the store refused in its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class IDndStore(Interface):
    """The dnd feature's storage (a facet: an SQL backend gets :class:`SQLDndStore`; tested by
    ``coffeechat.testing.conformance_dnd.DndStoreConformanceTests``)."""

    def load(user_id: int):
        """Fire with ``(DndSettings or None, [Mute])``: the user's global setting (None: never
        set) and muted conversations, the most recently muted first (then by type and id)."""

    def save_settings(user_id: int, settings: DndSettings):
        """Replace the user's global setting; fires with None."""

    def set_muted(user_id: int, session_type: int, session_id: int, muted: bool, now: int, max_muted: int):
        """Mute (at ``now``) or unmute one conversation of the user; fire with True when that
        changed something, False when it was so already (a mute keeps its first time).  A new
        mute beyond ``max_muted`` fails with :class:`DndRefused` (TOO_MANY_MUTES), in the same
        transaction as the count (concurrent mutes of one user on several nodes cannot pass it)."""

    def forget_user(user_id: int):
        """Erase the user's setting and mutes (a deleted account); fires with None."""


_SETTINGS_COLS = "enabled, window_start, window_end, time_zone, mentions_silenced, updated_at"


def _lock_user(txn: ISQLTransaction, user_id: int) -> None:
    """PostgreSQL: serialise one user's writers (the count and the insert must not race across
    nodes); SQLite has one writer."""
    if txn.engine == "postgres":
        txn.execute("SELECT user_id FROM users WHERE user_id = ? FOR UPDATE", (user_id,))


def _load_txn(txn: ISQLTransaction, user_id: int) -> tuple[DndSettings | None, list[Mute]]:
    row = txn.execute(f"SELECT {_SETTINGS_COLS} FROM dnd_settings WHERE user_id = ?", (user_id,)).fetchone()
    settings = None
    if row is not None:
        settings = DndSettings(bool(row[0]), int(row[1]), int(row[2]), row[3], bool(row[4]), int(row[5]))
    mutes = txn.execute(
        "SELECT session_type, session_id, muted_at FROM dnd_mutes WHERE user_id = ? "
        "ORDER BY muted_at DESC, session_type, session_id",
        (user_id,),
    ).fetchall()
    return settings, [Mute(int(t), int(i), int(at)) for t, i, at in mutes]


def _save_txn(txn: ISQLTransaction, user_id: int, s: DndSettings) -> None:
    txn.execute(
        f"INSERT INTO dnd_settings (user_id, {_SETTINGS_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET enabled = excluded.enabled, window_start = excluded.window_start, "
        "window_end = excluded.window_end, time_zone = excluded.time_zone, "
        "mentions_silenced = excluded.mentions_silenced, updated_at = excluded.updated_at",
        (user_id, s.enabled, s.window_start, s.window_end, s.time_zone, s.mentions_silenced, s.updated_at),
    )


def _set_muted_txn(
    txn: ISQLTransaction, user_id: int, session_type: int, session_id: int, muted: bool, now: int, max_muted: int
) -> bool:
    key = (user_id, session_type, session_id)
    if not muted:
        gone = txn.execute(
            "DELETE FROM dnd_mutes WHERE user_id = ? AND session_type = ? AND session_id = ? RETURNING session_id", key
        ).fetchall()
        return bool(gone)
    _lock_user(txn, user_id)
    found = txn.execute(
        "SELECT muted_at FROM dnd_mutes WHERE user_id = ? AND session_type = ? AND session_id = ?", key
    ).fetchone()
    if found is not None:
        return False
    (count,) = txn.execute("SELECT count(*) FROM dnd_mutes WHERE user_id = ?", (user_id,)).fetchone()
    if count >= max_muted:
        raise DndRefused(ErrorCode.TOO_MANY_MUTES, f"at most {max_muted} conversations may be muted")
    txn.execute("INSERT INTO dnd_mutes (user_id, session_type, session_id, muted_at) VALUES (?, ?, ?, ?)", (*key, now))
    return True


def _forget_txn(txn: ISQLTransaction, user_id: int) -> None:
    txn.execute("DELETE FROM dnd_settings WHERE user_id = ?", (user_id,))
    txn.execute("DELETE FROM dnd_mutes WHERE user_id = ?", (user_id,))


@implementer(IDndStore)
class SQLDndStore:
    """IDndStore written once for every SQL backend (its tables: dnd.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def load(self, user_id: int) -> defer.Deferred:
        return self.db.run_read("dnd_load", _load_txn, int(user_id))

    def save_settings(self, user_id: int, settings: DndSettings) -> defer.Deferred:
        return self.db.run_write("dnd_save", _save_txn, int(user_id), settings)

    def set_muted(
        self, user_id: int, session_type: int, session_id: int, muted: bool, now: int, max_muted: int
    ) -> defer.Deferred:
        return self.db.run_write(
            "dnd_mute",
            _set_muted_txn,
            int(user_id),
            int(session_type),
            int(session_id),
            bool(muted),
            int(now),
            int(max_muted),
        )

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("dnd_forget_user", _forget_txn, int(user_id))


# -- the push


@dataclass(slots=True)
class DndPush(Push):
    """DND_NOTIFY to the user's devices: the global setting changed (``what`` "settings") or one
    conversation's mute (``what`` "conversation")."""

    user_id: int
    what: str
    enabled: bool = False
    window_start: int = 0
    window_end: int = 0
    time_zone: str = ""
    mentions_silenced: bool = False
    session_type: int = 0
    session_id: int = 0
    muted: bool = False
    muted_at: int = 0


def settings_pb(s: DndSettings) -> pb.CIMDndSettings:
    return pb.CIMDndSettings(
        enabled=s.enabled,
        window_start=s.window_start,
        window_end=s.window_end,
        time_zone=s.time_zone,
        mentions_silenced=s.mentions_silenced,
    )


def dnd_notify(push: DndPush) -> pb.CIMDndNotify:
    notify = pb.CIMDndNotify(user_id=push.user_id)
    if push.what == "settings":
        notify.settings.CopyFrom(
            settings_pb(
                DndSettings(push.enabled, push.window_start, push.window_end, push.time_zone, push.mentions_silenced)
            )
        )
    else:
        notify.conversation.CopyFrom(
            pb.CIMDndConversation(
                session_type=push.session_type,
                session_id=push.session_id,
                muted=push.muted,
                muted_time=push.muted_at,
            )
        )
    return notify


# -- the service


class DoNotDisturb:
    """Keeps users' DND settings (cached per node) and answers whether a message should notify."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IDndStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.clock = api.clock
        self._cache: OrderedDict[int, UserDnd] = OrderedDict()
        # The loads in flight, with who waits for each; forget() drops a user's, so that a load
        # that started before a change is not cached when it ends.
        self._loading: dict[int, list[defer.Deferred]] = {}
        self.loads = 0  # storage reads made for the cache, for tests and metrics

    # -- the cache

    def of(self, user_id: int) -> defer.Deferred:
        """Fire with the user's :class:`UserDnd`: from memory when cached (already fired); one
        storage read however many ask at once."""
        cached = self._cache.get(user_id)
        if cached is not None:
            self._cache.move_to_end(user_id)
            return defer.succeed(cached)
        d: defer.Deferred = defer.Deferred()
        waiters = self._loading.get(user_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._loading[user_id] = waiters = [d]
        self.loads += 1
        load = self.store.load(user_id)
        load.addCallback(self._loaded, user_id, waiters)
        load.addBoth(self._tell, user_id, waiters)
        return d

    def _tell(self, result: Any, user_id: int, waiters: list[defer.Deferred]) -> None:
        if self._loading.get(user_id) is waiters:
            del self._loading[user_id]
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

    def _loaded(
        self, found: tuple[DndSettings | None, list[Mute]], user_id: int, waiters: list[defer.Deferred]
    ) -> UserDnd:
        settings, mutes = found
        entry = UserDnd(settings or DndSettings(), {(m.session_type, m.session_id): m.muted_at for m in mutes})
        if self.config.cache_users and self._loading.get(user_id) is waiters:  # not forgotten meanwhile
            self._cache[user_id] = entry
            while len(self._cache) > self.config.cache_users:
                self._cache.popitem(last=False)
        return entry

    def forget(self, user_id: int) -> None:
        """Drop the user's cached settings (they changed here or on another node)."""
        self._cache.pop(user_id, None)
        self._loading.pop(user_id, None)  # a load in flight still answers its waiters, uncached

    def resumed(self, lost_at: float) -> None:
        """The cluster subscription was lost: ``dnd/changed`` broadcasts may have been missed, so
        forget everything cached (idempotent: it may be called twice)."""
        self._cache.clear()
        self._loading.clear()

    def changed_elsewhere(self, data: dict, from_node: str) -> None:
        user_id = data.get("user_id")
        if type(user_id) is int:
            self.forget(user_id)

    def _changed(self, user_id: int) -> None:
        self.forget(user_id)
        self.api.broadcast("dnd/changed", {"user_id": user_id})

    # -- the decision

    def notify_wanted(
        self, user_id: int, message: Message, mentions: Iterable[int] = (), at_all: bool = False
    ) -> defer.Deferred:
        """Fire with whether ``user_id`` should be notified (an offline push) of ``message``:
        never of their own; a mention of them (or @all) notifies unless they silenced mentions;
        else not in a muted conversation, nor while global DND is on (inside its window, in their
        time zone, by ``api.clock``)."""
        if message.sender_id == user_id:
            return defer.succeed(False)
        cached = self._cache.get(user_id)
        if cached is not None:
            self._cache.move_to_end(user_id)  # least recently used out
            return defer.succeed(self._wanted(cached, user_id, message, mentions, at_all))
        return self.of(user_id).addCallback(self._wanted, user_id, message, mentions, at_all)

    def _wanted(self, dnd: UserDnd, user_id: int, message: Message, mentions: Iterable[int], at_all: bool) -> bool:
        settings = dnd.settings
        if (at_all or user_id in mentions) and not settings.mentions_silenced:
            return True
        if dnd.muted and (message.session_type, message.session_id_for(user_id)) in dnd.muted:
            return False
        try:
            return not settings.active_at(self.clock.seconds())
        except ChatError:  # a zone the server lost since it was set (tzdata update): treat as UTC
            return not replace(settings, time_zone="").active_at(self.clock.seconds())

    # -- the commands

    async def get(self, user_id: int) -> tuple[DndSettings, list[Mute], bool]:
        dnd = await self.of(user_id)
        mutes = [Mute(t, i, at) for (t, i), at in dnd.muted.items()]
        mutes.sort(key=lambda m: (-m.muted_at, m.session_type, m.session_id))
        return dnd.settings, mutes, self._active(dnd.settings)

    def _active(self, settings: DndSettings) -> bool:
        try:
            return settings.active_at(self.clock.seconds())
        except ChatError:
            return False

    async def set_settings(self, user: User, device: Any, wanted: pb.CIMDndSettings) -> tuple[DndSettings, bool]:
        settings = checked_settings(wanted, int(self.clock.seconds()))
        await self.store.save_settings(user.user_id, settings)
        self._changed(user.user_id)
        s = settings
        push = DndPush(
            user.user_id, "settings", s.enabled, s.window_start, s.window_end, s.time_zone, s.mentions_silenced
        )
        self.api.router.push(user.user_id, push, device)
        return settings, self._active(settings)

    async def set_muted(self, user: User, device: Any, session_type: int, session_id: int, muted: bool) -> bool:
        """Mute or unmute a conversation: muting needs one the user can see (``messages.locate``;
        a 1:1 peer must exist); unmuting works on any (a group one has left)."""
        if session_type not in (_SINGLE, _GROUP):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_type must be 1 (single) or 2 (group)")
        if not 0 < session_id <= MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_id must be a positive id")
        if session_type == _SINGLE and session_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "a 1:1 conversation is with another user")
        if muted:
            await self.messages.locate(user.user_id, session_type, session_id)
            if session_type == _SINGLE and not await self.messages.users.exists(session_id):
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {session_id}")
        now = int(self.clock.seconds())
        try:
            changed = await self.store.set_muted(
                user.user_id, session_type, session_id, muted, now, self.config.max_muted
            )
        except DndRefused as e:
            raise ChatError(e.code, str(e)) from None
        if changed:
            self._changed(user.user_id)
            push = DndPush(user.user_id, "conversation", session_type=session_type, session_id=session_id)
            push.muted, push.muted_at = muted, now
            self.api.router.push(user.user_id, push, device)
        return muted

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: the user's setting and mutes go (others' mutes of a conversation
        with them stay: the conversation's history stays too)."""
        await self.store.forget_user(user.user_id)
        self._changed(user.user_id)

    # -- the conversation list

    def mark(self, user: User, entries: list[ConversationEntry]) -> defer.Deferred | list[ConversationEntry]:
        """Session view (priority 20): ``muted`` on the conversations the user muted."""
        cached = self._cache.get(user.user_id)
        if cached is not None:
            self._cache.move_to_end(user.user_id)
            return self._marked(cached, entries)
        return self.of(user.user_id).addCallback(self._marked, entries)

    @staticmethod
    def _marked(dnd: UserDnd, entries: list[ConversationEntry]) -> list[ConversationEntry]:
        muted = dnd.muted
        if not muted:
            return entries
        return [replace(e, muted=True) if (e.session_type, e.session_id) in muted else e for e in entries]


def muted_conversation(m: Mute) -> pb.CIMDndConversation:
    return pb.CIMDndConversation(
        session_type=m.session_type, session_id=m.session_id, muted=True, muted_time=m.muted_at
    )


def setup(api: ModuleAPI) -> DoNotDisturb:
    """The DND commands and push, the conversation-list mark and the cross-node invalidation."""
    messages = api.depends("messages")
    dnd = DoNotDisturb(api, messages, api.open_store(IDndStore, SQLDndStore), api.config)
    api.push_kind(DndPush, name="dnd", cmd=Cmd.DND_NOTIFY, encode=dnd_notify)
    api.cluster_command("dnd/changed", dnd.changed_elsewhere)
    api.hook("cluster/resumed", dnd.resumed)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(dnd.account_deleted(user)))
    messages.add_session_view(dnd.mark, priority=20)

    @api.request(Cmd.DND_GET_REQ)
    async def get(session: Session, req: pb.CIMDndGetReq) -> pb.CIMDndGetRsp:
        settings, mutes, active = await dnd.get(session.user_id)
        return pb.CIMDndGetRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            settings=settings_pb(settings),
            muted_list=[muted_conversation(m) for m in mutes],
            active=active,
        )

    @api.request(Cmd.DND_SET_REQ)
    async def set_settings(session: Session, req: pb.CIMDndSetReq) -> pb.CIMDndSetRsp:
        settings, active = await dnd.set_settings(session.user, session, req.settings)
        return pb.CIMDndSetRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            settings=settings_pb(settings),
            active=active,
        )

    @api.request(Cmd.DND_MUTE_REQ)
    async def mute(session: Session, req: pb.CIMDndMuteReq) -> pb.CIMDndMuteRsp:
        muted = await dnd.set_muted(session.user, session, req.session_type, req.session_id, req.muted)
        return pb.CIMDndMuteRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            session_type=req.session_type,
            session_id=req.session_id,
            muted=muted,
        )

    return dnd
