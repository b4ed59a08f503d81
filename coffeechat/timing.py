"""One timer for many deadlines.

Login deadlines, idle timeouts and redelivery checks of every connection share one wheel that
ticks once per ``resolution`` seconds, instead of one ``callLater`` per connection.  Entries are
lazy: when a slot comes due the wheel asks each item whether it is really due (its deadline may
have moved since, e.g. after a heartbeat) and the item reschedules itself if not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

log = Logger()


class TimingWheel:
    """Calls ``callback(now)`` of scheduled items once their deadline has passed."""

    def __init__(self, clock: IReactorTime, resolution: float = 1.0) -> None:
        self._clock = clock
        self._resolution = resolution
        self._slots: dict[int, list[Callable[[float], Any]]] = {}
        self._call = None
        self._running = False

    def start(self) -> None:
        self._running = True
        self._arm()

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def schedule(self, deadline: float, callback: Callable[[float], Any]) -> None:
        """Call ``callback(now)`` at the first tick at or after ``deadline``."""
        slot = math.ceil(deadline / self._resolution)
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = [callback]
        else:
            bucket.append(callback)

    def __len__(self) -> int:
        return sum(len(b) for b in self._slots.values())

    def _arm(self) -> None:
        if self._running:
            self._call = self._clock.callLater(self._resolution, self._tick)

    def _tick(self) -> None:
        now = self._clock.seconds()
        current = math.floor(now / self._resolution)
        due = [slot for slot in self._slots if slot <= current]
        for slot in sorted(due):
            for callback in self._slots.pop(slot):
                try:
                    callback(now)
                except Exception:
                    log.failure("timing wheel callback failed")
        self._arm()
