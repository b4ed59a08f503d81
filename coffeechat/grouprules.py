"""The rules of groups, once: who may act with which role, limits, the owner's hand-over, and
who may send to a group.

Pure functions on :mod:`coffeechat.model` objects: no SQL, no Twisted, nothing stored.  The SQL
group store (``backends/sql/groups.py``) reads rows, asks these functions, and writes what they
decided, all in one transaction; a third-party backend re-implementing :class:`IGroupStore` calls
them the same way so that its refusals and hand-overs match the built-in ones.  Every refusal
is raised as (or, for messages, returned as) one of the :class:`~coffeechat.interfaces.GroupRefused`
exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from coffeechat.interfaces import (
    GroupForbidden,
    GroupFull,
    GroupNotFound,
    GroupRefused,
    NotGroupMember,
    TooManyGroups,
)
from coffeechat.model import Group, GroupMember, GroupRole, MuteModel, NewMessage

__all__ = [
    "at_all_forbidden",
    "check_actor",
    "check_group_counts",
    "check_removable",
    "check_room",
    "empties_group",
    "founding_members",
    "live_group",
    "message_refusal",
    "muted",
    "new_members",
    "not_found",
    "not_member",
    "owner_removed",
    "ownership_transfer",
    "role_changes",
    "sender_refusal",
    "successor",
    "unique_ids",
]

_OWNER = int(GroupRole.OWNER)
_MEMBER = int(GroupRole.MEMBER)
_ADMIN = int(GroupRole.ADMIN)
_MUTE_ALL = int(MuteModel.ALL)


def unique_ids(ids: Iterable[int], skip: int | None = None) -> list[int]:
    """Distinct ids in their given order, without ``skip``: a request naming someone twice (or
    the owner among the members) means them once."""
    seen = {skip}
    return [i for i in ids if not (i in seen or seen.add(i))]


# ---- refusals -------------------------------------------------------------------------------


def not_found(group_id: int) -> GroupNotFound:
    return GroupNotFound(f"no group {group_id}")


def not_member(group_id: int, user_id: int) -> NotGroupMember:
    return NotGroupMember(f"user {user_id} is not a member of group {group_id}")


def muted(group_id: int) -> GroupForbidden:
    return GroupForbidden("the group is muted: only the owner and admins may send")


def at_all_forbidden(group_id: int) -> GroupForbidden:
    return GroupForbidden("only the owner and admins may mention everyone")


# ---- acting on a group -----------------------------------------------------------------------


def live_group(group: Group | None, group_id: int) -> Group:
    """The group, unless it is missing or dismissed (:class:`GroupNotFound`)."""
    if group is None or group.dismissed:
        raise not_found(group_id)
    return group


def check_actor(member: GroupMember | None, group_id: int, actor_id: int, min_role: int) -> GroupMember:
    """The acting member (``member``: the actor's row, None when not a member), if their role
    is at least ``min_role``."""
    if member is None:
        raise not_member(group_id, actor_id)
    if member.role < min_role:
        raise GroupForbidden(f"user {actor_id} may not do this in group {group_id}")
    return member


def founding_members(owner_id: int, member_ids: Iterable[int], max_members: int) -> list[tuple[int, int]]:
    """``(user id, role)`` of a new group's members, the owner first, the others (once each,
    in the order given) as plain members; :class:`GroupFull` beyond ``max_members``."""
    members = [owner_id, *unique_ids(member_ids, owner_id)]
    if len(members) > max_members:
        raise GroupFull(f"a group has at most {max_members} members")
    return [(owner_id, _OWNER)] + [(u, _MEMBER) for u in members[1:]]


def check_room(group: Group, adding: int, max_members: int) -> None:
    """:class:`GroupFull` if ``adding`` more members take the group over ``max_members``."""
    if group.member_count + adding > max_members:
        raise GroupFull(f"group {group.group_id} has at most {max_members} members")


def check_group_counts(user_ids: Sequence[int], counts: Mapping[int, int], max_groups_per_user: int) -> None:
    """:class:`TooManyGroups` naming those of ``user_ids`` who are in ``max_groups_per_user``
    groups already (``counts``: user id -> groups now; 0 means no limit)."""
    if max_groups_per_user <= 0:
        return
    over = [u for u in user_ids if counts.get(u, 0) >= max_groups_per_user]
    if over:
        raise TooManyGroups(over)


def new_members(
    group_id: int, members: Sequence[tuple[int, int]], now: int, last_seq: int, first_join_no: int
) -> tuple[GroupMember, ...]:
    """The rows of joining members: they see the group from the next message on
    (``joined_seq``) and rank by seniority in the order given (``join_no``)."""
    return tuple(
        GroupMember(group_id, uid, role, now, last_seq + 1, first_join_no + i) for i, (uid, role) in enumerate(members)
    )


def check_removable(removed: Iterable[GroupMember], protect_role: int) -> None:
    """A removal is all or nothing: :class:`GroupForbidden` if any of ``removed`` has a role
    of ``protect_role`` or above (0: nobody is protected)."""
    if protect_role and any(m.role >= protect_role for m in removed):
        raise GroupForbidden("the owner and admins cannot be removed by this user")


def empties_group(group: Group, removed: Sequence[GroupMember]) -> bool:
    """Whether removing ``removed`` leaves nobody: the group is then dismissed."""
    return len(removed) >= group.member_count


def owner_removed(group: Group, removed: Iterable[GroupMember]) -> bool:
    return any(m.user_id == group.owner_id for m in removed)


def successor(remaining: Iterable[GroupMember]) -> GroupMember:
    """The new owner when the owner goes: the longest-standing remaining member (lowest
    ``join_no``; admins get no precedence), as they are after the hand-over."""
    senior = min(remaining, key=lambda m: m.join_no)
    return GroupMember(senior.group_id, senior.user_id, _OWNER, senior.joined_at, senior.joined_seq, senior.join_no)


def ownership_transfer(
    group: Group, owner: GroupMember, heir: GroupMember | None, heir_id: int
) -> tuple[GroupMember, GroupMember]:
    """The owner hands the group over: ``(heir as owner, old owner as admin)``.  The heir must
    be another member (:class:`NotGroupMember`); the old owner stays, as an admin, so that the
    hand-over takes nobody's rights away but the ownership itself."""
    if heir is None:
        raise not_member(group.group_id, heir_id)
    if owner.role != _OWNER or heir.user_id == owner.user_id:
        raise GroupForbidden("only the owner may hand the group to another member")
    return (
        GroupMember(heir.group_id, heir.user_id, _OWNER, heir.joined_at, heir.joined_seq, heir.join_no),
        GroupMember(owner.group_id, owner.user_id, _ADMIN, owner.joined_at, owner.joined_seq, owner.join_no),
    )


def role_changes(members: Iterable[GroupMember], role: int) -> tuple[GroupMember, ...]:
    """The members whose role actually changes to ``role`` (the owner's never does), as they
    are afterwards."""
    return tuple(
        GroupMember(m.group_id, m.user_id, role, m.joined_at, m.joined_seq, m.join_no)
        for m in members
        if m.role != role and m.role != _OWNER
    )


# ---- sending to a group -------------------------------------------------------------------------


def sender_refusal(
    group_id: int, sender_id: int, *, live: bool, role: int | None, mute_model: int, at_all: bool
) -> GroupRefused | None:
    """Why ``sender_id`` may not send this message to the group, or None.  ``live``: the group
    exists and is not dismissed; ``role``: the sender's, None when not a member.  Returned, not
    raised, so that a store can answer a resend of an earlier message instead."""
    if not live:
        return not_found(group_id)
    if role is None:
        return not_member(group_id, sender_id)
    if role < _ADMIN:
        if mute_model == _MUTE_ALL:
            return muted(group_id)
        if at_all:
            return at_all_forbidden(group_id)
    return None


def message_refusal(group: Group | None, member: GroupMember | None, message: NewMessage) -> GroupRefused | None:
    """:func:`sender_refusal` for a group message, given the group and the sender's membership
    (None when not a member) as model objects."""
    return sender_refusal(
        message.to_id,
        message.sender_id,
        live=group is not None and not group.dismissed,
        role=None if member is None else member.role,
        mute_model=0 if group is None else group.mute_model,
        at_all=bool(message.at_all),
    )
