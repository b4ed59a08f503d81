"""The session manager: which devices of which users are connected to this node, and pushes to them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from coffeechat.health import Dependency
from coffeechat.interfaces import IDevice, ILocalDevices, IPresence
from coffeechat.model import Push

log = Logger()

MAX_TRACKED_CONVERSATIONS = 256  # per device: conversations whose pushed positions are kept
MAX_RANGES = 1024  # per device and conversation: runs of positions kept (the oldest is forgotten)
MAX_RANGES_PER_DEVICE = 2048  # in all its conversations (the least recently pushed go first)


class Pushed:
    """What one device has of each conversation on this connection: the positions (seqs) pushed
    to it, or that it sent itself, as sorted runs ``[first, last]``.

    Why runs and not one "last pushed" number: pushes from other nodes may be lost (a Redis
    outage) while later ones from this node arrive, so a device can hold 7 and 9 without 8, and a
    catch-up must push 8 alone.  In a conversation where both sides write, every other seq may
    be missing after an outage: hundreds of gaps, which the catch-up fills (the runs merge into
    one again).  Bounded: at most MAX_TRACKED_CONVERSATIONS conversations and
    MAX_RANGES_PER_DEVICE runs in all (the least recently pushed conversation is forgotten first),
    MAX_RANGES in one (its oldest run is forgotten).  What is forgotten may be pushed again by a
    catch-up (a duplicate the client drops by server_msg_id), never taken as delivered."""

    __slots__ = ("_convs", "_total")

    def __init__(self) -> None:
        self._convs: dict[str, list[list[int]]] = {}
        self._total = 0  # runs in all conversations

    def __len__(self) -> int:
        return len(self._convs)

    def add(self, conv: str, seq: int) -> bool:
        """Record ``seq`` of ``conv``; False when the device had it already."""
        convs = self._convs
        runs = convs.pop(conv, None)  # re-inserted last: the dict's order is the recency
        if runs is None:
            if len(convs) >= MAX_TRACKED_CONVERSATIONS:
                self._total -= len(convs.pop(next(iter(convs))))
            convs[conv] = [[seq, seq]]
            self._total += 1
            self._trim()
            return True
        convs[conv] = runs
        last = runs[-1]
        if seq == last[1] + 1:  # the usual case: the next one
            last[1] = seq
            return True
        before = len(runs)
        if seq > last[1]:
            runs.append([seq, seq])
        else:
            for i, run in enumerate(runs):
                if seq < run[0] - 1:
                    runs.insert(i, [seq, seq])
                    break
                if seq == run[0] - 1:
                    run[0] = seq
                    if i and runs[i - 1][1] == seq - 1:
                        runs[i - 1][1] = run[1]
                        del runs[i]
                    break
                if seq <= run[1]:
                    return False
                if seq == run[1] + 1:
                    run[1] = seq
                    if i + 1 < len(runs) and runs[i + 1][0] == seq + 1:
                        run[1] = runs[i + 1][1]
                        del runs[i + 1]
                    break
        if len(runs) > MAX_RANGES:
            del runs[0]
        self._total += len(runs) - before
        self._trim()
        return True

    def _trim(self) -> None:
        convs = self._convs
        while self._total > MAX_RANGES_PER_DEVICE and len(convs) > 1:
            self._total -= len(convs.pop(next(iter(convs))))

    def has(self, conv: str, seq: int) -> bool:
        for first, last in self._convs.get(conv, ()):
            if first <= seq <= last:
                return True
        return False

    def runs(self, conv: str) -> list[tuple[int, int]]:
        return [(first, last) for first, last in self._convs.get(conv, ())]


@implementer(ILocalDevices)
class Router:
    """Tracks the local devices of each user and routes pushes to them.

    Presence (who is online anywhere) is told of every change.  In a cluster, ``remote`` (a
    :class:`coffeechat.cluster.Cluster`) also takes every push, for the user's devices on other
    nodes; on a single node it is None and costs nothing.
    """

    def __init__(
        self, presence: IPresence, max_devices: int, remote: Any = None, clock: IReactorTime | None = None
    ) -> None:
        self.presence = presence
        self.max_devices = max_devices
        self.remote = remote
        self._devices: dict[int, list[IDevice]] = {}
        self.presence_failures = 0
        self._presence_health = Dependency("shared presence (device updates)", clock) if clock is not None else None
        # Push kinds with a position in a conversation (messages): what each device has, so that
        # nothing is pushed twice to one connection (a catch-up, a payload sent again by the bus).
        self._positions: dict[type, Callable[[Any], tuple[str, int]]] = {}
        self._pushed: dict[IDevice, Pushed] = {}  # device (hashed by identity) -> what it has
        self.duplicates_skipped = 0
        #: pushes sent to devices here, per push kind (read by the metrics at scrape time)
        self.delivered: dict[type, int] = {}

    def track_positions(self, kind: type, position: Callable[[Any], tuple[str, int]]) -> None:
        """Pushes of ``kind`` have a position, ``(conversation, seq)``: a device is pushed each
        position at most once per connection, and :meth:`pushed` says what it has."""
        self._positions[kind] = position

    def pushed(self, device: IDevice) -> Pushed | None:
        """What ``device`` (attached here) has been pushed of the tracked kinds."""
        return self._pushed.get(device)

    def mark(self, device: IDevice, conv: str, seq: int) -> None:
        """``device`` has ``seq`` of ``conv`` without a push (it sent that message itself)."""
        pushed = self._pushed.get(device)
        if pushed is not None:
            pushed.add(conv, seq)

    def attach(self, device: IDevice) -> list[IDevice]:
        """Register a freshly logged-in device; return the oldest devices it displaces when the
        user would exceed ``max_devices`` (the caller disconnects them)."""
        devices = self._devices.setdefault(device.user_id, [])
        devices.append(device)
        self._pushed[device] = Pushed()
        displaced = []
        while len(devices) > self.max_devices:
            old = devices.pop(0)
            self._pushed.pop(old, None)
            displaced.append(old)
        self.presence.device_online(device.user_id, device.device_id, device.client_type).addCallbacks(
            self._presence_ok, self._presence_failed
        )
        for old in displaced:
            self.presence.device_offline(old.user_id, old.device_id).addCallbacks(
                self._presence_ok, self._presence_failed
            )
        return displaced

    @property
    def presence_health(self) -> Dependency | None:
        """The shared presence as device updates see it (None without a clock: tests)."""
        return self._presence_health

    def _presence_ok(self, _: object) -> None:
        if self._presence_health is not None:
            self._presence_health.ok()

    def _presence_failed(self, failure) -> None:
        """A shared presence that is down: the node re-writes its devices when it is back, so
        one line when it goes and one when it is back say enough (coffeechat.health)."""
        self.presence_failures += 1
        if self._presence_health is not None:
            self._presence_health.failed(failure.getErrorMessage())
        elif self.presence_failures % 1000 == 1:
            log.warn(
                "presence update failed ({count} so far): {error}",
                count=self.presence_failures,
                error=failure.getErrorMessage(),
            )

    def detach(self, device: IDevice) -> None:
        """Forget a device that disconnected (a no-op if it was displaced already)."""
        devices = self._devices.get(device.user_id)
        if not devices or device not in devices:
            return
        devices.remove(device)
        self._pushed.pop(device, None)
        if not devices:
            del self._devices[device.user_id]
        self.presence.device_offline(device.user_id, device.device_id).addCallbacks(
            self._presence_ok, self._presence_failed
        )

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
        position = self._positions.get(type(push))
        return self._deliver(devices, push, None if position is None else position(push), except_device)

    def push_many(self, user_ids: Iterable[int], push: Push, except_device: IDevice | None = None) -> int:
        """:meth:`push` to each of ``user_ids`` (a group's members): the position is read once for
        all of them; return how many local devices got it."""
        remote = self.remote
        devices_of = self._devices.get
        position = self._positions.get(type(push))
        where = None if position is None else position(push)
        devices: list[IDevice] = []
        for user_id in user_ids:
            if remote is not None:
                remote.route(user_id, push)
            here = devices_of(user_id)
            if here:
                devices += here
        return self._deliver(devices, push, where, except_device)

    def push_device(self, device: IDevice, push: Push) -> bool:
        """Push to one device of this node, unless it has that position already (a tracked kind);
        True when it was pushed."""
        position = self._positions.get(type(push))
        if position is not None:
            have = self._pushed.get(device)
            if have is not None and not have.add(*position(push)):
                self.duplicates_skipped += 1
                return False
        device.push(push)
        delivered = self.delivered
        delivered[type(push)] = delivered.get(type(push), 0) + 1
        return True

    def _deliver(
        self, devices: list[IDevice], push: Push, where: tuple[str, int] | None, except_device: IDevice | None
    ) -> int:
        """Push to ``devices`` but ``except_device``; a push with a position (``where``) only to
        those that do not have it yet (``except_device``, the sender's, has it now without a push)."""
        count = 0
        if where is None:
            for device in devices:
                if device is not except_device:
                    device.push(push)
                    count += 1
            self._count(push, count)
            return count
        conv, seq = where
        pushed = self._pushed
        for device in devices:
            have = pushed.get(device)
            if have is not None and not have.add(conv, seq):
                if device is not except_device:
                    self.duplicates_skipped += 1
                continue
            if device is not except_device:
                device.push(push)
                count += 1
        self._count(push, count)
        return count

    def _count(self, push: Push, count: int) -> None:
        if count:
            delivered = self.delivered
            delivered[type(push)] = delivered.get(type(push), 0) + count

    def all_devices(self) -> list[IDevice]:
        return [d for devices in self._devices.values() for d in devices]

    @property
    def user_count(self) -> int:
        return len(self._devices)

    @property
    def device_count(self) -> int:
        return sum(len(d) for d in self._devices.values())
