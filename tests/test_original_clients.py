"""The original CoffeeChat clients, as they really behave, against a real node on loopback.

Written from what the clients are known to do (docs/protocol.md, "How the original clients
behave"), with a bare socket client rather than our client library, so that nothing of our own
client's politeness hides a server problem:

- the Go demo client logs in by token, sends MSG_DATA with a UUID, and answers each push with a
  delivery ack whose ``server_msg_id`` is 0, the other fields copied from the push;
- the desktop chatkit sends MSG_DATA without a ``client_msg_id`` and never sends delivery acks.

Redelivery runs every half second here (``limits.redeliver_after``), so what takes the default
configuration 48 s takes a few seconds.
"""

from __future__ import annotations

import uuid

import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import globalLogPublisher

from coffeechat.protocols.framing import FrameDecoder, encode_frame
from coffeechat.schema import Cmd, decode_body, pb

from .conftest import node_config, start_node, stop_node

REDELIVER_AFTER = 0.5


class BareClient(Protocol):
    """Frames in and out, nothing more; ``acks`` chooses how pushes are acknowledged."""

    def __init__(self, acks: str) -> None:
        self.acks = acks  # "go-demo" (server_msg_id 0) or "never"
        self.decoder = FrameDecoder()
        self.frames: list[tuple[int, int, object]] = []
        self.seq = 0
        self.lost = defer.Deferred()
        self._waiting: list[tuple[int, defer.Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        for cmd, seq, body in self.decoder.feed(data):
            message = decode_body(cmd, body)
            self.frames.append((cmd, seq, message))
            if cmd == Cmd.MSG_DATA and self.acks == "go-demo":
                ack = pb.CIMMsgDataAck(
                    from_user_id=message.from_user_id,
                    to_session_id=message.to_session_id,
                    client_msg_id=message.client_msg_id,
                    server_msg_id=0,
                    res_code=pb.kCIM_RES_CODE_OK,
                    session_type=message.session_type,
                    create_time=message.create_time,
                )
                self.send(Cmd.MSG_DATA_ACK, ack, seq)
            for want, d in list(self._waiting):
                if want == cmd:
                    self._waiting.remove((want, d))
                    d.callback(message)

    def connectionLost(self, reason=None) -> None:
        self.lost.callback(None)

    def send(self, cmd: int, message, seq: int | None = None) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.transport.write(encode_frame(cmd, seq, message.SerializeToString()))
        return seq

    def wait_for(self, cmd: int, timeout: float = 5) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self._waiting.append((cmd, d))
        return d.addTimeout(timeout, reactor)

    def received(self, cmd: int) -> list:
        return [m for c, _, m in self.frames if c == cmd]

    @property
    def open(self) -> bool:
        return not self.lost.called


async def bare_login(live, name: str, acks: str) -> BareClient:
    """Log in by token, as the Go demo does (the token from the HTTP login)."""
    user = await live.core.store.user_by_name(name)
    token, _ = await live.core.feature("accounts").issue_token(user.user_id, "test")
    port = live.node.listening_port("cim").getHost().port
    client = BareClient(acks)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    answer = client.wait_for(Cmd.LOGIN_AUTH_TOKEN_RSP)
    client.send(Cmd.LOGIN_AUTH_TOKEN_REQ, pb.CIMAuthTokenReq(user_id=user.user_id, user_token=token, client_type=1))
    rsp = await answer
    assert rsp.result_code == 200, rsp
    live.clients.append(client)
    return client


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def heartbeat(client: BareClient) -> None:
    answer = client.wait_for(Cmd.LOGIN_HEARTBEAT)
    client.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
    await answer


class LogLines:
    """The node's log as text lines, while the test runs."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: dict) -> None:
        from twisted.logger import formatEvent

        self.lines.append(formatEvent(event))

    def matching(self, *words: str) -> list[str]:
        return [line for line in self.lines if all(w in line for w in words)]


async def node_with_two_users(tmp_path):
    live = await start_node(node_config(tmp_path, **{"limits.redeliver_after": REDELIVER_AFTER}))
    alice_id = await live.register("alice")
    bob_id = await live.register("bobby")
    return live, alice_id, bob_id


@pytest_twisted.ensureDeferred
async def test_go_demo_client_acks_with_server_msg_id_0_and_is_neither_resent_to_nor_kicked(tmp_path):
    live, alice_id, bob_id = await node_with_two_users(tmp_path)
    try:
        bob = await bare_login(live, "bobby", acks="go-demo")
        alice = await live.login("alice")
        for i in range(3):
            await alice.send_message(bob_id, f"hello {i}")
        await sleep(REDELIVER_AFTER * 8)  # four redelivery rounds and more
        await heartbeat(bob)
        assert bob.open and not bob.received(Cmd.KICKOUT_NOTIFY)
        assert [m.msg_data for m in bob.received(Cmd.MSG_DATA)] == [b"hello 0", b"hello 1", b"hello 2"]
        await live.core.feature("messages").deliveries.flush()
        conv = f"p:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
        assert await live.core.store.delivered_seq(bob_id, conv) == 3
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_a_client_that_never_acks_stays_connected_and_catches_up_at_its_next_login(tmp_path):
    live, alice_id, bob_id = await node_with_two_users(tmp_path)
    try:
        bob = await bare_login(live, "bobby", acks="never")
        alice = await live.login("alice")
        for i in range(3):
            await alice.send_message(bob_id, f"hi {i}")
        for _ in range(4):
            await sleep(REDELIVER_AFTER * 2)
            await heartbeat(bob)
        assert bob.open and not bob.received(Cmd.KICKOUT_NOTIFY)
        assert len(bob.received(Cmd.MSG_DATA)) == 3  # once each: no duplicates for a client that cannot tell
        bob.transport.loseConnection()
        await bob.lost

        again = await bare_login(live, "bobby", acks="never")
        answer = again.wait_for(Cmd.LIST_RECENT_CONTACT_SESSION_RSP)
        again.send(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq(user_id=bob_id))
        (entry,) = (await answer).contact_session_list
        assert (entry.session_id, entry.server_msg_id, entry.msg_data) == (alice_id, 3, b"hi 2")
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_a_message_without_client_msg_id_is_stored_under_an_id_the_server_made(tmp_path):
    live, alice_id, bob_id = await node_with_two_users(tmp_path)
    try:
        alice = await bare_login(live, "alice", acks="never")
        bob = await live.login("bobby")
        answer = alice.wait_for(Cmd.MSG_DATA_ACK)
        alice.send(Cmd.MSG_DATA, pb.CIMMsgData(to_session_id=bob_id, msg_type=1, session_type=1, msg_data=b"hey"))
        ack = await answer
        assert (ack.res_code, ack.server_msg_id, ack.error_code) == (pb.kCIM_RES_CODE_OK, 1, 0)
        assert uuid.UUID(ack.client_msg_id)
        _, _, push = await bob.next_push(Cmd.MSG_DATA)
        assert (push.client_msg_id, push.msg_data) == (ack.client_msg_id, b"hey")
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_the_log_tells_logins_logouts_kickouts_and_redeliveries(tmp_path):
    lines = LogLines()
    globalLogPublisher.addObserver(lines)
    live, alice_id, bob_id = await node_with_two_users(tmp_path)
    try:
        bob = await bare_login(live, "bobby", acks="go-demo")
        alice = await live.login("alice")
        await alice.send_message(bob_id, "acked")
        await sleep(0.2)
        bob.acks = "never"  # from now on bob's client drops what it gets
        await alice.send_message(bob_id, "lost on the way")
        await sleep(REDELIVER_AFTER * 12)  # pushed, pushed again twice (a wheel tick apart), given up
        await heartbeat(bob)
        await alice.logout()
        bob.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())  # a second device displaces nobody; then:
        for _ in range(10):  # the 11th device of bob logs the oldest one out
            await bare_login(live, "bobby", acks="never")
        await bob.lost
    finally:
        globalLogPublisher.removeObserver(lines)
        await stop_node(live)
    assert lines.matching("login: user", f"user {bob_id} ", "by token", "from 127.0.0.1:")
    assert lines.matching("login: user", f"user {alice_id} ", "by password")
    assert lines.matching(f"user {alice_id} device", "logged out")
    redelivery = lines.matching(f"redelivery to user {bob_id} device")
    assert any("1 pushed again" in line for line in redelivery)
    assert any("1 given up" in line for line in redelivery)
    assert lines.matching(f"kicking out user {bob_id} device", "SESSION_REPLACED", "too many devices")


def test_every_extension_error_code_is_in_the_protocol_pages_table():
    """docs/protocol.md's error table has a row for every error code the server may answer with
    beyond CIM v1's (10000 and up): code, name, when."""
    import re
    from pathlib import Path

    from coffeechat.errors import ErrorCode

    text = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()
    missing = [
        f"{int(e)} {e.name}"
        for e in ErrorCode
        if int(e) >= 10000 and not re.search(rf"\|\s*{int(e)}\s*\|\s*`?{e.name}`?\s*\|", text)
    ]
    assert not missing, missing
