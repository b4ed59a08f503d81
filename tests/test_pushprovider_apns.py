"""The APNs provider against a local HTTP/2 + TLS server that checks requests as APNs does."""

from __future__ import annotations

import json
import socket
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.web import server

from coffeechat.pushproviders import IPushProvider, Notification, PushTarget
from coffeechat.pushproviders.apns import APNsConfig, APNsProvider, create
from tests.pushprovider_servers import APNS_TOKENS, APNsDevice, APNsState, CountingSite, make_ca, p8_key, pem_private

TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY7654321", "org.coffeechat.app"


class HoldingDevice(APNsDevice):
    """Holds requests for the "hold" token until the test releases them (a slow APNs)."""

    def __init__(self, state: APNsState) -> None:
        super().__init__(state)
        self.held: list = []
        self.arrived: defer.Deferred | None = None

    def render(self, request):
        if request.path.endswith(b"/" + b"9" * 64):
            self.held.append(request)
            if self.arrived is not None:
                arrived, self.arrived = self.arrived, None
                arrived.callback(None)
            return server.NOT_DONE_YET
        return super().render(request)


class FakeAPNs:
    def __init__(self, tmp_path, **overrides) -> None:
        self.clock = task.Clock()
        self.clock.advance(time.time())
        key = p8_key()
        self.key_file = tmp_path / "AuthKey_KEY7654321.p8"
        self.key_file.write_bytes(pem_private(key))
        ca = make_ca()
        self.ca_file = tmp_path / "ca.pem"
        self.ca_file.write_bytes(ca.ca_pem)
        self.state = APNsState(TEAM, KEY_ID, key.public_key(), TOPIC, self.clock.seconds)
        self.device = HoldingDevice(self.state)
        site = CountingSite(self.device, self.state)
        options = ca.server_options([b"h2"])
        self.port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
        self.sandbox_port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
        self.table = {
            "team_id": TEAM,
            "key_id": KEY_ID,
            "key_file": str(self.key_file),
            "topic": TOPIC,
            "endpoint": f"https://127.0.0.1:{self.port.getHost().port}",
            "sandbox_endpoint": f"https://127.0.0.1:{self.sandbox_port.getHost().port}",
            "ca_file": str(self.ca_file),
            "timeout": 10.0,
        }
        self.table.update(overrides)
        self.providers: list[APNsProvider] = []

    def provider(self, **overrides) -> APNsProvider:
        table = dict(self.table, **overrides)
        provider = APNsProvider(APNsConfig.from_dict(table), reactor, clock=self.clock)
        self.providers.append(provider)
        return provider

    async def stop(self) -> None:
        for request in self.device.held:
            request.setResponseCode(200)
            request.finish()
        for provider in self.providers:
            await provider.close()
        await self.port.stopListening()
        await self.sandbox_port.stopListening()


@pytest_twisted.async_yield_fixture
async def apns(tmp_path):
    fake = FakeAPNs(tmp_path)
    yield fake
    await fake.stop()


def target(kind: str = "ok", **extra) -> PushTarget:
    token = APNS_TOKENS.get(kind, kind)
    return PushTarget(user_id=7, target_id=1, platform="apns", token=token, app_id=TOPIC, extra=extra)


def note(**overrides) -> Notification:
    fields = dict(
        title="Alice",
        body="Lunch at noon?",
        badge=3,
        thread_id="1:7:8",
        collapse_id="msg-42",
        session_type=1,
        session_id=8,
        server_msg_id=42,
        sender_id=8,
        data={"msg_type": 1},
    )
    fields.update(overrides)
    return Notification(**fields)


@pytest_twisted.ensureDeferred
async def test_apns_alert_delivered_over_http2(apns):
    provider = apns.provider()
    assert IPushProvider.providedBy(provider)
    outcome = await provider.send(target(), note())
    assert outcome.ok, outcome
    assert apns.state.refused == []
    (seen,) = apns.state.requests
    assert seen.protocol == b"HTTP/2"
    assert seen.token == APNS_TOKENS["ok"]
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "alert"
    assert seen.headers["apns-priority"] == "10"
    assert seen.headers["apns-expiration"] == str(int(apns.clock.seconds()) + 86400)
    assert seen.headers["apns-collapse-id"] == "msg-42"
    assert seen.claims == {"iss": TEAM, "iat": int(apns.clock.seconds())}
    assert seen.payload == {
        "aps": {
            "alert": {"title": "Alice", "body": "Lunch at noon?"},
            "badge": 3,
            "sound": "default",
            "thread-id": "1:7:8",
            "mutable-content": 1,
        },
        "msg_type": 1,
        "session_type": 1,
        "session_id": 8,
        "server_msg_id": 42,
        "sender_id": 8,
    }


@pytest_twisted.ensureDeferred
async def test_apns_create_uses_the_table(apns):
    """The entry point the push feature calls: a table in, a provider out (real clock)."""
    provider = create(dict(apns.table), reactor)
    apns.providers.append(provider)
    apns.state.now = time.time
    outcome = await provider.send(target(), note(high_priority=False, ttl=0, collapse_id=""))
    assert outcome.ok, (outcome, apns.state.refused)
    (seen,) = apns.state.requests
    assert seen.headers["apns-priority"] == "5"
    assert seen.headers["apns-expiration"] == "0"
    assert "apns-collapse-id" not in seen.headers


@pytest_twisted.ensureDeferred
async def test_apns_jwt_reused_for_50_minutes_then_refreshed(apns):
    provider = apns.provider()
    for _ in range(3):
        assert (await provider.send(target(), note())).ok
    first = apns.state.requests[0].jwt
    assert [r.jwt for r in apns.state.requests] == [first] * 3
    apns.clock.advance(49 * 60)
    assert (await provider.send(target(), note())).ok
    assert apns.state.requests[-1].jwt == first
    apns.clock.advance(2 * 60)  # 51 minutes after it was made: a new one, well before Apple's hour
    assert (await provider.send(target(), note())).ok
    latest = apns.state.requests[-1]
    assert latest.jwt != first
    assert latest.claims["iat"] == int(apns.clock.seconds())
    assert provider.token.made == 2
    # One TLS connection carried every request: HTTP/2 streams on a kept connection.
    assert apns.state.connections == 1
    assert apns.state.refused == []


@pytest_twisted.ensureDeferred
async def test_apns_expired_provider_token_is_refreshed_and_retried(apns):
    provider = apns.provider()
    outcome = await provider.send(target("expired_jwt"), note())
    assert outcome.ok, outcome
    first, second = apns.state.requests
    assert first.jwt != second.jwt
    assert provider.token.made == 2
    # The new token is kept for the next sends.
    assert (await provider.send(target(), note())).ok
    assert apns.state.requests[-1].jwt == second.jwt


@pytest_twisted.ensureDeferred
async def test_apns_dead_tokens(apns):
    provider = apns.provider()
    gone = await provider.send(target("unregistered"), note())
    assert not gone.ok and gone.dead and "Unregistered" in gone.detail
    bad = await provider.send(target("bad_device"), note())
    assert not bad.ok and bad.dead and "BadDeviceToken" in bad.detail
    assert len(apns.state.requests) == 2
    # A token that is not hex never reaches APNs (nor changes the request's path).
    mangled = await provider.send(target("../../3/device/" + "a" * 64), note())
    assert mangled.dead and len(apns.state.requests) == 2


@pytest_twisted.ensureDeferred
async def test_apns_retry_statuses(apns):
    provider = apns.provider()
    busy = await provider.send(target("busy"), note())
    assert (busy.ok, busy.dead, busy.permanent, busy.retry_after) == (False, False, False, 7.0)
    unavailable = await provider.send(target("server_error"), note())
    assert (unavailable.ok, unavailable.dead, unavailable.permanent) == (False, False, False)
    assert unavailable.retry_after is None and "503" in unavailable.detail


@pytest_twisted.ensureDeferred
async def test_apns_other_client_errors_are_permanent(apns):
    provider = apns.provider()
    outcome = await provider.send(target("wrong_topic"), note())
    assert (outcome.ok, outcome.dead, outcome.permanent) == (False, False, True)
    assert "DeviceTokenNotForTopic" in outcome.detail


@pytest_twisted.ensureDeferred
async def test_apns_long_body_is_truncated_to_4096_bytes(apns):
    provider = apns.provider()
    body = "é" * 10000  # two bytes each in UTF-8
    outcome = await provider.send(target(), note(body=body, data={"blob": "x" * 500}))
    assert outcome.ok, (outcome, apns.state.refused)
    (seen,) = apns.state.requests
    sent = seen.payload["aps"]["alert"]["body"]
    assert seen.size <= 4096
    assert seen.size > 4000  # cut no more than needed
    assert sent.endswith("\u2026") and body.startswith(sent[:-1])
    assert seen.payload["blob"] == "x" * 500


@pytest_twisted.ensureDeferred
async def test_apns_data_too_large_is_permanent_and_not_sent(apns):
    provider = apns.provider()
    outcome = await provider.send(target(), note(data={"blob": "x" * 5000}))
    assert outcome.permanent and not outcome.ok
    assert apns.state.requests == []


@pytest_twisted.ensureDeferred
async def test_apns_voip_and_background_pushes(apns):
    provider = apns.provider()
    assert (await provider.send(target(), note(voip=True, high_priority=False))).ok
    assert (await provider.send(target(), note(title="", body=""))).ok
    assert apns.state.refused == []
    voip, background = apns.state.requests
    assert voip.headers["apns-topic"] == TOPIC + ".voip"
    assert voip.headers["apns-push-type"] == "voip" and voip.headers["apns-priority"] == "10"
    assert background.headers["apns-push-type"] == "background"
    assert background.headers["apns-priority"] == "5"
    assert background.payload["aps"] == {"badge": 3, "thread-id": "1:7:8", "content-available": 1}


@pytest_twisted.ensureDeferred
async def test_apns_sandbox_targets_use_the_sandbox_endpoint(apns):
    provider = apns.provider()
    assert (await provider.send(target(), note())).ok
    assert (await provider.send(target(sandbox=True), note())).ok
    production, sandbox = apns.state.requests
    assert production.port == apns.port.getHost().port
    assert sandbox.port == apns.sandbox_port.getHost().port


@pytest_twisted.ensureDeferred
async def test_apns_network_errors_are_retryable_outcomes(apns):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    provider = apns.provider(endpoint=f"https://127.0.0.1:{closed}")
    outcome = await provider.send(target(), note())
    assert (outcome.ok, outcome.dead, outcome.permanent) == (False, False, False)
    assert "network error" in outcome.detail


@pytest_twisted.ensureDeferred
async def test_apns_untrusted_certificate_is_refused(apns):
    """Without the test CA in ca_file, the server's certificate is not trusted: nothing is sent."""
    provider = apns.provider(ca_file="")
    outcome = await provider.send(target(), note())
    assert not outcome.ok and "network error" in outcome.detail
    assert apns.state.requests == []


@pytest_twisted.ensureDeferred
async def test_apns_pending_sends_are_bounded(apns):
    provider = apns.provider(threads=1, max_pending=1)
    apns.device.arrived = defer.Deferred()
    slow = provider.send(target("9" * 64), note())
    await apns.device.arrived  # the first send is in flight, held by the server
    refused = await provider.send(target(), note())
    assert (refused.ok, refused.retry_after) == (False, 1.0) and "busy" in refused.detail
    (held,) = apns.device.held
    apns.device.held.clear()
    held.setResponseCode(200)
    held.finish()
    assert (await slow).ok
    assert (await provider.send(target(), note())).ok


def test_apns_config_is_checked(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    with pytest.raises(ValueError, match="team_id"):
        APNsConfig.from_dict({"key_id": "K", "key_file": "k.p8"})
    with pytest.raises(ValueError, match="unknown"):
        APNsConfig.from_dict({"team_id": "T", "key_id": "K", "key_file": "k.p8", "tpoic": "x"})
    with pytest.raises(ValueError, match="jwt_refresh"):
        APNsConfig.from_dict({"team_id": "T", "key_id": "K", "key_file": "k.p8", "jwt_refresh": 3600})
    wrong = tmp_path / "rsa.pem"
    wrong.write_bytes(pem_private(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with pytest.raises(ValueError, match="P-256"):
        create({"team_id": "T", "key_id": "K", "key_file": str(wrong)}, task.Clock())


def test_apns_payload_json_is_compact():
    from coffeechat.pushproviders.apns import build_payload

    payload = build_payload(note(data={"aps": "ignored", "k": "v"}), "hi", "default")
    assert payload["aps"]["alert"]["body"] == "hi" and payload["k"] == "v"
    assert json.dumps(payload)  # serialisable
