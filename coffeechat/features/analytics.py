"""Analytics: daily rollups an operator reads (docs/admin-console.md), counted incrementally.

Nothing is scanned to answer: the hooks (``message/stored``, ``device/online``,
``account/created``) count in memory, a dict increment each, and every ``flush_interval`` the node
adds its increments to the rollup tables in one write (upserts adding to counters), so several
nodes each add their own.  Days are UTC.  What is kept forever is one counter per (day, metric,
dimension) and per (day, group); which users were active on which day is kept for 60 days, so
that a user is counted once a day however many nodes and devices report them, and so that the
30-day MAU is exact: when a (user, day) row is new, the days whose 30-day window it is the
user's first activity in get +1, from the user's neighbouring active days (see ``_flush_txn``).

Online now and the nodes come from presence; storage used is sampled from the files feature
every ``storage_interval`` (its totals are a sum over users, too dear for every flush).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction, StorageUnavailable, StoreClosed
from coffeechat.model import Message, SessionType, User
from coffeechat.modules import HttpCall, HttpReply, ModuleAPI
from coffeechat.openapi import Query, array, boolean, integer, nullable, obj, string
from coffeechat.schema import pb

SECTION = "analytics"
DAY = 86400
MAU_DAYS = 30
EPOCH = date(1970, 1, 1)
#: days of per-user activity kept: a new (user, day) needs its neighbours 29 days either side
KEEP_ACTIVE_DAYS = 2 * MAU_DAYS
MAX_RANGE_DAYS = 1000
DATE_PATTERN = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
MAX_TOP_GROUPS = 100
#: users remembered as already counted today (beyond, they are sent again and deduplicated by the
#: database: more work, never a wrong count)
MAX_SEEN = 1_000_000
#: newly active users written per flush: each costs an insert, a lookup and up to 30 counter
#: updates in the writer's transaction, so a burst (every user reconnecting after a restart) is
#: written a slice at a time, BACKLOG_DELAY apart, rather than holding up the messages' commits
MAX_ACTIVE_PER_FLUSH = 2000
BACKLOG_DELAY = 1.0

ACTIVE = "active_users"
MAU = "mau"
NEW_USERS = "new_users"
MESSAGES = "messages"  # dim: the msg_type, as text
MESSAGES_SESSION = "messages_session"  # dim: "single" or "group"
STORAGE_BYTES = "storage_bytes"
STORAGE_FILES = "storage_files"
#: all-time totals kept of these (sums of a day's active users or MAU mean nothing)
TOTALLED = (MESSAGES, MESSAGES_SESSION, NEW_USERS)

_GROUP = int(SessionType.GROUP)
_SESSION_NAMES = {int(SessionType.SINGLE): "single", _GROUP: "group"}


def _type_name(name: str) -> str:
    return name.removeprefix("kCIM_MSG_TYPE_").lower().replace("notifacation", "notification")


#: msg_type -> the name its CSV column and chart series carry (from the schema's CIMMsgType)
MSG_TYPES: dict[int, str] = {int(v): _type_name(n) for n, v in pb.CIMMsgType.items()}


@dataclass
class Config:
    """[analytics]: how often a node writes what it counted, and samples storage used."""

    flush_interval: float = 60.0
    storage_interval: float = 3600.0

    def validate(self) -> None:
        if not 1 <= self.flush_interval <= 3600:
            raise ConfigError("analytics.flush_interval must be within 1..3600 seconds")
        if not 1 <= self.storage_interval <= 86400:
            raise ConfigError("analytics.storage_interval must be within 1..86400 seconds")


# -- days


def day_of(unix: float) -> int:
    """The UTC day number of a unix time."""
    return int(unix) // DAY


def iso_day(day: int) -> str:
    """A day number as ``YYYY-MM-DD``."""
    return (EPOCH + timedelta(days=day)).isoformat()


def parse_day(text: str) -> int:
    """``YYYY-MM-DD`` as a day number, or ChatError 9001."""
    try:
        when = date.fromisoformat(text) if len(text) == 10 and text.isascii() else None
    except ValueError:
        when = None
    if when is None or when < EPOCH:
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"{text[:20]!r} is not a date (YYYY-MM-DD, from 1970 on)")
    return (when - EPOCH).days


# -- storage


@dataclass(frozen=True, slots=True)
class Batch:
    """What one node counted since its last flush."""

    #: (day, metric, dim, increment)
    counts: tuple[tuple[int, str, str, int], ...] = ()
    #: (day, metric, dim, value): the latest sample replaces the day's
    gauges: tuple[tuple[int, str, str, int], ...] = ()
    #: (day, group_id, messages)
    groups: tuple[tuple[int, int, int], ...] = ()
    #: (user_id, day)
    active: tuple[tuple[int, int], ...] = ()
    #: activity rows of days before this are removed (and activity reported for them ignored)
    keep_from: int = 0

    def __bool__(self) -> bool:
        return bool(self.counts or self.gauges or self.groups or self.active)


class IAnalyticsStore(Interface):
    """The analytics feature's storage (a facet: an SQL backend gets :class:`SQLAnalyticsStore`;
    tested by ``coffeechat.testing.conformance_analytics.AnalyticsStoreConformanceTests``)."""

    def flush(batch: Batch):
        """Apply one node's :class:`Batch` in one transaction: add its counts to the days' and the
        all-time counters (of the ``TOTALLED`` metrics), set its gauges, add the groups'
        messages, and record its active users, each (user, day) once however often and by
        however many nodes it is reported, adding 1 to the day's ``active_users`` when new and
        to the ``mau`` of every day whose 30-day window had no other activity of that user.
        Activity before ``keep_from`` is ignored and removed.  Fire with the number of (user,
        day) newly recorded."""

    def daily(first_day: int, last_day: int):
        """Fire with ``[(day, metric, dim, value)]`` of those days, ordered by day, metric, dim."""

    def totals():
        """Fire with ``[(metric, dim, value)]``: the all-time counters and the latest gauges."""

    def top_groups(first_day: int, last_day: int, limit: int):
        """Fire with ``[(group_id, messages)]`` summed over those days, the most messages first
        (ties by group id)."""

    def first_day():
        """Fire with the first day that has a counter, or None."""


_ADD = (
    "INSERT INTO analytics_daily (day, metric, dim, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (day, metric, dim) DO UPDATE SET value = analytics_daily.value + excluded.value"
)
_SET = (
    "INSERT INTO analytics_daily (day, metric, dim, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (day, metric, dim) DO UPDATE SET value = excluded.value"
)
_ADD_TOTAL = (
    "INSERT INTO analytics_totals (metric, dim, value) VALUES (?, ?, ?) "
    "ON CONFLICT (metric, dim) DO UPDATE SET value = analytics_totals.value + excluded.value"
)
_SET_TOTAL = (
    "INSERT INTO analytics_totals (metric, dim, value) VALUES (?, ?, ?) "
    "ON CONFLICT (metric, dim) DO UPDATE SET value = excluded.value"
)
_ADD_GROUP = (
    "INSERT INTO analytics_group_daily (day, group_id, messages) VALUES (?, ?, ?) "
    "ON CONFLICT (day, group_id) DO UPDATE SET messages = analytics_group_daily.messages + excluded.messages"
)
_NEIGHBOURS = (
    "SELECT MAX(CASE WHEN day < ? THEN day END), MIN(CASE WHEN day > ? THEN day END) "
    "FROM analytics_active WHERE user_id = ? AND day >= ? AND day <= ?"
)


def _record_active(txn: ISQLTransaction, active: list[tuple[int, int]]) -> tuple[Counter, Counter]:
    """Insert the (user, day) rows; for each new one, the DAU and MAU increments it makes.

    A user active on day d counts in the MAU of days d .. d+29.  Those of them that an earlier
    active day p (the latest before d) already covers, up to p+29, and those that a later one n
    (the earliest after d, when nodes report out of order) covers from n on, had the user
    already: the new row adds max(d, p+30) .. min(d+29, n-1).  One user's rows are written one
    transaction at a time (PostgreSQL: per-user locks, taken in order), so every node's
    neighbours are current."""
    if txn.engine == "postgres":
        txn.lock_users(sorted({user_id for user_id, _ in active}))
    dau: Counter = Counter()
    mau: Counter = Counter()
    last = MAU_DAYS - 1
    for user_id, day in sorted(set(active)):
        added = txn.execute(
            "INSERT INTO analytics_active (user_id, day) VALUES (?, ?) ON CONFLICT (user_id, day) DO NOTHING "
            "RETURNING day",
            (user_id, day),
        ).fetchone()
        if added is None:
            continue
        dau[day] += 1
        before, after = txn.execute(_NEIGHBOURS, (day, day, user_id, day - last, day + last)).fetchone()
        first_new = day if before is None else max(day, int(before) + MAU_DAYS)
        last_new = day + last if after is None else min(day + last, int(after) - 1)
        for covered in range(first_new, last_new + 1):
            mau[covered] += 1
    return dau, mau


def _flush_txn(txn: ISQLTransaction, batch: Batch) -> int:
    counts = list(batch.counts)
    active = [(u, d) for u, d in batch.active if d >= batch.keep_from]
    new = 0
    if active:
        dau, mau = _record_active(txn, active)
        new = sum(dau.values())
        counts += [(d, ACTIVE, "", n) for d, n in sorted(dau.items())]
        counts += [(d, MAU, "", n) for d, n in sorted(mau.items())]
    if counts:
        txn.executemany(_ADD, counts)
        totals: Counter = Counter()
        for _, metric, dim, n in counts:
            if metric in TOTALLED:
                totals[(metric, dim)] += n
        if totals:
            txn.executemany(_ADD_TOTAL, [(m, d, n) for (m, d), n in sorted(totals.items())])
    if batch.gauges:
        txn.executemany(_SET, list(batch.gauges))
        latest = {(m, dim): (day, v) for day, m, dim, v in sorted(batch.gauges)}
        txn.executemany(_SET_TOTAL, [(m, dim, v) for (m, dim), (_, v) in sorted(latest.items())])
    if batch.groups:
        txn.executemany(_ADD_GROUP, list(batch.groups))
    txn.execute("DELETE FROM analytics_active WHERE day < ?", (batch.keep_from,))
    return new


def _daily_txn(txn: ISQLTransaction, first_day: int, last_day: int) -> list[tuple[int, str, str, int]]:
    rows = txn.execute(
        "SELECT day, metric, dim, value FROM analytics_daily WHERE day >= ? AND day <= ? ORDER BY day, metric, dim",
        (first_day, last_day),
    ).fetchall()
    return [(int(d), m, dim, int(v)) for d, m, dim, v in rows]


def _totals_txn(txn: ISQLTransaction) -> list[tuple[str, str, int]]:
    rows = txn.execute("SELECT metric, dim, value FROM analytics_totals ORDER BY metric, dim").fetchall()
    return [(m, d, int(v)) for m, d, v in rows]


def _top_groups_txn(txn: ISQLTransaction, first_day: int, last_day: int, limit: int) -> list[tuple[int, int]]:
    rows = txn.execute(
        "SELECT group_id, SUM(messages) AS n FROM analytics_group_daily WHERE day >= ? AND day <= ? "
        "GROUP BY group_id ORDER BY n DESC, group_id LIMIT ?",
        (first_day, last_day, limit),
    ).fetchall()
    return [(int(g), int(n)) for g, n in rows]


def _first_day_txn(txn: ISQLTransaction) -> int | None:
    row = txn.execute("SELECT MIN(day) FROM analytics_daily").fetchone()
    return None if row is None or row[0] is None else int(row[0])


@implementer(IAnalyticsStore)
class SQLAnalyticsStore:
    """IAnalyticsStore written once for every SQL backend (its tables: analytics.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def flush(self, batch: Batch) -> defer.Deferred:
        return self.db.run_write("analytics_flush", _flush_txn, batch)

    def daily(self, first_day: int, last_day: int) -> defer.Deferred:
        return self.db.run_read("analytics_daily", _daily_txn, int(first_day), int(last_day))

    def totals(self) -> defer.Deferred:
        return self.db.run_read("analytics_totals", _totals_txn)

    def top_groups(self, first_day: int, last_day: int, limit: int) -> defer.Deferred:
        return self.db.run_read("analytics_top_groups", _top_groups_txn, int(first_day), int(last_day), int(limit))

    def first_day(self) -> defer.Deferred:
        return self.db.run_read("analytics_first_day", _first_day_txn)


# -- what the API answers


def _empty_day(day: int) -> dict[str, Any]:
    return {
        "day": iso_day(day),
        ACTIVE: 0,
        MAU: 0,
        NEW_USERS: 0,
        MESSAGES: 0,
        "messages_single": 0,
        "messages_group": 0,
        "messages_by_type": {},
        STORAGE_BYTES: None,  # no sample that day
        STORAGE_FILES: None,
    }


def days_from_rows(rows: list[tuple[int, str, str, int]], first_day: int, last_day: int) -> list[dict[str, Any]]:
    """One dict per day of the range (days without counters are zeros), from ``daily`` rows."""
    days = {d: _empty_day(d) for d in range(first_day, last_day + 1)}
    for day, metric, dim, value in rows:
        entry = days.get(day)
        if entry is None:
            continue
        if metric == MESSAGES:
            name = MSG_TYPES.get(int(dim), f"type_{dim}") if dim.isdigit() else f"type_{dim}"
            entry["messages_by_type"][name] = entry["messages_by_type"].get(name, 0) + value
            entry[MESSAGES] += value
        elif metric == MESSAGES_SESSION:
            entry[f"messages_{dim}"] = value
        elif metric in (ACTIVE, MAU, NEW_USERS, STORAGE_BYTES, STORAGE_FILES):
            entry[metric] = value
    return [days[d] for d in range(first_day, last_day + 1)]


def csv_columns(days: list[dict[str, Any]]) -> list[str]:
    """The CSV header: fixed columns, one per message type of the schema, then any other type."""
    known = [f"messages_{name}" for name in MSG_TYPES.values()]
    other = sorted(
        {f"messages_{n}" for d in days for n in d["messages_by_type"]} - set(known),
        key=lambda c: (len(c), c),
    )
    return [
        "day",
        ACTIVE,
        MAU,
        NEW_USERS,
        MESSAGES,
        "messages_single",
        "messages_group",
        *known,
        *other,
        STORAGE_BYTES,
        STORAGE_FILES,
    ]


def daily_csv(days: list[dict[str, Any]]) -> str:
    """The days as CSV (docs/admin-console.md lists the columns); no sample of storage: empty cell."""
    columns = csv_columns(days)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for d in days:
        flat = {**d, **{f"messages_{n}": v for n, v in d["messages_by_type"].items()}}
        writer.writerow(["" if (value := flat.get(c, 0)) is None else value for c in columns])
    return out.getvalue()


# -- the service


class Analytics:
    """Counts in memory through the hooks, flushes to the rollups, answers the admin API."""

    def __init__(self, api: ModuleAPI, store: IAnalyticsStore, config: Config, files: Any = None) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.files = files
        self.clock = api.clock
        self.log = api.log
        #: (day, msg_type, session_type) -> messages
        self._messages: dict[tuple[int, int, int], int] = {}
        #: (day, group_id) -> messages
        self._groups: dict[tuple[int, int], int] = {}
        #: (day, metric, dim) -> increment
        self._counts: dict[tuple[int, str, str], int] = {}
        #: (day, metric, dim) -> the latest sample
        self._gauges: dict[tuple[int, str, str], int] = {}
        #: (user_id, day) not yet written
        self._active: set[tuple[int, int]] = set()
        self._seen: set[int] = set()
        self._seen_day = -1
        self._waiting: list[defer.Deferred] = []
        self._busy = False
        self._backlog_call: Any = None
        self.max_active_per_flush = MAX_ACTIVE_PER_FLUSH
        self.flushes = 0

    def today(self) -> int:
        return day_of(self.clock.seconds())

    # -- counting (hooks: cheap, no storage)

    def message_stored(self, message: Message, sender: Any = None, device: Any = None) -> None:
        day = int(self.clock.seconds()) // DAY
        key = (day, message.msg_type, message.session_type)
        self._messages[key] = self._messages.get(key, 0) + 1
        if message.session_type == _GROUP:
            group = (day, message.to_id)
            self._groups[group] = self._groups.get(group, 0) + 1
        self._saw(message.sender_id, day)

    def device_online(self, session: Any) -> None:
        self._saw(session.user_id, self.today())

    def account_created(self, user: User) -> None:
        key = (self.today(), NEW_USERS, "")
        self._counts[key] = self._counts.get(key, 0) + 1

    def _saw(self, user_id: int, day: int) -> None:
        if day != self._seen_day:
            self._seen = set()
            self._seen_day = day
        if user_id not in self._seen:
            if len(self._seen) < MAX_SEEN:
                self._seen.add(user_id)
            self._active.add((user_id, day))

    async def sample_storage(self) -> None:
        """Storage used and files, from the files feature's totals, as today's gauges."""
        if self.files is None:
            return
        _, (used, count) = await self.files.store.top_usage(1)
        day = self.today()
        self._gauges[(day, STORAGE_BYTES, "")] = int(used)
        self._gauges[(day, STORAGE_FILES, "")] = int(count)

    # -- flushing

    def _take(self) -> Batch:
        counts = Counter(self._counts)
        for (day, msg_type, session_type), n in self._messages.items():
            counts[(day, MESSAGES, str(msg_type))] += n
            counts[(day, MESSAGES_SESSION, _SESSION_NAMES.get(session_type, str(session_type)))] += n
        active = sorted(self._active)
        batch = Batch(
            counts=tuple((d, m, dim, n) for (d, m, dim), n in sorted(counts.items())),
            gauges=tuple((d, m, dim, v) for (d, m, dim), v in sorted(self._gauges.items())),
            groups=tuple((d, g, n) for (d, g), n in sorted(self._groups.items())),
            active=tuple(active[: self.max_active_per_flush]),
            keep_from=self.today() - KEEP_ACTIVE_DAYS,
        )
        self._messages, self._groups, self._counts, self._gauges = {}, {}, {}, {}
        self._active = set(active[self.max_active_per_flush :])
        return batch

    def _put_back(self, batch: Batch) -> None:
        for day, metric, dim, n in batch.counts:
            key = (day, metric, dim)
            self._counts[key] = self._counts.get(key, 0) + n
        for day, metric, dim, value in batch.gauges:
            self._gauges.setdefault((day, metric, dim), value)
        for day, group_id, n in batch.groups:
            self._groups[(day, group_id)] = self._groups.get((day, group_id), 0) + n
        self._active.update(batch.active)

    def flush(self) -> defer.Deferred:
        """Write what was counted, in one write; fire with the (user, day) rows it added.  At most
        one runs at a time: a flush asked for meanwhile runs after it, with what was counted
        since.  What could not be written is kept for the next one."""
        d: defer.Deferred = defer.Deferred()
        self._waiting.append(d)
        if not self._busy:
            self._run()
        return d

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, []
        batch = self._take()
        if not batch:
            for d in waiting:
                d.callback(0)
            return
        self._busy = True

        def failed(failure: Any) -> int:
            self._put_back(batch)
            if not failure.check(StorageUnavailable, StoreClosed):  # logged once per outage, by the store
                self.log.failure("analytics: flush failed (kept for the next)", failure)
            return 0

        def finished(new: int) -> None:
            self._busy = False
            self.flushes += 1
            for d in waiting:
                d.callback(new)
            if self._waiting and not self._busy:
                self._run()
            elif self._active and self._backlog_call is None:  # the rest of a burst, soon
                self._backlog_call = self.clock.callLater(BACKLOG_DELAY, self._backlog)

        self.store.flush(batch).addErrback(failed).addCallback(finished)

    def _backlog(self) -> None:
        self._backlog_call = None
        self.flush()

    async def flush_all(self) -> None:
        """At shutdown: write everything, a burst's backlog included (as many flushes as its
        slices, and no more: a flush that fails keeps its counts, and the node stops anyway)."""
        if self._backlog_call is not None and self._backlog_call.active():
            self._backlog_call.cancel()
        self._backlog_call = None
        for _ in range(len(self._active) // max(1, self.max_active_per_flush) + 1):
            await self.flush()
            if not self._active:
                break
        if self._backlog_call is not None and self._backlog_call.active():
            self._backlog_call.cancel()
        self._backlog_call = None

    # -- reading (after this node's own flush, so that one node's figures are current)

    async def summary(self) -> dict[str, Any]:
        await self.flush()
        today = self.today()
        days = days_from_rows(await self.store.daily(today, today), today, today)[0]
        totals = await self.store.totals()
        first = await self.store.first_day()
        try:
            online: int | None = int(await self.api.presence.online_count())
        except Exception:  # a shared presence that is unreachable: the rest still answers
            self.log.failure("analytics: online count unavailable")
            online = None
        by_type: dict[str, int] = {}
        total: dict[str, int] = {}
        for metric, dim, value in totals:
            if metric == MESSAGES:
                name = MSG_TYPES.get(int(dim), f"type_{dim}") if dim.isdigit() else f"type_{dim}"
                by_type[name] = by_type.get(name, 0) + value
            elif metric == MESSAGES_SESSION:
                total[f"messages_{dim}"] = value
            else:
                total[metric] = value
        return {
            "day": days["day"],
            "online_users": online,
            "node_online_users": self.api.router.user_count,
            "node_devices": self.api.router.device_count,
            "dau": days[ACTIVE],
            "mau": days[MAU],
            "today": days,
            "totals": {
                "since": iso_day(first) if first is not None else None,
                MESSAGES: sum(by_type.values()),
                "messages_single": total.get("messages_single", 0),
                "messages_group": total.get("messages_group", 0),
                "messages_by_type": by_type,
                NEW_USERS: total.get(NEW_USERS, 0),
                STORAGE_BYTES: total.get(STORAGE_BYTES),
                STORAGE_FILES: total.get(STORAGE_FILES),
            },
            "flush_interval": self.config.flush_interval,
        }

    def range_of(self, call: HttpCall) -> tuple[int, int]:
        """The ``from``/``to`` of a request (default: the last 30 days up to today)."""
        today = self.today()
        last = parse_day(call.query["to"][-1]) if "to" in call.query else today
        first = parse_day(call.query["from"][-1]) if "from" in call.query else max(0, last - MAU_DAYS + 1)
        if first > last:
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "from must not be after to")
        if last - first + 1 > MAX_RANGE_DAYS:
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"at most {MAX_RANGE_DAYS} days at a time")
        return first, last

    async def daily(self, first_day: int, last_day: int, flush: bool = True) -> list[dict[str, Any]]:
        if flush:
            await self.flush()
        return days_from_rows(await self.store.daily(first_day, last_day), first_day, last_day)

    async def top_groups(self, first_day: int, last_day: int, limit: int) -> list[dict[str, Any]]:
        await self.flush()
        rows = await self.store.top_groups(first_day, last_day, limit)
        found = await defer.gatherResults(
            [defer.maybeDeferred(self.api.store.group_by_id, g) for g, _ in rows], consumeErrors=True
        )
        return [
            {"group_id": g, "messages": n, "name": group.name if group is not None else ""}
            for (g, n), group in zip(rows, found, strict=True)
        ]

    async def nodes(self) -> dict[str, Any]:
        infos = await self.api.presence.nodes()
        health = getattr(self.api.store, "health", None)
        return {
            "node": self.api.node_name,
            "storage": "down" if health is not None and health.down else "ok",
            "nodes": [
                {
                    "name": i.name,
                    "alive": bool(i.alive),
                    "online_users": int(i.online_users),
                    "devices": int(i.devices),
                    "started_at": int(i.started_at),
                    "lease_left": None if i.lease_left == float("inf") else round(float(i.lease_left), 1),
                    "this": i.name == self.api.node_name,
                }
                for i in infos
            ],
        }


#: the query of the routes that read a range of days
RANGE_QUERY = (
    Query("from", string(10, 10, pattern=DATE_PATTERN), "first day, YYYY-MM-DD (UTC); default: 29 days before to"),
    Query("to", string(10, 10, pattern=DATE_PATTERN), "last day, YYYY-MM-DD (UTC); default: today"),
)
_COUNT = integer(0)
_DAY_ROW = obj(
    ["day", ACTIVE, MAU, NEW_USERS, MESSAGES, "messages_by_type"],
    day=string(10, 10),
    active_users=_COUNT,
    mau=_COUNT,
    new_users=_COUNT,
    messages=_COUNT,
    messages_single=_COUNT,
    messages_group=_COUNT,
    messages_by_type={"type": "object", "additionalProperties": _COUNT},
    storage_bytes=nullable(_COUNT),
    storage_files=nullable(_COUNT),
)


def setup(api: ModuleAPI) -> Analytics:
    """The counting hooks, the periodic flush and storage sample, and the /admin/stats routes."""
    config: Config = api.config
    files = api.depends("files") if "files" in api.node_config.features.enabled else None
    analytics = Analytics(api, api.open_store(IAnalyticsStore, SQLAnalyticsStore), config, files)
    api.hook("message/stored", analytics.message_stored)
    api.hook("device/online", analytics.device_online)
    api.hook("account/created", analytics.account_created)
    api.periodic(config.flush_interval, analytics.flush)
    if files is not None:
        api.periodic(config.storage_interval, lambda: defer.ensureDeferred(analytics.sample_storage()), now=True)
    api.on_stop(lambda: defer.ensureDeferred(analytics.flush_all()))

    def route(method: str, path: str, handler: Any, **kwargs: Any) -> None:
        api.route(method, path, handler, auth="admin", **kwargs)

    async def summary(call: HttpCall) -> dict[str, Any]:
        """Online now, today's DAU and MAU, today's figures and the all-time totals."""
        return await analytics.summary()

    async def daily(call: HttpCall) -> dict[str, Any]:
        """One row per day (UTC) of a range: DAU, MAU, new users, messages by type, storage used."""
        first, last = analytics.range_of(call)
        return {"from": iso_day(first), "to": iso_day(last), "days": await analytics.daily(first, last)}

    async def daily_csv_route(call: HttpCall) -> HttpReply:
        """The same days as CSV, one row per day (docs/admin-console.md lists the columns)."""
        first, last = analytics.range_of(call)
        body = daily_csv(await analytics.daily(first, last)).encode()
        name = f"coffeechat-stats-{iso_day(first)}-{iso_day(last)}.csv"
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        }
        return HttpReply(200, headers, body)

    async def top_groups(call: HttpCall) -> dict[str, Any]:
        """The groups with the most messages over a range of days (or one day: ?day=)."""
        if "day" in call.query:
            if "from" in call.query or "to" in call.query:
                raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "give day, or from and to, not both")
            first = last = parse_day(call.query["day"][-1])
        else:
            first, last = analytics.range_of(call)
        limit = call.query_int("limit", 10, 1)
        if limit > MAX_TOP_GROUPS:
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"limit must be at most {MAX_TOP_GROUPS}")
        return {"from": iso_day(first), "to": iso_day(last), "groups": await analytics.top_groups(first, last, limit)}

    async def nodes(call: HttpCall) -> dict[str, Any]:
        """Every node, alive or not, with its online users and devices; this node's storage."""
        return {"checked_at": int(api.clock.seconds()), **await analytics.nodes()}

    totals = obj(
        ["messages", "new_users"],
        since=nullable(string(10, 10)),
        messages=_COUNT,
        messages_single=_COUNT,
        messages_group=_COUNT,
        messages_by_type={"type": "object", "additionalProperties": _COUNT},
        new_users=_COUNT,
        storage_bytes=nullable(_COUNT),
        storage_files=nullable(_COUNT),
    )
    route(
        "GET",
        "/admin/stats/summary",
        summary,
        response=obj(
            ["day", "online_users", "dau", "mau", "today", "totals"],
            day=string(10, 10),
            online_users=nullable(_COUNT),
            node_online_users=_COUNT,
            node_devices=_COUNT,
            dau=_COUNT,
            mau=_COUNT,
            today=_DAY_ROW,
            totals=totals,
            flush_interval={"type": "number"},
        ),
    )
    days = obj(["from", "to", "days"], to=string(10, 10), days=array(_DAY_ROW), **{"from": string(10, 10)})
    route("GET", "/admin/stats/daily", daily, query=RANGE_QUERY, response=days)
    route("GET", "/admin/stats/daily.csv", daily_csv_route, query=RANGE_QUERY, produces="text/csv")
    group = obj(["group_id", "messages", "name"], group_id=integer(1), messages=_COUNT, name=string())
    route(
        "GET",
        "/admin/stats/top-groups",
        top_groups,
        query=(
            *RANGE_QUERY,
            Query("day", string(10, 10, pattern=DATE_PATTERN), "one day instead of from/to"),
            Query("limit", integer(1, MAX_TOP_GROUPS), f"how many (default 10, at most {MAX_TOP_GROUPS})"),
        ),
        response=obj(["from", "to", "groups"], to=string(10, 10), groups=array(group), **{"from": string(10, 10)}),
    )
    node = obj(
        ["name", "alive", "online_users", "devices"],
        name=string(),
        alive=boolean(),
        online_users=_COUNT,
        devices=_COUNT,
        started_at=integer(),
        lease_left=nullable({"type": "number"}),
        this=boolean(),
    )
    route(
        "GET",
        "/admin/stats/nodes",
        nodes,
        response=obj(
            ["node", "storage", "nodes"],
            checked_at=integer(),
            node=string(),
            storage=string(),
            nodes=array(node),
        ),
    )
    return analytics
