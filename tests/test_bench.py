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
    assert n == 19_000 and "later issue" in notes[0]
    # one generator process stays well under the 20,000 open files of a process
    assert generator_count(parse_args(["connections", "--generators", "1"]), 19_000) >= 2


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


def test_group_is_skipped_until_the_server_has_groups(tmp_path):
    code, doc, text = bench(tmp_path, "--scenario", "group", json_to_stdout=True)
    r = check_document(doc, "group")
    assert code == 0, text
    assert r["skipped"] is True
    assert r["reason"] == "server does not support groups yet"
    assert "skipped: server does not support groups yet" in text


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
