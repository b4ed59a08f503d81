"""Delivery between the nodes of a cluster, over the presence backend's bus.

A node stores a message (in the shared storage) and pushes it to its own devices of the
recipients; the pushes for devices on other nodes are collected for one reactor turn, the shared
presence is asked once where those users are, and each node that holds some of them gets one
payload with each push encoded once and the users it is for.  Nothing goes to nodes that hold
none of the recipients, and with no other live node nothing is looked up at all.

What crosses is typed and registered once (Synapse's replication commands): a push travels as
its kind's name and its fields (:mod:`coffeechat.codec`), and every other payload is a named
cluster command that a feature registered (``ModuleAPI.cluster_command``), dispatched by name.
A kind or command this node does not know is skipped and logged, never a reason to drop the rest
of a payload: the nodes of a cluster may run different versions during a rolling upgrade.

The bus may drop payloads (Redis pub/sub does when a subscriber is cut off), so correctness never
rests on it: when its subscription is back the node fires ``cluster/resumed`` and the features
catch their devices up from storage (docs/delivery.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from coffeechat.codec import from_wire, to_wire
from coffeechat.health import Dependency
from coffeechat.interfaces import IClusterBus, IClusterReceiver, IPresence
from coffeechat.model import Push
from coffeechat.modules import Registry

log = Logger()

MAX_PUSHES_PER_PAYLOAD = 500
_PUSH = "push"  # the one command the core sends itself


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@implementer(IClusterReceiver)
class Cluster:
    """This node's side of cross-node delivery (see the module docstring).

    ``push_local(user_id, push)`` pushes to this node's devices of a user (the router's)."""

    def __init__(
        self,
        presence: IPresence,
        bus: IClusterBus,
        registry: Registry,
        clock: IReactorTime,
        push_local: Callable[[int, Push], int],
    ) -> None:
        self.presence = presence
        self.bus = bus
        self.registry = registry
        self.clock = clock
        self.node = presence.node
        self._push_local = push_local
        self._batch: list[tuple[int, Push]] = []
        self._scheduled = False
        self._in_flight = False
        self._unknown: set[str] = set()  # kinds and commands already logged as unknown
        self.sent = 0  # payloads published, for tests and metrics
        self.sent_bytes = 0
        self.broadcasts = 0
        self.received_payloads = 0
        self.received_bytes = 0
        self.received_pushes = 0
        self.skipped = 0  # pushes or commands that could not be sent or read
        self.locate_failures = 0
        self.presence_health = Dependency("shared presence (locating users)", clock)

    def start(self) -> Any:
        return self.bus.listen(self)

    def alone(self) -> bool:
        return len(self.presence.live_nodes()) < 2

    # -- outgoing

    def route(self, user_id: int, push: Push) -> None:
        """Deliver ``push`` to ``user_id``'s devices on other nodes (batched per reactor turn)."""
        if self.alone():
            return
        self._batch.append((user_id, push))
        if not self._scheduled and not self._in_flight:
            self._scheduled = True
            self.clock.callLater(0, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._batch = self._batch, []
        if not batch:
            return
        self._in_flight = True
        d = self.presence.locate({user_id for user_id, _ in batch})
        d.addCallbacks(self._located_ok, self._locate_failed, callbackArgs=(batch,), errbackArgs=(batch,))
        d.addErrback(lambda f: log.failure("cross-node delivery failed", f))
        d.addBoth(self._flushed)

    def _flushed(self, _: object) -> None:
        self._in_flight = False
        if self._batch and not self._scheduled:
            self._scheduled = True
            self.clock.callLater(0, self._flush)

    def _located_ok(self, where: dict[int, set[str]], batch: list[tuple[int, Push]]) -> None:
        self.presence_health.ok()
        self._located(where, batch)

    def _located(self, where: dict[int, set[str]] | None, batch: list[tuple[int, Push]]) -> None:
        """One payload per node holding some of the users (``where`` None: every other live
        node, each pushing to those it holds)."""
        others = self.presence.live_nodes() - {self.node} if where is None else ()
        per_node: dict[str, dict[int, tuple[Any, list[int]]]] = {}
        for user_id, push in batch:
            nodes = others if where is None else where.get(user_id, ())
            if not nodes:
                continue
            encoded = self._encoded(push)
            if encoded is None:
                continue
            for node in nodes:
                entries = per_node.setdefault(node, {})
                entry = entries.get(id(push))
                if entry is None:
                    entries[id(push)] = (encoded, [user_id])
                else:
                    entry[1].append(user_id)
        for node, entries in per_node.items():
            self._publish_pushes(node, list(entries.values()))

    def _locate_failed(self, failure: Failure, batch: list[tuple[int, Push]]) -> None:
        """Presence could not say where the users are: send the batch to every other live node,
        each pushes to those it holds (more traffic, nothing missed).  Logged once per outage
        (coffeechat.health), not once per batch."""
        self.locate_failures += 1
        self.presence_health.failed(f"locating users failed ({failure.getErrorMessage()}); sending to all nodes")
        self._located(None, batch)

    def _encoded(self, push: Push) -> Any:
        """The push as it crosses (its kind's name and fields), once however many nodes it goes
        to; None (and logged once per kind) for a push that cannot cross."""
        cache = push.cache
        encoded = cache.get("cluster")
        if encoded is None:
            kind = self.registry.push_kinds.get(type(push))
            try:
                if kind is None:
                    raise ValueError(f"{type(push).__name__} is not a registered push kind")
                encoded = cache["cluster"] = {"k": kind.name, "f": to_wire(push)}
            except Exception as e:
                self.skipped += 1
                self._unknown_once(type(push).__name__, f"a {type(push).__name__} push cannot go to other nodes: {e}")
                return None
        return encoded

    def _publish_pushes(self, node: str, entries: list[tuple[Any, list[int]]]) -> None:
        for start in range(0, len(entries), MAX_PUSHES_PER_PAYLOAD):
            chunk = entries[start : start + MAX_PUSHES_PER_PAYLOAD]
            payload = _dumps({"t": _PUSH, "from": self.node, "d": [[p, users] for p, users in chunk]})
            self.bus.publish(node, payload)
            self.sent += 1
            self.sent_bytes += len(payload)

    def send(self, node: str, name: str, data: dict) -> None:
        """Cluster command ``name`` to one other node (a room's messages go only to the nodes
        that hold members of it: coffeechat/features/rooms.py)."""
        if node != self.node:
            payload = _dumps({"t": name, "from": self.node, "d": data})
            self.bus.publish(node, payload)
            self.sent += 1
            self.sent_bytes += len(payload)

    def broadcast(self, name: str, data: dict) -> None:
        """Cluster command ``name`` to every other node (nothing when this node is alone)."""
        if not self.alone():
            payload = _dumps({"t": name, "from": self.node, "d": data})
            self.bus.broadcast(payload)
            self.broadcasts += 1
            self.sent_bytes += len(payload)

    # -- incoming (IClusterReceiver)

    def received(self, payload: bytes) -> None:
        try:
            data = json.loads(payload)
            name = data["t"]
            sender = str(data.get("from", ""))
        except Exception:
            self.skipped += 1
            log.warn("a payload from another node is not JSON with a command: {payload!r}", payload=payload[:200])
            return
        if sender == self.node:
            return  # our own broadcast
        self.received_payloads += 1
        self.received_bytes += len(payload)
        if name == _PUSH:
            self._received_pushes(data.get("d"))
            return
        handler = self.registry.cluster_commands.get(name)
        if handler is None:
            self.skipped += 1
            self._unknown_once(f"command:{name}", f"node {sender} sent cluster command {name!r}, unknown here: ignored")
            return
        try:
            handler(data.get("d") or {}, sender)
        except Exception:
            log.failure("cluster command {name} from {sender} failed", name=name, sender=sender)

    def _received_pushes(self, entries: Any) -> None:
        if not isinstance(entries, list):
            self.skipped += 1
            return
        kinds = self.registry.push_names
        push_local = self._push_local
        for entry in entries:
            try:
                encoded, users = entry
                kind = kinds.get(encoded["k"])
                if kind is None:
                    self.skipped += 1
                    self._unknown_once(f"push:{encoded['k']}", f"push kind {encoded['k']!r} is unknown here: skipped")
                    continue
                push = from_wire(kind.cls, encoded["f"])
                targets = [int(u) for u in users]
            except Exception as e:
                self.skipped += 1
                log.warn("a push from another node could not be read: {error}", error=str(e)[:200])
                continue
            for user_id in targets:
                self.received_pushes += push_local(user_id, push)

    def resumed(self, lost_at: float) -> None:
        """Payloads sent to this node since ``lost_at`` may be lost: the features catch up."""
        log.info("the cluster subscription is back (lost at {lost_at:.0f}): catching up", lost_at=lost_at)
        self.registry.fire("cluster/resumed", lost_at)

    def _unknown_once(self, key: str, text: str) -> None:
        if key not in self._unknown:
            self._unknown.add(key)
            log.warn(text)
