"""Conformance tests of the chat rooms' storage facet (:class:`~coffeechat.features.rooms.IRoomStore`),
for any backend.

Subclass as ``Test<Something>`` and implement ``make_store(tmp_path)`` as for
:class:`coffeechat.testing.conformance.StoreConformanceTests`: an SQL backend gets the feature's
own implementation (and tables), any other one provides the facet from ``facet(IRoomStore)``.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.testing.conformance import T0, open_facet


class RoomStoreConformanceTests:
    """Rooms (created within the owner's limit, listed, closed), their moderation (roles, mutes
    and bans with an end, bounded), and their messages (batched, trimmed, paged)."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of RoomStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.rooms import IRoomStore, SQLRoomStore

        store, facet = open_facet(self, tmp_path, "rooms", IRoomStore, SQLRoomStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_rooms_moderation_and_messages(self, stores: Any) -> None:
        from coffeechat.errors import ErrorCode
        from coffeechat.features.rooms import BAN, MODERATOR, MUTE, RoomMsg, RoomRefused

        store, rooms = stores
        owner = (await store.create_user("alice", "Alice", "", T0)).user_id
        first = await rooms.create("One", "topic", owner, 100, False, T0, 2)
        second = await rooms.create("Two", "", owner, 5, True, T0 + 1, 2)
        try:
            await rooms.create("Three", "", owner, 5, True, T0 + 2, 2)
            pytest.fail("a third room was created")
        except RoomRefused as e:
            assert e.code == ErrorCode.TOO_MANY_ROOMS
        admins = await rooms.create("Admins'", "", 0, 5, False, T0 + 3, 0)  # no owner, no limit
        assert [r.room_id for r in await rooms.list_open(0, 10)] == [admins.room_id, second.room_id, first.room_id]
        assert [r.room_id for r in await rooms.list_open(second.room_id, 10)] == [first.room_id]
        assert await rooms.close(first.room_id, T0 + 1000) is True
        assert await rooms.close(first.room_id, T0 + 1001) is False
        assert [r.room_id for r in await rooms.list_rooms(0, 10)] == [first.room_id, second.room_id, admins.room_id]
        assert (await rooms.list_rooms(0, 10))[0].closed_at == T0 + 1000
        third = await rooms.create("Three", "", owner, 5, True, T0 + 2, 2)  # one closed: room again

        await rooms.set_role(second.room_id, 7, MODERATOR)
        await rooms.sanction(second.room_id, 8, MUTE, 0, owner, T0, 2)
        await rooms.sanction(second.room_id, 9, BAN, T0 + 500, owner, T0, 2)
        await rooms.sanction(second.room_id, 10, BAN, T0 + 100, owner, T0, 2)
        try:
            await rooms.sanction(second.room_id, 11, BAN, 0, owner, T0, 2)
            pytest.fail("a third ban was recorded")
        except RoomRefused as e:
            assert e.code == ErrorCode.INVALID_ARGUMENT
        row, roles, mutes, bans = await rooms.load(second.room_id, T0 + 200)
        assert (row.name, row.persist_history) == ("Two", True)
        assert (roles, mutes, bans) == ({7: MODERATOR}, {8: 0}, {9: T0 + 500})  # the expired ban is not in force
        await rooms.sanction(second.room_id, 11, BAN, 0, owner, T0 + 200, 2)  # the expired one went first
        assert await rooms.lift(second.room_id, 8, MUTE) is True
        assert await rooms.lift(second.room_id, 8, MUTE) is False
        await rooms.set_role(second.room_id, 7, 0)
        _, roles, mutes, bans = await rooms.load(second.room_id, T0 + 200)
        assert (roles, mutes, bans) == ({}, {}, {9: T0 + 500, 11: 0})
        assert await rooms.load(999, 0) is None

        def msg(room_id: int, n: int) -> tuple:
            return RoomMsg(room_id, 100 + n, f"c{n}", owner, "Alice", 1, f"m{n}".encode(), T0 + n, 2).row()

        await rooms.append([msg(first.room_id, n) for n in range(6)], [first.room_id], 3)
        await rooms.append([msg(second.room_id, n) for n in range(6)], [], 3)
        await rooms.append([msg(first.room_id, 5)], [first.room_id], 3)  # again: no duplicate
        recent = await rooms.recent(first.room_id, 10)
        assert [(m.msg_id, m.data, m.from_role) for m in recent] == [(103, b"m3", 2), (104, b"m4", 2), (105, b"m5", 2)]
        assert [m.msg_id for m in await rooms.history(second.room_id, 0, 4)] == [105, 104, 103, 102]
        assert [m.msg_id for m in await rooms.history(second.room_id, 102, 4)] == [101, 100]
        assert sorted(await rooms.forget_user(owner, T0 + 2000)) == [second.room_id, third.room_id]
        assert [r.room_id for r in await rooms.list_open(0, 10)] == [admins.room_id]
