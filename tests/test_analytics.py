"""Analytics: daily rollups counted from what the node really stores and who really logs in.

The store facet on SQLite, PostgreSQL and the memory backend (the conformance suite); the
feature on the memory node (messages and logins over CIM frames, the clock driven by the test:
exact days, incremental flushes); the admin routes over real HTTP on a live node; and
``coffeechat analytics export`` run as a process on a real SQLite file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor, threads

from coffeechat.backends.memory import MemoryStore
from coffeechat.backends.postgres import PostgresStore
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.features.analytics import DAY, Batch, SQLAnalyticsStore, daily_csv, days_from_rows, iso_day
from coffeechat.schema import Cmd, pb
from coffeechat.sql import load_migrations
from coffeechat.testing.conformance_analytics import AnalyticsStoreConformanceTests
from tests.conftest import node_config, start_node, stop_node
from tests.memory_node import MemoryNode, memory_cluster
from tests.pgserver import pg_server  # noqa: F401  (the session fixture)
from tests.test_process import ROOT

ADMIN = "admin-secret"
D0 = 20_400  # 2025-11-08: the memory node's clock starts here (plus a few hours)


class TestSQLiteAnalytics(AnalyticsStoreConformanceTests):
    def make_store(self, tmp_path):
        return SQLiteStore(reactor, str(tmp_path / "store.sqlite3"))


class TestMemoryAnalytics(AnalyticsStoreConformanceTests):
    def make_store(self, tmp_path):
        return MemoryStore()


class TestPostgresAnalytics(AnalyticsStoreConformanceTests):
    @pytest.fixture(autouse=True)
    def _server(self, pg_server, tmp_path):  # noqa: F811
        self._pg = pg_server
        yield
        pg_server.release(tmp_path)

    def make_store(self, tmp_path):
        return PostgresStore(reactor, self._pg.database(tmp_path))


# ---- the feature on the memory node ----------------------------------------------------------


def _node(**overrides) -> MemoryNode:
    settings = {"http.admin_token": ADMIN, "analytics.flush_interval": 60.0, "limits.idle_timeout": 10.0 * DAY}
    node = MemoryNode(**{**settings, **overrides})
    node.clock.advance(D0 * DAY + 3 * 3600)
    return node


def _send(conn, to: int, msg_type: int = 1, session_type: int = 1, data: bytes = b"hi") -> None:
    msg = pb.CIMMsgData(
        to_session_id=to, client_msg_id=str(uuid.uuid4()), msg_type=msg_type, session_type=session_type, msg_data=data
    )
    seq = conn.send(Cmd.MSG_DATA, msg)
    acks = [f for f in conn.frames() if f[0] == Cmd.MSG_DATA_ACK and f[1] == seq]
    assert len(acks) == 1 and acks[0][2].server_msg_id > 0, acks


def _group(conn, name: str, members: list[int]) -> int:
    conn.send(Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name=name, member_id_list=members))
    rsp = [f for f in conn.frames() if f[0] == Cmd.GROUP_CREATE_DEFAULT_RSP][0][2]
    assert rsp.result_code == 200, rsp
    return rsp.group_info.group_id


def _days(node: MemoryNode, first: int, last: int) -> list[dict]:
    analytics = node.core.feature("analytics")
    return node.result(defer.ensureDeferred(analytics.daily(first, last, flush=False)))


def test_rollups_count_stored_messages_logins_and_new_accounts():
    node = _node()
    alice, bob, carol = node.user("alice"), node.user("bobby"), node.user("carol")
    a1, a2, b = node.connect(), node.connect("10.0.0.2"), node.connect("10.0.0.3")
    a1.login("alice")
    a2.login("alice")  # a second device: still one active user
    b.login("bobby")
    for _ in range(3):
        _send(a1, bob)
    _send(b, alice, msg_type=3, data=b'{"url":"x"}')  # an image
    gid = _group(a1, "Coffee", [bob, carol])
    _send(a2, gid, session_type=2)
    _send(b, gid, msg_type=100, session_type=2, data=b'{"card":1}')
    # a refused message (not a member) is not stored, so not counted
    stranger = node.connect("10.0.0.9")
    node.user("dave1")
    stranger.login("dave1")
    stranger.send(Cmd.MSG_DATA, pb.CIMMsgData(to_session_id=gid, client_msg_id="x", msg_type=1, session_type=2))
    stranger.frames()

    assert _days(node, D0, D0)[0]["messages"] == 0  # nothing written before the flush interval
    node.advance(60)
    today = _days(node, D0, D0)[0]
    assert today["messages"] == 6 and today["messages_single"] == 4 and today["messages_group"] == 2
    assert today["messages_by_type"] == {"text": 4, "image": 1, "custom": 1}
    assert today["active_users"] == 3 and today["mau"] == 3  # alice, bobby, dave1; not carol
    assert today["new_users"] == 4
    analytics = node.core.feature("analytics")
    top = node.result(defer.ensureDeferred(analytics.top_groups(D0, D0, 5)))
    assert top == [{"group_id": gid, "messages": 2, "name": "Coffee"}]
    summary = node.result(defer.ensureDeferred(analytics.summary()))
    assert (summary["online_users"], summary["dau"], summary["mau"]) == (3, 3, 3)
    assert summary["totals"]["messages_by_type"] == {"text": 4, "image": 1, "custom": 1}


def test_a_second_rollup_adds_only_what_is_new():
    node = _node()
    alice, bob = node.user("alice"), node.user("bobby")
    a = node.connect()
    a.login("alice")
    _send(a, bob)
    _send(a, bob)
    node.advance(60)
    first = _days(node, D0, D0 + 1)
    analytics = node.core.feature("analytics")
    flushes = analytics.flushes
    node.advance(600)  # nothing new: no writes at all
    assert analytics.flushes == flushes and _days(node, D0, D0 + 1) == first

    node.advance(DAY)  # the next day
    b = node.connect("10.0.0.2")
    b.login("bobby")
    _send(b, alice, msg_type=6, data=b'{"latitude":1.5,"longitude":2}')  # a location
    node.advance(60)
    day0, day1 = _days(node, D0, D0 + 1)
    assert day0 == first[0]  # the first day is as it was
    assert (day1["messages"], day1["messages_by_type"], day1["active_users"]) == (1, {"location": 1}, 1)
    assert day1["mau"] == 2  # alice (yesterday) and bobby
    assert node.result(analytics.store.totals()) == [
        ("messages", "1", 2),
        ("messages", "6", 1),
        ("messages_session", "single", 3),
        ("new_users", "", 2),
        ("storage_bytes", "", 0),  # sampled from the files feature at start
        ("storage_files", "", 0),
    ]


def test_counts_survive_a_failed_flush():
    node = _node()
    bob = node.user("bobby")
    node.user("alice")
    a = node.connect()
    a.login("alice")
    _send(a, bob)
    analytics = node.core.feature("analytics")
    real = analytics.store.flush
    analytics.store.flush = lambda batch: defer.fail(RuntimeError("disk full"))
    node.advance(60)
    analytics.store.flush = real
    assert _days(node, D0, D0)[0]["messages"] == 0
    node.advance(60)
    assert _days(node, D0, D0)[0]["messages"] == 1 and _days(node, D0, D0)[0]["active_users"] == 1


def test_a_burst_of_logins_is_written_a_slice_at_a_time():
    node = _node()
    analytics = node.core.feature("analytics")
    analytics.max_active_per_flush = 2
    for i in range(5):
        node.user(f"user{i:02d}")
        node.connect(f"10.0.1.{i}").login(f"user{i:02d}")
    node.advance(60)
    assert _days(node, D0, D0)[0]["active_users"] == 2
    node.advance(1)  # BACKLOG_DELAY later, the next slice
    assert _days(node, D0, D0)[0]["active_users"] == 4
    node.advance(1)
    assert _days(node, D0, D0)[0]["active_users"] == 5
    flushes = analytics.flushes
    node.advance(10)
    assert analytics.flushes == flushes  # nothing left: no more flushes until the next interval


def test_two_nodes_add_their_own_counts_and_count_a_user_once():
    hub, (n1, n2) = memory_cluster(**{"http.admin_token": ADMIN, "limits.idle_timeout": 10.0 * DAY})
    n1.clock.advance(D0 * DAY)
    n1.user("alice")
    bob = n1.user("bobby")
    a1, a2 = n1.connect(), n2.connect("10.0.0.2")
    a1.login("alice")
    a2.login("alice")  # the same user on the other node
    _send(a1, bob)
    _send(a2, bob)
    _send(a2, bob)
    n1.advance(60)
    day = _days(n1, D0, D0)[0]
    assert (day["messages"], day["active_users"], day["mau"], day["new_users"]) == (3, 1, 1, 2)
    summary = n2.result(defer.ensureDeferred(n2.core.feature("analytics").summary()))
    assert summary["online_users"] == 1 and summary["node_devices"] == 1
    assert n1.result(defer.ensureDeferred(n1.core.feature("analytics").nodes()))["nodes"][0]["alive"] is True


def test_the_csv_has_a_row_per_day_and_a_column_per_type():
    rows = [(D0, "messages", "1", 5), (D0, "messages", "3", 2), (D0 + 2, "new_users", "", 1)]
    rows += [(D0, "messages_session", "single", 7), (D0 + 1, "storage_bytes", "", 4096)]
    text = daily_csv(days_from_rows(rows, D0, D0 + 2))
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["day"] for r in table] == [iso_day(D0), iso_day(D0 + 1), iso_day(D0 + 2)]
    assert (table[0]["messages"], table[0]["messages_text"], table[0]["messages_image"]) == ("7", "5", "2")
    assert table[0]["messages_single"] == "7" and table[0]["messages_custom"] == "0"
    assert (table[0]["storage_bytes"], table[1]["storage_bytes"]) == ("", "4096")  # no sample: empty
    assert table[2]["new_users"] == "1"
    assert text.endswith("\r\n")


# ---- the routes over real HTTP ---------------------------------------------------------------


async def _get(live, path: str, token: str | None = ADMIN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await treq.get(live.http_url + path, headers=headers)
    return response.code, response.headers, await response.content()


@pytest_twisted.ensureDeferred
async def test_admin_stats_routes_over_http(tmp_path):
    live = await start_node(node_config(tmp_path))
    try:
        alice = await live.register("alice")
        bob = await live.register("bobby")
        a = await live.login("alice")
        for _ in range(2):
            assert (await a.send_message(bob, "hello")).res_code == 1
        assert (await a.send_message(bob, b'{"latitude":1,"longitude":2}', msg_type=6)).res_code == 1  # a location
        b = await live.login("bobby")
        assert (await b.send_message(alice, "hi")).res_code == 1

        code, _, body = await _get(live, "/admin/stats/summary")
        summary = json.loads(body)
        assert code == 200 and summary["error_code"] == 200, summary
        assert (summary["online_users"], summary["dau"], summary["today"]["new_users"]) == (2, 2, 2)
        assert summary["today"]["messages_by_type"] == {"text": 3, "location": 1}
        today = summary["day"]

        code, _, body = await _get(live, f"/admin/stats/daily?to={today}")
        daily = json.loads(body)
        assert code == 200 and len(daily["days"]) == 30 and daily["days"][-1]["messages"] == 4
        assert all(d["messages"] == 0 for d in daily["days"][:-1])

        code, headers, body = await _get(live, f"/admin/stats/daily.csv?from={today}&to={today}")
        assert code == 200 and headers.getRawHeaders("content-type") == ["text/csv; charset=utf-8"]
        table = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(table) == 1 and table[0]["messages_location"] == "1" and table[0]["active_users"] == "2"

        code, _, body = await _get(live, "/admin/stats/nodes")
        nodes = json.loads(body)
        assert code == 200 and nodes["storage"] == "ok" and [n["alive"] for n in nodes["nodes"]] == [True]
        assert nodes["nodes"][0]["online_users"] == 2

        for path, status in (
            ("/admin/stats/daily?from=2025-02-30", 400),
            ("/admin/stats/daily?from=2025-03-02&to=2025-03-01", 400),
            ("/admin/stats/daily?from=2000-01-01&to=2025-01-01", 400),  # too many days at once
            ("/admin/stats/top-groups?limit=0", 400),
            ("/admin/stats/top-groups?day=yesterday", 400),
            ("/admin/stats/top-groups?limit=101", 400),
            ("/admin/stats/top-groups?day=2025-03-01&from=2025-03-01", 400),
            ("/admin/stats/daily?to=", 400),
        ):
            code, _, body = await _get(live, path)
            assert code == status and json.loads(body)["error_code"] == 9001, (path, body)
        code, _, _ = await _get(live, "/admin/stats/summary", token="wrong")
        assert code == 401
        code, _, _ = await _get(live, "/admin/stats/daily.csv", token=None)
        assert code == 401
    finally:
        await stop_node(live)


# ---- the CLI ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cli_exports_csv_from_the_database(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    store = SQLiteStore(reactor, str(data / "coffeechat.sqlite3"))
    await store.start()
    await store.migrate("analytics", load_migrations(SQLAnalyticsStore.migrations))
    facet = SQLAnalyticsStore(store)
    await facet.flush(Batch(counts=((D0, "messages", "1", 9), (D0 + 2, "new_users", "", 3)), active=((1, D0),)))
    await store.stop()

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "coffeechat.admin", "--data-dir", str(data), "analytics", "export", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    done = await threads.deferToThread(run, "--from", iso_day(D0), "--to", iso_day(D0 + 2))
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["day"], r["messages_text"], r["new_users"], r["active_users"]) for r in table] == [
        (iso_day(D0), "9", "0", "1"),
        (iso_day(D0 + 1), "0", "0", "0"),
        (iso_day(D0 + 2), "0", "3", "0"),
    ]
    out = tmp_path / "out.csv"
    # without --from: from the first counted day to today
    done = await threads.deferToThread(run, "--output", str(out))
    assert done.returncode == 0 and "wrote" in done.stderr, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["day"] == iso_day(D0) and rows[0]["messages"] == "9" and len(rows) > 3
    done = await threads.deferToThread(run, "--from", "2025-13-01")
    assert done.returncode == 1 and "is not a date" in done.stderr and "Traceback" not in done.stderr
