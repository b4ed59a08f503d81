"""Search: on a memory reactor (what is found, for whom, when, and every refusal) and over every
transport."""

from __future__ import annotations

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st

from coffeechat.errors import ErrorCode
from coffeechat.features.search import highlight, parse_query, tokens, tokens_of_any
from coffeechat.schema import Cmd, pb
from coffeechat.testing.conformance import new_message

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .pgserver import pg_server  # noqa: F401  (session fixture)
from .redisserver import redis_server  # noqa: F401  (session fixture)
from .test_cluster_e2e import two_nodes  # noqa: F401  (the fixture: two nodes, PostgreSQL, Redis)
from .test_groups import Device

SINGLE, GROUP = 1, 2


def search(device: Device, query: str, **fields) -> pb.CIMMsgSearchRsp:
    return device.call(Cmd.MSG_SEARCH_REQ, pb.CIMMsgSearchReq(query=query, **fields))


def texts(rsp: pb.CIMMsgSearchRsp) -> list[str]:
    assert rsp.result_code == 200, rsp
    return [h.msg.msg_data.decode() for h in rsp.hits]


def marked(hit: pb.CIMMsgSearchHit) -> str:
    """The snippet with its highlights in [brackets] (code points, as clients index it)."""
    chars = list(hit.snippet)
    for r in sorted(hit.highlights, key=lambda r: -r.start):
        chars.insert(r.start + r.length, "]")
        chars.insert(r.start, "[")
    return "".join(chars)


@pytest.fixture
def node():
    return MemoryNode(**{"limits.idle_timeout": 1000.0})


# -- the tokeniser and highlights (pure functions)


def test_words_are_folded_and_cjk_runs_become_bigrams():
    assert [t.term for t in tokens("Hello, ＷＯＲＬＤ! Café 我们明天 x 猫 안녕하")] == [
        "hello",
        "world",
        "cafe",
        "我们",
        "们明",
        "明天",
        "x",
        "猫",
        "안녕",
        "녕하",
    ]
    assert parse_query("Meet 明天开会 a 猫 meet") == [
        parse_query("meet")[0],
        parse_query("明天开会")[0],
        parse_query("a")[0],
        parse_query("猫")[0],
    ]
    assert parse_query("明天开会")[0].terms == ("明天", "天开", "开会")
    assert not parse_query("a")[0].prefix and parse_query("ab")[0].prefix
    assert parse_query("  ,.!? ") == []


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_the_ascii_fast_path_tokenises_as_the_general_one(text):
    assert tokens(text) == tokens_of_any(text)


def test_highlights_are_code_point_ranges_in_a_snippet_cut_around_the_first_match():
    snippet, ranges = highlight("Meeting tomorrow at the Café", parse_query("meet cafe"), 80)
    assert snippet == "Meeting tomorrow at the Café" and ranges == [(0, 7), (24, 4)]
    long = "word " * 40 + "needle 🎉 and 明天开会 " + "tail " * 40
    snippet, ranges = highlight(long, parse_query("needle 明天"), 40)
    assert snippet.startswith("…") and snippet.endswith("…") and len(snippet) == 42
    assert [snippet[s : s + n] for s, n in ranges] == ["needle", "明天"]


# -- on the memory node


def test_a_message_is_found_within_a_second_with_highlights(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    ack = alice.conn.send_text(bob_id, "Meeting tomorrow at the Café, 我们明天开会")
    assert texts(search(bob, "meeting")) == []  # nothing is indexed on the message path
    node.advance(1)
    rsp = search(bob, "cafe 明天")
    (hit,) = rsp.hits
    assert (hit.session_type, hit.session_id, hit.msg.server_msg_id) == (SINGLE, alice_id, ack.server_msg_id)
    assert (hit.msg.from_user_id, hit.msg.to_session_id, hit.msg.msg_type) == (alice_id, bob_id, 1)
    assert marked(hit) == "Meeting tomorrow at the [Café], 我们[明天]开会"
    assert not rsp.has_more and rsp.next_cursor == ""
    assert search(alice, "TOMORROW").hits[0].session_id == bob_id  # as the searcher files it


def test_groups_from_the_join_on_never_after_leaving_and_scoped_searches_are_checked(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "daveo")]
    alice, bob, carol, dave = (Device(node, n) for n in ("alice", "bobby", "carol", "daveo"))
    gid = alice.create(ids[1:2]).group_info.group_id
    alice.send(gid, "roadmap draft")
    alice.invite(gid, [ids[2]])
    alice.send(gid, "roadmap final")
    bob.conn.send_text(ids[0], "roadmap privately")
    node.advance(1)
    assert texts(search(bob, "roadmap")) == ["roadmap privately", "roadmap final", "roadmap draft"]
    assert texts(search(carol, "roadmap")) == ["roadmap final"]
    assert texts(search(dave, "roadmap")) == []
    assert texts(search(bob, "roadmap", session_type=GROUP, session_id=gid)) == ["roadmap final", "roadmap draft"]
    assert texts(search(bob, "roadmap", session_type=GROUP)) == ["roadmap final", "roadmap draft"]
    assert texts(search(bob, "roadmap", session_type=SINGLE, session_id=ids[0])) == ["roadmap privately"]
    refused = search(dave, "roadmap", session_type=GROUP, session_id=gid)
    assert refused.result_code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND) and refused.result_string
    assert search(dave, "roadmap", session_type=SINGLE, session_id=ids[1]).hits == []  # no such chat of his
    bob.exit(gid)
    assert texts(search(bob, "roadmap")) == ["roadmap privately"]


def test_filters_by_sender_type_and_time_and_pages_by_cursor(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    start = int(node.clock.seconds())
    for i in range(5):
        (alice if i % 2 else bob).conn.send_text(bob_id if i % 2 else alice_id, f"report {i}")
        node.advance(10)
    assert texts(search(bob, "report", sender_id=alice_id)) == ["report 3", "report 1"]
    assert texts(search(bob, "report", start_time=start + 10, end_time=start + 30)) == ["report 2", "report 1"]
    assert texts(search(bob, "report", msg_type=1, limit=2)) == ["report 4", "report 3"]
    seen, cursor = [], ""
    while True:
        rsp = search(bob, "report", limit=2, cursor=cursor)
        seen += texts(rsp)
        if not rsp.has_more:
            break
        cursor = rsp.next_cursor
    assert seen == [f"report {i}" for i in (4, 3, 2, 1, 0)]


def test_recalled_messages_leave_the_index(node):
    _alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seq = alice.conn.send_text(bob_id, "wrong password hunter2").server_msg_id
    node.advance(1)
    assert texts(search(bob, "hunter2")) == ["wrong password hunter2"]
    rsp = alice.call(Cmd.MSG_RECALL_REQ, pb.CIMMsgRecallReq(session_type=SINGLE, session_id=bob_id, msg_id=seq))
    assert rsp.result_code == 200
    assert texts(search(bob, "hunter2")) == [] and texts(search(alice, "password")) == []
    # a message recalled before the indexer read it is never indexed
    seq = alice.conn.send_text(bob_id, "another hunter3").server_msg_id
    alice.call(Cmd.MSG_RECALL_REQ, pb.CIMMsgRecallReq(session_type=SINGLE, session_id=bob_id, msg_id=seq))
    node.advance(1)
    assert texts(search(bob, "hunter3")) == []


def test_deletes_and_clears_hide_messages_from_that_user_only(node):
    """The ``deletes`` module's events (the contract), fired as it fires them."""
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    seqs = [alice.conn.send_text(bob_id, f"memo {i}").server_msg_id for i in range(4)]
    node.advance(1)
    conv = f"p:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
    node.core.registry.fire("message/deleted", bob_id, conv, [seqs[3]])
    assert texts(search(bob, "memo")) == ["memo 2", "memo 1", "memo 0"]
    node.core.registry.fire("conversation/cleared", bob_id, conv, seqs[1])
    assert texts(search(bob, "memo")) == ["memo 2"]
    assert texts(search(alice, "memo")) == ["memo 3", "memo 2", "memo 1", "memo 0"]


def test_every_refusal_has_its_code_and_a_reason(node):
    node.user("alice")
    alice = Device(node, "alice")
    for query, fields, code in (
        ("", {}, ErrorCode.SEARCH_NO_TERMS),
        ("?!. ,", {}, ErrorCode.SEARCH_NO_TERMS),
        ("x" * 101, {}, ErrorCode.SEARCH_QUERY_TOO_LONG),
        ("a b c d e f g h i", {}, ErrorCode.SEARCH_QUERY_TOO_LONG),
        ("ok", {"cursor": "garbage"}, ErrorCode.SEARCH_BAD_CURSOR),
        ("ok", {"cursor": "1/x:1/2"}, ErrorCode.SEARCH_BAD_CURSOR),
        ("ok", {"cursor": "1/p:1:2/9999999999999999999"}, ErrorCode.SEARCH_BAD_CURSOR),
        ("ok", {"session_type": 7}, ErrorCode.INVALID_ARGUMENT),
        ("ok", {"session_id": 5}, ErrorCode.INVALID_ARGUMENT),
        ("ok", {"msg_type": 3}, ErrorCode.INVALID_ARGUMENT),
        ("ok", {"start_time": 10, "end_time": 5}, ErrorCode.INVALID_ARGUMENT),
        ("ok", {"sender_id": 2**63}, ErrorCode.MALFORMED_BODY),  # the schema checks id ranges
    ):
        rsp = search(alice, query, **fields)
        assert (rsp.result_code, bool(rsp.result_string)) == (code, True), (query, fields, rsp)
    assert search(alice, "ok", limit=10_000).result_code == 200  # a page size is capped, not refused


def test_messages_stored_before_a_crash_are_caught_up_at_start():
    first = MemoryNode(**{"limits.idle_timeout": 1000.0})
    alice_id, bob_id = first.user("alice"), first.user("bobby")
    # stored behind the indexer's back (as by a node that died before its next round)
    first.result(first.store.append(new_message(alice_id, bob_id, "lost-1", data=b"survivor text")))
    second = MemoryNode(store=first.store, **{"limits.idle_timeout": 1000.0})
    bob = Device(second, "bobby")
    second.advance(1)
    assert texts(search(bob, "survivor")) == ["survivor text"]


def test_a_message_sent_on_one_node_is_found_from_another():
    _, (n1, n2) = memory_cluster(**{"limits.idle_timeout": 1000.0})
    _alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    alice.conn.send_text(bob_id, "across the cluster")
    n1.advance(1)
    assert texts(search(bob, "cluster")) == ["across the cluster"]


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


async def _found(client, query: str, tries: int = 40, **fields) -> pb.CIMMsgSearchRsp:
    """Search until the indexer (once a second) has the messages: search is eventually consistent."""
    from twisted.internet import reactor, task

    for _ in range(tries):
        rsp = await client.search(query, **fields)
        if rsp.hits or rsp.result_code != 200:
            return rsp
        await task.deferLater(reactor, 0.1, lambda: None)
    return rsp


@pytest_twisted.ensureDeferred
async def test_search_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    ack = await alice.send_message(bob_id, "Quarterly numbers are in, 季度报告已发")
    await bob.next_push(Cmd.MSG_DATA)
    rsp = await _found(bob, "quarterly 报告")
    assert rsp.result_code == 200
    (hit,) = rsp.hits
    assert (hit.session_id, hit.msg.server_msg_id, hit.msg.from_user_id) == (alice_id, ack.server_msg_id, alice_id)
    assert marked(hit) == "[Quarterly] numbers are in, 季度[报告]已发"
    refused = await bob.search("")
    assert refused.result_code == ErrorCode.SEARCH_NO_TERMS and refused.result_string
    scoped = await bob.search("numbers", session_type=SINGLE, session_id=alice_id)
    assert [h.msg.server_msg_id for h in scoped.hits] == [ack.server_msg_id]


def test_the_indexer_takes_at_most_batch_size_messages_a_round():
    node = MemoryNode(**{"limits.idle_timeout": 1000.0, "search.batch_size": 3})
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    for i in range(7):
        alice.conn.send_text(bob_id, f"chunk {i}")
    search_module = node.core.feature("search")
    node.advance(1)
    assert search_module.indexed == 3 and len(texts(search(bob, "chunk"))) == 3
    node.advance(2)
    assert search_module.indexed == 7 and len(texts(search(bob, "chunk", limit=50))) == 7
    assert alice_id


def test_a_busy_node_indexes_less_per_round_and_catches_up_after():
    node = MemoryNode(**{"limits.idle_timeout": 1000.0, "search.busy_rate": 5, "search.busy_batch_size": 2})
    _, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    for i in range(10):  # 10 messages in a second: busy
        alice.conn.send_text(bob_id, f"peak {i}")
    indexer = node.core.feature("search")
    node.advance(1)
    assert indexer.indexed == 2
    node.advance(1)  # quiet again: the rest at once
    assert indexer.indexed == 10 and len(texts(search(bob, "peak"))) == 10


# -- two nodes on PostgreSQL and Redis, over real sockets


@pytest_twisted.ensureDeferred
async def test_two_nodes_on_postgresql_index_and_search_each_others_messages(two_nodes):  # noqa: F811
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n1.register("bobby")
    alice = await n1.login("alice")
    bob = await n2.login("bobby", transport="ws-json")
    ack = await alice.send_message(bob_id, "Cross node 搜索测试 works")
    await bob.next_push(Cmd.MSG_DATA)
    rsp = await _found(bob, "搜索 cross")  # indexed by n1, searched on n2
    assert [(h.session_id, h.msg.server_msg_id) for h in rsp.hits] == [(alice_id, ack.server_msg_id)]
    assert marked(rsp.hits[0]) == "[Cross] node [搜索]测试 works"
    assert (await alice.recall(bob_id, ack.server_msg_id)).result_code == 200
    assert (await bob.search("cross")).hits == []


def test_custom_messages_are_found_by_their_description(node):
    """With the custom_messages module: a msg_type 100 body's description is what is searchable."""
    import json

    alice_id, bob_id = node.user("alice"), node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    body = {"type": "redpacket", "amount": 888, "description": "[Red packet] Happy new year!"}
    msg = pb.CIMMsgData(
        to_session_id=bob_id, client_msg_id="c-1", msg_type=100, session_type=SINGLE, msg_data=json.dumps(body).encode()
    )
    assert alice.call(Cmd.MSG_DATA, msg).res_code == 1
    alice.conn.send_text(bob_id, "happy birthday")
    node.advance(1)
    rsp = search(bob, "happy", msg_type=100)
    assert [h.snippet for h in rsp.hits] == ["[Red packet] Happy new year!"]
    assert rsp.hits[0].msg.msg_type == 100 and rsp.hits[0].session_id == alice_id
    assert len(search(bob, "happy").hits) == 2 and search(bob, "888").hits == []


def test_forwarded_copies_and_chat_records_are_found_by_their_recipient(node):
    """With the forward module: a copy is a message like any other; a chat record (12) is found by
    its title and by what its records say."""
    alice_id, bob_id, carol_id = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    seqs = [alice.conn.send_text(bob_id, t).server_msg_id for t in ("lunch at noon?", "the 寿司 place")]
    for merged in (False, True):
        req = pb.CIMMsgForwardReq(
            session_type=SINGLE,
            session_id=alice_id,
            msg_ids=seqs,
            targets=[pb.CIMForwardTarget(session_type=SINGLE, session_id=carol_id)],
            merged=merged,
            title="Plans with Alice" if merged else "",
            client_forward_id=f"f-{merged}",
        )
        assert bob.call(Cmd.MSG_FORWARD_REQ, req).result_code == 200
    node.advance(1)
    found = search(carol, "寿司")
    assert [h.msg.msg_type for h in found.hits] == [12, 1]  # the record (newest), then the copy
    assert all(h.session_id == bob_id for h in found.hits)
    assert [h.msg.msg_type for h in search(carol, "plans alice").hits] == [12]


def test_the_periodic_catch_up_finds_what_another_node_stored_and_never_indexed():
    node = MemoryNode(**{"limits.idle_timeout": 1000.0, "search.catch_up_interval": 5.0})
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    bob = Device(node, "bobby")
    node.advance(1)  # the start-up catch-up is done
    # stored by a node that died before its indexing round: this node heard nothing of it
    node.result(node.store.append(new_message(alice_id, bob_id, "orphan-1", data=b"orphaned words")))
    node.advance(2)
    assert texts(search(bob, "orphaned")) == []
    node.advance(5)
    assert texts(search(bob, "orphaned")) == ["orphaned words"]
