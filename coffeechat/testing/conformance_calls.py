"""Conformance tests of the calls feature's storage facet (:class:`~coffeechat.features.calls.ICallStore`):
the claims that keep a user in one call at a time across nodes, for any backend.

Subclass as ``Test<Something>`` and implement ``make_store(tmp_path)`` as for
:class:`coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.testing.conformance import open_facet


class CallStoreConformanceTests:
    """Claims: taken where free or expired, idempotent per call, released, refreshed, forgotten."""

    def make_store(self, tmp_path: Any) -> Any:
        raise NotImplementedError("subclasses of CallStoreConformanceTests implement make_store")

    @pytest.fixture
    def facet(self, tmp_path: Any) -> Any:
        from coffeechat.features.calls import ICallStore, SQLCallStore

        store, facet = open_facet(self, tmp_path, "calls", ICallStore, SQLCallStore)
        yield facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_claims_make_users_busy_until_released_or_expired(self, facet):
        from coffeechat.features.calls import CallRefused

        assert await facet.claim(1, [2, 3], "a", "tok-a", "n1", 100, 190) == []
        assert await facet.claim(1, [2, 3], "a", "tok-a", "n1", 100, 190) == []  # replayed: still ours
        assert await facet.claim(4, [2, 5], "b", "tok-b", "n2", 150, 240) == [2]  # 2 is busy, 5 is not
        with pytest.raises(CallRefused) as refused:
            await facet.claim(3, [6], "c", "tok-c", "n2", 150, 240)  # the caller is in call a
        assert refused.value.code == ErrorCode.ALREADY_IN_CALL
        assert await facet.claim(6, [7], "d", "tok-d", "n2", 150, 240) == []  # 6 was not claimed by c
        await facet.release([2], "tok-b")  # not b's: nothing changes
        assert await facet.claim(8, [2], "e", "tok-e", "n2", 150, 240) == [2]
        await facet.release([2], "tok-a")
        assert await facet.claim(8, [2], "e", "tok-e", "n2", 150, 240) == []
        assert await facet.claim(9, [3], "f", "tok-f", "n2", 191, 280) == []  # a's claim of 3 expired at 190

    @pytest_twisted.ensureDeferred
    async def test_refresh_extends_live_calls_and_a_starting_node_forgets_its_claims(self, facet):
        assert await facet.claim(1, [2], "a", "tok-a", "n1", 100, 190) == []
        assert await facet.claim(3, [4], "b", "tok-b", "n1", 100, 190) == []
        await facet.refresh("n1", ["tok-a"], 400)
        assert await facet.claim(5, [2, 4], "c", "tok-c", "n2", 300, 390) == [2]  # b's claims ran out
        await facet.forget_node("n1")
        assert await facet.claim(6, [1], "d", "tok-d", "n2", 300, 390) == []
