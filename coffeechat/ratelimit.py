"""Rate limits on the injected clock: token buckets, budgets of failed logins that are reserved
before the work they pay for, per-user budgets shared by a user's connections, and a fair queue
for CPU-heavy jobs (the password KDF).

Every structure here is bounded in memory: keys that carry no state worth keeping (a full
bucket, a past window) are dropped, and a table that is full refuses new keys rather than grow.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from coffeechat.errors import ChatError, ErrorCode


class TokenBucket:
    """Allows ``rate`` events per second on average and ``burst`` at once."""

    __slots__ = ("_clock", "rate", "burst", "_tokens", "_stamp")

    def __init__(self, clock: IReactorTime, rate: float, burst: float) -> None:
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = clock.seconds()

    def _refill(self) -> float:
        now = self._clock.seconds()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return tokens

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty (the event should be refused)."""
        tokens = self._refill()
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True

    def refund(self) -> None:
        """Give back one token (an event that was counted but did not happen after all)."""
        self._tokens = min(self.burst, self._tokens + 1.0)

    def wait(self) -> float:
        """Seconds until the next token (0 when one is there now): a Retry-After."""
        tokens = self._refill()
        self._tokens = tokens
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def full(self) -> bool:
        """Whether the bucket has refilled completely (it holds nothing worth keeping)."""
        return self._tokens + (self._clock.seconds() - self._stamp) * self.rate >= self.burst


def address_key(host: str) -> str:
    """The key a client address is limited by: an IPv4 address, or the /64 of an IPv6 one (one
    subscriber commonly holds a whole /64, so single IPv6 addresses would cost nothing to vary)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def peer_address(peer: str) -> str:
    """:func:`address_key` of a session's peer text: ``host:port``, ``[v6]:port`` or the
    WebSocket's ``tcp4:host:port`` / ``tcp6:host:port``."""
    if peer.startswith(("tcp4:", "tcp6:")):
        peer = peer[5:]
    host, sep, port = peer.rpartition(":")
    if not sep or not port.isdigit():
        host = peer
    return address_key(host)


class KeyedBuckets:
    """A :class:`TokenBucket` per key (an address), made on first use; full buckets are dropped
    when the table grows, and a table full of busy keys refuses new ones."""

    def __init__(self, clock: IReactorTime, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str) -> float:
        """Spend one of ``key``'s tokens: 0 when allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full()}
                if len(self._buckets) >= self.max_keys:
                    return 1.0
            bucket = self._buckets[key] = TokenBucket(self.clock, self.rate, self.burst)
        if bucket.take():
            return 0.0
        return max(bucket.wait(), 0.001)

    def refund(self, key: str) -> None:
        """Give back the token :meth:`take` spent for ``key`` (the event did not happen)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.refund()

    def __len__(self) -> int:
        return len(self._buckets)


class LoginThrottle:
    """Failed password logins per minute, counted *before* the KDF runs.

    Each attempt reserves one unit of three budgets at once -- its (name, address) pair, its
    address, and its name across all addresses -- and gives them back when the password was
    right (:meth:`release`).  So concurrent attempts are counted as they arrive, not when their
    hashes finish, and the budget bounds how many guesses are evaluated.

    The per-name budget is what stops many addresses guessing one name.  When it runs out it
    refuses only the addresses that already failed for that name in the window: an attacker
    cannot lock the owner out, who logs in from an address that has not failed (docs/decisions.md,
    Issue 11: logins).
    """

    def __init__(
        self,
        clock: IReactorTime,
        per_name_address: int,
        per_address: int,
        per_name: int,
        window: float = 60.0,
        max_keys: int = 100_000,
    ) -> None:
        self.clock = clock
        self.per_name_address = per_name_address
        self.per_address = per_address
        self.per_name = per_name
        self.window = window
        self.max_keys = max_keys
        self._window_no = -1
        self._counts: dict[tuple[str, ...], int] = {}

    def _current(self) -> int:
        number = int(self.clock.seconds() // self.window)
        if number != self._window_no:
            self._window_no = number
            self._counts = {}
        return number

    def retry_after(self) -> float:
        """Seconds until the window ends and the budgets are full again."""
        return self.window - self.clock.seconds() % self.window

    def reserve(self, name_key: str, address: str) -> tuple[int, tuple[tuple[str, ...], ...]]:
        """Count one attempt of ``name_key`` from ``address`` now; ChatError RATE_LIMITED when a
        budget is spent.  Returns the reservation to :meth:`release` on success."""
        window = self._current()
        counts = self._counts
        pair, addr, name = ("p", name_key, address), ("a", address), ("n", name_key)
        failed_here = counts.get(pair, 0)
        if failed_here >= self.per_name_address:
            raise self._refused("too many failed logins for this name; try again in a minute")
        if counts.get(addr, 0) >= self.per_address:
            raise self._refused("too many failed logins from this address; try again in a minute")
        if failed_here and counts.get(name, 0) >= self.per_name:
            raise self._refused("too many failed logins for this name; try again in a minute")
        keys = (pair, addr, name)
        if len(counts) + 3 > self.max_keys and any(k not in counts for k in keys):
            raise self._refused("the server is busy; try again in a minute")
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        return window, keys

    def release(self, reservation: tuple[int, tuple[tuple[str, ...], ...]]) -> None:
        """Give back a reservation: the attempt succeeded, or was never evaluated."""
        window, keys = reservation
        if window != self._current():
            return
        counts = self._counts
        for key in keys:
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

    def _refused(self, message: str) -> ChatError:
        return RateLimited(message, self.retry_after())


class RateLimited(ChatError):
    """ChatError RATE_LIMITED that says when to try again (HTTP answers it 429 with Retry-After)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.retry_after = retry_after


class UserBudget:
    """The message and request budgets of one user on this node, shared by all their
    connections here (``refs`` of them).  In a cluster the user's budget is split between the
    nodes holding their devices (:meth:`share`), so the user gets one budget wherever they are."""

    __slots__ = ("messages", "requests", "refs", "nodes", "refresh_at", "_limits")

    def __init__(self, clock: IReactorTime, limits: Any) -> None:
        self._limits = limits
        self.messages = TokenBucket(clock, limits.user_messages_per_second, limits.user_message_burst)
        self.requests = TokenBucket(clock, limits.user_requests_per_second, limits.user_request_burst)
        self.refs = 0
        self.nodes = 1
        self.refresh_at = float("inf")  # when the split is due to be checked again (clusters only)

    def share(self, nodes: int) -> None:
        """Keep ``1/nodes`` of the user's budget here (the user has devices on ``nodes`` nodes)."""
        nodes = max(1, nodes)
        if nodes == self.nodes:
            return
        self.nodes = nodes
        limits = self._limits
        for bucket, rate, burst in (
            (self.messages, limits.user_messages_per_second, limits.user_message_burst),
            (self.requests, limits.user_requests_per_second, limits.user_request_burst),
        ):
            bucket.rate = rate / nodes
            bucket.burst = max(1.0, burst / nodes)
            bucket._tokens = min(bucket._tokens, bucket.burst)

    def stale(self) -> bool:
        """Whether the split between nodes should be checked again (read off the last take)."""
        return self.messages._stamp >= self.refresh_at or self.requests._stamp >= self.refresh_at


class UserBudgets:
    """Per-user budgets, node-local: a user's devices on this node draw from one bucket, so ten
    devices get no more than one user's budget.  A budget outlives its last connection until it
    has refilled, so reconnecting does not refill it."""

    #: seconds between two checks of where a user's devices are (clusters only)
    SHARE_REFRESH = 10.0

    def __init__(self, clock: IReactorTime, limits: Any, presence: Any = None) -> None:
        self.clock = clock
        self.limits = limits
        #: an IPresence of a cluster: budgets are split between the nodes of a user's devices
        self.presence = presence
        self._budgets: dict[int, UserBudget] = {}
        self._idle = 0

    def acquire(self, user_id: int) -> UserBudget:
        budget = self._budgets.get(user_id)
        if budget is None:
            if self._idle > 1024 and self._idle * 2 > len(self._budgets):
                self._prune()
            budget = self._budgets[user_id] = UserBudget(self.clock, self.limits)
        elif budget.refs == 0:
            self._idle -= 1
        budget.refs += 1
        if self.presence is not None:
            self.refresh(user_id, budget)
        return budget

    def refresh(self, user_id: int, budget: UserBudget) -> None:
        """Split ``budget`` by the nodes the user has devices on now (one presence lookup; at
        login and then at most every SHARE_REFRESH seconds while the user is active)."""
        budget.refresh_at = self.clock.seconds() + self.SHARE_REFRESH
        here = self.presence.node

        def located(devices: list) -> None:
            budget.share(len({node for node, _, _ in devices} | {here}))

        # Presence down: keep the split as it is (the outage is logged where presence is used).
        self.presence.devices_of(user_id).addCallbacks(located, lambda f: None)

    def release(self, user_id: int) -> None:
        budget = self._budgets.get(user_id)
        if budget is None or budget.refs <= 0:
            return
        budget.refs -= 1
        if budget.refs == 0:
            if budget.messages.full() and budget.requests.full():
                del self._budgets[user_id]
            else:
                self._idle += 1

    def _prune(self) -> None:
        keep = {}
        for uid, b in self._budgets.items():
            if b.refs or not (b.messages.full() and b.requests.full()):
                keep[uid] = b
        self._budgets = keep
        self._idle = sum(1 for b in keep.values() if not b.refs)

    def __len__(self) -> int:
        return len(self._budgets)


class FairQueue:
    """Runs CPU-heavy jobs (the KDF) at most ``concurrency`` at a time, taking turns between keys
    (client addresses), so that one address's flood waits behind its own jobs, not in front of
    everybody else's.

    A key may have at most ``per_key`` jobs queued or running and all keys together ``total``;
    beyond, :meth:`submit` fails at once with RATE_LIMITED ("busy, try again").  Key None
    (administrators, the command line) is exempt from both caps but still takes turns.
    """

    def __init__(self, run: Callable[..., defer.Deferred], concurrency: int, per_key: int, total: int) -> None:
        self._run = run
        self.concurrency = concurrency
        self.per_key = per_key
        self.total = total
        self._lanes: dict[str | None, deque] = {}
        self._turns: deque[str | None] = deque()
        self._pending: dict[str | None, int] = {}  # queued or running, per key
        self._queued_public = 0
        self.running = 0

    def submit(self, key: str | None, f: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Fire with ``f(*args)`` run by the pool in its turn, or fail with RATE_LIMITED now."""
        if key is not None:
            if self._pending.get(key, 0) >= self.per_key or self._queued_public >= self.total:
                return defer.fail(RateLimited("the server is busy with logins; try again in a moment", 1.0))
            self._queued_public += 1
        self._pending[key] = self._pending.get(key, 0) + 1
        d: defer.Deferred = defer.Deferred()
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            self._turns.append(key)
        lane.append((d, f, args))
        self._dispatch()
        return d

    def queued(self, key: str | None) -> int:
        """Jobs of ``key`` queued or running."""
        return self._pending.get(key, 0)

    def _dispatch(self) -> None:
        while self.running < self.concurrency and self._turns:
            key = self._turns.popleft()
            lane = self._lanes[key]
            d, f, args = lane.popleft()
            if lane:
                self._turns.append(key)
            else:
                del self._lanes[key]
            self.running += 1
            self._run(f, *args).addBoth(self._done, key, d)

    def _done(self, result: Any, key: str | None, d: defer.Deferred) -> None:
        self.running -= 1
        left = self._pending[key] - 1
        if left:
            self._pending[key] = left
        else:
            del self._pending[key]
        if key is not None:
            self._queued_public -= 1
        self._dispatch()
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)


class SummaryLog:
    """Logs an event that may come in floods (refused logins) at most once per ``every`` seconds,
    with how many happened since the last line: an attack costs a line per period, not per try."""

    def __init__(self, clock: IReactorTime, logger: Any, every: float = 10.0) -> None:
        self.clock = clock
        self.logger = logger
        self.every = every
        self._count = 0
        self._logged_at = float("-inf")

    def event(self, format: str, **fields: Any) -> None:
        """One event; ``format`` gets ``{count}`` (events since the last line) besides ``fields``."""
        self._count += 1
        now = self.clock.seconds()
        if now - self._logged_at >= self.every:
            self.logger.info(format, count=self._count, **fields)
            self._count = 0
            self._logged_at = now
