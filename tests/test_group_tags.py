"""Group tags and custom fields: on a memory reactor (who may set them, normalising, bounds,
pushes, fetching with the group's info, search by tag in my groups and discoverable ones, paging)
and over every transport."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

MINE, DISCOVERABLE = pb.kCIM_GROUP_TAG_SCOPE_MINE, pb.kCIM_GROUP_TAG_SCOPE_DISCOVERABLE


def set_tags(device: Device, group_id: int, tags=None, fields=None, discoverable=None) -> pb.CIMGroupTagsSetRsp:
    req = pb.CIMGroupTagsSetReq(group_id=group_id)
    if tags is not None:
        req.set_tags = True
        req.tags.extend(tags)
    if fields is not None:
        req.custom_fields = fields if isinstance(fields, str) else json.dumps(fields)
    if discoverable is not None:
        req.discoverable = discoverable
    return device.call(Cmd.GROUP_TAGS_SET_REQ, req)


def get_tags(device: Device, *group_ids: int) -> pb.CIMGroupTagsGetRsp:
    return device.call(Cmd.GROUP_TAGS_GET_REQ, pb.CIMGroupTagsGetReq(group_id_list=list(group_ids)))


def search(device: Device, tag: str, scope: int = MINE, after: int = 0, limit: int = 0) -> pb.CIMGroupTagsSearchRsp:
    req = pb.CIMGroupTagsSearchReq(tag=tag, scope=scope, after_group_id=after, limit=limit)
    return device.call(Cmd.GROUP_TAGS_SEARCH_REQ, req)


def found(rsp) -> list[int]:
    assert rsp.result_code == 200, rsp
    return [t.group_id for t in rsp.group_tags_list]


@pytest.fixture
def node():
    settings = {"group_tags.max_tags": 3, "group_tags.max_page": 5, "group_tags.page_size": 4}
    return MemoryNode(**{"limits.idle_timeout": 100_000.0, **settings})


@pytest.fixture
def people(node):
    for name in ("alice", "bobby", "carol", "david"):
        node.user(name)
    return [Device(node, n) for n in ("alice", "bobby", "carol", "david")]


def test_the_owner_sets_tags_and_fields_and_members_are_told(node, people):
    alice, bob, carol, dave = people
    gid = alice.create([bob.user_id, carol.user_id], "Hikers").group_info.group_id
    for d in people:
        d.pushes()
    raw = ["  Hiking ", "ＢＥＲＬＩＮ", "hiking", "trail  running"]
    rsp = set_tags(alice, gid, raw, {"city": "Berlin", "level": 2})
    assert rsp.result_code == 200, rsp
    info = rsp.group_tags
    assert list(info.tags) == ["hiking", "berlin", "trail running"]  # NFKC, case-folded, distinct
    assert json.loads(info.custom_fields) == {"city": "Berlin", "level": 2}
    assert (info.version, info.updated_by, info.discoverable) == (1, alice.user_id, False)
    assert info.group_info.group_name == "Hikers"
    for d in (bob, carol):
        (note,) = d.pushes(Cmd.GROUP_TAGS_NOTIFY)
        assert (note.group_id, note.actor_id, list(note.group_tags.tags)) == (gid, alice.user_id, list(info.tags))
        assert note.group_tags.custom_fields == info.custom_fields and note.group_tags.version == 1
    assert alice.pushes(Cmd.GROUP_TAGS_NOTIFY) == [] and dave.pushes(Cmd.GROUP_TAGS_NOTIFY) == []
    # only what is sent changes
    rsp = set_tags(alice, gid, fields="{}")
    assert (list(rsp.group_tags.tags), rsp.group_tags.custom_fields, rsp.group_tags.version) == (
        list(info.tags),
        "{}",
        2,
    )
    rsp = set_tags(alice, gid, tags=[])
    assert list(rsp.group_tags.tags) == [] and rsp.group_tags.version == 3
    (fetched,) = get_tags(bob, gid).group_tags_list
    assert (fetched.group_id, list(fetched.tags), fetched.version) == (gid, [], 3)
    assert fetched.group_info.group_id == gid and fetched.group_info.member_count == 3


def test_who_may_set_them(node, people):
    alice, bob, carol, dave = people
    gid = alice.create([bob.user_id, carol.user_id]).group_info.group_id
    assert set_tags(bob, gid, ["x"]).result_code == ErrorCode.FORBIDDEN
    assert set_tags(dave, gid, ["x"]).result_code == ErrorCode.FORBIDDEN
    assert alice.set_admin(gid, [bob.user_id]).result_code == 200
    assert set_tags(bob, gid, ["x"]).result_code == 200
    assert set_tags(alice, 999, ["x"]).result_code == ErrorCode.NOT_FOUND
    assert set_tags(alice, gid).result_code == ErrorCode.INVALID_ARGUMENT  # nothing to change
    assert alice.dismiss(gid).result_code == 200
    assert set_tags(alice, gid, ["y"]).result_code == ErrorCode.NOT_FOUND
    assert get_tags(alice, gid).group_tags_list == []


@pytest.mark.parametrize(
    "tags, fields",
    [
        (["a", "b", "c", "d"], None),  # max_tags 3
        (["x" * 33], None),  # max_tag_length 32
        (["   "], None),
        (["bad\u0007tag"], None),
        (None, "[1, 2]"),  # not an object
        (None, "{not json"),
        (None, '{"n": NaN}'),
        (None, json.dumps({f"k{i}": i for i in range(21)})),  # max_fields 20
        (None, json.dumps({"k": "v" * 3000})),  # max_fields_bytes 2048
        (None, json.dumps({"": 1})),
    ],
)
def test_bounds(node, people, tags, fields):
    alice, bob, *_ = people
    gid = alice.create([bob.user_id]).group_info.group_id
    rsp = set_tags(alice, gid, tags, fields)
    assert (rsp.result_code, rsp.group_id) == (ErrorCode.INVALID_ARGUMENT, gid) and rsp.result_string
    assert get_tags(alice, gid).group_tags_list[0].version == 0  # nothing stored


def test_fetch_leaves_out_groups_one_is_not_in(node, people):
    alice, bob, carol, dave = people
    g1 = alice.create([bob.user_id]).group_info.group_id
    g2 = carol.create([dave.user_id]).group_info.group_id
    assert set_tags(alice, g1, ["a"]).result_code == 200
    assert set_tags(carol, g2, ["a"]).result_code == 200
    assert found(get_tags(bob, g1, g2, 12345)) == [g1]
    assert get_tags(bob).result_code == ErrorCode.INVALID_ARGUMENT
    assert get_tags(bob, *range(1, 102)).result_code == ErrorCode.INVALID_ARGUMENT


def test_search_my_groups_and_discoverable_ones_paged(node, people):
    alice, bob, carol, dave = people
    mine = [alice.create([bob.user_id], f"g{i}").group_info.group_id for i in range(7)]
    other = carol.create([dave.user_id], "Carol's").group_info.group_id
    secret = carol.create([dave.user_id], "Secret").group_info.group_id
    for gid in mine:
        assert set_tags(alice, gid, ["Chess"]).result_code == 200
    assert set_tags(carol, other, ["chess"], discoverable=True).result_code == 200
    assert carol.update(other, announcement="members only").result_code == 200
    assert set_tags(carol, secret, ["chess"]).result_code == 200
    # my groups, paged by id (max_page 5)
    page = search(bob, " CHESS ", limit=5)
    assert found(page) == mine[:5] and page.has_more
    page = search(bob, "chess", after=mine[4], limit=5)
    assert found(page) == mine[5:] and not page.has_more
    assert found(search(bob, "chess", limit=3)) == mine[:3]
    assert search(bob, "chess", limit=6).result_code == ErrorCode.INVALID_ARGUMENT
    assert found(search(dave, "chess")) == [other, secret]
    assert found(search(bob, "draughts")) == []
    # discoverable: anyone finds it, without what is for members only
    (hit,) = search(bob, "chess", DISCOVERABLE).group_tags_list
    assert (hit.group_id, hit.discoverable, hit.group_info.group_name) == (other, True, "Carol's")
    assert hit.group_info.announcement == ""
    (hit,) = search(dave, "chess", DISCOVERABLE).group_tags_list
    assert hit.group_info.announcement == "members only"
    assert search(bob, "", MINE).result_code == ErrorCode.INVALID_ARGUMENT
    assert search(bob, "chess", 7).result_code == ErrorCode.INVALID_ARGUMENT
    # a dismissed group is found no more
    assert carol.dismiss(other).result_code == 200
    assert found(search(bob, "chess", DISCOVERABLE)) == []


def test_discoverability_can_be_switched_off():
    node = MemoryNode(**{"group_tags.discoverable": False})
    node.user("alice")
    node.user("bobby")
    alice = Device(node, "alice")
    gid = alice.create([node.result(node.store.user_by_name("bobby")).user_id]).group_info.group_id
    assert set_tags(alice, gid, ["x"], discoverable=True).result_code == ErrorCode.NOT_SUPPORTED
    assert search(alice, "x", DISCOVERABLE).result_code == ErrorCode.NOT_SUPPORTED
    assert found(search(alice, "x")) == []


def test_members_on_another_node_are_told():
    hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 100_000.0})
    n1.user("alice")
    n1.user("bobby")
    alice, bob = Device(n1, "alice"), Device(n2, "bobby")
    gid = alice.create([bob.user_id]).group_info.group_id
    n1.clock.advance(0)
    bob.pushes()
    assert set_tags(alice, gid, ["Chess", "棋"], {"k": [1, 2]}, discoverable=True).result_code == 200
    n1.clock.advance(0)
    (note,) = bob.pushes(Cmd.GROUP_TAGS_NOTIFY)
    assert (list(note.group_tags.tags), note.group_tags.discoverable) == (["chess", "棋"], True)
    assert json.loads(note.group_tags.custom_fields) == {"k": [1, 2]}
    assert found(search(bob, "棋")) == [gid]


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_tags_over_every_transport(live_node, transport):
    await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    await live_node.register("carol")
    alice = await live_node.login("alice", transport=transport)
    bob = await live_node.login("bobby", transport=transport)
    carol = await live_node.login("carol", transport=transport)
    created = await alice.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="Readers", member_id_list=[bob_id])
    )
    gid = created.group_info.group_id
    rsp = await alice.set_group_tags(gid, ["Books", "读书会"], {"genre": "sci-fi", "weekly": True}, discoverable=True)
    assert rsp.result_code == 200 and list(rsp.group_tags.tags) == ["books", "读书会"]
    _, _, note = await bob.next_push(Cmd.GROUP_TAGS_NOTIFY)
    assert (note.group_id, list(note.group_tags.tags)) == (gid, ["books", "读书会"])
    assert json.loads(note.group_tags.custom_fields) == {"genre": "sci-fi", "weekly": True}
    (got,) = (await bob.group_tags([gid])).group_tags_list
    assert (got.group_info.group_name, json.loads(got.custom_fields)["genre"]) == ("Readers", "sci-fi")
    assert [t.group_id for t in (await bob.search_group_tags("读书会")).group_tags_list] == [gid]
    assert [t.group_id for t in (await carol.search_group_tags("BOOKS")).group_tags_list] == []
    hits = await carol.search_group_tags("books", discoverable=True)
    assert [t.group_id for t in hits.group_tags_list] == [gid] and not hits.has_more
    refused = await bob.set_group_tags(gid, ["mine now"])
    assert refused.result_code == ErrorCode.FORBIDDEN and refused.result_string
