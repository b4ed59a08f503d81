"""Friends on a memory reactor: requests, answers, withdrawal, expiry, remarks, deletes, bounds,
the pushes to every device of both sides, require_friendship and the cache across nodes."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.features.friends import Friends
from coffeechat.model import SessionType
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

E = pb  # event names: pb.kCIM_FRIEND_EVENT_*


def ask(device: Device, to: int, message: str = "hi") -> pb.CIMFriendRequestRsp:
    return device.call(Cmd.FRIEND_REQUEST_REQ, pb.CIMFriendRequestReq(to_user_id=to, message=message))


def answer(device: Device, sender: int, accept: bool = True) -> pb.CIMFriendAnswerRsp:
    return device.call(Cmd.FRIEND_ANSWER_REQ, pb.CIMFriendAnswerReq(from_user_id=sender, accept=accept))


def requests(device: Device, outgoing: bool = False, offset: int = 0, limit: int = 0) -> pb.CIMFriendRequestListRsp:
    req = pb.CIMFriendRequestListReq(outgoing=outgoing, offset=offset, limit=limit)
    return device.call(Cmd.FRIEND_REQUEST_LIST_REQ, req)


def friends(device: Device, offset: int = 0, limit: int = 0) -> pb.CIMFriendListRsp:
    return device.call(Cmd.FRIEND_LIST_REQ, pb.CIMFriendListReq(offset=offset, limit=limit))


def friend_ids(device: Device) -> list[int]:
    return [f.friend_id for f in friends(device).friends]


def notices(device: Device) -> list[tuple[int, int, int]]:
    """(event, peer, actor) of the FRIEND_NOTIFYs received."""
    return [(n.event, n.peer_id, n.actor_id) for n in device.pushes(Cmd.FRIEND_NOTIFY)]


@pytest.fixture
def node():
    settings = {"friends.max_pending": 2, "friends.max_friends": 3, "friends.request_ttl": 100.0}
    return MemoryNode(**settings, **{"limits.idle_timeout": 10_000.0})


def test_a_request_accepted_makes_friends_and_every_device_of_both_is_told(node):
    a_id, b_id = node.user("alice"), node.user("bobby")
    node.advance(1000)
    alice, alice2 = Device(node, "alice"), Device(node, "alice")
    bob, bob2 = Device(node, "bobby"), Device(node, "bobby")
    rsp = ask(alice, b_id, "coffee?")
    assert rsp.result_code == ErrorCode.SUCCESS and not rsp.accepted
    assert (rsp.request.from_user_id, rsp.request.to_user_id, rsp.request.message) == (a_id, b_id, "coffee?")
    assert rsp.request.expire_time == rsp.request.create_time + 100
    assert notices(alice) == []  # the answer told the asking device
    assert notices(alice2) == [(E.kCIM_FRIEND_EVENT_REQUESTED, b_id, a_id)]
    assert notices(bob) == notices(bob2) == [(E.kCIM_FRIEND_EVENT_REQUESTED, a_id, a_id)]
    incoming = requests(bob).requests
    assert [(r.from_user_id, r.message, r.from_nick_name) for r in incoming] == [(a_id, "coffee?", "Alice")]
    assert [r.to_user_id for r in requests(alice, outgoing=True).requests] == [b_id]
    assert requests(alice).requests == [] and requests(bob, outgoing=True).requests == []

    rsp = answer(bob, a_id)
    assert rsp.result_code == ErrorCode.SUCCESS and rsp.friend.friend_id == a_id and rsp.friend.nick_name == "Alice"
    assert notices(bob) == []
    for device, peer in ((alice, b_id), (alice2, b_id), (bob2, a_id)):
        assert notices(device) == [(E.kCIM_FRIEND_EVENT_ACCEPTED, peer, b_id)]
    assert friend_ids(alice) == [b_id] and friend_ids(bob) == [a_id]
    assert requests(bob).requests == [] and requests(alice, outgoing=True).requests == []
    again = ask(alice, b_id)
    assert again.result_code == ErrorCode.ALREADY_FRIENDS
    answered_twice = answer(bob, a_id)
    assert answered_twice.result_code == ErrorCode.NOT_FOUND


def test_a_device_that_was_offline_lists_the_current_state(node):
    a_id, b_id = node.user("alice"), node.user("bobby")
    alice = Device(node, "alice")
    ask(alice, b_id, "hello")  # bob is offline
    bob = Device(node, "bobby")
    assert [r.from_user_id for r in requests(bob).requests] == [a_id]
    answer(bob, a_id)
    bob.conn.close()
    later = Device(node, "bobby")
    assert friend_ids(later) == [a_id]


def test_decline_withdraw_and_expiry(node):
    a_id, b_id, c_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    ask(alice, b_id)
    bob.pushes()
    rsp = answer(bob, a_id, accept=False)
    assert rsp.result_code == ErrorCode.SUCCESS and not rsp.HasField("friend")
    assert notices(alice) == [(E.kCIM_FRIEND_EVENT_DECLINED, b_id, b_id)]
    assert requests(bob).requests == [] and friend_ids(alice) == []

    ask(alice, c_id)
    carol.pushes()
    rsp = alice.call(Cmd.FRIEND_WITHDRAW_REQ, pb.CIMFriendWithdrawReq(to_user_id=c_id))
    assert rsp.result_code == ErrorCode.SUCCESS
    assert notices(carol) == [(E.kCIM_FRIEND_EVENT_WITHDRAWN, a_id, a_id)]
    assert requests(carol).requests == []
    rsp = alice.call(Cmd.FRIEND_WITHDRAW_REQ, pb.CIMFriendWithdrawReq(to_user_id=c_id))
    assert rsp.result_code == ErrorCode.NOT_FOUND
    assert answer(carol, a_id).result_code == ErrorCode.NOT_FOUND

    ask(alice, c_id)
    node.advance(101)  # request_ttl: expired, as good as none
    assert requests(carol).requests == [] and requests(alice, outgoing=True).requests == []
    assert answer(carol, a_id).result_code == ErrorCode.NOT_FOUND
    assert ask(alice, c_id).result_code == ErrorCode.SUCCESS  # a new one
    assert len(requests(carol).requests) == 1


def test_asking_someone_who_asked_me_accepts_both(node):
    a_id, b_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    ask(alice, b_id)
    alice.pushes()
    rsp = ask(bob, a_id)
    assert rsp.result_code == ErrorCode.SUCCESS and rsp.accepted and rsp.friend.friend_id == a_id
    assert notices(alice) == [(E.kCIM_FRIEND_EVENT_ACCEPTED, b_id, b_id)]
    assert friend_ids(alice) == [b_id] and friend_ids(bob) == [a_id]
    assert requests(alice, outgoing=True).requests == []


def test_remarks_are_mine_only_and_synced_to_my_devices(node):
    a_id, b_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    ask(alice, b_id)
    answer(bob, a_id)
    for d in (alice, alice2, bob):
        d.pushes()
    rsp = alice.call(Cmd.FRIEND_REMARK_REQ, pb.CIMFriendRemarkReq(friend_id=b_id, remark="  Bob from work "))
    assert rsp.result_code == ErrorCode.SUCCESS and rsp.remark == "Bob from work"
    pushed = alice2.pushes(Cmd.FRIEND_NOTIFY)
    assert [(n.event, n.friend.remark) for n in pushed] == [(E.kCIM_FRIEND_EVENT_REMARK, "Bob from work")]
    assert notices(bob) == [] and notices(alice) == []
    assert [f.remark for f in friends(alice).friends] == ["Bob from work"]
    assert [f.remark for f in friends(bob).friends] == [""]
    alice.call(Cmd.FRIEND_REMARK_REQ, pb.CIMFriendRemarkReq(friend_id=b_id, remark="Bobby"))
    assert [f.remark for f in friends(alice).friends] == ["Bobby"]
    too_long = alice.call(Cmd.FRIEND_REMARK_REQ, pb.CIMFriendRemarkReq(friend_id=b_id, remark="x" * 65))
    assert too_long.result_code == ErrorCode.INVALID_ARGUMENT
    stranger = alice.call(Cmd.FRIEND_REMARK_REQ, pb.CIMFriendRemarkReq(friend_id=999, remark="who"))
    assert stranger.result_code == ErrorCode.NOT_FRIENDS


def test_delete_ends_it_for_both_and_fires_the_events(node):
    a_id, b_id = node.user("alice"), node.user("bobby")
    events = []
    service: Friends = node.core.feature("friends")
    node.core.registry.hook("friend/added", lambda a, b: events.append(("added", a, b)))
    node.core.registry.hook("friend/removed", lambda a, b: events.append(("removed", a, b)))
    alice, bob, bob2 = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    ask(alice, b_id)
    answer(bob, a_id)
    assert events == [("added", b_id, a_id)]
    assert node.result(defer.ensureDeferred(service.are_friends(a_id, b_id)))
    assert node.result(defer.ensureDeferred(service.friend_ids(b_id))) == [a_id]
    alice.call(Cmd.FRIEND_REMARK_REQ, pb.CIMFriendRemarkReq(friend_id=b_id, remark="B"))
    for d in (alice, bob, bob2):
        d.pushes()
    rsp = bob.call(Cmd.FRIEND_DELETE_REQ, pb.CIMFriendDeleteReq(friend_id=a_id))
    assert rsp.result_code == ErrorCode.SUCCESS
    assert events[-1] == ("removed", b_id, a_id)
    assert notices(alice) == [(E.kCIM_FRIEND_EVENT_DELETED, b_id, b_id)]
    assert notices(bob2) == [(E.kCIM_FRIEND_EVENT_DELETED, a_id, b_id)]
    assert friend_ids(alice) == [] and friend_ids(bob) == []
    assert not node.result(defer.ensureDeferred(service.are_friends(a_id, b_id)))
    again = bob.call(Cmd.FRIEND_DELETE_REQ, pb.CIMFriendDeleteReq(friend_id=a_id))
    assert again.result_code == ErrorCode.NOT_FRIENDS
    ask(alice, b_id)
    answer(bob, a_id)
    assert [f.remark for f in friends(alice).friends] == [""]  # the old remark went with the friendship


def test_bounds_and_bad_input(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david", "erika", "frank")]
    a_id, b_id, c_id, d_id, e_id, f_id = ids
    alice = Device(node, "alice")
    assert ask(alice, b_id, "x" * 201).result_code == ErrorCode.INVALID_ARGUMENT
    assert ask(alice, b_id, "ü" * 200).result_code == ErrorCode.SUCCESS  # characters, not bytes
    assert ask(alice, b_id, "again").result_code == ErrorCode.SUCCESS  # sent again: one request
    assert [r.message for r in requests(alice, outgoing=True).requests] == ["again"]
    assert ask(alice, c_id).result_code == ErrorCode.SUCCESS
    assert ask(alice, d_id).result_code == ErrorCode.FRIEND_REQUEST_LIMIT  # max_pending 2
    for bad in (0, a_id, 10**6, 2**64 - 1):
        rsp = ask(alice, bad)
        refusals = (ErrorCode.INVALID_ARGUMENT, ErrorCode.USER_NOT_EXIST, ErrorCode.MALFORMED_BODY)
        assert rsp.result_code in refusals, (bad, rsp)
    assert answer(alice, a_id).result_code == ErrorCode.INVALID_ARGUMENT
    assert answer(alice, 0).result_code == ErrorCode.INVALID_ARGUMENT
    rsp = alice.call(Cmd.FRIEND_DELETE_REQ, pb.CIMFriendDeleteReq(friend_id=0))
    assert rsp.result_code == ErrorCode.INVALID_ARGUMENT
    # max_friends 3: alice befriends three, then can neither ask nor be accepted by a fourth
    alice.call(Cmd.FRIEND_WITHDRAW_REQ, pb.CIMFriendWithdrawReq(to_user_id=b_id))
    alice.call(Cmd.FRIEND_WITHDRAW_REQ, pb.CIMFriendWithdrawReq(to_user_id=c_id))
    for other, name in ((b_id, "bobby"), (c_id, "carol"), (d_id, "david")):
        ask(alice, other)
        assert answer(Device(node, name), a_id).result_code == ErrorCode.SUCCESS
    assert ask(alice, e_id).result_code == ErrorCode.FRIEND_LIMIT
    frank = Device(node, "frank")
    assert ask(frank, a_id).result_code == ErrorCode.SUCCESS
    assert answer(alice, f_id).result_code == ErrorCode.FRIEND_LIMIT
    assert len(friends(alice, limit=2).friends) == 2 and friends(alice, limit=2).has_more
    assert [f.friend_id for f in friends(alice, offset=2).friends] == [d_id]
    assert friends(alice, offset=2_000_000).result_code == ErrorCode.INVALID_ARGUMENT
    assert requests(alice, offset=2_000_000).result_code == ErrorCode.INVALID_ARGUMENT


def test_incoming_requests_are_bounded():
    node = MemoryNode(**{"friends.max_incoming": 2})
    target = node.user("target")
    senders = [Device(node, n) for n in ("aaaaa", "bbbbb", "ccccc") if node.user(n)]
    assert [ask(s, target).result_code for s in senders] == [
        ErrorCode.SUCCESS,
        ErrorCode.SUCCESS,
        ErrorCode.FRIEND_REQUEST_LIMIT,
    ]
    listed = requests(Device(node, "target"), limit=1)
    assert len(listed.requests) == 1 and listed.has_more


def test_a_user_who_blocked_me_gets_no_request_from_me(node):
    a_id, b_id = node.user("alice"), node.user("bobby")

    class Blocks:
        def is_blocked(self, owner_id: int, other_id: int):
            return defer.succeed((owner_id, other_id) == (b_id, a_id))

    node.core.feature("friends").blocks = Blocks()
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    assert ask(alice, b_id).result_code == ErrorCode.FRIEND_REQUEST_REFUSED
    assert requests(bob).requests == [] and notices(bob) == []
    assert ask(bob, a_id).result_code == ErrorCode.SUCCESS  # bob may still ask alice
    alice.pushes()
    node.core.registry.fire("block/changed", a_id, b_id, True)  # alice blocks bob: his request goes
    assert requests(alice).requests == []
    assert notices(alice) == [(E.kCIM_FRIEND_EVENT_WITHDRAWN, b_id, b_id)]
    assert notices(bob) == []  # blocking is not announced


def test_without_require_friendship_no_send_check_is_registered(node):
    friends = node.core.feature("friends")
    checks = node.core.feature("messages").send_checks.get(SessionType.SINGLE, [])
    assert all(getattr(check, "__self__", None) is not friends for check in checks)  # (blocks has one)
    node.user("alice")
    b_id = node.user("bobby")
    alice = Device(node, "alice")
    assert alice.conn.send_text(b_id, "hello stranger").error_code == 0


def test_require_friendship_refuses_strangers_and_answers_from_the_cache():
    node = MemoryNode(**{"friends.require_friendship": True})
    a_id, b_id = node.user("alice"), node.user("bobby")
    service: Friends = node.core.feature("friends")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    ack = alice.conn.send_text(b_id, "hello stranger")
    assert ack.error_code == ErrorCode.NOT_FRIENDS and ack.server_msg_id == 0
    ask(alice, b_id)
    answer(bob, a_id)
    alice.pushes()
    assert alice.conn.send_text(b_id, "hello friend").error_code == 0
    loads = service.loads
    for i in range(5):
        assert alice.conn.send_text(b_id, f"again {i}").error_code == 0
    assert service.loads == loads  # the cache answered
    bob.call(Cmd.FRIEND_DELETE_REQ, pb.CIMFriendDeleteReq(friend_id=a_id))
    assert alice.conn.send_text(b_id, "still there?").error_code == ErrorCode.NOT_FRIENDS
    assert bob.conn.send_text(a_id, "no").error_code == ErrorCode.NOT_FRIENDS


def test_across_nodes_pushes_arrive_and_the_cache_is_dropped_everywhere():
    hub, (n1, n2) = memory_cluster(**{"friends.require_friendship": True})
    a_id, b_id = n1.user("alice"), n1.user("bobby")
    alice, bob, bob1 = Device(n1, "alice"), Device(n2, "bobby"), Device(n1, "bobby")
    ask(alice, b_id, "from n1")
    n1.advance(0.1, step=0.1)
    assert notices(bob) == [(E.kCIM_FRIEND_EVENT_REQUESTED, a_id, a_id)]
    answer(bob, a_id)
    n1.advance(0.1, step=0.1)
    assert notices(alice) == [(E.kCIM_FRIEND_EVENT_ACCEPTED, b_id, b_id)]
    assert notices(bob1) == [(E.kCIM_FRIEND_EVENT_REQUESTED, a_id, a_id), (E.kCIM_FRIEND_EVENT_ACCEPTED, a_id, b_id)]
    assert bob.conn.send_text(a_id, "hi from n2").error_code == 0  # n2 has bob's set cached now
    assert n2.core.feature("friends").cached_friend_ids(b_id) == frozenset({a_id})
    alice.call(Cmd.FRIEND_DELETE_REQ, pb.CIMFriendDeleteReq(friend_id=b_id))
    n1.advance(0.1, step=0.1)
    assert n2.core.feature("friends").cached_friend_ids(b_id) is None
    assert notices(bob) == [(E.kCIM_FRIEND_EVENT_DELETED, a_id, a_id)]
    assert bob.conn.send_text(a_id, "hello?").error_code == ErrorCode.NOT_FRIENDS


def test_a_friend_set_read_before_a_change_is_not_cached(node):
    service: Friends = node.core.feature("friends")
    pending: list[defer.Deferred] = []

    def slow(user_id: int) -> defer.Deferred:
        pending.append(defer.Deferred())
        return pending[-1]

    service.store.friend_ids = slow
    first = service.friend_set(7)
    service.invalidate([7])  # a change lands while the read is under way
    pending[0].callback([8])
    assert node.result(first) == frozenset({8}) and service.cached_friend_ids(7) is None
    second = service.friend_set(7)
    pending[1].callback([8, 9])
    assert node.result(second) == frozenset({8, 9}) and service.cached_friend_ids(7) == frozenset({8, 9})


def test_the_friend_set_cache_keeps_the_senders_it_serves():
    """The cache is least recently *used* out: a sender whose messages it answers stays cached
    while sets that were only loaded once go, so a busy sender is not read again and again."""
    node = MemoryNode(**{"friends.require_friendship": True, "friends.cache_users": 2})
    service: Friends = node.core.feature("friends")
    a_id, b_id, c_id, d_id = (node.user(n) for n in ("alice", "bobby", "carol", "david"))
    alice = Device(node, "alice")
    assert alice.conn.send_text(b_id, "hi").error_code == ErrorCode.NOT_FRIENDS  # alice's set: cached
    node.result(service.friend_set(c_id))  # carol's: cached, after alice's
    assert alice.conn.send_text(b_id, "hi").error_code == ErrorCode.NOT_FRIENDS  # used: alice is newest
    node.result(service.friend_set(d_id))  # one must go: carol's, the least recently used
    assert service.cached_friend_ids(c_id) is None
    loads = service.loads
    assert alice.conn.send_text(b_id, "hi").error_code == ErrorCode.NOT_FRIENDS
    assert service.loads == loads
