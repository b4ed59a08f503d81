"""Back-pressure: stop reading from clients while storage is behind.

Without it an overloaded node keeps accepting messages into an ever longer write queue; latency
grows without bound and pushes time out into redeliveries.  With it, clients' own TCP windows
fill up and they slow down, and every message that is read is stored promptly.
"""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer


class FlowControl:
    """Counts writes in flight; above ``high`` transports are paused until it falls to ``low``."""

    def __init__(self, high: int = 4096, low: int = 1024) -> None:
        self.high = high
        self.low = low
        self.in_flight = 0
        self._paused: set[IPushProducer] = set()

    @property
    def overloaded(self) -> bool:
        return self.in_flight >= self.high

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, result=None):
        """Call when a write completes (usable as a Deferred callback: passes the result on)."""
        self.in_flight -= 1
        if self._paused and self.in_flight <= self.low:
            paused, self._paused = self._paused, set()
            for transport in paused:
                transport.resumeProducing()
        return result

    def hold(self, transport: IPushProducer) -> None:
        """Pause reading from ``transport`` until the writes in flight have drained."""
        if transport not in self._paused:
            self._paused.add(transport)
            transport.pauseProducing()

    def forget(self, transport: IPushProducer) -> None:
        self._paused.discard(transport)

    @property
    def paused_count(self) -> int:
        return len(self._paused)
