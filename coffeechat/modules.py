"""Feature modules: what a feature sees of its node (Prosody's ``moduleapi``), and the registry that
the session, the cluster and the transports read.

A feature is one Python module: ``coffeechat/features/<name>.py``, or a third party's, found under
the ``coffeechat.features`` entry-point group.  It has

- ``setup(api: ModuleAPI)``, which registers its commands, push kinds, hooks, storage, HTTP routes,
  periodic tasks and cluster commands, and returns the feature's service (what other features get
  from ``api.depends(name)``) or None;
- optionally ``Config``, a dataclass for its config section (named by ``SECTION``, else the
  feature's name): typed defaults and a ``validate()`` raising ``ConfigError``, as the core's
  sections (coffeechat/config.py).

The config's ``[features] enabled`` list says which are loaded.  docs/extending.md walks through
writing one.  Registration happens once, while the node is built; nothing is wired afterwards.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from google.protobuf.message import Message as PbMessage
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface.interface import InterfaceClass

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, StorageUnavailable, StoreClosed
from coffeechat.model import Push, User
from coffeechat.schema import RESPONSE_OF, TABLE
from coffeechat.sql import load_migrations

if TYPE_CHECKING:
    from coffeechat.node import ChatNode
    from coffeechat.session import Session

log = Logger()

#: ``handler(session, seq, request)``: answers through the session; returns None or a Deferred
#: (whose failure the session answers).
CommandHandler = Callable[["Session", int, PbMessage], "defer.Deferred | None"]
AUTH_KINDS = ("public", "user", "admin")


class CommandEntry(NamedTuple):
    """A command a feature serves (a tuple: the session reads it once per frame)."""

    handler: CommandHandler
    login: bool  # a login command: accepted only before login, one at a time
    counted: bool  # paid for from the connection's request budget
    feature: str


@dataclass(frozen=True, slots=True)
class PushKind:
    """How one kind of :class:`~coffeechat.model.Push` goes out: the command it is sent as, its
    body (``encode``, once per push however many devices get it), its name between nodes, and for
    kinds that devices acknowledge, the key their acks name (``ack_key``)."""

    cls: type
    name: str
    cmd: int
    encode: Callable[[Any], PbMessage]
    ack_key: Callable[[Any], Hashable] | None
    feature: str


@dataclass(frozen=True, slots=True)
class Route:
    """An HTTP route: ``GET /admin/users/{user_id:int}/sessions`` and who may call it.

    ``auth`` "public": anyone, answered HTTP 200 with the outcome in ``error_code`` (as the
    original's API); "user": a login token (``Authorization: Bearer``), likewise; "admin": the
    admin token, with HTTP statuses (docs/protocol.md)."""

    method: str
    segments: tuple[str | tuple[str, str], ...]
    handler: Callable[[HttpCall], Awaitable[HttpAnswer | dict[str, Any]]]
    auth: str
    feature: str
    summary: str
    #: the largest body this route takes (None: ``http.max_request_bytes``), decided from the
    #: headers, before the body is read
    max_body: int | None = None
    #: the body is not read into ``HttpCall.body``: the handler reads ``HttpCall.content`` (a file,
    #: spooled to disk by the transport when large), as an upload route does
    raw: bool = False
    #: what the OpenAPI document says of it (coffeechat/openapi.py): the JSON schemas of the
    #: request body and of the success answer's fields, its query parameters, and the media type
    #: of an answer that is not JSON
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    query: tuple[Any, ...] = ()
    produces: str = ""

    @property
    def path(self) -> str:
        parts = [s if isinstance(s, str) else f"{{{s[0]}{':int' if s[1] == 'int' else ''}}}" for s in self.segments]
        return "/" + "/".join(parts)

    def match(self, parts: list[str]) -> dict[str, Any] | None:
        """The path parameters when ``parts`` (the request path's segments) fit, else None."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, Any] = {}
        for given, wanted in zip(parts, self.segments, strict=True):
            if isinstance(wanted, str):
                if given != wanted:
                    return None
            elif wanted[1] == "int":
                # isascii: str.isdigit() also takes "²", which int() refuses
                if not (given.isascii() and given.isdigit()) or len(given) > 18 or int(given) <= 0:
                    return None
                params[wanted[0]] = int(given)
            else:
                params[wanted[0]] = given
        return params


_SEGMENT = re.compile(r"^\{(\w+)(?::(int))?\}$")


def _segments(path: str) -> tuple[str | tuple[str, str], ...]:
    out: list[str | tuple[str, str]] = []
    for part in path.strip("/").split("/"):
        match = _SEGMENT.match(part)
        out.append((match.group(1), match.group(2) or "str") if match else part)
    return tuple(out)


@dataclass
class HttpCall:
    """An HTTP request as a feature's route handler sees it (no web framework needed)."""

    method: str
    params: dict[str, Any]
    query: dict[str, list[str]]
    body: bytes
    user: User | None = None  # auth "user": whose token it was
    bearer: str = ""  # the ``Authorization: Bearer`` token, if any
    peer: str = ""  # the client's IP address (as the socket says: set up a proxy's address handling there)
    #: request headers, names in lower case (the last value of a repeated one)
    headers: dict[str, str] = field(default_factory=dict)
    #: a raw route's body: a binary file positioned at its start (None when there was none)
    content: Any = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or ChatError 9001."""
        try:
            body = json.loads(self.body or b"null")
            # Lone surrogates ("\\ud800") parse but cannot be stored or echoed: refuse them here.
            json.dumps(body, ensure_ascii=False).encode()
        except (ValueError, RecursionError):  # UnicodeError is a ValueError
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "request body must be a JSON object")
        return body

    def query_int(self, name: str, default: int, minimum: int) -> int:
        """An integer query argument; anything else is ChatError 9001."""
        values = self.query.get(name)
        if not values:
            return default
        raw = values[-1]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < minimum:
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"{name} must be an integer >= {minimum}")
        return int(raw)


@dataclass
class HttpReply:
    """An answer that is not the API's JSON: a status, headers, and either ``body`` or ``length``
    bytes from ``offset`` read by ``read(offset, length) -> Deferred[bytes]`` a chunk at a time
    (a file from the blob store, streamed with back-pressure, never whole in memory)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    read: Callable[[int, int], defer.Deferred] | None = None
    offset: int = 0
    length: int = 0


HttpAnswer = tuple[int, dict[str, Any]] | HttpReply


class Registry:
    """Everything the features registered, read by the node's parts and its transports."""

    def __init__(self) -> None:
        self.commands: dict[int, CommandEntry] = {}
        self.push_kinds: dict[type, PushKind] = {}
        self.push_names: dict[str, PushKind] = {}
        self.routes: list[Route] = []
        self.cluster_commands: dict[str, Callable[[dict, str], None]] = {}
        self._hooks: dict[str, list[tuple[int, int, Callable[..., Any]]]] = {}
        self._order = 0

    def add_command(self, cmd: int, entry: CommandEntry) -> None:
        command = TABLE.get(cmd)
        if command is None:
            raise ConfigError(f"feature {entry.feature}: command 0x{cmd:04x} is not in the schema (cim.proto)")
        other = self.commands.get(cmd)
        if other is not None:
            raise ConfigError(f"features {other.feature} and {entry.feature} both serve {command.name}")
        self.commands[cmd] = entry

    def add_push_kind(self, kind: PushKind) -> None:
        if not issubclass(kind.cls, Push):
            raise ConfigError(f"feature {kind.feature}: push kind {kind.cls.__name__} must derive from Push")
        command = TABLE.get(kind.cmd)
        if command is None or not command.push:
            raise ConfigError(f"feature {kind.feature}: {kind.cls.__name__} is sent as 0x{kind.cmd:04x}, not a push")
        if kind.cls in self.push_kinds or kind.name in self.push_names:
            raise ConfigError(f"feature {kind.feature}: push kind {kind.name!r} is registered twice")
        self.push_kinds[kind.cls] = kind
        self.push_names[kind.name] = kind

    def add_route(self, route: Route) -> None:
        for other in self.routes:
            if other.method == route.method and other.segments == route.segments:
                raise ConfigError(
                    f"features {other.feature} and {route.feature} both serve {route.method} {route.path}"
                )
        self.routes.append(route)

    def add_cluster_command(self, name: str, handler: Callable[[dict, str], None], feature: str) -> None:
        if name in self.cluster_commands:
            raise ConfigError(f"feature {feature}: cluster command {name!r} is registered twice")
        self.cluster_commands[name] = handler

    def hook(self, event: str, handler: Callable[..., Any], priority: int = 0) -> None:
        """Call ``handler`` on ``event``; higher priorities first, then in registration order."""
        self._order += 1
        hooks = self._hooks.setdefault(event, [])
        hooks.append((-priority, self._order, handler))
        hooks.sort(key=lambda h: (h[0], h[1]))

    def has_hooks(self, event: str) -> bool:
        return bool(self._hooks.get(event))

    def fire(self, event: str, *args: Any) -> None:
        """Tell every hook of ``event``.  A failing hook is logged and the others still run: one
        feature's bug must not break another's."""
        for _, _, handler in self._hooks.get(event, ()):
            try:
                result = handler(*args)
                # Deferred is an ABC subclass: isinstance on every None result costs per message.
                if result is not None and isinstance(result, defer.Deferred):
                    result.addErrback(
                        lambda f, h=handler: log.failure("hook {h} of {event} failed", f, h=h, event=event)
                    )
            except Exception:
                log.failure("hook {handler} of {event} failed", handler=handler, event=event)

    def fire_and_wait(self, event: str, *args: Any) -> defer.Deferred:
        """As :meth:`fire`, and fire with the number of hooks that failed once every hook's
        Deferred has fired: for a caller that must know the work is done (account deletion)."""
        pending = []
        for _, _, handler in self._hooks.get(event, ()):
            d = defer.maybeDeferred(handler, *args)
            d.addCallbacks(
                lambda _: 0,
                lambda f, h=handler: log.failure("hook {h} of {event} failed", f, h=h, event=event) or 1,
            )
            pending.append(d)
        return defer.gatherResults(pending).addCallback(sum)


class ModuleAPI:
    """What one feature module sees of its node: enough to add a feature, nothing more."""

    def __init__(self, node: ChatNode, name: str, config: Any) -> None:
        self._node = node
        self.name = name
        #: this feature's config section (None for a feature without one)
        self.config = config
        self.log = Logger(namespace=f"coffeechat.features.{name}")

    # -- what the node offers

    @property
    def clock(self) -> Any:
        """The injected reactor (``seconds()``, ``callLater``): tests drive it."""
        return self._node.reactor

    @property
    def store(self) -> Any:
        """The core storage (:class:`~coffeechat.interfaces.IStore`)."""
        return self._node.store

    @property
    def router(self) -> Any:
        """This node's devices, and pushes to users wherever they are connected."""
        return self._node.router

    @property
    def flow(self) -> Any:
        """Back-pressure: count storage writes made for clients (``started``/``finished``)."""
        return self._node.flow

    @property
    def wheel(self) -> Any:
        """The shared timing wheel (1 s resolution) for many cheap deadlines."""
        return self._node.wheel

    @property
    def limits(self) -> Any:
        """The node's ``[limits]`` section."""
        return self._node.config.limits

    @property
    def node_config(self) -> Any:
        return self._node.config

    @property
    def node_name(self) -> str:
        return self._node.node

    @property
    def node(self) -> Any:
        """The node as a whole (its counters, cluster, connections), for a feature that observes
        everything rather than adding to it (metrics); others use the narrower views here."""
        return self._node

    def cpu_runner(self, size: int) -> Callable[..., defer.Deferred]:
        """``run(f, *args)``: CPU-heavy calls (a KDF) on a pool of at most ``size`` threads, off the
        reactor, so a burst of them cannot take more than that many cores."""
        return self._node.cpu_runner(size)

    @property
    def presence(self) -> Any:
        """Who is online where (:class:`~coffeechat.interfaces.IPresence`), for the admin API."""
        return self._node.presence

    @property
    def routes(self) -> list[Route]:
        """Every HTTP route the node serves (read-only: the OpenAPI document is made of them)."""
        return list(self._node.registry.routes)

    def disconnect_user(self, user_id: int, code: int, reason: str) -> int:
        """Close every device of a user, on every node; returns how many were closed here."""
        return self._node.disconnect_user(user_id, code, reason)

    def depends(self, name: str) -> Any:
        """The service of feature ``name``, set up first if it was not yet (it must be enabled)."""
        return self._node.feature_service(name, needed_by=self.name)

    # -- what a feature registers

    def command(self, cmd: int, handler: CommandHandler, *, login: bool = False, counted: bool = True) -> None:
        """Serve command ``cmd`` with ``handler(session, seq, request)`` (the hot-path form: it
        answers through ``session.answer``).  ``login``: only before login (the login commands);
        ``counted`` False: not paid for from the request budget (delivery acks)."""
        self._node.registry.add_command(int(cmd), CommandEntry(handler, login, counted, self.name))

    def request(
        self, cmd: int, *, login: bool = False, counted: bool = True
    ) -> Callable[[Callable[..., Awaitable[PbMessage | None]]], Callable[..., Awaitable[PbMessage | None]]]:
        """Decorator: serve ``cmd`` with ``async def handler(session, request) -> answer``; the
        answer (unless None) goes out as the command's answer in the protocol table, and a
        ChatError as its failure."""
        answer_cmd = RESPONSE_OF.get(int(cmd))

        def register(fn: Callable[..., Awaitable[PbMessage | None]]) -> Callable[..., Awaitable[PbMessage | None]]:
            def handler(session: Session, seq: int, request: PbMessage) -> defer.Deferred:
                d = defer.ensureDeferred(fn(session, request))
                if answer_cmd is not None:
                    d.addCallback(lambda answer: answer is not None and session.answer(answer_cmd, seq, answer))
                return d

            self.command(cmd, handler, login=login, counted=counted)
            return fn

        return register

    def push_kind(
        self,
        cls: type,
        *,
        name: str,
        cmd: int,
        encode: Callable[[Any], PbMessage],
        ack_key: Callable[[Any], Hashable] | None = None,
    ) -> None:
        """Register a push dataclass: sent as ``cmd`` with body ``encode(push)``, called ``name``
        between nodes; ``ack_key(push)`` for pushes that devices acknowledge and that are sent
        again when they do not (messages)."""
        self._node.registry.add_push_kind(PushKind(cls, name, int(cmd), encode, ack_key, self.name))

    def hook(self, event: str, handler: Callable[..., Any], priority: int = 0) -> None:
        """Call ``handler(*args)`` whenever ``event`` is fired (docs/extending.md lists them)."""
        self._node.registry.hook(event, handler, priority)

    def fire(self, event: str, *args: Any) -> None:
        """Tell the hooks of ``event`` (synchronously; their failures are logged)."""
        self._node.registry.fire(event, *args)

    def fire_and_wait(self, event: str, *args: Any) -> defer.Deferred:
        """Tell the hooks of ``event`` and fire, with how many failed, once all are done."""
        return self._node.registry.fire_and_wait(event, *args)

    def firer(self, event: str) -> Callable[..., None]:
        """``fire`` bound to ``event``, for a feature that fires it on its hot path (one call
        less per event; hooks registered later are still told)."""
        return functools.partial(self._node.registry.fire, event)

    def open_store(self, interface: InterfaceClass, sql: Callable[[Any], Any] | None = None) -> Any:
        """This feature's storage facet providing ``interface``: the backend's own implementation if
        it has one (``backend.facet(interface)``), else ``sql(database)`` on an SQL backend, whose
        tables come from ``sql.migrations`` (a migrations file, coffeechat/sql.py) and are brought
        up to date before the node serves anyone."""
        backend = self._node.store
        provider = getattr(backend, "facet", None)
        facet = provider(interface) if provider is not None else None
        if facet is None and sql is not None and ISQLDatabase.providedBy(backend):
            facet = sql(backend)
            migrations = getattr(sql, "migrations", None)
            if migrations is not None:
                self._node.add_migrations(self.name, load_migrations(migrations))
        if facet is None:
            raise ConfigError(
                f"feature {self.name}: the storage backend {self._node.config.storage.backend!r} provides no "
                f"{interface.__name__} (disable the feature in [features] enabled, or use an SQL backend)"
            )
        if not interface.providedBy(facet):
            raise ConfigError(f"feature {self.name}: {facet!r} does not provide {interface.__name__}")
        return facet

    def route(
        self,
        method: str,
        path: str,
        handler: Callable[[HttpCall], Awaitable[HttpAnswer | dict[str, Any]]],
        *,
        auth: str = "public",
        summary: str = "",
        max_body: int | None = None,
        raw: bool = False,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        query: tuple[Any, ...] = (),
        produces: str = "",
    ) -> None:
        """Serve ``method path`` over HTTP with ``async def handler(call: HttpCall)`` returning
        ``(status, json_body)``, the body (status 200) or an :class:`HttpReply`; path parameters
        as ``{name}`` or ``{name:int}`` (a positive integer).  ``max_body`` and ``raw`` are for
        uploads (:class:`Route`).  ``request``, ``response`` (JSON schemas, as built with
        :mod:`coffeechat.openapi`), ``query`` (its ``Query`` parameters) and ``produces`` describe
        the route in the served OpenAPI document."""
        if auth not in AUTH_KINDS:
            raise ConfigError(f"feature {self.name}: auth must be one of {AUTH_KINDS}, not {auth!r}")
        summary = summary or (handler.__doc__ or "").strip().split("\n")[0]
        route = Route(
            method.upper(), _segments(path), handler, auth, self.name, summary, max_body, raw,
            request, response, tuple(query), produces,
        )  # fmt: skip
        self._node.registry.add_route(route)

    def periodic(self, interval: float, fn: Callable[[], Any], *, now: bool = False) -> None:
        """Run ``fn()`` every ``interval`` seconds while the node runs (its failures are logged;
        storage being unavailable or closed is not a failure of the task: the store logs an outage
        once, and the next run tries again)."""

        def failed(failure: Any) -> None:
            if not failure.check(StorageUnavailable, StoreClosed):
                self.log.failure("periodic task {fn} failed", failure, fn=fn)

        def guarded() -> Any:
            return defer.maybeDeferred(fn).addErrback(failed)

        loop = task.LoopingCall(guarded)
        loop.clock = self._node.reactor

        def start() -> None:
            loop.start(interval, now=now)

        def stop() -> None:
            if loop.running:
                loop.stop()

        self._node.on_start(start)
        self._node.on_stop(stop, first=True)

    def on_start(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` once the node has opened storage, before it accepts anyone."""
        self._node.on_start(fn)

    def on_stop(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` (it may return a Deferred) when the node stops, after devices were told and
        before storage closes: flush what is pending."""
        self._node.on_stop(fn)

    def cluster_command(self, name: str, handler: Callable[[dict, str], None]) -> None:
        """Handle ``handler(data, from_node)`` when another node sends command ``name``."""
        self._node.registry.add_cluster_command(name, handler, self.name)

    def send_to(self, node: str, name: str, data: dict) -> None:
        """Send cluster command ``name`` to one other node (nothing without a cluster)."""
        cluster = self._node.cluster
        if cluster is not None:
            cluster.send(node, name, data)

    def broadcast(self, name: str, data: dict) -> None:
        """Send cluster command ``name`` to every other node (nothing when this node is alone)."""
        cluster = self._node.cluster
        if cluster is not None:
            cluster.broadcast(name, data)
