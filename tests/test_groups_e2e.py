"""Groups over real loopback sockets (SQLite storage): a 200-member group over each transport,
and members on different transports in one group."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb

from .conftest import TRANSPORTS, node_config, start_node, stop_node

GROUP = pb.kCIM_SESSION_TYPE_GROUP


@pytest_twisted.async_yield_fixture
async def live_node(tmp_path):
    """A node whose per-address cap lets 200 devices log in at once from loopback (the default,
    64 connections not logged in per address, would refuse the rest)."""
    live = await start_node(node_config(tmp_path, **{"limits.max_unauthenticated_per_address": 1000}))
    yield live
    await stop_node(live)


@pytest.fixture(params=list(TRANSPORTS))
def transport(request) -> str:
    return request.param


async def accounts(live, count: int, prefix: str = "member") -> list[tuple[int, str]]:
    """``count`` token-only accounts: ``(user_id, token)``."""
    out = []
    for i in range(count):
        user = await live.core.feature("accounts").create_user(f"{prefix}{i:04d}")
        token, _ = await live.core.feature("accounts").issue_token(user.user_id, "test")
        out.append((user.user_id, token))
    return out


async def login(live, transport: str, user_id: int, token: str):
    client = await live.connect(transport)
    rsp = await client.login_token(user_id, token)
    assert rsp.result_code == 200, rsp
    return client


async def users_online(live, count: int, transport: str) -> list:
    """``count`` accounts, each logged in once over ``transport``."""
    made = await accounts(live, count)
    return list(await defer.gatherResults([defer.ensureDeferred(login(live, transport, *a)) for a in made]))


async def quiet(client, cmd: int, timeout: float = 0.3) -> None:
    """Nothing more of ``cmd`` arrives."""
    assert not [p for p in client.pushes if p[0] == cmd]
    with pytest.raises(defer.TimeoutError):
        await client.next_push(cmd, timeout=timeout)


@pytest_twisted.ensureDeferred
async def test_200_member_group_fan_out(live_node, transport):
    clients = await users_online(live_node, 200, transport)
    owner, members = clients[0], clients[1:]
    rsp = await owner.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ,
        pb.CIMGroupCreateReq(group_name="Two hundred", member_id_list=[c.user_id for c in members]),
    )
    assert rsp.result_code == 200 and rsp.group_info.member_count == 200
    gid = rsp.group_info.group_id
    assert list(rsp.member_id_list) == [c.user_id for c in clients]

    async def created(client) -> None:
        _, _, note = await client.next_push(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
        assert note.group_id == gid and len(note.changed_list) == 200
        if client is not owner:
            _, _, notice = await client.next_push(Cmd.MSG_DATA)
            assert notice.server_msg_id == 1 and json.loads(notice.msg_data)["notificationType"] == 1

    await defer.gatherResults([defer.ensureDeferred(created(c)) for c in clients])

    for round_no, sender in enumerate((owner, members[57], members[-1])):
        seq = round_no + 2
        ack = await sender.send_message(gid, f"hello everyone {round_no}", session_type=GROUP)
        assert (ack.res_code, ack.server_msg_id) == (1, seq)

        async def delivered(client, seq=seq, round_no=round_no, sender=sender) -> None:
            _, _, push = await client.next_push(Cmd.MSG_DATA)
            assert (push.server_msg_id, push.from_user_id, push.to_session_id, push.session_type) == (
                seq,
                sender.user_id,
                gid,
                GROUP,
            )
            assert push.msg_data == f"hello everyone {round_no}".encode()

        await defer.gatherResults([defer.ensureDeferred(delivered(c)) for c in clients if c is not sender])
    # exactly one delivery per device, nothing for the sending devices
    await defer.gatherResults([defer.ensureDeferred(quiet(c, Cmd.MSG_DATA)) for c in clients])

    sessions = await members[0].sessions()
    (entry,) = sessions.contact_session_list
    assert (entry.session_id, entry.session_type, entry.unread_cnt, entry.server_msg_id) == (gid, GROUP, 4, 4)
    history = await members[0].history(gid, limit=100, session_type=GROUP)
    assert [m.server_msg_id for m in history.msg_list] == [1, 2, 3, 4]


@pytest_twisted.ensureDeferred
async def test_group_across_transports(live_node):
    """Members on TCP, WebSocket binary and WebSocket JSON (alice on two of them) share one
    group: management answers, notifies, messages, mentions, read counts and kicks."""
    (alice, alice_token), (bob, bob_token), (carol, carol_token) = await accounts(live_node, 3)
    alice_tcp = await login(live_node, "tcp", alice, alice_token)
    alice_json = await login(live_node, "ws-json", alice, alice_token)
    bob_ws = await login(live_node, "ws-binary", bob, bob_token)
    carol_json = await login(live_node, "ws-json", carol, carol_token)
    everyone = (alice_tcp, alice_json, bob_ws, carol_json)

    rsp = await alice_json.request(Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(member_id_list=[bob, carol]))
    assert rsp.result_code == 200
    gid = rsp.group_info.group_id
    for device in everyone:
        _, _, note = await device.next_push(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
        assert [(c.user_id, c.type) for c in note.changed_list] == [(alice, 1), (bob, 1), (carol, 1)]
    for device in (alice_tcp, bob_ws, carol_json):
        _, _, notice = await device.next_push(Cmd.MSG_DATA)
        assert json.loads(notice.msg_data)["data"]["ids"] == [str(bob), str(carol)]

    mention = pb.CIMMsgData(
        to_session_id=gid, client_msg_id="m-1", msg_type=1, session_type=GROUP, msg_data=b"@carol", at_user_list=[carol]
    )
    ack = await bob_ws.request(Cmd.MSG_DATA, mention)
    assert (ack.res_code, ack.server_msg_id) == (1, 2)
    for device in (alice_tcp, alice_json, carol_json):
        _, _, push = await device.next_push(Cmd.MSG_DATA)
        assert (push.server_msg_id, list(push.at_user_list)) == (2, [carol])
    entry = (await carol_json.sessions()).contact_session_list[0]
    assert (entry.session_id, entry.unread_cnt, entry.at_me) == (gid, 2, True)

    counted = await bob_ws.request(Cmd.GROUP_READ_COUNT_REQ, pb.CIMGroupReadCountReq(group_id=gid, msg_id=2))
    assert (counted.result_code, counted.read_count, counted.member_count) == (200, 0, 2)
    carol_json.read_ack(gid, 2, session_type=GROUP)
    alice_tcp.read_ack(gid, 2, session_type=GROUP)
    _, _, note = await alice_json.next_push(Cmd.MSG_READ_NOTIFY)  # alice's other device
    assert (note.session_id, note.msg_id, note.session_type) == (gid, 2, GROUP)
    _, _, count = await bob_ws.next_push(Cmd.GROUP_READ_COUNT_NOTIFY, timeout=5)
    assert (count.group_id, count.msg_id) == (gid, 2) and count.member_count == 2
    if count.read_count < 2:  # the two reads fell into two flushes
        _, _, count = await bob_ws.next_push(Cmd.GROUP_READ_COUNT_NOTIFY, timeout=5)
    assert count.read_count == 2
    assert not (await carol_json.sessions()).contact_session_list[0].at_me

    # a message racing a kick: stored before the kick, or refused; never half of each
    send = bob_ws.request(
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=gid, client_msg_id="race", msg_type=1, session_type=GROUP, msg_data=b"racing"),
    )
    kick = alice_tcp.request(
        Cmd.GROUP_KICK_OUT_MEMBER_REQ, pb.CIMGroupKickOutMemberReq(group_id=gid, member_id_list=[bob])
    )
    ack, kicked = await defer.gatherResults([send, kick])
    assert kicked.result_code == 200 and kicked.group_id == gid
    history = await carol_json.history(gid, limit=100, session_type=GROUP)
    stored = [m.client_msg_id for m in history.msg_list if m.client_msg_id == "race"]
    if ack.res_code == 1:
        assert stored == ["race"]
    else:
        assert ack.error_code == ErrorCode.FORBIDDEN and stored == []
    assert [m.server_msg_id for m in history.msg_list] == list(range(1, len(history.msg_list) + 1))
    refused = await bob_ws.request(
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=gid, client_msg_id="late", msg_type=1, session_type=GROUP, msg_data=b"x"),
    )
    assert refused.error_code == ErrorCode.FORBIDDEN
    members = await carol_json.request(Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=gid))
    assert list(members.member_id_list) == [alice, carol]
    assert [m.role for m in members.member_list] == [pb.kCIM_GROUP_MEMBER_ROLE_OWNER, pb.kCIM_GROUP_MEMBER_ROLE_MEMBER]
