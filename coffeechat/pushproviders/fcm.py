"""FCM provider: Firebase Cloud Messaging's HTTP v1 API with a service account's OAuth2 token.

``POST {endpoint}/v1/projects/{project_id}/messages:send`` with ``Authorization: Bearer <access
token>``.  The access token comes from Google's OAuth2 token endpoint (the service account file's
``token_uri``) in exchange for an RS256 JWT signed with the account's private key (``iss`` =
client_email, ``scope`` = firebase.messaging, ``aud`` = token_uri, ``exp`` = ``iat`` + 1 h).  It
lives an hour, so it is cached and renewed ``refresh_margin`` seconds before it expires, one
exchange at a time (sends that need it meanwhile wait for that exchange), and renewed once at
once when FCM answers 401.

Outbound HTTP is treq on the reactor (FCM speaks HTTP/1.1, unlike APNs): nothing blocks.
``max_in_flight`` requests run at once; ``max_pending`` bounds those plus the ones waiting for a
slot, so that a slow FCM costs bounded memory (beyond it a send is answered "busy", retried).

Dead tokens: 404 / ``UNREGISTERED``, and a 400 ``INVALID_ARGUMENT`` whose field violation is
``message.token``.  Any other 400 (the payload) is permanent and keeps the token; so do 403
``SENDER_ID_MISMATCH`` and 401 ``THIRD_PARTY_AUTH_ERROR``, so that a wrong ``project_id`` or APNs
key cannot wipe every registration.  429 and 5xx are retried (after Retry-After).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from coffeechat.pushproviders import IPushProvider, Notification, PushOutcome, PushTarget
from coffeechat.pushproviders._http import check_url, http_client
from coffeechat.pushproviders.payloads import dumps, fit_body, parse_retry_after

log = Logger()

ENDPOINT = "https://fcm.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PAYLOAD_MAX = 4096  # bytes: FCM's limit for a message's notification and data
COLLAPSE_ID_MAX = 64  # bytes, APNs' limit for apns-collapse-id (FCM passes it on)
MAX_ANSWER = 64 * 1024  # bytes of an answer read (the rest is drained and dropped)
EXCHANGE_BACKOFF = 5.0  # seconds after a failed token exchange before the next one
#: FCM registration tokens: base64url-ish with colons (about 160 characters today)
_TOKEN = re.compile(r"^[A-Za-z0-9_:\-.]{8,4096}$")
#: data keys FCM refuses (and its reserved prefixes)
_RESERVED = frozenset({"from", "notification", "message_type"})
_RETRY = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class FCMConfig:
    """The ``[push.fcm]`` table."""

    service_account_file: str
    project_id: str = ""  # default: the service account file's
    endpoint: str = ENDPOINT
    token_uri: str = ""  # default: the service account file's (Google's token endpoint)
    timeout: float = 10.0
    max_in_flight: int = 100  # concurrent requests to FCM
    max_pending: int = 5000  # in flight plus waiting for a slot; beyond, sends are "busy"
    refresh_margin: float = 300.0  # seconds before its expiry an access token is renewed
    sound: str = "default"
    allow_http: bool = False  # http:// endpoint and token_uri: tests only

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> FCMConfig:
        unknown = sorted(set(table) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"[push.fcm]: unknown setting(s) {', '.join(unknown)}")
        if not table.get("service_account_file"):
            raise ValueError("[push.fcm]: service_account_file must be set")
        config = cls(**table)
        if config.max_in_flight < 1 or config.max_pending < 1:
            raise ValueError("[push.fcm]: max_in_flight and max_pending must be positive")
        if config.timeout <= 0 or not 0 <= config.refresh_margin < 1800:
            raise ValueError("[push.fcm]: timeout must be positive, refresh_margin between 0 and 1800")
        return config


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What the provider needs of the JSON file Google gives for a service account."""

    client_email: str
    private_key: Any  # an RSAPrivateKey
    private_key_id: str
    token_uri: str
    project_id: str

    @classmethod
    def from_json(cls, raw: bytes) -> ServiceAccount:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            info = json.loads(raw)
        except ValueError as e:
            raise ValueError(f"[push.fcm]: the service account file is not JSON ({e})") from None
        if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
            raise ValueError("[push.fcm]: the file is not a service account key (type service_account)")
        missing = [k for k in ("client_email", "private_key") if not isinstance(info.get(k), str) or not info[k]]
        if missing:
            raise ValueError(f"[push.fcm]: the service account file has no {', '.join(missing)}")
        try:
            key = load_pem_private_key(info["private_key"].encode(), password=None)
        except ValueError as e:
            raise ValueError(f"[push.fcm]: the service account's private_key cannot be read ({e})") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("[push.fcm]: the service account's private_key is not an RSA key")
        return cls(
            client_email=info["client_email"],
            private_key=key,
            private_key_id=str(info.get("private_key_id", "")),
            token_uri=str(info.get("token_uri") or TOKEN_URI),
            project_id=str(info.get("project_id", "")),
        )


class TokenError(Exception):
    """The OAuth2 exchange failed (network, or refused): the send is retried later."""


class AccessToken:
    """The OAuth2 access token: exchanged for a signed JWT, reused until ``margin`` seconds before
    it expires, one exchange in flight at a time."""

    def __init__(self, account: ServiceAccount, token_uri: str, client: Any, clock: Any, config: FCMConfig) -> None:
        self._account = account
        self._token_uri = token_uri
        self._client = client
        self._clock = clock
        self._timeout = config.timeout
        self._margin = config.refresh_margin
        self._token: str | None = None
        self._expires = 0.0
        self._failed_until = 0.0
        self._failure = ""
        self._waiting: list[defer.Deferred] | None = None  # not None while an exchange runs
        self.exchanges = 0  # how many exchanges were made: caching is measurable

    async def get(self) -> str:
        """A valid access token (the cached one, or a new one); raises :class:`TokenError`."""
        now = self._clock.seconds()
        if self._token is not None and now < self._expires:
            return self._token
        if self._waiting is not None:  # someone is already exchanging: wait for that one
            waiter: defer.Deferred = defer.Deferred()
            self._waiting.append(waiter)
            return await waiter
        if now < self._failed_until:
            raise TokenError(self._failure)
        self._waiting = []
        try:
            token = await self._exchange()
        except TokenError as error:
            self._failure = str(error)
            self._failed_until = self._clock.seconds() + EXCHANGE_BACKOFF
            waiting, self._waiting = self._waiting, None
            for waiter in waiting:
                waiter.errback(TokenError(str(error)))
            raise
        waiting, self._waiting = self._waiting, None
        for waiter in waiting:
            waiter.callback(token)
        return token

    def expire(self, token: str) -> None:
        """FCM refused ``token`` (401): the next :meth:`get` exchanges anew, unless another send
        already did."""
        if self._token == token:
            self._token = None

    def assertion(self) -> str:
        """The RS256 JWT the token endpoint exchanges."""
        import jwt

        issued = int(self._clock.seconds())
        claims = {"iss": self._account.client_email, "scope": SCOPE, "aud": self._token_uri,
                  "iat": issued, "exp": issued + 3600}  # fmt: skip
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        return jwt.encode(claims, self._account.private_key, algorithm="RS256", headers=headers)

    async def _exchange(self) -> str:
        form = urllib.parse.urlencode({"grant_type": GRANT_TYPE, "assertion": self.assertion()}).encode()
        self.exchanges += 1
        started = self._clock.seconds()
        try:
            response = await self._client.post(
                self._token_uri,
                data=form,
                headers={"Content-Type": ["application/x-www-form-urlencoded"]},
                timeout=self._timeout,
                persistent=True,
            )
            text = await read_bounded(response)
        except Exception as e:
            raise TokenError(f"token exchange: {type(e).__name__}: {e}"[:300]) from None
        try:
            answer = json.loads(text)
            token, lifetime = answer["access_token"], float(answer.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            answer, token, lifetime = None, None, 0.0
        if response.code != 200 or not isinstance(token, str) or not token:
            raise TokenError(f"token exchange: HTTP {response.code} {text[:200].decode('utf-8', 'replace')}")
        self._token = token
        # renewed margin seconds early (at most half its life early, for short-lived tokens)
        self._expires = started + lifetime - min(self._margin, lifetime / 2)
        return token


async def read_bounded(response: Any, limit: int = MAX_ANSWER) -> bytes:
    """The answer's body, at most ``limit`` bytes kept (the rest is read and dropped, so that the
    connection can be reused)."""
    import treq

    chunks: list[bytes] = []
    kept = 0

    def collect(data: bytes) -> None:
        nonlocal kept
        if kept < limit:
            chunks.append(data[: limit - kept])
            kept += len(chunks[-1])

    await treq.collect(response, collect)
    return b"".join(chunks)


def _string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def data_of(notification: Notification) -> dict[str, str]:
    """The message's ``data``: FCM wants string values, and refuses some keys."""
    data = {
        "session_type": str(notification.session_type),
        "session_id": str(notification.session_id),
        "server_msg_id": str(notification.server_msg_id),
        "sender_id": str(notification.sender_id),
    }
    for key, value in notification.data.items():
        key = str(key)
        if key in _RESERVED or key.startswith(("google", "gcm")):
            continue
        data[key] = _string(value)
    return data


def _is_background(notification: Notification) -> bool:
    return not notification.voip and not notification.title and not notification.body


def build_message(notification: Notification, body: str, now: float, sound: str) -> dict[str, Any]:
    """The v1 ``message`` without its token: ``notification`` (or data only), and the Android and
    APNs overrides that carry what APNs' own provider maps (thread, collapse, badge, priority, TTL)."""
    high = notification.high_priority or notification.voip
    background = _is_background(notification)
    tag = notification.collapse_id or notification.thread_id
    message: dict[str, Any] = {"data": data_of(notification)}
    android: dict[str, Any] = {"priority": "HIGH" if high else "NORMAL", "ttl": f"{max(0, int(notification.ttl))}s"}
    if notification.collapse_id:
        android["collapse_key"] = notification.collapse_id
    aps: dict[str, Any] = {"badge": notification.badge}
    if notification.thread_id:
        aps["thread-id"] = notification.thread_id
    apns_headers = {
        "apns-expiration": str(int(now + notification.ttl)) if notification.ttl > 0 else "0",
    }
    if background:
        aps["content-available"] = 1
        apns_headers["apns-push-type"] = "background"
        apns_headers["apns-priority"] = "5"  # Apple refuses priority 10 for background pushes
    else:
        shown: dict[str, str] = {"body": body}
        if notification.title:
            shown["title"] = notification.title
        message["notification"] = shown
        android_notification: dict[str, Any] = {"notification_count": notification.badge}
        if tag:
            android_notification["tag"] = tag  # a newer one of the conversation replaces it
        if sound:
            android_notification["sound"] = sound
            aps["sound"] = sound
        android["notification"] = android_notification
        aps["mutable-content"] = 1
        apns_headers["apns-push-type"] = "alert"
        apns_headers["apns-priority"] = "10" if high else "5"
    if notification.collapse_id:
        collapse = notification.collapse_id.encode("utf-8")[:COLLAPSE_ID_MAX].decode("utf-8", "ignore")
        apns_headers["apns-collapse-id"] = collapse
    message["android"] = android
    message["apns"] = {"headers": apns_headers, "payload": {"aps": aps}}
    return message


@dataclass(frozen=True, slots=True)
class FCMError:
    """What an FCM error answer says: its ``status``, the FcmError ``errorCode`` and the fields
    a BadRequest names."""

    status: str = ""
    error_code: str = ""
    fields: tuple[str, ...] = ()
    message: str = ""

    @classmethod
    def parse(cls, text: bytes) -> FCMError:
        try:
            error = json.loads(text)["error"]
            details = error.get("details") or []
            code, fields = "", []
            for detail in details:
                if not isinstance(detail, dict):
                    continue
                code = code or str(detail.get("errorCode", ""))
                for violation in detail.get("fieldViolations") or []:
                    if isinstance(violation, dict):
                        fields.append(str(violation.get("field", "")))
            return cls(str(error.get("status", "")), code, tuple(fields), str(error.get("message", ""))[:200])
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(message=text[:200].decode("utf-8", "replace"))


def outcome_of(code: int, error: FCMError, retry_after: float | None) -> PushOutcome:
    """The PushOutcome of an FCM answer (401 is handled before: it renews the access token)."""
    detail = f"{code} {error.error_code or error.status} {error.message}".strip()
    if code == 200:
        return PushOutcome(ok=True)
    if code == 404 or error.error_code == "UNREGISTERED":
        return PushOutcome(ok=False, dead=True, detail=detail)
    if code == 400 and "message.token" in error.fields:
        return PushOutcome(ok=False, dead=True, detail=detail)
    if code in _RETRY or code >= 500 or error.error_code in ("QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"):
        return PushOutcome(ok=False, retry_after=retry_after, detail=detail)
    if code == 401 and error.error_code != "THIRD_PARTY_AUTH_ERROR":
        return PushOutcome(ok=False, detail=detail)  # refused again after a new token: later
    return PushOutcome(ok=False, permanent=True, detail=detail)


@implementer(IPushProvider)
class FCMProvider:
    """Sends to FCM HTTP v1; see the module docstring."""

    platform = "fcm"

    def __init__(self, config: FCMConfig, reactor: Any, clock: Any = None) -> None:
        self.config = config
        self._reactor = reactor
        self._clock = clock if clock is not None else reactor
        # Read once at start-up (not on the message path): a missing or wrong file stops the node
        # with a clear error instead of failing every push later.
        with open(config.service_account_file, "rb") as handle:
            account = ServiceAccount.from_json(handle.read())
        self.project_id = config.project_id or account.project_id
        if not self.project_id:
            raise ValueError("[push.fcm]: project_id is not set and the service account file has none")
        token_uri = config.token_uri or account.token_uri
        for name, url in (("endpoint", config.endpoint), ("token_uri", token_uri)):
            problem = check_url(url, config.allow_http)
            if problem:
                raise ValueError(f"[push.fcm]: {name}: {problem}")
        project = urllib.parse.quote(self.project_id, safe="")
        self.url = f"{config.endpoint.rstrip('/')}/v1/projects/{project}/messages:send"
        self._client = http_client(reactor)
        self.token = AccessToken(account, token_uri, self._client, self._clock, config)
        self._slots = defer.DeferredSemaphore(config.max_in_flight)
        self._pending = 0
        self._requests: set[defer.Deferred] = set()
        self._closed = False

    # -- IPushProvider ---------------------------------------------------------------------------

    def check_target(self, token: str, extra: dict) -> str:
        """Why ``token`` is no FCM registration token ("" when it may be one)."""
        return "" if _TOKEN.match(token) else "not an FCM registration token"

    def send(self, target: PushTarget, notification: Notification) -> defer.Deferred:
        """Deliver one notification; fires with a PushOutcome, never fails."""
        return defer.ensureDeferred(self._send(target, notification))

    def close(self) -> defer.Deferred:
        """Stop: requests in flight are cancelled (their sends end as retryable outcomes)."""
        self._closed = True
        for request in list(self._requests):
            request.cancel()
        return defer.succeed(None)

    # -- internals -------------------------------------------------------------------------------

    async def _send(self, target: PushTarget, notification: Notification) -> PushOutcome:
        if self._closed:
            return PushOutcome(ok=False, detail="provider closed")
        if self._pending >= self.config.max_pending:
            return PushOutcome(ok=False, retry_after=1.0, detail="busy: too many FCM sends pending")
        self._pending += 1
        try:
            await self._slots.acquire()
            try:
                return await self._deliver(target, notification)
            finally:
                self._slots.release()
        except Exception as error:  # never fail the caller: an outcome says what happened
            log.failure("FCM send failed unexpectedly")
            return PushOutcome(ok=False, detail=f"internal error: {error!r}")
        finally:
            self._pending -= 1

    async def _deliver(self, target: PushTarget, notification: Notification) -> PushOutcome:
        if self._closed:
            return PushOutcome(ok=False, detail="provider closed")
        if not _TOKEN.match(target.token):
            return PushOutcome(ok=False, dead=True, detail="not an FCM registration token")
        now = self._clock.seconds()
        encoded = fit_body(
            lambda cut: build_message(notification, cut, now, self.config.sound), notification.body, PAYLOAD_MAX
        )
        if encoded is None:
            return PushOutcome(ok=False, permanent=True, detail="message too big: the data alone exceeds 4096 bytes")
        message = json.loads(encoded)
        message["token"] = target.token
        body = dumps({"message": message})
        outcome = PushOutcome(ok=False)
        for attempt in range(2):
            try:
                access = await self.token.get()
            except TokenError as error:
                return PushOutcome(ok=False, detail=str(error))
            request = self._client.post(
                self.url,
                data=body,
                headers={"Authorization": [f"Bearer {access}"], "Content-Type": ["application/json; charset=UTF-8"]},
                timeout=self.config.timeout,
                persistent=True,
            )
            self._requests.add(request)
            try:
                response = await request
                text = await read_bounded(response)
            except Exception as e:  # connection refused, timeout, cancelled: worth a retry
                return PushOutcome(ok=False, detail=f"network error: {type(e).__name__}: {e}"[:300])
            finally:
                self._requests.discard(request)
            error = FCMError() if response.code == 200 else FCMError.parse(text)
            # 401 THIRD_PARTY_AUTH_ERROR is about the APNs key in the Firebase console: a new
            # access token would not help
            if response.code == 401 and attempt == 0 and error.error_code != "THIRD_PARTY_AUTH_ERROR":
                self.token.expire(access)
                continue
            raw = response.headers.getRawHeaders(b"retry-after") or [None]
            outcome = outcome_of(response.code, error, parse_retry_after(raw[-1], self._clock.seconds()))
            if outcome.ok:
                try:
                    outcome = PushOutcome(ok=True, detail=str(json.loads(text).get("name", "")))
                except (ValueError, AttributeError):
                    pass
            return outcome
        return outcome


def create(config: dict, reactor: Any) -> FCMProvider:
    """The provider for a ``[push.fcm]`` table."""
    return FCMProvider(FCMConfig.from_dict(dict(config)), reactor)
