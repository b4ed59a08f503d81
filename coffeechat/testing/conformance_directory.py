"""Conformance tests of the directory and blocks features' storage facets
(:class:`~coffeechat.features.directory.IDirectoryStore`,
:class:`~coffeechat.features.blocks.IBlockStore`), for any backend: an SQL backend gets the
features' own implementations (and tables), any other one provides them from ``facet(...)``.
Subclass as ``Test<Something>`` and implement ``make_store`` as for
:class:`~coffeechat.testing.conformance.StoreConformanceTests`."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.auth import name_key
from coffeechat.testing.conformance import T0, open_facet

__all__ = ["BlockStoreConformanceTests", "DirectoryStoreConformanceTests"]


class DirectoryStoreConformanceTests:
    """The directory's storage: search keys, prefix search in code point order, profiles."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of DirectoryStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.directory import IDirectoryStore, SQLDirectoryStore

        store, facet = open_facet(self, tmp_path, "directory", IDirectoryStore, SQLDirectoryStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _users(self, store: Any, facet: Any, *specs: tuple[str, str]) -> list[int]:
        ids = [(await store.create_user(name, nick, "", T0)).user_id for name, nick in specs]
        await facet.index_users(ids, 0)
        return ids

    async def _search(self, facet: Any, query: str, after: tuple[str, int] = ("", 0), limit: int = 50) -> list:
        return [(key, p.name) for key, p in await facet.search(name_key(query), after[0], after[1], limit)]

    @pytest_twisted.ensureDeferred
    async def test_prefix_search_by_name_and_nick_in_key_order(self, stores):
        store, facet = stores
        await self._users(store, facet, ("alice", "Wonderland"), ("alfred", "Al"), ("bobby", "Alíce Fan"))
        assert await self._search(facet, "al") == [
            ("al", "alfred"),
            ("alfred", "alfred"),
            ("alice", "alice"),
            ("alíce fan", "bobby"),  # by code point: "í" (U+00ED) sorts after every ASCII letter
        ]
        assert await self._search(facet, "alí") == [("alíce fan", "bobby")]  # code points, not a collation
        assert await self._search(facet, "WON") == [("wonderland", "alice")]
        assert await self._search(facet, "x") == []
        # a prefix is not a pattern: "_" and "%" are plain characters
        assert await self._search(facet, "a_") == [] and await self._search(facet, "%") == []

    @pytest_twisted.ensureDeferred
    async def test_search_pages_after_a_position_and_skips_disabled_users(self, stores):
        store, facet = stores
        ids = await self._users(store, facet, *[(f"pager{i}", f"P{i}") for i in range(5)])
        first = await self._search(facet, "pager", limit=2)
        assert first == [("pager0", "pager0"), ("pager1", "pager1")]
        after = (first[-1][0], ids[1])
        assert await self._search(facet, "pager", after, limit=2) == [("pager2", "pager2"), ("pager3", "pager3")]
        await store.update_user(ids[2], disabled=True)
        assert [n for _, n in await self._search(facet, "pager")] == ["pager0", "pager1", "pager3", "pager4"]

    @pytest_twisted.ensureDeferred
    async def test_same_key_for_two_users_orders_by_id(self, stores):
        store, facet = stores
        a, b = await self._users(store, facet, ("first", "Twin"), ("second", "twin"))
        found = await facet.search("twin", "", 0, 10)
        assert [(k, p.user_id) for k, p in found] == [("twin", a), ("twin", b)]
        assert [(k, p.user_id) for k, p in await facet.search("twin", "twin", a, 10)] == [("twin", b)]

    @pytest_twisted.ensureDeferred
    async def test_indexing_keeps_existing_keys_and_raises_the_mark(self, stores):
        store, facet = stores
        assert await facet.indexed_upto() == 0
        (uid,) = [(await store.create_user("carol", "Caro", "", T0 + 5)).user_id]
        assert await facet.unindexed(0, 10) == [(uid, T0 + 5)]
        await facet.index_users([uid], uid)
        await facet.index_users([uid], 0)  # again, and a lower mark: nothing moves back
        assert await facet.indexed_upto() == uid
        assert await self._search(facet, "car") == [("carol", "carol"), ("caro", "carol")][::-1]
        assert await facet.unindexed(uid, 10) == []

    @pytest_twisted.ensureDeferred
    async def test_profile_update_changes_given_fields_and_the_nick_key(self, stores):
        store, facet = stores
        (uid,) = await self._users(store, facet, ("dave1", "Dave"))
        p = await facet.update_profile(uid, "Diver", "diver", "https://x/a.png", "sig", '{"a":1}', T0)
        assert (p.nick_name, p.avatar_url, p.signature, p.ex, p.updated_at) == (
            "Diver",
            "https://x/a.png",
            "sig",
            '{"a":1}',
            T0,
        )
        assert (await store.user_by_id(uid)).nick_name == "Diver"  # the core's row: logins carry it
        assert await self._search(facet, "dav") == [("dave1", "dave1")]  # the old nick key went
        assert await self._search(facet, "div") == [("diver", "dave1")]
        q = await facet.update_profile(uid, None, None, None, "", None, T0 + 1)
        assert (q.nick_name, q.avatar_url, q.signature, q.ex) == ("Diver", "https://x/a.png", "", '{"a":1}')
        await facet.update_profile(uid, "DAVE1", "dave1", None, None, None, T0 + 2)  # the same as the name
        assert await self._search(facet, "d") == [("dave1", "dave1")]
        assert await facet.update_profile(9999, "Ghost", "ghost", None, None, None, T0) is None

    @pytest_twisted.ensureDeferred
    async def test_profiles_of_existing_users_by_id(self, stores):
        store, facet = stores
        a, b = await self._users(store, facet, ("erin1", "Erin"), ("frank", "Frank"))
        await facet.update_profile(b, None, None, None, "hello", None, T0)
        found = await facet.profiles([b, 9999, a])
        assert [(p.user_id, p.nick_name, p.signature, p.ex) for p in found] == [
            (a, "Erin", "", "{}"),
            (b, "Frank", "hello", "{}"),
        ]
        assert await facet.profiles([]) == []


class BlockStoreConformanceTests:
    """The block list's storage: add once, bounded exactly, remove, list the most recent first."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of BlockStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.blocks import IBlockStore, SQLBlockStore

        store, facet = open_facet(self, tmp_path, "blocks", IBlockStore, SQLBlockStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_block_unblock_and_list(self, stores):
        from coffeechat.features.blocks import Block

        _, blocks = stores
        assert await blocks.block(1, 2, T0, 10) is True
        assert await blocks.block(1, 2, T0 + 5, 10) is False  # already: the first time stays
        assert await blocks.block(1, 3, T0 + 1, 10) is True
        assert await blocks.block(4, 1, T0, 10) is True
        assert await blocks.blocks_of(1, 10) == [Block(1, 3, T0 + 1), Block(1, 2, T0)]
        assert await blocks.blocks_of(1, 1) == [Block(1, 3, T0 + 1)]
        assert await blocks.unblock(1, 2) is True
        assert await blocks.unblock(1, 2) is False
        assert await blocks.blocks_of(1, 10) == [Block(1, 3, T0 + 1)]
        assert await blocks.blocks_of(2, 10) == []

    @pytest_twisted.ensureDeferred
    async def test_the_list_is_bounded_even_when_blocks_race(self, stores):
        from coffeechat.features.blocks import TooManyBlocked

        _, blocks = stores
        results = await defer.DeferredList([blocks.block(7, peer, T0, 3) for peer in range(10, 16)], consumeErrors=True)
        added = [ok for ok, _ in results if ok]
        refused = [r for ok, r in results if not ok]
        assert len(added) == 3 and all(f.check(TooManyBlocked) for f in refused)
        assert len(await blocks.blocks_of(7, 100)) == 3
        existing = (await blocks.blocks_of(7, 1))[0].blocked_id
        assert await blocks.block(7, existing, T0, 3) is False  # an existing one is not refused
        await blocks.unblock(7, (await blocks.blocks_of(7, 1))[0].blocked_id)
        assert await blocks.block(7, 99, T0, 3) is True

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_their_list_and_every_entry_of_them(self, stores):
        from coffeechat.features.blocks import Block

        _, blocks = stores
        for owner, peer in ((1, 2), (1, 3), (4, 1), (5, 1), (4, 2)):
            await blocks.block(owner, peer, T0, 10)
        assert await blocks.forget_user(1) == [1, 4, 5]
        assert await blocks.blocks_of(1, 10) == [] and await blocks.blocks_of(5, 10) == []
        assert await blocks.blocks_of(4, 10) == [Block(4, 2, T0)]  # nobody else's entries
        assert await blocks.forget_user(1) == []
