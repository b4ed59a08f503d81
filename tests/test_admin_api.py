"""The admin REST API (coffeechat/features/admin_api.py and the admin routes of other features),
route by route, over a real node on loopback: users (search, create, disable, inspect, sessions,
kick, delete with their data), groups (list, inspect, change owner, dissolve), messages (history,
recall, export), notices and broadcasts, statistics; every route refuses a request without the
admin token, and bad input is a 400 with a clear error."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from coffeechat.errors import ChatError, ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import node_config, start_node, stop_node
from .pgserver import pg_server  # noqa: F401  (the session fixture)
from .test_admin_cli import cli, ok, refused, with_core  # noqa: F401  (cli: the CLI's fixture)

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

TOKEN = "admin-secret"


def md5(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


@dataclass
class Reply:
    status: int
    headers: Headers
    raw: bytes
    body: Any = field(default=None)  # the decoded JSON, when the answer is JSON


@dataclass
class Admin:
    """A node and an HTTP client that speaks to its admin API."""

    live: Any

    @property
    def core(self):
        return self.live.core

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = TOKEN, raw: bytes | None = None
    ) -> Reply:
        headers = Headers()
        if token is not None:
            headers.addRawHeader(b"Authorization", f"Bearer {token}".encode())
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        producer = None
        if data is not None:
            headers.addRawHeader(b"Content-Type", b"application/json")
            producer = FileBodyProducer(io.BytesIO(data))
        response = await Agent(reactor).request(
            method.encode(), (self.live.http_url + path).encode(), headers, producer
        )
        payload = await readBody(response)
        reply = Reply(response.code, response.headers, payload)
        kind = (response.headers.getRawHeaders(b"Content-Type") or [b""])[0]
        if kind.startswith(b"application/json"):
            reply.body = json.loads(payload)
        return reply

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> dict:
        reply = await self.call(method, path, body)
        assert reply.status == status, (reply.status, reply.raw)
        assert reply.body["error_code"] == 200 and reply.body["error_msg"] == "ok", reply.body
        return reply.body

    async def bad(self, method: str, path: str, body: Any = None, status: int = 400, raw: bytes | None = None) -> str:
        """A refused request: its status, and the error message (which must say something)."""
        reply = await self.call(method, path, body, raw=raw)
        assert reply.status == status, (reply.status, reply.raw)
        assert isinstance(reply.body["error_code"], int) and reply.body["error_code"] != 200, reply.body
        assert reply.body["error_msg"], reply.body
        return reply.body["error_msg"]

    async def user(self, name: str, nick: str | None = None, password: str = "secret") -> int:
        user = await self.core.feature("accounts").create_user(name, nick or name.title(), md5(password))
        return user.user_id

    async def device(self, name: str, password: str = "secret", client_type: int = 0):
        kwargs = {"client_type": client_type} if client_type else {}
        return await self.live.login(name, password, **kwargs)

    async def group(self, owner: int, members: list[int], name: str = "") -> int:
        user = await self.core.store.user_by_id(owner)
        outcome = await self.core.feature("groups").create(user, None, name, members)
        return outcome.group.group_id


async def admin_node(tmp_path, **overrides) -> Admin:
    settings = {
        "admin_api.broadcast_interval": 0.05,
        "admin_api.broadcast_batch": 2,
        "listen.ws": [],
    }
    settings.update(overrides)
    return Admin(await start_node(node_config(tmp_path, **settings)))


@pytest_twisted.async_yield_fixture
async def admin(tmp_path):
    node = await admin_node(tmp_path)
    yield node
    await stop_node(node.live)


async def until(predicate, timeout: float = 5.0, step: float = 0.02):
    """Poll an async predicate until it is true (background work on the real reactor)."""
    for _ in range(int(timeout / step)):
        result = await predicate()
        if result:
            return result
        await task.deferLater(reactor, step, lambda: None)
    raise AssertionError("condition not reached in time")


# ---- every route: the token ----------------------------------------------------------------------


def concrete(path: str) -> str:
    return path.replace("{user_id}", "1").replace("{group_id}", "1").replace("{job_id}", "1").replace("{file_id}", "f")


@pytest_twisted.ensureDeferred
async def test_every_admin_route_refuses_a_missing_or_wrong_token(admin):
    document = (await admin.call("GET", "/admin/openapi.json")).body
    operations = [(m.upper(), p) for p, item in document["paths"].items() for m in item]
    assert len(operations) >= 30, operations
    for method, path in operations:
        for token in (None, "wrong", TOKEN + "x", ""):
            reply = await admin.call(method, concrete(path), {} if method == "POST" else None, token=token)
            assert reply.status == 401, (method, path, token, reply.status, reply.raw)
            assert reply.body["error_msg"] == "a valid admin token is required"
            assert reply.headers.getRawHeaders(b"WWW-Authenticate") == [b'Bearer realm="coffeechat-admin"']
    user = await admin.user("someone")
    assert (await admin.call("POST", f"/admin/users/{user}/disable", token=None)).status == 401
    assert not (await admin.core.store.user_by_id(user)).disabled


@pytest_twisted.ensureDeferred
async def test_the_admin_api_is_off_without_an_admin_token(tmp_path):
    node = await admin_node(tmp_path, **{"http.admin_token": ""})
    try:
        for path in ("/admin/openapi.json", "/admin/users/search", "/admin/groups", "/admin/broadcasts"):
            reply = await node.call("GET", path, token="")
            assert reply.status == 403, (path, reply.raw)
            assert "admin_token" in reply.body["error_msg"]
    finally:
        await stop_node(node.live)


# ---- users ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_search_users_by_name_or_nick_prefix_paged(admin):
    ids = [
        await admin.user("alice01", "Wonder"),
        await admin.user("alice02", "Queen"),
        await admin.user("bobby", "Alicia"),
        await admin.user("carol", "Carol"),
    ]
    found = await admin.ok("GET", "/admin/users/search?q=ALI")
    assert [u["user_id"] for u in found["users"]] == ids[:3]
    assert found["users"][0] == {
        "user_id": ids[0],
        "userName": "alice01",
        "nickName": "Wonder",
        "disabled": False,
        "deleted": False,
        "createdAt": found["users"][0]["createdAt"],
        "avatarUrl": "",
    }
    first = await admin.ok("GET", "/admin/users/search?q=ali&limit=2")
    assert [u["user_id"] for u in first["users"]] == ids[:2]
    rest = await admin.ok("GET", f"/admin/users/search?q=ali&limit=2&after={first['next']}")
    assert [u["user_id"] for u in rest["users"]] == ids[2:3]
    everyone = await admin.ok("GET", "/admin/users/search")
    assert [u["user_id"] for u in everyone["users"]] == ids
    assert (await admin.ok("GET", "/admin/users/search?q=zzz"))["users"] == []
    # LIKE's wildcards are plain characters here
    assert (await admin.ok("GET", "/admin/users/search?q=%25"))["users"] == []
    assert (await admin.ok("GET", "/admin/users/search?q=_"))["users"] == []


@pytest_twisted.ensureDeferred
async def test_search_users_bad_input(admin):
    assert "limit" in await admin.bad("GET", "/admin/users/search?limit=0")
    assert "limit" in await admin.bad("GET", "/admin/users/search?limit=ten")
    assert "after" in await admin.bad("GET", "/admin/users/search?after=-1")
    assert "64" in await admin.bad("GET", "/admin/users/search?q=" + "a" * 65)


@pytest_twisted.ensureDeferred
async def test_create_list_disable_enable_users(admin):
    body = {
        "users": [
            {"userName": "newbie1", "userNickName": "New", "userPwd": md5("pw")},
            {"userName": "newbie2"},
        ],
        "issueTokens": True,
    }
    created = (await admin.ok("POST", "/admin/users", body))["users"]
    assert [c["userName"] for c in created] == ["newbie1", "newbie2"]
    assert all("error_code" not in c and c["token"] and c["user_id"] for c in created), created
    uid = created[0]["user_id"]
    listed = await admin.ok("GET", "/admin/users?limit=10")
    assert sorted(u["userName"] for u in listed["users"]) == ["newbie1", "newbie2"]
    client = await admin.device("newbie1", "pw")
    disabled = await admin.ok("POST", f"/admin/users/{uid}/disable")
    assert (disabled["disabled"], disabled["disconnected"]) == (True, 1)
    await client.closed
    assert (await admin.ok("GET", f"/admin/users/{uid}"))["user"]["disabled"] is True
    assert (await admin.ok("POST", f"/admin/users/{uid}/enable"))["disabled"] is False
    await admin.device("newbie1", "pw")
    # bad input
    assert await admin.bad("POST", "/admin/users", {"users": "newbie3"})
    assert await admin.bad("POST", "/admin/users", raw=b"{not json")
    assert await admin.bad("POST", "/admin/users/999999/disable", status=404)


@pytest_twisted.ensureDeferred
async def test_inspect_a_user(admin):
    alice, bob = await admin.user("alice"), await admin.user("bobby")
    group = await admin.group(alice, [bob], "Team")
    await admin.device("alice")
    await admin.device("alice", client_type=pb.kCIM_CLIENT_TYPE_WEB)
    user = (await admin.ok("GET", f"/admin/users/{alice}"))["user"]
    assert (user["user_id"], user["userName"], user["nickName"]) == (alice, "alice", "Alice")
    assert (user["groups"], user["online"], user["deleted"], user["disabled"]) == ([group], 2, False, False)
    assert (await admin.ok("GET", f"/admin/users/{bob}"))["user"]["online"] == 0
    assert "no such user" in await admin.bad("GET", "/admin/users/424242", status=404)
    # a path id that is no positive integer matches no route
    assert (await admin.call("GET", "/admin/users/abc")).status == 404
    assert (await admin.call("GET", "/admin/users/0")).status == 404


@pytest_twisted.ensureDeferred
async def test_sessions_lists_devices_and_tokens(admin):
    alice = await admin.user("alice")
    assert await admin.ok("GET", f"/admin/users/{alice}/sessions") == {
        "error_code": 200,
        "error_msg": "ok",
        "user_id": alice,
        "devices": [],
        "tokens": [],
    }
    await admin.device("alice")
    await admin.device("alice", client_type=pb.kCIM_CLIENT_TYPE_WEB)
    await admin.ok("POST", f"/admin/users/{alice}/tokens")
    answer = await admin.ok("GET", f"/admin/users/{alice}/sessions")
    devices = answer["devices"]
    assert len(devices) == 2
    assert {d["clientType"] for d in devices} == {pb.kCIM_CLIENT_TYPE_DEFAULT, pb.kCIM_CLIENT_TYPE_WEB}
    for d in devices:
        assert d["node"] == admin.core.node and d["deviceId"] and d["connectedAt"] > 0
        assert d["peer"].startswith("127.0.0.1")
    # the two password logins issued a token each, and the admin one; ids, not the secrets
    tokens = answer["tokens"]
    assert sorted(t["label"] for t in tokens) == ["admin", "cim-password-login", "cim-password-login"]
    assert all(len(t["id"]) == 16 and t["expiresAt"] > t["createdAt"] for t in tokens)
    assert await admin.bad("GET", "/admin/users/31337/sessions", status=404)


@pytest_twisted.ensureDeferred
async def test_kick_one_device_or_all(admin):
    alice = await admin.user("alice")
    phone = await admin.device("alice")
    web = await admin.device("alice", client_type=pb.kCIM_CLIENT_TYPE_WEB)
    devices = (await admin.ok("GET", f"/admin/users/{alice}/sessions"))["devices"]
    web_id = next(d["deviceId"] for d in devices if d["clientType"] == pb.kCIM_CLIENT_TYPE_WEB)
    kicked = await admin.ok("POST", f"/admin/users/{alice}/kick", {"deviceId": web_id})
    assert kicked["disconnected"] == 1
    await web.closed
    assert [p[0] for p in web.pushes].count(Cmd.KICKOUT_NOTIFY) == 1
    assert phone.transport.connected
    assert "no such device" in await admin.bad("POST", f"/admin/users/{alice}/kick", {"deviceId": web_id}, 404)
    assert "deviceId" in await admin.bad("POST", f"/admin/users/{alice}/kick", {"deviceId": 5})
    assert "deviceId" in await admin.bad("POST", f"/admin/users/{alice}/kick", {"deviceId": ""})
    assert await admin.bad("POST", f"/admin/users/{alice}/kick", raw=b"[1]")
    # all of them (an empty body or {}); a kick is not a ban
    assert (await admin.ok("POST", f"/admin/users/{alice}/kick"))["disconnected"] == 1
    await phone.closed
    assert (await admin.ok("POST", f"/admin/users/{alice}/kick", {}))["disconnected"] == 0
    await admin.device("alice")
    assert await admin.bad("POST", "/admin/users/5555/kick", status=404)


@pytest_twisted.ensureDeferred
async def test_delete_a_user_with_their_data(admin):
    alice, bob, carol = await admin.user("alice"), await admin.user("bobby"), await admin.user("carol")
    owned = await admin.group(alice, [bob, carol], "Alice's")
    joined = await admin.group(bob, [alice], "Bob's")
    friends = admin.core.feature("friends")
    alice_user = await admin.core.store.user_by_id(alice)
    bob_user = await admin.core.store.user_by_id(bob)
    await friends.request(alice_user, None, bob, "hi")
    await friends.answer(bob_user, None, alice, True)
    assert bob in await friends.store.friend_ids(alice)
    await admin.ok("POST", f"/admin/users/{alice}/tokens")
    device = await admin.device("alice")
    bobs = await admin.device("bobby")
    ack = await device.send_message(bob, "hello bob")
    assert ack.server_msg_id == 1
    assert (await device.update_profile(avatar_url="https://a.example/me.png", signature="mine")).result_code == 200
    push = admin.core.feature("push")
    await push.store.register(alice, "webhook", "https://push.example/alice", "", "", {}, "d1", 1, 10)
    assert alice in await push.store.targets_of([alice])

    answer = await admin.ok("DELETE", f"/admin/users/{alice}")
    assert (answer["user_id"], answer["deleted"], answer["groupsLeft"], answer["incomplete"]) == (alice, True, 2, False)
    await device.closed
    user = (await admin.ok("GET", f"/admin/users/{alice}"))["user"]
    assert (user["userName"], user["nickName"], user["disabled"], user["deleted"]) == (
        f"deleted-{alice}",
        "",
        True,
        True,
    )
    assert user["groups"] == []
    assert (await admin.core.store.user_by_name("alice")) is None
    stored = await admin.core.store.user_by_id(alice)
    assert (stored.password_hash, stored.avatar_url, stored.phone) == ("", "", "")
    [profile] = await admin.core.feature("directory").store.profiles([alice])
    assert (profile.nick_name, profile.avatar_url, profile.signature, profile.ex) == ("", "", "", "{}")
    assert await push.store.targets_of([alice]) == {}
    # no way back in
    with pytest.raises(ChatError):
        await admin.core.feature("accounts").login_password("alice", md5("secret"))
    assert (await admin.ok("GET", f"/admin/users/{alice}/sessions"))["tokens"] == []
    # the owned group passed to the longest-standing member; the other one lost alice
    info = await admin.ok("GET", f"/admin/groups/{owned}")
    assert info["group"]["ownerId"] == bob
    assert {m["user_id"] for m in info["members"]} == {bob, carol}
    assert {m["user_id"] for m in (await admin.ok("GET", f"/admin/groups/{joined}"))["members"]} == {bob}
    # friendships ended (bob is told), messages stay with their recipients
    assert await friends.store.friend_ids(alice) == [] and await friends.store.friend_ids(bob) == []
    history = await admin.ok("GET", f"/admin/messages?conv=p:{min(alice, bob)}:{max(alice, bob)}")
    assert [m["data"] for m in history["messages"]] == ["hello bob"]
    assert bobs.transport.connected
    assert [u["deleted"] for u in (await admin.ok("GET", "/admin/users/search?q=deleted-"))["users"]] == [True]
    # asking again finishes nothing new and fails nothing; the name is free again
    again = await admin.ok("DELETE", f"/admin/users/{alice}")
    assert (again["deleted"], again["groupsLeft"]) == (True, 0)
    assert await admin.user("alice") != alice
    assert "no such user" in await admin.bad("DELETE", "/admin/users/987654", status=404)


@pytest_twisted.ensureDeferred
async def test_delete_removes_the_users_files(admin):
    files = admin.core.feature("files")
    alice = await admin.user("alice")
    token = (await admin.ok("POST", f"/admin/users/{alice}/tokens"))["token"]
    headers = Headers({b"Authorization": [f"Bearer {token}".encode()], b"Content-Type": [b"text/plain"]})
    response = await Agent(reactor).request(
        b"POST", (admin.live.http_url + "/files").encode(), headers, FileBodyProducer(io.BytesIO(b"hello file"))
    )
    uploaded = json.loads(await readBody(response))
    assert uploaded["error_code"] == 0, uploaded
    assert len(await files.store.files_of(alice, 0, 10)) == 1
    listed = await admin.ok("GET", f"/admin/users/{alice}/files")
    assert len(listed["files"]) == 1
    await admin.ok("DELETE", f"/admin/users/{alice}")
    assert await files.store.files_of(alice, 0, 10) == []


@pytest_twisted.ensureDeferred
async def test_the_system_account_cannot_be_deleted(admin):
    alice = await admin.user("alice")
    message = (await admin.ok("POST", f"/admin/users/{alice}/notice", {"text": "hi"}))["message"]
    system = message["fromUserId"]
    assert "system account" in await admin.bad("DELETE", f"/admin/users/{system}", status=403)
    assert "system account" in await admin.bad("POST", f"/admin/users/{system}/notice", {"text": "x"})


@pytest_twisted.ensureDeferred
async def test_a_deleted_account_cannot_be_revived(admin):
    alice, bob = await admin.user("alice"), await admin.user("bobby")
    await admin.ok("DELETE", f"/admin/users/{alice}")
    for path, body in (("enable", None), ("password", {"userPwd": md5("again")}), ("tokens", None)):
        reply = await admin.call("POST", f"/admin/users/{alice}/{path}", body)
        assert reply.status == 403, (path, reply.raw)
        assert reply.body["error_code"] == int(ErrorCode.FORBIDDEN), reply.body
        assert f"user {alice} was deleted" in reply.body["error_msg"], reply.body
    user = (await admin.ok("GET", f"/admin/users/{alice}"))["user"]
    assert (user["disabled"], user["deleted"]) == (True, True)
    stored = await admin.core.store.user_by_id(alice)
    assert (stored.disabled, stored.password_hash) == (True, "")
    assert (await admin.ok("GET", f"/admin/users/{alice}/sessions"))["tokens"] == []
    # the service refuses too (the CLI's enable and passwd go through it)
    with pytest.raises(ChatError) as refused:
        await admin.core.feature("accounts").enable(alice)
    assert refused.value.code == ErrorCode.FORBIDDEN
    # bad input is still answered first, and an account that was only disabled comes back
    assert "userPwd" in await admin.bad("POST", f"/admin/users/{alice}/password", {"userPwd": "short"})
    await admin.ok("POST", f"/admin/users/{bob}/disable")
    assert (await admin.ok("POST", f"/admin/users/{bob}/enable"))["disabled"] is False
    await admin.ok("POST", f"/admin/users/{bob}/password", {"userPwd": md5("new")})
    assert (await admin.ok("POST", f"/admin/users/{bob}/tokens"))["token"]


@pytest_twisted.ensureDeferred
async def test_the_cli_cannot_revive_a_deleted_account(cli, tmp_path):  # noqa: F811
    ok(cli("user", "add", "alice", "--password", "pw"))

    async def delete(core):
        return await core.feature("admin_api").delete_user(1)

    assert (await with_core(tmp_path, delete))["deleted"] is True
    for args in (("user", "enable", "1"), ("user", "passwd", "1", "--password", "x"), ("token", "issue", "1")):
        assert "user 1 was deleted" in refused(cli(*args)), args
    assert ok(cli("user", "list")) == ["1\tdeleted-1\t\tdisabled"]


# ---- deletion erases every feature's rows (memory node, the DELETE through the HTTP resource) ------


def memory_admin(node, method: str, path: str) -> tuple[int, dict]:
    """Answer one admin request on a memory node through the node's own HTTP resource."""
    from twisted.web.test.requesthelper import DummyRequest

    from coffeechat.protocols.http import ApiResource

    request = DummyRequest(path.encode().split(b"/")[1:])
    request.method = method.encode()
    request.content = io.BytesIO(b"")
    request.requestHeaders.addRawHeader(b"Authorization", f"Bearer {TOKEN}".encode())
    ApiResource(node.core).render(request)
    node.clock.advance(0)
    assert request.finished
    return request.responseCode, json.loads(b"".join(request.written))


def test_delete_erases_group_requests_blocks_dnd_and_pins():
    from coffeechat.features.dnd import DndSettings
    from coffeechat.features.pins import Pin

    from .memory_node import MemoryNode

    node = MemoryNode(**{"http.admin_token": TOKEN})
    alice, bob, carol, dave = (node.user(n) for n in ("alice", "bobby", "carol", "david"))
    r = node.result
    users = {u: r(node.store.user_by_id(u)) for u in (alice, bob, carol, dave)}
    now = int(node.clock.seconds())
    later = now + 3600
    groups = node.core.feature("groups")
    bobs = r(defer.ensureDeferred(groups.create(users[bob], None, "Bob's", [carol]))).group.group_id
    carols = r(defer.ensureDeferred(groups.create(users[carol], None, "Carol's", [alice]))).group.group_id
    # group requests: alice asks to join, alice invites dave, bob invites alice; dave asks too
    requests = node.core.feature("group_requests")
    [(asked, _)] = r(requests.store.create(1, bobs, alice, [alice], "let me in", now, later, 50, 50))
    [(invited_by, _)] = r(requests.store.create(2, carols, alice, [dave], "", now, later, 50, 50))
    [(invited, _)] = r(requests.store.create(2, bobs, bob, [alice], "", now, later, 50, 50))
    [(others, _)] = r(requests.store.create(1, bobs, dave, [dave], "me too", now, later, 50, 50))
    r(requests.store.set_consent(alice, True))
    pending = r(defer.ensureDeferred(requests.pending(users[bob], 0, 0)))[0]
    assert {q.request_id for q in pending} == {asked.request_id, invited.request_id, others.request_id}
    # blocks: alice blocks bob, carol blocks alice, bob blocks dave (stays)
    blocks = node.core.feature("blocks")
    for owner, peer in ((alice, bob), (carol, alice), (bob, dave)):
        assert r(defer.ensureDeferred(blocks.set_blocked(users[owner], None, peer, True)))
    assert r(blocks.is_blocked(carol, alice)) is True  # cached now: the deletion must drop it
    # dnd: alice's setting and a mute; dave's mute of the conversation with alice stays
    dnd = node.core.feature("dnd")
    r(dnd.store.save_settings(alice, DndSettings(True, 0, 0, "", True, now)))
    r(dnd.store.set_muted(alice, 2, carols, True, now, 100))
    r(dnd.store.set_muted(dave, 1, alice, True, now, 100))
    assert r(defer.ensureDeferred(dnd.get(alice)))[0].enabled  # cached too
    # pins: alice pins two conversations; dave pins the one with alice (stays)
    pins = node.core.feature("pins")
    r(pins.store.pin(alice, 1, bob, now, 10))
    r(pins.store.pin(alice, 2, carols, now, 10))
    r(pins.store.pin(dave, 1, alice, now, 10))
    bob_device = node.connect()
    bob_device.login("bobby")
    carol_device = node.connect()
    carol_device.login("carol")
    carol_device.frames()

    status, answer = memory_admin(node, "DELETE", f"/admin/users/{alice}")
    assert (status, answer["deleted"], answer["incomplete"]) == (200, True, False), answer

    # group requests: every one by or for alice is gone, dave's own stays
    pending = r(defer.ensureDeferred(requests.pending(users[bob], 0, 0)))[0]
    assert [q.request_id for q in pending] == [others.request_id]
    assert [q.request_id for q in r(defer.ensureDeferred(requests.pending(users[dave], 0, 0)))[0]] == [
        others.request_id
    ]
    for gone in (asked, invited_by, invited):
        assert r(requests.store.get(gone.request_id)) is None
    assert r(requests.store.consent_of([alice])) == set()
    # blocks: alice's list and carol's entry of her are gone (carol's devices are told); bob's stays
    assert r(defer.ensureDeferred(blocks.listed(alice))) == []
    assert r(defer.ensureDeferred(blocks.listed(carol))) == []
    assert r(blocks.is_blocked(carol, alice)) is False
    assert [b.blocked_id for b, _ in r(defer.ensureDeferred(blocks.listed(bob)))] == [dave]
    told = [m for cmd, _, m in carol_device.frames() if cmd == Cmd.BLOCK_CHANGED_NOTIFY]
    assert [(m.peer_id, m.blocked) for m in told] == [(alice, False)]
    # dnd: alice's setting and mutes are gone (the cache too); dave's mute stays
    settings, mutes, active = r(defer.ensureDeferred(dnd.get(alice)))
    assert (settings, mutes, active) == (DndSettings(), [], False)
    assert r(dnd.store.load(alice)) == (None, [])
    assert [(m.session_type, m.session_id) for m in r(defer.ensureDeferred(dnd.get(dave)))[1]] == [(1, alice)]
    # pins: alice's are gone, dave's stays
    assert r(pins.pins_of(alice)) == []
    assert r(pins.pins_of(dave)) == [Pin(1, alice, now)]
    # asking again erases nothing more and fails nothing
    status, again = memory_admin(node, "DELETE", f"/admin/users/{alice}")
    assert (status, again["incomplete"]) == (200, False)
    status, refused = memory_admin(node, "POST", f"/admin/users/{alice}/enable")
    assert status == 403 and "was deleted" in refused["error_msg"]


def test_delete_erases_hidden_messages_last_seen_search_marks_and_bots():
    from coffeechat.features.search import SearchSpec, parse_query

    from .memory_node import MemoryNode

    node = MemoryNode(**{"http.admin_token": TOKEN})
    alice, bob = node.user("alice"), node.user("bobby")
    r = node.result
    users = {u: r(node.store.user_by_id(u)) for u in (alice, bob)}
    device = node.connect()
    device.login("alice")
    for i in range(1, 4):
        device.send_text(bob, f"memo {i}")
    conv = f"p:{min(alice, bob)}:{max(alice, bob)}"
    node.advance(2)  # the search index catches up
    # deletes: alice hid a message and removed the conversation; bob hid one too (stays)
    deletes = node.core.feature("deletes")
    r(deletes.store.delete(alice, conv, [2], 1, 100))
    r(deletes.store.remove(alice, conv))
    r(deletes.store.delete(bob, conv, [3], 1, 100))
    # search: alice's own hidden and cleared marks
    search = node.core.feature("search")
    r(search.store.hide(alice, conv, [3]))
    r(search.store.clear(alice, conv, 1))

    def found(user_id: int) -> list[int]:
        spec = SearchSpec(user_id=user_id, parts=tuple(parse_query("memo")), limit=20)
        return [m.seq for m in r(search.store.search(spec))]

    assert found(alice) == [2]
    # bots: bob is one (his key and webhook go with his account, below)
    bots = node.core.feature("bots")
    _, key = r(defer.ensureDeferred(bots.flag(bob, "https://bot.example/hook", None)))
    assert r(defer.ensureDeferred(bots.authenticate(key))).user_id == bob
    # online status: alice's last-seen time, and she hides it
    status = node.core.feature("online_status")
    device.close()
    r(defer.ensureDeferred(status.set_hidden(users[alice], None, True)))
    node.advance(120)
    assert alice in status.hidden and r(status.store.last_seen([alice]))

    code, answer = memory_admin(node, "DELETE", f"/admin/users/{alice}")
    assert (code, answer["incomplete"]) == (200, False), answer

    assert r(deletes.store.state(alice, conv, 0, 1 << 62)) is None
    assert r(deletes.store.state(bob, conv, 0, 1 << 62)).deleted == frozenset({3})
    assert found(alice) == [3, 2, 1]  # nothing of hers is left to filter with
    assert r(status.store.last_seen([alice])) == {} and alice not in status.hidden
    assert r(status.store.hidden_users()) == []
    node.advance(120)  # a later flush writes nothing back for her
    assert r(status.store.last_seen([alice])) == {}
    [seen] = r(defer.ensureDeferred(status.query(users[bob], [alice])))
    assert seen.last_seen == 0
    code, answer = memory_admin(node, "DELETE", f"/admin/users/{bob}")
    assert (code, answer["incomplete"]) == (200, False), answer
    assert bob not in bots.bots and r(bots.store.get(bob)) is None
    with pytest.raises(ChatError) as refused:
        r(defer.ensureDeferred(bots.authenticate(key)))
    assert refused.value.code == ErrorCode.BOT_KEY_INVALID


# ---- groups ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_groups_by_name_paged(admin):
    alice, bob = await admin.user("alice"), await admin.user("bobby")
    g1 = await admin.group(alice, [bob], "Coffee lovers")
    g2 = await admin.group(bob, [alice], "Tea party")
    g3 = await admin.group(alice, [], "COFFEE 100%")
    listed = await admin.ok("GET", "/admin/groups")
    assert [g["group_id"] for g in listed["groups"]] == [g1, g2, g3]
    assert listed["groups"][0] | {"createdAt": 0, "updatedAt": 0} == {
        "group_id": g1,
        "name": "Coffee lovers",
        "groupType": 1,
        "ownerId": alice,
        "memberCount": 2,
        "createdAt": 0,
        "updatedAt": 0,
    }
    assert [g["group_id"] for g in (await admin.ok("GET", "/admin/groups?q=coffee"))["groups"]] == [g1, g3]
    assert [g["group_id"] for g in (await admin.ok("GET", "/admin/groups?q=100%25"))["groups"]] == [g3]
    page = await admin.ok("GET", "/admin/groups?limit=2")
    assert [g["group_id"] for g in page["groups"]] == [g1, g2]
    rest = await admin.ok("GET", f"/admin/groups?limit=2&after={page['next']}")
    assert [g["group_id"] for g in rest["groups"]] == [g3]
    assert "limit" in await admin.bad("GET", "/admin/groups?limit=-3")


@pytest_twisted.ensureDeferred
async def test_inspect_group_change_owner_and_dissolve(admin):
    alice, bob, carol = await admin.user("alice"), await admin.user("bobby"), await admin.user("carol")
    group = await admin.group(alice, [bob], "Team")
    bobs = await admin.device("bobby")
    info = await admin.ok("GET", f"/admin/groups/{group}")
    assert (info["group"]["group_id"], info["group"]["name"], info["group"]["ownerId"]) == (group, "Team", alice)
    assert sorted((m["user_id"], m["role"], m["nickName"]) for m in info["members"]) == [
        (alice, 3, "Alice"),
        (bob, 1, "Bobby"),
    ]
    # change owner: the old owner stays, as an admin; members are told
    assert (await admin.ok("POST", f"/admin/groups/{group}/owner", {"userId": bob}))["ownerId"] == bob
    roles = {m["user_id"]: m["role"] for m in (await admin.ok("GET", f"/admin/groups/{group}"))["members"]}
    assert roles == {alice: 2, bob: 3}
    assert (await admin.ok("POST", f"/admin/groups/{group}/owner", {"userId": bob}))["ownerId"] == bob
    assert "member" in await admin.bad("POST", f"/admin/groups/{group}/owner", {"userId": carol})
    assert "userId" in await admin.bad("POST", f"/admin/groups/{group}/owner", {"userId": "2"})
    assert "userId" in await admin.bad("POST", f"/admin/groups/{group}/owner", {})
    assert await admin.bad("POST", f"/admin/groups/{group}/owner", raw=b"nope")
    assert "no group" in await admin.bad("POST", "/admin/groups/777/owner", {"userId": bob}, status=404)
    # dissolve
    while bobs.pushes:
        bobs.pushes.popleft()
    assert (await admin.ok("DELETE", f"/admin/groups/{group}"))["dismissed"] is True
    assert "no group" in await admin.bad("GET", f"/admin/groups/{group}", status=404)
    assert (await admin.ok("GET", "/admin/groups"))["groups"] == []
    assert await admin.core.store.groups_of(bob) == []
    assert "no group" in await admin.bad("DELETE", f"/admin/groups/{group}", status=404)
    assert bobs.transport.connected


# ---- messages --------------------------------------------------------------------------------------


async def chat(admin: Admin, n: int) -> tuple[int, int, Any, Any, str]:
    alice, bob = await admin.user("alice"), await admin.user("bobby")
    a = await admin.device("alice")
    b = await admin.device("bobby")
    for i in range(n):
        ack = await a.send_message(bob, f"message {i + 1}")
        assert ack.server_msg_id == i + 1
    return alice, bob, a, b, f"p:{min(alice, bob)}:{max(alice, bob)}"


@pytest_twisted.ensureDeferred
async def test_history_of_a_conversation_paged(admin):
    alice, bob, _, _, conv = await chat(admin, 5)
    page = await admin.ok("GET", f"/admin/messages?conv={conv}&limit=2")
    assert [m["msgId"] for m in page["messages"]] == [1, 2]
    assert (page["next"], page["more"], page["conv"]) == (2, True, conv)
    first = page["messages"][0]
    assert (first["fromUserId"], first["toId"], first["msgType"], first["data"], first["sessionType"]) == (
        alice,
        bob,
        1,
        "message 1",
        1,
    )
    page = await admin.ok("GET", f"/admin/messages?conv={conv}&limit=2&after=2")
    assert [m["msgId"] for m in page["messages"]] == [3, 4]
    page = await admin.ok("GET", f"/admin/messages?conv={conv}&after=4")
    assert ([m["msgId"] for m in page["messages"]], page["more"]) == ([5], False)
    assert (await admin.ok("GET", f"/admin/messages?conv={conv}&after=5"))["messages"] == []
    # a time range: everything is from now, so since the future is empty
    future = int(reactor.seconds()) + 3600
    assert (await admin.ok("GET", f"/admin/messages?conv={conv}&since={future}"))["messages"] == []
    assert len((await admin.ok("GET", f"/admin/messages?conv={conv}&until={future}"))["messages"]) == 5
    assert (await admin.ok("GET", f"/admin/messages?conv={conv}&until=1"))["messages"] == []
    # a conversation nobody wrote in is empty, not an error
    assert (await admin.ok("GET", "/admin/messages?conv=g:999"))["messages"] == []


@pytest_twisted.ensureDeferred
async def test_history_of_a_group(admin):
    alice, bob = await admin.user("alice"), await admin.user("bobby")
    group = await admin.group(alice, [bob], "Team")
    a = await admin.device("alice")
    ack = await a.send_message(group, "hi team", session_type=pb.kCIM_SESSION_TYPE_GROUP)
    assert ack.server_msg_id > 0
    messages = (await admin.ok("GET", f"/admin/messages?conv=g:{group}"))["messages"]
    assert [(m["fromUserId"], m["data"], m["sessionType"]) for m in messages if m["msgType"] == 1] == [
        (alice, "hi team", 2)
    ]


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    "query",
    ["", "conv=", "conv=x:1", "conv=p:2:1", "conv=p:1:1", "conv=p:01:2", "conv=g:0", "conv=p:1", "conv=g:1&limit=0"],
)
async def test_history_bad_conversation(admin, query):
    message = await admin.bad("GET", f"/admin/messages?{query}")
    assert "conv" in message or "limit" in message or "lower" in message


@pytest_twisted.ensureDeferred
async def test_recall_any_message(admin):
    alice, bob, _, b, conv = await chat(admin, 2)
    recalled = await admin.ok(
        "POST", "/admin/messages/recall", {"sessionType": 1, "userId": alice, "sessionId": bob, "msgId": 1}
    )
    assert (recalled["recalled"]["conv"], recalled["recalled"]["msgId"]) == (conv, 1)
    _, _, push = await b.next_push(Cmd.MSG_RECALL_NOTIFY)
    assert (push.server_msg_id, push.from_user_id) == (1, alice)
    messages = (await admin.ok("GET", f"/admin/messages?conv={conv}"))["messages"]
    assert messages[0]["msgId"] == 1 and messages[0]["data"] != "message 1"
    assert messages[1]["data"] == "message 2"
    assert await admin.bad(
        "POST", "/admin/messages/recall", {"sessionType": 1, "userId": alice, "sessionId": bob, "msgId": 99}, 404
    )
    assert await admin.bad("POST", "/admin/messages/recall", {"sessionType": 3, "sessionId": bob, "msgId": 1})
    assert await admin.bad("POST", "/admin/messages/recall", raw=b"[]")


@pytest_twisted.ensureDeferred
async def test_export_a_conversation_as_json_lines(admin):
    _, _, _, _, conv = await chat(admin, 5)
    reply = await admin.call("GET", f"/admin/messages/export?conv={conv}")
    assert reply.status == 200
    assert reply.headers.getRawHeaders(b"Content-Type") == [b"application/x-ndjson; charset=utf-8"]
    lines = [json.loads(line) for line in reply.raw.decode().splitlines()]
    assert [m["data"] for m in lines] == [f"message {i}" for i in range(1, 6)]
    assert reply.headers.getRawHeaders(b"X-More") == [b"0"]
    assert reply.headers.getRawHeaders(b"X-Next-After") == [b"5"]
    # in bounded answers
    seen, after = [], 0
    while True:
        reply = await admin.call("GET", f"/admin/messages/export?conv={conv}&limit=2&after={after}")
        seen += [json.loads(line)["msgId"] for line in reply.raw.decode().splitlines()]
        after = int(reply.headers.getRawHeaders(b"X-Next-After")[0])
        if reply.headers.getRawHeaders(b"X-More") == [b"0"]:
            break
    assert seen == [1, 2, 3, 4, 5]
    empty = await admin.call("GET", "/admin/messages/export?conv=g:12345")
    assert (empty.status, empty.raw, empty.headers.getRawHeaders(b"X-More")) == (200, b"", [b"0"])
    assert "conv" in await admin.bad("GET", "/admin/messages/export?conv=nope")


@pytest_twisted.ensureDeferred
async def test_export_is_bounded_by_bytes(tmp_path):
    node = await admin_node(tmp_path, **{"admin_api.export_max_bytes": 1024})
    try:
        alice, bob = await node.user("alice"), await node.user("bobby")
        a = await node.device("alice")
        for i in range(6):
            await a.send_message(bob, f"{i}" * 400)
        conv = f"p:{min(alice, bob)}:{max(alice, bob)}"
        reply = await node.call("GET", f"/admin/messages/export?conv={conv}")
        lines = reply.raw.decode().splitlines()
        assert 1 <= len(lines) < 6 and len(reply.raw) < 2048
        assert reply.headers.getRawHeaders(b"X-More") == [b"1"]
        assert int(reply.headers.getRawHeaders(b"X-Next-After")[0]) == len(lines)
    finally:
        await stop_node(node.live)


# ---- notices and broadcasts -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_system_notice_to_one_user(admin):
    alice, bob = await admin.user("alice"), await admin.user("bobby")
    a = await admin.device("alice")
    message = (await admin.ok("POST", f"/admin/users/{alice}/notice", {"text": "Maintenance at 2am"}))["message"]
    assert (message["toId"], message["msgType"], message["data"], message["msgId"]) == (
        alice,
        1,
        "Maintenance at 2am",
        1,
    )
    _, _, push = await a.next_push(Cmd.MSG_DATA)
    assert (push.from_user_id, push.msg_data, push.msg_type) == (message["fromUserId"], b"Maintenance at 2am", 1)
    system = await admin.core.store.user_by_id(message["fromUserId"])
    assert (system.name, system.nick_name, system.password_hash) == ("system", "System", "")
    # stored: an offline user finds it in their history; TIPS on request
    tips = (await admin.ok("POST", f"/admin/users/{bob}/notice", {"text": "tip", "msgType": 8}))["message"]
    assert tips["msgType"] == 8 and tips["fromUserId"] == system.user_id
    history = await admin.core.store.history(tips["conv"], 10, 10, 1)
    assert [m.data for m in history] == [b"tip"]
    # bad input
    assert "text" in await admin.bad("POST", f"/admin/users/{alice}/notice", {"text": "  "})
    assert "text" in await admin.bad("POST", f"/admin/users/{alice}/notice", {"text": 5})
    assert "text" in await admin.bad("POST", f"/admin/users/{alice}/notice", {})
    assert "4096" in await admin.bad("POST", f"/admin/users/{alice}/notice", {"text": "é" * 2049})
    assert "msgType" in await admin.bad("POST", f"/admin/users/{alice}/notice", {"text": "x", "msgType": 2})
    assert "JSON" in await admin.bad("POST", f"/admin/users/{alice}/notice", raw=b"{")
    assert await admin.bad("POST", "/admin/users/8888/notice", {"text": "x"}, status=404)
    await admin.ok("POST", f"/admin/users/{bob}/disable")
    assert "disabled" in await admin.bad("POST", f"/admin/users/{bob}/notice", {"text": "x"})


async def finished(admin: Admin, job: int) -> dict:
    async def done():
        b = (await admin.ok("GET", f"/admin/broadcasts/{job}"))["broadcast"]
        return b if b["status"] != "running" else None

    return await until(done)


@pytest_twisted.ensureDeferred
async def test_broadcast_to_everyone(admin):
    ids = [await admin.user(f"user{i:02}") for i in range(5)]
    await admin.ok("POST", f"/admin/users/{ids[4]}/disable")
    online = await admin.device("user00")
    started = await admin.ok("POST", "/admin/broadcasts", {"text": "Welcome to 2.0"}, status=202)
    job = started["broadcast"]
    assert (job["status"], job["segment"], job["text"], job["msgType"]) == (
        "running",
        {"all": True},
        "Welcome to 2.0",
        1,
    )
    done = await finished(admin, job["id"])
    # every enabled account, in batches of 2; not the disabled one, not the system account
    assert (done["status"], done["sent"]) == ("done", 4)
    assert done["finishedAt"] >= done["createdAt"]
    _, _, push = await online.next_push(Cmd.MSG_DATA)
    assert push.msg_data == b"Welcome to 2.0"
    system = await admin.core.store.user_by_name("system")
    for uid, expected in zip(ids, [1, 1, 1, 1, 0], strict=True):
        conv = f"p:{min(uid, system.user_id)}:{max(uid, system.user_id)}"
        messages = (await admin.ok("GET", f"/admin/messages?conv={conv}"))["messages"]
        assert len(messages) == expected
        if expected:
            assert messages[0]["clientMsgId"] == f"broadcast-{job['id']}-{uid}"
    listed = await admin.ok("GET", "/admin/broadcasts")
    assert [b["id"] for b in listed["broadcasts"]] == [job["id"]]


@pytest_twisted.ensureDeferred
async def test_broadcast_to_a_segment(admin):
    ids = [await admin.user(f"user{i:02}") for i in range(4)]
    group = await admin.group(ids[0], [ids[1]], "G")
    to_list = await admin.ok("POST", "/admin/broadcasts", {"text": "a", "segment": {"userIds": [ids[3], ids[2]]}}, 202)
    to_group = await admin.ok("POST", "/admin/broadcasts", {"text": "b", "segment": {"groupId": group}}, 202)
    future = int(reactor.seconds()) + 3600
    to_none = await admin.ok(
        "POST", "/admin/broadcasts", {"text": "c", "msgType": 8, "segment": {"createdAfter": future}}, 202
    )
    assert to_list["broadcast"]["targets"] == 2
    assert (await finished(admin, to_list["broadcast"]["id"]))["sent"] == 2
    assert (await finished(admin, to_group["broadcast"]["id"]))["sent"] == 2
    assert (await finished(admin, to_none["broadcast"]["id"]))["sent"] == 0
    system = (await admin.core.store.user_by_name("system")).user_id
    got = {}
    for uid in ids:
        conv = f"p:{min(uid, system)}:{max(uid, system)}"
        got[uid] = [m["data"] for m in (await admin.ok("GET", f"/admin/messages?conv={conv}"))["messages"]]
    assert got == {ids[0]: ["b"], ids[1]: ["b"], ids[2]: ["a"], ids[3]: ["a"]}
    listed = await admin.ok("GET", "/admin/broadcasts?limit=2")
    assert [b["id"] for b in listed["broadcasts"]] == [to_none["broadcast"]["id"], to_group["broadcast"]["id"]]
    older = await admin.ok("GET", f"/admin/broadcasts?limit=2&after={listed['next']}")
    assert [b["id"] for b in older["broadcasts"]] == [to_list["broadcast"]["id"]]


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"segment": {"all": True}}, "text"),
        ({"text": "x", "segment": []}, "segment"),
        ({"text": "x", "segment": {"all": False}}, "all"),
        ({"text": "x", "segment": {"everyone": True}}, "segment keys"),
        ({"text": "x", "segment": {"all": True, "groupId": 1}}, "not several"),
        ({"text": "x", "segment": {"userIds": []}}, "userIds"),
        ({"text": "x", "segment": {"userIds": ["1"]}}, "userIds"),
        ({"text": "x", "segment": {"userIds": [0]}}, "userIds"),
        ({"text": "x", "segment": {"groupId": -1}}, "groupId"),
        ({"text": "x", "segment": {"createdAfter": "yesterday"}}, "createdAfter"),
        ({"text": "x", "msgType": 100}, "msgType"),
    ],
)
async def test_broadcast_bad_input(admin, body, words):
    assert words in await admin.bad("POST", "/admin/broadcasts", body)
    assert (await admin.ok("GET", "/admin/broadcasts"))["broadcasts"] == []


@pytest_twisted.ensureDeferred
async def test_broadcast_to_an_unknown_group_and_too_many_users(tmp_path):
    node = await admin_node(tmp_path, **{"admin_api.max_segment_users": 3})
    try:
        assert "no group" in await node.bad("POST", "/admin/broadcasts", {"text": "x", "segment": {"groupId": 9}}, 404)
        message = await node.bad("POST", "/admin/broadcasts", {"text": "x", "segment": {"userIds": [1, 2, 3, 4]}})
        assert "1-3" in message
    finally:
        await stop_node(node.live)


@pytest_twisted.ensureDeferred
async def test_cancel_a_broadcast(tmp_path):
    node = await admin_node(tmp_path, **{"admin_api.broadcast_interval": 3600.0, "admin_api.broadcast_batch": 1})
    try:
        for i in range(3):
            await node.user(f"user{i:02}")
        job = (await node.ok("POST", "/admin/broadcasts", {"text": "slow"}, status=202))["broadcast"]
        # the first step runs at once (one recipient), the next only an hour later
        await until(lambda: node_sent(node, job["id"], 1))
        cancelled = (await node.ok("POST", f"/admin/broadcasts/{job['id']}/cancel"))["broadcast"]
        assert (cancelled["status"], cancelled["sent"]) == ("cancelled", 1)
        assert (await node.ok("POST", f"/admin/broadcasts/{job['id']}/cancel"))["broadcast"]["status"] == "cancelled"
        await node.core.feature("admin_api").step()
        assert (await node.ok("GET", f"/admin/broadcasts/{job['id']}"))["broadcast"]["sent"] == 1
        assert "no such broadcast" in await node.bad("POST", "/admin/broadcasts/99/cancel", status=404)
        assert "no such broadcast" in await node.bad("GET", "/admin/broadcasts/99", status=404)
    finally:
        await stop_node(node.live)


async def node_sent(node: Admin, job: int, sent: int) -> bool:
    return (await node.ok("GET", f"/admin/broadcasts/{job}"))["broadcast"]["sent"] == sent


@pytest_twisted.ensureDeferred
async def test_a_replayed_broadcast_step_stores_nothing_twice(admin):
    """A node that stopped after sending a batch but before recording it sends it again: each
    copy's client_msg_id makes the second a duplicate that storage refuses."""
    service = admin.core.feature("admin_api")
    uid = await admin.user("alice")
    sender = await service.system_user()
    first = await service._deliver(sender, uid, 1, "once", f"broadcast-7-{uid}")
    again = await service._deliver(sender, uid, 1, "once", f"broadcast-7-{uid}")
    assert first.seq == again.seq == 1
    conv = first.conv
    assert len(await admin.core.store.history(conv, 10, 10, 1)) == 1


# ---- statistics and the other features' admin routes ---------------------------------------------


@pytest_twisted.ensureDeferred
async def test_statistics_of_the_node(admin):
    await admin.user("alice")
    await admin.device("alice")
    await admin.device("alice")
    stats = await admin.ok("GET", "/admin/stats")
    assert (stats["online_users"], stats["devices"]) == (1, 2)
    assert "admin_api" in stats["features"]


@pytest_twisted.ensureDeferred
async def test_other_features_admin_routes(admin):
    """The admin routes of accounts, files, bots and webhooks, through the same API."""
    alice, robot = await admin.user("alice"), await admin.user("robot")
    usage = await admin.ok("GET", "/admin/files/usage")
    assert (usage["used"], usage["files"], usage["users"]) == (0, 0, [])
    assert (await admin.ok("GET", f"/admin/users/{alice}/files"))["files"] == []
    assert "no such file" in await admin.bad("DELETE", "/admin/files/nosuchfile", status=404)
    assert (await admin.ok("GET", "/admin/webhooks"))["endpoints"] == []
    flagged = await admin.ok("POST", f"/admin/bots/{robot}", {"url": "http://127.0.0.1:9/hook"})
    assert flagged["user_id"] == robot and flagged["api_key"]
    assert [b["user_id"] for b in (await admin.ok("GET", "/admin/bots"))["bots"]] == [robot]
    assert (await admin.ok("DELETE", f"/admin/bots/{robot}"))["user_id"] == robot
    assert "not a bot" in await admin.bad("DELETE", f"/admin/bots/{robot}", status=404)
    token = (await admin.ok("POST", f"/admin/users/{alice}/tokens"))["token"]
    assert (await admin.core.feature("accounts").login_token(alice, token)).user_id == alice
    assert (await admin.ok("POST", f"/admin/users/{alice}/password", {"userPwd": md5("new")}))["user_id"] == alice
    assert (await admin.core.feature("accounts").login_password("alice", md5("new"))).user_id == alice
    assert await admin.bad("POST", f"/admin/users/{alice}/password", {"userPwd": "short"})


# ---- several nodes (memory cluster: one store, one presence hub, one clock) ----------------------


def test_kick_one_device_connected_to_another_node():
    from twisted.internet import defer

    from .memory_node import memory_cluster

    _, (n1, n2) = memory_cluster()
    alice = n1.user("alice")
    there = n2.connect()
    there.login("alice")
    here = n1.connect("192.168.1.2")
    here.login("alice")
    admin = n1.core.feature("admin_api")
    devices = n1.result(defer.ensureDeferred(admin.sessions(alice)))["devices"]
    assert sorted(d["node"] for d in devices) == ["n1", "n2"]
    remote = next(d for d in devices if d["node"] == "n2")
    assert "connectedAt" not in remote  # the details are the holding node's
    kicked = n1.result(defer.ensureDeferred(admin.kick(alice, remote["deviceId"])))
    assert kicked["disconnected"] == 0  # not here: the node holding it closed it
    n1.advance(1)
    assert there.closed and not here.closed
    assert Cmd.KICKOUT_NOTIFY in [cmd for cmd, _, _ in there.received + there.frames()]


def test_a_broadcast_is_taken_over_when_its_node_stops_stepping():
    from twisted.internet import defer

    from .memory_node import memory_cluster

    settings = {"admin_api.broadcast_interval": 3600.0, "admin_api.broadcast_batch": 2}
    _, (n1, n2) = memory_cluster(**settings)
    ids = [n1.user(f"user{i:02}") for i in range(5)]
    a1, a2 = n1.core.feature("admin_api"), n2.core.feature("admin_api")
    job = n1.result(defer.ensureDeferred(a1.start_broadcast({"text": "hello"})))
    n1.clock.advance(0)  # n1 runs the first step at once, and holds the lease
    assert n1.result(a1.store.broadcast(job.job_id)).sent == 2
    n1.result(a2.step())  # n2 may not take it while n1's lease runs
    assert n1.result(a1.store.broadcast(job.job_id)).sent == 2
    n1.clock.advance(61)  # n1 is gone: its lease runs out
    while n1.result(a2.store.broadcast(job.job_id)).status == "running":
        n2.result(a2.step())
    done = n1.result(a2.store.broadcast(job.job_id))
    assert (done.status, done.sent) == ("done", 5)
    system = n1.result(n1.store.user_by_name("system"))
    for uid in ids:
        conv = f"p:{min(uid, system.user_id)}:{max(uid, system.user_id)}"
        assert [m.data for m in n1.result(n1.store.history(conv, 10, 10, 1))] == [b"hello"]


# ---- the admin facet's SQL on PostgreSQL ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_admin_api_on_postgresql(tmp_path, pg_server):  # noqa: F811
    dsn = pg_server.database(tmp_path)
    node = await admin_node(tmp_path, **{"storage.backend": "postgres", "storage.dsn": dsn})
    try:
        alice, bob = await node.user("alice01", "Wonder"), await node.user("bobby", "Alicia")
        group = await node.group(alice, [bob], "Coffee 100%")
        found = await node.ok("GET", "/admin/users/search?q=ali")
        assert [u["user_id"] for u in found["users"]] == [alice, bob]
        assert [g["group_id"] for g in (await node.ok("GET", "/admin/groups?q=100%25"))["groups"]] == [group]
        await node.ok("POST", f"/admin/users/{alice}/tokens")
        assert len((await node.ok("GET", f"/admin/users/{alice}/sessions"))["tokens"]) == 1
        job = (await node.ok("POST", "/admin/broadcasts", {"text": "pg"}, status=202))["broadcast"]
        assert (await finished(node, job["id"]))["sent"] == 2
        job = await node.ok("POST", "/admin/broadcasts", {"text": "x", "segment": {"userIds": [bob]}}, 202)
        assert (await finished(node, job["broadcast"]["id"]))["sent"] == 1
        assert [b["text"] for b in (await node.ok("GET", "/admin/broadcasts"))["broadcasts"]] == ["x", "pg"]
        deleted = await node.ok("DELETE", f"/admin/users/{alice}")
        assert (deleted["deleted"], deleted["groupsLeft"]) == (True, 1)
        user = (await node.ok("GET", f"/admin/users/{alice}"))["user"]
        assert (user["userName"], user["deleted"]) == (f"deleted-{alice}", True)
        job = (await node.ok("POST", "/admin/broadcasts", {"text": "after"}, status=202))["broadcast"]
        assert (await finished(node, job["id"]))["sent"] == 1  # not to the deleted account
    finally:
        await stop_node(node.live)
