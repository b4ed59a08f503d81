"""Conformance tests of the webhooks and bots features' storage facets
(:class:`~coffeechat.features.webhooks.IWebhookStore`, :class:`~coffeechat.features.bots.IBotStore`),
for any backend.  Subclass as ``Test<Something>`` and implement ``make_store`` as for
:class:`~coffeechat.testing.conformance.StoreConformanceTests`."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.testing.conformance import T0, new_message, open_facet


class WebhookStoreConformanceTests:
    """Leases, per-conversation marks, the catch-up scan, the outbox and the status view."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.webhooks import IWebhookStore, SQLWebhookStore

        store, facet = open_facet(self, tmp_path, "webhooks", IWebhookStore, SQLWebhookStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_one_holder_at_a_time(self, stores):
        _, hooks = stores
        assert await hooks.acquire("app", "n1", 1000, 5000, T0) == (True, T0)
        assert await hooks.acquire("app", "n2", 2000, 5000, T0 + 9) == (False, T0)
        assert await hooks.acquire("app", "n1", 3000, 5000, T0) == (True, T0)  # renewed
        assert (await hooks.acquire("app", "n2", 7000, 5000, T0))[0] is False
        assert (await hooks.acquire("app", "n2", 8001, 5000, T0))[0] is True  # expired: taken over
        await hooks.release("app", "n2")
        assert (await hooks.acquire("app", "n1", 8002, 5000, T0))[0] is True

    @pytest_twisted.ensureDeferred
    async def test_marks_pending_and_unsent(self, stores):
        store, hooks = stores
        a = (await store.create_user("alice", "alice", "", T0)).user_id
        b = (await store.create_user("bobby", "bobby", "", T0)).user_id
        await hooks.acquire("app", "n1", 0, 5000, T0)
        old = await store.append(new_message(a, b, "old", at=T0 - 10))
        for i in range(4):
            await store.append(new_message(a, b, f"m{i}", at=T0 + i))
        conv = old.message.conv
        assert await hooks.unsent("app", T0, "", 10) == [conv]
        found, marks, more = await hooks.pending("app", T0, [conv], 3)
        assert [m.client_msg_id for m in found[conv]] == ["m0", "m1"]  # older than start_at: skipped
        assert marks == {conv: 3} and more == [conv]
        await hooks.mark("app", {conv: 3})
        await hooks.mark("app", {conv: 1})  # never back
        found, marks, more = await hooks.pending("app", T0, [conv], 3)
        assert [m.client_msg_id for m in found[conv]] == ["m2", "m3"] and more == []
        [status] = await hooks.status(["app"])
        assert status.backlog_messages == 2
        await hooks.mark("app", marks)
        assert await hooks.unsent("app", T0, "", 10) == []
        assert await hooks.unsent("other", T0, "", 10) == [conv]  # marks are per endpoint

    @pytest_twisted.ensureDeferred
    async def test_outbox_in_order_and_status(self, stores):
        _, hooks = stores
        await hooks.acquire("app", "n1", 0, 5000, T0)
        await hooks.enqueue([("app", "g:1", "group.changed", f'{{"n": {i}}}', T0) for i in range(5)])
        await hooks.enqueue([("other", "u:1", "account.created", "{}", T0)])
        events = await hooks.events("app", 3)
        assert [e.payload for e in events] == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
        await hooks.events_sent("app", [e.event_id for e in events])
        assert [e.payload for e in await hooks.events("app", 10)] == ['{"n": 3}', '{"n": 4}']
        await hooks.record("app", 2, "HTTP 503", T0 + 5, 0, 3)
        [status] = await hooks.status(["app"])
        assert (status.failures, status.last_error, status.delivered, status.backlog_events) == (2, "HTTP 503", 3, 2)
        await hooks.record("app", 0, "", 0, T0 + 6, 2)
        [status] = await hooks.status(["app"])
        assert (status.failures, status.last_error, status.last_success_at) == (0, "HTTP 503", T0 + 6)
        await hooks.forget("app")
        assert await hooks.status(["app"]) == [] and await hooks.events("app", 10) == []
        assert len(await hooks.events("other", 10)) == 1


class BotStoreConformanceTests:
    """The bots table: flag, update, find by key, unflag."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.bots import IBotStore, SQLBotStore

        store, facet = open_facet(self, tmp_path, "bots", IBotStore, SQLBotStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_flag_find_unflag(self, stores):
        from coffeechat.features.bots import Bot

        _, bots = stores
        await bots.put(Bot(7, "http://h/1", "whsec_x", "hash1", T0))
        await bots.put(Bot(3, "http://h/3", "whsec_y", "hash3", T0))
        await bots.put(Bot(7, "http://h/2", "whsec_z", "hash2", T0 + 1))
        assert [b.user_id for b in await bots.all(10)] == [3, 7]
        assert (await bots.get(7)).url == "http://h/2"
        assert await bots.by_key("hash1") is None
        assert (await bots.by_key("hash2")).user_id == 7
        assert await bots.remove(7) is True
        assert await bots.remove(7) is False
        assert await bots.get(7) is None
