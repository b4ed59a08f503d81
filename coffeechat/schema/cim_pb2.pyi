from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CIMCmdID(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_CID_UNKNOWN: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_AUTH_TOKEN_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_AUTH_TOKEN_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_AUTH_LOGOUT_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_AUTH_LOGOUT_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_HEARTBEAT: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_AUTH_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_LOGIN_AUTH_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_LIST_RECENT_CONTACT_SESSION_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_LIST_RECENT_CONTACT_SESSION_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_LIST_MSG_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_LIST_MSG_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DATA: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DATA_ACK: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_READ_ACK: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_READ_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_GET_LATEST_MSG_ID_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_GET_LATEST_MSG_ID_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_GET_BY_MSG_ID_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_GET_BY_MSG_ID_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_RECALL_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_RECALL_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_RECALL_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_RECALL_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_RECALL_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_TYPING_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_TYPING_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_INVITE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_INVITE_REPLY: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_INVITE_REPLY_ACK: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_HEARTBEAT: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_BYE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_BYE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_VOIP_BYE_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_CREATE_DEFAULT_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_CREATE_DEFAULT_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_DISBINGDING_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_DISBINGDING_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_EXIT_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_EXIT_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INFO_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INFO_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INVITE_MEMBER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INVITE_MEMBER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_KICK_OUT_MEMBER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_KICK_OUT_MEMBER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_MEMBER_CHANGED_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_LIST_MEMBER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_LIST_MEMBER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_UPDATE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_UPDATE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_SET_ADMIN_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_SET_ADMIN_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_READ_COUNT_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_READ_COUNT_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_READ_COUNT_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_QUERY_USER_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_QUERY_USER_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_ERROR_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_KICKOUT_NOTIFY: _ClassVar[CIMCmdID]

class CIMIntenralCmdID(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_SID_UNKNOWN: _ClassVar[CIMIntenralCmdID]
    kCIM_SID_DB_VALIDATE_REQ: _ClassVar[CIMIntenralCmdID]
    kCIM_SID_DB_VALIDATE_RSP: _ClassVar[CIMIntenralCmdID]

class CIMErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_ERR_UNKNOWN: _ClassVar[CIMErrorCode]
    kCIM_ERR_SUCCESS: _ClassVar[CIMErrorCode]
    kCIM_ERR_INTERNAL_ERROR: _ClassVar[CIMErrorCode]
    kCIM_ERR_LOGIN_DB_VALIDATE_FAILED: _ClassVar[CIMErrorCode]
    kCIM_ERR_LOGIN_VERSION_TOO_OLD: _ClassVar[CIMErrorCode]
    kCIM_ERR_LOGIN_INVALID_USER_TOKEN: _ClassVar[CIMErrorCode]
    kCIM_ERR_LOGIN_INVALID_USER_OR_PWD: _ClassVar[CIMErrorCode]
    kCIM_ERROR_USER_ALREADY_EXIST: _ClassVar[CIMErrorCode]
    kCIM_ERROR_USER_INVALID_PARAMETER: _ClassVar[CIMErrorCode]
    kCIM_ERROR_USER_NOT_EXIST: _ClassVar[CIMErrorCode]
    kCIM_ERR_UNKNOWN_COMMAND: _ClassVar[CIMErrorCode]
    kCIM_ERR_MALFORMED_BODY: _ClassVar[CIMErrorCode]
    kCIM_ERR_NOT_LOGGED_IN: _ClassVar[CIMErrorCode]
    kCIM_ERR_FORBIDDEN: _ClassVar[CIMErrorCode]
    kCIM_ERR_MSG_TOO_LARGE: _ClassVar[CIMErrorCode]
    kCIM_ERR_INVALID_MSG: _ClassVar[CIMErrorCode]
    kCIM_ERR_RATE_LIMITED: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_DEVICES: _ClassVar[CIMErrorCode]
    kCIM_ERR_NOT_FOUND: _ClassVar[CIMErrorCode]
    kCIM_ERR_USER_DISABLED: _ClassVar[CIMErrorCode]
    kCIM_ERR_INVALID_ARGUMENT: _ClassVar[CIMErrorCode]
    kCIM_ERR_NOT_SUPPORTED: _ClassVar[CIMErrorCode]
    kCIM_ERR_ALREADY_LOGGED_IN: _ClassVar[CIMErrorCode]
    kCIM_ERR_SESSION_REPLACED: _ClassVar[CIMErrorCode]
    kCIM_ERR_SERVER_SHUTDOWN: _ClassVar[CIMErrorCode]
    kCIM_ERR_IDLE_TIMEOUT: _ClassVar[CIMErrorCode]
    kCIM_ERR_LOGIN_TIMEOUT: _ClassVar[CIMErrorCode]
    kCIM_ERR_GROUP_FULL: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_GROUPS: _ClassVar[CIMErrorCode]
    kCIM_ERR_RECALL_TOO_LATE: _ClassVar[CIMErrorCode]
    kCIM_ERR_STORAGE_UNAVAILABLE: _ClassVar[CIMErrorCode]
    kCIM_ERR_SLOW_CONSUMER: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_CONNECTIONS: _ClassVar[CIMErrorCode]

class CIMClientType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_CLIENT_TYPE_DEFAULT: _ClassVar[CIMClientType]
    kCIM_CLIENT_TYPE_ANDROID: _ClassVar[CIMClientType]
    kCIM_CLIENT_TYPE_IOS: _ClassVar[CIMClientType]
    kCIM_CLIENT_TYPE_WEB: _ClassVar[CIMClientType]
    kCIM_CLIENT_TYPE_REST_API: _ClassVar[CIMClientType]
    kCIM_CLIENT_TYPE_PC_WINDOWS: _ClassVar[CIMClientType]
    kCIM_CLIENT_TYPE_MAC_OS: _ClassVar[CIMClientType]

class CIMSessionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_SESSION_TYPE_Invalid: _ClassVar[CIMSessionType]
    kCIM_SESSION_TYPE_SINGLE: _ClassVar[CIMSessionType]
    kCIM_SESSION_TYPE_GROUP: _ClassVar[CIMSessionType]

class CIMMsgType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_MSG_TYPE_UNKNOWN: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_TEXT: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_FILE: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_IMAGE: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_AUDIO: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_VIDEO: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_LOCATION: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_ROBOT: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_TIPS: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_NOTIFACATION: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_AVCHAT: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_RECALLED: _ClassVar[CIMMsgType]

class CIMMsgStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_MSG_STATUS_NONE: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_UNREAD: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_READ: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_DELETED: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_SENDING: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_SENT: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_RECEIPT: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_DRAFT: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_SendCacel: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_REFUSED: _ClassVar[CIMMsgStatus]
    kCIM_MSG_STATUS_FAILED: _ClassVar[CIMMsgStatus]

class CIMMsgNotificationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_MSG_NOTIFICATION_UNKNOWN: _ClassVar[CIMMsgNotificationType]
    kCIM_MSG_NOTIFICATION_GROUP_CREATE: _ClassVar[CIMMsgNotificationType]
    kCIM_MSG_NOTIFICATION_GROUP_BE_INVITE: _ClassVar[CIMMsgNotificationType]
    kCIM_MSG_NOTIFICATION_GROUP_KICK: _ClassVar[CIMMsgNotificationType]
    kCIM_MSG_NOTIFICATION_GROUP_LEAVE: _ClassVar[CIMMsgNotificationType]
    kCIM_MSG_NOTIFICATION_GROUP_UPDATE: _ClassVar[CIMMsgNotificationType]
    kCIM_MSG_NOTIFICATION_GROUP_DISMISS: _ClassVar[CIMMsgNotificationType]

class CIMSessionStatusType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_SESSION_STATUS_UNKNOWN: _ClassVar[CIMSessionStatusType]
    kCIM_SESSION_STATUS_OK: _ClassVar[CIMSessionStatusType]
    kCIM_SESSION_STATUS_DELETE: _ClassVar[CIMSessionStatusType]

class CIMMsgFeature(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_MSG_FEATURE_DEFAULT: _ClassVar[CIMMsgFeature]
    kCIM_MSG_FEATURE_ROAM_MSG: _ClassVar[CIMMsgFeature]

class CIMVoipInviteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_VOIP_INVITE_TYPE_UNKNOWN: _ClassVar[CIMVoipInviteType]
    kCIM_VOIP_INVITE_TYPE_VOICE_CALL: _ClassVar[CIMVoipInviteType]
    kCIM_VOIP_INVITE_TYPE_VIDEO_CALL: _ClassVar[CIMVoipInviteType]

class CIMInviteRspCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_VOIP_INVITE_CODE_UNKNOWN: _ClassVar[CIMInviteRspCode]
    kCIM_VOIP_INVITE_CODE_TRYING: _ClassVar[CIMInviteRspCode]
    kCIM_VOIP_INVITE_CODE_RINGING: _ClassVar[CIMInviteRspCode]
    KCIM_VOIP_INVITE_CODE_OK: _ClassVar[CIMInviteRspCode]

class CIMVoipByeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_VOIP_BYE_REASON_UNKNOWN: _ClassVar[CIMVoipByeReason]
    kCIM_VOIP_BYE_REASON_CANCEL: _ClassVar[CIMVoipByeReason]
    kCIM_VOIP_BYE_REASON_REJECT: _ClassVar[CIMVoipByeReason]
    kCIM_VOIP_BYE_REASON_END: _ClassVar[CIMVoipByeReason]
    kCIM_VOIP_BYE_REASON_BUSY: _ClassVar[CIMVoipByeReason]
    kCIM_VOIP_BYE_REASON_ONLINE_CLIENT_REJECT: _ClassVar[CIMVoipByeReason]

class CIMResCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_RES_CODE_UNKNOWN: _ClassVar[CIMResCode]
    kCIM_RES_CODE_OK: _ClassVar[CIMResCode]

class CIMGroupMemberChangedType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_MEMBER_CHANGED_TYPE_DEFAULT: _ClassVar[CIMGroupMemberChangedType]
    kCIM_GROUP_MEMBER_CHANGED_TYPE_ADD: _ClassVar[CIMGroupMemberChangedType]
    kCIM_GROUP_MEMBER_CHANGED_TYPE_DEL: _ClassVar[CIMGroupMemberChangedType]

class CIMGroupType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_TYPE_UNKNOWN: _ClassVar[CIMGroupType]
    kCIM_GROUP_TYPE_GROUP_NORMAL: _ClassVar[CIMGroupType]
    kCIM_GROUP_TYPE_GROUP_SUPER: _ClassVar[CIMGroupType]

class CIMGroupJoinModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_JOIN_MODEL_DEFAULT: _ClassVar[CIMGroupJoinModel]
    kCIM_GROUP_JOIN_MODEL_NEED_AUTH: _ClassVar[CIMGroupJoinModel]
    kCIM_GROUP_JOIN_MODEL_REJECT: _ClassVar[CIMGroupJoinModel]

class CIMGroupBeInviteMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_BE_INVITE_MODEL_DEFAULT: _ClassVar[CIMGroupBeInviteMode]
    kCIM_GROUP_BE_INVITE_MODEL_NEED_AGREE: _ClassVar[CIMGroupBeInviteMode]

class CIMGroupMuteModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_MUTE_MODEL_DEFAULT: _ClassVar[CIMGroupMuteModel]
    kCIM_GROUP_MUTE_MODEL_ALL: _ClassVar[CIMGroupMuteModel]

class CIMGroupMemberRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_MEMBER_ROLE_UNKNOWN: _ClassVar[CIMGroupMemberRole]
    kCIM_GROUP_MEMBER_ROLE_MEMBER: _ClassVar[CIMGroupMemberRole]
    kCIM_GROUP_MEMBER_ROLE_ADMIN: _ClassVar[CIMGroupMemberRole]
    kCIM_GROUP_MEMBER_ROLE_OWNER: _ClassVar[CIMGroupMemberRole]
kCIM_CID_UNKNOWN: CIMCmdID
kCIM_CID_LOGIN_AUTH_TOKEN_REQ: CIMCmdID
kCIM_CID_LOGIN_AUTH_TOKEN_RSP: CIMCmdID
kCIM_CID_LOGIN_AUTH_LOGOUT_REQ: CIMCmdID
kCIM_CID_LOGIN_AUTH_LOGOUT_RSP: CIMCmdID
kCIM_CID_LOGIN_HEARTBEAT: CIMCmdID
kCIM_CID_LOGIN_AUTH_REQ: CIMCmdID
kCIM_CID_LOGIN_AUTH_RSP: CIMCmdID
kCIM_CID_LIST_RECENT_CONTACT_SESSION_REQ: CIMCmdID
kCIM_CID_LIST_RECENT_CONTACT_SESSION_RSP: CIMCmdID
kCIM_CID_LIST_MSG_REQ: CIMCmdID
kCIM_CID_LIST_MSG_RSP: CIMCmdID
kCIM_CID_MSG_DATA: CIMCmdID
kCIM_CID_MSG_DATA_ACK: CIMCmdID
kCIM_CID_MSG_READ_ACK: CIMCmdID
kCIM_CID_MSG_READ_NOTIFY: CIMCmdID
kCIM_CID_MSG_GET_LATEST_MSG_ID_REQ: CIMCmdID
kCIM_CID_MSG_GET_LATEST_MSG_ID_RSP: CIMCmdID
kCIM_CID_MSG_GET_BY_MSG_ID_REQ: CIMCmdID
kCIM_CID_MSG_GET_BY_MSG_ID_RSP: CIMCmdID
kCIM_CID_MSG_RECALL_REQ: CIMCmdID
kCIM_CID_MSG_RECALL_RSP: CIMCmdID
kCIM_CID_MSG_RECALL_NOTIFY: CIMCmdID
kCIM_CID_MSG_RECALL_LIST_REQ: CIMCmdID
kCIM_CID_MSG_RECALL_LIST_RSP: CIMCmdID
kCIM_CID_MSG_TYPING_REQ: CIMCmdID
kCIM_CID_MSG_TYPING_NOTIFY: CIMCmdID
kCIM_CID_VOIP_INVITE_REQ: CIMCmdID
kCIM_CID_VOIP_INVITE_REPLY: CIMCmdID
kCIM_CID_VOIP_INVITE_REPLY_ACK: CIMCmdID
kCIM_CID_VOIP_HEARTBEAT: CIMCmdID
kCIM_CID_VOIP_BYE_REQ: CIMCmdID
kCIM_CID_VOIP_BYE_RSP: CIMCmdID
kCIM_CID_VOIP_BYE_NOTIFY: CIMCmdID
kCIM_CID_GROUP_CREATE_DEFAULT_REQ: CIMCmdID
kCIM_CID_GROUP_CREATE_DEFAULT_RSP: CIMCmdID
kCIM_CID_GROUP_DISBINGDING_REQ: CIMCmdID
kCIM_CID_GROUP_DISBINGDING_RSP: CIMCmdID
kCIM_CID_GROUP_EXIT_REQ: CIMCmdID
kCIM_CID_GROUP_EXIT_RSP: CIMCmdID
kCIM_CID_GROUP_LIST_REQ: CIMCmdID
kCIM_CID_GROUP_LIST_RSP: CIMCmdID
kCIM_CID_GROUP_INFO_REQ: CIMCmdID
kCIM_CID_GROUP_INFO_RSP: CIMCmdID
kCIM_CID_GROUP_INVITE_MEMBER_REQ: CIMCmdID
kCIM_CID_GROUP_INVITE_MEMBER_RSP: CIMCmdID
kCIM_CID_GROUP_KICK_OUT_MEMBER_REQ: CIMCmdID
kCIM_CID_GROUP_KICK_OUT_MEMBER_RSP: CIMCmdID
kCIM_CID_GROUP_MEMBER_CHANGED_NOTIFY: CIMCmdID
kCIM_CID_GROUP_LIST_MEMBER_REQ: CIMCmdID
kCIM_CID_GROUP_LIST_MEMBER_RSP: CIMCmdID
kCIM_CID_GROUP_UPDATE_REQ: CIMCmdID
kCIM_CID_GROUP_UPDATE_RSP: CIMCmdID
kCIM_CID_GROUP_SET_ADMIN_REQ: CIMCmdID
kCIM_CID_GROUP_SET_ADMIN_RSP: CIMCmdID
kCIM_CID_GROUP_READ_COUNT_REQ: CIMCmdID
kCIM_CID_GROUP_READ_COUNT_RSP: CIMCmdID
kCIM_CID_GROUP_READ_COUNT_NOTIFY: CIMCmdID
kCIM_CID_FRIEND_QUERY_USER_LIST_REQ: CIMCmdID
kCIM_CID_FRIEND_QUERY_USER_LIST_RSP: CIMCmdID
kCIM_CID_ERROR_RSP: CIMCmdID
kCIM_CID_KICKOUT_NOTIFY: CIMCmdID
kCIM_SID_UNKNOWN: CIMIntenralCmdID
kCIM_SID_DB_VALIDATE_REQ: CIMIntenralCmdID
kCIM_SID_DB_VALIDATE_RSP: CIMIntenralCmdID
kCIM_ERR_UNKNOWN: CIMErrorCode
kCIM_ERR_SUCCESS: CIMErrorCode
kCIM_ERR_INTERNAL_ERROR: CIMErrorCode
kCIM_ERR_LOGIN_DB_VALIDATE_FAILED: CIMErrorCode
kCIM_ERR_LOGIN_VERSION_TOO_OLD: CIMErrorCode
kCIM_ERR_LOGIN_INVALID_USER_TOKEN: CIMErrorCode
kCIM_ERR_LOGIN_INVALID_USER_OR_PWD: CIMErrorCode
kCIM_ERROR_USER_ALREADY_EXIST: CIMErrorCode
kCIM_ERROR_USER_INVALID_PARAMETER: CIMErrorCode
kCIM_ERROR_USER_NOT_EXIST: CIMErrorCode
kCIM_ERR_UNKNOWN_COMMAND: CIMErrorCode
kCIM_ERR_MALFORMED_BODY: CIMErrorCode
kCIM_ERR_NOT_LOGGED_IN: CIMErrorCode
kCIM_ERR_FORBIDDEN: CIMErrorCode
kCIM_ERR_MSG_TOO_LARGE: CIMErrorCode
kCIM_ERR_INVALID_MSG: CIMErrorCode
kCIM_ERR_RATE_LIMITED: CIMErrorCode
kCIM_ERR_TOO_MANY_DEVICES: CIMErrorCode
kCIM_ERR_NOT_FOUND: CIMErrorCode
kCIM_ERR_USER_DISABLED: CIMErrorCode
kCIM_ERR_INVALID_ARGUMENT: CIMErrorCode
kCIM_ERR_NOT_SUPPORTED: CIMErrorCode
kCIM_ERR_ALREADY_LOGGED_IN: CIMErrorCode
kCIM_ERR_SESSION_REPLACED: CIMErrorCode
kCIM_ERR_SERVER_SHUTDOWN: CIMErrorCode
kCIM_ERR_IDLE_TIMEOUT: CIMErrorCode
kCIM_ERR_LOGIN_TIMEOUT: CIMErrorCode
kCIM_ERR_GROUP_FULL: CIMErrorCode
kCIM_ERR_TOO_MANY_GROUPS: CIMErrorCode
kCIM_ERR_RECALL_TOO_LATE: CIMErrorCode
kCIM_ERR_STORAGE_UNAVAILABLE: CIMErrorCode
kCIM_ERR_SLOW_CONSUMER: CIMErrorCode
kCIM_ERR_TOO_MANY_CONNECTIONS: CIMErrorCode
kCIM_CLIENT_TYPE_DEFAULT: CIMClientType
kCIM_CLIENT_TYPE_ANDROID: CIMClientType
kCIM_CLIENT_TYPE_IOS: CIMClientType
kCIM_CLIENT_TYPE_WEB: CIMClientType
kCIM_CLIENT_TYPE_REST_API: CIMClientType
kCIM_CLIENT_TYPE_PC_WINDOWS: CIMClientType
kCIM_CLIENT_TYPE_MAC_OS: CIMClientType
kCIM_SESSION_TYPE_Invalid: CIMSessionType
kCIM_SESSION_TYPE_SINGLE: CIMSessionType
kCIM_SESSION_TYPE_GROUP: CIMSessionType
kCIM_MSG_TYPE_UNKNOWN: CIMMsgType
kCIM_MSG_TYPE_TEXT: CIMMsgType
kCIM_MSG_TYPE_FILE: CIMMsgType
kCIM_MSG_TYPE_IMAGE: CIMMsgType
kCIM_MSG_TYPE_AUDIO: CIMMsgType
kCIM_MSG_TYPE_VIDEO: CIMMsgType
kCIM_MSG_TYPE_LOCATION: CIMMsgType
kCIM_MSG_TYPE_ROBOT: CIMMsgType
kCIM_MSG_TYPE_TIPS: CIMMsgType
kCIM_MSG_TYPE_NOTIFACATION: CIMMsgType
kCIM_MSG_TYPE_AVCHAT: CIMMsgType
kCIM_MSG_TYPE_RECALLED: CIMMsgType
kCIM_MSG_STATUS_NONE: CIMMsgStatus
kCIM_MSG_STATUS_UNREAD: CIMMsgStatus
kCIM_MSG_STATUS_READ: CIMMsgStatus
kCIM_MSG_STATUS_DELETED: CIMMsgStatus
kCIM_MSG_STATUS_SENDING: CIMMsgStatus
kCIM_MSG_STATUS_SENT: CIMMsgStatus
kCIM_MSG_STATUS_RECEIPT: CIMMsgStatus
kCIM_MSG_STATUS_DRAFT: CIMMsgStatus
kCIM_MSG_STATUS_SendCacel: CIMMsgStatus
kCIM_MSG_STATUS_REFUSED: CIMMsgStatus
kCIM_MSG_STATUS_FAILED: CIMMsgStatus
kCIM_MSG_NOTIFICATION_UNKNOWN: CIMMsgNotificationType
kCIM_MSG_NOTIFICATION_GROUP_CREATE: CIMMsgNotificationType
kCIM_MSG_NOTIFICATION_GROUP_BE_INVITE: CIMMsgNotificationType
kCIM_MSG_NOTIFICATION_GROUP_KICK: CIMMsgNotificationType
kCIM_MSG_NOTIFICATION_GROUP_LEAVE: CIMMsgNotificationType
kCIM_MSG_NOTIFICATION_GROUP_UPDATE: CIMMsgNotificationType
kCIM_MSG_NOTIFICATION_GROUP_DISMISS: CIMMsgNotificationType
kCIM_SESSION_STATUS_UNKNOWN: CIMSessionStatusType
kCIM_SESSION_STATUS_OK: CIMSessionStatusType
kCIM_SESSION_STATUS_DELETE: CIMSessionStatusType
kCIM_MSG_FEATURE_DEFAULT: CIMMsgFeature
kCIM_MSG_FEATURE_ROAM_MSG: CIMMsgFeature
kCIM_VOIP_INVITE_TYPE_UNKNOWN: CIMVoipInviteType
kCIM_VOIP_INVITE_TYPE_VOICE_CALL: CIMVoipInviteType
kCIM_VOIP_INVITE_TYPE_VIDEO_CALL: CIMVoipInviteType
kCIM_VOIP_INVITE_CODE_UNKNOWN: CIMInviteRspCode
kCIM_VOIP_INVITE_CODE_TRYING: CIMInviteRspCode
kCIM_VOIP_INVITE_CODE_RINGING: CIMInviteRspCode
KCIM_VOIP_INVITE_CODE_OK: CIMInviteRspCode
kCIM_VOIP_BYE_REASON_UNKNOWN: CIMVoipByeReason
kCIM_VOIP_BYE_REASON_CANCEL: CIMVoipByeReason
kCIM_VOIP_BYE_REASON_REJECT: CIMVoipByeReason
kCIM_VOIP_BYE_REASON_END: CIMVoipByeReason
kCIM_VOIP_BYE_REASON_BUSY: CIMVoipByeReason
kCIM_VOIP_BYE_REASON_ONLINE_CLIENT_REJECT: CIMVoipByeReason
kCIM_RES_CODE_UNKNOWN: CIMResCode
kCIM_RES_CODE_OK: CIMResCode
kCIM_GROUP_MEMBER_CHANGED_TYPE_DEFAULT: CIMGroupMemberChangedType
kCIM_GROUP_MEMBER_CHANGED_TYPE_ADD: CIMGroupMemberChangedType
kCIM_GROUP_MEMBER_CHANGED_TYPE_DEL: CIMGroupMemberChangedType
kCIM_GROUP_TYPE_UNKNOWN: CIMGroupType
kCIM_GROUP_TYPE_GROUP_NORMAL: CIMGroupType
kCIM_GROUP_TYPE_GROUP_SUPER: CIMGroupType
kCIM_GROUP_JOIN_MODEL_DEFAULT: CIMGroupJoinModel
kCIM_GROUP_JOIN_MODEL_NEED_AUTH: CIMGroupJoinModel
kCIM_GROUP_JOIN_MODEL_REJECT: CIMGroupJoinModel
kCIM_GROUP_BE_INVITE_MODEL_DEFAULT: CIMGroupBeInviteMode
kCIM_GROUP_BE_INVITE_MODEL_NEED_AGREE: CIMGroupBeInviteMode
kCIM_GROUP_MUTE_MODEL_DEFAULT: CIMGroupMuteModel
kCIM_GROUP_MUTE_MODEL_ALL: CIMGroupMuteModel
kCIM_GROUP_MEMBER_ROLE_UNKNOWN: CIMGroupMemberRole
kCIM_GROUP_MEMBER_ROLE_MEMBER: CIMGroupMemberRole
kCIM_GROUP_MEMBER_ROLE_ADMIN: CIMGroupMemberRole
kCIM_GROUP_MEMBER_ROLE_OWNER: CIMGroupMemberRole
BODY_FIELD_NUMBER: _ClassVar[int]
body: _descriptor.FieldDescriptor
ANSWER_FIELD_NUMBER: _ClassVar[int]
answer: _descriptor.FieldDescriptor
PUSH_FIELD_NUMBER: _ClassVar[int]
push: _descriptor.FieldDescriptor

class CIMUserInfo(_message.Message):
    __slots__ = ("user_id", "nick_name", "nick_name_spell", "phone", "avatar_url", "attach_info")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_SPELL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    ATTACH_INFO_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    nick_name: str
    nick_name_spell: str
    phone: str
    avatar_url: str
    attach_info: str
    def __init__(self, user_id: _Optional[int] = ..., nick_name: _Optional[str] = ..., nick_name_spell: _Optional[str] = ..., phone: _Optional[str] = ..., avatar_url: _Optional[str] = ..., attach_info: _Optional[str] = ...) -> None: ...

class CIMContactSessionInfo(_message.Message):
    __slots__ = ("session_id", "session_type", "session_status", "unread_cnt", "updated_time", "msg_id", "server_msg_id", "msg_time_stamp", "msg_data", "msg_type", "msg_from_user_id", "msg_status", "msg_attach", "extend_data", "is_robot_session", "at_me")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_STATUS_FIELD_NUMBER: _ClassVar[int]
    UNREAD_CNT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_TIME_STAMP_FIELD_NUMBER: _ClassVar[int]
    MSG_DATA_FIELD_NUMBER: _ClassVar[int]
    MSG_TYPE_FIELD_NUMBER: _ClassVar[int]
    MSG_FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_STATUS_FIELD_NUMBER: _ClassVar[int]
    MSG_ATTACH_FIELD_NUMBER: _ClassVar[int]
    EXTEND_DATA_FIELD_NUMBER: _ClassVar[int]
    IS_ROBOT_SESSION_FIELD_NUMBER: _ClassVar[int]
    AT_ME_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    session_type: CIMSessionType
    session_status: CIMSessionStatusType
    unread_cnt: int
    updated_time: int
    msg_id: str
    server_msg_id: int
    msg_time_stamp: int
    msg_data: bytes
    msg_type: CIMMsgType
    msg_from_user_id: int
    msg_status: CIMMsgStatus
    msg_attach: str
    extend_data: str
    is_robot_session: bool
    at_me: bool
    def __init__(self, session_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_status: _Optional[_Union[CIMSessionStatusType, str]] = ..., unread_cnt: _Optional[int] = ..., updated_time: _Optional[int] = ..., msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., msg_time_stamp: _Optional[int] = ..., msg_data: _Optional[bytes] = ..., msg_type: _Optional[_Union[CIMMsgType, str]] = ..., msg_from_user_id: _Optional[int] = ..., msg_status: _Optional[_Union[CIMMsgStatus, str]] = ..., msg_attach: _Optional[str] = ..., extend_data: _Optional[str] = ..., is_robot_session: _Optional[bool] = ..., at_me: _Optional[bool] = ...) -> None: ...

class CIMMsgInfo(_message.Message):
    __slots__ = ("client_msg_id", "server_msg_id", "msg_res_code", "msg_feature", "session_type", "from_user_id", "to_session_id", "create_time", "msg_type", "msg_status", "msg_data", "attach", "sender_client_type")
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_RES_CODE_FIELD_NUMBER: _ClassVar[int]
    MSG_FEATURE_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MSG_TYPE_FIELD_NUMBER: _ClassVar[int]
    MSG_STATUS_FIELD_NUMBER: _ClassVar[int]
    MSG_DATA_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    SENDER_CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    client_msg_id: str
    server_msg_id: int
    msg_res_code: CIMResCode
    msg_feature: CIMMsgFeature
    session_type: CIMSessionType
    from_user_id: int
    to_session_id: int
    create_time: int
    msg_type: CIMMsgType
    msg_status: CIMMsgStatus
    msg_data: bytes
    attach: str
    sender_client_type: CIMClientType
    def __init__(self, client_msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., msg_res_code: _Optional[_Union[CIMResCode, str]] = ..., msg_feature: _Optional[_Union[CIMMsgFeature, str]] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., from_user_id: _Optional[int] = ..., to_session_id: _Optional[int] = ..., create_time: _Optional[int] = ..., msg_type: _Optional[_Union[CIMMsgType, str]] = ..., msg_status: _Optional[_Union[CIMMsgStatus, str]] = ..., msg_data: _Optional[bytes] = ..., attach: _Optional[str] = ..., sender_client_type: _Optional[_Union[CIMClientType, str]] = ...) -> None: ...

class CIMChannelInfo(_message.Message):
    __slots__ = ("channel_name", "channel_token", "creator_id")
    CHANNEL_NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATOR_ID_FIELD_NUMBER: _ClassVar[int]
    channel_name: str
    channel_token: str
    creator_id: int
    def __init__(self, channel_name: _Optional[str] = ..., channel_token: _Optional[str] = ..., creator_id: _Optional[int] = ...) -> None: ...

class CIMErrorRsp(_message.Message):
    __slots__ = ("cmd_id", "error_code", "error_msg")
    CMD_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    cmd_id: int
    error_code: CIMErrorCode
    error_msg: str
    def __init__(self, cmd_id: _Optional[int] = ..., error_code: _Optional[_Union[CIMErrorCode, str]] = ..., error_msg: _Optional[str] = ...) -> None: ...

class CIMKickoutNotify(_message.Message):
    __slots__ = ("reason_code", "reason")
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason_code: CIMErrorCode
    reason: str
    def __init__(self, reason_code: _Optional[_Union[CIMErrorCode, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CIMAuthTokenReq(_message.Message):
    __slots__ = ("user_id", "nick_name", "user_token", "client_type", "client_version")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    USER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    nick_name: str
    user_token: str
    client_type: CIMClientType
    client_version: str
    def __init__(self, user_id: _Optional[int] = ..., nick_name: _Optional[str] = ..., user_token: _Optional[str] = ..., client_type: _Optional[_Union[CIMClientType, str]] = ..., client_version: _Optional[str] = ...) -> None: ...

class CIMAuthTokenRsp(_message.Message):
    __slots__ = ("server_time", "result_code", "result_string", "user_info")
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    USER_INFO_FIELD_NUMBER: _ClassVar[int]
    server_time: int
    result_code: CIMErrorCode
    result_string: str
    user_info: CIMUserInfo
    def __init__(self, server_time: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., user_info: _Optional[_Union[CIMUserInfo, _Mapping]] = ...) -> None: ...

class CIMAuthReq(_message.Message):
    __slots__ = ("user_name", "user_pwd", "client_type", "client_version")
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    USER_PWD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_name: str
    user_pwd: str
    client_type: CIMClientType
    client_version: str
    def __init__(self, user_name: _Optional[str] = ..., user_pwd: _Optional[str] = ..., client_type: _Optional[_Union[CIMClientType, str]] = ..., client_version: _Optional[str] = ...) -> None: ...

class CIMAuthRsp(_message.Message):
    __slots__ = ("server_time", "result_code", "result_string", "user_info", "user_token", "token_expire_time")
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    USER_INFO_FIELD_NUMBER: _ClassVar[int]
    USER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    server_time: int
    result_code: CIMErrorCode
    result_string: str
    user_info: CIMUserInfo
    user_token: str
    token_expire_time: int
    def __init__(self, server_time: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., user_info: _Optional[_Union[CIMUserInfo, _Mapping]] = ..., user_token: _Optional[str] = ..., token_expire_time: _Optional[int] = ...) -> None: ...

class CIMLogoutReq(_message.Message):
    __slots__ = ("user_id", "client_type")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    client_type: CIMClientType
    def __init__(self, user_id: _Optional[int] = ..., client_type: _Optional[_Union[CIMClientType, str]] = ...) -> None: ...

class CIMLogoutRsp(_message.Message):
    __slots__ = ("result_code",)
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    result_code: int
    def __init__(self, result_code: _Optional[int] = ...) -> None: ...

class CIMHeartBeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CIMRecentContactSessionReq(_message.Message):
    __slots__ = ("user_id", "latest_update_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LATEST_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    latest_update_time: int
    def __init__(self, user_id: _Optional[int] = ..., latest_update_time: _Optional[int] = ...) -> None: ...

class CIMRecentContactSessionRsp(_message.Message):
    __slots__ = ("user_id", "unread_counts", "contact_session_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_SESSION_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    unread_counts: int
    contact_session_list: _containers.RepeatedCompositeFieldContainer[CIMContactSessionInfo]
    def __init__(self, user_id: _Optional[int] = ..., unread_counts: _Optional[int] = ..., contact_session_list: _Optional[_Iterable[_Union[CIMContactSessionInfo, _Mapping]]] = ...) -> None: ...

class CIMGetMsgListReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "end_msg_id", "limit_count")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    END_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    end_msg_id: int
    limit_count: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., end_msg_id: _Optional[int] = ..., limit_count: _Optional[int] = ...) -> None: ...

class CIMGetMsgListRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "end_msg_id", "msg_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    END_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    end_msg_id: int
    msg_list: _containers.RepeatedCompositeFieldContainer[CIMMsgInfo]
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., end_msg_id: _Optional[int] = ..., msg_list: _Optional[_Iterable[_Union[CIMMsgInfo, _Mapping]]] = ...) -> None: ...

class CIMMsgData(_message.Message):
    __slots__ = ("from_user_id", "from_nick_name", "to_session_id", "client_msg_id", "server_msg_id", "create_time", "msg_type", "session_type", "msg_data", "at_user_list", "at_all")
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    TO_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MSG_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    MSG_DATA_FIELD_NUMBER: _ClassVar[int]
    AT_USER_LIST_FIELD_NUMBER: _ClassVar[int]
    AT_ALL_FIELD_NUMBER: _ClassVar[int]
    from_user_id: int
    from_nick_name: str
    to_session_id: int
    client_msg_id: str
    server_msg_id: int
    create_time: int
    msg_type: CIMMsgType
    session_type: CIMSessionType
    msg_data: bytes
    at_user_list: _containers.RepeatedScalarFieldContainer[int]
    at_all: bool
    def __init__(self, from_user_id: _Optional[int] = ..., from_nick_name: _Optional[str] = ..., to_session_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., create_time: _Optional[int] = ..., msg_type: _Optional[_Union[CIMMsgType, str]] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., msg_data: _Optional[bytes] = ..., at_user_list: _Optional[_Iterable[int]] = ..., at_all: _Optional[bool] = ...) -> None: ...

class CIMMsgDataAck(_message.Message):
    __slots__ = ("from_user_id", "to_session_id", "client_msg_id", "server_msg_id", "res_code", "session_type", "create_time", "error_code", "error_msg")
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    RES_CODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    from_user_id: int
    to_session_id: int
    client_msg_id: str
    server_msg_id: int
    res_code: CIMResCode
    session_type: CIMSessionType
    create_time: int
    error_code: CIMErrorCode
    error_msg: str
    def __init__(self, from_user_id: _Optional[int] = ..., to_session_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., res_code: _Optional[_Union[CIMResCode, str]] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., create_time: _Optional[int] = ..., error_code: _Optional[_Union[CIMErrorCode, str]] = ..., error_msg: _Optional[str] = ...) -> None: ...

class CIMMsgDataReadAck(_message.Message):
    __slots__ = ("user_id", "session_id", "msg_id", "session_type")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_id: int
    msg_id: int
    session_type: CIMSessionType
    def __init__(self, user_id: _Optional[int] = ..., session_id: _Optional[int] = ..., msg_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ...) -> None: ...

class CIMMsgDataReadNotify(_message.Message):
    __slots__ = ("user_id", "session_id", "msg_id", "session_type")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_id: int
    msg_id: int
    session_type: CIMSessionType
    def __init__(self, user_id: _Optional[int] = ..., session_id: _Optional[int] = ..., msg_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ...) -> None: ...

class CIMGetLatestMsgIdReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ...) -> None: ...

class CIMGetLatestMsgIdRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "latest_msg_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LATEST_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    latest_msg_id: str
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., latest_msg_id: _Optional[str] = ...) -> None: ...

class CIMGetMsgByIdReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_id_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_id_list: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_id_list: _Optional[_Iterable[str]] = ...) -> None: ...

class CIMGetMsgByIdRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_list: _containers.RepeatedCompositeFieldContainer[CIMMsgInfo]
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_list: _Optional[_Iterable[_Union[CIMMsgInfo, _Mapping]]] = ...) -> None: ...

class CIMMsgRecallReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_id: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_id: _Optional[int] = ...) -> None: ...

class CIMMsgRecallRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_id", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_id: int
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMMsgRecallNotify(_message.Message):
    __slots__ = ("from_user_id", "to_session_id", "session_type", "server_msg_id", "client_msg_id", "recalled_by", "recall_time")
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERVER_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    RECALLED_BY_FIELD_NUMBER: _ClassVar[int]
    RECALL_TIME_FIELD_NUMBER: _ClassVar[int]
    from_user_id: int
    to_session_id: int
    session_type: CIMSessionType
    server_msg_id: int
    client_msg_id: str
    recalled_by: int
    recall_time: int
    def __init__(self, from_user_id: _Optional[int] = ..., to_session_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., server_msg_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., recalled_by: _Optional[int] = ..., recall_time: _Optional[int] = ...) -> None: ...

class CIMMsgRecallListReq(_message.Message):
    __slots__ = ("user_id", "since_time", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_TIME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    since_time: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., since_time: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CIMMsgRecallListRsp(_message.Message):
    __slots__ = ("user_id", "recalls", "has_more")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RECALLS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    recalls: _containers.RepeatedCompositeFieldContainer[CIMMsgRecallNotify]
    has_more: bool
    def __init__(self, user_id: _Optional[int] = ..., recalls: _Optional[_Iterable[_Union[CIMMsgRecallNotify, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class CIMTypingReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "typing")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    typing: bool
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., typing: _Optional[bool] = ...) -> None: ...

class CIMTypingNotify(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "typing", "ttl")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    typing: bool
    ttl: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., typing: _Optional[bool] = ..., ttl: _Optional[int] = ...) -> None: ...

class CIMGroupInfo(_message.Message):
    __slots__ = ("group_id", "group_name", "group_type", "join_model", "be_invite_model", "mute_model", "group_owner_id", "create_time", "update_time", "group_intro", "announcement", "group_avatar", "group_version", "member_count")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_TYPE_FIELD_NUMBER: _ClassVar[int]
    JOIN_MODEL_FIELD_NUMBER: _ClassVar[int]
    BE_INVITE_MODEL_FIELD_NUMBER: _ClassVar[int]
    MUTE_MODEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_INTRO_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_AVATAR_FIELD_NUMBER: _ClassVar[int]
    GROUP_VERSION_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    group_name: str
    group_type: CIMGroupType
    join_model: CIMGroupJoinModel
    be_invite_model: CIMGroupBeInviteMode
    mute_model: CIMGroupMuteModel
    group_owner_id: int
    create_time: int
    update_time: int
    group_intro: str
    announcement: str
    group_avatar: str
    group_version: int
    member_count: int
    def __init__(self, group_id: _Optional[int] = ..., group_name: _Optional[str] = ..., group_type: _Optional[_Union[CIMGroupType, str]] = ..., join_model: _Optional[_Union[CIMGroupJoinModel, str]] = ..., be_invite_model: _Optional[_Union[CIMGroupBeInviteMode, str]] = ..., mute_model: _Optional[_Union[CIMGroupMuteModel, str]] = ..., group_owner_id: _Optional[int] = ..., create_time: _Optional[int] = ..., update_time: _Optional[int] = ..., group_intro: _Optional[str] = ..., announcement: _Optional[str] = ..., group_avatar: _Optional[str] = ..., group_version: _Optional[int] = ..., member_count: _Optional[int] = ...) -> None: ...

class CIMGroupVersionInfo(_message.Message):
    __slots__ = ("group_id", "group_version")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_VERSION_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    group_version: int
    def __init__(self, group_id: _Optional[int] = ..., group_version: _Optional[int] = ...) -> None: ...

class CIMGroupCreateReq(_message.Message):
    __slots__ = ("user_id", "group_name", "member_id_list", "group_type")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    GROUP_TYPE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_name: str
    member_id_list: _containers.RepeatedScalarFieldContainer[int]
    group_type: CIMGroupType
    def __init__(self, user_id: _Optional[int] = ..., group_name: _Optional[str] = ..., member_id_list: _Optional[_Iterable[int]] = ..., group_type: _Optional[_Union[CIMGroupType, str]] = ...) -> None: ...

class CIMGroupCreateRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "group_info", "member_id_list", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    GROUP_INFO_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: int
    group_info: CIMGroupInfo
    member_id_list: _containers.RepeatedScalarFieldContainer[int]
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[int] = ..., group_info: _Optional[_Union[CIMGroupInfo, _Mapping]] = ..., member_id_list: _Optional[_Iterable[int]] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupDisbandingReq(_message.Message):
    __slots__ = ("user_id", "group_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ...) -> None: ...

class CIMGroupDisbandingRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupExitReq(_message.Message):
    __slots__ = ("user_id", "group_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ...) -> None: ...

class CIMGroupExitRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupListReq(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class CIMGroupListRsp(_message.Message):
    __slots__ = ("user_id", "group_version_list", "result_code")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_VERSION_LIST_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_version_list: _containers.RepeatedCompositeFieldContainer[CIMGroupVersionInfo]
    result_code: int
    def __init__(self, user_id: _Optional[int] = ..., group_version_list: _Optional[_Iterable[_Union[CIMGroupVersionInfo, _Mapping]]] = ..., result_code: _Optional[int] = ...) -> None: ...

class CIMGroupInfoReq(_message.Message):
    __slots__ = ("user_id", "group_version_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_VERSION_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_version_list: _containers.RepeatedCompositeFieldContainer[CIMGroupVersionInfo]
    def __init__(self, user_id: _Optional[int] = ..., group_version_list: _Optional[_Iterable[_Union[CIMGroupVersionInfo, _Mapping]]] = ...) -> None: ...

class CIMGroupInfoRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "group_info_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    GROUP_INFO_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: int
    group_info_list: _containers.RepeatedCompositeFieldContainer[CIMGroupInfo]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[int] = ..., group_info_list: _Optional[_Iterable[_Union[CIMGroupInfo, _Mapping]]] = ...) -> None: ...

class CIMGroupInviteMemberReq(_message.Message):
    __slots__ = ("user_id", "group_id", "member_id_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    member_id_list: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., member_id_list: _Optional[_Iterable[int]] = ...) -> None: ...

class CIMGroupInviteMemberRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupKickOutMemberReq(_message.Message):
    __slots__ = ("user_id", "group_id", "member_id_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    member_id_list: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., member_id_list: _Optional[_Iterable[int]] = ...) -> None: ...

class CIMGroupKickOutMemberRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupMemberListReq(_message.Message):
    __slots__ = ("user_id", "group_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ...) -> None: ...

class CIMGroupMemberListRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "member_id_list", "result_code", "member_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    member_id_list: _containers.RepeatedScalarFieldContainer[int]
    result_code: int
    member_list: _containers.RepeatedCompositeFieldContainer[CIMGroupMemberInfo]
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., member_id_list: _Optional[_Iterable[int]] = ..., result_code: _Optional[int] = ..., member_list: _Optional[_Iterable[_Union[CIMGroupMemberInfo, _Mapping]]] = ...) -> None: ...

class CIMGroupMemberInfo(_message.Message):
    __slots__ = ("user_id", "role", "join_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    JOIN_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    role: CIMGroupMemberRole
    join_time: int
    def __init__(self, user_id: _Optional[int] = ..., role: _Optional[_Union[CIMGroupMemberRole, str]] = ..., join_time: _Optional[int] = ...) -> None: ...

class CIMGroupMemberChangedInfo(_message.Message):
    __slots__ = ("user_id", "type", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    type: CIMGroupMemberChangedType
    role: CIMGroupMemberRole
    def __init__(self, user_id: _Optional[int] = ..., type: _Optional[_Union[CIMGroupMemberChangedType, str]] = ..., role: _Optional[_Union[CIMGroupMemberRole, str]] = ...) -> None: ...

class CIMGroupMemberChangedNotify(_message.Message):
    __slots__ = ("user_id", "group_id", "changed_list", "group_version")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_LIST_FIELD_NUMBER: _ClassVar[int]
    GROUP_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    changed_list: _containers.RepeatedCompositeFieldContainer[CIMGroupMemberChangedInfo]
    group_version: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., changed_list: _Optional[_Iterable[_Union[CIMGroupMemberChangedInfo, _Mapping]]] = ..., group_version: _Optional[int] = ...) -> None: ...

class CIMGroupUpdateReq(_message.Message):
    __slots__ = ("user_id", "group_id", "group_name", "announcement", "group_intro", "group_avatar", "mute_model", "join_model", "be_invite_model")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_INTRO_FIELD_NUMBER: _ClassVar[int]
    GROUP_AVATAR_FIELD_NUMBER: _ClassVar[int]
    MUTE_MODEL_FIELD_NUMBER: _ClassVar[int]
    JOIN_MODEL_FIELD_NUMBER: _ClassVar[int]
    BE_INVITE_MODEL_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    group_name: str
    announcement: str
    group_intro: str
    group_avatar: str
    mute_model: CIMGroupMuteModel
    join_model: CIMGroupJoinModel
    be_invite_model: CIMGroupBeInviteMode
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., group_name: _Optional[str] = ..., announcement: _Optional[str] = ..., group_intro: _Optional[str] = ..., group_avatar: _Optional[str] = ..., mute_model: _Optional[_Union[CIMGroupMuteModel, str]] = ..., join_model: _Optional[_Union[CIMGroupJoinModel, str]] = ..., be_invite_model: _Optional[_Union[CIMGroupBeInviteMode, str]] = ...) -> None: ...

class CIMGroupUpdateRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "group_info", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    GROUP_INFO_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    group_info: CIMGroupInfo
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., group_info: _Optional[_Union[CIMGroupInfo, _Mapping]] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupSetAdminReq(_message.Message):
    __slots__ = ("user_id", "group_id", "member_id_list", "is_admin")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    IS_ADMIN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    member_id_list: _containers.RepeatedScalarFieldContainer[int]
    is_admin: bool
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., member_id_list: _Optional[_Iterable[int]] = ..., is_admin: _Optional[bool] = ...) -> None: ...

class CIMGroupSetAdminRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupReadCountReq(_message.Message):
    __slots__ = ("user_id", "group_id", "msg_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    msg_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., msg_id: _Optional[int] = ...) -> None: ...

class CIMGroupReadCountRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "msg_id", "read_count", "member_count")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    READ_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    msg_id: int
    read_count: int
    member_count: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., msg_id: _Optional[int] = ..., read_count: _Optional[int] = ..., member_count: _Optional[int] = ...) -> None: ...

class CIMGroupReadCountNotify(_message.Message):
    __slots__ = ("group_id", "msg_id", "read_count", "member_count")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_ID_FIELD_NUMBER: _ClassVar[int]
    READ_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    msg_id: int
    read_count: int
    member_count: int
    def __init__(self, group_id: _Optional[int] = ..., msg_id: _Optional[int] = ..., read_count: _Optional[int] = ..., member_count: _Optional[int] = ...) -> None: ...

class CIMFriendQueryUserListReq(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class CIMFriendQueryUserListRsp(_message.Message):
    __slots__ = ("user_id", "user_info_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_INFO_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    user_info_list: _containers.RepeatedCompositeFieldContainer[CIMUserInfo]
    def __init__(self, user_id: _Optional[int] = ..., user_info_list: _Optional[_Iterable[_Union[CIMUserInfo, _Mapping]]] = ...) -> None: ...

class CIMVoipInviteReq(_message.Message):
    __slots__ = ("creator_user_id", "invite_user_list", "invite_type", "channel_info")
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    INVITE_USER_LIST_FIELD_NUMBER: _ClassVar[int]
    INVITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_INFO_FIELD_NUMBER: _ClassVar[int]
    creator_user_id: int
    invite_user_list: _containers.RepeatedScalarFieldContainer[int]
    invite_type: CIMVoipInviteType
    channel_info: CIMChannelInfo
    def __init__(self, creator_user_id: _Optional[int] = ..., invite_user_list: _Optional[_Iterable[int]] = ..., invite_type: _Optional[_Union[CIMVoipInviteType, str]] = ..., channel_info: _Optional[_Union[CIMChannelInfo, _Mapping]] = ...) -> None: ...

class CIMVoipInviteReply(_message.Message):
    __slots__ = ("user_id", "rsp_code", "channel_info")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RSP_CODE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_INFO_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    rsp_code: CIMInviteRspCode
    channel_info: CIMChannelInfo
    def __init__(self, user_id: _Optional[int] = ..., rsp_code: _Optional[_Union[CIMInviteRspCode, str]] = ..., channel_info: _Optional[_Union[CIMChannelInfo, _Mapping]] = ...) -> None: ...

class CIMVoipInviteReplyAck(_message.Message):
    __slots__ = ("channel_info",)
    CHANNEL_INFO_FIELD_NUMBER: _ClassVar[int]
    channel_info: CIMChannelInfo
    def __init__(self, channel_info: _Optional[_Union[CIMChannelInfo, _Mapping]] = ...) -> None: ...

class CIMVoipHeartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CIMVoipByeReq(_message.Message):
    __slots__ = ("local_call_time_len", "user_id", "channel_info", "bye_reason")
    LOCAL_CALL_TIME_LEN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_INFO_FIELD_NUMBER: _ClassVar[int]
    BYE_REASON_FIELD_NUMBER: _ClassVar[int]
    local_call_time_len: int
    user_id: int
    channel_info: CIMChannelInfo
    bye_reason: CIMVoipByeReason
    def __init__(self, local_call_time_len: _Optional[int] = ..., user_id: _Optional[int] = ..., channel_info: _Optional[_Union[CIMChannelInfo, _Mapping]] = ..., bye_reason: _Optional[_Union[CIMVoipByeReason, str]] = ...) -> None: ...

class CIMVoipByeRsp(_message.Message):
    __slots__ = ("error_code",)
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    error_code: CIMErrorCode
    def __init__(self, error_code: _Optional[_Union[CIMErrorCode, str]] = ...) -> None: ...

class CIMVoipByeNotify(_message.Message):
    __slots__ = ("user_id", "channel_info", "byeReason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_INFO_FIELD_NUMBER: _ClassVar[int]
    BYEREASON_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    channel_info: CIMChannelInfo
    byeReason: CIMVoipByeReason
    def __init__(self, user_id: _Optional[int] = ..., channel_info: _Optional[_Union[CIMChannelInfo, _Mapping]] = ..., byeReason: _Optional[_Union[CIMVoipByeReason, str]] = ...) -> None: ...
