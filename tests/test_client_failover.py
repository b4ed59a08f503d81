"""The resilient client session (``ResilientClient``): failover, resume by token, catch-up.

Most tests run two chat cores sharing one memory store on a MemoryReactorClock, with the client
wired to them through in-memory pipes (so a node can be killed, or frozen half-open, exactly
when a test says); the last ones run real nodes on loopback sockets, a node stopping and its
successor starting on the same data directory.
"""

from __future__ import annotations

import math
import random
import socket
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.presence_memory import MemoryPresence
from coffeechat.config import load_config
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.node import ChatNode
from coffeechat.protocols import client as cim_client
from coffeechat.protocols.client import (
    Backoff,
    ChatMessage,
    CIMClient,
    ClientStopped,
    KickedOut,
    LoginRefused,
    ResilientClient,
    SeqTracker,
)
from coffeechat.protocols.tcp import CIMServerFactory
from coffeechat.schema import Cmd, pb

from .conftest import node_config, start_node, stop_node
from .memory_node import md5

# -- the pure parts: backoff and the sequence tracker


@pytest.mark.parametrize("jitter", Backoff.JITTERS)
def test_backoff_stays_within_bounds_and_resets(jitter):
    backoff = Backoff(0.5, 30.0, 2.0, jitter, random.Random(7))
    delays = [backoff.next() for _ in range(40)]
    for attempt, delay in enumerate(delays):
        cap = min(30.0, 0.5 * 2**attempt)
        if jitter == "full":
            assert 0 <= delay <= cap
        elif jitter == "equal":
            assert cap / 2 <= delay <= cap
        elif jitter == "none":
            assert delay == cap
        else:
            assert 0.5 <= delay <= 30.0
    assert max(delays) <= 30.0 and max(delays[-10:]) > 10  # it grew to the ceiling
    backoff.reset()
    assert backoff.attempt == 0 and backoff.next() <= 1.5  # decorrelated: up to 3 × initial
    again = Backoff(0.5, 30.0, 2.0, jitter, random.Random(7))
    assert [again.next() for _ in range(40)] == delays  # a seeded rng is deterministic


def test_backoff_refuses_nonsense():
    with pytest.raises(ValueError):
        Backoff(jitter="sometimes")
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)


def msg(seq: int, key=(1, 2), source="push") -> ChatMessage:
    return ChatMessage(key[0], key[1], seq, f"c{seq}", key[1], 1, b"x", 0, False, source)


def test_tracker_delivers_in_order_once_and_waits_behind_gaps():
    got: list[int] = []
    tracker = SeqTracker(lambda m: got.append(m.server_msg_id))
    assert tracker.offer(msg(1)) and tracker.offer(msg(2))
    assert not tracker.offer(msg(2)) and not tracker.offer(msg(1))  # duplicates
    assert tracker.offer(msg(5)) and tracker.offer(msg(4))
    assert not tracker.offer(msg(5))  # a duplicate of one waiting
    assert got == [1, 2] and tracker.top_waiting((1, 2)) == 5
    tracker.offer(msg(3))
    assert got == [1, 2, 3, 4, 5] and not tracker.waiting and tracker.held == {(1, 2): 5}
    tracker.offer(msg(1, key=(2, 9)))  # conversations are independent
    assert tracker.held == {(1, 2): 5, (2, 9): 1}


def test_tracker_complete_skips_ids_never_returned_and_baseline_keeps_waiting():
    got: list[int] = []
    tracker = SeqTracker(lambda m: got.append(m.server_msg_id), positions={(2, 7): 3})
    tracker.offer(msg(9, key=(2, 7)))
    tracker.offer(msg(12, key=(2, 7)))
    # a fetch of 4..11 returned 6..8 only (4, 5 not visible; 10, 11 likewise): all resolved
    tracker.complete((2, 7), 11, [msg(8, (2, 7), "sync"), msg(6, (2, 7), "sync"), msg(7, (2, 7), "sync")])
    assert got == [6, 7, 8, 9, 12] and tracker.held[(2, 7)] == 12 and not tracker.waiting
    got.clear()
    tracker.offer(msg(20, key=(1, 4)))
    tracker.baseline((1, 4), 30)  # the listing said 30, but 20 was pushed: start before it
    assert tracker.held[(1, 4)] == 20 and got == [20]


# -- an in-memory cluster: two cores on one memory store, clients on in-memory pipes


class PipeEnd:
    """One end of an in-memory connection; bytes arrive ``latency`` seconds later."""

    def __init__(self, clock: MemoryReactorClock, protocol, latency: float) -> None:
        self.clock = clock
        self.protocol = protocol
        self.latency = latency
        self.peer: PipeEnd | None = None
        self.connected = True
        self.disconnecting = False
        self.frozen = False  # drop everything, both ways, and never close: a half-open socket

    def write(self, data: bytes) -> None:
        if self.connected and not self.disconnecting and not self.frozen and data:
            self.clock.callLater(self.latency, self.peer._receive, data)

    def writeSequence(self, parts) -> None:
        self.write(b"".join(parts))

    def _receive(self, data: bytes) -> None:
        if self.connected and not self.frozen:
            self.protocol.dataReceived(data)

    def loseConnection(self) -> None:
        if self.connected and not self.disconnecting:
            self.disconnecting = True
            self.clock.callLater(self.latency, self.close, ConnectionDone())

    def abortConnection(self) -> None:
        if self.connected:
            self.clock.callLater(0, self.close, ConnectionAborted())

    def close(self, reason: Exception) -> None:
        for end in (self, self.peer):
            if end.connected:
                end.connected = False
                end.protocol.connectionLost(Failure(reason))

    def getPeer(self):
        return IPv4Address("TCP", "127.0.0.1", 40000)

    getHost = getPeer

    def pauseProducing(self) -> None:
        pass

    resumeProducing = stopProducing = pauseProducing

    def registerProducer(self, producer, streaming) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass


class MemoryCluster:
    """Nodes "a" and "b" sharing one memory store (no pushes cross between them)."""

    LATENCY = 2**-10  # binary fractions keep the clock exact

    def __init__(self, **overrides) -> None:
        settings = {"auth.scrypt_n": 16, "listen.cim": [], "listen.http": [], "listen.ws": []}
        settings.update(overrides)
        self.config = load_config(None, settings)
        self.clock = MemoryReactorClock()
        self.store = MemoryStore()
        self.cores: dict[str, ChatNode] = {}
        self.factories: dict[str, CIMServerFactory] = {}
        self.pipes: dict[str, list[PipeEnd]] = {}
        self.up: dict[str, bool] = {}
        for name in ("a", "b"):
            core = ChatNode(self.config, self.clock, self.store, MemoryPresence(name), run_cpu=defer.maybeDeferred)
            core.start()
            self.cores[name] = core
            self.factories[name] = CIMServerFactory(core)
            self.pipes[name] = []
            self.up[name] = True
        self.connects: list[str] = []

    def connector(self, address: str) -> defer.Deferred:
        """The ResilientClient's connector: addresses are node names."""
        self.connects.append(address)
        if not self.up[address]:
            return defer.fail(ConnectionRefusedError(address))
        client = CIMClient(self.clock)
        server = self.factories[address].buildProtocol(None)
        client_end = PipeEnd(self.clock, client, self.LATENCY)
        server_end = PipeEnd(self.clock, server, self.LATENCY)
        client_end.peer, server_end.peer = server_end, client_end
        self.pipes[address].append(server_end)
        server.makeConnection(server_end)
        client.makeConnection(client_end)
        return defer.succeed(client)

    def kill(self, name: str) -> None:
        """``kill -9``: every connection drops, new ones are refused."""
        self.up[name] = False
        for end in self.pipes[name]:
            if end.connected:
                end.close(ConnectionLost())

    def freeze(self, name: str) -> None:
        """The node stops answering but no socket closes (a half-open connection); new
        connections are refused."""
        self.up[name] = False
        for end in self.pipes[name]:
            end.frozen = end.peer.frozen = True

    def user(self, name: str, password: str = "secret") -> int:
        d = defer.ensureDeferred(self.cores["a"].feature("accounts").create_user(name, name.title(), md5(password)))
        return result(d).user_id

    def send_via(self, node: str, sender_id: int, to_id: int, text: str, session_type: int = 1):
        """A message stored through ``node``'s core, as if another user's device sent it there."""
        d = defer.ensureDeferred(self._send(node, sender_id, to_id, text, session_type))
        self.run(0)
        return result(d)

    async def _send(self, node: str, sender_id: int, to_id: int, text: str, session_type: int):
        core = self.cores[node]
        sender = await core.store.user_by_id(sender_id)
        out = await core.feature("messages").send(
            sender, None, session_type, to_id, str(uuid.uuid4()), 1, text.encode()
        )
        return out.message.seq

    def resilient(self, name: str, servers=("a", "b"), **kwargs) -> ResilientClient:
        options = {
            "backoff_initial": 0.5,
            "backoff_max": 8.0,
            "rng": random.Random(1),
            "failover_jitter": 0.0,
            "gap_wait": 0.05,
            "connector": self.connector,
        }
        options.update(kwargs)
        if "token" not in options and "password_md5" not in options:
            options.setdefault("password", "secret")
        return ResilientClient(self.clock, list(servers), name, **options)

    def run(self, seconds: float, step: float = 2**-7) -> None:
        """Advance the clock by at least ``seconds`` (0: run what is due now)."""
        self.clock.advance(0)
        for _ in range(math.ceil(seconds / step)):
            self.clock.advance(step)


def result(d: defer.Deferred):
    results: list = []
    d.addBoth(results.append)
    assert results, "Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def texts(messages: list[ChatMessage]) -> list[str]:
    return [m.text for m in messages]


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster()


def test_connects_in_order_then_rotates_with_backoff_and_resets_after_login(cluster):
    cluster.user("alice")
    cluster.up["a"] = cluster.up["b"] = False
    alice = cluster.resilient("alice", backoff_initial=1.0, backoff_max=8.0, failover_jitter=0.2, jitter="equal")
    logged_in = alice.start()
    delays = []
    for _ in range(7):
        delays.append(alice.next_delay)
        cluster.clock.advance(alice.next_delay)
    assert cluster.connects == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert 0 <= delays[0] <= 0.2  # the next server, after a short random delay
    for attempt, delay in enumerate(delays[1:]):  # then backoff: equal jitter, doubling, capped
        cap = min(8.0, 2.0**attempt)
        assert cap / 2 <= delay <= cap, (attempt, delay)
    assert not logged_in.called and alice.attempts == 8
    cluster.up["a"] = True  # the 9th attempt goes to a
    cluster.clock.advance(alice.next_delay)
    cluster.run(0.1)
    assert result(logged_in) is alice.client and alice.server == "a" and alice.server_index == 0
    assert (alice.logins, alice.failovers, alice.login_method) == (1, 0, "password")
    assert alice.backoff.attempt == 0 and alice.last_login_at is not None
    cluster.up["b"] = True
    cluster.kill("a")  # a lost connection goes to the next server: fresh, not backed off
    cluster.run(0)
    assert alice.server == "b" and alice.next_delay <= 0.2
    cluster.run(0.3)
    assert alice.logged_in and alice.server == "b" and (alice.logins, alice.failovers) == (2, 1)


def test_randomize_start_picks_a_seeded_server(cluster):
    cluster.user("alice")
    picks = {cluster.resilient("alice", randomize_start=True, rng=random.Random(seed)).server for seed in range(20)}
    assert picks == {"a", "b"}


def test_failover_resumes_by_token_and_catches_up_exactly_once_in_order(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    bob = cluster.resilient("bobby")
    bob.start()
    cluster.run(0.1)
    assert bob.synced and bob.server == "a" and bob.login_method == "password"
    for i in range(3):
        cluster.send_via("a", alice_id, bob_id, f"m{i}")
    cluster.run(0.1)
    cluster.kill("a")
    for i in range(3, 48):  # while bob is away: more than two history pages
        cluster.send_via("b", alice_id, bob_id, f"m{i}")
    cluster.run(1)
    assert bob.server == "b" and bob.login_method == "token" and bob.synced
    assert (bob.logins, bob.failovers, bob.disconnects) == (2, 1, 1)
    for i in range(48, 50):  # pushed live on b
        cluster.send_via("b", alice_id, bob_id, f"m{i}")
    cluster.run(0.1)
    got = [result(bob.next_message()) for _ in range(50)]
    assert texts(got) == [f"m{i}" for i in range(50)]
    assert [m.server_msg_id for m in got] == list(range(1, 51))
    assert {m.source for m in got[3:48]} == {"sync"} and got[-1].source == "push"
    assert all(m.key == (1, alice_id) and not m.outgoing for m in got)
    assert not bob.inbox.pending and bob.positions() == {(1, alice_id): 50}


def test_push_and_catch_up_overlap_delivers_each_once(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    got: list[ChatMessage] = []
    bob = cluster.resilient("bobby", on_message=got.append)
    bob.start()
    cluster.run(0.1)
    for i in range(5):
        cluster.send_via("b", alice_id, bob_id, f"early{i}")  # stored on b: no push to bob on a
    cluster.send_via("a", alice_id, bob_id, "pushed")  # id 6, pushed: 1..5 is a gap
    assert [m.server_msg_id for m in got] == []
    cluster.run(0.2)  # after gap_wait: fetched by id
    assert [m.server_msg_id for m in got] == [1, 2, 3, 4, 5, 6]
    assert [m.source for m in got] == ["sync"] * 5 + ["push"]
    # a push seen again (the server redelivers what it thinks was not acknowledged) is dropped
    bob.client.push_handler(Cmd.MSG_DATA, 99, got[-1].raw)
    assert [m.server_msg_id for m in got] == [1, 2, 3, 4, 5, 6] and bob.duplicates == 1
    cluster.send_via("b", bob_id, alice_id, "from bob's other device on b")  # 7: not pushed...
    cluster.send_via("a", alice_id, bob_id, "pushed again")  # ...until 8 shows the gap
    cluster.run(0.2)
    assert [(m.server_msg_id, m.outgoing, m.source) for m in got[-2:]] == [(7, True, "sync"), (8, False, "push")]
    cluster.kill("a")
    cluster.run(1)  # catch-up on b lists the conversation, already held: nothing again
    assert bob.server == "b" and bob.synced and [m.server_msg_id for m in got] == list(range(1, 9))


def test_heartbeat_timeout_on_a_half_open_connection_fails_over(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    bob = cluster.resilient("bobby", heartbeat_interval=5, heartbeat_timeout=2)
    bob.start()
    cluster.run(0.1)
    first = bob.client
    cluster.run(6)  # a heartbeat went out and was answered
    assert bob.client is first and bob.heartbeat_timeouts == 0
    cluster.freeze("a")
    cluster.send_via("b", alice_id, bob_id, "while a hangs")
    cluster.run(4.9)  # the next beat at ~11 s is unanswered
    assert bob.client is first
    cluster.run(2.5)
    assert bob.heartbeat_timeouts == 1 and bob.server == "b" and bob.client is not first
    assert result(bob.next_message()).text == "while a hangs"


def test_login_timeout_moves_on(cluster):
    cluster.user("bobby")
    cluster.freeze("a")
    cluster.up["a"] = True  # accepts connections, never answers
    original = cluster.connector

    def frozen_connector(address):
        d = original(address)
        if address == "a":
            cluster.freeze("a")
            cluster.up["a"] = True
        return d

    bob = cluster.resilient("bobby", connector=frozen_connector, login_timeout=3)
    bob.start()
    cluster.run(2.9)
    assert not bob.logged_in
    cluster.run(0.3)
    assert bob.logged_in and bob.server == "b" and isinstance(bob.last_error, defer.TimeoutError)


def test_unacknowledged_send_is_resent_after_failover_and_stored_once(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    alice = cluster.resilient("alice")
    alice.start()
    cluster.run(0.1)
    sent = alice.send_text(bob_id, "will my ack come?", client_msg_id="cm-1")
    cluster.clock.advance(MemoryCluster.LATENCY)  # the server has it, stores and acks...
    cluster.kill("a")  # ...but the ack is lost with the node
    cluster.run(0)
    assert not sent.called and alice.pending_sends == 1 and not alice.logged_in
    queued = alice.send_text(bob_id, "sent while offline")
    cluster.run(1)
    assert alice.server == "b" and alice.login_method == "token"
    first, second = result(sent), result(queued)
    assert (first.client_msg_id, first.server_msg_id, second.server_msg_id) == ("cm-1", 1, 2)
    assert alice.pending_sends == 0
    stored = result(cluster.store.history(f"p:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}", 0, 100))
    assert [m.client_msg_id for m in stored][:1] == ["cm-1"] and len(stored) == 2
    mine = [result(alice.next_message()) for _ in range(2)]
    assert [(m.server_msg_id, m.outgoing, m.source) for m in mine] == [(1, True, "sent"), (2, True, "sent")]
    bob = cluster.resilient("bobby", servers=["b"])
    bob.start()
    cluster.run(0.2)
    assert texts([result(bob.next_message()) for _ in range(2)]) == ["will my ack come?", "sent while offline"]
    assert not bob.inbox.pending


def test_own_send_ack_beyond_a_gap_waits_for_the_gap(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    got: list[ChatMessage] = []
    bob = cluster.resilient("bobby", on_message=got.append)
    bob.start()
    cluster.run(0.1)
    cluster.send_via("b", alice_id, bob_id, "stored elsewhere")  # 1, not pushed to bob on a
    sent = bob.send_text(alice_id, "reply")
    cluster.run(0.01)
    assert result(sent).server_msg_id == 2 and got == []  # 2 waits for 1
    cluster.run(0.2)
    assert [(m.server_msg_id, m.source) for m in got] == [(1, "sync"), (2, "sent")]


def test_refused_send_fails_once_and_rate_limited_send_is_retried():
    cluster = MemoryCluster(**{"limits.messages_per_second": 2, "limits.message_burst": 2})
    cluster.user("alice")
    bob_id = cluster.user("bobby")
    alice = cluster.resilient("alice", retry_delay=1.0)
    alice.start()
    cluster.run(0.1)
    refused = alice.send_text(424242, "nobody")
    cluster.run(0.1)
    error = refused.result.value if isinstance(refused.result, Failure) else None
    refused.addErrback(lambda f: None)
    assert isinstance(error, cim_client.ServerError) and error.code == ErrorCode.USER_NOT_EXIST
    assert alice.pending_sends == 0
    cluster.run(2)
    sends = [alice.send_text(bob_id, f"burst{i}") for i in range(5)]
    cluster.run(0.1)
    assert sum(d.called for d in sends) < 5  # some were refused with RATE_LIMITED...
    cluster.run(5)
    acks = [result(d) for d in sends]  # ...and sent again until they got through
    assert [a.server_msg_id for a in acks] == [1, 2, 3, 4, 5] and alice.pending_sends == 0
    mine = [result(alice.next_message()) for _ in range(5)]
    assert texts(mine) == [f"burst{i}" for i in range(5)]


def test_catch_up_retries_a_failing_history_request(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    for i in range(30):
        cluster.send_via("b", alice_id, bob_id, f"m{i}")
    messages = cluster.cores["a"].feature("messages")
    real_history = messages.history
    failures = []

    async def flaky_history(*args):
        if not failures:
            failures.append(args)
            raise ChatError(ErrorCode.INTERNAL_ERROR, "storage hiccup")
        return await real_history(*args)

    messages.history = flaky_history
    bob = cluster.resilient("bobby", retry_delay=0.5)
    bob.start()
    cluster.run(0.2)
    assert failures and not bob.synced and not bob.inbox.pending  # nothing skipped
    cluster.run(0.5)
    assert bob.synced
    assert texts([result(bob.next_message()) for _ in range(30)]) == [f"m{i}" for i in range(30)]


def test_refused_token_falls_back_to_the_password(cluster):
    alice_id = cluster.user("alice")
    alice = cluster.resilient("alice")
    alice.start()
    cluster.run(0.1)
    old_token = alice.token
    result(defer.ensureDeferred(cluster.cores["a"].feature("accounts").revoke_all_tokens(alice_id)))
    cluster.kill("a")
    cluster.run(1)
    assert alice.logged_in and alice.login_method == "password" and alice.token != old_token
    assert alice.server == "b" and alice.logins == 2


def test_refused_token_without_password_stops_and_reports(cluster):
    alice_id = cluster.user("alice")
    token, _ = result(defer.ensureDeferred(cluster.cores["a"].feature("accounts").issue_token(alice_id)))
    alice = cluster.resilient("alice", token=token, user_id=alice_id)
    alice.start()
    cluster.run(0.1)
    assert alice.logged_in and alice.login_method == "token"
    pending = alice.send_text(alice_id + 1, "never")  # no such user, but it is never sent
    result(defer.ensureDeferred(cluster.cores["a"].feature("accounts").revoke_all_tokens(alice_id)))
    cluster.kill("a")
    stopped = alice.when_stopped()
    queued = alice.send_text(alice_id, "queued")
    cluster.run(1)
    error = result(stopped)
    assert isinstance(error, LoginRefused) and error.code == ErrorCode.LOGIN_INVALID_USER_TOKEN
    assert alice.stopped and alice.error is error and not alice.logged_in
    for d in (pending, queued):
        assert isinstance(d.result, Failure)
        d.addErrback(lambda f: None)
    with pytest.raises(LoginRefused):
        result(alice.when_logged_in())


def test_wrong_password_stops_at_once(cluster):
    cluster.user("alice")
    alice = cluster.resilient("alice", password="wrong")
    d = alice.start()
    cluster.run(0.1)
    assert alice.stopped and alice.attempts == 1
    with pytest.raises(LoginRefused) as err:
        result(d)
    assert err.value.code == ErrorCode.LOGIN_INVALID_USER_OR_PWD


def test_session_replaced_kickout_stops():
    cluster = MemoryCluster(**{"limits.max_devices": 1})
    cluster.user("alice")
    alice = cluster.resilient("alice")
    alice.start()
    cluster.run(0.1)
    other = cluster.resilient("alice", servers=["a"])
    other.start()
    cluster.run(0.2)
    assert other.logged_in and alice.stopped and isinstance(alice.error, KickedOut)
    assert alice.error.code == ErrorCode.SESSION_REPLACED


def test_stop_closes_and_fails_waiting_sends(cluster):
    cluster.user("alice")
    cluster.up["a"] = cluster.up["b"] = False
    alice = cluster.resilient("alice")
    started = alice.start()
    cluster.run(0.1)
    sent = alice.send_text(5, "never")
    synced = alice.when_synced()
    closed = alice.stop()
    assert result(closed) is None and alice.stopped and result(alice.when_stopped()) is None
    for d in (started, sent, synced):
        assert isinstance(d.result, Failure) and d.result.check(ClientStopped)
        d.addErrback(lambda f: None)
    attempts = alice.attempts
    cluster.run(60)
    assert alice.attempts == attempts  # no more reconnecting
    cluster.up["a"] = True
    bob = cluster.resilient("alice", servers=["a"])
    bob.start()
    cluster.run(0.1)
    assert cluster.cores["a"].router.devices_of(1)
    closed = bob.stop()
    cluster.run(0.1)
    assert result(closed) is None and not cluster.cores["a"].router.devices_of(1)


def test_group_catch_up_starts_where_the_member_joined(cluster):
    alice_id, bob_id, carol_id = cluster.user("alice"), cluster.user("bobby"), cluster.user("carol")
    core = cluster.cores["b"]
    alice_user = result(core.store.user_by_id(alice_id))
    out = result(defer.ensureDeferred(core.feature("groups").create(alice_user, None, "g", [carol_id], 1)))
    group_id = out.group.group_id
    for i in range(25):
        cluster.send_via("b", alice_id, group_id, f"before{i}", session_type=2)
    result(defer.ensureDeferred(core.feature("groups").invite(alice_user, None, group_id, [bob_id])))
    for i in range(3):
        cluster.send_via("b", alice_id, group_id, f"after{i}", session_type=2)
    bob = cluster.resilient("bobby", servers=["b"], history_page=10)
    bob.start()
    cluster.run(0.2)
    got = []
    while bob.inbox.pending:
        got.append(result(bob.next_message()))
    assert [m.text for m in got if m.msg_type == 1] == ["after0", "after1", "after2"]
    assert all(m.key == (2, group_id) for m in got)
    ids = [m.server_msg_id for m in got]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    cluster.send_via("a", alice_id, group_id, "stored on a", session_type=2)  # not pushed to b
    cluster.send_via("b", alice_id, group_id, "pushed on b", session_type=2)
    cluster.run(0.2)
    assert texts([result(bob.next_message()) for _ in range(2)]) == ["stored on a", "pushed on b"]


def test_fetch_history_false_starts_at_the_latest_message(cluster):
    alice_id, bob_id = cluster.user("alice"), cluster.user("bobby")
    for i in range(5):
        cluster.send_via("a", alice_id, bob_id, f"old{i}")
    bob = cluster.resilient("bobby", fetch_history=False)
    bob.start()
    cluster.run(0.2)
    assert not bob.inbox.pending and bob.positions() == {(1, alice_id): 5}
    cluster.send_via("a", alice_id, bob_id, "new")
    cluster.run(0.1)
    assert result(bob.next_message()).text == "new"
    resumed = cluster.resilient("bobby", positions=bob.positions(), last_sync=bob.last_sync)
    cluster.send_via("b", alice_id, bob_id, "newer")
    resumed.start()
    cluster.run(0.2)
    assert texts([result(resumed.next_message())]) == ["newer"] and not resumed.inbox.pending


# -- real nodes on loopback sockets: a node stops, its successor starts on the same storage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(predicate, timeout: float = 5.0, step: float = 0.01) -> None:
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("condition not met in time")
        await task_sleep(step)


def task_sleep(seconds: float) -> defer.Deferred:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


def fast(**kwargs) -> dict:
    options = {"backoff_initial": 0.05, "backoff_max": 0.2, "failover_jitter": 0.02, "gap_wait": 0.05}
    options.update(kwargs)
    return options


@pytest_twisted.ensureDeferred
async def test_real_failover_to_a_successor_on_the_same_storage(tmp_path):
    node_a = await start_node(node_config(tmp_path))
    node_b = None
    clients = []
    try:
        alice_id = await node_a.register("alice")
        bob_id = await node_a.register("bobby")
        got: list[ChatMessage] = []
        bob = ResilientClient(reactor, [node_a.cim_endpoint], "bobby", "secret", on_message=got.append, **fast())
        clients.append(bob)
        await bob.start()
        await bob.when_synced()
        alice = await node_a.login("alice")
        for i in range(3):
            await alice.send_message(bob_id, f"m{i}")
        await wait_for(lambda: len(got) == 3)
        await stop_node(node_a)  # the server goes away; bob keeps trying a
        await wait_for(lambda: bob.disconnects == 1)
        node_b = await start_node(node_config(tmp_path))
        alice = await node_b.login("alice")
        for i in range(3, 30):  # more than a history page while bob is away
            await alice.send_message(bob_id, f"m{i}")
        bob.set_servers([node_a.cim_endpoint, node_b.ws_url])  # b is known now; over WebSocket
        await bob.when_synced()
        assert bob.server == node_b.ws_url and bob.login_method == "token" and bob.failovers == 1
        assert isinstance(bob.client, cim_client.WebSocketCIMClient)
        for i in range(30, 33):
            await alice.send_message(bob_id, f"m{i}")
        await wait_for(lambda: len(got) == 33)
        await task_sleep(0.1)
        assert texts(got) == [f"m{i}" for i in range(33)]
        assert [m.server_msg_id for m in got] == list(range(1, 34))
        assert {m.source for m in got[3:30]} == {"sync"} and got[-1].source == "push"
        assert all(m.key == (pb.kCIM_SESSION_TYPE_SINGLE, alice_id) for m in got)
    finally:
        for c in clients:
            await c.stop()
        if node_b is not None:
            await stop_node(node_b)


@pytest_twisted.ensureDeferred
async def test_real_lost_ack_is_resent_on_the_successor_and_not_duplicated(tmp_path):
    node_a = await start_node(node_config(tmp_path))
    port = free_port()
    b_endpoint = f"tcp:127.0.0.1:{port}"
    node_b = None
    clients = []
    try:
        await node_a.register("alice")
        bob_id = await node_a.register("bobby")
        dropped = []

        def drop_the_ack(address):
            d = cim_client.connect(reactor, address)

            def wrap(client):
                frame = client._frame

                def filtered(cmd, seq, body):
                    if cmd == Cmd.MSG_DATA_ACK and not dropped:
                        dropped.append(pb.CIMMsgDataAck.FromString(body))
                        return
                    frame(cmd, seq, body)

                client._frame = filtered
                return client

            return d.addCallback(wrap)

        alice = ResilientClient(
            reactor, [node_a.cim_endpoint, b_endpoint], "alice", "secret", connector=drop_the_ack, **fast()
        )
        got: list[ChatMessage] = []
        servers = [node_a.cim_endpoint, b_endpoint]
        bob = ResilientClient(reactor, servers, "bobby", "secret", on_message=got.append, **fast())
        clients += [alice, bob]
        await alice.start()
        await bob.start()
        sent = alice.send_text(bob_id, "is this stored?")
        await wait_for(lambda: dropped and got)  # stored and pushed; the ack went missing
        assert not sent.called and alice.pending_sends == 1
        await stop_node(node_a)
        node_b = await start_node(node_config(tmp_path, **{"listen.cim": [f"tcp:{port}:interface=127.0.0.1"]}))
        ack = await sent
        assert ack.server_msg_id == dropped[0].server_msg_id == 1
        assert ack.client_msg_id == dropped[0].client_msg_id and alice.server == b_endpoint
        await bob.when_synced()
        followup = await alice.send_text(bob_id, "and this")
        assert followup.server_msg_id == 2
        await wait_for(lambda: len(got) == 2)
        await task_sleep(0.1)
        assert [(m.text, m.server_msg_id) for m in got] == [("is this stored?", 1), ("and this", 2)]
        history = await (await node_b.login("bobby")).history(got[0].session_id)
        assert [m.msg_data for m in history.msg_list] == [b"is this stored?", b"and this"]
    finally:
        for c in clients:
            await c.stop()
        if node_b is not None:
            await stop_node(node_b)


@pytest_twisted.ensureDeferred
async def test_real_refused_token_falls_back_to_password_or_stops(live_node):
    alice_id = await live_node.register("alice")
    alice = ResilientClient(reactor, [live_node.cim_endpoint], "alice", "secret", **fast())
    token, _ = await live_node.core.feature("accounts").issue_token(alice_id)
    token_only = ResilientClient(reactor, [live_node.cim_endpoint], token=token, user_id=alice_id, **fast())
    try:
        await alice.start()
        await token_only.start()
        assert token_only.login_method == "token"
        await live_node.core.feature("accounts").revoke_all_tokens(alice_id)
        for c in (alice, token_only):
            c.client.transport.abortConnection()
        stopped = await token_only.when_stopped()
        assert isinstance(stopped, LoginRefused) and stopped.code == ErrorCode.LOGIN_INVALID_USER_TOKEN
        await wait_for(lambda: alice.logins == 2)
        assert alice.logged_in and alice.login_method == "password"
    finally:
        await alice.stop()
        await token_only.stop()


@pytest_twisted.ensureDeferred
async def test_cancelling_a_websocket_connect_mid_handshake_closes_the_socket():
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from twisted.internet.protocol import Factory, Protocol

    closed = defer.Deferred()

    class Silent(Protocol):  # accepts, never answers the handshake
        def connectionLost(self, reason=None):
            closed.callback(None)

    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory.forProtocol(Silent))
    try:
        d = cim_client.connect(reactor, f"ws://127.0.0.1:{port.getHost().port}/")
        await task_sleep(0.1)
        d.cancel()
        with pytest.raises(defer.CancelledError):
            await d
        await closed.addTimeout(2, reactor)
    finally:
        await port.stopListening()
