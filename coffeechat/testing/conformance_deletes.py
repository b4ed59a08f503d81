"""Conformance tests of the deletes feature's storage
(:class:`~coffeechat.features.deletes.IDeleteStore`), for any backend: an SQL backend gets the
feature's own implementation (and tables), any other one provides the facet from
``facet(IDeleteStore)``.  Subclass :class:`DeleteStoreConformanceTests` as ``Test<Something>``
and implement ``make_store`` as for :class:`~coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.features.deletes import DeleteRefused, DeleteState, IDeleteStore, SQLDeleteStore
from coffeechat.testing.conformance import T0, group_message, new_group, new_message, open_facet

__all__ = ["DeleteStoreConformanceTests"]

HIGH = 1 << 62


class DeleteStoreConformanceTests:
    """What every IDeleteStore must do: bounded per-user state, folded runs, nobody else touched."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of DeleteStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        store, facet = open_facet(self, tmp_path, "deletes", IDeleteStore, SQLDeleteStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _chat(self, store: Any, count: int) -> tuple[int, int, str]:
        alice = (await store.create_user("alice", "Alice", "", T0)).user_id
        bob = (await store.create_user("bobby", "Bob", "", T0)).user_id
        conv = ""
        for i in range(count):
            conv = (await store.append(new_message(alice, bob, f"c-{i}", at=T0 + i))).message.conv
        return alice, bob, conv

    @pytest_twisted.ensureDeferred
    async def test_deletes_are_per_user_and_idempotent(self, stores):
        store, deletes = stores
        alice, bob, conv = await self._chat(store, 6)
        assert await deletes.state(bob, conv, 0, HIGH) is None
        new, cleared = await deletes.delete(bob, conv, [5, 3, 3], 1, 100)
        assert (new, cleared) == ([3, 5], 0)
        new, _ = await deletes.delete(bob, conv, [3, 4], 1, 100)
        assert new == [4]
        assert await deletes.state(bob, conv, 0, HIGH) == DeleteState(0, -1, frozenset({3, 4, 5}))
        assert await deletes.state(bob, conv, 4, 4) == DeleteState(0, -1, frozenset({4}))  # a page's range
        assert await deletes.state(alice, conv, 0, HIGH) is None  # nobody else's state changes
        assert [m.seq for m in await store.history(conv, 0, 10)] == [1, 2, 3, 4, 5, 6]  # messages stay

    @pytest_twisted.ensureDeferred
    async def test_a_seq_beyond_the_last_is_refused_and_nothing_changes(self, stores):
        store, deletes = stores
        _, bob, conv = await self._chat(store, 2)
        with pytest.raises(DeleteRefused) as refused:
            await deletes.delete(bob, conv, [1, 3], 1, 100)
        assert refused.value.code == ErrorCode.NOT_FOUND
        assert await deletes.state(bob, conv, 0, HIGH) is None

    @pytest_twisted.ensureDeferred
    async def test_a_run_from_the_cleared_seq_folds_and_the_set_is_capped(self, stores):
        store, deletes = stores
        _, bob, conv = await self._chat(store, 12)
        await deletes.delete(bob, conv, [2, 4, 6], 1, 3)
        with pytest.raises(DeleteRefused) as refused:
            await deletes.delete(bob, conv, [8], 1, 3)
        assert refused.value.code == ErrorCode.TOO_MANY_DELETES
        assert await deletes.state(bob, conv, 0, HIGH) == DeleteState(0, -1, frozenset({2, 4, 6}))  # rolled back
        new, cleared = await deletes.delete(bob, conv, [1, 3], 1, 3)
        assert (new, cleared) == ([1, 3], 4)
        assert await deletes.state(bob, conv, 0, HIGH) == DeleteState(4, -1, frozenset({6}))
        new, _ = await deletes.delete(bob, conv, [2, 4, 8], 1, 3)  # at or below the cleared seq: nothing new
        assert new == [8]

    @pytest_twisted.ensureDeferred
    async def test_clear_takes_everything_up_to_the_last_seq_and_later_ones_show(self, stores):
        store, deletes = stores
        alice, bob, conv = await self._chat(store, 4)
        await deletes.delete(bob, conv, [2, 3], 1, 100)
        assert await deletes.clear(bob, conv) == (4, True)
        assert await deletes.clear(bob, conv) == (4, False)
        assert await deletes.state(bob, conv, 0, HIGH) == DeleteState(4, -1, frozenset())
        await store.append(new_message(alice, bob, "after", at=T0 + 50))
        assert await deletes.clear(bob, conv) == (5, True)
        carol = (await store.create_user("carol", "Carol", "", T0)).user_id
        with pytest.raises(DeleteRefused) as refused:
            await deletes.clear(carol, conv)  # not her conversation
        assert refused.value.code == ErrorCode.NOT_FOUND

    @pytest_twisted.ensureDeferred
    async def test_remove_records_the_last_seq_and_leaves_the_history(self, stores):
        store, deletes = stores
        alice, bob, conv = await self._chat(store, 3)
        assert await deletes.remove(bob, conv) == (3, True)
        assert await deletes.remove(bob, conv) == (3, False)
        assert await deletes.state(bob, conv, 0, HIGH) == DeleteState(0, 3, frozenset())
        await store.append(new_message(alice, bob, "back", at=T0 + 50))
        assert await deletes.remove(bob, conv) == (4, True)

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_their_state_and_nobody_elses(self, stores):
        store, deletes = stores
        alice, bob, conv = await self._chat(store, 6)
        await deletes.delete(bob, conv, [3, 5], 1, 100)
        await deletes.remove(bob, conv)
        await deletes.delete(alice, conv, [2], 1, 100)
        await deletes.forget_user(bob)
        assert await deletes.state(bob, conv, 0, HIGH) is None
        assert await deletes.states_of(bob, [conv]) == {}
        assert await deletes.state(alice, conv, 0, HIGH) == DeleteState(0, -1, frozenset({2}))
        await deletes.forget_user(bob)

    @pytest_twisted.ensureDeferred
    async def test_states_of_gives_what_the_list_needs(self, stores):
        store, deletes = stores
        alice, bob, conv = await self._chat(store, 6)
        await store.mark_read(bob, conv, 3)
        await deletes.delete(bob, conv, [2, 4, 6], 1, 100)
        states = await deletes.states_of(bob, [conv, "p:998:999"])
        assert states == {conv: DeleteState(0, -1, frozenset({4, 6}))}  # 2 is read already: not needed
        assert await deletes.states_of(bob, ["p:998:999"]) == {}
        assert await deletes.states_of(alice, [conv]) == {}

    @pytest_twisted.ensureDeferred
    async def test_latest_visible_skips_deleted_messages_and_what_precedes_a_join(self, stores):
        store, deletes = stores
        alice, bob, conv = await self._chat(store, 4)
        await deletes.delete(bob, conv, [3, 4], 1, 100)
        found = await deletes.latest_visible(bob, [(conv, 0, 4)])
        assert found[conv].seq == 2 and found[conv].client_msg_id == "c-1"
        assert (await deletes.latest_visible(bob, [(conv, 2, 4)])) == {conv: None}
        carol = (await store.create_user("carol", "Carol", "", T0)).user_id
        group = await new_group(store, alice, [bob])
        for i in range(2):
            await store.append(group_message(alice, group.group_id, f"g-{i}"))
        await store.add_members(group.group_id, alice, 0, [carol], T0, 200, 0)
        gconv = f"g:{group.group_id}"
        joined = next(m.joined_seq for m in await store.group_members(group.group_id) if m.user_id == carol)
        assert (await deletes.latest_visible(carol, [(gconv, 0, joined)])) == {gconv: None}
        assert (await deletes.latest_visible(bob, [(gconv, 0, joined)]))[gconv].seq == joined - 1
