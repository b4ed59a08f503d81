"""A generic signed webhook: for any push service CoffeeChat does not speak, the app's own server
gets each notification as JSON, signed per Standard Webhooks (webhook-id, webhook-timestamp,
webhook-signature: HMAC-SHA256; ``standardwebhooks.Webhook(secret).verify`` checks it).

``[push.webhook]``::

    url = "https://push-gateway.example.com/coffeechat"
    secret = "whsec_..."        # base64, as Standard Webhooks secrets are (whsec_ prefix optional)
    # timeout = 10.0

The body: ``{"type": "push.notification", "target": {user_id, target_id, token, app_id, locale,
extra}, "notification": {title, body, badge, thread_id, collapse_id, ...}}``.  410 means the
target is gone (removed); 429 and 5xx are retried; other 4xx are not.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid
from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.pushproviders import IPushProvider, Notification, PushTarget
from coffeechat.pushproviders._http import check_url, close_client, http_client, post


@implementer(IPushProvider)
class WebhookProvider:
    """POSTs signed JSON notifications to one configured URL."""

    platform = "webhook"

    def __init__(self, config: dict, reactor: Any) -> None:
        from standardwebhooks import Webhook

        unknown = set(config) - {"url", "secret", "timeout"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        self.url = config.get("url", "")
        problem = check_url(self.url, allow_http=True)
        if problem:
            raise ValueError(f"url: {problem}")
        secret = config.get("secret", "")
        if not secret:
            raise ValueError("secret is required (a base64 secret, e.g. whsec_...)")
        self.signer = Webhook(secret)
        self.timeout = float(config.get("timeout", 10.0))
        self.reactor = reactor
        self.client = http_client(reactor)

    def body(self, target: PushTarget, notification: Notification) -> bytes:
        data = {
            "type": "push.notification",
            "target": {
                "user_id": target.user_id,
                "target_id": target.target_id,
                "token": target.token,
                "app_id": target.app_id,
                "locale": target.locale,
                "extra": target.extra,
            },
            "notification": dataclasses.asdict(notification),
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    def send(self, target: PushTarget, notification: Notification) -> defer.Deferred:
        body = self.body(target, notification)
        msg_id = f"msg_{uuid.uuid4().hex}"
        when = datetime.datetime.fromtimestamp(int(self.reactor.seconds()), datetime.UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": self.signer.sign(msg_id, when, body.decode()),
        }
        return defer.ensureDeferred(post(self.client, self.url, body, headers, self.timeout, dead=(410,)))

    def close(self) -> defer.Deferred:
        return close_client(self.client)


def create(config: dict, reactor: Any) -> WebhookProvider:
    """The ``[push.webhook]`` provider."""
    return WebhookProvider(config, reactor)
