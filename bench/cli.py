"""``coffeechat-bench``: load-test a CoffeeChat node and print what it sustains.

    coffeechat-bench p2p --pairs 500 --duration 20            # closed loop: delivered msgs/s
    coffeechat-bench p2p --pairs 500 --rate 2000              # open loop: latency at 2,000 msgs/s
    coffeechat-bench p2p --pairs 500 --transport ws           # the same over WebSocket (cim.v1)
    coffeechat-bench connections --connections 19000 --generators 2 --hold 60
    coffeechat-bench connections -n 100000 --servers 6 --source-ips 8 --hold 60   # a cluster of 6 nodes
    coffeechat-bench offline --pairs 50 --messages 20000
    coffeechat-bench group --groups 5 --members 200           # fan-out: deliveries/s (20 senders per group)
    coffeechat-bench p2p --servers 2 --pairs 500              # 2 nodes: every message crosses (Redis pub/sub)
    coffeechat-bench fuzz --frames 1000000                    # random and mutated frames: crashes, hangs, RSS
    coffeechat-bench room --members 10000 --senders 50 --duration 20 [--nodes 2]   # one chat room
    coffeechat-bench calls --concurrent 1000 --duration 20    # call set-ups: invite -> 200 OK

By default it starts its own server (``twistd -n coffeechat`` with a temporary data dir and a
generated config, pinned to the first CPU, generators on the others); ``--target``, ``--http``
and ``--admin-token`` aim it at a running one instead.  ``connections``, ``p2p`` and ``group`` take
``--servers N``: N nodes as one cluster on a shared PostgreSQL and Redis (``--dsn``/``--redis``, or
throwaway ones it starts: see :mod:`.cluster`); ``--placement`` says which node each end uses.
Every run is bounded (``--duration``, ``--max-messages``, timeouts) and whatever it started is
stopped however the run ends (Ctrl-C and SIGTERM included).
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import fuzz, live, receiver
from .cluster import Cluster, mask_dsn, mask_url
from .pool import GeneratorError
from .report import machine, print_table, write_json
from .scenarios import GROUP_PLACEMENTS, P2P_PLACEMENTS, group_overrides
from .scenarios import SCENARIOS as _SCENARIOS
from .server import ManagedServer, ServerError, Target, available_cpus

SCENARIOS = {**_SCENARIOS, **live.SCENARIOS, "fuzz": fuzz.run_fuzz}


def _default_generators() -> int:
    return max(1, len(available_cpus()) - 1)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("run bounds")
    g.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    g.add_argument("--warmup", type=float, default=2.0, help="seconds before the window, not counted (default 2)")
    g.add_argument("--drain", type=float, default=10.0, help="seconds to wait for in-flight messages at the end")
    g.add_argument("--max-messages", type=int, default=5_000_000, help="stop sending after this many messages")
    g.add_argument("--connect-timeout", type=float, default=10.0, help="seconds per connect (and WebSocket upgrade)")
    g.add_argument("--login-timeout", type=float, default=30.0, help="seconds per login or request")
    g = common.add_argument_group("generators")
    g.add_argument(
        "--generators", type=int, default=_default_generators(), help="generator processes (default: CPUs - 1)"
    )
    g.add_argument("--concurrency", type=int, default=256, help="connects/logins in flight per generator")
    g.add_argument("--size", type=int, default=64, help="message text size in bytes (default 64)")
    g.add_argument(
        "--transport",
        choices=("tcp", "ws"),
        default="tcp",
        help="CIM over TCP (default) or over WebSocket, binary subprotocol cim.v1",
    )
    g.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0 and generators to the others")
    g = common.add_argument_group("server")
    g.add_argument("--server-config", type=Path, help="extra TOML merged over the generated server config")
    g.add_argument("--target", help="HOST:CIMPORT of a running server instead of starting one")
    g.add_argument("--http", help="its HTTP base URL (with --target), e.g. http://127.0.0.1:18080")
    g.add_argument("--admin-token", help="its http.admin_token (with --target)")
    g.add_argument("--server-pid", type=int, help="its pid (with --target), for RSS and CPU figures")
    g.add_argument("--ws", metavar="HOST:PORT[/PATH]", help="its WebSocket listener (with --target and --transport ws)")
    g = common.add_argument_group("output")
    g.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE ('-' for stdout)")

    parser = argparse.ArgumentParser(
        prog="coffeechat-bench",
        description="Load benchmark of a CoffeeChat node (CIM v1 over TCP or WebSocket).",
        epilog="Use 'coffeechat-bench SCENARIO --help' for the options of a scenario; "
        "'--scenario NAME' works as well as the subcommand.",
    )
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")

    p = sub.add_parser("connections", parents=[common], help="idle authenticated connections: RSS, login rate, CPU")
    p.add_argument(
        "--connections", "-n", type=int, default=1000, help="connections (capped at 19,000 per server process)"
    )
    p.add_argument("--heartbeat", type=float, default=30.0, help="seconds between heartbeats per connection")
    p.add_argument("--hold", type=float, help="seconds to hold them idle (default: --duration)")
    p.add_argument("--password-logins", type=int, default=0, help="also time this many password logins (scrypt)")
    p.add_argument(
        "--source-ips",
        type=int,
        default=0,
        help="connect from this many loopback addresses 127.0.0.2... (one address's ports run short past ~14k)",
    )
    _cluster_options(p, "connections go round-robin to them")

    p = sub.add_parser("p2p", parents=[common], help="1:1 messages: saturation (closed loop) or latency (--rate)")
    p.add_argument("--pairs", type=int, default=500, help="sender/receiver pairs (default 500)")
    p.add_argument("--rate", type=float, help="open loop: total offered msgs/s (default: closed loop)")
    g = _cluster_options(p, "where each pair's ends log in: --placement")
    g.add_argument(
        "--placement",
        choices=P2P_PLACEMENTS,
        help="with --servers N > 1: 'cross' (default) puts every sender on node 1 and the receivers on the "
        "other nodes, so every message crosses nodes; 'spread' puts pair i's sender on node i mod N and its "
        "receiver on the next node (every message crosses, every node sends and receives); 'same' puts both "
        "ends of pair i on node i mod N (no message crosses)",
    )

    p = sub.add_parser("group", parents=[common], help="group fan-out: deliveries/s, latency to the last member")
    p.add_argument("--groups", type=int, default=5, help="groups (default 5), each with its own members")
    p.add_argument(
        "--members",
        type=int,
        default=200,
        help="members per group, creator included (default 200, the server's default limit; more raises it)",
    )
    p.add_argument(
        "--senders",
        type=int,
        default=20,
        help="members sending in each group, each with --window messages in flight (default 20: with "
        "several messages in flight a reactor turn sends each member several pushes at once)",
    )
    p.add_argument("--window", type=int, default=1, help="messages in flight per sender (default 1)")
    g = _cluster_options(p, "members are placed by --placement")
    g.add_argument(
        "--placement",
        choices=GROUP_PLACEMENTS,
        help="with --servers N > 1: 'spread' (default) deals the members of every group round-robin over the "
        "nodes, so a message reaches most members through other nodes; 'same' puts all of group g's members on "
        "node g mod N (no push crosses)",
    )

    p = sub.add_parser("offline", parents=[common], help="messages to offline users, then their catch-up")
    p.add_argument("--pairs", type=int, default=50, help="sender/offline-receiver pairs (default 50)")
    p.add_argument("--messages", "-m", type=int, default=10_000, help="messages in all (default 10,000)")
    p.add_argument("--window", type=int, default=8, help="messages in flight per sender (default 8)")
    p.add_argument("--page", type=int, default=100, help="history page size (the server caps it, 100 by default)")

    live.add_arguments(sub, common)
    fuzz.add_arguments(sub, common)
    receiver.add_arguments(sub)
    return parser


def _cluster_options(p: argparse.ArgumentParser, spread: str) -> argparse._ArgumentGroup:
    g = p.add_argument_group("cluster (several server processes)")
    g.add_argument(
        "--servers",
        type=int,
        default=1,
        help="server processes (default 1: one node on SQLite). N > 1 starts N nodes as one cluster sharing "
        f"PostgreSQL and Redis; {spread}",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes per server ([server] workers, docs/workers.md): N > 1 runs one supervisor with "
        "N workers sharing its ports, on PostgreSQL and Redis; nothing is pinned, CPU is summed over the workers",
    )
    g.add_argument("--dsn", help="PostgreSQL of the cluster (libpq DSN or URI); default: start a throwaway one")
    g.add_argument("--redis", metavar="URL", help="Redis of the cluster (redis://host:port/db); default: start one")
    return g


def _hoist_scenario(argv: list[str]) -> list[str]:
    """Accept ``--scenario NAME`` anywhere by turning it into the subcommand."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--scenario" and i + 1 < len(out):
            name = out[i + 1]
            del out[i : i + 2]
            return [name, *out]
        if arg.startswith("--scenario="):
            del out[i]
            return [arg.split("=", 1)[1], *out]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(_hoist_scenario(sys.argv[1:] if argv is None else argv))
    if args.scenario == "receiver":
        return args
    if args.target and not (args.http and args.admin_token):
        parser.error("--target needs --http and --admin-token (users are created through the admin API)")
    for name in ("duration", "warmup", "drain", "connect_timeout", "login_timeout"):
        if getattr(args, name) < 0 or (name == "duration" and args.duration <= 0):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.generators < 1 or args.concurrency < 1 or args.max_messages < 1:
        parser.error("--generators, --concurrency and --max-messages must be at least 1")
    if getattr(args, "pairs", 1) < 1 or getattr(args, "connections", 1) < 1:
        parser.error("--pairs and --connections must be at least 1")
    if getattr(args, "rate", None) is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if getattr(args, "heartbeat", 1) <= 0:
        parser.error("--heartbeat must be positive")
    if args.scenario == "group" and (args.groups < 1 or args.members < 2 or args.senders < 1 or args.window < 1):
        parser.error("group: --groups, --senders and --window must be at least 1, --members at least 2")
    live.validate(args, parser)
    if args.ws and not args.target:
        parser.error("--ws goes with --target (a server the benchmark starts has its WebSocket listener)")
    if getattr(args, "servers", 1) < 1:
        parser.error("--servers must be at least 1")
    if getattr(args, "workers", 1) < 1:
        parser.error("--workers must be at least 1")
    if getattr(args, "workers", 1) > 1 and args.servers > 1:
        parser.error("--workers goes with one server (--servers 1): each worker is a node already")
    if is_cluster(args) and args.target:
        parser.error("--servers, --dsn and --redis start nodes of their own: not with --target")
    if args.scenario in ("p2p", "group"):
        servers = args.servers
        if args.placement is None:
            args.placement = "same" if servers < 2 else ("cross" if args.scenario == "p2p" else "spread")
        elif args.placement != "same" and servers < 2:
            parser.error(f"--placement {args.placement} needs --servers 2 or more (one node: every end on it)")
    return args


def is_cluster(args: argparse.Namespace) -> bool:
    """Several server processes, or one on PostgreSQL and Redis (``--dsn``/``--redis``, or with
    ``--workers``)."""
    return (
        getattr(args, "servers", 1) > 1
        or getattr(args, "workers", 1) > 1
        or bool(getattr(args, "dsn", None) or getattr(args, "redis", None))
    )


def has_workers(args: argparse.Namespace) -> bool:
    return getattr(args, "workers", 1) > 1


def _external_target(args: argparse.Namespace) -> Target:
    host, _, port = args.target.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit("coffeechat-bench: --target must be HOST:PORT")
    ws_port, ws_path = None, "/"
    if args.ws:
        where, slash, path = args.ws.removeprefix("ws://").partition("/")
        ws_host, _, ws_port_text = where.rpartition(":")
        if ws_host != host or not ws_port_text.isdigit():
            raise SystemExit("coffeechat-bench: --ws must be HOST:PORT[/PATH] on the --target host")
        ws_port, ws_path = int(ws_port_text), slash + path or "/"
    return Target(host, int(port), args.http, args.admin_token, args.server_pid, False, {}, None, ws_port, ws_path)


def server_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """What a scenario needs changed in the config of the server the benchmark starts."""
    if args.scenario == "group":
        return group_overrides(args.members)
    if args.scenario == "room":
        return live.room_overrides(args.members)
    if args.scenario == "calls":
        return live.calls_overrides()
    return {}


def _cpu_plan(args: argparse.Namespace) -> tuple[list[int] | None, list[int] | None]:
    """Server on the first CPU, generators on the others (when there are at least two).

    A cluster's nodes take the CPUs in turn (node i on CPU i mod CPUs): they all work at once
    during a login storm, and on one CPU they would queue behind each other.  The generators get
    the CPUs no node has when there are such.  Else, for ``connections``, they too take every
    CPU in turn, starting with the second (generator i on CPU i+1 mod CPUs); for the message
    scenarios (``p2p``, ``group``) they are not pinned: the nodes' loads differ (the sending
    node stores, the receiving one pushes), and a generator pinned beside one of them would
    take that node's core while the other had room.  PostgreSQL and Redis are not pinned.  The
    first list is only the single server's."""
    cpus = available_cpus()
    if args.no_pin or len(cpus) < 2 or has_workers(args):
        return None, None  # workers: the kernel places them (a taskset would put all on one core)
    if is_cluster(args):
        if args.servers < len(cpus):
            return None, cpus[args.servers :]
        if args.scenario != "connections":
            return None, None
        return None, cpus[1:] + cpus[:1]
    return cpus[:1], cpus[1:]


def _node_cpus(args: argparse.Namespace, i: int) -> list[int] | None:
    cpus = available_cpus()
    if args.no_pin or len(cpus) < 2 or has_workers(args):
        return None
    return [cpus[i % len(cpus)]]


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if params.get("admin_token"):
        params["admin_token"] = "***"
    return params


def _masked(config: dict[str, Any]) -> dict[str, Any]:
    """The server config for the JSON, without its (throwaway) admin token."""
    http = dict(config.get("http", {}))
    if http.get("admin_token"):
        http["admin_token"] = "***"
    out = {**config, "http": http}
    if config.get("storage", {}).get("dsn"):
        out["storage"] = {**config["storage"], "dsn": mask_dsn(config["storage"]["dsn"])}
    if config.get("presence", {}).get("redis"):
        out["presence"] = {**config["presence"], "redis": mask_url(config["presence"]["redis"])}
    return out


def _sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends a run as Ctrl-C does: everything it started is stopped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one scenario; exit status 0 when its correctness checks passed, 1 when not, 2 on failure."""
    args = parse_args(argv)
    if args.scenario == "receiver":
        return receiver.run(args)
    server_cpus, generator_cpus = _cpu_plan(args)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    server: ManagedServer | None = None
    cluster: Cluster | None = None
    results: dict[str, Any] | None = None
    rows: list[tuple[str, str]] = []
    failure: str | None = None
    t0 = time.monotonic()
    previous_sigterm = signal.signal(signal.SIGTERM, _sigterm)
    try:
        if args.target:
            target = _external_target(args)
            results, rows = SCENARIOS[args.scenario](args, target, generator_cpus)
        elif is_cluster(args):
            cluster = Cluster(
                args.servers,
                args.server_config,
                lambda i: _node_cpus(args, i),
                server_overrides(args),
                args.dsn,
                args.redis,
                workers=getattr(args, "workers", 1),
            )
            target = cluster.start()[0]
            if has_workers(args):  # one server whose workers share its ports: measured as one server
                results, rows = SCENARIOS[args.scenario](args, target, generator_cpus)
            else:
                results, rows = SCENARIOS[args.scenario](args, target, generator_cpus, cluster)
        else:
            server = ManagedServer(args.server_config, server_cpus, server_overrides(args))
            target = server.start()
            results, rows = SCENARIOS[args.scenario](args, target, generator_cpus)
    except KeyboardInterrupt:
        failure = "interrupted"
    except (ServerError, GeneratorError, OSError, ValueError) as e:
        failure = f"{type(e).__name__}: {e}"
    finally:
        server_log = ""
        exit_code = None
        try:
            if server is not None:
                server_log = server.log_text()
                exit_code = server.stop()
            if cluster is not None:
                server_log = cluster.log_text()
                exit_code = cluster.stop()
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
    if cluster is not None:
        first = cluster.nodes[0].target if cluster.nodes else None
        target_info = {
            "managed": True,
            "pid": first.pid if first else None,
            "pinned_cpus": first.cpus if first else None,
            "config": _masked(first.config) if first else None,
            "exit_code": exit_code,
            "log_tracebacks": server_log.count("Traceback"),
            "cluster": cluster.describe(),
        }
    elif server is not None:
        target_info: dict[str, Any] = {
            "managed": True,
            "pid": server.target.pid if server.target else None,
            "pinned_cpus": server_cpus,
            "config": _masked(server.target.config) if server.target else None,
            "exit_code": exit_code,
            "log_tracebacks": server_log.count("Traceback"),
        }
    else:
        target_info = {"managed": False, "target": args.target, "http": args.http, "pid": args.server_pid}
    document = {
        "benchmark": "coffeechat-bench",
        "scenario": args.scenario,
        "started_at": started,
        "elapsed_s": round(time.monotonic() - t0, 2),
        "command": ["coffeechat-bench", *(sys.argv[1:] if argv is None else argv)],
        "machine": machine(),
        "server": target_info,
        "generators": {"processes": (results or {}).get("generators"), "pinned_cpus": generator_cpus},
        "parameters": _parameters(args),
        "transport": args.transport,
        "results": results,
        "error": failure,
    }
    if args.json and args.json != "-":
        write_json(document, args.json)
    if results is not None:
        m = document["machine"]
        where = f"server CPU(s) {server_cpus or 'any'}"
        if cluster is not None:
            pinned = any(node.cpus for node in cluster.nodes)
            where = f"{args.servers} server(s), node i on CPU {'i mod ' + str(m['nproc']) if pinned else 'any'}"
            if has_workers(args):
                where = f"1 server with {args.workers} workers (PostgreSQL, Redis), CPUs any"
        title = (
            f"coffeechat-bench {args.scenario} - {m['nproc']} CPU(s) {m['cpu_model']}, Python {m['python']}; "
            f"{where}, generators CPU(s) {generator_cpus or 'any'}"
        )
        if target_info.get("log_tracebacks"):
            rows.append(("server log", f"{target_info['log_tracebacks']} traceback(s) in the server log"))
        print_table(title, rows, sys.stderr if args.json == "-" else sys.stdout)
    if args.json == "-":
        write_json(document, "-")
    if failure is not None:
        print(f"coffeechat-bench: {failure}", file=sys.stderr)
        if (server is not None or cluster is not None) and server_log and failure != "interrupted":
            print("server log (tail):\n" + "\n".join(server_log.splitlines()[-20:]), file=sys.stderr)
        return 130 if failure == "interrupted" else 2
    ok = bool(results and results.get("correct")) and not target_info.get("log_tracebacks")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
