"""Output limits, bounded closes, per-address caps and HTTP deadlines over real loopback sockets.

The misbehaving clients are raw blocking sockets run in threads (the reactor keeps serving), with
a small receive buffer so that what the server sends piles up on the server's side."""

from __future__ import annotations

import base64
import datetime
import json
import os
import select
import socket
import ssl
import struct
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher

from coffeechat.errors import ErrorCode
from coffeechat.protocols import client as cim_client
from coffeechat.protocols.framing import FrameDecoder, encode_frame
from coffeechat.schema import Cmd, decode_body, pb

from .conftest import node_config, start_node, stop_node

BOUND = 15.0  # seconds within which the server must have acted (a bound, not a speed)
RCVBUF = 4096
RESET = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLError)


def sleep(seconds: float):
    return deferLater(reactor, seconds, lambda: None)


async def wait_for(predicate, what: str, bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, f"not within {bound} s: {what}"
        await sleep(0.05)


def port_of(url_or_endpoint: str) -> int:
    return int(url_or_endpoint.rstrip("/").rsplit(":", 1)[1].split("/")[0])


def raw_socket(port: int, rcvbuf: int = RCVBUF) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket, bound: float = BOUND) -> tuple[bool, bytes]:
    """Read until the server closes or resets (True, what was read) or ``bound`` passes (False)."""
    deadline = time.monotonic() + bound
    data = b""
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except RESET:
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def flood(sock: socket.socket, frame: bytes, bound: float = BOUND) -> float | None:
    """Write ``frame`` over and over, never reading, until the server resets the connection
    (seconds it took) or ``bound`` passes (None)."""
    chunk = frame * 512
    sock.settimeout(0.2)
    start = time.monotonic()
    while time.monotonic() - start < bound:
        try:
            sock.send(chunk)
        except TimeoutError:
            continue
        except RESET:
            return time.monotonic() - start
    return None


def read_frames(sock: socket.socket, decoder: FrameDecoder, until_cmd: int) -> list:
    frames = []
    while not any(f[0] == until_cmd for f in frames):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        frames += [(cmd, seq, decode_body(cmd, body)) for cmd, seq, body in decoder.feed(chunk)]
    return frames


def login_frame(name: str) -> bytes:
    req = pb.CIMAuthReq(user_name=name, user_pwd=cim_client.md5_password("secret"), client_type=1)
    return encode_frame(Cmd.LOGIN_AUTH_REQ, 1, req.SerializeToString())


# -- a raw WebSocket client (masked binary frames out, whatever comes in)


def ws_handshake(sock: socket.socket, path: str = "/") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: cim.v1\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def ws_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x82, 0x80 | size]) if size < 126 else bytes([0x82, 0xFE]) + struct.pack(">H", size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def ws_read_cim(sock: socket.socket, until_cmd: int) -> list:
    """Read server WebSocket messages (unmasked, one CIM frame each) until one of ``until_cmd``."""
    buffer = b""
    frames = []
    while not any(f[0] == until_cmd for f in frames):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buffer += chunk
        while len(buffer) >= 2:
            size, start = buffer[1] & 0x7F, 2
            if size == 126:
                size, start = struct.unpack(">H", buffer[2:4])[0], 4
            elif size == 127:
                size, start = struct.unpack(">Q", buffer[2:10])[0], 10
            if len(buffer) < start + size:
                break
            payload, buffer = buffer[start : start + size], buffer[start + size :]
            frames += [(cmd, seq, decode_body(cmd, body)) for cmd, seq, body in FrameDecoder(1 << 24).feed(payload)]
    return frames


def raw_login(sock: socket.socket, name: str, over: str) -> int:
    """Log in on a raw socket (CIM or WebSocket), read the answer: the user id."""
    if over == "tcp":
        sock.sendall(login_frame(name))
        frames = read_frames(sock, FrameDecoder(1 << 24), Cmd.LOGIN_AUTH_RSP)
    else:
        sock.sendall(ws_frame(login_frame(name)))
        frames = ws_read_cim(sock, Cmd.LOGIN_AUTH_RSP)
    (rsp,) = [body for cmd, _, body in frames if cmd == Cmd.LOGIN_AUTH_RSP]
    assert rsp.result_code == 200, rsp
    return rsp.user_info.user_id


@pytest_twisted.async_yield_fixture
async def live(tmp_path, request):
    overrides = getattr(request, "param", {})
    node = await start_node(node_config(tmp_path, **overrides))
    yield node
    await stop_node(node)


def params(**overrides):
    return pytest.mark.parametrize("live", [overrides], indirect=True)


# -- output limits


@params(**{"limits.login_timeout": 120.0})
@pytest_twisted.ensureDeferred
async def test_heartbeats_never_read_before_login_are_cut_off(live):
    """1,000,000 heartbeats from a client that never reads grew the server by 33 MB; now it is
    cut off once its answers exceed limits.max_output_bytes_before_login (64 KiB)."""
    await live.register("alice")
    other = await live.login("alice")
    sock = raw_socket(port_of(live.cim_endpoint))
    try:
        frame = encode_frame(Cmd.LOGIN_HEARTBEAT, 1, b"")
        took = threads.deferToThread(flood, sock, frame)
        for _ in range(5):  # meanwhile another connection is served as usual
            await other.heartbeat()
        assert await took is not None, "the flooding client was never cut off"
        await other.heartbeat()
        await wait_for(lambda: live.core.addresses.counts("127.0.0.1")[0] == 1, "the connection to be released")
    finally:
        sock.close()


@params(**{"limits.login_timeout": 2.0, "limits.close_timeout": 1.0, "limits.max_output_bytes_before_login": 1 << 26})
@pytest_twisted.ensureDeferred
async def test_login_timeout_close_ends_even_if_the_client_never_reads(live):
    """The login time-out closes the connection; one that never reads its answers used to stay
    forever (the close waited for the buffer to drain): now it is aborted after close_timeout."""
    sock = raw_socket(port_of(live.cim_endpoint))
    try:
        took = await threads.deferToThread(flood, sock, encode_frame(Cmd.LOGIN_HEARTBEAT, 1, b""))
        assert took is not None, "the connection was never closed"
    finally:
        sock.close()


SLOW = {
    "limits.max_output_bytes": 256 * 1024,
    "limits.messages_per_second": 10_000.0,
    "limits.message_burst": 10_000,
}


def self_signed(directory) -> tuple[str, str]:
    """A key and a certificate for localhost, as PEM files in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def tls_port(live) -> int:
    for child in live.node:
        if child.name.startswith("cim:ssl:"):
            return child.port.getHost().port
    raise AssertionError("no TLS listener")


def tls_socket(port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(raw_socket(port), server_hostname="localhost")


@pytest.mark.parametrize("over", ["tcp", "tls", "ws", "ws-http"])
@pytest_twisted.ensureDeferred
async def test_slow_consumer_is_cut_off_and_catches_up(tmp_path, over):
    """A logged-in device that stops reading while others send to it is cut off once
    limits.max_output_bytes wait for it; the others are unaffected, and it catches up later."""
    overrides = dict(SLOW)
    if over == "tls":
        key, cert = self_signed(tmp_path)
        overrides["listen.cim"] = [
            "tcp:0:interface=127.0.0.1",
            f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        ]
    live = await start_node(node_config(tmp_path, **overrides))
    kickouts = []

    def observer(event):
        if event.get("code") == "SLOW_CONSUMER":
            kickouts.append(event["reason"])

    globalLogPublisher.addObserver(observer)
    try:
        await slow_consumer(live, over)
    finally:
        globalLogPublisher.removeObserver(observer)
        await stop_node(live)
    # What the server held for it stayed within the limit and one frame (a push of 8 KB).
    (reason,) = kickouts
    queued = int(reason.split()[0])
    assert SLOW["limits.max_output_bytes"] < queued <= SLOW["limits.max_output_bytes"] + 8200


async def slow_consumer(live, over: str) -> None:
    alice_id = await live.register("alice")
    bob_id = await live.register("bobby")
    carol_id = await live.register("carol")
    alice = await live.login("alice")
    carol = await live.login("carol")
    if over == "tcp":
        sock = raw_socket(port_of(live.cim_endpoint))
    elif over == "tls":
        sock = await threads.deferToThread(tls_socket, tls_port(live))
    else:
        url = live.ws_url if over == "ws" else live.ws_http_url
        sock = raw_socket(port_of(url))
        path = "/" if over == "ws" else live.core.config.websocket.http_path
        assert b" 101 " in (await threads.deferToThread(ws_handshake, sock, path)).split(b"\r\n")[0]
    try:
        assert await threads.deferToThread(raw_login, sock, "bobby", "ws" if over.startswith("ws") else "tcp") == bob_id
        text = "x" * 8000
        sent = 0
        while live.core.router.devices_of(bob_id) and sent < 600:
            ack = await alice.send_message(bob_id, text)
            assert ack.res_code == 1
            sent += 1
        assert not live.core.router.devices_of(bob_id), f"not cut off after {sent} messages of 8 KB"
        closed, _ = await threads.deferToThread(closed_by_server, sock)
        assert closed
        # Others are unaffected.
        await alice.send_message(carol_id, "hello carol")
        _, _, push = await carol.next_push(Cmd.MSG_DATA)
        assert push.msg_data == b"hello carol"
        # What the cut-off device missed is stored: it catches up at its next login.
        bob = await live.login("bobby")
        history = await bob.history(alice_id, limit=1)
        assert history.msg_list[0].server_msg_id == sent
    finally:
        sock.close()


# -- per-address caps


@params(**{"limits.max_unauthenticated_per_address": 4, "http.max_connections_per_address": 3})
@pytest_twisted.ensureDeferred
async def test_connections_per_address_are_capped_and_counted_exactly(live):
    cim, ws, http = port_of(live.cim_endpoint), port_of(live.ws_url), port_of(live.http_url)
    held = [raw_socket(cim) for _ in range(3)]
    held.append(raw_socket(ws))
    try:
        await wait_for(lambda: live.core.addresses.counts("127.0.0.1") == (4, 4), "4 connections counted")
        # A fifth CIM connection, TCP or WebSocket, is refused at once with a reason.
        refused = raw_socket(cim)
        closed, data = await threads.deferToThread(closed_by_server, refused, 5.0)
        refused.close()
        assert closed
        ((cmd, _, notice),) = [(c, s, decode_body(c, b)) for c, s, b in FrameDecoder(1 << 20).feed(data)]
        assert (cmd, notice.reason_code) == (Cmd.KICKOUT_NOTIFY, ErrorCode.TOO_MANY_CONNECTIONS)
        refused = raw_socket(ws)
        closed, data = await threads.deferToThread(closed_by_server, refused, 5.0)
        refused.close()
        assert closed and data.startswith(b"HTTP/1.1 503 ")
        # Closing one frees its place.
        held.pop(0).close()
        await wait_for(lambda: live.core.addresses.counts("127.0.0.1") == (3, 3), "the closed one released")
        await live.register("alice")
        await live.login("alice")  # admitted, and no longer counted as not logged in
        assert live.core.addresses.counts("127.0.0.1") == (4, 3)
        # HTTP: three connections at once, the fourth is answered 503 with a reason.
        idle = [raw_socket(http) for _ in range(3)]
        try:
            await wait_for(lambda: live.core.addresses.http_count("127.0.0.1") == 3, "3 HTTP connections")
            extra = raw_socket(http)
            closed, data = await threads.deferToThread(closed_by_server, extra, 5.0)
            extra.close()
            assert closed and data.startswith(b"HTTP/1.1 503 ")
            assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error_code"] == ErrorCode.TOO_MANY_CONNECTIONS
        finally:
            for sock in idle:
                sock.close()
        await wait_for(lambda: live.core.addresses.http_count("127.0.0.1") == 0, "HTTP connections released")
    finally:
        for sock in held:
            sock.close()
    await wait_for(lambda: live.core.addresses.counts("127.0.0.1") == (1, 0), "all but the client released")


@params(**{"http.max_connections_per_address": 2, "limits.max_unauthenticated_per_address": 2})
@pytest_twisted.ensureDeferred
async def test_websocket_on_the_http_port_leaves_the_http_count(live):
    """Web clients reach the WebSocket on the HTTP port: once upgraded, their connection counts
    as a CIM connection, not as one of the address's HTTP connections."""
    await live.register("alice")
    clients = [await live.login("alice", transport="ws-binary", url=live.ws_http_url) for _ in range(3)]
    assert live.core.addresses.http_count("127.0.0.1") == 0
    assert live.core.addresses.counts("127.0.0.1") == (3, 0)
    for client in clients:
        await client.heartbeat()


# -- HTTP deadlines


HTTP_FAST = {
    "http.header_timeout": 1.5,
    "http.body_timeout": 1.5,
    "http.idle_timeout": 1.5,
    "limits.close_timeout": 1.0,
}


def trickle(sock: socket.socket, prefix: bytes, bound: float = BOUND) -> tuple[bool, bytes]:
    """Send ``prefix``, then one byte every 0.5 s, until the server closes (True, its answer) or
    ``bound`` passes (False)."""
    sock.sendall(prefix)
    deadline = time.monotonic() + bound
    data = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            try:
                chunk = sock.recv(65536)
            except RESET:
                return True, data
            if not chunk:
                return True, data
            data += chunk
            continue
        try:
            sock.send(b"a")
        except RESET:
            return True, data
    return False, data


@params(**HTTP_FAST)
@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", id="headers"),
        pytest.param(b"POST /user/register HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n", id="body"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_byte_every_half_second_does_not_keep_a_request_open(live, prefix):
    sock = raw_socket(port_of(live.http_url))
    try:
        closed, data = await threads.deferToThread(trickle, sock, prefix)
        assert closed, "slowloris connection still open"
        assert data.startswith(b"HTTP/1.1 408 ")
    finally:
        sock.close()


@params(**HTTP_FAST)
@pytest_twisted.ensureDeferred
async def test_idle_http_connections_are_closed(live):
    quiet = raw_socket(port_of(live.http_url))
    used = raw_socket(port_of(live.http_url))
    try:
        # Two pipelined requests are both answered; then the connection idles and is closed.
        used.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        closed, data = await threads.deferToThread(closed_by_server, used)
        assert closed and data.count(b"HTTP/1.1 200 ") == 2
        closed, data = await threads.deferToThread(closed_by_server, quiet)
        assert closed and data == b""
    finally:
        quiet.close()
        used.close()
    await wait_for(lambda: live.core.addresses.http_count("127.0.0.1") == 0, "HTTP connections released")


@pytest_twisted.ensureDeferred
async def test_nul_in_a_static_path_is_not_found_without_a_traceback(live):
    errors = []

    def observer(event):
        if event.get("log_failure") is not None or event.get("isError"):
            errors.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        sock = raw_socket(port_of(live.http_url))
        try:
            sock.sendall(b"GET /app/x%00.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            closed, data = await threads.deferToThread(closed_by_server, sock)
        finally:
            sock.close()
    finally:
        globalLogPublisher.removeObserver(observer)
    assert closed and data.startswith(b"HTTP/1.1 404 "), data[:200]
    assert not errors
