"""Group chat management: the business rules of CIM v1's group commands and our extensions.

Roles and permissions (docs/groups.md has the table): the creator owns a group; the owner and
admins manage it; any member may leave.  Each rule is checked here against the cached group
(:mod:`coffeechat.handlers.group_state`) for a prompt, precise answer, and again by storage in
the writing transaction (the actor's role, limits, a dismissed group), so that a concurrent
change can never let a refused action through.  After every committed change, every member's
devices (and those of members just removed) get GROUP_MEMBER_CHANGED (``Push.GROUP``) and the
group timeline gets a NOTIFICATION message, pushed like any other message.  A crash between
the change and its notice loses the notice only; the change itself was committed first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

from coffeechat.config import GroupsConfig
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.handlers.group_state import GroupCache, GroupState, refusal_error
from coffeechat.handlers.messages import MessageHandler
from coffeechat.handlers.readcount import GroupReadCounter
from coffeechat.interfaces import GroupRefused, IDevice, IStore
from coffeechat.model import (
    BeInviteModel,
    Group,
    GroupChange,
    GroupMember,
    GroupNotice,
    GroupRole,
    GroupType,
    JoinModel,
    MemberChange,
    Message,
    MuteModel,
    Push,
    User,
)
from coffeechat.router import Router

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


class GroupHandler:
    """Creates and manages groups on behalf of an authenticated user."""

    def __init__(
        self,
        store: IStore,
        cache: GroupCache,
        messages: MessageHandler,
        read_counts: GroupReadCounter,
        router: Router,
        clock: IReactorTime,
        config: GroupsConfig,
    ) -> None:
        self.store = store
        self.cache = cache
        self.messages = messages
        self.read_counts = read_counts
        self.router = router
        self.clock = clock
        self.config = config

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
        if change.added or change.removed:
            self.read_counts.members_changed(change.group.group_id)
        changes = (
            [(m.user_id, MemberChange.ADD, m.role) for m in change.added]
            + [(m.user_id, MemberChange.DEL, 0) for m in change.removed]
            + [(m.user_id, MemberChange.ROLE, m.role) for m in change.roles]
        )
        group = change.group
        push = Push(Push.GROUP, GroupNotice(group.group_id, actor.user_id, group.version, tuple(changes)))
        members = state.members
        removed = [m.user_id for m in change.removed if m.user_id not in members]
        self.messages.fan_out_group(push, [*members, *removed], None)

    async def _outcome(
        self, actor: User, device: IDevice | None, group: Group, body: dict, also_to: Iterable[int] = ()
    ) -> GroupOutcome:
        notice = await self.messages.post_notice(actor, device, group.group_id, body, also_to)
        return GroupOutcome(group, notice=notice, notice_nick=actor.nick_name)

    async def _state(self, user: User, group_id: int) -> tuple[GroupState, GroupMember]:
        return await self.messages.group_member(user, group_id)

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
        self._committed(change, user, self.cache.created(change))
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
        if group.be_invite_model == BeInviteModel.NEED_AGREE:
            raise ChatError(ErrorCode.NOT_SUPPORTED, "invitations needing the invitee's consent are not supported yet")
        if not requested:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nobody to invite")
        ids = [i for i in _ids(requested) if i not in state.members]
        if not ids:
            return GroupOutcome(group)
        limit = self.config.max_members(group.group_type)
        if group.member_count + len(ids) > limit:
            raise ChatError(ErrorCode.GROUP_FULL, f"this group has at most {limit} members")
        nicks = await self._users_exist(ids)
        min_role = GroupRole.ADMIN if group.join_model == JoinModel.NEED_AUTH else GroupRole.MEMBER
        change = await self._write(
            self.store.add_members(
                group_id, user.user_id, min_role, ids, self._now(), limit, self.config.max_groups_per_user
            )
        )
        if not change.added:
            return GroupOutcome(change.group)
        self._committed(change, user, state)
        added = [m.user_id for m in change.added]
        body = {
            "notificationType": NOTICE_INVITE,
            "data": {
                "groupId": str(group_id),
                "userId": str(user.user_id),
                "ids": _strs(added),
                "nickNames": [nicks[i] for i in added],
            },
        }
        return await self._outcome(user, device, change.group, body)

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

    async def read_count(self, user: User, group_id: int, seq: int) -> tuple[int, int]:
        """``(read, members)`` for one of the user's own group messages, and from now on a
        coalesced notify whenever it changes (:class:`GroupReadCounter`)."""
        state, member = await self._state(user, group_id)
        found = await self.store.messages_by_seq(state.group.conv, [seq]) if seq >= member.joined_seq else []
        if not found:
            raise ChatError(ErrorCode.NOT_FOUND, f"no message {seq} in this group")
        if found[0].sender_id != user.user_id:
            raise ChatError(ErrorCode.FORBIDDEN, "only the sender of a message may ask who read it")
        return await self.read_counts.watch(user.user_id, group_id, seq)
