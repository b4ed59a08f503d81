"""``GET /ready``: whether a load balancer should send this node new clients.

``/health`` says the process is alive; ``/ready`` says it can serve: storage answers, presence
is joined (in a cluster: registered in Redis, devices written, subscribed) and the node is not
draining.  A failing check answers 503 with what fails, so that a balancer takes the node out
before it stops (SIGTERM) and while a dependency is away.

Storage is asked, not assumed: an idle node would not notice a database that went away until
its next client.  The probe is one ``SELECT 1`` on a reader, at most once per ``PROBE_EVERY``
seconds however often the balancer asks, within ``PROBE_TIMEOUT``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from coffeechat.interfaces import ISQLDatabase

if TYPE_CHECKING:
    from coffeechat.node import ChatNode

log = Logger()

PROBE_EVERY = 1.0
PROBE_TIMEOUT = 2.0


def _select_one(txn: Any) -> Any:
    return txn.execute("SELECT 1").fetchone()


class Readiness:
    """The checks behind ``/ready`` (see the module docstring)."""

    def __init__(self, node: ChatNode) -> None:
        self.node = node
        self._probed_at = float("-inf")
        self._storage: tuple[bool, str] = (False, "not probed yet")
        self._probing: defer.Deferred | None = None

    def presence_joined(self) -> tuple[bool, str]:
        presence = self.node.presence
        joined = getattr(presence, "joined", None)
        if joined is None:  # an in-process presence is joined once the node has started
            return self.node.running, "ok" if self.node.running else "not started"
        return bool(joined), "ok" if joined else "not joined (shared presence unreachable or re-synchronising)"

    async def storage_reachable(self) -> tuple[bool, str]:
        """The outcome of the latest probe, probing again when it is older than PROBE_EVERY."""
        store = self.node.store
        health = getattr(store, "health", None)
        if health is not None and health.down:
            return False, f"{health.name} is down"
        if not ISQLDatabase.providedBy(store):
            return True, "ok"
        clock = self.node.reactor
        if clock.seconds() - self._probed_at < PROBE_EVERY:
            return self._storage
        probing = self._probing
        if probing is None:
            probing = self._probing = defer.Deferred()
            d = store.run_read("ready probe", _select_one)
            d.addTimeout(PROBE_TIMEOUT, clock)
            d.addCallbacks(lambda _: (True, "ok"), lambda f: (False, f"probe failed: {f.getErrorMessage()[:200]}"))
            d.addCallback(self._probed, probing)
        waiting: defer.Deferred = defer.Deferred()
        probing.addCallback(lambda outcome: (waiting.callback(outcome), outcome)[1])
        return await waiting

    def _probed(self, outcome: tuple[bool, str], probing: defer.Deferred) -> None:
        self._storage, self._probed_at, self._probing = outcome, self.node.reactor.seconds(), None
        probing.callback(outcome)

    async def check(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): 200 when every check passes, else 503 naming those that fail."""
        node = self.node
        if node.running or node.draining:
            storage = await self.storage_reachable()
            presence = self.presence_joined()
        else:
            storage = presence = (False, "the node is not running")
        checks = {
            "storage": {"ok": storage[0], "detail": storage[1]},
            "presence": {"ok": presence[0], "detail": presence[1]},
            "draining": {"ok": not node.draining, "detail": "draining" if node.draining else "ok"},
        }
        failing = sorted(name for name, check in checks.items() if not check["ok"])
        ready = not failing
        body = {"status": "ready" if ready else "unavailable", "node": node.node, "failing": failing, "checks": checks}
        return (200 if ready else 503), body
