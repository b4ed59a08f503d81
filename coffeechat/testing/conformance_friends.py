"""Conformance tests of the friends and online status features' storage facets
(:class:`~coffeechat.features.friends.IFriendStore`,
:class:`~coffeechat.features.online_status.IOnlineStatusStore`), for any backend: an SQL backend
gets the features' own implementations (and tables), any other one provides the facets from
``facet(interface)``.  Subclass as ``Test<Something>`` and implement ``make_store`` as for
:class:`coffeechat.testing.conformance.StoreConformanceTests` (tests/test_storage_friends.py)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.testing.conformance import T0, new_group, new_message, open_facet

TTL = 1000
LIMITS = (10, 10, 10)  # max_pending, max_incoming, max_friends


def _facet_fixture(feature: str, interface_path: str, sql_path: str) -> Any:
    """A pytest fixture yielding ``(store, facet)`` for one feature's facet."""

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        import importlib

        module = importlib.import_module(f"coffeechat.features.{feature}")
        interface, sql = getattr(module, interface_path), getattr(module, sql_path)

        store, facet = open_facet(self, tmp_path, feature, interface, sql)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    return stores


class FriendStoreConformanceTests:
    """IFriendStore: requests, answers, limits, expiry, remarks, deletes."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of FriendStoreConformanceTests implement make_store")

    stores = _facet_fixture("friends", "IFriendStore", "SQLFriendStore")

    async def _users(self, store: Any, *names: str) -> list[int]:
        return [(await store.create_user(name, name, "", T0)).user_id for name in names]

    @pytest_twisted.ensureDeferred
    async def test_request_then_accept(self, stores):
        from coffeechat.features.friends import Friend, FriendRequest, RequestOutcome

        store, friends = stores
        a, b = await self._users(store, "alice", "bobby")
        outcome = await friends.request(a, b, "hi", T0, T0 - TTL, *LIMITS)
        assert outcome == RequestOutcome(FriendRequest(a, b, "hi", T0), None)
        again = await friends.request(a, b, "hello", T0 + 5, T0 - TTL, *LIMITS)  # replaces it
        assert again.request == FriendRequest(a, b, "hello", T0 + 5)
        assert await friends.requests_of(b, False, T0 - TTL, 0, 10) == [FriendRequest(a, b, "hello", T0 + 5)]
        assert await friends.requests_of(a, True, T0 - TTL, 0, 10) == [FriendRequest(a, b, "hello", T0 + 5)]
        assert await friends.requests_of(a, False, T0 - TTL, 0, 10) == []
        request, pair = await friends.answer(b, a, True, T0 + 9, T0 - TTL, 10)
        assert request == FriendRequest(a, b, "hello", T0 + 5)
        assert pair == (Friend(b, a, "", T0 + 9), Friend(a, b, "", T0 + 9))
        assert await friends.friend_ids(a) == [b] and await friends.friend_ids(b) == [a]
        assert await friends.requests_of(b, False, T0 - TTL, 0, 10) == []
        from coffeechat.features.friends import FriendRefused

        with pytest.raises(FriendRefused) as refused:
            await friends.request(a, b, "", T0 + 10, T0 - TTL, *LIMITS)
        assert refused.value.code == 10043  # ALREADY_FRIENDS
        with pytest.raises(FriendRefused) as refused:
            await friends.answer(b, a, True, T0 + 10, T0 - TTL, 10)
        assert refused.value.code == 10009  # NOT_FOUND

    @pytest_twisted.ensureDeferred
    async def test_a_request_to_someone_who_asked_first_makes_friends(self, stores):
        store, friends = stores
        a, b = await self._users(store, "alice", "bobby")
        await friends.request(a, b, "", T0, T0 - TTL, *LIMITS)
        outcome = await friends.request(b, a, "", T0 + 1, T0 - TTL, *LIMITS)
        assert outcome.request is None and [f.user_id for f in outcome.friends] == [b, a]
        assert await friends.friend_ids(a) == [b]
        assert await friends.requests_of(a, True, T0 - TTL, 0, 10) == []

    @pytest_twisted.ensureDeferred
    async def test_decline_withdraw_and_expiry(self, stores):
        from coffeechat.features.friends import FriendRefused

        store, friends = stores
        a, b, c = await self._users(store, "alice", "bobby", "carol")
        await friends.request(a, b, "", T0, T0 - TTL, *LIMITS)
        request, pair = await friends.answer(b, a, False, T0 + 1, T0 - TTL, 10)
        assert request.from_id == a and pair is None
        assert await friends.friend_ids(a) == [] and await friends.requests_of(b, False, T0 - TTL, 0, 10) == []
        await friends.request(a, c, "x", T0, T0 - TTL, *LIMITS)
        assert (await friends.withdraw(a, c, T0 - TTL)).message == "x"
        assert await friends.withdraw(a, c, T0 - TTL) is None
        await friends.request(a, c, "old", T0, T0 - TTL, *LIMITS)
        later = T0 + TTL + 1  # the request is older than the ttl now
        assert await friends.requests_of(c, False, later - TTL, 0, 10) == []
        with pytest.raises(FriendRefused):
            await friends.answer(c, a, True, later, later - TTL, 10)
        assert await friends.withdraw(a, c, later - TTL) is None
        # an expired reverse request does not make friends: it is a plain request
        outcome = await friends.request(c, a, "", later, later - TTL, *LIMITS)
        assert outcome.friends is None and outcome.request.from_id == c
        await friends.request(b, c, "", T0, T0 - TTL, *LIMITS)
        assert await friends.purge_expired(later - TTL, 100) == 1  # b -> c (withdrawing removed the expired a -> c)
        assert [r.from_id for r in await friends.requests_of(a, False, later - TTL, 0, 10)] == [c]

    @pytest_twisted.ensureDeferred
    async def test_limits(self, stores):
        from coffeechat.features.friends import FriendRefused

        store, friends = stores
        a, b, c, d = await self._users(store, "alice", "bobby", "carol", "david")
        await friends.request(a, b, "", T0, T0 - TTL, 1, 10, 10)
        await friends.request(a, b, "again", T0, T0 - TTL, 1, 10, 10)  # the same one: not another
        with pytest.raises(FriendRefused) as refused:
            await friends.request(a, c, "", T0, T0 - TTL, 1, 10, 10)
        assert refused.value.code == 10042  # FRIEND_REQUEST_LIMIT (pending)
        await friends.request(c, d, "", T0, T0 - TTL, 10, 1, 10)
        with pytest.raises(FriendRefused) as refused:
            await friends.request(b, d, "", T0, T0 - TTL, 10, 1, 10)
        assert refused.value.code == 10042  # FRIEND_REQUEST_LIMIT (incoming)
        await friends.answer(b, a, True, T0, T0 - TTL, 10)
        with pytest.raises(FriendRefused) as refused:
            await friends.request(a, c, "", T0, T0 - TTL, 10, 10, 1)
        assert refused.value.code == 10041  # FRIEND_LIMIT
        await friends.request(d, a, "", T0, T0 - TTL, *LIMITS)
        with pytest.raises(FriendRefused) as refused:
            await friends.answer(a, d, True, T0, T0 - TTL, 1)
        assert refused.value.code == 10041
        assert [r.from_id for r in await friends.requests_of(a, False, T0 - TTL, 0, 10)] == [d]  # still pending

    @pytest_twisted.ensureDeferred
    async def test_lists_page_remarks_and_delete(self, stores):
        from coffeechat.features.friends import Friend

        store, friends = stores
        ids = await self._users(store, "alice", "bobby", "carol", "david")
        me, others = ids[0], ids[1:]
        for i, other in enumerate(others):
            await friends.request(other, me, f"m{i}", T0 + i, T0 - TTL, *LIMITS)
        incoming = await friends.requests_of(me, False, T0 - TTL, 0, 2)
        assert [r.from_id for r in incoming] == [others[2], others[1]]  # newest first
        assert [r.from_id for r in await friends.requests_of(me, False, T0 - TTL, 2, 2)] == [others[0]]
        for other in others:
            await friends.answer(me, other, True, T0 + 10, T0 - TTL, 10)
        assert [f.friend_id for f in await friends.friends_of(me, 0, 2)] == others[:2]
        assert [f.friend_id for f in await friends.friends_of(me, 2, 2)] == others[2:]
        assert await friends.set_remark(me, others[0], "Bob") == Friend(me, others[0], "Bob", T0 + 10)
        assert (await friends.friends_of(others[0], 0, 10))[0].remark == ""  # mine only
        assert await friends.set_remark(me, 10**9, "nobody") is None
        assert await friends.delete(others[0], me)
        assert not await friends.delete(others[0], me)
        assert await friends.friend_ids(me) == others[1:] and await friends.friend_ids(others[0]) == []
        await friends.request(me, others[0], "", T0 + 20, T0 - TTL, *LIMITS)
        await friends.answer(others[0], me, True, T0 + 21, T0 - TTL, 10)
        assert (await friends.friends_of(me, 0, 1))[0].remark == ""  # the remark went with it


class OnlineStatusStoreConformanceTests:
    """IOnlineStatusStore: batched last-seen times that never go back, the hidden switch."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of OnlineStatusStoreConformanceTests implement make_store")

    stores = _facet_fixture("online_status", "IOnlineStatusStore", "SQLOnlineStatusStore")

    @pytest_twisted.ensureDeferred
    async def test_last_seen_batches_never_go_back(self, stores):
        _, status = stores
        await status.save_last_seen([(1, T0), (2, T0 + 5), (3, T0 + 7)])
        assert await status.last_seen([1, 2, 4]) == {1: T0, 2: T0 + 5}
        await status.save_last_seen([(1, T0 + 10), (2, T0)])  # 2 goes back: kept at T0 + 5
        assert await status.last_seen([1, 2, 3]) == {1: T0 + 10, 2: T0 + 5, 3: T0 + 7}
        assert await status.last_seen([]) == {}
        many = [(u, T0 + u) for u in range(100, 3100)]
        await status.save_last_seen(many)
        found = await status.last_seen([u for u, _ in many])
        assert len(found) == 3000 and found[2000] == T0 + 2000

    @pytest_twisted.ensureDeferred
    async def test_hidden_switch(self, stores):
        _, status = stores
        assert await status.hidden_users() == []
        await status.set_hidden(5, True)
        await status.set_hidden(3, True)
        assert await status.hidden_users() == [3, 5]
        assert await status.last_seen([5]) == {}  # hiding records no last-seen time
        await status.save_last_seen([(5, T0)])
        await status.set_hidden(5, False)
        assert await status.hidden_users() == [3]
        assert await status.last_seen([5]) == {5: T0}  # kept through the switch

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_their_last_seen_and_switch(self, stores):
        _, status = stores
        await status.save_last_seen([(5, T0), (6, T0 + 1)])
        await status.set_hidden(5, True)
        await status.set_hidden(7, True)
        await status.forget_user(5)
        assert await status.last_seen([5, 6]) == {6: T0 + 1}
        assert await status.hidden_users() == [7]
        await status.forget_user(5)

    @pytest_twisted.ensureDeferred
    async def test_conversation_partners(self, stores):
        store, status = stores
        ids = [(await store.create_user(n, n, "", T0)).user_id for n in ("alice", "bobby", "carol", "david")]
        a, b, c, d = ids
        await store.append(new_message(a, b, "m1", at=T0))
        await store.append(new_message(c, a, "m2", at=T0 + 5))
        await new_group(store, a, [d])
        assert await status.recent_partners(a, 10) == [c, b]  # most recent first, 1:1 only
        assert await status.recent_partners(a, 1) == [c]
        assert await status.recent_partners(b, 10) == [a]
        assert await status.recent_partners(d, 10) == []  # a group is no partner
        assert await status.partners_among(a, [b, c, d, 999]) == {b, c}
        assert await status.partners_among(a, []) == set()
