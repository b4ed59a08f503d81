"""What the SQL backends share: one writer thread fed by a queue, a pool of reader threads with a
connection each, and a stop that drains both in order.

A subclass provides ``start()``, the writer's loop (``_writer_main``) and ``_in_reader``; this
class provides the lifecycle around them, so that SQLite and PostgreSQL stop, fail and report a
closed store the same way.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads
from twisted.python.failure import Failure

from coffeechat.interfaces import StoreClosed

_NEW, _STARTING, _RUNNING, _STOPPING, _STOPPED = range(5)
_STOP = object()  # writer queue sentinel: everything queued before it is written first


class ThreadedStore:
    """The lifecycle of a store served by a writer thread and a reader pool."""

    def stop(self) -> defer.Deferred:
        """Refuse new work, write everything already queued, finish reads in flight, close.

        Idempotent: every call fires once the store is closed."""
        if self._state == _NEW:
            self._state = _STOPPED
        if self._state == _STOPPED:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._stop_waiters.append(d)
        if self._state == _RUNNING:
            self._begin_stop()
        return d

    def _begin_stop(self) -> None:
        """Readers first (finish reads in flight, close their connections), then the writer,
        whose connection is the last one (for SQLite it checkpoints the WAL into the database)."""
        self._state = _STOPPING
        if self._shutdown_trigger is not None:
            try:
                self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            except (ValueError, KeyError, TypeError):
                pass
            self._shutdown_trigger = None
        if self._reads_in_flight:
            self._reads_drained = d = defer.Deferred()
        else:
            d = defer.succeed(None)
        d.addCallback(self._close_readers)
        d.addCallback(self._stop_writer)
        d.addBoth(self._fully_stopped)

    def _close_readers(self, _: object) -> None:
        if self._pool is not None:
            self._pool.stop()  # every worker is idle by now, so this joins at once
            self._pool = None
        with self._reader_conns_lock:
            conns, self._reader_conns = self._reader_conns, []
        for conn in conns:
            conn.close()

    def _stop_writer(self, _: object) -> defer.Deferred | None:
        if not self._writer_alive:
            return None
        self._writer_done = done = defer.Deferred()
        self._put(_STOP)  # queued after every write already accepted: they are written first
        return done

    def _fully_stopped(self, result: object) -> None:
        self._state = _STOPPED
        self._fire_stop_waiters(result if isinstance(result, Failure) else None)

    def _fire_stop_waiters(self, failure: Failure | None = None) -> None:
        waiters, self._stop_waiters = self._stop_waiters, []
        for d in waiters:
            if failure is None:
                d.callback(None)
            else:
                d.errback(failure)

    def _closed(self) -> defer.Deferred:
        state = {_NEW: "not started", _STARTING: "starting", _STOPPING: "stopping"}.get(self._state, "stopped")
        return defer.fail(StoreClosed(f"{self!r} is {state}"))

    def _writer_exited(self, clean: bool) -> None:
        """Reactor thread: the writer is gone; fail whatever it can no longer write."""
        self._writer_alive = False
        if not clean and self._state == _RUNNING:
            self._begin_stop()  # refuse new work from now on
        leftovers = []
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is not _STOP:
                leftovers.append((op[2], False, Failure(StoreClosed(f"{self!r} writer exited"))))
        self._fire(leftovers)
        if self._writer_done is not None:
            d, self._writer_done = self._writer_done, None
            d.callback(None)

    @staticmethod
    def _fire(results: list) -> None:
        for d, ok, value in results:
            if ok:
                d.callback(value)
            else:
                d.errback(value)

    def run_read(self, description: str, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run ``fn(cursor, *args)`` on a reader thread (own connection, autocommit)."""
        if self._state != _RUNNING:
            return self._closed()
        self._reads_in_flight += 1
        d = threads.deferToThreadPool(self._reactor, self._pool, self._in_reader, fn, args)
        d.addBoth(self._read_done)
        return d

    def _read_done(self, result: object) -> object:
        self._reads_in_flight -= 1
        if self._reads_in_flight == 0 and self._reads_drained is not None:
            d, self._reads_drained = self._reads_drained, None
            d.callback(None)
        return result
