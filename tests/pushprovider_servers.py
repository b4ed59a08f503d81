"""Local stand-ins for APNs and FCM that check each request as the real services do.

The APNs one speaks HTTP/2 over TLS (ALPN h2) with a certificate from a CA made here, and checks the
provider JWT (ES256, kid, iss, fresh iat) against the public half of the test's P-256 key; the FCM one
(HTTP/1.1) has an OAuth2 token endpoint that checks the RS256 assertion against the test's RSA key,
and a messages:send endpoint that checks the bearer token, project id and message shape.
Both answer by device token, so a test picks the answer by the token it registers.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from twisted.internet import ssl
from twisted.web import resource, server

# -- keys and certificates --------------------------------------------------------------------


def p8_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_private(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class LocalCA:
    ca_pem: bytes
    server_key_pem: bytes
    server_cert_pem: bytes

    def server_options(self, protocols: list[bytes]) -> ssl.CertificateOptions:
        private = ssl.PrivateCertificate.loadPEM(self.server_key_pem + self.server_cert_pem)
        return ssl.CertificateOptions(
            privateKey=private.privateKey.original,
            certificate=private.original,
            acceptableProtocols=protocols,
        )


def make_ca() -> LocalCA:
    """A CA and a certificate it issued for 127.0.0.1 / localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CoffeeChat test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return LocalCA(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=pem_private(key),
        server_cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


def _json(request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    for name, value in (headers or {}).items():
        request.setHeader(name.encode(), value.encode())
    return json.dumps(body).encode()


# -- APNs -------------------------------------------------------------------------------------

APNS_TOKENS = {
    "ok": "a" * 64,
    "unregistered": "b" * 64,
    "busy": "c" * 64,
    "expired_jwt": "d" * 64,
    "bad_device": "e" * 64,
    "wrong_topic": "f" * 64,
    "server_error": "0" * 64,
}


@dataclass
class APNsRequest:
    token: str
    port: int
    protocol: bytes
    headers: dict[str, str]
    claims: dict[str, Any]
    jwt: str
    payload: dict[str, Any]
    size: int


@dataclass
class APNsState:
    """What the fake APNs expects and what it saw."""

    team_id: str
    key_id: str
    public_key: Any
    topic: str
    now: Any  # () -> float: the clock the provider's iat must agree with
    requests: list[APNsRequest] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # requests refused as malformed, and why
    expired_once: set[str] = field(default_factory=set)
    connections: int = 0


class APNsDevice(resource.Resource):
    isLeaf = True

    def __init__(self, state: APNsState) -> None:
        super().__init__()
        self.state = state

    def render(self, request) -> bytes:
        try:
            return self._render(request)
        except AssertionError as error:
            self.state.refused.append(str(error))
            return _json(request, 400, {"reason": "BadRequestByTest", "detail": str(error)})

    def _render(self, request) -> bytes:
        state = self.state
        assert request.method == b"POST", f"method {request.method!r}"
        assert request.clientproto == b"HTTP/2", f"protocol {request.clientproto!r}, not HTTP/2"
        assert request.isSecure(), "not over TLS"
        path = request.path.decode()
        assert path.startswith("/3/device/"), f"path {path}"
        token = path[len("/3/device/") :]
        headers = {
            name.decode().lower(): values[-1].decode() for name, values in request.requestHeaders.getAllRawHeaders()
        }
        # The provider token.
        authorization = headers.get("authorization", "")
        assert authorization.startswith("bearer "), f"authorization {authorization!r}"
        provider_jwt = authorization[len("bearer ") :]
        header = jwt.get_unverified_header(provider_jwt)
        assert header.get("alg") == "ES256", f"alg {header.get('alg')}"
        assert header.get("kid") == state.key_id, f"kid {header.get('kid')}"
        claims = jwt.decode(
            provider_jwt,
            state.public_key,
            algorithms=["ES256"],
            options={"verify_iat": False, "require": ["iss", "iat"]},
        )
        assert claims["iss"] == state.team_id, f"iss {claims['iss']}"
        age = state.now() - claims["iat"]
        # Apple refuses a token older than an hour (ExpiredProviderToken) or from the future.
        if age > 3600:
            return _json(request, 403, {"reason": "ExpiredProviderToken"})
        assert age >= -60, f"iat {claims['iat']} in the future"
        # The apns-* headers.
        push_type = headers.get("apns-push-type")
        assert push_type in ("alert", "voip", "background"), f"apns-push-type {push_type}"
        topic = headers.get("apns-topic")
        expected_topic = state.topic + ".voip" if push_type == "voip" else state.topic
        assert topic == expected_topic, f"apns-topic {topic} for {push_type}"
        priority = headers.get("apns-priority")
        assert priority in ("10", "5"), f"apns-priority {priority}"
        if push_type == "background":
            assert priority == "5", "background push with priority 10"
        expiration = headers.get("apns-expiration", "")
        assert expiration.isdigit(), f"apns-expiration {expiration!r}"
        if "apns-collapse-id" in headers:
            assert len(headers["apns-collapse-id"].encode()) <= 64, "apns-collapse-id over 64 bytes"
        body = request.content.read()
        if len(body) > 4096:
            return _json(request, 413, {"reason": "PayloadTooLarge"})
        payload = json.loads(body)
        aps = payload["aps"]
        assert isinstance(aps.get("badge"), int), "aps.badge"
        if push_type == "background":
            assert aps.get("content-available") == 1 and "alert" not in aps, "background payload"
        else:
            assert isinstance(aps["alert"]["body"], str), "aps.alert.body"
        state.requests.append(
            APNsRequest(
                token, request.getHost().port, request.clientproto, headers, claims, provider_jwt, payload, len(body)
            )
        )
        tokens = APNS_TOKENS
        request.setHeader(b"apns-id", b"11111111-2222-3333-4444-555555555555")
        if token == tokens["unregistered"]:
            return _json(request, 410, {"reason": "Unregistered", "timestamp": 1700000000000})
        if token == tokens["busy"]:
            return _json(request, 429, {"reason": "TooManyRequests"}, {"retry-after": "7"})
        if token == tokens["server_error"]:
            return _json(request, 503, {"reason": "ServiceUnavailable"})
        if token == tokens["bad_device"]:
            return _json(request, 400, {"reason": "BadDeviceToken"})
        if token == tokens["wrong_topic"]:
            return _json(request, 400, {"reason": "DeviceTokenNotForTopic"})
        if provider_jwt in state.expired_once:  # a token this server once called expired stays so
            return _json(request, 403, {"reason": "ExpiredProviderToken"})
        if token == tokens["expired_jwt"] and not state.expired_once:
            state.expired_once.add(provider_jwt)
            return _json(request, 403, {"reason": "ExpiredProviderToken"})
        request.setResponseCode(200)
        return b""


class CountingSite(server.Site):
    """A Site that counts the connections made to it (HTTP/2 reuse is measurable)."""

    def __init__(self, root, state) -> None:
        super().__init__(root)
        self.state = state

    def buildProtocol(self, addr):
        self.state.connections += 1
        return super().buildProtocol(addr)


# -- FCM --------------------------------------------------------------------------------------

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_TOKENS = {
    "ok": "fcm-ok-token",
    "unregistered": "fcm-unregistered",
    "busy": "fcm-busy",
    "bad_token": "fcm-bad-token",
    "bad_payload": "fcm-bad-payload",
}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FCMState:
    project_id: str
    client_email: str
    public_key: Any
    token_uri: str  # what the assertion's aud must be
    now: Any
    expires_in: int = 3599
    issued: list[str] = field(default_factory=list)  # access tokens handed out
    revoked: set[str] = field(default_factory=set)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unauthorized: int = 0


class OAuthToken(resource.Resource):
    isLeaf = True

    def __init__(self, state: FCMState) -> None:
        super().__init__()
        self.state = state

    def render_POST(self, request) -> bytes:
        state = self.state
        try:
            content_type = request.getHeader(b"content-type") or b""
            assert content_type.startswith(b"application/x-www-form-urlencoded"), f"content-type {content_type!r}"
            form = parse_qs(request.content.read().decode())
            assert form.get("grant_type") == ["urn:ietf:params:oauth:grant-type:jwt-bearer"], f"grant_type {form}"
            assertion = form["assertion"][0]
            header = jwt.get_unverified_header(assertion)
            assert header.get("alg") == "RS256", f"alg {header}"
            claims = jwt.decode(
                assertion,
                state.public_key,
                algorithms=["RS256"],
                audience=state.token_uri,
                options={"verify_exp": False, "verify_iat": False, "require": ["iss", "scope", "aud", "iat", "exp"]},
            )
            assert claims["iss"] == state.client_email, f"iss {claims['iss']}"
            assert claims["scope"] == FCM_SCOPE, f"scope {claims['scope']}"
            assert 0 < claims["exp"] - claims["iat"] <= 3600, "exp - iat over an hour"
            assert abs(state.now() - claims["iat"]) <= 60, "iat not fresh"
        except (AssertionError, KeyError, jwt.PyJWTError) as error:
            state.refused.append(f"oauth: {error}")
            return _json(request, 400, {"error": "invalid_grant", "error_description": str(error)})
        state.assertions.append(claims)
        token = f"ya29.test-{len(state.issued) + 1}"
        state.issued.append(token)
        return _json(request, 200, {"access_token": token, "expires_in": state.expires_in, "token_type": "Bearer"})


def _fcm_error(request, status: int, code: str, message: str, details: list | None = None, headers=None) -> bytes:
    return _json(
        request,
        status,
        {"error": {"code": status, "message": message, "status": code, "details": details or []}},
        headers,
    )


class MessagesSend(resource.Resource):
    isLeaf = True

    def __init__(self, state: FCMState) -> None:
        super().__init__()
        self.state = state

    def render_POST(self, request) -> bytes:
        state = self.state
        authorization = (request.getHeader(b"authorization") or b"").decode()
        bearer = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
        if bearer not in state.issued or bearer in state.revoked:
            state.unauthorized += 1
            return _fcm_error(request, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        path = request.path.decode()
        expected = f"/v1/projects/{state.project_id}/messages:send"
        try:
            assert path == expected, f"path {path}"
            assert (request.getHeader(b"content-type") or b"").startswith(b"application/json"), "content-type"
            body = json.loads(request.content.read())
            message = body["message"]
            assert set(body) == {"message"}, f"top-level keys {sorted(body)}"
            assert isinstance(message["token"], str) and message["token"], "message.token"
            data = message.get("data", {})
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()), (
                "data values must be strings"
            )
            if "notification" in message:
                assert set(message["notification"]) <= {"title", "body", "image"}, "notification keys"
            android = message.get("android", {})
            assert android.get("priority", "HIGH") in ("HIGH", "NORMAL"), "android.priority"
            if "ttl" in android:
                assert android["ttl"].endswith("s") and android["ttl"][:-1].isdigit(), f"android.ttl {android['ttl']}"
            if "notification" in android:
                count = android["notification"].get("notification_count")
                assert count is None or isinstance(count, int), "notification_count"
            apns = message.get("apns", {})
            assert all(isinstance(v, str) for v in apns.get("headers", {}).values()), "apns.headers must be strings"
        except (AssertionError, KeyError, TypeError, ValueError) as error:
            state.refused.append(f"send: {error}")
            return _fcm_error(request, 400, "INVALID_ARGUMENT", f"Invalid JSON payload: {error}")
        state.messages.append(message)
        token = message["token"]
        if token == FCM_TOKENS["unregistered"]:
            return _fcm_error(
                request,
                404,
                "NOT_FOUND",
                "Requested entity was not found.",
                [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}],
            )
        if token == FCM_TOKENS["busy"]:
            return _fcm_error(
                request,
                503,
                "UNAVAILABLE",
                "The service is currently unavailable.",
                [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNAVAILABLE"}],
                {"retry-after": "5"},
            )
        if token == FCM_TOKENS["bad_token"]:
            return _fcm_error(
                request,
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                [
                    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
                    },
                ],
            )
        if token == FCM_TOKENS["bad_payload"]:
            return _fcm_error(
                request,
                400,
                "INVALID_ARGUMENT",
                "Invalid value at 'message.android.ttl'",
                [
                    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.android.ttl", "description": "Invalid duration"}],
                    },
                ],
            )
        return _json(request, 200, {"name": f"projects/{state.project_id}/messages/0:{len(state.messages)}"})


def fcm_site(state: FCMState) -> server.Site:
    root = resource.Resource()
    root.putChild(b"token", OAuthToken(state))
    root.putChild(b"v1", _Prefix(MessagesSend(state)))
    return server.Site(root)


class _Prefix(resource.Resource):
    """Everything under /v1/ goes to one leaf (the path is checked there)."""

    def __init__(self, leaf: resource.Resource) -> None:
        super().__init__()
        self.leaf = leaf

    def getChild(self, path, request):
        return self.leaf
