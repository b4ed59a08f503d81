"""Group requests across two real nodes sharing a real PostgreSQL and Redis (the fixtures of
tests/test_cluster_e2e.py): a request made on one node reaches the admins on both, two admins
on different nodes decide it at once (one wins), and the new member's node knows it at once."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer

from coffeechat.errors import ErrorCode
from coffeechat.schema import Cmd, pb
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_cluster_e2e import two_nodes, until  # noqa: F401

NEED_AUTH = pb.kCIM_GROUP_JOIN_MODEL_NEED_AUTH


@pytest_twisted.ensureDeferred
async def test_group_requests_cross_nodes_over_redis_and_postgresql(two_nodes):  # noqa: F811
    n1, n2 = two_nodes
    ids = {n: await n1.register(n) for n in ("alice", "bobby", "carol")}
    alice = await n1.login("alice")
    bob = await n2.login("bobby", transport="ws-json")
    carol = await n2.login("carol")
    carol_elsewhere = await n1.login("carol", transport="ws-binary")
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"})
    created = await alice.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="Across", member_id_list=[ids["bobby"]])
    )
    gid = created.group_info.group_id
    admin = pb.CIMGroupSetAdminReq(group_id=gid, member_id_list=[ids["bobby"]], is_admin=True)
    assert (await alice.request(Cmd.GROUP_SET_ADMIN_REQ, admin)).result_code == 200
    update = pb.CIMGroupUpdateReq(group_id=gid, join_model=NEED_AUTH)
    assert (await alice.request(Cmd.GROUP_UPDATE_REQ, update)).result_code == 200

    # carol asks on n2 (whose cache must see the new join model and bob's role)
    asked = await carol.ask_to_join_group(gid, "hi")
    assert asked.result_code == 200, asked
    rid = asked.request.request_id
    for device in (alice, bob, carol_elsewhere):
        _, _, note = await device.next_push(Cmd.GROUP_REQUEST_NOTIFY, timeout=10)
        assert (note.request.request_id, note.request.status) == (rid, 0)

    # alice (n1) and bob (n2) decide at once: one decision wins
    first, second = await defer.gatherResults(
        [alice.decide_group_request(rid, True), bob.decide_group_request(rid, False)]
    )
    codes = sorted([first.result_code, second.result_code])
    assert codes == [200, ErrorCode.GROUP_REQUEST_HANDLED], (first, second)
    won = first if first.result_code == 200 else second
    _, _, told = await carol_elsewhere.next_push(Cmd.GROUP_REQUEST_NOTIFY, timeout=10)
    assert told.request.status == won.request.status
    members = await alice.request(Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=gid))
    assert (ids["carol"] in members.member_id_list) == (won.request.status == 1)
    if won.request.status != 1:  # rejected: she asks again, and bob (n2) lets her in
        again = await carol.ask_to_join_group(gid, "please")
        assert (await bob.decide_group_request(again.request.request_id, True)).result_code == 200
    # n2, where carol writes, knows at once that she is a member; n1's alice gets it
    ack = await carol.send_message(gid, "thanks!", session_type=pb.kCIM_SESSION_TYPE_GROUP)
    assert ack.server_msg_id > 0, ack

    # ownership moves on n1; n2 knows bob is the owner at once
    moved = await alice.transfer_group_owner(gid, ids["bobby"])
    assert moved.result_code == 200
    dismiss = await bob.request(Cmd.GROUP_DISBINGDING_REQ, pb.CIMGroupDisbandingReq(group_id=gid))
    assert dismiss.result_code == 200
