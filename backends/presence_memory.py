"""In-process presence: the default for a single node."""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.interfaces import IPresence


@implementer(IPresence)
class MemoryPresence:
    """Keeps online devices in a dict; enough when one node serves everybody."""

    def __init__(self, node: str = "local") -> None:
        self.node = node
        self._devices: dict[int, dict[str, int]] = {}

    def device_online(self, user_id: int, device_id: str, client_type: int) -> defer.Deferred:
        self._devices.setdefault(user_id, {})[device_id] = client_type
        return defer.succeed(None)

    def device_offline(self, user_id: int, device_id: str) -> defer.Deferred:
        devices = self._devices.get(user_id)
        if devices is not None:
            devices.pop(device_id, None)
            if not devices:
                del self._devices[user_id]
        return defer.succeed(None)

    def devices_of(self, user_id: int) -> defer.Deferred:
        devices = self._devices.get(user_id, {})
        return defer.succeed([(self.node, device_id, ct) for device_id, ct in devices.items()])

    def online_count(self) -> defer.Deferred:
        return defer.succeed(len(self._devices))
