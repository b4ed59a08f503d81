"""Conformance tests for the group_tags feature's storage facet
(:class:`~coffeechat.features.group_tags.IGroupTagStore`), for any backend.

Subclass :class:`GroupTagStoreConformanceTests` as ``Test<Something>`` and implement
``make_store(tmp_path)`` as for :class:`~coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.model import GroupRole
from coffeechat.testing.conformance import T0, new_group, open_facet

__all__ = ["GroupTagStoreConformanceTests"]


class GroupTagStoreConformanceTests:
    """What every IGroupTagStore must do."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of GroupTagStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.group_tags import IGroupTagStore, SQLGroupTagStore

        store, facet = open_facet(self, tmp_path, "group_tags", IGroupTagStore, SQLGroupTagStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _users(self, store: Any, *names: str) -> list[int]:
        return [(await store.create_user(n, n, "", T0)).user_id for n in names]

    @pytest_twisted.ensureDeferred
    async def test_set_replace_and_read(self, stores):
        from coffeechat.features.group_tags import GroupTags

        store, tags = stores
        owner, member = await self._users(store, "owner", "member")
        gid = (await new_group(store, owner, [member])).group_id
        assert await tags.tags_of([gid, gid + 1]) == [GroupTags(gid), GroupTags(gid + 1)]
        first = await tags.set_tags(gid, owner, ["b", "a", "读书"], '{"x":1}', None, T0)
        assert first == GroupTags(gid, ("b", "a", "读书"), '{"x":1}', False, owner, T0, 1)
        # only what is not None changes; the order of tags is kept
        second = await tags.set_tags(gid, owner, None, None, True, T0 + 1)
        assert second == GroupTags(gid, ("b", "a", "读书"), '{"x":1}', True, owner, T0 + 1, 2)
        third = await tags.set_tags(gid, owner, ["c"], "{}", None, T0 + 2)
        assert (third.tags, third.custom_fields, third.discoverable, third.version) == (("c",), "{}", True, 3)
        assert await tags.tags_of([gid]) == [third]
        assert (await tags.set_tags(gid, owner, [], None, False, T0 + 3)).tags == ()
        assert await tags.search("c", owner, 0, 10) == []

    @pytest_twisted.ensureDeferred
    async def test_only_owner_and_admins_of_a_live_group(self, stores):
        from coffeechat.features.group_tags import TagsRefused

        store, tags = stores
        owner, member, outsider = await self._users(store, "owner", "member", "outsider")
        gid = (await new_group(store, owner, [member])).group_id
        for group_id, actor, code in (
            (gid, member, ErrorCode.FORBIDDEN),
            (gid, outsider, ErrorCode.FORBIDDEN),
            (gid + 5, owner, ErrorCode.NOT_FOUND),
        ):
            with pytest.raises(TagsRefused) as refused:
                await tags.set_tags(group_id, actor, ["x"], None, None, T0)
            assert refused.value.code == code
        await store.set_member_roles(gid, owner, GroupRole.OWNER, [member], GroupRole.ADMIN, T0)
        assert (await tags.set_tags(gid, member, ["x"], None, None, T0)).updated_by == member
        await store.dismiss_group(gid, owner, GroupRole.OWNER, T0 + 1)
        with pytest.raises(TagsRefused) as refused:
            await tags.set_tags(gid, owner, ["y"], None, None, T0 + 2)
        assert refused.value.code == ErrorCode.NOT_FOUND

    @pytest_twisted.ensureDeferred
    async def test_search_mine_and_discoverable_paged(self, stores):
        store, tags = stores
        alice, bob, carol = await self._users(store, "alice", "bobby", "carol")
        mine = [(await new_group(store, alice, [bob])).group_id for _ in range(5)]
        others = (await new_group(store, carol, [])).group_id
        hidden = (await new_group(store, carol, [])).group_id
        for gid in mine:
            await tags.set_tags(gid, alice, ["go", "chess"], None, gid == mine[1], T0)
        await tags.set_tags(others, carol, ["chess"], None, True, T0)
        await tags.set_tags(hidden, carol, ["chess"], None, False, T0)

        def ids(found):
            return [t.group_id for t in found]

        assert ids(await tags.search("chess", bob, 0, 3)) == mine[:3]
        assert ids(await tags.search("chess", bob, mine[2], 3)) == mine[3:]
        assert ids(await tags.search("go", bob, 0, 10)) == mine
        assert ids(await tags.search("chess", carol, 0, 10)) == [others, hidden]
        found = await tags.search("chess", 0, 0, 10)
        assert ids(found) == [mine[1], others]
        assert found[0].tags == ("go", "chess") and found[0].discoverable
        assert ids(await tags.search("chess", 0, mine[1], 10)) == [others]
        assert await tags.search("Chess", bob, 0, 10) == []  # stored as normalised: exact match
        # a group one left, or a dismissed one, is not found
        await store.remove_members(mine[0], bob, GroupRole.MEMBER, [bob], T0 + 1)
        assert ids(await tags.search("go", bob, 0, 10)) == mine[1:]
        await store.dismiss_group(others, carol, GroupRole.OWNER, T0 + 1)
        assert ids(await tags.search("chess", 0, 0, 10)) == [mine[1]]
