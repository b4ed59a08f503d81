"""The storage conformance suite: the behaviour every :class:`~coffeechat.interfaces.IStore`
backend must show, whoever wrote it.

How a third party uses it (pytest with the pytest-twisted plugin)::

    # tests/test_my_store.py
    from coffeechat.testing.conformance import StoreConformanceTests
    from my_package import MyStore

    class TestMyStore(StoreConformanceTests):
        def make_store(self, tmp_path):
            # Return a NEW, NOT YET STARTED store (or a Deferred firing with one).  Called
            # twice with the same tmp_path it must reach the same data: the durability
            # tests stop a store and open another one on what the first one wrote.
            return MyStore(reactor, dsn=f"sqlite:///{tmp_path}/db")

and run ``python -m pytest tests/test_my_store.py``.  A backend that runs SQL for feature
modules (:class:`~coffeechat.interfaces.ISQLDatabase`) also subclasses
:class:`SQLDatabaseConformanceTests` the same way.  The suite starts and stops the stores
itself.  ``tmp_path`` is fresh for every test, so a backend on a database server should derive
a fresh database (or schema) from it.  A backend that keeps nothing across a restart (an
in-memory store) sets ``durable = False``, which skips only the tests that reopen a store.

Timestamps are passed in by the caller (as the core does), so the expectations about ordering
do not depend on the clock.  The tests use plain ``assert``; for pytest's detailed assertion
messages call ``pytest.register_assert_rewrite("coffeechat.testing.conformance")`` in a
conftest.py before this module is imported.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from zope.interface.verify import verifyObject

from coffeechat.interfaces import (
    GroupForbidden,
    GroupFull,
    GroupNotFound,
    ISQLDatabase,
    IStore,
    NotGroupMember,
    StoreClosed,
    TooManyGroups,
    UserExists,
)
from coffeechat.model import (
    AppendResult,
    ClientType,
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
    conversation_key,
)
from coffeechat.sql import SQLMigration, parse_migrations

__all__ = [
    "RecallStoreConformanceTests",
    "SQLDatabaseConformanceTests",
    "StoreConformanceTests",
    "new_group",
    "new_message",
]

T0 = 1_700_000_000  # an arbitrary "now" in unix seconds


def new_message(
    sender: int,
    to: int,
    client_msg_id: str,
    *,
    data: bytes | None = None,
    at: int = T0,
    session_type: int = SessionType.SINGLE,
    msg_type: int = MsgType.TEXT,
    client_type: int = ClientType.ANDROID,
    mentions: tuple[int, ...] = (),
    at_all: bool = False,
) -> NewMessage:
    """A NewMessage from ``sender`` to user (or group) ``to``, keyed as the core keys it."""
    return NewMessage(
        mentions=tuple(mentions),
        at_all=at_all,
        conv=conversation_key(session_type, sender, to),
        session_type=int(session_type),
        sender_id=sender,
        to_id=to,
        client_msg_id=client_msg_id,
        msg_type=int(msg_type),
        data=data if data is not None else f"body of {client_msg_id}".encode(),
        created_at=at,
        client_type=int(client_type),
    )


def group_message(sender: int, group_id: int, client_msg_id: str, **kwargs: Any) -> NewMessage:
    """A text message from ``sender`` to group ``group_id``."""
    return new_message(sender, group_id, client_msg_id, session_type=SessionType.GROUP, **kwargs)


async def new_group(
    store: Any,
    owner: int,
    members: list[int],
    *,
    name: str = "g",
    at: int = T0,
    max_members: int = 200,
    max_groups_per_user: int = 0,
) -> Group:
    """Create a normal group and return it."""
    change = await store.create_group(owner, name, 1, members, at, max_members, max_groups_per_user)
    return change.group


async def _read(store: Any, user_id: int, group: Group) -> tuple[int, int] | None:
    """(read_seq, unread) of a user's entry for a group, None without an entry."""
    entry = await store.conversation_entry(user_id, group.conv)
    return None if entry is None else (entry.read_seq, entry.unread)


async def _owner(store: Any, token_hash: str, now: int) -> int | None:
    """The id of the user a live token belongs to, or None."""
    users = await store.users_by_tokens([token_hash], now)
    return users[token_hash].user_id if token_hash in users else None


def _seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


class StoreConformanceTests:
    """Subclass as ``Test<Something>`` and implement :meth:`make_store`."""

    #: False for backends that keep nothing across a stop(); skips the reopen tests.
    durable: bool = True

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one) keeping its data under
        ``tmp_path``; a second call with the same ``tmp_path`` must see the same data."""
        raise NotImplementedError("subclasses of StoreConformanceTests implement make_store")

    async def open_store(self, tmp_path: Any) -> Any:
        store = await defer.maybeDeferred(self.make_store, tmp_path)
        await store.start()
        return store

    @pytest.fixture
    def store(self, tmp_path: Any) -> Any:
        store = pytest_twisted.blockon(defer.ensureDeferred(self.open_store(tmp_path)))
        yield store
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    def _need_durable(self) -> None:
        if not self.durable:
            pytest.skip("backend is not durable")

    # ---- the interface -----------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_provides_istore(self, store):
        assert verifyObject(IStore, store)

    # ---- users -------------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_create_user_returns_user_with_increasing_ids_from_1(self, store):
        alice = await store.create_user("alice", "Alice", "hash-a", T0)
        bob = await store.create_user("bob", "Bob", "", T0 + 1)
        assert isinstance(alice, User)
        assert alice == User(1, "alice", "Alice", "hash-a", False, T0, "", "")
        assert bob.user_id > alice.user_id
        assert bob.password_hash == ""
        assert bob.created_at == T0 + 1

    @pytest_twisted.ensureDeferred
    async def test_duplicate_name_is_refused_case_insensitively(self, store):
        await store.create_user("Alice", "Alice", "h", T0)
        for name in ("Alice", "alice", "ALICE"):
            with pytest.raises(UserExists):
                await store.create_user(name, "other", "h", T0)
        await store.create_user("Émile", "Émile", "h", T0)
        with pytest.raises(UserExists):
            await store.create_user("émile", "x", "h", T0)
        # a refused name leaves the store usable and creates nothing
        users = await store.list_users(0, 100)
        assert [u.name for u in users] == ["Alice", "Émile"]

    @pytest_twisted.ensureDeferred
    async def test_user_lookups(self, store):
        alice = await store.create_user("Alice", "Al", "h", T0)
        bob = await store.create_user("bob", "Bob", "h", T0)
        assert await store.user_by_name("alice") == alice
        assert await store.user_by_name("ALICE") == alice
        assert (await store.user_by_name("alice")).name == "Alice"  # stored as given
        assert await store.user_by_name("carol") is None
        assert await store.user_by_id(bob.user_id) == bob
        assert await store.user_by_id(9999) is None
        found = await store.users_by_ids([bob.user_id, 9999, alice.user_id, bob.user_id])
        assert found == [alice, bob]
        assert await store.users_by_ids([]) == []

    @pytest_twisted.ensureDeferred
    async def test_list_users_pages_by_id(self, store):
        created = [await store.create_user(f"user{i}", f"U{i}", "", T0) for i in range(7)]
        ids = [u.user_id for u in created]
        page1 = await store.list_users(0, 3)
        assert [u.user_id for u in page1] == ids[:3]
        page2 = await store.list_users(page1[-1].user_id, 3)
        assert [u.user_id for u in page2] == ids[3:6]
        page3 = await store.list_users(page2[-1].user_id, 3)
        assert [u.user_id for u in page3] == ids[6:]
        assert await store.list_users(ids[-1], 3) == []
        assert page1[0] == created[0]

    @pytest_twisted.ensureDeferred
    async def test_update_user_changes_only_given_fields(self, store):
        user = await store.create_user("alice", "Alice", "old", T0)
        updated = await store.update_user(user.user_id, nick_name="Ally")
        assert updated == User(user.user_id, "alice", "Ally", "old", False, T0)
        updated = await store.update_user(user.user_id, password_hash="new")
        assert (updated.nick_name, updated.password_hash, updated.disabled) == ("Ally", "new", False)
        updated = await store.update_user(user.user_id, disabled=True)
        assert updated.disabled is True
        assert (await store.user_by_id(user.user_id)).disabled is True
        assert (await store.user_by_name("alice")) == updated
        updated = await store.update_user(user.user_id, disabled=False)
        assert updated.disabled is False
        unchanged = await store.update_user(user.user_id)
        assert unchanged == updated
        assert await store.update_user(9999, nick_name="ghost") is None

    @pytest_twisted.ensureDeferred
    async def test_upgrade_password_hash_only_replaces_the_expected_hash(self, store):
        user = await store.create_user("alice", "Alice", "cimv1$salt$old", T0)
        assert await store.upgrade_password_hash(user.user_id, "cimv1$salt$other", "scrypt$new") is False
        assert (await store.user_by_id(user.user_id)).password_hash == "cimv1$salt$old"
        assert await store.upgrade_password_hash(user.user_id, "cimv1$salt$old", "scrypt$new") is True
        assert (await store.user_by_id(user.user_id)).password_hash == "scrypt$new"
        assert await store.upgrade_password_hash(user.user_id, "cimv1$salt$old", "scrypt$newer") is False
        assert await store.upgrade_password_hash(9999, "", "scrypt$x") is False

    # ---- tokens ------------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_token_user_and_expiry(self, store):
        alice = await store.create_user("alice", "Alice", "", T0)
        assert await store.add_token("tok-a", alice.user_id, T0, T0 + 100, "phone") is None
        assert await _owner(store, "tok-a", T0) == alice.user_id
        assert await _owner(store, "tok-a", T0 + 99) == alice.user_id
        assert await _owner(store, "tok-a", T0 + 100) is None  # expired at expires_at
        assert await _owner(store, "tok-a", T0 + 10_000) is None
        assert await _owner(store, "unknown", T0) is None

    @pytest_twisted.ensureDeferred
    async def test_tokens_looked_up_in_one_batch(self, store):
        alice = await store.create_user("alice", "Alice", "", T0)
        bob = await store.create_user("bob", "Bob", "", T0)
        await store.add_token("a", alice.user_id, T0, T0 + 100, "")
        await store.add_token("b", bob.user_id, T0, T0 + 100, "")
        await store.add_token("old", bob.user_id, T0, T0 + 1, "")
        await store.add_token("gone", bob.user_id, T0, T0 + 100, "")
        await store.revoke_token("gone")
        found = await store.users_by_tokens(["a", "b", "old", "gone", "nope", "a"], T0 + 10)
        assert {h: u.user_id for h, u in found.items()} == {"a": alice.user_id, "b": bob.user_id}
        assert await store.users_by_tokens([], T0) == {}

    @pytest_twisted.ensureDeferred
    async def test_expired_tokens_are_purged_in_bounded_steps(self, store):
        alice = await store.create_user("alice", "Alice", "", T0)
        for i in range(5):
            await store.add_token(f"old{i}", alice.user_id, T0, T0 + 10 + i, "")
        await store.add_token("live", alice.user_id, T0, T0 + 1000, "")
        await store.add_token("revoked", alice.user_id, T0, T0 + 1000, "")
        await store.revoke_token("revoked")
        assert await store.purge_tokens(T0 + 9, 100) == 0  # none expired yet
        assert await store.purge_tokens(T0 + 20, 3) == 3  # at most limit at once
        assert await store.purge_tokens(T0 + 20, 3) == 2
        assert await store.purge_tokens(T0 + 20, 3) == 0
        assert await _owner(store, "live", T0 + 20) == alice.user_id
        assert await store.revoke_token("revoked") is False  # still known as revoked until it expires
        assert await store.purge_tokens(T0 + 1000, 100) == 2
        assert await store.users_by_tokens(["live", "revoked"], T0) == {}

    @pytest_twisted.ensureDeferred
    async def test_revoke_one_token(self, store):
        alice = await store.create_user("alice", "Alice", "", T0)
        await store.add_token("tok-1", alice.user_id, T0, T0 + 100, "a")
        await store.add_token("tok-2", alice.user_id, T0, T0 + 100, "b")
        assert await store.revoke_token("tok-1") is True
        assert await _owner(store, "tok-1", T0) is None
        assert await _owner(store, "tok-2", T0) == alice.user_id
        assert await store.revoke_token("unknown") is False

    @pytest_twisted.ensureDeferred
    async def test_revoke_all_tokens_of_a_user(self, store):
        alice = await store.create_user("alice", "Alice", "", T0)
        bob = await store.create_user("bob", "Bob", "", T0)
        for i in range(3):
            await store.add_token(f"a{i}", alice.user_id, T0, T0 + 100, "")
        await store.add_token("b0", bob.user_id, T0, T0 + 100, "")
        await store.revoke_token("a0")
        assert await store.revoke_user_tokens(alice.user_id) == 2  # a0 was revoked already
        for i in range(3):
            assert await _owner(store, f"a{i}", T0) is None
        assert await _owner(store, "b0", T0) == bob.user_id
        assert await store.revoke_user_tokens(alice.user_id) == 0
        assert await store.revoke_user_tokens(9999) == 0

    @pytest_twisted.ensureDeferred
    async def test_token_of_disabled_user_names_the_disabled_user(self, store):
        alice = await store.create_user("alice", "Alice", "", T0)
        await store.add_token("tok", alice.user_id, T0, T0 + 100, "")
        await store.update_user(alice.user_id, disabled=True)
        user = (await store.users_by_tokens(["tok"], T0))["tok"]
        assert (user.user_id, user.name, user.disabled) == (alice.user_id, "alice", True)
        await store.update_user(alice.user_id, disabled=False)
        assert (await store.users_by_tokens(["tok"], T0))["tok"].disabled is False

    # ---- append ------------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_append_gives_dense_seqs_from_1(self, store):
        results = []
        for i in range(5):
            results.append(await store.append(new_message(1, 2, f"m{i}", at=T0 + i)))
        assert all(isinstance(r, AppendResult) and r.created for r in results)
        assert [r.message.seq for r in results] == [1, 2, 3, 4, 5]
        first = results[0].message
        assert first == Message(
            conv="p:1:2",
            seq=1,
            session_type=SessionType.SINGLE,
            sender_id=1,
            to_id=2,
            client_msg_id="m0",
            msg_type=MsgType.TEXT,
            data=b"body of m0",
            created_at=T0,
            client_type=ClientType.ANDROID,
        )
        assert await store.latest_seq("p:1:2") == 5

    @pytest_twisted.ensureDeferred
    async def test_message_fields_round_trip(self, store):
        data = bytes(range(256)) * 3 + b"\x00"
        sent = new_message(7, 3, "bin", data=data, at=T0 + 5, msg_type=MsgType.IMAGE, client_type=ClientType.WEB)
        result = await store.append(sent)
        [stored] = await store.history(sent.conv, 0, 10)
        assert stored == result.message
        assert isinstance(stored.data, bytes) and stored.data == data
        assert (stored.sender_id, stored.to_id, stored.msg_type, stored.client_type) == (
            7,
            3,
            MsgType.IMAGE,
            ClientType.WEB,
        )
        assert stored.created_at == T0 + 5 and stored.conv == "p:3:7"

    @pytest_twisted.ensureDeferred
    async def test_conversations_have_separate_sequences(self, store):
        a = await store.append(new_message(1, 2, "a1"))
        b = await store.append(new_message(1, 3, "b1"))
        a2 = await store.append(new_message(2, 1, "a2"))  # the other direction: same conversation
        group = await new_group(store, 1, [2])
        g = await store.append(group_message(1, group.group_id, "g1"))
        b2 = await store.append(new_message(3, 1, "b2"))
        assert (a.message.seq, b.message.seq, a2.message.seq, g.message.seq, b2.message.seq) == (1, 1, 2, 1, 2)
        assert a2.message.conv == a.message.conv
        assert g.message.conv == group.conv == f"g:{group.group_id}"
        assert await store.latest_seq("p:1:2") == 2
        assert await store.latest_seq("p:1:3") == 2
        assert await store.latest_seq(group.conv) == 1
        assert await store.latest_seq("p:8:9") == 0

    @pytest_twisted.ensureDeferred
    async def test_resend_returns_the_stored_message(self, store):
        first = await store.append(new_message(1, 2, "same", data=b"original"))
        again = await store.append(new_message(1, 2, "same", data=b"changed", at=T0 + 60))
        assert first.created is True
        assert again.created is False
        assert again.message == first.message
        assert again.message.data == b"original"
        assert await store.latest_seq("p:1:2") == 1
        assert _seqs(await store.history("p:1:2", 0, 10)) == [1]

    @pytest_twisted.ensureDeferred
    async def test_resend_much_later(self, store):
        first = await store.append(new_message(1, 2, "early"))
        for i in range(50):
            await store.append(new_message(1 + i % 2, 2 - i % 2, f"m{i}", at=T0 + i))
        again = await store.append(new_message(1, 2, "early", at=T0 + 3600))
        assert again.created is False
        assert again.message == first.message
        assert await store.latest_seq("p:1:2") == 51
        next_one = await store.append(new_message(1, 2, "after"))
        assert next_one.message.seq == 52

    @pytest_twisted.ensureDeferred
    async def test_resend_fired_concurrently_stores_one_message(self, store):
        d1 = store.append(new_message(1, 2, "twice", data=b"one"))
        d2 = store.append(new_message(1, 2, "twice", data=b"two"))
        r1, r2 = await defer.gatherResults([d1, d2])
        assert (r1.created, r2.created) == (True, False)
        assert r1.message == r2.message
        assert r1.message.data == b"one"
        assert _seqs(await store.history("p:1:2", 0, 10)) == [1]
        assert await store.latest_seq("p:1:2") == 1

    @pytest_twisted.ensureDeferred
    async def test_client_msg_id_is_per_sender(self, store):
        a = await store.append(new_message(1, 2, "shared"))
        b = await store.append(new_message(2, 1, "shared"))
        assert a.created and b.created
        assert (a.message.seq, b.message.seq) == (1, 2)

    @pytest_twisted.ensureDeferred
    async def test_many_concurrent_appends_to_one_conversation(self, store):
        n = 500
        ds = [store.append(new_message(1 + i % 2, 2 - i % 2, f"c{i}", at=T0 + i // 100)) for i in range(n)]
        results = await defer.gatherResults(ds)
        assert all(r.created for r in results)
        assert sorted(r.message.seq for r in results) == list(range(1, n + 1))
        stored = await store.history("p:1:2", 0, n + 10)
        assert _seqs(stored) == list(range(1, n + 1))
        by_seq = {r.message.seq: r.message.client_msg_id for r in results}
        assert {m.seq: m.client_msg_id for m in stored} == by_seq
        assert await store.latest_seq("p:1:2") == n

    @pytest_twisted.ensureDeferred
    async def test_concurrent_appends_to_many_conversations(self, store):
        ds = [store.append(new_message(100, 200 + i % 20, f"x{i}")) for i in range(400)]
        results = await defer.gatherResults(ds)
        per_conv: dict[str, list[int]] = {}
        for r in results:
            per_conv.setdefault(r.message.conv, []).append(r.message.seq)
        assert len(per_conv) == 20
        for seqs in per_conv.values():
            assert sorted(seqs) == list(range(1, 21))

    @pytest_twisted.ensureDeferred
    async def test_group_append(self, store):
        group = await new_group(store, 5, [6])
        gid = group.group_id
        results = [await store.append(group_message(5, gid, f"g{i}", at=T0 + i)) for i in range(3)]
        assert [r.message.seq for r in results] == [1, 2, 3]
        assert all(r.message.conv == group.conv and r.message.to_id == gid for r in results)
        entry = await store.conversation_entry(5, group.conv)
        assert entry is not None
        assert (entry.session_type, entry.session_id, entry.read_seq, entry.last_seq) == (SessionType.GROUP, gid, 3, 3)
        assert await _read(store, 6, group) == (0, 3)

    # ---- history -----------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_history_paging(self, store):
        for i in range(10):
            await store.append(new_message(1, 2, f"h{i}", at=T0 + i))
        conv = "p:1:2"
        assert _seqs(await store.history(conv, 0, 3)) == [8, 9, 10]
        assert _seqs(await store.history(conv, 8, 3)) == [5, 6, 7]  # before_seq is exclusive
        assert _seqs(await store.history(conv, 5, 3)) == [2, 3, 4]
        assert _seqs(await store.history(conv, 2, 3)) == [1]
        assert _seqs(await store.history(conv, 1, 3)) == []
        assert _seqs(await store.history(conv, 0, 100)) == list(range(1, 11))
        assert _seqs(await store.history(conv, 11, 2)) == [9, 10]
        assert _seqs(await store.history(conv, 0, 100, 7)) == [7, 8, 9, 10]
        assert _seqs(await store.history(conv, 9, 5, min_seq=6)) == [6, 7, 8]
        assert _seqs(await store.history(conv, 0, 2, min_seq=3)) == [9, 10]
        assert await store.history("p:5:6", 0, 10) == []
        page = await store.history(conv, 0, 3)
        assert [m.client_msg_id for m in page] == ["h7", "h8", "h9"]

    @pytest_twisted.ensureDeferred
    async def test_messages_by_seq(self, store):
        sent = [(await store.append(new_message(1, 2, f"s{i}"))).message for i in range(6)]
        found = await store.messages_by_seq("p:1:2", [5, 1, 3, 99, 3])
        assert found == [sent[0], sent[2], sent[4]]
        assert await store.messages_by_seq("p:1:2", []) == []
        assert await store.messages_by_seq("p:7:8", [1]) == []

    # ---- read and delivery state -------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_mark_read_moves_forward_only_and_is_clamped(self, store):
        for i in range(3):
            await store.append(new_message(1, 2, f"r{i}"))
        conv = "p:1:2"
        entry = await store.conversation_entry(2, conv)
        assert (entry.read_seq, entry.last_seq, entry.unread) == (0, 3, 3)
        assert await store.mark_read(2, conv, 2) == 2
        entry = await store.conversation_entry(2, conv)
        assert (entry.read_seq, entry.unread) == (2, 1)
        assert await store.mark_read(2, conv, 1) == 2  # never backwards
        assert await store.mark_read(2, conv, 100) == 3  # clamped to the last seq
        assert (await store.conversation_entry(2, conv)).unread == 0
        await store.append(new_message(1, 2, "r3"))
        assert (await store.conversation_entry(2, conv)).unread == 1

    @pytest_twisted.ensureDeferred
    async def test_mark_read_without_entry_is_none(self, store):
        await store.append(new_message(1, 2, "x"))
        assert await store.mark_read(3, "p:1:2", 1) is None  # not a participant
        assert await store.mark_read(1, "p:1:9", 1) is None  # no such conversation
        assert await store.conversation_entry(3, "p:1:2") is None

    @pytest_twisted.ensureDeferred
    async def test_senders_read_position_follows_own_messages(self, store):
        conv = "p:1:2"
        for i in range(3):
            await store.append(new_message(1, 2, f"a{i}", at=T0 + i))
        a = await store.conversation_entry(1, conv)
        b = await store.conversation_entry(2, conv)
        assert (a.read_seq, a.unread) == (3, 0)
        assert (b.read_seq, b.unread) == (0, 3)
        await store.append(new_message(2, 1, "b0", at=T0 + 10))
        a = await store.conversation_entry(1, conv)
        b = await store.conversation_entry(2, conv)
        assert (a.read_seq, a.last_seq, a.unread) == (3, 4, 1)
        assert (b.read_seq, b.unread) == (4, 0)  # replying means having read everything before

    @pytest_twisted.ensureDeferred
    async def test_conversation_entry(self, store):
        await store.append(new_message(1, 2, "e0", at=T0))
        last = (await store.append(new_message(2, 1, "e1", at=T0 + 30))).message
        a = await store.conversation_entry(1, "p:1:2")
        b = await store.conversation_entry(2, "p:1:2")
        assert isinstance(a, ConversationEntry)
        assert a == ConversationEntry("p:1:2", SessionType.SINGLE, 2, 1, 2, T0 + 30, last)
        assert b == ConversationEntry("p:1:2", SessionType.SINGLE, 1, 2, 2, T0 + 30, last)
        assert await store.conversation_entry(1, "p:1:3") is None

    @pytest_twisted.ensureDeferred
    async def test_conversations_of(self, store):
        # user 1 talks with 2 (t0+100), 3 (t0+300) and 4 (t0+200); 5 and 6 talk without 1
        await store.append(new_message(1, 2, "to2", at=T0 + 100))
        await store.append(new_message(3, 1, "from3", at=T0 + 300))
        await store.append(new_message(1, 4, "to4", at=T0 + 150))
        last4 = (await store.append(new_message(4, 1, "from4", at=T0 + 200))).message
        await store.append(new_message(5, 6, "other", at=T0 + 400))
        entries = await store.conversations_of(1, 0, 10)
        assert [e.conv for e in entries] == ["p:1:3", "p:1:4", "p:1:2"]
        assert [e.session_id for e in entries] == [3, 4, 2]
        assert [e.updated_at for e in entries] == [T0 + 300, T0 + 200, T0 + 100]
        assert [e.unread for e in entries] == [1, 1, 0]
        assert entries[1].last_message == last4
        assert entries[1].last_seq == 2 and entries[1].read_seq == 1
        assert [e.conv for e in await store.conversations_of(1, T0 + 200, 10)] == ["p:1:3", "p:1:4"]
        assert [e.conv for e in await store.conversations_of(1, T0 + 201, 10)] == ["p:1:3"]
        assert [e.conv for e in await store.conversations_of(1, 0, 2)] == ["p:1:3", "p:1:4"]
        assert await store.conversations_of(1, T0 + 1000, 10) == []
        assert await store.conversations_of(99, 0, 10) == []
        assert [e.conv for e in await store.conversations_of(6, 0, 10)] == ["p:5:6"]
        # a new message moves its conversation to the front
        await store.append(new_message(2, 1, "late", at=T0 + 500))
        assert [e.conv for e in await store.conversations_of(1, 0, 10)] == ["p:1:2", "p:1:3", "p:1:4"]

    @pytest_twisted.ensureDeferred
    async def test_mark_delivered_moves_forward_only(self, store):
        for i in range(4):
            await store.append(new_message(1, 2, f"d{i}"))
        await store.append(new_message(1, 3, "other"))
        assert await store.delivered_seq(2, "p:1:2") == 0
        await store.mark_delivered([(2, "p:1:2", 2), (3, "p:1:3", 1)])
        assert await store.delivered_seq(2, "p:1:2") == 2
        assert await store.delivered_seq(3, "p:1:3") == 1
        await store.mark_delivered([(2, "p:1:2", 1)])
        assert await store.delivered_seq(2, "p:1:2") == 2
        await store.mark_delivered([(2, "p:1:2", 3), (2, "p:1:2", 4)])
        assert await store.delivered_seq(2, "p:1:2") == 4
        await store.mark_delivered([(9, "p:1:2", 1), (2, "p:7:8", 1)])  # no entry: ignored
        assert await store.delivered_seq(9, "p:1:2") == 0
        await store.mark_delivered([])
        # delivery is not reading
        assert (await store.conversation_entry(2, "p:1:2")).read_seq == 0

    # ---- groups ------------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_create_group(self, store):
        change = await store.create_group(1, "Friends", 1, [2, 3, 1, 2], T0, 200, 0)
        assert isinstance(change, GroupChange) and change.removed == () and change.roles == ()
        group = change.group
        assert isinstance(group, Group) and group.group_id >= 1
        assert (group.name, group.group_type, group.owner_id, group.created_at, group.updated_at) == (
            "Friends",
            1,
            1,
            T0,
            T0,
        )
        assert (group.version, group.member_count, group.dismissed, group.mute_model) == (1, 3, False, 0)
        assert [(m.user_id, m.role) for m in change.added] == [
            (1, GroupRole.OWNER),
            (2, GroupRole.MEMBER),
            (3, GroupRole.MEMBER),
        ]
        assert all(isinstance(m, GroupMember) and m.joined_seq == 1 and m.joined_at == T0 for m in change.added)
        assert await store.group_by_id(group.group_id) == group
        assert await store.group_by_id(group.group_id + 100) is None
        assert await store.group_members(group.group_id) == list(change.added)
        assert await store.group_member(group.group_id, 2) == change.added[1]
        assert await store.group_member(group.group_id, 4) is None
        for uid in (1, 2, 3):
            entry = await store.conversation_entry(uid, group.conv)
            assert (entry.session_type, entry.session_id, entry.read_seq, entry.last_seq) == (
                SessionType.GROUP,
                group.group_id,
                0,
                0,
            )
            assert entry.last_message is None and not entry.at_me
        second = await new_group(store, 2, [1])
        assert second.group_id > group.group_id
        assert [g.group_id for g in await store.groups_of(1)] == [group.group_id, second.group_id]
        assert [g.group_id for g in await store.groups_of(3)] == [group.group_id]
        assert await store.groups_of(4) == []
        assert [e.conv for e in await store.conversations_of(3, 0, 10)] == [group.conv]

    @pytest_twisted.ensureDeferred
    async def test_create_group_limits(self, store):
        assert (await new_group(store, 1, [2, 3], max_members=3)).member_count == 3
        with pytest.raises(GroupFull):
            await new_group(store, 1, [2, 3, 4], max_members=3)
        await new_group(store, 1, [], max_groups_per_user=2)  # user 1's second group
        with pytest.raises(TooManyGroups) as refused:
            await new_group(store, 1, [5], max_groups_per_user=2)
        assert refused.value.user_ids == [1]
        with pytest.raises(TooManyGroups) as refused:
            await new_group(store, 5, [3, 2, 6], max_groups_per_user=1)
        assert refused.value.user_ids == [3, 2]
        assert len(await store.groups_of(5)) == 0  # nothing of a refused creation remains

    @pytest_twisted.ensureDeferred
    async def test_group_append_is_for_members_only(self, store):
        group = await new_group(store, 1, [2, 3])
        gid = group.group_id
        with pytest.raises(NotGroupMember):
            await store.append(group_message(4, gid, "outsider"))
        with pytest.raises(GroupNotFound):
            await store.append(group_message(1, gid + 100, "nowhere"))
        assert await store.latest_seq(group.conv) == 0
        first = await store.append(group_message(2, gid, "m1"))
        second = await store.append(group_message(3, gid, "m2"))
        assert (first.message.seq, second.message.seq) == (1, 2)
        assert await _read(store, 1, group) == (0, 2)
        assert await _read(store, 2, group) == (1, 1)
        assert await _read(store, 3, group) == (2, 0)
        assert await store.conversation_entry(4, group.conv) is None
        assert await store.mark_read(4, group.conv, 2) is None
        assert await store.mark_read(1, group.conv, 1) == 1
        assert await _read(store, 1, group) == (1, 1)

    @pytest_twisted.ensureDeferred
    async def test_mute_and_at_all_are_for_owner_and_admins(self, store):
        group = await new_group(store, 1, [2, 3])
        gid = group.group_id
        with pytest.raises(GroupForbidden):
            await store.append(group_message(2, gid, "all!", at_all=True))
        change = await store.update_group(gid, 1, GroupRole.ADMIN, {"mute_model": MuteModel.ALL}, T0 + 1)
        assert change.group.mute_model == MuteModel.ALL and change.group.version == 2
        with pytest.raises(GroupForbidden):
            await store.append(group_message(2, gid, "muted"))
        await store.set_member_roles(gid, 1, GroupRole.OWNER, [2], GroupRole.ADMIN, T0 + 2)
        assert (await store.append(group_message(2, gid, "admin speaks", at_all=True))).message.seq == 1
        assert (await store.append(group_message(1, gid, "owner speaks"))).message.seq == 2
        with pytest.raises(GroupForbidden):
            await store.append(group_message(3, gid, "still muted"))
        notice = await store.append(group_message(3, gid, "n", msg_type=MsgType.NOTIFICATION))
        assert notice.created and notice.message.seq == 3  # notices are the core's: not checked

    @pytest_twisted.ensureDeferred
    async def test_joiners_start_reading_at_the_current_last_seq(self, store):
        group = await new_group(store, 1, [2])
        gid = group.group_id
        for i in range(3):
            await store.append(group_message(1, gid, f"before{i}"))
        change = await store.add_members(gid, 2, GroupRole.MEMBER, [3, 2, 3], T0 + 5, 200, 0)
        assert [(m.user_id, m.role, m.joined_seq, m.joined_at) for m in change.added] == [
            (3, GroupRole.MEMBER, 4, T0 + 5)
        ]
        assert (change.group.member_count, change.group.version, change.group.updated_at) == (3, 2, T0 + 5)
        assert await _read(store, 3, group) == (3, 0)
        await store.append(group_message(2, gid, "after"))
        assert await _read(store, 3, group) == (3, 1)
        assert await _read(store, 1, group) == (3, 1)
        nothing = await store.add_members(gid, 1, GroupRole.MEMBER, [2, 3], T0 + 6, 200, 0)
        assert nothing.added == () and nothing.group.version == 2  # nothing changed, no new version

    @pytest_twisted.ensureDeferred
    async def test_add_members_limits_are_all_or_nothing(self, store):
        group = await new_group(store, 1, [2], max_members=4)
        gid = group.group_id
        with pytest.raises(GroupFull):
            await store.add_members(gid, 1, GroupRole.MEMBER, [3, 4, 5], T0, 4, 0)
        assert [m.user_id for m in await store.group_members(gid)] == [1, 2]
        assert (await store.group_by_id(gid)).member_count == 2
        await new_group(store, 9, [4])  # user 4 is in one group already
        with pytest.raises(TooManyGroups) as refused:
            await store.add_members(gid, 1, GroupRole.MEMBER, [3, 4], T0, 4, 1)
        assert refused.value.user_ids == [4]
        assert await store.group_member(gid, 3) is None
        change = await store.add_members(gid, 1, GroupRole.MEMBER, [3, 4], T0, 4, 0)
        assert [m.user_id for m in change.added] == [3, 4] and change.group.member_count == 4

    @pytest_twisted.ensureDeferred
    async def test_group_writes_check_the_actor(self, store):
        group = await new_group(store, 1, [2])
        gid = group.group_id
        with pytest.raises(NotGroupMember):
            await store.add_members(gid, 3, GroupRole.MEMBER, [4], T0, 200, 0)
        with pytest.raises(GroupForbidden):
            await store.add_members(gid, 2, GroupRole.ADMIN, [4], T0, 200, 0)
        with pytest.raises(GroupForbidden):
            await store.update_group(gid, 2, GroupRole.ADMIN, {"name": "mine"}, T0)
        with pytest.raises(GroupForbidden):
            await store.dismiss_group(gid, 2, GroupRole.OWNER, T0)
        with pytest.raises(GroupNotFound):
            await store.remove_members(gid + 100, 1, GroupRole.ADMIN, [2], T0)
        assert (await store.group_by_id(gid)).version == 1

    @pytest_twisted.ensureDeferred
    async def test_removed_members_lose_the_group(self, store):
        group = await new_group(store, 1, [2, 3, 4])
        gid = group.group_id
        sent = await store.append(group_message(3, gid, "mine"))
        change = await store.remove_members(gid, 1, GroupRole.ADMIN, [3, 9], T0 + 1, GroupRole.OWNER)
        assert [m.user_id for m in change.removed] == [3] and change.roles == ()
        assert (change.group.member_count, change.group.version) == (3, 2)
        assert await store.conversation_entry(3, group.conv) is None
        assert await store.conversations_of(3, 0, 10) == []
        assert await store.groups_of(3) == []
        with pytest.raises(NotGroupMember):
            await store.append(group_message(3, gid, "let me in"))
        again = await store.append(group_message(3, gid, "mine"))  # a resend is still answered
        assert again.created is False and again.message == sent.message
        with pytest.raises(GroupForbidden):  # an admin may not remove admins or the owner
            await store.remove_members(gid, 1, GroupRole.ADMIN, [2, 1], T0, GroupRole.ADMIN)
        assert (await store.group_by_id(gid)).member_count == 3

    @pytest_twisted.ensureDeferred
    async def test_owner_leaving_hands_over_and_the_last_one_out_dismisses(self, store):
        group = await new_group(store, 1, [2, 3])
        gid = group.group_id
        await store.add_members(gid, 1, GroupRole.MEMBER, [4], T0, 200, 0)
        await store.remove_members(gid, 2, GroupRole.MEMBER, [2], T0)
        await store.add_members(gid, 1, GroupRole.MEMBER, [2], T0, 200, 0)  # back, but now the newest
        change = await store.remove_members(gid, 1, GroupRole.MEMBER, [1], T0 + 3)
        assert change.group.owner_id == 3
        assert [(m.user_id, m.role) for m in change.roles] == [(3, GroupRole.OWNER)]
        assert (await store.group_member(gid, 3)).role == GroupRole.OWNER
        assert [m.user_id for m in await store.group_members(gid)] == [3, 4, 2]
        for leaver, owner in ((3, 4), (4, 2)):
            change = await store.remove_members(gid, leaver, GroupRole.MEMBER, [leaver], T0 + 4)
            assert change.group.owner_id == owner and not change.group.dismissed
        change = await store.remove_members(gid, 2, GroupRole.MEMBER, [2], T0 + 5)
        assert change.group.dismissed and change.group.member_count == 0
        assert (await store.group_by_id(gid)).dismissed
        with pytest.raises(GroupNotFound):
            await store.add_members(gid, 2, GroupRole.MEMBER, [2], T0, 200, 0)

    @pytest_twisted.ensureDeferred
    async def test_update_group_and_versions(self, store):
        group = await new_group(store, 1, [2])
        gid = group.group_id
        change = await store.update_group(gid, 1, GroupRole.ADMIN, {"name": "New", "intro": "about us"}, T0 + 10)
        g = change.group
        assert (g.name, g.intro, g.announcement, g.version, g.updated_at) == ("New", "about us", "", 2, T0 + 10)
        change = await store.update_group(
            gid,
            1,
            GroupRole.ADMIN,
            {
                "announcement": "read me",
                "avatar": "https://x/a.png",
                "join_model": 1,
                "be_invite_model": 1,
                "name": None,
            },
            T0 + 11,
        )
        g = change.group
        assert (g.name, g.announcement, g.avatar, g.join_model, g.be_invite_model, g.version) == (
            "New",
            "read me",
            "https://x/a.png",
            1,
            1,
            3,
        )
        assert await store.group_by_id(gid) == g
        roles = await store.set_member_roles(gid, 1, GroupRole.OWNER, [2, 1, 7], GroupRole.ADMIN, T0 + 12)
        assert [(m.user_id, m.role) for m in roles.roles] == [(2, GroupRole.ADMIN)] and roles.group.version == 4
        same = await store.set_member_roles(gid, 1, GroupRole.OWNER, [2], GroupRole.ADMIN, T0 + 13)
        assert same.roles == () and same.group.version == 4
        back = await store.set_member_roles(gid, 1, GroupRole.OWNER, [2], GroupRole.MEMBER, T0 + 14)
        assert [(m.user_id, m.role) for m in back.roles] == [(2, GroupRole.MEMBER)] and back.group.version == 5

    @pytest_twisted.ensureDeferred
    async def test_dismiss_group(self, store):
        group = await new_group(store, 1, [2, 3])
        gid = group.group_id
        await store.append(group_message(2, gid, "bye"))
        change = await store.dismiss_group(gid, 1, GroupRole.OWNER, T0 + 1)
        assert [m.user_id for m in change.removed] == [1, 2, 3]
        assert change.group.dismissed and change.group.member_count == 0 and change.group.version == 2
        for uid in (1, 2, 3):
            assert await store.conversation_entry(uid, group.conv) is None
            assert await store.groups_of(uid) == []
        assert await store.group_members(gid) == []
        with pytest.raises(GroupNotFound):
            await store.append(group_message(1, gid, "anyone?"))
        notice = await store.append(group_message(1, gid, "dismissed", msg_type=MsgType.NOTIFICATION))
        assert notice.message.seq == 2
        with pytest.raises(GroupNotFound):
            await store.dismiss_group(gid, 1, GroupRole.OWNER, T0 + 2)

    @pytest_twisted.ensureDeferred
    async def test_mentions_last_until_read_past(self, store):
        group = await new_group(store, 1, [2, 3, 4])
        gid = group.group_id
        await store.append(group_message(1, gid, "m1"))
        await store.append(group_message(1, gid, "hey 2", mentions=(2, 9)))
        await store.append(group_message(3, gid, "m3"))
        entry2 = await store.conversation_entry(2, group.conv)
        assert (entry2.mention_seq, entry2.at_me) == (2, True)
        assert not (await store.conversation_entry(3, group.conv)).at_me
        await store.mark_read(2, group.conv, 1)
        assert (await store.conversation_entry(2, group.conv)).at_me
        await store.mark_read(2, group.conv, 2)
        assert not (await store.conversation_entry(2, group.conv)).at_me
        await store.set_member_roles(gid, 1, GroupRole.OWNER, [3], GroupRole.ADMIN, T0)
        await store.append(group_message(3, gid, "everyone!", at_all=True))
        listed = {e.session_id: e for e in await store.conversations_of(4, 0, 10)}
        assert listed[gid].at_me and listed[gid].mention_seq == 4
        assert (await store.conversation_entry(2, group.conv)).at_me
        assert not (await store.conversation_entry(3, group.conv)).at_me  # one's own @all
        await store.add_members(gid, 1, GroupRole.MEMBER, [5], T0, 200, 0)
        assert not (await store.conversation_entry(5, group.conv)).at_me  # joined after it
        single = await store.append(new_message(1, 2, "1:1", mentions=(2,)))
        assert single.created and not (await store.conversation_entry(2, single.message.conv)).at_me

    @pytest_twisted.ensureDeferred
    async def test_group_read_count(self, store):
        group = await new_group(store, 1, [2, 3, 4])
        gid = group.group_id
        for i in range(3):
            await store.append(group_message(1, gid, f"m{i}"))
        assert await store.group_read_count(gid, 2, 1) == (0, 3)
        await store.mark_read(2, group.conv, 2)
        await store.mark_read(3, group.conv, 1)
        assert await store.group_read_count(gid, 2, 1) == (1, 3)
        assert await store.group_read_count(gid, 1, 1) == (2, 3)
        await store.append(group_message(4, gid, "m3"))  # writing means having read
        assert await store.group_read_count(gid, 2, 1) == (2, 3)
        await store.add_members(gid, 1, GroupRole.MEMBER, [5], T0, 200, 0)  # cannot see seq 2
        assert await store.group_read_count(gid, 2, 1) == (2, 3)
        await store.remove_members(gid, 1, GroupRole.ADMIN, [2], T0)
        assert await store.group_read_count(gid, 2, 1) == (1, 2)

    @pytest_twisted.ensureDeferred
    async def test_group_message_racing_a_kick(self, store):
        """Whichever the store writes first wins, even when both are queued at once (and land in
        one group-commit batch): the membership check is inside the writing transaction."""
        group = await new_group(store, 1, [2, 3])
        gid = group.group_id
        kick = store.remove_members(gid, 1, GroupRole.ADMIN, [2], T0, GroupRole.OWNER)
        message = store.append(group_message(2, gid, "too late"))
        mute = store.update_group(gid, 1, GroupRole.ADMIN, {"mute_model": MuteModel.ALL}, T0)
        muted = store.append(group_message(3, gid, "muted meanwhile"))
        results = await defer.DeferredList([kick, message, mute, muted], consumeErrors=True)
        assert results[0][0] and [m.user_id for m in results[0][1].removed] == [2]
        assert not results[1][0] and results[1][1].check(NotGroupMember)
        assert results[2][0]
        assert not results[3][0] and results[3][1].check(GroupForbidden)
        assert await store.latest_seq(group.conv) == 0
        # the other way round: the message was first, so it stands
        await store.update_group(gid, 1, GroupRole.ADMIN, {"mute_model": MuteModel.DEFAULT}, T0)
        message = store.append(group_message(3, gid, "just in time"))
        kick = store.remove_members(gid, 1, GroupRole.ADMIN, [3], T0, GroupRole.OWNER)
        sent, kicked = await defer.gatherResults([message, kick])
        assert sent.created and sent.message.seq == 1 and [m.user_id for m in kicked.removed] == [3]
        assert [m.client_msg_id for m in await store.history(group.conv, 0, 10)] == ["just in time"]

    @pytest_twisted.ensureDeferred
    async def test_history_from_joined_seq(self, store):
        group = await new_group(store, 1, [2])
        gid = group.group_id
        for i in range(4):
            await store.append(group_message(1, gid, f"early{i}"))
        change = await store.add_members(gid, 1, GroupRole.MEMBER, [3], T0, 200, 0)
        joined = change.added[0].joined_seq
        await store.append(group_message(3, gid, "hello"))
        assert _seqs(await store.history(group.conv, 0, 10, joined)) == [5]
        assert _seqs(await store.history(group.conv, 0, 10)) == [1, 2, 3, 4, 5]

    # ---- lifecycle and durability ------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_calls_after_stop_fail_cleanly(self, tmp_path):
        store = await self.open_store(tmp_path)
        await store.stop()
        for call in (
            lambda: store.append(new_message(1, 2, "late")),
            lambda: store.create_user("late", "Late", "", T0),
            lambda: store.history("p:1:2", 0, 10),
            lambda: store.user_by_name("late"),
        ):
            with pytest.raises(StoreClosed):
                await defer.maybeDeferred(call)

    @pytest_twisted.ensureDeferred
    async def test_stop_writes_what_was_queued(self, tmp_path):
        store = await self.open_store(tmp_path)
        pending = [store.append(new_message(1, 2, f"q{i}")) for i in range(100)]
        pending.append(store.create_user("queued", "Q", "", T0))
        await store.stop()
        results = await defer.gatherResults(pending)  # each fired successfully
        assert sorted(r.message.seq for r in results[:100]) == list(range(1, 101))
        if not self.durable:
            return
        store = await self.open_store(tmp_path)
        try:
            assert await store.latest_seq("p:1:2") == 100
            assert _seqs(await store.history("p:1:2", 0, 200)) == list(range(1, 101))
            assert (await store.user_by_name("queued")).nick_name == "Q"
        finally:
            await store.stop()

    @pytest_twisted.ensureDeferred
    async def test_everything_acknowledged_survives_a_restart(self, tmp_path):
        self._need_durable()
        store = await self.open_store(tmp_path)
        try:
            alice = await store.create_user("Alice", "Alice", "pw", T0)
            bob = await store.create_user("bob", "Bob", "", T0)
            await store.update_user(bob.user_id, nick_name="Bobby")
            await store.add_token("tok-a", alice.user_id, T0, T0 + 100, "phone")
            await store.add_token("tok-b", bob.user_id, T0, T0 + 100, "")
            await store.revoke_token("tok-b")
            sent = []
            for i in range(5):
                result = await store.append(
                    new_message(alice.user_id, bob.user_id, f"m{i}", data=b"\x00\x01" * i, at=T0 + i)
                )
                sent.append(result.message)
            chat = await new_group(store, bob.user_id, [alice.user_id], name="Durable")
            await store.update_group(chat.group_id, bob.user_id, GroupRole.OWNER, {"announcement": "hi"}, T0 + 8)
            group = (
                await store.append(group_message(alice.user_id, chat.group_id, "g", at=T0 + 9, mentions=(bob.user_id,)))
            ).message
            conv = sent[0].conv
            await store.mark_read(bob.user_id, conv, 3)
            await store.mark_delivered([(bob.user_id, conv, 4)])
        finally:
            await store.stop()

        store = await self.open_store(tmp_path)
        try:
            assert await store.user_by_name("alice") == alice
            assert (await store.user_by_id(bob.user_id)).nick_name == "Bobby"
            assert await _owner(store, "tok-a", T0) == alice.user_id
            assert await _owner(store, "tok-b", T0) is None
            assert await store.history(conv, 0, 10) == sent
            assert await store.latest_seq(conv) == 5
            assert await store.history(chat.conv, 0, 10) == [group]
            again_chat = await store.group_by_id(chat.group_id)
            assert (again_chat.name, again_chat.announcement, again_chat.version) == ("Durable", "hi", 2)
            assert [m.user_id for m in await store.group_members(chat.group_id)] == [bob.user_id, alice.user_id]
            assert (await store.conversation_entry(bob.user_id, chat.conv)).at_me
            assert [g.group_id for g in await store.groups_of(alice.user_id)] == [chat.group_id]
            with pytest.raises(NotGroupMember):
                await store.append(group_message(99, chat.group_id, "outsider"))
            later = await new_group(store, alice.user_id, [])
            assert later.group_id > chat.group_id
            entry = await store.conversation_entry(bob.user_id, conv)
            assert (entry.read_seq, entry.last_seq, entry.session_id) == (3, 5, alice.user_id)
            assert entry.last_message == sent[-1]
            assert await store.delivered_seq(bob.user_id, conv) == 4
            # sequences and ids continue where they stopped; resends are still recognised
            again = await store.append(new_message(alice.user_id, bob.user_id, "m1"))
            assert again.created is False and again.message == sent[1]
            nxt = await store.append(new_message(bob.user_id, alice.user_id, "reply"))
            assert nxt.message.seq == 6
            carol = await store.create_user("carol", "Carol", "", T0)
            assert carol.user_id > bob.user_id
            with pytest.raises(UserExists):
                await store.create_user("ALICE", "again", "", T0)
        finally:
            await store.stop()


# ---- ISQLDatabase: what feature modules may count on -----------------------------------------

#: A feature module's migrations file, as it would ship one: written once, with an override
#: where the dialects differ (the collation of a key column).
NOTES_SQL = """
-- migration 1: notes, a feature table written once
CREATE TABLE cc_notes (
    note_id BIGINT PRIMARY KEY,
    owner BIGINT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    pinned BOOLEAN NOT NULL DEFAULT FALSE,
    score INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cc_notes_owner ON cc_notes (owner);

-- migration 2: tags for notes; a ';' in a string or -- a comment does not end a statement
ALTER TABLE cc_notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'a;b';
-- migration 2 postgres
ALTER TABLE cc_notes ADD COLUMN tag TEXT COLLATE "C" NOT NULL DEFAULT 'a;b';
"""
_NOTE_COLS = "note_id, owner, body, pinned, score"


def _insert_notes(txn: Any, notes: list[tuple]) -> None:
    txn.executemany(f"INSERT INTO cc_notes ({_NOTE_COLS}) VALUES (?, ?, ?, ?, ?)", notes)


def _fetch(txn: Any, sql: str, params: tuple = ()) -> list[tuple]:
    return [tuple(row) for row in txn.execute(sql, params).fetchall()]


class SQLDatabaseConformanceTests:
    """The :class:`~coffeechat.interfaces.ISQLDatabase` contract, for a backend that runs SQL
    for feature modules: migrations per component, the portable SQL of docs/backends.md, and
    ``run_write`` failing one operation alone.  Subclass as ``Test<Something>`` and implement
    :meth:`make_store` as for :class:`StoreConformanceTests`."""

    component = "cc_conformance_notes"

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted store that provides ISQLDatabase (or a Deferred of one)."""
        raise NotImplementedError("subclasses of SQLDatabaseConformanceTests implement make_store")

    @pytest.fixture
    def db(self, tmp_path: Any) -> Any:
        async def opened() -> Any:
            store = await defer.maybeDeferred(self.make_store, tmp_path)
            await store.start()
            return store

        store = pytest_twisted.blockon(defer.ensureDeferred(opened()))
        yield store
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _notes(self, db: Any, notes: list[tuple] = ()) -> None:
        assert await db.migrate(self.component, parse_migrations(NOTES_SQL)) == 2
        if notes:
            await db.run_write("notes", _insert_notes, list(notes))

    @pytest_twisted.ensureDeferred
    async def test_provides_the_interface(self, db):
        assert verifyObject(ISQLDatabase, db)
        assert db.engine in ("sqlite", "postgres")
        assert await db.run_read("engine", lambda txn: txn.engine) == db.engine

    @pytest_twisted.ensureDeferred
    async def test_migrate_applies_pending_versions_once_and_records_them(self, db):
        first, second = parse_migrations(NOTES_SQL)
        assert await db.migrate(self.component, [first]) == 1
        await db.run_write("note", _insert_notes, [(1, 7, "kept", False, 0)])
        assert await db.migrate(self.component, [first]) == 1  # nothing pending: nothing runs again
        assert await db.migrate(self.component, [first, second]) == 2
        assert await db.migrate(self.component, [first, second]) == 2
        rows = await db.run_read("notes", _fetch, "SELECT note_id, body, tag FROM cc_notes")
        assert rows == [(1, "kept", "a;b")]
        # another component has versions of its own
        other = SQLMigration(1, "other", {"": "CREATE TABLE cc_other (k BIGINT PRIMARY KEY);"})
        assert await db.migrate(self.component + "_other", [other]) == 1

    @pytest_twisted.ensureDeferred
    async def test_migrate_refuses_a_newer_database(self, db):
        await self._notes(db)
        first = parse_migrations(NOTES_SQL)[0]
        with pytest.raises(Exception, match="newer"):
            await db.migrate(self.component, [first])
        assert await db.migrate(self.component, parse_migrations(NOTES_SQL)) == 2

    @pytest_twisted.ensureDeferred
    async def test_a_failing_migration_leaves_nothing_behind(self, db):
        first = parse_migrations(NOTES_SQL)[0]
        broken = SQLMigration(
            2, "broken", {"": "CREATE TABLE cc_half (k BIGINT PRIMARY KEY);\nINSERT INTO cc_no_such_table VALUES (1);"}
        )
        with pytest.raises(Exception, match="cc_no_such_table"):
            await db.migrate(self.component, [first, broken])
        # step 1 stays (its own transaction), step 2 left nothing: it runs again, fixed
        fixed = SQLMigration(2, "fixed", {"": "CREATE TABLE cc_half (k BIGINT PRIMARY KEY);"})
        assert await db.migrate(self.component, [first, fixed]) == 2
        assert await db.run_read("half", _fetch, "SELECT count(*) FROM cc_half") == [(0,)]

    @pytest_twisted.ensureDeferred
    async def test_a_feature_table_written_once_works(self, db):
        await self._notes(db, [(1, 7, "one", True, 3), (2, 7, "two", False, 5), (3, 8, "three", False, 1)])
        rows = await db.run_read(
            "by owner", _fetch, f"SELECT {_NOTE_COLS} FROM cc_notes WHERE owner = ? ORDER BY note_id", (7,)
        )
        assert [(r[0], r[2], bool(r[3]), r[4]) for r in rows] == [(1, "one", True, 3), (2, "two", False, 5)]

    @pytest_twisted.ensureDeferred
    async def test_run_write_failing_fails_only_that_operation(self, db):
        await self._notes(db)

        def insert(txn: Any, note_id: int) -> int:
            txn.execute("INSERT INTO cc_notes (note_id, owner, body) VALUES (?, 1, 'x')", (note_id,))
            return note_id

        def insert_then_fail(txn: Any, note_id: int) -> None:
            insert(txn, note_id)
            raise ValueError("changed my mind")

        def bad_sql(txn: Any) -> None:
            txn.execute("SELECT * FROM cc_no_such_table")

        ds = [
            db.run_write("a", insert, 1),
            db.run_write("b", insert_then_fail, 2),
            db.run_write("c", insert, 3),
            db.run_write("d", bad_sql),
            db.run_write("e", insert, 1),  # a duplicate key: fails alone too
            db.run_write("f", insert, 4),
        ]
        results = await defer.DeferredList(ds, consumeErrors=True)
        assert [ok for ok, _ in results] == [True, False, True, False, False, True]
        assert results[1][1].check(ValueError)
        assert await db.run_read("ids", _fetch, "SELECT note_id FROM cc_notes ORDER BY note_id") == [(1,), (3,), (4,)]

    @pytest_twisted.ensureDeferred
    async def test_run_write_with_locks_and_run_read_see_committed_data(self, db):
        await self._notes(db)

        def add(txn: Any) -> list[tuple]:
            txn.execute("INSERT INTO cc_notes (note_id, owner) VALUES (1, 2)")
            return _fetch(txn, "SELECT note_id, owner FROM cc_notes")

        assert await db.run_write("locked", add, locks=("p:1:2", "g:1")) == [(1, 2)]
        assert await db.run_read("read", _fetch, "SELECT note_id, owner FROM cc_notes") == [(1, 2)]

    @pytest_twisted.ensureDeferred
    async def test_in_list_with_no_one_or_many_values(self, db):
        await self._notes(db, [(i, i % 2, f"n{i}", False, 0) for i in range(1, 6)])

        def among(txn: Any, column: str, values: list) -> list[int]:
            clause, params = txn.in_list(column, values)
            return [r[0] for r in txn.execute(f"SELECT note_id FROM cc_notes WHERE {clause} ORDER BY note_id", params)]

        assert await db.run_read("none", among, "note_id", []) == []
        assert await db.run_read("one", among, "note_id", [3]) == [3]
        assert await db.run_read("many", among, "note_id", [5, 1, 3, 99]) == [1, 3, 5]
        assert await db.run_read("text", among, "body", ["n2", "n4", "nope"]) == [2, 4]

        def delete(txn: Any, ids: list[int]) -> int:
            clause, params = txn.in_list("note_id", ids)
            return txn.execute(f"DELETE FROM cc_notes WHERE owner = ? AND {clause}", (1, *params)).rowcount

        assert await db.run_write("delete", delete, [1, 2, 3]) == 2

    @pytest_twisted.ensureDeferred
    async def test_greatest_and_least(self, db):
        await self._notes(db, [(1, 1, "a", False, 5)])

        def bump(txn: Any, floor: int, ceiling: int) -> tuple:
            txn.execute("UPDATE cc_notes SET score = GREATEST(score, ?) WHERE note_id = 1", (floor,))
            return tuple(
                txn.execute("SELECT score, LEAST(score, ?) FROM cc_notes WHERE note_id = 1", (ceiling,)).fetchone()
            )

        assert await db.run_write("lower", bump, 2, 9) == (5, 5)
        assert await db.run_write("higher", bump, 8, 6) == (8, 6)

    @pytest_twisted.ensureDeferred
    async def test_booleans_as_literals_and_parameters(self, db):
        await self._notes(db)

        def write(txn: Any) -> None:
            txn.execute("INSERT INTO cc_notes (note_id, owner, pinned) VALUES (1, 1, TRUE), (2, 1, FALSE)")
            txn.execute("INSERT INTO cc_notes (note_id, owner, pinned) VALUES (?, 1, ?)", (3, True))
            txn.execute("INSERT INTO cc_notes (note_id, owner, pinned) VALUES (?, 1, ?)", (4, False))
            txn.execute("UPDATE cc_notes SET pinned = NOT pinned WHERE note_id = ?", (4,))

        await db.run_write("bools", write)
        pinned = await db.run_read("pinned", _fetch, "SELECT note_id FROM cc_notes WHERE pinned ORDER BY note_id")
        assert pinned == [(1,), (3,), (4,)]
        unpinned = await db.run_read("unpinned", _fetch, "SELECT note_id FROM cc_notes WHERE pinned = ?", (False,))
        assert unpinned == [(2,)]
        flags = await db.run_read("flags", _fetch, "SELECT pinned FROM cc_notes ORDER BY note_id")
        assert [bool(f[0]) for f in flags] == [True, False, True, True]

    @pytest_twisted.ensureDeferred
    async def test_upsert_returning_and_typed_nulls(self, db):
        await self._notes(db, [(1, 1, "old", False, 1)])

        def upsert(txn: Any, note_id: int, body: str) -> tuple:
            return tuple(
                txn.execute(
                    "INSERT INTO cc_notes (note_id, owner, body) VALUES (?, 1, ?) ON CONFLICT (note_id) "
                    "DO UPDATE SET body = excluded.body, score = cc_notes.score + 1 RETURNING note_id, body, score",
                    (note_id, body),
                ).fetchone()
            )

        assert await db.run_write("update", upsert, 1, "new") == (1, "new", 2)
        assert await db.run_write("insert", upsert, 2, "fresh") == (2, "fresh", 0)

        def ignore(txn: Any) -> int:
            return txn.execute("INSERT INTO cc_notes (note_id, owner) VALUES (1, 9) ON CONFLICT DO NOTHING").rowcount

        assert await db.run_write("ignored", ignore) == 0

        def edit(txn: Any, body: str | None) -> list[tuple]:
            return _fetch(
                txn,
                "UPDATE cc_notes SET body = coalesce(CAST(? AS TEXT), body) WHERE note_id = 1 RETURNING body",
                (body,),
            )

        assert await db.run_write("keep", edit, None) == [("new",)]
        assert await db.run_write("change", edit, "newer") == [("newer",)]

    @pytest_twisted.ensureDeferred
    async def test_count_filter_and_literal_question_marks(self, db):
        await self._notes(db, [(i, 1, "a?b%" if i == 1 else "c", False, i) for i in range(1, 5)])
        counted = await db.run_read(
            "count", _fetch, "SELECT count(*), count(*) FILTER (WHERE score >= ?) FROM cc_notes", (3,)
        )
        assert counted == [(4, 2)]
        # a ? or % inside a string literal is no placeholder
        found = await db.run_read(
            "literal", _fetch, "SELECT note_id, '?' FROM cc_notes WHERE body = 'a?b%' AND owner = ?", (1,)
        )
        assert found == [(1, "?")]


# ---- feature facets ------------------------------------------------------------------------


def open_facet(test: Any, tmp_path: Any, feature: str, interface: Any, sql: Any) -> tuple[Any, Any]:
    """Start ``test.make_store(tmp_path)`` and give it with its facet providing ``interface``: the
    backend's own (``facet(interface)``), else ``sql(store)`` on an SQL backend, its migrations
    applied under ``feature`` (as the node's ``ModuleAPI.open_store`` does).  For the feature
    suites' fixtures."""
    from coffeechat.interfaces import ISQLDatabase
    from coffeechat.sql import load_migrations

    async def opened() -> Any:
        store = await defer.maybeDeferred(test.make_store, tmp_path)
        await store.start()
        provider = getattr(store, "facet", None)
        facet = provider(interface) if provider is not None else None
        if facet is None and ISQLDatabase.providedBy(store):
            await store.migrate(feature, load_migrations(sql.migrations))
            facet = sql(store)
        assert facet is not None and verifyObject(interface, facet)
        return store, facet

    return pytest_twisted.blockon(defer.ensureDeferred(opened()))


class RecallStoreConformanceTests:
    """The recall feature's storage (:class:`~coffeechat.features.recall.IRecallStore`), for any
    backend: an SQL backend gets the feature's own implementation (and table), any other one
    provides the facet from ``facet(IRecallStore)``.  Subclass as ``Test<Something>`` and implement
    :meth:`make_store` as for :class:`StoreConformanceTests`."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of RecallStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.recall import IRecallStore, SQLRecallStore

        store, facet = open_facet(self, tmp_path, "recall", IRecallStore, SQLRecallStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _users(self, store: Any, *names: str) -> list[int]:
        return [(await store.create_user(name, name, "", T0)).user_id for name in names]

    @pytest_twisted.ensureDeferred
    async def test_a_recall_removes_the_content_and_is_recorded_once(self, stores):
        from coffeechat.features.recall import Recall

        store, recalls = stores
        alice, bob = await self._users(store, "alice", "bobby")
        first = (await store.append(new_message(alice, bob, "r-1", data=b"secret"))).message
        await store.append(new_message(alice, bob, "r-2"))
        recall, new = await recalls.recall(first.conv, first.seq, alice, T0 - 60, T0 + 5)
        assert new and recall == Recall(first.conv, 1, 1, alice, bob, "r-1", alice, T0 + 5)
        (stored,) = await store.messages_by_seq(first.conv, [1])
        assert stored.msg_type == MsgType.RECALLED and b"secret" not in stored.data
        assert json.loads(stored.data) == {"recalledBy": alice, "recallTime": T0 + 5, "msgType": int(MsgType.TEXT)}
        assert (stored.seq, stored.sender_id, stored.client_msg_id) == (1, alice, "r-1")  # the id stays
        assert _seqs(await store.history(first.conv, 0, 10)) == [1, 2]
        again, new = await recalls.recall(first.conv, first.seq, alice, T0 - 60, T0 + 9)
        assert not new and again == recall

    @pytest_twisted.ensureDeferred
    async def test_who_may_recall_and_until_when(self, stores):
        from coffeechat.errors import ErrorCode
        from coffeechat.features.recall import RecallRefused

        store, recalls = stores
        alice, bob = await self._users(store, "alice", "bobby")
        message = (await store.append(new_message(alice, bob, "w-1", at=T0))).message
        for actor, not_before, code in (
            (bob, T0 - 60, ErrorCode.FORBIDDEN),
            (alice, T0 + 1, ErrorCode.RECALL_TOO_LATE),
        ):
            with pytest.raises(RecallRefused) as refused:
                await recalls.recall(message.conv, message.seq, actor, not_before, T0 + 200)
            assert refused.value.code == code
        with pytest.raises(RecallRefused) as refused:
            await recalls.recall(message.conv, 42, alice, 0, T0)
        assert refused.value.code == ErrorCode.NOT_FOUND
        recall, new = await recalls.recall(message.conv, message.seq, 0, 0, T0 + 300, force=True)  # the admin API
        assert new and recall.recalled_by == 0

    @pytest_twisted.ensureDeferred
    async def test_group_owner_and_admins_recall_any_message_any_time_but_never_a_notice(self, stores):
        from coffeechat.errors import ErrorCode
        from coffeechat.features.recall import RecallRefused

        store, recalls = stores
        owner, admin, member = await self._users(store, "owner", "admin", "member")
        group = await new_group(store, owner, [admin, member])
        await store.set_member_roles(group.group_id, owner, GroupRole.OWNER, [admin], GroupRole.ADMIN, T0)
        by_member = (await store.append(group_message(member, group.group_id, "g-1"))).message
        by_owner = (await store.append(group_message(owner, group.group_id, "g-2"))).message
        with pytest.raises(RecallRefused) as refused:
            await recalls.recall(group.conv, by_owner.seq, member, 0, T0)
        assert refused.value.code == ErrorCode.FORBIDDEN
        assert (await recalls.recall(group.conv, by_member.seq, admin, T0 + 999, T0 + 1000))[1]
        assert (await recalls.recall(group.conv, by_owner.seq, owner, T0 + 999, T0 + 1000))[1]
        notice = new_message(
            owner, group.group_id, "n-1", session_type=SessionType.GROUP, msg_type=MsgType.NOTIFICATION
        )
        stored = (await store.append(notice)).message
        with pytest.raises(RecallRefused) as refused:
            await recalls.recall(group.conv, stored.seq, owner, 0, T0)
        assert refused.value.code == ErrorCode.FORBIDDEN

    @pytest_twisted.ensureDeferred
    async def test_recalls_of_a_user_are_those_of_their_conversations_since_a_time(self, stores):
        store, recalls = stores
        alice, bob, carol = await self._users(store, "alice", "bobby", "carol")
        to_bob = (await store.append(new_message(alice, bob, "a-1"))).message
        to_carol = (await store.append(new_message(alice, carol, "a-2"))).message
        await recalls.recall(to_bob.conv, to_bob.seq, alice, 0, T0 + 10)
        await recalls.recall(to_carol.conv, to_carol.seq, alice, 0, T0 + 20)
        assert [r.to_id for r in await recalls.recalls_of(alice, T0, 10)] == [bob, carol]  # oldest first
        assert [r.to_id for r in await recalls.recalls_of(alice, T0 + 15, 10)] == [carol]
        assert [r.to_id for r in await recalls.recalls_of(alice, T0, 1)] == [bob]
        assert [r.seq for r in await recalls.recalls_of(bob, T0, 10)] == [to_bob.seq]  # not carol's

    @pytest_twisted.ensureDeferred
    async def test_a_newcomer_sees_no_recalls_from_before_their_join(self, stores):
        store, recalls = stores
        owner, member, later = await self._users(store, "owner", "member", "later")
        group = await new_group(store, owner, [member])
        old = (await store.append(group_message(member, group.group_id, "o-1"))).message
        await recalls.recall(group.conv, old.seq, member, 0, T0 + 1)
        await store.add_members(group.group_id, owner, GroupRole.MEMBER, [later], T0 + 2, 200, 0)
        assert await recalls.recalls_of(later, 0, 10) == []
        assert [r.seq for r in await recalls.recalls_of(member, 0, 10)] == [old.seq]
