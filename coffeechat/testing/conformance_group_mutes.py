"""Conformance tests for the group_mutes feature's storage facet
(:class:`~coffeechat.features.group_mutes.IGroupMuteStore`), for any backend.

Subclass :class:`GroupMuteStoreConformanceTests` as ``Test<Something>`` and implement
``make_store(tmp_path)`` as for :class:`~coffeechat.testing.conformance.StoreConformanceTests`;
an SQL backend gets the feature's own implementation and table, any other one provides the facet
from ``facet(IGroupMuteStore)``.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.model import GroupRole
from coffeechat.testing.conformance import T0, new_group, open_facet

__all__ = ["GroupMuteStoreConformanceTests"]


class GroupMuteStoreConformanceTests:
    """What every IGroupMuteStore must do."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of GroupMuteStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.group_mutes import IGroupMuteStore, SQLGroupMuteStore

        store, facet = open_facet(self, tmp_path, "group_mutes", IGroupMuteStore, SQLGroupMuteStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _group(self, store: Any) -> tuple[int, list[int]]:
        """A group of owner, admin, member, member; returns (group id, [owner, admin, m1, m2])."""
        ids = [(await store.create_user(n, n, "", T0)).user_id for n in ("owner", "admin", "memb1", "memb2")]
        group = await new_group(store, ids[0], ids[1:])
        await store.set_member_roles(group.group_id, ids[0], GroupRole.OWNER, [ids[1]], GroupRole.ADMIN, T0)
        return group.group_id, ids

    @pytest_twisted.ensureDeferred
    async def test_mute_list_replace_and_lift(self, stores):
        from coffeechat.features.group_mutes import GroupMute

        store, mutes = stores
        gid, (owner, admin, m1, m2) = await self._group(store)
        assert await mutes.mutes_of(gid, T0) == []
        assert await mutes.set_mute(gid, m1, admin, T0 + 100, T0) == GroupMute(gid, m1, T0 + 100, admin, T0)
        assert await mutes.set_mute(gid, m2, owner, T0 + 50, T0 + 1) == GroupMute(gid, m2, T0 + 50, owner, T0 + 1)
        # soonest to end first; only those in force
        assert [(m.user_id, m.muted_until) for m in await mutes.mutes_of(gid, T0)] == [(m2, T0 + 50), (m1, T0 + 100)]
        assert [m.user_id for m in await mutes.mutes_of(gid, T0 + 50)] == [m1]
        assert await mutes.mutes_of(gid, T0 + 100) == []
        # a new mute replaces the old one
        await mutes.set_mute(gid, m1, owner, T0 + 10, T0 + 2)
        assert [(m.user_id, m.muted_until, m.muted_by) for m in await mutes.mutes_of(gid, T0 + 5)] == [
            (m1, T0 + 10, owner),
            (m2, T0 + 50, owner),
        ]
        # muted_until not after now lifts
        lifted = await mutes.set_mute(gid, m1, admin, 0, T0 + 3)
        assert lifted.muted_until == 0
        assert [m.user_id for m in await mutes.mutes_of(gid, T0 + 3)] == [m2]
        assert await mutes.lift(gid, [m1, m2]) == 1
        assert await mutes.lift(gid, []) == 0
        assert await mutes.mutes_of(gid, T0) == []

    @pytest_twisted.ensureDeferred
    async def test_the_rules_are_checked_in_the_transaction(self, stores):
        from coffeechat.features.group_mutes import MuteRefused

        store, mutes = stores
        gid, (owner, admin, m1, m2) = await self._group(store)
        outsider = (await store.create_user("outsider", "o", "", T0)).user_id
        cases = [
            (gid, m2, m1, ErrorCode.FORBIDDEN),  # a plain member mutes nobody
            (gid, owner, admin, ErrorCode.FORBIDDEN),  # nobody mutes the owner
            (gid, admin, admin, ErrorCode.INVALID_ARGUMENT),  # nor themselves
            (gid, outsider, owner, ErrorCode.NOT_FOUND),  # not a member
            (gid, m1, outsider, ErrorCode.FORBIDDEN),
            (gid + 100, m1, owner, ErrorCode.NOT_FOUND),  # no group
        ]
        await store.set_member_roles(gid, owner, GroupRole.OWNER, [m2], GroupRole.ADMIN, T0)
        cases.append((gid, m2, admin, ErrorCode.FORBIDDEN))  # an admin mutes no admin
        for group_id, member, actor, code in cases:
            with pytest.raises(MuteRefused) as refused:
                await mutes.set_mute(group_id, member, actor, T0 + 60, T0)
            assert refused.value.code == code, (member, actor)
        assert (await mutes.set_mute(gid, m2, owner, T0 + 60, T0)).muted_until == T0 + 60  # the owner does
        await store.dismiss_group(gid, owner, GroupRole.OWNER, T0 + 1)
        with pytest.raises(MuteRefused) as refused:
            await mutes.set_mute(gid, m1, owner, T0 + 60, T0)
        assert refused.value.code == ErrorCode.NOT_FOUND

    @pytest_twisted.ensureDeferred
    async def test_groups_are_apart(self, stores):
        store, mutes = stores
        gid, (owner, admin, m1, m2) = await self._group(store)
        other = await new_group(store, owner, [m1])
        await mutes.set_mute(gid, m1, owner, T0 + 60, T0)
        assert await mutes.mutes_of(other.group_id, T0) == []
        assert await mutes.lift(other.group_id, [m1]) == 0
        assert [m.user_id for m in await mutes.mutes_of(gid, T0)] == [m1]
