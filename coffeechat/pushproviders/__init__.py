"""Push providers: how one notification reaches one device through the service its platform uses.

The ``push`` feature (coffeechat/features/push.py) decides *whether* and *what* to notify; a
provider only delivers.  Each provider speaks its service's real protocol (APNs over HTTP/2 with a
JWT, FCM HTTP v1 with an OAuth2 service account, Web Push with VAPID and aes128gcm, UnifiedPush,
a signed webhook), never blocks the reactor, and says what became of a send with a
:class:`PushOutcome`, so that the feature retries, or forgets a token the service called dead.

A third party adds a provider under the ``coffeechat.push_providers`` entry-point group: a
callable ``create(config: dict, reactor) -> IPushProvider``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zope.interface import Attribute, Interface


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where a device wants its notifications: registered by the device (PUSH_REGISTER_REQ)."""

    user_id: int
    target_id: int
    platform: str  # "apns", "fcm", "webpush", "unifiedpush", "webhook"
    token: str  # the APNs device token, FCM registration token, or the push endpoint URL
    app_id: str = ""  # APNs topic (bundle id), FCM project's app, ...
    locale: str = ""
    #: platform extras: Web Push's ``p256dh`` and ``auth`` keys, APNs ``sandbox``, ...
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification for one device, as the push feature decided it."""

    title: str
    body: str
    badge: int  # the user's total unread count
    thread_id: str  # the conversation it belongs to: grouped per conversation on the device
    collapse_id: str  # a later notification with the same id replaces this one
    session_type: int = 0
    session_id: int = 0
    server_msg_id: int = 0
    sender_id: int = 0
    high_priority: bool = True
    voip: bool = False  # an incoming call (APNs VoIP push)
    ttl: int = 86400  # seconds the service may keep it for an offline device
    #: app data carried with it (the message's ids, its type ...), JSON-serialisable
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of one send.  ``dead``: the service says the token will never work again (APNs
    410, FCM UNREGISTERED, Web Push 404/410): forget it.  Otherwise not ``ok`` is retried,
    no sooner than ``retry_after`` seconds when the service said so (429, 503 Retry-After)."""

    ok: bool
    dead: bool = False
    retry_after: float | None = None
    permanent: bool = False  # not worth retrying (a 400 for this payload), but the token stays
    detail: str = ""


class IPushProvider(Interface):
    """Delivers notifications for one platform."""

    platform = Attribute("the platform name targets register with, e.g. 'apns'")

    def send(target: PushTarget, notification: Notification):
        """Deliver one notification; fires with a :class:`PushOutcome` (never fails: a network
        error is ``PushOutcome(ok=False, detail=...)``)."""

    def close():
        """Release connections; fires (or returns None) when done."""
