"""Conformance tests for the analytics feature's storage facet
(:class:`~coffeechat.features.analytics.IAnalyticsStore`), for any backend.

Subclass :class:`AnalyticsStoreConformanceTests` as ``Test<Something>`` and implement
``make_store(tmp_path)`` as for :class:`~coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.testing.conformance import open_facet

__all__ = ["AnalyticsStoreConformanceTests"]

D0 = 20_000  # a day number (2024-10-04)


def _by_key(rows: list[tuple[int, str, str, int]]) -> dict[tuple[int, str, str], int]:
    return {(d, m, dim): v for d, m, dim, v in rows}


class AnalyticsStoreConformanceTests:
    """What every IAnalyticsStore must do."""

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of AnalyticsStoreConformanceTests implement make_store")

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        from coffeechat.features.analytics import IAnalyticsStore, SQLAnalyticsStore

        store, facet = open_facet(self, tmp_path, "analytics", IAnalyticsStore, SQLAnalyticsStore)
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    @pytest_twisted.ensureDeferred
    async def test_counts_add_up_and_totals_follow(self, stores):
        from coffeechat.features.analytics import Batch

        _, facet = stores
        assert await facet.first_day() is None
        assert await facet.daily(D0, D0 + 5) == [] and await facet.totals() == []
        await facet.flush(Batch(counts=((D0, "messages", "1", 3), (D0, "new_users", "", 2))))
        await facet.flush(Batch(counts=((D0, "messages", "1", 4), (D0 + 1, "messages", "3", 1))))
        rows = _by_key(await facet.daily(D0, D0 + 1))
        assert rows == {(D0, "messages", "1"): 7, (D0, "new_users", ""): 2, (D0 + 1, "messages", "3"): 1}
        assert await facet.daily(D0 + 1, D0 + 1) == [(D0 + 1, "messages", "3", 1)]
        assert await facet.totals() == [("messages", "1", 7), ("messages", "3", 1), ("new_users", "", 2)]
        assert await facet.first_day() == D0

    @pytest_twisted.ensureDeferred
    async def test_gauges_replace_and_the_latest_is_the_total(self, stores):
        from coffeechat.features.analytics import Batch

        _, facet = stores
        await facet.flush(Batch(gauges=((D0, "storage_bytes", "", 100),)))
        await facet.flush(Batch(gauges=((D0, "storage_bytes", "", 150), (D0 + 1, "storage_bytes", "", 90))))
        assert _by_key(await facet.daily(D0, D0 + 1)) == {
            (D0, "storage_bytes", ""): 150,
            (D0 + 1, "storage_bytes", ""): 90,
        }
        assert await facet.totals() == [("storage_bytes", "", 90)]

    @pytest_twisted.ensureDeferred
    async def test_top_groups_over_a_range(self, stores):
        from coffeechat.features.analytics import Batch

        _, facet = stores
        await facet.flush(Batch(groups=((D0, 5, 10), (D0, 6, 3), (D0 + 1, 6, 9), (D0 + 1, 7, 1))))
        await facet.flush(Batch(groups=((D0 + 1, 7, 2),)))
        assert await facet.top_groups(D0, D0, 10) == [(5, 10), (6, 3)]
        assert await facet.top_groups(D0, D0 + 1, 10) == [(6, 12), (5, 10), (7, 3)]
        assert await facet.top_groups(D0, D0 + 1, 1) == [(6, 12)]
        assert await facet.top_groups(D0 + 2, D0 + 9, 5) == []

    @pytest_twisted.ensureDeferred
    async def test_a_user_is_counted_once_a_day_whoever_reports_it(self, stores):
        from coffeechat.features.analytics import Batch

        _, facet = stores
        # two nodes report user 1 the same day; one reports user 2 twice in a batch
        assert await facet.flush(Batch(active=((1, D0), (2, D0), (2, D0)))) == 2
        assert await facet.flush(Batch(active=((1, D0), (3, D0 + 1)))) == 1
        rows = _by_key(await facet.daily(D0, D0 + 1))
        assert rows[(D0, "active_users", "")] == 2 and rows[(D0 + 1, "active_users", "")] == 1
        assert rows[(D0, "mau", "")] == 2 and rows[(D0 + 1, "mau", "")] == 3

    @pytest_twisted.ensureDeferred
    async def test_mau_is_exact_even_when_days_arrive_out_of_order(self, stores):
        """MAU of day d = users active on some day of d-29 .. d, compared with a brute count."""
        from coffeechat.features.analytics import MAU_DAYS, Batch

        _, facet = stores
        rng = random.Random(14)
        activity = [(rng.randrange(1, 8), D0 + rng.randrange(0, 70)) for _ in range(60)]
        # reported in shuffled batches, each day seen by several "nodes"
        rng.shuffle(activity)
        for start in range(0, len(activity), 7):
            await facet.flush(Batch(active=tuple(activity[start : start + 7]), keep_from=D0 - 100))
        rows = _by_key(await facet.daily(D0, D0 + 70 + MAU_DAYS))
        for day in range(D0, D0 + 70 + MAU_DAYS):
            expected = len({u for u, d in activity if day - MAU_DAYS < d <= day})
            assert rows.get((day, "mau", ""), 0) == expected, day
            assert rows.get((day, "active_users", ""), 0) == len({u for u, d in activity if d == day}), day

    @pytest_twisted.ensureDeferred
    async def test_old_activity_is_dropped_and_ignored(self, stores):
        from coffeechat.features.analytics import Batch

        _, facet = stores
        await facet.flush(Batch(active=((1, D0), (2, D0 + 5))))
        # later: keep from D0 + 1 on; a late report of D0 itself is ignored
        assert await facet.flush(Batch(active=((3, D0),), keep_from=D0 + 1)) == 0
        rows = _by_key(await facet.daily(D0, D0))
        assert rows[(D0, "active_users", "")] == 1  # the rollup of D0 stays, forever

    @pytest_twisted.ensureDeferred
    async def test_a_second_rollup_adds_only_the_new_day(self, stores):
        from coffeechat.features.analytics import Batch

        _, facet = stores
        first = Batch(
            counts=((D0, "messages", "1", 5), (D0, "messages_session", "single", 5)),
            groups=((D0, 9, 2),),
            active=((1, D0), (2, D0)),
        )
        await facet.flush(first)
        before = await facet.daily(D0, D0)
        totals = dict(((m, d), v) for m, d, v in await facet.totals())
        await facet.flush(
            Batch(counts=((D0 + 1, "messages", "1", 2),), groups=((D0 + 1, 9, 1),), active=((1, D0 + 1),))
        )
        assert await facet.daily(D0, D0) == before  # the first day's rows are as they were
        new = _by_key(await facet.daily(D0 + 1, D0 + 1))
        # user 1 was already in the 30-day window: the new day's MAU came from the first day's rows
        assert new == {(D0 + 1, "messages", "1"): 2, (D0 + 1, "active_users", ""): 1, (D0 + 1, "mau", ""): 2}
        after = dict(((m, d), v) for m, d, v in await facet.totals())
        assert after[("messages", "1")] == totals[("messages", "1")] + 2
        assert await facet.top_groups(D0 + 1, D0 + 1, 5) == [(9, 1)]
