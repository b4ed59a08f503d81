"""Shared presence and the node-to-node bus on Redis, for several nodes serving the same users.

One :class:`RedisPresence` per node is both its :class:`~coffeechat.interfaces.IPresence` and its
:class:`~coffeechat.interfaces.IClusterBus` (they share the connections).  Keys, all under
``presence.key_prefix`` (``P``)::

    P nodes          hash    node -> JSON {"started_at", "users", "devices"}: every registered node
    P lease:<node>   string  expires after lease_seconds unless the node renews it (every lease/4)
    P u:<user id>    hash    device id -> "<node>|<client type>": where the user's devices are
    P nd:<node>      set     "<user id>|<device id>" of the node's devices, so a dead node's go too

and the channels ``P ch:<node>`` (one node) and ``P ch:*`` (every node: a plain channel name, not
a pattern).  A node whose lease ran out is dead: the others stop reporting its devices as soon as
their cached set of live nodes drops it (refreshed every lease/4, and at once when a node
announces itself), and the first to notice removes its entries (a Lua script: idempotent, and
several nodes may do it at once).  Device ids must be unique in the cluster (the core makes them
``<node>/<n>``); node names may not contain ``|``.

Payloads that start with :data:`CONTROL_PREFIX` (``b"\\x00presence:"``) are reserved for the
nodes' own announcements (``hello:<node>`` when a node has registered, ``bye:<node>`` when it
leaves: the others re-read the live nodes at once); they are consumed here, never handed to the
receiver, and publishing one raises ValueError.

There are two connections, each reconnecting by itself: one for commands and one for the
subscription (made by :meth:`RedisPresence.listen`).  After a reconnection the command side
registers the node again and makes Redis hold exactly this node's devices (a restarted Redis has
lost them all), then sends the payloads published meanwhile; the subscription side subscribes
again.  Once both are back (not before: until its devices are written again, other nodes route
nothing to this one) ``receiver.resumed`` is called, and once more lease/4 + timeout later, for
what other nodes routed before they saw this one alive again.  A command without an answer within ``presence.timeout``
fails (and its connection is dropped and made again); while there is no connection, commands
fail at once with :class:`RedisUnavailable`.

txredisapi provides the protocol (the RESP codec, commands, scripts, pub/sub); the connections
are made here, on the injected reactor, because txredisapi's connection helpers always use the
global one.  Its Sentinel client (which finds the master when ``presence.sentinels`` is set)
still does: in a real process that is the same reactor.
"""

from __future__ import annotations

import json
import random
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import txredisapi
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from coffeechat.config import PresenceConfig
from coffeechat.interfaces import IClusterBus, IClusterReceiver, ILocalDevices, IPresence
from coffeechat.model import NodeInfo

__all__ = ["CONTROL_PREFIX", "RedisAddress", "RedisPresence", "RedisUnavailable", "create_presence", "parse_redis_url"]

log = Logger()

CONTROL_PREFIX = b"\x00presence:"
WRITE_BATCH = 500  # devices per script call when writing or removing many at once
LOCATE_BATCH = 1000  # users per script call in locate()
REAP_BATCH = 1000  # devices a reaping script call removes, so that Redis is never blocked long
SUBSCRIBER_WAIT_STEP = 0.05

# Lua scripts.  Atomic, so a node's writes and other nodes' reaping never see half of each other.

# Renew the lease and the nodes entry; return the lease's previous value (this process's token
# unless the lease ran out, Redis lost it, or another process uses the same node name).
_RENEW = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return old
"""

# Every registered node: name, JSON info, milliseconds left on its lease (-2: none).
_STATUS = """
local flat = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #flat, 2 do
  out[#out + 1] = flat[i]
  out[#out + 1] = flat[i + 1]
  out[#out + 1] = redis.call('PTTL', ARGV[1] .. flat[i])
end
return out
"""

# Devices of this node online: ARGV = user key prefix, node, then (user id, device id, client type)...
_WRITE = """
for i = 3, #ARGV, 3 do
  redis.call('HSET', ARGV[1] .. ARGV[i], ARGV[i + 1], ARGV[2] .. '|' .. ARGV[i + 2])
  redis.call('SADD', KEYS[1], ARGV[i] .. '|' .. ARGV[i + 1])
end
return 0
"""

# Devices of this node offline: ARGV = user key prefix, node, then (user id, device id)...  A
# field is only removed while it still names this node.
_REMOVE = """
local mine = ARGV[2] .. '|'
local removed = 0
for i = 3, #ARGV, 2 do
  local key = ARGV[1] .. ARGV[i]
  local value = redis.call('HGET', key, ARGV[i + 1])
  if value and string.sub(value, 1, #mine) == mine then
    redis.call('HDEL', key, ARGV[i + 1])
    removed = removed + 1
  end
  redis.call('SREM', KEYS[1], ARGV[i] .. '|' .. ARGV[i + 1])
end
return removed
"""

# Remove up to ARGV[3] devices of node ARGV[2] (KEYS: its nd set, its lease, the nodes hash);
# return {removed, left}.  "reap" (another node's doing) stops with {-1, 0} as soon as the node
# has a lease again; when nothing is left its nodes entry goes ("leave": and its lease).
_REAP = """
if ARGV[4] == 'reap' and redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1, 0}
end
local mine = ARGV[2] .. '|'
local removed = 0
for _, member in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[3]))) do
  local sep = string.find(member, '|', 1, true)
  if sep then
    local key = ARGV[1] .. string.sub(member, 1, sep - 1)
    local field = string.sub(member, sep + 1)
    local value = redis.call('HGET', key, field)
    if value and string.sub(value, 1, #mine) == mine then
      redis.call('HDEL', key, field)
      removed = removed + 1
    end
  end
end
local left = redis.call('SCARD', KEYS[1])
if left == 0 then
  redis.call('HDEL', KEYS[3], ARGV[2])
  if ARGV[4] == 'leave' then
    redis.call('DEL', KEYS[2])
  end
end
return {removed, left}
"""

# The values ("<node>|<client type>") of each user's hash, one list per key.
_LOCATE = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HVALS', key)
end
return out
"""


class RedisUnavailable(Exception):
    """Redis is unreachable or did not answer in time.  A device write that failed so is
    repeated by the re-synchronisation that follows the reconnection."""


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is, from ``presence.redis``."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""  # a unix socket, instead of host and port
    db: int = 0
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def parse_redis_url(url: str) -> RedisAddress:
    """``redis://[[user]:password@]host[:port][/db]`` or ``unix:///path[?db=N&password=...]``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if "password" in query:
        password = query["password"][0]
    try:
        if parts.scheme == "redis":
            db_text = parts.path.strip("/") or query.get("db", ["0"])[0]
            return RedisAddress(parts.hostname or "127.0.0.1", parts.port or 6379, "", int(db_text), username, password)
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError("no socket path")
            return RedisAddress("", 0, parts.path, int(query.get("db", ["0"])[0]), username, password)
    except ValueError as e:
        raise ValueError(f"presence.redis: cannot read {url!r}: {e}") from None
    raise ValueError(f"presence.redis: {url!r} is not a redis:// or unix:// URL")


def _none(_: object) -> None:
    return None


def _first_error(failure: Failure) -> Failure:
    """The failure inside gatherResults' FirstError, so callers see what really went wrong."""
    if failure.check(defer.FirstError):
        return failure.value.subFailure
    return failure


def _gather(deferreds: list[defer.Deferred]) -> defer.Deferred:
    return defer.gatherResults(deferreds, consumeErrors=True).addErrback(_first_error)


# -- connections


class _CommandProtocol(txredisapi.RedisProtocol):
    """txredisapi's protocol, bytes in and out (no decoding, no number conversion), with its
    reply timeout on our reactor, telling its link when the connection goes."""

    def __init__(self, link: _Link) -> None:
        super().__init__(charset=None, replyTimeout=link.timeout, convertNumbers=False)
        self.callLater = link.reactor.callLater  # txredisapi's class attribute is the global reactor's
        self._link = link

    def connectionLost(self, why: Failure) -> None:
        self._link.lost(self, why)  # first, so that the failing commands see the link down
        super().connectionLost(why)


class _SubscriberProtocol(txredisapi.SubscriberProtocol):
    """The subscription connection: like :class:`_CommandProtocol`, plus messages."""

    on_message: Callable[[bytes], None] = staticmethod(lambda payload: None)

    def __init__(self, link: _Link) -> None:
        super().__init__(charset=None, replyTimeout=link.timeout, convertNumbers=False)
        self.callLater = link.reactor.callLater
        self._link = link

    def messageReceived(self, pattern, channel, message) -> None:
        self.on_message(message)

    def connectionLost(self, why: Failure) -> None:
        self._link.lost(self, why)
        super().connectionLost(why)


class _LinkFactory(protocol.Factory):
    noisy = False

    def __init__(self, link: _Link) -> None:
        self._link = link

    def buildProtocol(self, addr):
        proto = self._link.build()
        proto.factory = self
        return proto


class _Link:
    """One Redis connection, kept open: made again after a loss (with a short backoff), and
    handed to its owner (``on_ready``) only once its handshake (AUTH, SELECT, the master check
    behind Sentinel) has passed.  Twisted's ClientService is not used: a failing
    prepareConnection leaves it in a state it cannot leave cleanly."""

    def __init__(
        self,
        reactor: IReactorTime,
        name: str,
        protocol_class: type,
        connect: Callable[[protocol.Factory], defer.Deferred],
        handshake: Callable[[Any], defer.Deferred],
        on_ready: Callable[[Any], None],
        on_lost: Callable[[Any], None],
        timeout: float,
        max_delay: float,
    ) -> None:
        self.reactor = reactor
        self.name = name
        self.timeout = timeout
        self.protocol: Any = None  # the usable connection, or None
        self._protocol_class = protocol_class
        self._connect_to = connect
        self._handshake = handshake
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._max_delay = max_delay
        self._current: Any = None  # the connection, usable or not yet
        self._attempt: defer.Deferred | None = None
        self._retry: Any = None
        self._failures = 0
        self._running = False
        self._down_since: float | None = None
        self._waiters: list[defer.Deferred] = []
        self._closed: list[defer.Deferred] = []

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._connect()

    def when_ready(self) -> defer.Deferred:
        """Fire with the usable connection (now, or when there is one)."""
        if self.protocol is not None:
            return defer.succeed(self.protocol)
        d = defer.Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(d)
        return d

    def build(self) -> Any:
        self._current = self._protocol_class(self)
        return self._current

    def _connect(self) -> None:
        self._retry = None
        d = defer.maybeDeferred(self._connect_to, _LinkFactory(self))
        self._attempt = d
        d.addTimeout(2 * self.timeout, self.reactor)  # a Sentinel lookup, then the connection
        d.addCallbacks(self._connected, self._connect_failed)

    def _connected(self, proto: Any) -> None:
        self._attempt = None
        if not self._running:
            proto.transport.abortConnection()
            return
        if proto is not self._current:  # lost already
            return
        d = defer.maybeDeferred(self._handshake, proto)
        d.addCallbacks(self._handshake_done, self._handshake_failed, callbackArgs=(proto,), errbackArgs=(proto,))

    def _handshake_done(self, _: object, proto: Any) -> None:
        if proto is not self._current or not self._running:
            return
        self._failures = 0
        self.protocol = proto
        if self._down_since is not None:
            log.info(
                "Redis ({link}): connected again after {seconds:.1f} s",
                link=self.name,
                seconds=self.reactor.seconds() - self._down_since,
            )
            self._down_since = None
        try:
            self._on_ready(proto)
        except Exception:
            log.failure("Redis ({link}): setting up the connection failed", link=self.name)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(proto)

    def _handshake_failed(self, failure: Failure, proto: Any) -> None:
        if proto is self._current:
            if self._failures <= 1:  # once per outage, not at every retry
                log.warn(
                    "Redis ({link}): connected, but {error}; retrying", link=self.name, error=failure.getErrorMessage()
                )
            proto.transport.abortConnection()  # lost(): counted as a failed attempt

    def _connect_failed(self, failure: Failure) -> None:
        self._attempt = None
        if not self._running:
            return
        if self._failures == 0:
            log.warn(
                "Redis ({link}): cannot connect: {error}; retrying", link=self.name, error=failure.getErrorMessage()
            )
        if self._down_since is None:
            self._down_since = self.reactor.seconds()
        self._schedule_retry()

    def lost(self, proto: Any, why: Failure) -> None:
        """The protocol's connectionLost (before txredisapi fails its pending commands)."""
        if proto is not self._current:
            return
        self._current = None
        if self.protocol is proto:
            self.protocol = None
            self._down_since = self.reactor.seconds()
            if self._running:
                log.warn(
                    "Redis ({link}): connection lost ({reason}); reconnecting",
                    link=self.name,
                    reason=why.getErrorMessage(),
                )
            try:
                self._on_lost(proto)
            except Exception:
                log.failure("Redis ({link}): handling the lost connection failed", link=self.name)
        if self._running:
            self._schedule_retry()
        else:
            closed, self._closed = self._closed, []
            for d in closed:
                d.callback(None)

    def drop(self, proto: Any, why: str) -> None:
        """Give up on a connection that does not answer (or serves the wrong server): unusable
        at once, aborted, and made again."""
        if proto is not self._current:
            return
        proto.transport.abortConnection()
        if self.protocol is proto:
            self.protocol = None
            self._down_since = self.reactor.seconds()
            log.warn("Redis ({link}): {why}; reconnecting", link=self.name, why=why)
            try:
                self._on_lost(proto)
            except Exception:
                log.failure("Redis ({link}): handling the lost connection failed", link=self.name)

    def _schedule_retry(self) -> None:
        delay = min(self._max_delay, 0.05 * 2 ** min(self._failures, 10)) * random.uniform(0.8, 1.2)
        self._failures += 1
        self._retry = self.reactor.callLater(delay, self._connect)

    def stop(self) -> defer.Deferred:
        """Stop reconnecting and close the connection; fires once it is closed (at most the
        timeout later: then the connection is aborted)."""
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None:
            self._attempt.cancel()
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.errback(RedisUnavailable("stopped"))
        proto = self._current
        if proto is None:
            return defer.succeed(None)
        d = defer.Deferred()
        self._closed.append(d)
        abort = self.reactor.callLater(self.timeout, proto.transport.abortConnection)
        d.addBoth(lambda result: abort.cancel() if abort.active() else None)
        proto.transport.loseConnection()
        return d


# -- the presence and the bus


@implementer(IPresence, IClusterBus)
class RedisPresence:
    """Presence and node-to-node bus of one node on a Redis shared by the cluster (see the
    module docstring for the keys and what happens when Redis goes away)."""

    def __init__(self, reactor: IReactorTime, config: PresenceConfig, node: str) -> None:
        if not node or "|" in node or node == "*":
            raise ValueError(f"node name {node!r}: must be non-empty, without '|', and not '*'")
        self.node = node
        self._reactor = reactor
        self._config = config
        self._address = parse_redis_url(config.redis)
        self._timeout = float(config.timeout)
        self._lease_ms = int(config.lease_seconds * 1000)
        self._queue_size = int(config.publish_queue)
        prefix = config.key_prefix
        self._nodes_key = f"{prefix}nodes"
        self._lease_prefix = f"{prefix}lease:"
        self._lease_key = f"{prefix}lease:{node}"
        self._user_prefix = f"{prefix}u:"
        self._nd_prefix = f"{prefix}nd:"
        self._nd_key = f"{prefix}nd:{node}"
        self._channel_prefix = f"{prefix}ch:"
        self._own_channel = f"{prefix}ch:{node}"
        self._all_channel = f"{prefix}ch:*"
        self._token = secrets.token_hex(8).encode()  # this process's lease value
        self._sentinel: Any = None
        self._sentinel_closed = False
        if config.sentinels:
            addresses = [(host, int(port)) for host, _, port in (a.rpartition(":") for a in config.sentinels)]
            self._sentinel = txredisapi.Sentinel(addresses, connectTimeout=self._timeout, replyTimeout=self._timeout)
            self._sentinel.discovery_timeout = self._timeout
        self._max_delay = max(0.2, min(2.0, config.lease_seconds / 8))
        self._cmd = _Link(
            reactor, "commands", _CommandProtocol, self._connect, self._handshake, self._cmd_ready, self._cmd_lost,
            self._timeout, self._max_delay,
        )  # fmt: skip
        self._sub: _Link | None = None
        self._receiver: IClusterReceiver | None = None
        self._local: ILocalDevices | None = None
        self._live: frozenset[str] = frozenset([node])
        self._started_at = 0.0
        self._renewal = task.LoopingCall(self._tick)
        self._renewal.clock = reactor
        self._registered = False
        self._syncing: Any = None  # the connection being synchronised
        self._sync_d: defer.Deferred | None = None
        self._sync_error: Exception | None = None
        self._need_sync = False
        self._synced = False  # payloads may go straight out (else they wait in the outbox)
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._in_flight: deque[tuple[str, bytes]] = deque()
        self._dropped = 0
        self.dropped_total = 0  # node-to-node payloads dropped since start (queue full), for metrics
        self._refreshing = False
        self._refresh_again = False
        self._reaping: set[str] = set()
        self._listening: defer.Deferred | None = None
        self._subscribed: Any = None  # the subscriber connection once subscribed
        self._sub_lost_at: float | None = None
        self._cmd_lost_at: float | None = None
        self._resume_from: float | None = None  # a catch-up is due, for payloads since then
        self._resume_again: Any = None  # the delayed second catch-up (see _resume_if_ready)
        self._stopped = False
        self._observer = False

    @property
    def joined(self) -> bool:
        """Registered, this node's devices written and subscribed: what ``/ready`` asks."""
        return self._registered and self._synced and self._subscribed is not None and not self._stopped

    @property
    def queued(self) -> int:
        """Node-to-node payloads waiting for Redis or on their way (for metrics)."""
        return len(self._outbox) + len(self._in_flight)

    # -- lifecycle

    @defer.inlineCallbacks
    def start(self, local: ILocalDevices):
        """Connect, register this node (removing what an earlier process of the same name left)
        and keep its lease; fails with :class:`RedisUnavailable` when Redis cannot be reached
        within the timeout."""
        self._local = local
        self._started_at = self._reactor.seconds()
        self._cmd.start()
        try:
            yield self._cmd.when_ready().addTimeout(self._timeout, self._reactor)
            ok = yield self._sync_d
        except (defer.TimeoutError, RedisUnavailable):
            ok = None
        if not ok:
            yield self._close()
            if ok is None:
                raise RedisUnavailable(f"cannot reach Redis at {self._where()} within {self._timeout:g} s")
            raise RedisUnavailable(f"cannot register node {self.node} in Redis: {self._sync_error}")
        self._renewal.start(self._config.lease_seconds / 4, now=False)
        log.info("node {node} joined the cluster on Redis at {where}", node=self.node, where=self._where())

    @defer.inlineCallbacks
    def observe(self):
        """Connect without joining, for tools (``coffeechat nodes``): :meth:`nodes`,
        :meth:`devices_of` and :meth:`online_count` work, nothing is written; :meth:`stop`
        disconnects.  Fails with :class:`RedisUnavailable` when Redis cannot be reached."""
        self._observer = True
        self._cmd.start()
        try:
            yield self._cmd.when_ready().addTimeout(self._timeout, self._reactor)
            entries = yield self._status()
        except (defer.TimeoutError, RedisUnavailable):
            yield self._cmd.stop()
            raise RedisUnavailable(f"cannot reach Redis at {self._where()} within {self._timeout:g} s") from None
        self._live = frozenset(name for name, _, pttl in entries if self._alive(pttl))

    @defer.inlineCallbacks
    def stop(self):
        """Remove this node's devices, lease and nodes entry, unsubscribe and disconnect; fires
        within a few timeouts even when Redis is down or frozen (the entries then go when the
        lease runs out)."""
        if self._stopped:
            return
        self._stopped = True
        if self._renewal.running:
            self._renewal.stop()
        if self._resume_again is not None and self._resume_again.active():
            self._resume_again.cancel()
        proto = self._cmd.protocol
        if proto is not None and self._registered:
            try:
                yield self._leave().addTimeout(self._timeout, self._reactor)
                self._publish_now(proto, self._all_channel, CONTROL_PREFIX + b"bye:" + self.node.encode())
            except Exception as e:
                log.warn(
                    "could not remove node {node} from Redis ({error}); its entries go when its lease runs out",
                    node=self.node,
                    error=str(e) or type(e).__name__,
                )
        if self._outbox:
            log.warn("{count} node-to-node payloads not sent: stopping", count=len(self._outbox))
            self._outbox.clear()
        yield self._close()
        log.info("node {node}: presence stopped", node=self.node)

    @defer.inlineCallbacks
    def _close(self):
        """Close the connections (and Sentinel's), reconnecting no more."""
        links = [self._cmd] + ([self._sub] if self._sub is not None else [])
        yield _gather([link.stop() for link in links])
        if self._sentinel is not None and not self._sentinel_closed:
            self._sentinel_closed = True
            try:
                yield self._sentinel.disconnect().addTimeout(self._timeout, self._reactor)
            except Exception:
                pass  # its connections are closing anyway

    @defer.inlineCallbacks
    def _leave(self):
        while True:
            removed, left = yield self._reap_step(self.node, "leave")
            if left == 0:
                return

    # -- connecting

    def _where(self) -> str:
        if self._sentinel is not None:
            return f"the master {self._config.sentinel_master!r} of Sentinel {', '.join(self._config.sentinels)}"
        return str(self._address)

    def _connect(self, factory: protocol.Factory) -> defer.Deferred:
        a = self._address
        if self._sentinel is not None:
            # Asked again at every connection: after a failover the master is elsewhere.
            d = self._sentinel.discover_master(self._config.sentinel_master)
            return d.addCallback(
                lambda addr: HostnameEndpoint(self._reactor, addr[0], int(addr[1]), timeout=self._timeout).connect(
                    factory
                )
            )
        if a.path:
            return UNIXClientEndpoint(self._reactor, a.path, timeout=self._timeout).connect(factory)
        return HostnameEndpoint(self._reactor, a.host, a.port, timeout=self._timeout).connect(factory)

    @defer.inlineCallbacks
    def _handshake(self, proto: Any, select: bool = True):
        a = self._address
        if a.password is not None:
            yield proto.execute_command("AUTH", *([a.username] if a.username else []), a.password)
        if select and a.db:
            yield proto.execute_command("SELECT", a.db)
        if self._sentinel is not None:
            role = yield proto.execute_command("ROLE")
            if not role or role[0] not in (b"master", "master"):
                raise RedisUnavailable("the server Sentinel named is not a master (any more)")
        else:
            # An answer, before the connection counts as usable: a frozen server accepts
            # connections (the kernel does) and would otherwise look reachable.
            yield proto.execute_command("PING")

    def _cmd_ready(self, proto: Any) -> None:
        if self._observer:
            self._sync_d = defer.succeed(True)
            return
        self._sync_d = self._sync(proto)

    def _cmd_lost(self, proto: Any) -> None:
        """Payloads that were on their way may not have arrived: they go again, first.  Devices
        that come or go meanwhile are not written: a catch-up follows the re-synchronisation."""
        self._synced = False
        if self._cmd_lost_at is None and self._registered:
            self._cmd_lost_at = self._reactor.seconds()
        if self._in_flight:
            waiting = list(self._in_flight) + list(self._outbox)
            self._in_flight.clear()
            self._outbox = deque(waiting)
            while len(self._outbox) > self._queue_size:
                self._outbox.popleft()
                self._dropped += 1
                self.dropped_total += 1

    def _failed(self, failure: Failure, proto: Any) -> Failure:
        """Connection trouble becomes RedisUnavailable; a master demoted by a failover (READONLY)
        has the connection made again, through Sentinel, to the new one."""
        if failure.check(txredisapi.ResponseError) and str(failure.value).startswith("READONLY"):
            self._cmd.drop(proto, "the server is a replica now")
            raise RedisUnavailable(f"Redis: {failure.getErrorMessage()}")
        if failure.check(txredisapi.TimeoutError):
            # txredisapi aborts the connection too, but only after failing every command sent
            # meanwhile, including those sent from these errbacks: drop it now.
            self._cmd.drop(proto, f"no answer within {self._timeout:g} s")
            raise RedisUnavailable(f"Redis did not answer within {self._timeout:g} s")
        if failure.check(txredisapi.ConnectionError):
            raise RedisUnavailable(f"Redis: {failure.getErrorMessage() or 'connection lost'}")
        return failure

    def _unavailable(self) -> defer.Deferred:
        if self._stopped:
            return defer.fail(RedisUnavailable(f"presence of node {self.node} is stopped"))
        return defer.fail(RedisUnavailable(f"Redis at {self._where()} is unreachable"))

    def _command(self, *args: Any) -> defer.Deferred:
        proto = self._cmd.protocol
        if proto is None:
            return self._unavailable()
        return defer.maybeDeferred(proto.execute_command, *args).addErrback(self._failed, proto)

    def _eval(self, script: str, keys: list, args: list) -> defer.Deferred:
        proto = self._cmd.protocol
        if proto is None:
            return self._unavailable()
        return defer.maybeDeferred(proto.eval, script, keys, args).addErrback(self._failed, proto)

    # -- registration, re-synchronisation, renewal

    def _info(self) -> str:
        local = self._local
        users, devices = (local.user_count, local.device_count) if local is not None else (0, 0)
        return json.dumps({"started_at": self._started_at, "users": users, "devices": devices})

    def _renew(self) -> defer.Deferred:
        return self._eval(
            _RENEW, [self._lease_key, self._nodes_key], [self.node, self._token, self._lease_ms, self._info()]
        )

    @defer.inlineCallbacks
    def _sync(self, proto: Any):
        """Register this node and make Redis hold exactly its devices: at start (the leftovers of
        an earlier process go), after a reconnection (a restarted Redis lost them; removals that
        failed meanwhile are done) and when the lease had run out (others may have reaped it).
        Then send the payloads that waited and announce the node.  Fires with True when done."""
        self._syncing = proto
        ok = False
        try:
            old = yield self._renew()
            if old is not None and old != self._token:
                log.warn(
                    "node name {node} was registered by another process (an earlier one, or one running "
                    "with the same name: give every node its own server.node_name); taking it over",
                    node=self.node,
                )
            members = yield self._command("SMEMBERS", self._nd_key)
            # From here to the writes, no yield: the snapshot of the local devices and the writes
            # go out in the same reactor turn, before any later device_online/offline.
            devices = self._local.all_devices() if self._local is not None else []
            mine = {f"{d.user_id}|{d.device_id}" for d in devices}
            stale = [m.decode() for m in members if m.decode() not in mine]
            writes = []
            for i in range(0, len(stale), WRITE_BATCH):
                args: list = [self._user_prefix, self.node]
                for member in stale[i : i + WRITE_BATCH]:
                    args.extend(member.split("|", 1))
                writes.append(self._eval(_REMOVE, [self._nd_key], args))
            for i in range(0, len(devices), WRITE_BATCH):
                args = [self._user_prefix, self.node]
                for d in devices[i : i + WRITE_BATCH]:
                    args += [int(d.user_id), d.device_id, int(d.client_type)]
                writes.append(self._eval(_WRITE, [self._nd_key], args))
            yield _gather(writes)
            if stale:
                log.info("node {node}: removed {count} stale device entries", node=self.node, count=len(stale))
            log.info("node {node} registered with {count} devices", node=self.node, count=len(devices))
            self._registered = True
            self._need_sync = False
            ok = True
        except Exception as e:
            self._need_sync = True
            self._sync_error = e
            if proto is self._cmd.protocol:
                log.warn("registering node {node} in Redis failed: {error}", node=self.node, error=str(e))
        try:
            if proto is self._cmd.protocol:
                yield self._release_outbox(proto)
                if ok:
                    self._send(self._all_channel, CONTROL_PREFIX + b"hello:" + self.node.encode(), control=True)
                    self._refresh_soon()
                    lost_at, self._cmd_lost_at = self._cmd_lost_at, None
                    if lost_at is not None:
                        self._resume_due(lost_at)
                    self._resume_if_ready()
        except Exception:
            log.failure("node {node}: sending the waiting payloads failed", node=self.node)
        finally:
            if self._syncing is proto:
                self._syncing = None
        return ok

    @defer.inlineCallbacks
    def _tick(self):
        """Every lease/4: renew the lease (re-synchronising if it had run out), refresh the live
        nodes, reap the dead ones, and check the subscription is alive.  Never fails (a failing
        LoopingCall stops)."""
        try:
            proto = self._cmd.protocol
            if proto is None or self._syncing is not None:
                return
            if self._need_sync:
                yield self._sync(proto)
                return
            old = yield self._renew()
            if old != self._token:
                if old is None:
                    log.warn(
                        "the lease of node {node} had run out (taken for dead): writing its devices again",
                        node=self.node,
                    )
                    # Others may have reaped our devices and routed nothing to us since.
                    self._resume_due(self._reactor.seconds() - self._config.lease_seconds)
                yield self._sync(proto)
                return
            yield self._refresh()
        except RedisUnavailable as e:
            log.debug("renewing the lease of node {node}: {error}", node=self.node, error=str(e))
        except Exception:
            log.failure("renewing the lease of node {node} failed", node=self.node)
        finally:
            self._ping_subscriber()

    def _status(self) -> defer.Deferred:
        """Fire with ``[(node, info dict, lease ms left)]`` for every registered node."""
        return self._eval(_STATUS, [self._nodes_key], [self._lease_prefix]).addCallback(self._parse_status)

    @staticmethod
    def _parse_status(flat: list) -> list[tuple[str, dict, int]]:
        entries = []
        for i in range(0, len(flat) - 2, 3):
            try:
                info = json.loads(flat[i + 1])
            except ValueError:
                info = {}
            entries.append((flat[i].decode(), info if isinstance(info, dict) else {}, int(flat[i + 2])))
        return entries

    @staticmethod
    def _alive(pttl: int) -> bool:
        return pttl > 0 or pttl == -1  # -1: no expiry (set by hand): taken as alive

    @defer.inlineCallbacks
    def _refresh(self):
        entries = yield self._status()
        self._live = frozenset([name for name, _, pttl in entries if self._alive(pttl)] + [self.node])
        for name, _, pttl in entries:
            if not self._alive(pttl) and name != self.node and name not in self._reaping:
                self._reap(name)

    def _refresh_soon(self) -> None:
        """Refresh now, coalescing announcements that arrive while a refresh is running."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True

        def done(result: object) -> None:
            self._refreshing = False
            if isinstance(result, Failure):
                log.debug("refreshing the live nodes failed: {error}", error=result.getErrorMessage())
            if self._refresh_again and not self._stopped:
                self._refresh_again = False
                self._refresh_soon()

        self._refresh().addBoth(done)

    def _reap_step(self, node: str, mode: str) -> defer.Deferred:
        keys = [self._nd_prefix + node, self._lease_prefix + node, self._nodes_key]
        d = self._eval(_REAP, keys, [self._user_prefix, node, REAP_BATCH, mode])
        return d.addCallback(lambda r: (int(r[0]), int(r[1])))

    @defer.inlineCallbacks
    def _reap(self, node: str):
        """Remove a dead node's devices and nodes entry, a batch at a time (stops if it comes
        back); several nodes may do it at once, each batch is atomic."""
        self._reaping.add(node)
        total = 0
        try:
            while True:
                removed, left = yield self._reap_step(node, "reap")
                if removed < 0:
                    return
                total += removed
                if left == 0:
                    break
            log.info("reaped node {name} (its lease ran out): {count} devices removed", name=node, count=total)
        except Exception as e:
            log.warn("reaping node {name} failed: {error}", name=node, error=str(e))
        finally:
            self._reaping.discard(node)

    # -- IPresence

    def device_online(self, user_id: int, device_id: str, client_type: int) -> defer.Deferred:
        """One script call: the user's hash and this node's set, atomically."""
        args = [self._user_prefix, self.node, int(user_id), device_id, int(client_type)]
        return self._eval(_WRITE, [self._nd_key], args).addCallback(_none)

    def device_offline(self, user_id: int, device_id: str) -> defer.Deferred:
        args = [self._user_prefix, self.node, int(user_id), device_id]
        return self._eval(_REMOVE, [self._nd_key], args).addCallback(_none)

    def devices_of(self, user_id: int) -> defer.Deferred:
        """Fire with ``[(node, device id, client type)]`` of the user's devices on live nodes."""
        return self._command("HGETALL", f"{self._user_prefix}{int(user_id)}").addCallback(self._devices_from)

    def _devices_from(self, flat: list) -> list[tuple[str, str, int]]:
        live = self._live
        devices = []
        for i in range(0, len(flat) - 1, 2):
            node, _, client_type = flat[i + 1].decode().rpartition("|")
            if node in live:
                devices.append((node, flat[i].decode(), int(client_type)))
        return devices

    def locate(self, user_ids: Iterable[int]) -> defer.Deferred:
        """Fire with ``{user id: {node}}`` for users with devices on other live nodes: one round
        trip (scripts of up to LOCATE_BATCH users, sent together); nothing is asked when no other
        node is alive."""
        ids = list(dict.fromkeys(int(u) for u in user_ids))
        if not ids or len(self._live) <= 1:
            return defer.succeed({})
        batches = [ids[i : i + LOCATE_BATCH] for i in range(0, len(ids), LOCATE_BATCH)]
        lookups = [self._eval(_LOCATE, [f"{self._user_prefix}{u}" for u in batch], []) for batch in batches]
        return _gather(lookups).addCallback(self._located, batches)

    def _located(self, results: list, batches: list[list[int]]) -> dict[int, set[str]]:
        live = self._live
        found: dict[int, set[str]] = {}
        for batch, values in zip(batches, results, strict=True):
            for user_id, user_values in zip(batch, values, strict=True):
                nodes = {v.decode().rpartition("|")[0] for v in user_values}
                nodes = {n for n in nodes if n in live and n != self.node}
                if nodes:
                    found[user_id] = nodes
        return found

    def live_nodes(self) -> frozenset[str]:
        """The nodes whose lease was current at the last refresh, this one always included."""
        return self._live

    def online_count(self) -> defer.Deferred:
        """Users online in the cluster: this node's exact count plus the other live nodes'
        reports (at most lease/4 old)."""

        def count(entries: list) -> int:
            here = self._local.user_count if self._local is not None else 0
            return here + sum(
                int(info.get("users", 0)) for name, info, pttl in entries if name != self.node and self._alive(pttl)
            )

        return self._status().addCallback(count)

    def nodes(self) -> defer.Deferred:
        """Fire with a NodeInfo per registered node, dead ones (not reaped yet) included."""

        def infos(entries: list) -> list[NodeInfo]:
            result = []
            for name, info, pttl in entries:
                users, devices = int(info.get("users", 0)), int(info.get("devices", 0))
                if name == self.node and self._local is not None:
                    users, devices = self._local.user_count, self._local.device_count
                lease_left = pttl / 1000 if pttl > 0 else (float("inf") if pttl == -1 else 0.0)
                started_at = float(info.get("started_at", 0.0))
                result.append(NodeInfo(name, self._alive(pttl), users, devices, started_at, lease_left))
            return sorted(result)

        return self._status().addCallback(infos)

    # -- IClusterBus

    def listen(self, receiver: IClusterReceiver) -> defer.Deferred:
        """Subscribe (on a connection of its own) to this node's channel and the all-nodes one;
        fires once subscribed, or fails with RedisUnavailable after the timeout (while it keeps
        trying)."""
        self._receiver = receiver
        if self._subscribed is not None:
            return defer.succeed(None)
        if self._sub is None:
            self._sub = _Link(
                self._reactor, "subscription", _SubscriberProtocol, self._connect,
                lambda proto: self._handshake(proto, select=False), self._sub_ready, self._sub_lost,
                self._timeout, self._max_delay,
            )  # fmt: skip
            self._sub.start()
        self._listening = d = defer.Deferred()

        def timed_out(failure: Failure) -> Failure:
            if failure.check(defer.TimeoutError):
                raise RedisUnavailable(f"cannot subscribe on Redis at {self._where()} within {self._timeout:g} s")
            return failure

        return d.addTimeout(self._timeout, self._reactor).addErrback(timed_out)

    def _sub_ready(self, proto: Any) -> None:
        proto.on_message = self._on_message
        d = _gather([proto.subscribe(self._own_channel), proto.subscribe(self._all_channel)])
        d.addTimeout(self._timeout, self._reactor)
        d.addCallbacks(self._sub_subscribed, self._sub_failed, callbackArgs=(proto,), errbackArgs=(proto,))

    def _sub_subscribed(self, _: object, proto: Any) -> None:
        if self._sub is None or proto is not self._sub.protocol:
            return
        self._subscribed = proto
        lost_at, self._sub_lost_at = self._sub_lost_at, None
        listening, self._listening = self._listening, None
        if listening is not None and not listening.called:
            listening.callback(None)
        if lost_at is not None:
            log.info("node {node}: subscribed again (lost at {lost_at:.0f})", node=self.node, lost_at=lost_at)
            self._resume_due(lost_at)
        # Nodes that announced themselves (or their leaving) while nothing listened are learnt
        # now, not at the next renewal (lease/4): until then nothing would be routed to them.
        self._refresh_soon()
        self._resume_if_ready()

    def _resume_due(self, lost_at: float) -> None:
        if self._resume_from is None or lost_at < self._resume_from:
            self._resume_from = lost_at

    def _resume_if_ready(self) -> None:
        """Tell the receiver to catch up (``resumed``) once BOTH connections are back: subscribed
        again, and this node's devices written again into Redis (a restarted one lost them).
        Before that, other nodes find none of our users, and what they route reaches no node, so
        a catch-up run earlier would miss it.  A second call follows after lease/4 + timeout: the
        other nodes learn only at their next refresh that this node is alive again (until then
        they do not route to it at all); the receiver pushes only what its devices lack."""
        lost_at = self._resume_from
        if lost_at is None or self._receiver is None or self._stopped:
            return
        if self._subscribed is None or not self._synced or self._need_sync:
            return
        self._resume_from = None
        self._resume(lost_at)
        again = lost_at
        if self._resume_again is not None and self._resume_again.active():
            again = min(again, self._resume_again.args[0])  # an earlier outage's second pass
            self._resume_again.cancel()
        settle = self._config.lease_seconds / 4 + self._timeout
        self._resume_again = self._reactor.callLater(settle, self._resume, again)

    def _resume(self, lost_at: float) -> None:
        if self._receiver is None or self._stopped:
            return
        try:
            self._receiver.resumed(lost_at)
        except Exception:
            log.failure("the cluster receiver failed to resume")

    def _sub_failed(self, failure: Failure, proto: Any) -> None:
        if self._sub is not None and proto is self._sub.protocol:
            log.warn("node {node}: subscribing failed: {error}", node=self.node, error=failure.getErrorMessage())
            proto.transport.abortConnection()

    def _sub_lost(self, proto: Any) -> None:
        if self._subscribed is proto:
            self._subscribed = None
            if self._sub_lost_at is None:
                self._sub_lost_at = self._reactor.seconds()

    def _ping_subscriber(self) -> None:
        """A subscriber only listens, so a dead connection (no reset ever came) would go unseen:
        a PING without an answer within the timeout drops it, and it is made again."""
        proto = self._subscribed
        if proto is not None and self._sub is not None:
            link = self._sub
            d = defer.maybeDeferred(proto.execute_command, "PING")
            d.addErrback(lambda f: link.drop(proto, "no answer to PING") if f.check(txredisapi.TimeoutError) else None)

    def _on_message(self, payload: bytes) -> None:
        if not isinstance(payload, bytes):
            payload = str(payload).encode()
        if payload.startswith(CONTROL_PREFIX):
            kind, _, node = payload[len(CONTROL_PREFIX) :].partition(b":")
            if node.decode(errors="replace") != self.node:
                self._refresh_soon()  # hello or bye: who is alive changed
            return
        receiver = self._receiver
        if receiver is not None:
            try:
                receiver.received(payload)
            except Exception:
                log.failure("the cluster receiver failed on a payload")

    def publish(self, node: str, payload: bytes) -> None:
        """Send ``payload`` to ``node``; never fails (waits in the queue while Redis is away)."""
        self._send(self._channel_prefix + node, payload)

    def broadcast(self, payload: bytes) -> None:
        """Send ``payload`` to every node, this one included; never fails."""
        self._send(self._all_channel, payload)

    def _send(self, channel: str, payload: bytes, control: bool = False) -> None:
        payload = bytes(payload)
        if not control and payload.startswith(CONTROL_PREFIX):
            raise ValueError("payloads starting with CONTROL_PREFIX are reserved for the presence backend")
        if self._stopped:
            return
        proto = self._cmd.protocol
        if proto is None or not self._synced or self._outbox:
            self._enqueue(channel, payload)
        else:
            self._publish_now(proto, channel, payload)

    def _enqueue(self, channel: str, payload: bytes) -> None:
        self._outbox.append((channel, payload))
        if len(self._outbox) > self._queue_size:
            self._outbox.popleft()
            self._dropped += 1
            self.dropped_total += 1
            if self._dropped == 1:
                log.warn(
                    "node-to-node queue full ({size} payloads) while Redis is unreachable: dropping the oldest",
                    size=self._queue_size,
                )

    def _publish_now(self, proto: Any, channel: str, payload: bytes) -> None:
        self._in_flight.append((channel, payload))
        try:
            # No reply timeout per payload: a hung server is noticed by the renewal's commands,
            # whose timeout drops the connection, and then these go again.
            d = proto.execute_command("PUBLISH", channel, payload, apply_timeout=False)
        except txredisapi.ConnectionError:
            return  # lost in this very turn: _cmd_lost requeues it
        d.addCallbacks(self._published, self._publish_failed, callbackArgs=(proto,), errbackArgs=(proto,))

    def _published(self, _: object, proto: Any) -> None:
        if proto is self._cmd.protocol and self._in_flight:
            self._in_flight.popleft()

    def _publish_failed(self, failure: Failure, proto: Any) -> None:
        if failure.check(txredisapi.ConnectionError):
            return  # the connection is going: _cmd_lost requeues what was in flight
        if proto is self._cmd.protocol and self._in_flight:
            self._in_flight.popleft()
        log.warn("a node-to-node payload was refused and dropped: {error}", error=failure.getErrorMessage())

    @defer.inlineCallbacks
    def _release_outbox(self, proto: Any):
        """Send what waited, in order, then let payloads go straight out again."""
        if self._outbox:
            yield self._await_subscribers(proto)
        if proto is not self._cmd.protocol:
            return
        count = len(self._outbox)
        while self._outbox:
            channel, payload = self._outbox.popleft()
            self._publish_now(proto, channel, payload)
        self._synced = True
        if self._dropped:
            log.warn(
                "{count} node-to-node payloads were dropped while Redis was unreachable (queue of {size} full)",
                count=self._dropped,
                size=self._queue_size,
            )
            self._dropped = 0
        if count:
            log.info("sent {count} node-to-node payloads that waited for Redis", count=count)

    @defer.inlineCallbacks
    def _await_subscribers(self, proto: Any):
        """After an outage the other nodes are reconnecting too: give their subscriptions up to
        the timeout to come back, so that what waited is not published to nobody.  The nodes
        expected are those live before the outage."""
        wanted: dict[str, int] = {}
        for channel, _ in self._outbox:
            if channel == self._all_channel:
                wanted[channel] = len(self._live) - (0 if self._receiver is not None else 1)
            else:
                node = channel[len(self._channel_prefix) :]
                if node in self._live and (node != self.node or self._receiver is not None):
                    wanted[channel] = 1
        if not wanted:
            return
        deadline = self._reactor.seconds() + self._timeout
        channels = list(wanted)
        while proto is self._cmd.protocol and self._reactor.seconds() < deadline:
            try:
                reply = yield self._command("PUBSUB", "NUMSUB", *channels)
            except Exception:
                return
            counts = {reply[i].decode(): int(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}
            if all(counts.get(channel, 0) >= n for channel, n in wanted.items()):
                return
            yield task.deferLater(self._reactor, SUBSCRIBER_WAIT_STEP, _none, None)


def create_presence(reactor: IReactorTime, config: PresenceConfig, node: str) -> RedisPresence:
    """The presence backend ``redis`` (plugins.BUILTIN_PRESENCE)."""
    return RedisPresence(reactor, config, node)
