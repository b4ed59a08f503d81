"""Groups as the handlers see them: a cache of each group and its members.

Why a cache: a group message must reach every member's devices, and looking the member list up
in storage for each message would cost a query per message (O(members) rows).  Each group is
loaded once and then kept current by applying every committed :class:`GroupChange` to it, so a
message costs no member query.  Storage stays authoritative for decisions that must be exact
(the sender's membership is checked in the transaction that stores the message); the cache
decides only who gets pushes, answers permission pre-checks and history visibility.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import (
    GroupForbidden,
    GroupFull,
    GroupNotFound,
    GroupRefused,
    IGroupStore,
    NotGroupMember,
    TooManyGroups,
)
from coffeechat.model import Group, GroupChange, GroupMember

MAX_CACHED_GROUPS = 10_000

_REFUSALS: list[tuple[type[GroupRefused], ErrorCode]] = [
    (GroupNotFound, ErrorCode.NOT_FOUND),
    (NotGroupMember, ErrorCode.FORBIDDEN),
    (GroupForbidden, ErrorCode.FORBIDDEN),
    (GroupFull, ErrorCode.GROUP_FULL),
    (TooManyGroups, ErrorCode.TOO_MANY_GROUPS),
]


def refusal_error(error: GroupRefused) -> ChatError:
    """The answer to a refusal of the store (see :class:`~coffeechat.interfaces.GroupRefused`)."""
    for kind, code in _REFUSALS:
        if isinstance(error, kind):
            return ChatError(code, str(error))
    return ChatError(ErrorCode.FORBIDDEN, str(error))


def translate_refusal(failure: Failure) -> Failure:
    """Errback: a store refusal becomes the ChatError the client is answered with."""
    if failure.check(GroupRefused):
        raise refusal_error(failure.value)
    return failure


class GroupState:
    """One group and its members (in order of seniority), kept current by the cache."""

    __slots__ = ("group", "members")

    def __init__(self, group: Group, members: list[GroupMember]) -> None:
        self.group = group
        self.members: dict[int, GroupMember] = {m.user_id: m for m in members}

    def role_of(self, user_id: int) -> int:
        """The user's role, 0 for a non-member."""
        member = self.members.get(user_id)
        return 0 if member is None else member.role

    def apply(self, change: GroupChange) -> None:
        """Apply a committed change.  Idempotent, so applying changes the state already contains
        (a load that read after them) leaves it right."""
        if change.group.version >= self.group.version:
            self.group = change.group
        members = self.members
        for m in change.removed:
            members.pop(m.user_id, None)
        for m in change.added:
            members.pop(m.user_id, None)  # a re-join goes to the end: the newest member
            members[m.user_id] = m
        for m in change.roles:
            if m.user_id in members:
                members[m.user_id] = m


class GroupCache:
    """Groups by id, loaded on first use, at most ``max_groups`` (least recently used go).

    Concurrent loads of one group share one query and resume in the order they were asked, so
    messages to a group not yet cached still reach storage in the order they were sent.
    Changes committed while a load is in flight are applied to what it loaded.
    """

    def __init__(self, store: IGroupStore, max_groups: int = MAX_CACHED_GROUPS) -> None:
        self.store = store
        self.max_groups = max_groups
        self._states: OrderedDict[int, GroupState] = OrderedDict()
        self._loading: dict[int, list[defer.Deferred]] = {}
        self._pending: dict[int, list[GroupChange]] = {}
        self._stale: set[int] = set()
        self.on_change: Callable[[int], None] | None = None  # in a cluster: tell the other nodes

    def get(self, group_id: int) -> defer.Deferred:
        """Fire with the GroupState (dismissed groups included), or None if there is no group."""
        state = self._states.get(group_id)
        if state is not None:
            self._states.move_to_end(group_id)
            return defer.succeed(state)
        d: defer.Deferred = defer.Deferred()
        waiters = self._loading.get(group_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._loading[group_id] = [d]
        self._pending[group_id] = []
        load = defer.gatherResults(
            [self.store.group_by_id(group_id), self.store.group_members(group_id)], consumeErrors=True
        )
        load.addBoth(self._loaded, group_id)
        return d

    def _loaded(self, result: list | Failure, group_id: int) -> None:
        waiters = self._loading.pop(group_id)
        pending = self._pending.pop(group_id)
        if isinstance(result, Failure):
            if result.check(defer.FirstError):
                result = result.value.subFailure
            for d in waiters:
                d.errback(result)
            return
        group, members = result
        state = None
        if group is not None:
            state = GroupState(group, members)
            for change in pending:
                state.apply(change)
            if group_id in self._stale:  # changed elsewhere while loading: serve it, do not keep it
                self._stale.discard(group_id)
            else:
                self._put(state)
        for d in waiters:
            d.callback(state)

    def _put(self, state: GroupState) -> None:
        self._states[state.group.group_id] = state
        self._states.move_to_end(state.group.group_id)
        while len(self._states) > self.max_groups:
            self._states.popitem(last=False)

    def created(self, change: GroupChange) -> GroupState:
        """Remember a group just created (its first change holds everything about it)."""
        state = GroupState(change.group, list(change.added))
        self._put(state)
        return state

    def apply(self, change: GroupChange) -> GroupState | None:
        """Apply a change just committed by storage to the cached group; return it (None when
        the group is not cached)."""
        group_id = change.group.group_id
        pending = self._pending.get(group_id)
        if pending is not None:
            pending.append(change)
        state = self._states.get(group_id)
        if state is not None:
            state.apply(change)
        if self.on_change is not None:
            self.on_change(group_id)
        return state

    def forget(self, group_id: int | None = None) -> None:
        """Drop the cached group (every group for None): another node changed it."""
        ids = list(self._states) if group_id is None else [group_id]
        for gid in ids:
            self._states.pop(gid, None)
        self._stale.update(self._loading if group_id is None else [g for g in ids if g in self._loading])

    def __len__(self) -> int:
        return len(self._states)
