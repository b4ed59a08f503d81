"""ICE servers for calls (coffeechat/features/ice.py): exact credentials on the memory node, and an
allocation on Debian's real coturn with credentials fetched over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
from io import BytesIO

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads
from twisted.internet.testing import MemoryReactorClock
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from coffeechat import openapi
from coffeechat.config import ConfigError, load_config
from coffeechat.errors import ErrorCode
from coffeechat.features.ice import turn_credentials
from coffeechat.modules import HttpCall, HttpReply

from .conftest import node_config, start_node, stop_node
from .memory_node import MemoryNode, md5

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

SECRET = "coturn-static-secret"
STUN = ["stun:stun.example.org:3478"]
TURN = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
NOW = 1_780_000_000


def result(d):
    return MemoryNode.result(defer.ensureDeferred(d))


def settled(node: MemoryNode, coroutine):
    """The outcome of ``coroutine`` once the node's reactor turn has run (token lookups are
    batched per turn)."""
    d = defer.ensureDeferred(coroutine)
    node.clock.advance(0)
    return MemoryNode.result(d)


def hmac_b64(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def ice_node(**settings) -> MemoryNode:
    clock = MemoryReactorClock()
    clock.advance(NOW)
    return MemoryNode(clock=clock, **settings)


def route_of(node: MemoryNode):
    (route,) = [r for r in node.core.registry.routes if r.method == "GET" and r.segments == ("api", "ice-servers")]
    return route


def get(node: MemoryNode, bearer: str):
    """``GET /api/ice-servers`` through the route's handler, as the HTTP transport calls it."""
    call = HttpCall(method="GET", params={}, query={}, body=b"", bearer=bearer)
    return settled(node, route_of(node).handler(call))


def token_of(node: MemoryNode, user_id: int) -> str:
    token, _ = settled(node, node.core.feature("accounts").issue_token(user_id, "test"))
    return token


def test_turn_credentials_follow_the_rest_api_scheme():
    username, credential = turn_credentials(SECRET, 42, NOW + 600)
    assert username == f"{NOW + 600}:42"
    assert credential == hmac_b64(SECRET, username)
    # another secret, user or expiry: another credential
    assert turn_credentials("other", 42, NOW + 600)[1] != credential
    assert turn_credentials(SECRET, 43, NOW + 600)[1] != credential
    assert turn_credentials(SECRET, 42, NOW + 601)[1] != credential


def test_a_user_gets_stun_and_turn_with_credentials_expiring_after_ttl():
    node = ice_node(**{"ice.stun": STUN, "ice.turn": TURN, "ice.turn_secret": SECRET, "ice.ttl": 3600})
    alice = node.user("alice")
    answer = get(node, token_of(node, alice))
    assert answer["ttl"] == 3600
    stun, turn = answer["ice_servers"]
    assert stun == {"urls": STUN}
    assert turn["urls"] == TURN
    assert turn["username"] == f"{NOW + 3600}:{alice}"
    assert turn["credential"] == hmac_b64(SECRET, turn["username"])
    assert json.loads(json.dumps(answer)) == answer  # plain JSON, as RTCPeerConnection takes it

    # the module's clock, not the machine's: an hour later, a later expiry
    node.clock.advance(3600)
    later = get(node, token_of(node, alice))["ice_servers"][1]
    assert later["username"] == f"{NOW + 7200}:{alice}"
    assert later["credential"] == hmac_b64(SECRET, later["username"])
    assert node.core.feature("ice").issued == 2


def test_without_a_secret_there_is_no_turn_entry():
    node = ice_node(**{"ice.stun": STUN})
    answer = get(node, token_of(node, node.user("alice")))
    assert answer == {"ice_servers": [{"urls": STUN}], "ttl": 86400}
    assert node.core.feature("ice").issued == 0
    # nothing configured (the default): an empty list, which a browser takes as "host candidates only"
    bare = ice_node()
    assert get(bare, token_of(bare, bare.user("bobby"))) == {"ice_servers": [], "ttl": 86400}


@pytest.mark.parametrize("bearer", ["", "not-a-token"])
def test_a_missing_or_wrong_token_is_refused_with_401(bearer):
    node = ice_node(**{"ice.turn": TURN, "ice.turn_secret": SECRET})
    node.user("alice")
    reply = get(node, bearer)
    assert isinstance(reply, HttpReply) and reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(reply.body)["error_code"] == ErrorCode.LOGIN_INVALID_USER_TOKEN
    assert node.core.feature("ice").issued == 0


def test_a_disabled_user_gets_no_credentials():
    node = ice_node(**{"ice.turn": TURN, "ice.turn_secret": SECRET})
    alice = node.user("alice")
    token = token_of(node, alice)
    settled(node, node.core.feature("accounts").set_disabled(alice, True))
    reply = get(node, token)
    assert isinstance(reply, HttpReply) and reply.status == 403
    assert json.loads(reply.body)["error_code"] == ErrorCode.USER_DISABLED


def test_the_route_is_in_the_public_openapi_document():
    node = ice_node()
    document = openapi.document(node.core.registry.routes, False, "test")
    operation = document["paths"]["/api/ice-servers"]["get"]
    assert operation["security"] == [{"userToken": []}]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"ice_servers", "ttl"} <= set(schema["required"])
    assert schema["properties"]["ice_servers"]["items"]["required"] == ["urls"]
    assert "/api/ice-servers" not in openapi.document(node.core.registry.routes, True, "test")["paths"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ice.stun": ["http://stun.example.org"]}, "ice.stun"),
        ({"ice.stun": ["turn:turn.example.org:3478"]}, "ice.stun"),
        ({"ice.stun": ["stun:stun.example.org:3478?transport=udp"]}, "only turn"),
        ({"ice.stun": [3478]}, "ice.stun must be a list of strings"),
        ({"ice.stun": [""]}, "ice.stun"),
        ({"ice.stun": ["stun:host with space"]}, "ice.stun"),
        ({"ice.stun": ["stun:stun.example.org:70000"]}, "port outside"),
        ({"ice.turn": ["stun:stun.example.org"], "ice.turn_secret": SECRET}, "ice.turn"),
        ({"ice.turn": ["turn:turn.example.org:3478?transport=sctp"], "ice.turn_secret": SECRET}, "ice.turn"),
        ({"ice.turn": TURN}, "turn_secret is empty"),
        ({"ice.turn_secret": SECRET}, "names no TURN server"),
        ({"ice.ttl": 59}, "ice.ttl"),
        ({"ice.ttl": 7 * 24 * 3600 + 1}, "ice.ttl"),
        ({"ice.ttl": True}, "ice.ttl"),
    ],
)
def test_bad_ice_settings_are_refused_with_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, settings)


def test_good_ice_settings_load():
    config = load_config(
        None,
        {
            "ice.stun": ["stun:stun.example.org", "stuns:[2001:db8::1]:5349", "stun:192.0.2.1:3478"],
            "ice.turn": TURN,
            "ice.turn_secret": SECRET,
            "ice.ttl": 60,
        },
    )
    assert config.ice.ttl == 60 and config.ice.stun[1] == "stuns:[2001:db8::1]:5349"


# -- end to end: Debian's coturn


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is missing (Debian package coturn) and CI is set")
        pytest.skip(f"{binary} is not installed (Debian package coturn)")
    return path


def free_port() -> int:
    """A port free on loopback for both UDP and TCP (turnserver listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def coturn(tmp_path):
    binary = need("turnserver")
    need("turnutils_uclient")
    port = free_port()
    low = random.randrange(20000, 60000, 200)
    log = open(tmp_path / "turnserver.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            binary,
            "--use-auth-secret",
            f"--static-auth-secret={SECRET}",
            "--realm=coffeechat",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            f"--min-port={low}",
            f"--max-port={low + 199}",
            "--allow-loopback-peers",  # the test's peer is the other uclient, on loopback
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-rfc5780",
            f"--db={tmp_path / 'turndb'}",
            f"--pidfile={tmp_path / 'turnserver.pid'}",
            "--log-file=stdout",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            log.close()
            pytest.fail(f"turnserver exited: {(tmp_path / 'turnserver.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("turnserver did not listen within 15 s")
            time.sleep(0.1)
    yield port
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def allocate(port: int, username: str, credential: str) -> subprocess.CompletedProcess:
    """``turnutils_uclient``: two clients allocate relays and send each other packets through them."""
    return subprocess.run(
        ["turnutils_uclient", "-y", "-n", "2", "-p", str(port), "-u", username, "-w", credential, "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def http(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {b"Authorization": [f"Bearer {token}".encode()]} if token else {}
    producer = None
    if body is not None:
        producer = FileBodyProducer(BytesIO(json.dumps(body).encode()))
        headers[b"Content-Type"] = [b"application/json"]
    response = await Agent(reactor).request(method.encode(), url.encode(), Headers(headers), producer)
    return response.code, json.loads(await readBody(response))


@pytest_twisted.ensureDeferred
async def test_coturn_allocates_with_the_credentials_and_refuses_tampered_or_expired_ones(coturn, tmp_path):
    port = coturn
    turn_url = f"turn:127.0.0.1:{port}?transport=udp"
    live = await start_node(
        node_config(
            tmp_path,
            **{
                "listen.ws": [],
                "ice.stun": [f"stun:127.0.0.1:{port}"],
                "ice.turn": [turn_url],
                "ice.turn_secret": SECRET,
                "ice.ttl": 600,
            },
        )
    )
    try:
        alice = await live.register("alice")
        status, login = await http(
            "POST", live.http_url + "/api/login", body={"userName": "alice", "userPwd": md5("secret")}
        )
        assert status == 200 and login["error_code"] == 200, login

        status, answer = await http("GET", live.http_url + "/api/ice-servers", login["token"])
        assert status == 200 and answer["error_code"] == 200, answer
        assert answer["ttl"] == 600
        stun, turn = answer["ice_servers"]
        assert stun == {"urls": [f"stun:127.0.0.1:{port}"]} and turn["urls"] == [turn_url]
        expiry, _, user = turn["username"].partition(":")
        assert user == str(alice) and abs(int(expiry) - (time.time() + 600)) < 5

        for token in (None, "not-a-token"):
            status, refused = await http("GET", live.http_url + "/api/ice-servers", token)
            assert status == 401 and refused["error_code"] == ErrorCode.LOGIN_INVALID_USER_TOKEN

        done = await threads.deferToThread(allocate, port, turn["username"], turn["credential"])
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        totals = re.findall(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", done.stdout)
        assert totals and int(totals[-1][1]) > 0, done.stdout[-2000:]  # packets came back through the relays

        wrong = base64.b64encode(bytes(b ^ 1 for b in base64.b64decode(turn["credential"]))).decode()
        tampered = await threads.deferToThread(allocate, port, turn["username"], wrong)
        assert tampered.returncode != 0 and "Cannot complete Allocation" in tampered.stdout + tampered.stderr

        past_username, past_credential = turn_credentials(SECRET, alice, int(time.time()) - 60)
        expired = await threads.deferToThread(allocate, port, past_username, past_credential)
        assert expired.returncode != 0 and "Cannot complete Allocation" in expired.stdout + expired.stderr
    finally:
        await stop_node(live)
