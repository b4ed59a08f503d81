"""Input validation: ids outside signed 64 bits, JSON too deep or not Unicode, odd numbers.

Each case once crashed somewhere (SQLite's "Python int too large to convert to SQLite INTEGER",
RecursionError, SystemError in the JSON decoder) and was logged as critical; now each gets an
error answer and nothing is logged.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import pytest_twisted
from google.protobuf import json_format

from coffeechat.errors import ErrorCode
from coffeechat.protocols.client import ServerError, md5_password
from coffeechat.schema import TABLE, BodyError, Cmd, decode_body, pb
from coffeechat.schema.jsonform import JsonFrameError, decode_json_frame

from .logcapture import logged_failures
from .memory_node import MemoryNode
from .test_http import Api

TOO_BIG = 2**63  # the first id storage cannot keep (SQLite INTEGER and PostgreSQL bigint are signed)
U64_MAX = 2**64 - 1
MALFORMED = ErrorCode.MALFORMED_BODY


def code_of(answer) -> int:
    for name in ("error_code", "result_code"):
        if name in answer.DESCRIPTOR.fields_by_name:
            return getattr(answer, name)
    raise AssertionError(f"no code in {answer}")


# What a client may send with an id out of range: group, history, read and message commands.
OUT_OF_RANGE = [
    (
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=TOO_BIG, client_msg_id="c1", msg_type=1, session_type=1, msg_data=b"hi"),
    ),
    (
        Cmd.MSG_DATA,
        pb.CIMMsgData(to_session_id=1, msg_type=1, session_type=2, msg_data=b"hi", at_user_list=[2, U64_MAX]),
    ),
    (Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=1, session_id=TOO_BIG)),
    (Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=1, session_id=2, end_msg_id=U64_MAX)),
    (Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_type=1, session_id=2, msg_id=TOO_BIG)),
    (Cmd.MSG_GET_LATEST_MSG_ID_REQ, pb.CIMGetLatestMsgIdReq(session_type=2, session_id=TOO_BIG)),
    (Cmd.MSG_GET_BY_MSG_ID_REQ, pb.CIMGetMsgByIdReq(session_type=1, session_id=TOO_BIG, msg_id_list=["1"])),
    (Cmd.MSG_RECALL_REQ, pb.CIMMsgRecallReq(session_type=1, session_id=2, msg_id=TOO_BIG)),
    (Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="g", member_id_list=[TOO_BIG])),
    (Cmd.GROUP_INFO_REQ, pb.CIMGroupInfoReq(group_version_list=[pb.CIMGroupVersionInfo(group_id=TOO_BIG)])),
    (Cmd.GROUP_INVITE_MEMBER_REQ, pb.CIMGroupInviteMemberReq(group_id=TOO_BIG, member_id_list=[2])),
    (Cmd.GROUP_KICK_OUT_MEMBER_REQ, pb.CIMGroupKickOutMemberReq(group_id=1, member_id_list=[U64_MAX])),
    (Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=U64_MAX)),
    (Cmd.GROUP_UPDATE_REQ, pb.CIMGroupUpdateReq(group_id=TOO_BIG, group_name="x")),
    (Cmd.GROUP_READ_COUNT_REQ, pb.CIMGroupReadCountReq(group_id=1, msg_id=TOO_BIG)),
    (Cmd.GROUP_DISBINGDING_REQ, pb.CIMGroupDisbandingReq(group_id=TOO_BIG)),
    (Cmd.MSG_TYPING_REQ, pb.CIMTypingReq(session_type=1, session_id=TOO_BIG, typing=True)),
]
IDS = [f"{Cmd(cmd).name}-{i}" for i, (cmd, _) in enumerate(OUT_OF_RANGE)]


@pytest.mark.parametrize(("cmd", "request_body"), OUT_OF_RANGE, ids=IDS)
def test_ids_above_2_63_are_malformed_on_a_memory_node(cmd, request_body):
    node = MemoryNode()
    node.user("alice")
    conn = node.connect()
    conn.login("alice")
    with logged_failures() as failures:
        seq = conn.send(cmd, request_body)
        ((_, got_seq, answer),) = conn.frames()
    assert got_seq == seq and code_of(answer) == MALFORMED, answer
    assert failures == []


def test_an_id_out_of_range_before_login_is_malformed():
    node = MemoryNode()
    conn = node.connect()
    conn.send(Cmd.LOGIN_AUTH_TOKEN_REQ, pb.CIMAuthTokenReq(user_id=TOO_BIG, user_token="x" * 43))
    assert conn.only(Cmd.LOGIN_AUTH_TOKEN_RSP).result_code == MALFORMED
    assert not conn.closed


@pytest_twisted.ensureDeferred
async def test_ids_above_2_63_never_reach_sqlite(live_node):
    """Over TCP to a node on SQLite: every case is answered MALFORMED_BODY, nothing is logged, and
    the largest id that fits (2^63-1) is an ordinary "no such conversation"."""
    alice_id = await live_node.register("alice")
    await live_node.register("bobby")
    client = await live_node.login("alice")
    with logged_failures() as failures:
        for cmd, request_body in OUT_OF_RANGE:
            try:
                answer = await client.request(cmd, request_body)
            except ServerError as e:
                code = e.code
            else:
                code = code_of(answer)
            assert code == MALFORMED, (Cmd(cmd).name, code)
        history = await client.request(Cmd.LIST_MSG_REQ, pb.CIMGetMsgListReq(session_type=1, session_id=2**63 - 1))
        assert list(history.msg_list) == []
        ack = await client.send_message(2**63 - 1, "to the last id")
        assert ack.error_code == ErrorCode.USER_NOT_EXIST
        assert (await client.heartbeat()) == pb.CIMHeartBeat()
    assert failures == []
    assert alice_id


# -- the JSON form


@pytest.mark.parametrize(
    "text",
    [
        '{"cmd": "MSG_DATA", "seq": 5, "body": {"zz\\ud800": 1}}',  # a lone surrogate in a key
        '{"cmd": "MSG_DATA", "seq": 5, "body": {"msgType": 1e999}}',  # a float that overflows
        '{"cmd": "MSG_DATA", "seq": 5, "body": {"msgType": -1e999}}',
        '{"cmd": "MSG_DATA", "seq": 5, "body": {"toSessionId": 1e300}}',
        '{"cmd": "MSG_DATA", "seq": 5, "body": {"toSessionId": "9223372036854775808"}}',
        '{"cmd": "GROUP_INFO_REQ", "seq": 5, "body": {"groupVersionList": [{"groupId": "18446744073709551615"}]}}',
    ],
)
def test_json_bodies_that_crashed_the_decoder_are_malformed(text):
    with pytest.raises(JsonFrameError) as caught:
        decode_json_frame(text)
    assert (caught.value.code, caught.value.seq, caught.value.in_body) == (MALFORMED, 5, True)
    caught.value.message.encode()  # the answer's text can be sent


@pytest.mark.parametrize(
    "text",
    [
        '{"cmd": "MSG_DATA", "seq": 5, "body": {"msgType": Infinity}}',
        '{"cmd": "MSG_DATA", "seq": NaN}',
        '{"cmd": "LOGIN_HEARTBEAT", "seq": 5, "x": ' + "[" * 17 + "]" * 17 + "}",
    ],
)
def test_json_that_is_not_json_or_too_deep_is_malformed(text):
    with pytest.raises(JsonFrameError) as caught:
        decode_json_frame(text)
    assert caught.value.code == MALFORMED and not caught.value.in_body


def test_json_frames_within_the_depth_limit_decode():
    text = '{"cmd": "GROUP_INFO_REQ", "seq": 5, "body": {"groupVersionList": [{"groupId": "3"}, {"groupId": "4"}]}}'
    cmd, seq, message = decode_json_frame(text)
    assert [v.group_id for v in message.group_version_list] == [3, 4]
    nested = '{"cmd": "LOGIN_HEARTBEAT", "seq": 5, "x": ' + "[" * 15 + "]" * 15 + "}"
    assert decode_json_frame(nested)[:2] == (Cmd.LOGIN_HEARTBEAT, 5)


@pytest_twisted.ensureDeferred
async def test_websocket_json_crashes_before_login_get_answers(live_node):
    """The cases of issue 11 on a real WebSocket before login: each is answered, nothing is
    logged, and the connection stays up (a heartbeat is still answered after each)."""
    await live_node.register("alice")
    client = await live_node.connect("ws-json")
    with logged_failures() as failures:
        for seq, body in enumerate(['{"zz\\ud800": 1}', '{"msgType": 1e999}', '{"msgType": Infinity}'], 1):
            client.send_text(f'{{"cmd": "LOGIN_AUTH_REQ", "seq": {seq}, "body": {body}}}')
            cmd, got_seq, answer = await client.next_push()
            assert got_seq == (0 if "Infinity" in body else seq)  # not JSON: the seq is unknown
            assert code_of(answer) == MALFORMED, answer
            client.send_text('{"cmd": "LOGIN_HEARTBEAT", "seq": 100}')  # still up, still answering
            _, beat_seq, refusal = await client.next_push(Cmd.ERROR_RSP)
            assert (beat_seq, refusal.error_code) == (100, ErrorCode.NOT_LOGGED_IN)
        rsp = await client.login_password("alice", md5_password("secret"))
        assert rsp.result_code == 200
        assert (await client.heartbeat()) == pb.CIMHeartBeat()
    assert failures == []


# -- message content


@pytest.mark.parametrize(
    ("msg_type", "content"),
    [
        (pb.kCIM_MSG_TYPE_FILE, b'{"url": "https://x/f", "meta": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
        (pb.kCIM_MSG_TYPE_LOCATION, b'{"latitude": 1, "longitude": 2, "x": ' + b"[" * 17 + b"]" * 17 + b"}"),
        (pb.kCIM_MSG_TYPE_LOCATION, b'{"latitude": NaN, "longitude": 2}'),
        (pb.kCIM_MSG_TYPE_LOCATION, b'{"latitude": Infinity, "longitude": 2}'),
        (pb.kCIM_MSG_TYPE_FILE, b'{"url": "https://x/\\ud800"}'),
    ],
    ids=["file-20000-deep", "location-17-deep", "location-nan", "location-infinity", "file-lone-surrogate"],
)
def test_message_content_too_deep_or_not_unicode_is_invalid(msg_type, content):
    node = MemoryNode()
    node.user("alice")
    bob = node.user("bobby")
    conn = node.connect()
    conn.login("alice")
    with logged_failures() as failures:
        msg = pb.CIMMsgData(to_session_id=bob, client_msg_id="c1", msg_type=msg_type, session_type=1, msg_data=content)
        seq = conn.send(Cmd.MSG_DATA, msg)
        ((cmd, got_seq, ack),) = conn.frames()
    assert (cmd, got_seq, ack.error_code) == (Cmd.MSG_DATA_ACK, seq, ErrorCode.INVALID_MSG), ack
    assert failures == []
    fine = b'{"url": "https://x/\\ud83d\\ude00", "meta": {"a": [1, [2]]}}'  # a surrogate pair is fine
    seq = conn.send(
        Cmd.MSG_DATA, pb.CIMMsgData(to_session_id=bob, client_msg_id="c2", msg_type=2, session_type=1, msg_data=fine)
    )
    acks = [f for f in conn.frames() if f[0] == Cmd.MSG_DATA_ACK]
    assert acks[0][2].server_msg_id == 1 and not acks[0][2].error_code
    assert json.loads(fine)["url"].endswith("😀")


# -- the HTTP API


@pytest_twisted.ensureDeferred
async def test_http_ids_out_of_range_or_not_ascii_digits(live_node):
    api = Api(live_node.node)
    with logged_failures() as failures:
        # "²" and "١٢" pass str.isdigit(); int() refuses the first
        for user in (quote("²"), quote("١٢"), "9" * 19):
            status, body = await api.call("POST", f"/admin/users/{user}/disable", token="admin-secret")
            assert status == 404, (user, status, body)
        status, body = await api.call("GET", f"/admin/users?after={quote('²')}", token="admin-secret")
        assert body["error_code"] == ErrorCode.USER_INVALID_PARAMETER, body
        for session_id in (TOO_BIG, U64_MAX, 10**30):
            status, body = await api.call(
                "POST",
                "/admin/messages/recall",
                {"sessionType": 2, "sessionId": session_id, "msgId": 1},
                token="admin-secret",
            )
            assert body["error_code"] == ErrorCode.INVALID_ARGUMENT, body
    assert failures == []


def _id_paths(desc, prefix=()):
    """Every path to an unsigned 64-bit field of a message type: (field descriptors...)."""
    for f in desc.fields:
        if f.type in (f.TYPE_UINT64, f.TYPE_FIXED64):
            yield (*prefix, f)
        elif f.type == f.TYPE_MESSAGE and len(prefix) < 3:
            yield from _id_paths(f.message_type, (*prefix, f))


def _with(cls, path, value):
    msg = cls()
    target = msg
    for f in path[:-1]:
        target = getattr(target, f.name).add() if f.is_repeated else getattr(target, f.name)
    last = path[-1]
    if last.is_repeated:
        getattr(target, last.name).extend([1, value])
    else:
        setattr(target, last.name, value)
    return msg


@pytest.mark.parametrize("cmd", sorted(TABLE), ids=[Cmd(c).name for c in sorted(TABLE)])
def test_every_id_field_of_every_body_is_range_checked(cmd):
    """The check built from the schema covers each uint64 field, nested and repeated ones too,
    in binary bodies and in the JSON form: 2^63-1 decodes, 2^63 and 2^64-1 do not."""
    cls = TABLE[cmd].body
    for path in _id_paths(cls.DESCRIPTOR):
        name = ".".join(f.name for f in path)
        assert decode_body(cmd, _with(cls, path, 2**63 - 1).SerializeToString()), name
        for value in (TOO_BIG, U64_MAX):
            message = _with(cls, path, value)
            with pytest.raises(BodyError, match="out of range"):
                decode_body(cmd, message.SerializeToString())
            text = json.dumps({"cmd": Cmd(cmd).name, "seq": 1, "body": json_format.MessageToDict(message)})
            with pytest.raises(JsonFrameError, match="out of range"):
                decode_json_frame(text)
