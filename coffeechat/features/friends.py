"""Friends: requests with a short message, accept or decline, withdraw, the friend list with
remarks (an alias only its owner sees), delete; and, when ``[friends] require_friendship`` is on,
1:1 messages only between friends (NOT_FRIENDS, 10040).

A friendship is two rows, one per side, each with that side's remark; deleting it removes both.
A request is pending until its recipient answers it, its sender withdraws it, or it expires
(``request_ttl``; an expired request is as good as none: not listed, not counted, replaced by a
new one).  A request to someone who asked me already (and whose request is still pending) makes
us friends at once, as if I had accepted theirs.  Every change is pushed (FRIEND_NOTIFY) to every
device of both sides on every node, and the lists say the current state to a device that was
offline.

Other features use the service: ``await friends.friend_ids(user_id)``, ``await
friends.are_friends(a, b)``, and the events ``friend/added (a, b)`` and ``friend/removed (a, b)``.
The friend sets are cached (bounded, least recently used out), dropped on every change here and,
through a cluster command, on the other nodes: the send check answers from the cache, going to
storage only on a miss.  docs/friends.md tells the rest.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

EVENT_REQUESTED = pb.kCIM_FRIEND_EVENT_REQUESTED
EVENT_ACCEPTED = pb.kCIM_FRIEND_EVENT_ACCEPTED
EVENT_DECLINED = pb.kCIM_FRIEND_EVENT_DECLINED
EVENT_WITHDRAWN = pb.kCIM_FRIEND_EVENT_WITHDRAWN
EVENT_DELETED = pb.kCIM_FRIEND_EVENT_DELETED
# The friends of a user who has none, shared: an empty frozenset is 216 bytes per cached user.
_NO_FRIENDS: frozenset[int] = frozenset()
EVENT_REMARK = pb.kCIM_FRIEND_EVENT_REMARK
_CHANGED = "friends/changed"  # the cluster command: drop these users' cached friend sets


@dataclass
class Config:
    """[friends]: the bounds of friend lists and requests, and whether 1:1 chat needs friendship."""

    require_friendship: bool = False
    max_friends: int = 3000
    max_pending: int = 100  # requests one user may have sent and not yet had answered
    max_incoming: int = 1000  # requests waiting for one user (more are refused)
    max_message_length: int = 200  # characters of a request's message
    max_remark_length: int = 64  # characters of a remark
    request_ttl: float = 30 * 86400.0  # seconds a request stays pending
    page_max: int = 200  # friends or requests per list answer
    cache_users: int = 100_000  # friend sets kept in memory

    def validate(self) -> None:
        for key in ("max_friends", "max_pending", "max_incoming", "max_message_length", "max_remark_length"):
            if getattr(self, key) < 1:
                raise ConfigError(f"friends.{key} must be at least 1")
        if self.request_ttl <= 0:
            raise ConfigError("friends.request_ttl must be positive (seconds)")
        if not 1 <= self.page_max <= 10_000:
            raise ConfigError("friends.page_max must be between 1 and 10000")
        if self.cache_users < 1:
            raise ConfigError("friends.cache_users must be at least 1")


# -- storage


class FriendRefused(Exception):
    """A change the store refused inside its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class FriendRequest:
    """A pending request from ``from_id`` to ``to_id``, sent (or sent again) at ``created_at``."""

    from_id: int
    to_id: int
    message: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Friend:
    """``friend_id`` as ``user_id`` sees them: with ``user_id``'s remark."""

    user_id: int
    friend_id: int
    remark: str
    created_at: int


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What a request did: ``request`` is pending now, or (``friends``: both sides' rows) the
    recipient had asked the sender already and both are friends."""

    request: FriendRequest | None
    friends: tuple[Friend, Friend] | None


class IFriendStore(Interface):
    """The friends feature's storage (an SQL backend gets :class:`SQLFriendStore`; any other
    backend provides it through ``facet(IFriendStore)``; tested by
    ``coffeechat.testing.conformance_friends.FriendStoreConformanceTests``).  Requests created
    before ``expires_before`` (unix seconds) count as absent everywhere."""

    def request(
        from_id: int,
        to_id: int,
        message: str,
        now: int,
        expires_before: int,
        max_pending: int,
        max_incoming: int,
        max_friends: int,
    ):
        """In one transaction: fire with a :class:`RequestOutcome`.  If ``to_id`` has a pending
        request to ``from_id``, it is removed and both become friends (both rows, created at
        ``now``); else the request from ``from_id`` to ``to_id`` is stored, replacing an earlier
        one (new message and time).  Fails with :class:`FriendRefused`: ALREADY_FRIENDS;
        FRIEND_LIMIT when either side has ``max_friends`` friends (the sender, even for a plain
        request); FRIEND_REQUEST_LIMIT when the sender has ``max_pending`` other pending requests
        or the recipient ``max_incoming`` from others."""

    def answer(user_id: int, from_id: int, accept: bool, now: int, expires_before: int, max_friends: int):
        """``user_id`` answers the pending request of ``from_id``: it is removed; on ``accept``
        both become friends.  Fire with ``(FriendRequest, (mine, theirs) or None)``.  Fails with
        FriendRefused NOT_FOUND (no pending request) or FRIEND_LIMIT (accepting only)."""

    def withdraw(from_id: int, to_id: int, expires_before: int):
        """Remove the pending request of ``from_id`` to ``to_id``; fire with it, or None."""

    def requests_of(user_id: int, outgoing: bool, expires_before: int, offset: int, limit: int):
        """Fire with up to ``limit`` pending requests to ``user_id`` (``outgoing``: from them),
        newest first (then by the other's id), skipping ``offset``."""

    def friends_of(user_id: int, offset: int, limit: int):
        """Fire with up to ``limit`` of ``user_id``'s Friends in friend id order, from ``offset``."""

    def friend_ids(user_id: int):
        """Fire with the ids of all of ``user_id``'s friends, ascending."""

    def set_remark(user_id: int, friend_id: int, remark: str):
        """Set ``user_id``'s remark of ``friend_id``; fire with the Friend, or None if not friends."""

    def delete(user_id: int, friend_id: int):
        """Remove the friendship, both rows; fire with True if there was one."""

    def purge_expired(expires_before: int, limit: int):
        """Remove up to ``limit`` expired requests; fire with how many."""


_REQ_COLS = "from_id, to_id, message, created_at"
_FRIEND_COLS = "user_id, friend_id, remark, created_at"


def _is_friend(txn: ISQLTransaction, a: int, b: int) -> bool:
    found = txn.execute("SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?", (a, b)).fetchone()
    return found is not None


def _count(txn: ISQLTransaction, sql: str, args: tuple) -> int:
    return int(txn.execute(sql, args).fetchone()[0])


def _befriend(txn: ISQLTransaction, a: int, b: int, now: int, max_friends: int) -> tuple[Friend, Friend]:
    for who in (a, b):
        if _count(txn, "SELECT COUNT(*) FROM friendships WHERE user_id = ?", (who,)) >= max_friends:
            raise FriendRefused(ErrorCode.FRIEND_LIMIT, f"user {who} has {max_friends} friends already")
    txn.execute(
        "DELETE FROM friend_requests WHERE (from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)", (a, b, b, a)
    )
    txn.executemany(
        f"INSERT INTO friendships ({_FRIEND_COLS}) VALUES (?, ?, '', ?) ON CONFLICT (user_id, friend_id) DO NOTHING",
        [(a, b, now), (b, a, now)],
    )
    return Friend(a, b, "", now), Friend(b, a, "", now)


def _request_txn(
    txn: ISQLTransaction,
    from_id: int,
    to_id: int,
    message: str,
    now: int,
    expires_before: int,
    max_pending: int,
    max_incoming: int,
    max_friends: int,
) -> RequestOutcome:
    if _is_friend(txn, from_id, to_id):
        raise FriendRefused(ErrorCode.ALREADY_FRIENDS, "you are friends already")
    reverse = txn.execute(
        "SELECT 1 FROM friend_requests WHERE from_id = ? AND to_id = ? AND created_at >= ?",
        (to_id, from_id, expires_before),
    ).fetchone()
    if reverse is not None:
        return RequestOutcome(None, _befriend(txn, from_id, to_id, now, max_friends))
    if _count(txn, "SELECT COUNT(*) FROM friendships WHERE user_id = ?", (from_id,)) >= max_friends:
        raise FriendRefused(ErrorCode.FRIEND_LIMIT, f"you have {max_friends} friends already")
    pending = _count(
        txn,
        "SELECT COUNT(*) FROM friend_requests WHERE from_id = ? AND to_id <> ? AND created_at >= ?",
        (from_id, to_id, expires_before),
    )
    if pending >= max_pending:
        raise FriendRefused(ErrorCode.FRIEND_REQUEST_LIMIT, f"you have {max_pending} requests pending already")
    incoming = _count(
        txn,
        "SELECT COUNT(*) FROM friend_requests WHERE to_id = ? AND from_id <> ? AND created_at >= ?",
        (to_id, from_id, expires_before),
    )
    if incoming >= max_incoming:
        raise FriendRefused(ErrorCode.FRIEND_REQUEST_LIMIT, "the recipient has too many requests pending")
    txn.execute(
        f"INSERT INTO friend_requests ({_REQ_COLS}) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (from_id, to_id) DO UPDATE SET message = excluded.message, created_at = excluded.created_at",
        (from_id, to_id, message, now),
    )
    return RequestOutcome(FriendRequest(from_id, to_id, message, now), None)


def _pending(txn: ISQLTransaction, from_id: int, to_id: int, expires_before: int) -> FriendRequest | None:
    row = txn.execute(
        f"SELECT {_REQ_COLS} FROM friend_requests WHERE from_id = ? AND to_id = ? AND created_at >= ?",
        (from_id, to_id, expires_before),
    ).fetchone()
    return None if row is None else FriendRequest(*row)


def _answer_txn(
    txn: ISQLTransaction, user_id: int, from_id: int, accept: bool, now: int, expires_before: int, max_friends: int
) -> tuple[FriendRequest, tuple[Friend, Friend] | None]:
    request = _pending(txn, from_id, user_id, expires_before)
    if request is None:
        raise FriendRefused(ErrorCode.NOT_FOUND, f"no pending friend request from user {from_id}")
    if not accept:
        txn.execute("DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?", (from_id, user_id))
        return request, None
    return request, _befriend(txn, user_id, from_id, now, max_friends)


def _withdraw_txn(txn: ISQLTransaction, from_id: int, to_id: int, expires_before: int) -> FriendRequest | None:
    request = _pending(txn, from_id, to_id, expires_before)
    txn.execute("DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?", (from_id, to_id))
    return request


def _requests_txn(
    txn: ISQLTransaction, user_id: int, outgoing: bool, expires_before: int, offset: int, limit: int
) -> list[FriendRequest]:
    mine, other = ("from_id", "to_id") if outgoing else ("to_id", "from_id")
    rows = txn.execute(
        f"SELECT {_REQ_COLS} FROM friend_requests WHERE {mine} = ? AND created_at >= ? "
        f"ORDER BY created_at DESC, {other} LIMIT ? OFFSET ?",
        (user_id, expires_before, limit, offset),
    ).fetchall()
    return [FriendRequest(*r) for r in rows]


def _friends_txn(txn: ISQLTransaction, user_id: int, offset: int, limit: int) -> list[Friend]:
    rows = txn.execute(
        f"SELECT {_FRIEND_COLS} FROM friendships WHERE user_id = ? ORDER BY friend_id LIMIT ? OFFSET ?",
        (user_id, limit, offset),
    ).fetchall()
    return [Friend(*r) for r in rows]


def _friend_ids_txn(txn: ISQLTransaction, user_id: int) -> list[int]:
    rows = txn.execute("SELECT friend_id FROM friendships WHERE user_id = ? ORDER BY friend_id", (user_id,))
    return [r[0] for r in rows.fetchall()]


def _remark_txn(txn: ISQLTransaction, user_id: int, friend_id: int, remark: str) -> Friend | None:
    txn.execute("UPDATE friendships SET remark = ? WHERE user_id = ? AND friend_id = ?", (remark, user_id, friend_id))
    row = txn.execute(
        f"SELECT {_FRIEND_COLS} FROM friendships WHERE user_id = ? AND friend_id = ?", (user_id, friend_id)
    ).fetchone()
    return None if row is None else Friend(*row)


def _delete_txn(txn: ISQLTransaction, user_id: int, friend_id: int) -> bool:
    found = _is_friend(txn, user_id, friend_id) or _is_friend(txn, friend_id, user_id)
    txn.execute(
        "DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
        (user_id, friend_id, friend_id, user_id),
    )
    return found


def _purge_txn(txn: ISQLTransaction, expires_before: int, limit: int) -> int:
    rows = txn.execute(
        "SELECT from_id, to_id FROM friend_requests WHERE created_at < ? ORDER BY created_at LIMIT ?",
        (expires_before, limit),
    ).fetchall()
    txn.executemany(
        "DELETE FROM friend_requests WHERE from_id = ? AND to_id = ? AND created_at < ?",
        [(*r, expires_before) for r in rows],
    )
    return len(rows)


@implementer(IFriendStore)
class SQLFriendStore:
    """IFriendStore written once for every SQL backend (its tables: friends.sql).  Changes take
    both users' advisory locks, so the counts hold across nodes on PostgreSQL."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def request(
        self,
        from_id: int,
        to_id: int,
        message: str,
        now: int,
        expires_before: int,
        max_pending: int,
        max_incoming: int,
        max_friends: int,
    ) -> defer.Deferred:
        args = (int(from_id), int(to_id), str(message), int(now), int(expires_before))
        limits = (int(max_pending), int(max_incoming), int(max_friends))
        return self.db.run_write("friend_request", _request_txn, *args, *limits, user_locks=sorted({from_id, to_id}))

    def answer(
        self, user_id: int, from_id: int, accept: bool, now: int, expires_before: int, max_friends: int
    ) -> defer.Deferred:
        args = (int(user_id), int(from_id), bool(accept), int(now), int(expires_before), int(max_friends))
        return self.db.run_write("friend_answer", _answer_txn, *args, user_locks=sorted({user_id, from_id}))

    def withdraw(self, from_id: int, to_id: int, expires_before: int) -> defer.Deferred:
        args = (int(from_id), int(to_id), int(expires_before))
        return self.db.run_write("friend_withdraw", _withdraw_txn, *args, user_locks=sorted({from_id, to_id}))

    def requests_of(self, user_id: int, outgoing: bool, expires_before: int, offset: int, limit: int) -> defer.Deferred:
        args = (int(user_id), bool(outgoing), int(expires_before), int(offset), int(limit))
        return self.db.run_read("friend_requests_of", _requests_txn, *args)

    def friends_of(self, user_id: int, offset: int, limit: int) -> defer.Deferred:
        return self.db.run_read("friends_of", _friends_txn, int(user_id), int(offset), int(limit))

    def friend_ids(self, user_id: int) -> defer.Deferred:
        return self.db.run_read("friend_ids", _friend_ids_txn, int(user_id))

    def set_remark(self, user_id: int, friend_id: int, remark: str) -> defer.Deferred:
        return self.db.run_write("friend_remark", _remark_txn, int(user_id), int(friend_id), str(remark))

    def delete(self, user_id: int, friend_id: int) -> defer.Deferred:
        ids = sorted({user_id, friend_id})
        return self.db.run_write("friend_delete", _delete_txn, int(user_id), int(friend_id), user_locks=ids)

    def purge_expired(self, expires_before: int, limit: int) -> defer.Deferred:
        return self.db.run_write("friend_purge", _purge_txn, int(expires_before), int(limit))


# -- the push


@dataclass(slots=True)
class RequestInfo:
    """A request as it is pushed and listed (with both sides' nick names)."""

    from_id: int
    to_id: int
    message: str
    created_at: int
    expires_at: int
    from_nick: str = ""
    to_nick: str = ""


@dataclass(slots=True)
class FriendInfo:
    """A friend as it is pushed and listed."""

    friend_id: int
    remark: str
    created_at: int
    nick: str = ""
    name: str = ""


@dataclass(slots=True)
class FriendPush(Push):
    """FRIEND_NOTIFY to ``user_id``'s devices: ``event`` between them and ``peer_id``, done by
    ``actor_id``."""

    user_id: int
    event: int
    peer_id: int
    actor_id: int
    request: RequestInfo | None = None
    friend: FriendInfo | None = None


def request_pb(info: RequestInfo) -> pb.CIMFriendRequestInfo:
    return pb.CIMFriendRequestInfo(
        from_user_id=info.from_id,
        to_user_id=info.to_id,
        message=info.message,
        create_time=info.created_at,
        expire_time=info.expires_at,
        from_nick_name=info.from_nick,
        to_nick_name=info.to_nick,
    )


def friend_pb(info: FriendInfo) -> pb.CIMFriendInfo:
    return pb.CIMFriendInfo(
        friend_id=info.friend_id,
        remark=info.remark,
        create_time=info.created_at,
        nick_name=info.nick,
        user_name=info.name,
    )


def friend_notify(push: FriendPush) -> pb.CIMFriendNotify:
    notify = pb.CIMFriendNotify(user_id=push.user_id, event=push.event, peer_id=push.peer_id, actor_id=push.actor_id)
    if push.request is not None:
        notify.request.CopyFrom(request_pb(push.request))
    if push.friend is not None:
        notify.friend.CopyFrom(friend_pb(push.friend))
    return notify


# -- the service


_REFUSALS = {
    ErrorCode.NOT_FOUND,
    ErrorCode.FRIEND_LIMIT,
    ErrorCode.FRIEND_REQUEST_LIMIT,
    ErrorCode.ALREADY_FRIENDS,
}


class Friends:
    """Friend requests and friendships for users, and the friend sets for other features."""

    def __init__(self, api: ModuleAPI, store: IFriendStore, config: Config) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.clock = api.clock
        self.blocks: Any = None  # the blocks feature's service, if enabled (looked up at start)
        self._cache: OrderedDict[int, frozenset[int]] = OrderedDict()
        # user -> token of the friend-set read in flight; invalidating a user drops it, so a read
        # that began before a change is not cached (bounded: entries go when reads end)
        self._loading: dict[int, object] = {}
        self.loads = 0  # friend sets read from storage, for tests and metrics
        self._added = api.firer("friend/added")
        self._removed = api.firer("friend/removed")

    # -- the contract for other features

    def cached_friend_ids(self, user_id: int) -> frozenset[int] | None:
        """The cached friend set of ``user_id`` (None when it is not cached): synchronous."""
        found = self._cache.get(user_id)
        if found is not None:
            self._cache.move_to_end(user_id)
        return found

    def friend_set(self, user_id: int) -> defer.Deferred:
        """Fire with the friend ids of ``user_id`` as a frozenset (from the cache when it can)."""
        found = self.cached_friend_ids(user_id)
        if found is not None:
            return defer.succeed(found)
        token = self._loading[user_id] = object()
        self.loads += 1

        def loaded(ids: list[int]) -> frozenset[int]:
            friends = frozenset(ids) if ids else _NO_FRIENDS
            if self._loading.get(user_id) is token:  # not invalidated while it was read
                del self._loading[user_id]
                self._cache[user_id] = friends
                while len(self._cache) > self.config.cache_users:
                    self._cache.popitem(last=False)
            return friends

        def failed(failure: Any) -> Any:
            if self._loading.get(user_id) is token:
                del self._loading[user_id]
            return failure

        return self.store.friend_ids(user_id).addCallbacks(loaded, failed)

    async def friend_ids(self, user_id: int) -> list[int]:
        """The ids of ``user_id``'s friends, ascending."""
        return sorted(await self.friend_set(user_id))

    async def are_friends(self, a: int, b: int) -> bool:
        return b in await self.friend_set(a)

    def invalidate(self, user_ids: list[int], tell_others: bool = True) -> None:
        """Drop cached friend sets (here and, ``tell_others``, on the other nodes)."""
        for user_id in user_ids:
            self._cache.pop(user_id, None)
            self._loading.pop(user_id, None)
        if tell_others:
            self.api.broadcast(_CHANGED, {"u": list(user_ids)})

    def changed_elsewhere(self, data: dict, sender: str) -> None:
        users = data.get("u")
        if isinstance(users, list):
            self.invalidate([u for u in users if type(u) is int], tell_others=False)

    def forget_all(self, *_: Any) -> None:
        """After a lost cluster subscription: invalidations may have been missed."""
        self._cache.clear()
        self._loading.clear()

    def send_check(self, sender: User, outgoing: Any) -> defer.Deferred | None:
        """[friends] require_friendship: a 1:1 message only to a friend (from the cache when it
        can: no storage on the message path once a sender's set is loaded)."""
        friends = self._cache.get(sender.user_id)
        if friends is not None:
            self._cache.move_to_end(sender.user_id)  # least recently used out: busy senders stay
            if outgoing.to_id in friends:
                return None
            raise ChatError(ErrorCode.NOT_FRIENDS, "you can only send messages to your friends")

        def loaded(friends: frozenset[int]) -> None:
            if outgoing.to_id not in friends:
                raise ChatError(ErrorCode.NOT_FRIENDS, "you can only send messages to your friends")

        return self.friend_set(sender.user_id).addCallback(loaded)

    # -- what users do

    def _expires_before(self) -> int:
        return int(self.clock.seconds() - self.config.request_ttl)

    def _info(self, request: FriendRequest, nicks: dict[int, str]) -> RequestInfo:
        expires = int(request.created_at + self.config.request_ttl)
        return RequestInfo(
            request.from_id,
            request.to_id,
            request.message,
            request.created_at,
            expires,
            nicks.get(request.from_id, ""),
            nicks.get(request.to_id, ""),
        )

    async def _users(self, ids: list[int]) -> dict[int, User]:
        if not ids:
            return {}
        return {u.user_id: u for u in await self.api.store.users_by_ids(sorted(set(ids)))}

    async def _peer(self, user: User, peer_id: Any, what: str) -> User:
        if type(peer_id) is not int or not 0 < peer_id <= MAX_ID or peer_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{what} must be another user's id")
        found = await self.api.store.user_by_id(peer_id)
        if found is None or found.disabled:
            raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {peer_id}")
        return found

    async def _stored(self, d: defer.Deferred) -> Any:
        try:
            return await d
        except FriendRefused as e:
            raise ChatError(e.code if e.code in _REFUSALS else ErrorCode.FORBIDDEN, str(e)) from None

    def _friend_info(self, friend: Friend, peer: User | None) -> FriendInfo:
        nick, name = (peer.nick_name, peer.name) if peer is not None else ("", "")
        return FriendInfo(friend.friend_id, friend.remark, friend.created_at, nick, name)

    def _became_friends(self, pair: tuple[Friend, Friend], users: dict[int, User], actor_id: int, device: Any) -> None:
        a, b = pair
        self.invalidate([a.user_id, b.user_id])
        for mine in (a, b):
            info = self._friend_info(mine, users.get(mine.friend_id))
            push = FriendPush(mine.user_id, EVENT_ACCEPTED, mine.friend_id, actor_id, friend=info)
            self.api.router.push(mine.user_id, push, device if mine.user_id == actor_id else None)
        self._added(a.user_id, b.user_id)

    async def request(
        self, user: User, device: Any, to_id: Any, message: str
    ) -> tuple[RequestInfo | None, FriendInfo | None]:
        """Ask ``to_id`` to be friends (or, if they asked first, become friends)."""
        config = self.config
        if len(message) > config.max_message_length:
            raise ChatError(
                ErrorCode.INVALID_ARGUMENT, f"a request's message is limited to {config.max_message_length} characters"
            )
        peer = await self._peer(user, to_id, "to_user_id")
        if self.blocks is not None and await self.blocks.is_blocked(peer.user_id, user.user_id):
            raise ChatError(ErrorCode.FRIEND_REQUEST_REFUSED, f"user {peer.user_id} takes no friend requests from you")
        now = int(self.clock.seconds())
        outcome: RequestOutcome = await self._stored(
            self.store.request(
                user.user_id,
                peer.user_id,
                message,
                now,
                self._expires_before(),
                config.max_pending,
                config.max_incoming,
                config.max_friends,
            )
        )
        users = {user.user_id: user, peer.user_id: peer}
        if outcome.friends is not None:
            self._became_friends(outcome.friends, users, user.user_id, device)
            return None, self._friend_info(outcome.friends[0], peer)
        info = self._info(outcome.request, {u: v.nick_name for u, v in users.items()})
        for side in (user.user_id, peer.user_id):
            other = peer.user_id if side == user.user_id else user.user_id
            push = FriendPush(side, EVENT_REQUESTED, other, user.user_id, request=info)
            self.api.router.push(side, push, device if side == user.user_id else None)
        return info, None

    async def answer(self, user: User, device: Any, from_id: Any, accept: bool) -> FriendInfo | None:
        """Accept or decline the pending request of ``from_id``."""
        if type(from_id) is not int or not 0 < from_id <= MAX_ID or from_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "from_user_id must be another user's id")
        now = int(self.clock.seconds())
        request, pair = await self._stored(
            self.store.answer(user.user_id, from_id, accept, now, self._expires_before(), self.config.max_friends)
        )
        users = await self._users([from_id])
        users[user.user_id] = user
        if pair is not None:
            self._became_friends(pair, users, user.user_id, device)
            return self._friend_info(pair[0], users.get(from_id))
        info = self._info(request, {u: v.nick_name for u, v in users.items()})
        for side, peer in ((user.user_id, from_id), (from_id, user.user_id)):
            push = FriendPush(side, EVENT_DECLINED, peer, user.user_id, request=info)
            self.api.router.push(side, push, device if side == user.user_id else None)
        return None

    async def withdraw(self, user: User, device: Any, to_id: Any) -> None:
        """Take back a pending request to ``to_id``."""
        if type(to_id) is not int or not 0 < to_id <= MAX_ID or to_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "to_user_id must be another user's id")
        request = await self.store.withdraw(user.user_id, to_id, self._expires_before())
        if request is None:
            raise ChatError(ErrorCode.NOT_FOUND, f"no pending friend request to user {to_id}")
        info = self._info(request, {user.user_id: user.nick_name})
        for side, peer in ((user.user_id, to_id), (to_id, user.user_id)):
            push = FriendPush(side, EVENT_WITHDRAWN, peer, user.user_id, request=info)
            self.api.router.push(side, push, device if side == user.user_id else None)

    async def block_changed(self, owner_id: int, other_id: int, blocked: bool) -> None:
        """The ``blocks`` feature's event: a request from someone I just blocked goes away (my
        devices are told; the sender is not, as blocking is not announced)."""
        if not blocked:
            return
        request = await self.store.withdraw(other_id, owner_id, self._expires_before())
        if request is not None:
            info = self._info(request, {})
            self.api.router.push(owner_id, FriendPush(owner_id, EVENT_WITHDRAWN, other_id, other_id, request=info))

    def _page(self, offset: int, limit: int) -> tuple[int, int]:
        page_max = self.config.page_max
        limit = page_max if limit <= 0 else min(limit, page_max)
        if offset > 1_000_000:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "offset is too large")
        return offset, limit

    async def requests(self, user: User, outgoing: bool, offset: int, limit: int) -> tuple[list[RequestInfo], bool]:
        offset, limit = self._page(offset, limit)
        found = await self.store.requests_of(user.user_id, outgoing, self._expires_before(), offset, limit + 1)
        found = found[: limit + 1]
        users = await self._users([r.from_id for r in found] + [r.to_id for r in found])
        nicks = {u: v.nick_name for u, v in users.items()}
        return [self._info(r, nicks) for r in found[:limit]], len(found) > limit

    async def friends(self, user: User, offset: int, limit: int) -> tuple[list[FriendInfo], bool]:
        offset, limit = self._page(offset, limit)
        found = await self.store.friends_of(user.user_id, offset, limit + 1)
        users = await self._users([f.friend_id for f in found[:limit]])
        return [self._friend_info(f, users.get(f.friend_id)) for f in found[:limit]], len(found) > limit

    async def set_remark(self, user: User, device: Any, friend_id: Any, remark: str) -> FriendInfo:
        """Set (or with "" clear) the alias ``user`` sees for a friend; synced to their devices."""
        if type(friend_id) is not int or not 0 < friend_id <= MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "friend_id must be a user id")
        remark = remark.strip()
        if len(remark) > self.config.max_remark_length:
            limit = self.config.max_remark_length
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a remark is limited to {limit} characters")
        friend = await self.store.set_remark(user.user_id, friend_id, remark)
        if friend is None:
            raise ChatError(ErrorCode.NOT_FRIENDS, f"user {friend_id} is not your friend")
        info = self._friend_info(friend, (await self._users([friend_id])).get(friend_id))
        push = FriendPush(user.user_id, EVENT_REMARK, friend_id, user.user_id, friend=info)
        self.api.router.push(user.user_id, push, device)
        return info

    async def delete(self, user: User, device: Any, friend_id: Any) -> None:
        """End a friendship, for both sides."""
        if type(friend_id) is not int or not 0 < friend_id <= MAX_ID or friend_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "friend_id must be another user's id")
        if not await self.store.delete(user.user_id, friend_id):
            raise ChatError(ErrorCode.NOT_FRIENDS, f"user {friend_id} is not your friend")
        self.invalidate([user.user_id, friend_id])
        for side, peer in ((user.user_id, friend_id), (friend_id, user.user_id)):
            push = FriendPush(side, EVENT_DELETED, peer, user.user_id)
            self.api.router.push(side, push, device if side == user.user_id else None)
        self._removed(user.user_id, friend_id)

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: every friendship of the account ends (each friend is told)."""
        for friend_id in await self.store.friend_ids(user.user_id):
            try:
                await self.delete(user, None, friend_id)
            except ChatError:  # ended meanwhile
                pass

    async def purge(self) -> None:
        """Remove expired requests (in batches, a few per run)."""
        for _ in range(10):
            if await self.store.purge_expired(self._expires_before(), 1000) < 1000:
                break


def _ok(rsp: Any) -> Any:
    rsp.result_code = ErrorCode.SUCCESS
    rsp.result_string = "ok"
    return rsp


def setup(api: ModuleAPI) -> Friends:
    """The friend commands, FRIEND_NOTIFY, the cache invalidation and (when configured) the send
    check that keeps 1:1 chat between friends."""
    config: Config = api.config
    friends = Friends(api, api.open_store(IFriendStore, SQLFriendStore), config)
    api.push_kind(FriendPush, name="friend", cmd=Cmd.FRIEND_NOTIFY, encode=friend_notify)
    api.cluster_command(_CHANGED, friends.changed_elsewhere)
    api.hook("cluster/resumed", friends.forget_all)
    api.hook(
        "block/changed",
        lambda owner, other, blocked: defer.ensureDeferred(friends.block_changed(owner, other, blocked)),
    )
    api.periodic(3600.0, friends.purge)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(friends.account_deleted(user)))
    if config.require_friendship:  # off: not registered, so it costs the message path nothing
        api.depends("messages").add_send_check(SessionType.SINGLE, friends.send_check)

    def find_blocks() -> None:
        try:
            friends.blocks = api.depends("blocks")
        except ConfigError:
            friends.blocks = None

    api.on_start(find_blocks)

    @api.request(Cmd.FRIEND_REQUEST_REQ)
    async def request(session: Session, req: pb.CIMFriendRequestReq) -> pb.CIMFriendRequestRsp:
        info, friend = await friends.request(session.user, session, req.to_user_id, req.message)
        rsp = _ok(pb.CIMFriendRequestRsp(user_id=session.user_id, to_user_id=req.to_user_id))
        if info is not None:
            rsp.request.CopyFrom(request_pb(info))
        if friend is not None:
            rsp.accepted = True
            rsp.friend.CopyFrom(friend_pb(friend))
        return rsp

    @api.request(Cmd.FRIEND_ANSWER_REQ)
    async def answer(session: Session, req: pb.CIMFriendAnswerReq) -> pb.CIMFriendAnswerRsp:
        friend = await friends.answer(session.user, session, req.from_user_id, req.accept)
        rsp = _ok(pb.CIMFriendAnswerRsp(user_id=session.user_id, from_user_id=req.from_user_id, accept=req.accept))
        if friend is not None:
            rsp.friend.CopyFrom(friend_pb(friend))
        return rsp

    @api.request(Cmd.FRIEND_WITHDRAW_REQ)
    async def withdraw(session: Session, req: pb.CIMFriendWithdrawReq) -> pb.CIMFriendWithdrawRsp:
        await friends.withdraw(session.user, session, req.to_user_id)
        return _ok(pb.CIMFriendWithdrawRsp(user_id=session.user_id, to_user_id=req.to_user_id))

    @api.request(Cmd.FRIEND_REQUEST_LIST_REQ)
    async def requests(session: Session, req: pb.CIMFriendRequestListReq) -> pb.CIMFriendRequestListRsp:
        found, more = await friends.requests(session.user, req.outgoing, req.offset, req.limit)
        rsp = _ok(pb.CIMFriendRequestListRsp(user_id=session.user_id, outgoing=req.outgoing, has_more=more))
        rsp.requests.extend(request_pb(r) for r in found)
        return rsp

    @api.request(Cmd.FRIEND_LIST_REQ)
    async def listed(session: Session, req: pb.CIMFriendListReq) -> pb.CIMFriendListRsp:
        found, more = await friends.friends(session.user, req.offset, req.limit)
        rsp = _ok(pb.CIMFriendListRsp(user_id=session.user_id, has_more=more))
        rsp.friends.extend(friend_pb(f) for f in found)
        return rsp

    @api.request(Cmd.FRIEND_REMARK_REQ)
    async def remark(session: Session, req: pb.CIMFriendRemarkReq) -> pb.CIMFriendRemarkRsp:
        info = await friends.set_remark(session.user, session, req.friend_id, req.remark)
        return _ok(pb.CIMFriendRemarkRsp(user_id=session.user_id, friend_id=req.friend_id, remark=info.remark))

    @api.request(Cmd.FRIEND_DELETE_REQ)
    async def delete(session: Session, req: pb.CIMFriendDeleteReq) -> pb.CIMFriendDeleteRsp:
        await friends.delete(session.user, session, req.friend_id)
        return _ok(pb.CIMFriendDeleteRsp(user_id=session.user_id, friend_id=req.friend_id))

    return friends
