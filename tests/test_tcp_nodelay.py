"""The CIM transport turns Nagle's algorithm off: a small frame written while the previous one
waits for the client's delayed ACK would otherwise sit in the kernel for up to 40 ms (a call's
200 OK after its 180, a push after an ack).  A real socket on loopback, as the server accepts it."""

from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet import defer, reactor, task

from coffeechat.protocols.tcp import CIMServerFactory
from tests.conftest import live_node  # noqa: F401  (fixture)


class Recording(CIMServerFactory):
    def __init__(self, node) -> None:
        super().__init__(node)
        self.built: defer.Deferred = defer.Deferred()

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        reactor.callLater(0, self.built.callback, protocol)
        return protocol


@pytest_twisted.ensureDeferred
async def test_accepted_cim_connections_have_tcp_nodelay(live_node):  # noqa: F811
    factory = Recording(live_node.core)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    sock = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        protocol = await factory.built
        handle = protocol.transport.getHandle()
        assert handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()
        await task.deferLater(reactor, 0.05, lambda: None)
        await port.stopListening()
