"""Measure what a Redis or PostgreSQL restart under load does to a two-node cluster.

Starts a throwaway PostgreSQL and Redis (bench/cluster.py: from the installed binaries, on free
loopback ports), two CoffeeChat nodes in this process (``n1``, ``n2``: real sockets, PostgreSQL
storage, Redis presence, the default config but for ``auth.scrypt_n`` and the message rate
limits), and ``--pairs`` users on n1 each talking to one on n2, both ways, at ``--rate``
messages a second in all.  Then it kills the dependency (``kill -9`` for Redis, a fast shutdown
for PostgreSQL), waits ``--down`` seconds, starts it again on the same port, waits until
everything acknowledged has been delivered (at most ``--settle`` seconds), and repeats
``--restarts`` times.  For each restart it prints, as JSON:

* ``sent_during``: messages sent while the dependency was down; ``acked_during`` of those were
  acknowledged (PostgreSQL: ``refused_during`` were answered STORAGE_UNAVAILABLE, the client's
  cue to send again: this script does not);
* ``delivered_after``: acknowledged messages (sent before the dependency was back) whose push
  reached the recipient only after it was back (the catch-up, or payloads that waited);
* ``repushed``: pushes of a message to a device that had it already (a second push of one
  server_msg_id to one connection), ``own_pushed``: a sender's own message pushed to its device;
* ``missing``: acknowledged messages never pushed to their (online) recipient by the end;
* ``heal_seconds``: from the dependency being back until every message acknowledged so far had
  reached its recipient and (PostgreSQL) messages were acknowledged again;
* ``down_log_lines``: warnings logged meanwhile by both nodes (the "is down"/"is back" lines,
  the Redis connection lines).

Run from the repository root: ``python scripts/outage_measure.py --outage redis`` (or
``postgres``); ``--help`` for the options.  Bounded: every wait has a time-out, and the whole
run takes about ``restarts * (down + settle)`` seconds at most.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, task  # noqa: E402
from twisted.logger import LogLevel, formatEvent, globalLogPublisher  # noqa: E402

from bench.cluster import (  # noqa: E402
    ThrowawayPostgres,
    ThrowawayRedis,
    _child_setup,
    find_pg_bindir,
    find_redis_server,
)
from bench.server import stop_process  # noqa: E402
from coffeechat.config import load_config  # noqa: E402
from coffeechat.node import build_node  # noqa: E402
from coffeechat.protocols import client as cim_client  # noqa: E402
from coffeechat.service import NodeService  # noqa: E402

TICK = 0.01


def restart_redis(redis: ThrowawayRedis, down: float) -> float:
    """kill -9, wait ``down`` seconds, start on the same port; the time it was back."""
    stop_process(redis.process, signal.SIGKILL, 5)
    time.sleep(down)
    log = open(redis.root / "redis.log", "ab")
    try:
        redis.process = subprocess.Popen(
            [redis.exe, "--port", str(redis.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(redis.root), "--protected-mode", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_child_setup(signal.SIGTERM, None),
        )  # fmt: skip
    finally:
        log.close()
    import socket

    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", redis.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.01)
    return time.time()


def restart_postgres(pg: ThrowawayPostgres, down: float) -> float:
    """Fast shutdown (what a restart by an operator does), wait, start again; the time it was back."""
    stop_process(pg.process, signal.SIGINT, 30)
    time.sleep(down)
    pg._spawn()
    pg._wait_ready()
    return time.time()


def node_settings(name: str, dsn: str, redis_url: str, data: Path) -> dict:
    return {
        "server.node_name": name,
        "server.data_dir": str(data / name),
        "storage.backend": "postgres",
        "storage.dsn": dsn,
        "presence.backend": "redis",
        "presence.redis": redis_url,
        "listen.cim": ["tcp:0:interface=127.0.0.1"],
        "listen.http": [],
        "listen.ws": [],
        "auth.scrypt_n": 1024,
        "limits.messages_per_second": 10_000.0,
        "limits.message_burst": 10_000,
    }


async def run(reactor, args) -> dict:
    pg = ThrowawayPostgres(find_pg_bindir() or sys.exit("PostgreSQL binaries not found"))
    redis = ThrowawayRedis(find_redis_server() or sys.exit("redis-server not found"))
    dsn = await defer_to_thread(reactor, pg.start)
    redis_url = await defer_to_thread(reactor, redis.start)
    data = Path(pg.root) / "nodes"
    nodes = []
    warnings: list[tuple[float, str]] = []

    def observe(event):
        if event.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical) or "is back" in (
            event.get("log_format") or ""
        ):
            warnings.append((time.time(), formatEvent(event) or ""))

    globalLogPublisher.addObserver(observe)
    try:
        for name in ("n1", "n2"):
            service = NodeService(
                build_node(load_config(None, node_settings(name, dsn, redis_url, data)), reactor), reactor
            )
            service.startService()
            await service.started
            nodes.append(service)
        accounts = nodes[0].node.feature("accounts")
        password = cim_client.md5_password("secret")
        devices: dict[str, cim_client.CIMClient] = {}
        ids: dict[str, int] = {}
        pushes: dict[str, Counter] = {}
        first_push_at: dict[tuple, float] = {}
        for i in range(args.pairs):
            for side, service in (("a", nodes[0]), ("b", nodes[1])):
                name = f"{side}{i}"
                user = await defer.ensureDeferred(accounts.create_user(f"load{side}{i}", name, password))
                ids[name] = user.user_id
                port = service.listening_port("cim").getHost().port
                client = await cim_client.connect(reactor, f"tcp:127.0.0.1:{port}")
                await client.login_password(f"load{side}{i}", password)
                devices[name] = client
                pushes[name] = Counter()

                def on_push(cmd, seq, msg, name=name):
                    if cmd == 0x0301:  # MSG_DATA
                        key = (msg.from_user_id, msg.server_msg_id, msg.to_session_id)
                        pushes[name][key] += 1
                        first_push_at.setdefault((name, key), time.time())

                client.push_handler = on_push
        messages: list[dict] = []  # one per message sent

        def send(me: str, peer: str) -> None:
            record = {"from": me, "to": peer, "sent_at": time.time()}
            messages.append(record)
            d = devices[me].send_message(ids[peer], f"{me}->{peer}", client_msg_id=str(uuid.uuid4()))

            def answered(ack):
                record["answered_at"] = time.time()
                if ack.res_code == 1:
                    record["key"] = (ids[me], ack.server_msg_id, ids[peer])
                else:
                    record["refused"] = ack.error_code

            d.addCallbacks(answered, lambda f: record.setdefault("error", f.getErrorMessage()))

        senders = [(f"a{i}", f"b{i}") for i in range(args.pairs)] + [(f"b{i}", f"a{i}") for i in range(args.pairs)]
        per_tick = args.rate * TICK
        credit = [0.0]
        turn = [0]

        def tick() -> None:
            credit[0] += per_tick
            while credit[0] >= 1:
                credit[0] -= 1
                me, peer = senders[turn[0] % len(senders)]
                turn[0] += 1
                send(me, peer)

        loop = task.LoopingCall(tick)
        loop.clock = reactor
        loop.start(TICK)

        def delivered(record) -> bool:
            key = record.get("key")
            return key is None or pushes[record["to"]][key] > 0

        results = []
        await sleep(reactor, args.before)
        restart = restart_redis if args.outage == "redis" else restart_postgres
        dep = redis if args.outage == "redis" else pg
        for n in range(args.restarts):
            down_at = time.time()
            lines_before = len(warnings)
            back_at = await defer_to_thread(reactor, restart, dep, args.down)
            healed_at = None
            deadline = time.time() + args.settle
            while time.time() < deadline:
                await sleep(reactor, 0.05)
                upto = [m for m in messages if m["sent_at"] < time.time() - 0.5]
                if any("answered_at" not in m for m in upto):
                    continue
                if args.outage == "postgres" and not any(m.get("key") and m["sent_at"] > back_at for m in upto):
                    continue
                if all(delivered(m) for m in upto):
                    healed_at = time.time()
                    break
            await sleep(reactor, args.quiet)  # let a late catch-up (or a duplicate) come in
            during = [m for m in messages if down_at <= m["sent_at"] < back_at]
            before_back = [m for m in messages if m["sent_at"] < back_at and m.get("key")]
            after = sum(1 for m in before_back if first_push_at.get((m["to"], m["key"]), 0) >= back_at)
            results.append(
                {
                    "restart": n + 1,
                    "down_seconds": round(back_at - down_at, 2),
                    "sent_during": len(during),
                    "acked_during": sum(1 for m in during if m.get("key")),
                    "refused_during": sum(1 for m in during if m.get("refused")),
                    "delivered_after": after,
                    "heal_seconds": round(healed_at - back_at, 2) if healed_at else None,
                    "down_log_lines": len(warnings) - lines_before,
                }
            )
        loop.stop()
        await sleep(reactor, 1.0)
        acked = [m for m in messages if m.get("key")]
        repushed = sum(n - 1 for c in pushes.values() for n in c.values() if n > 1)
        own = sum(1 for name, c in pushes.items() for key in c if key[0] == ids[name])
        missing = sum(1 for m in acked if not delivered(m))
        total = {
            "outage": args.outage,
            "rate": args.rate,
            "pairs": args.pairs,
            "sent": len(messages),
            "acked": len(acked),
            "refused": sum(1 for m in messages if m.get("refused")),
            "repushed": repushed,
            "own_pushed": own,
            "missing": missing,
            "restarts": results,
            "down_lines": [line for _, line in warnings][:40],
        }
        return total
    finally:
        globalLogPublisher.removeObserver(observe)
        for service in reversed(nodes):
            await service.stopService()
        redis.stop()
        pg.stop()


def defer_to_thread(reactor, fn, *args):
    from twisted.internet import threads

    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)


def sleep(reactor, seconds: float):
    return task.deferLater(reactor, seconds, lambda: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", choices=("redis", "postgres"), default="redis")
    parser.add_argument("--rate", type=float, default=300.0, help="messages a second in all (default 300)")
    parser.add_argument("--pairs", type=int, default=20, help="users on n1 talking to one on n2 each (default 20)")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--down", type=float, default=3.0, help="seconds the dependency stays down (default 3)")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the first restart")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait for healing, at most")
    parser.add_argument("--quiet", type=float, default=12.0, help="seconds after healing to count late pushes")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")

    def go(reactor):
        return defer.ensureDeferred(run(reactor, args)).addCallback(
            lambda result: print(json.dumps(result, indent=1, default=str))
        )

    task.react(go)


if __name__ == "__main__":
    main()
