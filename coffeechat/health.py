"""One log line when a dependency (Redis, the database) goes away, one when it is back.

Why: while Redis or the database is down, every request that needs it fails the same way; a
line per failure is hundreds of identical lines a second that drown what matters.  A
:class:`Dependency` logs the first failure ("is down"), counts the ones that follow (with a
reminder at most every ``remind_every`` seconds while it stays down) and logs one line when a
call succeeds again ("is back after N s, M failures meanwhile").
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

log = Logger()

REMIND_EVERY = 60.0


class Dependency:
    """The state of one dependency as its callers see it (see the module docstring)."""

    def __init__(self, name: str, clock: IReactorTime, remind_every: float = REMIND_EVERY) -> None:
        self.name = name
        self.clock = clock
        self.remind_every = remind_every
        self.down_since: float | None = None
        self.failures = 0  # in the current outage
        self.outages = 0  # since start, for tests and metrics
        self.total_failures = 0  # since start, for metrics
        self._reminded_at = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: object = "") -> None:
        """A call needing the dependency failed because it is unreachable."""
        now = self.clock.seconds()
        self.failures += 1
        self.total_failures += 1
        if self.down_since is None:
            self.down_since = self._reminded_at = now
            self.outages += 1
            log.warn("{name} is down: {error}", name=self.name, error=str(error)[:300])
        elif now - self._reminded_at >= self.remind_every:
            self._reminded_at = now
            log.warn(
                "{name} is still down after {seconds:.0f} s ({failures} failures so far): {error}",
                name=self.name,
                seconds=now - self.down_since,
                failures=self.failures,
                error=str(error)[:300],
            )

    def ok(self) -> None:
        """A call needing the dependency succeeded (cheap when it was up already)."""
        if self.down_since is None:
            return
        log.info(
            "{name} is back after {seconds:.1f} s ({failures} failures meanwhile)",
            name=self.name,
            seconds=self.clock.seconds() - self.down_since,
            failures=self.failures,
        )
        self.down_since = None
        self.failures = 0
