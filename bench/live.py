"""The ``room`` and ``calls`` scenarios (issue 15), as the parent process runs them.

    coffeechat-bench room --members 10000 --senders 50 --duration 20            # one node
    coffeechat-bench room --members 10000 --senders 50 --duration 20 --nodes 2  # two, over Redis
    coffeechat-bench room --members 10000 --senders 50 --rate 200               # open loop
    coffeechat-bench calls --concurrent 1000 --duration 20

``room``: one chat room of N member connections (one user each, spread over the generator
processes; with ``--nodes 2`` member i is on node i mod 2, so half the members of every message are
on the other node), S of them sending.  Deliveries per second are counted at every member, send ->
delivery latency at a sample of them (``--sample``), and every member's count and checksum of
what it got is compared with what the senders had acked: each member must get each acked message
exactly once.

``calls``: P caller/callee pairs; in each round every caller invites at once (P concurrent call
set-ups), each callee answers 180 then 200 OK when the invite reaches it, the caller times invite ->
200 OK; then every caller hangs up and the round ends when every bye is answered and told to the
callee.  Rounds repeat for ``--duration``.  With ``--nodes 2`` every caller is on node 1 and every
callee on node 2.

The generator side is :mod:`.live_worker`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from typing import Any

from . import wire
from .cluster import Cluster
from .pool import Generators, split
from .report import fmt, fmt_latency, latency_summary, merge_latencies
from .scenarios import (
    CONNECTIONS_PER_GENERATOR,
    MAX_CONNECTIONS_PER_SERVER,
    ClusterWindow,
    Rows,
    ServerProbe,
    Window,
    check_placement,
    cluster_rows,
    cpu_share,
    create,
    create_refusal,
    endpoint,
    fmt_others,
    fmt_threads,
    merge_events,
    per_op_us,
    run_id,
    sleep_until,
    transport_name,
)
from .server import Target, per_cpu_busy_seconds

# The server's default [rooms] max_members (a room's cap of connections).
DEFAULT_ROOM_CAP = 10_000


def add_arguments(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``room`` and ``calls`` subcommands."""
    p = sub.add_parser("room", parents=[common], help="one chat room: deliveries/s, send->delivery latency")
    p.add_argument("--members", type=int, default=1000, help="connections in the room, one user each (default 1,000)")
    p.add_argument("--senders", type=int, default=50, help="members that send (default 50)")
    p.add_argument("--rate", type=float, help="open loop: total offered msgs/s (default: closed loop)")
    p.add_argument(
        "--window",
        type=int,
        default=1,
        help="closed loop: messages in flight per sender (default 1); a message is done when acked and "
        "received by every sampled member of the sender's generator process",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=200,
        help="members that time every message they get (default 200, spread over nodes and generators); "
        "every member counts and checks what it gets",
    )
    _nodes_option(p, "member i on node i mod N")

    p = sub.add_parser("calls", parents=[common], help="1:1 call set-ups: invite -> 200 OK time, then bye")
    p.add_argument("--concurrent", type=int, default=1000, help="caller/callee pairs, all inviting at once (1,000)")
    p.add_argument("--rounds", type=int, default=1000, help="at most this many rounds (default 1,000)")
    p.add_argument("--hold", type=float, default=0.0, help="seconds between the last 200 OK and the byes (0)")
    p.add_argument("--round-timeout", type=float, default=30.0, help="seconds a round waits for set-ups and byes")
    _nodes_option(p, "every caller on node 1, every callee on node 2")


def _nodes_option(p: argparse.ArgumentParser, spread: str) -> None:
    g = p.add_argument_group("cluster (several server processes)")
    g.add_argument(
        "--nodes",
        "--servers",
        dest="servers",
        type=int,
        default=1,
        help="server processes (default 1: one node on SQLite). 2 starts two nodes as one cluster on PostgreSQL "
        f"and Redis (as the other scenarios' --servers); {spread}",
    )
    g.add_argument("--dsn", help="PostgreSQL of the cluster (libpq DSN or URI); default: start a throwaway one")
    g.add_argument("--redis", metavar="URL", help="Redis of the cluster (redis://host:port/db); default: start one")


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse what the scenarios cannot run (argparse's error: exit status 2)."""
    if args.scenario == "room":
        if args.members < 2 or args.senders < 1 or args.window < 1 or args.sample < 1:
            parser.error("room: --members must be at least 2, --senders, --window and --sample at least 1")
        if args.senders >= args.members:
            parser.error("room: --senders must be fewer than --members")
        if args.members > MAX_CONNECTIONS_PER_SERVER * args.servers:
            parser.error(
                f"room: {args.members:,} members is over {MAX_CONNECTIONS_PER_SERVER:,} connections per server "
                "process (20,000 open files); use --nodes 2"
            )
    if args.scenario == "calls":
        if args.concurrent < 1 or args.rounds < 1 or args.hold < 0 or args.round_timeout <= 0:
            parser.error("calls: --concurrent and --rounds must be at least 1, --hold >= 0, --round-timeout > 0")
        if args.servers > 2:
            parser.error("calls: --nodes 1 or 2 (callers on the first node, callees on the second)")


def room_overrides(members: int) -> dict[str, dict[str, Any]]:
    """Server config for a room run: a cap of at least ``members`` connections, and message rates
    (the room's and each connection's) far over what the run offers: the load is measured, not the
    rate limits.  The feature is turned on if it is not on by default."""
    out: dict[str, dict[str, Any]] = {
        "rooms": {
            "max_members": max(DEFAULT_ROOM_CAP, members),
            "max_messages_per_second": 1_000_000.0,
            "connection_messages_per_second": 1_000_000.0,
            "connection_message_burst": 1_000_000,
        }
    }
    return {**_enabled("rooms"), **out}


def calls_overrides() -> dict[str, dict[str, Any]]:
    """Server config for a calls run: the feature on if it is not on by default."""
    return _enabled("calls")


def _enabled(feature: str) -> dict[str, dict[str, Any]]:
    from coffeechat.config import DEFAULT_FEATURES

    if feature in DEFAULT_FEATURES:
        return {}
    return {"features": {"enabled": [*DEFAULT_FEATURES, feature]}}


def spread_indices(count: int, first: int, total: int, nodes: int) -> list[int]:
    """``count`` distinct indexes in ``first..total-1``, evenly spread, the j-th on node j mod
    ``nodes`` (member i is on node i mod ``nodes``) so that each node has its share."""
    span = total - first
    count = min(count, span)
    out: list[int] = []
    taken: set[int] = set()
    for j in range(count):
        base = j * span // count
        chosen = fallback = None
        for step in range(span):  # bounded by the range; a free index is always found (count <= span)
            c = first + (base + step) % span
            if c in taken:
                continue
            if fallback is None:
                fallback = c
            if c % nodes == j % nodes:
                chosen = c
                break
            if step >= 2 * nodes:
                break
        pick = chosen if chosen is not None else fallback
        if pick is None:  # every nearby index taken: the first free one
            pick = next(first + x for x in range(span) if first + x not in taken)
        taken.add(pick)
        out.append(pick)
    return sorted(out)


# ---- room -----------------------------------------------------------------------------------


def run_room(
    args: argparse.Namespace, target: Target, cpus: list[int] | None, cluster: Cluster | None = None
) -> tuple[dict, Rows]:
    """One room of ``--members`` connections, ``--senders`` of them sending (closed loop, or
    ``--rate`` msgs/s in all); member 0 creates the room (its owner, not a sender)."""
    n = args.members
    n_nodes = len(cluster.targets) if cluster is not None else 1
    if n > MAX_CONNECTIONS_PER_SERVER * n_nodes:
        raise ValueError(f"{n:,} members is over {MAX_CONNECTIONS_PER_SERVER * n_nodes:,} connections")
    prefix = run_id()
    users, create_s = create(target, prefix, n)
    node_of = [i % n_nodes for i in range(n)]
    senders = set(spread_indices(args.senders, 1, n, n_nodes))
    k = min(max(args.generators, math.ceil(n / CONNECTIONS_PER_GENERATOR)), n)
    members = [[i, *users[i], node_of[i], i in senders, False] for i in range(n)]
    shares = split(members, k)
    # the sample: in every generator (a message is done when its generator's sampled members have
    # it), spread over the nodes, never the owner
    for share in shares:
        first, end = share[0][0], share[0][0] + len(share)
        want = max(1, round(args.sample * len(share) / n))
        for i in spread_indices(want, max(first, 1), end, n_nodes):
            members[i][5] = True
    sampled_n = sum(1 for m in members if m[5])
    where = endpoint(args, target)
    ports = [endpoint(args, t)["port"] for t in cluster.targets] if cluster is not None else None
    expected = [node_of.count(j) for j in range(n_nodes)]
    cwin = ClusterWindow(cluster) if cluster is not None else None
    probe = ServerProbe(target)
    setup_timeout = args.connect_timeout + args.login_timeout + n / 100 + 60
    # the nodes learn each other's member counts at once on a big change, else every notice_interval (2 s)
    settle = 2.5 if n_nodes > 1 else 0.5
    run_s = args.warmup + args.duration + args.drain + 2
    lifetime = 2 * setup_timeout + settle + run_s + 240
    open_loop = args.rate is not None
    with Generators(k, cpus, lifetime) as gens:
        logged = gens.call(
            "room_login",
            [
                {**where, "members": share, "concurrency": args.concurrency, "timeout": args.login_timeout,
                 "ports": ports}
                for share in shares
            ],
            setup_timeout,
        )  # fmt: skip
        created = gens.call(
            "room_create",
            [
                {"create": i == 0, "name": f"bench {prefix}", "max_members": max(n, DEFAULT_ROOM_CAP),
                 "timeout": args.login_timeout}
                for i in range(k)
            ],
            args.login_timeout + 30,
        )[0]  # fmt: skip
        if not created.get("created"):
            gens.call("close", [{}] * k, 60)
            reason = _room_refusal(created)
            results = {"skipped": True, "reason": reason, "create": created, "members": n, "generators": k,
                       "correct": False}  # fmt: skip
            return results, [("room", f"skipped: {reason}"), ("correct", "NO: the room was not created")]
        room_id = created["room_id"]
        joined = gens.call(
            "room_join",
            [{"room_id": room_id, "concurrency": args.concurrency, "timeout": args.login_timeout, "settle": settle}]
            * k,
            setup_timeout + settle,
        )
        placed: dict[str, Any] = {}
        placement_mismatches: dict[str, Any] = {}
        if cluster is not None:
            logged_by_node = [sum(r["logged_in_by_node"][j] for r in logged) for j in range(n_nodes)]
            placed, placement_mismatches = check_placement(cluster, expected, logged_by_node)
        count_before = gens.call("room_members", [{"timeout": args.login_timeout}] * k, args.login_timeout + 30)
        t0 = time.monotonic() + 0.5
        win_start, win_end = t0 + args.warmup, t0 + args.warmup + args.duration
        kwargs = []
        for share in shares:
            frac = sum(1 for m in share if m[4]) / max(1, len(senders))
            kwargs.append(
                {
                    "t0": t0,
                    "warmup": args.warmup,
                    "duration": args.duration,
                    "drain": args.drain,
                    "rate": args.rate * frac if open_loop else None,
                    "budget": max(1, math.ceil(args.max_messages * frac)),
                    "payload_size": args.size,
                    "window": args.window,
                }
            )
        gens.send("room_run", kwargs)
        sleep_until(win_start)
        if cwin is not None:
            cwin.sample()
        cpu0, rss0, threads0 = probe.cpu(), probe.rss(), probe.threads()
        window = Window()
        cores0 = per_cpu_busy_seconds()
        sleep_until(win_end)
        cpu1, rss1, threads1 = probe.cpu(), probe.rss(), probe.threads()
        window.stop()
        cores1 = per_cpu_busy_seconds()
        if cwin is not None:
            cwin.sample()
        done = gens.gather(run_s + 120)
        tallies = gens.call("room_tally", [{}] * k, 60)
        count_after = gens.call("room_members", [{"timeout": args.login_timeout}] * k, args.login_timeout + 30)
        gens.call("close", [{}] * k, 60)

    total = {key: sum(r[key] for r in done) for key in (
        "senders", "sampled", "sent", "acked", "refused", "completed", "unanswered", "acked_not_completed",
        "deliveries_in_window", "completed_in_window", "sent_in_window", "frames_in_window", "decoded_batches",
    )}  # fmt: skip
    logged_in = sum(r["logged_in"] for r in logged)
    n_joined = sum(r["joined"] for r in joined)
    check = _room_check([m for t in tallies for m in t["members"]], senders, n_joined)
    acked_ids = [i for r in done for i in r["acked_ids"]]
    duplicate_ids = len(acked_ids) - len(set(acked_ids))
    lat = latency_summary(merge_latencies(r["lat"] for r in done))
    ack_lat = latency_summary(merge_latencies(r["ack_lat"] for r in done))
    last_lat = latency_summary(merge_latencies(r["last_lat"] for r in done))
    send_lag = latency_summary(merge_latencies(r["send_lag"] for r in done)) if open_loop else None
    events = merge_events(done)
    for t in tallies:
        for key, value in t["events"].items():
            if key not in events:  # late ones (after a worker's own result): counted once
                events[key] = value
    setup_errors = {**merge_events(logged, "errors"), **merge_events(joined, "errors")}
    server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    gen_cpu_s = sum(r["cpu"] for r in done)
    cluster_figures: dict[str, Any] | None = None
    if cwin is not None:
        cluster_figures = cwin.figures(args.duration, total["deliveries_in_window"], "delivery")
        server_cpu_s = cluster_figures["nodes_cpu_s"]
        others = window.others(args.duration, server_cpu_s, gen_cpu_s, *cwin.service_cpu_s())
    else:
        others = window.others(args.duration, server_cpu_s, gen_cpu_s)
    deliveries_per_s = round(total["deliveries_in_window"] / args.duration, 1)
    msgs_per_s = round(total["completed_in_window"] / args.duration, 1)
    us_per_delivery = per_op_us(server_cpu_s, total["deliveries_in_window"])
    counts_reported = [c.get("member_count") for c in count_after if c.get("member_count") is not None]
    mismatches: dict[str, Any] = {name: total[name] for name in ("unanswered", "acked_not_completed") if total[name]}
    mismatches.update(check["mismatches"])
    if total["sent"] != total["acked"] + total["refused"] + total["unanswered"]:
        mismatches["sent != acked + refused + unanswered"] = total["sent"] - total["acked"] - total["refused"]
    if total["refused"]:
        mismatches["refused"] = total["refused"]
    if duplicate_ids:
        mismatches["msg_id acked twice"] = duplicate_ids
    if logged_in != n:
        mismatches["members not logged in"] = n - logged_in
    if n_joined != n:
        mismatches["members not joined"] = n - n_joined
    if total["acked"] == 0:
        mismatches["no message acked"] = 0
    mismatches.update(placement_mismatches)
    correct = not mismatches and not events and not setup_errors
    results: dict[str, Any] = {
        "mode": "open" if open_loop else "closed",
        "transport": args.transport,
        "room_id": room_id,
        "members": n,
        "senders": len(senders),
        "sampled_receivers": sampled_n,
        "window_per_sender": args.window,
        "offered_rate": args.rate,
        "generators": k,
        "servers": n_nodes,
        "members_by_node": expected,
        "users_created_s": round(create_s, 2),
        "logged_in": logged_in,
        "joined": n_joined,
        "setup": {
            "login_s": round(max(r["login_s"] for r in logged), 3),
            "join_s": round(max(r["join_s"] for r in joined), 3),
            "joins_per_s": round(n_joined / max(r["join_s"] for r in joined), 1) if n_joined else None,
            "recent_messages_on_join": sum(r["recent_messages"] for r in joined),
        },
        "member_count_reported": {
            "after_join": [c.get("member_count") for c in count_before],
            "at_end": [c.get("member_count") for c in count_after],
        },
        "event_notices_during_join": sum(r["event_notices"] for r in joined),
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "payload_bytes": args.size,
        **total,
        "deliveries": check["deliveries"],
        "expected_deliveries": check["expected_deliveries"],
        "missing_deliveries": check["missing"],
        "extra_deliveries": check["extra"],
        "checksum_mismatches": check["checksum_mismatches"],
        "sender_gets_own_messages": check["echo"],
        "duplicate_msg_ids": duplicate_ids,
        "deliveries_per_s": deliveries_per_s,
        "msgs_per_s": msgs_per_s,
        "notify_frames_per_s": round(total["frames_in_window"] / args.duration, 1),
        "msgs_per_notify_frame": round(total["deliveries_in_window"] / total["frames_in_window"], 2)
        if total["frames_in_window"]
        else None,
        "send_to_delivery": lat,
        "send_to_ack": ack_lat,
        "send_to_last_sampled_delivery": last_lat,
        "send_lag": send_lag,
        "server_cpu_pct": cpu_share(server_cpu_s, args.duration),
        "server_cpu_by_thread": probe.split(threads0, threads1, args.duration) if cluster is None else None,
        "server_cpu_us_per_delivery": us_per_delivery,
        "server_cpu_us_per_msg": per_op_us(server_cpu_s, total["completed_in_window"]),
        "deliveries_per_s_at_one_full_core": round(1e6 / us_per_delivery) if us_per_delivery else None,
        "generator_cpu_pct": cpu_share(gen_cpu_s, args.duration),
        "generator_cpu_us_per_delivery": per_op_us(gen_cpu_s, total["deliveries_in_window"]),
        "server_rss_kib": {"window_start": rss0, "window_end": rss1},
        "window": others,
        "core_busy_pct": core_busy(cores0, cores1, args.duration),
        "mismatches": mismatches,
        "events": events,
        "setup_errors": setup_errors,
        "correct": correct,
    }
    if cluster is not None and cluster_figures is not None:
        results.update({"placement": "spread", **placed, **cluster_figures})
    receivers = n_joined if check["echo"] else n_joined - 1
    mode = (
        f"open loop at {fmt(args.rate)} msgs/s offered"
        if open_loop
        else f"closed loop, {args.window} message(s) in flight per sender"
    )
    rows: Rows = [
        (
            "room",
            f"{n:,} members over {transport_name(args)} ({mode}), {len(senders)} senders, {sampled_n} sampled "
            f"receivers, {k} generator process(es)" + (f", {n_nodes} nodes" if n_nodes > 1 else ""),
        ),
        ("set-up", f"{logged_in:,} logged in in {fmt(results['setup']['login_s'], ' s', 2)}, {n_joined:,} joined in "
                   f"{fmt(results['setup']['join_s'], ' s', 2)} ({fmt(results['setup']['joins_per_s'])} joins/s)"),
        ("window", f"{fmt(args.duration, ' s')} after {fmt(args.warmup, ' s')} warm-up"),
        ("deliveries/s", f"{fmt(deliveries_per_s)} ({fmt(msgs_per_s)} msgs/s x {receivers:,} connections"
                         + (", the sender's own included)" if check["echo"] else ")")),
        ("ROOM_MSG_NOTIFY frames/s", f"{fmt(results['notify_frames_per_s'])} "
                                     f"({fmt(results['msgs_per_notify_frame'], digits=2)} messages per frame)"),
        ("send->delivery p50/p99/p99.9", fmt_latency(lat) + f" ms (at {sampled_n} sampled receivers)"),
        ("send->ack p50/p99/p99.9", fmt_latency(ack_lat) + " ms"),
        ("send->last sampled delivery p50/p99/p99.9", fmt_latency(last_lat) + " ms"),
    ]  # fmt: skip
    if send_lag:
        rows.append(("generator send lag p99 / max", f"{fmt(send_lag['p99_ms'], digits=2)} / "
                                                     f"{fmt(send_lag['max_ms'], digits=2)} ms"))  # fmt: skip
    rows += [
        (
            "server CPU" + (" (all nodes)" if cluster is not None else ""),
            f"{fmt(results['server_cpu_pct'], '% of one core')}, {fmt(us_per_delivery, ' us', 2)} per delivery, "
            f"{fmt(results['server_cpu_us_per_msg'], ' us')} per message",
        ),
    ]
    if cluster is None:
        rows.append(("server CPU by thread", fmt_threads(results["server_cpu_by_thread"])))
    rows += [
        ("generators CPU", f"{fmt(results['generator_cpu_pct'], '% of one core (sum)')}, "
                           f"{fmt(results['generator_cpu_us_per_delivery'], ' us', 2)} per delivery"),
        ("other processes' CPU", fmt_others(others)),
        *([_cores_row(results)] if cluster is None else []),
        ("sent / acked / completed", f"{total['sent']:,} / {total['acked']:,} / {total['completed']:,} "
                                     f"(refused {total['refused']:,})"),
        ("deliveries", f"{check['deliveries']:,} of {check['expected_deliveries']:,} expected; every member got "
                       f"every acked message exactly once: {'yes' if check['exact'] else 'NO'} "
                       f"(own messages echoed to the sender: {fmt(check['echo'])})"),
        ("member count (server)", f"{', '.join(map(str, counts_reported)) or '-'} at the end"),
    ]  # fmt: skip
    if cluster is not None and cluster_figures is not None:
        text = f"member i on node i mod {n_nodes}: about half of every message's receivers are on the other node"
        roles = [f"{expected[j]:,} members" for j in range(n_nodes)]
        rows += cluster_rows(_Placement(args, "spread"), cluster_figures, "delivery", text, roles)
        rows.append(("", ""))
    rows.append(("correct", "yes" if correct else f"NO: {mismatches} {events} {setup_errors}"))
    return results, rows


class _Placement(argparse.Namespace):
    """``args`` with the ``placement`` :func:`cluster_rows` names."""

    def __init__(self, args: argparse.Namespace, placement: str) -> None:
        super().__init__(**vars(args))
        self.placement = placement


def core_busy(before: dict[int, float] | None, after: dict[int, float] | None, wall: float) -> dict | None:
    """% busy of each core over a window, whoever used it (is the server's core full?)."""
    if not before or not after or wall <= 0:
        return None
    return {f"cpu{c}": round(100 * (after[c] - v) / wall, 1) for c, v in before.items() if c in after}


def _cores_row(results: dict[str, Any]) -> tuple[str, str]:
    cores = results.get("core_busy_pct") or {}
    return ("cores busy (everything on them)", ", ".join(f"{c} {fmt(v, '%')}" for c, v in cores.items()) or "-")


def _room_refusal(created: dict[str, Any]) -> str:
    if "answer_cmd" not in created:
        return f"ROOM_CREATE failed: {created.get('error')}"
    if created["answer_cmd"] == wire.ERROR_RSP and created.get("code") == wire.pb.kCIM_ERR_NOT_SUPPORTED:
        return "server does not support rooms (feature 'rooms' not enabled)"
    return create_refusal([created]).replace("GROUP_CREATE", "ROOM_CREATE")


def _room_check(tallies: list[tuple], senders: set[int], joined: int) -> dict[str, Any]:
    """Each member's received count and checksum against what every sender had acked.

    A member must get every acked message but its own exactly once; its own come back to it
    either always or never (whichever the server does, for every sender alike)."""
    total_acked = sum(t[5] for t in tallies)
    total_sum = sum(t[6] for t in tallies)
    missing = extra = checksum = 0
    deliveries = 0
    echo_states: Counter[str] = Counter()
    for index, count, csum, echo_count, echo_sum, acked, acked_sum in tallies:
        deliveries += count
        got, got_sum = count - echo_count, csum - echo_sum
        want, want_sum = total_acked - acked, total_sum - acked_sum
        if got < want:
            missing += want - got
        elif got > want:
            extra += got - want
        elif got_sum != want_sum:
            checksum += 1
        if index in senders and acked:
            if echo_count == 0:
                echo_states["never"] += 1
            elif echo_count == acked and echo_sum == acked_sum:
                echo_states["always"] += 1
            else:
                echo_states["partly"] += 1
    mismatches: dict[str, Any] = {}
    if missing:
        mismatches["missing deliveries"] = missing
    if extra:
        mismatches["extra (duplicate or unacked) deliveries"] = extra
    if checksum:
        mismatches["members with a wrong checksum (a duplicate and a loss)"] = checksum
    if len(echo_states) > 1 or echo_states.get("partly"):
        mismatches["own messages echoed to some senders only"] = dict(echo_states)
    echo = None if not echo_states else next(iter(echo_states)) == "always"
    expected = total_acked * (joined - 1) + (total_acked if echo else 0)
    return {
        "deliveries": deliveries,
        "expected_deliveries": expected,
        "missing": missing,
        "extra": extra,
        "checksum_mismatches": checksum,
        "echo": echo,
        "exact": not mismatches,
        "mismatches": mismatches,
    }


# ---- calls ----------------------------------------------------------------------------------


def run_calls(
    args: argparse.Namespace, target: Target, cpus: list[int] | None, cluster: Cluster | None = None
) -> tuple[dict, Rows]:
    """``--concurrent`` pairs setting up calls at once, round after round for ``--duration``."""
    pairs_n = args.concurrent
    n_nodes = len(cluster.targets) if cluster is not None else 1
    prefix = run_id()
    users, create_s = create(target, prefix, 2 * pairs_n)
    pairs = [[i, *users[2 * i], *users[2 * i + 1]] for i in range(pairs_n)]
    k = min(max(args.generators, math.ceil(2 * pairs_n / CONNECTIONS_PER_GENERATOR)), pairs_n)
    shares = split(pairs, k)
    placement = [(0, 1 if n_nodes > 1 else 0)] * pairs_n
    node_kwargs: list[dict[str, Any]] = [{} for _ in shares]
    expected = [pairs_n] if n_nodes == 1 else [pairs_n, pairs_n]
    cwin = None
    if cluster is not None:
        ports = [endpoint(args, t)["port"] for t in cluster.targets]
        # pair indexes are global: each worker gets the whole table
        node_kwargs = [{"nodes": [list(p) for p in placement], "ports": ports} for _ in shares]
        cwin = ClusterWindow(cluster)
    probe = ServerProbe(target)
    setup_timeout = args.connect_timeout + args.login_timeout + pairs_n / 50 + 60
    run_s = args.duration + 2 * args.round_timeout + 10
    lifetime = setup_timeout + run_s + 180
    with Generators(k, cpus, lifetime) as gens:
        setup = gens.call(
            "calls_setup",
            [
                {**endpoint(args, target), "pairs": share, "concurrency": args.concurrency,
                 "timeout": args.login_timeout, **extra}
                for share, extra in zip(shares, node_kwargs, strict=True)
            ],
            setup_timeout,
        )  # fmt: skip
        placed: dict[str, Any] = {}
        placement_mismatches: dict[str, Any] = {}
        if cluster is not None:
            logged_by_node = [sum(r["logged_in_by_node"][j] for r in setup) for j in range(n_nodes)]
            placed, placement_mismatches = check_placement(cluster, expected, logged_by_node)
        t0 = time.monotonic() + 0.5
        gens.send(
            "calls_run",
            [{"t0": t0, "duration": args.duration, "max_rounds": args.rounds, "round_timeout": args.round_timeout,
              "hold": args.hold}] * k,
        )  # fmt: skip
        sleep_until(t0)
        if cwin is not None:
            cwin.sample()
        cpu0, threads0 = probe.cpu(), probe.threads()
        window = Window()
        cores0 = per_cpu_busy_seconds()
        done = gens.gather(run_s + 120)
        wall = max(r["t1"] for r in done) - t0
        cpu1, threads1 = probe.cpu(), probe.threads()
        window.stop()
        cores1 = per_cpu_busy_seconds()
        if cwin is not None:
            cwin.sample()
        gens.call("close", [{}] * k, 60)

    keys = ("invites", "trying", "pushed", "ringing", "ok", "byes", "bye_rsp", "bye_notify", "completed")
    total = {key: sum(r[key] for r in done) for key in keys}
    records: Counter[str] = Counter()
    for r in done:
        records.update(r["records"])
    lat = {
        name: latency_summary(merge_latencies(r["lat"][name] for r in done))
        for name in ("ok", "trying", "push", "ringing", "bye_rsp", "bye_notify", "round")
    }
    rounds = [r["rounds"] for r in done]
    events = merge_events(done)
    setup_errors = merge_events(setup, "errors")
    logged_in = sum(r["logged_in"] for r in setup)
    server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    gen_cpu_s = sum(r["cpu"] for r in done)
    cluster_figures: dict[str, Any] | None = None
    if cwin is not None:
        cluster_figures = cwin.figures(wall, total["completed"], "call")
        server_cpu_s = cluster_figures["nodes_cpu_s"]
        others = window.others(wall, server_cpu_s, gen_cpu_s, *cwin.service_cpu_s())
    else:
        others = window.others(wall, server_cpu_s, gen_cpu_s)
    mismatches: dict[str, Any] = {}
    for key in keys[1:]:
        if total[key] != total["invites"]:
            mismatches[f"{key} != invites"] = total[key] - total["invites"]
    if logged_in != 2 * pairs_n:
        mismatches["connections not logged in"] = 2 * pairs_n - logged_in
    for side in ("caller", "callee"):
        if records.get(side, 0) != total["completed"]:
            mismatches[f"call records (AVCHAT) at the {side} != calls"] = records.get(side, 0) - total["completed"]
    mismatches.update(placement_mismatches)
    correct = not mismatches and not events and not setup_errors and total["completed"] > 0
    us_per_call = per_op_us(server_cpu_s, total["completed"])
    results: dict[str, Any] = {
        "transport": args.transport,
        "pairs": pairs_n,
        "concurrent_setups": pairs_n,
        "generators": k,
        "servers": n_nodes,
        "users_created_s": round(create_s, 2),
        "logged_in": logged_in,
        "duration_s": args.duration,
        "hold_s": args.hold,
        "rounds": min(rounds) if rounds else 0,
        "rounds_by_generator": rounds,
        "run_s": round(wall, 3),
        **total,
        "call_records": dict(records),
        "setups_per_s": round(total["ok"] / wall, 1) if wall > 0 else None,
        "invite_to_ok": lat["ok"],
        "invite_to_trying": lat["trying"],
        "invite_to_callee_push": lat["push"],
        "invite_to_ringing": lat["ringing"],
        "bye_to_rsp": lat["bye_rsp"],
        "bye_to_notify": lat["bye_notify"],
        "round_time": lat["round"],
        "server_cpu_pct": cpu_share(server_cpu_s, wall),
        "server_cpu_by_thread": probe.split(threads0, threads1, wall) if cluster is None else None,
        "server_cpu_us_per_call": us_per_call,
        "generator_cpu_pct": cpu_share(gen_cpu_s, wall),
        "window": others,
        "core_busy_pct": core_busy(cores0, cores1, wall),
        "mismatches": mismatches,
        "events": events,
        "setup_errors": setup_errors,
        "correct": correct,
    }
    if cluster is not None and cluster_figures is not None:
        results.update({"placement": "cross", **placed, **cluster_figures})
    rows: Rows = [
        ("calls", f"{pairs_n:,} caller/callee pairs over {transport_name(args)}, all inviting at once each round, "
                  f"{k} generator process(es)" + (", callers on node 1, callees on node 2" if n_nodes > 1 else "")),
        ("rounds", f"{fmt(results['rounds'])} in {fmt(wall, ' s', 2)} ({fmt(results['setups_per_s'])} set-ups/s); "
                   f"round p50/p99 {fmt(lat['round']['p50_ms'])} / {fmt(lat['round']['p99_ms'])} ms"),
        ("invite->200 OK p50/p99/p99.9", fmt_latency(lat["ok"]) + " ms"),
        ("invite->100 Trying p50/p99/p99.9", fmt_latency(lat["trying"]) + " ms"),
        ("invite->callee push p50/p99/p99.9", fmt_latency(lat["push"]) + " ms"),
        ("invite->180 Ringing p50/p99/p99.9", fmt_latency(lat["ringing"]) + " ms"),
        ("bye->answer / ->callee notice p99", f"{fmt(lat['bye_rsp']['p99_ms'], digits=2)} / "
                                              f"{fmt(lat['bye_notify']['p99_ms'], digits=2)} ms"),
        ("server CPU" + (" (all nodes)" if cluster is not None else ""),
         f"{fmt(results['server_cpu_pct'], '% of one core')}, {fmt(us_per_call, ' us')} per call (set-up, "
         "bye, record)"),
    ]  # fmt: skip
    if cluster is None:
        rows.append(("server CPU by thread", fmt_threads(results["server_cpu_by_thread"])))
    rows += [
        ("generators CPU", fmt(results["generator_cpu_pct"], "% of one core (sum)")),
        ("other processes' CPU", fmt_others(others)),
        *([_cores_row(results)] if cluster is None else []),
        ("invites / 200 OK / byes done", f"{total['invites']:,} / {total['ok']:,} / {total['completed']:,} "
                                         f"(records: {dict(records)})"),
    ]  # fmt: skip
    if cluster is not None and cluster_figures is not None:
        rows += cluster_rows(
            _Placement(args, "cross"), cluster_figures, "call", "signalling crosses nodes", ["callers", "callees"]
        )
        rows.append(("", ""))
    rows.append(("correct", "yes" if correct else f"NO: {mismatches} {events} {setup_errors}"))
    return results, rows


SCENARIOS = {"room": run_room, "calls": run_calls}
