"""The FCM provider against a local stand-in (tests/pushprovider_servers.py) over loopback: an
OAuth2 token endpoint that verifies the RS256 assertion with the public half of the test's key,
and a messages:send endpoint that checks the bearer token, the project and the message."""

from __future__ import annotations

import json
import socket
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.web import server

from coffeechat.pushproviders import IPushProvider, Notification, PushTarget
from coffeechat.pushproviders.fcm import FCMConfig, FCMProvider, create
from coffeechat.schema import pb
from tests.pushprovider_servers import (
    FCM_SCOPE,
    FCM_TOKENS,
    FCMState,
    MessagesSend,
    OAuthToken,
    _Prefix,
    pem_private,
    rsa_key,
)

PROJECT, EMAIL = "coffeechat-test", "push@coffeechat-test.iam.gserviceaccount.com"
HOLD = "fcm-hold-token"


class HoldingSend(MessagesSend):
    """Holds the sends to the HOLD token until the test releases them (a slow FCM)."""

    def __init__(self, state: FCMState) -> None:
        super().__init__(state)
        self.held: list = []
        self.arrived: defer.Deferred | None = None

    def render_POST(self, request):
        body = request.content.read()
        request.content.seek(0)
        if HOLD.encode() in body:
            self.held.append(request)
            if self.arrived is not None:
                arrived, self.arrived = self.arrived, None
                arrived.callback(None)
            return server.NOT_DONE_YET
        return super().render_POST(request)


class FakeFCM:
    def __init__(self, tmp_path) -> None:
        from twisted.web import resource

        self.clock = task.Clock()
        self.clock.advance(time.time())
        self.key = rsa_key()
        root = resource.Resource()
        self.state = FCMState(PROJECT, EMAIL, self.key.public_key(), "", self.clock.seconds)
        self.send = HoldingSend(self.state)
        root.putChild(b"token", OAuthToken(self.state))
        root.putChild(b"v1", _Prefix(self.send))
        self.port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.state.token_uri = f"{self.base}/token"
        self.account_file = tmp_path / "service-account.json"
        self.write_account(self.key)
        self.table = {"service_account_file": str(self.account_file), "endpoint": self.base, "allow_http": True}
        self.providers: list[FCMProvider] = []

    def write_account(self, key, path=None, **changes) -> None:
        info = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": pem_private(key).decode(),
            "client_email": EMAIL,
            "client_id": "1234567890",
            "token_uri": self.state.token_uri,
        }
        info.update(changes)
        (path or self.account_file).write_text(json.dumps(info))

    def provider(self, **overrides) -> FCMProvider:
        provider = FCMProvider(FCMConfig.from_dict(dict(self.table, **overrides)), reactor, clock=self.clock)
        self.providers.append(provider)
        return provider

    async def stop(self) -> None:
        for request in self.send.held:
            request.finish()
        for provider in self.providers:
            await provider.close()
        await self.port.stopListening()


@pytest_twisted.async_yield_fixture
async def fcm(tmp_path):
    fake = FakeFCM(tmp_path)
    yield fake
    await fake.stop()


def target(kind: str = "ok") -> PushTarget:
    return PushTarget(user_id=7, target_id=1, platform="fcm", token=FCM_TOKENS.get(kind, kind))


def note(**overrides) -> Notification:
    fields = dict(
        title="Alice",
        body="Lunch at noon?",
        badge=3,
        thread_id="c1-8",
        collapse_id="c1-8",
        session_type=1,
        session_id=8,
        server_msg_id=42,
        sender_id=8,
        data={"msg_type": 1, "extra": {"k": [1, 2]}, "from": "reserved by FCM"},
    )
    fields.update(overrides)
    return Notification(**fields)


@pytest_twisted.ensureDeferred
async def test_fcm_notification_delivered(fcm):
    provider = fcm.provider()
    assert IPushProvider.providedBy(provider) and provider.project_id == PROJECT
    outcome = await provider.send(target(), note())
    assert outcome.ok, (outcome, fcm.state.refused)
    assert outcome.detail == f"projects/{PROJECT}/messages/0:1"
    assert fcm.state.refused == []
    # The assertion the stand-in verified with the public key (RS256): its claims.
    (claims,) = fcm.state.assertions
    now = int(fcm.clock.seconds())
    assert claims == {"iss": EMAIL, "scope": FCM_SCOPE, "aud": fcm.state.token_uri, "iat": now, "exp": now + 3600}
    (message,) = fcm.state.messages
    assert message == {
        "token": FCM_TOKENS["ok"],
        "notification": {"title": "Alice", "body": "Lunch at noon?"},
        "data": {
            "session_type": "1",
            "session_id": "8",
            "server_msg_id": "42",
            "sender_id": "8",
            "msg_type": "1",
            "extra": '{"k":[1,2]}',
        },
        "android": {
            "priority": "HIGH",
            "ttl": "86400s",
            "collapse_key": "c1-8",
            "notification": {"notification_count": 3, "tag": "c1-8", "sound": "default"},
        },
        "apns": {
            "headers": {
                "apns-expiration": str(now + 86400),
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-collapse-id": "c1-8",
            },
            "payload": {"aps": {"badge": 3, "thread-id": "c1-8", "sound": "default", "mutable-content": 1}},
        },
    }


@pytest_twisted.ensureDeferred
async def test_fcm_low_priority_background_and_calls(fcm):
    provider = fcm.provider()
    assert (await provider.send(target(), note(high_priority=False, ttl=0, collapse_id=""))).ok
    assert (await provider.send(target(), note(title="", body=""))).ok
    assert (await provider.send(target(), note(voip=True, high_priority=False))).ok
    assert fcm.state.refused == []
    low, background, call = fcm.state.messages
    assert low["android"]["priority"] == "NORMAL" and low["android"]["ttl"] == "0s"
    assert "collapse_key" not in low["android"] and low["android"]["notification"]["tag"] == "c1-8"
    assert low["apns"]["headers"] == {"apns-expiration": "0", "apns-push-type": "alert", "apns-priority": "5"}
    assert "notification" not in background and "notification" not in background["android"]
    assert background["data"]["server_msg_id"] == "42"
    assert background["apns"]["headers"]["apns-push-type"] == "background"
    assert background["apns"]["headers"]["apns-priority"] == "5"
    assert background["apns"]["payload"]["aps"] == {"badge": 3, "thread-id": "c1-8", "content-available": 1}
    assert call["android"]["priority"] == "HIGH" and call["apns"]["headers"]["apns-priority"] == "10"


@pytest_twisted.ensureDeferred
async def test_fcm_access_token_cached_and_renewed_before_expiry(fcm):
    provider = fcm.provider()
    # Several sends at once before any token: one exchange, the others wait for it.
    outcomes = await defer.gatherResults([provider.send(target(), note()) for _ in range(5)])
    assert all(o.ok for o in outcomes), outcomes
    for _ in range(3):
        assert (await provider.send(target(), note())).ok
    assert len(fcm.state.assertions) == 1 and provider.token.exchanges == 1
    assert len(fcm.state.messages) == 8
    fcm.clock.advance(3599 - 300 - 5)  # the token lives 3599 s; renewed 300 s before it expires
    assert (await provider.send(target(), note())).ok
    assert len(fcm.state.assertions) == 1
    fcm.clock.advance(10)
    assert (await provider.send(target(), note())).ok
    assert len(fcm.state.assertions) == 2 and fcm.state.issued == ["ya29.test-1", "ya29.test-2"]
    assert fcm.state.assertions[1]["iat"] == int(fcm.clock.seconds())
    assert fcm.state.unauthorized == 0


@pytest_twisted.ensureDeferred
async def test_fcm_401_renews_the_token_once_and_retries(fcm):
    provider = fcm.provider()
    assert (await provider.send(target(), note())).ok
    fcm.state.revoked.add("ya29.test-1")  # Google revoked it early
    outcome = await provider.send(target(), note(body="after the 401"))
    assert outcome.ok, outcome
    assert fcm.state.unauthorized == 1 and len(fcm.state.assertions) == 2
    assert fcm.state.messages[-1]["notification"]["body"] == "after the 401"
    # Refused even with a new token: one renewal, then a retryable outcome (no loop).
    fcm.state.revoked.update({"ya29.test-2", "ya29.test-3"})
    again = await provider.send(target(), note())
    assert (again.ok, again.dead, again.permanent) == (False, False, False) and "401" in again.detail
    assert fcm.state.unauthorized == 3 and len(fcm.state.assertions) == 3


@pytest_twisted.ensureDeferred
async def test_fcm_dead_tokens(fcm):
    provider = fcm.provider()
    gone = await provider.send(target("unregistered"), note())
    assert (gone.ok, gone.dead) == (False, True) and "UNREGISTERED" in gone.detail
    invalid = await provider.send(target("bad_token"), note())
    assert (invalid.ok, invalid.dead) == (False, True) and "INVALID_ARGUMENT" in invalid.detail
    # A 400 about the payload is not the token's fault: permanent, the token stays.
    payload = await provider.send(target("bad_payload"), note())
    assert (payload.ok, payload.dead, payload.permanent) == (False, False, True)
    # Not a registration token at all: dead without asking FCM.
    sent = len(fcm.state.messages)
    assert (await provider.send(target("no spaces allowed"), note())).dead
    assert len(fcm.state.messages) == sent == 3
    assert provider.check_target("no spaces allowed", {}) and not provider.check_target(FCM_TOKENS["ok"], {})


@pytest_twisted.ensureDeferred
async def test_fcm_503_is_retried_after_retry_after(fcm):
    provider = fcm.provider()
    busy = await provider.send(target("busy"), note())
    assert (busy.ok, busy.dead, busy.permanent, busy.retry_after) == (False, False, False, 5.0)
    assert "UNAVAILABLE" in busy.detail


@pytest_twisted.ensureDeferred
async def test_fcm_wrong_key_is_refused_by_the_token_endpoint(fcm, tmp_path):
    other = tmp_path / "other.json"
    fcm.write_account(rsa_key(), path=other)  # a key Google does not know
    provider = fcm.provider(service_account_file=str(other))
    outcome = await provider.send(target(), note())
    assert (outcome.ok, outcome.dead, outcome.permanent) == (False, False, False)
    assert "token exchange: HTTP 400" in outcome.detail and "invalid_grant" in outcome.detail
    assert fcm.state.messages == [] and fcm.state.issued == []
    assert fcm.state.refused and "Signature verification failed" in fcm.state.refused[0]
    # A failed exchange is not repeated for every send for a few seconds.
    assert not (await provider.send(target(), note())).ok
    assert provider.token.exchanges == 1
    fcm.clock.advance(6)
    assert not (await provider.send(target(), note())).ok
    assert provider.token.exchanges == 2


@pytest_twisted.ensureDeferred
async def test_fcm_project_and_token_uri_overrides(fcm):
    provider = fcm.provider(project_id="another-project")
    outcome = await provider.send(target(), note())
    assert not outcome.ok and "INVALID_ARGUMENT" in outcome.detail  # the stand-in wants PROJECT
    assert "path /v1/projects/another-project/messages:send" in fcm.state.refused[0]
    fcm.write_account(fcm.key, token_uri="https://oauth2.googleapis.com/token")
    provider = fcm.provider(token_uri=fcm.state.token_uri)
    assert (await provider.send(target(), note())).ok


@pytest_twisted.ensureDeferred
async def test_fcm_long_body_is_cut_to_fit(fcm):
    provider = fcm.provider()
    body = "é" * 5000
    assert (await provider.send(target(), note(body=body))).ok
    sent = fcm.state.messages[0]["notification"]["body"]
    assert sent.endswith("\u2026") and body.startswith(sent[:-1]) and len(sent) > 1500
    too_big = await provider.send(target(), note(data={"blob": "x" * 5000}))
    assert too_big.permanent and len(fcm.state.messages) == 1


@pytest_twisted.ensureDeferred
async def test_fcm_in_flight_and_pending_are_bounded(fcm):
    provider = fcm.provider(max_in_flight=1, max_pending=2)
    fcm.send.arrived = defer.Deferred()
    slow = provider.send(target(HOLD), note())
    await fcm.send.arrived  # in flight, held by the stand-in
    waiting = provider.send(target(), note())  # waits for the one slot
    refused = await provider.send(target(), note())
    assert (refused.ok, refused.retry_after) == (False, 1.0) and "busy" in refused.detail
    await task.deferLater(reactor, 0.05, lambda: None)
    assert not waiting.called and len(fcm.send.held) == 1 and fcm.state.messages == []  # one at a time
    (held,) = fcm.send.held
    fcm.send.held.clear()
    held.write(json.dumps({"name": "held"}).encode())
    held.finish()
    assert (await slow).ok
    assert (await waiting).ok
    assert (await provider.send(target(), note())).ok


@pytest_twisted.ensureDeferred
async def test_fcm_network_errors_and_close(fcm):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    provider = fcm.provider(endpoint=f"http://127.0.0.1:{closed}")
    outcome = await provider.send(target(), note())
    assert (outcome.ok, outcome.dead, outcome.permanent) == (False, False, False)
    assert "network error" in outcome.detail
    # close() cancels what is in flight: a retryable outcome, not a hang.
    held_provider = fcm.provider()
    fcm.send.arrived = defer.Deferred()
    slow = held_provider.send(target(HOLD), note())
    await fcm.send.arrived
    await held_provider.close()
    cancelled = await slow
    assert not cancelled.ok and not cancelled.dead
    assert (await held_provider.send(target(), note())).detail == "provider closed"


def test_fcm_config_is_checked(tmp_path):
    with pytest.raises(ValueError, match="service_account_file"):
        FCMConfig.from_dict({})
    with pytest.raises(ValueError, match="unknown"):
        FCMConfig.from_dict({"service_account_file": "x.json", "projectid": "p"})
    with pytest.raises(ValueError, match="max_in_flight"):
        FCMConfig.from_dict({"service_account_file": "x.json", "max_in_flight": 0})
    account = tmp_path / "sa.json"
    base = {
        "type": "service_account",
        "client_email": EMAIL,
        "private_key": pem_private(rsa_key()).decode(),
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    account.write_text(json.dumps(base))
    with pytest.raises(ValueError, match="project_id"):
        create({"service_account_file": str(account)}, task.Clock())
    assert create({"service_account_file": str(account), "project_id": "p"}, task.Clock()).project_id == "p"
    with pytest.raises(ValueError, match="https"):
        create({"service_account_file": str(account), "project_id": "p", "endpoint": "http://x"}, task.Clock())
    from tests.pushprovider_servers import p8_key

    account.write_text(json.dumps(dict(base, project_id="p", private_key=pem_private(p8_key()).decode())))
    with pytest.raises(ValueError, match="not an RSA key"):
        create({"service_account_file": str(account)}, task.Clock())
    account.write_text(json.dumps(dict(base, project_id="p", client_email="")))
    with pytest.raises(ValueError, match="client_email"):
        create({"service_account_file": str(account)}, task.Clock())
    with pytest.raises(OSError):
        create({"service_account_file": str(tmp_path / "missing.json")}, task.Clock())


# -- through the push feature


@pytest_twisted.async_yield_fixture
async def fcm_node(tmp_path):
    from .conftest import node_config, start_node, stop_node

    fake = FakeFCM(tmp_path)
    fake.state.now = time.time  # the node runs on the real clock
    settings = {
        "push.fcm": dict(fake.table),
        "push.retry_base": 0.05,
        "push.badge_ttl": 0.0,
        "push.interval": 0.01,
    }
    live = await start_node(node_config(tmp_path, **settings))
    yield live, fake
    await stop_node(live)
    await fake.stop()


@pytest_twisted.ensureDeferred
async def test_fcm_through_the_push_feature(fcm_node):
    from .test_cluster_e2e import until

    live, fake = fcm_node
    push = live.core.feature("push")
    alice_id = await live.register("alice", nick="Alice")
    bob_id = await live.register("bobby", nick="Bob")
    alice = await live.login("alice")
    bob = await live.login("bobby")
    bad = await bob.push_register("fcm", "not a token")
    assert bad.result_code == pb.kCIM_ERR_PUSH_BAD_TARGET
    assert (await bob.push_register("fcm", FCM_TOKENS["ok"])).result_code == 200
    assert (await bob.push_register("fcm", FCM_TOKENS["unregistered"])).result_code == 200
    bob.transport.loseConnection()  # offline, not signed out (a logout unregisters the targets)
    await until(lambda: not live.core.router.devices_of(bob_id))

    ack = await alice.send_message(bob_id, "hello bob")
    await until(lambda: len(fake.state.messages) == 2)
    assert fake.state.refused == []
    by_token = {m["token"]: m for m in fake.state.messages}
    message = by_token[FCM_TOKENS["ok"]]
    assert message["notification"] == {"title": "Alice", "body": "hello bob"}
    assert message["data"]["server_msg_id"] == str(ack.server_msg_id)
    assert message["data"]["session_id"] == str(alice_id)
    assert message["android"]["notification"]["tag"] == f"c1-{alice_id}"
    assert message["apns"]["payload"]["aps"]["thread-id"] == f"c1-{alice_id}"
    # UNREGISTERED: the feature forgets that target, keeps the other.
    await until(lambda: push.stats["dead"] == 1)
    targets = await push.store.targets_of([bob_id])
    assert [t.target.token for t in targets[bob_id]] == [FCM_TOKENS["ok"]]
    assert len(fake.state.assertions) == 1  # one token exchange for both sends


def test_fcm_answers_map_to_outcomes():
    """The answers the stand-in does not give: what each becomes."""
    from coffeechat.pushproviders.fcm import FCMError, outcome_of

    def error(status: int, code: str, fields: tuple[str, ...] = ()) -> FCMError:
        body = {"error": {"code": status, "status": "X", "message": "m", "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code},
            {"@type": "type.googleapis.com/google.rpc.BadRequest",
             "fieldViolations": [{"field": f} for f in fields]}]}}  # fmt: skip
        parsed = FCMError.parse(json.dumps(body).encode())
        assert parsed.error_code == code and parsed.fields == fields
        return parsed

    def kind(outcome) -> str:
        return "dead" if outcome.dead else "permanent" if outcome.permanent else "ok" if outcome.ok else "retry"

    assert kind(outcome_of(403, error(403, "SENDER_ID_MISMATCH"), None)) == "permanent"
    assert kind(outcome_of(401, error(401, "THIRD_PARTY_AUTH_ERROR"), None)) == "permanent"
    assert kind(outcome_of(401, error(401, ""), None)) == "retry"
    assert kind(outcome_of(429, error(429, "QUOTA_EXCEEDED"), 30.0)) == "retry"
    assert outcome_of(429, error(429, "QUOTA_EXCEEDED"), 30.0).retry_after == 30.0
    assert kind(outcome_of(500, error(500, "INTERNAL"), None)) == "retry"
    assert kind(outcome_of(400, error(400, "INVALID_ARGUMENT", ("message.token",)), None)) == "dead"
    assert kind(outcome_of(400, error(400, "INVALID_ARGUMENT", ("message.data",)), None)) == "permanent"
    assert kind(outcome_of(404, FCMError.parse(b"<html>not json</html>"), None)) == "dead"
    assert kind(outcome_of(502, FCMError.parse(b"bad gateway"), None)) == "retry"
