"""The scenarios, as the parent process runs them: users, generator phases, server figures.

Each ``run_*`` returns ``(results, rows)``: the JSON-ready figures and the table rows.  They are
bounded by ``args.duration`` (and friends) and by timeouts on every phase; the caller owns the
server and always stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import string
import time
import urllib.request
from collections import Counter
from typing import Any

from coffeechat.errors import ErrorCode

from . import wire
from .cluster import Cluster, ProcessGroup
from .pool import Generators, split
from .report import fmt, fmt_latency, latency_summary, merge_latencies
from .server import (
    Target,
    cpu_seconds,
    create_users,
    kernel_socket_kib,
    machine_cpu_seconds,
    machine_memory_used_kib,
    open_fds,
    rss_kib,
    thread_cpu_seconds,
)
from .wire import pb

# One server process cannot hold more than this (20,000 open files per process here, minus its
# listeners, database and log); ``connections --servers N`` spreads more over N processes.
MAX_CONNECTIONS_PER_SERVER = 19_000
# Each generator process stays well under the per-process open-file limit.
CONNECTIONS_PER_GENERATOR = 15_000
# The server's default [groups] max_normal_members (owner included).
DEFAULT_GROUP_LIMIT = 200

Rows = list[tuple[str, str]]


def run_id() -> str:
    """A short random prefix so that users of several runs against one server never collide."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))


def names(prefix: str, count: int) -> list[str]:
    return [f"b{prefix}{i}" for i in range(count)]


class ServerProbe:
    """CPU and RSS of the server process between two instants (nothing when its pid is unknown)."""

    def __init__(self, target: Target) -> None:
        self.pid = target.pid

    def rss(self) -> int | None:
        return rss_kib(self.pid) if self.pid else None

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid) if self.pid else None

    def fds(self) -> int | None:
        return open_fds(self.pid) if self.pid else None

    def threads(self) -> dict[int, float] | None:
        return thread_cpu_seconds(self.pid) if self.pid else None

    def split(self, before: dict[int, float] | None, after: dict[int, float] | None, wall: float) -> dict | None:
        """% of one core used by the reactor (the main thread) and by all other threads (the
        SQLite writer, readers) between two :meth:`threads` samples: who saturates first."""
        if not before or not after or wall <= 0:
            return None
        main = after.get(self.pid, 0.0) - before.get(self.pid, 0.0)
        rest = sum(v - before.get(tid, 0.0) for tid, v in after.items() if tid != self.pid)
        return {"reactor_thread_pct": round(100 * main / wall, 1), "other_threads_pct": round(100 * rest / wall, 1)}


class Window:
    """Machine-wide CPU over a measurement window, to show what else ran meanwhile: other
    processes on the same cores distort every figure, and a VM's steal time too."""

    def __init__(self) -> None:
        self.start = machine_cpu_seconds()
        self.end: tuple[float, float] | None = None

    def stop(self) -> None:
        self.end = machine_cpu_seconds()

    def others(self, wall: float, *ours: float | None) -> dict[str, float | None]:
        """% of one core used by other processes (and stolen by the hypervisor) in the window."""
        if self.start is None or self.end is None or wall <= 0:
            return {"other_processes_cpu_pct": None, "steal_pct": None}
        busy = self.end[0] - self.start[0] - sum(x for x in ours if x is not None)
        return {
            "other_processes_cpu_pct": round(max(0.0, busy) * 100 / wall, 1),
            "steal_pct": round((self.end[1] - self.start[1]) * 100 / wall, 1),
        }


def fmt_others(others: dict[str, float | None]) -> str:
    return f"{fmt(others['other_processes_cpu_pct'], '%')} of one core (VM steal {fmt(others['steal_pct'], '%')})"


def fmt_threads(split: dict | None) -> str:
    if not split:
        return "-"
    return (
        f"reactor (main thread) {fmt(split['reactor_thread_pct'], '%')}, "
        f"SQLite writer + readers {fmt(split['other_threads_pct'], '%')}"
    )


def per_op_us(cpu_s: float | None, ops: int) -> float | None:
    """Server CPU microseconds per operation: unlike a rate, it holds when other processes take
    part of the server's core (a shared machine), so runs stay comparable."""
    if cpu_s is None or ops <= 0:
        return None
    return round(cpu_s * 1e6 / ops, 1)


def cpu_share(cpu_s: float | None, wall_s: float) -> float | None:
    """CPU seconds over a wall interval, as % of one core."""
    if cpu_s is None or wall_s <= 0:
        return None
    return round(100.0 * cpu_s / wall_s, 1)


def sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def merge_events(results: list[dict[str, Any]], key: str = "events") -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.get(key, {}))
    return dict(total)


def create(target: Target, prefix: str, count: int, password_md5: str | None = None) -> tuple[list, float]:
    t = time.monotonic()
    users = create_users(target, names(prefix, count), password_md5)
    return users, time.monotonic() - t


def cap_connections(asked: int, servers: int = 1) -> tuple[int, list[str]]:
    """At most 19,000 connections per server process (20,000 open files); say so when capped."""
    cap = MAX_CONNECTIONS_PER_SERVER * servers
    if asked <= cap:
        return asked, []
    note = (
        f"asked for {asked:,} connections; capped at {MAX_CONNECTIONS_PER_SERVER:,} per server process "
        f"(open-file limit) x {servers} server process(es); more need more --servers"
    )
    return cap, [note]


def ephemeral_ports() -> int:
    """How many ports the kernel hands out to connect() (net.ipv4.ip_local_port_range)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return high - low + 1
    except (OSError, ValueError):
        return 28_232  # Linux's default range, 32768-60999


def check_port_budget(
    node_shares: list[list[int]], sources: list[list[str] | None], ports: list[int], nodes: int, budget: int
) -> dict[tuple[str, int], int]:
    """Connections per (source address, destination port), as the generators will open them
    (each generator takes its sources in turn per destination port); ValueError when one exceeds
    90% of the ephemeral port range: such a connect fails with EADDRNOTAVAIL, after slowing down
    long before.  Spread them with more --servers (ports) or --source-ips (addresses)."""
    count: Counter[tuple[str, int]] = Counter()
    for share, addresses in zip(node_shares, sources, strict=True):
        per_node = Counter(share)
        for node in range(nodes):
            c = per_node.get(node, 0)
            if not addresses:
                count[("127.0.0.1", ports[node])] += c
                continue
            base, extra = divmod(c, len(addresses))
            for a, address in enumerate(addresses):
                count[(address, ports[node])] += base + (1 if a < extra else 0)
    worst = max(count.items(), key=lambda kv: kv[1], default=None)
    if worst is not None and worst[1] > budget * 0.9:
        (address, port), c = worst
        raise ValueError(
            f"{c:,} connections from {address} to port {port}: over 90% of the {budget:,} ephemeral ports; "
            "add --source-ips (loopback source addresses) or --servers"
        )
    return dict(count)


def source_addresses(args: argparse.Namespace, target: Target, index: int, generators: int) -> list[str] | None:
    """The loopback source addresses generator ``index`` connects from (``--source-ips``): each
    address has its own ephemeral port range towards the server, which one address runs out of
    (~28,000 ports here) and which gets slow to search long before that."""
    if not args.source_ips:
        return None
    if not target.host.startswith("127."):
        raise ValueError("--source-ips needs a loopback target (127.0.0.x)")
    return [f"127.0.0.{2 + i}" for i in range(args.source_ips) if i % generators == index % generators] or [
        f"127.0.0.{2 + index % args.source_ips}"
    ]


def generator_count(args: argparse.Namespace, connections: int) -> int:
    return max(args.generators, math.ceil(connections / CONNECTIONS_PER_GENERATOR))


def endpoint(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    """Where the generators connect: the CIM TCP port, or the WebSocket listener (``--transport
    ws``, subprotocol cim.v1) with the path to upgrade on."""
    if getattr(args, "transport", "tcp") == "ws":
        if target.ws_port is None:
            raise ValueError("--transport ws: the server has no WebSocket listener (with --target, give --ws)")
        return {"host": target.host, "port": target.ws_port, "ws_path": target.ws_path}
    return {"host": target.host, "port": target.cim_port, "ws_path": None}


def transport_name(args: argparse.Namespace) -> str:
    return "WebSocket (binary, cim.v1)" if getattr(args, "transport", "tcp") == "ws" else "TCP"


# ---- connections --------------------------------------------------------------------------------


def run_connections(
    args: argparse.Namespace, target: Target, cpus: list[int] | None, cluster: Cluster | None = None
) -> tuple[dict, Rows]:
    """N token-authenticated connections held idle with heartbeats: RSS per connection, login rate,
    CPU of the idle hold.  With a ``cluster`` (``--servers``), the connections go round-robin to
    its nodes (user i to node i mod N) and every figure is given per node and in total, with the
    RSS and CPU of its PostgreSQL and Redis."""
    targets = cluster.targets if cluster is not None else [target]
    n_nodes = len(targets)
    n, notes = cap_connections(args.connections, n_nodes)
    hold = args.hold if args.hold is not None else args.duration
    prefix = run_id()
    users, create_s = create(target, prefix, n)
    node_of = [i % n_nodes for i in range(n)]
    expected = [node_of.count(j) for j in range(n_nodes)]
    k = generator_count(args, n)
    probes = [ServerProbe(t) for t in targets]
    services = cluster_services(cluster)
    where = endpoint(args, target)
    ports = [endpoint(args, t)["port"] for t in targets]
    index_shares = split(list(range(n)), k)
    sources = [source_addresses(args, target, i, k) for i in range(k)]
    check_port_budget(
        [[node_of[i] for i in share] for share in index_shares], sources, ports, n_nodes, ephemeral_ports()
    )
    timeout = args.connect_timeout + args.login_timeout + n / 200 + 60
    lifetime = timeout * 3 + hold + args.heartbeat + 120
    results: dict[str, Any] = {
        "connections_asked": args.connections,
        "connections": n,
        "transport": args.transport,
        "notes": notes,
    }
    live_nodes = cluster.live_nodes() if cluster is not None else None

    def rss_all() -> list[int | None]:
        return [p.rss() for p in probes]

    def cpu_all() -> list[float | None]:
        return [p.cpu() for p in probes]

    with Generators(k, cpus, lifetime) as gens:
        tcp0 = kernel_socket_kib()
        mem0 = machine_memory_used_kib()
        rss0 = rss_all()
        fds0 = [p.fds() for p in probes]
        svc0 = sample_services(services)
        ccpu0 = cpu_all()
        connected = gens.call(
            "connect",
            [
                {
                    **where,
                    "users": [users[i] for i in share],
                    "concurrency": args.concurrency,
                    "timeout": args.connect_timeout,
                    "sources": sources[i],
                    **({"nodes": [node_of[j] for j in share], "ports": ports} if n_nodes > 1 else {}),
                }
                for i, share in enumerate(index_shares)
            ],
            timeout,
        )
        ccpu1 = cpu_all()
        rss_connected = rss_all()
        start_at = time.monotonic() + 0.2
        cpu0 = cpu_all()
        svc_login0 = sample_services(services)
        logged = gens.call(
            "login",
            [{"start_at": start_at, "concurrency": args.concurrency, "timeout": args.login_timeout}] * k,
            timeout,
        )
        cpu1 = cpu_all()
        svc_login1 = sample_services(services)
        time.sleep(0.5)  # let the server settle (delivery flusher, wheel) before reading its RSS
        rss_logged = rss_all()
        tcp_logged = kernel_socket_kib()
        mem_logged = machine_memory_used_kib()
        fds1 = [p.fds() for p in probes]
        t_start = time.monotonic() + 0.5
        t_end = t_start + hold
        gens.send("hold", [{"t_start": t_start, "t_end": t_end, "interval": args.heartbeat, "grace": 1.0}] * k)
        sleep_until(t_start)
        hcpu0 = cpu_all()
        svc_hold0 = sample_services(services)
        window = Window()
        sleep_until(t_end)
        hcpu1 = cpu_all()
        svc_hold1 = sample_services(services)
        window.stop()
        held = gens.gather(hold + 60)
        rss_held = rss_all()
        # Who the nodes (GET /health) and Redis (each node's device set) say is online, after the hold.
        health_answers = [health_of(t) for t in targets] if cluster is not None else []
        health = [a.get("devices") for a in health_answers] if cluster is not None else None
        presence = cluster.presence_devices() if cluster is not None else None
        gens.call("close", [{}] * k, 60)
        password = password_logins(args, target) if args.password_logins else None

    ok_connects = sum(r["ok"] for r in connected)
    ok_logins = sum(r["ok"] for r in logged)
    connected_by_node = [sum(r["ok_by_node"][j] for r in connected) for j in range(n_nodes)]
    logged_by_node = [sum(r["ok_by_node"][j] for r in logged) for j in range(n_nodes)]
    answered_by_node = [sum(r["answered_by_node"][j] for r in held) for j in range(n_nodes)]
    sent_by_node = [sum(r["sent_by_node"][j] for r in held) for j in range(n_nodes)]
    login_wall = max(r["t1"] for r in logged) - min(r["t0"] for r in logged)
    connect_wall = max(r["t1"] for r in connected) - min(r["t0"] for r in connected)
    login_lat = latency_summary(merge_latencies(r["latencies"] for r in logged))
    rtt = latency_summary(merge_latencies(r["rtt"] for r in held))
    hb_sent = sum(r["heartbeats_sent"] for r in held)
    hb_answered = sum(r["heartbeats_answered"] for r in held)
    lost = sum(r["lost"] for r in held)
    rss0_t, rss_connected_t, rss_logged_t, rss_held_t = (
        total_or_none(x) for x in (rss0, rss_connected, rss_logged, rss_held)
    )
    rss_per_conn = bytes_per(rss0_t, rss_logged_t, ok_logins)
    rss_per_conn_held = bytes_per(rss0_t, rss_held_t, ok_logins)
    kernel_per_conn = None
    if tcp0 is not None and tcp_logged is not None and ok_connects:
        # both ends of each loopback connection live in this kernel: per socket, not per connection
        kernel_per_conn = round((tcp_logged - tcp0) * 1024 / ok_connects / 2)
    connect_cpu_s, login_cpu_s, hold_cpu_s = (total_or_none(deltas(a, b)) for a, b in
                                              ((ccpu0, ccpu1), (cpu0, cpu1), (hcpu0, hcpu1)))  # fmt: skip
    hold_cpu = cpu_share(hold_cpu_s, hold)
    gen_hold_cpu = cpu_share(sum(r["cpu"] for r in held), hold)
    svc_hold_cpu = [
        None if a["cpu_s"] is None or b["cpu_s"] is None else b["cpu_s"] - a["cpu_s"]
        for a, b in zip(svc_hold0.values(), svc_hold1.values(), strict=True)
    ]
    others = window.others(hold, hold_cpu_s, sum(r["cpu"] for r in held), *svc_hold_cpu)
    errors = {
        **{f"connect {k_}": v for r in connected for k_, v in r["errors"].items()},
        **{f"{k_}": v for r in logged for k_, v in r["errors"].items()},
    }
    events = merge_events(held)
    correct = ok_connects == n and ok_logins == n and lost == 0 and hb_answered == hb_sent and not errors
    mismatches: dict[str, Any] = {}
    if cluster is not None:
        if logged_by_node != expected:
            mismatches["logged in by node"] = logged_by_node
        if health != expected:
            mismatches["GET /health devices by node"] = health
        # /health names its node (when the server says): each port must be the node it was started as
        names = [a.get("node", cluster.node_name(j)) for j, a in enumerate(health_answers)]
        if names != [cluster.node_name(j) for j in range(n_nodes)]:
            mismatches["GET /health node names"] = names
        if presence != expected:
            mismatches["Redis devices by node"] = presence
        if live_nodes != [cluster.node_name(j) for j in range(n_nodes)]:
            mismatches["live nodes in Redis"] = live_nodes
        correct = correct and not mismatches
    results.update(
        {
            "generators": k,
            "users_created_s": round(create_s, 2),
            "connected": ok_connects,
            "connect_s": round(connect_wall, 3),
            "connects_per_s": round(ok_connects / connect_wall, 1) if connect_wall > 0 else None,
            "source_ips": args.source_ips,
            "server_cpu_connect_pct": cpu_share(connect_cpu_s, connect_wall),
            "generator_cpu_connect_pct": cpu_share(sum(r["cpu"] for r in connected), connect_wall),
            "logged_in": ok_logins,
            "login_s": round(login_wall, 3),
            "logins_per_s": round(ok_logins / login_wall, 1) if login_wall > 0 else None,
            "login_latency": login_lat,
            "login_concurrency_per_generator": args.concurrency,
            "server_cpu_login_pct": cpu_share(login_cpu_s, login_wall),
            "server_cpu_us_per_login": per_op_us(login_cpu_s, ok_logins),
            "generator_cpu_login_pct": cpu_share(sum(r["cpu"] for r in logged), login_wall),
            "server_rss_kib": {
                "before": rss0_t,
                "connected": rss_connected_t,
                "logged_in": rss_logged_t,
                "after_hold": rss_held_t,
            },
            "server_open_files": {"before": total_or_none(fds0), "logged_in": total_or_none(fds1)},
            "rss_bytes_per_connection": rss_per_conn,
            "rss_bytes_per_connection_after_hold": rss_per_conn_held,
            "kernel_bytes_per_socket": kernel_per_conn,
            # everything on the machine: servers, generators, both ends' sockets (and others' processes)
            "machine_memory_used_kib": {"before": mem0, "logged_in": mem_logged},
            "hold_s": hold,
            "heartbeat_interval_s": args.heartbeat,
            "heartbeats_sent": hb_sent,
            "heartbeats_answered": hb_answered,
            "heartbeat_rtt": rtt,
            "server_cpu_hold_pct": hold_cpu,
            "server_cpu_us_per_heartbeat": per_op_us(hold_cpu_s, hb_answered),
            "generator_cpu_hold_pct": gen_hold_cpu,
            "connections_lost_during_hold": lost,
            "hold_window": others,
            "password_logins": password,
            "errors": errors,
            "events": events,
            "correct": correct,
        }
    )
    rows: Rows = [
        (
            "connections (token login 0x0101)",
            f"{ok_logins:,} of {n:,} logged in over {transport_name(args)}, {k} generator process(es)"
            + (f", {n_nodes} server processes" if cluster is not None else ""),
        ),
        (
            "connect rate",
            f"{fmt(results['connects_per_s'])} conn/s ({fmt(connect_wall, ' s', 2)}; CPU server "
            f"{fmt(results['server_cpu_connect_pct'], '%')}, "
            f"generators {fmt(results['generator_cpu_connect_pct'], '%')})",
        ),
        (
            "login rate",
            f"{fmt(results['logins_per_s'])} logins/s ({fmt(login_wall, ' s', 2)}; "
            f"{fmt(results['server_cpu_us_per_login'], ' us')} server CPU per login)",
        ),
        ("login latency p50/p99/p99.9", fmt_latency(login_lat) + " ms"),
        ("server RSS before / logged in", f"{fmt(rss0_t, ' KiB')} / {fmt(rss_logged_t, ' KiB')}"),
        ("server RSS per connection", f"{fmt(rss_per_conn, ' B')} (after the hold: {fmt(rss_per_conn_held, ' B')})"),
        ("kernel memory per socket (slab+TCP)", fmt(kernel_per_conn, " B")),
        ("idle hold", f"{fmt(hold, ' s')}, heartbeat every {fmt(args.heartbeat, ' s')}"),
        ("heartbeats sent / answered", f"{hb_sent:,} / {hb_answered:,} (rtt p50/p99/p99.9 {fmt_latency(rtt)} ms)"),
        (
            "server CPU while holding idle",
            f"{fmt(hold_cpu, '% of one core')} ({fmt(results['server_cpu_us_per_heartbeat'], ' us')} per heartbeat)",
        ),
        ("server CPU during the logins", f"{fmt(results['server_cpu_login_pct'], '% of one core')}"),
        (
            "generators CPU (hold / logins)",
            f"{fmt(gen_hold_cpu, '%')} / {fmt(results['generator_cpu_login_pct'], '%')}",
        ),
    ]
    if cluster is not None:
        nodes: list[dict[str, Any]] = []
        for j, t in enumerate(targets):
            node_login_cpu = delta(cpu0[j], cpu1[j])
            node_hold_cpu = delta(hcpu0[j], hcpu1[j])
            nodes.append(
                {
                    "node_name": cluster.node_name(j),
                    "pid": t.pid,
                    "pinned_cpus": t.cpus,
                    "connections": expected[j],
                    "connected": connected_by_node[j],
                    "logged_in": logged_by_node[j],
                    "health_devices": health[j] if health else None,
                    "presence_devices": presence[j] if presence else None,
                    "rss_kib": {"before": rss0[j], "logged_in": rss_logged[j], "after_hold": rss_held[j]},
                    "rss_bytes_per_connection": bytes_per(rss0[j], rss_logged[j], logged_by_node[j]),
                    "rss_bytes_per_connection_after_hold": bytes_per(rss0[j], rss_held[j], logged_by_node[j]),
                    "open_files": {"before": fds0[j], "logged_in": fds1[j]},
                    "server_cpu_login_pct": cpu_share(node_login_cpu, login_wall),
                    "server_cpu_us_per_login": per_op_us(node_login_cpu, logged_by_node[j]),
                    "heartbeats_sent": sent_by_node[j],
                    "heartbeats_answered": answered_by_node[j],
                    "server_cpu_hold_pct": cpu_share(node_hold_cpu, hold),
                    "server_cpu_us_per_heartbeat": per_op_us(node_hold_cpu, answered_by_node[j]),
                }
            )
        svc_results = service_figures(
            services, svc0, svc_login0, svc_login1, svc_hold0, svc_hold1, login_wall, hold, ok_logins
        )
        results.update(
            {
                "servers": n_nodes,
                "live_nodes": live_nodes,
                "nodes": nodes,
                "services": svc_results,
                "mismatches": mismatches,
            }
        )
        rows.insert(1, ("users created (admin API, node 1)", f"{n:,} with tokens in {fmt(create_s, ' s', 1)}"))
        mem_delta = delta(mem0, mem_logged)
        rows.append(
            (
                "machine memory in use",
                f"{fmt(mem0, ' KiB')} before, {fmt(mem_logged, ' KiB')} logged in "
                f"(+{fmt(bytes_per(mem0, mem_logged, ok_logins), ' B')} per connection, both ends and the "
                f"generators; others' processes included)"
                if mem_delta is not None
                else "-",
            )
        )
        rows.append(("", ""))
        rows.append(("per node", "connections / RSS per conn / login CPU / hold CPU, per heartbeat"))
        for node in nodes:
            rows.append(
                (
                    f"  {node['node_name']} (pid {node['pid']}, CPU {node['pinned_cpus'] or 'any'})",
                    f"{node['logged_in']:,} (health {fmt(node['health_devices'])}, Redis "
                    f"{fmt(node['presence_devices'])}) / {fmt(node['rss_bytes_per_connection'], ' B')} / "
                    f"{fmt(node['server_cpu_us_per_login'], ' us')} per login / "
                    f"{fmt(node['server_cpu_hold_pct'], '%')}, {fmt(node['server_cpu_us_per_heartbeat'], ' us')}",
                )
            )
        for name, figures in svc_results.items():
            rows.append(
                (
                    name,
                    f"RSS {fmt(figures['rss_kib_logged_in'], ' KiB')} "
                    f"(PSS {fmt(figures['pss_kib_logged_in'], ' KiB')}, "
                    f"+{fmt(figures['pss_bytes_per_login'], ' B')} per login, {figures['processes']} process(es)); "
                    f"CPU {fmt(figures['cpu_login_pct'], '%')} during the logins "
                    f"({fmt(figures['cpu_us_per_login'], ' us')} per login), "
                    f"{fmt(figures['cpu_hold_pct'], '%')} during the hold",
                )
            )
        rows.append(("", ""))
    rows.append(("others' CPU during the hold", fmt_others(others)))
    if password:
        rows.append(
            (
                "password logins (0x0107, scrypt)",
                f"{password['ok']:,} in {fmt(password['seconds'], ' s', 2)}: {fmt(password['logins_per_s'])} logins/s",
            )
        )
    if mismatches:
        rows.append(("mismatches", str(mismatches)))
    rows.append(("correct", "yes" if correct else f"NO: lost {lost}, errors {errors}, events {events}"))
    for note in notes:
        rows.append(("note", note))
    return results, rows


def delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def deltas(a: list[float | None], b: list[float | None]) -> list[float | None]:
    return [delta(x, y) for x, y in zip(a, b, strict=True)]


def total_or_none(values: list[Any]) -> Any:
    """The sum, or None when any value is unknown (a partial sum would look like a figure)."""
    return None if any(v is None for v in values) else sum(values)


def bytes_per(before_kib: int | None, after_kib: int | None, count: int) -> int | None:
    if before_kib is None or after_kib is None or count <= 0:
        return None
    return round((after_kib - before_kib) * 1024 / count)


def health_of(target: Target) -> dict[str, Any]:
    """A node's ``GET /health`` answer (its node name and the devices it holds); {} if it fails."""
    try:
        with urllib.request.urlopen(target.http_url.rstrip("/") + "/health", timeout=10) as r:
            answer = json.loads(r.read())
    except (OSError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


def cluster_services(cluster: Cluster | None) -> dict[str, ProcessGroup]:
    if cluster is None:
        return {}
    return {"postgres": cluster.postgres_group(), "redis": cluster.redis_group()}


def sample_services(services: dict[str, ProcessGroup]) -> dict[str, dict[str, Any]]:
    return {name: group.sample() for name, group in services.items()}


def service_figures(
    services: dict[str, ProcessGroup],
    before: dict[str, dict[str, Any]],
    login0: dict[str, dict[str, Any]],
    login1: dict[str, dict[str, Any]],
    hold0: dict[str, dict[str, Any]],
    hold1: dict[str, dict[str, Any]],
    login_wall: float,
    hold: float,
    logins: int,
) -> dict[str, dict[str, Any]]:
    """RSS (and PSS: PostgreSQL's processes share their buffers) and CPU of PostgreSQL and Redis
    before the load, after the logins and over the hold."""
    out: dict[str, dict[str, Any]] = {}
    for name in services:
        login_cpu = delta(login0[name]["cpu_s"], login1[name]["cpu_s"])
        hold_cpu = delta(hold0[name]["cpu_s"], hold1[name]["cpu_s"])
        out[name] = {
            "processes": hold1[name]["processes"],
            "rss_kib_before": before[name]["rss_kib"],
            "rss_kib_logged_in": login1[name]["rss_kib"],
            "rss_kib_after_hold": hold1[name]["rss_kib"],
            "pss_kib_before": before[name]["pss_kib"],
            "pss_kib_logged_in": login1[name]["pss_kib"],
            # what the logins added (Redis: each device's presence entries; PostgreSQL: caches)
            "pss_bytes_per_login": bytes_per(login0[name]["pss_kib"], login1[name]["pss_kib"], logins),
            "cpu_login_pct": cpu_share(login_cpu, login_wall),
            "cpu_us_per_login": per_op_us(login_cpu, logins),
            "cpu_hold_pct": cpu_share(hold_cpu, hold),
        }
    return out


def password_logins(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    """How slow password logins are (scrypt on the server's KDF pool): P users with a password,
    all logging in at once over CIM (0x0107)."""
    password_md5 = "5f4dcc3b5aa765d61d8327deb882cf99"  # md5("password")
    prefix = run_id()
    user_names = names(prefix, args.password_logins)
    _, create_s = create(target, prefix, args.password_logins, password_md5)

    async def run() -> tuple[int, float, list[float]]:
        where = endpoint(args, target)
        conns = await asyncio.gather(
            *(wire.connect(where["host"], where["port"], ws_path=where["ws_path"]) for _ in user_names)
        )
        latencies: list[float] = []
        t0 = time.monotonic()

        async def one(conn: wire.Conn, name: str) -> None:
            t = time.monotonic()
            if await wire.login_password(conn, name, password_md5, args.login_timeout + 60) == wire.SUCCESS:
                latencies.append(time.monotonic() - t)

        await asyncio.gather(*(one(c, name) for c, name in zip(conns, user_names, strict=True)))
        elapsed = time.monotonic() - t0
        for c in conns:
            c.close()
        return len(latencies), elapsed, sorted(latencies)

    ok, elapsed, latencies = asyncio.run(run())
    return {
        "asked": args.password_logins,
        "ok": ok,
        "seconds": round(elapsed, 3),
        "logins_per_s": round(ok / elapsed, 1) if elapsed > 0 else None,
        "latency": latency_summary(latencies),
        "users_created_s": round(create_s, 2),
    }


# ---- p2p ----------------------------------------------------------------------------------------


def run_p2p(args: argparse.Namespace, target: Target, cpus: list[int] | None) -> tuple[dict, Rows]:
    """K pairs, each sender with one message in flight (closed loop) or paced at ``--rate`` in
    total (open loop); a message is complete when the sender has its ack and the receiver its push."""
    pairs_n = args.pairs
    prefix = run_id()
    users, create_s = create(target, prefix, 2 * pairs_n)
    pairs = [[i, *users[2 * i], *users[2 * i + 1]] for i in range(pairs_n)]
    k = min(generator_count(args, 2 * pairs_n), pairs_n)
    probe = ServerProbe(target)
    setup_timeout = args.connect_timeout + args.login_timeout + pairs_n / 100 + 60
    run_s = args.warmup + args.duration + args.drain
    lifetime = setup_timeout + run_s + 180
    shares = split(pairs, k)
    open_loop = args.rate is not None
    with Generators(k, cpus, lifetime) as gens:
        setup = gens.call(
            "p2p_setup",
            [
                {
                    **endpoint(args, target),
                    "pairs": share,
                    "concurrency": args.concurrency,
                    "timeout": args.connect_timeout,
                }
                for share in shares
            ],
            setup_timeout,
        )
        t0 = time.monotonic() + 0.5
        win_start, win_end = t0 + args.warmup, t0 + args.warmup + args.duration
        kwargs = []
        for share in shares:
            frac = len(share) / pairs_n
            kwargs.append(
                {
                    "t0": t0,
                    "warmup": args.warmup,
                    "duration": args.duration,
                    "drain": args.drain,
                    "rate": args.rate * frac if open_loop else None,
                    "budget": max(1, math.ceil(args.max_messages * frac)),
                    "payload_size": args.size,
                }
            )
        gens.send("p2p_run", kwargs)
        sleep_until(win_start)
        cpu0, rss0, threads0 = probe.cpu(), probe.rss(), probe.threads()
        window = Window()
        sleep_until(win_end)
        cpu1, rss1, threads1 = probe.cpu(), probe.rss(), probe.threads()
        window.stop()
        done = gens.gather(run_s + 120)
        gens.call("close", [{}] * k, 60)

    total = {key: sum(r[key] for r in done) for key in (
        "pairs", "sent", "acked", "delivered", "completed", "completed_in_window", "refused",
        "acked_not_delivered", "delivered_not_acked", "unanswered", "gap_pairs", "missing_ids",
    )}  # fmt: skip
    ack_lat = latency_summary(merge_latencies(r["ack_lat"] for r in done))
    del_lat = latency_summary(merge_latencies(r["del_lat"] for r in done))
    lag = latency_summary(merge_latencies(r["send_lag"] for r in done)) if open_loop else None
    events = merge_events(done)
    setup_errors = merge_events(setup, "errors")
    logged_in = sum(r["logged_in"] for r in setup)
    delivered_per_s = round(total["completed_in_window"] / args.duration, 1)
    server_cpu = cpu_share(None if cpu0 is None or cpu1 is None else cpu1 - cpu0, args.duration)
    gen_cpu = cpu_share(sum(r["cpu"] for r in done), args.duration)
    others = window.others(
        args.duration, None if cpu0 is None or cpu1 is None else cpu1 - cpu0, sum(r["cpu"] for r in done)
    )
    us_per_msg = per_op_us(None if cpu0 is None or cpu1 is None else cpu1 - cpu0, total["completed_in_window"])
    mismatches = {
        name: total[name]
        for name in ("refused", "acked_not_delivered", "delivered_not_acked", "unanswered", "gap_pairs", "missing_ids")
        if total[name]
    }
    if total["acked"] != total["delivered"]:
        mismatches["acked != delivered"] = total["acked"] - total["delivered"]
    if total["sent"] != total["acked"]:
        mismatches["sent != acked"] = total["sent"] - total["acked"]
    if logged_in != 2 * pairs_n:
        mismatches["connections not logged in"] = 2 * pairs_n - logged_in
    correct = not mismatches and not events and not setup_errors
    results = {
        "mode": "open" if open_loop else "closed",
        "transport": args.transport,
        "pairs": pairs_n,
        "generators": k,
        "users_created_s": round(create_s, 2),
        "logged_in": logged_in,
        "offered_rate": args.rate,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "payload_bytes": args.size,
        **total,
        "delivered_per_s": delivered_per_s,
        "send_to_ack": ack_lat,
        "send_to_delivery": del_lat,
        "send_lag": lag,
        "server_cpu_pct": server_cpu,
        "server_cpu_by_thread": probe.split(threads0, threads1, args.duration),
        "server_cpu_us_per_msg": us_per_msg,
        "msgs_per_s_at_one_full_core": round(1e6 / us_per_msg) if us_per_msg else None,
        "generator_cpu_pct": gen_cpu,
        "server_rss_kib": {"window_start": rss0, "window_end": rss1},
        "window": others,
        "mismatches": mismatches,
        "events": events,
        "setup_errors": setup_errors,
        "correct": correct,
    }
    mode = (
        f"open loop at {fmt(args.rate)} msgs/s offered" if open_loop else "closed loop, one message in flight per pair"
    )
    rows: Rows = [
        ("pairs", f"{pairs_n:,} over {transport_name(args)} ({mode}), {k} generator process(es)"),
        ("window", f"{fmt(args.duration, ' s')} after {fmt(args.warmup, ' s')} warm-up"),
        ("delivered msgs/s", fmt(delivered_per_s)),
        ("send->ack p50/p99/p99.9", fmt_latency(ack_lat) + " ms"),
        ("send->delivery p50/p99/p99.9", fmt_latency(del_lat) + " ms"),
    ]
    if lag:
        rows.append(
            ("generator send lag p99 / max", f"{fmt(lag['p99_ms'], digits=2)} / {fmt(lag['max_ms'], digits=2)} ms")
        )
    rows += [
        (
            "server CPU",
            f"{fmt(server_cpu, '% of one core')}, {fmt(us_per_msg, ' us')} per message "
            f"(one full core: {fmt(results['msgs_per_s_at_one_full_core'])} msgs/s)",
        ),
        ("server CPU by thread", fmt_threads(results["server_cpu_by_thread"])),
        ("generators CPU", fmt(gen_cpu, "% of one core (sum)")),
        ("other processes' CPU", fmt_others(others)),
        ("sent / acked / delivered", f"{total['sent']:,} / {total['acked']:,} / {total['delivered']:,}"),
        ("server_msg_id gaps", f"{total['gap_pairs']} pair(s)"),
        ("correct", "yes" if correct else f"NO: {mismatches} {events} {setup_errors}"),
    ]
    return results, rows


# ---- group --------------------------------------------------------------------------------------


def group_overrides(members: int) -> dict[str, dict[str, Any]]:
    """Server config for groups larger than the default limit (200 members, owner included)."""
    if members <= DEFAULT_GROUP_LIMIT:
        return {}
    return {"groups": {"max_normal_members": members, "max_super_members": max(2000, members)}}


def create_refusal(errors: list[dict[str, Any]]) -> str:
    """The server's refusal of GROUP_CREATE, in words (the first one; they are alike)."""
    first = errors[0]
    code = first.get("code")
    if first.get("answer_cmd") == wire.ERROR_RSP and code == pb.kCIM_ERR_NOT_SUPPORTED:
        return "server does not support groups yet"
    if code is None:
        return f"GROUP_CREATE failed: {first.get('error')}"
    try:
        name = ErrorCode(code).name
    except ValueError:
        name = "?"
    text = f": {first['text']}" if first.get("text") else ""
    return f"server answered GROUP_CREATE with 0x{first['answer_cmd']:04x} code {code} ({name}){text}"


def run_group(args: argparse.Namespace, target: Target, cpus: list[int] | None) -> tuple[dict, Rows]:
    """G groups of M members, one connection per member; each group's first member creates it
    with GROUP_CREATE, its first ``--senders`` members each keep ``--window`` messages in flight
    (closed loop).  A message is complete when its sender has the ack and every other member
    device has the push (and acked it, as clients do): deliveries/s, messages/s and
    send->last-delivery latency, with every delivery checked exactly once per device."""
    g_n, m_n = args.groups, args.members
    n_users = g_n * m_n
    if n_users > MAX_CONNECTIONS_PER_SERVER:
        raise ValueError(f"{g_n} groups x {m_n} members is over {MAX_CONNECTIONS_PER_SERVER:,} connections")
    senders = min(args.senders, m_n)
    prefix = run_id()
    users, create_s = create(target, prefix, n_users)
    groups = [
        {"index": i, "members": [list(u) for u in users[i * m_n : (i + 1) * m_n]], "senders": senders}
        for i in range(g_n)
    ]
    k = min(max(args.generators, math.ceil(n_users / CONNECTIONS_PER_GENERATOR)), g_n)
    shares = split(groups, k)  # whole groups per generator: a message completes inside one process
    probe = ServerProbe(target)
    setup_timeout = args.connect_timeout + args.login_timeout + n_users / 100 + 60
    settle = 30.0
    run_s = args.warmup + args.duration + args.drain
    lifetime = setup_timeout + settle + run_s + 180
    with Generators(k, cpus, lifetime) as gens:
        setup = gens.call(
            "group_setup",
            [
                {
                    **endpoint(args, target),
                    "groups": share,
                    "concurrency": args.concurrency,
                    "timeout": args.login_timeout,
                    "settle": settle,
                }
                for share in shares
            ],
            setup_timeout + settle,
        )
        create_errors = [e for r in setup for e in r["create_errors"]]
        if create_errors:
            gens.call("close", [{}] * k, 60)
            reason = create_refusal(create_errors)
            results = {
                "skipped": True,
                "reason": reason,
                "create_errors": create_errors[:10],
                "groups": g_n,
                "members": m_n,
                "transport": args.transport,
                "generators": k,
                "correct": True,
            }
            return results, [("group", f"skipped: {reason}")]
        t0 = time.monotonic() + 0.5
        win_start, win_end = t0 + args.warmup, t0 + args.warmup + args.duration
        kwargs = [
            {
                "t0": t0,
                "warmup": args.warmup,
                "duration": args.duration,
                "drain": args.drain,
                "budget": max(1, math.ceil(args.max_messages * len(share) / g_n)),
                "payload_size": args.size,
                "window": args.window,
            }
            for share in shares
        ]
        gens.send("group_run", kwargs)
        sleep_until(win_start)
        cpu0, rss0, threads0 = probe.cpu(), probe.rss(), probe.threads()
        window = Window()
        sleep_until(win_end)
        cpu1, rss1, threads1 = probe.cpu(), probe.rss(), probe.threads()
        window.stop()
        done = gens.gather(run_s + 120)
        gens.call("close", [{}] * k, 60)

    total = {key: sum(r[key] for r in done) for key in (
        "groups", "sent", "acked", "refused", "completed", "deliveries", "deliveries_in_window",
        "completed_in_window", "unanswered", "acked_not_delivered", "delivered_not_acked", "missing_deliveries",
        "gap_groups", "missing_ids", "notice_deliveries",
    )}  # fmt: skip
    ack_lat = latency_summary(merge_latencies(r["ack_lat"] for r in done))
    first_lat = latency_summary(merge_latencies(r["first_lat"] for r in done))
    last_lat = latency_summary(merge_latencies(r["last_lat"] for r in done))
    events = merge_events(done)
    setup_errors = merge_events(setup, "errors")
    setup_events = merge_events(setup, "events")
    logged_in = sum(r["logged_in"] for r in setup)
    missing_creation = sum(r["missing_creation_pushes"] for r in setup)
    server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    gen_cpu_s = sum(r["cpu"] for r in done)
    deliveries_per_s = round(total["deliveries_in_window"] / args.duration, 1)
    msgs_per_s = round(total["completed_in_window"] / args.duration, 1)
    us_per_delivery = per_op_us(server_cpu_s, total["deliveries_in_window"])
    receivers = m_n - 1
    mismatches = {
        name: total[name]
        for name in ("refused", "unanswered", "acked_not_delivered", "delivered_not_acked", "missing_deliveries",
                     "gap_groups", "missing_ids")
        if total[name]
    }  # fmt: skip
    if total["sent"] != total["acked"]:
        mismatches["sent != acked"] = total["sent"] - total["acked"]
    if total["completed"] != total["acked"]:
        mismatches["acked != completed"] = total["acked"] - total["completed"]
    if total["deliveries"] != total["completed"] * receivers:
        mismatches["deliveries != completed x receivers"] = total["deliveries"] - total["completed"] * receivers
    if logged_in != n_users:
        mismatches["members not logged in"] = n_users - logged_in
    if missing_creation:
        mismatches["creation pushes missing"] = missing_creation
    correct = not mismatches and not events and not setup_errors and not setup_events
    results = {
        "transport": args.transport,
        "groups": g_n,
        "members": m_n,
        "senders_per_group": senders,
        "window_per_sender": args.window,
        "generators": k,
        "users_created_s": round(create_s, 2),
        "logged_in": logged_in,
        "setup": {
            "login_s": round(max(r["login_s"] for r in setup), 3),
            "create_groups_s": round(max(r["create_s"] for r in setup), 3),
            "group_ids": [gid for r in setup for gid in r["group_ids"]],
        },
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "payload_bytes": args.size,
        **total,
        "deliveries_per_s": deliveries_per_s,
        "msgs_per_s": msgs_per_s,
        "send_to_ack": ack_lat,
        "send_to_first_delivery": first_lat,
        "send_to_last_delivery": last_lat,
        "server_cpu_pct": cpu_share(server_cpu_s, args.duration),
        "server_cpu_by_thread": probe.split(threads0, threads1, args.duration),
        "server_cpu_us_per_delivery": us_per_delivery,
        "deliveries_per_s_at_one_full_core": round(1e6 / us_per_delivery) if us_per_delivery else None,
        "generator_cpu_pct": cpu_share(gen_cpu_s, args.duration),
        "generator_cpu_us_per_delivery": per_op_us(gen_cpu_s, total["deliveries_in_window"]),
        "server_rss_kib": {"window_start": rss0, "window_end": rss1},
        "window": window.others(args.duration, server_cpu_s, gen_cpu_s),
        "mismatches": mismatches,
        "events": events,
        "setup_errors": {**setup_errors, **setup_events},
        "correct": correct,
    }
    rows: Rows = [
        (
            "groups",
            f"{g_n:,} x {m_n:,} members over {transport_name(args)}, {senders} sender(s) per group with "
            f"{args.window} message(s) in flight each, {k} generator process(es)",
        ),
        ("window", f"{fmt(args.duration, ' s')} after {fmt(args.warmup, ' s')} warm-up"),
        ("deliveries/s", f"{fmt(deliveries_per_s)} ({fmt(msgs_per_s)} msgs/s x {receivers} receivers)"),
        ("send->ack p50/p99/p99.9", fmt_latency(ack_lat) + " ms"),
        ("send->first delivery p50/p99/p99.9", fmt_latency(first_lat) + " ms"),
        ("send->last delivery p50/p99/p99.9", fmt_latency(last_lat) + " ms"),
        (
            "server CPU",
            f"{fmt(results['server_cpu_pct'], '% of one core')}, {fmt(us_per_delivery, ' us')} per delivery "
            f"(one full core: {fmt(results['deliveries_per_s_at_one_full_core'])} deliveries/s)",
        ),
        ("server CPU by thread", fmt_threads(results["server_cpu_by_thread"])),
        (
            "generators CPU",
            f"{fmt(results['generator_cpu_pct'], '% of one core (sum)')}, "
            f"{fmt(results['generator_cpu_us_per_delivery'], ' us')} per delivery",
        ),
        ("other processes' CPU", fmt_others(results["window"])),
        (
            "sent / acked / completed",
            f"{total['sent']:,} / {total['acked']:,} / {total['completed']:,} "
            f"({total['deliveries']:,} deliveries, each device exactly once: "
            f"{'yes' if not total['missing_deliveries'] and not events else 'NO'})",
        ),
        ("server_msg_id gaps", f"{total['gap_groups']} group(s)"),
        ("correct", "yes" if correct else f"NO: {mismatches} {events} {results['setup_errors']}"),
    ]
    return results, rows


# ---- offline ------------------------------------------------------------------------------------


def run_offline(args: argparse.Namespace, target: Target, cpus: list[int] | None) -> tuple[dict, Rows]:
    """M messages to users who are offline, then those users log in and catch up from storage
    (conversation list, then history pages); nothing may be missing."""
    pairs_n = args.pairs
    m = min(args.messages, args.max_messages)
    prefix = run_id()
    users, create_s = create(target, prefix, 2 * pairs_n)
    pairs = [[i, *users[2 * i], *users[2 * i + 1]] for i in range(pairs_n)]
    k = min(args.generators, pairs_n)
    probe = ServerProbe(target)
    timeout = args.connect_timeout + args.login_timeout + pairs_n / 100 + 60
    lifetime = 3 * timeout + 2 * args.duration + 300
    shares = split(pairs, k)
    with Generators(k, cpus, lifetime) as gens:
        setup = gens.call(
            "offline_setup",
            [
                {
                    **endpoint(args, target),
                    "pairs": share,
                    "concurrency": args.concurrency,
                    "timeout": args.connect_timeout,
                }
                for share in shares
            ],
            timeout,
        )
        start_at = time.monotonic() + 0.3
        deadline = start_at + args.duration
        per_worker = split(list(range(m)), k)
        cpu0 = probe.cpu()
        sent = gens.call(
            "offline_send",
            [
                {
                    "start_at": start_at,
                    "count": len(part),
                    "window": args.window,
                    "deadline": deadline,
                    "payload_size": args.size,
                    "timeout": args.login_timeout,
                }
                for part in per_worker
            ],
            args.duration + args.login_timeout + 60,
        )
        cpu1 = probe.cpu()
        time.sleep(0.2)
        start_at = time.monotonic() + 0.3
        caught = gens.call(
            "offline_catchup",
            [{"start_at": start_at, "page": args.page, "concurrency": args.concurrency, "timeout": args.login_timeout}]
            * k,
            args.duration + timeout + 300,
        )
        cpu2 = probe.cpu()
        gens.call("close", [{}] * k, 60)

    n_sent = sum(r["sent"] for r in sent)
    acked = sum(r["acked"] for r in sent)
    send_wall = max(r["t1"] for r in sent) - min(r["t0"] for r in sent)
    catch_wall = max(r["t1"] for r in caught) - min(r["t0"] for r in caught)
    fetched = sum(r["fetched"] for r in caught)
    expected = sum(r["expected"] for r in caught)
    missing = sum(r["missing"] for r in caught)
    gaps = sum(r["gap_conversations"] for r in caught)
    list_mismatch = sum(r["conversation_list_mismatch"] for r in caught)
    per_receiver = latency_summary(merge_latencies(r["durations"] for r in caught))
    errors = {**merge_events(sent), **merge_events(caught, "errors"), **merge_events(setup, "errors")}
    # A send cut by --duration is not an error (the figures say how many were stored); a loss is.
    correct = missing == 0 and gaps == 0 and list_mismatch == 0 and expected == acked and not errors
    stored_per_s = round(acked / send_wall, 1) if send_wall > 0 else None
    catch_per_s = round(fetched / catch_wall, 1) if catch_wall > 0 else None
    results = {
        "transport": args.transport,
        "pairs": pairs_n,
        "generators": k,
        "users_created_s": round(create_s, 2),
        "messages": m,
        "window_per_sender": args.window,
        "sent": n_sent,
        "acked": acked,
        "complete": acked == m,
        "store_s": round(send_wall, 3),
        "stored_per_s": stored_per_s,
        "server_cpu_store_pct": cpu_share(None if cpu0 is None or cpu1 is None else cpu1 - cpu0, send_wall),
        "generator_cpu_store_pct": cpu_share(sum(r["cpu"] for r in sent), send_wall),
        "catchup_s": round(catch_wall, 3),
        "catchup_msgs_per_s": catch_per_s,
        "catchup_per_receiver": per_receiver,
        "history_page": args.page,
        "history_pages": sum(r["pages"] for r in caught),
        "fetched": fetched,
        "expected": expected,
        "missing": missing,
        "gap_conversations": gaps,
        "conversation_list_mismatch": list_mismatch,
        "server_cpu_catchup_pct": cpu_share(None if cpu1 is None or cpu2 is None else cpu2 - cpu1, catch_wall),
        "generator_cpu_catchup_pct": cpu_share(sum(r["cpu"] for r in caught), catch_wall),
        "errors": errors,
        "correct": correct,
    }
    rows: Rows = [
        (
            "pairs / messages",
            f"{pairs_n:,} offline receivers, {m:,} messages, {args.window} in flight per sender, "
            f"over {transport_name(args)}",
        ),
        ("stored (acked)", f"{acked:,} of {n_sent:,} sent in {fmt(send_wall, ' s', 2)}: {fmt(stored_per_s)} msgs/s"),
        ("catch-up", f"{fetched:,} messages in {fmt(catch_wall, ' s', 2)}: {fmt(catch_per_s)} msgs/s"),
        ("catch-up per receiver p50/p99", f"{fmt(per_receiver['p50_ms'])} / {fmt(per_receiver['p99_ms'])} ms"),
        ("server CPU (store / catch-up)", f"{fmt(results['server_cpu_store_pct'], '%')} / "
                                          f"{fmt(results['server_cpu_catchup_pct'], '%')} of one core"),
        ("generators CPU (store / catch-up)", f"{fmt(results['generator_cpu_store_pct'], '%')} / "
                                              f"{fmt(results['generator_cpu_catchup_pct'], '%')}"),
        ("missing / gaps", f"{missing} / {gaps}"),
        ("correct", "yes" if correct else f"NO: missing {missing}, gaps {gaps}, errors {errors}"),
    ]  # fmt: skip
    return results, rows


SCENARIOS = {
    "connections": run_connections,
    "p2p": run_p2p,
    "group": run_group,
    "offline": run_offline,
}
