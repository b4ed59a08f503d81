"""APNs provider: Apple's provider API over HTTP/2 with token-based (JWT) authentication.

Why httpx in a small thread pool: APNs speaks only HTTP/2, and neither treq nor Twisted's HTTP
client does.  httpx's synchronous ``Client(http2=True)`` keeps one multiplexed TLS connection per
endpoint and is safe to share between threads, so each send is one blocking ``client.post`` run in
a bounded :class:`ThreadPool` through ``deferToThreadPool``: the reactor never waits, the number of
threads bounds the concurrent requests, and ``max_pending`` bounds the queue in front of them.  (An
``AsyncClient`` would need an asyncio loop beside the reactor, i.e. the asyncio reactor for the
whole server, for one provider.)

The provider token is an ES256 JWT (``iss`` = team id, ``iat``; header ``kid`` = key id) signed
with the team's .p8 key; Apple wants it reused (at most one new token per 20 minutes) and refuses
one older than an hour, so it is kept ``jwt_refresh`` seconds (50 minutes) and made anew on a 403
``ExpiredProviderToken``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger
from zope.interface import implementer

from coffeechat.pushproviders import IPushProvider, Notification, PushOutcome, PushTarget
from coffeechat.pushproviders.payloads import fit_body, parse_retry_after
from coffeechat.threadpools import DaemonThreadPool

log = Logger()

PRODUCTION = "https://api.push.apple.com"
SANDBOX = "https://api.sandbox.push.apple.com"
PAYLOAD_MAX = 4096
COLLAPSE_ID_MAX = 64  # bytes, Apple's limit for apns-collapse-id
_TOKEN = re.compile(r"^[0-9A-Fa-f]{16,200}$")  # device tokens are hex (32 bytes today)

#: 400 reasons that mean the device token itself is wrong: forget it.
DEAD_400 = frozenset({"BadDeviceToken"})
#: 410 reasons: "Unregistered" (the app is gone), "ExpiredToken".
RETRY_STATUSES = frozenset({429, 500, 503})


@dataclass(frozen=True, slots=True)
class APNsConfig:
    """The ``[push.apns]`` table."""

    team_id: str
    key_id: str
    key_file: str
    topic: str = ""  # the app's bundle id, when the device registered none
    endpoint: str = PRODUCTION
    sandbox_endpoint: str = SANDBOX  # for targets registered with extra {"sandbox": true}
    ca_file: str = ""  # trust these CAs instead of the system's (tests, private gateways)
    timeout: float = 10.0
    max_connections: int = 2  # per endpoint; one HTTP/2 connection carries many streams
    threads: int = 4  # concurrent requests in flight
    max_pending: int = 2000  # sends queued or in flight before new ones are refused (busy)
    jwt_refresh: float = 3000.0  # seconds a provider token is reused (Apple: 20 to 60 minutes)
    sound: str = "default"

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> APNsConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"[push.apns]: unknown setting(s) {', '.join(unknown)}")
        missing = [name for name in ("team_id", "key_id", "key_file") if not table.get(name)]
        if missing:
            raise ValueError(f"[push.apns]: {', '.join(missing)} must be set")
        config = cls(**table)
        if not 60 <= config.jwt_refresh < 3600:
            raise ValueError("[push.apns]: jwt_refresh must be at least 60 and below 3600 seconds")
        if config.threads < 1 or config.max_connections < 1 or config.max_pending < 1:
            raise ValueError("[push.apns]: threads, max_connections and max_pending must be positive")
        return config


def build_payload(notification: Notification, body: str, sound: str) -> dict[str, Any]:
    """The JSON APNs delivers to the app: ``aps`` plus the app's data beside it."""
    payload: dict[str, Any] = {}
    for key, value in notification.data.items():
        if key != "aps":
            payload[key] = value
    payload.setdefault("session_type", notification.session_type)
    payload.setdefault("session_id", notification.session_id)
    payload.setdefault("server_msg_id", notification.server_msg_id)
    payload.setdefault("sender_id", notification.sender_id)
    aps: dict[str, Any] = {"badge": notification.badge}
    if notification.thread_id:
        aps["thread-id"] = notification.thread_id
    if _is_background(notification):
        aps["content-available"] = 1
    else:
        alert: dict[str, str] = {}
        if notification.title:
            alert["title"] = notification.title
        alert["body"] = body
        aps["alert"] = alert
        if sound:
            aps["sound"] = sound
        aps["mutable-content"] = 1  # a notification service extension may decrypt or enrich it
    payload["aps"] = aps
    return payload


def _is_background(notification: Notification) -> bool:
    return not notification.voip and not notification.title and not notification.body


def push_headers(topic: str, notification: Notification, now: float) -> dict[str, str]:
    """apns-* headers: the push type and its topic, priority, expiry and collapse id."""
    if notification.voip:
        push_type, topic, priority = "voip", topic + ".voip", "10"
    elif _is_background(notification):
        push_type, priority = "background", "5"  # Apple refuses priority 10 for background pushes
    else:
        push_type, priority = "alert", "10" if notification.high_priority else "5"
    headers = {
        "apns-topic": topic,
        "apns-push-type": push_type,
        "apns-priority": priority,
        # 0: deliver now or never; otherwise the Unix time until which APNs keeps retrying.
        "apns-expiration": str(int(now + notification.ttl)) if notification.ttl > 0 else "0",
    }
    if notification.collapse_id:
        collapse = notification.collapse_id.encode("utf-8")[:COLLAPSE_ID_MAX].decode("utf-8", "ignore")
        headers["apns-collapse-id"] = collapse
    return headers


class ProviderToken:
    """The ES256 provider JWT, made on demand and reused until ``lifetime`` has passed."""

    def __init__(self, team_id: str, key_id: str, key_pem: bytes, clock, lifetime: float) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("[push.apns]: key_file must hold the P-256 (.p8) key Apple issued")
        self._key = key
        self._team_id = team_id
        self._key_id = key_id
        self._clock = clock
        self._lifetime = lifetime
        self._token: str | None = None
        self._issued = 0.0
        self.made = 0  # how many tokens were made: reuse is measurable

    def get(self) -> str:
        now = self._clock.seconds()
        if self._token is None or now - self._issued >= self._lifetime or now < self._issued:
            self.refresh()
        assert self._token is not None
        return self._token

    def refresh(self) -> None:
        import jwt

        issued = int(self._clock.seconds())
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": issued},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        self._issued = float(issued)
        self.made += 1

    def expire(self, token: str) -> None:
        """APNs said ``token`` expired: the next :meth:`get` makes a new one (unless a send that
        was answered earlier already did)."""
        if self._token == token:
            self._token = None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    reason: str
    retry_after: str | None
    apns_id: str


@implementer(IPushProvider)
class APNsProvider:
    """Sends to APNs; see the module docstring for why through threads."""

    platform = "apns"
    supports_voip = True  # notify_call sends VoIP pushes (apns-push-type voip) to PushKit tokens

    def __init__(self, config: APNsConfig, reactor, clock=None) -> None:
        import ssl

        import httpx

        self.config = config
        self._reactor = reactor
        self._clock = clock if clock is not None else reactor
        # Read once at start-up (not on the message path): a missing or wrong key stops the node
        # with a clear error instead of failing every push later.
        with open(config.key_file, "rb") as handle:
            key_pem = handle.read()
        self.token = ProviderToken(config.team_id, config.key_id, key_pem, self._clock, config.jwt_refresh)
        verify: Any = True
        if config.ca_file:
            verify = ssl.create_default_context(cafile=config.ca_file)
        self._client = httpx.Client(
            http1=False,  # APNs is HTTP/2 only: never fall back silently
            http2=True,
            verify=verify,
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(
                max_connections=config.max_connections, max_keepalive_connections=config.max_connections
            ),
        )
        self._httpx = httpx
        self._pool = DaemonThreadPool(0, config.threads, name="coffeechat-apns")
        self._pool.start()
        self._shutdown_trigger = reactor.addSystemEventTrigger("during", "shutdown", self._stop_pool)
        self._pending = 0
        self._closed = False

    # -- IPushProvider ---------------------------------------------------------------------------

    def send(self, target: PushTarget, notification: Notification) -> defer.Deferred:
        """Deliver one notification; fires with a PushOutcome, never fails."""
        return defer.ensureDeferred(self._send(target, notification))

    def close(self) -> defer.Deferred:
        """Close the HTTP/2 connections and stop the threads (in a thread: joining blocks)."""
        if self._closed:
            return defer.succeed(None)
        self._closed = True
        try:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
        except (ValueError, KeyError):
            pass
        return threads.deferToThread(self._stop_pool)

    # -- internals -------------------------------------------------------------------------------

    def _stop_pool(self) -> None:
        self._pool.stop()
        self._client.close()

    async def _send(self, target: PushTarget, notification: Notification) -> PushOutcome:
        try:
            return await self._deliver(target, notification)
        except Exception as error:  # never fail the caller: an outcome says what happened
            log.failure("APNs send failed unexpectedly")
            return PushOutcome(ok=False, detail=f"internal error: {error!r}")

    async def _deliver(self, target: PushTarget, notification: Notification) -> PushOutcome:
        if self._closed:
            return PushOutcome(ok=False, detail="provider closed")
        if not _TOKEN.match(target.token):
            return PushOutcome(ok=False, dead=True, detail="BadDeviceToken (not a hex device token)")
        topic = target.app_id or self.config.topic
        if not topic:
            return PushOutcome(
                ok=False, permanent=True, detail="no topic: the target has no app_id and no topic is set"
            )
        body = fit_body(lambda cut: build_payload(notification, cut, self.config.sound), notification.body, PAYLOAD_MAX)
        if body is None:
            return PushOutcome(ok=False, permanent=True, detail="PayloadTooLarge: the data alone exceeds 4096 bytes")
        endpoint = self.config.sandbox_endpoint if target.extra.get("sandbox") else self.config.endpoint
        url = f"{endpoint.rstrip('/')}/3/device/{target.token}"
        for attempt in range(2):
            if self._pending >= self.config.max_pending:
                return PushOutcome(ok=False, retry_after=1.0, detail="busy: too many APNs sends pending")
            jwt_token = self.token.get()
            headers = push_headers(topic, notification, self._clock.seconds())
            headers["authorization"] = f"bearer {jwt_token}"
            headers["content-type"] = "application/json"
            self._pending += 1
            try:
                answer = await threads.deferToThreadPool(self._reactor, self._pool, self._post, url, headers, body)
            finally:
                self._pending -= 1
            if isinstance(answer, str):
                return PushOutcome(ok=False, detail=answer)
            outcome = self._outcome(answer)
            if answer.status == 403 and answer.reason == "ExpiredProviderToken" and attempt == 0:
                self.token.expire(jwt_token)
                continue
            return outcome
        return outcome

    def _post(self, url: str, headers: dict[str, str], body: bytes) -> _Answer | str:
        """In a pool thread: one request on the shared HTTP/2 connection."""
        httpx = self._httpx
        try:
            response = self._client.post(url, headers=headers, content=body)
        except httpx.HTTPError as error:
            return f"network error: {type(error).__name__}: {error}"
        reason = ""
        if response.status_code != 200:
            try:
                reason = str(response.json().get("reason", ""))
            except (ValueError, AttributeError):
                reason = response.text[:200]
        return _Answer(
            response.status_code,
            reason,
            response.headers.get("retry-after"),
            response.headers.get("apns-id", ""),
        )

    def _outcome(self, answer: _Answer) -> PushOutcome:
        status, reason = answer.status, answer.reason
        detail = f"{status} {reason}".strip()
        if status == 200:
            return PushOutcome(ok=True, detail=answer.apns_id)
        if status == 410 or (status == 400 and reason in DEAD_400):
            return PushOutcome(ok=False, dead=True, detail=detail)
        if status in RETRY_STATUSES:
            return PushOutcome(
                ok=False, retry_after=parse_retry_after(answer.retry_after, self._clock.seconds()), detail=detail
            )
        if status == 403 and reason == "ExpiredProviderToken":
            return PushOutcome(ok=False, detail=detail)  # still expired after a new token: retry later
        if 400 <= status < 500:
            return PushOutcome(ok=False, permanent=True, detail=detail)
        return PushOutcome(ok=False, detail=detail)  # another 5xx: worth a retry


def create(config: dict, reactor) -> APNsProvider:
    """The provider for a ``[push.apns]`` table."""
    return APNsProvider(APNsConfig.from_dict(dict(config)), reactor)
