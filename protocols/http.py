"""The HTTP transport: the routes the node's features register (registration, login, the admin
API ...), the web client and its protocol table, and the WebSocket path.

Every API answer is JSON (``application/json; charset=utf-8``) carrying ``error_code`` and
``error_msg``; no API request ever gets an HTML page, not even a crash (that answers error_code 201
and is logged).  The only HTML is the web client's own page at ``/`` and the admin console's at
``/admin/`` (protocols/admin_console).

HTTP status codes:

- Under ``/user/`` and ``/api/`` every application-level answer is HTTP 200 and the outcome is in
  ``error_code`` (200, 9000, 9001, 2002, 2003, 10010, 201 ...), as the original server
  answered ``POST /user/register``; CIM clients read only the body.  The exception is a rate
  limit (registrations or failed logins per address, docs/limits.md): HTTP 429 with
  ``Retry-After``, error_code 10007, on every path.
- Other statuses than 200 and 429 mean the request never reached a handler: 404 unknown path, 405 wrong
  method, 413 body larger than ``http.max_request_bytes`` (1 MiB for requests bearing the admin
  token, so that a bulk account creation fits).
- The admin API (``/admin/``) is CoffeeChat's own, so it uses statuses as HTTP means them: 401
  wrong or missing token, 403 admin API disabled (``http.admin_token`` empty), 400 bad input,
  404 no such user, 409 name taken, 500 internal error; the JSON body is the same shape.

Route handlers (``ModuleAPI.route``) are coroutines taking an :class:`~coffeechat.modules.HttpCall`,
so that no feature needs twisted.web; ``render`` returns NOT_DONE_YET and the answer is written
when they finish, unless the client has gone away meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
from typing import Any

from twisted.internet import defer, interfaces
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from zope.interface import implementer

from coffeechat.addresses import TrustedProxies
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import StorageUnavailable
from coffeechat.modules import HttpCall, HttpReply, Route
from coffeechat.node import ChatNode
from coffeechat.schema.jsonform import web_table

from .admin_console import ConsolePage, console_files
from .webclient import SECURITY_HEADERS, web_resource
from .websocket import websocket_resource

log = Logger()

JSON_CONTENT_TYPE = b"application/json; charset=utf-8"
# Admin requests (valid token) may send this much, so 1000 accounts with nicks and passwords fit
# in one bulk request; everybody else is held to http.max_request_bytes.
ADMIN_MAX_REQUEST_BYTES = 1024 * 1024
_INTERNAL = {"error_code": int(ErrorCode.INTERNAL_ERROR), "error_msg": "internal error"}

Answer = tuple[int, dict[str, Any]]  # (HTTP status, JSON body)


class HttpError(Exception):
    """Refuses a request before (or instead of) a handler: carries its own HTTP status."""

    def __init__(self, status: int, code: ErrorCode, message: str, headers: dict[bytes, bytes] | None = None) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def ok(**fields: Any) -> dict[str, Any]:
    """A success body."""
    return {"error_code": int(ErrorCode.SUCCESS), "error_msg": "ok", **fields}


def write_json(request: IRequest, status: int, body: dict[str, Any]) -> None:
    """Write a whole JSON answer and finish the request."""
    data = json.dumps(body, separators=(",", ":")).encode()
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON_CONTENT_TYPE)
    request.setHeader(b"Content-Length", b"%d" % len(data))
    request.setHeader(b"Cache-Control", b"no-store")
    request.write(data)
    request.finish()


def bearer_token(request: IRequest) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    header = request.getHeader(b"Authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return token


def is_admin(request: IRequest, admin_token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <admin_token>`` (compared in constant time,
    as digests, so not even the token's length leaks)."""
    given = bearer_token(request)
    if not admin_token or given is None:
        return False
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(admin_token.encode()).digest())


_ADMIN_STATUS = {
    ErrorCode.USER_NOT_EXIST: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.USER_ALREADY_EXIST: 409,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
}


#: how much of a streamed file is read from its store at a time
STREAM_CHUNK = 256 * 1024


def write_reply(request: IRequest, reply: HttpReply) -> None:
    """Write an :class:`HttpReply`: its body, or its ``length`` bytes read chunk by chunk, each read
    only once the client has taken the previous one (a slow reader holds one chunk, not the file)."""
    request.setResponseCode(reply.status)
    for name, value in reply.headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    if reply.read is None or request.method == b"HEAD":
        if reply.read is None:
            request.setHeader(b"Content-Length", b"%d" % len(reply.body))
            request.write(reply.body)
        else:
            request.setHeader(b"Content-Length", b"%d" % reply.length)
        request.finish()
        return
    request.setHeader(b"Content-Length", b"%d" % reply.length)
    _BlobProducer(request, reply).start()


@implementer(interfaces.IPushProducer)
class _BlobProducer:
    """Streams an HttpReply's bytes into a request, pausing while the transport's buffer is full."""

    def __init__(self, request: IRequest, reply: HttpReply) -> None:
        self.request = request
        self.reply = reply
        self.offset = reply.offset
        self.remaining = reply.length
        self.paused = False
        self.stopped = False
        self.reading = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addErrback(lambda _: self.stopProducing())
        self._next()

    def _next(self) -> None:
        if self.stopped or self.paused or self.reading:
            return
        if self.remaining <= 0:
            self._finish()
            return
        self.reading = True
        d = self.reply.read(self.offset, min(STREAM_CHUNK, self.remaining))
        d.addCallbacks(self._got, self._failed)

    def _got(self, chunk: bytes) -> None:
        self.reading = False
        if self.stopped:
            return
        if not chunk:  # the blob is shorter than it was said to be: cut the answer short
            self._failed(Failure(EOFError(f"blob ended {self.remaining} bytes early")))
            return
        self.offset += len(chunk)
        self.remaining -= len(chunk)
        self.request.write(chunk)
        self._next()

    def _failed(self, failure: Failure) -> None:
        self.reading = False
        if self.stopped:
            return
        self.stopped = True
        log.warn("streaming {uri} failed: {error}", uri=self.request.uri, error=failure.getErrorMessage())
        self.request.unregisterProducer()
        transport = getattr(self.request.channel, "transport", None)
        if transport is not None:
            transport.abortConnection()  # the headers are out: only closing says it is incomplete

    def _finish(self) -> None:
        self.stopped = True
        self.request.unregisterProducer()
        if not self.request.finished:
            self.request.finish()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._next()

    def stopProducing(self) -> None:
        self.stopped = True


class ApiResource(Resource):
    """Every API path: the routes the node's features registered (``ModuleAPI.route``), matched
    by method and path, answered JSON.  Under ``/admin/`` the admin token is checked before
    anything else, so unknown admin paths reveal nothing without it."""

    isLeaf = True

    def __init__(self, node: ChatNode) -> None:
        super().__init__()
        self.node = node
        self.routes = node.registry.routes

    def render(self, request: IRequest) -> Any:
        method = request.method.decode("ascii", "replace").upper()
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        parts = [p.decode("utf-8", "replace") for p in request.prepath + request.postpath]
        admin = bool(parts) and parts[0] == "admin"
        d = defer.ensureDeferred(self._answer(request, method, parts, admin))

        def write(answer: Answer | HttpReply) -> None:
            if gone or request.finished:
                return
            if isinstance(answer, HttpReply):
                write_reply(request, answer)
            else:
                write_json(request, *answer)

        def failed(failure: Failure) -> None:
            if failure.check(StorageUnavailable):  # logged once per outage, by the store
                if not gone and not request.finished:
                    code = int(ErrorCode.STORAGE_UNAVAILABLE)
                    write_json(request, 503 if admin else 200, {"error_code": code, "error_msg": "try again"})
                return
            log.failure("{method} {uri} failed", failure, method=method, uri=request.uri)
            if not gone and not request.finished:
                write_json(request, 500 if admin else 200, dict(_INTERNAL))

        d.addCallbacks(write, failed)
        d.addErrback(lambda f: log.failure("could not write the answer to {uri}", f, uri=request.uri))
        return server.NOT_DONE_YET

    async def _answer(self, request: IRequest, method: str, parts: list[str], admin: bool) -> Answer | HttpReply:
        try:
            if admin:
                self._authorize_admin(request)
            route, params = self._route(method, parts)
            raw = bearer_token(request)
            try:
                bearer = raw.decode("ascii") if raw is not None else ""
            except UnicodeDecodeError:
                bearer = ""
            call = HttpCall(
                method=method,
                params=params,
                query={
                    k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
                    for k, vs in request.args.items()
                },
                body=request.content.read() if request.content is not None and not route.raw else b"",
                bearer=bearer,
                peer=getattr(request.getClientAddress(), "host", "") or "",
                headers={
                    k.decode("latin-1").lower(): v[-1].decode("latin-1")
                    for k, v in request.requestHeaders.getAllRawHeaders()
                },
                content=request.content if route.raw else None,
            )
            answer = await route.handler(call)
        except HttpError as e:
            for name, value in e.headers.items():
                request.setHeader(name, value)
            return e.status, {"error_code": int(e.code), "error_msg": e.message}
        except ChatError as e:
            status = _ADMIN_STATUS.get(e.code, 400) if admin else 200
            if e.code == ErrorCode.RATE_LIMITED:
                status = 429
                retry_after = getattr(e, "retry_after", 1.0)
                request.setHeader(b"Retry-After", b"%d" % max(1, math.ceil(retry_after)))
            return status, {"error_code": int(e.code), "error_msg": e.message}
        if isinstance(answer, tuple | HttpReply):
            return answer
        return 200, ok(**answer)

    def _route(self, method: str, parts: list[str]) -> tuple[Route, dict[str, Any]]:
        allowed = []
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if not allowed:
            raise HttpError(404, ErrorCode.NOT_FOUND, "no such resource")
        raise HttpError(405, ErrorCode.NOT_SUPPORTED, "method not allowed", {b"Allow": ", ".join(allowed).encode()})

    def _authorize_admin(self, request: IRequest) -> None:
        expected = self.node.config.http.admin_token
        if not expected:
            raise HttpError(403, ErrorCode.FORBIDDEN, "admin API disabled: set http.admin_token")
        if not is_admin(request, expected):
            raise HttpError(
                401,
                ErrorCode.FORBIDDEN,
                "a valid admin token is required",
                {b"WWW-Authenticate": b'Bearer realm="coffeechat-admin"'},
            )


class ProtocolTable(Resource):
    """``/app/protocol-table.js``: the protocol table of cim.proto as an ES module, so that the web
    client reads the command ids, answers, pushes and enum values from the schema."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        table = web_table()
        lines = ["// Generated by the server from cim.proto (coffeechat/schema/jsonform.py): do not edit."]
        lines += [
            f"export const {name} = Object.freeze({json.dumps(value, sort_keys=True)});"
            for name, value in table.items()
        ]
        self.body = ("\n".join(lines) + "\n").encode()

    def render_GET(self, request: IRequest) -> bytes:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", b"text/javascript; charset=utf-8")
        return self.body


class AdminRoot(Resource):
    """``/admin/`` the admin console's page, ``/admin/console/`` its files (protocols/admin_console;
    no token needed: they hold no data), and every other ``/admin/...`` path the admin API."""

    def __init__(self, api: ApiResource) -> None:
        super().__init__()
        self.api = api
        self.page = ConsolePage()
        self.files = console_files(self.page)

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        if path == b"" and not request.postpath:
            return self.page
        if path == b"console":
            return self.files
        return self.api

    def render(self, request: IRequest) -> Any:
        if request.method in (b"GET", b"HEAD"):  # "/admin": the console is at "/admin/"
            request.setResponseCode(301)
            request.setHeader(b"Location", b"/admin/")
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"the admin console is at /admin/\n"
        return self.api.render(request)


class Root(Resource):
    """``/`` the web client's page, ``/app/`` its files, the WebSocket path, and the API."""

    def __init__(self, node: ChatNode) -> None:
        super().__init__()
        self.api = ApiResource(node)
        self.page = web_resource()
        app = web_resource()
        app.putChild(b"protocol-table.js", ProtocolTable())
        self.putChild(b"", self.page)
        self.putChild(b"app", app)
        self.putChild(b"admin", AdminRoot(self.api))
        path = node.config.websocket.http_path
        if path:
            self.putChild(path.strip("/").encode(), websocket_resource(node))

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return self.api  # a leaf: it reads the whole path


class ApiRequest(server.Request):
    """A request that keeps at most ``http.max_request_bytes`` of body (more for the admin) and never
    answers HTML.

    A larger body is read and thrown away (so the connection stays usable) and answered 413.
    """

    body_too_large = False
    _body_bytes = 0
    _max_body = 0
    _client: Any = None

    def getClientAddress(self) -> Any:
        """The client: the socket's peer, or, when that is one of ``http.trusted_proxies``, the
        address its ``X-Forwarded-For`` names (coffeechat.addresses.TrustedProxies)."""
        if self._client is None:
            peer = super().getClientAddress()
            self._client = peer
            proxies = getattr(getattr(self.channel, "site", None), "proxies", None)  # a ChatSite's
            host = getattr(peer, "host", None)
            if proxies and proxies.trusts(host):
                raw = self.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
                client = proxies.client(host, [value.decode("latin-1") for value in raw])
                if client != host:
                    self._client = (IPv6Address if ":" in client else IPv4Address)("TCP", client, 0)
        return self._client

    def gotLength(self, length: int | None) -> None:
        # The headers are in, the body is not: decide here how much of it to keep.
        site = self.channel.site
        http_config = site.node.config.http
        self._max_body = http_config.max_request_bytes
        if is_admin(self, http_config.admin_token):
            self._max_body = max(self._max_body, ADMIN_MAX_REQUEST_BYTES)
        route_limit = self._route_limit(site.node)
        if route_limit is not None:
            self._max_body = route_limit
            self.channel._upload_body = True
        if length is not None and length > self._max_body:
            self.body_too_large = True
            self.content = io.BytesIO()
        else:
            super().gotLength(length)

    def _route_limit(self, node: ChatNode) -> int | None:
        """The ``max_body`` of the route this request is for (an upload route takes more than
        ``http.max_request_bytes``): its method and path are known once the headers are in."""
        method, path = getattr(self.channel, "_command", None), getattr(self.channel, "_path", None)
        if not isinstance(method, bytes) or not isinstance(path, bytes):
            return None
        parts = [p.decode("utf-8", "replace") for p in path.split(b"?", 1)[0].strip(b"/").split(b"/")]
        wanted = method.decode("ascii", "replace").upper()
        for route in node.registry.routes:
            if route.max_body is not None and route.method == wanted and route.match(parts) is not None:
                return route.max_body
        return None

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        self._body_bytes += len(data)
        if self._body_bytes > self._max_body:  # chunked bodies announce no length
            self.body_too_large = True
            self.content = io.BytesIO()
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if self.body_too_large:
            self.site = self.channel.site
            limit = self._max_body
            write_json(
                self,
                413,
                {"error_code": int(ErrorCode.MSG_TOO_LARGE), "error_msg": f"request body larger than {limit} bytes"},
            )
            return
        super().process()

    def processingFailed(self, reason: Failure) -> None:
        log.failure("{method} {uri} failed", reason, method=self.method.decode("ascii", "replace"), uri=self.uri)
        if self.finished or self._disconnected:
            return
        if self.startedWriting:
            self.finish()
        else:
            write_json(self, 500, dict(_INTERNAL))


_IDLE, _HEADERS, _BODY = "idle", "headers", "body"
_STATUS_TEXT = {408: b"Request Timeout", 503: b"Service Unavailable"}


class ChatChannel(http.HTTPChannel):
    """An HTTP connection whose deadlines further bytes do not move, counted per address.

    twisted.web restarts one time-out on every byte it reads, so a client sending a byte every
    few seconds holds a connection forever.  Here each phase of a request has its own deadline,
    set when the phase begins: ``http.idle_timeout`` while no request is under way,
    ``http.header_timeout`` from a request's first byte to the end of its headers,
    ``http.body_timeout`` from there to the end of its body (while a request is being answered
    none runs, as in twisted.web).  A connection over ``http.max_connections_per_address`` is
    answered 503 and closed; every close is cut off after ``limits.close_timeout``."""

    _phase = _IDLE
    _upload_body = False
    _address: str | None = None
    _counted = False
    _refused = False
    _open = False  # counted in node.connections["http"]

    def connectionMade(self) -> None:
        super().connectionMade()
        node = self.site.node
        node.connections["http"] += 1
        self._open = True
        self._http = node.config.http
        self.abortTimeout = node.config.limits.close_timeout
        addresses = node.addresses
        host = getattr(self.transport.getPeer(), "host", None)
        # A trusted proxy carries many clients' requests: its connections are not capped.
        key = None if self.site.proxies.trusts(host) else addresses.key(host)
        refused = addresses.admit_http(key)
        if refused is not None:
            self._refused = True
            self.setTimeout(None)
            self._answer_and_close(503, ErrorCode.TOO_MANY_CONNECTIONS, refused)
            return
        self._address, self._counted = key, True
        self.setTimeout(self._http.idle_timeout)

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._phase == _IDLE and not self._handlingRequest:
            self._phase = _HEADERS
            self.setTimeout(self._http.header_timeout)
        LineReceiver.dataReceived(self, data)  # not HTTPChannel's, which restarts the time-out

    def allHeadersReceived(self) -> None:
        self._upload_body = False
        super().allHeadersReceived()  # the request's gotLength says whether it is an upload
        self._phase = _BODY
        self.setTimeout(
            self._http.upload_timeout if self._upload_body else self._http.body_timeout
        )  # allContentReceived stops it once the body is in

    def requestDone(self, request: http.Request) -> None:
        self._phase = _IDLE  # first: a pipelined request (handled within) starts its header deadline
        super().requestDone(request)
        if self._phase == _IDLE and self.persistent and not self._handlingRequest and self.transport is not None:
            self.setTimeout(self._http.idle_timeout)

    def timeoutConnection(self) -> None:
        if self._phase != _IDLE and not self._handlingRequest and self.transport is not None:
            what = "headers" if self._phase == _HEADERS else "body"
            limit = self._http.header_timeout if self._phase == _HEADERS else self._http.body_timeout
            self._answer(408, ErrorCode.INVALID_ARGUMENT, f"the request {what} did not arrive within {limit:g} s")
        super().timeoutConnection()

    def loseConnection(self) -> None:
        """Close after what is written, within ``limits.close_timeout`` (then abort)."""
        if self._abortingCall is None and self.abortTimeout is not None and self.transport is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        super().loseConnection()

    def handed_over(self) -> None:
        """The WebSocket path takes the connection over (it is counted as a CIM connection now,
        and this channel never hears of it again)."""
        self.setTimeout(None)
        self._release()

    def connectionLost(self, reason: Failure) -> None:
        self._release()
        super().connectionLost(reason)

    def _release(self) -> None:
        if self._open:
            self._open = False
            self.site.node.connections["http"] -= 1
        if self._counted:
            self._counted = False
            self.site.node.addresses.release_http(self._address)

    def _answer(self, status: int, code: ErrorCode, message: str) -> None:
        body = json.dumps({"error_code": int(code), "error_msg": message}, separators=(",", ":")).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
            b"Connection: close\r\n\r\n%s" % (status, _STATUS_TEXT[status], JSON_CONTENT_TYPE, len(body), body)
        )

    def _answer_and_close(self, status: int, code: ErrorCode, message: str) -> None:
        self._answer(status, code, message)
        self.loseConnection()


def _channel(site: server.Site) -> Any:
    """The site's protocol: twisted.web's HTTP/1.1-or-HTTP/2 wrapper around a :class:`ChatChannel`."""
    return http._GenericHTTPChannelProtocol(ChatChannel())


class ChatSite(server.Site):
    """The site; its requests read their limits from ``node.config.http``."""

    requestFactory = ApiRequest
    displayTracebacks = False
    protocol = _channel

    def __init__(self, resource: Resource, node: ChatNode, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.node = node
        self.proxies = TrustedProxies(node.config.http.trusted_proxies)


def create_site(node: ChatNode) -> server.Site:
    """The HTTP transport of a node (``http`` in :mod:`coffeechat.plugins`)."""
    return ChatSite(Root(node), node, timeout=node.config.http.idle_timeout)
