"""The chat core: one container that builds each component once (Synapse's HomeServer idea).

Transports get a :class:`ChatCore` and call its handlers; tests build one on a memory reactor
and replace any part they like.
"""

from __future__ import annotations

import itertools
import os

from twisted.internet import defer, task, threads
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from coffeechat.config import Config
from coffeechat.errors import ErrorCode
from coffeechat.handlers.accounts import AccountHandler
from coffeechat.handlers.group_state import GroupCache
from coffeechat.handlers.groups import GroupHandler
from coffeechat.handlers.messages import MessageHandler, UserDirectory
from coffeechat.handlers.readcount import GroupReadCounter
from coffeechat.interfaces import IPresence, IStore
from coffeechat.router import Router
from coffeechat.timing import TimingWheel

log = Logger()

DELIVERY_FLUSH_INTERVAL = 1.0


class ChatCore:
    """Storage, presence, the router and the handlers of one node."""

    def __init__(
        self,
        config: Config,
        reactor: IReactorTime,
        store: IStore,
        presence: IPresence,
        run_cpu=None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.store = store
        self.presence = presence
        self._cpu_pool: ThreadPool | None = None
        if run_cpu is None:
            self._cpu_pool = ThreadPool(1, config.auth.kdf_threads, name="coffeechat-kdf")
            run_cpu = self._run_in_cpu_pool
        self.wheel = TimingWheel(reactor, resolution=1.0)
        self.router = Router(presence, config.limits.max_devices)
        self.users = UserDirectory(store)
        self.accounts = AccountHandler(store, reactor, config.auth, run_cpu)
        self.group_cache = GroupCache(store)
        self.read_counts = GroupReadCounter(store, self.router, self.wheel, reactor)
        self.messages = MessageHandler(
            store, self.users, self.router, reactor, config.limits, self.group_cache, self.read_counts
        )
        self.groups = GroupHandler(
            store, self.group_cache, self.messages, self.read_counts, self.router, reactor, config.groups
        )
        self._device_ids = itertools.count(1)
        self._node = config.server.node_name or f"{os.uname().nodename}-{os.getpid()}"
        self._flusher = task.LoopingCall(self.messages.deliveries.flush)
        self._flusher.clock = reactor
        self.running = False

    def _run_in_cpu_pool(self, f, *args) -> defer.Deferred:
        assert self._cpu_pool is not None
        return threads.deferToThreadPool(self.reactor, self._cpu_pool, f, *args)

    def new_device_id(self) -> str:
        """A device id unique across the cluster: node name plus a counter."""
        return f"{self._node}/{next(self._device_ids)}"

    @defer.inlineCallbacks
    def open(self):
        """Open storage and the KDF pool: enough for offline administration."""
        if self._cpu_pool is not None:
            self._cpu_pool.start()
        yield self.store.start()

    @defer.inlineCallbacks
    def close(self):
        """Close what :meth:`open` opened."""
        yield self.store.stop()
        if self._cpu_pool is not None:
            self._cpu_pool.stop()

    @defer.inlineCallbacks
    def start(self):
        """Open storage, then start the timers."""
        yield self.open()
        self.wheel.start()
        self._flusher.start(DELIVERY_FLUSH_INTERVAL, now=False)
        self.running = True
        log.info("chat core started (node {node})", node=self._node)

    @defer.inlineCallbacks
    def stop(self):
        """Say goodbye to every device, flush what is pending and close storage."""
        self.running = False
        for device in self.router.all_devices():
            device.disconnect(ErrorCode.SERVER_SHUTDOWN, "server shutting down")
        self.wheel.stop()
        if self._flusher.running:
            self._flusher.stop()
        yield self.messages.deliveries.flush()
        yield self.close()
        log.info("chat core stopped")


def build_core(config: Config, reactor: IReactorThreads) -> ChatCore:
    """Build a core with the storage and presence backends the config names."""
    from coffeechat.plugins import presence_factory, storage_factory

    config.data_path.mkdir(parents=True, exist_ok=True)
    s = config.storage
    options = {
        "path": str(config.sqlite_path),
        "group_commit_ms": s.group_commit_ms,
        "max_batch": s.max_batch,
        "reader_threads": s.reader_threads,
        "synchronous": s.synchronous,
        "dsn": s.dsn,
    }
    store = storage_factory(s.backend)(reactor, options)
    presence = presence_factory(config.presence.backend)()
    return ChatCore(config, reactor, store, presence)
