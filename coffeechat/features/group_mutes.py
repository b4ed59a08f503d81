"""Per-member mute in groups: the owner or an admin mutes a member for a while.

Who may mute whom (docs/group-mutes.md): the owner any other member, admins included; an admin
plain members only; nobody themselves, and nobody the owner.  A mute lasts ``duration`` seconds
(1 up to ``[group_mutes] max_duration``); 0 lifts it.  It ends by itself: a mute is a time, and
the check compares it with ``api.clock``, so nothing sweeps expired mutes.  Leaving (or being
removed from) the group lifts one's mute; so does becoming the owner.

While muted, the member's group messages are refused with MEMBER_MUTED, whose reason says until
when.  The check is a send check on the group message path (``messages.add_send_check``): it is
answered from an in-memory cache of each group's mutes (a dict lookup on a hit, synchronous),
loaded from storage once per group on a miss, updated by every mute committed here and dropped
when another node commits one (cluster command ``group-mutes``).  As for other cached group
rules, a message racing a mute on another node may still be stored; one sent after the mute's
answer is not.

Every member's devices are told of each change (GROUP_MUTE_NOTIFY), and any member may list the
group's current mutes (GROUP_MUTE_LIST).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IDevice, ISQLDatabase, ISQLTransaction
from coffeechat.model import GroupChange, GroupRole, Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

SECTION = "group_mutes"
MAX_DURATION_LIMIT = 10 * 365 * 86400  # what max_duration may be set to: ten years


@dataclass
class Config:
    """[group_mutes]: the longest mute, and how many groups' mutes one node keeps in memory."""

    max_duration: int = 30 * 86400
    max_cached_groups: int = 10_000

    def validate(self) -> None:
        if not 1 <= self.max_duration <= MAX_DURATION_LIMIT:
            raise ConfigError(f"group_mutes.max_duration must be between 1 and {MAX_DURATION_LIMIT} seconds")
        if self.max_cached_groups < 1:
            raise ConfigError("group_mutes.max_cached_groups must be at least 1")


# -- storage


class MuteRefused(Exception):
    """A mute the store refused inside its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class GroupMute:
    """``user_id`` is muted in ``group_id`` until ``muted_until`` (unix seconds; 0: not muted),
    by ``muted_by`` since ``muted_at``."""

    group_id: int
    user_id: int
    muted_until: int
    muted_by: int
    muted_at: int


class IGroupMuteStore(Interface):
    """The group_mutes feature's storage (an SQL backend gets :class:`SQLGroupMuteStore`; tested by
    ``coffeechat.testing.conformance_group_mutes.GroupMuteStoreConformanceTests``)."""

    def set_mute(group_id: int, member_id: int, actor_id: int, muted_until: int, now: int):
        """Mute ``member_id`` until ``muted_until`` (lift the mute when it is not after ``now``), in
        one transaction that first checks the rules: the group exists and is not dismissed
        (NOT_FOUND), the actor is its owner or an admin (FORBIDDEN), the member is a member
        (NOT_FOUND) other than the actor (INVALID_ARGUMENT), not the owner, and not an admin
        unless the actor is the owner (FORBIDDEN).  Fails with :class:`MuteRefused`; fires with the
        GroupMute as it now is (``muted_until`` 0 when lifted)."""

    def mutes_of(group_id: int, now: int):
        """Fire with the group's mutes in force at ``now`` (``muted_until > now``), soonest to end
        first."""

    def lift(group_id: int, user_ids: list[int]):
        """Drop the mutes of ``user_ids`` in the group (they left it, or became its owner); fire
        with how many were in storage."""


_MUTE_COLS = "group_id, user_id, muted_until, muted_by, muted_at"


def _set_mute_txn(
    txn: ISQLTransaction, group_id: int, member_id: int, actor_id: int, muted_until: int, now: int
) -> GroupMute:
    group = txn.execute("SELECT dismissed FROM chat_groups WHERE group_id = ?", (group_id,)).fetchone()
    if group is None or bool(group[0]):
        raise MuteRefused(ErrorCode.NOT_FOUND, f"no group {group_id}")
    roles = dict(
        txn.execute(
            "SELECT user_id, role FROM group_members WHERE group_id = ? AND user_id IN (?, ?)",
            (group_id, actor_id, member_id),
        ).fetchall()
    )
    actor_role = roles.get(actor_id, 0)
    if actor_role < GroupRole.ADMIN:
        raise MuteRefused(ErrorCode.FORBIDDEN, "only the owner and admins may mute members")
    if member_id == actor_id:
        raise MuteRefused(ErrorCode.INVALID_ARGUMENT, "one cannot mute oneself")
    member_role = roles.get(member_id)
    if member_role is None:
        raise MuteRefused(ErrorCode.NOT_FOUND, f"user {member_id} is not a member of this group")
    if member_role >= GroupRole.OWNER:
        raise MuteRefused(ErrorCode.FORBIDDEN, "the owner cannot be muted")
    if member_role >= GroupRole.ADMIN and actor_role < GroupRole.OWNER:
        raise MuteRefused(ErrorCode.FORBIDDEN, "only the owner may mute an admin")
    if muted_until <= now:
        txn.execute("DELETE FROM group_mutes WHERE group_id = ? AND user_id = ?", (group_id, member_id))
        return GroupMute(group_id, member_id, 0, actor_id, now)
    txn.execute(
        f"INSERT INTO group_mutes ({_MUTE_COLS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, user_id) DO UPDATE "
        "SET muted_until = excluded.muted_until, muted_by = excluded.muted_by, muted_at = excluded.muted_at",
        (group_id, member_id, muted_until, actor_id, now),
    )
    return GroupMute(group_id, member_id, muted_until, actor_id, now)


def _mutes_txn(txn: ISQLTransaction, group_id: int, now: int) -> list[GroupMute]:
    rows = txn.execute(
        f"SELECT {_MUTE_COLS} FROM group_mutes WHERE group_id = ? AND muted_until > ? ORDER BY muted_until, user_id",
        (group_id, now),
    ).fetchall()
    return [GroupMute(*r) for r in rows]


def _lift_txn(txn: ISQLTransaction, group_id: int, user_ids: list[int]) -> int:
    clause, params = txn.in_list("user_id", user_ids)
    cur = txn.execute(f"DELETE FROM group_mutes WHERE group_id = ? AND {clause}", (group_id, *params))
    return max(0, cur.rowcount)


@implementer(IGroupMuteStore)
class SQLGroupMuteStore:
    """IGroupMuteStore written once for every SQL backend (its table: group_mutes.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def set_mute(self, group_id: int, member_id: int, actor_id: int, muted_until: int, now: int) -> defer.Deferred:
        return self.db.run_write(
            "set_mute",
            _set_mute_txn,
            int(group_id),
            int(member_id),
            int(actor_id),
            int(muted_until),
            int(now),
            locks=(f"g:{int(group_id)}",),
        )

    def mutes_of(self, group_id: int, now: int) -> defer.Deferred:
        return self.db.run_read("mutes_of", _mutes_txn, int(group_id), int(now))

    def lift(self, group_id: int, user_ids: list[int]) -> defer.Deferred:
        ids = [int(u) for u in user_ids]
        if not ids:
            return defer.succeed(0)
        return self.db.run_write("lift_mutes", _lift_txn, int(group_id), ids)


# -- the push


@dataclass(slots=True)
class GroupMutePush(Push):
    """GROUP_MUTE_NOTIFY: ``member_id`` is muted in ``group_id`` until ``muted_until`` (0: no
    longer), by ``actor_id``."""

    group_id: int
    actor_id: int
    member_id: int
    muted_until: int


def mute_notify(push: GroupMutePush) -> pb.CIMGroupMuteNotify:
    return pb.CIMGroupMuteNotify(
        group_id=push.group_id, actor_id=push.actor_id, member_id=push.member_id, muted_until=push.muted_until
    )


def mute_info(mute: GroupMute) -> pb.CIMGroupMuteInfo:
    return pb.CIMGroupMuteInfo(
        user_id=mute.user_id, muted_until=mute.muted_until, muted_by=mute.muted_by, muted_at=mute.muted_at
    )


def until_text(muted_until: int) -> str:
    """A mute's end for people: ISO 8601 in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(muted_until))


# -- the service


class MuteCache:
    """Each group's mutes as ``{user_id: muted_until}``, at most ``max_groups`` groups (least
    recently used go).  Concurrent loads of one group share one query; a group dropped while it
    loads is served from that load but not kept (it changed elsewhere meanwhile)."""

    def __init__(self, load: Any, max_groups: int) -> None:
        self._load = load  # group_id -> Deferred[list[GroupMute]]
        self.max_groups = max_groups
        self.groups: OrderedDict[int, dict[int, int]] = OrderedDict()
        self._loading: dict[int, list[defer.Deferred]] = {}
        self._stale: set[int] = set()

    def get(self, group_id: int) -> defer.Deferred:
        cached = self.groups.get(group_id)
        if cached is not None:
            return defer.succeed(cached)
        d: defer.Deferred = defer.Deferred()
        waiters = self._loading.get(group_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._loading[group_id] = [d]
        self._load(group_id).addBoth(self._loaded, group_id)
        return d

    def _loaded(self, result: list[GroupMute] | Failure, group_id: int) -> None:
        waiters = self._loading.pop(group_id)
        stale = group_id in self._stale
        self._stale.discard(group_id)
        if isinstance(result, Failure):
            for d in waiters:
                d.errback(result)
            return
        mutes = {m.user_id: m.muted_until for m in result}
        if not stale:
            self.groups[group_id] = mutes
            while len(self.groups) > self.max_groups:
                self.groups.popitem(last=False)
        for d in waiters:
            d.callback(mutes)

    def update(self, mute: GroupMute) -> None:
        """A mute committed here: keep the cached group (if any) in step."""
        cached = self.groups.get(mute.group_id)
        if group_loading := mute.group_id in self._loading:
            self._stale.add(mute.group_id)
        if cached is None or group_loading:
            return
        if mute.muted_until:
            cached[mute.user_id] = mute.muted_until
        else:
            cached.pop(mute.user_id, None)

    def forget(self, group_id: int | None = None) -> None:
        """Drop a group's mutes (all groups for None): they changed on another node."""
        if group_id is None:
            self.groups.clear()
            self._stale.update(self._loading)
            return
        self.groups.pop(group_id, None)
        if group_id in self._loading:
            self._stale.add(group_id)


class GroupMutes:
    """Mutes and unmutes members for their group's owner and admins, lists the mutes, and refuses
    muted members' group messages (the groups feature's send check)."""

    def __init__(self, api: ModuleAPI, groups: Any, store: IGroupMuteStore, config: Config) -> None:
        self.api = api
        self.groups = groups
        self.messages = groups.messages
        self.store = store
        self.config = config
        self.clock = api.clock
        self.cache = MuteCache(self._load, config.max_cached_groups)

    def _now(self) -> int:
        return int(self.clock.seconds())

    def _load(self, group_id: int) -> defer.Deferred:
        return self.store.mutes_of(group_id, self._now())

    # -- the send check (on the group message path)

    def check(self, sender: User, outgoing: Any) -> defer.Deferred | None:
        """Refuse a muted sender's group message: synchronous on a cache hit."""
        mutes = self.cache.groups.get(outgoing.to_id)
        if mutes is not None:
            if mutes:
                self._verdict(mutes, sender.user_id)
            return None
        return self.cache.get(outgoing.to_id).addCallback(self._verdict, sender.user_id)

    def _verdict(self, mutes: dict[int, int], user_id: int) -> None:
        until = mutes.get(user_id)
        if until is not None:
            if until > self.clock.seconds():
                raise ChatError(ErrorCode.MEMBER_MUTED, f"you are muted in this group until {until_text(until)}")
            mutes.pop(user_id, None)  # ended by itself

    # -- the commands

    async def mute(self, user: User, device: IDevice | None, group_id: int, member_id: int, duration: int) -> GroupMute:
        """``user`` mutes ``member_id`` for ``duration`` seconds (0: lifts the mute)."""
        if member_id <= 0:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "member_id must be a user id")
        if duration < 0 or duration > self.config.max_duration:
            raise ChatError(
                ErrorCode.INVALID_ARGUMENT, f"duration must be 0 (unmute) to {self.config.max_duration} seconds"
            )
        state, me = await self.groups.member(user.user_id, group_id)
        if me.role < GroupRole.ADMIN:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner and admins may mute members")
        if member_id == user.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "one cannot mute oneself")
        role = state.role_of(member_id)
        if not role:
            raise ChatError(ErrorCode.NOT_FOUND, f"user {member_id} is not a member of this group")
        if role >= GroupRole.OWNER or (role >= GroupRole.ADMIN and me.role < GroupRole.OWNER):
            raise ChatError(ErrorCode.FORBIDDEN, "the owner cannot be muted, and only the owner may mute an admin")
        now = self._now()
        try:
            mute = await self.store.set_mute(group_id, member_id, user.user_id, now + duration if duration else 0, now)
        except MuteRefused as e:
            raise ChatError(e.code, str(e)) from None
        self._changed(mute)
        push = GroupMutePush(group_id, user.user_id, member_id, mute.muted_until)
        members = list(state.members)
        self.messages.fan_out(push, members if member_id in members else [*members, member_id], device)
        return mute

    async def mutes(self, user: User, group_id: int) -> list[GroupMute]:
        """The group's mutes in force (members only)."""
        await self.groups.member(user.user_id, group_id)
        return await self.store.mutes_of(group_id, self._now())

    def _changed(self, mute: GroupMute) -> None:
        self.cache.update(mute)
        self.api.broadcast("group-mutes", {"g": mute.group_id})

    def _changed_elsewhere(self, data: dict, sender: str) -> None:
        self.cache.forget(int(data["g"]))

    def group_changed(self, change: GroupChange) -> defer.Deferred | None:
        """Members who left (or were removed) and a new owner are muted no more."""
        gone = [m.user_id for m in change.removed]
        gone += [m.user_id for m in change.roles if m.role >= GroupRole.OWNER]
        if not gone:
            return None
        group_id = change.group.group_id
        now = self._now()
        cached = self.cache.groups.get(group_id)
        if cached is not None and not any(u in cached for u in gone):
            return None
        d = self.store.lift(group_id, gone)

        def lifted(count: int) -> None:
            for user_id in gone:
                self.cache.update(GroupMute(group_id, user_id, 0, 0, now))
            if count:
                self.api.broadcast("group-mutes", {"g": group_id})

        d.addCallback(lifted)
        d.addErrback(
            lambda f: self.api.log.failure("lifting the mutes of {ids} in group {g} failed", f, ids=gone, g=group_id)
        )
        return d


def setup(api: ModuleAPI) -> GroupMutes:
    """The mute commands, their notify, the send check and what other nodes must hear."""
    groups = api.depends("groups")
    mutes = GroupMutes(api, groups, api.open_store(IGroupMuteStore, SQLGroupMuteStore), api.config)
    api.push_kind(GroupMutePush, name="group-mute", cmd=Cmd.GROUP_MUTE_NOTIFY, encode=mute_notify)
    groups.messages.add_send_check(SessionType.GROUP, mutes.check)
    api.cluster_command("group-mutes", mutes._changed_elsewhere)
    api.hook("cluster/resumed", lambda lost_at: mutes.cache.forget(None))
    api.hook("group/changed", mutes.group_changed)

    @api.request(Cmd.GROUP_MUTE_MEMBER_REQ)
    async def mute(session: Session, req: pb.CIMGroupMuteMemberReq) -> pb.CIMGroupMuteMemberRsp:
        done = await mutes.mute(session.user, session, req.group_id, req.member_id, req.duration)
        return pb.CIMGroupMuteMemberRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            member_id=req.member_id,
            muted_until=done.muted_until,
        )

    @api.request(Cmd.GROUP_MUTE_LIST_REQ)
    async def listed(session: Session, req: pb.CIMGroupMuteListReq) -> pb.CIMGroupMuteListRsp:
        found = await mutes.mutes(session.user, req.group_id)
        return pb.CIMGroupMuteListRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            mutes=[mute_info(m) for m in found],
        )

    return mutes
