"""The node: a small core (storage, presence, the router, one timing wheel, flow control, the
cluster) and the feature modules that make it a chat server.

It builds each part once, loads the features the config enables (each registers what it adds
through its :class:`~coffeechat.modules.ModuleAPI`), and owns the lifecycle.  Transports get a
node and create a :class:`~coffeechat.session.Session` per connection; tests build one on a
memory reactor and replace any part they like.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from coffeechat import openapi
from coffeechat.addresses import AddressLimits
from coffeechat.cluster import Cluster
from coffeechat.config import Config, ConfigError
from coffeechat.errors import ErrorCode
from coffeechat.flow import FlowControl
from coffeechat.interfaces import IClusterBus, IPresence, IStore
from coffeechat.model import Push
from coffeechat.modules import CommandEntry, HttpCall, ModuleAPI, Registry, Route, _segments
from coffeechat.plugins import feature_module
from coffeechat.ratelimit import SummaryLog, UserBudgets
from coffeechat.readiness import Readiness
from coffeechat.router import Router
from coffeechat.schema import Cmd
from coffeechat.session import heartbeat
from coffeechat.sql import SQLMigration
from coffeechat.timing import TimingWheel

log = Logger()

CpuRunner = Callable[..., defer.Deferred]


class ChatNode:
    """Storage, presence, the router and the features of one node."""

    def __init__(
        self,
        config: Config,
        reactor: IReactorTime,
        store: IStore,
        presence: IPresence,
        run_cpu: CpuRunner | None = None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.store = store
        self.presence = presence
        self.registry = Registry()
        self.wheel = TimingWheel(reactor, resolution=1.0)
        self.flow = FlowControl()
        limits = config.limits
        # Logins refused by the login limits: a flood is summarised, one line per 10 s.
        self.refused_logins = SummaryLog(reactor, Logger(namespace="coffeechat.session"))
        self.addresses = AddressLimits(
            reactor,
            limits.max_unauthenticated_per_address,
            limits.max_connections_per_address,
            config.http.max_connections_per_address,
            limits.unlimited_addresses,
        )
        self.cluster: Cluster | None = None
        if IClusterBus.providedBy(presence):
            self.cluster = Cluster(presence, presence, self.registry, reactor, self._push_local)
        self.router = Router(presence, config.limits.max_devices, remote=self.cluster, clock=reactor)
        # Shared by a user's sessions here; in a cluster, split between the nodes of their devices.
        self.user_budgets = UserBudgets(reactor, config.limits, presence if self.cluster is not None else None)
        self.node = presence.node
        self.running = False
        #: stopping gracefully (SIGTERM): /ready answers 503, WebSocket closes say 1012 (coffeechat/drain.py)
        self.draining = False
        #: ``observe(seconds)`` of each delivery ack's latency (set by the metrics feature)
        self.ack_observer: Callable[[float], None] | None = None
        #: open connections per transport, kept by the transports (read by the metrics)
        self.connections: dict[str, int] = {"cim": 0, "ws": 0, "http": 0}
        self.readiness = Readiness(self)
        self._device_ids = itertools.count(1)
        self._run_cpu = run_cpu
        self._cpu_pool: ThreadPool | None = None
        self._starts: list[Callable[[], Any]] = []
        self._stops: list[tuple[int, Callable[[], Any]]] = []
        self._migrations: list[tuple[str, list[SQLMigration]]] = []
        self._services: dict[str, Any] = {}
        self._loading: list[str] = []
        self._register_core()
        for name in config.features.enabled:
            self.feature_service(name)

    def _register_core(self) -> None:
        """What every node serves whatever its features: heartbeats, cluster-wide kicks, health."""
        registry = self.registry
        registry.add_command(Cmd.LOGIN_HEARTBEAT, CommandEntry(heartbeat, False, True, "node"))
        registry.add_cluster_command("kick", self._kicked, "node")
        registry.add_route(Route("GET", _segments("/health"), self._health, "public", "node", "health check"))
        registry.add_route(Route("GET", _segments("/ready"), self._ready, "public", "node", "readiness check"))
        registry.add_route(
            Route(
                "GET",
                _segments("/admin/stats"),
                self._stats,
                "admin",
                "node",
                "what this node serves",
                response=openapi.obj(
                    ["online_users", "devices", "features"],
                    online_users=openapi.integer(0),
                    devices=openapi.integer(0),
                    features=openapi.array(openapi.string()),
                ),
            )  # fmt: skip
        )

    # -- features

    def feature_service(self, name: str, needed_by: str | None = None) -> Any:
        """The service of feature ``name``, set up now if it was not yet."""
        if name in self._services:
            return self._services[name]
        if name not in self.config.features.enabled:
            raise ConfigError(f"feature {needed_by} needs feature {name}: add {name!r} to [features] enabled")
        if name in self._loading:
            raise ConfigError(f"features depend on each other in a circle: {' -> '.join([*self._loading, name])}")
        module = feature_module(name)
        section = self.config.section(getattr(module, "SECTION", name)) if hasattr(module, "Config") else None
        self._loading.append(name)
        try:
            service = module.setup(ModuleAPI(self, name, section))
        finally:
            self._loading.pop()
        self._services[name] = service
        return service

    def feature(self, name: str) -> Any:
        """The service of a loaded feature (KeyError when it is not enabled)."""
        return self._services[name]

    @property
    def features(self) -> list[str]:
        return list(self._services)

    def on_start(self, fn: Callable[[], Any]) -> None:
        self._starts.append(fn)

    def on_stop(self, fn: Callable[[], Any], first: bool = False) -> None:
        self._stops.append((0 if first else 1, fn))

    def add_migrations(self, component: str, migrations: list[SQLMigration]) -> None:
        self._migrations.append((component, migrations))

    def cpu_runner(self, size: int) -> CpuRunner:
        """A runner of CPU-heavy calls on a pool of at most ``size`` threads (or the one a test
        injected), so that a burst of logins cannot take more than that many cores."""
        if self._run_cpu is not None:
            return self._run_cpu
        if self._cpu_pool is None:
            self._cpu_pool = ThreadPool(1, size, name="coffeechat-kdf")
        pool = self._cpu_pool

        def run(f: Callable[..., Any], *args: Any) -> defer.Deferred:
            return threads.deferToThreadPool(self.reactor, pool, f, *args)

        return run

    # -- devices

    def new_device_id(self) -> str:
        """A device id unique across the cluster: node name plus a counter."""
        return f"{self.node}/{next(self._device_ids)}"

    def _push_local(self, user_id: int, push: Push) -> int:
        return self.router.push_local(user_id, push)

    def disconnect_user(self, user_id: int, code: int, reason: str) -> int:
        """Close every device of ``user_id``, on this node and on the others; returns how many
        were closed here."""
        if self.cluster is not None:
            self.cluster.broadcast("kick", {"u": user_id, "c": int(code), "m": reason})
        return self._disconnect_local(user_id, code, reason)

    def _kicked(self, data: dict, sender: str) -> None:
        self._disconnect_local(int(data["u"]), int(data["c"]), str(data["m"]))

    def _disconnect_local(self, user_id: int, code: int, reason: str) -> int:
        devices = self.router.devices_of(user_id)
        for device in devices:
            try:
                device.disconnect(code, reason)
            except Exception:
                log.failure("disconnecting device {device} failed", device=device.device_id)
        return len(devices)

    # -- core routes

    async def _health(self, call: HttpCall) -> tuple[int, dict]:
        """``GET /health`` for load balancers and monitoring."""
        counts = {"node": self.node, "online_users": self.router.user_count, "devices": self.router.device_count}
        if not self.running:
            return 503, {"status": "stopping", **counts}
        return 200, {"status": "ok", **counts}

    async def _ready(self, call: HttpCall) -> tuple[int, dict]:
        """``GET /ready``: 200 when storage answers, presence is joined and the node is not draining."""
        return await self.readiness.check()

    async def _stats(self, call: HttpCall) -> dict:
        """``GET /admin/stats``: what this node is serving now."""
        return {"online_users": self.router.user_count, "devices": self.router.device_count, "features": self.features}

    # -- lifecycle

    @defer.inlineCallbacks
    def open(self):
        """Open storage (the features' tables brought up to date) and the CPU pool: enough for
        offline administration."""
        if self._cpu_pool is not None:
            self._cpu_pool.start()
        yield self.store.start()
        for component, migrations in self._migrations:
            yield self.store.migrate(component, migrations)

    @defer.inlineCallbacks
    def close(self):
        """Close what :meth:`open` opened."""
        yield self.store.stop()
        if self._cpu_pool is not None:
            self._cpu_pool.stop()

    @defer.inlineCallbacks
    def start(self):
        """Open storage, join presence (and the cluster), then start the timers and features."""
        yield self.open()
        yield self.presence.start(self.router)
        if self.cluster is not None:
            yield self.cluster.start()
        self.wheel.start()
        for fn in self._starts:
            fn()
        self.running = True
        log.info("node {node} started with features {features}", node=self.node, features=", ".join(self.features))

    @defer.inlineCallbacks
    def stop(self):
        """Say goodbye to every device, let the features flush what is pending, close storage."""
        self.running = False
        devices = self.router.all_devices()
        if devices:
            log.info("disconnecting {n} devices: server shutting down", n=len(devices))
        for device in devices:
            try:
                device.disconnect(ErrorCode.SERVER_SHUTDOWN, "server shutting down")
            except Exception:  # one transport's bug must not leave storage unflushed
                log.failure("disconnecting {device} failed", device=device)
        self.wheel.stop()
        for _, fn in sorted(self._stops, key=lambda s: s[0]):
            try:
                yield defer.maybeDeferred(fn)
            except Exception:
                log.failure("stopping {fn} failed", fn=fn)
        try:
            yield self.presence.stop()
        except Exception:
            log.failure("leaving presence failed")
        yield self.close()
        log.info("node stopped")


def build_node(config: Config, reactor: Any) -> ChatNode:
    """Build a node with the storage and presence backends the config names."""
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
    return ChatNode(config, reactor, store, presence)


def node_name(config: Config) -> str:
    """This node's name: ``server.node_name``, else host name and process id (set a stable
    name in a cluster, so that a restarted node finds and cleans up its own entries)."""
    return config.server.node_name or f"{os.uname().nodename}-{os.getpid()}"
