"""The block list: a user refuses another's 1:1 messages.

BLOCK_SET_REQ (0x0630) blocks or unblocks a user, BLOCK_LIST_REQ (0x0632) lists whom one blocked
(at most ``max_blocked``, the most recent first); the user's other devices are told of each change
(BLOCK_CHANGED_NOTIFY 0x0634) and the ``block/changed`` event fires.

A 1:1 message from a user the recipient blocked is refused before anything is stored: the sender's
MSG_DATA_ACK carries ``BLOCKED_BY_RECIPIENT`` (10045), as commercial SDKs tell the sender; the
recipient gets no message, no unread count, no push.  The check is a send check on the message
path, answered from an in-memory cache of block lists (a dict lookup; a miss loads the owner's list
once, concurrent misses share the load), invalidated on every node through the cluster when a
list changes, and dropped whole after a cluster outage (an invalidation may have been lost).

Blocking does not remove anyone from groups, and group messages are delivered as before: a group
is a shared room, and hiding one member's messages from one reader would make the conversation
incoherent (docs/blocks.md, docs/decisions.md "Issue 12: blocks").
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.ratelimit import KeyedBuckets, RateLimited
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session


@dataclass
class Config:
    """[blocks]: how many users one may block, and how many block lists each node keeps cached."""

    max_blocked: int = 1000
    cache_size: int = 100_000
    #: block and unblock requests per user: the steady rate per minute, and how many at once
    #: (each change is a write, a push and a message to every node)
    changes_per_minute: float = 30.0
    change_burst: int = 10

    def validate(self) -> None:
        if self.changes_per_minute <= 0 or self.change_burst <= 0:
            raise ConfigError("blocks.changes_per_minute and blocks.change_burst must be positive")
        if self.max_blocked <= 0:
            raise ConfigError(f"blocks.max_blocked must be positive, got {self.max_blocked!r}")
        if self.cache_size <= 0:
            raise ConfigError(f"blocks.cache_size must be positive, got {self.cache_size!r}")


# -- storage


class TooManyBlocked(Exception):
    """The owner's block list is full."""


@dataclass(frozen=True, slots=True)
class Block:
    """``owner_id`` blocked ``blocked_id`` at ``created_at``."""

    owner_id: int
    blocked_id: int
    created_at: int


class IBlockStore(Interface):
    """The blocks feature's storage (a facet: an SQL backend gets :class:`SQLBlockStore`; tested
    by ``coffeechat.testing.conformance_blocks``)."""

    def block(owner_id: int, blocked_id: int, now: int, max_blocked: int):
        """Add ``blocked_id`` to ``owner_id``'s list; fire with True when it was not there.  Fails
        with :class:`TooManyBlocked` when the list holds ``max_blocked`` already (exact across
        nodes)."""

    def unblock(owner_id: int, blocked_id: int):
        """Remove it; fire with True when it was there."""

    def blocks_of(owner_id: int, limit: int):
        """Fire with up to ``limit`` Blocks of ``owner_id``, the most recent first."""

    def forget_user(user_id: int):
        """Erase the user's own list and every other list's entry of them (a deleted account);
        fire with the sorted ids of the owners whose lists changed (the user's own included)."""


def _block_txn(txn: ISQLTransaction, owner_id: int, blocked_id: int, now: int, max_blocked: int) -> bool:
    if txn.execute(
        "SELECT 1 FROM user_blocks WHERE owner_id = ? AND blocked_id = ?", (owner_id, blocked_id)
    ).fetchone():
        return False
    (count,) = txn.execute("SELECT count(*) FROM user_blocks WHERE owner_id = ?", (owner_id,)).fetchone()
    if count >= max_blocked:
        raise TooManyBlocked(owner_id)
    txn.execute(
        "INSERT INTO user_blocks (owner_id, blocked_id, created_at) VALUES (?, ?, ?)", (owner_id, blocked_id, now)
    )
    return True


def _unblock_txn(txn: ISQLTransaction, owner_id: int, blocked_id: int) -> bool:
    cur = txn.execute("DELETE FROM user_blocks WHERE owner_id = ? AND blocked_id = ?", (owner_id, blocked_id))
    return cur.rowcount > 0


def _blocks_txn(txn: ISQLTransaction, owner_id: int, limit: int) -> list[Block]:
    rows = txn.execute(
        "SELECT owner_id, blocked_id, created_at FROM user_blocks WHERE owner_id = ? "
        "ORDER BY created_at DESC, blocked_id DESC LIMIT ?",
        (owner_id, limit),
    ).fetchall()
    return [Block(*r) for r in rows]


def _forget_txn(txn: ISQLTransaction, user_id: int) -> list[int]:
    rows = txn.execute(
        "DELETE FROM user_blocks WHERE owner_id = ? OR blocked_id = ? RETURNING owner_id", (user_id, user_id)
    ).fetchall()
    return sorted({int(r[0]) for r in rows})


@implementer(IBlockStore)
class SQLBlockStore:
    """IBlockStore written once for every SQL backend (its table: blocks.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def block(self, owner_id: int, blocked_id: int, now: int, max_blocked: int) -> defer.Deferred:
        # The owner's advisory lock (PostgreSQL) makes the count exact when two nodes add at once.
        return self.db.run_write(
            "block", _block_txn, int(owner_id), int(blocked_id), int(now), int(max_blocked), user_locks=(int(owner_id),)
        )

    def unblock(self, owner_id: int, blocked_id: int) -> defer.Deferred:
        return self.db.run_write("unblock", _unblock_txn, int(owner_id), int(blocked_id))

    def blocks_of(self, owner_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("blocks_of", _blocks_txn, int(owner_id), int(limit))

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("blocks_forget_user", _forget_txn, int(user_id))


# -- the push


@dataclass(slots=True)
class BlockPush(Push):
    """BLOCK_CHANGED_NOTIFY: ``user_id`` blocked (or unblocked) ``peer_id``."""

    user_id: int
    peer_id: int
    blocked: bool
    changed_at: int


def block_notify(push: BlockPush) -> pb.CIMBlockChangedNotify:
    return pb.CIMBlockChangedNotify(
        user_id=push.user_id, peer_id=push.peer_id, blocked=push.blocked, changed_time=push.changed_at
    )


# -- the service


class Blocks:
    """Block lists, their cache and the send check (see the module docstring)."""

    def __init__(self, api: ModuleAPI, users: Any, store: IBlockStore, config: Config) -> None:
        self.api = api
        self.users = users
        self.store = store
        self.config = config
        self.clock = api.clock
        #: owner id -> the ids they blocked (least recently used first)
        self._cache: OrderedDict[int, frozenset[int]] = OrderedDict()
        self._loading: dict[int, list[defer.Deferred]] = {}  # owner -> who waits for its load
        self._generation: dict[int, int] = {}  # owner -> invalidations while a load was running
        self.loads = 0  # storage loads, for tests and metrics
        self._changes = KeyedBuckets(api.clock, config.changes_per_minute / 60.0, config.change_burst)

    # -- the cache

    def blocked_by(self, owner_id: int) -> defer.Deferred | frozenset[int]:
        """The ids ``owner_id`` blocked: the set itself when cached, else a Deferred of it."""
        cache = self._cache
        found = cache.get(owner_id)
        if found is not None:
            cache.move_to_end(owner_id)
            return found
        return self._load(owner_id)

    def _load(self, owner_id: int) -> defer.Deferred:
        """Load ``owner_id``'s list once, however many ask while it loads."""
        d: defer.Deferred = defer.Deferred()
        waiters = self._loading.get(owner_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._loading[owner_id] = [d]
        generation = self._generation.get(owner_id, 0)
        self.loads += 1

        def loaded(result: list[Block] | Failure) -> None:
            waiting = self._loading.pop(owner_id)
            if self._generation.pop(owner_id, 0) != generation:
                pass  # a change raced the load: answer these callers, but keep nothing
            elif not isinstance(result, Failure):
                found = frozenset(b.blocked_id for b in result)
                self._remember(owner_id, found)
            if isinstance(result, Failure):
                for w in waiting:
                    w.errback(result)
                return
            found = frozenset(b.blocked_id for b in result)
            for w in waiting:
                w.callback(found)

        self.store.blocks_of(owner_id, self.config.max_blocked).addBoth(loaded)
        return d

    def _remember(self, owner_id: int, blocked: frozenset[int]) -> None:
        cache = self._cache
        cache[owner_id] = blocked
        cache.move_to_end(owner_id)
        while len(cache) > self.config.cache_size:
            cache.popitem(last=False)

    def invalidate(self, owner_id: int) -> None:
        """Forget ``owner_id``'s cached list (a load running now will not be kept)."""
        self._cache.pop(owner_id, None)
        if owner_id in self._loading:
            self._generation[owner_id] = self._generation.get(owner_id, 0) + 1

    def invalidated(self, data: dict, sender: str) -> None:
        """Cluster command ``blocks/changed``: another node changed a user's list."""
        owner_id = data.get("owner_id")
        if type(owner_id) is int:
            self.invalidate(owner_id)

    def resumed(self, lost_at: float) -> None:
        """Invalidations may have been lost while the cluster was unreachable: forget them all."""
        for owner_id in list(self._loading):
            self._generation[owner_id] = self._generation.get(owner_id, 0) + 1
        self._cache.clear()

    # -- what other features and the message path ask

    def is_blocked(self, owner_id: int, other_id: int) -> defer.Deferred:
        """Fire with whether ``owner_id`` blocked ``other_id``."""
        found = self.blocked_by(owner_id)
        if isinstance(found, frozenset):
            return defer.succeed(other_id in found)
        return found.addCallback(lambda blocked: other_id in blocked)

    def send_check(self, sender: User, outgoing: Any) -> defer.Deferred | None:
        """On every 1:1 message: refused when its recipient blocked its sender."""
        found = self._cache.get(outgoing.to_id)
        if found is not None:  # the usual case: one dict lookup, no move_to_end on the hot path
            if sender.user_id in found:
                raise ChatError(ErrorCode.BLOCKED_BY_RECIPIENT, "the recipient does not accept your messages")
            return None
        return self._load(outgoing.to_id).addCallback(self._refuse_if, sender.user_id)

    @staticmethod
    def _refuse_if(blocked: frozenset[int], sender_id: int) -> None:
        if sender_id in blocked:
            raise ChatError(ErrorCode.BLOCKED_BY_RECIPIENT, "the recipient does not accept your messages")

    # -- changes

    async def set_blocked(self, user: User, device: Any, peer_id: int, blocked: bool) -> bool:
        """Block or unblock ``peer_id`` for ``user``; True when it changed anything."""
        owner_id = user.user_id
        if peer_id <= 0 or peer_id > MAX_ID or peer_id == owner_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "peer_id must be another user")
        wait = self._changes.take(str(owner_id))
        if wait:
            raise RateLimited("too many block list changes; try again later", wait)
        if blocked:
            if not await self.users.exists(peer_id):
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {peer_id}")
            try:
                changed = await self.store.block(owner_id, peer_id, int(self.clock.seconds()), self.config.max_blocked)
            except TooManyBlocked:
                raise ChatError(
                    ErrorCode.TOO_MANY_BLOCKED, f"at most {self.config.max_blocked} users may be blocked"
                ) from None
        else:
            changed = await self.store.unblock(owner_id, peer_id)
        if changed:
            self.invalidate(owner_id)
            self.api.broadcast("blocks/changed", {"owner_id": owner_id})
            push = BlockPush(owner_id, peer_id, blocked, int(self.clock.seconds()))
            self.api.router.push(owner_id, push, device)
            self.api.fire("block/changed", owner_id, peer_id, blocked)
        return changed

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: the user's block list goes, and so does every entry blocking them
        (the account no longer exists for anyone); each owner's other devices are told."""
        uid = user.user_id
        now = int(self.clock.seconds())
        for owner_id in sorted(set(await self.store.forget_user(uid)) | {uid}):
            self.invalidate(owner_id)
            self.api.broadcast("blocks/changed", {"owner_id": owner_id})
            if owner_id != uid:
                self.api.router.push(owner_id, BlockPush(owner_id, uid, False, now), None)

    async def listed(self, owner_id: int) -> list[tuple[Block, User | None]]:
        blocks = await self.store.blocks_of(owner_id, self.config.max_blocked)
        users = {u.user_id: u for u in await self.api.store.users_by_ids([b.blocked_id for b in blocks])}
        return [(b, users.get(b.blocked_id)) for b in blocks]


def setup(api: ModuleAPI) -> Blocks:
    """The block commands, their push, and the 1:1 send check."""
    messages = api.depends("messages")
    blocks = Blocks(api, messages.users, api.open_store(IBlockStore, SQLBlockStore), api.config)
    messages.add_send_check(SessionType.SINGLE, blocks.send_check)
    api.push_kind(BlockPush, name="block", cmd=Cmd.BLOCK_CHANGED_NOTIFY, encode=block_notify)
    api.cluster_command("blocks/changed", blocks.invalidated)
    api.hook("cluster/resumed", blocks.resumed)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(blocks.account_deleted(user)))

    @api.request(Cmd.BLOCK_SET_REQ)
    async def set_blocked(session: Session, req: pb.CIMBlockSetReq) -> pb.CIMBlockSetRsp:
        await blocks.set_blocked(session.user, session, req.peer_id, req.blocked)
        return pb.CIMBlockSetRsp(
            user_id=session.user_id,
            peer_id=req.peer_id,
            blocked=req.blocked,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
        )

    @api.request(Cmd.BLOCK_LIST_REQ)
    async def listed(session: Session, req: pb.CIMBlockListReq) -> pb.CIMBlockListRsp:
        found = await blocks.listed(session.user_id)
        return pb.CIMBlockListRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            blocked=[
                pb.CIMBlockedUser(
                    user_id=b.blocked_id,
                    nick_name=u.nick_name if u else "",
                    avatar_url=u.avatar_url if u else "",
                    blocked_time=b.created_at,
                )
                for b, u in found
            ],
        )

    return blocks
