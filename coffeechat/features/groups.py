"""Groups: the group commands of CIM v1 and our extensions, group conversations, and what other
nodes must hear of group changes.

Roles and permissions (docs/groups.md has the table): the creator owns a group; the owner and
admins manage it; any member may leave.  Each rule is checked here against the cached group for
a prompt, precise answer, and again by storage in the writing transaction (the actor's role,
limits, a dismissed group), so that a concurrent change can never let a refused action through.
After every committed change, every member's devices (and those of members just removed) get
GROUP_MEMBER_CHANGED (:class:`GroupChangedPush`) and the group timeline gets a NOTIFICATION
message, pushed like any other message.  A crash between the change and its notice loses the
notice only; the change itself was committed first.

Why a cache of each group and its members: a group message must reach every member's devices,
and looking the member list up in storage for each message would cost a query per message
(O(members) rows).  Each group is loaded once and then kept current by applying every committed
:class:`GroupChange` to it.  Storage stays authoritative for decisions that must be exact (the
sender's membership is checked in the transaction that stores the message); the cache decides
who gets pushes, answers permission pre-checks and history visibility.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import (
    ConversationKind,
    Located,
    MessagePush,
    Messages,
    Outgoing,
    ReadPush,
    check_content,
    checked_client_msg_id,
    message_data,
)
from coffeechat.interfaces import (
    GroupForbidden,
    GroupFull,
    GroupNotFound,
    GroupRefused,
    IDevice,
    IGroupStore,
    IStore,
    NotGroupMember,
    TooManyGroups,
)
from coffeechat.model import (
    AppendResult,
    BeInviteModel,
    ConversationEntry,
    Group,
    GroupChange,
    GroupMember,
    GroupRole,
    GroupType,
    JoinModel,
    MemberChange,
    Message,
    MuteModel,
    NewMessage,
    Push,
    SessionType,
    User,
)
from coffeechat.modules import ModuleAPI
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

SECTION = "groups"
_GROUP = int(SessionType.GROUP)


@dataclass
class Config:
    """[groups]: member limits (by group type) and how many groups one user may be in (0: any)."""

    max_normal_members: int = 200
    max_super_members: int = 2000
    max_groups_per_user: int = 0

    def validate(self) -> None:
        if self.max_normal_members < 2:
            raise ConfigError("groups.max_normal_members must be at least 2")
        if self.max_super_members < self.max_normal_members:
            raise ConfigError("groups.max_super_members must be at least groups.max_normal_members")
        if self.max_groups_per_user < 0:
            raise ConfigError("groups.max_groups_per_user must be >= 0 (0 means no limit)")

    def max_members(self, group_type: int) -> int:
        return self.max_super_members if group_type == GroupType.SUPER else self.max_normal_members


@dataclass(slots=True)
class GroupChangedPush(Push):
    """GROUP_MEMBER_CHANGED_NOTIFY: group ``group_id`` changed (by ``actor_id``); ``changes`` lists
    ``(user_id, MemberChange, role)`` (empty for an info update)."""

    group_id: int
    actor_id: int
    version: int
    changes: tuple[tuple[int, int, int], ...] = ()


def group_changed(push: GroupChangedPush) -> pb.CIMGroupMemberChangedNotify:
    return pb.CIMGroupMemberChangedNotify(
        user_id=push.actor_id,
        group_id=push.group_id,
        group_version=push.version,
        changed_list=[pb.CIMGroupMemberChangedInfo(user_id=u, type=t, role=r) for u, t, r in push.changes],
    )


# -- the cache of groups

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

    def __init__(
        self, store: IGroupStore, on_change: Callable[[int], None] | None = None, max_groups: int = MAX_CACHED_GROUPS
    ) -> None:
        self.store = store
        self.max_groups = max_groups
        self._states: OrderedDict[int, GroupState] = OrderedDict()
        self._loading: dict[int, list[defer.Deferred]] = {}
        self._pending: dict[int, list[GroupChange]] = {}
        self._stale: set[int] = set()
        self.on_change = on_change  # a change committed here (the groups feature tells other nodes)

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


# CIMMsgNotificationType
NOTICE_CREATE = 1
NOTICE_INVITE = 2
NOTICE_KICK = 3
NOTICE_LEAVE = 4
NOTICE_UPDATE = 5
NOTICE_DISMISS = 6

MAX_NAME = 64
MAX_INTRO = 512
MAX_ANNOUNCEMENT = 2048
MAX_AVATAR = 512
MAX_IDS_PER_REQUEST = 2000
GENERATED_NAME_NICKS = 3

# Fields of an update: text limits, allowed model values, and their keys in the notice JSON.
_TEXT_LIMITS = {"name": MAX_NAME, "intro": MAX_INTRO, "announcement": MAX_ANNOUNCEMENT, "avatar": MAX_AVATAR}
_MODEL_VALUES = {
    "mute_model": {int(v) for v in MuteModel},
    "join_model": {int(v) for v in JoinModel},
    "be_invite_model": {int(v) for v in BeInviteModel},
}
_NOTICE_KEYS = {
    "name": "groupName",
    "intro": "groupIntro",
    "announcement": "announcement",
    "avatar": "groupAvatar",
    "mute_model": "muteModel",
    "join_model": "joinModel",
    "be_invite_model": "beInviteModel",
}


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    """What a group command did: the group afterwards, its member ids (create), and the
    NOTIFICATION message appended about it with its sender's nick (None when nothing changed)."""

    group: Group
    member_ids: tuple[int, ...] = ()
    notice: Message | None = None
    notice_nick: str = ""


def _ids(values: Iterable[int], exclude: int = 0) -> list[int]:
    """Distinct positive ids in the order given, without ``exclude``."""
    out = list(dict.fromkeys(int(v) for v in values if int(v) != exclude))
    if any(v <= 0 for v in out):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "user ids must be positive")
    if len(out) > MAX_IDS_PER_REQUEST:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_IDS_PER_REQUEST} ids per request")
    return out


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{field} must be a string")
    value = value.strip()
    if len(value) > _TEXT_LIMITS[field]:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{field} is limited to {_TEXT_LIMITS[field]} characters")
    if field == "name" and not value:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "a group name must not be blank")
    return value


def _strs(ids: Iterable[int]) -> list[str]:
    return [str(i) for i in ids]


def invite_min_role(group: Group) -> int:
    """The role inviting to ``group`` takes: any member's (DEFAULT), the owner's and admins' (NEED_AUTH)."""
    return int(GroupRole.ADMIN if group.join_model == JoinModel.NEED_AUTH else GroupRole.MEMBER)


class Groups:
    """Creates and manages groups on behalf of an authenticated user; the groups feature's service
    (``api.depends("groups")``: ``cache``, ``member``)."""

    def __init__(self, api: ModuleAPI, messages: Messages, config: Config) -> None:
        self.api = api
        self.store: IStore = api.store
        self.messages = messages
        self.router = api.router
        self.clock: IReactorTime = api.clock
        self.config = config
        self.cache = GroupCache(api.store, on_change=self._changed_here)
        self.kind = GroupChats(self)
        messages.register_kind(self.kind)
        # Set by the group_requests feature: ``await consent(inviter, device, state, ids)`` keeps a
        # pending invitation for those of ``ids`` who must agree first and returns the others.
        # Without it, groups whose invitees must agree take no invitations.  ``consent_needed(ids)``
        # fires with those of ``ids`` who want to agree to every invitation (group creation too).
        self.invite_consent: Callable[..., Any] | None = None
        self.consent_needed: Callable[[list[int]], Any] | None = None

    def _changed_here(self, group_id: int) -> None:
        """A group change committed here: other nodes drop their copy of the group."""
        self.api.broadcast("group-changed", {"g": group_id})

    def _changed_elsewhere(self, data: dict, sender: str) -> None:
        self.cache.forget(int(data["g"]))

    def _now(self) -> int:
        return int(self.clock.seconds())

    async def _write(self, d: Any) -> GroupChange:
        """Await a store write; its refusals become the errors clients are answered with."""
        try:
            return await d
        except GroupRefused as e:
            raise refusal_error(e) from None

    async def _nicks(self, user_ids: list[int]) -> dict[int, str]:
        return {u.user_id: u.nick_name for u in await self.store.users_by_ids(user_ids)}

    async def _users_exist(self, user_ids: list[int]) -> dict[int, str]:
        nicks = await self._nicks(user_ids)
        missing = [u for u in user_ids if u not in nicks]
        if missing:
            raise ChatError(ErrorCode.USER_NOT_EXIST, f"no users {missing}")
        return nicks

    def _committed(self, change: GroupChange, actor: User, state: GroupState) -> None:
        """Keep the cache (and ``state``, the group as this request saw it) current, and tell
        every member's devices, and those of every removed member, what changed."""
        cached = self.cache.apply(change)
        if cached is not state:
            state.apply(change)
        self.api.fire("group/changed", change)
        changes = (
            [(m.user_id, MemberChange.ADD, m.role) for m in change.added]
            + [(m.user_id, MemberChange.DEL, 0) for m in change.removed]
            + [(m.user_id, MemberChange.ROLE, m.role) for m in change.roles]
        )
        group = change.group
        push = GroupChangedPush(group.group_id, actor.user_id, group.version, tuple(changes))
        members = state.members
        removed = [m.user_id for m in change.removed if m.user_id not in members]
        self.messages.fan_out(push, [*members, *removed])

    async def _outcome(
        self, actor: User, device: IDevice | None, group: Group, body: dict, also_to: Iterable[int] = ()
    ) -> GroupOutcome:
        """Post the NOTIFICATION message about a change to the members (and to ``also_to``, just
        removed, who no longer are members)."""
        state = await self.cache.get(group.group_id)
        members = state.members if state is not None else {}
        audience = [*members, *(u for u in also_to if u not in members)]
        notice = await self.messages.post_notice(actor, device, SessionType.GROUP, group.group_id, body, audience)
        return GroupOutcome(group, notice=notice, notice_nick=actor.nick_name)

    async def member(self, user_id: int, group_id: int) -> tuple[GroupState, GroupMember]:
        """The group and the user's membership; NOT_FOUND for no (or a dismissed) group,
        FORBIDDEN for a non-member (a kicked user included)."""
        state = await self.cache.get(group_id) if group_id > 0 else None
        if state is None or state.group.dismissed:
            raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
        member = state.members.get(user_id)
        if member is None:
            raise ChatError(ErrorCode.FORBIDDEN, "not a member of this group")
        return state, member

    async def _state(self, user: User, group_id: int) -> tuple[GroupState, GroupMember]:
        return await self.member(user.user_id, group_id)

    # -- the CIM v1 commands

    async def create(
        self, user: User, device: IDevice | None, name: str, member_ids: Iterable[int], group_type: int = 0
    ) -> GroupOutcome:
        """A group owned by ``user`` with the given members; an empty name is made of the
        first members' nicks."""
        group_type = group_type or GroupType.NORMAL
        if group_type not in (GroupType.NORMAL, GroupType.SUPER):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "group_type must be 1 (normal) or 2 (super)")
        ids = _ids(member_ids, exclude=user.user_id)
        limit = self.config.max_members(group_type)
        if len(ids) + 1 > limit:
            raise ChatError(ErrorCode.GROUP_FULL, f"a group has at most {limit} members")
        nicks = await self._users_exist(ids)
        waiting: list[int] = []
        if self.invite_consent is not None and self.consent_needed is not None and ids:
            needed = await self.consent_needed(ids)  # they are invited, not added
            waiting = [i for i in ids if i in needed]
            ids = [i for i in ids if i not in needed]
        name = (name or "").strip()
        if name:
            name = _text("name", name)
        else:
            first = [user.nick_name, *(nicks[i] for i in ids[: GENERATED_NAME_NICKS - 1])]
            name = ", ".join(first) + ("…" if len(ids) >= GENERATED_NAME_NICKS else "")
            name = name[:MAX_NAME]
        change = await self._write(
            self.store.create_group(
                user.user_id, name, int(group_type), ids, self._now(), limit, self.config.max_groups_per_user
            )
        )
        state = self.cache.created(change)
        self._committed(change, user, state)
        group = change.group
        members = [m.user_id for m in change.added]
        body = {
            "notificationType": NOTICE_CREATE,
            "data": {
                "groupId": str(group.group_id),
                "groupName": group.name,
                "owner": str(user.user_id),
                "ownerNick": user.nick_name,
                "ids": _strs(ids),
                "nickNames": [nicks[i] for i in ids],
            },
        }
        outcome = await self._outcome(user, device, group, body)
        if waiting:
            try:
                await self.invite_consent(user, device, state, waiting)
            except ChatError as e:  # the group exists: those over a bound are just not invited
                self.api.log.warn("group {g}: invitations at creation refused: {e}", g=group.group_id, e=e)
        return GroupOutcome(group, tuple(members), outcome.notice, outcome.notice_nick)

    async def dismiss(self, user: User, device: IDevice | None, group_id: int) -> GroupOutcome:
        """The owner ends the group: every member loses it; they are told first."""
        state, me = await self._state(user, group_id)
        if me.role < GroupRole.OWNER:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner may dismiss the group")
        change = await self._write(self.store.dismiss_group(group_id, user.user_id, GroupRole.OWNER, self._now()))
        self._committed(change, user, state)
        body = {"notificationType": NOTICE_DISMISS, "data": {"groupId": str(group_id)}}
        return await self._outcome(user, device, change.group, body, [m.user_id for m in change.removed])

    async def exit(self, user: User, device: IDevice | None, group_id: int) -> GroupOutcome:
        """Leave a group.  An owner hands it to the longest-standing member; the last one out
        dismisses it."""
        state, _ = await self._state(user, group_id)
        change = await self._write(
            self.store.remove_members(group_id, user.user_id, GroupRole.MEMBER, [user.user_id], self._now())
        )
        self._committed(change, user, state)
        data: dict[str, Any] = {"groupId": str(group_id), "ids": [str(user.user_id)], "nickNames": [user.nick_name]}
        if change.roles:
            data["owner"] = str(change.group.owner_id)
        body = {"notificationType": NOTICE_LEAVE, "data": data}
        return await self._outcome(user, device, change.group, body, [user.user_id])

    async def list_groups(self, user: User) -> list[tuple[int, int]]:
        """``(group id, version)`` of every group the user is in."""
        return [(g.group_id, g.version) for g in await self.store.groups_of(user.user_id)]

    async def info(self, user: User, versions: Iterable[tuple[int, int]]) -> list[Group]:
        """The user's groups among ``versions`` whose version differs from the client's (all
        of them when ``versions`` is empty); groups the user is not in are left out."""
        mine = {g.group_id: g for g in await self.store.groups_of(user.user_id)}
        wanted = list(versions)
        if not wanted:
            return list(mine.values())
        out = []
        for group_id, version in dict(wanted).items():
            group = mine.get(group_id)
            if group is not None and group.version != version:
                out.append(group)
        return out

    async def invite(
        self, user: User, device: IDevice | None, group_id: int, member_ids: Iterable[int]
    ) -> GroupOutcome:
        """Add members (docs/groups.md: join_model DEFAULT lets any member invite, NEED_AUTH only
        the owner and admins, REJECT nobody; be_invite_model NEED_AGREE takes no invitations,
        since CIM v1 has no way to ask the invitee)."""
        requested = list(member_ids)
        state, me = await self._state(user, group_id)
        group = state.group
        if group.join_model == JoinModel.REJECT:
            raise ChatError(ErrorCode.FORBIDDEN, "this group takes no new members")
        if group.join_model == JoinModel.NEED_AUTH and me.role < GroupRole.ADMIN:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner and admins may invite to this group")
        if group.be_invite_model == BeInviteModel.NEED_AGREE and self.invite_consent is None:
            raise ChatError(ErrorCode.NOT_SUPPORTED, "invitations needing the invitee's consent are not enabled")
        if not requested:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nobody to invite")
        ids = [i for i in _ids(requested) if i not in state.members]
        if not ids:
            return GroupOutcome(group)
        limit = self.config.max_members(group.group_type)
        if group.member_count + len(ids) > limit:
            raise ChatError(ErrorCode.GROUP_FULL, f"this group has at most {limit} members")
        nicks = await self._users_exist(ids)
        if self.invite_consent is not None:
            ids = list(await self.invite_consent(user, device, state, ids))
            if not ids:
                return GroupOutcome(group)
        return await self._add(user, device, state, user.user_id, invite_min_role(group), ids, nicks)

    async def _add(
        self,
        actor: User,
        device: IDevice | None,
        state: GroupState,
        authority_id: int,
        min_role: int,
        ids: list[int],
        nicks: dict[int, str],
        extra: dict[str, Any] | None = None,
    ) -> GroupOutcome:
        """Add ``ids`` on the authority of member ``authority_id`` (whose role, at least
        ``min_role``, storage checks again), then tell everyone: the invite notice from ``actor``."""
        group_id = state.group.group_id
        limit = self.config.max_members(state.group.group_type)
        change = await self._write(
            self.store.add_members(
                group_id, authority_id, min_role, ids, self._now(), limit, self.config.max_groups_per_user
            )
        )
        if not change.added:
            return GroupOutcome(change.group)
        self._committed(change, actor, state)
        added = [m.user_id for m in change.added]
        body = {
            "notificationType": NOTICE_INVITE,
            "data": {
                "groupId": str(group_id),
                "userId": str(authority_id),
                "ids": _strs(added),
                "nickNames": [nicks.get(i, "") for i in added],
                **(extra or {}),
            },
        }
        return await self._outcome(actor, device, change.group, body)

    async def admit(
        self,
        actor: User,
        device: IDevice | None,
        group_id: int,
        user_id: int,
        authority_id: int,
        min_role: int,
        join_type: str,
    ) -> GroupOutcome:
        """Add one user whose request was approved (``authority_id`` = the approver, an admin) or
        who accepted an invitation (``authority_id`` = the inviter, with the role inviting needs):
        the group store checks that authority again in its transaction, as for an invitation."""
        state = await self.cache.get(group_id) if group_id > 0 else None
        if state is None or state.group.dismissed:
            raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
        if user_id in state.members:
            return GroupOutcome(state.group)
        nicks = await self._users_exist([user_id])
        return await self._add(actor, device, state, authority_id, min_role, [user_id], nicks, {"joinType": join_type})

    async def transfer_owner(
        self, user: User, device: IDevice | None, group_id: int, new_owner_id: int
    ) -> GroupOutcome:
        """The owner hands the group to another member and stays on as an admin (docs/groups.md)."""
        state, me = await self._state(user, group_id)
        if me.role < GroupRole.OWNER:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner may hand the group over")
        if new_owner_id == user.user_id or new_owner_id not in state.members:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "new_owner_id must be another member of the group")
        nicks = await self._nicks([new_owner_id])
        change = await self._write(self.store.transfer_owner(group_id, user.user_id, new_owner_id, self._now()))
        self._committed(change, user, state)
        data = {
            "groupId": str(group_id),
            "userId": str(user.user_id),
            "owner": str(new_owner_id),
            "ownerNick": nicks.get(new_owner_id, ""),
        }
        return await self._outcome(user, device, change.group, {"notificationType": NOTICE_UPDATE, "data": data})

    async def kick(self, user: User, device: IDevice | None, group_id: int, member_ids: Iterable[int]) -> GroupOutcome:
        """Remove members: the owner may remove anyone else, an admin only plain members."""
        state, me = await self._state(user, group_id)
        if me.role < GroupRole.ADMIN:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner and admins may remove members")
        ids = _ids(member_ids)
        if not ids:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nobody to remove")
        if user.user_id in ids:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "to leave a group, exit it")
        protect = GroupRole.OWNER if me.role == GroupRole.OWNER else GroupRole.ADMIN
        if any(state.role_of(i) >= protect for i in ids):
            raise ChatError(ErrorCode.FORBIDDEN, "admins cannot remove the owner or other admins")
        present = [i for i in ids if i in state.members]
        if not present:
            return GroupOutcome(state.group)
        nicks = await self._nicks(present)
        change = await self._write(
            self.store.remove_members(group_id, user.user_id, GroupRole.ADMIN, ids, self._now(), protect)
        )
        if not change.removed:
            return GroupOutcome(change.group)
        self._committed(change, user, state)
        removed = [m.user_id for m in change.removed]
        body = {
            "notificationType": NOTICE_KICK,
            "data": {
                "groupId": str(group_id),
                "ownerUserId": str(user.user_id),
                "ids": _strs(removed),
                "nickNames": [nicks.get(i, "") for i in removed],
            },
        }
        return await self._outcome(user, device, change.group, body, removed)

    async def members(self, user: User, group_id: int) -> list[GroupMember]:
        """The members, by seniority (members only)."""
        state, _ = await self._state(user, group_id)
        return list(state.members.values())

    # -- extensions

    async def update(self, user: User, device: IDevice | None, group_id: int, fields: dict[str, Any]) -> GroupOutcome:
        """Change name, intro, announcement, avatar, mute/join/invite models (owner and admins)."""
        checked: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None:
                continue
            if key in _TEXT_LIMITS:
                checked[key] = _text(key, value)
            elif key in _MODEL_VALUES:
                if value not in _MODEL_VALUES[key]:
                    raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{key} {value} is not known")
                checked[key] = int(value)
            else:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{key} cannot be changed")
        if not checked:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nothing to change")
        state, me = await self._state(user, group_id)
        if me.role < GroupRole.ADMIN:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner and admins may change the group")
        change = await self._write(
            self.store.update_group(group_id, user.user_id, GroupRole.ADMIN, checked, self._now())
        )
        self._committed(change, user, state)
        data: dict[str, Any] = {"groupId": str(group_id), "userId": str(user.user_id)}
        data.update({_NOTICE_KEYS[k]: v for k, v in checked.items()})
        return await self._outcome(user, device, change.group, {"notificationType": NOTICE_UPDATE, "data": data})

    async def set_admins(
        self, user: User, device: IDevice | None, group_id: int, member_ids: Iterable[int], is_admin: bool
    ) -> GroupOutcome:
        """The owner makes members admins, or admins members again."""
        state, me = await self._state(user, group_id)
        if me.role < GroupRole.OWNER:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner may appoint admins")
        ids = _ids(member_ids, exclude=user.user_id)
        if not ids:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nobody to appoint")
        role = GroupRole.ADMIN if is_admin else GroupRole.MEMBER
        change = await self._write(
            self.store.set_member_roles(group_id, user.user_id, GroupRole.OWNER, ids, role, self._now())
        )
        if not change.roles:
            return GroupOutcome(change.group)
        self._committed(change, user, state)
        data = {
            "groupId": str(group_id),
            "userId": str(user.user_id),
            "adminIds" if is_admin else "memberIds": _strs(m.user_id for m in change.roles),
        }
        return await self._outcome(user, device, change.group, {"notificationType": NOTICE_UPDATE, "data": data})


# -- group conversations


class GroupChats(ConversationKind):
    """Group conversations (``g:<group id>``): members send, everybody else in it receives, one
    sees the history from one's join, and reads are told to one's own devices only."""

    session_type = _GROUP

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    def send(self, sender: User, device: IDevice | None, outgoing: Outgoing) -> defer.Deferred:
        """Stored once for the group; membership, mute and @all are checked by the store in the
        storing transaction; then one Push goes to every member's devices."""
        messages = self.groups.messages
        group_id = outgoing.to_id
        try:
            if group_id <= 0:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "to_session_id must be a group id")
            client_msg_id = checked_client_msg_id(outgoing.client_msg_id)
            check_content(outgoing.msg_type, outgoing.data, messages.limits, messages.msg_types, outgoing.origin)
        except ChatError as e:
            return defer.fail(e)
        at_all = outgoing.at_all
        wanted = list(outgoing.mentions)

        def group_found(state: GroupState | None) -> defer.Deferred:
            if state is None or state.group.dismissed:
                raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
            members = state.members
            mentioned = tuple(dict.fromkeys(u for u in wanted if u in members and u != sender.user_id))

            def append(_: object = None) -> defer.Deferred:
                # Built after the checks: a check may rewrite the body (moderation).
                return messages.append(
                    NewMessage(
                        conv=state.group.conv,
                        session_type=_GROUP,
                        sender_id=sender.user_id,
                        to_id=group_id,
                        client_msg_id=client_msg_id,
                        msg_type=outgoing.msg_type,
                        data=outgoing.data,
                        created_at=int(messages.clock.seconds()),
                        client_type=outgoing.client_type,
                        mentions=mentioned,
                        at_all=bool(at_all),
                    )
                )

            checks = messages.send_checks.get(_GROUP)
            pending = messages.run_checks(checks, sender, outgoing) if checks else None
            d = pending.addCallback(append) if pending is not None else append()
            d.addErrback(translate_refusal)
            return d.addCallback(stored, state, mentioned)

        def stored(result: AppendResult, state: GroupState, mentioned: tuple[int, ...]) -> AppendResult:
            if result.created:
                if outgoing.origin or outgoing.push_content or mentioned or at_all:
                    result = AppendResult(
                        replace(
                            result.message,
                            origin=outgoing.origin,
                            push_content=outgoing.push_content,
                            mentions=mentioned,
                            at_all=bool(at_all),
                        ),
                        True,
                    )
                push = MessagePush(result.message, sender.nick_name, mentioned, bool(at_all))
                messages.fan_out(push, state.members, device)
                messages.stored(result.message, sender, device)
            return result

        return self.groups.cache.get(group_id).addCallback(group_found)

    def conversation_key(self, user_id: int, group_id: int) -> str:
        if group_id <= 0:
            raise ChatError(ErrorCode.NOT_FOUND, "not a member of this group")
        return f"g:{group_id}"

    async def locate(self, user_id: int, group_id: int) -> Located:
        state, member = await self.groups.member(user_id, group_id)
        return Located(state.group.conv, member.joined_seq, 0, state.members, member.role >= GroupRole.ADMIN)

    async def catch_up_from(self, user_id: int, entry: ConversationEntry) -> int | None:
        state = await self.groups.cache.get(entry.session_id)
        member = None if state is None else state.members.get(user_id)
        return None if member is None else member.joined_seq

    async def audience(self, message: Message) -> Iterable[int]:
        state = await self.groups.cache.get(message.to_id)
        return () if state is None else list(state.members)

    def read_moved(self, user: User, device: IDevice | None, group_id: int, before: int, after: int) -> None:
        """Only the reader's other devices hear of it (every member would be a frame per member per
        read); the ``group/read`` hook lets read counts follow (coffeechat/features/group_reads.py)."""
        self.groups.router.push(user.user_id, ReadPush(user.user_id, group_id, _GROUP, after), device)
        self.groups.api.fire("group/read", group_id, user.user_id, before, after)


# -- the module


def group_info(group: Group) -> pb.CIMGroupInfo:
    return pb.CIMGroupInfo(
        group_id=group.group_id,
        group_name=group.name,
        group_type=group.group_type,
        join_model=group.join_model,
        be_invite_model=group.be_invite_model,
        mute_model=group.mute_model,
        group_owner_id=group.owner_id,
        create_time=group.created_at,
        update_time=group.updated_at,
        group_intro=group.intro,
        announcement=group.announcement,
        group_avatar=group.avatar,
        group_version=group.version,
        member_count=group.member_count,
    )


def member_info(member: GroupMember) -> pb.CIMGroupMemberInfo:
    return pb.CIMGroupMemberInfo(user_id=member.user_id, role=member.role, join_time=member.joined_at)


def attached(outcome: GroupOutcome) -> bytes:
    """``attach_notificatino_msg``: the NOTIFICATION message about the change, as the MSG_DATA
    the members were pushed (serialized CIMMsgData), so the requester can show it at once."""
    if outcome.notice is None:
        return b""
    return message_data(MessagePush(outcome.notice, outcome.notice_nick)).SerializeToString()


_OK = int(ErrorCode.SUCCESS)
_UPDATABLE = (
    ("name", "group_name"),
    ("announcement", "announcement"),
    ("intro", "group_intro"),
    ("avatar", "group_avatar"),
    ("mute_model", "mute_model"),
    ("join_model", "join_model"),
    ("be_invite_model", "be_invite_model"),
)


def setup(api: ModuleAPI) -> Groups:
    """Register the group commands, the group conversations and what other nodes must hear."""
    messages = api.depends("messages")
    groups = Groups(api, messages, api.config)
    api.push_kind(GroupChangedPush, name="group", cmd=Cmd.GROUP_MEMBER_CHANGED_NOTIFY, encode=group_changed)
    api.cluster_command("group-changed", groups._changed_elsewhere)
    api.hook("cluster/resumed", lambda lost_at: groups.cache.forget(None))

    @api.request(Cmd.GROUP_CREATE_DEFAULT_REQ)
    async def create(session: Session, req: pb.CIMGroupCreateReq) -> pb.CIMGroupCreateRsp:
        out = await groups.create(session.user, session, req.group_name, req.member_id_list, req.group_type)
        return pb.CIMGroupCreateRsp(
            user_id=session.user_id,
            result_code=_OK,
            group_info=group_info(out.group),
            member_id_list=out.member_ids,
            attach_notificatino_msg=attached(out),
        )

    @api.request(Cmd.GROUP_DISBINGDING_REQ)
    async def dismiss(session: Session, req: pb.CIMGroupDisbandingReq) -> pb.CIMGroupDisbandingRsp:
        out = await groups.dismiss(session.user, session, req.group_id)
        return pb.CIMGroupDisbandingRsp(
            user_id=session.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
        )

    @api.request(Cmd.GROUP_EXIT_REQ)
    async def leave(session: Session, req: pb.CIMGroupExitReq) -> pb.CIMGroupExitRsp:
        out = await groups.exit(session.user, session, req.group_id)
        return pb.CIMGroupExitRsp(
            user_id=session.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
        )

    @api.request(Cmd.GROUP_LIST_REQ)
    async def listed(session: Session, req: pb.CIMGroupListReq) -> pb.CIMGroupListRsp:
        versions = await groups.list_groups(session.user)
        rsp = pb.CIMGroupListRsp(user_id=session.user_id, result_code=_OK)
        rsp.group_version_list.extend(pb.CIMGroupVersionInfo(group_id=g, group_version=v) for g, v in versions)
        return rsp

    @api.request(Cmd.GROUP_INFO_REQ)
    async def info(session: Session, req: pb.CIMGroupInfoReq) -> pb.CIMGroupInfoRsp:
        versions = [(v.group_id, v.group_version) for v in req.group_version_list]
        found = await groups.info(session.user, versions)
        rsp = pb.CIMGroupInfoRsp(user_id=session.user_id, result_code=_OK)
        rsp.group_info_list.extend(group_info(g) for g in found)
        return rsp

    @api.request(Cmd.GROUP_INVITE_MEMBER_REQ)
    async def invite(session: Session, req: pb.CIMGroupInviteMemberReq) -> pb.CIMGroupInviteMemberRsp:
        out = await groups.invite(session.user, session, req.group_id, req.member_id_list)
        return pb.CIMGroupInviteMemberRsp(
            user_id=session.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
        )

    @api.request(Cmd.GROUP_KICK_OUT_MEMBER_REQ)
    async def kick(session: Session, req: pb.CIMGroupKickOutMemberReq) -> pb.CIMGroupKickOutMemberRsp:
        out = await groups.kick(session.user, session, req.group_id, req.member_id_list)
        return pb.CIMGroupKickOutMemberRsp(
            user_id=session.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
        )

    @api.request(Cmd.GROUP_LIST_MEMBER_REQ)
    async def members(session: Session, req: pb.CIMGroupMemberListReq) -> pb.CIMGroupMemberListRsp:
        found = await groups.members(session.user, req.group_id)
        return pb.CIMGroupMemberListRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=_OK,
            member_id_list=[m.user_id for m in found],
            member_list=[member_info(m) for m in found],
        )

    @api.request(Cmd.GROUP_UPDATE_REQ)
    async def update(session: Session, req: pb.CIMGroupUpdateReq) -> pb.CIMGroupUpdateRsp:
        fields = {name: getattr(req, wire) if req.HasField(wire) else None for name, wire in _UPDATABLE}
        out = await groups.update(session.user, session, req.group_id, fields)
        return pb.CIMGroupUpdateRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=_OK,
            group_info=group_info(out.group),
            attach_notificatino_msg=attached(out),
        )

    @api.request(Cmd.GROUP_SET_ADMIN_REQ)
    async def set_admins(session: Session, req: pb.CIMGroupSetAdminReq) -> pb.CIMGroupSetAdminRsp:
        out = await groups.set_admins(session.user, session, req.group_id, req.member_id_list, req.is_admin)
        return pb.CIMGroupSetAdminRsp(
            user_id=session.user_id, group_id=req.group_id, result_code=_OK, attach_notificatino_msg=attached(out)
        )

    @api.request(Cmd.GROUP_TRANSFER_OWNER_REQ)
    async def transfer(session: Session, req: pb.CIMGroupTransferOwnerReq) -> pb.CIMGroupTransferOwnerRsp:
        out = await groups.transfer_owner(session.user, session, req.group_id, req.new_owner_id)
        return pb.CIMGroupTransferOwnerRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=_OK,
            new_owner_id=req.new_owner_id,
            attach_notificatino_msg=attached(out),
        )

    return groups
