"""A graceful stop (SIGTERM): leave the load balancer, send the clients elsewhere, flush, exit.

The order is what makes it graceful:

1. ``node.draining``: ``/ready`` answers 503 (a balancer stops sending new clients), the HTTP
   WebSocket path refuses new upgrades;
2. the client listeners (CIM, WebSocket) stop accepting; the HTTP and metrics listeners stay
   open, so that the balancer and Prometheus still see the node draining;
3. ``server.drain_delay`` seconds of grace (0 by default) while connected clients are still
   served, for balancers that only notice a failing ``/ready`` after a few checks;
4. message writes already read from clients are given up to a second to commit, so that their
   senders get the ack instead of sending again elsewhere (a resend is deduplicated anyway);
5. the node stops: every device gets ``KICKOUT_NOTIFY`` ``SERVER_SHUTDOWN`` (WebSocket closes
   with 1012 "service restart"), which the clients take as "reconnect to another server"; the
   features flush (delivery acks, the webhook outbox), presence is left, and storage writes
   what is queued (the group commit) before it closes;
6. up to ``CLOSE_GRACE`` seconds for the clients to close their connections (having read the
   goodbye), then the remaining listeners close.

All of it within ``server.drain_timeout``: what has not finished by then is abandoned and the
process exits anyway (an acknowledged message is committed already; at worst delivery marks
are redone from storage by the clients' catch-up).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from coffeechat.node import ChatNode

log = Logger()

#: the listeners kept open until the end: where the balancer and Prometheus look
MONITORED = ("http", "metrics")
WRITES_GRACE = 1.0
#: after the goodbyes, how long the clients get to read them and close (WebSocket's closing
#: handshake): a process that exits first resets those connections, and a reset can discard the
#: goodbye from the client's socket buffer before the client read it
CLOSE_GRACE = 2.0
_POLL = 0.05
_CLIENTS = ("cim", "ws")


def _transport(listener: Any) -> str:
    return (listener.name or "").split(":", 1)[0]


@defer.inlineCallbacks
def _stop_all(listeners: Iterable[Any]):
    results = yield defer.DeferredList(
        [defer.maybeDeferred(listener.stopService) for listener in listeners], consumeErrors=True
    )
    for ok, failure in results:
        if not ok:
            log.failure("closing a listener failed", failure)


@defer.inlineCallbacks
def _writes_done(node: ChatNode, clock: Any, deadline: float):
    """Wait (polling) until no message write is waiting for storage, or ``deadline``."""
    while node.flow.in_flight and clock.seconds() < deadline:
        yield task.deferLater(clock, _POLL, lambda: None)


@defer.inlineCallbacks
def _goodbyes_read(node: ChatNode, clock: Any, left: int, deadline: float):
    """Wait (polling) until no more than ``left`` client connections are open (those that were
    never logged in, so told nothing, are not waited for), or ``deadline``."""
    while _open(node) > left and clock.seconds() < deadline:
        yield task.deferLater(clock, _POLL, lambda: None)


def _open(node: ChatNode) -> int:
    return sum(node.connections.get(name, 0) for name in _CLIENTS)


@defer.inlineCallbacks
def _drain(node: ChatNode, listeners: list[Any], clock: Any):
    config = node.config.server
    started = clock.seconds()
    devices = node.router.device_count
    log.info(
        "draining: not ready any more, closing the client listeners; {devices} devices will be sent elsewhere",
        devices=devices,
    )
    clients = [listener for listener in listeners if _transport(listener) not in MONITORED]
    yield _stop_all(clients)
    if config.drain_delay:
        yield task.deferLater(clock, config.drain_delay, lambda: None)
    yield _writes_done(node, clock, min(clock.seconds() + WRITES_GRACE, started + config.drain_timeout))
    # the connections that will not be told goodbye: those of no logged-in device
    left = max(0, _open(node) - (node.router.device_count if node.running else 0))
    if node.running:
        yield node.stop()
    yield _goodbyes_read(node, clock, left, min(clock.seconds() + CLOSE_GRACE, started + config.drain_timeout))
    log.info("drained in {seconds:.2f} s", seconds=clock.seconds() - started)


@defer.inlineCallbacks
def drain(node: ChatNode, listeners: list[Any], clock: Any):
    """Stop ``node`` and its ``listeners`` gracefully, within ``server.drain_timeout`` (see the
    module docstring)."""
    node.draining = True
    timeout = node.config.server.drain_timeout
    d = _drain(node, listeners, clock)
    d.addTimeout(timeout, clock)
    try:
        yield d
    except defer.TimeoutError:
        log.warn(
            "the drain did not finish within server.drain_timeout ({timeout:g} s): stopping anyway", timeout=timeout
        )
    except Exception:
        log.failure("draining failed: stopping anyway")
    finally:
        yield _stop_all([listener for listener in listeners if listener.running])
