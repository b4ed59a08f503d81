"""An in-memory storage backend: nothing survives a restart.

For tests that drive the core on a memory reactor (everything answers synchronously) and for
throwaway demos.  It passes the same conformance suite as the durable backends, except the
durability test.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.interfaces import (
    GroupForbidden,
    GroupFull,
    GroupNotFound,
    IStore,
    NotGroupMember,
    StoreClosed,
    TooManyGroups,
    UserExists,
)
from coffeechat.model import (
    GROUP_UPDATABLE,
    AppendResult,
    ConversationEntry,
    Group,
    GroupChange,
    GroupMember,
    GroupRole,
    Message,
    MsgType,
    MuteModel,
    NewMessage,
    SessionType,
    User,
)


@implementer(IStore)
class MemoryStore:
    """Dicts and lists; every method returns an already-fired Deferred."""

    def __init__(self) -> None:
        self._users: dict[int, User] = {}
        self._names: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._tokens: dict[str, list] = {}  # hash -> [user_id, expires_at, revoked]
        self._messages: dict[str, list[Message]] = {}
        self._by_client_id: dict[tuple[int, str], Message] = {}
        self._updated: dict[str, int] = {}
        # (user, conv) -> [session_type, session_id, read, delivered, mention]
        self._entries: dict[tuple[int, str], list] = {}
        self._group_ids = itertools.count(1)
        self._groups: dict[int, Group] = {}
        self._members: dict[int, dict[int, GroupMember]] = {}  # group -> user -> member, in join order
        self._join_counters: dict[int, int] = {}
        self._at_all: dict[int, int] = {}  # group -> seq of its last @all message
        self._stopped = False

    def _check(self) -> None:
        if self._stopped:
            raise StoreClosed("store is stopped")

    def _ok(self, f, *args) -> defer.Deferred:
        try:
            self._check()
            return defer.succeed(f(*args))
        except Exception as e:
            return defer.fail(e)

    def start(self) -> defer.Deferred:
        self._stopped = False
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        self._stopped = True
        return defer.succeed(None)

    # -- users

    def create_user(self, name: str, nick_name: str, password_hash: str, created_at: int) -> defer.Deferred:
        def create() -> User:
            if name.lower() in self._names:
                raise UserExists(name)
            user = User(next(self._ids), name, nick_name, password_hash, False, created_at)
            self._users[user.user_id] = user
            self._names[name.lower()] = user.user_id
            return user

        return self._ok(create)

    def user_by_name(self, name: str) -> defer.Deferred:
        return self._ok(lambda: self._users.get(self._names.get(name.lower(), 0)))

    def user_by_id(self, user_id: int) -> defer.Deferred:
        return self._ok(self._users.get, user_id)

    def users_by_ids(self, user_ids: list[int]) -> defer.Deferred:
        return self._ok(lambda: [self._users[i] for i in sorted(set(user_ids)) if i in self._users])

    def list_users(self, after_id: int, limit: int) -> defer.Deferred:
        return self._ok(lambda: [u for i, u in sorted(self._users.items()) if i > after_id][:limit])

    def update_user(self, user_id: int, nick_name=None, password_hash=None, disabled=None) -> defer.Deferred:
        def update() -> User | None:
            user = self._users.get(user_id)
            if user is None:
                return None
            changes = {"nick_name": nick_name, "password_hash": password_hash, "disabled": disabled}
            user = replace(user, **{k: v for k, v in changes.items() if v is not None})
            self._users[user_id] = user
            return user

        return self._ok(update)

    def add_token(self, token_hash: str, user_id: int, created_at: int, expires_at: int, label: str) -> defer.Deferred:
        return self._ok(self._tokens.__setitem__, token_hash, [user_id, expires_at, False])

    def users_by_tokens(self, token_hashes: list[str], now: int) -> defer.Deferred:
        def owners() -> dict[str, User]:
            found = {}
            for token_hash in token_hashes:
                token = self._tokens.get(token_hash)
                if token is not None and not token[2] and token[1] > now and token[0] in self._users:
                    found[token_hash] = self._users[token[0]]
            return found

        return self._ok(owners)

    def revoke_token(self, token_hash: str) -> defer.Deferred:
        def revoke() -> bool:
            token = self._tokens.get(token_hash)
            if token is None or token[2]:
                return False
            token[2] = True
            return True

        return self._ok(revoke)

    def purge_tokens(self, now: int, limit: int) -> defer.Deferred:
        def purge() -> int:
            expired = [h for h, t in self._tokens.items() if t[1] <= now][:limit]
            for token_hash in expired:
                del self._tokens[token_hash]
            return len(expired)

        return self._ok(purge)

    def revoke_user_tokens(self, user_id: int) -> defer.Deferred:
        def revoke() -> int:
            tokens = [t for t in self._tokens.values() if t[0] == user_id and not t[2]]
            for t in tokens:
                t[2] = True
            return len(tokens)

        return self._ok(revoke)

    # -- messages

    def _group_refusal(self, message: NewMessage) -> Exception | None:
        group = self._groups.get(message.to_id)
        if group is None or group.dismissed:
            return GroupNotFound(f"no group {message.to_id}")
        member = self._members[group.group_id].get(message.sender_id)
        if member is None:
            return NotGroupMember(f"user {message.sender_id} is not a member of group {group.group_id}")
        if member.role < GroupRole.ADMIN:
            if group.mute_model == MuteModel.ALL:
                return GroupForbidden("the group is muted: only the owner and admins may send")
            if message.at_all:
                return GroupForbidden("only the owner and admins may mention everyone")
        return None

    def append(self, message: NewMessage) -> defer.Deferred:
        def append() -> AppendResult:
            existing = self._by_client_id.get((message.sender_id, message.client_msg_id))
            if existing is not None:
                return AppendResult(existing, False)
            group_message = message.session_type != SessionType.SINGLE
            if group_message and message.msg_type != MsgType.NOTIFICATION:
                refused = self._group_refusal(message)
                if refused is not None:
                    raise refused
            messages = self._messages.setdefault(message.conv, [])
            stored = Message(
                message.conv,
                len(messages) + 1,
                message.session_type,
                message.sender_id,
                message.to_id,
                message.client_msg_id,
                message.msg_type,
                message.data,
                message.created_at,
                message.client_type,
            )
            messages.append(stored)
            self._by_client_id[(message.sender_id, message.client_msg_id)] = stored
            self._updated[message.conv] = message.created_at
            if group_message:
                sender = self._entries.get((message.sender_id, message.conv))
                if sender is not None:
                    sender[2] = stored.seq
                for uid in message.mentions:
                    entry = self._entries.get((uid, message.conv))
                    if entry is not None:
                        entry[4] = stored.seq
                if message.at_all:
                    self._at_all[message.to_id] = stored.seq
                return AppendResult(stored, True)
            sender = self._entries.setdefault(
                (message.sender_id, message.conv), [message.session_type, message.to_id, 0, 0, 0]
            )
            sender[2] = stored.seq
            self._entries.setdefault((message.to_id, message.conv), [message.session_type, message.sender_id, 0, 0, 0])
            return AppendResult(stored, True)

        return self._ok(append)

    def history(self, conv: str, before_seq: int, limit: int, min_seq: int = 1) -> defer.Deferred:
        def history() -> list[Message]:
            messages = self._messages.get(conv, [])
            end = len(messages) if before_seq <= 0 else min(len(messages), before_seq - 1)
            start = max(max(min_seq, 1) - 1, end - limit)
            return messages[start:end] if limit > 0 else []

        return self._ok(history)

    def messages_by_seq(self, conv: str, seqs: list[int]) -> defer.Deferred:
        def lookup() -> list[Message]:
            messages = self._messages.get(conv, [])
            return [messages[s - 1] for s in sorted(set(seqs)) if 0 < s <= len(messages)]

        return self._ok(lookup)

    def latest_seq(self, conv: str) -> defer.Deferred:
        return self._ok(lambda: len(self._messages.get(conv, ())))

    def mark_read(self, user_id: int, conv: str, seq: int) -> defer.Deferred:
        def mark() -> int | None:
            entry = self._entries.get((user_id, conv))
            if entry is None:
                return None
            entry[2] = max(entry[2], min(seq, len(self._messages.get(conv, ()))))
            return entry[2]

        return self._ok(mark)

    def mark_delivered(self, receipts: list[tuple[int, str, int]]) -> defer.Deferred:
        def mark() -> None:
            for user_id, conv, seq in receipts:
                entry = self._entries.get((user_id, conv))
                if entry is not None:
                    entry[3] = max(entry[3], min(seq, len(self._messages.get(conv, ()))))

        return self._ok(mark)

    def delivered_seq(self, user_id: int, conv: str) -> defer.Deferred:
        return self._ok(lambda: self._entries.get((user_id, conv), [0, 0, 0, 0, 0])[3])

    def _entry(self, user_id: int, conv: str) -> ConversationEntry | None:
        entry = self._entries.get((user_id, conv))
        if entry is None:
            return None
        messages = self._messages.get(conv, [])
        mention = entry[4]
        if entry[0] == SessionType.GROUP:
            mention = max(mention, self._at_all.get(entry[1], 0))
        return ConversationEntry(
            conv,
            entry[0],
            entry[1],
            entry[2],
            len(messages),
            self._updated.get(conv, 0),
            messages[-1] if messages else None,
            mention,
        )

    def conversations_of(self, user_id: int, updated_since: int, limit: int) -> defer.Deferred:
        def listed() -> list[ConversationEntry]:
            entries = [self._entry(u, conv) for (u, conv) in self._entries if u == user_id]
            entries = [e for e in entries if e is not None and e.updated_at >= updated_since]
            entries.sort(key=lambda e: (e.updated_at, e.last_seq, e.conv), reverse=True)
            return entries[:limit]

        return self._ok(listed)

    def conversation_entry(self, user_id: int, conv: str) -> defer.Deferred:
        return self._ok(self._entry, user_id, conv)

    # -- groups

    def _live(self, group_id: int) -> Group:
        group = self._groups.get(group_id)
        if group is None or group.dismissed:
            raise GroupNotFound(f"no group {group_id}")
        return group

    def _actor(self, group_id: int, actor_id: int, min_role: int) -> GroupMember:
        member = self._members[group_id].get(actor_id)
        if member is None:
            raise NotGroupMember(f"user {actor_id} is not a member of group {group_id}")
        if member.role < min_role:
            raise GroupForbidden(f"user {actor_id} may not do this in group {group_id}")
        return member

    def _check_counts(self, user_ids: list[int], limit: int) -> None:
        if limit <= 0:
            return
        over = [u for u in user_ids if sum(u in m for m in self._members.values()) >= limit]
        if over:
            raise TooManyGroups(over)

    def _insert(self, group_id: int, members: list[tuple[int, int]], now: int) -> tuple[GroupMember, ...]:
        conv = f"g:{group_id}"
        last = len(self._messages.get(conv, ()))
        added = []
        for uid, role in members:
            self._join_counters[group_id] += 1
            member = GroupMember(group_id, uid, role, now, last + 1, self._join_counters[group_id])
            self._members[group_id][uid] = member
            self._entries[(uid, conv)] = [int(SessionType.GROUP), group_id, last, last, 0]
            added.append(member)
        return tuple(added)

    def _bump(self, group_id: int, now: int, delta: int = 0, **changes) -> Group:
        group = self._groups[group_id]
        group = replace(
            group,
            version=group.version + 1,
            updated_at=max(group.updated_at, now),
            member_count=group.member_count + delta,
            **changes,
        )
        self._groups[group_id] = group
        return group

    @staticmethod
    def _unique(ids: list[int], skip: int = 0) -> list[int]:
        seen = {skip}
        return [i for i in ids if not (i in seen or seen.add(i))]

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
        def create() -> GroupChange:
            members = [owner_id, *self._unique(member_ids, owner_id)]
            if len(members) > max_members:
                raise GroupFull(f"a group has at most {max_members} members")
            self._check_counts(members, max_groups_per_user)
            group_id = next(self._group_ids)
            group = Group(
                group_id, name, int(group_type), owner_id, created_at, created_at, 1, member_count=len(members)
            )
            self._groups[group_id] = group
            self._members[group_id] = {}
            self._join_counters[group_id] = 0
            self._updated.setdefault(group.conv, created_at)
            roles = [(owner_id, int(GroupRole.OWNER))] + [(u, int(GroupRole.MEMBER)) for u in members[1:]]
            return GroupChange(group, added=self._insert(group_id, roles, created_at))

        return self._ok(create)

    def group_by_id(self, group_id: int) -> defer.Deferred:
        return self._ok(self._groups.get, group_id)

    def groups_of(self, user_id: int) -> defer.Deferred:
        return self._ok(lambda: [self._groups[g] for g, m in sorted(self._members.items()) if user_id in m])

    def group_members(self, group_id: int) -> defer.Deferred:
        return self._ok(lambda: list(self._members.get(group_id, {}).values()))

    def group_member(self, group_id: int, user_id: int) -> defer.Deferred:
        return self._ok(lambda: self._members.get(group_id, {}).get(user_id))

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
        def add() -> GroupChange:
            group = self._live(group_id)
            self._actor(group_id, actor_id, min_role)
            new = [u for u in self._unique(user_ids) if u not in self._members[group_id]]
            if not new:
                return GroupChange(group)
            if group.member_count + len(new) > max_members:
                raise GroupFull(f"group {group_id} has at most {max_members} members")
            self._check_counts(new, max_groups_per_user)
            added = self._insert(group_id, [(u, int(GroupRole.MEMBER)) for u in new], now)
            return GroupChange(self._bump(group_id, now, len(added)), added=added)

        return self._ok(add)

    def remove_members(
        self, group_id: int, actor_id: int, min_role: int, user_ids: list[int], now: int, protect_role: int = 0
    ) -> defer.Deferred:
        def remove() -> GroupChange:
            group = self._live(group_id)
            self._actor(group_id, actor_id, min_role)
            members = self._members[group_id]
            wanted = set(user_ids)
            removed = tuple(m for uid, m in members.items() if uid in wanted)
            if not removed:
                return GroupChange(group)
            if protect_role and any(m.role >= protect_role for m in removed):
                raise GroupForbidden("the owner and admins cannot be removed by this user")
            for m in removed:
                del members[m.user_id]
                self._entries.pop((m.user_id, group.conv), None)
            if not members:
                return GroupChange(self._bump(group_id, now, -len(removed), dismissed=True), removed=removed)
            if group.owner_id not in members:
                senior = replace(next(iter(members.values())), role=int(GroupRole.OWNER))
                members[senior.user_id] = senior
                group = self._bump(group_id, now, -len(removed), owner_id=senior.user_id)
                return GroupChange(group, removed=removed, roles=(senior,))
            return GroupChange(self._bump(group_id, now, -len(removed)), removed=removed)

        return self._ok(remove)

    def update_group(self, group_id: int, actor_id: int, min_role: int, changes: dict, now: int) -> defer.Deferred:
        def update() -> GroupChange:
            unknown = set(changes) - set(GROUP_UPDATABLE)
            if unknown:
                raise ValueError(f"not updatable: {sorted(unknown)}")
            self._live(group_id)
            self._actor(group_id, actor_id, min_role)
            given = {k: v for k, v in changes.items() if v is not None}
            return GroupChange(self._bump(group_id, now, **given))

        return self._ok(update)

    def set_member_roles(
        self, group_id: int, actor_id: int, min_role: int, user_ids: list[int], role: int, now: int
    ) -> defer.Deferred:
        def set_roles() -> GroupChange:
            group = self._live(group_id)
            self._actor(group_id, actor_id, min_role)
            members = self._members[group_id]
            wanted = set(user_ids)
            changed = tuple(
                replace(m, role=int(role))
                for uid, m in members.items()
                if uid in wanted and m.role != role and m.role != GroupRole.OWNER
            )
            if not changed:
                return GroupChange(group)
            for m in changed:
                members[m.user_id] = m
            return GroupChange(self._bump(group_id, now), roles=changed)

        return self._ok(set_roles)

    def dismiss_group(self, group_id: int, actor_id: int, min_role: int, now: int) -> defer.Deferred:
        def dismiss() -> GroupChange:
            group = self._live(group_id)
            self._actor(group_id, actor_id, min_role)
            removed = tuple(self._members[group_id].values())
            self._members[group_id] = {}
            for m in removed:
                self._entries.pop((m.user_id, group.conv), None)
            return GroupChange(self._bump(group_id, now, -len(removed), dismissed=True), removed=removed)

        return self._ok(dismiss)

    def group_read_count(self, group_id: int, seq: int, exclude_user_id: int) -> defer.Deferred:
        def count() -> tuple[int, int]:
            conv = f"g:{group_id}"
            members = self._members.get(group_id, {})
            seeing = [m for uid, m in members.items() if uid != exclude_user_id and m.joined_seq <= seq]
            read = sum(1 for m in seeing if self._entries[(m.user_id, conv)][2] >= seq)
            return read, len(seeing)

        return self._ok(count)


def create_store(reactor, options: dict) -> MemoryStore:
    """Entry point for ``storage.backend = "memory"``."""
    return MemoryStore()
