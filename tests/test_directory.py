"""The user directory and profiles on a memory node (search, profile edits and what others see,
CIM v1's user list), across nodes, and over every transport."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device


@pytest.fixture
def node():
    return MemoryNode(**{"limits.idle_timeout": 1000.0})


def search(device: Device, query: str, cursor: str = "", limit: int = 0) -> pb.CIMUserSearchRsp:
    return device.call(Cmd.USER_SEARCH_REQ, pb.CIMUserSearchReq(query=query, cursor=cursor, limit=limit))


def names(rsp) -> list[str]:
    return [u.user_name for u in rsp.users]


def update(device: Device, **fields) -> pb.CIMProfileUpdateRsp:
    return device.call(Cmd.PROFILE_UPDATE_REQ, pb.CIMProfileUpdateReq(**fields))


def listed(device: Device) -> list[int]:
    rsp = device.call(Cmd.FRIEND_QUERY_USER_LIST_REQ, pb.CIMFriendQueryUserListReq())
    return [u.user_id for u in rsp.user_info_list]


def test_search_by_user_name_or_nick_prefix_case_insensitively(node):
    node.user("alice", nick="Wonderland")
    node.user("alfred", nick="Batman's Butler")
    node.user("bobby", nick="ALICE fan")
    node.user("carol", nick="Ｃａｒｏｌｉｎｅ")  # fullwidth: NFKC makes it "caroline"
    me = Device(node, "carol")
    assert names(search(me, "al")) == ["alfred", "alice", "bobby"]  # bobby by his nick
    assert names(search(me, "ALI")) == ["alice", "bobby"]
    assert names(search(me, "wonder")) == ["alice"]
    assert names(search(me, "batman's b")) == ["alfred"]
    assert names(search(me, "caroline")) == ["carol"]
    assert names(search(me, "ＡＬＦ")) == ["alfred"]
    assert names(search(me, "zed")) == []
    rsp = search(me, "alice")
    assert rsp.result_code == 200 and rsp.next_cursor == ""
    (hit,) = [u for u in search(me, "wonder").users]
    assert (hit.nick_name, hit.ex) == ("Wonderland", "{}")


def test_search_pages_with_a_cursor_and_is_bounded(node):
    for i in range(7):
        node.user(f"user{i:02d}x")
    me = Device(node, "user00x")
    first = search(me, "user", limit=3)
    assert names(first) == ["user00x", "user01x", "user02x"] and first.next_cursor
    second = search(me, "user", cursor=first.next_cursor, limit=3)
    assert names(second) == ["user03x", "user04x", "user05x"]
    third = search(me, "user", cursor=second.next_cursor, limit=3)
    assert names(third) == ["user06x"] and third.next_cursor == ""
    assert len(search(me, "user", limit=1000).users) == 7  # capped at search_page_max (50)
    assert search(me, "x" * 65).result_code == ErrorCode.INVALID_ARGUMENT
    assert search(me, "   ").result_code == ErrorCode.INVALID_ARGUMENT
    assert search(me, "user", cursor="garbage!").result_code == ErrorCode.INVALID_ARGUMENT
    # a cursor of another search is refused, not followed
    assert search(me, "bob", cursor=first.next_cursor).result_code == ErrorCode.INVALID_ARGUMENT


def test_disabled_users_are_not_found(node):
    uid = node.user("alice")
    node.user("bobby")
    me = Device(node, "bobby")
    node.result(node.store.update_user(uid, disabled=True))
    assert names(search(me, "ali")) == []


def test_new_accounts_are_found_at_once(node):
    node.user("bobby")
    me = Device(node, "bobby")
    assert names(search(me, "dave")) == []
    node.user("david", nick="Dave the Diver")
    assert names(search(me, "dave")) == ["david"]


def test_profile_update_is_validated_and_seen_by_others(node):
    alice_id = node.user("alice")
    bob_id = node.user("bobby")
    alice, alice2, bob = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    avatar = "https://img.example/a.png"
    rsp = update(alice, nick_name="Queen Alice", avatar_url=avatar, signature="hi", ex='{"a": [1]}')
    assert rsp.result_code == 200
    p = rsp.profile
    assert (p.nick_name, p.avatar_url, p.signature, p.ex) == ("Queen Alice", avatar, "hi", '{"a":[1]}')
    # her other device is told; bob is not pushed, but fetches it and finds her by the new nick
    (notice,) = alice2.pushes(Cmd.PROFILE_CHANGED_NOTIFY)
    assert notice.profile.nick_name == "Queen Alice"
    assert alice.pushes(Cmd.PROFILE_CHANGED_NOTIFY) == []
    assert bob.pushes(Cmd.PROFILE_CHANGED_NOTIFY) == []
    got = bob.call(Cmd.PROFILE_GET_REQ, pb.CIMProfileGetReq(user_id_list=[bob_id, alice_id, 999]))
    assert [(x.user_id, x.nick_name, x.signature) for x in got.profiles] == [
        (alice_id, "Queen Alice", "hi"),
        (bob_id, "Bobby", ""),
    ]
    assert names(search(bob, "queen")) == ["alice"]
    assert names(search(bob, "alice")) == ["alice"]  # still by user name
    # her messages now carry the new nick, from both devices
    alice2.conn.send_text(bob_id, "hello")
    (msg,) = bob.pushes(Cmd.MSG_DATA)
    assert msg.from_nick_name == "Queen Alice"
    # only the fields given change
    assert update(alice, signature="").profile.nick_name == "Queen Alice"
    assert update(alice, nick_name="Al").profile.signature == ""
    assert names(search(bob, "queen")) == []  # the old nick key is gone
    for bad in (
        {"avatar_url": "javascript:alert(1)"},
        {"avatar_url": "ftp://x/y.png"},
        {"avatar_url": "https://" + "a" * 600},
        {"avatar_url": "https://a b/"},
        {"signature": "s" * 257},
        {"ex": "[1, 2]"},
        {"ex": "{not json"},
        {"ex": json.dumps({"k": "v" * 5000})},
        {"ex": '{"a":' * 9 + "1" + "}" * 9},
    ):
        assert update(alice, **bad).result_code == ErrorCode.INVALID_ARGUMENT, bad
    assert update(alice, nick_name="   ").result_code == ErrorCode.USER_INVALID_PARAMETER
    assert update(alice).result_code == ErrorCode.INVALID_ARGUMENT  # nothing to change
    too_many = bob.call(Cmd.PROFILE_GET_REQ, pb.CIMProfileGetReq(user_id_list=list(range(1, 102))))
    assert too_many.result_code == ErrorCode.INVALID_ARGUMENT


def test_the_cim_user_list_has_recent_contacts_not_every_account(node):
    ids = {n: node.user(n) for n in ("alice", "bobby", "carol", "david", "erin1")}
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    assert listed(alice) == []  # no enumeration of the user table any more
    alice.conn.send_text(ids["bobby"], "hi bob")
    carol.conn.send_text(ids["alice"], "hi alice")
    # a group with david does not make him a contact
    alice.create([ids["david"]])
    assert sorted(listed(alice)) == sorted([ids["bobby"], ids["carol"]])
    assert listed(bob) == [ids["alice"]]
    node.result(node.store.update_user(ids["carol"], disabled=True))
    assert listed(alice) == [ids["bobby"]]


def test_the_cim_user_list_includes_friends_when_the_friends_feature_is_there(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    directory = node.core.feature("directory")

    class Friends:
        async def friend_ids(self, user_id):
            return [ids[2]] if user_id == ids[0] else []

    directory._friends = lambda: Friends()
    alice = Device(node, "alice")
    alice.conn.send_text(ids[1], "hi")
    assert listed(alice) == [ids[2], ids[1]]  # friends first, then recent partners


def test_a_nick_change_reaches_pushes_sent_from_another_node():
    hub, (n1, n2) = memory_cluster(**{"limits.idle_timeout": 1000.0})
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice1, alice2, bob = Device(n1, "alice"), Device(n2, "alice"), Device(n2, "bobby")
    assert update(alice1, nick_name="Alice B.").result_code == 200
    n1.clock.advance(0)
    (notice,) = alice2.pushes(Cmd.PROFILE_CHANGED_NOTIFY)  # her device on n2 was told
    assert notice.profile.nick_name == "Alice B."
    alice2.conn.send_text(bob_id, "from n2")
    (msg,) = bob.pushes(Cmd.MSG_DATA)
    assert (msg.from_user_id, msg.from_nick_name) == (alice_id, "Alice B.")


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_directory_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    alice = await live_node.login("alice", transport=transport)
    alice2 = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    found = await bob.search_users("ALI")
    assert [(u.user_id, u.user_name) for u in found.users] == [(alice_id, "alice")]
    rsp = await alice.update_profile(nick_name="Alicia", signature="sig", ex='{"theme": "dark"}')
    assert (rsp.result_code, rsp.profile.nick_name) == (200, "Alicia")
    _, _, notice = await alice2.next_push(Cmd.PROFILE_CHANGED_NOTIFY)
    assert (notice.profile.signature, json.loads(notice.profile.ex)) == ("sig", {"theme": "dark"})
    (profile,) = (await bob.profiles([alice_id])).profiles
    assert (profile.nick_name, profile.signature) == ("Alicia", "sig")
    await alice2.send_message(bob_id, "hello")
    _, _, msg = await bob.next_push(Cmd.MSG_DATA)
    assert msg.from_nick_name == "Alicia"
    assert [u.user_id for u in (await bob.users()).user_info_list] == [alice_id]
    refused = await alice.update_profile(avatar_url="file:///etc/passwd")
    assert refused.result_code == ErrorCode.INVALID_ARGUMENT


def test_sessions_reload_their_user_after_a_cluster_outage():
    hub, (n1, n2) = memory_cluster(**{"limits.idle_timeout": 1000.0})
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    alice2, bob = Device(n2, "alice"), Device(n2, "bobby")
    # the nick changes while n2 does not hear of it (its cluster command was lost)
    n1.result(n1.store.update_user(alice_id, nick_name="Lost Update"))
    n2.core.registry.fire("cluster/resumed", 0.0)
    alice2.conn.send_text(bob_id, "after the outage")
    (msg,) = bob.pushes(Cmd.MSG_DATA)
    assert msg.from_nick_name == "Lost Update"


def test_the_index_sweep_is_bounded_per_search_and_its_mark_moves_over_settled_accounts(node):
    directory = node.core.feature("directory")
    node.user("bobby")
    me = Device(node, "bobby")
    created = [node.result(node.store.create_user(f"bulk{i:04d}", "Bulk", "", 0)).user_id for i in range(1100)]
    last = node.result(node.store.create_user("zzlast", "Last", "", 0)).user_id
    # a search indexes at most two batches of new accounts first: a bulk import never makes it slow
    assert names(search(me, "zzlast")) == []
    assert names(search(me, "zzlast")) == ["zzlast"]  # the next one goes on from there
    assert node.result(directory.store.indexed_upto()) == 0  # nothing settled yet (two minutes)
    node.advance(130, step=10)  # periodic full sweeps
    assert node.result(directory.store.indexed_upto()) == last
    assert names(search(me, "bulk0000")) == ["bulk0000"] and created[0] < last


def test_profile_changes_are_rate_limited_per_user(node):
    node.user("alice")
    node.user("bobby")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    for i in range(5):  # update_burst
        assert update(alice, signature=f"v{i}").result_code == 200
    assert update(alice, signature="one too many").result_code == ErrorCode.RATE_LIMITED
    assert update(bob, signature="bob is not alice").result_code == 200
    node.advance(6)  # 10 a minute: one more after six seconds
    assert update(alice, signature="again").result_code == 200


def test_the_cim_user_list_has_real_friends_first(node):
    from .test_friends import answer, ask

    ids = {n: node.user(n) for n in ("alice", "bobby", "carol")}
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    alice.conn.send_text(ids["bobby"], "hi")
    assert ask(carol, ids["alice"]).result_code == 200
    assert answer(alice, ids["carol"]).result_code == 200
    assert listed(alice) == [ids["carol"], ids["bobby"]]  # the friend, then the recent partner
    assert listed(carol) == [ids["alice"]]
    assert listed(bob) == [ids["alice"]]
