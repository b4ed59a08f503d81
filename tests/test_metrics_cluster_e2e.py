"""Metrics and /ready of two real nodes sharing a real PostgreSQL and a real Redis (started by the
tests): the cross-node bus traffic on both sides, and Redis' outage as /ready and the error
counters show it."""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet.threads import deferToThread

from coffeechat.schema import Cmd
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_cluster_e2e import two_nodes  # noqa: F401  (fixture)

from .test_metrics_e2e import eventually, get, parse

REDIS = (("backend", "redis"), ("dependency", "presence"))
POSTGRES = (("backend", "postgres"), ("dependency", "storage"))


async def scrape(live) -> dict:
    status, text = await get(live.http_url + "/metrics")
    assert status == 200
    return parse(text)


async def ready(live) -> tuple[int, dict]:
    status, body = await get(live.http_url + "/ready")
    return status, json.loads(body)


@pytest_twisted.ensureDeferred
async def test_bus_traffic_and_a_redis_outage(two_nodes, redis_server):  # noqa: F811
    n1, n2 = two_nodes
    await n1.register("alice")
    bob_id = await n1.register("bobby")
    alice = await n1.login("alice")
    bob = await n2.login("bobby")
    for i in range(3):
        await alice.send_message(bob_id, f"across {i}")
    for _ in range(3):
        await bob.next_push(Cmd.MSG_DATA)

    one, two = await scrape(n1), await scrape(n2)
    assert one["coffeechat_cluster_payloads_total", (("direction", "sent"),)] >= 3
    assert one["coffeechat_cluster_bytes_total", (("direction", "sent"),)] > 0
    assert two["coffeechat_cluster_payloads_total", (("direction", "received"),)] >= 3
    assert two["coffeechat_cluster_bytes_total", (("direction", "received"),)] > 0
    assert two["coffeechat_cluster_pushes_received_total", ()] >= 3
    assert one["coffeechat_messages_received_total", (("kind", "single"),)] == 3
    assert two["coffeechat_pushes_sent_total", (("kind", "message"),)] == 3
    for values in (one, two):
        assert values["coffeechat_dependency_up", POSTGRES] == 1
        assert values["coffeechat_dependency_up", REDIS] == 1
        assert values["coffeechat_dependency_failures_total", REDIS] == 0
    assert (await ready(n1))[0] == 200 and (await ready(n2))[0] == 200

    await deferToThread(redis_server.kill)
    try:
        # Device updates fail against the dead Redis: counted, and the node is not ready.
        carol = await n1.register("carol")
        assert carol
        await n1.login("carol")

        async def not_ready():
            status, body = await ready(n1)
            return body if status == 503 else None

        body = await eventually(not_ready, timeout=20)
        assert body["failing"] == ["presence"], body
        assert body["checks"]["storage"]["ok"]

        async def failures():
            values = await scrape(n1)
            return values if values["coffeechat_dependency_failures_total", REDIS] > 0 else None

        values = await eventually(failures, timeout=20)
        assert values["coffeechat_dependency_up", POSTGRES] == 1
    finally:
        await deferToThread(redis_server.start)

    async def ready_again():
        return (await ready(n1))[0] == 200 and (await ready(n2))[0] == 200

    await eventually(ready_again, timeout=30)
    # The outage ends for the counters at the next device update that Redis answers.
    await n1.register("daveo")
    await n1.login("daveo")

    async def up():
        values = await scrape(n1)
        return values if values["coffeechat_dependency_up", REDIS] == 1 else None

    values = await eventually(up, timeout=20)
    assert values["coffeechat_dependency_outages_total", REDIS] >= 1
