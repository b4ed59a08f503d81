"""Conformance tests for the push feature's storage facet
(:class:`~coffeechat.features.push.IPushStore`), for any backend.

Subclass :class:`PushStoreConformanceTests` as ``Test<Something>`` and implement
``make_store(tmp_path)`` as for :class:`~coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.testing.conformance import T0, open_facet

__all__ = ["PushStoreConformanceTests"]


class PushStoreConformanceTests:
    """What every IPushStore must do."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of PushStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.push import IPushStore, SQLPushStore

        store, facet = open_facet(self, tmp_path, "push", IPushStore, SQLPushStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _users(self, store: Any, *names: str) -> list[int]:
        return [(await store.create_user(n, n, "", T0)).user_id for n in names]

    @pytest_twisted.ensureDeferred
    async def test_register_rebind_and_read_in_batches(self, stores):
        store, push = stores
        alice, bob, carol = await self._users(store, "alice", "bobby", "carol")
        keys = {"p256dh": "BPk", "auth": "xyz"}
        first = await push.register(alice, "webpush", "https://push.example/1", "app", "fr", keys, "d1", T0, 10)
        assert first.target.target_id > 0 and first.target.extra == keys and first.target.locale == "fr"
        assert (first.device_id, first.background, first.updated_at) == ("d1", False, T0)
        other = await push.register(alice, "webhook", "tok", "", "", {}, "d1", T0, 10)
        # the same (platform, token) again: the same target, bound to the new device and user
        again = await push.register(bob, "webpush", "https://push.example/1", "app2", "de", {}, "d2", T0 + 5, 10)
        assert again.target.target_id == first.target.target_id
        assert (again.target.user_id, again.device_id, again.target.app_id, again.updated_at) == (
            bob,
            "d2",
            "app2",
            T0 + 5,
        )
        found = await push.targets_of([alice, bob, carol, 999])
        assert sorted(found) == [alice, bob]
        assert [t.target.target_id for t in found[alice]] == [other.target.target_id]
        assert found[bob][0].target.platform == "webpush"
        assert await push.targets_of([]) == {}

    @pytest_twisted.ensureDeferred
    async def test_at_most_max_targets_per_user(self, stores):
        from coffeechat.features.push import PushRefused

        store, push = stores
        (alice,) = await self._users(store, "alice")
        for i in range(3):
            await push.register(alice, "webhook", f"t{i}", "", "", {}, "d", T0, 3)
        await push.register(alice, "webhook", "t1", "", "", {}, "d9", T0, 3)  # a re-registration is no new one
        with pytest.raises(PushRefused) as refused:
            await push.register(alice, "webhook", "t3", "", "", {}, "d", T0, 3)
        assert refused.value.code == ErrorCode.PUSH_TOO_MANY_TARGETS

    @pytest_twisted.ensureDeferred
    async def test_unregister_background_and_dead_tokens(self, stores):
        store, push = stores
        alice, bob = await self._users(store, "alice", "bobby")
        a1 = await push.register(alice, "webhook", "a1", "", "", {}, "d1", T0, 10)
        a2 = await push.register(alice, "webhook", "a2", "", "", {}, "d1", T0, 10)
        await push.register(alice, "fcm", "a3", "", "", {}, "d2", T0, 10)
        b1 = await push.register(bob, "webhook", "b1", "", "", {}, "d3", T0, 10)
        assert await push.set_background(alice, "d1", True) == 2
        assert await push.set_background(alice, "d3", True) == 0  # bob's device, not alice's
        found = {t.target.token: t.background for t in (await push.targets_of([alice]))[alice]}
        assert found == {"a1": True, "a2": True, "a3": False}
        # re-registering brings a target to the foreground
        assert not (await push.register(alice, "webhook", "a1", "", "", {}, "d1", T0, 10)).background
        assert await push.unregister(alice, b1.target.target_id, "", "", "") == 0  # not hers
        assert await push.unregister(alice, 0, "fcm", "a3", "") == 1
        assert await push.unregister(alice, a1.target.target_id, "", "", "") == 1
        assert await push.unregister(alice, 0, "", "", "d1") == 1  # a2: the device's targets
        assert await push.targets_of([alice]) == {}
        assert await push.remove_targets([b1.target.target_id, a2.target.target_id]) == 1
        assert await push.remove_targets([]) == 0
        assert await push.targets_of([bob]) == {}

    @pytest_twisted.ensureDeferred
    async def test_settings(self, stores):
        from coffeechat.features.push import PushSettings

        store, push = stores
        alice, bob = await self._users(store, "alice", "bobby")
        assert await push.settings_of([alice, bob]) == {}
        await push.save_settings(alice, PushSettings(False, True), T0)
        await push.save_settings(alice, PushSettings(False, False), T0 + 1)
        assert await push.settings_of([alice, bob]) == {alice: PushSettings(False, False)}
