"""Do-not-disturb and pinned conversations on a memory reactor: the notification decision across
time zones and midnight, the conversation list, sync to devices and across nodes, limits."""

from __future__ import annotations

import datetime

import pytest
import pytest_twisted

from coffeechat.errors import ErrorCode
from coffeechat.model import Message
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS
from .memory_node import MemoryNode, memory_cluster
from .test_groups import Device

SINGLE, GROUP = 1, 2


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    """A unix time given in UTC."""
    return datetime.datetime(year, month, day, hour, minute, tzinfo=datetime.UTC).timestamp()


def set_clock(node: MemoryNode, when: float) -> None:
    now = node.clock.seconds()
    assert when >= now
    node.clock.advance(when - now)


def set_dnd(device: Device, enabled=True, start=0, end=0, zone="", silenced=False) -> pb.CIMDndSetRsp:
    settings = pb.CIMDndSettings(
        enabled=enabled, window_start=start, window_end=end, time_zone=zone, mentions_silenced=silenced
    )
    return device.call(Cmd.DND_SET_REQ, pb.CIMDndSetReq(settings=settings))


def mute(device: Device, session_id: int, muted=True, session_type=SINGLE) -> pb.CIMDndMuteRsp:
    return device.call(
        Cmd.DND_MUTE_REQ, pb.CIMDndMuteReq(session_type=session_type, session_id=session_id, muted=muted)
    )


def pin(device: Device, session_id: int, pinned=True, session_type=SINGLE) -> pb.CIMPinRsp:
    return device.call(Cmd.PIN_REQ, pb.CIMPinReq(session_type=session_type, session_id=session_id, pinned=pinned))


def listing(device: Device) -> list[tuple[int, int, bool, bool]]:
    rsp = device.call(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())
    return [(s.session_type, s.session_id, s.muted, s.pinned) for s in rsp.contact_session_list]


def message(sender: int, to: int, session_type: int = SINGLE) -> Message:
    conv = f"g:{to}" if session_type == GROUP else f"p:{min(sender, to)}:{max(sender, to)}"
    return Message(conv, 1, session_type, sender, to, "c-1", 1, b"hi", 0)


def wanted(node: MemoryNode, user_id: int, msg: Message, mentions=(), at_all=False) -> bool:
    return node.result(node.core.feature("dnd").notify_wanted(user_id, msg, mentions, at_all))


@pytest.fixture
def node():
    node = MemoryNode(**{"limits.idle_timeout": 10_000_000.0, "dnd.max_muted": 3, "pins.max_pins": 2})
    set_clock(node, at(2026, 1, 15, 12))
    return node


# -- the notification decision


def test_a_window_crossing_midnight_in_the_users_time_zone(node):
    """22:00-07:00 in Shanghai (UTC+8) and in New York (UTC-5 in January): the same UTC instant
    is inside one user's window and outside the other's."""
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob, carol = ids
    shanghai, new_york = Device(node, "bobby"), Device(node, "carol")
    assert set_dnd(shanghai, start=22 * 60, end=7 * 60, zone="Asia/Shanghai").result_code == 200
    assert set_dnd(new_york, start=22 * 60, end=7 * 60, zone="America/New_York").result_code == 200
    expected = [
        (at(2026, 1, 15, 13, 59), True, True),  # 21:59 in Shanghai; 08:59 in New York
        (at(2026, 1, 15, 14, 0), False, True),  # 22:00: Shanghai's window opens
        (at(2026, 1, 15, 16, 30), False, True),  # 00:30 the next day, still inside
        (at(2026, 1, 15, 22, 59), False, True),  # 06:59
        (at(2026, 1, 15, 23, 0), True, True),  # 07:00 in Shanghai: closed; 18:00 in New York
        (at(2026, 1, 16, 3, 0), True, False),  # 11:00 in Shanghai; 22:00 in New York: open
        (at(2026, 1, 16, 11, 59), True, False),  # 06:59 in New York
        (at(2026, 1, 16, 12, 0), True, True),  # 07:00 in New York
    ]
    for when, for_bob, for_carol in expected:
        set_clock(node, when)
        assert wanted(node, bob, message(alice, bob)) is for_bob, datetime.datetime.fromtimestamp(when, datetime.UTC)
        assert wanted(node, carol, message(alice, carol)) is for_carol, when


def test_the_window_follows_daylight_saving_time(node):
    alice, bob = node.user("alice"), node.user("bobby")
    set_dnd(Device(node, "bobby"), start=22 * 60, end=7 * 60, zone="Europe/Berlin")
    set_clock(node, at(2026, 1, 15, 20, 30))  # 21:30 CET
    assert wanted(node, bob, message(alice, bob))
    set_clock(node, at(2026, 7, 15, 20, 30))  # 22:30 CEST
    assert not wanted(node, bob, message(alice, bob))


def test_daytime_window_all_day_and_off(node):
    alice, bob = node.user("alice"), node.user("bobby")
    device = Device(node, "bobby")
    set_dnd(device, start=9 * 60, end=17 * 60)  # UTC ("")
    assert not wanted(node, bob, message(alice, bob))  # 12:00
    set_clock(node, at(2026, 1, 15, 17))
    assert wanted(node, bob, message(alice, bob))
    set_dnd(device, start=0, end=0)  # all day
    assert not wanted(node, bob, message(alice, bob))
    set_dnd(device, enabled=False, start=0, end=0)
    assert wanted(node, bob, message(alice, bob))
    assert not wanted(node, alice, message(alice, bob))  # one's own message never notifies one


def test_conversation_mutes_and_mentions(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob, carol = ids
    owner, member = Device(node, "alice"), Device(node, "bobby")
    gid = owner.create(ids[1:]).group_info.group_id
    assert mute(member, alice).result_code == 200
    assert mute(member, gid, session_type=GROUP).result_code == 200
    assert not wanted(node, bob, message(alice, bob))  # the muted 1:1 chat
    assert wanted(node, bob, message(carol, bob))  # another one
    group_msg = message(alice, gid, GROUP)
    assert not wanted(node, bob, group_msg)
    assert wanted(node, bob, group_msg, mentions=(bob,))  # @me breaks through
    assert wanted(node, bob, group_msg, at_all=True)  # and @all
    assert not wanted(node, bob, group_msg, mentions=(carol,))
    set_dnd(member, enabled=True)  # global DND, all day: mentions still notify ...
    assert wanted(node, bob, message(carol, bob), mentions=(bob,))
    assert not wanted(node, bob, message(carol, bob))
    set_dnd(member, enabled=True, silenced=True)  # ... unless the user silenced them too
    assert not wanted(node, bob, group_msg, mentions=(bob,), at_all=True)
    set_dnd(member, enabled=False, silenced=True)
    assert not wanted(node, bob, group_msg, mentions=(bob,))  # still a muted group
    assert mute(member, gid, muted=False, session_type=GROUP).result_code == 200
    assert wanted(node, bob, group_msg)


def test_notify_wanted_answers_from_memory_and_sees_changes(node):
    alice, bob = node.user("alice"), node.user("bobby")
    device = Device(node, "bobby")
    dnd = node.core.feature("dnd")
    assert wanted(node, bob, message(alice, bob))
    loads = dnd.loads
    for _ in range(5):
        d = dnd.notify_wanted(bob, message(alice, bob), (), False)
        assert d.called  # cached: answered at once
    assert dnd.loads == loads
    mute(device, alice)
    assert not wanted(node, bob, message(alice, bob))
    assert dnd.loads == loads + 1  # dropped on change, read once again


def test_bad_settings_are_refused(node):
    node.user("bobby")
    device = Device(node, "bobby")
    for zone in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "x" * 100, "Europe/Berlin\x00"):
        rsp = set_dnd(device, start=1, end=2, zone=zone)
        assert rsp.result_code == ErrorCode.DND_BAD_TIME_ZONE, zone
        assert rsp.result_string
    assert set_dnd(device, start=1440, end=0).result_code == ErrorCode.INVALID_ARGUMENT
    assert set_dnd(device, start=0, end=100_000).result_code == ErrorCode.INVALID_ARGUMENT
    got = device.call(Cmd.DND_GET_REQ, pb.CIMDndGetReq())
    assert not got.settings.enabled  # nothing was stored


def test_mute_only_what_one_can_see_and_within_the_limit(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david", "erinn")]
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create([ids[1]]).group_info.group_id
    assert mute(carol, gid, session_type=GROUP).result_code == ErrorCode.FORBIDDEN  # not her group
    assert mute(carol, 9999, session_type=GROUP).result_code == ErrorCode.NOT_FOUND
    assert mute(carol, 9999).result_code == ErrorCode.USER_NOT_EXIST
    assert mute(carol, 0).result_code == ErrorCode.INVALID_ARGUMENT
    assert mute(carol, ids[0], session_type=7).result_code == ErrorCode.INVALID_ARGUMENT
    for other in ids[:2] + ids[3:4]:
        assert mute(carol, other).result_code == 200
    assert mute(carol, ids[0]).result_code == 200  # again: no change, not counted twice
    rsp = mute(carol, ids[4])  # a fourth, over dnd.max_muted = 3
    assert (rsp.result_code, rsp.session_id) == (ErrorCode.TOO_MANY_MUTES, ids[4])
    assert mute(carol, 9999, muted=False).result_code == 200  # unmuting anything is fine
    got = carol.call(Cmd.DND_GET_REQ, pb.CIMDndGetReq())
    assert sorted(m.session_id for m in got.muted_list) == sorted(ids[:2] + ids[3:4])
    assert bob.pushes(Cmd.DND_NOTIFY) == []  # nobody else is told


def test_settings_sync_to_the_users_other_devices_and_the_list_marks_muted(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    carol_id = node.user("carol")
    alice, phone, laptop = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    alice.conn.send_text(bob_id, "hello")
    Device(node, "carol").conn.send_text(bob_id, "hi")
    rsp = mute(phone, alice_id)
    assert (rsp.result_code, rsp.muted) == (200, True)
    (notice,) = laptop.pushes(Cmd.DND_NOTIFY)
    assert (notice.conversation.session_id, notice.conversation.muted) == (alice_id, True)
    assert not notice.HasField("settings")
    assert phone.pushes(Cmd.DND_NOTIFY) == []  # the acting device has its answer
    assert mute(phone, alice_id).result_code == 200
    assert laptop.pushes(Cmd.DND_NOTIFY) == []  # no change, no push
    assert sorted(listing(laptop)) == [(SINGLE, alice_id, True, False), (SINGLE, carol_id, False, False)]
    set_dnd(phone, start=60, end=120, zone="Asia/Tokyo")
    (notice,) = laptop.pushes(Cmd.DND_NOTIFY)
    assert (notice.settings.enabled, notice.settings.window_start, notice.settings.time_zone) == (
        True,
        60,
        "Asia/Tokyo",
    )
    got = laptop.call(Cmd.DND_GET_REQ, pb.CIMDndGetReq())
    assert (got.result_code, got.settings.window_end, got.settings.time_zone) == (200, 120, "Asia/Tokyo")
    assert [(m.session_type, m.session_id) for m in got.muted_list] == [(SINGLE, alice_id)]
    # 12:00 UTC is 21:00 in Tokyo, outside 01:00-02:00; global DND marks no conversation muted
    assert not got.active
    assert sorted(listing(laptop)) == [(SINGLE, alice_id, True, False), (SINGLE, carol_id, False, False)]
    # and delivery to online devices is untouched
    laptop.pushes()
    alice.conn.send_text(bob_id, "still delivered")
    assert [m.msg_data for m in laptop.pushes(Cmd.MSG_DATA)] == [b"still delivered"]


def test_dnd_changes_cross_nodes():
    hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 10_000_000.0})
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    phone, laptop = Device(n1, "bobby"), Device(n2, "bobby")
    assert wanted(n2, bob_id, message(alice_id, bob_id))  # n2 caches bob's settings now
    assert mute(phone, alice_id).result_code == 200
    n1.clock.advance(0)
    (notice,) = laptop.pushes(Cmd.DND_NOTIFY)
    assert notice.conversation.muted
    assert not wanted(n2, bob_id, message(alice_id, bob_id))  # n2 dropped its entry
    assert [s[2] for s in listing(laptop)] == []  # no conversation yet
    set_dnd(phone, enabled=True)
    n1.clock.advance(0)
    assert laptop.pushes(Cmd.DND_NOTIFY)[0].settings.enabled
    assert not wanted(n2, bob_id, message(n1.user("carol"), bob_id))


# -- pins


def test_pinned_conversations_come_first_most_recently_pinned_first(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david")]
    alice_id, bob_id, carol_id, dave_id = ids
    alice, phone, laptop = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    gid = alice.create([bob_id]).group_info.group_id
    for name in ("alice", "carol", "david"):
        Device(node, name).conn.send_text(bob_id, f"from {name}")
        node.clock.advance(1)
    base = listing(phone)
    assert [s[1] for s in base] == [dave_id, carol_id, alice_id, gid]
    rsp = pin(phone, gid, session_type=GROUP)
    assert (rsp.result_code, rsp.pinned, rsp.pinned_time) == (200, True, int(node.clock.seconds()))
    (notice,) = laptop.pushes(Cmd.PIN_NOTIFY)
    assert (notice.session_type, notice.session_id, notice.pinned) == (GROUP, gid, True)
    assert phone.pushes(Cmd.PIN_NOTIFY) == []
    assert pin(phone, alice_id).result_code == 200  # the same second: still the later pin
    assert [(s[1], s[3]) for s in listing(laptop)] == [
        (alice_id, True),
        (gid, True),
        (dave_id, False),
        (carol_id, False),
    ]
    assert pin(phone, alice_id).result_code == 200  # again: stays where it was, nobody told
    assert laptop.pushes(Cmd.PIN_NOTIFY) == [
        notice.__class__(
            user_id=bob_id, session_type=SINGLE, session_id=alice_id, pinned=True, pinned_time=rsp.pinned_time
        )
    ]
    Device(node, "david").conn.send_text(bob_id, "newest, but not pinned")
    assert [s[1] for s in listing(phone)][:2] == [alice_id, gid]
    rsp = pin(phone, carol_id)  # a third, over pins.max_pins = 2
    assert (rsp.result_code, rsp.session_id) == (ErrorCode.TOO_MANY_PINS, carol_id)
    pins = phone.call(Cmd.PIN_LIST_REQ, pb.CIMPinListReq())
    assert [(p.session_type, p.session_id) for p in pins.pin_list] == [(SINGLE, alice_id), (GROUP, gid)]
    rsp = pin(phone, alice_id, pinned=False)
    assert (rsp.result_code, rsp.pinned) == (200, False)
    assert laptop.pushes(Cmd.PIN_NOTIFY)[-1].pinned is False
    assert [(s[1], s[3]) for s in listing(phone)] == [
        (gid, True),
        (dave_id, False),
        (carol_id, False),
        (alice_id, False),
    ]
    assert pin(phone, carol_id).result_code == 200  # room again


def test_pin_only_what_one_can_see(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, carol = Device(node, "alice"), Device(node, "carol")
    gid = alice.create([ids[1]]).group_info.group_id
    assert pin(carol, gid, session_type=GROUP).result_code == ErrorCode.FORBIDDEN
    assert pin(carol, 4242, session_type=GROUP).result_code == ErrorCode.NOT_FOUND
    assert pin(carol, 4242).result_code == ErrorCode.USER_NOT_EXIST
    assert pin(carol, ids[2]).result_code == ErrorCode.INVALID_ARGUMENT  # herself
    assert pin(carol, 1, session_type=0).result_code == ErrorCode.INVALID_ARGUMENT
    assert pin(carol, gid, pinned=False, session_type=GROUP).result_code == 200  # unpinning: harmless
    assert list(carol.call(Cmd.PIN_LIST_REQ, pb.CIMPinListReq()).pin_list) == []


def test_muted_and_pinned_together(node):
    alice_id, bob_id = node.user("alice"), node.user("bobby")
    carol_id = node.user("carol")
    bob = Device(node, "bobby")
    Device(node, "alice").conn.send_text(bob_id, "a")
    node.clock.advance(1)
    Device(node, "carol").conn.send_text(bob_id, "c")
    pin(bob, alice_id)
    mute(bob, alice_id)
    assert listing(bob) == [(SINGLE, alice_id, True, True), (SINGLE, carol_id, False, False)]


def test_pins_cross_nodes():
    hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 10_000_000.0})
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    phone, laptop = Device(n1, "bobby"), Device(n2, "bobby")
    Device(n1, "alice").conn.send_text(bob_id, "hi")
    assert pin(phone, alice_id).result_code == 200
    n1.clock.advance(0)
    (notice,) = laptop.pushes(Cmd.PIN_NOTIFY)
    assert (notice.session_id, notice.pinned) == (alice_id, True)
    assert listing(laptop) == [(SINGLE, alice_id, False, True)]


# -- over real sockets, every transport


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


@pytest_twisted.ensureDeferred
async def test_dnd_and_pins_over_every_transport(live_node, transport):
    alice_id = await live_node.register("alice")
    bob_id = await live_node.register("bobby")
    carol_id = await live_node.register("carol")
    alice = await live_node.login("alice", transport=transport)
    carol = await live_node.login("carol", transport=transport)
    phone = await live_node.login("bobby", transport=transport)
    laptop = await live_node.login("bobby", transport=transport)
    await alice.send_message(bob_id, "from alice")
    await carol.send_message(bob_id, "from carol")  # the newest
    rsp = await phone.mute(alice_id)
    assert (rsp.result_code, rsp.muted, rsp.session_id) == (200, True, alice_id)
    _, _, notice = await laptop.next_push(Cmd.DND_NOTIFY)
    assert (notice.conversation.session_id, notice.conversation.muted) == (alice_id, True)
    rsp = await phone.pin(alice_id)
    assert (rsp.result_code, rsp.pinned) == (200, True)
    _, _, notice = await laptop.next_push(Cmd.PIN_NOTIFY)
    assert (notice.session_id, notice.pinned) == (alice_id, True)
    listing = await laptop.sessions()
    assert [(s.session_id, s.muted, s.pinned) for s in listing.contact_session_list] == [
        (alice_id, True, True),
        (carol_id, False, False),
    ]
    rsp = await laptop.set_dnd(True, 22 * 60, 7 * 60, "Europe/Paris")
    assert (rsp.result_code, rsp.settings.time_zone) == (200, "Europe/Paris")
    _, _, notice = await phone.next_push(Cmd.DND_NOTIFY)
    assert (notice.settings.enabled, notice.settings.window_start) == (True, 22 * 60)
    got = await phone.dnd_settings()
    assert (got.settings.window_end, [m.session_id for m in got.muted_list]) == (7 * 60, [alice_id])
    refused = await phone.set_dnd(True, 0, 0, "Nowhere/Special")
    assert (refused.result_code, bool(refused.result_string)) == (ErrorCode.DND_BAD_TIME_ZONE, True)
    refused = await phone.pin(4242, session_type=2)
    assert (refused.result_code, refused.session_id) == (ErrorCode.NOT_FOUND, 4242)
    pins = await laptop.pins()
    assert [(p.session_type, p.session_id) for p in pins.pin_list] == [(SINGLE, alice_id)]
    assert (await laptop.pin(alice_id, False)).pinned is False
    _, _, notice = await phone.next_push(Cmd.PIN_NOTIFY)
    assert notice.pinned is False
    # DND never holds back delivery to online devices
    await alice.send_message(bob_id, "still delivered")
    _, _, pushed = await phone.next_push(Cmd.MSG_DATA)
    while pushed.msg_data != b"still delivered":
        _, _, pushed = await phone.next_push(Cmd.MSG_DATA)
    assert (await laptop.mute(alice_id, False)).muted is False


def test_a_lost_cluster_subscription_drops_the_cache():
    """Invalidations broadcast while a node was cut off are lost: it forgets what it cached."""
    hub, (n1, n2) = memory_cluster(("n1", "n2"), **{"limits.idle_timeout": 10_000_000.0})
    alice_id, bob_id = n1.user("alice"), n1.user("bobby")
    phone = Device(n1, "bobby")
    assert wanted(n2, bob_id, message(alice_id, bob_id))
    dnd2 = n2.core.feature("dnd")
    dnd2._cache[bob_id].muted[(SINGLE, alice_id)] = 0  # as if a broadcast had been missed ...
    mute(phone, alice_id)
    n1.core.feature("dnd").forget(bob_id)
    dnd2.resumed(0)  # ... until the subscription comes back
    assert bob_id not in dnd2._cache
    assert not wanted(n2, bob_id, message(alice_id, bob_id))
    assert mute(phone, alice_id, muted=False).result_code == 200
    n1.clock.advance(0)
    assert wanted(n2, bob_id, message(alice_id, bob_id))


def test_bad_config_is_refused_and_the_features_can_be_disabled():
    from coffeechat.config import ConfigError, load_config

    for key, value in (("dnd.max_muted", 0), ("dnd.cache_users", -1), ("pins.max_pins", 1001)):
        with pytest.raises(ConfigError, match=key):
            load_config(None, {key: value})
    enabled = ["accounts", "messages", "groups", "group_reads", "recall", "typing"]
    node = MemoryNode(**{"features.enabled": enabled})
    node.user("bobby")
    bob = Device(node, "bobby")
    assert bob.call(Cmd.DND_GET_REQ, pb.CIMDndGetReq()).error_code == ErrorCode.NOT_SUPPORTED  # ERROR_RSP
    assert pin(bob, 1).error_code == ErrorCode.NOT_SUPPORTED
    assert listing(bob) == []


def test_one_read_for_many_callers_and_a_read_racing_a_change_is_not_cached(node):
    from twisted.internet import defer

    alice, bob = node.user("alice"), node.user("bobby")
    dnd = node.core.feature("dnd")
    real_load, pending = dnd.store.load, []

    def slow_load(user_id):
        d = defer.Deferred()
        pending.append((d, user_id))
        return d

    dnd.store.load = slow_load
    try:
        first = dnd.notify_wanted(bob, message(alice, bob))
        second = dnd.notify_wanted(bob, message(alice, bob))
        assert len(pending) == 1 and not first.called
        dnd.forget(bob)  # a change commits while the read is in flight
        d, user_id = pending.pop()
        d.callback(node.result(real_load(user_id)))
        assert node.result(first) is True and node.result(second) is True
        assert bob not in dnd._cache  # what it read may be older than the change
        third = dnd.notify_wanted(bob, message(alice, bob))
        assert len(pending) == 1 and not third.called  # read again
        d, user_id = pending.pop()
        d.callback(node.result(real_load(user_id)))
        assert node.result(third) is True and bob in dnd._cache
    finally:
        dnd.store.load = real_load


def test_the_cache_keeps_the_users_it_serves():
    """Least recently *used* out: a user whose notifications are decided often stays cached
    while users loaded once go."""
    node = MemoryNode(**{"dnd.cache_users": 2})
    alice, bob, carol, dave = (node.user(n) for n in ("alice", "bobby", "carol", "david"))
    dnd = node.core.feature("dnd")
    assert wanted(node, bob, message(alice, bob))  # bob: cached
    assert wanted(node, carol, message(alice, carol))  # carol: cached, after bob
    assert wanted(node, bob, message(alice, bob))  # used: bob is the newest
    assert wanted(node, dave, message(alice, dave))  # one must go: carol
    loads = dnd.loads
    assert wanted(node, bob, message(alice, bob))
    assert dnd.loads == loads
