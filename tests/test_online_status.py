"""Online status on a memory reactor: who may see whom, pushes coalesced per interval, the
privacy switch, last-seen times written in batches and surviving a restart, across nodes."""

from __future__ import annotations

import pytest

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

ONLINE, OFFLINE, UNKNOWN = pb.kCIM_ONLINE_STATE_ONLINE, pb.kCIM_ONLINE_STATE_OFFLINE, pb.kCIM_ONLINE_STATE_UNKNOWN
SETTINGS = {"online_status.interval": 3.0, "online_status.flush_interval": 10.0, "limits.idle_timeout": 10_000.0}


def befriend(a: Device, b: Device) -> None:
    a.call(Cmd.FRIEND_REQUEST_REQ, pb.CIMFriendRequestReq(to_user_id=b.user_id))
    b.call(Cmd.FRIEND_ANSWER_REQ, pb.CIMFriendAnswerReq(from_user_id=a.user_id, accept=True))
    a.pushes()
    b.pushes()


def query(device: Device, *ids: int) -> list[tuple[int, int, int]]:
    rsp = device.call(Cmd.ONLINE_STATUS_REQ, pb.CIMOnlineStatusReq(user_ids=list(ids)))
    assert rsp.result_code == ErrorCode.SUCCESS, rsp
    return [(s.user_id, s.state, s.last_seen) for s in rsp.statuses]


def pushed(device: Device) -> list[tuple[int, int, int]]:
    return [(s.user_id, s.state, s.last_seen) for n in device.pushes(Cmd.ONLINE_STATUS_NOTIFY) for s in n.statuses]


@pytest.fixture
def node():
    node = MemoryNode(**SETTINGS)
    node.advance(1_000_000, step=1_000_000)  # a clock far from 0, so that last-seen times mean something
    return node


def test_friends_are_told_when_i_come_and_go_coalesced(node):
    node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    befriend(alice, bob)
    node.advance(3)
    alice.pushes()
    assert query(alice, bob.user_id) == [(bob.user_id, ONLINE, 0)]
    bob.conn.close()
    left_at = int(node.clock.seconds())
    assert pushed(alice) == []  # not at once: at the next tick
    node.advance(3)
    assert pushed(alice) == [(bob.user_id, OFFLINE, left_at)]
    assert query(alice, bob.user_id) == [(bob.user_id, OFFLINE, left_at)]
    # flapping: five logins and logouts within one interval, ending online: one push
    for _ in range(5):
        flap = Device(node, "bobby")
        flap.conn.close()
    bob = Device(node, "bobby")
    node.advance(3)
    assert pushed(alice) == [(bob.user_id, ONLINE, 0)]
    for _ in range(5):  # flapping that ends where it began: nothing at all
        Device(node, "bobby").conn.close()
    node.advance(3)
    assert pushed(alice) == []
    assert node.core.feature("online_status").ticks > 0


def test_strangers_see_nothing_and_partners_see_it_once_they_talked(node):
    node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    assert query(alice, bob.user_id, carol.user_id) == [(bob.user_id, UNKNOWN, 0), (carol.user_id, UNKNOWN, 0)]
    bob.conn.close()
    node.advance(3)
    assert pushed(alice) == []
    carol.conn.send_text(alice.user_id, "hi")  # a conversation partner now
    alice.pushes()
    assert query(alice, carol.user_id) == [(carol.user_id, ONLINE, 0)]
    carol.conn.close()
    node.advance(3)
    assert [s[:2] for s in pushed(alice)] == [(carol.user_id, OFFLINE)]  # the query subscribed
    alice.conn.close()
    node.advance(3)
    alice = Device(node, "alice")  # and at the next login, the recent partner is watched at once
    Device(node, "carol")
    node.advance(3)
    assert pushed(alice) == [(carol.user_id, ONLINE, 0)]
    assert query(alice, alice.user_id) == [(alice.user_id, ONLINE, 0)]  # myself


def test_bad_queries_are_refused(node):
    node.user("alice")
    alice = Device(node, "alice")
    rsp = alice.call(Cmd.ONLINE_STATUS_REQ, pb.CIMOnlineStatusReq(user_ids=list(range(1, 102))))
    assert rsp.result_code == ErrorCode.INVALID_ARGUMENT
    rsp = alice.call(Cmd.ONLINE_STATUS_REQ, pb.CIMOnlineStatusReq(user_ids=[0]))
    assert rsp.result_code == ErrorCode.INVALID_ARGUMENT
    assert query(alice) == []


def test_hiding_my_status(node):
    node.user("alice"), node.user("bobby")
    alice, bob, bob2 = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    befriend(alice, bob)
    node.advance(3)
    alice.pushes()
    rsp = bob.call(Cmd.ONLINE_PRIVACY_REQ, pb.CIMOnlinePrivacyReq(hidden=True))
    assert rsp.result_code == ErrorCode.SUCCESS and rsp.hidden
    assert [n.hidden for n in bob2.pushes(Cmd.ONLINE_PRIVACY_NOTIFY)] == [True]
    assert pushed(alice) == [(bob.user_id, UNKNOWN, 0)]
    assert query(alice, bob.user_id) == [(bob.user_id, UNKNOWN, 0)]
    bob.conn.close()
    bob2.conn.close()
    node.advance(3)
    assert pushed(alice) == []  # nothing of a hidden user's comings and goings
    assert query(alice, bob.user_id) == [(bob.user_id, UNKNOWN, 0)]  # no last seen either
    bob = Device(node, "bobby")
    assert bob.call(Cmd.ONLINE_PRIVACY_REQ, pb.CIMOnlinePrivacyReq(query=True)).hidden
    bob.call(Cmd.ONLINE_PRIVACY_REQ, pb.CIMOnlinePrivacyReq(hidden=False))
    node.advance(3)
    assert pushed(alice) == [(bob.user_id, ONLINE, 0)]


def test_last_seen_is_written_in_batches_and_survives_a_restart(node):
    names = ["alice", "bobby", "carol", "david"]
    for name in names:
        node.user(name)
    status = node.core.feature("online_status")
    writes = []
    original = status.store.save_last_seen

    def counting(entries):
        writes.append(len(entries))
        return original(entries)

    status.store.save_last_seen = counting
    devices = [Device(node, n) for n in names]
    watcher = devices[0]
    for other in devices[1:]:
        befriend(watcher, other)
    for d in devices[1:]:
        d.conn.close()
    seen = int(node.clock.seconds())
    assert writes == []  # nothing written per login or logout
    node.advance(10)
    assert writes == [4]  # one batch for all (alice's login too)
    node.advance(10)
    assert writes == [4]  # nothing new, nothing written
    store = node.store
    node.result(node.core.stop())
    again = MemoryNode(store=store, clock=node.clock, **SETTINGS)
    watcher = Device(again, "alice")
    ids = [d.user_id for d in devices[1:]]
    assert query(watcher, *ids) == [(u, OFFLINE, seen) for u in ids]


def test_across_nodes_a_login_on_one_reaches_a_watcher_on_the_other():
    hub, (n1, n2) = memory_cluster(**SETTINGS)
    n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    befriend(alice, bob)
    n1.advance(3)
    alice.pushes()
    bob1 = Device(n1, "bobby")  # a second device, on the other node
    bob.conn.close()  # bob is still online (on n1)
    n1.advance(3)
    assert pushed(alice) == []
    assert query(alice, bob.user_id) == [(bob.user_id, ONLINE, 0)]
    bob1.conn.close()
    left_at = int(n1.clock.seconds())
    n1.advance(3)
    assert pushed(alice) == [(bob.user_id, OFFLINE, left_at)]
    bob = Device(n2, "bobby")
    n1.advance(3)
    assert pushed(alice) == [(bob.user_id, ONLINE, 0)]  # from n2's tick, broadcast to n1
    assert query(alice, bob.user_id) == [(bob.user_id, ONLINE, 0)]  # n1 asks the shared presence
    alice2 = Device(n2, "alice")
    bob.call(Cmd.ONLINE_PRIVACY_REQ, pb.CIMOnlinePrivacyReq(hidden=True))
    n1.advance(0.1, step=0.1)
    assert pushed(alice) == [(bob.user_id, UNKNOWN, 0)]
    assert query(alice, bob.user_id) == [(bob.user_id, UNKNOWN, 0)]  # n1 knows the setting
    assert query(alice2, bob.user_id) == [(bob.user_id, UNKNOWN, 0)]


def test_who_hides_is_read_again_after_a_lost_cluster_subscription(node):
    status = node.core.feature("online_status")
    node.result(status.store.set_hidden(42, True))  # as another node would have, unheard here
    assert 42 not in status.hidden
    node.core.registry.fire("cluster/resumed", 0.0)
    assert 42 in status.hidden


def test_a_presence_outage_delays_the_change_and_loses_nothing():
    from twisted.internet import defer

    hub, (n1, n2) = memory_cluster(**SETTINGS)
    n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n2, "alice"), Device(n1, "bobby")
    befriend(alice, bob)
    n1.advance(3)
    alice.pushes()
    presence = n1.core.router.presence
    real = presence.locate
    presence.locate = lambda users: defer.fail(ConnectionError("redis is down"))
    bob.conn.close()
    n1.advance(6)
    assert pushed(alice) == []  # n1 cannot tell whether bob is online elsewhere: it waits
    presence.locate = real
    n1.advance(3)
    assert [s[:2] for s in pushed(alice)] == [(bob.user_id, OFFLINE)]


def test_changes_missed_while_the_cluster_subscription_was_lost_are_caught_up():
    """n1 hears nothing for a while; bob (watched by alice on n1) goes offline on n2 meanwhile.
    When n1's subscription is back, alice is told, with bob's last-seen time."""
    hub, (n1, n2) = memory_cluster(**SETTINGS)
    n1.user("alice"), n1.user("bobby"), n1.user("carol")
    alice, bob, carol = Device(n1, "alice"), Device(n2, "bobby"), Device(n2, "carol")
    befriend(alice, bob)
    befriend(alice, carol)
    n1.advance(3)
    assert query(alice, bob.user_id, carol.user_id) == [(bob.user_id, ONLINE, 0), (carol.user_id, ONLINE, 0)]
    alice.pushes()
    hub.cut("n1")
    bob.conn.close()
    left_at = int(n1.clock.seconds())
    n1.advance(12)  # n2's tick broadcasts bob's change (lost for n1), its flush writes the time
    assert pushed(alice) == []
    hub.restore("n1")
    n1.advance(0.1, step=0.1)
    assert pushed(alice) == [(bob.user_id, OFFLINE, left_at)]  # carol did not change: not told
    n1.core.registry.fire("cluster/resumed", 0.0)  # it fires twice: nothing new the second time
    n1.advance(0.1, step=0.1)
    assert pushed(alice) == []


def test_whom_i_blocked_sees_no_status_of_mine(node):
    node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    befriend(alice, bob)
    node.advance(3)
    alice.pushes()
    assert query(alice, bob.user_id) == [(bob.user_id, ONLINE, 0)]
    rsp = bob.call(Cmd.BLOCK_SET_REQ, pb.CIMBlockSetReq(peer_id=alice.user_id, blocked=True))
    assert rsp.result_code == ErrorCode.SUCCESS, rsp
    assert query(alice, bob.user_id) == [(bob.user_id, UNKNOWN, 0)]
    bob.conn.close()
    node.advance(3)
    assert pushed(alice) == []  # watched from before the block, but not told
    bob = Device(node, "bobby")
    assert query(bob, alice.user_id) == [(alice.user_id, ONLINE, 0)]  # the blocker still sees
    node.advance(3)
    assert pushed(alice) == []
    bob.call(Cmd.BLOCK_SET_REQ, pb.CIMBlockSetReq(peer_id=alice.user_id, blocked=False))
    assert query(alice, bob.user_id) == [(bob.user_id, ONLINE, 0)]
    bob.conn.close()
    left_at = int(node.clock.seconds())
    node.advance(3)
    ((who, state, last_seen),) = pushed(alice)
    assert (who, state) == (bob.user_id, OFFLINE) and left_at <= last_seen <= node.clock.seconds()
