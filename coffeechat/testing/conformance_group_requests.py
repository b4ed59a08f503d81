"""Conformance of the group_requests feature's storage and of the group store's ownership transfer.

:class:`GroupRequestStoreConformanceTests` checks :class:`~coffeechat.features.group_requests.IGroupRequestStore`
(an SQL backend gets the feature's own implementation and tables; any other backend provides the facet
from ``facet(IGroupRequestStore)``), :class:`GroupTransferConformanceTests` the
:meth:`~coffeechat.interfaces.IGroupStore.transfer_owner` of any IStore.  Subclass either as
``Test<Something>`` and implement ``make_store`` as for
:class:`~coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.interfaces import GroupForbidden, GroupNotFound, NotGroupMember
from coffeechat.model import GroupRole
from coffeechat.testing.conformance import T0, new_group, open_facet

TTL = 3600


async def _users(store: Any, *names: str) -> list[int]:
    return [(await store.create_user(name, name, "", T0)).user_id for name in names]


class GroupRequestStoreConformanceTests:
    """The behaviour every IGroupRequestStore has: pending uniqueness, bounds, expiry, the first
    decision winning, reopening, the pending list and the consent setting."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of GroupRequestStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.group_requests import IGroupRequestStore, SQLGroupRequestStore

        store, facet = open_facet(self, tmp_path, "group_requests", IGroupRequestStore, SQLGroupRequestStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _world(self, store: Any) -> tuple[int, list[int]]:
        ids = await _users(store, "owner", "admin", "carol", "david", "erinn")
        group = await new_group(store, ids[0], [ids[1]], name="Club")
        await store.set_member_roles(group.group_id, ids[0], GroupRole.OWNER, [ids[1]], GroupRole.ADMIN, T0)
        return group.group_id, ids

    @pytest_twisted.ensureDeferred
    async def test_one_pending_request_per_user_group_and_kind(self, stores):
        from coffeechat.features.group_requests import GroupRequest

        store, requests = stores
        gid, (owner, admin, carol, david, _) = await self._world(store)
        ((first, new),) = await requests.create(1, gid, carol, [carol], "let me in", T0, T0 + TTL, 10, 10)
        assert new
        assert first == GroupRequest(first.request_id, 1, gid, carol, carol, "let me in", 0, T0, T0 + TTL)
        ((again, new),) = await requests.create(1, gid, carol, [carol], "again", T0 + 5, T0 + TTL + 5, 10, 10)
        assert not new and again == first
        # an invitation of the same user is another kind, and several invitees are one write
        made = await requests.create(2, gid, owner, [david, carol], "", T0, T0 + TTL, 10, 10)
        kept = [(r.kind, r.user_id, r.actor_id, new) for r, new in made]
        assert kept == [(2, david, owner, True), (2, carol, owner, True)]
        assert len({r.request_id for r, _ in made} | {first.request_id}) == 3
        assert await requests.get(first.request_id) == first
        assert await requests.get(99_999) is None

    @pytest_twisted.ensureDeferred
    async def test_bounds_per_group_and_per_user_are_all_or_nothing(self, stores):
        from coffeechat.features.group_requests import RequestRefused

        store, requests = stores
        gid, (owner, admin, carol, david, erinn) = await self._world(store)
        other = (await new_group(store, owner, [], name="Other")).group_id
        await requests.create(1, gid, carol, [carol], "", T0, T0 + TTL, 2, 1)
        with pytest.raises(RequestRefused) as refused:
            await requests.create(2, gid, owner, [david, erinn], "", T0, T0 + TTL, 2, 1)  # 3 > 2 for the group
        assert refused.value.code == ErrorCode.TOO_MANY_GROUP_REQUESTS
        assert await requests.pending_for(david, 0, T0, 10) == []  # nothing was kept
        with pytest.raises(RequestRefused) as refused:
            await requests.create(1, other, carol, [carol], "", T0, T0 + TTL, 2, 1)  # carol has 1 already
        assert refused.value.code == ErrorCode.TOO_MANY_GROUP_REQUESTS
        # expired ones do not count, and are replaced by a new request
        ((renewed, new),) = await requests.create(1, other, carol, [carol], "", T0 + TTL, T0 + 2 * TTL, 2, 1)
        assert new
        ((again, new),) = await requests.create(1, gid, carol, [carol], "", T0 + 2 * TTL, T0 + 3 * TTL, 2, 2)
        assert new and again.created_at == T0 + 2 * TTL

    @pytest_twisted.ensureDeferred
    async def test_the_first_decision_wins_and_expired_ones_cannot_be_decided(self, stores):
        from coffeechat.features.group_requests import RequestRefused

        store, requests = stores
        gid, (owner, admin, carol, david, _) = await self._world(store)
        ((req, _),) = await requests.create(1, gid, carol, [carol], "", T0, T0 + TTL, 10, 10)
        won = await requests.decide(req.request_id, gid, admin, 1, T0 + 10)
        assert (won.status, won.decided_by, won.decided_at) == (1, admin, T0 + 10)
        with pytest.raises(RequestRefused) as lost:
            await requests.decide(req.request_id, gid, owner, 2, T0 + 11)
        assert lost.value.code == ErrorCode.GROUP_REQUEST_HANDLED and lost.value.request == won
        with pytest.raises(RequestRefused) as wrong:
            await requests.decide(req.request_id, gid + 1, owner, 2, T0 + 11)
        assert wrong.value.code == ErrorCode.GROUP_REQUEST_NOT_FOUND
        ((late, _),) = await requests.create(1, gid, david, [david], "", T0, T0 + TTL, 10, 10)
        with pytest.raises(RequestRefused) as expired:
            await requests.decide(late.request_id, gid, owner, 1, T0 + TTL)
        assert expired.value.code == ErrorCode.GROUP_REQUEST_HANDLED
        # concurrent decisions: exactly one wins
        ((both, _),) = await requests.create(2, gid, owner, [carol], "", T0, T0 + TTL, 10, 10)
        results = await defer.DeferredList(
            [requests.decide(both.request_id, gid, carol, s, T0 + 1) for s in (1, 2, 4)], consumeErrors=True
        )
        assert sorted(ok for ok, _ in results) == [False, False, True]

    @pytest_twisted.ensureDeferred
    async def test_reopen_an_acceptance_that_could_not_be_carried_out(self, stores):
        store, requests = stores
        gid, (owner, admin, carol, _, _) = await self._world(store)
        ((req, _),) = await requests.create(1, gid, carol, [carol], "", T0, T0 + TTL, 10, 10)
        await requests.decide(req.request_id, gid, admin, 1, T0 + 1)
        back = await requests.reopen(req.request_id, 0)
        assert (back.status, back.decided_by, back.decided_at) == (0, 0, 0)
        assert await requests.reopen(req.request_id, 0) is None  # only an acceptance is reopened
        await requests.decide(req.request_id, gid, admin, 1, T0 + 2)
        lapsed = await requests.reopen(req.request_id, 3)
        assert (lapsed.status, lapsed.decided_by) == (3, admin)

    @pytest_twisted.ensureDeferred
    async def test_the_pending_list_is_who_may_decide_and_who_asked(self, stores):
        store, requests = stores
        gid, (owner, admin, carol, david, erinn) = await self._world(store)
        ((join, _),) = await requests.create(1, gid, carol, [carol], "hi", T0, T0 + TTL, 10, 10)
        ((invite, _),) = await requests.create(2, gid, admin, [david], "", T0 + 1, T0 + TTL, 10, 10)

        async def ids(user: int, group_id: int = 0, now: int = T0 + 2, limit: int = 10) -> list[int]:
            return [r.request_id for r in await requests.pending_for(user, group_id, now, limit)]

        assert await ids(owner) == [join.request_id]  # managers see requests to join, not invitations
        assert await ids(admin) == [join.request_id, invite.request_id]  # and what they sent
        assert await ids(carol) == [join.request_id]
        assert await ids(david) == [invite.request_id]
        assert await ids(erinn) == []
        assert await ids(admin, limit=1) == [join.request_id]
        assert await ids(admin, group_id=gid + 1) == []
        assert await ids(admin, now=T0 + TTL) == []  # expired
        (listed,) = await requests.pending_for(carol, gid, T0 + 2, 10)
        assert listed.group_name == "Club" and listed.message == "hi"
        await requests.decide(join.request_id, gid, owner, 2, T0 + 3)
        assert await ids(owner) == []
        # a member made plain no longer sees the group's requests
        ((again, _),) = await requests.create(1, gid, erinn, [erinn], "", T0 + 4, T0 + TTL, 10, 10)
        await store.set_member_roles(gid, owner, GroupRole.OWNER, [admin], GroupRole.MEMBER, T0 + 5)
        assert await ids(admin) == [invite.request_id]
        assert again.request_id in await ids(owner)

    @pytest_twisted.ensureDeferred
    async def test_consent_setting_and_purge(self, stores):
        store, requests = stores
        gid, (owner, admin, carol, david, erinn) = await self._world(store)
        assert await requests.consent_of([carol, david]) == set()
        await requests.set_consent(carol, True)
        await requests.set_consent(david, True)
        await requests.set_consent(david, False)
        assert await requests.consent_of([carol, david, erinn]) == {carol}
        assert await requests.consent_of([]) == set()
        ((old, _),) = await requests.create(1, gid, carol, [carol], "", T0, T0 + TTL, 10, 10)
        ((young, _),) = await requests.create(1, gid, david, [david], "", T0 + TTL, T0 + 2 * TTL, 10, 10)
        assert await requests.purge(T0 + TTL + 1) == 1
        assert await requests.get(old.request_id) is None
        assert await requests.get(young.request_id) == young

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_every_request_by_or_for_them(self, stores):
        store, requests = stores
        gid, (owner, admin, carol, david, erinn) = await self._world(store)
        ((asked, _),) = await requests.create(1, gid, carol, [carol], "", T0, T0 + TTL, 10, 10)
        ((invited, _),) = await requests.create(2, gid, owner, [carol], "", T0, T0 + TTL, 10, 10)
        ((sent, _),) = await requests.create(2, gid, carol, [david], "", T0, T0 + TTL, 10, 10)
        ((decided, _),) = await requests.create(1, gid, erinn, [erinn], "", T0, T0 + TTL, 10, 10)
        await requests.decide(decided.request_id, gid, carol, 2, T0 + 1)  # carol only decided it
        ((others, _),) = await requests.create(1, gid, david, [david], "", T0, T0 + TTL, 10, 10)
        await requests.set_consent(carol, True)
        await requests.set_consent(david, True)
        assert await requests.forget_user(carol) == 3
        for gone in (asked, invited, sent):
            assert await requests.get(gone.request_id) is None
        assert await requests.get(others.request_id) == others
        assert (await requests.get(decided.request_id)).decided_by == carol
        assert [r.request_id for r in await requests.pending_for(owner, 0, T0 + 2, 10)] == [others.request_id]
        assert await requests.consent_of([carol, david]) == {david}
        assert await requests.forget_user(carol) == 0


class GroupTransferConformanceTests:
    """IGroupStore.transfer_owner on any IStore."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of GroupTransferConformanceTests implement make_store")

    @pytest.fixture
    def store(self, tmp_path: Any) -> Any:
        async def opened() -> Any:
            store = await defer.maybeDeferred(self.make_store, tmp_path)
            await store.start()
            return store

        store = pytest_twisted.blockon(defer.ensureDeferred(opened()))
        yield store
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_the_owner_hands_over_and_becomes_admin(self, store):
        owner, heir, other, outsider = await _users(store, "owner", "heirr", "other", "outsider")
        group = await new_group(store, owner, [heir, other])
        change = await store.transfer_owner(group.group_id, owner, heir, T0 + 5)
        assert change.group.owner_id == heir and change.group.version == group.version + 1
        assert change.group.updated_at == T0 + 5 and change.group.member_count == 3
        assert [(m.user_id, m.role) for m in change.roles] == [(heir, GroupRole.OWNER), (owner, GroupRole.ADMIN)]
        assert change.added == () and change.removed == ()
        roles = {m.user_id: m.role for m in await store.group_members(group.group_id)}
        assert roles == {owner: GroupRole.ADMIN, heir: GroupRole.OWNER, other: GroupRole.MEMBER}
        assert (await store.group_by_id(group.group_id)).owner_id == heir
        # only the owner, only to another member, only in a live group
        with pytest.raises(GroupForbidden):
            await store.transfer_owner(group.group_id, owner, other, T0 + 6)
        with pytest.raises(NotGroupMember):
            await store.transfer_owner(group.group_id, heir, outsider, T0 + 6)
        with pytest.raises(GroupForbidden):
            await store.transfer_owner(group.group_id, heir, heir, T0 + 6)
        await store.dismiss_group(group.group_id, heir, GroupRole.OWNER, T0 + 7)
        with pytest.raises(GroupNotFound):
            await store.transfer_owner(group.group_id, heir, owner, T0 + 8)
        # the new owner's hand-over on leaving still follows seniority
        second = await new_group(store, owner, [heir, other])
        await store.transfer_owner(second.group_id, owner, other, T0 + 9)
        left = await store.remove_members(second.group_id, other, GroupRole.MEMBER, [other], T0 + 10)
        assert left.group.owner_id == owner  # the earliest joined remaining member
