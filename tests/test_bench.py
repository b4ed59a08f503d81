"""Smoke runs of ``coffeechat-bench``: each scenario, small, through the real CLI against a server it
starts.  They check that the benchmark counts right (every acked message delivered once, no gaps,
no errors, JSON complete), never how fast anything is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(tmp_path: Path, *args: str, json_to_stdout: bool = False) -> tuple[int, dict, str]:
    """Run ``python -m coffeechat.bench.cli ARGS`` (this checkout first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "result.json"
    where = "-" if json_to_stdout else str(out)
    result = subprocess.run(
        [sys.executable, "-m", "coffeechat.bench.cli", *args, "--json", where],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    text = result.stdout + result.stderr
    document = json.loads(result.stdout if json_to_stdout else out.read_text())
    return result.returncode, document, text


def check_document(doc: dict, scenario: str) -> dict:
    """Fields every run reports: the machine, the managed server and its config, no error."""
    assert doc["scenario"] == scenario
    assert doc["error"] is None, doc["error"]
    machine = doc["machine"]
    assert machine["nproc"] >= 1 and machine["cpu_model"] and machine["python"].startswith("3.")
    server = doc["server"]
    assert server["managed"] is True and server["pid"] > 0
    assert server["log_tracebacks"] == 0
    assert server["config"]["limits"]["messages_per_second"] >= 1000
    assert server["config"]["http"]["admin_token"] == "***"  # generated, and not written out
    assert doc["parameters"]["admin_token"] is None
    return doc["results"]


def test_server_config_tables_of_any_depth_are_written_as_toml():
    """--server-config may hold sub-tables and arrays of tables (webhook endpoints, push
    providers): the generated config keeps them."""
    import tomllib

    from coffeechat.bench.server import to_toml

    config = {
        "webhooks": {"endpoints": [{"name": "bench", "url": "http://127.0.0.1:8099/hook", "events": ["*"]}]},
        "push": {"webhook": {"url": "http://127.0.0.1:8099/push", "secret": "whsec_x"}, "ttl": 60},
        "features": {"enabled": ["accounts", "messages"]},
    }
    assert tomllib.loads(to_toml(config)) == config


def test_connections_counts_logins_heartbeats_and_memory(tmp_path):
    code, doc, text = bench(
        tmp_path, "connections", "-n", "20", "--duration", "1", "--heartbeat", "0.3", "--password-logins", "2"
    )
    r = check_document(doc, "connections")
    assert code == 0, text
    assert r["connections"] == r["connected"] == r["logged_in"] == 20
    assert r["heartbeats_sent"] > 0 and r["heartbeats_answered"] == r["heartbeats_sent"]
    assert r["heartbeat_rtt"]["count"] == r["heartbeats_answered"]
    assert r["connections_lost_during_hold"] == 0 and r["errors"] == {} and r["events"] == {}
    assert r["login_latency"]["count"] == 20 and r["logins_per_s"] > 0
    assert isinstance(r["rss_bytes_per_connection"], int)
    assert r["server_rss_kib"]["before"] > 0 and r["server_cpu_hold_pct"] is not None
    assert r["password_logins"]["ok"] == 2
    assert r["correct"] is True
    assert "RSS per connection" in text


def test_connections_are_capped_per_server_process_and_spread_over_generators():
    from coffeechat.bench.cli import parse_args
    from coffeechat.bench.scenarios import cap_connections, generator_count

    assert cap_connections(500) == (500, [])
    n, notes = cap_connections(25_000)
    assert n == 19_000 and "more need more --servers" in notes[0]
    assert cap_connections(100_000, servers=6) == (100_000, [])
    assert cap_connections(120_000, servers=6)[0] == 114_000
    # one generator process stays well under the 20,000 open files of a process
    assert generator_count(parse_args(["connections", "--generators", "1"]), 19_000) >= 2
    assert generator_count(parse_args(["connections", "--generators", "1"]), 100_000) * 19_000 >= 100_000


def test_ephemeral_ports_per_source_and_destination_are_checked_before_connecting():
    import pytest

    from coffeechat.bench.scenarios import check_port_budget

    # 100,000 connections, round-robin over 6 nodes, 7 generators, no source addresses: 16,667 per port
    n, nodes, k = 100_000, 6, 7
    shares = [[i % nodes for i in range(g, n, k)] for g in range(k)]
    ports = [9000 + j for j in range(nodes)]
    counts = check_port_budget(shares, [None] * k, ports, nodes, 28_232)
    assert sum(counts.values()) == n and max(counts.values()) <= 16_667
    with pytest.raises(ValueError, match="--source-ips"):
        check_port_budget(shares, [None] * k, ports[:1] * nodes, nodes, 28_232)  # one port: 100,000
    # 8 source addresses dealt to 7 generators: each (address, port) stays far under the range
    sources = [[f"127.0.0.{2 + a}" for a in range(8) if a % k == g] for g in range(k)]
    counts = check_port_budget(shares, sources, ports, nodes, 28_232)
    assert sum(counts.values()) == n and max(counts.values()) < 2_500


def cluster_binaries_or_skip() -> None:
    """The bench starts PostgreSQL and Redis itself for --servers; without their binaries skip,
    with the reason, unless CI is set (then fail: CI must not go green by skipping)."""
    import pytest

    from coffeechat.bench.cluster import find_pg_bindir, find_redis_server

    missing = []
    if find_pg_bindir() is None:
        missing.append("PostgreSQL server binaries (initdb, postgres; install postgresql or set PG_BINDIR)")
    if find_redis_server() is None:
        missing.append("redis-server (apt-get install redis-server, or set REDIS_SERVER)")
    if missing:
        reason = "not found: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: not skipping)")
        pytest.skip(reason)


def test_connections_over_a_cluster_of_two_server_processes(tmp_path):
    """--servers 2: two nodes sharing a PostgreSQL and a Redis the bench starts itself; the
    connections are spread round-robin, and every node, Redis and the generators agree on the
    counts."""
    cluster_binaries_or_skip()
    code, doc, text = bench(
        tmp_path,
        "connections", "--servers", "2", "-n", "30", "--generators", "2", "--source-ips", "2",
        "--duration", "1", "--heartbeat", "0.3",
    )  # fmt: skip
    r = check_document(doc, "connections")
    assert code == 0, text
    cluster = doc["server"]["cluster"]
    assert [node["node_name"] for node in cluster["nodes"]] == ["bench-1", "bench-2"]
    assert cluster["postgres"]["managed"] is True and cluster["redis"]["managed"] is True
    assert doc["server"]["config"]["storage"]["backend"] == "postgres"
    assert doc["server"]["config"]["presence"]["backend"] == "redis"
    assert r["servers"] == 2 and r["live_nodes"] == ["bench-1", "bench-2"]
    assert r["connections"] == r["connected"] == r["logged_in"] == 30
    assert r["mismatches"] == {} and r["errors"] == {} and r["events"] == {}
    assert r["heartbeats_sent"] > 0 and r["heartbeats_answered"] == r["heartbeats_sent"]
    assert r["connections_lost_during_hold"] == 0
    nodes = r["nodes"]
    assert [n["node_name"] for n in nodes] == ["bench-1", "bench-2"]
    assert len({n["pid"] for n in nodes}) == 2
    for node in nodes:
        # round-robin: 15 each, and the node itself (GET /health) and Redis say so after the hold
        assert node["connections"] == node["connected"] == node["logged_in"] == 15
        assert node["health_devices"] == node["presence_devices"] == 15
        assert node["heartbeats_answered"] == node["heartbeats_sent"] > 0
        assert isinstance(node["rss_bytes_per_connection"], int)
        assert node["rss_kib"]["before"] > 0 and node["server_cpu_hold_pct"] is not None
    assert sum(n["heartbeats_answered"] for n in nodes) == r["heartbeats_answered"]
    for name in ("postgres", "redis"):
        service = r["services"][name]
        assert service["processes"] >= 1 and service["rss_kib_logged_in"] > 0
    assert r["correct"] is True
    assert "bench-2" in text and "postgres" in text


def test_p2p_over_a_cluster_of_two_nodes_every_message_crosses(tmp_path):
    """p2p --servers 2: every sender on node 1, every receiver on node 2 (--placement cross, the
    default), so every message goes from node to node through Redis; each is delivered exactly
    once, each pair's ids are dense, and the nodes and Redis agree on where everyone is."""
    cluster_binaries_or_skip()
    code, doc, text = bench(
        tmp_path, "p2p", "--servers", "2", "--pairs", "4", "--duration", "2", "--warmup", "0.5", "--drain", "5"
    )
    r = check_document(doc, "p2p")
    assert code == 0, text
    assert [node["node_name"] for node in doc["server"]["cluster"]["nodes"]] == ["bench-1", "bench-2"]
    assert doc["server"]["config"]["storage"]["backend"] == "postgres"
    assert r["servers"] == 2 and r["placement"] == "cross" and r["pairs_crossing_nodes"] == 4
    assert r["pair_nodes"] == {"senders": [4, 0], "receivers": [0, 4]}
    assert r["live_nodes"] == ["bench-1", "bench-2"]
    devices = r["devices_by_node"]
    assert devices["expected"] == devices["logged_in"] == devices["health"] == devices["redis"] == [4, 4]
    assert r["mode"] == "closed" and r["pairs"] == 4 and r["logged_in"] == 8
    assert r["sent"] > 0
    assert r["sent"] == r["acked"] == r["delivered"] == r["completed"]
    assert r["gap_pairs"] == 0 and r["missing_ids"] == 0
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert 0 < r["completed_in_window"] <= r["completed"]
    assert r["send_to_delivery"]["count"] > 0
    nodes = r["nodes"]
    assert [n["node_name"] for n in nodes] == ["bench-1", "bench-2"] and len({n["pid"] for n in nodes}) == 2
    for node in nodes:
        assert node["cpu_pct"] is not None and node["cpu_by_thread"] is not None
    # the figures add up: the nodes' sum, and the cluster (nodes + PostgreSQL + Redis) above it
    assert r["server_cpu_us_per_msg"] == r["nodes_cpu_us_per_msg"]
    assert r["cluster_cpu_us_per_msg"] >= r["nodes_cpu_us_per_msg"]
    assert set(r["services"]) == {"postgres", "redis"}
    redis = r["services"]["redis"]
    assert redis["commands"] > 0 and redis["calls"].get("publish", 0) > 0  # cross-node lookups and publishes
    assert set(r["core_busy_pct"]) >= {"cpu0"}
    assert r["correct"] is True
    assert "bench-2" in text and "placement 'cross'" in text


def test_p2p_on_one_server_with_two_workers(tmp_path):
    """p2p --workers 2: one supervisor and two workers on its ports, on a throwaway PostgreSQL and
    Redis; every message delivered once, and the CPU is the workers' (their reactor threads) too."""
    cluster_binaries_or_skip()
    code, doc, text = bench(tmp_path, "p2p", "--workers", "2", "--pairs", "6", "--duration", "2", "--warmup", "0.5")
    r = check_document(doc, "p2p")
    assert code == 0, text
    assert doc["server"]["config"]["server"]["workers"] == 2
    assert doc["server"]["config"]["storage"]["backend"] == "postgres"
    assert doc["server"]["pinned_cpus"] is None and doc["generators"]["pinned_cpus"] is None
    assert r["sent"] > 0 and r["sent"] == r["acked"] == r["delivered"] == r["completed"]
    assert r["gap_pairs"] == 0 and r["missing_ids"] == 0 and r["mismatches"] == {}
    # the supervisor idles: most of the CPU is the workers' main threads (reactors)
    assert r["server_cpu_by_thread"]["reactor_thread_pct"] > 0
    assert r["server_cpu_us_per_msg"] > 0
    assert "2 workers" in text


def test_workers_options():
    import pytest

    from coffeechat.bench.cli import parse_args

    assert parse_args(["p2p", "--workers", "2"]).workers == 2
    with pytest.raises(SystemExit):
        parse_args(["p2p", "--workers", "0"])
    with pytest.raises(SystemExit):
        parse_args(["p2p", "--workers", "2", "--servers", "2"])


def test_cluster_placements():
    import pytest

    from coffeechat.bench.cli import parse_args
    from coffeechat.bench.scenarios import group_nodes, p2p_nodes

    assert p2p_nodes("cross", 4, 2) == [(0, 1)] * 4
    assert p2p_nodes("cross", 4, 3) == [(0, 1), (0, 2), (0, 1), (0, 2)]
    assert p2p_nodes("spread", 3, 2) == [(0, 1), (1, 0), (0, 1)]
    assert p2p_nodes("same", 3, 2) == [(0, 0), (1, 1), (0, 0)]
    assert p2p_nodes("cross", 2, 1) == [(0, 0), (0, 0)]
    assert group_nodes("spread", 2, 3, 2) == [[0, 1, 0], [1, 0, 1]]
    assert group_nodes("same", 3, 2, 2) == [[0, 0], [1, 1], [0, 0]]
    # defaults: one node keeps today's run; several cross (p2p) or spread (group)
    assert parse_args(["p2p"]).placement == "same" and parse_args(["p2p"]).servers == 1
    assert parse_args(["p2p", "--servers", "2"]).placement == "cross"
    assert parse_args(["group", "--servers", "2"]).placement == "spread"
    with pytest.raises(SystemExit):
        parse_args(["p2p", "--placement", "cross"])  # needs --servers 2 or more


def test_p2p_closed_loop_every_acked_message_is_delivered_once(tmp_path):
    code, doc, text = bench(tmp_path, "p2p", "--pairs", "5", "--duration", "2", "--warmup", "0.5")
    r = check_document(doc, "p2p")
    assert code == 0, text
    assert r["mode"] == "closed" and r["pairs"] == 5 and r["logged_in"] == 10
    assert r["sent"] > 0
    assert r["sent"] == r["acked"] == r["delivered"] == r["completed"]
    assert r["gap_pairs"] == 0 and r["missing_ids"] == 0
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert 0 < r["completed_in_window"] <= r["completed"]
    assert r["send_to_delivery"]["count"] > 0 and r["send_to_ack"]["count"] == r["send_to_delivery"]["count"]
    assert r["send_to_delivery"]["p50_ms"] <= r["send_to_delivery"]["p99_ms"] <= r["send_to_delivery"]["max_ms"]
    assert r["delivered_per_s"] > 0 and r["server_cpu_pct"] is not None and r["generator_cpu_pct"] is not None
    threads = r["server_cpu_by_thread"]  # the reactor thread and the others (SQLite writer, readers)
    assert threads["reactor_thread_pct"] >= 0 and threads["other_threads_pct"] >= 0
    assert r["correct"] is True


def test_p2p_open_loop_sends_on_schedule_and_reports_latency(tmp_path):
    code, doc, text = bench(tmp_path, "p2p", "--pairs", "5", "--rate", "50", "--duration", "1.5", "--warmup", "0.5")
    r = check_document(doc, "p2p")
    assert code == 0, text
    assert r["mode"] == "open" and r["offered_rate"] == 50
    # 50 msgs/s over warm-up + window (2 s), paced by the schedule: exactly 100 messages
    assert r["sent"] == r["acked"] == r["delivered"] == 100
    assert r["gap_pairs"] == 0 and r["mismatches"] == {} and r["events"] == {}
    assert r["send_to_delivery"]["count"] == 75  # the ones scheduled inside the 1.5 s window
    assert r["send_lag"]["count"] == 75
    assert r["correct"] is True


def test_p2p_over_websocket_counts_like_tcp(tmp_path):
    code, doc, text = bench(tmp_path, "p2p", "--transport", "ws", "--pairs", "5", "--duration", "2", "--warmup", "0.5")
    r = check_document(doc, "p2p")
    assert code == 0, text
    assert doc["transport"] == r["transport"] == "ws"
    assert doc["server"]["config"]["listen"]["ws"]  # the bench's server listens for WebSocket
    assert r["mode"] == "closed" and r["pairs"] == 5 and r["logged_in"] == 10
    assert r["sent"] > 0
    assert r["sent"] == r["acked"] == r["delivered"] == r["completed"]
    assert r["gap_pairs"] == 0 and r["missing_ids"] == 0
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert 0 < r["completed_in_window"] <= r["completed"]
    assert r["send_to_delivery"]["count"] > 0
    assert r["correct"] is True
    assert "over WebSocket (binary, cim.v1)" in text


def test_group_every_member_device_gets_every_message_once(tmp_path):
    code, doc, text = bench(
        tmp_path,
        "--scenario",
        "group",
        "--groups",
        "2",
        "--members",
        "5",
        "--senders",
        "2",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        json_to_stdout=True,
    )
    r = check_document(doc, "group")
    assert code == 0, text
    assert "skipped" not in r
    assert r["groups"] == 2 and r["members"] == 5 and r["senders_per_group"] == 2 and r["logged_in"] == 10
    assert len(set(r["setup"]["group_ids"])) == 2 and 0 not in r["setup"]["group_ids"]
    assert r["sent"] > 0
    assert r["sent"] == r["acked"] == r["completed"]
    assert r["deliveries"] == r["completed"] * 4  # every member device but the sender's
    assert r["missing_deliveries"] == 0 and r["gap_groups"] == 0 and r["missing_ids"] == 0
    assert r["notice_deliveries"] == 2 * 4  # the creation notice, to all but the creator's device
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert 0 < r["deliveries_in_window"] <= r["deliveries"]
    assert 0 < r["completed_in_window"] <= r["completed"]
    last = r["send_to_last_delivery"]
    assert last["count"] > 0 and r["send_to_ack"]["count"] == last["count"]
    assert r["send_to_first_delivery"]["p50_ms"] <= last["p50_ms"] <= last["max_ms"]
    assert r["deliveries_per_s"] > 0 and r["server_cpu_pct"] is not None and r["generator_cpu_pct"] is not None
    assert r["correct"] is True
    assert "exactly once: yes" in text


def test_group_refusals_are_reported_as_skipped_and_large_groups_raise_the_limit():
    from coffeechat.bench.scenarios import create_refusal, group_overrides
    from coffeechat.bench.wire import ERROR_RSP, GROUP_CREATE_RSP

    not_supported = {"group": 0, "answer_cmd": ERROR_RSP, "code": 10012, "text": "groups are not supported"}
    assert create_refusal([not_supported]) == "server does not support groups yet"
    full = {"group": 0, "answer_cmd": GROUP_CREATE_RSP, "code": 10018}
    assert create_refusal([full]) == "server answered GROUP_CREATE with 0x0502 code 10018 (GROUP_FULL)"
    assert group_overrides(200) == {}
    assert group_overrides(500)["groups"]["max_normal_members"] == 500


def test_websocket_client_framing():
    """The generator's own WebSocket client: RFC 6455's handshake example, masking, and what it
    does with server frames (fragments, ping, close) - on a fake transport, no server needed."""
    from coffeechat.bench import wire

    assert wire.ws_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    frame = wire.ws_frame(0x2, b"hello", key=0x37FA213D)
    assert frame[:2] == b"\x82\x85" and frame[2:6] == (0x37FA213D).to_bytes(4, "little")
    assert bytes(b ^ frame[2 + i % 4] for i, b in enumerate(frame[6:])) == b"hello"

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.written.append(data)

        def close(self) -> None:
            self.closed = True

        def abort(self) -> None:
            self.closed = True

        def is_closing(self) -> bool:
            return self.closed

    got: list[tuple[int, int, bytes]] = []
    conn = wire.WsConn(lambda c, cmd, seq, body: got.append((cmd, seq, body)), "127.0.0.1:1", "/")
    transport = Transport()

    async def handshake() -> None:
        conn.connection_made(transport)
        request = transport.written[0].decode()
        assert request.startswith("GET / HTTP/1.1\r\n") and "Sec-WebSocket-Protocol: cim.v1\r\n" in request
        key = request.split("Sec-WebSocket-Key: ")[1].split("\r\n")[0].encode()
        answer = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {wire.ws_accept(key).decode()}\r\nSec-WebSocket-Protocol: cim.v1\r\n\r\n"
        ).encode()
        cim = wire.frame(wire.LOGIN_HEARTBEAT, 7)
        # the answer and a first binary message in one read, split mid-frame
        data = answer + b"\x82" + bytes([len(cim)]) + cim
        conn.data_received(data[:-5])
        conn.data_received(data[-5:])
        await conn.opened

    import asyncio

    asyncio.run(handshake())
    assert got == [(wire.LOGIN_HEARTBEAT, 7, b"")]
    # a fragmented message with a ping between its fragments
    cim = wire.frame(wire.MSG_DATA, 9, b"body")
    conn.data_received(b"\x02\x05" + cim[:5] + b"\x89\x02hi" + b"\x80" + bytes([len(cim) - 5]) + cim[5:])
    assert got[-1] == (wire.MSG_DATA, 9, b"body")
    pong = transport.written[-1]
    assert pong[0] == 0x8A and pong[1] == 0x82 and bytes(b ^ pong[2 + i % 4] for i, b in enumerate(pong[6:])) == b"hi"
    # frames out are masked binary messages holding exactly one CIM frame
    conn.out(cim)
    out = transport.written[-1]
    assert out[0] == 0x82 and out[1] == 0x80 | len(cim)
    assert bytes(b ^ out[2 + i % 4] for i, b in enumerate(out[6:])) == cim
    # the server closes: answered with the same code, the connection ends
    conn.data_received(b"\x88\x05\x03\xe8" + b"bye")
    assert transport.written[-1][0] == 0x88 and transport.closed
    assert conn.why_closed == "WebSocket close 1000 bye"


def test_offline_messages_are_all_caught_up(tmp_path):
    code, doc, text = bench(tmp_path, "offline", "--pairs", "5", "--messages", "50")
    r = check_document(doc, "offline")
    assert code == 0, text
    assert r["sent"] == r["acked"] == r["expected"] == r["fetched"] == 50
    assert r["complete"] is True
    assert r["missing"] == 0 and r["gap_conversations"] == 0 and r["conversation_list_mismatch"] == 0
    assert r["history_pages"] >= 5 and r["errors"] == {}
    assert r["catchup_per_receiver"]["count"] == 5
    assert r["correct"] is True


def test_fuzz_sends_its_frames_and_finds_the_server_serving(tmp_path):
    """A small ``fuzz`` run: every frame sent, answers came, no hang, nothing logged at error or
    critical level, the server alive and still logging users in; RSS sampled as it went."""
    code, doc, text = bench(tmp_path, "fuzz", "--frames", "6000", "--corpus", "800", "--batch", "100")
    r = check_document(doc, "fuzz")
    assert code == 0, text
    assert r["frames_sent"] == 6000 and r["answers_received"] > 1000
    assert r["hangs"] == 0 and r["server_log_bad_lines"] == 0, r["server_log_examples"]
    assert r["server_alive"] is True and r["still_serving"] == {"health": True, "login": True, "heartbeat": True}
    assert r["server_rss_kib"]["before"] > 0 and r["server_rss_kib"]["after"] > 0 and "50%" in r["server_rss_kib"]
    assert r["connections"] == {"tcp": 8, "ws": 2} and r["correct"] is True
    assert "still serving" in text


def test_room_every_member_gets_every_acked_message_once(tmp_path):
    """room: one room of 20 connections, 2 sending; every member's count and checksum of what it
    got matches what the senders had acked (their own messages come back to them too)."""
    code, doc, text = bench(
        tmp_path, "room", "--members", "20", "--senders", "2", "--duration", "2", "--warmup", "0.5", "--drain", "5"
    )
    r = check_document(doc, "room")
    assert code == 0, text
    config = doc["server"]["config"]["rooms"]
    assert config["max_members"] >= 20 and config["connection_messages_per_second"] >= 1000
    assert r["members"] == r["logged_in"] == r["joined"] == 20 and r["senders"] == 2 and r["servers"] == 1
    assert r["room_id"] > 0 and 1 <= r["sampled_receivers"] <= 19
    assert r["sent"] > 0 and r["sent"] == r["acked"] == r["completed"] and r["refused"] == 0
    assert r["unanswered"] == r["acked_not_completed"] == 0
    echo = r["sender_gets_own_messages"]
    assert isinstance(echo, bool)
    assert r["deliveries"] == r["expected_deliveries"] == r["acked"] * (19 + (1 if echo else 0))
    assert r["missing_deliveries"] == r["extra_deliveries"] == r["checksum_mismatches"] == r["duplicate_msg_ids"] == 0
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert 0 < r["deliveries_in_window"] <= r["deliveries"] and r["deliveries_per_s"] > 0
    lat = r["send_to_delivery"]
    assert lat["count"] > 0 and lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert r["send_to_ack"]["count"] > 0 and r["send_to_last_sampled_delivery"]["count"] > 0
    assert r["server_cpu_us_per_delivery"] is not None and r["generator_cpu_pct"] is not None
    assert r["member_count_reported"]["at_end"] == [20]
    assert r["correct"] is True
    assert "exactly once: yes" in text


def test_room_over_two_nodes_reaches_the_members_on_both(tmp_path):
    """room --nodes 2: member i on node i mod 2 (a cluster on PostgreSQL and Redis), so every
    message reaches half its receivers through the other node; still each exactly once."""
    cluster_binaries_or_skip()
    code, doc, text = bench(
        tmp_path, "room", "--nodes", "2", "--members", "20", "--senders", "2", "--duration", "2", "--warmup", "0.5",
        "--drain", "5",
    )  # fmt: skip
    r = check_document(doc, "room")
    assert code == 0, text
    assert r["servers"] == 2 and r["members_by_node"] == [10, 10]
    devices = r["devices_by_node"]
    assert devices["expected"] == devices["logged_in"] == devices["health"] == devices["redis"] == [10, 10]
    assert r["sent"] > 0 and r["sent"] == r["acked"] == r["completed"]
    assert r["deliveries"] == r["expected_deliveries"] > 0 and r["missing_deliveries"] == 0
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert [n["node_name"] for n in r["nodes"]] == ["bench-1", "bench-2"]
    assert r["services"]["redis"]["calls"].get("publish", 0) > 0  # the batches to the other node
    assert r["correct"] is True


def test_room_senders_and_samples_are_spread_over_the_nodes():
    import pytest

    from coffeechat.bench.cli import parse_args
    from coffeechat.bench.live import _room_check, spread_indices

    picked = spread_indices(50, 1, 10_000, 2)
    assert len(set(picked)) == 50 and min(picked) >= 1 and max(picked) < 10_000
    assert sum(i % 2 for i in picked) == 25  # member i is on node i mod 2
    assert spread_indices(5, 1, 4, 2) == [1, 2, 3]  # no more than there are
    assert parse_args(["room", "--nodes", "2"]).servers == 2
    with pytest.raises(SystemExit):
        parse_args(["room", "--members", "25000"])  # over one process's connections: needs --nodes 2
    with pytest.raises(SystemExit):
        parse_args(["room", "--members", "5", "--senders", "5"])
    # (index, count, checksum, echoes, echo checksum, acked, acked checksum): member 1 sent 2
    # messages (tokens 10, 20), member 2 sent 1 (token 5); each got the others' and its own back
    tallies = [(0, 3, 35, 0, 0, 0, 0), (1, 3, 35, 2, 30, 2, 30), (2, 3, 35, 1, 5, 1, 5)]
    check = _room_check(tallies, {1, 2}, 3)
    assert check["exact"] and check["echo"] is True and check["expected_deliveries"] == 9
    # member 0 got message 5 twice and missed message 10: the count matches, the checksum does not
    check = _room_check([(0, 3, 30, 0, 0, 0, 0), *tallies[1:]], {1, 2}, 3)
    assert not check["exact"] and check["checksum_mismatches"] == 1
    check = _room_check([(0, 2, 25, 0, 0, 0, 0), *tallies[1:]], {1, 2}, 3)
    assert check["missing"] == 1


def test_calls_every_set_up_is_answered_and_ended(tmp_path):
    """calls: 5 pairs inviting at once, round after round; every invite gets 100 Trying, rings at
    the callee, reaches 200 OK at the caller, and every bye is answered and told to the callee;
    each call leaves its AVCHAT record with both parties."""
    code, doc, text = bench(tmp_path, "calls", "--concurrent", "5", "--duration", "1.5")
    r = check_document(doc, "calls")
    assert code == 0, text
    assert r["pairs"] == r["concurrent_setups"] == 5 and r["logged_in"] == 10 and r["rounds"] >= 1
    assert r["invites"] == 5 * sum(r["rounds_by_generator"]) > 0
    for key in ("trying", "pushed", "ringing", "ok", "byes", "bye_rsp", "bye_notify", "completed"):
        assert r[key] == r["invites"], key
    assert r["call_records"] == {"caller": r["completed"], "callee": r["completed"]}
    setup = r["invite_to_ok"]
    assert setup["count"] == r["ok"] and setup["p50_ms"] <= setup["p99_ms"] <= setup["max_ms"]
    assert r["invite_to_trying"]["p50_ms"] <= setup["p50_ms"]
    assert r["bye_to_rsp"]["count"] == r["bye_to_notify"]["count"] == r["completed"]
    assert r["setups_per_s"] > 0 and r["server_cpu_us_per_call"] is not None
    assert r["mismatches"] == {} and r["events"] == {} and r["setup_errors"] == {}
    assert r["correct"] is True
    assert "invite->200 OK" in text
