"""Webhooks and bots over real sockets: a real TCP client, a node on SQLite, and a real twisted.web
receiver on loopback that verifies every POST with ``standardwebhooks.Webhook(secret).verify``."""

from __future__ import annotations

import json

import pytest_twisted
import treq
from standardwebhooks.webhooks import Webhook
from twisted.internet import reactor, task
from twisted.web import resource, server

from coffeechat.schema import Cmd

from .conftest import node_config, start_node, stop_node
from .test_webhooks import SECRET


class ReceiverResource(resource.Resource):
    """Verifies, records (deduped by webhook-id) and answers ``status``."""

    isLeaf = True

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.webhook = Webhook(secret)
        self.status = 200
        self.seen: dict[str, dict] = {}
        self.order: list[str] = []
        self.bad = 0
        self.hits = 0

    def render_POST(self, request):  # noqa: N802
        self.hits += 1
        body = request.content.read()
        headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        try:
            payload = self.webhook.verify(body, headers)
        except Exception:
            self.bad += 1
            request.setResponseCode(401)
            return b"bad signature"
        request.setResponseCode(self.status)
        if self.status == 200 and headers["webhook-id"] not in self.seen:
            self.seen[headers["webhook-id"]] = payload
            self.order.append(headers["webhook-id"])
        return b""

    def texts(self) -> list[str]:
        return [self.seen[i]["data"]["msg_data"] for i in self.order if self.seen[i]["type"] == "message.created"]


async def until(predicate, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition not reached")


@pytest_twisted.ensureDeferred
async def test_messages_reach_a_real_receiver_through_an_outage_and_a_restart(tmp_path):
    hook = ReceiverResource(SECRET)
    port = reactor.listenTCP(0, server.Site(hook), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/hook"
    settings = {
        "webhooks.endpoints": [{"name": "app", "url": url, "secret": SECRET, "events": ["message.*"]}],
        "webhooks.interval": 0.1,
        "webhooks.backoff_initial": 0.1,
        "webhooks.backoff_max": 0.4,
        "webhooks.lease_ttl": 1.0,
        "server.node_name": "n1",
    }
    live = await start_node(node_config(tmp_path, **settings))
    try:
        await live.register("alice")
        b = await live.register("bobby")
        alice = await live.login("alice")
        for i in range(5):
            await alice.send_message(b, f"m{i}")
        await until(lambda: len(hook.texts()) == 5)
        assert hook.texts() == [f"m{i}" for i in range(5)] and hook.bad == 0
        hook.status = 503  # the receiver is down: messages keep being sent
        for i in range(5, 10):
            await alice.send_message(b, f"m{i}")
        await until(lambda: hook.hits >= 8)
        status = await (
            await treq.get(live.http_url + "/admin/webhooks", headers={"Authorization": "Bearer admin-secret"})
        ).json()
        [entry] = status["endpoints"]
        assert entry["failures"] >= 1 and entry["last_error"] == "HTTP 503" and entry["backlog"] == 5
        await stop_node(live)  # restart mid-backlog
        live = await start_node(node_config(tmp_path, **settings))
        hook.status = 200
        await until(lambda: len(hook.texts()) == 10)
        assert hook.texts() == [f"m{i}" for i in range(10)] and hook.bad == 0
    finally:
        await stop_node(live)
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_bot_answers_through_the_http_api(tmp_path):
    hook = ReceiverResource(SECRET)
    port = reactor.listenTCP(0, server.Site(hook), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/bot"
    live = await start_node(node_config(tmp_path, **{"webhooks.interval": 0.1}))
    admin = {"Authorization": "Bearer admin-secret"}
    try:
        a = await live.register("alice")
        helper = await live.register("helper")
        flagged = await (
            await treq.post(f"{live.http_url}/admin/bots/{helper}", json={"url": url, "secret": SECRET}, headers=admin)
        ).json()
        key = flagged["api_key"]
        alice = await live.login("alice")
        await alice.send_message(helper, "what's the weather?")
        await until(lambda: hook.texts() == ["what's the weather?"])
        asked = hook.seen[hook.order[0]]["data"]
        answer = {"to_session_id": asked["from_user_id"], "msg_type": 7, "msg_data": {"card": "sunny"}}
        rsp = await (
            await treq.post(
                f"{live.http_url}/api/bots/messages", json=answer, headers={"Authorization": f"Bearer {key}"}
            )
        ).json()
        assert rsp["error_code"] == 200 and rsp["server_msg_id"] == 2
        _, _, push = await alice.next_push(Cmd.MSG_DATA)
        assert push.from_user_id == helper and push.msg_type == 7 and json.loads(push.msg_data) == {"card": "sunny"}
        wrong = await (
            await treq.post(
                f"{live.http_url}/api/bots/messages", json=answer, headers={"Authorization": "Bearer bot_x"}
            )
        ).json()
        assert wrong["error_code"] == 10101
        assert a == asked["from_user_id"]
    finally:
        await stop_node(live)
        await port.stopListening()
