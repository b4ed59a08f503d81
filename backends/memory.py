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

from coffeechat.interfaces import IStore, StoreClosed, UserExists
from coffeechat.model import AppendResult, ConversationEntry, Message, NewMessage, SessionType, User


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
        self._entries: dict[tuple[int, str], list] = {}  # (user, conv) -> [session_type, session_id, read, delivered]
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

    def user_by_token(self, token_hash: str, now: int) -> defer.Deferred:
        def owner() -> User | None:
            token = self._tokens.get(token_hash)
            if token is None or token[2] or token[1] <= now:
                return None
            return self._users.get(token[0])

        return self._ok(owner)

    def revoke_token(self, token_hash: str) -> defer.Deferred:
        def revoke() -> bool:
            token = self._tokens.get(token_hash)
            if token is None or token[2]:
                return False
            token[2] = True
            return True

        return self._ok(revoke)

    def revoke_user_tokens(self, user_id: int) -> defer.Deferred:
        def revoke() -> int:
            tokens = [t for t in self._tokens.values() if t[0] == user_id and not t[2]]
            for t in tokens:
                t[2] = True
            return len(tokens)

        return self._ok(revoke)

    # -- messages

    def append(self, message: NewMessage) -> defer.Deferred:
        def append() -> AppendResult:
            existing = self._by_client_id.get((message.sender_id, message.client_msg_id))
            if existing is not None:
                return AppendResult(existing, False)
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
            sender = self._entries.setdefault(
                (message.sender_id, message.conv), [message.session_type, message.to_id, 0, 0]
            )
            sender[2] = stored.seq
            if message.session_type == SessionType.SINGLE:
                self._entries.setdefault((message.to_id, message.conv), [message.session_type, message.sender_id, 0, 0])
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
        return self._ok(lambda: self._entries.get((user_id, conv), [0, 0, 0, 0])[3])

    def _entry(self, user_id: int, conv: str) -> ConversationEntry | None:
        entry = self._entries.get((user_id, conv))
        if entry is None:
            return None
        messages = self._messages.get(conv, [])
        return ConversationEntry(
            conv,
            entry[0],
            entry[1],
            entry[2],
            len(messages),
            self._updated.get(conv, 0),
            messages[-1] if messages else None,
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


def create_store(reactor, options: dict) -> MemoryStore:
    """Entry point for ``storage.backend = "memory"``."""
    return MemoryStore()
