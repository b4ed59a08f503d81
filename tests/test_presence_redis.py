"""The Redis presence and node-to-node bus (backends/presence_redis.py) against a real
redis-server started by the test (tests/redisserver.py): two or three nodes in one process, each
a RedisPresence with its own connections, as separate processes would have.

Leases are short (2 s) so that expiry is quick; everything waits by polling with a deadline."""

from __future__ import annotations

import os
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from zope.interface import implementer
from zope.interface.verify import verifyObject

from coffeechat.config import PresenceConfig
from coffeechat.interfaces import IClusterBus, IClusterReceiver, IPresence
from coffeechat.model import NodeInfo
from tests.redisserver import RedisSentinel, RedisServer, redis_sentinel, redis_server  # noqa: F401

try:
    from coffeechat.backends.presence_redis import (
        CONTROL_PREFIX,
        RedisAddress,
        RedisPresence,
        RedisUnavailable,
        create_presence,
        parse_redis_url,
    )
except ImportError as e:  # txredisapi missing
    if os.environ.get("CI"):
        raise
    pytest.skip(f"the Redis presence backend cannot be imported: {e}", allow_module_level=True)

LEASE = 2.0
TIMEOUT = 1.0
P = "coffeechat:"


class Device:
    def __init__(self, user_id: int, device_id: str, client_type: int) -> None:
        self.user_id, self.device_id, self.client_type = user_id, device_id, client_type


class Local:
    """The node's own devices (what the router provides): the input, not the thing tested."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}

    @property
    def user_count(self) -> int:
        return len({d.user_id for d in self.devices.values()})

    @property
    def device_count(self) -> int:
        return len(self.devices)

    def all_devices(self) -> list[Device]:
        return list(self.devices.values())


@implementer(IClusterReceiver)
class Inbox:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.resumed_at: list[float] = []

    def received(self, payload: bytes) -> None:
        self.payloads.append(payload)

    def resumed(self, lost_at: float) -> None:
        self.resumed_at.append(lost_at)


class Node:
    """One RedisPresence with its local devices and its inbox."""

    def __init__(self, presence: RedisPresence) -> None:
        self.presence = presence
        self.local = Local()
        self.inbox = Inbox()

    async def start(self, listen: bool = True) -> Node:
        await self.presence.start(self.local)
        if listen:
            await self.presence.listen(self.inbox)
        return self

    async def online(self, user_id: int, n: int, client_type: int = 2) -> str:
        device_id = f"{self.presence.node}/{n}"
        self.local.devices[device_id] = Device(user_id, device_id, client_type)
        await self.presence.device_online(user_id, device_id, client_type)
        return device_id

    async def offline(self, device_id: str) -> None:
        device = self.local.devices.pop(device_id)
        await self.presence.device_offline(device.user_id, device_id)


def config(url: str, **overrides) -> PresenceConfig:
    settings = {"backend": "redis", "redis": url, "lease_seconds": LEASE, "timeout": TIMEOUT, "key_prefix": P}
    settings.update(overrides)
    c = PresenceConfig(**settings)
    c.validate()
    return c


@pytest_twisted.async_yield_fixture
async def make_node(redis_server):  # noqa: F811
    """Make (not start) nodes on the test's Redis; all are stopped at the end."""
    made: list[Node] = []

    def make(name: str, **overrides) -> Node:
        node = Node(RedisPresence(reactor, config(redis_server.url, **overrides), name))
        made.append(node)
        return node

    yield make
    for node in made:  # stop() is bounded even with Redis down
        await node.presence.stop()


async def until(condition, timeout: float = 10.0, step: float = 0.02):
    """Poll ``condition`` (a function, possibly async) until it is true; return its value.
    RedisUnavailable counts as "not yet"."""
    deadline = reactor.seconds() + timeout
    while True:
        try:
            value = condition()
            if hasattr(value, "__await__"):
                value = await value
        except RedisUnavailable:
            value = None
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await task.deferLater(reactor, step, lambda: None)


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def crash(node: Node) -> None:
    """What a kill -9 leaves: no renewal, connections gone, nothing removed from Redis."""
    p = node.presence
    p._renewal.stop()
    await p._cmd.stop()
    if p._sub is not None:
        await p._sub.stop()


async def failing(d) -> Exception:
    try:
        await d
    except Exception as e:
        return e
    raise AssertionError("did not fail")


def test_create_presence_provides_both_interfaces():
    p = create_presence(reactor, config("redis://127.0.0.1:1/0"), "n1")
    assert verifyObject(IPresence, p) and verifyObject(IClusterBus, p) and p.node == "n1"
    with pytest.raises(ValueError):
        RedisPresence(reactor, config("redis://127.0.0.1:1/0"), "a|b")


def test_redis_urls():
    assert parse_redis_url("redis://127.0.0.1:6380/2") == RedisAddress("127.0.0.1", 6380, "", 2)
    assert parse_redis_url("redis://:s%40cret@redis.example") == RedisAddress(
        "redis.example", 6379, "", 0, None, "s@cret"
    )
    assert parse_redis_url("redis://app:pw@h:1/3") == RedisAddress("h", 1, "", 3, "app", "pw")
    assert parse_redis_url("unix:///run/redis.sock?db=4") == RedisAddress("", 0, "/run/redis.sock", 4)
    with pytest.raises(ValueError):
        parse_redis_url("http://x")
    with pytest.raises(ValueError):
        parse_redis_url("redis://h/notanumber")


# -- presence between nodes


@pytest_twisted.ensureDeferred
async def test_two_nodes_see_each_others_devices(make_node, redis_server):  # noqa: F811
    a = await make_node("a").start()
    b = await make_node("b").start()
    await until(lambda: a.presence.live_nodes() == {"a", "b"} == b.presence.live_nodes())

    a1 = await a.online(1, 1, client_type=2)
    a2 = await a.online(1, 2, client_type=3)
    b1 = await b.online(1, 1, client_type=1)
    await b.online(2, 2)

    assert sorted(await b.presence.devices_of(1)) == [("a", a1, 2), ("a", a2, 3), ("b", b1, 1)]
    assert await a.presence.devices_of(3) == []
    # locate: other live nodes only, one answer for the batch, users without devices left out
    assert await a.presence.locate([1, 2, 3, 1]) == {1: {"b"}, 2: {"b"}}
    assert await b.presence.locate([1, 2, 3]) == {1: {"a"}}
    assert await b.presence.locate([]) == {}

    # the counts in the nodes entries are renewed every lease/4; a user on two nodes counts twice
    await until(lambda: _equals(a.presence.online_count(), 1 + 2), timeout=3)
    infos = await until(lambda: _nodes_when(b.presence, lambda i: i[0].online_users == 1), timeout=3)
    (ia, ib) = infos
    assert isinstance(ia, NodeInfo)
    assert (ia.name, ia.alive, ia.online_users, ia.devices) == ("a", True, 1, 2)
    assert (ib.name, ib.alive, ib.online_users, ib.devices) == ("b", True, 2, 2)
    assert 0 < ia.lease_left <= LEASE and ia.started_at > 1e9

    await a.offline(a1)
    assert sorted(await b.presence.devices_of(1)) == [("a", a2, 3), ("b", b1, 1)]
    await a.offline(a2)
    assert await b.presence.locate([1]) == {}
    assert redis_server.command("SMEMBERS", f"{P}nd:a") == []

    await b.presence.stop()
    assert await a.presence.devices_of(1) == []
    assert redis_server.command("HKEYS", f"{P}nodes") == [b"a"]
    assert redis_server.command("EXISTS", f"{P}lease:b", f"{P}nd:b", f"{P}u:1", f"{P}u:2") == 0
    await until(lambda: a.presence.live_nodes() == {"a"}, timeout=1)  # the "bye" announcement


async def _equals(d, expected) -> bool:
    return (await d) == expected


async def _nodes_when(presence, predicate):
    infos = await presence.nodes()
    return infos if predicate(infos) else None


@pytest_twisted.ensureDeferred
async def test_a_dead_node_vanishes_within_the_lease_and_is_reaped(make_node, redis_server):  # noqa: F811
    a = await make_node("a").start()
    b = await make_node("b").start()
    c = await make_node("c").start()
    await until(lambda: b.presence.live_nodes() == {"a", "b", "c"})
    a1 = await a.online(1, 1)
    await a.online(2, 2)
    await b.online(1, 1)
    await c.online(3, 1)
    assert await b.presence.locate([1, 2, 3]) == {1: {"a"}, 2: {"a"}, 3: {"c"}}
    assert redis_server.command("HGET", f"{P}u:1", a1) == b"a|2"

    crashed_at = reactor.seconds()
    await crash(a)
    # gone from what b reports once b's cached live set drops a: at most lease + lease/4
    await until(lambda: _equals(b.presence.locate([1, 2, 3]), {3: {"c"}}), timeout=LEASE * 1.25 + 1)
    assert reactor.seconds() - crashed_at <= LEASE * 1.25 + 0.5
    assert [d[0] for d in await b.presence.devices_of(1)] == ["b"]
    assert "a" not in b.presence.live_nodes()
    assert await b.presence.online_count() == 2  # b's and c's users

    # and reaped (by b or c, or both at once), b's own entry for user 1 untouched
    await until(lambda: redis_server.command("HKEYS", f"{P}nodes") in ([b"b", b"c"], [b"c", b"b"]), timeout=3)
    assert redis_server.command("HKEYS", f"{P}u:1") == [b"b/1"]
    assert redis_server.command("EXISTS", f"{P}u:2", f"{P}nd:a", f"{P}lease:a") == 0
    infos = await c.presence.nodes()
    assert [i.name for i in infos] == ["b", "c"]


@pytest_twisted.ensureDeferred
async def test_a_restarted_node_cleans_up_what_it_left(make_node, redis_server):  # noqa: F811
    a = await make_node("a").start()
    b = await make_node("b").start()
    await a.online(1, 1)
    await a.online(2, 2)
    await b.online(2, 1)
    await crash(a)

    # restarted at once, lease still current: it takes the name over and removes the leftovers
    again = await make_node("a").start()
    assert redis_server.command("SMEMBERS", f"{P}nd:a") == []
    assert redis_server.command("EXISTS", f"{P}u:1") == 0
    assert redis_server.command("HKEYS", f"{P}u:2") == [b"b/1"]
    assert redis_server.command("GET", f"{P}lease:a") == again.presence._token
    assert await b.presence.devices_of(1) == []
    await again.online(1, 5)
    assert await b.presence.locate([1, 2]) == {1: {"a"}}


# -- the bus


@pytest_twisted.ensureDeferred
async def test_publish_reaches_one_node_broadcast_all_binary_and_in_order(make_node):
    a = await make_node("a").start()
    b = await make_node("b").start()
    c = await make_node("c").start()

    a.presence.publish("b", b"for b")
    a.presence.broadcast(b"for all")
    await until(lambda: c.inbox.payloads == [b"for all"] and len(b.inbox.payloads) == 2)
    assert b.inbox.payloads == [b"for b", b"for all"]
    await until(lambda: a.inbox.payloads == [b"for all"])  # a broadcast reaches its sender too

    binary = [bytes(range(256)), b"", b"123", b"-1.5", b"\r\n$3\r\n*", bytes(range(255, -1, -1)) * 1024]
    for payload in binary:
        b.presence.publish("c", payload)
    await until(lambda: len(c.inbox.payloads) == 1 + len(binary))
    assert c.inbox.payloads[1:] == binary

    payloads = [b"%d" % i for i in range(1000)]
    for payload in payloads:
        a.presence.publish("c", payload)
    await until(lambda: len(c.inbox.payloads) == 1 + len(binary) + 1000)
    assert c.inbox.payloads[1 + len(binary) :] == payloads
    assert b.inbox.payloads == [b"for b", b"for all"]

    with pytest.raises(ValueError):
        a.presence.publish("b", CONTROL_PREFIX + b"hello:x")
    a.presence.publish("nobody", b"lost")  # a channel nobody listens to: no error


@pytest_twisted.ensureDeferred
async def test_a_new_node_announces_itself_at_once(make_node):
    # a lease of 60 s: renewal (and refresh) every 15 s, so only the announcements can do it
    a = await make_node("a", lease_seconds=60).start()
    started = reactor.seconds()
    b = await make_node("b", lease_seconds=60).start()
    await until(lambda: a.presence.live_nodes() == {"a", "b"}, timeout=2)
    assert reactor.seconds() - started < 2
    await b.online(7, 1)
    assert await a.presence.locate([7]) == {7: {"b"}}
    assert a.inbox.payloads == [] and b.inbox.payloads == []  # announcements are not payloads

    await b.presence.stop()
    await until(lambda: a.presence.live_nodes() == {"a"}, timeout=2)


@pytest_twisted.ensureDeferred
async def test_a_node_announced_while_nobody_listened_is_learnt_on_subscribing_again(make_node):
    """A hello sent while a node's subscription was down (a restart of it, or both starting at
    once) is lost; subscribing again refreshes the live nodes, so the newcomer gets traffic now
    rather than at the next renewal (lease/4, 15 s here)."""
    a = await make_node("a", lease_seconds=60).start()
    quiet = make_node("c", lease_seconds=60)
    quiet.presence._send = lambda *args, **kwargs: None  # registers, announces nothing
    await quiet.start()
    await sleep(0.5)
    assert a.presence.live_nodes() == {"a"}  # nothing told it about c
    await a.presence._cmd.protocol.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await until(lambda: a.presence.live_nodes() == {"a", "c"}, timeout=5)


# -- Redis going away


@pytest_twisted.ensureDeferred
async def test_redis_restart_nodes_come_back_by_themselves(make_node, redis_server):  # noqa: F811
    a = await make_node("a").start()
    b = await make_node("b").start()
    await until(lambda: a.presence.live_nodes() == {"a", "b"} == b.presence.live_nodes())
    a1 = await a.online(1, 1)
    b1 = await b.online(2, 1)

    stopped_at = reactor.seconds()
    redis_server.stop()  # all keys lost with it
    await until(lambda: a.presence._cmd.protocol is None and b.presence._cmd.protocol is None, timeout=3)
    assert isinstance(await failing(a.presence.devices_of(1)), RedisUnavailable)
    assert isinstance(await failing(a.presence.device_online(1, "a/9", 1)), RedisUnavailable)
    during = [b"during %d" % i for i in range(20)]
    for payload in during:
        a.presence.publish("b", payload)
    a.presence.broadcast(b"to all, during")
    a2 = "a/2"  # its write fails (Redis is down); the re-write after reconnection brings it
    a.local.devices[a2] = Device(3, a2, 2)
    assert isinstance(await failing(a.presence.device_online(3, a2, 2)), RedisUnavailable)
    await sleep(0.3)
    redis_server.start()

    # both re-register their lease and re-write their devices
    await until(lambda: _equals(b.presence.devices_of(1), [("a", a1, 2)]), timeout=10)
    await until(lambda: _equals(a.presence.devices_of(2), [("b", b1, 2)]), timeout=5)
    assert await b.presence.devices_of(3) == [("a", a2, 2)]
    assert redis_server.command("EXISTS", f"{P}lease:a", f"{P}lease:b") == 2
    # the subscriptions are back, and the receivers were told when they were lost
    await until(lambda: a.inbox.resumed_at and b.inbox.resumed_at, timeout=5)
    for inbox in (a.inbox, b.inbox):
        (lost_at,) = inbox.resumed_at
        assert stopped_at <= lost_at <= stopped_at + 1
    # what was published meanwhile arrives, in order
    await until(lambda: len(b.inbox.payloads) == len(during) + 1, timeout=5)
    assert b.inbox.payloads == during + [b"to all, during"]
    await until(lambda: a.inbox.payloads == [b"to all, during"], timeout=5)
    a.presence.publish("b", b"after")
    await until(lambda: b.inbox.payloads[-1:] == [b"after"])


@pytest_twisted.ensureDeferred
async def test_publish_queue_keeps_the_newest(make_node, redis_server):  # noqa: F811
    a = await make_node("a", publish_queue=5).start()
    b = await make_node("b").start()
    redis_server.stop()
    await until(lambda: a.presence._cmd.protocol is None, timeout=3)
    for i in range(8):
        a.presence.publish("b", b"%d" % i)
    redis_server.start()
    await until(lambda: len(b.inbox.payloads) == 5, timeout=10)
    await sleep(0.2)
    assert b.inbox.payloads == [b"3", b"4", b"5", b"6", b"7"]


@pytest_twisted.ensureDeferred
async def test_nothing_waits_longer_than_the_timeout(make_node, redis_server):  # noqa: F811
    a = await make_node("a").start()
    b = await make_node("b").start()
    await a.online(1, 1)
    redis_server.pause()  # connections stay up, nothing answers
    paused_at = reactor.seconds()
    try:
        started = reactor.seconds()
        error = await failing(a.presence.devices_of(1))
        assert isinstance(error, RedisUnavailable) and "did not answer within 1 s" in str(error)
        assert TIMEOUT <= reactor.seconds() - started < TIMEOUT + 1
        # the unanswered connection was dropped; a new one is not usable while Redis is frozen
        started = reactor.seconds()
        for call in (lambda: a.presence.devices_of(1), lambda: a.presence.device_offline(1, "a/1"), a.presence.nodes):
            assert isinstance(await failing(call()), RedisUnavailable)
        assert reactor.seconds() - started < TIMEOUT + 1
        started = reactor.seconds()
        await a.presence.stop()
        assert reactor.seconds() - started < 2 * TIMEOUT + 1
        # a subscription only listens: its PING (every lease/4) finds out that nothing answers
        await until(lambda: b.presence._subscribed is None, timeout=LEASE / 4 + TIMEOUT + 1)
    finally:
        redis_server.resume()
    await until(lambda: b.inbox.resumed_at, timeout=5)
    assert paused_at < b.inbox.resumed_at[0] < reactor.seconds()
    a.presence.publish("b", b"not delivered: a is stopped")
    b.presence.publish("b", b"delivered")
    await until(lambda: b.inbox.payloads == [b"delivered"], timeout=5)


@pytest_twisted.ensureDeferred
async def test_start_fails_when_redis_is_unreachable(make_node, redis_server):  # noqa: F811
    redis_server.stop()
    a = make_node("a")
    started = reactor.seconds()
    error = await failing(a.presence.start(a.local))
    assert isinstance(error, RedisUnavailable) and "cannot reach Redis" in str(error)
    assert reactor.seconds() - started < TIMEOUT + 1
    a.presence.publish("b", b"x")  # never fails
    await a.presence.stop()
    started = reactor.seconds()
    await a.presence.stop()  # twice is fine
    assert reactor.seconds() - started < 0.5


# -- Sentinel


@pytest_twisted.ensureDeferred
async def test_sentinel_finds_the_master(redis_sentinel, redis_server):  # noqa: F811
    # the URL's host and port are not used: Sentinel says where the master is
    conf = config(f"redis://127.0.0.1:{_closed_port()}/0", sentinels=[redis_sentinel.address])
    a, b = Node(RedisPresence(reactor, conf, "a")), Node(RedisPresence(reactor, conf, "b"))
    try:
        await a.start()
        await b.start()
        await a.online(1, 1)
        assert await b.presence.locate([1]) == {1: {"a"}}
        b.presence.publish("a", b"via sentinel")
        await until(lambda: a.inbox.payloads == [b"via sentinel"], timeout=5)
        assert redis_server.command("HKEYS", f"{P}nodes") in ([b"a", b"b"], [b"b", b"a"])
    finally:
        await a.presence.stop()
        await b.presence.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
