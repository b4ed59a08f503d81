"""Plain data objects shared by the core, the transports and the storage backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple


class SessionType(IntEnum):
    """Kind of conversation, numbered as CIM v1 numbers them."""

    SINGLE = 1
    GROUP = 2


class MsgType(IntEnum):
    """Message content types, numbered as CIM v1 numbers them."""

    TEXT = 1
    FILE = 2
    IMAGE = 3
    AUDIO = 4
    VIDEO = 5
    LOCATION = 6
    ROBOT = 7
    TIPS = 8
    NOTIFICATION = 9
    AVCHAT = 10
    RECALLED = 11  # CoffeeChat extension: what a recalled message becomes (coffeechat/features/recall.py)


class ClientType(IntEnum):
    """Device platforms, numbered as CIM v1 numbers them."""

    DEFAULT = 0
    ANDROID = 1
    IOS = 2
    WEB = 3
    REST_API = 4
    PC_WINDOWS = 5
    MAC_OS = 6


def conversation_key(session_type: int, user_id: int, session_id: int) -> str:
    """The storage key of a conversation as seen by ``user_id``.

    A 1:1 conversation has one key for both participants (``p:<low>:<high>``), so both share
    one message sequence; a group has ``g:<group id>``.
    """
    if session_type == SessionType.SINGLE:
        low, high = sorted((user_id, session_id))
        return f"p:{low}:{high}"
    return f"g:{session_id}"


@dataclass(slots=True, frozen=True)
class User:
    """An account. ``password_hash`` is empty for accounts that may only log in with tokens."""

    user_id: int
    name: str
    nick_name: str
    password_hash: str = ""
    disabled: bool = False
    created_at: int = 0
    avatar_url: str = ""
    phone: str = ""


@dataclass(slots=True, frozen=True)
class NewMessage:
    """A message as the core hands it to storage, before it has a sequence number.

    ``to_id`` is the recipient user id of a 1:1 message or the group id of a group message;
    ``conv`` is the key from :func:`conversation_key`.
    """

    conv: str
    session_type: int
    sender_id: int
    to_id: int
    client_msg_id: str
    msg_type: int
    data: bytes
    created_at: int
    client_type: int = 0
    # Group messages only: members mentioned (@), and "@all" (owner and admins only).  Storage
    # records them in the mentioned members' read state; they are not part of the stored message.
    mentions: tuple[int, ...] = ()
    at_all: bool = False


@dataclass(slots=True, frozen=True)
class Message:
    """A stored message; ``seq`` is its server_msg_id, dense per conversation from 1."""

    conv: str
    seq: int
    session_type: int
    sender_id: int
    to_id: int
    client_msg_id: str
    msg_type: int
    data: bytes
    created_at: int
    client_type: int = 0
    #: a forwarded message's origin, JSON (coffeechat/features/forward.py sets it; the core stores
    #: no such column)
    origin: str = ""
    #: the sender app's notification text for offline recipients (CIMMsgData.push_content; the
    #: push feature uses it; not stored)
    push_content: str = ""
    #: group messages, as sent (not stored): the members mentioned and @all, for the features
    #: that hook ``message/stored`` (push: a mention overrides a muted group)
    mentions: tuple[int, ...] = ()
    at_all: bool = False

    def session_id_for(self, user_id: int) -> int:
        """The session id under which ``user_id`` files this message (the peer, or the group)."""
        if self.session_type == SessionType.SINGLE and user_id == self.to_id:
            return self.sender_id
        return self.to_id


@dataclass(slots=True, frozen=True)
class AppendResult:
    """What :meth:`IMessageStore.append` returns: the stored message and whether it is new."""

    message: Message
    created: bool


@dataclass(slots=True, frozen=True)
class ConversationEntry:
    """One line of a user's conversation list."""

    conv: str
    session_type: int
    session_id: int
    read_seq: int
    last_seq: int
    updated_at: int
    last_message: Message | None = None
    mention_seq: int = 0  # groups: the latest message mentioning this user (or @all), 0 if none
    # Set by the features' session views (Messages.add_session_view), not by storage:
    muted: bool = False  # do-not-disturb for this conversation (notifications only)
    pinned: bool = False
    hidden_unread: int = 0  # unread messages the user deleted for themselves
    robot: bool = False  # a 1:1 conversation with a bot (module bots): is_robot_session

    @property
    def unread(self) -> int:
        return max(0, self.last_seq - self.read_seq - self.hidden_unread)

    @property
    def at_me(self) -> bool:
        """An unread message mentions this user: the list says so until they read past it."""
        return self.mention_seq > self.read_seq


class GroupType(IntEnum):
    """CIM v1's CIMGroupType: the member limit differs (config ``groups.max_*_members``)."""

    NORMAL = 1
    SUPER = 2


class JoinModel(IntEnum):
    """Who may add members (docs/groups.md): anyone in the group, owner and admins, or nobody."""

    DEFAULT = 0
    NEED_AUTH = 1
    REJECT = 2


class BeInviteModel(IntEnum):
    """Whether an invitee must agree; NEED_AGREE groups take no invitations (no agree command yet)."""

    DEFAULT = 0
    NEED_AGREE = 1


class MuteModel(IntEnum):
    """ALL: only the owner and admins may send."""

    DEFAULT = 0
    ALL = 1


class GroupRole(IntEnum):
    """A member's role; ordered, so ``role >= GroupRole.ADMIN`` means "admin or owner"."""

    MEMBER = 1
    ADMIN = 2
    OWNER = 3


class MemberChange(IntEnum):
    """CIMGroupMemberChangedType; ROLE (0, "default") marks a member whose role changed."""

    ROLE = 0
    ADD = 1
    DEL = 2


@dataclass(slots=True, frozen=True)
class Group:
    """A group chat.  ``version`` grows by one with every change (info or membership), so a
    client refreshes only groups whose version it does not have."""

    group_id: int
    name: str
    group_type: int
    owner_id: int
    created_at: int
    updated_at: int
    version: int = 1
    join_model: int = JoinModel.DEFAULT
    be_invite_model: int = BeInviteModel.DEFAULT
    mute_model: int = MuteModel.DEFAULT
    intro: str = ""
    announcement: str = ""
    avatar: str = ""
    member_count: int = 0
    dismissed: bool = False

    @property
    def conv(self) -> str:
        return f"g:{self.group_id}"


#: The fields of a Group that an update may change (IGroupStore.update_group).
GROUP_UPDATABLE = ("name", "intro", "announcement", "avatar", "join_model", "be_invite_model", "mute_model")


@dataclass(slots=True, frozen=True)
class GroupMember:
    """A member of a group.  ``joined_seq`` is the first seq of the group conversation the member
    may see (history visibility); ``join_no`` orders members by seniority within the group."""

    group_id: int
    user_id: int
    role: int
    joined_at: int
    joined_seq: int
    join_no: int


@dataclass(slots=True, frozen=True)
class GroupChange:
    """What a group write did: the group afterwards, and the members added, removed (as they
    were) and whose role changed (as they are now, e.g. the new owner on an owner's exit)."""

    group: Group
    added: tuple[GroupMember, ...] = ()
    removed: tuple[GroupMember, ...] = ()
    roles: tuple[GroupMember, ...] = ()


@dataclass(slots=True)
class Push:
    """An event for devices.  Each kind is a dataclass deriving from this one, registered by the
    feature module that sends it (``ModuleAPI.push_kind``: its command, its encoding, its name
    between nodes).  ``cache`` keeps the encodings made of one push (protobuf body, binary frame
    body, JSON body, cluster payload), so a fan-out to many devices or nodes encodes it once."""

    cache: dict = field(default_factory=dict, kw_only=True, repr=False, compare=False)


class NodeInfo(NamedTuple):
    """One node of a cluster as the shared presence sees it (``coffeechat nodes`` shows these)."""

    name: str
    alive: bool
    online_users: int
    devices: int
    started_at: float  # Unix seconds
    lease_left: float  # seconds until the lease runs out (<= 0: dead)
