"""Dependencies down, in fast deterministic tests (MemoryReactorClock, memory cluster): the
catch-up after a lost cluster subscription pushes each device only what it lacks (by position
per conversation), nothing is pushed twice to one connection, and an outage is logged in one
line when it begins and one when it ends, not once per failure.  The same over real Redis and
PostgreSQL is in tests/test_outage_e2e.py."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from coffeechat.health import Dependency
from coffeechat.router import MAX_RANGES, MAX_RANGES_PER_DEVICE, MAX_TRACKED_CONVERSATIONS, Pushed
from coffeechat.schema import Cmd
from tests.memory_node import memory_cluster
from tests.test_groups import Device


@pytest.fixture
def cluster():
    return memory_cluster(("n1", "n2"))


@pytest.fixture
def logged():
    lines: list[str] = []

    def observe(event):
        lines.append(formatEvent(event) or "")

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def seqs(device: Device) -> list[tuple[int, str]]:
    return [(m.server_msg_id, m.msg_data.decode()) for m in device.pushes(Cmd.MSG_DATA)]


# -- what a device has, by position


def test_pushed_positions_are_runs_with_gaps_filled_in_any_order():
    have = Pushed()
    assert [have.add("c", s) for s in (1, 2, 3)] == [True, True, True]
    assert have.add("c", 2) is False  # had it
    assert have.add("c", 5) and have.runs("c") == [(1, 3), (5, 5)]  # 4 missing
    assert not have.has("c", 4) and have.has("c", 5) and not have.has("other", 1)
    assert have.add("c", 4) and have.runs("c") == [(1, 5)]  # the gap filled: one run again
    assert have.add("c", 9) and have.add("c", 7) and have.runs("c") == [(1, 5), (7, 7), (9, 9)]
    assert have.add("c", 8) and have.runs("c") == [(1, 5), (7, 9)]
    assert have.add("c", 6) and have.runs("c") == [(1, 9)]
    assert have.add("c", 0) is True and have.runs("c") == [(0, 9)]
    assert not have.add("c", 0)


def test_pushed_positions_stay_bounded_and_forget_rather_than_assume():
    have = Pushed()
    for i in range(MAX_RANGES + 10):
        have.add("c", 2 * i)  # every other seq: a new run each time
    runs = have.runs("c")
    assert len(runs) == MAX_RANGES
    assert runs[0] == (20, 20) and runs[-1] == (2 * (MAX_RANGES + 9),) * 2  # the oldest forgotten
    assert not have.has("c", 0) and not have.has("c", 1)  # forgotten, never taken as had
    for i in range(MAX_TRACKED_CONVERSATIONS + 5):
        have.add(f"conv-{i}", 1)
    assert len(have) <= MAX_TRACKED_CONVERSATIONS
    assert not have.has("c", 20)  # the least recently pushed conversation went first
    assert have.has(f"conv-{MAX_TRACKED_CONVERSATIONS + 4}", 1)
    many = Pushed()
    for conv in range(3):
        for i in range(MAX_RANGES):
            many.add(f"c{conv}", 2 * i)
    assert sum(len(many.runs(f"c{conv}")) for conv in range(3)) <= MAX_RANGES_PER_DEVICE
    assert many.runs("c2") and not many.runs("c0")


# -- the catch-up after a lost subscription


def test_the_catch_up_pushes_each_device_only_what_it_lacks(cluster):
    hub, (n1, n2) = cluster
    alice_id, bob_id, carol_id = (n1.user(name) for name in ("alice", "bobby", "carol"))
    alice = Device(n1, "alice")
    bob, bob_2 = Device(n2, "bobby"), Device(n2, "bobby")
    carol = Device(n2, "carol")  # on bob's node: her messages to him never cross
    for i in range(3):
        alice.conn.send_text(bob_id, f"before {i}")
    n1.clock.advance(0)
    assert len(seqs(bob)) == len(seqs(bob_2)) == 3
    n1.advance(1)
    hub.cut("n2")  # n2's subscription is lost: what n1 sends it now is dropped
    bob.conn.send_text(alice_id, "bob's own")  # bob_2 gets it here on n2, bob has it: he sent it
    alice.conn.send_text(bob_id, "lost 1")
    carol.conn.send_text(bob_id, "local, during")
    alice.conn.send_text(bob_id, "lost 2")
    n1.clock.advance(0)
    assert seqs(bob) == [(1, "local, during")]
    assert sorted(seqs(bob_2)) == [(1, "local, during"), (4, "bob's own")]
    assert sorted(seqs(carol)) == []
    hub.restore("n2")
    n1.clock.advance(0)
    n1.clock.advance(0)
    messages = n2.core.feature("messages")
    assert messages.catching_up.called
    # Only the two that were lost, to each of bob's devices; nothing bob had, nor his own.
    assert seqs(bob) == [(5, "lost 1"), (6, "lost 2")]
    assert seqs(bob_2) == [(5, "lost 1"), (6, "lost 2")]
    assert seqs(carol) == []  # her conversation with bob lost nothing
    assert messages.caught_up == 4
    hub.cut("n2")
    hub.restore("n2")  # a second catch-up (the Redis presence runs one more): nothing again
    n1.clock.advance(0)
    n1.clock.advance(0)
    assert seqs(bob) == seqs(bob_2) == seqs(carol) == []
    alice.conn.send_text(bob_id, "live again")
    n1.clock.advance(0)
    assert seqs(bob) == seqs(bob_2) == [(7, "live again")]


def test_a_device_that_logged_in_during_the_outage_is_not_pushed_what_came_before_it(cluster):
    hub, (n1, n2) = cluster
    _, bob_id = n1.user("alice"), n1.user("bobby")
    alice = Device(n1, "alice")
    bob = Device(n2, "bobby")
    hub.cut("n2")
    alice.conn.send_text(bob_id, "lost, before the new device")
    n1.advance(10)
    late = Device(n2, "bobby")  # fetches history at login (the client's own catch-up)
    n1.advance(5)
    alice.conn.send_text(bob_id, "lost, after")
    n1.clock.advance(0)
    hub.restore("n2")
    n1.clock.advance(0)
    n1.clock.advance(0)
    assert [t for _, t in seqs(bob)] == ["lost, before the new device", "lost, after"]
    assert [t for _, t in seqs(late)] == ["lost, after"]


def test_a_message_is_pushed_once_to_a_connection_even_when_it_arrives_twice(cluster):
    hub, (n1, n2) = cluster
    _, bob_id = n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    alice.conn.send_text(bob_id, "once")
    n1.clock.advance(0)
    assert seqs(bob) == [(1, "once")]
    (payload,) = [p for node, p in hub.delivered if node == "n2"]
    n2.core.cluster.received(payload)  # the bus sent it again (a PUBLISH retried after a reconnection)
    n1.clock.advance(0)
    assert seqs(bob) == []
    assert n2.core.router.duplicates_skipped == 1
    late = Device(n2, "bobby")
    n2.core.cluster.received(payload)  # a new connection has not had it: it gets it
    n1.clock.advance(0)
    assert seqs(late) == [(1, "once")] and seqs(bob) == []


def test_group_catch_up_pushes_members_what_they_lack(cluster):
    hub, (n1, n2) = cluster
    alice_id, bob_id, carol_id = (n1.user(name) for name in ("alice", "bobby", "carol"))
    alice, bob, carol = Device(n1, "alice"), Device(n2, "bobby"), Device(n2, "carol")
    gid = alice.create([bob_id, carol_id]).group_info.group_id
    n1.clock.advance(0)
    bob.pushes()
    carol.pushes()
    hub.cut("n2")
    alice.send(gid, "lost in the group")
    carol.send(gid, "carol's, seen on n2")
    n1.clock.advance(0)
    assert [t for _, t in seqs(bob)] == ["carol's, seen on n2"]
    hub.restore("n2")
    n1.clock.advance(0)
    n1.clock.advance(0)
    assert [t for _, t in seqs(bob)] == ["lost in the group"]
    assert [t for _, t in seqs(carol)] == ["lost in the group"]


# -- logging a dependency that is down


def test_a_dependency_down_is_one_line_when_it_goes_and_one_when_it_is_back(logged):
    clock = Clock()
    dep = Dependency("the thing", clock, remind_every=60)
    for _ in range(500):
        dep.failed("connection refused")
        clock.advance(0.1)  # 50 s of failures
    dep.ok()
    dep.ok()
    lines = [line for line in logged if "the thing" in line]
    assert lines == ["the thing is down: connection refused", "the thing is back after 50.0 s (500 failures meanwhile)"]
    for _ in range(2):
        dep.failed("again")
        clock.advance(61)
    assert [line for line in logged if "still down" in line] == [
        "the thing is still down after 61 s (2 failures so far): again"
    ]
    assert dep.outages == 2


def test_locating_users_failing_is_logged_once_per_outage(cluster, logged):
    hub, (n1, n2) = cluster
    _, bob_id = n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    real_locate = n1.core.presence.locate
    n1.core.presence.locate = lambda user_ids: defer.fail(RuntimeError("Redis at 127.0.0.1:6379 is unreachable"))
    for i in range(50):
        alice.conn.send_text(bob_id, f"m{i}")
        n1.clock.advance(0)
    assert len(seqs(bob)) == 50  # sent to every node: nothing missed
    n1.core.presence.locate = real_locate
    alice.conn.send_text(bob_id, "back")
    n1.clock.advance(0)
    lines = [line for line in logged if "locating users" in line]
    assert len(lines) == 2, lines
    assert "is down" in lines[0] and "is back" in lines[1] and "50 failures" in lines[1]


def test_presence_updates_failing_are_logged_once_per_outage(cluster, logged):
    hub, (n1, n2) = cluster
    n1.user("alice")
    presence = n1.core.presence
    real_online, real_offline = presence.device_online, presence.device_offline
    presence.device_online = lambda *a: defer.fail(RuntimeError("Redis is unreachable"))
    presence.device_offline = lambda *a: defer.fail(RuntimeError("Redis is unreachable"))
    for _ in range(20):
        Device(n1, "alice").conn.close()
    presence.device_online, presence.device_offline = real_online, real_offline
    Device(n1, "alice")
    lines = [line for line in logged if "device updates" in line]
    assert len(lines) == 2, lines
    assert "40 failures" in lines[1]


def test_delivery_acks_still_match_after_the_catch_up(cluster):
    """Pushes from a catch-up await their delivery ack like any other."""
    hub, (n1, n2) = cluster
    _, bob_id = n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    hub.cut("n2")
    alice.conn.send_text(bob_id, "lost")
    n1.clock.advance(0)
    hub.restore("n2")
    n1.clock.advance(0)
    n1.clock.advance(0)
    session = n2.core.router.devices_of(bob_id)[0]
    assert session.unacked_count == 1
    assert seqs(bob) == [(1, "lost")]  # Device acknowledges what it reads
    assert session.unacked_count == 0
