"""Connections per source address: caps that keep one address from filling the server.

Every transport asks here before it serves a new connection: the CIM transports (TCP and
WebSocket) count their connections per address, all of them and those not logged in yet; the
HTTP transport counts its own.  Over a cap the transport refuses the connection at once, with a
reason (docs/limits.md).  An IPv6 address is counted by its /64, the block one subscriber gets.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from coffeechat.ratelimit import address_key as limit_key

log = Logger()

# One log line at most per this many seconds about refused connections; the others are counted.
LOG_EVERY = 10.0


class Counted(Protocol):
    """A CIM connection as the counts see it."""

    @property
    def logged_in(self) -> bool: ...


def address_key(host: str | None) -> str | None:
    """The key an address is counted by, as the rate limits key it
    (:func:`coffeechat.ratelimit.address_key`: an IPv4 address, also when IPv4-mapped, or an IPv6
    /64); None for what is not an IP address (UNIX sockets): not counted."""
    if not host:
        return None
    host = host.split("%", 1)[0].strip("[]")  # an IPv6 zone (fe80::1%eth0) is not part of it
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return limit_key(host)


class AddressLimits:
    """The per-address counts of one node (``node.addresses``), shared by all its listeners."""

    def __init__(
        self,
        clock: IReactorTime,
        max_unauthenticated: int,
        max_connections: int,
        max_http: int,
        unlimited: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        self.clock = clock
        self.max_unauthenticated = max_unauthenticated
        self.max_connections = max_connections
        self.max_http = max_http
        self._unlimited = [ipaddress.ip_network(n, strict=False) for n in unlimited]
        # key -> its one connection, or a set of them from the second on: most addresses hold
        # one, and a set of one is 216 bytes per connection.
        self._cim: dict[str, Counted | set[Counted]] = {}
        self._http: dict[str, int] = {}
        self._refused = 0  # refusals not logged yet
        self._logged_at = -LOG_EVERY

    def key(self, host: str | None) -> str | None:
        """The key ``host`` is counted by, or None when it is not counted (not an IP address, or
        in ``limits.unlimited_addresses``)."""
        key = address_key(host)
        if key is None or not self._unlimited:
            return key
        ip = ipaddress.ip_address(key.split("/", 1)[0])
        if any(ip in network for network in self._unlimited):
            return None
        return key

    # -- CIM connections (TCP and WebSocket)

    def admit(self, key: str | None, connection: Counted) -> str | None:
        """Count a new CIM connection from ``key``: None if admitted (release it when it ends),
        else why it is refused.  Those not logged in are counted only when the address holds
        ``max_unauthenticated`` connections or more, so the usual case costs a dict insertion."""
        if key is None:
            return None
        held = self._cim.get(key)
        if held is None and self.max_connections > 0 and self.max_unauthenticated > 0:
            self._cim[key] = connection
            return None
        connections = set() if held is None else held if type(held) is set else {held}
        if len(connections) >= self.max_connections:
            return self._refuse(key, f"more than {self.max_connections} connections from one address")
        if len(connections) >= self.max_unauthenticated:
            waiting = sum(1 for c in connections if not c.logged_in)
            if waiting >= self.max_unauthenticated:
                return self._refuse(
                    key, f"more than {self.max_unauthenticated} connections not logged in from one address"
                )
        connections.add(connection)
        self._cim[key] = connections
        return None

    def release(self, key: str | None, connection: Counted) -> None:
        """A counted connection ended (whichever way)."""
        held = self._cim.get(key) if key is not None else None
        if held is None:
            return
        if type(held) is not set:
            if held is connection:
                del self._cim[key]
            return
        held.discard(connection)
        if len(held) == 1:
            self._cim[key] = next(iter(held))
        elif not held:
            del self._cim[key]

    def counts(self, key: str) -> tuple[int, int]:
        """(connections, of which not logged in) of an address key."""
        held = self._cim.get(key)
        connections = () if held is None else held if type(held) is set else (held,)
        return len(connections), sum(1 for c in connections if not c.logged_in)

    # -- HTTP connections

    def admit_http(self, key: str | None) -> str | None:
        """Count a new HTTP connection: None if admitted, else why it is refused."""
        if key is None:
            return None
        count = self._http.get(key, 0)
        if count >= self.max_http:
            return self._refuse(key, f"more than {self.max_http} HTTP connections from one address")
        self._http[key] = count + 1
        return None

    def release_http(self, key: str | None) -> None:
        if key is None:
            return
        count = self._http.get(key, 0) - 1
        if count > 0:
            self._http[key] = count
        else:
            self._http.pop(key, None)

    def http_count(self, key: str) -> int:
        return self._http.get(key, 0)

    def _refuse(self, key: str, reason: str) -> str:
        """Log refusals at most once per LOG_EVERY seconds (a connect storm is thousands)."""
        self._refused += 1
        now = self.clock.seconds()
        if now - self._logged_at >= LOG_EVERY:
            log.info(
                "refused {count} connection(s) over the per-address caps since the last such line; the "
                "latest from {key}: {reason}",
                count=self._refused,
                key=key,
                reason=reason,
            )
            self._refused = 0
            self._logged_at = now
        return reason


# The most X-Forwarded-For entries looked at (a header is bounded anyway; a chain of proxies is short).
MAX_FORWARDED_HOPS = 32


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of one X-Forwarded-For entry (``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443``,
    ``2001:db8::1``), or None if it is none (``unknown``, an obfuscated name, garbage)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TrustedProxies:
    """``http.trusted_proxies``: the reverse proxies whose ``X-Forwarded-For`` is believed.

    Only when the immediate peer is one of them: the client is then the rightmost address of the
    header that is not a trusted proxy (each trusted proxy appends the address it got the request
    from, so whatever lies left of the first untrusted one may be the client's own invention).  An
    entry that is not an address stops the walk at the last trusted hop."""

    def __init__(self, networks: list[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        if not self.networks or not host:
            return False
        ip = _ip(host)
        return ip is not None and any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded: list[str] | str | None) -> str:
        """The client's address for a request from ``peer`` carrying these X-Forwarded-For values
        (in the order received); ``peer`` itself unless it is trusted and the header says more."""
        if not forwarded or not self.trusts(peer):
            return peer
        values = [forwarded] if isinstance(forwarded, str) else forwarded
        entries = [entry for value in values for entry in value.split(",")][-MAX_FORWARDED_HOPS:]
        client = peer
        for entry in reversed(entries):
            ip = _ip(entry)
            if ip is None:
                break
            client = str(ip)
            if not any(ip in network for network in self.networks):
                break
        return client
