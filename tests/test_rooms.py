"""Chat rooms on the memory node (exact and instant): batching per reactor turn, the room's rate
with the owner's priority, the member cap (across nodes too), mutes, bans and kicks, coalesced
notices, the recent messages a newcomer gets, persisted history, and bad input."""

from __future__ import annotations

import dataclasses

import pytest

from coffeechat.features.rooms import RoomMsgPush
from coffeechat.protocols.framing import encode_frame
from coffeechat.schema import Cmd, pb
from tests.memory_node import MemoryNode, memory_cluster

OK = pb.kCIM_ERR_SUCCESS
MUTE, UNMUTE, BAN, UNBAN, KICK = (
    pb.kCIM_ROOM_ACTION_MUTE,
    pb.kCIM_ROOM_ACTION_UNMUTE,
    pb.kCIM_ROOM_ACTION_BAN,
    pb.kCIM_ROOM_ACTION_UNBAN,
    pb.kCIM_ROOM_ACTION_KICK,
)
ADD_MOD, REMOVE_MOD = pb.kCIM_ROOM_ACTION_ADD_MODERATOR, pb.kCIM_ROOM_ACTION_REMOVE_MODERATOR


def of(frames, cmd):
    return [body for c, _, body in frames if c == cmd]


def answer(conn, cmd, msg):
    """Send a request and return its answer (the frame with the request's seq)."""
    seq = conn.send(cmd, msg)
    frames = conn.frames()
    found = [body for _, s, body in frames if s == seq and _ not in PUSHES]
    assert len(found) == 1, frames
    conn.rest = [f for f in frames if f[1] != seq or f[0] in PUSHES]
    return found[0]


PUSHES = {Cmd.ROOM_MSG_NOTIFY, Cmd.ROOM_EVENT_NOTIFY, Cmd.ROOM_MODERATE_NOTIFY}


def create(conn, name="Live", **fields):
    rsp = answer(conn, Cmd.ROOM_CREATE_REQ, pb.CIMRoomCreateReq(name=name, **fields))
    assert rsp.result_code == OK, rsp
    return rsp.room.room_id


def join(conn, room_id, code=OK):
    rsp = answer(conn, Cmd.ROOM_JOIN_REQ, pb.CIMRoomJoinReq(room_id=room_id))
    assert rsp.result_code == code, rsp
    return rsp


def say(conn, room_id, text="hi", **fields):
    """Send without reading: the frames of this turn are read together."""
    fields.setdefault("msg_type", 1)
    return conn.send(Cmd.ROOM_MSG_REQ, pb.CIMRoomMsgReq(room_id=room_id, msg_data=text.encode(), **fields))


def said(conn, room_id, text="hi", **fields):
    seq = say(conn, room_id, text, **fields)
    frames = conn.frames()
    (rsp,) = [body for c, s, body in frames if s == seq and c == Cmd.ROOM_MSG_RSP]
    return rsp


def moderate(conn, room_id, target, action, duration=0):
    req = pb.CIMRoomModerateReq(room_id=room_id, target_user_id=target, action=action, duration=duration)
    return answer(conn, Cmd.ROOM_MODERATE_REQ, req)


def people(node, *names):
    conns = []
    for i, name in enumerate(names):
        node.user(name)
        conn = node.connect(f"10.0.0.{i + 1}")
        conn.login(name)
        conns.append(conn)
    return conns


@pytest.fixture
def node():
    return MemoryNode(**{"rooms.notice_interval": 2.0})


def test_a_turns_messages_go_out_as_one_frame_per_member_encoded_once(node):
    alice, bob, carol = people(node, "alice", "bobby", "carol")
    room = create(alice)
    for conn in (alice, bob, carol):
        join(conn, room)
    kinds = node.core.registry.push_kinds
    encoded = []
    kind = kinds[RoomMsgPush]
    kinds[RoomMsgPush] = dataclasses.replace(kind, encode=lambda push: encoded.append(push) or kind.encode(push))
    for i in range(3):
        say(alice, room, f"m{i}")
    say(bob, room, "from bob")
    frames = {conn: conn.frames() for conn in (alice, bob, carol)}
    acks = of(frames[alice], Cmd.ROOM_MSG_RSP) + of(frames[bob], Cmd.ROOM_MSG_RSP)
    assert [a.result_code for a in acks] == [OK] * 4
    assert len(encoded) == 1  # one encoding for the batch, whatever the number of members
    for conn in (alice, bob, carol):
        (notify,) = of(frames[conn], Cmd.ROOM_MSG_NOTIFY)
        assert [m.msg_data for m in notify.msgs] == [b"m0", b"m1", b"m2", b"from bob"]
        assert [m.msg_id for m in notify.msgs] == sorted(a.msg_id for a in acks)
    rooms = node.core.feature("rooms")
    assert (rooms.batches, rooms.delivered) == (1, 3)
    # the next turn is the next batch
    say(carol, room, "later")
    assert [m.msg_data for n in of(alice.frames(), Cmd.ROOM_MSG_NOTIFY) for m in n.msgs] == [b"later"]
    assert rooms.batches == 2


def test_msg_ids_increase_and_carry_the_node(node):
    (alice,) = people(node, "alice")
    room = create(alice)
    join(alice, room)
    node.advance(5)
    ids = [said(alice, room, f"{i}").msg_id for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert ids[0] >> 22 == 5000  # milliseconds


def test_over_the_rooms_rate_members_are_dropped_first_and_the_owner_always_passes():
    node = MemoryNode(**{"rooms.max_messages_per_second": 5, "rooms.connection_messages_per_second": 100,
                         "rooms.connection_message_burst": 100})  # fmt: skip
    alice, bob, carol = people(node, "alice", "bobby", "carol")
    room = create(alice)
    for conn in (alice, bob, carol):
        join(conn, room)
    assert moderate(alice, room, carol.user_id, ADD_MOD).result_code == OK
    codes = [said(bob, room, f"b{i}").result_code for i in range(7)]
    assert codes == [OK] * 5 + [pb.kCIM_ERR_ROOM_BUSY] * 2
    assert [said(alice, room, f"a{i}").result_code for i in range(5)] == [OK] * 5  # the owner: never refused
    assert said(carol, room, "mod").result_code == OK  # nor a moderator
    node.advance(1)  # the owner's messages spent the refill: members wait longer
    assert said(bob, room, "again").result_code == pb.kCIM_ERR_ROOM_BUSY
    node.advance(3)
    assert said(bob, room, "again").result_code == OK
    assert node.core.feature("rooms").busy == 3


def test_a_connection_has_its_own_rate():
    node = MemoryNode(**{"rooms.connection_messages_per_second": 1, "rooms.connection_message_burst": 3})
    alice, bob = people(node, "alice", "bobby")
    room = create(alice)
    join(alice, room)
    join(bob, room)
    codes = [said(alice, room).result_code for _ in range(4)]
    assert codes == [OK, OK, OK, pb.kCIM_ERR_RATE_LIMITED]
    assert said(bob, room).result_code == OK


def test_the_member_cap_and_the_rooms_a_connection_may_be_in():
    node = MemoryNode(**{"rooms.max_joined": 2, "rooms.max_rooms_per_user": 3})
    alice, bob, carol = people(node, "alice", "bobby", "carol")
    small = create(alice, max_members=2)
    join(alice, small)
    join(bob, small)
    join(carol, small, pb.kCIM_ERR_ROOM_FULL)
    join(bob, small)  # joining again is no error
    answer(bob, Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=small))
    join(carol, small)
    other, third = create(alice, "Two"), create(alice, "Three")
    join(alice, other)
    join(alice, third, pb.kCIM_ERR_TOO_MANY_ROOMS)  # max_joined
    rsp = answer(alice, Cmd.ROOM_CREATE_REQ, pb.CIMRoomCreateReq(name="Four"))
    assert rsp.result_code == pb.kCIM_ERR_TOO_MANY_ROOMS  # max_rooms_per_user
    answer(alice, Cmd.ROOM_CLOSE_REQ, pb.CIMRoomCloseReq(room_id=third))
    assert answer(alice, Cmd.ROOM_CREATE_REQ, pb.CIMRoomCreateReq(name="Four")).result_code == OK


def test_the_cap_counts_members_on_every_node():
    hub, (n1, n2) = memory_cluster(**{"rooms.notice_interval": 1.0})
    (alice,) = people(n1, "alice")
    bob = n2.connect("10.0.1.1")
    n2.core.feature("accounts")  # the accounts are shared (one store)
    n1.user("bobby")
    bob.login("bobby")
    n1.user("carol")
    carol = n1.connect("10.0.0.9")
    carol.login("carol")
    room = create(alice, max_members=2)
    join(alice, room)
    join(bob, room)
    n1.clock.advance(0)  # n2 publishes its count at once (its first member)
    n1.clock.advance(0)
    assert n1.core.feature("rooms").member_count(room) == 2 == n2.core.feature("rooms").member_count(room)
    join(carol, room, pb.kCIM_ERR_ROOM_FULL)
    members = answer(carol, Cmd.ROOM_MEMBERS_REQ, pb.CIMRoomMembersReq(room_id=room))
    assert members.member_count == 2 and {m.user_id for m in members.sample} == {alice.user_id, bob.user_id}
    bob.close()
    n1.clock.advance(0)
    n1.clock.advance(0)
    join(carol, room)


def test_one_cross_node_payload_per_batch_and_none_to_nodes_without_members():
    hub, (n1, n2, n3) = memory_cluster(("n1", "n2", "n3"))
    (alice,) = people(n1, "alice")
    n1.user("bobby")
    bob = n2.connect("10.0.1.1")
    bob.login("bobby")
    room = create(alice)
    join(alice, room)
    join(bob, room)
    n1.clock.advance(0)
    n1.clock.advance(0)
    hub.delivered.clear()
    for i in range(5):
        say(alice, room, f"m{i}")
    alice.frames()
    payloads = [(node, p) for node, p in hub.delivered if b'"rooms/msgs"' in p]
    assert [node for node, _ in payloads] == ["n2"]
    (notify,) = of(bob.frames(), Cmd.ROOM_MSG_NOTIFY)
    assert [m.msg_data for m in notify.msgs] == [f"m{i}".encode() for i in range(5)]
    assert [m.from_nick_name for m in notify.msgs] == ["Alice"] * 5
    # and back: bob's message reaches alice on n1
    say(bob, room, "from n2")
    bob.frames()
    (back,) = of(alice.frames(), Cmd.ROOM_MSG_NOTIFY)
    assert [m.msg_data for m in back.msgs] == [b"from n2"]
    # bob leaves: n2 holds nobody, and gets nothing more
    answer(bob, Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room))
    n1.clock.advance(0)
    n1.clock.advance(0)
    hub.delivered.clear()
    say(alice, room, "alone")
    alice.frames()
    assert [p for _, p in hub.delivered if b'"rooms/msgs"' in p] == []


def test_mute_kick_ban_and_who_may_do_what(node):
    alice, bob, carol, dave = people(node, "alice", "bobby", "carol", "david")
    room = create(alice)
    for conn in (alice, bob, carol, dave):
        join(conn, room)
    # members moderate nobody; only the owner names moderators
    assert moderate(bob, room, carol.user_id, MUTE).result_code == pb.kCIM_ERR_FORBIDDEN
    assert moderate(alice, room, bob.user_id, ADD_MOD).result_code == OK
    assert moderate(bob, room, carol.user_id, ADD_MOD).result_code == pb.kCIM_ERR_FORBIDDEN
    assert moderate(bob, room, alice.user_id, MUTE).result_code == pb.kCIM_ERR_FORBIDDEN  # not the owner
    assert moderate(alice, room, dave.user_id, ADD_MOD).result_code == OK
    assert moderate(bob, room, dave.user_id, KICK).result_code == pb.kCIM_ERR_FORBIDDEN  # not another moderator
    assert moderate(alice, room, dave.user_id, REMOVE_MOD).result_code == OK
    # mute, for a minute
    assert moderate(bob, room, carol.user_id, MUTE, 20).result_code == OK
    (notice,) = of(carol.frames(), Cmd.ROOM_MODERATE_NOTIFY)
    assert (notice.action, notice.by_user_id, notice.until) == (MUTE, bob.user_id, int(node.clock.seconds()) + 20)
    assert said(carol, room).result_code == pb.kCIM_ERR_ROOM_MUTED
    assert join(carol, room).muted_until == notice.until
    node.advance(21)
    assert said(carol, room).result_code == OK
    assert moderate(bob, room, carol.user_id, MUTE).result_code == OK  # no end
    assert said(carol, room).result_code == pb.kCIM_ERR_ROOM_MUTED
    assert moderate(bob, room, carol.user_id, UNMUTE).result_code == OK
    assert said(carol, room).result_code == OK
    # kick: out now, may come back
    assert moderate(bob, room, dave.user_id, KICK).result_code == OK
    assert [n.action for n in of(dave.frames(), Cmd.ROOM_MODERATE_NOTIFY)] == [ADD_MOD, REMOVE_MOD, KICK]
    assert said(dave, room).result_code == pb.kCIM_ERR_ROOM_NOT_JOINED
    join(dave, room)
    # ban: out, and cannot come back until unbanned
    assert moderate(alice, room, dave.user_id, BAN).result_code == OK
    assert said(dave, room).result_code == pb.kCIM_ERR_ROOM_NOT_JOINED
    join(dave, room, pb.kCIM_ERR_ROOM_BANNED)
    assert moderate(alice, room, dave.user_id, UNBAN).result_code == OK
    join(dave, room)
    # a ban with an end
    assert moderate(alice, room, dave.user_id, BAN, 20).result_code == OK
    join(dave, room, pb.kCIM_ERR_ROOM_BANNED)
    node.advance(21)
    join(dave, room)
    assert node.core.feature("rooms").member_count(room) == 4


def test_moderation_is_stored_and_reaches_every_node():
    hub, (n1, n2) = memory_cluster()
    alice, bob = people(n1, "alice", "bobby")
    room = create(alice)
    join(alice, room)
    rooms2 = n2.core.feature("rooms")
    bob_2 = n2.connect("10.0.1.1")
    bob_2.login("bobby")
    join(bob_2, room)
    join(bob, room)
    assert moderate(alice, room, bob.user_id, BAN).result_code == OK
    n1.clock.advance(0)
    for conn in (bob, bob_2):
        assert [n.action for n in of(conn.frames(), Cmd.ROOM_MODERATE_NOTIFY)] == [BAN]
    assert room not in rooms2.rooms  # n2 holds nobody of it now
    join(bob_2, room, pb.kCIM_ERR_ROOM_BANNED)
    # a third node, started later, reads the ban from storage
    n3 = MemoryNode(clock=n1.clock, store=n1.store, presence=hub.presence("n3"))
    bob_3 = n3.connect("10.0.2.1")
    bob_3.login("bobby")
    join(bob_3, room, pb.kCIM_ERR_ROOM_BANNED)


def test_join_and_leave_notices_are_coalesced():
    node = MemoryNode(**{"rooms.notice_interval": 2.0, "rooms.notices_max_members": 15})
    (alice,) = people(node, "alice")
    room = create(alice)
    join(alice, room)
    node.advance(2)
    alice.frames()
    fans = []
    for i in range(12):
        fans.append(people(node, f"fan{i:02d}x")[0])
        join(fans[-1], room)
    answer(fans[0], Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room))
    assert of(alice.frames(), Cmd.ROOM_EVENT_NOTIFY) == []  # nothing per join
    node.advance(2)
    (notice,) = of(alice.frames(), Cmd.ROOM_EVENT_NOTIFY)
    assert (notice.member_count, notice.joined_count, notice.left_count) == (12, 12, 1)
    assert len(notice.joined) == 10 and [m.nick_name for m in notice.left] == ["Fan00X"]
    node.advance(2)
    assert of(alice.frames(), Cmd.ROOM_EVENT_NOTIFY) == []  # nothing changed, nothing said
    # over notices_max_members: counts only
    for i in range(12, 16):
        join(people(node, f"fan{i:02d}x")[0], room)
    node.advance(2)
    (notice,) = of(alice.frames(), Cmd.ROOM_EVENT_NOTIFY)
    assert (notice.member_count, notice.joined_count, list(notice.joined)) == (16, 4, [])


def test_a_closed_connection_leaves_its_rooms(node):
    alice, bob = people(node, "alice", "bobby")
    first, second = create(alice, "One"), create(alice, "Two")
    for room in (first, second):
        join(alice, room)
        join(bob, room)
    rooms = node.core.feature("rooms")
    bob.close()
    assert rooms.member_count(first) == 1 == rooms.member_count(second)
    alice.close()
    assert rooms.rooms == {} and rooms._connections == {}


def test_a_newcomer_gets_the_recent_messages_and_storage_keeps_only_those():
    node = MemoryNode(**{"rooms.recent": 5, "rooms.connection_message_burst": 100,
                         "rooms.connection_messages_per_second": 100})  # fmt: skip
    alice, bob = people(node, "alice", "bobby")
    room = create(alice, topic="news")
    join(alice, room)
    for i in range(8):
        said(alice, room, f"m{i}")
    rsp = join(bob, room)
    assert [m.msg_data for m in rsp.recent] == [f"m{i}".encode() for i in range(3, 8)]
    assert rsp.recent[0].from_role == pb.kCIM_ROOM_ROLE_OWNER and rsp.room.topic == "news"
    node.advance(1)  # written in a batch, trimmed to the last five
    rooms = node.core.feature("rooms")
    assert rooms.writes == 1
    stored = node.result(rooms.store.history(room, 0, 100))
    assert [m.data for m in stored] == [f"m{i}".encode() for i in range(7, 2, -1)]
    # everyone leaves: the room is no longer held; the next one in reads storage
    alice.close()
    bob.close()
    assert rooms.rooms == {}
    (carol,) = people(node, "carol")
    assert [m.msg_data for m in join(carol, room).recent] == [f"m{i}".encode() for i in range(3, 8)]
    history = answer(carol, Cmd.ROOM_HISTORY_REQ, pb.CIMRoomHistoryReq(room_id=room))
    assert [m.msg_data for m in history.msgs] == [f"m{i}".encode() for i in range(3, 8)] and not history.has_more


def test_messages_not_yet_written_are_context_too():
    node = MemoryNode(**{"rooms.write_interval": 10.0})
    alice, bob = people(node, "alice", "bobby")
    room = create(alice)
    join(alice, room)
    said(alice, room, "unwritten")
    alice.close()  # nobody holds the room: the message is only in the write queue
    assert [m.msg_data for m in join(bob, room).recent] == [b"unwritten"]


def test_a_persisted_room_keeps_everything_and_history_pages_through_it():
    node = MemoryNode(**{"rooms.recent": 3, "rooms.connection_message_burst": 100,
                         "rooms.connection_messages_per_second": 100})  # fmt: skip
    (alice,) = people(node, "alice")
    room = create(alice, persist_history=True)
    join(alice, room)
    for i in range(10):
        said(alice, room, f"m{i}")
    node.advance(1)
    page = answer(alice, Cmd.ROOM_HISTORY_REQ, pb.CIMRoomHistoryReq(room_id=room, limit=4))
    assert [m.msg_data for m in page.msgs] == [b"m6", b"m7", b"m8", b"m9"] and page.has_more
    seen = list(page.msgs)
    while page.has_more:
        before = page.msgs[0].msg_id
        page = answer(alice, Cmd.ROOM_HISTORY_REQ, pb.CIMRoomHistoryReq(room_id=room, limit=4, before_msg_id=before))
        seen = list(page.msgs) + seen
    assert [m.msg_data for m in seen] == [f"m{i}".encode() for i in range(10)]


def test_the_list_is_newest_first_and_paged(node):
    alice, bob = people(node, "alice", "bobby")
    ids = [create(alice, f"Room {i}") for i in range(3)] + [create(bob, f"Room {i}") for i in range(3, 6)]
    join(bob, ids[2])
    answer(alice, Cmd.ROOM_CLOSE_REQ, pb.CIMRoomCloseReq(room_id=ids[0]))
    page = answer(alice, Cmd.ROOM_LIST_REQ, pb.CIMRoomListReq(limit=3))
    assert [r.room_id for r in page.rooms] == ids[:2:-1] and page.has_more
    page = answer(alice, Cmd.ROOM_LIST_REQ, pb.CIMRoomListReq(limit=3, before_room_id=page.rooms[-1].room_id))
    assert [(r.room_id, r.member_count) for r in page.rooms] == [(ids[2], 1), (ids[1], 0)] and not page.has_more


def test_closing_a_room_puts_everyone_out(node):
    alice, bob = people(node, "alice", "bobby")
    room = create(alice)
    join(alice, room)
    join(bob, room)
    assert answer(bob, Cmd.ROOM_CLOSE_REQ, pb.CIMRoomCloseReq(room_id=room)).result_code == pb.kCIM_ERR_FORBIDDEN
    assert answer(alice, Cmd.ROOM_CLOSE_REQ, pb.CIMRoomCloseReq(room_id=room)).result_code == OK
    assert [n.action for n in of(bob.frames(), Cmd.ROOM_MODERATE_NOTIFY)] == [pb.kCIM_ROOM_ACTION_CLOSED]
    assert said(bob, room).result_code == pb.kCIM_ERR_ROOM_NOT_JOINED
    join(bob, room, pb.kCIM_ERR_NOT_FOUND)
    assert node.core.feature("rooms").rooms == {}


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"name": ""}, pb.kCIM_ERR_INVALID_ARGUMENT),
        ({"name": "   "}, pb.kCIM_ERR_INVALID_ARGUMENT),
        ({"name": "x" * 65}, pb.kCIM_ERR_INVALID_ARGUMENT),
        ({"name": "ok", "topic": "t" * 257}, pb.kCIM_ERR_INVALID_ARGUMENT),
        ({"name": "ok", "max_members": 10_001}, pb.kCIM_ERR_INVALID_ARGUMENT),
    ],
)
def test_bad_rooms_are_refused(node, fields, code):
    (alice,) = people(node, "alice")
    assert answer(alice, Cmd.ROOM_CREATE_REQ, pb.CIMRoomCreateReq(**fields)).result_code == code


def test_bad_input_is_answered(node):
    alice, bob = people(node, "alice", "bobby")
    room = create(alice)
    join(alice, room)
    join(alice, 0, pb.kCIM_ERR_INVALID_ARGUMENT)
    join(alice, 12345, pb.kCIM_ERR_NOT_FOUND)
    assert said(alice, room, "", msg_type=1).result_code == pb.kCIM_ERR_INVALID_MSG
    assert said(alice, room, "x", msg_type=9).result_code == pb.kCIM_ERR_INVALID_MSG  # NOTIFICATION: not clients'
    assert said(alice, room, "x" * (12 * 1024 + 1)).result_code == pb.kCIM_ERR_MSG_TOO_LARGE
    assert said(alice, room, "not json", msg_type=3).result_code == pb.kCIM_ERR_INVALID_MSG
    assert said(alice, room, "x", client_msg_id="c" * 65).result_code == pb.kCIM_ERR_INVALID_ARGUMENT
    rsp = said(bob, room)
    assert rsp.result_code == pb.kCIM_ERR_ROOM_NOT_JOINED and rsp.room_id == room
    assert moderate(alice, room, bob.user_id, 99).result_code == pb.kCIM_ERR_INVALID_ARGUMENT
    assert moderate(alice, room, bob.user_id, pb.kCIM_ROOM_ACTION_CLOSED).result_code == pb.kCIM_ERR_INVALID_ARGUMENT
    assert moderate(alice, room, alice.user_id, MUTE).result_code == pb.kCIM_ERR_INVALID_ARGUMENT
    assert moderate(alice, room, 0, MUTE).result_code == pb.kCIM_ERR_INVALID_ARGUMENT
    assert moderate(alice, room, 999, MUTE).result_code == pb.kCIM_ERROR_USER_NOT_EXIST
    assert moderate(alice, room, bob.user_id, MUTE, 2**31).result_code == pb.kCIM_ERR_INVALID_ARGUMENT
    assert moderate(alice, 777, bob.user_id, MUTE).result_code == pb.kCIM_ERR_NOT_FOUND
    rsp = answer(alice, Cmd.ROOM_HISTORY_REQ, pb.CIMRoomHistoryReq(room_id=777))
    assert rsp.result_code == pb.kCIM_ERR_NOT_FOUND
    rsp = answer(alice, Cmd.ROOM_MEMBERS_REQ, pb.CIMRoomMembersReq(room_id=777))
    assert rsp.result_code == pb.kCIM_ERR_NOT_FOUND
    rsp = answer(bob, Cmd.ROOM_LEAVE_REQ, pb.CIMRoomLeaveReq(room_id=room))
    assert rsp.result_code == pb.kCIM_ERR_ROOM_NOT_JOINED
    # a frame whose body is not a CIMRoomMsgReq is answered too, and the connection stays
    alice.send_raw(encode_frame(Cmd.ROOM_MSG_REQ, 99, b"\xff\xff\xff"))
    frames = alice.frames()
    assert frames and not alice.closed
    assert said(alice, room, "still fine").result_code == OK


def test_the_rate_is_shared_by_the_nodes_holding_members():
    hub, (n1, n2) = memory_cluster(**{"rooms.max_messages_per_second": 10})
    (alice,) = people(n1, "alice")
    n1.user("bobby")
    bob = n2.connect("10.0.1.1")
    bob.login("bobby")
    room = create(alice)
    join(alice, room)
    rooms1 = n1.core.feature("rooms")
    n1.advance(2)
    assert rooms1.rooms[room].bucket.rate == 10
    join(bob, room)
    n1.advance(2)
    assert rooms1.rooms[room].bucket.rate == 5 == n2.core.feature("rooms").rooms[room].bucket.rate


def test_after_a_cluster_outage_a_node_reads_the_moderation_again():
    hub, (n1, n2) = memory_cluster()
    (alice,) = people(n1, "alice")
    n1.user("bobby")
    bob = n2.connect("10.0.1.1")
    bob.login("bobby")
    room = create(alice)
    join(alice, room)
    join(bob, room)
    n1.clock.advance(0)
    hub.cut("n2")
    assert moderate(alice, room, bob.user_id, BAN).result_code == OK
    n1.clock.advance(0)
    assert of(bob.frames(), Cmd.ROOM_MODERATE_NOTIFY) == []  # the broadcast was lost
    hub.restore("n2")
    n1.clock.advance(0)
    assert [n.action for n in of(bob.frames(), Cmd.ROOM_MODERATE_NOTIFY)] == [BAN]
    assert room not in n2.core.feature("rooms").rooms
    join(bob, room, pb.kCIM_ERR_ROOM_BANNED)


def test_content_is_checked_as_for_one_to_one_messages(node):
    (alice,) = people(node, "alice")
    room = create(alice)
    join(alice, room)
    assert said(alice, room, '{"url": "https://x/y.png"}', msg_type=3).result_code == OK  # IMAGE
    assert said(alice, room, '{"kind": "poll", "description": "Vote"}', msg_type=100).result_code == OK  # CUSTOM
    assert said(alice, room, "not json", msg_type=100).result_code == pb.kCIM_ERR_INVALID_MSG
    assert said(alice, room, '{"latitude": "north"}', msg_type=6).result_code == pb.kCIM_ERR_INVALID_MSG
    notify = [m for n in of(alice.received, Cmd.ROOM_MSG_NOTIFY) for m in n.msgs]
    assert [m.msg_type for m in notify] == [3, 100]
