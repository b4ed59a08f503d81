"""The HTTP API over real loopback sockets: a whole node (SQLite, KDF pool, listener) per test."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH

from coffeechat.errors import ErrorCode
from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd
from coffeechat.service import NodeService

from .conftest import node_config
from .conftest import start_node as start_live_node

# readBody warns about Agent's own response transport (a Twisted wrinkle, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

ADMIN = "secret"
JSON_TYPE = [b"application/json; charset=utf-8"]


def md5(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


async def start_node(tmp_path, admin_token: str = ADMIN) -> NodeService:
    """A real node (the shared fixture's) with this test's admin token."""
    live = await start_live_node(node_config(tmp_path, **{"http.admin_token": admin_token}))
    return live.node


class ChunkedProducer:
    """A body of unknown length, so the Agent sends it chunked."""

    length = UNKNOWN_LENGTH

    def __init__(self, data: bytes) -> None:
        self.data = data

    def startProducing(self, consumer):
        for i in range(0, len(self.data), 8192):
            consumer.write(self.data[i : i + 8192])
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


@dataclass
class Api:
    """A tiny HTTP client for one node."""

    node: NodeService
    port: int = 0

    def __post_init__(self) -> None:
        self.port = self.node.listening_port("http").getHost().port

    @property
    def core(self):
        return self.node.node

    async def call(
        self,
        method: str,
        path: str,
        body=None,
        token: str | None = None,
        raw: bytes | None = None,
        chunked: bool = False,
    ) -> tuple[int, dict]:
        """Send one request; return (HTTP status, decoded JSON body), checking it is JSON."""
        from twisted.internet import reactor

        headers = Headers()
        if token is not None:
            headers.addRawHeader(b"Authorization", f"Bearer {token}".encode())
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        producer = None
        if data is not None:
            headers.addRawHeader(b"Content-Type", b"application/json")
            producer = ChunkedProducer(data) if chunked else FileBodyProducer(io.BytesIO(data))
        url = f"http://127.0.0.1:{self.port}{path}".encode()
        response = await Agent(reactor).request(method.encode(), url, headers, producer)
        payload = await readBody(response)
        assert response.headers.getRawHeaders(b"Content-Type") == JSON_TYPE, payload
        return response.code, json.loads(payload)

    async def post(self, path: str, body=None, **kw) -> dict:
        """POST expecting HTTP 200; the JSON body."""
        status, answer = await self.call("POST", path, body, **kw)
        assert status == 200, (status, answer)
        return answer

    async def register(self, name: str, password: str = "pw", nick: str = "Nick") -> dict:
        return await self.post("/user/register", {"userName": name, "userNickName": nick, "userPwd": md5(password)})

    async def login(self, name: str, password: str = "pw") -> dict:
        return await self.post("/api/login", {"userName": name, "userPwd": md5(password)})

    async def device(self, name: str, password: str = "pw"):
        """A real CIM connection of ``name``, logged in."""
        from twisted.internet import reactor

        port = self.node.listening_port("cim").getHost().port
        client = await cim_client.connect(reactor, f"tcp:127.0.0.1:{port}")
        rsp = await client.login_password(name, md5(password))
        assert rsp.result_code == 200, rsp
        return client


@pytest_twisted.async_yield_fixture
async def api(tmp_path):
    node = await start_node(tmp_path)
    try:
        yield Api(node)
    finally:
        await node.stopService()


# ---- registration ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_register_ok_and_duplicate_case_insensitive(api):
    answer = await api.register("alice")
    assert answer["error_code"] == 200
    assert answer["user_id"] >= 1
    again = await api.register("ALICE")
    assert again["error_code"] == ErrorCode.USER_ALREADY_EXIST == 9000
    assert again["error_msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"userName": "abcd", "userNickName": "n", "userPwd": md5("x")},  # 4 chars
        {"userName": "a" * 33, "userNickName": "n", "userPwd": md5("x")},  # 33 chars
        {"userName": "carol", "userNickName": "   ", "userPwd": md5("x")},  # blank nick
        {"userName": "carol", "userNickName": "n", "userPwd": "not-an-md5"},
        {"userName": "carol", "userNickName": "n", "userPwd": "g" * 32},  # 32 chars, not hex
        {"userName": "carol", "userPwd": md5("x")},  # missing field
        {"userName": "carol", "userNickName": "\ud800", "userPwd": md5("x")},  # not storable
    ],
)
@pytest_twisted.ensureDeferred
async def test_register_bad_parameters(api, body):
    answer = await api.post("/user/register", body)
    assert answer["error_code"] == ErrorCode.USER_INVALID_PARAMETER == 9001


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"alice"', b"\xff\xfe{}", b"[" * 50000])
@pytest_twisted.ensureDeferred
async def test_register_body_not_a_json_object(api, raw):
    answer = await api.post("/user/register", raw=raw)
    assert answer == {"error_code": 9001, "error_msg": answer["error_msg"]}


@pytest.mark.parametrize("chunked", [False, True])
@pytest_twisted.ensureDeferred
async def test_oversized_body_is_413(api, chunked):
    limit = api.core.config.http.max_request_bytes
    big = {"userName": "alice", "userNickName": "x" * limit, "userPwd": md5("pw")}
    status, answer = await api.call("POST", "/user/register", big, chunked=chunked)
    assert status == 413
    assert answer["error_code"] == ErrorCode.MSG_TOO_LARGE
    # Nothing was created, and the server still answers.
    assert (await api.register("alice"))["error_code"] == 200


# ---- login and logout ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_login_issues_a_working_token(api):
    user_id = (await api.register("alice", "pw", nick="Alice"))["user_id"]
    answer = await api.login("Alice", "pw")  # names are case-insensitive
    assert answer["error_code"] == 200
    assert answer["error_msg"] == "ok"
    assert answer["user_id"] == user_id
    assert answer["nick_name"] == "Alice"
    assert answer["expires_at"] > api.core.reactor.seconds()
    user = await api.core.feature("accounts").login_token(user_id, answer["token"])
    assert user.user_id == user_id


@pytest_twisted.ensureDeferred
async def test_login_failures(api):
    await api.register("alice", "pw")
    assert (await api.login("alice", "wrong"))["error_code"] == ErrorCode.LOGIN_INVALID_USER_OR_PWD == 2003
    assert (await api.login("nobody", "pw"))["error_code"] == 2003
    assert (await api.post("/api/login", {"userName": "alice"}))["error_code"] == 2003
    assert (await api.post("/api/login", raw=b"nope"))["error_code"] == 9001


@pytest_twisted.ensureDeferred
async def test_login_throttled_after_repeated_failures(api):
    await api.register("alice", "pw")
    for _ in range(api.core.config.auth.login_failures_per_minute):
        assert (await api.login("alice", "wrong"))["error_code"] == 2003
    # From this address, even the right password waits for the window to end: HTTP 429.
    status, answer = await api.call("POST", "/api/login", {"userName": "alice", "userPwd": md5("pw")})
    assert (status, answer["error_code"]) == (429, ErrorCode.RATE_LIMITED) == (429, 10007)


@pytest_twisted.ensureDeferred
async def test_login_disabled_user(api):
    user_id = (await api.register("alice", "pw"))["user_id"]
    await api.post(f"/admin/users/{user_id}/disable", token=ADMIN)
    assert (await api.login("alice", "pw"))["error_code"] == ErrorCode.USER_DISABLED == 10010


@pytest_twisted.ensureDeferred
async def test_logout_revokes_the_token(api):
    await api.register("alice", "pw")
    token = (await api.login("alice", "pw"))["token"]
    assert (await api.post("/api/logout", token=token))["error_code"] == 200
    assert (await api.post("/api/logout", token=token))["error_code"] == ErrorCode.LOGIN_INVALID_USER_TOKEN == 2002
    assert (await api.post("/api/logout"))["error_code"] == 2002
    assert (await api.post("/api/logout", token="made-up"))["error_code"] == 2002


# ---- health and routing --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_health(api):
    await api.register("alice")
    await api.device("alice")
    status, answer = await api.call("GET", "/health")
    assert status == 200
    assert answer == {"status": "ok", "node": api.core.node, "online_users": 1, "devices": 1}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nothing", 404),
        ("GET", "/nothing/here", 404),
        ("GET", "/user", 404),
        ("GET", "/health/", 404),
        ("GET", "/user/register", 405),
        ("POST", "/health", 405),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unknown_paths_and_methods_answer_json(api, method, path, status):
    got, answer = await api.call(method, path)
    assert got == status
    assert answer["error_code"] in (ErrorCode.NOT_FOUND, ErrorCode.NOT_SUPPORTED)


# ---- admin API --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_admin_disabled_without_a_token(tmp_path):
    node = await start_node(tmp_path, admin_token="")
    try:
        api = Api(node)
        for method, path, token in [
            ("GET", "/admin/users", None),
            ("GET", "/admin/stats", ""),
            ("POST", "/admin/users/1/disable", "anything"),
            ("GET", "/admin/nope", None),
        ]:
            status, answer = await api.call(method, path, token=token)
            assert status == 403
            assert answer == {"error_code": 10004, "error_msg": "admin API disabled: set http.admin_token"}
    finally:
        await node.stopService()


@pytest_twisted.ensureDeferred
async def test_admin_wrong_or_missing_token_is_401(api):
    for token in (None, "wrong", "secret2", "secre"):
        for method, path in [("GET", "/admin/users"), ("POST", "/admin/users"), ("GET", "/admin/nope")]:
            status, answer = await api.call(method, path, {"users": []}, token=token)
            assert status == 401
            assert answer["error_code"] == ErrorCode.FORBIDDEN
    status, _ = await api.call("GET", "/admin/nope", token=ADMIN)
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_admin_bulk_create_with_tokens(api):
    await api.register("taken", "pw")
    users = [{"userName": f"load{i:04d}"} for i in range(300)]
    users += [
        {"userName": "withpwd", "userNickName": "With Pwd", "userPwd": md5("pw")},
        {"userName": "TAKEN"},
        {"userName": "bad"},
        "not an object",
        {"userName": "load0000"},
    ]
    answer = await api.post("/admin/users", {"users": users, "issueTokens": True}, token=ADMIN)
    assert answer["error_code"] == 200
    results = answer["users"]
    assert len(results) == len(users)
    created = results[:301]
    assert [r["userName"] for r in created] == [u["userName"] for u in users[:301]]
    assert len({r["user_id"] for r in created}) == 301
    assert all(r["token"] and r["expires_at"] for r in created)
    assert results[301]["error_code"] == 9000
    assert results[302]["error_code"] == 9001
    assert results[303]["error_code"] == 9001
    assert results[304]["error_code"] == 9000  # a duplicate within the request
    # The tokens work; the token-only accounts cannot log in with a password, the other can.
    accounts = api.core.feature("accounts")
    assert (await accounts.login_token(0, created[5]["token"])).name == "load0005"
    assert (await api.login("withpwd", "pw"))["nick_name"] == "With Pwd"
    assert (await api.post("/api/login", {"userName": "load0001", "userPwd": ""}))["error_code"] == 2003


@pytest_twisted.ensureDeferred
async def test_admin_bulk_create_without_tokens_and_limits(api):
    answer = await api.post("/admin/users", {"users": [{"userName": "alice"}]}, token=ADMIN)
    assert answer["users"] == [{"user_id": answer["users"][0]["user_id"], "userName": "alice"}]
    too_many = {"users": [{"userName": f"user{i:05d}"} for i in range(1001)]}
    for body in (too_many, {"users": "alice"}, {"users": [], "issueTokens": "yes"}):
        status, answer = await api.call("POST", "/admin/users", body, token=ADMIN)
        assert status == 400
        assert answer["error_code"] == 9001


@pytest_twisted.ensureDeferred
async def test_admin_bulk_create_a_thousand_beyond_the_public_body_limit(api):
    users = [{"userName": f"user{i:05d}", "userNickName": f"User {i:05d} " + "x" * 50} for i in range(1000)]
    body = {"users": users, "issueTokens": True}
    assert len(json.dumps(body)) > api.core.config.http.max_request_bytes
    answer = await api.post("/admin/users", body, token=ADMIN)
    assert [u["userName"] for u in answer["users"]] == [u["userName"] for u in users]
    assert all("token" in u for u in answer["users"])
    status, answer = await api.call("POST", "/admin/users", body, token="wrong")
    assert status == 413


@pytest_twisted.ensureDeferred
async def test_admin_list_paging(api):
    await api.post("/admin/users", {"users": [{"userName": f"user{i:02d}"} for i in range(25)]}, token=ADMIN)
    disabled = (await api.call("GET", "/admin/users?limit=1&after=2", token=ADMIN))[1]["users"][0]["user_id"]
    await api.post(f"/admin/users/{disabled}/disable", token=ADMIN)
    seen, after = [], 0
    while True:
        status, answer = await api.call("GET", f"/admin/users?after={after}&limit=10", token=ADMIN)
        assert status == 200
        page = answer["users"]
        if not page:
            break
        assert len(page) <= 10
        seen += page
        after = page[-1]["user_id"]
    assert [u["userName"] for u in seen] == [f"user{i:02d}" for i in range(25)]
    assert [u["user_id"] for u in seen if u["disabled"]] == [disabled]
    assert seen[0] == {"user_id": seen[0]["user_id"], "userName": "user00", "nickName": "user00", "disabled": False}
    status, answer = await api.call("GET", "/admin/users", token=ADMIN)
    assert len(answer["users"]) == 25
    for query in ("limit=0", "limit=x", "after=-1"):
        status, answer = await api.call("GET", f"/admin/users?{query}", token=ADMIN)
        assert (status, answer["error_code"]) == (400, 9001)


@pytest_twisted.ensureDeferred
async def test_admin_disable_revokes_and_disconnects_then_enable(api):
    user_id = (await api.register("alice", "pw"))["user_id"]
    token = (await api.login("alice", "pw"))["token"]
    device = await api.device("alice")
    answer = await api.post(f"/admin/users/{user_id}/disable", token=ADMIN)
    assert answer["error_code"] == 200
    assert answer["disconnected"] == 1
    _, _, kicked = await device.next_push(Cmd.KICKOUT_NOTIFY)
    assert (kicked.reason_code, kicked.reason) == (ErrorCode.USER_DISABLED, "account disabled")
    await device.closed
    assert (await api.login("alice", "pw"))["error_code"] == 10010

    answer = await api.post(f"/admin/users/{user_id}/enable", token=ADMIN)
    assert answer["error_code"] == 200
    assert (await api.login("alice", "pw"))["error_code"] == 200
    # Tokens revoked by the disable stay revoked.
    assert (await api.post("/api/logout", token=token))["error_code"] == 2002

    status, answer = await api.call("POST", "/admin/users/999/disable", token=ADMIN)
    assert (status, answer["error_code"]) == (404, 9002)
    status, answer = await api.call("GET", f"/admin/users/{user_id}/disable", token=ADMIN)
    assert status == 405
    status, answer = await api.call("POST", f"/admin/users/{user_id}/explode", token=ADMIN)
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_admin_password_reset(api):
    user_id = (await api.register("alice", "old"))["user_id"]
    token = (await api.login("alice", "old"))["token"]
    device = await api.device("alice", "old")
    answer = await api.post(f"/admin/users/{user_id}/password", {"userPwd": md5("new")}, token=ADMIN)
    assert answer["error_code"] == 200 and answer["disconnected"] == 1
    _, _, kicked = await device.next_push(Cmd.KICKOUT_NOTIFY)
    assert kicked.reason_code == ErrorCode.SESSION_REPLACED
    assert (await api.login("alice", "old"))["error_code"] == 2003
    assert (await api.login("alice", "new"))["error_code"] == 200
    assert (await api.post("/api/logout", token=token))["error_code"] == 2002  # revoked
    status, answer = await api.call("POST", f"/admin/users/{user_id}/password", {"userPwd": "short"}, token=ADMIN)
    assert (status, answer["error_code"]) == (400, 9001)
    status, answer = await api.call("POST", "/admin/users/999/password", {"userPwd": md5("x")}, token=ADMIN)
    assert (status, answer["error_code"]) == (404, 9002)


@pytest_twisted.ensureDeferred
async def test_admin_token_issue(api):
    user_id = (await api.post("/admin/users", {"users": [{"userName": "robot"}]}, token=ADMIN))["users"][0]["user_id"]
    answer = await api.post(f"/admin/users/{user_id}/tokens", token=ADMIN)
    assert answer["error_code"] == 200
    assert answer["expires_at"] > api.core.reactor.seconds()
    assert (await api.core.feature("accounts").login_token(user_id, answer["token"])).name == "robot"
    status, answer = await api.call("POST", "/admin/users/999/tokens", token=ADMIN)
    assert (status, answer["error_code"]) == (404, 9002)


@pytest_twisted.ensureDeferred
async def test_admin_stats(api):
    await api.register("alice")
    await api.device("alice")
    await api.device("alice")
    status, answer = await api.call("GET", "/admin/stats", token=ADMIN)
    assert status == 200
    assert (answer["online_users"], answer["devices"]) == (1, 2)


@pytest_twisted.ensureDeferred
async def test_internal_errors_answer_json(api):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    api.core.feature("accounts").register = broken
    answer = await api.register("alice")
    assert answer == {"error_code": 201, "error_msg": "internal error"}
    api.core.feature("accounts").list_users = broken
    status, answer = await api.call("GET", "/admin/users", token=ADMIN)
    assert (status, answer) == (500, {"error_code": 201, "error_msg": "internal error"})


@pytest_twisted.ensureDeferred
async def test_client_gone_before_the_answer(api):
    """A handler finishing after its client hung up writes nothing and logs no error."""
    from twisted.internet import reactor, task
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import Factory, Protocol
    from twisted.logger import globalLogPublisher

    entered, release = defer.Deferred(), defer.Deferred()

    async def slow_register(*args):
        entered.callback(None)
        await release
        raise AssertionError("unreachable")  # an error answer would be written, were the client there

    api.core.feature("accounts").register = slow_register
    failures = []

    def observe(event):
        if event.get("log_failure") is not None:
            failures.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        protocol = await TCP4ClientEndpoint(reactor, "127.0.0.1", api.port).connect(Factory.forProtocol(Protocol))
        body = b'{"userName": "alice", "userNickName": "A", "userPwd": "00000000000000000000000000000000"}'
        protocol.transport.write(
            b"POST /user/register HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await entered
        protocol.transport.loseConnection()
        await task.deferLater(reactor, 0.05, lambda: None)
        release.callback(None)
        await task.deferLater(reactor, 0.01, lambda: None)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert [e for e in failures if "could not write" in e.get("log_format", "")] == []
    status, _ = await api.call("GET", "/health")
    assert status == 200


@pytest_twisted.ensureDeferred
async def test_the_web_client_reads_the_protocol_table_from_the_schema(api):
    from twisted.internet import reactor

    from coffeechat.schema import RESPONSE_OF

    url = f"http://127.0.0.1:{api.port}/app/protocol-table.js".encode()
    response = await Agent(reactor).request(b"GET", url)
    text = (await readBody(response)).decode()
    assert response.code == 200
    assert response.headers.getRawHeaders(b"Content-Type") == [b"text/javascript; charset=utf-8"]
    tables = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.removeprefix("export const ").partition(" = Object.freeze(")
        tables[name] = json.loads(value.removesuffix(");"))
    assert tables["Cmd"]["MSG_RECALL_REQ"] == Cmd.MSG_RECALL_REQ == 0x0309
    assert tables["RESPONSE_OF"] == {Cmd(q).name: Cmd(a).name for q, a in RESPONSE_OF.items()}
    assert "MSG_TYPING_NOTIFY" in tables["PUSH"] and "MSG_TYPING_REQ" not in tables["PUSH"]
    assert tables["ENUMS"]["CIMErrorCode"]["kCIM_ERR_RECALL_TOO_LATE"] == ErrorCode.RECALL_TOO_LATE
