"""The HTTP transport: registration, login and logout, a health check and an admin API.

Every API answer is JSON (``application/json; charset=utf-8``) carrying ``error_code`` and
``error_msg``; no API request ever gets an HTML page, not even a crash (that answers error_code 201
and is logged).  The only HTML is the web client's own page at ``/``.

HTTP status codes:

- Under ``/user/`` and ``/api/`` every application-level answer is HTTP 200 and the outcome is in
  ``error_code`` (200, 9000, 9001, 2002, 2003, 10007, 10010, 201 ...), as the original server
  answered ``POST /user/register``; CIM clients read only the body.
- Statuses other than 200 mean the request never reached a handler: 404 unknown path, 405 wrong
  method, 413 body larger than ``http.max_request_bytes`` (1 MiB for requests bearing the admin
  token, so that a bulk account creation fits).
- The admin API (``/admin/``) is CoffeeChat's own, so it uses statuses as HTTP means them: 401
  wrong or missing token, 403 admin API disabled (``http.admin_token`` empty), 400 bad input,
  404 no such user, 409 name taken, 500 internal error; the JSON body is the same shape.

Handlers are coroutines run with ``defer.ensureDeferred``; ``render`` returns NOT_DONE_YET and the
answer is written when they finish, unless the client has gone away meanwhile.

"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from coffeechat.core import ChatCore
from coffeechat.errors import ChatError, ErrorCode

from .webclient import web_resource
from .websocket import websocket_resource

log = Logger()

JSON_CONTENT_TYPE = b"application/json; charset=utf-8"
MAX_BULK_USERS = 1000
# Admin requests (valid token) may send this much, so 1000 accounts with nicks and passwords fit
# in one bulk request; everybody else is held to http.max_request_bytes.
ADMIN_MAX_REQUEST_BYTES = 1024 * 1024
LIST_PAGE_DEFAULT = 100
IDLE_TIMEOUT = 120  # seconds a keep-alive connection may sit idle
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_INTERNAL = {"error_code": int(ErrorCode.INTERNAL_ERROR), "error_msg": "internal error"}

Answer = tuple[int, dict[str, Any]]  # (HTTP status, JSON body)
Handler = Callable[[IRequest], Awaitable[Answer]]


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


def json_body(request: IRequest) -> dict[str, Any]:
    """The request body as a JSON object, or ChatError 9001."""
    raw = request.content.read() if request.content is not None else b""
    try:
        body = json.loads(raw)
        # Lone surrogates ("\\ud800") parse but cannot be stored or echoed: refuse them here.
        json.dumps(body, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "request body must be a JSON object")
    return body


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


def query_int(request: IRequest, name: bytes, default: int, minimum: int) -> int:
    """An integer query argument; anything else is ChatError 9001."""
    values = request.args.get(name)
    if not values:
        return default
    raw = values[-1]
    if not raw.isdigit() or len(raw) > 18 or int(raw) < minimum:
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"{name.decode()} must be an integer >= {minimum}")
    return int(raw)


class JsonResource(Resource):
    """A resource answering JSON from ``async def on_<METHOD>(request) -> (status, body)``.

    Subclasses choose the HTTP status of refusals (:meth:`error_status`) and may check the request
    first (:meth:`authorize`).  A resource without any ``on_`` method is a directory: 404.
    """

    internal_status = 200

    def __init__(self, core: ChatCore) -> None:
        super().__init__()
        self.core = core

    def error_status(self, code: ErrorCode) -> int:
        return 200

    def authorize(self, request: IRequest) -> None:
        """Raise HttpError to refuse the request before it is routed to a handler."""

    def missing(self) -> Resource:
        """What an unknown child path gets."""
        return NotFound(self.core)

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return self.missing()

    def render(self, request: IRequest) -> Any:
        method = request.method.decode("ascii", "replace").upper()
        handler = getattr(self, f"on_{method}", None)
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        d = defer.ensureDeferred(self._answer(request, handler))

        def write(answer: Answer) -> None:
            if not gone and not request.finished:
                write_json(request, *answer)

        def failed(failure: Failure) -> None:
            log.failure("{method} {uri} failed", failure, method=method, uri=request.uri)
            if not gone and not request.finished:
                write_json(request, self.internal_status, dict(_INTERNAL))

        d.addCallbacks(write, failed)
        d.addErrback(lambda f: log.failure("could not write the answer to {uri}", f, uri=request.uri))
        return server.NOT_DONE_YET

    async def _answer(self, request: IRequest, handler: Handler | None) -> Answer:
        try:
            self.authorize(request)
            if handler is None:
                allowed = [m for m in _METHODS if hasattr(self, f"on_{m}")]
                if not allowed:
                    raise HttpError(404, ErrorCode.NOT_FOUND, "no such resource")
                raise HttpError(
                    405, ErrorCode.NOT_SUPPORTED, "method not allowed", {b"Allow": ", ".join(allowed).encode()}
                )
            return await handler(request)
        except HttpError as e:
            for name, value in e.headers.items():
                request.setHeader(name, value)
            return e.status, {"error_code": int(e.code), "error_msg": e.message}
        except ChatError as e:
            return self.error_status(e.code), {"error_code": int(e.code), "error_msg": e.message}


class NotFound(JsonResource):
    """404 for any path and method."""

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return self


# ---- public API: /user/, /api/, /health --------------------------------------------------------


class Register(JsonResource):
    """``POST /user/register``, as the original: {"userName", "userNickName", "userPwd"}."""

    async def on_POST(self, request: IRequest) -> Answer:
        body = json_body(request)
        user = await self.core.accounts.register(body.get("userName"), body.get("userNickName"), body.get("userPwd"))
        return 200, ok(user_id=user.user_id)


class Login(JsonResource):
    """``POST /api/login`` {"userName", "userPwd"}: a token for the CIM token login (or this API)."""

    async def on_POST(self, request: IRequest) -> Answer:
        body = json_body(request)
        accounts = self.core.accounts
        user = await accounts.login_password(body.get("userName"), body.get("userPwd"))
        token, expires_at = await accounts.issue_token(user.user_id, "http login")
        return 200, ok(user_id=user.user_id, nick_name=user.nick_name, token=token, expires_at=expires_at)


class Logout(JsonResource):
    """``POST /api/logout`` with ``Authorization: Bearer <token>``: revokes that token."""

    async def on_POST(self, request: IRequest) -> Answer:
        raw = bearer_token(request)
        try:
            token = raw.decode("ascii") if raw is not None else ""
        except UnicodeDecodeError:
            token = ""
        accounts = self.core.accounts
        try:
            # The store revokes known tokens whatever their state, so check first: a token
            # already revoked or expired answers 2002 like any invalid one.
            await accounts.login_token(0, token)
        except ChatError as e:
            if e.code != ErrorCode.USER_DISABLED:
                raise
        await accounts.revoke_token(token)
        return 200, ok()


class Health(JsonResource):
    """``GET /health`` for load balancers and monitoring."""

    async def on_GET(self, request: IRequest) -> Answer:
        router = self.core.router
        counts = {"node": self.core.node, "online_users": router.user_count, "devices": router.device_count}
        if not self.core.running:
            return 503, {"status": "stopping", **counts}
        return 200, {"status": "ok", **counts}


# ---- admin API: /admin/ -----------------------------------------------------------------------

_ADMIN_STATUS = {
    ErrorCode.USER_NOT_EXIST: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.USER_ALREADY_EXIST: 409,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
}


class AdminResource(JsonResource):
    """Answers only to ``Authorization: Bearer <http.admin_token>``; the API is off without one."""

    internal_status = 500

    def error_status(self, code: ErrorCode) -> int:
        return _ADMIN_STATUS.get(code, 400)

    def missing(self) -> Resource:
        return AdminNotFound(self.core)

    def authorize(self, request: IRequest) -> None:
        expected = self.core.config.http.admin_token
        if not expected:
            raise HttpError(403, ErrorCode.FORBIDDEN, "admin API disabled: set http.admin_token")
        if not is_admin(request, expected):
            raise HttpError(
                401,
                ErrorCode.FORBIDDEN,
                "a valid admin token is required",
                {b"WWW-Authenticate": b'Bearer realm="coffeechat-admin"'},
            )


class AdminNotFound(AdminResource):
    """404 under /admin/, after the token check (unknown paths reveal nothing without it)."""

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return self


class AdminDirectory(AdminResource):
    """``/admin/`` itself."""


def _user_entry(user: Any) -> dict[str, Any]:
    return {"user_id": user.user_id, "userName": user.name, "nickName": user.nick_name, "disabled": user.disabled}


class AdminUsers(AdminResource):
    """``GET /admin/users?after=&limit=`` lists accounts; ``POST /admin/users`` creates many at once."""

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        if path.isdigit() and len(path) <= 18 and int(path) > 0:
            return AdminUser(self.core, int(path))
        return self.missing()

    async def on_GET(self, request: IRequest) -> Answer:
        after = query_int(request, b"after", 0, minimum=0)
        limit = query_int(request, b"limit", LIST_PAGE_DEFAULT, minimum=1)
        limit = min(limit, self.core.config.limits.users_listed_max)
        users = await self.core.accounts.list_users(limit, after, include_disabled=True)
        return 200, ok(users=[_user_entry(u) for u in users])

    async def on_POST(self, request: IRequest) -> Answer:
        body = json_body(request)
        specs = body.get("users")
        issue_tokens = body.get("issueTokens", False)
        if not isinstance(specs, list):
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, '"users" must be a list')
        if len(specs) > MAX_BULK_USERS:
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"at most {MAX_BULK_USERS} users per request")
        if not isinstance(issue_tokens, bool):
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, '"issueTokens" must be true or false')
        # All at once: the storage writer commits whatever is queued together, so a thousand
        # accounts cost a few transactions, not a thousand.
        results = await defer.gatherResults(
            [defer.ensureDeferred(self._create_one(spec, issue_tokens)) for spec in specs], consumeErrors=True
        )
        created = sum(1 for r in results if "user_id" in r and "error_code" not in r)
        log.info("admin: created {created} of {asked} users", created=created, asked=len(specs))
        return 200, ok(users=results)

    async def _create_one(self, spec: Any, issue_token: bool) -> dict[str, Any]:
        """One account of a bulk request: its entry, or its own error (never raises)."""
        name = spec.get("userName") if isinstance(spec, dict) else None
        entry: dict[str, Any] = {"userName": name}
        try:
            if not isinstance(spec, dict):
                raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "each user must be a JSON object")
            accounts = self.core.accounts
            user = await accounts.create_user(name, spec.get("userNickName"), spec.get("userPwd"))
            entry = {"user_id": user.user_id, "userName": user.name}
            if issue_token:
                entry["token"], entry["expires_at"] = await accounts.issue_token(user.user_id, "admin")
            return entry
        except ChatError as e:
            return {**entry, "error_code": int(e.code), "error_msg": e.message}
        except Exception:
            log.failure("admin: creating user {name!r} failed", name=name)
            return {**entry, **_INTERNAL}


class AdminUser(AdminResource):
    """``/admin/users/<id>/``: the actions below it."""

    def __init__(self, core: ChatCore, user_id: int) -> None:
        super().__init__(core)
        self.user_id = user_id

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        action = getattr(self, f"do_{path.decode('ascii', 'replace')}", None) if path.isalpha() else None
        return AdminUserAction(self.core, action) if action is not None else self.missing()

    async def do_disable(self, request: IRequest) -> Answer:
        """Disable the account, revoke its tokens and disconnect its devices now."""
        uid = self.user_id
        await self.core.accounts.set_disabled(uid, True)
        revoked = await self.core.accounts.revoke_all_tokens(uid)
        disconnected = self.core.disconnect_user(uid, ErrorCode.USER_DISABLED, "account disabled")
        log.info("admin: disabled user {uid} ({n} devices disconnected here)", uid=uid, n=disconnected)
        return 200, ok(user_id=uid, disabled=True, revoked_tokens=revoked, disconnected=disconnected)

    async def do_enable(self, request: IRequest) -> Answer:
        await self.core.accounts.set_disabled(self.user_id, False)
        log.info("admin: enabled user {uid}", uid=self.user_id)
        return 200, ok(user_id=self.user_id, disabled=False)

    async def do_password(self, request: IRequest) -> Answer:
        """Reset the password ({"userPwd": 32 hex}); every token of the user is revoked and its
        devices are disconnected."""
        body = json_body(request)
        await self.core.accounts.set_password(self.user_id, body.get("userPwd"))
        # Whoever held the old password must not stay connected on it.
        devices = self.core.router.devices_of(self.user_id)
        for device in devices:
            device.disconnect(ErrorCode.SESSION_REPLACED, "password changed")
        log.info("admin: reset the password of user {uid}", uid=self.user_id)
        return 200, ok(user_id=self.user_id, disconnected=len(devices))

    async def do_tokens(self, request: IRequest) -> Answer:
        """Issue a login token for the user."""
        if not await self.core.users.exists(self.user_id):
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        token, expires_at = await self.core.accounts.issue_token(self.user_id, "admin")
        return 200, ok(user_id=self.user_id, token=token, expires_at=expires_at)


class AdminUserAction(AdminResource):
    """``POST /admin/users/<id>/<action>``."""

    def __init__(self, core: ChatCore, action: Handler) -> None:
        super().__init__(core)
        self.on_POST = action


class AdminStats(AdminResource):
    """``GET /admin/stats``: what this node is serving now."""

    async def on_GET(self, request: IRequest) -> Answer:
        router = self.core.router
        return 200, ok(online_users=router.user_count, devices=router.device_count)


# ---- the site --------------------------------------------------------------------------------


class ApiRequest(server.Request):
    """A request that keeps at most ``http.max_request_bytes`` of body (more for the admin) and never
    answers HTML.

    A larger body is read and thrown away (so the connection stays usable) and answered 413.
    """

    body_too_large = False
    _body_bytes = 0
    _max_body = 0

    def gotLength(self, length: int | None) -> None:
        # The headers are in, the body is not: decide here how much of it to keep.
        http_config = self.channel.site.core.config.http
        self._max_body = http_config.max_request_bytes
        if is_admin(self, http_config.admin_token):
            self._max_body = max(self._max_body, ADMIN_MAX_REQUEST_BYTES)
        if length is not None and length > self._max_body:
            self.body_too_large = True
            self.content = io.BytesIO()
        else:
            super().gotLength(length)

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


class ChatSite(server.Site):
    """The site; its requests read their limits from ``core.config.http``."""

    requestFactory = ApiRequest
    displayTracebacks = False

    def __init__(self, resource: Resource, core: ChatCore, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.core = core


def create_site(core: ChatCore) -> server.Site:
    """The HTTP API of ``core`` as a Site (the ``http`` transport of :mod:`coffeechat.plugins`)."""
    root = JsonResource(core)
    user = JsonResource(core)
    user.putChild(b"register", Register(core))
    root.putChild(b"user", user)
    api = JsonResource(core)
    api.putChild(b"login", Login(core))
    api.putChild(b"logout", Logout(core))
    root.putChild(b"api", api)
    root.putChild(b"health", Health(core))
    admin = AdminDirectory(core)
    admin.putChild(b"users", AdminUsers(core))
    admin.putChild(b"stats", AdminStats(core))
    root.putChild(b"admin", admin)
    root.putChild(b"", web_resource())  # the web client (docs/webclient.md): its page at /
    root.putChild(b"app", web_resource())  # and its scripts, styles and icon under /app/
    if core.config.websocket.http_path:
        root.putChild(core.config.websocket.http_path.strip("/").encode(), websocket_resource(core))
    return ChatSite(root, core, timeout=IDLE_TIMEOUT)
