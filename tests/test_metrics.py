"""Metrics, /ready and the Grafana dashboard, on the memory node: exact and instant."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from coffeechat.drain import drain
from coffeechat.errors import ErrorCode
from coffeechat.features.metrics import LagProbe
from coffeechat.modules import HttpCall
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, md5

ROOT = Path(__file__).resolve().parent.parent


def samples(node: MemoryNode) -> dict[tuple[str, tuple], float]:
    """Every sample of the node's /metrics text, by (name, sorted labels)."""
    text = node.core.feature("metrics").text().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def call(bearer: str = "") -> HttpCall:
    return HttpCall(method="GET", params={}, query={}, body=b"", bearer=bearer)


def result(d):
    return MemoryNode.result(defer.ensureDeferred(d))


def test_counters_follow_logins_messages_acks_and_connections():
    node = MemoryNode()
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = node.connect(), node.connect()
    stranger = node.connect()
    alice.login("alice")
    bob.login("bobby")
    stranger.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name="alice", user_pwd=md5("wrong"), client_type=2))
    assert stranger.only(Cmd.LOGIN_AUTH_RSP).result_code == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    stranger.send(Cmd.LOGIN_AUTH_TOKEN_REQ, pb.CIMAuthTokenReq(user_id=alice_id, user_token="nope"))
    stranger.frames()
    before = samples(node)
    assert before["coffeechat_connections", (("transport", "cim"),)] == 3
    assert before["coffeechat_messages_received_total", (("kind", "single"),)] == 0

    for i in range(3):
        alice.send_text(bob_id, f"hello {i}")
    pushes = [f for f in bob.frames() if f[0] == Cmd.MSG_DATA]
    assert len(pushes) == 3
    node.clock.advance(0.25)
    for _, seq, push in pushes[:2]:
        bob.ack_delivery(push, seq)
    stranger.close()

    after = samples(node)
    assert after["coffeechat_logins_total", (("method", "password"), ("result", "ok"))] == 2
    assert after["coffeechat_logins_total", (("method", "password"), ("result", "failed"))] == 1
    assert after["coffeechat_logins_total", (("method", "token"), ("result", "failed"))] == 1
    assert after["coffeechat_logins_total", (("method", "token"), ("result", "ok"))] == 0
    assert after["coffeechat_messages_received_total", (("kind", "single"),)] == 3
    assert after["coffeechat_messages_received_total", (("kind", "group"),)] == 0
    assert after["coffeechat_pushes_sent_total", (("kind", "message"),)] == 3
    assert after["coffeechat_connections", (("transport", "cim"),)] == 2
    assert after["coffeechat_online_users", ()] == 2
    assert after["coffeechat_unacked_pushes", ()] == 1
    # Two acks, each 0.25 s after its push (the memory clock): in the 0.25 bucket, not below.
    assert after["coffeechat_delivery_ack_seconds_count", ()] == 2
    assert after["coffeechat_delivery_ack_seconds_bucket", (("le", "0.25"),)] == 2
    assert after["coffeechat_delivery_ack_seconds_bucket", (("le", "0.1"),)] == 0
    assert after["coffeechat_delivery_ack_seconds_sum", ()] == 0.5


def test_group_messages_are_counted_as_group():
    node = MemoryNode()
    node.user("alice")
    bob_id = node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    alice.send(Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="g", member_id_list=[bob_id]))
    created = [f[2] for f in alice.frames() if f[0] == Cmd.GROUP_CREATE_DEFAULT_RSP]
    group_id = created[0].group_info.group_id
    seq = alice.send(
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=group_id, client_msg_id="g-1", msg_type=1, session_type=2, msg_data=b"hi all"),
    )
    assert [f[1] for f in alice.frames() if f[0] == Cmd.MSG_DATA_ACK] == [seq]
    values = samples(node)
    assert values["coffeechat_messages_received_total", (("kind", "group"),)] == 1
    assert values["coffeechat_messages_received_total", (("kind", "single"),)] == 0


def test_reactor_lag_is_how_late_the_probe_runs():
    clock = MemoryReactorClock()
    seen = []
    probe = LagProbe(clock, 1.0, seen.append)
    probe.start()
    clock.advance(1.0)
    clock.advance(2.5)  # a turn that held the reactor: the call due at 2.0 runs at 3.5
    assert seen == [0.0, 1.5] and probe.last == 1.5
    probe.stop()
    clock.advance(5)
    assert seen == [0.0, 1.5]


def test_reactor_lag_histogram_on_the_node():
    node = MemoryNode(**{"metrics.reactor_lag_interval": 0.5})
    node.clock.advance(0.5)
    node.clock.advance(0.7)  # due at 1.0, run at 1.2
    values = samples(node)
    assert values["coffeechat_reactor_lag_seconds_count", ()] == 2
    assert abs(values["coffeechat_reactor_lag_last_seconds", ()] - 0.2) < 1e-9


def test_metrics_token():
    node = MemoryNode(**{"metrics.token": "scrape-me"})
    metrics = node.core.feature("metrics")
    refused = result(metrics.serve(call()))
    assert refused.status == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    assert result(metrics.serve(call("wrong"))).status == 401
    answer = result(metrics.serve(call("scrape-me")))
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"coffeechat_connections" in answer.body


def test_metrics_route_follows_metrics_http():
    paths = {r.path for r in MemoryNode().core.registry.routes}
    assert {"/metrics", "/ready", "/health"} <= paths
    assert "/metrics" not in {r.path for r in MemoryNode(**{"metrics.http": False}).core.registry.routes}


def ready(node: MemoryNode) -> tuple[int, dict]:
    return result(node.core.readiness.check())


def test_ready_when_storage_answers_presence_joined_and_not_draining():
    node = MemoryNode()
    status, body = ready(node)
    assert (status, body["status"], body["failing"]) == (200, "ready", [])
    assert body["checks"]["storage"] == {"ok": True, "detail": "ok"}

    node.core.draining = True
    status, body = ready(node)
    assert (status, body["failing"]) == (503, ["draining"])
    node.core.draining = False

    node.core.presence.joined = False  # a shared presence that lost Redis
    status, body = ready(node)
    assert (status, body["failing"]) == (503, ["presence"])
    node.core.presence.joined = True
    assert ready(node)[0] == 200


def test_ready_probes_storage_at_most_once_a_second():
    node = MemoryNode()
    probes = []
    store = node.core.store
    run_read = store.run_read

    def counting(description, fn, *args):
        if description == "ready probe":  # features read on their own timers too
            probes.append(description)
        return run_read(description, fn, *args)

    store.run_read = counting
    node.clock.advance(2)
    assert ready(node)[0] == 200 and ready(node)[0] == 200
    assert probes == ["ready probe"]
    node.clock.advance(1.5)
    ready(node)
    assert probes == ["ready probe"] * 2

    def failing(description, fn, *args):
        return defer.fail(RuntimeError("disk I/O error"))

    store.run_read = failing
    node.clock.advance(1.5)
    status, body = ready(node)
    assert (status, body["failing"]) == (503, ["storage"])
    assert "disk I/O error" in body["checks"]["storage"]["detail"]


def test_ready_says_503_once_the_node_stops():
    node = MemoryNode()
    node.result(node.core.stop())
    assert ready(node)[0] == 503


def test_drain_kicks_with_server_shutdown_and_flushes_delivery_acks():
    node = MemoryNode()
    node.user("alice")
    bob_id = node.user("bobby")
    alice, bob = node.connect(), node.connect()
    alice.login("alice")
    bob.login("bobby")
    node.connect()  # never logs in: told nothing, so not waited for
    alice.send_text(bob_id, "before the drain")
    (_, seq, push), *_ = [f for f in bob.frames() if f[0] == Cmd.MSG_DATA]
    bob.ack_delivery(push, seq)
    assert node.result(node.store.delivered_seq(bob_id, f"p:1:{bob_id}")) == 0
    d = drain(node.core, [], node.clock)
    node.advance(1.5, step=0.05)
    # The StringTransports never close by themselves: the drain waits for the two that were told.
    assert not d.called
    alice.close()
    bob.close()
    node.advance(0.1, step=0.05)
    node.result(d)
    kick = alice.only(Cmd.KICKOUT_NOTIFY)
    assert kick.reason_code == ErrorCode.SERVER_SHUTDOWN and alice.closed
    assert not node.core.running and node.core.draining
    # The ack was only coalesced in memory (flushed every few seconds): the drain wrote it
    # before storage closed (the memory store may be opened again to read it).
    node.result(node.store.start())
    assert node.result(node.store.delivered_seq(bob_id, f"p:1:{bob_id}")) == push.server_msg_id == 1


def exported_series() -> dict[str, set[str]]:
    """Every series name the node's /metrics can hold, with its label names: by family type, so
    that a family with no sample yet (no Redis) still counts."""
    from .test_webhooks import hooked_node

    node, _ = hooked_node()  # an endpoint, so that the backlog has its labels
    node.clock.advance(0)
    text = node.core.feature("metrics").text().decode()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {label for s in family.samples for label in s.labels}
        for suffix in suffixes.get(family.type, ("",)):
            out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    # Without a database or Redis server the dependency families have no sample; their labels
    # are checked against real servers in test_metrics_e2e.py and test_metrics_cluster_e2e.py.
    out["coffeechat_dependency_up"] |= {"dependency", "backend"}
    out["coffeechat_dependency_failures_total"] |= {"dependency", "backend"}
    return out


def test_grafana_dashboard_names_only_exported_metrics():
    dashboard = json.loads((ROOT / "etc" / "grafana-coffeechat.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    exported = exported_series()
    for expr in exprs:
        names = re.findall(r"\b((?:coffeechat|process)_[a-z_]+)", expr)
        assert names, expr
        for name in names:
            assert name in exported, f"{name} (in {expr!r}) is not exported"
        known = set().union(*(exported[name] for name in names)) | {"instance", "job"}
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in known, f"label {label!r} (in {expr!r}) is not one of {sorted(known)}"
    variables = [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    assert variables == ["label_values(coffeechat_node, instance)"]


def test_the_metrics_the_issue_lists_are_exported():
    exported = exported_series()
    wanted = {
        "coffeechat_connections": {"transport"},
        "coffeechat_logins_total": {"method", "result"},
        "coffeechat_messages_received_total": {"kind"},
        "coffeechat_pushes_sent_total": {"kind"},
        "coffeechat_delivery_ack_seconds_bucket": {"le"},
        "coffeechat_store_commit_seconds_bucket": {"le"},
        "coffeechat_store_batch_size_bucket": {"le"},
        "coffeechat_reactor_lag_seconds_bucket": {"le"},
        "coffeechat_cluster_payloads_total": {"direction"},
        "coffeechat_cluster_bytes_total": {"direction"},
        "coffeechat_dependency_failures_total": {"dependency", "backend"},
        "coffeechat_push_backlog": {"stage"},
        "coffeechat_webhook_backlog": {"endpoint", "kind"},
    }
    for name, labels in wanted.items():
        assert name in exported and labels <= exported[name], name


def test_single_writer_histogram_exposes_what_prometheus_client_would():
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client.exposition import generate_latest

    from coffeechat.features.metrics import ACK_BUCKETS, SingleWriterHistogram

    ours = SingleWriterHistogram("h_seconds", "h", ACK_BUCKETS)
    registry = CollectorRegistry()
    theirs = Histogram("h_seconds", "h", buckets=ACK_BUCKETS, registry=registry)
    for value in (0, 0.005, 0.0051, 0.25, 0.25, 3, 60, 61, 1e9):
        ours.observe(value)
        theirs.observe(value)
    registry_ours = CollectorRegistry()
    registry_ours.register(type("C", (), {"collect": lambda self: [ours.family()]})())

    def lines(text: bytes) -> list[str]:
        return sorted(line for line in text.decode().splitlines() if "_created" not in line)

    assert lines(generate_latest(registry_ours)) == lines(generate_latest(registry))


def test_bad_metrics_and_drain_settings_are_refused_by_name():
    import pytest

    from coffeechat.config import ConfigError, load_config

    for key, value, named in (
        ("metrics.reactor_lag_interval", 0, "metrics.reactor_lag_interval"),
        ("metrics.token", 5, "metrics.token"),
        ("server.drain_timeout", 0, "server.drain_timeout"),
        ("server.drain_delay", 30.0, "server.drain_delay"),
        ("listen.metrics", ["9108"], "listen.metrics"),
    ):
        with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
            load_config(None, {key: value})


def test_a_drain_that_hangs_is_abandoned_at_drain_timeout():
    node = MemoryNode(**{"server.drain_timeout": 3.0})
    node.core.store.stop = lambda: defer.Deferred()  # storage never finishes closing

    class Listener:
        name = "http:tcp:0"
        running = True

        def stopService(self):
            self.running = False

    listener = Listener()
    d = drain(node.core, [listener], node.clock)
    node.advance(2.9, step=0.1)
    assert not d.called and listener.running  # the HTTP listener stays open while draining
    node.advance(0.2, step=0.1)
    assert node.result(d) is None and not listener.running


def test_a_metrics_listener_needs_the_metrics_feature():
    import pytest

    from coffeechat.config import ConfigError
    from coffeechat.protocols.metrics import create_site

    node = MemoryNode(**{"features.enabled": ["accounts", "messages"]})
    assert "/metrics" not in {r.path for r in node.core.registry.routes}
    assert "/ready" in {r.path for r in node.core.registry.routes}  # the node's own
    with pytest.raises(ConfigError, match="listen.metrics needs the metrics feature"):
        create_site(node.core)


def test_webhook_backlog_per_endpoint():
    from .test_webhooks import hooked_node

    node, receiver = hooked_node(status=503, **{"metrics.backlog_interval": 5.0})
    node.user("alice")
    bob_id = node.user("bobby")
    alice = node.connect()
    alice.login("alice")
    for i in range(4):
        alice.send_text(bob_id, f"unhooked {i}")
    node.advance(6, step=0.5)  # the endpoint answers 503: nothing is delivered
    assert receiver.posts and not receiver.accepted
    values = samples(node)
    assert values["coffeechat_webhook_backlog", (("endpoint", "app"), ("kind", "messages"))] == 4
    assert ("coffeechat_webhook_backlog", (("endpoint", "app"), ("kind", "events"))) in values
    assert values["coffeechat_webhook_queue", ()] == 0  # all written to the outbox

    receiver.status = 200
    node.advance(120, step=1)
    assert len(receiver.texts()) == 4
    assert samples(node)["coffeechat_webhook_backlog", (("endpoint", "app"), ("kind", "messages"))] == 0
