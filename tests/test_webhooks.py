"""Webhooks on the memory node: what is posted, in which order, signed how, retried when, resumed
from where, and sent once across a cluster (coffeechat/features/webhooks.py)."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook
from twisted.internet import defer

from coffeechat.config import ConfigError, load_config
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, memory_cluster

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
ENDPOINT = {"name": "app", "url": "http://127.0.0.1:9/hook", "secret": SECRET}


class Receiver:
    """A poster that records what it was given and answers with ``status`` (an int, or a
    callable of the post's index)."""

    def __init__(self, clock, status=200) -> None:
        self.clock = clock
        self.status = status
        self.posts: list[tuple[float, str, bytes, dict]] = []
        self.accepted: list[dict] = []

    def __call__(self, url: str, body: bytes, headers: dict) -> defer.Deferred:
        index = len(self.posts)
        self.posts.append((self.clock.seconds(), url, body, headers))
        status = self.status(index) if callable(self.status) else self.status
        if isinstance(status, Exception):
            return defer.fail(status)
        if 200 <= status < 300:
            self.accepted.append({"id": headers["webhook-id"], **json.loads(body)})
        return defer.succeed(status)

    def ids(self) -> list[str]:
        return [a["id"] for a in self.accepted]

    def msg_ids(self) -> list[str]:
        return [a["id"] for a in self.accepted if a["type"] == "message.created"]

    def texts(self, conv: str | None = None) -> list[str]:
        return [
            a["data"]["msg_data"]
            for a in self.accepted
            if a["type"] == "message.created" and (conv is None or a["data"]["conv"] == conv)
        ]


def hooked_node(status=200, **overrides) -> tuple[MemoryNode, Receiver]:
    node = MemoryNode(**{"webhooks.endpoints": [ENDPOINT], **overrides})
    receiver = Receiver(node.clock, status)
    node.core.feature("webhooks").post = receiver
    return node, receiver


def two_users(node: MemoryNode):
    a, b = node.user("alice"), node.user("bobby")
    alice, bob = node.connect(), node.connect()
    alice.login("alice")
    bob.login("bobby")
    return a, b, alice, bob


def test_inert_without_endpoints():
    node = MemoryNode()
    webhooks = node.core.feature("webhooks")
    assert webhooks.workers == {} and webhooks.message_workers == []
    a, b, alice, _ = two_users(node)
    alice.send_text(b, "hi")
    node.advance(3)
    assert webhooks._forward == set() and webhooks.delivered == 0


def test_messages_are_posted_in_order_and_signed():
    node, receiver = hooked_node()
    a, b, alice, bob = two_users(node)
    for i in range(5):
        alice.send_text(b, f"a{i}")
    bob.send_text(a, "b0")
    node.advance(2)
    conv = f"p:{a}:{b}"
    assert receiver.texts(conv) == ["a0", "a1", "a2", "a3", "a4", "b0"]
    assert receiver.msg_ids() == [f"msg_{conv}_{seq}" for seq in range(1, 7)]
    first = receiver.accepted[0]
    assert first["data"]["from_user_id"] == a and first["data"]["to_session_id"] == b
    assert first["data"]["server_msg_id"] == 1 and first["data"]["msg_type"] == 1
    assert len(receiver.posts) == 8  # and the two account.created events
    for _, url, body, headers in receiver.posts:
        assert url == ENDPOINT["url"]
        stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        assert headers["webhook-signature"] == Webhook(SECRET).sign(headers["webhook-id"], stamp, body)
    # nothing new: nothing posted again
    node.advance(5)
    assert len(receiver.posts) == 8


def test_receiver_down_backs_off_and_loses_nothing():
    down = {"on": True}
    node, receiver = hooked_node(status=lambda i: 503 if down["on"] else 200)
    a, b, alice, _ = two_users(node)
    for i in range(3):
        alice.send_text(b, f"m{i}")
    node.advance(40, step=0.5)
    attempts = [t for t, *_ in receiver.posts]
    gaps = [round(later - earlier) for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert gaps[:5] == [1, 2, 4, 8, 16]  # exponential backoff, one post per try (the first message)
    assert all(h["webhook-id"] == f"msg_p:{a}:{b}_1" for *_, h in receiver.posts)
    worker = node.core.feature("webhooks").workers["app"]
    assert worker.failures == len(receiver.posts) and worker.last_error == "HTTP 503"
    for i in range(3, 6):
        alice.send_text(b, f"m{i}")  # messages keep being sent meanwhile
    down["on"] = False
    node.advance(40)
    assert receiver.texts() == [f"m{i}" for i in range(6)]
    assert worker.failures == 0


def test_backoff_is_capped():
    node, receiver = hooked_node(status=503, **{"webhooks.backoff_max": 5.0})
    a, b, alice, _ = two_users(node)
    alice.send_text(b, "x")
    node.advance(60)
    attempts = [t for t, *_ in receiver.posts]
    gaps = [round(later - earlier) for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert max(gaps) == 5 and gaps[-3:] == [5, 5, 5]


def test_connection_errors_count_as_failures():
    calls = {"n": 0}

    def status(i):
        calls["n"] += 1
        return ConnectionRefusedError("refused") if i < 2 else 204

    node, receiver = hooked_node(status=status, **{"webhooks.endpoints": [{**ENDPOINT, "events": ["message.*"]}]})
    a, b, alice, _ = two_users(node)
    alice.send_text(b, "x")
    node.advance(10)
    assert receiver.texts() == ["x"] and calls["n"] == 3


def test_a_new_node_on_the_same_storage_resumes_from_the_marks():
    node, receiver = hooked_node()
    a, b, alice, _ = two_users(node)
    for i in range(3):
        alice.send_text(b, f"m{i}")
    node.advance(2)
    assert receiver.texts() == ["m0", "m1", "m2"]
    receiver.status = 503
    for i in range(3, 6):
        alice.send_text(b, f"m{i}")
    node.advance(2)
    node.core.stop()
    # the same storage, a node started afresh: what was not accepted is sent, nothing before it
    again = MemoryNode(clock=node.clock, store=node.store, **{"webhooks.endpoints": [ENDPOINT]})
    receiver2 = Receiver(again.clock)
    again.core.feature("webhooks").post = receiver2
    again.advance(20)
    assert receiver2.texts() == ["m3", "m4", "m5"]


def test_a_large_backlog_goes_in_batches_in_order():
    node, receiver = hooked_node(**{"webhooks.batch_size": 7, "webhooks.concurrency": 2})
    users = [node.user(f"user{i}") for i in range(4)]
    conns = []
    for i in range(4):
        c = node.connect()
        c.login(f"user{i}")
        conns.append(c)
    for n in range(30):
        for i in range(1, 4):
            conns[0].send_text(users[i], f"{i}-{n}")
    node.advance(5)
    for i in range(1, 4):
        conv = f"p:{users[0]}:{users[i]}"
        assert receiver.texts(conv) == [f"{i}-{n}" for n in range(30)]


def test_in_flight_posts_are_bounded_by_concurrency():
    only_messages = {**ENDPOINT, "events": ["message.created"]}
    node = MemoryNode(**{"webhooks.endpoints": [only_messages], "webhooks.concurrency": 3})
    pending: list[defer.Deferred] = []

    def hold(url, body, headers):
        d = defer.Deferred()
        pending.append(d)
        return d

    node.core.feature("webhooks").post = hold
    users = [node.user(f"user{i}") for i in range(6)]
    c = node.connect()
    c.login("user0")
    for i in range(1, 6):
        c.send_text(users[i], "x")
    node.advance(3)
    assert len(pending) == 3
    for d in list(pending):
        d.callback(200)
    node.advance(0)
    assert len(pending) == 5


def test_events_through_the_outbox():
    node, receiver = hooked_node()
    a, b, alice, bob = two_users(node)
    alice.send(Cmd.FRIEND_REQUEST_REQ, pb.CIMFriendRequestReq(to_user_id=b, message="hi"))
    bob.send(Cmd.FRIEND_ANSWER_REQ, pb.CIMFriendAnswerReq(from_user_id=a, accept=True))
    rsp_frames = alice.frames() + bob.frames()
    assert rsp_frames
    alice.send(
        Cmd.GROUP_CREATE_DEFAULT_REQ,
        pb.CIMGroupCreateReq(user_id=a, group_name="g", member_id_list=[b]),
    )
    alice.frames()
    ack = alice.send_text(b, "to recall")
    alice.send(
        Cmd.MSG_RECALL_REQ,
        pb.CIMMsgRecallReq(session_type=1, session_id=b, msg_id=ack.server_msg_id),
    )
    alice.frames()
    node.user("carol")
    node.advance(3)
    types = [p["type"] for p in receiver.accepted]
    for wanted in ("friend.added", "group.changed", "message.recalled", "account.created", "message.created"):
        assert wanted in types, types
    created = [p for p in receiver.accepted if p["type"] == "account.created"]
    assert [p["data"]["name"] for p in created] == ["alice", "bobby", "carol"]
    recalled = next(p for p in receiver.accepted if p["type"] == "message.recalled")
    assert recalled["data"]["server_msg_id"] == ack.server_msg_id
    assert all(i.startswith(("msg_", "evt_")) for i in receiver.ids())


def test_event_filter():
    only_groups = {**ENDPOINT, "events": ["group.*", "account.*"]}
    node = MemoryNode(**{"webhooks.endpoints": [only_groups]})
    receiver = Receiver(node.clock)
    node.core.feature("webhooks").post = receiver
    a, b, alice, _ = two_users(node)
    alice.send_text(b, "not wanted")
    node.advance(3)
    assert [p["type"] for p in receiver.accepted] == ["account.created", "account.created"]


def test_two_nodes_send_each_message_once_and_take_over():
    hub, (n1, n2) = memory_cluster(**{"webhooks.endpoints": [ENDPOINT], "webhooks.lease_ttl": 6.0})
    receiver = Receiver(n1.clock)
    for n in (n1, n2):
        n.core.feature("webhooks").post = receiver
    a, b = n1.user("alice"), n1.user("bobby")
    alice, bob = n1.connect(), n2.connect()
    alice.login("alice")
    bob.login("bobby")
    for i in range(5):
        alice.send_text(b, f"a{i}")
        bob.send_text(a, f"b{i}")
    n1.advance(3)
    conv = f"p:{a}:{b}"
    assert sorted(receiver.texts(conv)) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])
    ids = receiver.msg_ids()
    assert len(ids) == len(set(ids)) == 10
    assert [int(i.rsplit("_", 1)[1]) for i in ids] == list(range(1, 11))  # in order
    holders = [n for n in (n1, n2) if n.core.feature("webhooks").workers["app"].held]
    assert len(holders) == 1
    holder = holders[0]
    other = n2 if holder is n1 else n1
    # the holder dies (stops delivering, its lease is not renewed): the other takes over
    holder.core.feature("webhooks").workers["app"].stopped = True
    sender = bob if other is n2 else alice
    sender.send_text(a if sender is bob else b, "after")
    n1.advance(10)
    assert other.core.feature("webhooks").workers["app"].held
    assert receiver.texts(conv)[-1] == "after"
    ids = receiver.msg_ids()
    assert len(ids) == len(set(ids)) == 11


def test_admin_status_shows_backlog_and_failures():
    node, receiver = hooked_node(status=503)
    a, b, alice, _ = two_users(node)
    for i in range(4):
        alice.send_text(b, f"m{i}")
    node.advance(2)
    [status] = node.result(defer.ensureDeferred(node.core.feature("webhooks").status()))
    assert status["name"] == "app" and status["backlog_messages"] == 4
    assert status["failures"] >= 1 and status["last_error"] == "HTTP 503"
    receiver.status = 200
    node.advance(10)
    [status] = node.result(defer.ensureDeferred(node.core.feature("webhooks").status()))
    assert status["backlog"] == 0 and status["failures"] == 0 and status["last_success_at"] > 0


@pytest.mark.parametrize(
    ("endpoint", "named"),
    [
        ({"url": "ftp://x/y", "secret": SECRET}, "url"),
        ({"url": "http://x/y", "secret": "nope"}, "secret"),
        ({"url": "http://x/y", "secret": "whsec_" + base64.b64encode(b"short").decode()}, "24 to 64"),
        ({"url": "http://x/y", "secret": SECRET, "events": ["nothing.*"]}, "matches no event"),
        ({"url": "http://x/y", "secret": SECRET, "colour": "red"}, "unknown keys"),
    ],
)
def test_bad_endpoints_are_refused(endpoint, named):
    with pytest.raises(ConfigError, match=named):
        load_config(None, {"webhooks.endpoints": [endpoint]})


def test_per_conversation_order_with_many_conversations():
    node, receiver = hooked_node(**{"webhooks.concurrency": 4, "webhooks.batch_size": 3})
    ids = [node.user(f"user{i}") for i in range(5)]
    conns = []
    for i in range(5):
        c = node.connect()
        c.login(f"user{i}")
        conns.append(c)
    sent = defaultdict(list)
    for n in range(10):
        for i in range(5):
            j = (i + 1) % 5
            conns[i].send_text(ids[j], f"{i}>{j}:{n}")
            low, high = sorted((ids[i], ids[j]))
            sent[f"p:{low}:{high}"].append(f"{i}>{j}:{n}")
    node.advance(10)
    for conv, texts in sent.items():
        assert receiver.texts(conv) == texts


def test_the_bench_receiver_verifies_and_dedupes():
    import time

    from coffeechat.bench.receiver import Counter
    from coffeechat.features.webhooks import envelope, signed_headers

    counter = Counter(SECRET, 200)
    body = envelope("message.created", 0, {"x": 1})
    headers = signed_headers(SECRET, "msg_p:1:2_1", body, time.time())
    assert counter.handle(body, headers) == 200
    assert counter.handle(body, headers) == 200  # a resend: counted once
    assert counter.handle(body + b" ", headers) == 401
    assert (counter.posts, counter.unique, counter.bad, counter.types) == (3, 1, 1, {"message.created": 1})


def batched(receiver: Receiver) -> list[dict]:
    """The events of the accepted POSTs, batches unpacked, in the order they arrived."""
    out = []
    for post in receiver.accepted:
        if post["type"] == "batch":
            out.extend(post["data"]["events"])
        else:
            out.append(post)
    return out


def test_a_batching_endpoint_posts_several_events_of_one_conversation_at_once():
    node, receiver = hooked_node(**{"webhooks.endpoints": [{**ENDPOINT, "batch": 4}]})
    a, b, alice, _ = two_users(node)
    for i in range(10):
        alice.send_text(b, f"a{i}")
    node.advance(2)
    conv = f"p:{a}:{b}"
    message_posts = [p for p in receiver.accepted if p["type"] == "batch" and p["id"].startswith("batch_msg_")]
    assert [len(p["data"]["events"]) for p in message_posts] == [4, 4, 2]
    assert message_posts[0]["id"] == f"batch_msg_{conv}_1.msg_{conv}_4"
    events = [e for e in batched(receiver) if e["type"] == "message.created"]
    assert [e["id"] for e in events] == [f"msg_{conv}_{seq}" for seq in range(1, 11)]
    assert [e["data"]["msg_data"] for e in events] == [f"a{i}" for i in range(10)]
    for _, _, body, headers in receiver.posts:  # each POST signed as a whole
        stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        assert headers["webhook-signature"] == Webhook(SECRET).sign(headers["webhook-id"], stamp, body)
    assert node.core.feature("webhooks").delivered == 12  # events, not POSTs (and 2 account.created)


def test_a_failed_batch_is_sent_again_whole_and_nothing_is_lost_or_reordered():
    calls = {"n": 0}

    def status(i: int) -> int:
        calls["n"] += 1
        return 503 if calls["n"] == 2 else 200

    node, receiver = hooked_node(
        status=status, **{"webhooks.endpoints": [{**ENDPOINT, "batch": 3, "events": ["message.*"]}]}
    )
    a, b, alice, _ = two_users(node)
    for i in range(7):
        alice.send_text(b, f"a{i}")
    node.advance(10)
    texts = [e["data"]["msg_data"] for e in batched(receiver)]
    assert texts == [f"a{i}" for i in range(7)]
    ids = [p[3]["webhook-id"] for p in receiver.posts]
    assert ids[1] == ids[2]  # the refused batch, resent as it was


def test_batch_must_be_a_small_positive_integer():
    for bad in (0, -1, 1001, "4", True):
        with pytest.raises(ConfigError, match="batch"):
            load_config(None, {"webhooks.endpoints": [{**ENDPOINT, "batch": bad}]})


def test_the_bench_receiver_counts_the_events_of_a_batch_once():
    import time

    from coffeechat.bench.receiver import Counter
    from coffeechat.features.webhooks import batch_envelope, signed_headers

    counter = Counter(SECRET, 200)
    events = [(f"msg_p:1:2_{n}", "message.created", 0, {"n": n}) for n in (1, 2, 3)]
    webhook_id, body = batch_envelope(0, events)
    assert counter.handle(body, signed_headers(SECRET, webhook_id, body, time.time())) == 200
    webhook_id, body = batch_envelope(0, events[1:] + [("msg_p:1:2_4", "message.created", 0, {"n": 4})])
    assert counter.handle(body, signed_headers(SECRET, webhook_id, body, time.time())) == 200
    assert (counter.posts, counter.unique, counter.bad, counter.types) == (2, 4, 0, {"message.created": 4})


def test_a_batch_carries_many_conversations_each_in_order():
    """Thousands of conversations with a message or two each (a busy app) still fill the POSTs:
    a batch may hold several conversations, and each conversation's events stay in order."""
    node, receiver = hooked_node(
        **{"webhooks.endpoints": [{**ENDPOINT, "batch": 50, "events": ["message.*"]}], "webhooks.concurrency": 2}
    )
    sender = node.connect()
    node.user("alice")
    sender.login("alice")
    peers = [node.user(f"peer{i:02d}") for i in range(20)]
    for round_ in range(3):
        for peer in peers:
            sender.send_text(peer, f"{peer}-{round_}")
    node.advance(2)
    events = batched(receiver)
    assert len(events) == 60 and len({e["id"] for e in events}) == 60
    assert len(receiver.accepted) <= 4  # 60 events in POSTs of up to 50, not 60 POSTs
    for peer in peers:
        texts = [e["data"]["msg_data"] for e in events if e["data"]["to_session_id"] == peer]
        assert texts == [f"{peer}-{r}" for r in range(3)]
