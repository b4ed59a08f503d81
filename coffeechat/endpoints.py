"""Listening endpoints: Twisted endpoint strings, with TLS whose certificate a SIGHUP reloads and
the PROXY protocol read before anything else (docs/tls.md).

Every ``[listen]`` string goes through :func:`listen`, and two kinds are ours:

- ``ssl:PORT:privateKey=KEY:certKey=CERT`` takes Twisted's arguments, but its certificate and key
  are re-read by :func:`reload_certificates` (on SIGHUP, :func:`reload_on_sighup`): connections
  made after that get the new certificate, open ones keep theirs.
- ``haproxy:ENDPOINT`` reads a PROXY v1 or v2 header, as Twisted's wrapper does, but connects the
  protocol only once the header is read, so that what the transports count and log per address
  (``transport.getPeer()`` in ``connectionMade``) is the real client's, not the proxy's.  The
  header comes before TLS (``haproxy:ssl:...``), as HAProxy sends it.

Anything else goes to Twisted's ``serverFromString`` unchanged.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import signal
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from OpenSSL.crypto import FILETYPE_PEM
from twisted.internet import defer, threads
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort, IOpenSSLServerConnectionCreator, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, CertificateOptions, DiffieHellmanParameters, KeyPair, TLSVersion
from twisted.logger import Logger
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.filepath import FilePath
from zope.interface import directlyProvides, implementer, providedBy

from coffeechat.config import ConfigError

log = Logger()

#: Seconds a connection to a ``haproxy:`` listener has to send its PROXY header.
PROXY_HEADER_TIMEOUT = 10.0
# At most one log line per this many seconds about connections without a valid PROXY header.
LOG_EVERY = 10.0

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_SSL_KEYS = {"port", "privateKey", "certKey", "extraCertChain", "dhParameters", "interface", "backlog"}


# ---- endpoint strings ---------------------------------------------------------------------------


def _fields(text: str) -> tuple[list[str], dict[str, str]]:
    """The arguments of an endpoint string (after its kind): split at unescaped colons, ``key=value``
    ones by their first unescaped ``=``, backslash escapes resolved (Twisted's syntax)."""
    args: list[str] = []
    kwargs: dict[str, str] = {}
    current: list[str] = []
    key: str | None = None
    escaped = False
    for ch in text + ":":
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "=" and key is None:
            key, current = "".join(current), []
        elif ch == ":":
            value, current = "".join(current), []
            if key is None:
                args.append(value)
            else:
                kwargs[key] = value
            key = None
        else:
            current.append(ch)
    return args, kwargs


@dataclass
class Plan:
    """How to listen on one endpoint string: the endpoint, the factory wrappers applied to the
    transport's factory (innermost first), and the reloadable TLS of its ``ssl:`` part."""

    endpoint: IStreamServerEndpoint
    wrappers: list[Callable[[Factory], Factory]] = field(default_factory=list)
    tls: ReloadableTLS | None = None

    def factory(self, factory: Factory) -> Factory:
        for wrap in self.wrappers:
            factory = wrap(factory)
        return factory


def plan(reactor: Any, description: str, prepare: Callable[[str], str] = lambda d: d) -> Plan:
    """Parse ``description`` (files are read, so a missing certificate fails here);
    ``prepare`` adds defaults to a plain endpoint string (the service's listen backlog)."""
    kind, _, rest = description.partition(":")
    if kind == "haproxy":
        if not rest:
            raise ConfigError(f"{description!r}: haproxy: needs an endpoint to wrap, e.g. 'haproxy:tcp:8000'")
        inner = plan(reactor, rest, prepare)
        inner.wrappers.append(lambda factory: ProxyProtocolFactory(factory, reactor))
        return inner
    if kind == "ssl":
        args, kwargs = _fields(prepare(description).partition(":")[2])
        unknown = set(kwargs) - _SSL_KEYS
        if unknown:
            raise ConfigError(
                f"{description!r}: unknown ssl: option(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(_SSL_KEYS))}; TLS 1.2 or later is always negotiated)"
            )
        port = kwargs.pop("port", None) or (args[0] if args else "")
        if not port.isdigit():
            raise ConfigError(f"{description!r}: ssl: needs a port number")
        key = kwargs.get("privateKey", "server.pem")
        tls = ReloadableTLS(
            key, kwargs.get("certKey", key), kwargs.get("extraCertChain"), kwargs.get("dhParameters"), description
        )
        endpoint = TCP4ServerEndpoint(
            reactor, int(port), backlog=int(kwargs.get("backlog", 50)), interface=kwargs.get("interface", "")
        )
        return Plan(endpoint, [lambda factory: TLSMemoryBIOFactory(tls, False, factory)], tls)
    return Plan(serverFromString(reactor, prepare(description)))


def listen(
    reactor: Any, description: str, factory: Factory, prepare: Callable[[str], str] = lambda d: d
) -> defer.Deferred:
    """Listen with ``factory`` on ``description``; fires with the IListeningPort."""
    try:
        how = plan(reactor, description, prepare)
    except Exception:
        return defer.fail()
    d = how.endpoint.listen(how.factory(factory))
    if how.tls is not None:

        def listening(port: IListeningPort) -> IListeningPort:
            _tls_ports[port] = how.tls
            return port

        d.addCallback(listening)
    return d


# ---- one listening socket shared by several worker processes (coffeechat/workers.py) -----------


@dataclass(frozen=True)
class SocketAddress:
    """Where a TCP endpoint string listens: what a supervisor binds once for all its workers."""

    family: int
    interface: str
    port: int
    backlog: int


def socket_address(reactor: Any, description: str, prepare: Callable[[str], str] = lambda d: d) -> SocketAddress:
    """The TCP socket under ``description`` (``tcp:``, ``tcp6:``, ``ssl:``, ``haproxy:`` of
    those); ConfigError for an endpoint that is not one listening TCP socket (``unix:`` ...)."""
    endpoint = plan(reactor, description, prepare).endpoint
    if isinstance(endpoint, TCP6ServerEndpoint):
        family = socket.AF_INET6
    elif isinstance(endpoint, TCP4ServerEndpoint):
        family = socket.AF_INET
    else:
        raise ConfigError(
            f"{description!r}: with server.workers > 1 every listener must be a TCP port (tcp:, tcp6:, "
            "ssl: or haproxy: of those), which the workers share"
        )
    # Twisted keeps these as private attributes of its TCP endpoints (since Twisted 10).
    return SocketAddress(family, endpoint._interface, endpoint._port, endpoint._backlog)


def bind_shared(address: SocketAddress) -> socket.socket:
    """Bind and listen on ``address`` (port 0: any free port), for workers to adopt."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if address.family == socket.AF_INET6 and address.interface in ("", "::"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address.interface or ("::" if address.family == socket.AF_INET6 else ""), address.port))
        sock.listen(address.backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def adopt(
    reactor: Any, fd: int, description: str, factory: Factory, prepare: Callable[[str], str] = lambda d: d
) -> IListeningPort:
    """Serve ``description``'s protocol stack (TLS, PROXY header) on the listening socket ``fd``
    a supervisor bound for this worker; the caller keeps ``fd`` (Twisted duplicates it)."""
    how = plan(reactor, description, prepare)
    port = reactor.adoptStreamPort(fd, socket_address(reactor, description, prepare).family, how.factory(factory))
    if how.tls is not None:
        _tls_ports[port] = how.tls
    return port


def offset_port(description: str, offset: int) -> str:
    """``description`` listening ``offset`` ports higher (port 0 stays 0): what a worker of its own
    listens on when a listener is not shared (the metrics one, scraped per worker)."""
    kind, _, rest = description.partition(":")
    if kind == "haproxy":
        return f"haproxy:{offset_port(rest, offset)}"
    if kind not in ("tcp", "tcp6", "ssl") or not offset:
        return description
    args, kwargs = _fields(rest)
    if "port" in kwargs:
        kwargs["port"] = _shifted(kwargs["port"], offset)
    elif args:
        args[0] = _shifted(args[0], offset)
    escape = lambda text: text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")  # noqa: E731
    parts = [escape(a) for a in args] + [f"{escape(k)}={escape(v)}" for k, v in kwargs.items()]
    return ":".join([kind, *parts])


def _shifted(port: str, offset: int) -> str:
    return str(int(port) + offset) if port.isdigit() and int(port) else port


# ---- TLS whose certificate can be replaced --------------------------------------------------------


def _load_options(private_key: str, certificate: str, chain: str | None, dh: str | None) -> CertificateOptions:
    """CertificateOptions from PEM files: the certificate file's first certificate is the server's,
    any others (a fullchain.pem) and those of ``chain`` are sent as its chain."""
    certificates = _PEM_CERTIFICATE.findall(Path(certificate).read_bytes())
    if not certificates:
        raise ValueError(f"{certificate}: no PEM certificate in it")
    extra = [Certificate.loadPEM(pem).original for pem in certificates[1:]]
    if chain is not None:
        found = _PEM_CERTIFICATE.findall(Path(chain).read_bytes())
        if not found:
            raise ValueError(f"{chain}: no PEM certificate in it")
        extra += [Certificate.loadPEM(pem).original for pem in found]
    key = KeyPair.load(Path(private_key).read_bytes(), FILETYPE_PEM)
    options = CertificateOptions(
        privateKey=key.original,
        certificate=Certificate.loadPEM(certificates[0]).original,
        extraCertChain=extra or None,
        dhParameters=DiffieHellmanParameters.fromFile(FilePath(dh)) if dh else None,
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )
    options.getContext()  # a key that does not match the certificate fails now, not per connection
    return options


def describe(options: CertificateOptions) -> str:
    """What the log says about a certificate: subject, expiry and SHA-256 fingerprint."""
    cert = options.certificate.to_cryptography()
    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()[:16]
    return f"{cert.subject.rfc4514_string()}, expires {cert.not_valid_after_utc:%Y-%m-%d}, sha256 {fingerprint}…"


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """The TLS of one ``ssl:`` listener: each new connection gets the current context; ``reload``
    reads the files again and, if they make a valid key and certificate, swaps it."""

    def __init__(
        self, private_key: str, certificate: str, chain: str | None, dh: str | None, description: str = ""
    ) -> None:
        self.files = (private_key, certificate, chain, dh)
        self.description = description
        try:
            self.options = _load_options(*self.files)
        except (OSError, ValueError, SSL.Error) as e:
            raise ConfigError(f"{description!r}: cannot load the TLS key and certificate: {_reason(e)}") from e

    def serverConnectionForTLS(self, protocol: Any) -> SSL.Connection:
        return SSL.Connection(self.options.getContext(), None)

    def reload(self) -> defer.Deferred:
        """Read the files in a thread, swap on the reactor; fires with True if swapped (an unusable
        file is logged and the current certificate kept)."""
        d = threads.deferToThread(_load_options, *self.files)

        def loaded(options: CertificateOptions) -> bool:
            self.options = options
            log.info(
                "{description}: certificate reloaded: {cert}", description=self.description, cert=describe(options)
            )
            return True

        def failed(failure: Any) -> bool:
            log.error(
                "{description}: could not reload the TLS key and certificate, keeping the current one: {reason}",
                description=self.description,
                reason=_reason(failure.value),
            )
            return False

        return d.addCallbacks(loaded, failed)


def _reason(error: BaseException) -> str:
    if isinstance(error, SSL.Error):
        return "the private key does not match the certificate, or a file is not PEM"
    return str(error) or type(error).__name__


# The TLS of every listening ssl: port, for reload_certificates.
_tls_ports: weakref.WeakKeyDictionary[Any, ReloadableTLS] = weakref.WeakKeyDictionary()


def reload_certificates() -> defer.Deferred:
    """Reload the certificate of every ``ssl:`` listener still listening; fires with how many
    were swapped."""
    pending = [tls.reload() for port, tls in list(_tls_ports.items()) if getattr(port, "connected", True)]
    return defer.gatherResults(pending).addCallback(sum)


def reload_on_sighup(reactor: Any) -> Callable[[], None]:
    """Reload the certificates on SIGHUP (from the main thread only, and with a real reactor);
    returns what undoes it."""
    call = getattr(reactor, "callFromThread", None)
    if call is None or not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        call(reload_certificates)

    previous = signal.signal(signal.SIGHUP, handler)

    def undo() -> None:
        if signal.getsignal(signal.SIGHUP) is handler:
            signal.signal(signal.SIGHUP, previous if previous is not None else signal.SIG_DFL)

    return undo


# ---- the PROXY protocol ---------------------------------------------------------------------------


class _V1Parser(V1Parser):
    """Twisted's v1 parser, also taking the bare ``PROXY UNKNOWN`` the specification allows (a
    balancer that cannot tell the client's address)."""

    @classmethod
    def parse(cls, line: bytes) -> ProxyInfo:
        if line == b"PROXY UNKNOWN":
            return ProxyInfo(line, None, None)
        return super().parse(line)


class ProxyProtocolWrapper(ProtocolWrapper):
    """Reads the PROXY header, then builds and connects the wrapped protocol, whose transport
    (this wrapper) answers ``getPeer``/``getHost`` with the header's addresses.  No header within
    PROXY_HEADER_TIMEOUT, or a bad one: the connection is closed before any protocol sees it.
    A LOCAL header (HAProxy's own health checks) or ``UNKNOWN`` keeps the socket's addresses."""

    factory: ProxyProtocolFactory

    def __init__(self, factory: ProxyProtocolFactory) -> None:
        super().__init__(factory, None)
        self._parser: _V1Parser | V2Parser | None = None
        self._head = b""
        self._source: Any = None
        self._destination: Any = None
        self._deadline: Any = None

    def logPrefix(self) -> str:
        return "PROXY"

    def makeConnection(self, transport: Any) -> None:
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        self._deadline = self.factory.clock.callLater(PROXY_HEADER_TIMEOUT, self._expired)

    def dataReceived(self, data: bytes) -> None:
        if self.wrappedProtocol is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        if self.disconnecting:
            return
        parser = self._parser
        if parser is None:
            head = self._head + data
            if head.startswith(V2Parser.PREFIX[: len(head)]) and len(head) < 16:
                self._head = head
                return
            if head.startswith(V2Parser.PREFIX) and head[12] & 0xF0 == 0x20:
                parser = V2Parser()
            elif head.startswith(V1Parser.PROXYSTR[: len(head)]) and len(head) < len(V1Parser.PROXYSTR):
                self._head = head
                return
            elif head.startswith(V1Parser.PROXYSTR):
                parser = _V1Parser()
            else:
                self._refuse("no PROXY header")
                return
            self._parser, self._head, data = parser, b"", head
        try:
            info, rest = parser.feed(data)
            if info is not None:
                self._source, self._destination = _address(info.source), _address(info.destination)
        except (InvalidProxyHeader, ValueError):  # Twisted's v1 parser lets int() fail on a bad port
            self._refuse("an invalid PROXY header")
            return
        if info is None:
            return
        self._parser = None
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        protocol = self.factory.wrappedFactory.buildProtocol(self.getPeer())
        if protocol is None:
            self.transport.loseConnection()
            return
        self.wrappedProtocol = protocol
        protocol.makeConnection(self)
        if rest:
            protocol.dataReceived(rest)

    def getPeer(self) -> Any:
        return self._source or self.transport.getPeer()

    def getHost(self) -> Any:
        return self._destination or self.transport.getHost()

    def connectionLost(self, reason: Any) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if self.wrappedProtocol is not None:
            super().connectionLost(reason)
        else:
            self.factory.unregisterProtocol(self)

    def _expired(self) -> None:
        self._deadline = None
        if self.wrappedProtocol is None:
            self._refuse(f"no PROXY header within {PROXY_HEADER_TIMEOUT:g} s")

    def _refuse(self, why: str) -> None:
        self.factory.refused(self.transport.getPeer(), why)
        self.disconnecting = True
        self.transport.abortConnection()


def _address(address: Any) -> Any:
    """A PROXY header's address as the transports' peers are (a str host, IPv6 compressed); None if
    none; ValueError if it is not an IP address and port."""
    if address is None:
        return None
    host = address.host.decode("ascii") if isinstance(address.host, bytes) else address.host
    ip = ipaddress.ip_address(host)
    if not 0 <= int(address.port) <= 65535:
        raise ValueError(f"port {address.port} out of range")
    cls = IPv6Address if ip.version == 6 else IPv4Address
    return cls("TCP", str(ip), int(address.port))


class ProxyProtocolFactory(WrappingFactory):
    """Wraps a listener's factory: every connection starts with a PROXY header (``haproxy:``)."""

    protocol = ProxyProtocolWrapper

    def __init__(self, wrappedFactory: Factory, clock: Any) -> None:
        super().__init__(wrappedFactory)
        self.clock = clock
        self._refused = 0
        self._logged_at = -LOG_EVERY

    def buildProtocol(self, addr: Any) -> ProxyProtocolWrapper:
        return self.protocol(self)

    def logPrefix(self) -> str:
        inner = getattr(self.wrappedFactory, "logPrefix", None)
        return f"{inner() if inner else type(self.wrappedFactory).__name__} (PROXY)"

    def refused(self, peer: Any, why: str) -> None:
        """A connection closed for its header: one log line per LOG_EVERY seconds at most (a
        misconfigured balancer, or a client that skipped it, is every connection)."""
        self._refused += 1
        now = self.clock.seconds()
        if now - self._logged_at >= LOG_EVERY:
            log.info(
                "closed {count} connection(s) without a valid PROXY header since the last such line; the latest "
                "from {peer}: {why} (is the balancer set to send-proxy-v2?)",
                count=self._refused,
                peer=getattr(peer, "host", peer),
                why=why,
            )
            self._refused = 0
            self._logged_at = now
