"""Thread pools for work that may be abandoned at exit (media processing, blob and push I/O).

Twisted's ThreadPool makes non-daemon threads: a pool that nobody stopped (a node built but never
stopped, a provider whose reactor never ran its shutdown triggers) keeps the interpreter from
exiting, forever.  These pools' threads are daemons, so such a leak costs idle threads, never a
hung process; the features still stop their pools when the node stops.  Nothing in them is
acknowledged before it completes, so abandoning it at exit loses nothing that was promised."""

from __future__ import annotations

import threading
from typing import Any

from twisted.python.threadpool import ThreadPool

__all__ = ["DaemonThreadPool"]


class DaemonThreadPool(ThreadPool):
    """A ThreadPool whose threads do not hold the process open."""

    def threadFactory(self, *args: Any, **kwargs: Any) -> threading.Thread:  # noqa: N802 (Twisted's name)
        thread = threading.Thread(*args, **kwargs)
        thread.daemon = True
        return thread
