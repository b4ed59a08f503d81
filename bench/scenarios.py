"""The scenarios, as the parent process runs them: users, generator phases, server figures.

Each ``run_*`` returns ``(results, rows)``: the JSON-ready figures and the table rows.  They are
bounded by ``args.duration`` (and friends) and by timeouts on every phase; the caller owns the
server and always stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import string
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

from coffeechat.errors import ErrorCode

from . import wire
from .cluster import Cluster, ProcessGroup, ServiceError, children, redis_command, redis_info
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
    per_cpu_busy_seconds,
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
    """CPU and RSS of the server process between two instants (nothing when its pid is unknown).
    A server with workers (``[server] workers``) is its supervisor and the workers: CPU, RSS and
    descriptors are summed over them, and each process's main thread is a reactor."""

    def __init__(self, target: Target) -> None:
        self.pid = target.pid
        self.tree = str((target.config.get("server") or {}).get("workers", 1)) != "1"
        self._mains: set[int] = {self.pid} if self.pid else set()

    def pids(self) -> list[int]:
        if not self.pid:
            return []
        if not self.tree:
            return [self.pid]
        return [self.pid, *children(self.pid)]

    def _sum(self, measure: Callable[[int], Any]) -> Any:
        values = [measure(pid) for pid in self.pids()]
        return None if not values or values[0] is None else sum(v for v in values if v is not None)

    def rss(self) -> int | None:
        return self._sum(rss_kib)

    def cpu(self) -> float | None:
        return self._sum(cpu_seconds)

    def fds(self) -> int | None:
        return self._sum(open_fds)

    def threads(self) -> dict[int, float] | None:
        if not self.pid:
            return None
        merged: dict[int, float] = {}
        for pid in self.pids():
            self._mains.add(pid)
            merged.update(thread_cpu_seconds(pid) or {})
        return merged or None

    def split(self, before: dict[int, float] | None, after: dict[int, float] | None, wall: float) -> dict | None:
        """% of one core used by the reactor (the main thread) and by all other threads (the
        SQLite writer, readers) between two :meth:`threads` samples: who saturates first."""
        if not before or not after or wall <= 0:
            return None
        mains = self._mains
        main = sum(v - before.get(tid, 0.0) for tid, v in after.items() if tid in mains)
        rest = sum(v - before.get(tid, 0.0) for tid, v in after.items() if tid not in mains)
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


def fmt_threads(split: dict | None, others: str = "SQLite writer + readers") -> str:
    if not split:
        return "-"
    reactor, rest = fmt(split["reactor_thread_pct"], "%"), fmt(split["other_threads_pct"], "%")
    return f"reactor (main thread) {reactor}, {others} {rest}"


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


P2P_PLACEMENTS = ("cross", "same", "spread")
GROUP_PLACEMENTS = ("spread", "same")


def p2p_nodes(placement: str, pairs: int, nodes: int) -> list[tuple[int, int]]:
    """(sender's node, receiver's node) of each pair, as node indexes.

    ``cross``: every sender on node 0, the receivers round-robin over the others (every message
    crosses; node 0 does the storing and acking, the others the pushing).  ``spread``: pair i's
    sender on node i mod N, its receiver on the next node (every message crosses, every node both
    sends and receives).  ``same``: both ends of pair i on node i mod N (no message crosses)."""
    if nodes < 2 or placement == "same":
        return [(i % nodes, i % nodes) for i in range(pairs)]
    if placement == "cross":
        return [(0, 1 + i % (nodes - 1)) for i in range(pairs)]
    if placement == "spread":
        return [(i % nodes, (i + 1) % nodes) for i in range(pairs)]
    raise ValueError(f"unknown p2p placement {placement!r}")


def group_nodes(placement: str, groups: int, members: int, nodes: int) -> list[list[int]]:
    """The node index of each member of each group.  ``spread``: all members dealt round-robin
    over the nodes (user u of the run on node u mod N), so about (N-1)/N of every group's
    deliveries go through another node.  ``same``: group g wholly on node g mod N."""
    if nodes < 2 or placement == "same":
        return [[g % nodes] * members for g in range(groups)]
    if placement == "spread":
        return [[(g * members + j) % nodes for j in range(members)] for g in range(groups)]
    raise ValueError(f"unknown group placement {placement!r}")


class ClusterWindow:
    """The figures of a cluster's processes between two instants: each node's CPU (in total and
    by thread), PostgreSQL's and Redis's CPU, and what Redis processed (commands, bytes)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.probes = [ServerProbe(t) for t in cluster.targets]
        self.services = cluster_services(cluster)
        self.postgres = PostgresCounters(cluster.dsn)
        self.samples: list[dict[str, Any]] = []

    def sample(self) -> None:
        """At a window's edge (the start, then the end: the second call closes what it opened)."""
        pg = self.postgres.sample()
        if self.samples:
            self.postgres.close()
        self.samples.append(
            {
                "cpu": [p.cpu() for p in self.probes],
                "threads": [p.threads() for p in self.probes],
                "rss": [p.rss() for p in self.probes],
                "services": sample_services(self.services),
                "redis": redis_counters(self.cluster.redis),
                "cores": per_cpu_busy_seconds(),
                "postgres": pg,
            }
        )

    def figures(self, wall: float, ops: int, per: str) -> dict[str, Any]:
        """Per node and in total: % of one core and CPU µs per ``per`` (message, delivery)."""
        a, b = self.samples[0], self.samples[-1]
        nodes = []
        for j, probe in enumerate(self.probes):
            cpu_s = delta(a["cpu"][j], b["cpu"][j])
            nodes.append(
                {
                    "node_name": self.cluster.node_name(j),
                    "pid": probe.pid,
                    "pinned_cpus": self.cluster.targets[j].cpus,
                    "cpu_s": cpu_s,
                    "cpu_pct": cpu_share(cpu_s, wall),
                    f"cpu_us_per_{per}": per_op_us(cpu_s, ops),
                    "cpu_by_thread": probe.split(a["threads"][j], b["threads"][j], wall),
                    "rss_kib": {"window_start": a["rss"][j], "window_end": b["rss"][j]},
                }
            )
        services: dict[str, dict[str, Any]] = {}
        for name in self.services:
            cpu_s = delta(a["services"][name]["cpu_s"], b["services"][name]["cpu_s"])
            services[name] = {
                "processes": b["services"][name]["processes"],
                "cpu_s": cpu_s,
                "cpu_pct": cpu_share(cpu_s, wall),
                f"cpu_us_per_{per}": per_op_us(cpu_s, ops),
                "rss_kib": b["services"][name]["rss_kib"],
                "pss_kib": b["services"][name]["pss_kib"],
            }

        def counted(target: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
            for key, value in before.items():
                if key == "calls":
                    continue
                d = delta(value, after.get(key))
                target[key] = d
                target[f"{key}_per_{per}"] = round(d / ops, 3) if d is not None and ops > 0 else None

        redis = services.get("redis")
        if redis is not None:
            counted(redis, a["redis"], b["redis"])
            calls = {
                name: n - a["redis"]["calls"].get(name, 0)
                for name, n in b["redis"]["calls"].items()
                if n - a["redis"]["calls"].get(name, 0) > 0 and name != "info"
            }
            redis["calls"] = calls
            redis[f"calls_per_{per}"] = {k: round(v / ops, 3) for k, v in calls.items()} if ops > 0 else None
        postgres = services.get("postgres")
        if postgres is not None:
            counted(postgres, a["postgres"], b["postgres"])
        cores = None
        if a["cores"] and b["cores"] and wall > 0:
            # every process on the machine (ours and others'): is one core full while the other is not?
            cores = {f"cpu{c}": round(100 * (b["cores"][c] - v) / wall, 1) for c, v in a["cores"].items()}
        node_cpu_s = total_or_none([n["cpu_s"] for n in nodes])
        all_cpu_s = total_or_none([node_cpu_s, *(v["cpu_s"] for v in services.values())])
        return {
            "nodes": nodes,
            "services": services,
            "nodes_cpu_s": node_cpu_s,
            "nodes_cpu_pct": cpu_share(node_cpu_s, wall),
            f"nodes_cpu_us_per_{per}": per_op_us(node_cpu_s, ops),
            # the nodes, PostgreSQL and Redis: what the cluster as a whole spends
            f"cluster_cpu_us_per_{per}": per_op_us(all_cpu_s, ops),
            "core_busy_pct": cores,
        }

    def service_cpu_s(self) -> list[float | None]:
        a, b = self.samples[0], self.samples[-1]
        return [delta(a["services"][name]["cpu_s"], b["services"][name]["cpu_s"]) for name in self.services]


def redis_counters(url: str | None) -> dict[str, Any]:
    """Redis's own counters: commands processed, bytes in and out (INFO stats), and the calls of
    each command (INFO commandstats: which commands the cross-node delivery costs)."""
    keys = {
        "commands": "total_commands_processed",
        "net_input_bytes": "total_net_input_bytes",
        "net_output_bytes": "total_net_output_bytes",
    }
    info: dict[str, str] = {}
    calls: dict[str, int] = {}
    if url:
        try:
            info = redis_info(url)
            text = redis_command(url, "INFO", "commandstats") or b""
            for line in text.decode(errors="replace").splitlines():
                name, sep, rest = line.partition(":")
                if sep and name.startswith("cmdstat_"):
                    fields = dict(kv.split("=", 1) for kv in rest.strip().split(",") if "=" in kv)
                    calls[name.removeprefix("cmdstat_")] = int(fields.get("calls", 0))
        except (OSError, ServiceError, ValueError):
            info = {}
    out: dict[str, Any] = {}
    for name, key in keys.items():
        try:
            out[name] = int(info[key])
        except (KeyError, ValueError):
            out[name] = None
    out["calls"] = calls
    return out


class PostgresCounters:
    """PostgreSQL's own counters over a window: transactions committed in the cluster's database
    and WAL writes and flushes (``pg_stat_wal``, PostgreSQL 14+).  Backends publish their counts
    at most once a second, so a window's figures are right to about a second's worth."""

    QUERY = (
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), "
        "wal_write, wal_sync, wal_bytes FROM pg_stat_wal"
    )

    def __init__(self, dsn: str | None) -> None:
        self.conn = None
        if dsn:
            try:
                import psycopg

                self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
            except Exception:
                self.conn = None

    def sample(self) -> dict[str, int | None]:
        names = ("commits", "wal_writes", "wal_syncs", "wal_bytes")
        if self.conn is None:
            return dict.fromkeys(names)
        try:
            row = self.conn.execute(self.QUERY).fetchone()
        except Exception:
            return dict.fromkeys(names)
        return {name: None if v is None else int(v) for name, v in zip(names, row, strict=True)}

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def check_placement(
    cluster: Cluster, expected: list[int], logged_by_node: list[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """After the logins: the nodes' leases, and for each node the devices the generators logged
    in on it, the devices it reports itself (``GET /health``, which also names it) and the ones
    it registered in Redis must all be what the placement asked for.  (figures, mismatches)"""
    n = len(cluster.targets)
    names = [cluster.node_name(j) for j in range(n)]
    live = cluster.live_nodes()
    health_answers = [health_of(t) for t in cluster.targets]
    health = [a.get("devices") for a in health_answers]
    presence = cluster.presence_devices()
    mismatches: dict[str, Any] = {}
    if live != names:
        mismatches["live nodes in Redis"] = live
    if logged_by_node != expected:
        mismatches["logged in by node"] = logged_by_node
    if health != expected:
        mismatches["GET /health devices by node"] = health
    if [a.get("node", names[j]) for j, a in enumerate(health_answers)] != names:
        mismatches["GET /health node names"] = [a.get("node") for a in health_answers]
    if presence != expected:
        mismatches["Redis devices by node"] = presence
    figures = {
        "live_nodes": live,
        "devices_by_node": {"expected": expected, "logged_in": logged_by_node, "health": health, "redis": presence},
    }
    return figures, mismatches


def cluster_rows(
    args: argparse.Namespace, figures: dict[str, Any], per: str, placement_text: str, roles: list[str]
) -> Rows:
    """The table rows of a cluster run: placement, each node, PostgreSQL and Redis."""
    rows: Rows = [
        ("", ""),
        ("cluster", f"{len(figures['nodes'])} nodes on PostgreSQL + Redis, placement '{args.placement}': "
                    f"{placement_text}"),
        (f"nodes CPU (sum), per {per}",
         f"{fmt(figures['nodes_cpu_pct'], '% of one core')}, {fmt(figures[f'nodes_cpu_us_per_{per}'], ' us')}"),
        (f"cluster CPU per {per}", f"{fmt(figures[f'cluster_cpu_us_per_{per}'], ' us')} (nodes + PostgreSQL + Redis)"),
        ("cores busy (everything on them)",
         ", ".join(f"{c} {fmt(v, '%')}" for c, v in (figures["core_busy_pct"] or {}).items()) or "-"),
    ]  # fmt: skip
    for node, role in zip(figures["nodes"], roles, strict=True):
        rows.append(
            (
                f"  {node['node_name']} (pid {node['pid']}, CPU {node['pinned_cpus'] or 'any'})",
                f"{role}: {fmt(node['cpu_pct'], '%')}, {fmt(node[f'cpu_us_per_{per}'], ' us')} per {per}; "
                f"{fmt_threads(node['cpu_by_thread'], 'storage threads')}",
            )
        )
    for name, service in figures["services"].items():
        extra = ""
        if name == "redis":
            calls = service.get(f"calls_per_{per}") or {}
            extra = (
                f"; {fmt(service.get(f'commands_per_{per}'), digits=2)} commands "
                f"({', '.join(f'{k} {v:.2f}' for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:4])}) and "
                f"{fmt(service.get(f'net_input_bytes_per_{per}'), ' B', 0)} in / "
                f"{fmt(service.get(f'net_output_bytes_per_{per}'), ' B', 0)} out per {per}"
            )
        elif name == "postgres":
            extra = (
                f"; about {fmt(service.get(f'commits_per_{per}'), digits=3)} commits and "
                f"{fmt(service.get(f'wal_syncs_per_{per}'), digits=3)} WAL flushes per {per}"
            )
        rows.append(
            (
                f"  {name}",
                f"{fmt(service['cpu_pct'], '%')}, {fmt(service[f'cpu_us_per_{per}'], ' us')} per {per} "
                f"({service['processes']} process(es)){extra}",
            )
        )
    return rows


def run_p2p(
    args: argparse.Namespace, target: Target, cpus: list[int] | None, cluster: Cluster | None = None
) -> tuple[dict, Rows]:
    """K pairs, each sender with one message in flight (closed loop) or paced at ``--rate`` in
    total (open loop); a message is complete when the sender has its ack and the receiver its push.
    With a ``cluster`` each end logs in on the node ``--placement`` gives it (:func:`p2p_nodes`);
    CPU is taken per node, and for PostgreSQL and Redis."""
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
    n_nodes = len(cluster.targets) if cluster is not None else 1
    placement = p2p_nodes(getattr(args, "placement", None) or "same", pairs_n, n_nodes)
    node_kwargs: list[dict[str, Any]] = [{} for _ in shares]
    if cluster is not None:
        ports = [endpoint(args, t)["port"] for t in cluster.targets]
        node_shares = split(placement, k)
        node_kwargs = [{"nodes": [list(p) for p in share], "ports": ports} for share in node_shares]
        expected = [sum((s == j) + (r == j) for s, r in placement) for j in range(n_nodes)]
        cwin = ClusterWindow(cluster)
    with Generators(k, cpus, lifetime) as gens:
        setup = gens.call(
            "p2p_setup",
            [
                {
                    **endpoint(args, target),
                    "pairs": share,
                    "concurrency": args.concurrency,
                    "timeout": args.connect_timeout,
                    **extra,
                }
                for share, extra in zip(shares, node_kwargs, strict=True)
            ],
            setup_timeout,
        )
        if cluster is not None:
            logged_by_node = [sum(r["logged_in_by_node"][j] for r in setup) for j in range(n_nodes)]
            placed, placement_mismatches = check_placement(cluster, expected, logged_by_node)
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
        if cluster is not None:
            cwin.sample()
        cpu0, rss0, threads0 = probe.cpu(), probe.rss(), probe.threads()
        window = Window()
        sleep_until(win_end)
        cpu1, rss1, threads1 = probe.cpu(), probe.rss(), probe.threads()
        window.stop()
        if cluster is not None:
            cwin.sample()
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
    server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    gen_cpu_s = sum(r["cpu"] for r in done)
    cluster_figures: dict[str, Any] | None = None
    if cluster is not None:
        cluster_figures = cwin.figures(args.duration, total["completed_in_window"], "msg")
        server_cpu_s = cluster_figures["nodes_cpu_s"]
        others = window.others(args.duration, server_cpu_s, gen_cpu_s, *cwin.service_cpu_s())
    else:
        others = window.others(args.duration, server_cpu_s, gen_cpu_s)
    server_cpu = cpu_share(server_cpu_s, args.duration)
    gen_cpu = cpu_share(gen_cpu_s, args.duration)
    us_per_msg = per_op_us(server_cpu_s, total["completed_in_window"])
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
    if cluster is not None:
        mismatches.update(placement_mismatches)
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
        "server_cpu_by_thread": probe.split(threads0, threads1, args.duration) if cluster is None else None,
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
    if cluster is not None and cluster_figures is not None:
        crossing = sum(1 for s, r in placement if s != r)
        results.update(
            {
                "servers": n_nodes,
                "placement": args.placement,
                "pairs_crossing_nodes": crossing,
                "pair_nodes": {"senders": [sum(s == j for s, _ in placement) for j in range(n_nodes)],
                               "receivers": [sum(r == j for _, r in placement) for j in range(n_nodes)]},
                **placed,
                **cluster_figures,
            }
        )  # fmt: skip
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
            "server CPU" + (" (all nodes)" if cluster is not None else ""),
            f"{fmt(server_cpu, '% of one core')}, {fmt(us_per_msg, ' us')} per message "
            f"(one full core: {fmt(results['msgs_per_s_at_one_full_core'])} msgs/s)",
        ),
    ]
    if cluster is None:
        rows.append(("server CPU by thread", fmt_threads(results["server_cpu_by_thread"])))
    rows += [
        ("generators CPU", fmt(gen_cpu, "% of one core (sum)")),
        ("other processes' CPU", fmt_others(others)),
        ("sent / acked / delivered", f"{total['sent']:,} / {total['acked']:,} / {total['delivered']:,}"),
        ("server_msg_id gaps", f"{total['gap_pairs']} pair(s)"),
    ]
    if cluster is not None and cluster_figures is not None:
        senders, receivers = results["pair_nodes"]["senders"], results["pair_nodes"]["receivers"]
        text = f"{results['pairs_crossing_nodes']:,} of {pairs_n:,} pairs have their ends on different nodes"
        roles = [f"{senders[j]:,} senders, {receivers[j]:,} receivers" for j in range(n_nodes)]
        rows += cluster_rows(args, cluster_figures, "msg", text, roles)
        rows.append(("devices by node (logged in / health / Redis)",
                     " ; ".join(f"{a} / {fmt(b)} / {fmt(c)}" for a, b, c in zip(
                         placed["devices_by_node"]["logged_in"], placed["devices_by_node"]["health"],
                         placed["devices_by_node"]["redis"], strict=True))))  # fmt: skip
        rows.append(("", ""))
    rows.append(("correct", "yes" if correct else f"NO: {mismatches} {events} {setup_errors}"))
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


def run_group(
    args: argparse.Namespace, target: Target, cpus: list[int] | None, cluster: Cluster | None = None
) -> tuple[dict, Rows]:
    """G groups of M members, one connection per member; each group's first member creates it
    with GROUP_CREATE, its first ``--senders`` members each keep ``--window`` messages in flight
    (closed loop).  A message is complete when its sender has the ack and every other member
    device has the push (and acked it, as clients do): deliveries/s, messages/s and
    send->last-delivery latency, with every delivery checked exactly once per device.  With a
    ``cluster`` the members log in on the nodes ``--placement`` gives them (:func:`group_nodes`)."""
    g_n, m_n = args.groups, args.members
    n_users = g_n * m_n
    n_nodes = len(cluster.targets) if cluster is not None else 1
    if n_users > MAX_CONNECTIONS_PER_SERVER * n_nodes:
        raise ValueError(f"{g_n} groups x {m_n} members is over {MAX_CONNECTIONS_PER_SERVER * n_nodes:,} connections")
    senders = min(args.senders, m_n)
    prefix = run_id()
    users, create_s = create(target, prefix, n_users)
    placement = group_nodes(getattr(args, "placement", None) or "same", g_n, m_n, n_nodes)
    groups = [
        {"index": i, "members": [list(u) for u in users[i * m_n : (i + 1) * m_n]], "senders": senders}
        for i in range(g_n)
    ]
    node_kwargs: dict[str, Any] = {}
    if cluster is not None:
        for g, nodes in zip(groups, placement, strict=True):
            g["nodes"] = nodes
        node_kwargs = {"ports": [endpoint(args, t)["port"] for t in cluster.targets]}
        expected = [sum(nodes.count(j) for nodes in placement) for j in range(n_nodes)]
        cwin = ClusterWindow(cluster)
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
                    **node_kwargs,
                }
                for share in shares
            ],
            setup_timeout + settle,
        )
        if cluster is not None:
            logged_by_node = [sum(r["logged_in_by_node"][j] for r in setup) for j in range(n_nodes)]
            placed, placement_mismatches = check_placement(cluster, expected, logged_by_node)
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
        if cluster is not None:
            cwin.sample()
        cpu0, rss0, threads0 = probe.cpu(), probe.rss(), probe.threads()
        window = Window()
        sleep_until(win_end)
        cpu1, rss1, threads1 = probe.cpu(), probe.rss(), probe.threads()
        window.stop()
        if cluster is not None:
            cwin.sample()
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
    cluster_figures: dict[str, Any] | None = None
    if cluster is not None:
        cluster_figures = cwin.figures(args.duration, total["deliveries_in_window"], "delivery")
        server_cpu_s = cluster_figures["nodes_cpu_s"]
        others = window.others(args.duration, server_cpu_s, gen_cpu_s, *cwin.service_cpu_s())
    else:
        others = window.others(args.duration, server_cpu_s, gen_cpu_s)
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
    if cluster is not None:
        mismatches.update(placement_mismatches)
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
        "server_cpu_by_thread": probe.split(threads0, threads1, args.duration) if cluster is None else None,
        "server_cpu_us_per_delivery": us_per_delivery,
        "deliveries_per_s_at_one_full_core": round(1e6 / us_per_delivery) if us_per_delivery else None,
        "generator_cpu_pct": cpu_share(gen_cpu_s, args.duration),
        "generator_cpu_us_per_delivery": per_op_us(gen_cpu_s, total["deliveries_in_window"]),
        "server_rss_kib": {"window_start": rss0, "window_end": rss1},
        "window": others,
        "mismatches": mismatches,
        "events": events,
        "setup_errors": {**setup_errors, **setup_events},
        "correct": correct,
    }
    if cluster is not None and cluster_figures is not None:
        # receivers of a message on another node than its sender, over all sender slots
        crossing = sum(sum(1 for n in nodes if n != nodes[s]) for nodes in placement for s in range(senders))
        results.update(
            {
                "servers": n_nodes,
                "placement": args.placement,
                "crossing_receivers_share": round(crossing / (g_n * senders * receivers), 3) if receivers else None,
                "members_by_node": expected,
                **placed,
                **cluster_figures,
            }
        )
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
            "server CPU" + (" (all nodes)" if cluster is not None else ""),
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
    ]
    if cluster is not None and cluster_figures is not None:
        rows = [row for row in rows if row[0] != "server CPU by thread"]
        text = (
            f"{fmt(100 * (results['crossing_receivers_share'] or 0), '%', 0)} of the deliveries go to a member on "
            "another node than the sender"
        )
        roles = [f"{expected[j]:,} members" for j in range(n_nodes)]
        rows += cluster_rows(args, cluster_figures, "delivery", text, roles)
        rows.append(("devices by node (logged in / health / Redis)",
                     " ; ".join(f"{a} / {fmt(b)} / {fmt(c)}" for a, b, c in zip(
                         placed["devices_by_node"]["logged_in"], placed["devices_by_node"]["health"],
                         placed["devices_by_node"]["redis"], strict=True))))  # fmt: skip
        rows.append(("", ""))
    rows.append(("correct", "yes" if correct else f"NO: {mismatches} {events} {results['setup_errors']}"))
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
