"""UnifiedPush: the self-hosted push standard on Android.  The app's distributor (ntfy,
NextPush, ...) gives it an endpoint URL; the server POSTs the notification there.

``[push.unifiedpush]``::

    # allow_http = false              # only for tests and LAN distributors
    # timeout = 10.0
    # vapid_private_key = ""          # distributors that ask for VAPID (optional)
    # vapid_subject = "mailto:admin@chat.example.com"

When the registration carries Web Push keys (extras ``p256dh`` and ``auth``: the UnifiedPush
connector libraries make them), the body is RFC 8291 aes128gcm, as Web Push; else it is the
notification's JSON as is.  404 and 410 mean the endpoint is gone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.pushproviders import IPushProvider, Notification, PushTarget
from coffeechat.pushproviders.webpush import EndpointSender


@implementer(IPushProvider)
class UnifiedPushProvider:
    """POSTs to UnifiedPush distributors' endpoints."""

    platform = "unifiedpush"

    def __init__(self, config: dict, reactor: Any) -> None:
        unknown = set(config) - {"vapid_private_key", "vapid_subject", "allow_http", "timeout", "jwt_lifetime"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        self.sender = EndpointSender(config, reactor, vapid_required=False)

    def check_target(self, token: str, extra: dict) -> str:
        if bool(extra.get("p256dh")) != bool(extra.get("auth")):
            return "p256dh and auth come together"
        return self.sender.check_target(token, extra)

    def send(self, target: PushTarget, notification: Notification) -> defer.Deferred:
        encrypted = bool(target.extra.get("p256dh") and target.extra.get("auth"))
        return self.sender.send(target, notification, encrypted=encrypted)

    def close(self) -> defer.Deferred:
        return self.sender.close()


def create(config: dict, reactor: Any) -> UnifiedPushProvider:
    """The ``[push.unifiedpush]`` provider."""
    return UnifiedPushProvider(config, reactor)
