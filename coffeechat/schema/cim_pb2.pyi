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
    kCIM_CID_MSG_FORWARD_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_FORWARD_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DELETE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DELETE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_SESSION_CLEAR_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_SESSION_CLEAR_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_SESSION_REMOVE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_SESSION_REMOVE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DELETE_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DELETE_STATE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_DELETE_STATE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_SEARCH_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_MSG_SEARCH_RSP: _ClassVar[CIMCmdID]
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
    kCIM_CID_GROUP_JOIN_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_JOIN_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_REQUEST_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_REQUEST_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_REQUEST_DECIDE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_REQUEST_DECIDE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_REQUEST_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TRANSFER_OWNER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TRANSFER_OWNER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_PUBLIC_INFO_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_PUBLIC_INFO_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INVITE_SETTING_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INVITE_SETTING_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_INVITE_SETTING_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_MUTE_MEMBER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_MUTE_MEMBER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_MUTE_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_MUTE_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_MUTE_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_SET_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_SET_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_GET_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_GET_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_SEARCH_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_SEARCH_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_GROUP_TAGS_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_QUERY_USER_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_QUERY_USER_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_USER_SEARCH_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_USER_SEARCH_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PROFILE_UPDATE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PROFILE_UPDATE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PROFILE_GET_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PROFILE_GET_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PROFILE_CHANGED_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_REQUEST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_REQUEST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_ANSWER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_ANSWER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_WITHDRAW_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_WITHDRAW_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_REQUEST_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_REQUEST_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_REMARK_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_REMARK_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_DELETE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_DELETE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_FRIEND_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_ONLINE_STATUS_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_ONLINE_STATUS_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_ONLINE_STATUS_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_ONLINE_PRIVACY_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_ONLINE_PRIVACY_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_ONLINE_PRIVACY_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_BLOCK_SET_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_BLOCK_SET_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_BLOCK_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_BLOCK_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_BLOCK_CHANGED_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_DND_GET_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_DND_GET_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_DND_SET_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_DND_SET_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_DND_MUTE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_DND_MUTE_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_DND_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_PIN_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PIN_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PIN_LIST_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PIN_LIST_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PIN_NOTIFY: _ClassVar[CIMCmdID]
    kCIM_CID_FILE_SIGN_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_FILE_SIGN_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PUSH_REGISTER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PUSH_REGISTER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PUSH_UNREGISTER_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PUSH_UNREGISTER_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_PUSH_SETTINGS_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_PUSH_SETTINGS_RSP: _ClassVar[CIMCmdID]
    kCIM_CID_APP_STATE_REQ: _ClassVar[CIMCmdID]
    kCIM_CID_APP_STATE_RSP: _ClassVar[CIMCmdID]
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
    kCIM_ERR_NOT_FRIENDS: _ClassVar[CIMErrorCode]
    kCIM_ERR_FRIEND_LIMIT: _ClassVar[CIMErrorCode]
    kCIM_ERR_FRIEND_REQUEST_LIMIT: _ClassVar[CIMErrorCode]
    kCIM_ERR_ALREADY_FRIENDS: _ClassVar[CIMErrorCode]
    kCIM_ERR_FRIEND_REQUEST_REFUSED: _ClassVar[CIMErrorCode]
    kCIM_ERR_BLOCKED_BY_RECIPIENT: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_BLOCKED: _ClassVar[CIMErrorCode]
    kCIM_ERR_DND_BAD_TIME_ZONE: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_MUTES: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_PINS: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_DELETES: _ClassVar[CIMErrorCode]
    kCIM_ERR_DELETE_BATCH_TOO_LARGE: _ClassVar[CIMErrorCode]
    kCIM_ERR_NOT_FORWARDABLE: _ClassVar[CIMErrorCode]
    kCIM_ERR_FORWARD_TOO_MANY: _ClassVar[CIMErrorCode]
    kCIM_ERR_FORWARD_TOO_LARGE: _ClassVar[CIMErrorCode]
    kCIM_ERR_GROUP_REQUEST_NOT_FOUND: _ClassVar[CIMErrorCode]
    kCIM_ERR_GROUP_REQUEST_HANDLED: _ClassVar[CIMErrorCode]
    kCIM_ERR_TOO_MANY_GROUP_REQUESTS: _ClassVar[CIMErrorCode]
    kCIM_ERR_GROUP_NOT_JOINABLE: _ClassVar[CIMErrorCode]
    kCIM_ERR_ALREADY_GROUP_MEMBER: _ClassVar[CIMErrorCode]
    kCIM_ERR_MEMBER_MUTED: _ClassVar[CIMErrorCode]
    kCIM_ERR_SEARCH_NO_TERMS: _ClassVar[CIMErrorCode]
    kCIM_ERR_SEARCH_QUERY_TOO_LONG: _ClassVar[CIMErrorCode]
    kCIM_ERR_SEARCH_BAD_CURSOR: _ClassVar[CIMErrorCode]
    kCIM_ERR_FILE_TOO_LARGE: _ClassVar[CIMErrorCode]
    kCIM_ERR_FILE_TYPE_REFUSED: _ClassVar[CIMErrorCode]
    kCIM_ERR_FILE_QUOTA_EXCEEDED: _ClassVar[CIMErrorCode]
    kCIM_ERR_FILE_REFUSED: _ClassVar[CIMErrorCode]
    kCIM_ERR_FILE_UPLOAD_CONFLICT: _ClassVar[CIMErrorCode]
    kCIM_ERR_PUSH_PLATFORM_UNAVAILABLE: _ClassVar[CIMErrorCode]
    kCIM_ERR_PUSH_BAD_TARGET: _ClassVar[CIMErrorCode]
    kCIM_ERR_PUSH_TOO_MANY_TARGETS: _ClassVar[CIMErrorCode]
    kCIM_ERR_MSG_REFUSED: _ClassVar[CIMErrorCode]
    kCIM_ERR_MODERATION_UNAVAILABLE: _ClassVar[CIMErrorCode]
    kCIM_ERR_ROBOT_ONLY: _ClassVar[CIMErrorCode]
    kCIM_ERR_BOT_KEY_INVALID: _ClassVar[CIMErrorCode]

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
    kCIM_MSG_TYPE_MERGED: _ClassVar[CIMMsgType]
    kCIM_MSG_TYPE_CUSTOM: _ClassVar[CIMMsgType]

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

class CIMFriendEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_FRIEND_EVENT_UNKNOWN: _ClassVar[CIMFriendEvent]
    kCIM_FRIEND_EVENT_REQUESTED: _ClassVar[CIMFriendEvent]
    kCIM_FRIEND_EVENT_ACCEPTED: _ClassVar[CIMFriendEvent]
    kCIM_FRIEND_EVENT_DECLINED: _ClassVar[CIMFriendEvent]
    kCIM_FRIEND_EVENT_WITHDRAWN: _ClassVar[CIMFriendEvent]
    kCIM_FRIEND_EVENT_DELETED: _ClassVar[CIMFriendEvent]
    kCIM_FRIEND_EVENT_REMARK: _ClassVar[CIMFriendEvent]

class CIMOnlineState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_ONLINE_STATE_UNKNOWN: _ClassVar[CIMOnlineState]
    kCIM_ONLINE_STATE_ONLINE: _ClassVar[CIMOnlineState]
    kCIM_ONLINE_STATE_OFFLINE: _ClassVar[CIMOnlineState]

class CIMDeleteAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_DELETE_ACTION_UNKNOWN: _ClassVar[CIMDeleteAction]
    kCIM_DELETE_ACTION_MESSAGES: _ClassVar[CIMDeleteAction]
    kCIM_DELETE_ACTION_CLEAR: _ClassVar[CIMDeleteAction]
    kCIM_DELETE_ACTION_REMOVE: _ClassVar[CIMDeleteAction]

class CIMGroupTagScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    kCIM_GROUP_TAG_SCOPE_MINE: _ClassVar[CIMGroupTagScope]
    kCIM_GROUP_TAG_SCOPE_DISCOVERABLE: _ClassVar[CIMGroupTagScope]
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
kCIM_CID_MSG_FORWARD_REQ: CIMCmdID
kCIM_CID_MSG_FORWARD_RSP: CIMCmdID
kCIM_CID_MSG_DELETE_REQ: CIMCmdID
kCIM_CID_MSG_DELETE_RSP: CIMCmdID
kCIM_CID_SESSION_CLEAR_REQ: CIMCmdID
kCIM_CID_SESSION_CLEAR_RSP: CIMCmdID
kCIM_CID_SESSION_REMOVE_REQ: CIMCmdID
kCIM_CID_SESSION_REMOVE_RSP: CIMCmdID
kCIM_CID_MSG_DELETE_NOTIFY: CIMCmdID
kCIM_CID_MSG_DELETE_STATE_REQ: CIMCmdID
kCIM_CID_MSG_DELETE_STATE_RSP: CIMCmdID
kCIM_CID_MSG_SEARCH_REQ: CIMCmdID
kCIM_CID_MSG_SEARCH_RSP: CIMCmdID
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
kCIM_CID_GROUP_JOIN_REQ: CIMCmdID
kCIM_CID_GROUP_JOIN_RSP: CIMCmdID
kCIM_CID_GROUP_REQUEST_LIST_REQ: CIMCmdID
kCIM_CID_GROUP_REQUEST_LIST_RSP: CIMCmdID
kCIM_CID_GROUP_REQUEST_DECIDE_REQ: CIMCmdID
kCIM_CID_GROUP_REQUEST_DECIDE_RSP: CIMCmdID
kCIM_CID_GROUP_REQUEST_NOTIFY: CIMCmdID
kCIM_CID_GROUP_TRANSFER_OWNER_REQ: CIMCmdID
kCIM_CID_GROUP_TRANSFER_OWNER_RSP: CIMCmdID
kCIM_CID_GROUP_PUBLIC_INFO_REQ: CIMCmdID
kCIM_CID_GROUP_PUBLIC_INFO_RSP: CIMCmdID
kCIM_CID_GROUP_INVITE_SETTING_REQ: CIMCmdID
kCIM_CID_GROUP_INVITE_SETTING_RSP: CIMCmdID
kCIM_CID_GROUP_INVITE_SETTING_NOTIFY: CIMCmdID
kCIM_CID_GROUP_MUTE_MEMBER_REQ: CIMCmdID
kCIM_CID_GROUP_MUTE_MEMBER_RSP: CIMCmdID
kCIM_CID_GROUP_MUTE_LIST_REQ: CIMCmdID
kCIM_CID_GROUP_MUTE_LIST_RSP: CIMCmdID
kCIM_CID_GROUP_MUTE_NOTIFY: CIMCmdID
kCIM_CID_GROUP_TAGS_SET_REQ: CIMCmdID
kCIM_CID_GROUP_TAGS_SET_RSP: CIMCmdID
kCIM_CID_GROUP_TAGS_GET_REQ: CIMCmdID
kCIM_CID_GROUP_TAGS_GET_RSP: CIMCmdID
kCIM_CID_GROUP_TAGS_SEARCH_REQ: CIMCmdID
kCIM_CID_GROUP_TAGS_SEARCH_RSP: CIMCmdID
kCIM_CID_GROUP_TAGS_NOTIFY: CIMCmdID
kCIM_CID_FRIEND_QUERY_USER_LIST_REQ: CIMCmdID
kCIM_CID_FRIEND_QUERY_USER_LIST_RSP: CIMCmdID
kCIM_CID_USER_SEARCH_REQ: CIMCmdID
kCIM_CID_USER_SEARCH_RSP: CIMCmdID
kCIM_CID_PROFILE_UPDATE_REQ: CIMCmdID
kCIM_CID_PROFILE_UPDATE_RSP: CIMCmdID
kCIM_CID_PROFILE_GET_REQ: CIMCmdID
kCIM_CID_PROFILE_GET_RSP: CIMCmdID
kCIM_CID_PROFILE_CHANGED_NOTIFY: CIMCmdID
kCIM_CID_FRIEND_REQUEST_REQ: CIMCmdID
kCIM_CID_FRIEND_REQUEST_RSP: CIMCmdID
kCIM_CID_FRIEND_ANSWER_REQ: CIMCmdID
kCIM_CID_FRIEND_ANSWER_RSP: CIMCmdID
kCIM_CID_FRIEND_WITHDRAW_REQ: CIMCmdID
kCIM_CID_FRIEND_WITHDRAW_RSP: CIMCmdID
kCIM_CID_FRIEND_REQUEST_LIST_REQ: CIMCmdID
kCIM_CID_FRIEND_REQUEST_LIST_RSP: CIMCmdID
kCIM_CID_FRIEND_LIST_REQ: CIMCmdID
kCIM_CID_FRIEND_LIST_RSP: CIMCmdID
kCIM_CID_FRIEND_REMARK_REQ: CIMCmdID
kCIM_CID_FRIEND_REMARK_RSP: CIMCmdID
kCIM_CID_FRIEND_DELETE_REQ: CIMCmdID
kCIM_CID_FRIEND_DELETE_RSP: CIMCmdID
kCIM_CID_FRIEND_NOTIFY: CIMCmdID
kCIM_CID_ONLINE_STATUS_REQ: CIMCmdID
kCIM_CID_ONLINE_STATUS_RSP: CIMCmdID
kCIM_CID_ONLINE_STATUS_NOTIFY: CIMCmdID
kCIM_CID_ONLINE_PRIVACY_REQ: CIMCmdID
kCIM_CID_ONLINE_PRIVACY_RSP: CIMCmdID
kCIM_CID_ONLINE_PRIVACY_NOTIFY: CIMCmdID
kCIM_CID_BLOCK_SET_REQ: CIMCmdID
kCIM_CID_BLOCK_SET_RSP: CIMCmdID
kCIM_CID_BLOCK_LIST_REQ: CIMCmdID
kCIM_CID_BLOCK_LIST_RSP: CIMCmdID
kCIM_CID_BLOCK_CHANGED_NOTIFY: CIMCmdID
kCIM_CID_DND_GET_REQ: CIMCmdID
kCIM_CID_DND_GET_RSP: CIMCmdID
kCIM_CID_DND_SET_REQ: CIMCmdID
kCIM_CID_DND_SET_RSP: CIMCmdID
kCIM_CID_DND_MUTE_REQ: CIMCmdID
kCIM_CID_DND_MUTE_RSP: CIMCmdID
kCIM_CID_DND_NOTIFY: CIMCmdID
kCIM_CID_PIN_REQ: CIMCmdID
kCIM_CID_PIN_RSP: CIMCmdID
kCIM_CID_PIN_LIST_REQ: CIMCmdID
kCIM_CID_PIN_LIST_RSP: CIMCmdID
kCIM_CID_PIN_NOTIFY: CIMCmdID
kCIM_CID_FILE_SIGN_REQ: CIMCmdID
kCIM_CID_FILE_SIGN_RSP: CIMCmdID
kCIM_CID_PUSH_REGISTER_REQ: CIMCmdID
kCIM_CID_PUSH_REGISTER_RSP: CIMCmdID
kCIM_CID_PUSH_UNREGISTER_REQ: CIMCmdID
kCIM_CID_PUSH_UNREGISTER_RSP: CIMCmdID
kCIM_CID_PUSH_SETTINGS_REQ: CIMCmdID
kCIM_CID_PUSH_SETTINGS_RSP: CIMCmdID
kCIM_CID_APP_STATE_REQ: CIMCmdID
kCIM_CID_APP_STATE_RSP: CIMCmdID
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
kCIM_ERR_NOT_FRIENDS: CIMErrorCode
kCIM_ERR_FRIEND_LIMIT: CIMErrorCode
kCIM_ERR_FRIEND_REQUEST_LIMIT: CIMErrorCode
kCIM_ERR_ALREADY_FRIENDS: CIMErrorCode
kCIM_ERR_FRIEND_REQUEST_REFUSED: CIMErrorCode
kCIM_ERR_BLOCKED_BY_RECIPIENT: CIMErrorCode
kCIM_ERR_TOO_MANY_BLOCKED: CIMErrorCode
kCIM_ERR_DND_BAD_TIME_ZONE: CIMErrorCode
kCIM_ERR_TOO_MANY_MUTES: CIMErrorCode
kCIM_ERR_TOO_MANY_PINS: CIMErrorCode
kCIM_ERR_TOO_MANY_DELETES: CIMErrorCode
kCIM_ERR_DELETE_BATCH_TOO_LARGE: CIMErrorCode
kCIM_ERR_NOT_FORWARDABLE: CIMErrorCode
kCIM_ERR_FORWARD_TOO_MANY: CIMErrorCode
kCIM_ERR_FORWARD_TOO_LARGE: CIMErrorCode
kCIM_ERR_GROUP_REQUEST_NOT_FOUND: CIMErrorCode
kCIM_ERR_GROUP_REQUEST_HANDLED: CIMErrorCode
kCIM_ERR_TOO_MANY_GROUP_REQUESTS: CIMErrorCode
kCIM_ERR_GROUP_NOT_JOINABLE: CIMErrorCode
kCIM_ERR_ALREADY_GROUP_MEMBER: CIMErrorCode
kCIM_ERR_MEMBER_MUTED: CIMErrorCode
kCIM_ERR_SEARCH_NO_TERMS: CIMErrorCode
kCIM_ERR_SEARCH_QUERY_TOO_LONG: CIMErrorCode
kCIM_ERR_SEARCH_BAD_CURSOR: CIMErrorCode
kCIM_ERR_FILE_TOO_LARGE: CIMErrorCode
kCIM_ERR_FILE_TYPE_REFUSED: CIMErrorCode
kCIM_ERR_FILE_QUOTA_EXCEEDED: CIMErrorCode
kCIM_ERR_FILE_REFUSED: CIMErrorCode
kCIM_ERR_FILE_UPLOAD_CONFLICT: CIMErrorCode
kCIM_ERR_PUSH_PLATFORM_UNAVAILABLE: CIMErrorCode
kCIM_ERR_PUSH_BAD_TARGET: CIMErrorCode
kCIM_ERR_PUSH_TOO_MANY_TARGETS: CIMErrorCode
kCIM_ERR_MSG_REFUSED: CIMErrorCode
kCIM_ERR_MODERATION_UNAVAILABLE: CIMErrorCode
kCIM_ERR_ROBOT_ONLY: CIMErrorCode
kCIM_ERR_BOT_KEY_INVALID: CIMErrorCode
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
kCIM_MSG_TYPE_MERGED: CIMMsgType
kCIM_MSG_TYPE_CUSTOM: CIMMsgType
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
kCIM_FRIEND_EVENT_UNKNOWN: CIMFriendEvent
kCIM_FRIEND_EVENT_REQUESTED: CIMFriendEvent
kCIM_FRIEND_EVENT_ACCEPTED: CIMFriendEvent
kCIM_FRIEND_EVENT_DECLINED: CIMFriendEvent
kCIM_FRIEND_EVENT_WITHDRAWN: CIMFriendEvent
kCIM_FRIEND_EVENT_DELETED: CIMFriendEvent
kCIM_FRIEND_EVENT_REMARK: CIMFriendEvent
kCIM_ONLINE_STATE_UNKNOWN: CIMOnlineState
kCIM_ONLINE_STATE_ONLINE: CIMOnlineState
kCIM_ONLINE_STATE_OFFLINE: CIMOnlineState
kCIM_DELETE_ACTION_UNKNOWN: CIMDeleteAction
kCIM_DELETE_ACTION_MESSAGES: CIMDeleteAction
kCIM_DELETE_ACTION_CLEAR: CIMDeleteAction
kCIM_DELETE_ACTION_REMOVE: CIMDeleteAction
kCIM_GROUP_TAG_SCOPE_MINE: CIMGroupTagScope
kCIM_GROUP_TAG_SCOPE_DISCOVERABLE: CIMGroupTagScope
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
    __slots__ = ("session_id", "session_type", "session_status", "unread_cnt", "updated_time", "msg_id", "server_msg_id", "msg_time_stamp", "msg_data", "msg_type", "msg_from_user_id", "msg_status", "msg_attach", "extend_data", "is_robot_session", "at_me", "muted", "pinned")
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
    MUTED_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
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
    muted: bool
    pinned: bool
    def __init__(self, session_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_status: _Optional[_Union[CIMSessionStatusType, str]] = ..., unread_cnt: _Optional[int] = ..., updated_time: _Optional[int] = ..., msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., msg_time_stamp: _Optional[int] = ..., msg_data: _Optional[bytes] = ..., msg_type: _Optional[_Union[CIMMsgType, str]] = ..., msg_from_user_id: _Optional[int] = ..., msg_status: _Optional[_Union[CIMMsgStatus, str]] = ..., msg_attach: _Optional[str] = ..., extend_data: _Optional[str] = ..., is_robot_session: _Optional[bool] = ..., at_me: _Optional[bool] = ..., muted: _Optional[bool] = ..., pinned: _Optional[bool] = ...) -> None: ...

class CIMMsgInfo(_message.Message):
    __slots__ = ("client_msg_id", "server_msg_id", "msg_res_code", "msg_feature", "session_type", "from_user_id", "to_session_id", "create_time", "msg_type", "msg_status", "msg_data", "attach", "sender_client_type", "forward_origin")
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
    FORWARD_ORIGIN_FIELD_NUMBER: _ClassVar[int]
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
    forward_origin: str
    def __init__(self, client_msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., msg_res_code: _Optional[_Union[CIMResCode, str]] = ..., msg_feature: _Optional[_Union[CIMMsgFeature, str]] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., from_user_id: _Optional[int] = ..., to_session_id: _Optional[int] = ..., create_time: _Optional[int] = ..., msg_type: _Optional[_Union[CIMMsgType, str]] = ..., msg_status: _Optional[_Union[CIMMsgStatus, str]] = ..., msg_data: _Optional[bytes] = ..., attach: _Optional[str] = ..., sender_client_type: _Optional[_Union[CIMClientType, str]] = ..., forward_origin: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("from_user_id", "from_nick_name", "to_session_id", "client_msg_id", "server_msg_id", "create_time", "msg_type", "session_type", "msg_data", "at_user_list", "at_all", "forward_origin", "push_content")
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
    FORWARD_ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PUSH_CONTENT_FIELD_NUMBER: _ClassVar[int]
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
    forward_origin: str
    push_content: str
    def __init__(self, from_user_id: _Optional[int] = ..., from_nick_name: _Optional[str] = ..., to_session_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., server_msg_id: _Optional[int] = ..., create_time: _Optional[int] = ..., msg_type: _Optional[_Union[CIMMsgType, str]] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., msg_data: _Optional[bytes] = ..., at_user_list: _Optional[_Iterable[int]] = ..., at_all: _Optional[bool] = ..., forward_origin: _Optional[str] = ..., push_content: _Optional[str] = ...) -> None: ...

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

class CIMUserProfile(_message.Message):
    __slots__ = ("user_id", "user_name", "nick_name", "avatar_url", "signature", "ex", "updated_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    EX_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    user_name: str
    nick_name: str
    avatar_url: str
    signature: str
    ex: str
    updated_time: int
    def __init__(self, user_id: _Optional[int] = ..., user_name: _Optional[str] = ..., nick_name: _Optional[str] = ..., avatar_url: _Optional[str] = ..., signature: _Optional[str] = ..., ex: _Optional[str] = ..., updated_time: _Optional[int] = ...) -> None: ...

class CIMUserSearchReq(_message.Message):
    __slots__ = ("user_id", "query", "cursor", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    query: str
    cursor: str
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., query: _Optional[str] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class CIMUserSearchRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "users", "next_cursor")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    users: _containers.RepeatedCompositeFieldContainer[CIMUserProfile]
    next_cursor: str
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., users: _Optional[_Iterable[_Union[CIMUserProfile, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class CIMProfileUpdateReq(_message.Message):
    __slots__ = ("user_id", "nick_name", "avatar_url", "signature", "ex")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    EX_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    nick_name: str
    avatar_url: str
    signature: str
    ex: str
    def __init__(self, user_id: _Optional[int] = ..., nick_name: _Optional[str] = ..., avatar_url: _Optional[str] = ..., signature: _Optional[str] = ..., ex: _Optional[str] = ...) -> None: ...

class CIMProfileUpdateRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "profile")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    profile: CIMUserProfile
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., profile: _Optional[_Union[CIMUserProfile, _Mapping]] = ...) -> None: ...

class CIMProfileGetReq(_message.Message):
    __slots__ = ("user_id", "user_id_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    user_id_list: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., user_id_list: _Optional[_Iterable[int]] = ...) -> None: ...

class CIMProfileGetRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "profiles")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    profiles: _containers.RepeatedCompositeFieldContainer[CIMUserProfile]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., profiles: _Optional[_Iterable[_Union[CIMUserProfile, _Mapping]]] = ...) -> None: ...

class CIMProfileChangedNotify(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: CIMUserProfile
    def __init__(self, profile: _Optional[_Union[CIMUserProfile, _Mapping]] = ...) -> None: ...

class CIMFriendRequestInfo(_message.Message):
    __slots__ = ("from_user_id", "to_user_id", "message", "create_time", "expire_time", "from_nick_name", "to_nick_name")
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    FROM_NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    TO_NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    from_user_id: int
    to_user_id: int
    message: str
    create_time: int
    expire_time: int
    from_nick_name: str
    to_nick_name: str
    def __init__(self, from_user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ..., message: _Optional[str] = ..., create_time: _Optional[int] = ..., expire_time: _Optional[int] = ..., from_nick_name: _Optional[str] = ..., to_nick_name: _Optional[str] = ...) -> None: ...

class CIMFriendInfo(_message.Message):
    __slots__ = ("friend_id", "remark", "create_time", "nick_name", "user_name")
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    REMARK_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    friend_id: int
    remark: str
    create_time: int
    nick_name: str
    user_name: str
    def __init__(self, friend_id: _Optional[int] = ..., remark: _Optional[str] = ..., create_time: _Optional[int] = ..., nick_name: _Optional[str] = ..., user_name: _Optional[str] = ...) -> None: ...

class CIMFriendRequestReq(_message.Message):
    __slots__ = ("user_id", "to_user_id", "message")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    to_user_id: int
    message: str
    def __init__(self, user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class CIMFriendRequestRsp(_message.Message):
    __slots__ = ("user_id", "to_user_id", "result_code", "result_string", "request", "accepted", "friend")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    FRIEND_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    to_user_id: int
    result_code: CIMErrorCode
    result_string: str
    request: CIMFriendRequestInfo
    accepted: bool
    friend: CIMFriendInfo
    def __init__(self, user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., request: _Optional[_Union[CIMFriendRequestInfo, _Mapping]] = ..., accepted: _Optional[bool] = ..., friend: _Optional[_Union[CIMFriendInfo, _Mapping]] = ...) -> None: ...

class CIMFriendAnswerReq(_message.Message):
    __slots__ = ("user_id", "from_user_id", "accept")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    from_user_id: int
    accept: bool
    def __init__(self, user_id: _Optional[int] = ..., from_user_id: _Optional[int] = ..., accept: _Optional[bool] = ...) -> None: ...

class CIMFriendAnswerRsp(_message.Message):
    __slots__ = ("user_id", "from_user_id", "accept", "result_code", "result_string", "friend")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    FRIEND_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    from_user_id: int
    accept: bool
    result_code: CIMErrorCode
    result_string: str
    friend: CIMFriendInfo
    def __init__(self, user_id: _Optional[int] = ..., from_user_id: _Optional[int] = ..., accept: _Optional[bool] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., friend: _Optional[_Union[CIMFriendInfo, _Mapping]] = ...) -> None: ...

class CIMFriendWithdrawReq(_message.Message):
    __slots__ = ("user_id", "to_user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    to_user_id: int
    def __init__(self, user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ...) -> None: ...

class CIMFriendWithdrawRsp(_message.Message):
    __slots__ = ("user_id", "to_user_id", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    to_user_id: int
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., to_user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMFriendRequestListReq(_message.Message):
    __slots__ = ("user_id", "outgoing", "offset", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    outgoing: bool
    offset: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., outgoing: _Optional[bool] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CIMFriendRequestListRsp(_message.Message):
    __slots__ = ("user_id", "outgoing", "result_code", "result_string", "requests", "has_more")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    outgoing: bool
    result_code: CIMErrorCode
    result_string: str
    requests: _containers.RepeatedCompositeFieldContainer[CIMFriendRequestInfo]
    has_more: bool
    def __init__(self, user_id: _Optional[int] = ..., outgoing: _Optional[bool] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[CIMFriendRequestInfo, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class CIMFriendListReq(_message.Message):
    __slots__ = ("user_id", "offset", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    offset: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CIMFriendListRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "friends", "has_more")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    FRIENDS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    friends: _containers.RepeatedCompositeFieldContainer[CIMFriendInfo]
    has_more: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., friends: _Optional[_Iterable[_Union[CIMFriendInfo, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class CIMFriendRemarkReq(_message.Message):
    __slots__ = ("user_id", "friend_id", "remark")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    REMARK_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    remark: str
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ..., remark: _Optional[str] = ...) -> None: ...

class CIMFriendRemarkRsp(_message.Message):
    __slots__ = ("user_id", "friend_id", "result_code", "result_string", "remark")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REMARK_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    result_code: CIMErrorCode
    result_string: str
    remark: str
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., remark: _Optional[str] = ...) -> None: ...

class CIMFriendDeleteReq(_message.Message):
    __slots__ = ("user_id", "friend_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ...) -> None: ...

class CIMFriendDeleteRsp(_message.Message):
    __slots__ = ("user_id", "friend_id", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMFriendNotify(_message.Message):
    __slots__ = ("user_id", "event", "peer_id", "request", "friend", "actor_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    FRIEND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    event: CIMFriendEvent
    peer_id: int
    request: CIMFriendRequestInfo
    friend: CIMFriendInfo
    actor_id: int
    def __init__(self, user_id: _Optional[int] = ..., event: _Optional[_Union[CIMFriendEvent, str]] = ..., peer_id: _Optional[int] = ..., request: _Optional[_Union[CIMFriendRequestInfo, _Mapping]] = ..., friend: _Optional[_Union[CIMFriendInfo, _Mapping]] = ..., actor_id: _Optional[int] = ...) -> None: ...

class CIMOnlineStatus(_message.Message):
    __slots__ = ("user_id", "state", "last_seen")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    state: CIMOnlineState
    last_seen: int
    def __init__(self, user_id: _Optional[int] = ..., state: _Optional[_Union[CIMOnlineState, str]] = ..., last_seen: _Optional[int] = ...) -> None: ...

class CIMOnlineStatusReq(_message.Message):
    __slots__ = ("user_id", "user_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., user_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class CIMOnlineStatusRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "statuses")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    statuses: _containers.RepeatedCompositeFieldContainer[CIMOnlineStatus]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[CIMOnlineStatus, _Mapping]]] = ...) -> None: ...

class CIMOnlineStatusNotify(_message.Message):
    __slots__ = ("user_id", "statuses")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    statuses: _containers.RepeatedCompositeFieldContainer[CIMOnlineStatus]
    def __init__(self, user_id: _Optional[int] = ..., statuses: _Optional[_Iterable[_Union[CIMOnlineStatus, _Mapping]]] = ...) -> None: ...

class CIMOnlinePrivacyReq(_message.Message):
    __slots__ = ("user_id", "hidden", "query")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    hidden: bool
    query: bool
    def __init__(self, user_id: _Optional[int] = ..., hidden: _Optional[bool] = ..., query: _Optional[bool] = ...) -> None: ...

class CIMOnlinePrivacyRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "hidden")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    hidden: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., hidden: _Optional[bool] = ...) -> None: ...

class CIMOnlinePrivacyNotify(_message.Message):
    __slots__ = ("user_id", "hidden")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    hidden: bool
    def __init__(self, user_id: _Optional[int] = ..., hidden: _Optional[bool] = ...) -> None: ...

class CIMBlockSetReq(_message.Message):
    __slots__ = ("user_id", "peer_id", "blocked")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    peer_id: int
    blocked: bool
    def __init__(self, user_id: _Optional[int] = ..., peer_id: _Optional[int] = ..., blocked: _Optional[bool] = ...) -> None: ...

class CIMBlockSetRsp(_message.Message):
    __slots__ = ("user_id", "peer_id", "blocked", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    peer_id: int
    blocked: bool
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., peer_id: _Optional[int] = ..., blocked: _Optional[bool] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMBlockListReq(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class CIMBlockedUser(_message.Message):
    __slots__ = ("user_id", "nick_name", "avatar_url", "blocked_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NICK_NAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    nick_name: str
    avatar_url: str
    blocked_time: int
    def __init__(self, user_id: _Optional[int] = ..., nick_name: _Optional[str] = ..., avatar_url: _Optional[str] = ..., blocked_time: _Optional[int] = ...) -> None: ...

class CIMBlockListRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "blocked")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    blocked: _containers.RepeatedCompositeFieldContainer[CIMBlockedUser]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., blocked: _Optional[_Iterable[_Union[CIMBlockedUser, _Mapping]]] = ...) -> None: ...

class CIMBlockChangedNotify(_message.Message):
    __slots__ = ("user_id", "peer_id", "blocked", "changed_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    peer_id: int
    blocked: bool
    changed_time: int
    def __init__(self, user_id: _Optional[int] = ..., peer_id: _Optional[int] = ..., blocked: _Optional[bool] = ..., changed_time: _Optional[int] = ...) -> None: ...

class CIMDndSettings(_message.Message):
    __slots__ = ("enabled", "window_start", "window_end", "time_zone", "mentions_silenced")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_SILENCED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    window_start: int
    window_end: int
    time_zone: str
    mentions_silenced: bool
    def __init__(self, enabled: _Optional[bool] = ..., window_start: _Optional[int] = ..., window_end: _Optional[int] = ..., time_zone: _Optional[str] = ..., mentions_silenced: _Optional[bool] = ...) -> None: ...

class CIMDndConversation(_message.Message):
    __slots__ = ("session_type", "session_id", "muted", "muted_time")
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    MUTED_TIME_FIELD_NUMBER: _ClassVar[int]
    session_type: CIMSessionType
    session_id: int
    muted: bool
    muted_time: int
    def __init__(self, session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., muted: _Optional[bool] = ..., muted_time: _Optional[int] = ...) -> None: ...

class CIMDndGetReq(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class CIMDndGetRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "settings", "muted_list", "active")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    MUTED_LIST_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    settings: CIMDndSettings
    muted_list: _containers.RepeatedCompositeFieldContainer[CIMDndConversation]
    active: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., settings: _Optional[_Union[CIMDndSettings, _Mapping]] = ..., muted_list: _Optional[_Iterable[_Union[CIMDndConversation, _Mapping]]] = ..., active: _Optional[bool] = ...) -> None: ...

class CIMDndSetReq(_message.Message):
    __slots__ = ("user_id", "settings")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    settings: CIMDndSettings
    def __init__(self, user_id: _Optional[int] = ..., settings: _Optional[_Union[CIMDndSettings, _Mapping]] = ...) -> None: ...

class CIMDndSetRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "settings", "active")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    settings: CIMDndSettings
    active: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., settings: _Optional[_Union[CIMDndSettings, _Mapping]] = ..., active: _Optional[bool] = ...) -> None: ...

class CIMDndMuteReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "muted")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    muted: bool
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., muted: _Optional[bool] = ...) -> None: ...

class CIMDndMuteRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "session_type", "session_id", "muted")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    session_type: CIMSessionType
    session_id: int
    muted: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., muted: _Optional[bool] = ...) -> None: ...

class CIMDndNotify(_message.Message):
    __slots__ = ("user_id", "settings", "conversation")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    settings: CIMDndSettings
    conversation: CIMDndConversation
    def __init__(self, user_id: _Optional[int] = ..., settings: _Optional[_Union[CIMDndSettings, _Mapping]] = ..., conversation: _Optional[_Union[CIMDndConversation, _Mapping]] = ...) -> None: ...

class CIMPinnedSession(_message.Message):
    __slots__ = ("session_type", "session_id", "pinned_time")
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PINNED_TIME_FIELD_NUMBER: _ClassVar[int]
    session_type: CIMSessionType
    session_id: int
    pinned_time: int
    def __init__(self, session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., pinned_time: _Optional[int] = ...) -> None: ...

class CIMPinReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "pinned")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    pinned: bool
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., pinned: _Optional[bool] = ...) -> None: ...

class CIMPinRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "session_type", "session_id", "pinned", "pinned_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    PINNED_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    session_type: CIMSessionType
    session_id: int
    pinned: bool
    pinned_time: int
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., pinned: _Optional[bool] = ..., pinned_time: _Optional[int] = ...) -> None: ...

class CIMPinListReq(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class CIMPinListRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "pin_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    PIN_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    pin_list: _containers.RepeatedCompositeFieldContainer[CIMPinnedSession]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., pin_list: _Optional[_Iterable[_Union[CIMPinnedSession, _Mapping]]] = ...) -> None: ...

class CIMPinNotify(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "pinned", "pinned_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    PINNED_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    pinned: bool
    pinned_time: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., pinned: _Optional[bool] = ..., pinned_time: _Optional[int] = ...) -> None: ...

class CIMMsgDeleteReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class CIMMsgDeleteRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_ids", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_ids: _containers.RepeatedScalarFieldContainer[int]
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_ids: _Optional[_Iterable[int]] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMSessionClearReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ...) -> None: ...

class CIMSessionClearRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "up_to_msg_id", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UP_TO_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    up_to_msg_id: int
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., up_to_msg_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMSessionRemoveReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ...) -> None: ...

class CIMSessionRemoveRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "removed_at_msg_id", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    removed_at_msg_id: int
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., removed_at_msg_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...

class CIMMsgDeleteNotify(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "action", "msg_ids", "up_to_msg_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    UP_TO_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    action: CIMDeleteAction
    msg_ids: _containers.RepeatedScalarFieldContainer[int]
    up_to_msg_id: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., action: _Optional[_Union[CIMDeleteAction, str]] = ..., msg_ids: _Optional[_Iterable[int]] = ..., up_to_msg_id: _Optional[int] = ...) -> None: ...

class CIMMsgDeleteStateReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ...) -> None: ...

class CIMMsgDeleteStateRsp(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "cleared_up_to", "msg_ids", "removed_at_msg_id", "result_code", "result_string", "removed")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLEARED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    cleared_up_to: int
    msg_ids: _containers.RepeatedScalarFieldContainer[int]
    removed_at_msg_id: int
    result_code: CIMErrorCode
    result_string: str
    removed: bool
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., cleared_up_to: _Optional[int] = ..., msg_ids: _Optional[_Iterable[int]] = ..., removed_at_msg_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., removed: _Optional[bool] = ...) -> None: ...

class CIMMsgForwardReq(_message.Message):
    __slots__ = ("user_id", "session_type", "session_id", "msg_ids", "targets", "merged", "title", "client_forward_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    MERGED_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FORWARD_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    session_type: CIMSessionType
    session_id: int
    msg_ids: _containers.RepeatedScalarFieldContainer[int]
    targets: _containers.RepeatedCompositeFieldContainer[CIMForwardTarget]
    merged: bool
    title: str
    client_forward_id: str
    def __init__(self, user_id: _Optional[int] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg_ids: _Optional[_Iterable[int]] = ..., targets: _Optional[_Iterable[_Union[CIMForwardTarget, _Mapping]]] = ..., merged: _Optional[bool] = ..., title: _Optional[str] = ..., client_forward_id: _Optional[str] = ...) -> None: ...

class CIMForwardTarget(_message.Message):
    __slots__ = ("session_type", "session_id")
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_type: CIMSessionType
    session_id: int
    def __init__(self, session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ...) -> None: ...

class CIMForwardResult(_message.Message):
    __slots__ = ("session_type", "session_id", "result_code", "result_string", "server_msg_ids", "client_msg_ids", "create_time")
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    SERVER_MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    session_type: CIMSessionType
    session_id: int
    result_code: CIMErrorCode
    result_string: str
    server_msg_ids: _containers.RepeatedScalarFieldContainer[int]
    client_msg_ids: _containers.RepeatedScalarFieldContainer[str]
    create_time: int
    def __init__(self, session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., server_msg_ids: _Optional[_Iterable[int]] = ..., client_msg_ids: _Optional[_Iterable[str]] = ..., create_time: _Optional[int] = ...) -> None: ...

class CIMMsgForwardRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "client_forward_id", "results")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FORWARD_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    client_forward_id: str
    results: _containers.RepeatedCompositeFieldContainer[CIMForwardResult]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., client_forward_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[CIMForwardResult, _Mapping]]] = ...) -> None: ...

class CIMGroupRequest(_message.Message):
    __slots__ = ("request_id", "kind", "group_id", "user_id", "actor_id", "message", "status", "create_time", "expire_time", "decided_by", "decide_time", "group_name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    kind: int
    group_id: int
    user_id: int
    actor_id: int
    message: str
    status: int
    create_time: int
    expire_time: int
    decided_by: int
    decide_time: int
    group_name: str
    def __init__(self, request_id: _Optional[int] = ..., kind: _Optional[int] = ..., group_id: _Optional[int] = ..., user_id: _Optional[int] = ..., actor_id: _Optional[int] = ..., message: _Optional[str] = ..., status: _Optional[int] = ..., create_time: _Optional[int] = ..., expire_time: _Optional[int] = ..., decided_by: _Optional[int] = ..., decide_time: _Optional[int] = ..., group_name: _Optional[str] = ...) -> None: ...

class CIMGroupJoinReq(_message.Message):
    __slots__ = ("user_id", "group_id", "message")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    message: str
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class CIMGroupJoinRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "request")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    request: CIMGroupRequest
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., request: _Optional[_Union[CIMGroupRequest, _Mapping]] = ...) -> None: ...

class CIMGroupRequestListReq(_message.Message):
    __slots__ = ("user_id", "group_id", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CIMGroupRequestListRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "requests", "has_more")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    requests: _containers.RepeatedCompositeFieldContainer[CIMGroupRequest]
    has_more: bool
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[CIMGroupRequest, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class CIMGroupRequestDecideReq(_message.Message):
    __slots__ = ("user_id", "request_id", "accept")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    request_id: int
    accept: bool
    def __init__(self, user_id: _Optional[int] = ..., request_id: _Optional[int] = ..., accept: _Optional[bool] = ...) -> None: ...

class CIMGroupRequestDecideRsp(_message.Message):
    __slots__ = ("user_id", "request_id", "result_code", "result_string", "request", "group_id", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    request_id: int
    result_code: int
    result_string: str
    request: CIMGroupRequest
    group_id: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., request_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., request: _Optional[_Union[CIMGroupRequest, _Mapping]] = ..., group_id: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupRequestNotify(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: CIMGroupRequest
    def __init__(self, request: _Optional[_Union[CIMGroupRequest, _Mapping]] = ...) -> None: ...

class CIMGroupTransferOwnerReq(_message.Message):
    __slots__ = ("user_id", "group_id", "new_owner_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    new_owner_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., new_owner_id: _Optional[int] = ...) -> None: ...

class CIMGroupTransferOwnerRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "new_owner_id", "attach_notificatino_msg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACH_NOTIFICATINO_MSG_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    new_owner_id: int
    attach_notificatino_msg: bytes
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., new_owner_id: _Optional[int] = ..., attach_notificatino_msg: _Optional[bytes] = ...) -> None: ...

class CIMGroupPublicInfoReq(_message.Message):
    __slots__ = ("user_id", "group_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ...) -> None: ...

class CIMGroupPublicInfoRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "group_name", "group_avatar", "group_intro", "member_count", "join_model", "group_type", "is_member")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_AVATAR_FIELD_NUMBER: _ClassVar[int]
    GROUP_INTRO_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    JOIN_MODEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_MEMBER_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    group_name: str
    group_avatar: str
    group_intro: str
    member_count: int
    join_model: CIMGroupJoinModel
    group_type: int
    is_member: bool
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., group_name: _Optional[str] = ..., group_avatar: _Optional[str] = ..., group_intro: _Optional[str] = ..., member_count: _Optional[int] = ..., join_model: _Optional[_Union[CIMGroupJoinModel, str]] = ..., group_type: _Optional[int] = ..., is_member: _Optional[bool] = ...) -> None: ...

class CIMGroupInviteSettingReq(_message.Message):
    __slots__ = ("user_id", "need_consent")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NEED_CONSENT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    need_consent: bool
    def __init__(self, user_id: _Optional[int] = ..., need_consent: _Optional[bool] = ...) -> None: ...

class CIMGroupInviteSettingRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "need_consent")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    NEED_CONSENT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: int
    result_string: str
    need_consent: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., need_consent: _Optional[bool] = ...) -> None: ...

class CIMGroupInviteSettingNotify(_message.Message):
    __slots__ = ("user_id", "need_consent")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NEED_CONSENT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    need_consent: bool
    def __init__(self, user_id: _Optional[int] = ..., need_consent: _Optional[bool] = ...) -> None: ...

class CIMGroupMuteMemberReq(_message.Message):
    __slots__ = ("user_id", "group_id", "member_id", "duration")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    member_id: int
    duration: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., member_id: _Optional[int] = ..., duration: _Optional[int] = ...) -> None: ...

class CIMGroupMuteMemberRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "member_id", "muted_until")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    member_id: int
    muted_until: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., member_id: _Optional[int] = ..., muted_until: _Optional[int] = ...) -> None: ...

class CIMGroupMuteInfo(_message.Message):
    __slots__ = ("user_id", "muted_until", "muted_by", "muted_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    MUTED_BY_FIELD_NUMBER: _ClassVar[int]
    MUTED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    muted_until: int
    muted_by: int
    muted_at: int
    def __init__(self, user_id: _Optional[int] = ..., muted_until: _Optional[int] = ..., muted_by: _Optional[int] = ..., muted_at: _Optional[int] = ...) -> None: ...

class CIMGroupMuteListReq(_message.Message):
    __slots__ = ("user_id", "group_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ...) -> None: ...

class CIMGroupMuteListRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "mutes")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    MUTES_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    mutes: _containers.RepeatedCompositeFieldContainer[CIMGroupMuteInfo]
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., mutes: _Optional[_Iterable[_Union[CIMGroupMuteInfo, _Mapping]]] = ...) -> None: ...

class CIMGroupMuteNotify(_message.Message):
    __slots__ = ("group_id", "actor_id", "member_id", "muted_until")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    actor_id: int
    member_id: int
    muted_until: int
    def __init__(self, group_id: _Optional[int] = ..., actor_id: _Optional[int] = ..., member_id: _Optional[int] = ..., muted_until: _Optional[int] = ...) -> None: ...

class CIMGroupTags(_message.Message):
    __slots__ = ("group_id", "tags", "custom_fields", "discoverable", "updated_by", "updated_at", "version", "group_info")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DISCOVERABLE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GROUP_INFO_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    custom_fields: str
    discoverable: bool
    updated_by: int
    updated_at: int
    version: int
    group_info: CIMGroupInfo
    def __init__(self, group_id: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., custom_fields: _Optional[str] = ..., discoverable: _Optional[bool] = ..., updated_by: _Optional[int] = ..., updated_at: _Optional[int] = ..., version: _Optional[int] = ..., group_info: _Optional[_Union[CIMGroupInfo, _Mapping]] = ...) -> None: ...

class CIMGroupTagsSetReq(_message.Message):
    __slots__ = ("user_id", "group_id", "tags", "set_tags", "custom_fields", "discoverable")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SET_TAGS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DISCOVERABLE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    set_tags: bool
    custom_fields: str
    discoverable: bool
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., set_tags: _Optional[bool] = ..., custom_fields: _Optional[str] = ..., discoverable: _Optional[bool] = ...) -> None: ...

class CIMGroupTagsSetRsp(_message.Message):
    __slots__ = ("user_id", "group_id", "result_code", "result_string", "group_tags")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    GROUP_TAGS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id: int
    result_code: int
    result_string: str
    group_tags: CIMGroupTags
    def __init__(self, user_id: _Optional[int] = ..., group_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., group_tags: _Optional[_Union[CIMGroupTags, _Mapping]] = ...) -> None: ...

class CIMGroupTagsGetReq(_message.Message):
    __slots__ = ("user_id", "group_id_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    group_id_list: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., group_id_list: _Optional[_Iterable[int]] = ...) -> None: ...

class CIMGroupTagsGetRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "group_tags_list")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    GROUP_TAGS_LIST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: int
    result_string: str
    group_tags_list: _containers.RepeatedCompositeFieldContainer[CIMGroupTags]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., group_tags_list: _Optional[_Iterable[_Union[CIMGroupTags, _Mapping]]] = ...) -> None: ...

class CIMGroupTagsSearchReq(_message.Message):
    __slots__ = ("user_id", "tag", "scope", "after_group_id", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    AFTER_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    tag: str
    scope: CIMGroupTagScope
    after_group_id: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., tag: _Optional[str] = ..., scope: _Optional[_Union[CIMGroupTagScope, str]] = ..., after_group_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CIMGroupTagsSearchRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "group_tags_list", "has_more")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    GROUP_TAGS_LIST_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: int
    result_string: str
    group_tags_list: _containers.RepeatedCompositeFieldContainer[CIMGroupTags]
    has_more: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[int] = ..., result_string: _Optional[str] = ..., group_tags_list: _Optional[_Iterable[_Union[CIMGroupTags, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class CIMGroupTagsNotify(_message.Message):
    __slots__ = ("group_id", "actor_id", "group_tags")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_TAGS_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    actor_id: int
    group_tags: CIMGroupTags
    def __init__(self, group_id: _Optional[int] = ..., actor_id: _Optional[int] = ..., group_tags: _Optional[_Union[CIMGroupTags, _Mapping]] = ...) -> None: ...

class CIMMsgSearchReq(_message.Message):
    __slots__ = ("user_id", "query", "session_type", "session_id", "sender_id", "msg_type", "start_time", "end_time", "limit", "cursor")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    query: str
    session_type: CIMSessionType
    session_id: int
    sender_id: int
    msg_type: int
    start_time: int
    end_time: int
    limit: int
    cursor: str
    def __init__(self, user_id: _Optional[int] = ..., query: _Optional[str] = ..., session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., sender_id: _Optional[int] = ..., msg_type: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class CIMMsgSearchRange(_message.Message):
    __slots__ = ("start", "length")
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    start: int
    length: int
    def __init__(self, start: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class CIMMsgSearchHit(_message.Message):
    __slots__ = ("session_type", "session_id", "msg", "snippet", "highlights")
    SESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHTS_FIELD_NUMBER: _ClassVar[int]
    session_type: CIMSessionType
    session_id: int
    msg: CIMMsgInfo
    snippet: str
    highlights: _containers.RepeatedCompositeFieldContainer[CIMMsgSearchRange]
    def __init__(self, session_type: _Optional[_Union[CIMSessionType, str]] = ..., session_id: _Optional[int] = ..., msg: _Optional[_Union[CIMMsgInfo, _Mapping]] = ..., snippet: _Optional[str] = ..., highlights: _Optional[_Iterable[_Union[CIMMsgSearchRange, _Mapping]]] = ...) -> None: ...

class CIMMsgSearchRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "hits", "next_cursor", "has_more")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    hits: _containers.RepeatedCompositeFieldContainer[CIMMsgSearchHit]
    next_cursor: str
    has_more: bool
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., hits: _Optional[_Iterable[_Union[CIMMsgSearchHit, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., has_more: _Optional[bool] = ...) -> None: ...

class CIMFileSignReq(_message.Message):
    __slots__ = ("user_id", "file_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    file_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[int] = ..., file_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CIMFileUrls(_message.Message):
    __slots__ = ("file_id", "url", "thumb_url", "reduced_url", "poster_url", "expires", "mime", "size", "name", "kind")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    THUMB_URL_FIELD_NUMBER: _ClassVar[int]
    REDUCED_URL_FIELD_NUMBER: _ClassVar[int]
    POSTER_URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    MIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    url: str
    thumb_url: str
    reduced_url: str
    poster_url: str
    expires: int
    mime: str
    size: int
    name: str
    kind: str
    def __init__(self, file_id: _Optional[str] = ..., url: _Optional[str] = ..., thumb_url: _Optional[str] = ..., reduced_url: _Optional[str] = ..., poster_url: _Optional[str] = ..., expires: _Optional[int] = ..., mime: _Optional[str] = ..., size: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class CIMFileSignRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "files", "refused")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    files: _containers.RepeatedCompositeFieldContainer[CIMFileUrls]
    refused: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., files: _Optional[_Iterable[_Union[CIMFileUrls, _Mapping]]] = ..., refused: _Optional[_Iterable[str]] = ...) -> None: ...

class CIMPushRegisterReq(_message.Message):
    __slots__ = ("user_id", "platform", "token", "app_id", "locale", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    platform: str
    token: str
    app_id: str
    locale: str
    extra: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[int] = ..., platform: _Optional[str] = ..., token: _Optional[str] = ..., app_id: _Optional[str] = ..., locale: _Optional[str] = ..., extra: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CIMPushRegisterRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "target_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    target_id: int
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., target_id: _Optional[int] = ...) -> None: ...

class CIMPushUnregisterReq(_message.Message):
    __slots__ = ("user_id", "target_id", "platform", "token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    target_id: int
    platform: str
    token: str
    def __init__(self, user_id: _Optional[int] = ..., target_id: _Optional[int] = ..., platform: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class CIMPushUnregisterRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "removed")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    removed: int
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., removed: _Optional[int] = ...) -> None: ...

class CIMPushSettings(_message.Message):
    __slots__ = ("show_preview", "show_sender")
    SHOW_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    SHOW_SENDER_FIELD_NUMBER: _ClassVar[int]
    show_preview: bool
    show_sender: bool
    def __init__(self, show_preview: _Optional[bool] = ..., show_sender: _Optional[bool] = ...) -> None: ...

class CIMPushSettingsReq(_message.Message):
    __slots__ = ("user_id", "set", "settings")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    set: bool
    settings: CIMPushSettings
    def __init__(self, user_id: _Optional[int] = ..., set: _Optional[bool] = ..., settings: _Optional[_Union[CIMPushSettings, _Mapping]] = ...) -> None: ...

class CIMPushSettingsRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string", "settings")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    settings: CIMPushSettings
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ..., settings: _Optional[_Union[CIMPushSettings, _Mapping]] = ...) -> None: ...

class CIMAppStateReq(_message.Message):
    __slots__ = ("user_id", "background")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    background: bool
    def __init__(self, user_id: _Optional[int] = ..., background: _Optional[bool] = ...) -> None: ...

class CIMAppStateRsp(_message.Message):
    __slots__ = ("user_id", "result_code", "result_string")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESULT_STRING_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    result_code: CIMErrorCode
    result_string: str
    def __init__(self, user_id: _Optional[int] = ..., result_code: _Optional[_Union[CIMErrorCode, str]] = ..., result_string: _Optional[str] = ...) -> None: ...
