"""Local push services for the push tests: a twisted.web server on loopback that takes each
POST as the real service would take it, records it, and answers what the test scripted.

``PushService.check`` (set by the test) verifies a request (a Web Push service checks the VAPID
JWT; a webhook receiver the Standard Webhooks signature) and returns what to record, or raises
to answer 400.  The test awaits ``next()`` for each request that reached it."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import defer, reactor
from twisted.web import resource, server


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    checked: Any = None


class PushService(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: defer.DeferredQueue = defer.DeferredQueue()
        self.all: list[Arrival] = []
        self.script: dict[str, list[int | tuple[int, dict[str, str]]]] = {}  # path -> statuses to answer
        self.check: Callable[[Arrival], Any] | None = None

    def render_POST(self, request: Any) -> bytes:
        path = request.path.decode()
        headers = {k.decode().lower(): v[-1].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        arrival = Arrival(path, headers, request.content.read(), 201)
        planned = self.script.get(path)
        answer_headers: dict[str, str] = {}
        if planned:
            step = planned.pop(0)
            arrival.status, answer_headers = step if isinstance(step, tuple) else (step, {})
        if self.check is not None:
            try:
                arrival.checked = self.check(arrival)
            except Exception as e:  # what a real service answers to a bad request
                arrival.status, arrival.checked = 400, e
        request.setResponseCode(arrival.status)
        for k, v in answer_headers.items():
            request.setHeader(k, v)
        self.all.append(arrival)
        self.arrivals.put(arrival)
        return b""

    def next(self, timeout: float = 10.0) -> defer.Deferred:
        d = self.arrivals.get()
        d.addTimeout(timeout, reactor)
        return d


@dataclass
class LocalServer:
    service: PushService
    port: Any
    url: str = ""

    async def stop(self) -> None:
        await self.port.stopListening()


async def start_service() -> LocalServer:
    service = PushService()
    site = server.Site(service)
    site.noisy = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    return LocalServer(service, port, f"http://127.0.0.1:{port.getHost().port}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscription:
    """A browser's push subscription: its key pair and auth secret (the browser keeps the private
    key; the server gets p256dh and auth)."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def keys(self) -> dict[str, str]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(public), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> bytes:
        import http_ece

        return http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm")


def verify_vapid(arrival: Arrival, origin: str, now: float, subject: str, public_key: str = "") -> dict:
    """What a push service checks of VAPID (RFC 8292): ``vapid t=<JWT>,k=<key>``, the JWT signed
    ES256 by that key, aud = the endpoint's origin, exp within 24 h, sub a contact."""
    import jwt

    scheme, _, params = arrival.headers["authorization"].partition(" ")
    assert scheme == "vapid", arrival.headers["authorization"]
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    if public_key:
        assert fields["k"] == public_key
    point = b64url_decode(fields["k"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    claims = jwt.decode(fields["t"], key=key, algorithms=["ES256"], audience=origin)
    assert now < claims["exp"] <= now + 24 * 3600 + 5, claims
    assert claims["sub"] == subject, claims
    return claims
