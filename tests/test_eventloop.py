"""protocols/eventloop.py: the epoll reactor's dispatch without callWithLogger still delivers
every event, and a handler that raises loses its own connection only."""

from __future__ import annotations

from twisted.internet import protocol
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.selectreactor import SelectReactor
from twisted.logger import globalLogPublisher

from coffeechat.protocols.eventloop import lean_dispatch


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        if data.startswith(b"boom"):
            raise ValueError("handler bug")
        self.transport.write(data)


class Client(protocol.Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.lost = False

    def connectionMade(self) -> None:
        self.factory.made.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason) -> None:
        self.lost = True


def _spin(reactor, until, rounds: int = 500) -> None:
    for _ in range(rounds):
        if until():
            return
        reactor.iterate(0.01)
    raise AssertionError("the reactor did not get there")


def test_only_an_epoll_reactor_is_changed_and_only_once():
    other = SelectReactor()
    assert lean_dispatch(other) is False
    assert "doIteration" not in vars(other)
    reactor = EPollReactor()
    try:
        assert lean_dispatch(reactor) is True
        first = reactor.doIteration
        assert first is reactor.doPoll and first.__name__ == "doPoll" and "doIteration" in vars(reactor)
        assert lean_dispatch(reactor) is True
        assert reactor.doIteration is first
    finally:
        reactor._poller.close()


def test_events_are_dispatched_and_a_raising_handler_loses_only_its_connection():
    reactor = EPollReactor()
    lean_dispatch(reactor)
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
        factory = protocol.ClientFactory.forProtocol(Client)
        factory.made = []
        for _ in range(2):
            reactor.connectTCP("127.0.0.1", port.getHost().port, factory)
        _spin(reactor, lambda: len(factory.made) == 2)
        good, bad = factory.made
        good.transport.write(b"hello")
        bad.transport.write(b"boom")
        _spin(reactor, lambda: good.received == b"hello" and bad.lost)
        good.transport.write(b" again")
        _spin(reactor, lambda: good.received == b"hello again")
        assert not good.lost
        assert any(e.get("isError") and "handler bug" in str(e.get("failure")) for e in logged)
        good.transport.loseConnection()
        _spin(reactor, lambda: good.lost)
        port.stopListening()
    finally:
        globalLogPublisher.removeObserver(logged.append)
        reactor._poller.close()


def test_the_collector_is_tuned_and_the_heap_frozen():
    import gc

    from coffeechat.protocols.eventloop import GC_THRESHOLD, freeze_heap, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_THRESHOLD, before[1], before[2])
        marker = object()
        assert freeze_heap(marker) is marker
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
