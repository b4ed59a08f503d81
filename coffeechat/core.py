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

from coffeechat.cluster import Cluster
from coffeechat.config import Config
from coffeechat.errors import ErrorCode
from coffeechat.handlers.accounts import AccountHandler
from coffeechat.handlers.group_state import GroupCache
from coffeechat.handlers.groups import GroupHandler
from coffeechat.handlers.messages import MessageHandler, UserDirectory
from coffeechat.handlers.readcount import GroupReadCounter
from coffeechat.interfaces import IClusterBus, IPresence, IStore
from coffeechat.router import Router
from coffeechat.timing import TimingWheel

log = Logger()

DELIVERY_FLUSH_INTERVAL = 1.0
TOKEN_PURGE_INTERVAL = 3600.0


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
        self._node = presence.node
        self.cluster: Cluster | None = None
        if IClusterBus.providedBy(presence):
            self.cluster = Cluster(
                presence,
                presence,
                self.router,
                store,
                self.group_cache,
                reactor,
                reads_elsewhere=self.read_counts.read_moved_elsewhere,
                disconnect_user=self._disconnect_local,
            )
            self.router.cluster = self.cluster
            self.group_cache.on_change = self.cluster.group_changed
            self.read_counts.on_read = self.cluster.read_moved
        self._flusher = task.LoopingCall(self.messages.deliveries.flush)
        self._flusher.clock = reactor
        self._token_purger = task.LoopingCall(self._purge_tokens)
        self._token_purger.clock = reactor
        self.running = False

    def _run_in_cpu_pool(self, f, *args) -> defer.Deferred:
        assert self._cpu_pool is not None
        return threads.deferToThreadPool(self.reactor, self._cpu_pool, f, *args)

    @property
    def node(self) -> str:
        return self._node

    def disconnect_user(self, user_id: int, code: int, reason: str) -> int:
        """Close every device of ``user_id``, on this node and on the others; returns how many
        were closed here."""
        if self.cluster is not None:
            self.cluster.disconnect_user(user_id, code, reason)
        return self._disconnect_local(user_id, code, reason)

    def _disconnect_local(self, user_id: int, code: int, reason: str) -> int:
        devices = self.router.devices_of(user_id)
        for device in devices:
            try:
                device.disconnect(code, reason)
            except Exception:
                log.failure("disconnecting device {device} failed", device=device.device_id)
        return len(devices)

    def _purge_tokens(self) -> defer.Deferred:
        """Hourly: expired tokens go (a failure is logged and the next hour tries again)."""
        d = defer.ensureDeferred(self.accounts.purge_expired_tokens())
        d.addCallback(lambda n: n and log.info("purged {n} expired login tokens", n=n))
        d.addErrback(lambda f: log.failure("purging expired tokens failed", f))
        return d

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
        """Open storage, join presence (and the cluster), then start the timers."""
        yield self.open()
        yield self.presence.start(self.router)
        if self.cluster is not None:
            yield self.cluster.start()
        self.wheel.start()
        self._flusher.start(DELIVERY_FLUSH_INTERVAL, now=False)
        self._token_purger.start(TOKEN_PURGE_INTERVAL, now=False)
        self.running = True
        log.info("chat core started (node {node})", node=self._node)

    @defer.inlineCallbacks
    def stop(self):
        """Say goodbye to every device, flush what is pending and close storage."""
        self.running = False
        devices = self.router.all_devices()
        if devices:
            log.info("disconnecting {n} devices: server shutting down", n=len(devices))
        for device in devices:
            device.disconnect(ErrorCode.SERVER_SHUTDOWN, "server shutting down")
        self.wheel.stop()
        if self._flusher.running:
            self._flusher.stop()
        if self._token_purger.running:
            self._token_purger.stop()
        yield self.messages.deliveries.flush()
        if self.cluster is not None:
            self.cluster.stop()
        try:
            yield self.presence.stop()
        except Exception:
            log.failure("leaving presence failed")
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
    presence = presence_factory(config.presence.backend)(reactor, config.presence, node_name(config))
    return ChatCore(config, reactor, store, presence)


def node_name(config: Config) -> str:
    """This node's name: ``server.node_name``, else host name and process id (set a stable
    name in a cluster, so that a restarted node finds and cleans up its own entries)."""
    return config.server.node_name or f"{os.uname().nodename}-{os.getpid()}"
