"""The process's event loop, tuned for the message path: the reactor's per-event dispatch
without the legacy logging context, and the cyclic garbage collector kept off it.

Twisted's poll reactors wrap every I/O event in ``log.callWithLogger(selectable, ...)``: four
nested calls that look up the selectable's ``logPrefix()`` and push and pop a context dict,
so that a *legacy* ``log.msg`` made while handling the event is tagged with the connection's
prefix.  CoffeeChat logs through :mod:`twisted.logger`, which does not read that context, and
at two events per message (the frame in, the delivery ack in) the wrapping was about a tenth
of the reactor's time (docs/performance.md, "Issue 16").  :func:`lean_dispatch` replaces the
poll loop of an epoll reactor with the same loop calling ``_doReadOrWrite`` directly; that
method already catches and logs what a handler raises and disconnects the selectable.
"""

from __future__ import annotations

import errno
import gc
from typing import Any

from twisted.logger import Logger

__all__ = ["GC_THRESHOLD", "freeze_heap", "lean_dispatch", "tune_gc"]

log = Logger()

#: The collector's first threshold (CPython's default is 700).  The message path frees almost
#: everything by reference counting, so the net count of new container objects only wanders
#: around zero; with 700 those wanderings set off ~165 collections a second at 8,000 msgs/s,
#: each walking a heap of long-lived objects: 7% of the server's CPU (docs/performance.md,
#: "Issue 16").  At 20,000 a collection is rare and cyclic garbage still bounded (a few MB).
GC_THRESHOLD = 20_000


def lean_dispatch(reactor: Any) -> bool:
    """Make ``reactor`` (if it is Twisted's EPollReactor) dispatch I/O events without the
    legacy logging context; return whether it did.  Other reactors are left as they are."""
    from twisted.internet.epollreactor import EPollReactor

    if not isinstance(reactor, EPollReactor) or getattr(reactor, "_coffeechat_lean", False):
        return isinstance(reactor, EPollReactor)
    poller = reactor._poller
    selectables = reactor._selectables
    dispatch = reactor._doReadOrWrite

    def doPoll(timeout: float | None) -> None:
        try:
            events = poller.poll(-1 if timeout is None else timeout, len(selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is not None:
                try:
                    dispatch(selectable, fd, event)
                except Exception:
                    # _doReadOrWrite handles the selectable's own errors; this is the safety
                    # net callWithLogger was.
                    log.failure("dispatching an I/O event of {selectable!r}", selectable=selectable)

    reactor.doPoll = reactor.doIteration = doPoll
    reactor._coffeechat_lean = True
    return True


def tune_gc(threshold: int = GC_THRESHOLD) -> None:
    """Raise the collector's first threshold (the older generations' are kept)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)


def freeze_heap(result: Any = None) -> Any:
    """Once the node is up: collect, then move every object alive into the permanent
    generation, so that full collections no longer walk the modules, the schema, the config
    and the caches loaded at start (what Synapse does at start too).  Passes ``result`` on
    (a Deferred callback)."""
    gc.collect()
    gc.freeze()
    return result
