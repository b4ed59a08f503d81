"""Login throttling, look-alike names, per-user budgets, registration and KDF floods, over real
loopback sockets against a whole node (SQLite, the KDF thread pool).  Other client addresses
are other loopback addresses (127.0.0.2 ...), which Linux lets a client bind to."""

from __future__ import annotations

import io
import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from coffeechat.auth import hash_password
from coffeechat.errors import ErrorCode
from coffeechat.protocols import client as cim_client

from .conftest import node_config, start_node, stop_node

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

OWNER = "127.0.0.2"
md5 = cim_client.md5_password


async def connect_from(live, address: str | None = None) -> cim_client.CIMClient:
    endpoint = live.cim_endpoint + (f":bindAddress={address}" if address else "")
    return await live.connect(url=endpoint)


async def login_code(live, name: str, password: str, address: str | None = None) -> tuple[int, int]:
    """(result code, user id) of one password login on a new connection from ``address``."""
    client = await connect_from(live, address)
    rsp = await client.login_password(name, md5(password))
    return rsp.result_code, rsp.user_info.user_id


async def concurrent_logins(live, names: list[str], password: str) -> list[int]:
    """Each name's login on its own connection from 127.0.0.1, all sent at once."""
    clients = [await connect_from(live) for _ in names]
    answers = await defer.gatherResults(
        [c.login_password(name, md5(password)) for c, name in zip(clients, names, strict=True)]
    )
    return [rsp.result_code for rsp in answers]


@pytest_twisted.async_yield_fixture
async def live(tmp_path):
    node = await start_node(node_config(tmp_path, **{"auth.kdf_jobs_per_address": 100}))
    yield node
    await stop_node(node)


@pytest_twisted.ensureDeferred
async def test_concurrent_wrong_passwords_evaluate_at_most_the_budget_and_the_owner_gets_in(live):
    alice = await live.register("alice")
    budget = live.core.config.auth.login_failures_per_minute
    codes = await concurrent_logins(live, ["alice"] * 60, "wrong")
    assert codes.count(ErrorCode.LOGIN_INVALID_USER_OR_PWD) == budget  # guesses evaluated
    assert codes.count(ErrorCode.RATE_LIMITED) == 60 - budget
    assert (await login_code(live, "alice", "secret"))[0] == ErrorCode.RATE_LIMITED
    assert await login_code(live, "alice", "secret", OWNER) == (ErrorCode.SUCCESS, alice)


@pytest_twisted.ensureDeferred
async def test_a_long_s_spelling_shares_the_budget_and_the_account(live):
    sally = await live.register("sally")
    for _ in range(live.core.config.auth.login_failures_per_minute):
        assert (await login_code(live, "sally", "wrong"))[0] == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert (await login_code(live, "\u017fally", "secret"))[0] == ErrorCode.RATE_LIMITED
    assert await login_code(live, "\u017fally", "secret", OWNER) == (ErrorCode.SUCCESS, sally)


@pytest_twisted.ensureDeferred
async def test_a_trailing_newline_is_refused_at_registration_and_login(live):
    await live.register("alice")
    answer = await cim_client.register(reactor, live.http_url, "alice\n", "Alice", md5("secret"))
    assert answer["error_code"] == ErrorCode.USER_INVALID_PARAMETER
    # A look-alike stored before names were checked in full no longer logs in.
    n = live.core.config.auth.scrypt_n
    await live.core.store.create_user("carol\n", "Carol", hash_password(md5("secret"), n=n), 0)
    assert (await login_code(live, "carol\n", "secret"))[0] == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert (await login_code(live, "alice\n", "secret"))[0] == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert (await login_code(live, "alice", "secret"))[0] == ErrorCode.SUCCESS


@pytest_twisted.ensureDeferred
async def test_ten_devices_of_one_user_are_limited_together(tmp_path):
    # Refills too slow to matter during the test: what is accepted is the bursts.
    burst = 400
    overrides = {
        "limits.messages_per_second": 0.01,
        "limits.user_messages_per_second": 0.01,
        "limits.user_message_burst": burst,
    }
    live = await start_node(node_config(tmp_path, **overrides))
    try:
        await live.register("alice")
        bob = await live.register("bobby")
        devices = [await live.login("alice") for _ in range(10)]
        sends = [d.send_message(bob, f"m{i}") for d in devices for i in range(250)]
        acks = await defer.gatherResults(sends)
        accepted = sum(1 for ack in acks if ack.error_code == 0 and ack.server_msg_id)
        refused = sum(1 for ack in acks if ack.error_code == ErrorCode.RATE_LIMITED)
        assert burst <= accepted <= burst + 1  # not 10 x the connection burst (2,000)
        assert accepted + refused == 2500
    finally:
        await stop_node(live)


async def post(url: str, body: dict) -> tuple[int, dict, list[bytes] | None]:
    headers = Headers({b"Content-Type": [b"application/json"]})
    producer = FileBodyProducer(io.BytesIO(json.dumps(body).encode()))
    response = await Agent(reactor).request(b"POST", url.encode(), headers, producer)
    payload = json.loads(await readBody(response))
    return response.code, payload, response.headers.getRawHeaders(b"Retry-After")


@pytest_twisted.ensureDeferred
async def test_a_registration_flood_from_one_address_gets_429(tmp_path):
    burst = 10
    # A KDF queue big enough that only the registration budget refuses.
    overrides = {"auth.registration_burst": burst, "auth.kdf_jobs_per_address": 100}
    live = await start_node(node_config(tmp_path, **overrides))
    try:
        await registration_flood(live, burst)
    finally:
        await stop_node(live)


async def registration_flood(live, burst: int) -> None:
    url = live.http_url + "/user/register"
    results = await defer.gatherResults(
        [
            defer.ensureDeferred(post(url, {"userName": f"flood{i:03d}", "userNickName": "F", "userPwd": md5("x")}))
            for i in range(burst + 15)
        ]
    )
    created = [r for r in results if r[0] == 200 and r[1]["error_code"] == 200]
    limited = [r for r in results if r[0] == 429]
    assert len(created) == burst
    assert len(limited) == 15
    for _, body, retry_after in limited:
        assert body["error_code"] == ErrorCode.RATE_LIMITED
        assert retry_after is not None and int(retry_after[0]) >= 1


@pytest_twisted.ensureDeferred
async def test_a_kdf_flood_from_one_address_is_refused_early_and_others_log_in(tmp_path):
    # A real KDF cost, so that the flood's hashes overlap.
    per_address = 30
    overrides = {"auth.scrypt_n": 2**14, "auth.login_failures_per_address_per_minute": per_address}
    live = await start_node(node_config(tmp_path, **overrides))
    try:
        alice = await live.register("alice")
        flood = [await connect_from(live) for _ in range(60)]
        owner = await connect_from(live, OWNER)
        sent = [c.login_password(f"unknown{i:03d}", md5("x")) for i, c in enumerate(flood)]
        rsp = await owner.login_password("alice", md5("secret"))  # sent after the whole flood
        codes = [r.result_code for r in await defer.gatherResults(sent)]
        assert (rsp.result_code, rsp.user_info.user_id) == (ErrorCode.SUCCESS, alice)
        evaluated = codes.count(ErrorCode.LOGIN_INVALID_USER_OR_PWD)
        assert codes.count(ErrorCode.RATE_LIMITED) == 60 - evaluated
        assert evaluated <= per_address
    finally:
        await stop_node(live)
