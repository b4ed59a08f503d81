"""The push feature on a memory reactor: nothing on the message path without a provider, the
bounded queue, batched lookups for a large group, retries with backoff, bounded attempts."""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from coffeechat.pushproviders import IPushProvider, PushOutcome
from coffeechat.schema import Cmd, pb
from coffeechat.testing.conformance import new_group

from .memory_node import MemoryNode
from .test_groups import Device

RECORDERS: list[Recorder] = []


@implementer(IPushProvider)
class Recorder:
    """A provider that keeps what it was given and answers what the test scripted."""

    platform = "rec"

    def __init__(self, config: dict, reactor) -> None:
        self.config = config
        self.sent: list = []
        self.outcomes: list[PushOutcome] = []
        RECORDERS.append(self)

    def send(self, target, notification):
        self.sent.append((target, notification))
        return defer.succeed(self.outcomes.pop(0) if self.outcomes else PushOutcome(ok=True))

    def close(self):
        return None


def create(config: dict, reactor) -> Recorder:
    return Recorder(config, reactor)


def node_with_recorder(**settings) -> tuple[MemoryNode, Recorder]:
    node = MemoryNode(**{"push.providers": {"rec": {"factory": "tests.test_push:create", "x": 1}}, **settings})
    return node, RECORDERS[-1]


def register(device: Device, token: str) -> pb.CIMPushRegisterRsp:
    return device.call(Cmd.PUSH_REGISTER_REQ, pb.CIMPushRegisterReq(platform="rec", token=token))


def hooked(node: MemoryNode) -> bool:
    push = node.core.feature("push")
    return any(getattr(h, "__self__", None) is push for _, _, h in node.core.registry._hooks.get("message/stored", ()))


def test_without_a_provider_nothing_is_hooked_and_registrations_are_refused():
    node = MemoryNode()
    assert not hooked(node)
    bob = Device(node, node.user("bobby") and "bobby")
    rsp = bob.call(Cmd.PUSH_REGISTER_REQ, pb.CIMPushRegisterReq(platform="webpush", token="https://x.example/1"))
    assert rsp.result_code == pb.kCIM_ERR_PUSH_PLATFORM_UNAVAILABLE


def test_a_provider_gets_its_table_and_bad_targets_are_refused():
    node, recorder = node_with_recorder()
    assert hooked(node) and recorder.config == {"x": 1}
    node.user("bobby")
    bob = Device(node, "bobby")
    assert bob.call(Cmd.PUSH_REGISTER_REQ, pb.CIMPushRegisterReq(platform="rec", token="")).result_code == (
        pb.kCIM_ERR_PUSH_BAD_TARGET
    )
    big = pb.CIMPushRegisterReq(platform="rec", token="t", extra={f"k{i}": "v" for i in range(17)})
    assert bob.call(Cmd.PUSH_REGISTER_REQ, big).result_code == pb.kCIM_ERR_PUSH_BAD_TARGET


def test_the_queue_is_bounded_and_drops_are_counted():
    node, recorder = node_with_recorder(**{"push.queue_size": 2})
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    bob = Device(node, "bobby")
    assert register(bob, "phone").result_code == 200
    bob.conn.close()
    alice = node.connect()
    alice.login("alice")
    push = node.core.feature("push")
    for i in range(5):  # one reactor turn: the worker has not run yet
        alice.send(Cmd.MSG_DATA, pb.CIMMsgData(to_session_id=bob_id, client_msg_id=f"m{i}", msg_type=1,
                                               session_type=1, msg_data=b"hi"))  # fmt: skip
    assert push.stats["dropped"] == 3 and len(push.queue) == 2
    node.advance(1, step=0.01)
    assert [n.server_msg_id for _, n in recorder.sent] == [1, 2]
    assert [n.badge for _, n in recorder.sent] == [5, 5]  # the unread total, read once (badge_ttl)
    alice.send_text(bob_id, "one more")
    node.advance(1, step=0.01)
    assert recorder.sent[-1][1].badge == 6
    assert alice_id


def test_a_large_group_is_looked_up_in_batches_and_cached():
    node, recorder = node_with_recorder()
    store = node.store
    owner = node.user("owner")
    members = [MemoryNode.result(store.create_user(f"m{i:04d}", "M", "", 0)).user_id for i in range(1200)]
    group = MemoryNode.result(defer.ensureDeferred(new_group(store, owner, members, name="Big", max_members=2000)))
    push = node.core.feature("push")
    for member in members[:3]:
        MemoryNode.result(push.store.register(member, "rec", f"t{member}", "", "", {}, "gone", 0, 10))
    queries = []
    real = push.store.targets_of
    push.store.targets_of = lambda ids: queries.append(len(ids)) or real(ids)
    sender = node.connect()
    sender.login("owner")
    for n in range(2):
        sender.send(Cmd.MSG_DATA, pb.CIMMsgData(to_session_id=group.group_id, client_msg_id=f"g{n}", msg_type=1,
                                                session_type=2, msg_data=b"hello all"))  # fmt: skip
        node.advance(1, step=0.01)
    assert queries == [500, 500, 200]  # the first message: 1200 members in 3 queries; then cached
    assert sorted(t.user_id for t, _ in recorder.sent) == sorted(members[:3] * 2)
    assert {n.title for _, n in recorder.sent} == {"Big"} and {n.body for _, n in recorder.sent} == {"Owner: hello all"}


def test_retries_back_off_and_stop_after_max_attempts():
    node, recorder = node_with_recorder(**{"push.max_attempts": 3, "push.retry_base": 10.0})
    node.user("alice")
    bob_id = node.user("bobby")
    push = node.core.feature("push")
    MemoryNode.result(push.store.register(bob_id, "rec", "phone", "", "", {}, "gone", 0, 10))
    recorder.outcomes = [PushOutcome(ok=False, detail="503")] * 3
    push._random.random = lambda: 1.0  # the jitter's top: delays of exactly 10 s, then 20 s
    alice = node.connect()
    alice.login("alice")
    alice.send_text(bob_id, "hi")
    node.advance(0.1, step=0.01)
    assert len(recorder.sent) == 1
    node.advance(9.8, step=0.1)
    assert len(recorder.sent) == 1
    node.advance(0.3, step=0.1)
    assert len(recorder.sent) == 2
    node.advance(19.7, step=0.1)
    assert len(recorder.sent) == 2
    node.advance(0.4, step=0.1)
    assert len(recorder.sent) == 3
    assert push.stats["retried"] == 2
    node.advance(100)
    assert len(recorder.sent) == 3 and push.stats["given_up"] == 1 and push.waiting == 0


def test_push_content_is_cut_to_its_limit_and_the_preview_to_its_length():
    from coffeechat.features.push import cut_bytes

    assert cut_bytes("héllo", 2) == "h" and cut_bytes("héllo", 3) == "hé" and cut_bytes("abc", 10) == "abc"
    node, recorder = node_with_recorder(**{"push.max_push_content_bytes": 4, "push.preview_chars": 5})
    node.user("alice")
    bob_id = node.user("bobby")
    push = node.core.feature("push")
    MemoryNode.result(push.store.register(bob_id, "rec", "phone", "", "", {}, "gone", 0, 10))
    alice = node.connect()
    alice.login("alice")
    alice.send_text(bob_id, "a long text indeed", push_content="ééé")
    alice.send_text(bob_id, "a long text indeed")
    node.advance(1, step=0.01)
    assert [n.body for _, n in recorder.sent] == ["éé", "a lo\u2026"]


def test_across_nodes_presence_decides_and_changes_reach_the_other_node():
    from .memory_node import memory_cluster

    RECORDERS.clear()
    _, (n1, n2) = memory_cluster(**{"push.providers": {"rec": {"factory": "tests.test_push:create"}}})
    first, second = RECORDERS  # one provider per node
    n1.user("alice")
    bob_id = n1.user("bobby")
    bob = Device(n2, "bobby")
    assert register(bob, "phone").result_code == 200
    alice = n1.connect()
    alice.login("alice")
    alice.send_text(bob_id, "bob is on the other node")
    n1.advance(1, step=0.01)
    assert first.sent == [] and second.sent == []  # n1 decided: bob's device is online (on n2)
    # in the background on n2: n1 forgets what it cached of bob (push/changed) and notifies
    assert bob.call(Cmd.APP_STATE_REQ, pb.CIMAppStateReq(background=True)).result_code == 200
    n1.advance(1, step=0.01)
    alice.send_text(bob_id, "now in the background")
    n1.advance(1, step=0.01)
    assert [n.body for _, n in first.sent] == ["now in the background"] and second.sent == []
