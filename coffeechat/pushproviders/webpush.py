"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291): what a
browser's push service (Mozilla autopush, FCM for Chrome, Apple's web push) expects.

``[push.webpush]``::

    vapid_private_key = "/etc/coffeechat/vapid.pem"   # a PEM file, or the key itself (PEM/DER/raw)
    vapid_subject = "mailto:admin@chat.example.com"    # the sub claim: how the service reaches you
    # allow_http = false   # only for tests: endpoints are https
    # timeout = 10.0
    # jwt_lifetime = 43200 # seconds a VAPID token is valid (at most 24 h)

The target's token is the subscription's endpoint; its extras hold ``p256dh`` and ``auth``.  The
payload (encrypted for the subscription's key) is JSON the service worker shows:
``{"title", "body", "badge", "tag", "data": {...}}``.  404 and 410 mean the subscription is gone.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.pushproviders import IPushProvider, Notification, PushOutcome, PushTarget
from coffeechat.pushproviders._http import check_url, close_client, http_client, post

MAX_PAYLOAD = 3993  # bytes of plaintext that fit the 4096-byte record (RFC 8291 section 4)
_TOPIC = re.compile(r"[^A-Za-z0-9_-]")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payload_of(notification: Notification) -> bytes:
    """The JSON a service worker gets (cut to fit one record)."""
    body = {
        "title": notification.title,
        "body": notification.body,
        "badge": notification.badge,
        "tag": notification.collapse_id or notification.thread_id,
        "thread_id": notification.thread_id,
        "data": notification.data,
    }
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    while len(raw) > MAX_PAYLOAD and body["body"]:
        body["body"] = body["body"][: len(body["body"]) // 2]
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return raw


def encrypt(target: PushTarget, plaintext: bytes) -> bytes:
    """aes128gcm for the subscription's keys (pywebpush's encoder, http_ece underneath)."""
    from pywebpush import WebPusher

    pusher = WebPusher(
        {"endpoint": target.token, "keys": {"p256dh": target.extra["p256dh"], "auth": target.extra["auth"]}}
    )
    return bytes(pusher.encode(plaintext, content_encoding="aes128gcm")["body"])


def topic(notification: Notification) -> str:
    """The Topic header (RFC 8030 5.4: at most 32 URL-safe base64 characters): a newer message
    of the conversation replaces one the service still holds."""
    return _TOPIC.sub("_", notification.collapse_id)[:32]


def load_vapid(key: str) -> Any:
    from py_vapid import Vapid

    if not key:
        raise ValueError("vapid_private_key is required")
    if os.path.exists(key):
        return Vapid.from_file(key)
    return Vapid.from_string(key)


class EndpointSender:
    """POSTs encrypted notifications to push endpoints (Web Push; UnifiedPush reuses it)."""

    def __init__(self, config: dict, reactor: Any, vapid_required: bool) -> None:
        self.reactor = reactor
        self.allow_http = bool(config.get("allow_http", False))
        self.timeout = float(config.get("timeout", 10.0))
        self.jwt_lifetime = int(config.get("jwt_lifetime", 12 * 3600))
        if not 60 <= self.jwt_lifetime <= 24 * 3600:
            raise ValueError("jwt_lifetime must be between 60 and 86400 seconds")
        key = config.get("vapid_private_key", "")
        self.vapid = load_vapid(key) if (key or vapid_required) else None
        self.subject = config.get("vapid_subject", "")
        if self.vapid is not None and not self.subject.startswith(("mailto:", "https://")):
            raise ValueError("vapid_subject must be a mailto: or https:// URL")
        self.public_key = ""
        if self.vapid is not None:
            from cryptography.hazmat.primitives import serialization

            raw = self.vapid.public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            self.public_key = b64url(raw)
        self._tokens: dict[str, tuple[str, float]] = {}  # audience -> (Authorization, expires)
        self.client = http_client(reactor)

    def check_target(self, token: str, extra: dict) -> str:
        return check_url(token, self.allow_http)

    def authorization(self, endpoint: str) -> str:
        """The VAPID header for the endpoint's origin (one JWT per origin, reused until near expiry)."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = self.reactor.seconds()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] - now > 300:
            return cached[0]
        expires = int(now) + self.jwt_lifetime
        header = self.vapid.sign({"aud": audience, "exp": expires, "sub": self.subject})["Authorization"]
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[audience] = (header, float(expires))
        return header

    def send(self, target: PushTarget, notification: Notification, encrypted: bool = True) -> defer.Deferred:
        return defer.ensureDeferred(self._send(target, notification, encrypted))

    async def _send(self, target: PushTarget, notification: Notification, encrypted: bool) -> PushOutcome:
        problem = check_url(target.token, self.allow_http)
        if problem:
            return PushOutcome(ok=False, dead=True, detail=problem)
        plaintext = payload_of(notification)
        headers = {
            "TTL": str(max(0, int(notification.ttl))),
            "Urgency": "high" if notification.high_priority else "normal",
        }
        if notification.collapse_id:
            headers["Topic"] = topic(notification)
        if encrypted:
            try:
                body = encrypt(target, plaintext)
            except Exception as e:  # keys that are no P-256 point: this subscription never works
                return PushOutcome(ok=False, dead=True, detail=f"cannot encrypt for this subscription: {e}")
            headers["Content-Encoding"] = "aes128gcm"
            headers["Content-Type"] = "application/octet-stream"
        else:
            body = plaintext
            headers["Content-Type"] = "application/json"
        if self.vapid is not None:
            headers["Authorization"] = self.authorization(target.token)
        return await post(self.client, target.token, body, headers, self.timeout)

    def close(self) -> defer.Deferred:
        return close_client(self.client)


@implementer(IPushProvider)
class WebPushProvider:
    """Web Push to browsers' push services."""

    platform = "webpush"

    def __init__(self, config: dict, reactor: Any) -> None:
        unknown = set(config) - {"vapid_private_key", "vapid_subject", "allow_http", "timeout", "jwt_lifetime"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        self.sender = EndpointSender(config, reactor, vapid_required=True)
        self.public_key = self.sender.public_key

    def check_target(self, token: str, extra: dict) -> str:
        problem = self.sender.check_target(token, extra)
        if problem:
            return problem
        try:
            if len(base64.urlsafe_b64decode(extra["p256dh"] + "==")) != 65:
                return "p256dh is not an uncompressed P-256 point"
            if len(base64.urlsafe_b64decode(extra["auth"] + "==")) != 16:
                return "auth is not 16 bytes"
        except (KeyError, ValueError):
            return "p256dh and auth must be base64url"
        return ""

    def send(self, target: PushTarget, notification: Notification) -> defer.Deferred:
        return self.sender.send(target, notification)

    def close(self) -> defer.Deferred:
        return self.sender.close()


def create(config: dict, reactor: Any) -> WebPushProvider:
    """The ``[push.webpush]`` provider."""
    return WebPushProvider(config, reactor)
