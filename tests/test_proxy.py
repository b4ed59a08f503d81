"""The real client's address behind a balancer: the PROXY protocol on ``haproxy:`` listeners, and
``X-Forwarded-For`` from ``http.trusted_proxies`` only, reaching the per-address caps, the rate
limits and the logs (docs/tls.md).

The parser and the trust rules run on StringTransport and MemoryReactorClock; the end-to-end test
puts Debian's real ``haproxy`` (``send-proxy-v2``) between the clients and a node."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransportWithDisconnection
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from coffeechat.addresses import TrustedProxies
from coffeechat.config import ConfigError, load_config
from coffeechat.endpoints import LOG_EVERY, PROXY_HEADER_TIMEOUT, ProxyProtocolFactory, plan
from coffeechat.errors import ErrorCode
from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd
from tests.conftest import node_config, start_node, stop_node
from tests.test_process import free_port, port_open
from tests.tlscerts import issue, make_ca, ssl_endpoint

V2_PREFIX = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(source: tuple[str, int], destination: tuple[str, int], command: int = 1) -> bytes:
    """A PROXY v2 header, as HAProxy's ``send-proxy-v2`` writes it (command 1: PROXY, 0: LOCAL)."""
    if command == 0:
        return V2_PREFIX + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    six = ":" in source[0]
    family = socket.AF_INET6 if six else socket.AF_INET
    addresses = socket.inet_pton(family, source[0]) + socket.inet_pton(family, destination[0])
    body = addresses + struct.pack("!HH", source[1], destination[1])
    return V2_PREFIX + bytes([0x21, 0x21 if six else 0x11]) + struct.pack("!H", len(body)) + body


class Recorder(Protocol):
    """What a transport's protocol sees: its peer and host at connectionMade, the bytes after."""

    def connectionMade(self) -> None:
        self.peer = self.transport.getPeer()
        self.host = self.transport.getHost()
        self.data = b""
        self.lost = False
        self.factory.made.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        self.lost = True


class Recorders(Factory):
    protocol = Recorder

    def __init__(self) -> None:
        self.made: list[Recorder] = []


def accepted(clock: MemoryReactorClock | None = None):
    """A connection from the balancer (10.0.0.1) accepted by a ``haproxy:`` listener."""
    clock = clock or MemoryReactorClock()
    inner = Recorders()
    factory = ProxyProtocolFactory(inner, clock)
    balancer = IPv4Address("TCP", "10.0.0.1", 40000)
    wrapper = factory.buildProtocol(balancer)
    transport = StringTransportWithDisconnection(hostAddress=IPv4Address("TCP", "10.0.0.2", 8000), peerAddress=balancer)
    transport.protocol = wrapper
    wrapper.makeConnection(transport)
    return clock, factory, inner, wrapper, transport


@contextmanager
def log_lines():
    lines: list[str] = []

    def observe(event: dict) -> None:
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observe)


# ---- the PROXY header ---------------------------------------------------------------------------


def test_a_v1_header_gives_the_protocol_the_clients_address_and_the_bytes_after_it():
    clock, _, inner, wrapper, transport = accepted()
    assert inner.made == []  # nobody is counted or logged before the header says who it is
    wrapper.dataReceived(b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 8000\r\nhello")
    (protocol,) = inner.made
    assert (protocol.peer.host, protocol.peer.port) == ("203.0.113.7", 56324)
    assert (protocol.host.host, protocol.host.port) == ("192.0.2.1", 8000)
    assert protocol.data == b"hello"
    wrapper.dataReceived(b" again")
    assert protocol.data == b"hello again"
    assert clock.getDelayedCalls() == []  # the header deadline is gone
    wrapper.write(b"answer")
    assert transport.value() == b"answer"


@pytest.mark.parametrize("source", [("203.0.113.7", 1234), ("2001:db8::7", 4321)], ids=["ipv4", "ipv6"])
def test_a_v2_header_fed_one_byte_at_a_time(source):
    _, _, inner, wrapper, _ = accepted()
    destination = ("2001:db8::1", 8001) if ":" in source[0] else ("192.0.2.1", 8001)
    for byte in v2_header(source, destination) + b"x":
        wrapper.dataReceived(bytes([byte]))
    (protocol,) = inner.made
    assert isinstance(protocol.peer, IPv6Address if ":" in source[0] else IPv4Address)
    assert (protocol.peer.host, protocol.peer.port) == source
    assert (protocol.host.host, protocol.host.port) == destination
    assert protocol.data == b"x"


@pytest.mark.parametrize(
    "header",
    [v2_header(("0.0.0.0", 0), ("0.0.0.0", 0), command=0), b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ::1 ::1 1 2\r\n"],
    ids=["v2-local", "v1-unknown", "v1-unknown-with-addresses"],
)
def test_a_header_without_a_client_a_balancers_health_check_keeps_the_sockets_address(header):
    _, _, inner, wrapper, _ = accepted()
    wrapper.dataReceived(header + b"ping")
    (protocol,) = inner.made
    assert (protocol.peer.host, protocol.peer.port) == ("10.0.0.1", 40000)
    assert protocol.data == b"ping"


@pytest.mark.parametrize(
    "data",
    [
        b"GET /health HTTP/1.1\r\n",
        b"\x00\x00\x00\x10\x01\x01",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 x 8000\r\n",
        b"PROXY TCP4 not-an-address 192.0.2.1 1 8000\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 70000 8000\r\n",
        V2_PREFIX + b"\x31\x11\x00\x0c" + bytes(12),
    ],
    ids=["http", "cim-frame", "bad-port", "not-an-address", "port-range", "v3"],
)
def test_without_a_valid_header_the_connection_is_closed_before_any_protocol_sees_it(data):
    _, _, inner, wrapper, transport = accepted()
    with log_lines() as lines:
        wrapper.dataReceived(data)
    assert inner.made == []
    assert not transport.connected
    assert any("without a valid PROXY header" in line and "10.0.0.1" in line for line in lines), lines
    assert not any("Traceback" in line for line in lines)


def test_no_header_in_time_closes_the_connection():
    clock, _, inner, wrapper, transport = accepted()
    wrapper.dataReceived(b"PROXY TCP4 203.0.")
    clock.advance(PROXY_HEADER_TIMEOUT - 0.5)
    assert transport.connected
    clock.advance(1)
    assert not transport.connected and inner.made == []


def test_a_connection_that_ends_before_its_header_leaves_nothing_behind():
    clock, factory, inner, wrapper, transport = accepted()
    transport.loseConnection()
    assert clock.getDelayedCalls() == [] and inner.made == []
    assert not factory.protocols


def test_refusals_are_logged_once_per_interval_with_a_count():
    """A balancer not set to send the header (or a client skipping it) is every connection."""
    clock, factory, _, wrapper, _ = accepted()
    balancer = IPv4Address("TCP", "10.0.0.1", 40001)
    with log_lines() as lines:
        wrapper.dataReceived(b"junk\r\n")
        for _ in range(4):
            another = factory.buildProtocol(balancer)
            transport = StringTransportWithDisconnection(peerAddress=balancer)
            transport.protocol = another
            another.makeConnection(transport)
            another.dataReceived(b"junk\r\n")
            clock.advance(1)
        clock.advance(LOG_EVERY)
        wrapper = factory.buildProtocol(balancer)
        transport = StringTransportWithDisconnection(peerAddress=balancer)
        transport.protocol = wrapper
        wrapper.makeConnection(transport)
        clock.advance(PROXY_HEADER_TIMEOUT)
    refused = [line for line in lines if "without a valid PROXY header" in line]
    assert len(refused) == 2
    assert refused[0].startswith("closed 1 connection(s)") and refused[1].startswith("closed 5 connection(s)")
    assert "no PROXY header within" in refused[1]


def test_a_haproxy_endpoint_needs_one_to_wrap():
    with pytest.raises(ConfigError, match="haproxy: needs an endpoint to wrap"):
        plan(reactor, "haproxy:")


# ---- X-Forwarded-For ------------------------------------------------------------------------------


def test_only_a_trusted_peer_is_believed_and_the_client_is_the_rightmost_untrusted_hop():
    proxies = TrustedProxies(["10.0.0.0/8", "2001:db8:aa::/48"])
    spoofed = "198.51.100.66, 203.0.113.7"  # the client wrote the first entry itself
    assert proxies.client("203.0.113.9", spoofed) == "203.0.113.9"  # not a proxy: header ignored
    assert proxies.client("10.0.0.1", spoofed) == "203.0.113.7"
    assert proxies.client("10.0.0.1", "198.51.100.66, 203.0.113.7, 10.0.0.2") == "203.0.113.7"  # two proxies
    assert proxies.client("10.0.0.1", ["198.51.100.66", "203.0.113.7"]) == "203.0.113.7"  # two header lines
    assert proxies.client("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3"  # all of them proxies
    assert proxies.client("10.0.0.1", None) == "10.0.0.1"
    assert proxies.client("::ffff:10.0.0.1", "203.0.113.7:5678") == "203.0.113.7"  # v4-mapped, a port
    assert proxies.client("2001:db8:aa::1", '"[2001:db8:1::7]:443"') == "2001:db8:1::7"
    assert proxies.client("10.0.0.1", "203.0.113.7, unknown") == "10.0.0.1"  # not an address: stop
    assert not TrustedProxies([]).trusts("127.0.0.1")


def test_a_trusted_proxy_that_is_not_a_network_stops_the_start():
    with pytest.raises(ConfigError, match="http.trusted_proxies: 'proxy.internal' is not an address"):
        load_config(None, {"http.trusted_proxies": ["proxy.internal"]})


async def post_json(url: str, payload: dict, headers: dict[str, str]) -> tuple[int, dict]:
    raw = Headers({b"Content-Type": [b"application/json"]})
    for name, value in headers.items():
        raw.addRawHeader(name, value)
    body = FileBodyProducer(BytesIO(json.dumps(payload).encode()))
    response = await Agent(reactor).request(b"POST", url.encode(), raw, body)
    return response.code, json.loads(await readBody(response))


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-peer"])
@pytest_twisted.ensureDeferred
async def test_registrations_are_limited_by_the_address_a_trusted_proxy_forwards(tmp_path, trusted):
    """One registration per address (``auth.registration_burst = 1``): behind a trusted proxy each
    forwarded client has its own; from any other peer a made-up header buys nothing."""
    proxies = ["127.0.0.0/8"] if trusted else ["10.0.0.0/8"]
    config = node_config(
        tmp_path,
        **{"http.trusted_proxies": proxies, "auth.registration_burst": 1, "auth.registrations_per_address_per_hour": 1},
    )
    live = await start_node(config)
    try:
        url = live.http_url + "/user/register"

        async def register(name: str, forwarded: str) -> int:
            payload = {"userName": name, "userNickName": name, "userPwd": cim_client.md5_password("pw")}
            _, answer = await post_json(url, payload, {"X-Forwarded-For": forwarded})
            return answer["error_code"]

        assert await register("first", "198.51.100.1, 203.0.113.1") == 200
        again = await register("second", "203.0.113.1")
        other = await register("third", "198.51.100.1, 203.0.113.2")
        assert again == ErrorCode.RATE_LIMITED  # the same address (trusted) or the same peer (untrusted)
        assert other == (200 if trusted else ErrorCode.RATE_LIMITED)
    finally:
        await stop_node(live)


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-peer"])
@pytest.mark.parametrize("where", ["ws_url", "ws_http_url"], ids=["ws-port", "http-ws-path"])
@pytest_twisted.ensureDeferred
async def test_websocket_connections_count_and_log_by_the_forwarded_address(tmp_path, trusted, where):
    proxies = ["127.0.0.1"] if trusted else ["10.0.0.0/8"]
    config = node_config(
        tmp_path,
        **{
            "http.trusted_proxies": proxies,
            "limits.max_connections_per_address": 1,
            "limits.max_unauthenticated_per_address": 1,
        },
    )
    live = await start_node(config)
    try:
        await live.register("alice", "pw")
        url = getattr(live, where)

        def via(client: str):
            return live.connect("ws-binary", url, headers={"X-Forwarded-For": client})

        with log_lines() as lines:
            alice = await via("203.0.113.1")
            assert (await alice.login_password("alice", cim_client.md5_password("pw"))).result_code == 200
        expected = "from tcp4:203.0.113.1:0" if trusted else "from tcp4:127.0.0.1:"
        assert any(line.startswith("login: user") and expected in line for line in lines), lines
        if trusted:
            await via("203.0.113.2")  # another client behind the same proxy
        with pytest.raises(cim_client.WebSocketClosed) as refused:
            await via("203.0.113.1" if trusted else "203.0.113.2")  # over the cap of one per address
        assert refused.value.http_status == 503
    finally:
        await stop_node(live)


# ---- behind Debian's haproxy ------------------------------------------------------------------------


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is not installed (Debian: apt-get install haproxy)")
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy)")
    return found


def test_the_sample_haproxy_config_is_valid():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(root / "etc" / "haproxy-coffeechat.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sample_nodes_behind_the_sample_haproxy_expect_its_header():
    """etc/haproxy-coffeechat.cfg sends the PROXY header to some ports: the sample node configs
    meant for it listen there with ``haproxy:``, and nowhere else (its health checks send none)."""
    root = Path(__file__).resolve().parent.parent
    sent, plain = set(), set()
    for line in (root / "etc" / "haproxy-coffeechat.cfg").read_text().splitlines():
        words = line.split()
        if words[:1] == ["server"]:
            port = int(words[2].rpartition(":")[2])
            (sent if "send-proxy-v2" in words else plain).add(port)
            if "port" in words:
                plain.add(int(words[words.index("port") + 1]))
    assert sent == {8000, 8001} and plain == {18080}
    for name in ("coffeechat-cluster.toml", "compose/chat-1.toml", "compose/chat-2.toml"):
        listen = load_config(root / "etc" / name).listen
        for descriptions in listen.endpoints.values():
            for description in descriptions:
                port = int(description.removeprefix("haproxy:").split(":")[1])
                assert description.startswith("haproxy:") == (port in sent), (name, description)


# The balancer reaches the node from 127.0.0.5 (``source``), the clients come from 127.0.0.1 and
# 127.0.0.2: without the PROXY header the node would see 127.0.0.5 for all of them.
HAPROXY_CONFIG = """
global
    maxconn 256

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend cim
    bind 127.0.0.1:{front_cim}
    default_backend cim_node
backend cim_node
    option httpchk GET /health
    server n1 127.0.0.1:{cim} source 127.0.0.5 send-proxy-v2 check port {http} inter 1s

frontend ws
    bind 127.0.0.1:{front_ws}
    default_backend ws_node
backend ws_node
    server n1 127.0.0.1:{ws} source 127.0.0.5 send-proxy-v2

frontend cim_tls
    bind 127.0.0.1:{front_tls}
    default_backend tls_node
backend tls_node
    server n1 127.0.0.1:{tls} source 127.0.0.5 send-proxy-v2
"""


async def start_haproxy(tmp_path: Path, **ports: int) -> subprocess.Popen:
    binary = haproxy_binary()
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(**ports))
    log = open(tmp_path / "haproxy.log", "wb")
    process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    fronts = [port for name, port in ports.items() if name.startswith("front_")]
    for _ in range(100):
        if process.poll() is not None:
            raise AssertionError(f"haproxy exited: {(tmp_path / 'haproxy.log').read_text()}")
        if all(port_open(port) for port in fronts):  # loopback: answers at once
            return process
        await task.deferLater(reactor, 0.1, lambda: None)
    process.kill()
    raise AssertionError(f"haproxy did not listen: {(tmp_path / 'haproxy.log').read_text()}")


@pytest_twisted.ensureDeferred
async def test_behind_haproxy_the_node_sees_the_clients_address(tmp_path):
    haproxy_binary()
    ca = make_ca(tmp_path / "ca")
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    issue(ca, key, cert)
    config = node_config(
        tmp_path,
        **{
            "listen.cim": ["haproxy:tcp:0:interface=127.0.0.1", "haproxy:" + ssl_endpoint(key, cert)],
            "listen.ws": ["haproxy:tcp:0:interface=127.0.0.1"],
            "limits.max_connections_per_address": 3,
        },
    )
    live = await start_node(config)
    haproxy = None
    try:
        cim, tls = (child.port.getHost().port for child in live.node if child.name.startswith("cim:"))
        ws = live.node.listening_port("ws").getHost().port
        http = live.node.listening_port("http").getHost().port
        fronts = {"front_cim": free_port(), "front_ws": free_port(), "front_tls": free_port()}
        haproxy = await start_haproxy(tmp_path, cim=cim, ws=ws, tls=tls, http=http, **fronts)
        for name in ("alice", "bobby", "carol", "david"):
            await live.register(name, "pw")

        async def logged_in(endpoint: str, name: str, **kwargs) -> cim_client.CIMClient:
            client = await cim_client.connect(reactor, endpoint, **kwargs)
            live.clients.append(client)
            assert (await client.login_password(name, cim_client.md5_password("pw"))).result_code == 200
            return client

        with log_lines() as lines:
            alice = await logged_in(f"tcp:127.0.0.1:{fronts['front_cim']}", "alice")
            bob = await logged_in(f"ws://127.0.0.1:{fronts['front_ws']}/", "bobby")
            carol = await logged_in(f"tls:127.0.0.1:{fronts['front_tls']}", "carol", ca_file=str(ca.path))
        logins = [line for line in lines if line.startswith("login: user")]
        assert len(logins) == 3, lines
        # The log names each client by its own address and port, as the balancer saw them.
        assert f"from 127.0.0.1:{alice.transport.getHost().port}," in logins[0]
        assert f"from tcp4:127.0.0.1:{bob.transport.getHost().port}," in logins[1]
        assert f"from 127.0.0.1:{carol.transport.getHost().port}," in logins[2]
        assert not any("127.0.0.5" in line for line in lines)

        # The per-address cap (3) counts the clients' address, not the balancer's.
        addresses = live.core.addresses
        assert addresses.counts("127.0.0.1") == (3, 0) and addresses.counts("127.0.0.5") == (0, 0)
        refused = await cim_client.connect(reactor, f"tcp:127.0.0.1:{fronts['front_cim']}")
        live.clients.append(refused)
        _, _, kickout = await refused.next_push(Cmd.KICKOUT_NOTIFY)
        assert kickout.reason_code == ErrorCode.TOO_MANY_CONNECTIONS
        # ... while another client behind the same balancer still gets in.
        dave = await logged_in(f"tcp:host=127.0.0.1:port={fronts['front_cim']}:bindAddress=127.0.0.2", "david")
        assert addresses.counts("127.0.0.2") == (1, 0)
        ack = await dave.send_message(alice.user_id, "through haproxy")
        _, _, push = await alice.next_push(Cmd.MSG_DATA)
        assert push.server_msg_id == ack.server_msg_id
        await carol.heartbeat()

        # The admin API's sessions view shows where each device connected from.
        response = await Agent(reactor).request(
            b"GET",
            f"{live.http_url}/admin/users/{alice.user_id}/sessions".encode(),
            Headers({b"Authorization": [b"Bearer admin-secret"]}),
        )
        sessions = json.loads(await readBody(response))
        assert [d.get("peer") for d in sessions["devices"]] == [f"127.0.0.1:{alice.transport.getHost().port}"]
    finally:
        if haproxy is not None:
            haproxy.terminate()
            await threads.deferToThread(haproxy.wait, 10)
        await stop_node(live)
