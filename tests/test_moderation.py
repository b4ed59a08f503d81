"""Moderation on a memory reactor: the keyword filter (replace, refuse, Unicode folding, CUSTOM
JSON, thousands of keywords), and the before-send callback answered by a real twisted.web
resource in memory (treq's StubTreq), with the node's clock driving its timeout: allow, refuse,
rewrite, fail-open and fail-closed, the in-flight bound, and resends charged once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from treq.testing import StubTreq
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from coffeechat.config import ConfigError, load_config
from coffeechat.errors import ErrorCode
from coffeechat.features.moderation import KeywordFilter, fold, parse_answer
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode
from .test_groups import Device

SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtbW9kZXJhdGlvbi10ZXN0cw=="
URL = "http://app.example/moderate"
REFUSED, UNAVAILABLE = ErrorCode.MSG_REFUSED, ErrorCode.MODERATION_UNAVAILABLE


class AppServer(Resource):
    """The app's server: checks each request's Standard Webhooks signature, records it, and
    answers with ``answer`` (a dict, or a (status, bytes) pair), or holds it (``hold``) until
    ``release``."""

    isLeaf = True

    def __init__(self, secret: str = SECRET) -> None:
        super().__init__()
        self.webhook = Webhook(secret)
        self.seen: list[dict] = []
        self.ids: list[str] = []
        self.answer: object = {"action": "allow"}
        self.hold = False
        self.held: list = []

    def render_POST(self, request):
        body = request.content.read()
        header = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        stamp = datetime.fromtimestamp(int(header["webhook-timestamp"]), UTC)
        expected = self.webhook.sign(header["webhook-id"], stamp, body)
        assert expected in header["webhook-signature"].split(" "), "bad signature"
        self.seen.append(json.loads(body))
        self.ids.append(header["webhook-id"])
        if self.hold:
            self.held.append(request)
            return NOT_DONE_YET
        return self._answer(request)

    def _answer(self, request) -> bytes:
        if isinstance(self.answer, tuple):
            request.setResponseCode(self.answer[0])
            return self.answer[1]
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(self.answer).encode()

    def release(self, stub: StubTreq) -> None:
        for request in self.held:
            if not request._disconnected:
                request.write(self._answer(request))
                request.finish()
        self.held = []
        stub.flush()


def moderated(**settings) -> tuple[MemoryNode, AppServer | None, StubTreq | None]:
    overrides = {f"moderation.{k}": v for k, v in settings.items()}
    node = MemoryNode(**overrides)
    server = stub = None
    if "callback_url" in settings:
        server = AppServer()
        stub = StubTreq(server)
        node.core.feature("moderation").http = stub
    return node, server, stub


def callback_node(**settings):
    return moderated(callback_url=URL, secret=SECRET, **settings)


def two_users(node: MemoryNode):
    node.user("alice")
    node.user("bobby")
    alice, bob = node.connect(), node.connect()
    alice.login("alice")
    bob.login("bobby")
    return alice, bob


def send(conn, to: int, text: str | bytes, cmid: str | None = None, msg_type: int = 1, session_type: int = 1) -> int:
    data = text.encode() if isinstance(text, str) else text
    msg = pb.CIMMsgData(
        to_session_id=to,
        client_msg_id=cmid or str(uuid.uuid4()),
        msg_type=msg_type,
        session_type=session_type,
        msg_data=data,
    )
    return conn.send(Cmd.MSG_DATA, msg)


def acks(conn) -> dict[int, pb.CIMMsgDataAck]:
    return {seq: m for cmd, seq, m in conn.frames() if cmd == Cmd.MSG_DATA_ACK}


def pushed(conn) -> list[bytes]:
    return [m.msg_data for cmd, _, m in conn.frames() if cmd == Cmd.MSG_DATA]


def history(conn, peer: int, session_type: int = 1) -> list[bytes]:
    seq = conn.send(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=session_type, session_id=peer, limit_count=50))
    rsp = [m for cmd, s, m in conn.frames() if cmd == Cmd.LIST_MSG_RSP and s == seq]
    assert len(rsp) == 1
    return [m.msg_data for m in rsp[0].msg_list if m.msg_type != 9]


def moderation_checks(node: MemoryNode) -> list:
    checks = node.core.feature("messages").send_checks
    return [c for kind in checks.values() for c in kind if "Moderation" in c.__qualname__]


# -- off by default


def test_off_by_default_nothing_on_the_message_path():
    node = MemoryNode()
    assert "moderation" in node.config.features.enabled
    assert not node.core.feature("moderation").active
    assert moderation_checks(node) == []
    alice, bob = two_users(node)
    ack = alice.send_text(bob.user_id, "a badword")
    assert ack.error_code == 0 and ack.server_msg_id == 1
    assert pushed(bob) == [b"a badword"]


def test_keywords_only_registers_no_callback():
    node, _, _ = moderated(keywords=["badword"])
    assert len(moderation_checks(node)) == 2  # 1:1 and groups
    assert node.core.feature("moderation").http is None


# -- the keyword filter


def test_keyword_filter_folds_case_width_and_compatibility_forms():
    f = KeywordFilter(["BadWord", "straße", "ﬁsh"])
    assert f.replace("a badword, a BADWORD, a ｂａｄｗｏｒｄ.") == "a *******, a *******, a *******."
    assert f.replace("STRASSE") == "*******"  # casefold: ß = ss; the whole original is covered
    assert f.replace("Straße!") == "******!"
    assert f.replace("fish and ﬁsh") == "**** and ***"  # the ligature folds to "fi"
    assert f.replace("nothing here") == "nothing here"
    assert fold("Ｆｉｓｈ") == "fish"


def test_keyword_filter_combining_marks_and_overlaps():
    f = KeywordFilter(["café", "abc", "bcd"])
    assert f.replace("un cafe\u0301 noir") == "un ***** noir"  # e + combining acute: 5 characters
    assert f.replace("un CAFÉ") == "un ****"
    assert f.replace("xabcdx") == "x****x"  # overlapping matches merge
    assert f.spans("abc bcd") == [(0, 3), (4, 7)]
    assert f.matches("ABCD") and not f.matches("ab cd")


def naive_spans(keywords: list[str], text: str) -> list[tuple[int, int]]:
    """Every occurrence of every keyword, by brute force, merged (ASCII: folding is lower())."""
    covered = [False] * len(text)
    low = text.lower()
    for word in {k.lower() for k in keywords if k}:
        start = low.find(word)
        while start != -1:
            for i in range(start, start + len(word)):
                covered[i] = True
            start = low.find(word, start + 1)
    spans, i = [], 0
    while i < len(text):
        if covered[i]:
            j = i
            while j < len(text) and covered[j]:
                j += 1
            spans.append((i, j))
            i = j
        else:
            i += 1
    return spans


@given(
    st.lists(st.text(alphabet="abcAB", min_size=1, max_size=5), min_size=1, max_size=12),
    st.text(alphabet="abcABx ", max_size=40),
)
def test_keyword_filter_finds_what_brute_force_finds(keywords, text):
    f = KeywordFilter(keywords)
    # adjacent but not overlapping matches stay separate spans in the brute force: join them
    merged: list[tuple[int, int]] = []
    for start, end in naive_spans(keywords, text):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    assert f.spans(text) == merged
    assert f.matches(text) == bool(merged)


def test_keyword_filter_no_keywords_matches_nothing():
    f = KeywordFilter(["", "   "])
    assert f.count == 0 and f.replace("anything") == "anything" and not f.matches("x")


def test_keyword_replace_over_the_wire():
    node, _, _ = moderated(keywords=["badword", "坏词"], replacement="#")
    alice, bob = two_users(node)
    ack = alice.send_text(bob.user_id, "You BadWord, 坏词!")
    assert ack.error_code == 0 and ack.server_msg_id == 1
    assert pushed(bob) == [b"You #######, ##!"]
    assert history(bob, alice.user_id) == [b"You #######, ##!"]


def test_keyword_refuse_over_the_wire():
    node, _, _ = moderated(keywords=["badword"], keyword_action="refuse", keyword_reason="mind your language")
    alice, bob = two_users(node)
    ack = alice.send_text(bob.user_id, "a ＢＡＤＷＯＲＤ")
    assert (ack.error_code, ack.error_msg, ack.server_msg_id) == (REFUSED, "mind your language", 0)
    assert pushed(bob) == []
    assert history(alice, bob.user_id) == []
    assert alice.send_text(bob.user_id, "fine").server_msg_id == 1  # the refused one took no seq


def test_keywords_file_with_thousands_of_keywords(tmp_path):
    words = [f"spam{i:05d}" for i in range(5000)]
    path = tmp_path / "words.txt"
    path.write_text("# blocked words\n\n" + "\n".join(words) + "\n", encoding="utf-8")
    node, _, _ = moderated(keywords_file=str(path), keywords=["extra"])
    assert node.core.feature("moderation").keywords.count == 5001
    alice, bob = two_users(node)
    alice.send_text(bob.user_id, "buy SPAM04999 and extra spam")
    assert pushed(bob) == [b"buy ********* and ***** spam"]


def test_a_keywords_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(ConfigError, match="keywords_file"):
        MemoryNode(**{"moderation.keywords_file": str(path)})


def test_keyword_filter_custom_json_text_fields():
    node, _, _ = moderated(keywords=["badword"])
    alice, bob = two_users(node)
    body = {"type": "card", "description": "a BadWord card", "items": ["badword", 3], "badword": {"t": "badword"}}
    seq = send(alice, bob.user_id, json.dumps(body), msg_type=100)
    assert acks(alice)[seq].server_msg_id == 1
    got = json.loads(pushed(bob)[0])
    assert got == {
        "type": "card",
        "description": "a ******* card",
        "items": ["*******", 3],
        "badword": {"t": "*******"},
    }


def test_keyword_filter_custom_fields_limits_the_keys():
    node, _, _ = moderated(keywords=["badword"], custom_fields=["description"])
    alice, bob = two_users(node)
    body = {"description": "badword", "url": "https://badword.example/"}
    send(alice, bob.user_id, json.dumps(body), msg_type=100)
    assert json.loads(pushed(bob)[0]) == {"description": "*******", "url": "https://badword.example/"}


def test_keyword_filter_leaves_other_types_and_clean_bodies_alone():
    node, _, _ = moderated(keywords=["badword"], keyword_action="refuse")
    alice, bob = two_users(node)
    image = json.dumps({"url": "https://x.example/badword.png"}, separators=(",", ":"))
    seq = send(alice, bob.user_id, image, msg_type=3)
    assert acks(alice)[seq].error_code == 0
    clean = '{"description":  "fine"}'  # not re-serialised: the bytes are the client's
    send(alice, bob.user_id, clean, msg_type=100)
    assert pushed(bob) == [image.encode(), clean.encode()]


def test_keyword_filter_in_a_group():
    node, _, _ = moderated(keywords=["badword"])
    for name in ("alice", "bobby", "carol"):
        node.user(name)
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create([bob.user_id, carol.user_id]).group_info.group_id
    bob.pushes(), carol.pushes()
    ack = alice.send(gid, "hello badword")
    assert ack.error_code == 0
    assert [m.msg_data for m in bob.pushes(Cmd.MSG_DATA)] == [b"hello *******"]
    assert [m.msg_data for m in carol.pushes(Cmd.MSG_DATA)] == [b"hello *******"]


# -- the callback


def test_callback_allow_gets_the_documented_request():
    node, server, _ = callback_node()
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, "hello", cmid="c-1")
    assert acks(alice)[seq].server_msg_id == 1
    assert pushed(bob) == [b"hello"]
    (seen,) = server.seen
    assert seen["type"] == "message.before_send"
    assert seen["sender"] == {"user_id": alice.user_id, "name": "alice", "nick": "Alice"}
    assert seen["conversation"] == {"session_type": 1, "kind": "single", "to_id": bob.user_id}
    assert (seen["msg_type"], seen["body"], seen["client_msg_id"]) == (1, "hello", "c-1")
    assert seen["mentions"] == [] and seen["at_all"] is False
    assert server.ids[0].startswith("msg_")


def test_callback_refuse_shows_the_reason_and_stores_nothing():
    node, server, _ = callback_node()
    server.answer = {"action": "refuse", "reason": "no links, please"}
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, "see http://spam.example")
    ack = acks(alice)[seq]
    assert (ack.error_code, ack.error_msg, ack.server_msg_id) == (REFUSED, "no links, please", 0)
    assert pushed(bob) == [] and history(alice, bob.user_id) == []


def test_callback_rewrite_is_what_everyone_sees():
    node, server, _ = callback_node()
    server.answer = {"action": "rewrite", "body": "hello [link removed]"}
    alice, bob = two_users(node)
    other = node.connect()
    other.login("alice")  # the sender's other device
    seq = send(alice, bob.user_id, "hello http://spam.example")
    assert acks(alice)[seq].server_msg_id == 1
    assert pushed(bob) == [b"hello [link removed]"]
    assert pushed(other) == [b"hello [link removed]"]
    assert history(alice, bob.user_id) == [b"hello [link removed]"]


@pytest.mark.parametrize(
    "answer",
    [
        {"action": "rewrite", "body": ""},  # an empty text: not a valid body
        {"action": "rewrite", "body": "x" * 20000},  # over limits.max_text_bytes
        {"action": "rewrite"},
        {"action": "maybe"},
        [1, 2],
        (500, b"oops"),
        (200, b"not json"),
    ],
)
@pytest.mark.parametrize("policy", ["allow", "refuse"])
def test_bad_answers_follow_the_failure_policy(answer, policy):
    node, server, _ = callback_node(on_failure=policy)
    server.answer = answer
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, "hello")
    ack = acks(alice)[seq]
    if policy == "allow":
        assert ack.error_code == 0 and pushed(bob) == [b"hello"]
    else:
        assert ack.error_code == UNAVAILABLE and pushed(bob) == []
    assert node.core.feature("moderation").failures == 1


def test_a_rewrite_of_a_custom_message_is_checked_by_its_type():
    node, server, _ = callback_node(on_failure="refuse")
    server.answer = {"action": "rewrite", "body": "not json"}
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, '{"description": "x"}', msg_type=100)
    assert acks(alice)[seq].error_code == UNAVAILABLE
    server.answer = {"action": "rewrite", "body": '{"description": "y"}'}
    seq = send(alice, bob.user_id, '{"description": "x"}', msg_type=100)
    assert acks(alice)[seq].error_code == 0
    assert pushed(bob) == [b'{"description": "y"}']


def test_no_answer_within_the_timeout_fail_open():
    node, server, stub = callback_node(timeout=1.0, on_failure="allow")
    server.hold = True
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, "hello")
    assert acks(alice) == {} and pushed(bob) == []  # waiting for the app's server
    node.clock.advance(0.9)
    assert acks(alice) == {}
    node.clock.advance(0.2)
    assert acks(alice)[seq].server_msg_id == 1
    assert pushed(bob) == [b"hello"]
    server.answer = {"action": "refuse", "reason": "too late"}
    server.release(stub)  # a late answer changes nothing
    assert acks(alice) == {} and pushed(bob) == []
    assert node.core.feature("moderation").in_flight == 0


def test_no_answer_within_the_timeout_fail_closed_then_a_resend_asks_again():
    node, server, stub = callback_node(timeout=1.0, on_failure="refuse")
    server.hold = True
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, "hello", cmid="c-1")
    node.clock.advance(1.1)
    ack = acks(alice)[seq]
    assert ack.error_code == UNAVAILABLE and ack.server_msg_id == 0
    assert history(alice, bob.user_id) == []
    server.hold = False
    seq = send(alice, bob.user_id, "hello", cmid="c-1")  # "try again": not remembered
    assert acks(alice)[seq].server_msg_id == 1
    assert len(server.seen) == 2 and server.ids[0] == server.ids[1]  # the same webhook-id


def test_a_resend_of_a_message_let_through_by_fail_open_is_not_asked_again():
    node, server, stub = callback_node(timeout=1.0, on_failure="allow")
    server.hold = True
    alice, bob = two_users(node)
    first = send(alice, bob.user_id, "hello", cmid="c-1")
    node.clock.advance(1.1)
    assert acks(alice)[first].server_msg_id == 1
    server.hold = False
    server.answer = {"action": "refuse", "reason": "too late now"}
    again = send(alice, bob.user_id, "hello", cmid="c-1")
    assert acks(alice)[again].server_msg_id == 1  # stored: its resend is acked, not refused
    assert len(server.seen) == 1
    assert pushed(bob) == [b"hello"]


def test_a_resend_while_pending_is_asked_once_and_stored_once():
    node, server, stub = callback_node()
    server.hold = True
    alice, bob = two_users(node)
    first = send(alice, bob.user_id, "hello", cmid="c-1")
    again = send(alice, bob.user_id, "hello", cmid="c-1")
    assert len(server.seen) == 1
    server.release(stub)
    got = acks(alice)
    assert got[first].server_msg_id == got[again].server_msg_id == 1
    assert pushed(bob) == [b"hello"]
    assert node.core.feature("moderation").calls == 1


def test_a_resend_after_a_verdict_is_not_asked_again():
    node, server, _ = callback_node(verdict_ttl=5.0)
    alice, bob = two_users(node)
    server.answer = {"action": "rewrite", "body": "[edited]"}
    first = send(alice, bob.user_id, "hello", cmid="c-1")
    assert acks(alice)[first].server_msg_id == 1
    server.answer = {"action": "refuse", "reason": "changed my mind"}
    again = send(alice, bob.user_id, "hello", cmid="c-1")  # remembered: the stored one is the answer
    assert acks(alice)[again].server_msg_id == 1 and acks(alice) == {}
    refused = send(alice, bob.user_id, "bye", cmid="c-2")
    assert acks(alice)[refused].error_code == REFUSED
    server.answer = {"action": "allow"}
    refused_again = send(alice, bob.user_id, "bye", cmid="c-2")
    assert acks(alice)[refused_again].error_msg == "changed my mind"
    assert len(server.seen) == 2
    assert pushed(bob) == [b"[edited]"]
    node.clock.advance(6)  # forgotten after verdict_ttl: asked again
    send(alice, bob.user_id, "bye", cmid="c-2")
    assert len(server.seen) == 3


def test_verdicts_remembered_are_bounded():
    node, server, _ = callback_node(verdict_cache=2)
    alice, bob = two_users(node)
    for i in range(5):
        send(alice, bob.user_id, f"m{i}", cmid=f"c-{i}")
    moderation = node.core.feature("moderation")
    assert list(moderation._verdicts) == [(alice.user_id, "c-3"), (alice.user_id, "c-4")]
    assert moderation._pending == {} and moderation.in_flight == 0


def test_over_max_in_flight_follows_the_failure_policy():
    node, server, stub = callback_node(max_in_flight=1, on_failure="refuse")
    server.hold = True
    alice, bob = two_users(node)
    first = send(alice, bob.user_id, "one")
    second = send(alice, bob.user_id, "two")
    got = acks(alice)
    assert list(got) == [second] and got[second].error_code == UNAVAILABLE
    assert len(server.seen) == 1
    server.release(stub)
    assert acks(alice)[first].server_msg_id == 1
    third = send(alice, bob.user_id, "three")
    server.release(stub)
    assert acks(alice)[third].server_msg_id == 2


def test_msg_types_and_session_types_choose_what_the_callback_sees():
    node, server, _ = callback_node(msg_types=["custom"], session_types=["single"])
    server.answer = {"action": "refuse", "reason": "no"}
    for name in ("alice", "bobby"):
        node.user(name)
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    assert alice.conn.send_text(bob.user_id, "text is not asked").error_code == 0
    gid = alice.create([bob.user_id]).group_info.group_id
    assert alice.send(gid, "groups are not asked").error_code == 0
    seq = send(alice.conn, bob.user_id, '{"description":"x"}', msg_type=100)
    assert acks(alice.conn)[seq].error_code == REFUSED
    assert len(server.seen) == 1 and server.seen[0]["msg_type"] == 100


def test_group_message_callback_sees_the_group_and_mentions():
    node, server, _ = callback_node()
    server.answer = {"action": "rewrite", "body": "hi all (edited)"}
    for name in ("alice", "bobby", "carol"):
        node.user(name)
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create([bob.user_id, carol.user_id]).group_info.group_id
    bob.pushes(), carol.pushes()
    ack = alice.send(gid, "hi all", at_user_list=[bob.user_id])
    assert ack.error_code == 0
    seen = server.seen[-1]
    assert seen["conversation"] == {"session_type": 2, "kind": "group", "to_id": gid}
    assert seen["mentions"] == [bob.user_id]
    assert [m.msg_data for m in bob.pushes(Cmd.MSG_DATA)] == [b"hi all (edited)"]
    assert [m.msg_data for m in carol.pushes(Cmd.MSG_DATA)] == [b"hi all (edited)"]
    server.answer = {"action": "refuse", "reason": "not in this group"}
    ack = alice.send(gid, "again")
    assert (ack.error_code, ack.error_msg) == (REFUSED, "not in this group")
    assert carol.pushes(Cmd.MSG_DATA) == []


def test_keywords_run_before_the_callback():
    node, server, _ = callback_node(keywords=["badword"])
    alice, bob = two_users(node)
    alice.send_text(bob.user_id, "a badword")
    assert server.seen[0]["body"] == "a *******"


def test_callback_unreachable_on_the_memory_reactor_times_out():
    """Without a stub the real treq client connects through the node's (memory) reactor, which
    never answers: the node's clock times the call out."""
    node = MemoryNode(**{"moderation.callback_url": URL, "moderation.secret": SECRET, "moderation.timeout": 0.5})
    alice, bob = two_users(node)
    seq = send(alice, bob.user_id, "hello")
    node.clock.advance(0.6)
    assert acks(alice)[seq].server_msg_id == 1  # fail-open by default


# -- answers and config


def test_parse_answer():
    assert parse_answer(204, b"") == ("allow", None)
    assert parse_answer(200, b'{"action":"refuse"}') == ("refuse", "the message was refused")
    assert parse_answer(200, b'{"action":"refuse","reason":"' + b"r" * 500 + b'"}')[1] == "r" * 200
    assert parse_answer(200, '{"action":"rewrite","body":"é"}'.encode()) == ("rewrite", "é".encode())
    assert parse_answer(200, b'{"action":"rewrite","body":"\\ud800"}')[0] == "failed"
    assert parse_answer(302, b"")[0] == "failed"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"callback_url": "ftp://x"}, "http"),
        ({"callback_url": URL}, "secret is required"),
        ({"callback_url": URL, "secret": "whsec_!!"}, "base64"),
        ({"on_failure": "maybe"}, "on_failure"),
        ({"timeout": 0.0}, "timeout"),
        ({"session_types": ["room"]}, "session_types"),
        ({"msg_types": ["sticker"]}, "msg_types"),
        ({"keyword_action": "hide"}, "keyword_action"),
        ({"replacement": "**"}, "replacement"),
        ({"keywords_file": "/no/such/file"}, "keywords_file"),
        ({"max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_config_is_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, {f"moderation.{k}": v for k, v in settings.items()})
