"""Prometheus metrics of one node at ``GET /metrics`` (docs/monitoring.md lists them).

Why a custom collector: the message path already keeps counters (the router's deliveries per
push kind, the cluster's payloads, the store's commits, the push and webhook queues); reading
them when Prometheus scrapes costs the path nothing, where an ``inc()`` per message would take a
lock each time.  Only what the issue wants as a distribution is observed as it happens, into
lock-free single-writer histograms (:class:`SingleWriterHistogram`): delivery-ack latency (one
``observe`` per ack), the store's commit latency and group-commit batch size (one per batch, on
the writer thread) and the reactor's lag (once per ``metrics.reactor_lag_interval``).

Each node has its own :class:`~prometheus_client.CollectorRegistry` (never the process-wide
one): tests run many nodes in one process, and each node's numbers are its own.  The text is
served on the HTTP listener (``metrics.http``) and on ``listen.metrics`` if set, behind
``Authorization: Bearer <metrics.token>`` when a token is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.utils import floatToGoString
from twisted.internet import defer

from coffeechat.config import ConfigError
from coffeechat.model import SessionType
from coffeechat.modules import HttpCall, HttpReply, ModuleAPI

SECTION = "metrics"

#: delivery acks: a device on a good network answers within tens of ms; redelivery is at 15 s
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)
#: a group commit: a few ms on SQLite with fsync, more on a remote PostgreSQL
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: a call's set-up, invite to 200 OK: tens of ms when the app answers by itself, seconds to
#: the ring timeout (45 s) when a person does
CALL_SETUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0)
#: a call record's ``result`` (docs/calls.md), all exported from the start
CALL_RESULTS = ("ended", "missed", "declined", "cancelled", "busy", "dropped")
_KINDS = {int(SessionType.SINGLE): "single", int(SessionType.GROUP): "group"}


@dataclass
class Config:
    """[metrics]: Prometheus metrics (docs/monitoring.md)."""

    http: bool = True  # serve /metrics on the HTTP listener too (else only on listen.metrics)
    token: str = ""  # not empty: /metrics answers only with "Authorization: Bearer <token>"
    reactor_lag_interval: float = 1.0  # how often the reactor's lag is measured
    backlog_interval: float = 15.0  # how often the webhook backlog is read from storage

    def validate(self) -> None:
        if self.reactor_lag_interval <= 0 or self.backlog_interval <= 0:
            raise ConfigError("metrics.reactor_lag_interval and metrics.backlog_interval must be positive")


class SingleWriterHistogram:
    """A histogram observed from one thread only (the reactor's, or the store's writer thread):
    a list index and two additions per ``observe``, no lock.  prometheus_client's ``Histogram``
    takes a lock per bucket it touches, several times the cost, on the path of every delivery
    ack.  A scrape reads it from the reactor thread; under the GIL it sees each counter whole,
    at worst one observation ahead in one bucket than in ``_count``."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)  # the last: above every bucket (+Inf)
        self.sum = 0.0
        self._labels = [floatToGoString(b) for b in self.buckets] + ["+Inf"]

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1  # the first bucket with value <= le
        self.sum += value

    def family(self) -> HistogramMetricFamily:
        cumulative, total = [], 0
        for label, count in zip(self._labels, list(self.counts), strict=True):
            total += count
            cumulative.append((label, total))
        return HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=self.sum)


class LagProbe:
    """Measures how late the reactor runs a call scheduled ``interval`` ahead: a reactor busy
    with one long turn (a slow callback, a blocking call) shows here as seconds of lag."""

    def __init__(self, clock: Any, interval: float, observe: Any) -> None:
        self.clock = clock
        self.interval = interval
        self.observe = observe
        self.last = 0.0
        self._expected = 0.0
        self._call: Any = None

    def start(self) -> None:
        self._expected = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        now = self.clock.seconds()
        self.last = max(0.0, now - self._expected)
        self.observe(self.last)
        self._expected = now + self.interval
        self._call = self.clock.callLater(self.interval, self._tick)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class NodeCollector:
    """Reads the node's own counters at scrape time (see the module docstring)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.node = metrics.node

    def _feature(self, name: str) -> Any:
        try:
            return self.node.feature(name)
        except KeyError:
            return None

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        for histogram in (metrics.ack_latency, metrics.commit_latency, metrics.batch_size, metrics.reactor_lag):
            yield histogram.family()
        yield from self._connections()
        yield from self._messages()
        yield from self._storage()
        yield from self._cluster()
        yield from self._dependencies()
        yield from self._push()
        yield from self._webhooks()
        yield from self._calls()
        yield from self._rooms()
        node = self.node
        yield GaugeMetricFamily(
            "coffeechat_reactor_lag_last_seconds", "The latest reactor lag measured", value=self.metrics.lag.last
        )
        yield GaugeMetricFamily("coffeechat_draining", "1 while the node drains (SIGTERM)", value=int(node.draining))
        info = GaugeMetricFamily("coffeechat_node", "This node (always 1), by name", labels=["node"])
        info.add_metric([node.node], 1)
        yield info

    def _connections(self) -> Iterator[Metric]:
        node = self.node
        gauge = GaugeMetricFamily("coffeechat_connections", "Open connections, by transport", labels=["transport"])
        for transport, count in sorted(node.connections.items()):
            gauge.add_metric([transport], count)
        yield gauge
        router = node.router
        yield GaugeMetricFamily(
            "coffeechat_online_users", "Users with a device logged in here", value=router.user_count
        )
        yield GaugeMetricFamily("coffeechat_devices", "Devices logged in here", value=router.device_count)
        logins = CounterMetricFamily(
            "coffeechat_logins", "Logins checked here, by method and result", labels=["method", "result"]
        )
        accounts = self._feature("accounts")
        counts = accounts.logins if accounts is not None else {}
        for method in ("password", "token"):
            for result in ("ok", "failed"):
                logins.add_metric([method, result], counts.get((method, result), 0))
        yield logins

    def _messages(self) -> Iterator[Metric]:
        node = self.node
        received = CounterMetricFamily(
            "coffeechat_messages_received",
            "Messages from senders on this node, stored, by conversation kind",
            labels=["kind"],
        )
        for kind, count in sorted(self.metrics.received.items()):
            received.add_metric([kind], count)
        yield received
        names = {kind.cls: kind.name for kind in node.registry.push_kinds.values()}
        counts = {"message": 0}
        for cls, count in list(node.router.delivered.items()):
            name = names.get(cls, cls.__name__)
            counts[name] = counts.get(name, 0) + count
        sent = CounterMetricFamily(
            "coffeechat_pushes_sent",
            "Pushes sent to devices on this node, by kind (message: MSG_DATA)",
            labels=["kind"],
        )
        for name, count in sorted(counts.items()):
            sent.add_metric([name], count)
        yield sent
        messages = self._feature("messages")
        yield CounterMetricFamily(
            "coffeechat_messages_caught_up",
            "Messages pushed by catch-ups after a cluster outage",
            value=getattr(messages, "caught_up", 0),
        )
        yield GaugeMetricFamily(
            "coffeechat_unacked_pushes",
            "Pushes awaiting a delivery ack, on every device here",
            value=sum(getattr(d, "unacked_count", 0) for d in node.router.all_devices()),
        )

    def _storage(self) -> Iterator[Metric]:
        node = self.node
        store = node.store
        yield GaugeMetricFamily(
            "coffeechat_storage_writes_waiting", "Message writes waiting for storage", value=node.flow.in_flight
        )
        yield GaugeMetricFamily(
            "coffeechat_paused_connections",
            "Connections not read from while storage is behind",
            value=node.flow.paused_count,
        )
        yield CounterMetricFamily(
            "coffeechat_store_commits", "Write transactions committed", value=getattr(store, "commits", 0)
        )
        yield CounterMetricFamily(
            "coffeechat_store_operations", "Write operations committed", value=getattr(store, "ops_committed", 0)
        )
        yield CounterMetricFamily(
            "coffeechat_store_replays",
            "Batches replayed with savepoints because one operation failed",
            value=getattr(store, "replays", 0),
        )

    def _cluster(self) -> Iterator[Metric]:
        cluster = self.node.cluster
        presence = self.node.presence

        def value(name: str) -> int:
            return getattr(cluster, name, 0) if cluster is not None else 0

        payloads = CounterMetricFamily(
            "coffeechat_cluster_payloads", "Node-to-node payloads, by direction", labels=["direction"]
        )
        payloads.add_metric(["sent"], value("sent") + value("broadcasts"))
        payloads.add_metric(["received"], value("received_payloads"))
        yield payloads
        traffic = CounterMetricFamily(
            "coffeechat_cluster_bytes", "Node-to-node payload bytes, by direction", labels=["direction"]
        )
        traffic.add_metric(["sent"], value("sent_bytes"))
        traffic.add_metric(["received"], value("received_bytes"))
        yield traffic
        yield CounterMetricFamily(
            "coffeechat_cluster_pushes_received",
            "Pushes from other nodes delivered to devices here",
            value=value("received_pushes"),
        )
        yield CounterMetricFamily(
            "coffeechat_cluster_skipped",
            "Pushes or commands that could not be sent or read",
            value=value("skipped"),
        )
        yield GaugeMetricFamily(
            "coffeechat_cluster_queued",
            "Node-to-node payloads waiting for Redis",
            value=getattr(presence, "queued", 0),
        )
        yield CounterMetricFamily(
            "coffeechat_cluster_dropped",
            "Node-to-node payloads dropped while Redis was unreachable (queue full)",
            value=getattr(presence, "dropped_total", 0),
        )

    def _dependencies(self) -> Iterator[Metric]:
        node = self.node
        cluster = node.cluster
        storage = node.config.storage.backend
        presence = node.config.presence.backend
        # (dependency, backend): the backend label says which server (sqlite, postgres, redis)
        found = {
            ("storage", storage): getattr(node.store, "health", None),
            ("presence", presence): node.router.presence_health if cluster is not None else None,
            ("presence_locate", presence): cluster.presence_health if cluster is not None else None,
        }
        labels = ["dependency", "backend"]
        up = GaugeMetricFamily(
            "coffeechat_dependency_up", "1 when the dependency answers, 0 during an outage", labels=labels
        )
        failures = CounterMetricFamily(
            "coffeechat_dependency_failures",
            "Calls that failed because the dependency (database, Redis) was unreachable",
            labels=labels,
        )
        outages = CounterMetricFamily("coffeechat_dependency_outages", "Outages since start", labels=labels)
        for key, health in found.items():
            if health is None:
                continue
            up.add_metric(list(key), 0 if health.down else 1)
            failures.add_metric(list(key), health.total_failures)
            outages.add_metric(list(key), health.outages)
        yield up
        yield failures
        yield outages

    def _push(self) -> Iterator[Metric]:
        push = self._feature("push")
        backlog = GaugeMetricFamily(
            "coffeechat_push_backlog",
            "Push notifications not sent yet, by stage (queued: messages not decided yet)",
            labels=["stage"],
        )
        stages = {"queued": 0, "pending": 0, "retrying": 0, "in_flight": 0}
        if push is not None:
            stages = {
                "queued": len(push.queue),
                "pending": len(push.pending),
                "retrying": push.waiting,
                "in_flight": push.in_flight,
            }
        for stage, count in stages.items():
            backlog.add_metric([stage], count)
        yield backlog
        outcomes = CounterMetricFamily(
            "coffeechat_push_notifications", "Push notifications, by outcome", labels=["outcome"]
        )
        stats = push.stats if push is not None else {}
        for outcome in ("sent", "failed", "retried", "dropped", "dead", "given_up", "overflow"):
            outcomes.add_metric([outcome], stats.get(outcome, 0))
        yield outcomes

    def _webhooks(self) -> Iterator[Metric]:
        webhooks = self._feature("webhooks")
        yield GaugeMetricFamily(
            "coffeechat_webhook_queue",
            "Webhook events waiting to be written to the outbox",
            value=webhooks.queued if webhooks is not None else 0,
        )
        backlog = GaugeMetricFamily(
            "coffeechat_webhook_backlog",
            "Webhook items not delivered yet, per endpoint and kind (read every metrics.backlog_interval)",
            labels=["endpoint", "kind"],
        )
        for (endpoint, kind), count in sorted(self.metrics.webhook_backlog.items()):
            backlog.add_metric([endpoint, kind], count)
        yield backlog
        yield CounterMetricFamily(
            "coffeechat_webhook_dropped",
            "Webhook events dropped because the outbox queue was full",
            value=webhooks.dropped if webhooks is not None else 0,
        )

    def _calls(self) -> Iterator[Metric]:
        calls = self._feature("calls")
        stats = calls.stats if calls is not None else {}
        yield self.metrics.call_setup.family()
        yield GaugeMetricFamily(
            "coffeechat_calls_active",
            "Calls whose home is this node, ringing or answered",
            value=len(calls) if calls is not None else 0,
        )
        yield CounterMetricFamily(
            "coffeechat_calls_started", "Calls invited here (their claims taken)", value=stats.get("calls", 0)
        )
        yield CounterMetricFamily(
            "coffeechat_calls_answered", "Calls held here answered by an invitee", value=stats.get("answered", 0)
        )
        ended = CounterMetricFamily(
            "coffeechat_calls_ended",
            "Calls held here that ended, by result (one per call record: per pair without a group)",
            labels=["result"],
        )
        results = dict(calls.results) if calls is not None else {}
        for result in (*CALL_RESULTS, *sorted(set(results) - set(CALL_RESULTS))):
            ended.add_metric([result], results.get(result, 0))
        yield ended
        yield CounterMetricFamily(
            "coffeechat_call_commands_forwarded",
            "Call commands from devices here forwarded to the call's home node",
            value=stats.get("forwarded", 0),
        )

    def _rooms(self) -> Iterator[Metric]:
        rooms = self._feature("rooms")
        held = list(rooms.rooms.values()) if rooms is not None else []

        def value(name: str) -> int:
            return getattr(rooms, name, 0) if rooms is not None else 0

        yield GaugeMetricFamily(
            "coffeechat_rooms_held", "Chat rooms with members connected here", value=sum(1 for r in held if r.members)
        )
        yield GaugeMetricFamily(
            "coffeechat_room_members", "Room memberships of connections here", value=sum(len(r.members) for r in held)
        )
        yield CounterMetricFamily(
            "coffeechat_room_messages_accepted",
            "Room messages accepted from connections here (sent on to the room)",
            value=value("accepted"),
        )
        yield GaugeMetricFamily(
            "coffeechat_room_messages_held",
            "Room messages waiting for the moderation callback's verdict now",
            value=value("held"),
        )
        yield CounterMetricFamily(
            "coffeechat_room_deliveries",
            "ROOM_MSG_NOTIFY frames pushed to connections here (one per member per batch)",
            value=value("delivered"),
        )
        yield CounterMetricFamily(
            "coffeechat_room_batches",
            "Room message batches delivered here, one per room per turn",
            value=value("batches"),
        )
        yield CounterMetricFamily(
            "coffeechat_room_messages_busy",
            "Room messages refused ROOM_BUSY: over the room's rate",
            value=value("busy"),
        )
        yield CounterMetricFamily(
            "coffeechat_room_payloads", "rooms/msgs payloads sent to other nodes", value=value("payloads")
        )
        yield CounterMetricFamily("coffeechat_room_store_writes", "Room message batches stored", value=value("writes"))
        yield CounterMetricFamily(
            "coffeechat_room_store_failures", "Room message batches whose write failed", value=value("write_failures")
        )
        yield CounterMetricFamily(
            "coffeechat_room_messages_unstored",
            "Room messages never stored (delivered, but storage was too far behind)",
            value=value("dropped_writes"),
        )


class Metrics:
    """The node's registry, its histograms and the exposition (``GET /metrics``)."""

    def __init__(self, api: ModuleAPI, config: Config) -> None:
        self.api = api
        self.config = config
        self.node = api.node
        self.registry = CollectorRegistry()
        self.received = {"single": 0, "group": 0}
        self.webhook_backlog: dict[tuple[str, str], int] = {}
        self.ack_latency = SingleWriterHistogram(
            "coffeechat_delivery_ack_seconds", "From a push to its delivery ack", ACK_BUCKETS
        )
        self.commit_latency = SingleWriterHistogram(
            "coffeechat_store_commit_seconds", "One group-commit transaction, from BEGIN to COMMIT", COMMIT_BUCKETS
        )
        self.batch_size = SingleWriterHistogram(
            "coffeechat_store_batch_size", "Write operations per group-commit transaction", BATCH_BUCKETS
        )
        self.reactor_lag = SingleWriterHistogram(
            "coffeechat_reactor_lag_seconds", "How late the reactor runs a timed call", LAG_BUCKETS
        )
        self.call_setup = SingleWriterHistogram(
            "coffeechat_call_setup_seconds", "A call's set-up, from its invite to the first 200 OK", CALL_SETUP_BUCKETS
        )
        self.lag = LagProbe(api.clock, config.reactor_lag_interval, self.reactor_lag.observe)
        self.registry.register(NodeCollector(self))
        ProcessCollector(registry=self.registry)

    # -- observers

    def message_stored(self, message: Any, sender: Any, device: Any) -> None:
        kind = _KINDS.get(message.session_type, "other")
        self.received[kind] = self.received.get(kind, 0) + 1

    def observe_commit(self, ops: int, seconds: float) -> None:
        """The store's writer thread (its only writer), after each committed batch."""
        self.commit_latency.observe(seconds)
        self.batch_size.observe(ops)

    def start(self) -> None:
        self.node.ack_observer = self.ack_latency.observe
        store = self.node.store
        if hasattr(store, "commit_observer"):
            store.commit_observer = self.observe_commit
        calls = self._calls_feature()
        if calls is not None and hasattr(calls, "setup_observer"):
            calls.setup_observer = self.call_setup.observe
        self.lag.start()

    def stop(self) -> None:
        self.lag.stop()
        if self.node.ack_observer == self.ack_latency.observe:
            self.node.ack_observer = None
        calls = self._calls_feature()
        if calls is not None and getattr(calls, "setup_observer", None) == self.call_setup.observe:
            calls.setup_observer = None

    def _calls_feature(self) -> Any:
        try:
            return self.node.feature("calls")
        except KeyError:
            return None

    async def refresh_backlog(self) -> None:
        """Read the webhook endpoints' backlog from storage (a query: not at every scrape)."""
        try:
            webhooks = self.node.feature("webhooks")
        except KeyError:
            return
        if not webhooks.workers:
            self.webhook_backlog = {}
            return
        backlog: dict[tuple[str, str], int] = {}
        for entry in await webhooks.status():  # in an outage the last figures stand (periodic)
            backlog[entry["name"], "messages"] = entry.get("backlog_messages", 0)
            backlog[entry["name"], "events"] = entry.get("backlog_events", 0)
        self.webhook_backlog = backlog

    # -- exposition

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def authorized(self, call: HttpCall) -> bool:
        token = self.config.token
        if not token:
            return True
        given = call.bearer
        return bool(given) and hmac.compare_digest(
            hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
        )

    async def serve(self, call: HttpCall) -> HttpReply:
        """``GET /metrics``: the Prometheus text format."""
        if not self.authorized(call):
            return HttpReply(
                401,
                {"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Bearer realm="coffeechat-metrics"'},
                b"a valid metrics token is required\n",
            )
        return HttpReply(200, {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Cache-Control": "no-store"}, self.text())


def setup(api: ModuleAPI) -> Metrics:
    """The registry, the observers (on start), the backlog refresh and ``GET /metrics``."""
    config: Config = api.config
    metrics = Metrics(api, config)
    api.hook("message/stored", metrics.message_stored)
    api.on_start(metrics.start)
    api.on_stop(metrics.stop)
    api.periodic(config.backlog_interval, lambda: defer.ensureDeferred(metrics.refresh_backlog()), now=True)
    if config.http:
        api.route("GET", "/metrics", metrics.serve, auth="public", summary="Prometheus metrics")
    return metrics
