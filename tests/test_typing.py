"""Typing indicators on a memory reactor: relayed, coalesced, stopped, bounded, across nodes."""

from __future__ import annotations

import pytest

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

SINGLE, GROUP = 1, 2


def typing(device: Device, session_id: int, session_type: int = SINGLE, on: bool = True) -> list:
    """Send a typing notice; return what came back on that seq (nothing on success)."""
    req = pb.CIMTypingReq(session_type=session_type, session_id=session_id, typing=on)
    seq = device.conn.send(Cmd.MSG_TYPING_REQ, req)
    answers = [f for f in device.conn.frames() if f[1] == seq and f[0] == Cmd.ERROR_RSP]
    return [f[2] for f in answers]


def notices(device: Device) -> list[tuple[int, int, int, bool, int]]:
    return [(n.user_id, n.session_type, n.session_id, n.typing, n.ttl) for n in device.pushes(Cmd.MSG_TYPING_NOTIFY)]


@pytest.fixture
def node():
    return MemoryNode(**{"typing.interval": 3.0, "typing.ttl": 6.0, "typing.max_group_members": 3})


def test_one_to_one_typing_is_relayed_coalesced_and_stopped(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    assert typing(alice, bob_id) == []
    assert notices(bob) == [(alice_id, SINGLE, alice_id, True, 6)]  # bob files it under alice
    assert notices(alice2) == []  # not to the typer's own devices
    for _ in range(5):  # keystrokes within the interval: nothing more
        node.advance(0.5, step=0.5)
        assert typing(alice, bob_id) == []
    assert notices(bob) == []
    node.advance(1)
    typing(alice, bob_id)
    assert notices(bob) == [(alice_id, SINGLE, alice_id, True, 6)]  # the interval passed
    typing(alice, bob_id, on=False)
    assert notices(bob) == [(alice_id, SINGLE, alice_id, False, 6)]
    typing(alice, bob_id, on=False)  # nothing is shown any more: nothing to stop
    assert notices(bob) == []
    assert len(node.core.feature("typing")) == 0  # and nothing kept


def test_a_message_from_the_typer_ends_its_typing(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    typing(alice, bob_id)
    alice.conn.send_text(bob_id, "done typing")
    bob.pushes()
    typing(alice, bob_id)  # a new burst right after the message goes out at once
    assert notices(bob) == [(alice_id, SINGLE, alice_id, True, 6)]


def test_group_typing_goes_to_the_other_members_up_to_the_size_limit(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david")]
    alice, bob, carol, david = (Device(node, n) for n in ("alice", "bobby", "carol", "david"))
    small = alice.create(ids[1:3]).group_info.group_id
    for d in (bob, carol):
        d.pushes()
    typing(alice, small, GROUP)
    assert notices(bob) == notices(carol) == [(ids[0], GROUP, small, True, 6)]
    assert notices(david) == []  # not a member
    (error,) = typing(david, small, GROUP)
    assert error.error_code == ErrorCode.FORBIDDEN  # nor may he say he types there
    big = alice.create(ids[1:]).group_info.group_id  # 4 members > 3
    (error,) = typing(alice, big, GROUP)
    assert error.error_code == ErrorCode.NOT_SUPPORTED


def test_bad_requests_are_refused(node):
    node.user("alice")
    alice = Device(node, "alice")
    (error,) = typing(alice, 999)
    assert error.error_code == ErrorCode.USER_NOT_EXIST
    (error,) = typing(alice, 5, session_type=7)
    assert error.error_code == ErrorCode.INVALID_ARGUMENT
    (error,) = typing(alice, 0, GROUP)
    assert error.error_code == ErrorCode.NOT_FOUND


def test_typing_crosses_nodes():
    hub, (n1, n2) = memory_cluster(("n1", "n2"))
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    typing(alice, bob_id)
    n1.clock.advance(0)
    assert notices(bob) == [(alice_id, SINGLE, alice_id, True, 6)]


def test_disabled_typing_is_not_supported():
    node = MemoryNode(**{"features.enabled": ["accounts", "messages"]})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    alice.send(Cmd.MSG_TYPING_REQ, pb.CIMTypingReq(session_type=SINGLE, session_id=bob_id, typing=True))
    assert alice.only(Cmd.ERROR_RSP).error_code == ErrorCode.NOT_SUPPORTED
