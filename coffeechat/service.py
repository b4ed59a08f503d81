"""The process as a tree of services: the node first, then its listeners once storage is open."""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from coffeechat.config import Config
from coffeechat.drain import drain
from coffeechat.endpoints import adopt, listen, offset_port, reload_on_sighup
from coffeechat.node import ChatNode, build_node
from coffeechat.plugins import transport_factory, transports

log = Logger()

DEFAULT_BACKLOG = 4096


def with_backlog(description: str, backlog: int = DEFAULT_BACKLOG) -> str:
    """A TCP (or SSL) endpoint string with a listen backlog of ``backlog`` unless it names one.

    Twisted's default is 50: when a node dies and its clients all reconnect to this one within a
    second, the kernel would drop most of their SYNs and they would come back only after SYN
    retransmissions (1 s, 3 s, 7 s ...).  The kernel caps it at ``net.core.somaxconn``."""
    kind = description.split(":", 1)[0]
    if kind not in ("tcp", "tcp6", "ssl") or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


class ListenerService(service.Service):
    """Listens on one endpoint string; ``listening`` fires with the port (tests listen on port 0).
    With ``fd``, serves the listening socket a supervisor bound for its workers instead."""

    def __init__(self, description: str, factory, reactor, fd: int | None = None) -> None:
        self.description = description
        self.factory = factory
        self.reactor = reactor
        self.fd = fd
        self.port = None
        self.listening: defer.Deferred | None = None

    def startService(self) -> defer.Deferred:
        service.Service.startService(self)
        if self.fd is None:
            self.listening = listen(self.reactor, self.description, self.factory, with_backlog)
        else:
            self.listening = defer.maybeDeferred(
                adopt, self.reactor, self.fd, self.description, self.factory, with_backlog
            )

        def listening(port):
            self.port = port
            log.info("listening on {description}", description=self.description)
            return port

        return self.listening.addCallback(listening)

    def stopService(self) -> defer.Deferred | None:
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return defer.maybeDeferred(port.stopListening)
        return None


class NodeService(service.MultiService):
    """Runs a :class:`ChatNode` and, once it has started, one listener per configured endpoint of
    every transport (coffeechat/plugins.py).

    Listeners start only after storage is open, so no client is accepted that could not be
    served; on stop they close first, then the node flushes and closes storage.

    A worker of a supervisor (coffeechat/workers.py) gets ``shared``: the listening sockets bound
    for all workers, by listener name (``<transport>:<endpoint>``); a listener not shared listens
    on its own, ``port_offset`` ports higher.
    """

    def __init__(self, node: ChatNode, reactor, shared: dict[str, int] | None = None, port_offset: int = 0) -> None:
        super().__init__()
        self.node = node
        self.reactor = reactor
        self.started = defer.Deferred()
        listen = node.config.listen
        shared = shared or {}
        for name in transports():
            endpoints = listen.endpoints.get(name, [])
            if endpoints:
                factory = transport_factory(name)(node)
                for endpoint in endpoints:
                    key = f"{name}:{endpoint}"
                    if key in shared:
                        listener = ListenerService(endpoint, factory, reactor, shared[key])
                    else:
                        listener = ListenerService(offset_port(endpoint, port_offset), factory, reactor)
                    listener.setName(key)
                    listener.setServiceParent(self)

    def startService(self) -> None:
        service.Service.startService(self)
        self._undo_sighup = reload_on_sighup(self.reactor)  # SIGHUP: re-read the ssl: certificates
        d = self.node.start()
        d.addCallback(lambda _: self._start_listeners())
        d.addCallbacks(self.started.callback, self._failed)

    def _start_listeners(self) -> defer.Deferred:
        return defer.gatherResults([child.startService() for child in self], consumeErrors=True)

    def _failed(self, failure) -> None:
        if failure.check(defer.FirstError):
            failure = failure.value.subFailure
        log.failure("CoffeeChat could not start", failure)
        self.started.errback(failure)
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self) -> defer.Deferred:
        """A graceful drain (coffeechat/drain.py): not ready, client listeners closed, clients sent
        elsewhere, everything flushed, within ``server.drain_timeout``."""
        getattr(self, "_undo_sighup", lambda: None)()
        service.Service.stopService(self)
        return drain(self.node, list(self), self.reactor)

    def listening_port(self, name: str):
        """The IListeningPort of the first listener of a transport (tests ask for port 0)."""
        for child in self:
            if child.name.startswith(f"{name}:"):
                return child.port
        return None


def make_node(config: Config, reactor=None, shared: dict[str, int] | None = None, port_offset: int = 0) -> NodeService:
    """Build the whole node from a configuration (a worker's: with the sockets it shares)."""
    if reactor is None:
        from twisted.internet import reactor
    return NodeService(build_node(config, reactor), reactor, shared, port_offset)
