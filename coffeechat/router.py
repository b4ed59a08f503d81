"""The session manager: which devices of which users are connected to this node, and pushes to them."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from coffeechat.interfaces import IDevice, ILocalDevices, IPresence
from coffeechat.model import Push

log = Logger()


@implementer(ILocalDevices)
class Router:
    """Tracks the local devices of each user and routes pushes to them.

    Presence (who is online anywhere) is told of every change.  In a cluster, ``remote`` (a
    :class:`coffeechat.cluster.Cluster`) also takes every push, for the user's devices on other
    nodes; on a single node it is None and costs nothing.
    """

    def __init__(self, presence: IPresence, max_devices: int, remote: Any = None) -> None:
        self.presence = presence
        self.max_devices = max_devices
        self.remote = remote
        self._devices: dict[int, list[IDevice]] = {}
        self.presence_failures = 0

    def attach(self, device: IDevice) -> list[IDevice]:
        """Register a freshly logged-in device; return the oldest devices it displaces when the
        user would exceed ``max_devices`` (the caller disconnects them)."""
        devices = self._devices.setdefault(device.user_id, [])
        devices.append(device)
        displaced = []
        while len(devices) > self.max_devices:
            displaced.append(devices.pop(0))
        self.presence.device_online(device.user_id, device.device_id, device.client_type).addErrback(
            self._presence_failed
        )
        for old in displaced:
            self.presence.device_offline(old.user_id, old.device_id).addErrback(self._presence_failed)
        return displaced

    def _presence_failed(self, failure) -> None:
        """A shared presence that is down: the node re-writes its devices when it is back, so
        one line per 1000 failures says enough."""
        if self.presence_failures % 1000 == 0:
            log.warn(
                "presence update failed ({count} so far): {error}",
                count=self.presence_failures + 1,
                error=failure.getErrorMessage(),
            )
        self.presence_failures += 1

    def detach(self, device: IDevice) -> None:
        """Forget a device that disconnected (a no-op if it was displaced already)."""
        devices = self._devices.get(device.user_id)
        if not devices or device not in devices:
            return
        devices.remove(device)
        if not devices:
            del self._devices[device.user_id]
        self.presence.device_offline(device.user_id, device.device_id).addErrback(self._presence_failed)

    def devices_of(self, user_id: int) -> list[IDevice]:
        return list(self._devices.get(user_id, ()))

    def is_online(self, user_id: int) -> bool:
        return user_id in self._devices

    def push(self, user_id: int, push: Push, except_device: IDevice | None = None) -> int:
        """Send ``push`` to every device of ``user_id`` but ``except_device``, here and (in a
        cluster) on other nodes; return how many local devices got it."""
        remote = self.remote
        if remote is not None:
            remote.route(user_id, push)
        return self.push_local(user_id, push, except_device)

    def push_local(self, user_id: int, push: Push, except_device: IDevice | None = None) -> int:
        """Send ``push`` to every device of ``user_id`` on this node but ``except_device``."""
        devices = self._devices.get(user_id)
        if not devices:
            return 0
        count = 0
        for device in devices:
            if device is not except_device:
                device.push(push)
                count += 1
        return count

    def all_devices(self) -> list[IDevice]:
        return [d for devices in self._devices.values() for d in devices]

    @property
    def user_count(self) -> int:
        return len(self._devices)

    @property
    def device_count(self) -> int:
        return sum(len(d) for d in self._devices.values())
