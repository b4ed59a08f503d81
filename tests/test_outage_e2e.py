"""Redis killed and restarted under load, two real nodes on loopback sharing a real PostgreSQL
and a real Redis (both started by the tests): every acknowledged message reaches each online
recipient exactly once, nothing a device had is pushed to it again (nor a sender's own message
to the sending device), and each outage is logged in a bounded number of lines."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from coffeechat.schema import Cmd
from tests.conftest import start_node, stop_node
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_cluster_e2e import cluster_config, two_nodes, until  # noqa: F401  (fixture)
from tests.test_presence_redis import P, make_node  # noqa: F401  (fixture)
from tests.test_presence_redis import until as presence_until

PAIRS = 4  # users on n1 talking to users on n2, both ways
RESTARTS = 2
DOWN_SECONDS = 1.5
SEND_EVERY = 0.01  # per sender: ~8 senders, a few hundred messages a second in all


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_redis_restarted_under_load_every_acked_message_reaches_each_recipient_once(
    two_nodes,  # noqa: F811
    redis_server,  # noqa: F811
):
    n1, n2 = two_nodes
    lines: list[str] = []

    def observe(event):
        lines.append(formatEvent(event) or "")

    ids = {}
    for i in range(PAIRS):
        ids[f"a{i}"] = await n1.register(f"alice{i}")
        ids[f"b{i}"] = await n2.register(f"bobby{i}")
    devices = {}
    for i in range(PAIRS):
        devices[f"a{i}"] = await n1.login(f"alice{i}")
        devices[f"b{i}"] = await n2.login(f"bobby{i}")
    # Every MSG_DATA each device was pushed: (sender, seq) -> how many times.
    got: dict[str, Counter] = {name: Counter() for name in devices}

    def collector(name):
        def on_push(cmd, seq, msg):
            if cmd == Cmd.MSG_DATA:
                got[name][(msg.from_user_id, msg.server_msg_id, msg.to_session_id)] += 1

        return on_push

    for name, device in devices.items():
        device.push_handler = collector(name)
    acked: dict[str, set] = {name: set() for name in devices}  # recipient -> what it must get
    sent_by: dict[str, set] = {name: set() for name in devices}
    running = [True]
    refused = Counter()

    async def sender(me: str, peer: str) -> None:
        for _ in range(100_000):  # bounded; stopped by `running` long before
            if not running[0]:
                return
            d = devices[me].send_message(ids[peer], f"{me}->{peer}", client_msg_id=str(uuid.uuid4()))
            ack = await d.addTimeout(15, reactor)
            if ack.res_code == 1:
                key = (ids[me], ack.server_msg_id, ids[peer])
                acked[peer].add(key)
                sent_by[me].add(key)
            else:
                refused[ack.error_code] += 1
            await sleep(SEND_EVERY)

    globalLogPublisher.addObserver(observe)
    try:
        senders = []
        for i in range(PAIRS):
            senders.append(defer.ensureDeferred(sender(f"a{i}", f"b{i}")))
            senders.append(defer.ensureDeferred(sender(f"b{i}", f"a{i}")))
        await sleep(1.0)
        for _ in range(RESTARTS):
            await deferToThread(redis_server.kill)
            await sleep(DOWN_SECONDS)
            await deferToThread(redis_server.start)
            await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"} == n2.core.presence.live_nodes(), 20)
            await sleep(2.0)
        running[0] = False
        for d in senders:
            await d

        def all_in() -> bool:
            return all(acked[name] <= set(got[name]) for name in devices)

        for _ in range(300):  # the catch-ups are done (the second one a few seconds after)
            if all_in():
                break
            await sleep(0.1)
        await sleep(3.0)  # late duplicates, if any, are counted too
    finally:
        globalLogPublisher.removeObserver(observe)
    total = sum(len(a) for a in acked.values())
    assert total > 200, f"only {total} messages acknowledged"
    for name in devices:
        missing = acked[name] - set(got[name])
        assert not missing, f"{name}: {len(missing)} acknowledged messages never pushed"
        twice = {k: n for k, n in got[name].items() if n > 1}
        assert not twice, f"{name}: {len(twice)} messages pushed more than once, e.g. {list(twice)[:3]}"
        own = sent_by[name] & set(got[name])
        assert not own, f"{name}: {len(own)} of its own messages pushed back to it"
        assert set(got[name]) <= acked[name], f"{name}: pushed what was never acknowledged to its sender"
    # Bounded logging: per node and outage, a line when a dependency goes and one when it is back.
    locating = [line for line in lines if "locating users" in line]
    assert len(locating) <= 2 * 2 * RESTARTS, locating[:10]
    updates = [line for line in lines if "presence update failed" in line or "device updates" in line]
    assert len(updates) <= 2 * 2 * RESTARTS, updates[:10]


@pytest_twisted.ensureDeferred
async def test_a_node_restarted_under_load_pushes_no_message_twice_to_a_user(
    two_nodes,  # noqa: F811
    tmp_path,
    pg_server,  # noqa: F811
    redis_server,  # noqa: F811
):
    """The investigation of "after a node restart, messages were pushed twice": the clients of
    the restarted node reconnect (to the other node, then back) and catch up by history while
    messages keep coming.  What they get twice comes from their own catch-up (history and a push
    of the same message), never from the server pushing one message twice to one user."""
    n1, n2 = two_nodes
    pairs = 3
    ids = {}
    for i in range(pairs):
        ids[f"a{i}"] = await n1.register(f"alice{i}")
        ids[f"b{i}"] = await n1.register(f"bobby{i}")
    senders = {f"a{i}": await n1.login(f"alice{i}") for i in range(pairs)}
    pushed: dict[str, Counter] = {f"b{i}": Counter() for i in range(pairs)}
    fetched: dict[str, set] = {f"b{i}": set() for i in range(pairs)}

    async def connect(name: str, node) -> None:
        client = await node.login(f"bobby{name[1:]}")

        def on_push(cmd, seq, msg):
            if cmd == Cmd.MSG_DATA:
                pushed[name][msg.server_msg_id] += 1

        client.push_handler = on_push
        page = await client.history(ids[f"a{name[1:]}"], limit=100)  # the client's own catch-up
        fetched[name].update(m.server_msg_id for m in page.msg_list)
        receivers[name] = client

    receivers: dict = {}
    for i in range(pairs):
        await connect(f"b{i}", n2)
    acked: dict[str, set] = {name: set() for name in pushed}
    running = [True]

    async def sender(i: int) -> None:
        for _ in range(100_000):
            if not running[0]:
                return
            ack = await senders[f"a{i}"].send_message(ids[f"b{i}"], "hi", client_msg_id=str(uuid.uuid4()))
            if ack.res_code == 1:
                acked[f"b{i}"].add(ack.server_msg_id)
            await sleep(0.02)

    loops = [defer.ensureDeferred(sender(i)) for i in range(pairs)]
    await sleep(1.0)
    await stop_node(n2)  # its clients are cut off: they fail over to n1 and catch up
    for i in range(pairs):
        await connect(f"b{i}", n1)
    await sleep(1.0)
    dsn = pg_server.database(tmp_path)
    n2_again = await start_node(cluster_config(tmp_path, "n2", dsn, redis_server.url))
    try:
        await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"}, 15)
        for i in range(pairs):  # back to the restarted node
            receivers[f"b{i}"].transport.loseConnection()
            await connect(f"b{i}", n2_again)
        await sleep(1.0)
        running[0] = False
        for d in loops:
            await d
        for _ in range(100):
            if all(acked[n] <= set(pushed[n]) | fetched[n] for n in pushed):
                break
            await sleep(0.1)
        await sleep(1.0)
    finally:
        for client in receivers.values():
            client.transport.loseConnection()
        await stop_node(n2_again)
    for name in pushed:
        assert acked[name] <= set(pushed[name]) | fetched[name], name
        twice = [seq for seq, n in pushed[name].items() if n > 1]
        assert twice == [], f"{name}: the server pushed {len(twice)} messages twice"


@pytest_twisted.ensureDeferred
async def test_after_a_redis_restart_the_catch_up_waits_until_the_devices_are_registered(
    make_node,  # noqa: F811
    redis_server,  # noqa: F811
):
    """The command connection comes back half a second after the subscription (its backoff, a
    slow handshake): the receiver is told to catch up only once Redis holds the node's devices
    again, else what other nodes route meanwhile reaches no node and the catch-up misses it."""
    a = await make_node("a").start()
    await a.online(7, 1)
    seen: list = []
    a.inbox.resumed = lambda lost_at: seen.append(redis_server.command("HGETALL", f"{P}u:7"))
    link = a.presence._cmd
    connect = link._connect_to
    link._connect_to = lambda factory: task.deferLater(reactor, 0.5, connect, factory)
    await deferToThread(redis_server.stop)
    await presence_until(lambda: a.presence._cmd.protocol is None, timeout=3)
    await deferToThread(redis_server.start)
    await presence_until(lambda: seen, timeout=10)
    assert seen[0], "catching up began before the node's devices were written into Redis again"
    await presence_until(lambda: len(seen) == 2, timeout=5)  # and once more, lease/4 + timeout later
    assert seen[1]
