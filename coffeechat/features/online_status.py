"""Online status: online, offline and last seen of my friends and conversation partners, on
request (ONLINE_STATUS_REQ) and pushed when it changes (ONLINE_STATUS_NOTIFY), across nodes,
with a per-user switch that hides it (ONLINE_PRIVACY_REQ).

The hot path is a login or logout: all it costs here is two dict writes (the user is marked
"changed" and their last-seen time noted), and at a user's first login on this node, loading whom
they watch (their friends and recent 1:1 partners, bounded: two reads).  Everything else is
done once per ``interval`` for all users that changed meanwhile, which is what coalesces: a user
flapping online and offline gives at most one change per interval (the state at the end wins),
and a watcher is pushed only when the state it was last told differs.

Across nodes: the node where a device logged in or out decides the user's state once per
interval (online if a device is here, else the shared presence is asked, in one round trip for
the batch, whether one is elsewhere) and broadcasts the changes; each node pushes them to its
own devices of the watchers.  Last-seen times are kept in memory and written in one batch every
``flush_interval`` seconds (and at stop), so they survive a restart.

Who sees what: only my friends and recent conversation partners (others get UNKNOWN); a user who
hides their status is UNKNOWN to everyone but themselves, without a last-seen time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Push, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

UNKNOWN = pb.kCIM_ONLINE_STATE_UNKNOWN
ONLINE = pb.kCIM_ONLINE_STATE_ONLINE
OFFLINE = pb.kCIM_ONLINE_STATE_OFFLINE
_CHANGES = "online_status/changes"  # cluster command: [[user, state, last_seen], ...]
_PRIVACY = "online_status/privacy"  # cluster command: {"u": user, "h": hidden}
_FRIENDS = "online_status/friends"  # cluster command: {"a", "b", "added"}: watch or stop
MAX_WRITE_BATCH = 5000  # last-seen rows per write
# Whom a user who watches nobody watches: shared, as an empty set is 216 bytes per online user.
_NOBODY: frozenset[int] = frozenset()


@dataclass
class Config:
    """[online_status]: how often changes go out, how often last-seen times are written, and the
    bounds of what one user watches and asks."""

    interval: float = 3.0  # at most one change per user per interval is pushed
    flush_interval: float = 10.0  # last-seen times are written in one batch this often
    max_watched: int = 500  # users one user is told of (friends first, then recent partners)
    recent_contacts: int = 100  # recent conversations looked at for partners, at login
    max_query: int = 100  # user ids per ONLINE_STATUS_REQ

    def validate(self) -> None:
        if self.interval <= 0 or self.flush_interval <= 0:
            raise ConfigError("online_status.interval and online_status.flush_interval must be positive")
        for key in ("max_watched", "recent_contacts", "max_query"):
            if not 1 <= getattr(self, key) <= 10_000:
                raise ConfigError(f"online_status.{key} must be between 1 and 10000")


# -- storage


class IOnlineStatusStore(Interface):
    """The online status feature's storage (an SQL backend gets :class:`SQLOnlineStatusStore`;
    tested by ``coffeechat.testing.conformance_friends.OnlineStatusStoreConformanceTests``)."""

    def save_last_seen(entries: list[tuple[int, int]]):
        """Record ``(user_id, unix seconds)`` pairs in one transaction; a time never goes back
        (the later of the stored and the given one is kept)."""

    def last_seen(user_ids: list[int]):
        """Fire with ``{user_id: last seen}`` for those of ``user_ids`` that have one."""

    def set_hidden(user_id: int, hidden: bool):
        """Set whether ``user_id`` hides their status (their last-seen time is kept)."""

    def hidden_users():
        """Fire with the ids of every user who hides their status."""

    def forget_user(user_id: int):
        """Erase the user's last-seen time and privacy switch (a deleted account); fires with None."""

    def recent_partners(user_id: int, limit: int):
        """Fire with the other users of ``user_id``'s ``limit`` most recently updated 1:1
        conversations, most recent first (the core's conversation tables)."""

    def partners_among(user_id: int, user_ids: list[int]):
        """Fire with the set of those of ``user_ids`` with whom ``user_id`` has a 1:1 conversation."""


def _save_txn(txn: ISQLTransaction, entries: list[tuple[int, int]]) -> None:
    txn.executemany(
        "INSERT INTO user_last_seen (user_id, last_seen, hidden) VALUES (?, ?, FALSE) "
        "ON CONFLICT (user_id) DO UPDATE SET last_seen = GREATEST(user_last_seen.last_seen, excluded.last_seen)",
        entries,
    )


def _last_seen_txn(txn: ISQLTransaction, user_ids: list[int]) -> dict[int, int]:
    clause, params = txn.in_list("user_id", user_ids)
    rows = txn.execute(f"SELECT user_id, last_seen FROM user_last_seen WHERE {clause} AND last_seen > 0", params)
    return {r[0]: r[1] for r in rows.fetchall()}


def _hidden_txn(txn: ISQLTransaction, user_id: int, hidden: bool) -> None:
    txn.execute(
        "INSERT INTO user_last_seen (user_id, last_seen, hidden) VALUES (?, 0, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET hidden = excluded.hidden",
        (user_id, hidden),
    )


def _hidden_users_txn(txn: ISQLTransaction) -> list[int]:
    return [r[0] for r in txn.execute("SELECT user_id FROM user_last_seen WHERE hidden ORDER BY user_id").fetchall()]


def _recent_partners_txn(txn: ISQLTransaction, user_id: int, limit: int) -> list[int]:
    rows = txn.execute(
        "SELECT uc.session_id FROM user_conversations AS uc JOIN conversations AS c ON c.conv = uc.conv "
        "WHERE uc.user_id = ? AND uc.session_type = 1 ORDER BY c.updated_at DESC, uc.session_id LIMIT ?",
        (user_id, limit),
    )
    return [r[0] for r in rows.fetchall()]


def _partners_among_txn(txn: ISQLTransaction, user_id: int, user_ids: list[int]) -> set[int]:
    clause, params = txn.in_list("session_id", user_ids)
    rows = txn.execute(
        f"SELECT session_id FROM user_conversations WHERE user_id = ? AND session_type = 1 AND {clause}",
        (user_id, *params),
    )
    return {r[0] for r in rows.fetchall()}


def _forget_txn(txn: ISQLTransaction, user_id: int) -> None:
    txn.execute("DELETE FROM user_last_seen WHERE user_id = ?", (user_id,))


@implementer(IOnlineStatusStore)
class SQLOnlineStatusStore:
    """IOnlineStatusStore written once for every SQL backend (its table: online_status.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def save_last_seen(self, entries: list[tuple[int, int]]) -> defer.Deferred:
        rows = sorted((int(u), int(t)) for u, t in entries)
        return self.db.run_write("save_last_seen", _save_txn, rows)

    def last_seen(self, user_ids: list[int]) -> defer.Deferred:
        return self.db.run_read("last_seen", _last_seen_txn, [int(u) for u in user_ids])

    def set_hidden(self, user_id: int, hidden: bool) -> defer.Deferred:
        return self.db.run_write("set_status_hidden", _hidden_txn, int(user_id), bool(hidden))

    def hidden_users(self) -> defer.Deferred:
        return self.db.run_read("hidden_users", _hidden_users_txn)

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("last_seen_forget_user", _forget_txn, int(user_id))

    def recent_partners(self, user_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("recent_partners", _recent_partners_txn, int(user_id), int(limit))

    def partners_among(self, user_id: int, user_ids: list[int]) -> defer.Deferred:
        return self.db.run_read("partners_among", _partners_among_txn, int(user_id), [int(u) for u in user_ids])


# -- the pushes


@dataclass(slots=True)
class Status:
    user_id: int
    state: int
    last_seen: int = 0


@dataclass(slots=True)
class OnlineStatusPush(Push):
    """ONLINE_STATUS_NOTIFY to ``user_id``: the statuses that changed of users they watch."""

    user_id: int
    statuses: tuple[Status, ...]


@dataclass(slots=True)
class PrivacyPush(Push):
    """ONLINE_PRIVACY_NOTIFY to ``user_id``'s devices: their setting changed."""

    user_id: int
    hidden: bool


def status_pb(status: Status) -> pb.CIMOnlineStatus:
    return pb.CIMOnlineStatus(user_id=status.user_id, state=status.state, last_seen=status.last_seen)


def status_notify(push: OnlineStatusPush) -> pb.CIMOnlineStatusNotify:
    return pb.CIMOnlineStatusNotify(user_id=push.user_id, statuses=[status_pb(s) for s in push.statuses])


def privacy_notify(push: PrivacyPush) -> pb.CIMOnlinePrivacyNotify:
    return pb.CIMOnlinePrivacyNotify(user_id=push.user_id, hidden=push.hidden)


# -- the service


class OnlineStatus:
    """Keeps who watches whom on this node and tells watchers of changes (module docstring)."""

    def __init__(self, api: ModuleAPI, store: IOnlineStatusStore, friends: Any, config: Config) -> None:
        self.api = api
        self.store = store
        self.friends = friends  # the friends feature's service, or None
        self.blocks: Any = None  # the blocks feature's service, if enabled (looked up at start)
        self.config = config
        self.clock = api.clock
        self.router = api.router
        self.presence = api.router.presence
        self.hidden: set[int] = set()
        self._changed: dict[int, None] = {}  # users whose devices here came or went since the last tick
        self._dirty: dict[int, int] = {}  # last-seen times not written yet
        self._watching: dict[int, set[int] | frozenset[int]] = {}  # local user -> whom they watch
        self._watchers: dict[int, set[int]] = {}  # watched user -> local users watching them
        self._known: dict[int, Status] = {}  # watched user -> the state their watchers were told
        self._loading: dict[int, int] = {}  # local user -> generation of their subscription load
        self._generation = 0
        self.ticks = 0
        self.pushed = 0  # status notifies pushed (per watcher), for tests and metrics

    # -- the hot path: a device came or went

    def device_online(self, device: Any) -> None:
        user_id = device.user_id
        self._changed[user_id] = None
        self._dirty[user_id] = int(self.clock.seconds())
        if user_id not in self._watching:
            self._watching[user_id] = _NOBODY  # filled by the load; a query meanwhile adds to it
            self._generation += 1
            self._loading[user_id] = self._generation
            d = defer.ensureDeferred(self._subscribe(user_id, self._generation))
            d.addErrback(lambda f: self.api.log.failure("loading whom user {u} watches failed", f, u=user_id))

    def device_offline(self, device: Any) -> None:
        user_id = device.user_id
        self._changed[user_id] = None
        self._dirty[user_id] = int(self.clock.seconds())
        if not self.router.is_online(user_id):
            self._unsubscribe(user_id)

    # -- subscriptions

    async def _subscribe(self, user_id: int, generation: int) -> None:
        limit = self.config.max_watched
        watched: dict[int, None] = {}
        if self.friends is not None:
            for friend_id in await self.friends.friend_ids(user_id):
                watched[friend_id] = None
        for partner in await self.store.recent_partners(user_id, self.config.recent_contacts):
            if partner != user_id:
                watched[partner] = None
        if self._loading.get(user_id) != generation:
            return  # logged out (and maybe in again) meanwhile
        del self._loading[user_id]
        if user_id not in self._watching:
            return
        for other in list(watched)[:limit]:
            self._watch(user_id, other)

    def _watch(self, user_id: int, other: int) -> bool:
        """``user_id`` (online here) is told of ``other`` from now on; False when they watch as
        many as they may."""
        mine = self._watching.get(user_id)
        if mine is None:
            return False
        if other in mine:
            return True
        if len(mine) >= self.config.max_watched:
            return False
        if mine is _NOBODY:
            mine = self._watching[user_id] = set()
        mine.add(other)
        self._watchers.setdefault(other, set()).add(user_id)
        return True

    def _unwatch(self, user_id: int, other: int) -> None:
        mine = self._watching.get(user_id)
        if mine:
            mine.discard(other)
        watchers = self._watchers.get(other)
        if watchers is not None:
            watchers.discard(user_id)
            if not watchers:
                del self._watchers[other]
                self._known.pop(other, None)

    def _unsubscribe(self, user_id: int) -> None:
        self._loading.pop(user_id, None)
        for other in self._watching.pop(user_id, ()):
            watchers = self._watchers.get(other)
            if watchers is not None:
                watchers.discard(user_id)
                if not watchers:
                    del self._watchers[other]
                    self._known.pop(other, None)

    def friend_added(self, a: int, b: int, tell_others: bool = True) -> None:
        """New friends watch each other, on every node (the event fires where it happened)."""
        self._watch(a, b)
        self._watch(b, a)
        if tell_others:
            self.api.broadcast(_FRIENDS, {"a": a, "b": b, "added": True})

    def friend_removed(self, a: int, b: int, tell_others: bool = True) -> None:
        """No longer friends: no longer watched (a conversation partner is again once asked for,
        or from the next login)."""
        self._unwatch(a, b)
        self._unwatch(b, a)
        if tell_others:
            self.api.broadcast(_FRIENDS, {"a": a, "b": b, "added": False})

    def friends_elsewhere(self, data: dict, sender: str) -> None:
        a, b, added = data.get("a"), data.get("b"), data.get("added")
        if type(a) is int and type(b) is int and type(added) is bool:
            (self.friend_added if added else self.friend_removed)(a, b, tell_others=False)

    # -- once per interval: decide and tell

    async def tick(self) -> None:
        self.ticks += 1
        if not self._changed:
            return
        users = list(self._changed)
        self._changed.clear()
        is_online = self.router.is_online
        maybe_offline = [u for u in users if not is_online(u)]
        elsewhere: dict[int, Any] = {}
        if maybe_offline and len(self.presence.live_nodes()) > 1:
            try:
                elsewhere = await self.presence.locate(maybe_offline)
            except Exception as e:  # the presence outage is logged by the router: decide at the next tick
                self.api.log.debug("online status: the shared presence could not say who is online: {e}", e=e)
                for user_id in users:
                    self._changed[user_id] = None
                return
        changes = []
        for user_id in users:
            if user_id in self.hidden:
                continue
            if is_online(user_id) or user_id in elsewhere:
                changes.append(Status(user_id, ONLINE, 0))
            else:
                changes.append(Status(user_id, OFFLINE, self._dirty.get(user_id, int(self.clock.seconds()))))
        if changes:
            self._apply(changes)
            self.api.broadcast(_CHANGES, {"c": [[s.user_id, s.state, s.last_seen] for s in changes]})

    def changes_elsewhere(self, data: dict, sender: str) -> None:
        found = data.get("c")
        if not isinstance(found, list):
            return
        changes = []
        for entry in found:
            if isinstance(entry, list) and len(entry) == 3 and all(type(v) is int for v in entry):
                changes.append(Status(*entry))
        self._apply(changes)

    def _apply(self, changes: list[Status]) -> None:
        """Push to the local watchers the changes they were not told yet (one push per watcher)."""
        per_watcher: dict[int, list[Status]] = {}
        known = self._known
        for status in changes:
            watchers = self._watchers.get(status.user_id)
            if not watchers:
                continue
            before = known.get(status.user_id)
            known[status.user_id] = status
            if before is not None and before.state == status.state:
                continue  # the same state (a flap within the interval, or a second device)
            for watcher in watchers:
                per_watcher.setdefault(watcher, []).append(status)
        blocks = self.blocks
        for watcher, statuses in per_watcher.items():
            if blocks is not None:
                self._push_unblocked(watcher, statuses)
                continue
            self.router.push_local(watcher, OnlineStatusPush(watcher, tuple(statuses)))
            self.pushed += 1

    def _push_unblocked(self, watcher: int, statuses: list[Status]) -> None:
        """Push ``statuses`` to ``watcher`` but for those of users who blocked them (a block hides
        my status from whom I blocked).  Block lists come from the blocks feature's cache; one not
        cached yet is loaded first and that status pushed when it is."""
        shown: list[Status] = []
        for status in statuses:
            found = self.blocks.blocked_by(status.user_id)
            if isinstance(found, frozenset):
                if watcher not in found:
                    shown.append(status)
            else:
                found.addCallback(self._push_if_unblocked, watcher, status)
                found.addErrback(lambda f: self.api.log.failure("loading a block list for a status push failed", f))
        if shown:
            self.router.push_local(watcher, OnlineStatusPush(watcher, tuple(shown)))
            self.pushed += 1

    def _push_if_unblocked(self, blocked: frozenset[int], watcher: int, status: Status) -> None:
        if watcher not in blocked and self.router.is_online(watcher):
            self.router.push_local(watcher, OnlineStatusPush(watcher, (status,)))
            self.pushed += 1

    # -- last seen

    def flush(self) -> defer.Deferred | None:
        """Write the pending last-seen times in one batch (on failure they wait for the next)."""
        if not self._dirty:
            return None
        batch, self._dirty = self._dirty, {}
        entries = list(batch.items())

        def failed(failure: Any) -> None:
            for user_id, seen in batch.items():
                if self._dirty.get(user_id, 0) < seen:
                    self._dirty[user_id] = seen
            self.api.log.warn("writing last-seen times failed: {e}", e=failure.getErrorMessage())

        ds = [
            self.store.save_last_seen(entries[i : i + MAX_WRITE_BATCH]) for i in range(0, len(entries), MAX_WRITE_BATCH)
        ]
        return defer.gatherResults(ds, consumeErrors=True).addErrback(failed)

    # -- what users ask

    async def query(self, user: User, user_ids: list[int]) -> list[Status]:
        """The status of each of ``user_ids`` as ``user`` may see it; the ones they may see are
        watched from now on (pushed when they change)."""
        if len(user_ids) > self.config.max_query:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {self.config.max_query} user ids per request")
        ids = list(dict.fromkeys(user_ids))
        if any(not 0 < u <= MAX_ID for u in ids):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "user ids must be positive")
        me = user.user_id
        allowed = await self._allowed(me, ids)
        hidden = self.hidden
        visible = [u for u in ids if u in allowed and (u not in hidden or u == me)]
        is_online = self.router.is_online
        offline = [u for u in visible if not is_online(u)]
        if offline and len(self.presence.live_nodes()) > 1:
            try:
                where = await self.presence.locate(offline)
            except Exception:  # the shared presence is down (logged by the router): as far as we know
                where = {}
            offline = [u for u in offline if u not in where]
        seen: dict[int, int] = {}
        missing = []
        for u in offline:
            if u in self._dirty:
                seen[u] = self._dirty[u]
            elif u in self._known and self._known[u].state == OFFLINE:
                seen[u] = self._known[u].last_seen
            else:
                missing.append(u)
        if missing:
            seen.update(await self.store.last_seen(missing))
        visible_set, offline_set = set(visible), set(offline)
        out = []
        for u in ids:
            if u not in visible_set:
                out.append(Status(u, UNKNOWN, 0))
            elif u in offline_set:
                out.append(Status(u, OFFLINE, seen.get(u, 0)))
            else:
                out.append(Status(u, ONLINE, 0))
        for status in out:
            if status.state != UNKNOWN and status.user_id != me:
                if self._watch(me, status.user_id) and status.user_id not in self._known:
                    self._known[status.user_id] = status
        return out

    async def _allowed(self, me: int, ids: list[int]) -> set[int]:
        """Those of ``ids`` that ``me`` may see: themselves, friends, 1:1 conversation partners."""
        mine = self._watching.get(me, _NOBODY)
        allowed = {u for u in ids if u == me or u in mine}
        rest = [u for u in ids if u not in allowed]
        if rest and self.friends is not None:
            friends = await self.friends.friend_set(me)
            allowed.update(u for u in rest if u in friends)
            rest = [u for u in rest if u not in friends]
        if rest:
            allowed.update(await self.store.partners_among(me, rest))
        if self.blocks is not None:  # who blocked me hides their status from me
            others = [u for u in allowed if u != me]
            blocked = await defer.gatherResults([self.blocks.is_blocked(u, me) for u in others])
            allowed.difference_update(u for u, b in zip(others, blocked, strict=True) if b)
        return allowed

    async def set_hidden(self, user: User, device: Any, hidden: bool) -> None:
        user_id = user.user_id
        await self.store.set_hidden(user_id, hidden)
        self._privacy_changed(user_id, hidden)
        self.api.broadcast(_PRIVACY, {"u": user_id, "h": hidden})
        self.router.push(user_id, PrivacyPush(user_id, hidden), device)
        if hidden:
            change = [Status(user_id, UNKNOWN, 0)]
            self._apply(change)
            self.api.broadcast(_CHANGES, {"c": [[user_id, UNKNOWN, 0]]})
        else:
            self._changed[user_id] = None  # the next tick tells their real state

    def _privacy_changed(self, user_id: int, hidden: bool) -> None:
        if hidden:
            self.hidden.add(user_id)
        else:
            self.hidden.discard(user_id)

    def privacy_elsewhere(self, data: dict, sender: str) -> None:
        user_id, hidden = data.get("u"), data.get("h")
        if type(user_id) is int and type(hidden) is bool:
            self._privacy_changed(user_id, hidden)

    async def resumed(self, lost_at: float) -> None:
        """After a lost cluster subscription: who hides, and the state of every user whose
        watchers here were told one, are read again (the changes broadcast meanwhile were
        missed); the watchers are pushed what differs.  Idempotent (it fires twice)."""
        await self.load_hidden()
        told = [u for u in self._known if u in self._watchers]
        if not told:
            return
        is_online = self.router.is_online
        rest = [u for u in told if u not in self.hidden and not is_online(u)]
        elsewhere: dict[int, Any] = {}
        if rest and len(self.presence.live_nodes()) > 1:
            try:
                elsewhere = await self.presence.locate(rest)
            except Exception as e:  # logged by the router; the next change corrects it
                self.api.log.debug("online status: the shared presence could not say who is online: {e}", e=e)
                return
        offline = {u for u in rest if u not in elsewhere}
        seen: dict[int, int] = {}
        ids = sorted(offline)
        for i in range(0, len(ids), 1000):
            seen.update(await self.store.last_seen(ids[i : i + 1000]))
        changes = []
        for u in told:
            if u in self.hidden:
                changes.append(Status(u, UNKNOWN, 0))
            elif u in offline:
                changes.append(Status(u, OFFLINE, max(seen.get(u, 0), self._dirty.get(u, 0))))
            else:
                changes.append(Status(u, ONLINE, 0))
        self._apply(changes)

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: the user's last-seen time and privacy switch go (a time not
        written yet too), so nobody is shown when a deleted account was last online."""
        self._dirty.pop(user.user_id, None)
        await self.store.forget_user(user.user_id)
        if user.user_id in self.hidden:
            self._privacy_changed(user.user_id, False)
            self.api.broadcast(_PRIVACY, {"u": user.user_id, "h": False})

    async def load_hidden(self) -> None:
        """Who hides their status (at start, and after a lost cluster subscription: a change
        broadcast meanwhile may have been missed)."""
        self.hidden = set(await self.store.hidden_users())


def setup(api: ModuleAPI) -> OnlineStatus:
    """The status query, the privacy switch, their pushes, and the login/logout hooks."""
    config: Config = api.config
    try:
        friends = api.depends("friends")
    except ConfigError:
        friends = None
    status = OnlineStatus(api, api.open_store(IOnlineStatusStore, SQLOnlineStatusStore), friends, config)
    api.push_kind(OnlineStatusPush, name="online_status", cmd=Cmd.ONLINE_STATUS_NOTIFY, encode=status_notify)
    api.push_kind(PrivacyPush, name="online_privacy", cmd=Cmd.ONLINE_PRIVACY_NOTIFY, encode=privacy_notify)
    api.hook("device/online", status.device_online)
    api.hook("device/offline", status.device_offline)
    api.hook("friend/added", status.friend_added)
    api.hook("friend/removed", status.friend_removed)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(status.account_deleted(user)))
    api.hook("cluster/resumed", lambda lost_at: defer.ensureDeferred(status.resumed(lost_at)))
    api.cluster_command(_CHANGES, status.changes_elsewhere)
    api.cluster_command(_PRIVACY, status.privacy_elsewhere)
    api.cluster_command(_FRIENDS, status.friends_elsewhere)
    api.periodic(config.interval, status.tick)
    api.periodic(config.flush_interval, status.flush)
    api.on_stop(status.flush)

    def start() -> None:
        try:
            status.blocks = api.depends("blocks")
        except ConfigError:
            status.blocks = None
        d = defer.ensureDeferred(status.load_hidden())
        d.addErrback(lambda f: api.log.failure("loading who hides their online status failed", f))

    api.on_start(start)

    @api.request(Cmd.ONLINE_STATUS_REQ)
    async def query(session: Session, req: pb.CIMOnlineStatusReq) -> pb.CIMOnlineStatusRsp:
        found = await status.query(session.user, list(req.user_ids))
        return pb.CIMOnlineStatusRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            statuses=[status_pb(s) for s in found],
        )

    @api.request(Cmd.ONLINE_PRIVACY_REQ)
    async def privacy(session: Session, req: pb.CIMOnlinePrivacyReq) -> pb.CIMOnlinePrivacyRsp:
        if not req.query:
            await status.set_hidden(session.user, session, req.hidden)
        return pb.CIMOnlinePrivacyRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            hidden=session.user_id in status.hidden,
        )

    return status
