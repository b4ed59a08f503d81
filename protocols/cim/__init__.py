"""The CIM v1 schema in Python: command ids, the body type of each command, and body codecs.

``pb`` is the generated module (``cim.proto``); everything else here is the table a transport
needs to turn a frame's ``(command_id, body)`` into a message and back.
"""

from __future__ import annotations

from enum import IntEnum

from google.protobuf.message import DecodeError, Message

from . import cim_pb2 as pb

__all__ = [
    "BODY_TYPES",
    "PUSH_COMMANDS",
    "RESPONSE_OF",
    "BodyError",
    "Cmd",
    "decode_body",
    "encode_body",
    "pb",
]


class Cmd(IntEnum):
    """Frame command ids (``CIMCmdID`` without the ``kCIM_CID_`` prefix)."""

    LOGIN_AUTH_TOKEN_REQ = 0x0101
    LOGIN_AUTH_TOKEN_RSP = 0x0102
    LOGIN_AUTH_LOGOUT_REQ = 0x0103
    LOGIN_AUTH_LOGOUT_RSP = 0x0104
    LOGIN_HEARTBEAT = 0x0105
    LOGIN_AUTH_REQ = 0x0107
    LOGIN_AUTH_RSP = 0x0108

    LIST_RECENT_CONTACT_SESSION_REQ = 0x0201
    LIST_RECENT_CONTACT_SESSION_RSP = 0x0202
    LIST_MSG_REQ = 0x0205
    LIST_MSG_RSP = 0x0206

    MSG_DATA = 0x0301
    MSG_DATA_ACK = 0x0302
    MSG_READ_ACK = 0x0303
    MSG_READ_NOTIFY = 0x0304
    MSG_GET_LATEST_MSG_ID_REQ = 0x0305
    MSG_GET_LATEST_MSG_ID_RSP = 0x0306
    MSG_GET_BY_MSG_ID_REQ = 0x0307
    MSG_GET_BY_MSG_ID_RSP = 0x0308

    VOIP_INVITE_REQ = 0x0401
    VOIP_INVITE_REPLY = 0x0402
    VOIP_INVITE_REPLY_ACK = 0x0403
    VOIP_HEARTBEAT = 0x0404
    VOIP_BYE_REQ = 0x0405
    VOIP_BYE_RSP = 0x0406
    VOIP_BYE_NOTIFY = 0x0407

    GROUP_CREATE_DEFAULT_REQ = 0x0501
    GROUP_CREATE_DEFAULT_RSP = 0x0502
    GROUP_DISBINGDING_REQ = 0x0503
    GROUP_DISBINGDING_RSP = 0x0504
    GROUP_EXIT_REQ = 0x0505
    GROUP_EXIT_RSP = 0x0506
    GROUP_LIST_REQ = 0x0507
    GROUP_LIST_RSP = 0x0508
    GROUP_INFO_REQ = 0x0509
    GROUP_INFO_RSP = 0x0510  # sic: not 0x050A
    GROUP_INVITE_MEMBER_REQ = 0x0511
    GROUP_INVITE_MEMBER_RSP = 0x0512
    GROUP_KICK_OUT_MEMBER_REQ = 0x0513
    GROUP_KICK_OUT_MEMBER_RSP = 0x0514
    GROUP_MEMBER_CHANGED_NOTIFY = 0x0515
    GROUP_LIST_MEMBER_REQ = 0x0516
    GROUP_LIST_MEMBER_RSP = 0x0517
    # CoffeeChat extensions (docs/groups.md)
    GROUP_UPDATE_REQ = 0x0518
    GROUP_UPDATE_RSP = 0x0519
    GROUP_SET_ADMIN_REQ = 0x051A
    GROUP_SET_ADMIN_RSP = 0x051B
    GROUP_READ_COUNT_REQ = 0x051C
    GROUP_READ_COUNT_RSP = 0x051D
    GROUP_READ_COUNT_NOTIFY = 0x051E

    FRIEND_QUERY_USER_LIST_REQ = 0x0601
    FRIEND_QUERY_USER_LIST_RSP = 0x0602

    # CoffeeChat extensions
    ERROR_RSP = 0x0801
    KICKOUT_NOTIFY = 0x0802


BODY_TYPES: dict[int, type[Message]] = {
    Cmd.LOGIN_AUTH_TOKEN_REQ: pb.CIMAuthTokenReq,
    Cmd.LOGIN_AUTH_TOKEN_RSP: pb.CIMAuthTokenRsp,
    Cmd.LOGIN_AUTH_LOGOUT_REQ: pb.CIMLogoutReq,
    Cmd.LOGIN_AUTH_LOGOUT_RSP: pb.CIMLogoutRsp,
    Cmd.LOGIN_HEARTBEAT: pb.CIMHeartBeat,
    Cmd.LOGIN_AUTH_REQ: pb.CIMAuthReq,
    Cmd.LOGIN_AUTH_RSP: pb.CIMAuthRsp,
    Cmd.LIST_RECENT_CONTACT_SESSION_REQ: pb.CIMRecentContactSessionReq,
    Cmd.LIST_RECENT_CONTACT_SESSION_RSP: pb.CIMRecentContactSessionRsp,
    Cmd.LIST_MSG_REQ: pb.CIMGetMsgListReq,
    Cmd.LIST_MSG_RSP: pb.CIMGetMsgListRsp,
    Cmd.MSG_DATA: pb.CIMMsgData,
    Cmd.MSG_DATA_ACK: pb.CIMMsgDataAck,
    Cmd.MSG_READ_ACK: pb.CIMMsgDataReadAck,
    Cmd.MSG_READ_NOTIFY: pb.CIMMsgDataReadNotify,
    Cmd.MSG_GET_LATEST_MSG_ID_REQ: pb.CIMGetLatestMsgIdReq,
    Cmd.MSG_GET_LATEST_MSG_ID_RSP: pb.CIMGetLatestMsgIdRsp,
    Cmd.MSG_GET_BY_MSG_ID_REQ: pb.CIMGetMsgByIdReq,
    Cmd.MSG_GET_BY_MSG_ID_RSP: pb.CIMGetMsgByIdRsp,
    Cmd.VOIP_INVITE_REQ: pb.CIMVoipInviteReq,
    Cmd.VOIP_INVITE_REPLY: pb.CIMVoipInviteReply,
    Cmd.VOIP_INVITE_REPLY_ACK: pb.CIMVoipInviteReplyAck,
    Cmd.VOIP_HEARTBEAT: pb.CIMVoipHeartbeat,
    Cmd.VOIP_BYE_REQ: pb.CIMVoipByeReq,
    Cmd.VOIP_BYE_RSP: pb.CIMVoipByeRsp,
    Cmd.VOIP_BYE_NOTIFY: pb.CIMVoipByeNotify,
    Cmd.GROUP_CREATE_DEFAULT_REQ: pb.CIMGroupCreateReq,
    Cmd.GROUP_CREATE_DEFAULT_RSP: pb.CIMGroupCreateRsp,
    Cmd.GROUP_DISBINGDING_REQ: pb.CIMGroupDisbandingReq,
    Cmd.GROUP_DISBINGDING_RSP: pb.CIMGroupDisbandingRsp,
    Cmd.GROUP_EXIT_REQ: pb.CIMGroupExitReq,
    Cmd.GROUP_EXIT_RSP: pb.CIMGroupExitRsp,
    Cmd.GROUP_LIST_REQ: pb.CIMGroupListReq,
    Cmd.GROUP_LIST_RSP: pb.CIMGroupListRsp,
    Cmd.GROUP_INFO_REQ: pb.CIMGroupInfoReq,
    Cmd.GROUP_INFO_RSP: pb.CIMGroupInfoRsp,
    Cmd.GROUP_INVITE_MEMBER_REQ: pb.CIMGroupInviteMemberReq,
    Cmd.GROUP_INVITE_MEMBER_RSP: pb.CIMGroupInviteMemberRsp,
    Cmd.GROUP_KICK_OUT_MEMBER_REQ: pb.CIMGroupKickOutMemberReq,
    Cmd.GROUP_KICK_OUT_MEMBER_RSP: pb.CIMGroupKickOutMemberRsp,
    Cmd.GROUP_MEMBER_CHANGED_NOTIFY: pb.CIMGroupMemberChangedNotify,
    Cmd.GROUP_LIST_MEMBER_REQ: pb.CIMGroupMemberListReq,
    Cmd.GROUP_LIST_MEMBER_RSP: pb.CIMGroupMemberListRsp,
    Cmd.GROUP_UPDATE_REQ: pb.CIMGroupUpdateReq,
    Cmd.GROUP_UPDATE_RSP: pb.CIMGroupUpdateRsp,
    Cmd.GROUP_SET_ADMIN_REQ: pb.CIMGroupSetAdminReq,
    Cmd.GROUP_SET_ADMIN_RSP: pb.CIMGroupSetAdminRsp,
    Cmd.GROUP_READ_COUNT_REQ: pb.CIMGroupReadCountReq,
    Cmd.GROUP_READ_COUNT_RSP: pb.CIMGroupReadCountRsp,
    Cmd.GROUP_READ_COUNT_NOTIFY: pb.CIMGroupReadCountNotify,
    Cmd.FRIEND_QUERY_USER_LIST_REQ: pb.CIMFriendQueryUserListReq,
    Cmd.FRIEND_QUERY_USER_LIST_RSP: pb.CIMFriendQueryUserListRsp,
    Cmd.ERROR_RSP: pb.CIMErrorRsp,
    Cmd.KICKOUT_NOTIFY: pb.CIMKickoutNotify,
}

# The command a server answers each request with (same frame seq).  ERROR_RSP may answer any of
# them.  Requests not listed here (MSG_DATA_ACK, MSG_READ_ACK, VOIP_INVITE_REPLY_ACK,
# VOIP_HEARTBEAT, ...) get no answer.
RESPONSE_OF: dict[int, int] = {
    Cmd.LOGIN_AUTH_TOKEN_REQ: Cmd.LOGIN_AUTH_TOKEN_RSP,
    Cmd.LOGIN_AUTH_LOGOUT_REQ: Cmd.LOGIN_AUTH_LOGOUT_RSP,
    Cmd.LOGIN_HEARTBEAT: Cmd.LOGIN_HEARTBEAT,
    Cmd.LOGIN_AUTH_REQ: Cmd.LOGIN_AUTH_RSP,
    Cmd.LIST_RECENT_CONTACT_SESSION_REQ: Cmd.LIST_RECENT_CONTACT_SESSION_RSP,
    Cmd.LIST_MSG_REQ: Cmd.LIST_MSG_RSP,
    Cmd.MSG_DATA: Cmd.MSG_DATA_ACK,
    Cmd.MSG_GET_LATEST_MSG_ID_REQ: Cmd.MSG_GET_LATEST_MSG_ID_RSP,
    Cmd.MSG_GET_BY_MSG_ID_REQ: Cmd.MSG_GET_BY_MSG_ID_RSP,
    Cmd.VOIP_INVITE_REQ: Cmd.VOIP_INVITE_REPLY,
    Cmd.VOIP_BYE_REQ: Cmd.VOIP_BYE_RSP,
    Cmd.GROUP_CREATE_DEFAULT_REQ: Cmd.GROUP_CREATE_DEFAULT_RSP,
    Cmd.GROUP_DISBINGDING_REQ: Cmd.GROUP_DISBINGDING_RSP,
    Cmd.GROUP_EXIT_REQ: Cmd.GROUP_EXIT_RSP,
    Cmd.GROUP_LIST_REQ: Cmd.GROUP_LIST_RSP,
    Cmd.GROUP_INFO_REQ: Cmd.GROUP_INFO_RSP,
    Cmd.GROUP_INVITE_MEMBER_REQ: Cmd.GROUP_INVITE_MEMBER_RSP,
    Cmd.GROUP_KICK_OUT_MEMBER_REQ: Cmd.GROUP_KICK_OUT_MEMBER_RSP,
    Cmd.GROUP_LIST_MEMBER_REQ: Cmd.GROUP_LIST_MEMBER_RSP,
    Cmd.GROUP_UPDATE_REQ: Cmd.GROUP_UPDATE_RSP,
    Cmd.GROUP_SET_ADMIN_REQ: Cmd.GROUP_SET_ADMIN_RSP,
    Cmd.GROUP_READ_COUNT_REQ: Cmd.GROUP_READ_COUNT_RSP,
    Cmd.FRIEND_QUERY_USER_LIST_REQ: Cmd.FRIEND_QUERY_USER_LIST_RSP,
}

# Commands the server only ever starts itself (with its own seq counter), never as an answer.
PUSH_COMMANDS: frozenset[int] = frozenset(
    {
        Cmd.MSG_DATA,
        Cmd.MSG_READ_NOTIFY,
        Cmd.VOIP_INVITE_REQ,
        Cmd.VOIP_INVITE_REPLY_ACK,
        Cmd.VOIP_BYE_NOTIFY,
        Cmd.GROUP_MEMBER_CHANGED_NOTIFY,
        Cmd.GROUP_READ_COUNT_NOTIFY,
        Cmd.KICKOUT_NOTIFY,
    }
)


class BodyError(ValueError):
    """A frame body that cannot be turned into a message: unknown command id or bad protobuf."""

    def __init__(self, cmd: int, message: str) -> None:
        super().__init__(f"command 0x{cmd:04x}: {message}")
        self.cmd = cmd


def decode_body(cmd: int, body: bytes) -> Message:
    """Parse ``body`` as the message type of command ``cmd``; raises :class:`BodyError`."""
    cls = BODY_TYPES.get(cmd)
    if cls is None:
        raise BodyError(cmd, "unknown command id")
    try:
        return cls.FromString(body)
    except DecodeError as e:
        raise BodyError(cmd, f"cannot parse {cls.__name__}: {e}") from None


def encode_body(msg: Message) -> bytes:
    """Serialize a message for a frame body (proto3: default-valued fields are left out)."""
    return msg.SerializeToString()
