"""Conformance tests of the storage facets of do-not-disturb (:class:`~coffeechat.features.dnd.IDndStore`)
and pinned conversations (:class:`~coffeechat.features.pins.IPinStore`), for any backend.

Subclass as ``Test<Something>`` and implement ``make_store(tmp_path)`` as for
:class:`coffeechat.testing.conformance.StoreConformanceTests`: an SQL backend gets the features'
own implementations (and tables), any other one provides the facets from ``facet(IFacet)``.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.testing.conformance import T0, open_facet


async def _users(store: Any, *names: str) -> list[int]:
    return [(await store.create_user(name, name, "", T0)).user_id for name in names]


class DndStoreConformanceTests:
    """The dnd feature's storage: global settings and per-conversation mutes."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of DndStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.dnd import IDndStore, SQLDndStore

        store, facet = open_facet(self, tmp_path, "dnd", IDndStore, SQLDndStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_settings_are_none_until_saved_then_replaced(self, stores):
        from coffeechat.features.dnd import DndSettings

        store, dnd = stores
        alice, bob = await _users(store, "alice", "bobby")
        assert await dnd.load(alice) == (None, [])
        night = DndSettings(True, 22 * 60, 7 * 60, "Asia/Shanghai", False, T0)
        await dnd.save_settings(alice, night)
        assert await dnd.load(alice) == (night, [])
        changed = DndSettings(False, 0, 0, "", True, T0 + 5)
        await dnd.save_settings(alice, changed)
        assert (await dnd.load(alice))[0] == changed
        assert await dnd.load(bob) == (None, [])  # one user's settings only

    @pytest_twisted.ensureDeferred
    async def test_mutes_newest_first_idempotent_and_bounded(self, stores):
        from coffeechat.errors import ErrorCode
        from coffeechat.features.dnd import DndRefused, Mute

        store, dnd = stores
        alice, bob = await _users(store, "alice", "bobby")
        assert await dnd.set_muted(alice, 1, bob, True, T0, 3) is True
        assert await dnd.set_muted(alice, 2, 7, True, T0 + 1, 3) is True
        assert await dnd.set_muted(alice, 1, bob, True, T0 + 9, 3) is False  # keeps its first time
        assert await dnd.set_muted(alice, 2, 8, True, T0 + 1, 3) is True
        assert (await dnd.load(alice))[1] == [Mute(2, 7, T0 + 1), Mute(2, 8, T0 + 1), Mute(1, bob, T0)]
        with pytest.raises(DndRefused) as refused:
            await dnd.set_muted(alice, 2, 9, True, T0 + 2, 3)
        assert refused.value.code == ErrorCode.TOO_MANY_MUTES
        assert await dnd.set_muted(alice, 2, 7, False, T0 + 3, 3) is True
        assert await dnd.set_muted(alice, 2, 7, False, T0 + 3, 3) is False
        assert await dnd.set_muted(alice, 2, 9, True, T0 + 4, 3) is True  # room again
        assert [m.session_id for m in (await dnd.load(alice))[1]] == [9, 8, bob]
        assert (await dnd.load(bob))[1] == []

    @pytest_twisted.ensureDeferred
    async def test_concurrent_mutes_never_pass_the_limit(self, stores):
        from coffeechat.features.dnd import DndRefused

        store, dnd = stores
        (alice,) = await _users(store, "alice")
        results = await defer.DeferredList(
            [dnd.set_muted(alice, 2, 100 + i, True, T0, 4) for i in range(10)], consumeErrors=True
        )
        passed = [ok for ok, _ in results if ok]
        refused = [r for ok, r in results if not ok]
        assert len(passed) == 4 and all(f.check(DndRefused) for f in refused)
        assert len((await dnd.load(alice))[1]) == 4

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_their_setting_and_mutes_only(self, stores):
        from coffeechat.features.dnd import DndSettings, Mute

        store, dnd = stores
        alice, bob = await _users(store, "alice", "bobby")
        await dnd.save_settings(alice, DndSettings(True, 0, 0, "", False, T0))
        await dnd.save_settings(bob, DndSettings(True, 60, 120, "", True, T0))
        await dnd.set_muted(alice, 1, bob, True, T0, 10)
        await dnd.set_muted(bob, 1, alice, True, T0, 10)
        await dnd.forget_user(alice)
        assert await dnd.load(alice) == (None, [])
        assert await dnd.load(bob) == (DndSettings(True, 60, 120, "", True, T0), [Mute(1, alice, T0)])
        await dnd.forget_user(alice)  # nothing left: no error


class PinStoreConformanceTests:
    """The pins feature's storage: pinned conversations in pin order, bounded per user."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of PinStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.pins import IPinStore, SQLPinStore

        store, facet = open_facet(self, tmp_path, "pins", IPinStore, SQLPinStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_pins_most_recent_first_idempotent_and_bounded(self, stores):
        from coffeechat.errors import ErrorCode
        from coffeechat.features.pins import Pin, PinRefused

        store, pins = stores
        alice, bob = await _users(store, "alice", "bobby")
        assert await pins.pins_of(alice) == []
        assert await pins.pin(alice, 1, bob, T0, 3) == (Pin(1, bob, T0), True)
        assert await pins.pin(alice, 2, 7, T0, 3) == (Pin(2, 7, T0), True)  # the same second: later
        assert await pins.pin(alice, 1, bob, T0 + 9, 3) == (Pin(1, bob, T0), False)  # keeps time and place
        assert await pins.pins_of(alice) == [Pin(2, 7, T0), Pin(1, bob, T0)]
        assert await pins.pin(alice, 2, 8, T0 + 1, 3) == (Pin(2, 8, T0 + 1), True)
        with pytest.raises(PinRefused) as refused:
            await pins.pin(alice, 2, 9, T0 + 2, 3)
        assert refused.value.code == ErrorCode.TOO_MANY_PINS
        assert await pins.unpin(alice, 2, 7) is True
        assert await pins.unpin(alice, 2, 7) is False
        assert await pins.pin(alice, 2, 7, T0 + 3, 3) == (Pin(2, 7, T0 + 3), True)  # pinned again: on top
        assert [p.session_id for p in await pins.pins_of(alice)] == [7, 8, bob]
        assert await pins.pins_of(bob) == []

    @pytest_twisted.ensureDeferred
    async def test_concurrent_pins_never_pass_the_limit(self, stores):
        from coffeechat.features.pins import PinRefused

        store, pins = stores
        (alice,) = await _users(store, "alice")
        results = await defer.DeferredList([pins.pin(alice, 2, 100 + i, T0, 3) for i in range(8)], consumeErrors=True)
        assert len([ok for ok, _ in results if ok]) == 3
        assert all(r.check(PinRefused) for ok, r in results if not ok)
        found = await pins.pins_of(alice)
        assert len(found) == 3 and len({p.session_id for p in found}) == 3

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_their_pins_only(self, stores):
        from coffeechat.features.pins import Pin

        store, pins = stores
        alice, bob = await _users(store, "alice", "bobby")
        await pins.pin(alice, 1, bob, T0, 5)
        await pins.pin(alice, 2, 7, T0, 5)
        await pins.pin(bob, 1, alice, T0, 5)
        assert await pins.forget_user(alice) == 2
        assert await pins.pins_of(alice) == []
        assert await pins.pins_of(bob) == [Pin(1, alice, T0)]
        assert await pins.forget_user(alice) == 0
