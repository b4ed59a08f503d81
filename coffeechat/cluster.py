"""Delivery between the nodes of a cluster, over the presence backend's bus.

A node stores a message (in the shared storage) and pushes it to its own devices of the
recipients; the pushes for devices on other nodes are collected for one reactor turn, the shared
presence is asked once where those users are, and each node that holds some of them gets one
payload with each push encoded once and the users it is for.  Nothing goes to nodes that hold
none of the recipients, and with no other live node nothing is looked up at all.

The bus may drop payloads (Redis pub/sub does when a subscriber is cut off), so correctness
never rests on it: a node whose subscription was lost catches its devices up from storage when
it is back (:meth:`Cluster.resumed`), and clients fill any gap they see by sequence number
(docs/delivery.md).  Payloads are JSON: the nodes of a cluster may run different versions
during a rolling upgrade, and unknown kinds are ignored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from coffeechat.handlers.group_state import GroupCache
from coffeechat.interfaces import IClusterBus, IClusterReceiver, IMessageStore, IPresence, IUserStore
from coffeechat.model import GroupNotice, Message, Push, ReadCount, ReadReceipt, SessionType

log = Logger()

MAX_PUSHES_PER_PAYLOAD = 500
READS_INTERVAL = 1.0
CATCH_UP_SLACK = 2  # seconds before the loss that a catch-up also covers (clocks, commit lag)
CATCH_UP_CONCURRENCY = 4
CATCH_UP_CONVERSATIONS = 200
CATCH_UP_MESSAGES = 100


# -- the payload codec


def encode_push(push: Push) -> list:
    """A push as JSON-able data (the transports' cached encodings are not sent)."""
    payload = push.payload
    if push.kind == Push.MESSAGE:
        message, nick, *extra = payload
        m = message
        body = [
            m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.client_msg_id, m.msg_type,
            base64.b64encode(m.data).decode("ascii"), m.created_at, m.client_type,
        ]  # fmt: skip
        if extra:
            mentions, at_all = extra
            return [push.kind, body, nick, list(mentions), bool(at_all)]
        return [push.kind, body, nick]
    if push.kind == Push.READ:
        r = payload
        return [push.kind, r.reader_id, r.session_id, r.session_type, r.seq]
    if push.kind == Push.GROUP:
        g = payload
        return [push.kind, g.group_id, g.actor_id, g.version, [list(c) for c in g.changes]]
    if push.kind == Push.READ_COUNT:
        c = payload
        return [push.kind, c.group_id, c.seq, c.read_count, c.member_count]
    raise ValueError(f"cannot send a {push.kind!r} push to another node")


def decode_push(data: list) -> Push | None:
    """The push :func:`encode_push` made, or None for a kind this version does not know."""
    kind = data[0]
    if kind == Push.MESSAGE:
        b = data[1]
        message = Message(b[0], b[1], b[2], b[3], b[4], b[5], b[6], base64.b64decode(b[7]), b[8], b[9])
        if len(data) > 3:
            return Push(kind, (message, data[2], tuple(data[3]), bool(data[4])))
        return Push(kind, (message, data[2]))
    if kind == Push.READ:
        return Push(kind, ReadReceipt(*data[1:5]))
    if kind == Push.GROUP:
        return Push(kind, GroupNotice(data[1], data[2], data[3], tuple(tuple(c) for c in data[4])))
    if kind == Push.READ_COUNT:
        return Push(kind, ReadCount(*data[1:5]))
    return None


def _encoded(push: Push) -> list:
    """:func:`encode_push`, once per push however many nodes it goes to (cached with the
    transports' encodings)."""
    encoded = push.encoded.get("cluster")
    if encoded is None:
        encoded = push.encoded["cluster"] = encode_push(push)
    return encoded


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# -- the cluster


@implementer(IClusterReceiver)
class Cluster:
    """This node's side of cross-node delivery (see the module docstring).

    ``local`` is the router (pushes to this node's devices); what other nodes changed reaches
    the core's caches through ``groups`` (a changed group is dropped) and the hooks:
    ``reads_elsewhere`` marks group read counts dirty, ``disconnect_user`` closes a user's
    devices here.
    """

    def __init__(
        self,
        presence: IPresence,
        bus: IClusterBus,
        local,
        store: IMessageStore | IUserStore,
        groups: GroupCache,
        clock: IReactorTime,
        reads_elsewhere: Callable[[int, int, int], None],
        disconnect_user: Callable[[int, int, str], None],
    ) -> None:
        self.presence = presence
        self.bus = bus
        self.local = local
        self.store = store
        self.groups = groups
        self.clock = clock
        self.node = presence.node
        self._reads_elsewhere = reads_elsewhere
        self._disconnect_user = disconnect_user
        self._batch: list[tuple[int, Push]] = []
        self._scheduled = False
        self._in_flight = False
        self._reads: dict[int, list[int]] = {}
        self._reads_loop = task.LoopingCall(self._send_reads)
        self._reads_loop.clock = clock
        self.catching_up: defer.Deferred | None = None
        self.sent = 0  # payloads published, for tests and metrics
        self.received_pushes = 0

    @defer.inlineCallbacks
    def start(self):
        yield self.bus.listen(self)
        self._reads_loop.start(READS_INTERVAL, now=False)

    def stop(self) -> None:
        if self._reads_loop.running:
            self._reads_loop.stop()

    # -- outgoing

    def route(self, user_id: int, push: Push) -> None:
        """Deliver ``push`` to ``user_id``'s devices on other nodes (batched per reactor turn)."""
        if len(self.presence.live_nodes()) < 2:
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
        d.addCallbacks(self._located, self._locate_failed, callbackArgs=(batch,), errbackArgs=(batch,))
        d.addErrback(lambda f: log.failure("cross-node delivery failed", f))
        d.addBoth(self._flushed)

    def _flushed(self, _: object) -> None:
        self._in_flight = False
        if self._batch and not self._scheduled:
            self._scheduled = True
            self.clock.callLater(0, self._flush)

    def _located(self, where: dict[int, set[str]] | None, batch: list[tuple[int, Push]]) -> None:
        """One payload per node holding some of the users (``where`` None: every other live
        node, each pushing to those it holds)."""
        others = self.presence.live_nodes() - {self.node} if where is None else ()
        per_node: dict[str, dict[int, tuple[Push, list[int]]]] = {}
        for user_id, push in batch:
            for node in others if where is None else where.get(user_id, ()):
                entries = per_node.setdefault(node, {})
                entry = entries.get(id(push))
                if entry is None:
                    entries[id(push)] = (push, [user_id])
                else:
                    entry[1].append(user_id)
        for node, entries in per_node.items():
            self._publish_pushes(node, list(entries.values()))

    def _locate_failed(self, failure: Failure, batch: list[tuple[int, Push]]) -> None:
        """Presence could not say where the users are: send the batch to every other live node,
        each pushes to those it holds (more traffic, nothing missed)."""
        log.warn("locating users failed ({error}); sending to all nodes", error=failure.getErrorMessage())
        self._located(None, batch)

    def _publish_pushes(self, node: str, entries: list[tuple[Push, list[int]]]) -> None:
        for start in range(0, len(entries), MAX_PUSHES_PER_PAYLOAD):
            chunk = entries[start : start + MAX_PUSHES_PER_PAYLOAD]
            payload = {"t": "push", "from": self.node, "p": [[_encoded(p), users] for p, users in chunk]}
            self.bus.publish(node, _dumps(payload))
            self.sent += 1

    def group_changed(self, group_id: int) -> None:
        """A group's members or settings changed here: other nodes drop their cached copy."""
        if len(self.presence.live_nodes()) > 1:
            self.bus.broadcast(_dumps({"t": "group", "from": self.node, "g": group_id}))

    def read_moved(self, group_id: int, before: int, after: int) -> None:
        """A member read a group here; nodes watching read counts of it hear once a second."""
        span = self._reads.get(group_id)
        if span is None:
            self._reads[group_id] = [before, after]
        else:
            span[0] = min(span[0], before)
            span[1] = max(span[1], after)

    def _send_reads(self) -> None:
        if not self._reads:
            return
        reads, self._reads = self._reads, {}
        if len(self.presence.live_nodes()) > 1:
            spans = [[group_id, b, a] for group_id, (b, a) in reads.items()]
            self.bus.broadcast(_dumps({"t": "reads", "from": self.node, "r": spans}))

    def disconnect_user(self, user_id: int, code: int, reason: str) -> None:
        """Close ``user_id``'s devices on every node (an account disabled by an admin)."""
        if len(self.presence.live_nodes()) > 1:
            self.bus.broadcast(_dumps({"t": "kick", "from": self.node, "u": user_id, "c": code, "m": reason}))

    # -- incoming (IClusterReceiver)

    def received(self, payload: bytes) -> None:
        try:
            data = json.loads(payload)
            kind = data["t"]
            if data.get("from") == self.node:
                return  # our own broadcast
            if kind == "push":
                self._received_pushes(data["p"])
            elif kind == "group":
                self.groups.forget(int(data["g"]))
            elif kind == "reads":
                for group_id, before, after in data["r"]:
                    self._reads_elsewhere(int(group_id), int(before), int(after))
            elif kind == "kick":
                self._disconnect_user(int(data["u"]), int(data["c"]), str(data["m"]))
        except Exception:
            log.failure("a payload from another node could not be handled: {payload!r}", payload=payload[:200])

    def _received_pushes(self, entries: list) -> None:
        push_local = self.local.push_local
        for encoded, users in entries:
            push = decode_push(encoded)
            if push is None:
                continue
            for user_id in users:
                self.received_pushes += push_local(user_id, push)

    def resumed(self, lost_at: float) -> None:
        """Payloads sent to this node since ``lost_at`` may be lost: forget cached groups (their
        changes may have been missed) and push to each local user what storage holds since then."""
        self.groups.forget(None)
        self.catching_up = defer.ensureDeferred(self._catch_up(int(lost_at) - CATCH_UP_SLACK))
        self.catching_up.addErrback(lambda f: log.failure("catching up after a lost subscription failed", f))

    async def _catch_up(self, since: int) -> None:
        users = list({device.user_id for device in self.local.all_devices()})
        log.info("catching up {n} users from storage since {since}", n=len(users), since=since)
        nicks: dict[int, str] = {}
        work = (self._catch_up_user(user_id, since, nicks) for user_id in users)
        coop = task.Cooperator(scheduler=lambda f: self.clock.callLater(0, f), started=True)
        await defer.DeferredList([coop.coiterate(work) for _ in range(CATCH_UP_CONCURRENCY)])
        coop.stop()

    def _catch_up_user(self, user_id: int, since: int, nicks: dict[int, str]) -> defer.Deferred:
        return defer.ensureDeferred(self._catch_up_one(user_id, since, nicks))

    async def _catch_up_one(self, user_id: int, since: int, nicks: dict[int, str]) -> None:
        entries = await self.store.conversations_of(user_id, since, CATCH_UP_CONVERSATIONS)
        for entry in entries:
            if entry.session_type == SessionType.GROUP:
                state = await self.groups.get(entry.session_id)
                member = None if state is None else state.members.get(user_id)
                if member is None:
                    continue
                messages = await self.store.history(entry.conv, 0, CATCH_UP_MESSAGES, member.joined_seq)
            else:
                messages = await self.store.history(entry.conv, 0, CATCH_UP_MESSAGES)
            for message in messages:
                if message.created_at < since:
                    continue
                nick = nicks.get(message.sender_id)
                if nick is None:
                    sender = await self.store.user_by_id(message.sender_id)
                    nick = nicks[message.sender_id] = sender.nick_name if sender else ""
                self.local.push_local(user_id, Push(Push.MESSAGE, (message, nick)))
