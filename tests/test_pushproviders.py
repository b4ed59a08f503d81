"""The Web Push, UnifiedPush and webhook providers against local services on loopback that check
each request as the real one would: VAPID JWT claims and signature, aes128gcm decrypted with the
subscription's private key, Standard Webhooks signatures; statuses mapped to outcomes."""

from __future__ import annotations

import json
import time

import pytest
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks import Webhook
from twisted.internet import reactor

from coffeechat.pushproviders import IPushProvider, Notification, PushTarget, unifiedpush, webhook, webpush

from .pushreceiver import Subscription, start_service, verify_vapid

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SUBJECT = "mailto:admin@chat.example.com"


def note(**fields) -> Notification:
    base = dict(title="Alice", body="héllo bob", badge=3, thread_id="c1-7", collapse_id="c1-7", server_msg_id=9,
                data={"session_id": 7})  # fmt: skip
    base.update(fields)
    return Notification(**base)


def vapid_pem(tmp_path, name: str = "vapid.pem") -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return str(path), webpush.b64url(public)


@pytest_twisted.async_yield_fixture
async def local():
    server = await start_service()
    yield server
    await server.stop()


@pytest_twisted.ensureDeferred
async def test_webpush_vapid_and_aes128gcm_as_a_push_service_checks_them(local, tmp_path):
    pem, public = vapid_pem(tmp_path)
    provider = webpush.create({"vapid_private_key": pem, "vapid_subject": SUBJECT, "allow_http": True}, reactor)
    assert IPushProvider.providedBy(provider) and provider.public_key == public
    sub = Subscription()
    endpoint = f"{local.url}/wp/abc"
    target = PushTarget(5, 1, "webpush", endpoint, extra=sub.keys)
    assert provider.check_target(endpoint, sub.keys) == ""
    assert "https" in webpush.create({"vapid_private_key": pem, "vapid_subject": SUBJECT}, reactor).check_target(
        endpoint, sub.keys
    )
    assert provider.check_target(endpoint, {"p256dh": "AAAA", "auth": sub.keys["auth"]}) != ""
    local.service.check = lambda a: verify_vapid(a, local.url, time.time(), SUBJECT, public)

    outcome = await provider.send(target, note(ttl=600, high_priority=False))
    arrival = await local.service.next()
    assert outcome.ok, outcome
    assert arrival.checked["aud"] == local.url  # the JWT verified (ES256, aud, exp, sub)
    assert arrival.headers["content-encoding"] == "aes128gcm"
    assert (arrival.headers["ttl"], arrival.headers["urgency"], arrival.headers["topic"]) == ("600", "normal", "c1-7")
    assert b"bob" not in arrival.body  # encrypted
    payload = json.loads(sub.decrypt(arrival.body))
    assert payload == {"title": "Alice", "body": "héllo bob", "badge": 3, "tag": "c1-7", "thread_id": "c1-7",
                       "data": {"session_id": 7}}  # fmt: skip

    # a service that says the subscription is gone: dead; busy: retried after its Retry-After
    local.service.script[target.token.removeprefix(local.url)] = [410, (503, {"Retry-After": "7"}), 413]
    assert (await provider.send(target, note())).dead
    busy = await provider.send(target, note())
    assert (busy.ok, busy.dead, busy.retry_after) == (False, False, 7.0)
    too_big = await provider.send(target, note())
    assert too_big.permanent and not too_big.dead
    await provider.close()


@pytest_twisted.ensureDeferred
async def test_webpush_refused_by_a_service_that_rejects_the_jwt(local, tmp_path):
    pem, _ = vapid_pem(tmp_path)
    _, other_public = vapid_pem(tmp_path, "other.pem")  # another key: the check fails
    provider = webpush.create({"vapid_private_key": pem, "vapid_subject": SUBJECT, "allow_http": True}, reactor)
    local.service.check = lambda a: verify_vapid(a, local.url, time.time(), SUBJECT, other_public)
    sub = Subscription()
    outcome = await provider.send(PushTarget(5, 1, "webpush", f"{local.url}/wp/x", extra=sub.keys), note())
    assert not outcome.ok and outcome.permanent and "400" in outcome.detail


@pytest_twisted.ensureDeferred
async def test_unifiedpush_encrypted_with_keys_raw_without(local):
    provider = unifiedpush.create({"allow_http": True}, reactor)
    sub = Subscription()
    encrypted = PushTarget(5, 1, "unifiedpush", f"{local.url}/up/1", extra=sub.keys)
    assert (await provider.send(encrypted, note())).ok
    arrival = await local.service.next()
    assert arrival.headers["content-encoding"] == "aes128gcm" and "authorization" not in arrival.headers
    assert json.loads(sub.decrypt(arrival.body))["body"] == "héllo bob"

    raw = PushTarget(5, 2, "unifiedpush", f"{local.url}/up/2")
    assert (await provider.send(raw, note())).ok
    arrival = await local.service.next()
    assert "content-encoding" not in arrival.headers and json.loads(arrival.body)["title"] == "Alice"
    local.service.script["/up/2"] = [404]
    assert (await provider.send(raw, note())).dead
    assert provider.check_target(f"{local.url}/up/3", {"p256dh": "x"}) != ""


@pytest_twisted.ensureDeferred
async def test_webhook_signed_per_standard_webhooks(local):
    provider = webhook.create({"url": f"{local.url}/hook", "secret": SECRET}, reactor)
    verifier = Webhook(SECRET)
    local.service.check = lambda a: verifier.verify(a.body, a.headers)
    target = PushTarget(5, 4, "webhook", "device-token-1", app_id="com.example", locale="fr")
    assert (await provider.send(target, note())).ok
    arrival = await local.service.next()
    body = arrival.checked  # verify() returns the parsed payload once the signature is right
    assert body["type"] == "push.notification"
    assert body["target"] == {"user_id": 5, "target_id": 4, "token": "device-token-1", "app_id": "com.example",
                              "locale": "fr", "extra": {}}  # fmt: skip
    assert body["notification"]["body"] == "héllo bob" and body["notification"]["badge"] == 3

    wrong = webhook.create({"url": f"{local.url}/hook", "secret": "whsec_" + "A" * 32}, reactor)
    refused = await wrong.send(target, note())
    assert refused.permanent and "400" in refused.detail
    local.service.script["/hook"] = [410, (429, {"Retry-After": "3"})]
    assert (await provider.send(target, note())).dead
    assert (await provider.send(target, note())).retry_after == 3.0


@pytest_twisted.ensureDeferred
async def test_a_service_that_is_down_is_retried():
    provider = webhook.create({"url": "http://127.0.0.1:9/hook", "secret": SECRET, "timeout": 5.0}, reactor)
    outcome = await provider.send(PushTarget(5, 4, "webhook", "t"), note())
    assert not outcome.ok and not outcome.dead and not outcome.permanent and outcome.detail


def test_bad_configs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="vapid_private_key"):
        webpush.create({"vapid_subject": SUBJECT}, reactor)
    pem, _ = vapid_pem(tmp_path)
    with pytest.raises(ValueError, match="vapid_subject"):
        webpush.create({"vapid_private_key": pem, "vapid_subject": "admin"}, reactor)
    with pytest.raises(ValueError, match="secret"):
        webhook.create({"url": "https://x.example/h"}, reactor)
    with pytest.raises(ValueError, match="unknown"):
        webhook.create({"url": "https://x.example/h", "secret": SECRET, "frobnicate": 1}, reactor)
