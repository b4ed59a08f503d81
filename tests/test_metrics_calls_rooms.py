"""The calls' and rooms' metrics on the memory node (exact and instant): active calls, calls
started, answered and ended by result, the set-up time histogram; rooms held, members,
deliveries, batches, busy refusals and cross-node payloads."""

from __future__ import annotations

from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, memory_cluster
from .test_calls import bye, invite, reply
from .test_groups import Device
from .test_metrics import exported_series, samples
from .test_rooms import create, join, people, say

OK = pb.KCIM_VOIP_INVITE_CODE_OK
RESULTS = ("ended", "missed", "declined", "cancelled", "busy", "dropped")


def ended(values: dict) -> dict[str, float]:
    return {r: values["coffeechat_calls_ended_total", (("result", r),)] for r in RESULTS}


def test_a_call_moves_the_call_metrics():
    node = MemoryNode()
    _, bob_id, carol_id = (node.user(n) for n in ("alice", "bobby", "carol"))
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    before = samples(node)
    assert before["coffeechat_calls_active", ()] == 0
    assert before["coffeechat_calls_started_total", ()] == 0
    assert before["coffeechat_call_setup_seconds_count", ()] == 0
    assert ended(before) == dict.fromkeys(RESULTS, 0)

    channel = invite(alice, bob_id).channel_info
    assert samples(node)["coffeechat_calls_active", ()] == 1
    node.advance(3)
    assert reply(bob, channel, OK, sdp="answer") == []
    during = samples(node)
    assert during["coffeechat_calls_answered_total", ()] == 1
    # answered 3 s after the invite (the memory clock): in the 5 s bucket, not in the 2.5 s one
    assert during["coffeechat_call_setup_seconds_count", ()] == 1
    assert during["coffeechat_call_setup_seconds_sum", ()] == 3
    assert during["coffeechat_call_setup_seconds_bucket", (("le", "2.5"),)] == 0
    assert during["coffeechat_call_setup_seconds_bucket", (("le", "5.0"),)] == 1
    node.advance(10)
    assert bye(alice, channel).error_code == 200
    after = samples(node)
    assert after["coffeechat_calls_active", ()] == 0
    assert after["coffeechat_calls_started_total", ()] == 1
    assert ended(after) == {**dict.fromkeys(RESULTS, 0), "ended": 1}

    invite(carol, bob_id)  # nobody answers: missed
    invite(alice, carol_id)  # carol is in her own call: busy, and the call ends at once
    assert ended(samples(node))["busy"] == 1
    node.advance(46)
    final = samples(node)
    assert final["coffeechat_calls_started_total", ()] == 3
    assert final["coffeechat_calls_answered_total", ()] == 1
    assert final["coffeechat_call_setup_seconds_count", ()] == 1
    assert final["coffeechat_calls_active", ()] == 0
    assert ended(final) == {**dict.fromkeys(RESULTS, 0), "ended": 1, "busy": 1, "missed": 1}
    assert bob.pushes(Cmd.VOIP_BYE_NOTIFY)


def test_room_messages_move_the_room_metrics():
    node = MemoryNode(**{"rooms.max_messages_per_second": 2, "rooms.connection_messages_per_second": 100})
    alice, bob, carol = people(node, "alice", "bobby", "carol")
    before = samples(node)
    assert (before["coffeechat_rooms_held", ()], before["coffeechat_room_members", ()]) == (0, 0)
    room = create(alice)
    for conn in (alice, bob, carol):
        join(conn, room)
    other = create(alice, name="Other")
    join(bob, other)
    values = samples(node)
    assert (values["coffeechat_rooms_held", ()], values["coffeechat_room_members", ()]) == (2, 4)

    say(bob, room, "one")
    say(carol, room, "two")
    for conn in (alice, bob, carol):
        conn.frames()
    values = samples(node)
    assert values["coffeechat_room_batches_total", ()] == 1
    assert values["coffeechat_room_deliveries_total", ()] == 3  # one frame per member for the batch
    assert values["coffeechat_room_messages_accepted_total", ()] == 2
    assert values["coffeechat_room_messages_held", ()] == 0
    assert values["coffeechat_room_messages_busy_total", ()] == 0
    for i in range(3):  # over the room's rate (2 a second, burst 2): members are refused ROOM_BUSY
        say(bob, room, f"more {i}")
    bob.frames()
    values = samples(node)
    assert values["coffeechat_room_messages_busy_total", ()] == 3
    assert values["coffeechat_room_messages_accepted_total", ()] == 2  # refused ones are not accepted
    assert values["coffeechat_room_payloads_total", ()] == 0  # no other node holds members
    node.clock.advance(1)  # the write interval: the batch is stored
    assert samples(node)["coffeechat_room_store_writes_total", ()] >= 1

    for conn in (alice, bob, carol):
        conn.close()
    values = samples(node)
    assert (values["coffeechat_rooms_held", ()], values["coffeechat_room_members", ()]) == (0, 0)


def test_cross_node_room_payloads_are_counted():
    hub, (n1, n2) = memory_cluster(("n1", "n2"))
    (alice,) = people(n1, "alice")
    n1.user("bobby")
    bob = n2.connect("10.0.1.1")
    bob.login("bobby")
    room = create(alice)
    join(alice, room)
    join(bob, room)
    n1.clock.advance(0)
    n1.clock.advance(0)
    for i in range(3):
        say(alice, room, f"m{i}")
    alice.frames()
    assert samples(n1)["coffeechat_room_payloads_total", ()] == 1  # one per node per turn
    assert samples(n2)["coffeechat_room_deliveries_total", ()] == 1
    assert samples(n2)["coffeechat_room_members", ()] == 1


def test_the_calls_and_rooms_families_are_exported():
    exported = exported_series()
    wanted = {
        "coffeechat_calls_active": set(),
        "coffeechat_calls_started_total": set(),
        "coffeechat_calls_answered_total": set(),
        "coffeechat_calls_ended_total": {"result"},
        "coffeechat_call_setup_seconds_bucket": {"le"},
        "coffeechat_call_commands_forwarded_total": set(),
        "coffeechat_rooms_held": set(),
        "coffeechat_room_members": set(),
        "coffeechat_room_deliveries_total": set(),
        "coffeechat_room_batches_total": set(),
        "coffeechat_room_messages_busy_total": set(),
        "coffeechat_room_messages_accepted_total": set(),
        "coffeechat_room_messages_held": set(),
        "coffeechat_room_payloads_total": set(),
        "coffeechat_room_store_writes_total": set(),
        "coffeechat_room_store_failures_total": set(),
        "coffeechat_room_messages_unstored_total": set(),
    }
    for name, labels in wanted.items():
        assert name in exported and labels <= exported[name], name


def test_without_the_features_the_families_stay_at_zero():
    node = MemoryNode(**{"features.enabled": ["accounts", "messages", "metrics"]})
    values = samples(node)
    assert values["coffeechat_calls_active", ()] == 0
    assert values["coffeechat_rooms_held", ()] == 0
    assert values["coffeechat_room_deliveries_total", ()] == 0
