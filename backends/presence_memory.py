"""In-process presence: the default for a single node, and a hub for several nodes in one process.

:class:`MemoryPresence` serves one node; with no other node there is nothing to deliver to, so
it has no bus.  :class:`MemoryHub` joins several in-process nodes the way Redis joins real ones
(shared presence, a channel per node, payloads delivered on a later reactor turn, subscriptions
that can be cut and restored), so that the cluster logic is tested deterministically on a memory
reactor; the Redis backend is tested against a real server.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from coffeechat.interfaces import IClusterBus, IClusterReceiver, ILocalDevices, IPresence
from coffeechat.model import NodeInfo


@implementer(IPresence)
class MemoryPresence:
    """Keeps online devices in a dict; enough when one node serves everybody."""

    def __init__(self, node: str = "local", devices: dict | None = None) -> None:
        self.node = node
        self._devices: dict[int, dict[str, tuple[str, int]]] = {} if devices is None else devices
        self._local: ILocalDevices | None = None
        self.started_at = 0.0

    def start(self, local: ILocalDevices) -> defer.Deferred:
        self._local = local
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        for user_id in list(self._devices):
            self._drop_node(user_id)
        return defer.succeed(None)

    def _drop_node(self, user_id: int) -> None:
        devices = self._devices.get(user_id, {})
        for device_id in [d for d, (node, _) in devices.items() if node == self.node]:
            del devices[device_id]
        if not devices:
            self._devices.pop(user_id, None)

    def device_online(self, user_id: int, device_id: str, client_type: int) -> defer.Deferred:
        self._devices.setdefault(user_id, {})[device_id] = (self.node, client_type)
        return defer.succeed(None)

    def device_offline(self, user_id: int, device_id: str) -> defer.Deferred:
        devices = self._devices.get(user_id)
        if devices is not None:
            devices.pop(device_id, None)
            if not devices:
                del self._devices[user_id]
        return defer.succeed(None)

    def _live(self) -> set[str]:
        return {self.node}

    def devices_of(self, user_id: int) -> defer.Deferred:
        live = self._live()
        devices = self._devices.get(user_id, {})
        return defer.succeed([(node, d, ct) for d, (node, ct) in devices.items() if node in live])

    def locate(self, user_ids) -> defer.Deferred:
        live = self._live() - {self.node}
        where: dict[int, set[str]] = {}
        for user_id in user_ids:
            nodes = {node for node, _ in self._devices.get(user_id, {}).values() if node in live}
            if nodes:
                where[user_id] = nodes
        return defer.succeed(where)

    def live_nodes(self) -> set[str]:
        return self._live()

    def online_count(self) -> defer.Deferred:
        live = self._live()
        return defer.succeed(sum(1 for ds in self._devices.values() if any(n in live for n, _ in ds.values())))

    def nodes(self) -> defer.Deferred:
        users = {u for u, ds in self._devices.items() if any(n == self.node for n, _ in ds.values())}
        count = sum(1 for ds in self._devices.values() for n, _ in ds.values() if n == self.node)
        return defer.succeed([NodeInfo(self.node, True, len(users), count, self.started_at, float("inf"))])


def create_presence(reactor: IReactorTime, config, node: str) -> MemoryPresence:
    """The ``presence.backend = "memory"`` factory."""
    return MemoryPresence(node)


class MemoryHub:
    """What Redis is to real nodes, for several nodes in one process (see the module docstring)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.devices: dict[int, dict[str, tuple[str, int]]] = {}
        self.members: dict[str, HubPresence] = {}
        self.dead: set[str] = set()
        self.dropped = 0  # payloads lost to cut subscriptions
        self.delivered: list[tuple[str, bytes]] = []  # (node, payload), for tests

    def presence(self, node: str) -> HubPresence:
        member = HubPresence(self, node)
        self.members[node] = member
        return member

    def kill(self, node: str) -> None:
        """The node died: its lease runs out (its entries vanish for the others), it hears nothing."""
        self.dead.add(node)

    def cut(self, node: str) -> None:
        """The node's subscription is lost: payloads for it are dropped until :meth:`restore`."""
        member = self.members[node]
        member.lost_at = self.clock.seconds()

    def restore(self, node: str) -> None:
        member = self.members[node]
        lost_at, member.lost_at = member.lost_at, None
        if lost_at is not None and member.receiver is not None:
            member.receiver.resumed(lost_at)

    def _deliver(self, node: str, payload: bytes) -> None:
        member = self.members.get(node)
        if member is None or node in self.dead or member.receiver is None or member.lost_at is not None:
            self.dropped += 1
            return
        self.delivered.append((node, payload))
        self.clock.callLater(0, member.receiver.received, payload)


@implementer(IPresence, IClusterBus)
class HubPresence(MemoryPresence):
    """One node's presence and bus on a :class:`MemoryHub`."""

    def __init__(self, hub: MemoryHub, node: str) -> None:
        super().__init__(node, hub.devices)
        self.hub = hub
        self.receiver: IClusterReceiver | None = None
        self.lost_at: float | None = None
        self.published = 0

    def _live(self) -> set[str]:
        return (set(self.hub.members) - self.hub.dead) | {self.node}

    def listen(self, receiver: IClusterReceiver) -> defer.Deferred:
        self.receiver = receiver
        return defer.succeed(None)

    def publish(self, node: str, payload: bytes) -> defer.Deferred:
        self.published += 1
        if self.node not in self.hub.dead:
            self.hub._deliver(node, payload)
        return defer.succeed(None)

    def broadcast(self, payload: bytes) -> defer.Deferred:
        for node in list(self.hub.members):
            self.publish(node, payload)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        self.receiver = None
        return super().stop()
