"""Plain data objects shared by the core, the transports and the storage backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


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

    @property
    def unread(self) -> int:
        return max(0, self.last_seq - self.read_seq)


@dataclass(slots=True, frozen=True)
class ReadReceipt:
    """A read position that moved, addressed to one user: ``reader_id`` has read up to ``seq``
    in the conversation that the addressee files under ``session_id``."""

    reader_id: int
    session_id: int
    session_type: int
    seq: int


@dataclass(slots=True)
class Push:
    """An event pushed to devices: ``MESSAGE`` carries ``(Message, sender nick)``, ``READ`` a
    ReadReceipt.  Transports cache their encoding in ``encoded`` so that a fan-out to many
    devices encodes the body once."""

    MESSAGE = "message"
    READ = "read"

    kind: str
    payload: object
    encoded: dict = field(default_factory=dict)
