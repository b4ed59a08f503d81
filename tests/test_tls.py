"""TLS on every listener (``ssl:`` endpoint strings), the client library verifying the server, and
the certificate reloaded without dropping connections (docs/tls.md).

Certificates come from a test CA made here with ``cryptography`` (tests/tlscerts.py): SAN entries
for 127.0.0.1 and localhost, so that both an IP address and a host name are verified."""

from __future__ import annotations

import json
import signal
from io import BytesIO

import pytest
import pytest_twisted
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import reactor, task
from twisted.internet.ssl import Certificate
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from coffeechat.config import ConfigError
from coffeechat.endpoints import plan, reload_certificates
from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd
from tests.conftest import node_config, start_node, stop_node
from tests.test_process import free_port, stop_cleanly, twistd, wait_for_ports
from tests.tlscerts import issue, make_ca, ssl_endpoint


@pytest.fixture
def pki(tmp_path):
    """A CA, a server key and certificate signed by it, and a second CA nobody should trust."""
    ca = make_ca(tmp_path / "ca")
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    first = issue(ca, key, cert)
    other = make_ca(tmp_path / "other", "Some Other CA")
    return ca, key, cert, first, other


USERS = ("alice", "bobby", "carol")


async def logged_in(client: cim_client.CIMClient, name: str = "alice") -> cim_client.CIMClient:
    """``client`` logged in (what a heartbeat needs to be answered)."""
    assert (await client.login_password(name, cim_client.md5_password("pw"))).result_code == 200
    return client


def serial(client: cim_client.CIMClient) -> int:
    """The serial number of the certificate the server showed this connection."""
    return client.transport.getPeerCertificate().get_serial_number()


async def https_post(url: str, payload: dict, ca_path) -> dict:
    policy = BrowserLikePolicyForHTTPS(trustRoot=Certificate.loadPEM(ca_path.read_bytes()))
    body = FileBodyProducer(BytesIO(json.dumps(payload).encode()))
    headers = Headers({b"Content-Type": [b"application/json"]})
    response = await Agent(reactor, contextFactory=policy).request(b"POST", url.encode(), headers, body)
    return json.loads(await readBody(response))


@pytest_twisted.async_yield_fixture
async def tls_node(tmp_path, pki):
    ca, key, cert, _, _ = pki
    listen = [ssl_endpoint(key, cert)]
    live = await start_node(node_config(tmp_path, **{"listen.cim": listen, "listen.ws": listen, "listen.http": listen}))
    live.ports = {name: live.node.listening_port(name).getHost().port for name in ("cim", "ws", "http")}
    for name in USERS:
        answer = await https_post(
            f"https://127.0.0.1:{live.ports['http']}/user/register",
            {"userName": name, "userNickName": name, "userPwd": cim_client.md5_password("pw")},
            ca.path,
        )
        assert answer["error_code"] == 200, answer
    yield live
    await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_cim_websocket_and_http_over_tls_with_the_server_verified(tls_node, pki):
    ca, _, _, first, _ = pki
    ports = tls_node.ports  # the fixture registered the users over HTTPS, verifying the server
    ca_file = str(ca.path)
    alice = await cim_client.connect(reactor, f"tls:127.0.0.1:{ports['cim']}", ca_file=ca_file)  # IP SAN
    bob = await cim_client.connect(reactor, f"wss://127.0.0.1:{ports['ws']}/", ca_file=ca_file)
    carol = await cim_client.connect(reactor, f"wss://localhost:{ports['http']}/ws", ca_file=ca_file)  # DNS SAN
    tls_node.clients += [alice, bob, carol]
    for c, name in ((alice, "alice"), (bob, "bobby"), (carol, "carol")):
        assert serial(c) == first.serial_number
        await logged_in(c, name)
    for receiver in (bob, carol):
        ack = await alice.send_message(receiver.user_id, "over TLS")
        _, _, push = await receiver.next_push(Cmd.MSG_DATA)
        assert push.server_msg_id == ack.server_msg_id and push.msg_data == b"over TLS"


@pytest_twisted.ensureDeferred
async def test_a_certificate_of_another_ca_or_for_another_name_is_refused(tls_node, pki):
    ca, _, _, _, other = pki
    cim = f"tls:127.0.0.1:{tls_node.ports['cim']}"
    ws = f"wss://127.0.0.1:{tls_node.ports['ws']}/"
    for endpoint in (cim, ws):
        with pytest.raises(SSL.Error):  # the chain does not lead to the CA given
            await cim_client.connect(reactor, endpoint, ca_file=str(other.path))
        with pytest.raises(SSL.Error):  # nor to one of the system's store
            await cim_client.connect(reactor, endpoint)
        with pytest.raises(VerificationError):  # the right CA, but not the name asked for
            await cim_client.connect(reactor, endpoint, ca_file=str(ca.path), server_hostname="chat.example.com")
    # The listener is unharmed: a verified client still gets in.
    ok = await cim_client.connect(reactor, cim, ca_file=str(ca.path), server_hostname="localhost")
    tls_node.clients.append(ok)
    await logged_in(ok)
    await ok.heartbeat()


def test_an_unreadable_certificate_stops_the_listener_with_the_reason(tmp_path, pki):
    _, key, cert, _, _ = pki
    with pytest.raises(ConfigError, match="cannot load the TLS key and certificate"):
        plan(reactor, ssl_endpoint(key, tmp_path / "missing.pem"))
    other_key = tmp_path / "other.key"
    issue(make_ca(tmp_path / "x"), other_key, tmp_path / "other.pem")
    with pytest.raises(ConfigError, match="does not match"):
        plan(reactor, ssl_endpoint(other_key, cert))
    with pytest.raises(ConfigError, match="unknown ssl: option"):
        plan(reactor, ssl_endpoint(key, cert) + ":sslmethod=TLSv1_METHOD")


def test_endpoint_strings_take_twisteds_syntax(pki):
    _, key, cert, _, _ = pki
    how = plan(reactor, f"ssl:port=8443:interface=\\:\\:1:privateKey={key}:certKey={cert}:backlog=7")
    assert (how.endpoint._port, how.endpoint._interface, how.endpoint._backlog) == (8443, "::1", 7)
    with pytest.raises(ConfigError, match="ssl: needs a port number"):
        plan(reactor, f"ssl:privateKey={key}:certKey={cert}")


@pytest_twisted.ensureDeferred
async def test_the_chain_is_sent_so_a_client_that_trusts_only_the_root_verifies(tmp_path):
    """``certKey`` may be a fullchain.pem (server certificate first), or the intermediates come
    from ``extraCertChain``."""
    root = make_ca(tmp_path / "root", "Test Root")
    intermediate = make_ca(tmp_path / "intermediate", "Test Intermediate", parent=root)
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    issue(intermediate, key, cert)
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_bytes(cert.read_bytes() + intermediate.path.read_bytes())
    listen = [ssl_endpoint(key, fullchain), ssl_endpoint(key, cert) + f":extraCertChain={intermediate.path}"]
    alone = ssl_endpoint(key, cert)  # no intermediate: the client cannot build the chain
    live = await start_node(node_config(tmp_path, **{"listen.cim": [*listen, alone]}))
    try:
        ports = [child.port.getHost().port for child in live.node if child.name.startswith("cim:")]
        for port in ports[:2]:
            client = await cim_client.connect(reactor, f"tls:127.0.0.1:{port}", ca_file=str(root.path))
            live.clients.append(client)
            chain = client.transport.getHandle().get_peer_cert_chain()
            assert [c.get_subject().CN for c in chain][:2] == ["coffeechat test server", "Test Intermediate"]
        with pytest.raises(SSL.Error):
            await cim_client.connect(reactor, f"tls:127.0.0.1:{ports[2]}", ca_file=str(root.path))
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_reload_gives_new_connections_the_new_certificate_and_keeps_old_ones(tls_node, pki, tmp_path):
    ca, key, cert, first, _ = pki
    endpoint = f"tls:127.0.0.1:{tls_node.ports['cim']}"
    old = await cim_client.connect(reactor, endpoint, ca_file=str(ca.path))
    tls_node.clients.append(old)
    await logged_in(old)
    second = issue(ca, key, cert, common_name="renewed")
    assert await reload_certificates() == 3  # cim, ws and http
    new = await cim_client.connect(reactor, endpoint, ca_file=str(ca.path))
    tls_node.clients.append(new)
    assert serial(new) == second.serial_number != first.serial_number
    assert serial(old) == first.serial_number
    await old.heartbeat()  # still up

    # A broken file is logged and the current certificate kept; nothing else changes.
    lines: list[str] = []
    observer = lambda event: lines.append(formatEvent(event))  # noqa: E731
    globalLogPublisher.addObserver(observer)
    try:
        key.write_text("not a key")
        assert await reload_certificates() == 0
    finally:
        globalLogPublisher.removeObserver(observer)
    assert any("could not reload the TLS key and certificate, keeping the current one" in line for line in lines)
    assert not any("Traceback" in line for line in lines)
    after = await cim_client.connect(reactor, endpoint, ca_file=str(ca.path))
    tls_node.clients.append(after)
    assert serial(after) == second.serial_number


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_the_certificate_of_a_running_twistd(tmp_path, pki):
    """``kill -HUP`` on ``twistd -n coffeechat``: connections made after it see the new
    certificate, the one made before is still up."""
    ca, key, cert, first, _ = pki
    cim, http = free_port(), free_port()
    args = ("--cim", ssl_endpoint(key, cert, cim), "--http", f"tcp:{http}:interface=127.0.0.1", "--ws", "none")
    process = twistd(tmp_path, *args, "--data-dir", "d")
    endpoint = f"tls:127.0.0.1:{cim}"
    try:
        await wait_for_ports(process, tmp_path, cim, http)
        answer = await cim_client.register(
            reactor, f"http://127.0.0.1:{http}", "alice", "Alice", cim_client.md5_password("pw")
        )
        assert answer["error_code"] == 200, answer
        old = await logged_in(await cim_client.connect(reactor, endpoint, ca_file=str(ca.path)))
        assert serial(old) == first.serial_number
        second = issue(ca, key, cert, common_name="renewed")
        process.send_signal(signal.SIGHUP)
        for _ in range(100):
            new = await cim_client.connect(reactor, endpoint, ca_file=str(ca.path))
            seen = serial(new)
            new.transport.loseConnection()
            if seen == second.serial_number:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        else:
            raise AssertionError(f"no new certificate after SIGHUP:\n{(tmp_path / 'twistd.log').read_text()}")
        await old.heartbeat()
        assert serial(old) == first.serial_number
        assert "certificate reloaded: CN=renewed" in (tmp_path / "twistd.log").read_text()
        await stop_cleanly(process, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
