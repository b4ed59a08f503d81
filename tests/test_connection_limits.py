"""Output limits, bounded closes and per-address caps, on a memory reactor (docs/limits.md).

A :class:`StalledTransport` is a StringTransport with the send buffer of a Twisted socket whose
peer reads nothing: everything written stays queued, as ``queued_bytes`` measures it."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from coffeechat.addresses import AddressLimits, address_key
from coffeechat.errors import ErrorCode
from coffeechat.protocols.tcp import queued_bytes
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode

LIMIT = 64 * 1024


class StalledTransport(StringTransport):
    """What is written is recorded (``value()``) and stays queued: the peer never reads."""

    dataBuffer = b""
    offset = 0

    def __init__(self, host: str = "192.0.2.1") -> None:
        super().__init__(peerAddress=IPv4Address("TCP", host, 40000))
        self._tempDataLen = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        super().write(data)
        self._tempDataLen += len(data)

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


@pytest.fixture
def node() -> MemoryNode:
    return MemoryNode(**{"limits.max_output_bytes": LIMIT, "limits.messages_per_second": 1000.0})


def kickouts(conn) -> list[pb.CIMKickoutNotify]:
    return [body for cmd, _, body in conn.frames() if cmd == Cmd.KICKOUT_NOTIFY]


def test_queued_bytes_counts_a_sockets_send_buffer():
    transport = StalledTransport()
    transport.write(b"x" * 100)
    assert queued_bytes(transport) == 100
    transport.dataBuffer, transport.offset, transport._tempDataLen = b"y" * 50, 20, 7
    assert queued_bytes(transport) == 37
    assert queued_bytes(StringTransport()) == 0  # a transport that takes everything


def test_slow_consumer_is_cut_off_and_catches_up_at_its_next_login(node):
    node.user("alice")
    node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    bob = node.connect(transport=StalledTransport())
    bob.login("bobby")
    text = "m" * 10_000
    sent = 0
    while not bob.transport.aborted and sent < 20:
        ack = alice.send_text(bob.user_id, text)
        assert ack.res_code == 1
        sent += 1
    # Cut off once more than LIMIT bytes waited: 7 pushes of ~10 KB fit, the 7th goes over.
    assert bob.transport.aborted
    assert 6 <= sent <= 8
    notices = kickouts(bob)
    assert [n.reason_code for n in notices] == [ErrorCode.SLOW_CONSUMER]
    assert node.core.router.devices_of(bob.user_id) == []
    # The sender is unaffected, and what bob missed is stored: he catches up at his next login.
    assert alice.send_text(bob.user_id, "after").res_code == 1
    bob.close()
    again = node.connect()
    again.login("bobby")
    seen = []
    end = 0
    for _ in range(sent + 2):  # pages of 3 (the limit holds a page of ~30 KB)
        again.send(
            Cmd.LIST_MSG_REQ,
            pb.CIMGetMsgListReq(
                user_id=bob.user_id, session_id=alice.user_id, session_type=1, end_msg_id=end, limit_count=3
            ),
        )
        page = again.only(Cmd.LIST_MSG_RSP).msg_list
        if not page:
            break
        seen += [m.server_msg_id for m in page]
        end = min(m.server_msg_id for m in page)
    assert sorted(seen) == list(range(1, sent + 2))


def test_output_within_the_limit_is_not_cut_off(node):
    node.user("alice")
    node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    bob = node.connect(transport=StalledTransport())
    bob.login("bobby")
    for _ in range(5):  # ~50 KB queued, under the 64 KiB limit
        alice.send_text(bob.user_id, "m" * 10_000)
    assert not bob.transport.aborted
    assert not kickouts(bob)


def test_one_turn_over_the_limit_is_cut_off_before_it_reaches_the_transport(node):
    """Frames of one reactor turn count too: a burst bigger than the limit is never written."""
    node.user("alice")
    node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    bob = node.connect()  # takes everything it is given
    bob.login("bobby")
    for _ in range(10):  # one turn: the flush comes after all of them
        msg = pb.CIMMsgData(to_session_id=bob.user_id, client_msg_id="", msg_type=1, session_type=1)
        msg.msg_data = b"m" * 10_000
        alice.send(Cmd.MSG_DATA, msg)
    node.clock.advance(0)
    assert bob.transport.disconnected  # aborted
    assert len(bob.transport.value()) < LIMIT + 20_000


def test_heartbeats_before_login_that_are_never_read_are_cut_off(node):
    conn = node.connect(transport=StalledTransport())
    heartbeat = pb.CIMHeartBeat()
    for _ in range(10_000):
        conn.send(Cmd.LOGIN_HEARTBEAT, heartbeat)
        node.clock.advance(0)
        if conn.transport.aborted:
            break
    assert conn.transport.aborted
    assert queued_bytes(conn.transport) <= node.config.limits.max_output_bytes_before_login + 256
    assert kickouts(conn)[-1].reason_code == ErrorCode.SLOW_CONSUMER


def test_a_close_that_does_not_drain_is_aborted(node):
    """The login time-out closes; a peer that reads nothing does not keep it open."""
    conn = node.connect(transport=StalledTransport())
    node.advance(16)
    assert conn.transport.disconnecting and not conn.transport.aborted
    assert kickouts(conn)[0].reason_code == ErrorCode.LOGIN_TIMEOUT
    node.advance(node.config.limits.close_timeout + 1)
    assert conn.transport.aborted


def test_a_close_that_drains_is_not_aborted(node):
    conn = node.connect(transport=StalledTransport())
    node.advance(16)
    conn.protocol.connectionLost(None)  # the peer took everything and the socket closed
    node.advance(node.config.limits.close_timeout + 1)
    assert not conn.transport.aborted


def test_unauthenticated_connections_per_address_are_capped():
    node = MemoryNode(**{"limits.max_unauthenticated_per_address": 3})
    node.user("alice")
    first = [node.connect(transport=StalledTransport("198.51.100.7")) for _ in range(3)]
    assert not any(c.transport.disconnecting for c in first)
    refused = node.connect(transport=StalledTransport("198.51.100.7"))
    assert refused.transport.disconnecting
    assert kickouts(refused)[0].reason_code == ErrorCode.TOO_MANY_CONNECTIONS
    other = node.connect(transport=StalledTransport("198.51.100.8"))  # another address is not affected
    assert not other.transport.disconnecting
    # A login frees its slot of the unauthenticated; a closed connection frees its slot too.
    first[0].login("alice")
    assert not node.connect(transport=StalledTransport("198.51.100.7")).transport.disconnecting
    assert node.connect(transport=StalledTransport("198.51.100.7")).transport.disconnecting
    first[1].close()
    assert not node.connect(transport=StalledTransport("198.51.100.7")).transport.disconnecting
    assert node.core.addresses.counts("198.51.100.7") == (4, 3)
    refused.close()  # a refused connection was never counted
    assert node.core.addresses.counts("198.51.100.7") == (4, 3)


def test_connections_per_address_are_capped_logged_in_or_not():
    node = MemoryNode(**{"limits.max_connections_per_address": 2})
    node.user("alice")
    conns = [node.connect(transport=StalledTransport()) for _ in range(2)]
    for conn in conns:
        conn.login("alice")
    refused = node.connect(transport=StalledTransport())
    assert kickouts(refused)[0].reason_code == ErrorCode.TOO_MANY_CONNECTIONS


def test_unlimited_addresses_are_not_counted():
    node = MemoryNode(**{"limits.max_unauthenticated_per_address": 1, "limits.unlimited_addresses": ["203.0.113.0/24"]})
    conns = [node.connect(transport=StalledTransport("203.0.113.9")) for _ in range(3)]
    assert not any(c.transport.disconnecting for c in conns)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/coffeechat.sock", None),
        (None, None),
    ],
)
def test_address_keys(host, key):
    assert address_key(host) == key


def test_ipv6_addresses_of_one_64_share_a_count():
    class Conn:
        logged_in = False

    limits = AddressLimits(MemoryNode().clock, 2, 10, 2)
    for host in ("2001:db8::1", "2001:db8::2"):
        assert limits.admit(limits.key(IPv6Address("TCP", host, 1).host), Conn()) is None
    assert limits.admit(limits.key("2001:db8::3"), Conn()) is not None
    assert limits.admit(limits.key("2001:db8:0:1::3"), Conn()) is None


class _Counted:
    def __init__(self, logged_in: bool = False) -> None:
        self.logged_in = logged_in


@pytest.mark.parametrize("max_connections, max_unauthenticated", [(3, 2), (1, 1), (0, 5), (5, 0)])
def test_counts_follow_admits_and_releases(max_connections, max_unauthenticated):
    """The counts of one address through one, several and no connections, released in any
    order (one connection is held without a set of its own), with refusals at the caps."""
    limits = AddressLimits(Clock(), max_unauthenticated, max_connections, max_http=1)
    key = address_key("198.51.100.7")
    admitted = []
    for i in range(6):
        connection = _Counted(logged_in=i % 2 == 1)
        if limits.admit(key, connection) is None:
            admitted.append(connection)
        else:
            limits.release(key, connection)  # what a refused connection's close does: nothing
        connected, waiting = limits.counts(key)
        assert connected == len(admitted) <= max_connections
        assert waiting == sum(1 for c in admitted if not c.logged_in)
    if max_connections and max_unauthenticated:
        assert admitted
    remaining = list(admitted)
    for connection in admitted[1::2] + admitted[::2]:
        limits.release(key, connection)
        limits.release(key, connection)  # twice: still released once
        remaining.remove(connection)
        assert limits.counts(key) == (len(remaining), sum(1 for c in remaining if not c.logged_in))
    assert limits.counts(key) == (0, 0)
