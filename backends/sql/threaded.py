"""What the threaded SQL backends share: one writer thread fed by a queue, group commit, the
replay of a failed batch with a savepoint per operation, a pool of reader threads with a
connection each, the entry points (``run_read``, ``run_write``, ``migrate``) and a lifecycle
that stops, fails and reports a closed store the same way on every engine.

An engine subclass (``backends/sqlite.py``, ``backends/postgres.py``) brings only what differs:
its connections and settings (``_open_writer``, ``_close_writer``, ``_writer_txn``, ``_in_reader``),
how a batch's transaction begins (``_begin``: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's prelock),
what a rollback must forget (``_forget``), which errors abort a whole batch (``_fatal``) or make it
run again (``_retry``), work between batches (``_after_batch``), the way it runs a batch's
operations when none fails (``_run_plain``, where the append hot paths live) and its migration
transaction (``_migrate_now``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from coffeechat.backends.sql.migrations import CORE
from coffeechat.backends.sql.store import SQLStore
from coffeechat.health import Dependency
from coffeechat.interfaces import ISQLDatabase, StorageUnavailable, StoreClosed
from coffeechat.sql import SQLMigration

_NEW, _STARTING, _RUNNING, _STOPPING, _STOPPED = range(5)
_STOP = object()  # writer queue sentinel: everything queued before it is written first
SOLO = object()  # an op's locks slot: run it alone, outside any batch (migrations)
NO_LOCKS: tuple = ()


@implementer(ISQLDatabase)
class ThreadedSQLDatabase(SQLStore):
    """A store served by a writer thread and a reader pool.

    An operation on the writer queue is ``(fn, args, deferred, locks, user_locks)``.  Counters, so
    group commit can be observed: ``commits`` (write transactions, one per batch),
    ``ops_committed`` (the operations they carried) and ``replays`` (batches re-run with
    savepoints because an operation failed)."""

    _kind = "sql"  # thread names: "<kind>-writer", "<kind>-readers"

    def __init__(
        self, reactor: Any, group_commit_ms: float, max_batch: int, reader_threads: int, synchronous: str
    ) -> None:
        synchronous = str(synchronous).lower()
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        if int(max_batch) < 1 or int(reader_threads) < 1 or float(group_commit_ms) < 0:
            raise ValueError("max_batch and reader_threads must be >= 1, group_commit_ms >= 0")
        self._reactor = reactor
        self.group_commit_ms = float(group_commit_ms)
        self.max_batch = int(max_batch)
        self.reader_threads = int(reader_threads)
        self.synchronous = synchronous
        self.schema_version = 0
        self.commits = 0
        self.ops_committed = 0
        self.replays = 0
        #: ``observe(ops, seconds)`` after each committed batch, on the writer thread (the
        #: metrics feature sets it; it must be thread-safe and cheap)
        self.commit_observer: Callable[[int, float], None] | None = None
        self._state = _NEW
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._put = self._queue.put
        self._writer: threading.Thread | None = None
        self._pool: ThreadPool | None = None
        self._local = threading.local()
        self._reader_conns: list[Any] = []
        self._reader_conns_lock = threading.Lock()
        self._reads_in_flight = 0
        self._reads_drained: defer.Deferred | None = None
        self._writer_done: defer.Deferred | None = None
        self._writer_alive = False
        self._stop_waiters: list[defer.Deferred] = []
        self._shutdown_trigger: Any = None
        self.health = Dependency(f"storage ({self._kind})", reactor)
        self._writer_failing = False  # writer thread: the last batch failed, the database unavailable

    # ---- what an engine provides ---------------------------------------------------------------

    def _thread_suffix(self) -> str:
        return ""

    def _core_migrations(self) -> list[SQLMigration]:
        raise NotImplementedError

    def _open_writer(self) -> None:
        """Writer thread: connect (and set the connection up)."""
        raise NotImplementedError

    def _close_writer(self) -> None:
        """Writer thread: close the writer's connection, if any."""
        raise NotImplementedError

    def _writer_txn(self) -> Any:
        """Writer thread: the ISQLTransaction for the next transaction (reconnecting if need be)."""
        raise NotImplementedError

    def _in_reader(self, fn: Callable[..., Any], args: tuple) -> Any:
        """Reader thread: ``fn(txn, *args)`` on this thread's connection."""
        raise NotImplementedError

    def _migrate_now(self, component: str, migrations: list[SQLMigration]) -> int:
        """Writer thread: apply the pending migrations of ``component``; return its version."""
        raise NotImplementedError

    def _begin(self, txn: Any, batch: list) -> None:
        txn.cursor.execute("BEGIN")

    def _forget(self) -> None:
        """A rollback happened: drop whatever the writer remembers of uncommitted state."""

    def _fatal(self, e: BaseException) -> bool:
        """Whether ``e`` spoils the whole transaction, so that no savepoint can isolate it."""
        return False

    def _abandon(self, e: BaseException) -> None:
        """The batch's transaction failed as a whole: clean up the connection."""

    def _retry(self, e: BaseException, attempt: int) -> bool:
        """Whether to run a batch whose transaction failed with ``e`` again."""
        return False

    def _after_batch(self) -> None:
        """Writer thread, between batches, after the results went to the reactor."""

    def _unavailable(self, e: BaseException, read: bool = False) -> str | None:
        """Why ``e`` means the database cannot take work now (down, restarting, disk full,
        read-only), or None for any other error (a bug, a refusal, a constraint).  ``read``: it
        came from a reader, whose connection is read-only on purpose."""
        return None

    def _backoff(self) -> None:
        """Writer thread: a batch failed because the database is unavailable; wait a little so
        that a backlog does not spin against it (each batch is answered at once anyway)."""
        time.sleep(0.05)

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> defer.Deferred:
        """Connect and migrate in the writer thread, then start the readers."""
        if self._state != _NEW:
            return defer.fail(StoreClosed(f"{self!r} cannot be started twice"))
        self._state = _STARTING
        ready: defer.Deferred = defer.Deferred()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name=f"{self._kind}-writer{self._thread_suffix()}", daemon=True
        )
        self._writer.start()

        def started(_: object) -> None:
            self._pool = ThreadPool(1, self.reader_threads, name=f"{self._kind}-readers{self._thread_suffix()}")
            self._pool.start()
            self._state = _RUNNING
            # A safety net for stores used outside a service: "during" runs after the "before"
            # phase, where the node's service stops the core (which flushes, then stops us).
            self._shutdown_trigger = self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
            if self._stop_waiters:  # stop() was called while starting
                self._begin_stop()

        def failed(f: Failure) -> Failure:
            self._state = _STOPPED
            self._fire_stop_waiters()
            return f

        ready.addCallbacks(started, failed)
        return ready

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

    def _shortcut(self, value: Any) -> defer.Deferred:
        return defer.succeed(value) if self._state == _RUNNING else self._closed()

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

    # ---- entry points (ISQLDatabase) -----------------------------------------------------------

    def run_read(self, description: str, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run ``fn(txn, *args)`` on a reader thread (its own connection, autocommit)."""
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
        if isinstance(result, Failure):
            why = self._unavailable(result.value, read=True)
            if why is not None:
                self.health.failed(why)
                return Failure(StorageUnavailable(why))
        elif self.health.down_since is not None:
            self.health.ok()
        return result

    def _batch_done(self, results: list, unavailable: str | None) -> None:
        """Reactor thread: a batch's results, and what they say of the database's health."""
        if unavailable is not None:
            self.health.failed(unavailable)
        elif self.health.down_since is not None:
            self.health.ok()
        self._fire(results)

    def run_write(
        self,
        description: str,
        fn: Callable[..., Any],
        *args: Any,
        locks: Iterable[str] = (),
        user_locks: Iterable[int] = (),
    ) -> defer.Deferred:
        """Queue ``fn(txn, *args)`` for the writer; it runs inside the next batch's transaction
        and the Deferred fires after the COMMIT.  If it raises, only its own changes are undone
        and only its Deferred fails.  ``fn`` may run more than once (a replayed batch, a retried
        deadlock), so it must have no effects outside the database and must not
        BEGIN/COMMIT/ROLLBACK itself.  ``locks`` (conversation keys) and ``user_locks`` (user ids,
        for group-count limits) are taken up front with the rest of the batch's, in one global
        order, where the engine has several writers (PostgreSQL)."""
        if self._state != _RUNNING:
            return self._closed()
        d: defer.Deferred = defer.Deferred()
        self._put((fn, args, d, tuple(locks) or NO_LOCKS, tuple(user_locks) or NO_LOCKS))
        return d

    def migrate(self, component: str, migrations: Iterable[SQLMigration]) -> defer.Deferred:
        """Bring ``component``'s tables up to date: each pending migration in its own
        transaction, run by the writer between batches (after the writes queued before it).
        Fires with the component's version; fails with ``SchemaTooNew`` for a newer database."""
        if component == CORE:
            return defer.fail(ValueError(f"{CORE!r} is the core's component: it migrates at start()"))
        if self._state != _RUNNING:
            return self._closed()
        d: defer.Deferred = defer.Deferred()
        self._put((self._migrate_now, (str(component), list(migrations)), d, SOLO, NO_LOCKS))
        return d

    # ---- the writer thread -------------------------------------------------------------------

    def _writer_main(self, ready: defer.Deferred) -> None:
        call = self._reactor.callFromThread
        try:
            self._open_writer()
            self.schema_version = self._migrate_now(CORE, self._core_migrations())
        except BaseException:
            failure = Failure()
            self._close_writer()
            call(ready.errback, failure)
            return
        self._writer_alive = True
        call(ready.callback, None)
        clean = False
        try:
            self._writer_loop()
            clean = True
        finally:
            self._close_writer()
            call(self._writer_exited, clean)

    def _writer_loop(self) -> None:
        q = self._queue
        get = q.get
        get_nowait = q.get_nowait
        qsize = q.qsize
        window = self.group_commit_ms / 1000.0
        max_batch = self.max_batch
        sleep = time.sleep
        run_batch = self._run_batch
        after_batch = self._after_batch
        while True:
            idle = qsize() == 0
            op = get()
            if op is _STOP:
                return
            if op[3] is SOLO:
                self._run_solo(op)
                continue
            batch = [op]
            stopping = False
            solo = None
            # Group commit: when this op found the writer idle, give concurrent writers the
            # window to queue up behind it.  Ops that queued while the previous batch was
            # committing have waited a whole commit already, so a backlog goes at once.
            if idle and window:
                sleep(window)
            append = batch.append
            while len(batch) < max_batch:
                try:
                    op = get_nowait()
                except queue.Empty:
                    break
                if op is _STOP:
                    stopping = True
                    break
                if op[3] is SOLO:
                    solo = op
                    break
                append(op)
            run_batch(batch)
            if solo is not None:
                self._run_solo(solo)
            after_batch()
            if stopping:
                return

    def _run_solo(self, op: tuple) -> None:
        fn, args, d = op[:3]
        try:
            result = (d, True, fn(*args))
        except Exception:
            result = (d, False, Failure())
        self._reactor.callFromThread(self._fire, [result])

    def _run_batch(self, batch: list) -> None:
        """One transaction for the batch, one callFromThread for all of its results (in queue
        order).  A transaction that fails as a whole (disk full, lost connection) fails every
        operation of the batch: none of it is durable, so none of it may be acknowledged."""
        attempt = 0
        unavailable = None
        began = time.perf_counter()
        while True:
            try:
                results = self._transaction(self._writer_txn(), batch)
            except Exception as e:
                failure = Failure()
                self._abandon(e)
                if self._retry(e, attempt):
                    attempt += 1
                    continue
                unavailable = self._unavailable(e)
                if unavailable is not None:
                    # Nothing of the batch is durable: each op is told "try again", not a crash.
                    failure = Failure(StorageUnavailable(unavailable))
                results = [(op[2], False, failure) for op in batch]
            else:
                self.commits += 1
                self.ops_committed += len(batch)
                observe = self.commit_observer
                if observe is not None:
                    try:
                        observe(len(batch), time.perf_counter() - began)
                    except Exception:
                        pass  # an observer's bug must not fail a committed batch
            if unavailable is not None or self._writer_failing:
                self._writer_failing = unavailable is not None
                self._reactor.callFromThread(self._batch_done, results, unavailable)
                if unavailable is not None:
                    self._backoff()
            else:
                self._reactor.callFromThread(self._fire, results)
            return

    def _transaction(self, txn: Any, batch: list) -> list:
        """Run the batch without savepoints; if an operation raises, roll back and replay it
        with one savepoint per operation, so that a failing operation fails alone.

        Savepoints are taken lazily because a SAVEPOINT/RELEASE pair (and, on SQLite, the
        sub-journal copies it causes) costs about a quarter of an append."""
        execute = txn.cursor.execute
        self._begin(txn, batch)
        try:
            results = self._run_plain(txn, batch)
        except Exception as e:
            if self._fatal(e):
                raise
            execute("ROLLBACK")
            self._forget()
            self.replays += 1
            self._begin(txn, batch)
            results = self._run_guarded(txn, batch)
        execute("COMMIT")
        return results

    def _run_plain(self, txn: Any, batch: list) -> list:
        """Every operation in turn."""
        results = []
        record = results.append
        for fn, args, d, _locks, _users in batch:
            record((d, True, fn(txn, *args)))
        return results

    def _run_guarded(self, txn: Any, batch: list) -> list:
        """Every operation under its own savepoint: a failure fails that operation alone."""
        execute = txn.cursor.execute
        results = []
        record = results.append
        for fn, args, d, _locks, _users in batch:
            execute("SAVEPOINT op")
            try:
                value = fn(txn, *args)
            except Exception as e:
                if self._fatal(e):
                    raise
                record((d, False, Failure()))
                execute("ROLLBACK TO SAVEPOINT op")
                self._forget()  # the rolled back op may have remembered something it gave back
            else:
                record((d, True, value))
            execute("RELEASE SAVEPOINT op")
        return results
