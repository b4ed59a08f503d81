"""Groups and their members (:class:`~coffeechat.interfaces.IGroupStore`), written once for
every SQL engine.  The rules are :mod:`coffeechat.grouprules`; this reads the rows they need
and writes what they decide, in the writing transaction.

On PostgreSQL every write first takes the group conversation's row lock, the one each append to
the group takes (``txn.lock_conversation``; declared in ``locks`` too, so that a batch takes it in
its sorted prelock), and per-user advisory locks before counting a user's groups
(``txn.lock_users``): a message racing a kick, and two nodes adding one user to two groups, are
then decided exactly.  On SQLite both are no-ops (one writer).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from coffeechat import grouprules
from coffeechat.model import GROUP_UPDATABLE, Group, GroupChange, GroupMember, GroupRole

GROUP_COLS = (
    "group_id, name, group_type, owner_id, created_at, updated_at, version, join_model, be_invite_model, "
    "mute_model, intro, announcement, avatar, member_count, dismissed"
)
MEMBER_COLS = "group_id, user_id, role, joined_at, joined_seq, join_no"

SQL_GROUP_BY_ID = f"SELECT {GROUP_COLS} FROM chat_groups WHERE group_id = ?"
SQL_CREATE_GROUP = (
    "INSERT INTO chat_groups (name, group_type, owner_id, created_at, updated_at, version, member_count, "
    f"join_counter) VALUES (?, ?, ?, ?, ?, 1, ?, ?) RETURNING {GROUP_COLS}"
)
SQL_NEW_GROUP_CONVERSATION = (
    "INSERT INTO conversations (conv, session_type, last_seq, updated_at) VALUES (?, 2, 0, ?) "
    "ON CONFLICT (conv) DO NOTHING"
)
SQL_LAST_SEQ = "SELECT last_seq FROM conversations WHERE conv = ?"
SQL_GROUPS_OF = (
    f"SELECT {', '.join('g.' + c for c in GROUP_COLS.split(', '))} FROM group_members AS m "
    "JOIN chat_groups AS g ON g.group_id = m.group_id WHERE m.user_id = ? ORDER BY m.group_id"
)
SQL_GROUP_MEMBERS = f"SELECT {MEMBER_COLS} FROM group_members WHERE group_id = ? ORDER BY join_no"
SQL_GROUP_MEMBER = f"SELECT {MEMBER_COLS} FROM group_members WHERE group_id = ? AND user_id = ?"
SQL_MEMBERS_AMONG = f"SELECT {MEMBER_COLS} FROM group_members WHERE group_id = ? AND {{}} ORDER BY join_no"
SQL_GROUP_COUNTS = "SELECT user_id, count(*) FROM group_members WHERE {} GROUP BY user_id"
SQL_INSERT_MEMBER = f"INSERT INTO group_members ({MEMBER_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
# A row left by an earlier membership (or by group messages written before SQLite's migration 2)
# is reset: the new member starts reading at the current last seq.
SQL_INSERT_MEMBER_ENTRY = (
    "INSERT INTO user_conversations (user_id, conv, session_type, session_id, read_seq, delivered_seq, "
    "mention_seq) VALUES (?, ?, 2, ?, ?, ?, 0) ON CONFLICT (user_id, conv) DO UPDATE SET "
    "read_seq = excluded.read_seq, delivered_seq = excluded.delivered_seq, mention_seq = 0"
)
SQL_DELETE_MEMBERS = "DELETE FROM group_members WHERE group_id = ? AND {}"
SQL_DELETE_MEMBER_ENTRIES = "DELETE FROM user_conversations WHERE {} AND conv = ?"
SQL_SENIOR_MEMBER = f"SELECT {MEMBER_COLS} FROM group_members WHERE group_id = ? ORDER BY join_no LIMIT 1"
SQL_SET_ROLE = "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?"
SQL_TAKE_JOIN_NOS = "UPDATE chat_groups SET join_counter = join_counter + ? WHERE group_id = ? RETURNING join_counter"
# Every change bumps version; member_count moves by the delta; owner/dismissed are set when given.
SQL_BUMP_GROUP = (
    "UPDATE chat_groups SET version = version + 1, updated_at = GREATEST(updated_at, ?), "
    "member_count = member_count + ?, owner_id = coalesce(CAST(? AS BIGINT), owner_id), "
    f"dismissed = (dismissed OR ?) WHERE group_id = ? RETURNING {GROUP_COLS}"
)
SQL_UPDATE_GROUP = (
    "UPDATE chat_groups SET name = coalesce(CAST(? AS TEXT), name), intro = coalesce(CAST(? AS TEXT), intro), "
    "announcement = coalesce(CAST(? AS TEXT), announcement), avatar = coalesce(CAST(? AS TEXT), avatar), "
    "join_model = coalesce(CAST(? AS INTEGER), join_model), "
    "be_invite_model = coalesce(CAST(? AS INTEGER), be_invite_model), "
    "mute_model = coalesce(CAST(? AS INTEGER), mute_model) WHERE group_id = ?"
)
SQL_GROUP_READ_COUNT = (
    "SELECT count(*), count(*) FILTER (WHERE uc.read_seq >= ?) FROM group_members AS m "
    "JOIN user_conversations AS uc ON uc.user_id = m.user_id AND uc.conv = ? "
    "WHERE m.group_id = ? AND m.user_id <> ? AND m.joined_seq <= ?"
)

_INT_FIELDS = ("join_model", "be_invite_model", "mute_model")
_MEMBER = int(GroupRole.MEMBER)


def row_group(r: Any) -> Group:
    return Group(*r[:14], bool(r[14]))


def _group_row(txn: Any, group_id: int) -> Group | None:
    row = txn.execute(SQL_GROUP_BY_ID, (group_id,)).fetchone()
    return None if row is None else row_group(row)


def _member_row(txn: Any, group_id: int, user_id: int) -> GroupMember | None:
    row = txn.execute(SQL_GROUP_MEMBER, (group_id, user_id)).fetchone()
    return None if row is None else GroupMember(*row)


def _members_among(txn: Any, group_id: int, user_ids: list[int]) -> list[GroupMember]:
    clause, params = txn.in_list("user_id", user_ids)
    return [GroupMember(*r) for r in txn.execute(SQL_MEMBERS_AMONG.format(clause), (group_id, *params)).fetchall()]


def _acting(txn: Any, group_id: int, actor_id: int, min_role: int) -> Group:
    """Lock the group, then check it is live and the actor may act: the start of every write."""
    txn.lock_conversation(f"g:{group_id}")
    group = grouprules.live_group(_group_row(txn, group_id), group_id)
    grouprules.check_actor(_member_row(txn, group_id, actor_id), group_id, actor_id, min_role)
    return group


def _check_group_counts(txn: Any, user_ids: list[int], max_groups_per_user: int) -> None:
    if max_groups_per_user <= 0 or not user_ids:
        return
    txn.lock_users(user_ids)
    clause, params = txn.in_list("user_id", user_ids)
    counts = dict(txn.execute(SQL_GROUP_COUNTS.format(clause), params).fetchall())
    grouprules.check_group_counts(user_ids, counts, max_groups_per_user)


def _insert_members(
    txn: Any, group_id: int, members: list[tuple[int, int]], now: int, first_join_no: int
) -> tuple[GroupMember, ...]:
    """Member rows and conversation entries; entries start read at the group's last seq (the
    group is locked: no message can slip in between)."""
    conv = f"g:{group_id}"
    row = txn.execute(SQL_LAST_SEQ, (conv,)).fetchone()
    last = 0 if row is None else row[0]
    added = grouprules.new_members(group_id, members, now, last, first_join_no)
    txn.executemany(SQL_INSERT_MEMBER, [(group_id, m.user_id, m.role, now, m.joined_seq, m.join_no) for m in added])
    txn.executemany(SQL_INSERT_MEMBER_ENTRY, [(m.user_id, conv, group_id, last, last) for m in added])
    return added


def _bump(
    txn: Any, group_id: int, now: int, delta: int = 0, owner_id: int | None = None, dismissed: bool = False
) -> Group:
    return row_group(txn.execute(SQL_BUMP_GROUP, (now, delta, owner_id, dismissed, group_id)).fetchone())


def _delete_members(txn: Any, group: Group, user_ids: list[int]) -> None:
    clause, params = txn.in_list("user_id", user_ids)
    txn.execute(SQL_DELETE_MEMBERS.format(clause), (group.group_id, *params))
    txn.execute(SQL_DELETE_MEMBER_ENTRIES.format(clause), (*params, group.conv))


def create_group_txn(
    txn: Any,
    owner_id: int,
    name: str,
    group_type: int,
    member_ids: list[int],
    created_at: int,
    max_members: int,
    max_groups_per_user: int,
) -> GroupChange:
    roles = grouprules.founding_members(owner_id, member_ids, max_members)
    _check_group_counts(txn, [u for u, _ in roles], max_groups_per_user)
    row = txn.execute(
        SQL_CREATE_GROUP, (name, group_type, owner_id, created_at, created_at, len(roles), len(roles))
    ).fetchone()
    group = row_group(row)
    txn.execute(SQL_NEW_GROUP_CONVERSATION, (group.conv, created_at))
    txn.lock_conversation(group.conv)
    return GroupChange(group, added=_insert_members(txn, group.group_id, roles, created_at, 1))


def add_members_txn(
    txn: Any,
    group_id: int,
    actor_id: int,
    min_role: int,
    user_ids: list[int],
    now: int,
    max_members: int,
    max_groups_per_user: int,
) -> GroupChange:
    group = _acting(txn, group_id, actor_id, min_role)
    wanted = grouprules.unique_ids(user_ids)
    present = {m.user_id for m in _members_among(txn, group_id, wanted)}
    new = [u for u in wanted if u not in present]
    if not new:
        return GroupChange(group)
    grouprules.check_room(group, len(new), max_members)
    _check_group_counts(txn, new, max_groups_per_user)
    counter = txn.execute(SQL_TAKE_JOIN_NOS, (len(new), group_id)).fetchone()[0]
    added = _insert_members(txn, group_id, [(u, _MEMBER) for u in new], now, counter - len(new) + 1)
    return GroupChange(_bump(txn, group_id, now, len(added)), added=added)


def remove_members_txn(
    txn: Any, group_id: int, actor_id: int, min_role: int, user_ids: list[int], now: int, protect_role: int
) -> GroupChange:
    group = _acting(txn, group_id, actor_id, min_role)
    removed = tuple(_members_among(txn, group_id, grouprules.unique_ids(user_ids)))
    if not removed:
        return GroupChange(group)
    grouprules.check_removable(removed, protect_role)
    _delete_members(txn, group, [m.user_id for m in removed])
    if grouprules.empties_group(group, removed):
        return GroupChange(_bump(txn, group_id, now, -len(removed), dismissed=True), removed=removed)
    if not grouprules.owner_removed(group, removed):
        return GroupChange(_bump(txn, group_id, now, -len(removed)), removed=removed)
    owner = grouprules.successor([GroupMember(*txn.execute(SQL_SENIOR_MEMBER, (group_id,)).fetchone())])
    txn.execute(SQL_SET_ROLE, (owner.role, group_id, owner.user_id))
    return GroupChange(_bump(txn, group_id, now, -len(removed), owner.user_id), removed=removed, roles=(owner,))


def update_group_txn(txn: Any, group_id: int, actor_id: int, min_role: int, changes: dict, now: int) -> GroupChange:
    _acting(txn, group_id, actor_id, min_role)
    txn.execute(SQL_UPDATE_GROUP, (*(changes.get(k) for k in GROUP_UPDATABLE), group_id))
    return GroupChange(_bump(txn, group_id, now))


def set_roles_txn(
    txn: Any, group_id: int, actor_id: int, min_role: int, user_ids: list[int], role: int, now: int
) -> GroupChange:
    group = _acting(txn, group_id, actor_id, min_role)
    changed = grouprules.role_changes(_members_among(txn, group_id, grouprules.unique_ids(user_ids)), role)
    if not changed:
        return GroupChange(group)
    txn.executemany(SQL_SET_ROLE, [(role, group_id, m.user_id) for m in changed])
    return GroupChange(_bump(txn, group_id, now), roles=changed)


def transfer_owner_txn(txn: Any, group_id: int, actor_id: int, new_owner_id: int, now: int) -> GroupChange:
    group = _acting(txn, group_id, actor_id, int(GroupRole.OWNER))
    owner = _member_row(txn, group_id, actor_id)
    heir, old = grouprules.ownership_transfer(group, owner, _member_row(txn, group_id, new_owner_id), new_owner_id)
    txn.executemany(SQL_SET_ROLE, [(m.role, group_id, m.user_id) for m in (heir, old)])
    return GroupChange(_bump(txn, group_id, now, owner_id=heir.user_id), roles=(heir, old))


def dismiss_group_txn(txn: Any, group_id: int, actor_id: int, min_role: int, now: int) -> GroupChange:
    group = _acting(txn, group_id, actor_id, min_role)
    removed = tuple(GroupMember(*r) for r in txn.execute(SQL_GROUP_MEMBERS, (group_id,)).fetchall())
    _delete_members(txn, group, [m.user_id for m in removed])
    return GroupChange(_bump(txn, group_id, now, -len(removed), dismissed=True), removed=removed)


def _group_by_id(txn: Any, group_id: int) -> Group | None:
    return _group_row(txn, group_id)


def _groups_of(txn: Any, user_id: int) -> list[Group]:
    return [row_group(r) for r in txn.execute(SQL_GROUPS_OF, (user_id,))]


def _group_members(txn: Any, group_id: int) -> list[GroupMember]:
    return [GroupMember(*r) for r in txn.execute(SQL_GROUP_MEMBERS, (group_id,))]


def _group_read_count(txn: Any, group_id: int, seq: int, exclude: int) -> tuple[int, int]:
    members, read = txn.execute(SQL_GROUP_READ_COUNT, (seq, f"g:{group_id}", group_id, exclude, seq)).fetchone()
    return read, members


class SQLGroupStore:
    """IGroupStore over ``run_read``/``run_write``."""

    def create_group(
        self,
        owner_id: int,
        name: str,
        group_type: int,
        member_ids: list[int],
        created_at: int,
        max_members: int,
        max_groups_per_user: int,
    ) -> defer.Deferred:
        members = [int(i) for i in member_ids]
        return self.run_write(
            "create_group",
            create_group_txn,
            owner_id,
            name,
            int(group_type),
            members,
            created_at,
            max_members,
            max_groups_per_user,
            user_locks=[owner_id, *members] if max_groups_per_user > 0 else (),
        )

    def group_by_id(self, group_id: int) -> defer.Deferred:
        return self.run_read("group_by_id", _group_by_id, group_id)

    def groups_of(self, user_id: int) -> defer.Deferred:
        return self.run_read("groups_of", _groups_of, user_id)

    def group_members(self, group_id: int) -> defer.Deferred:
        return self.run_read("group_members", _group_members, group_id)

    def group_member(self, group_id: int, user_id: int) -> defer.Deferred:
        return self.run_read("group_member", _member_row, group_id, user_id)

    def add_members(
        self,
        group_id: int,
        actor_id: int,
        min_role: int,
        user_ids: list[int],
        now: int,
        max_members: int,
        max_groups_per_user: int,
    ) -> defer.Deferred:
        ids = [int(i) for i in user_ids]
        return self.run_write(
            "add_members",
            add_members_txn,
            group_id,
            actor_id,
            int(min_role),
            ids,
            now,
            max_members,
            max_groups_per_user,
            locks=(f"g:{group_id}",),
            user_locks=ids if max_groups_per_user > 0 else (),
        )

    def remove_members(
        self, group_id: int, actor_id: int, min_role: int, user_ids: list[int], now: int, protect_role: int = 0
    ) -> defer.Deferred:
        return self.run_write(
            "remove_members",
            remove_members_txn,
            group_id,
            actor_id,
            int(min_role),
            [int(i) for i in user_ids],
            now,
            int(protect_role),
            locks=(f"g:{group_id}",),
        )

    def update_group(self, group_id: int, actor_id: int, min_role: int, changes: dict, now: int) -> defer.Deferred:
        unknown = set(changes) - set(GROUP_UPDATABLE)
        if unknown:
            return defer.fail(ValueError(f"not updatable: {sorted(unknown)}"))
        values = {k: (int(v) if k in _INT_FIELDS and v is not None else v) for k, v in changes.items()}
        return self.run_write(
            "update_group", update_group_txn, group_id, actor_id, int(min_role), values, now, locks=(f"g:{group_id}",)
        )

    def set_member_roles(
        self, group_id: int, actor_id: int, min_role: int, user_ids: list[int], role: int, now: int
    ) -> defer.Deferred:
        return self.run_write(
            "set_member_roles",
            set_roles_txn,
            group_id,
            actor_id,
            int(min_role),
            [int(i) for i in user_ids],
            int(role),
            now,
            locks=(f"g:{group_id}",),
        )

    def transfer_owner(self, group_id: int, actor_id: int, new_owner_id: int, now: int) -> defer.Deferred:
        return self.run_write(
            "transfer_owner",
            transfer_owner_txn,
            group_id,
            int(actor_id),
            int(new_owner_id),
            now,
            locks=(f"g:{group_id}",),
        )

    def dismiss_group(self, group_id: int, actor_id: int, min_role: int, now: int) -> defer.Deferred:
        return self.run_write(
            "dismiss_group", dismiss_group_txn, group_id, actor_id, int(min_role), now, locks=(f"g:{group_id}",)
        )

    def group_read_count(self, group_id: int, seq: int, exclude_user_id: int) -> defer.Deferred:
        return self.run_read("group_read_count", _group_read_count, group_id, seq, exclude_user_id)
