"""Conformance tests for the forward feature's storage facet
(:class:`~coffeechat.features.forward.IForwardStore`), for any backend.

Subclass :class:`ForwardStoreConformanceTests` as ``Test<Something>`` and implement
``make_store(tmp_path)`` as for :class:`coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.testing.conformance import open_facet


class ForwardStoreConformanceTests:
    """What must hold of IForwardStore: origins are kept per (conv, seq), the first one wins, and
    a lookup returns only those asked for, of that conversation."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of ForwardStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.forward import IForwardStore, SQLForwardStore

        store, facet = open_facet(self, tmp_path, "forward", IForwardStore, SQLForwardStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_origins_are_kept_per_message_and_found_by_conversation(self, stores):
        _, origins = stores
        await origins.save_origins([("p:1:2", 5, '{"fromUserId":3}'), ("p:1:2", 6, '{"fromUserId":4}')])
        await origins.save_origins([("g:9", 5, '{"fromUserId":"\u4e2d\u6587"}')])
        assert await origins.origins("p:1:2", [5, 6, 7]) == {5: '{"fromUserId":3}', 6: '{"fromUserId":4}'}
        assert await origins.origins("p:1:2", [6]) == {6: '{"fromUserId":4}'}
        assert await origins.origins("g:9", [5, 6]) == {5: '{"fromUserId":"\u4e2d\u6587"}'}
        assert await origins.origins("p:1:3", [5, 6]) == {}
        assert await origins.origins("p:1:2", []) == {}
        await origins.save_origins([])

    @pytest_twisted.ensureDeferred
    async def test_a_resent_forward_keeps_the_first_origin(self, stores):
        _, origins = stores
        await origins.save_origins([("p:1:2", 1, "first")])
        await origins.save_origins([("p:1:2", 1, "second"), ("p:1:2", 2, "new")])
        assert await origins.origins("p:1:2", [1, 2]) == {1: "first", 2: "new"}

    @pytest_twisted.ensureDeferred
    async def test_many_at_once(self, stores):
        _, origins = stores
        await origins.save_origins([("g:1", seq, f"o{seq}") for seq in range(1, 301)])
        found = await origins.origins("g:1", list(range(1, 400)))
        assert len(found) == 300 and found[300] == "o300"
        # keys compare bytewise on every engine (the PostgreSQL column is COLLATE "C")
        await origins.save_origins([("g:1a", 1, "x"), ("G:1", 1, "y")])
        assert await origins.origins("g:1a", [1]) == {1: "x"}
        assert await origins.origins("G:1", [1]) == {1: "y"}
