"""A whole chat core on a memory reactor, with CIM connections on StringTransports.

Everything answers synchronously (the memory storage backend, a synchronous KDF runner), so a
test feeds frames, advances the clock and reads exactly what each connection was sent.
"""

from __future__ import annotations

import hashlib
import uuid

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.presence_memory import MemoryHub, MemoryPresence
from coffeechat.config import load_config
from coffeechat.node import ChatNode
from coffeechat.protocols.framing import FrameDecoder, encode_frame
from coffeechat.protocols.tcp import CIMServerFactory
from coffeechat.schema import Cmd, decode_body, pb


def md5(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


class Conn:
    """One client connection: send frames, read back decoded frames."""

    def __init__(
        self, node: MemoryNode, address: str = "192.168.1.1", transport: StringTransport | None = None
    ) -> None:
        self.node = node
        self.protocol = node.factory.buildProtocol(None)
        if transport is None:
            transport = StringTransport(peerAddress=IPv4Address("TCP", address, 54321))
        self.transport = transport
        self.protocol.makeConnection(self.transport)
        self._decoder = FrameDecoder(16 * 1024 * 1024)
        self._seq = 0
        self.received: list[tuple[int, int, object]] = []
        self.user_id = 0

    def send(self, cmd: int, message, seq: int | None = None) -> int:
        if seq is None:
            self._seq += 1
            seq = self._seq
        self.protocol.dataReceived(encode_frame(cmd, seq, message.SerializeToString()))
        return seq

    def send_raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def frames(self) -> list[tuple[int, int, object]]:
        """Everything received since the last call, decoded."""
        self.node.clock.advance(0)  # the transport sends what a reactor turn queued at its end
        data = self.transport.value()
        self.transport.clear()
        out = [(cmd, seq, decode_body(cmd, body)) for cmd, seq, body in self._decoder.feed(data)]
        self.received.extend(out)
        return out

    def only(self, cmd: int | None = None):
        """The single frame received since the last read (of command ``cmd``)."""
        frames = self.frames()
        assert len(frames) == 1, frames
        if cmd is not None:
            assert frames[0][0] == cmd, frames
        return frames[0][2]

    @property
    def closed(self) -> bool:
        self.node.clock.advance(0)
        return self.transport.disconnecting

    def login(self, name: str, password: str = "secret") -> pb.CIMAuthRsp:
        self.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name=name, user_pwd=md5(password), client_type=2))
        rsp = self.only(Cmd.LOGIN_AUTH_RSP)
        assert rsp.result_code == 200, rsp
        self.user_id = rsp.user_info.user_id
        return rsp

    def send_text(self, to: int, text: str, client_msg_id: str | None = None, **fields) -> pb.CIMMsgDataAck:
        msg = pb.CIMMsgData(
            to_session_id=to,
            client_msg_id=client_msg_id or str(uuid.uuid4()),
            msg_type=1,
            session_type=1,
            msg_data=text.encode(),
            **fields,
        )
        seq = self.send(Cmd.MSG_DATA, msg)
        frames = self.frames()
        acks = [f for f in frames if f[0] == Cmd.MSG_DATA_ACK and f[1] == seq]
        assert len(acks) == 1, frames
        return acks[0][2]

    def ack_delivery(self, push: pb.CIMMsgData, seq: int) -> None:
        """Acknowledge a delivered 1:1 message, as a client does (MSG_DATA_ACK with the push's seq)."""
        self.send(
            Cmd.MSG_DATA_ACK,
            pb.CIMMsgDataAck(
                to_session_id=push.to_session_id,
                client_msg_id=push.client_msg_id,
                server_msg_id=push.server_msg_id,
                res_code=1,
                session_type=1,
            ),
            seq=seq,
        )

    def close(self) -> None:
        self.protocol.connectionLost(None)


class MemoryNode:
    """A core with memory storage on a MemoryReactorClock.  Several nodes of one cluster share a
    clock, a store and a :class:`~coffeechat.backends.presence_memory.MemoryHub`
    (:func:`memory_cluster`)."""

    def __init__(self, clock=None, store=None, presence=None, run_cpu=None, **overrides) -> None:
        settings = {"auth.scrypt_n": 16, "listen.cim": [], "listen.http": [], "listen.ws": []}
        settings.update(overrides)
        self.config = load_config(None, settings)
        self.clock = clock or MemoryReactorClock()
        self.store = store or MemoryStore()
        self.core = ChatNode(
            self.config,
            self.clock,
            self.store,
            presence or MemoryPresence(),
            run_cpu=run_cpu or (lambda f, *a: defer.maybeDeferred(f, *a)),
        )
        self.core.start()
        self.factory = CIMServerFactory(self.core)

    def user(self, name: str, password: str = "secret", nick: str | None = None) -> int:
        d = defer.ensureDeferred(self.core.feature("accounts").create_user(name, nick or name.title(), md5(password)))
        return self.result(d).user_id

    def connect(self, address: str = "192.168.1.1", transport: StringTransport | None = None) -> Conn:
        """A CIM connection from ``address`` (an IPv4 address: limits per address see it), or on
        ``transport`` (which has its own peer address)."""
        return Conn(self, address, transport)

    def advance(self, seconds: float, step: float = 1.0) -> None:
        while seconds > 0:
            self.clock.advance(min(step, seconds))
            seconds -= step

    @staticmethod
    def result(d: defer.Deferred):
        results = []
        d.addBoth(results.append)
        assert results, "Deferred has not fired"
        if hasattr(results[0], "raiseException"):
            results[0].raiseException()
        return results[0]


def memory_cluster(names=("n1", "n2"), **overrides) -> tuple[MemoryHub, list[MemoryNode]]:
    """Nodes sharing one clock, one memory store and one hub: a cluster in one process."""
    clock = MemoryReactorClock()
    store = MemoryStore()
    hub = MemoryHub(clock)
    nodes = [MemoryNode(clock=clock, store=store, presence=hub.presence(name), **overrides) for name in names]
    clock.advance(0)
    return hub, nodes
