"""The interfaces between the core and what plugs into it.

Storage and presence backends implement these; handlers only ever see them.  Every storage
method returns a Deferred (never blocks the reactor).  ``coffeechat.testing.conformance`` holds
the tests any storage backend must pass.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class UserExists(Exception):
    """A user with that name exists already."""


class StoreClosed(RuntimeError):
    """The store is not running (not started yet, stopping or stopped)."""


class IUserStore(Interface):
    """Accounts and login tokens."""

    def create_user(name: str, nick_name: str, password_hash: str, created_at: int):
        """Create an account; fires with the new :class:`~coffeechat.model.User` (ids start at 1
        and increase), or fails with :class:`UserExists` when ``name`` is taken (names compare
        case-insensitively)."""

    def user_by_name(name: str):
        """Fire with the User named ``name`` (case-insensitive), or None."""

    def user_by_id(user_id: int):
        """Fire with the User of that id, or None."""

    def users_by_ids(user_ids: list[int]):
        """Fire with the Users among ``user_ids`` that exist, in ascending id order."""

    def list_users(after_id: int, limit: int):
        """Fire with up to ``limit`` Users whose id is greater than ``after_id``, ascending."""

    def update_user(user_id: int, nick_name=None, password_hash=None, disabled=None):
        """Change the given fields (None leaves a field alone); fire with the updated User, or
        None when there is no such user."""

    def add_token(token_hash: str, user_id: int, created_at: int, expires_at: int, label: str):
        """Remember a login token by its hash; fires with None."""

    def user_by_token(token_hash: str, now: int):
        """Fire with the User (disabled or not) owning an unexpired, unrevoked token of that hash,
        or None: token login in one read."""

    def revoke_token(token_hash: str):
        """Revoke one token; fires with True when it existed."""

    def revoke_user_tokens(user_id: int):
        """Revoke every token of a user; fires with the number revoked."""


class IMessageStore(Interface):
    """Messages, conversations and read state."""

    def append(message):
        """Store a :class:`~coffeechat.model.NewMessage` and fire with an
        :class:`~coffeechat.model.AppendResult` once it is durably committed.

        The message gets ``seq`` = the conversation's previous last seq + 1 (dense, from 1), in
        the same transaction that stores it.  If the sender already stored a message with the
        same ``client_msg_id`` the existing message is returned with ``created=False`` and
        nothing is written.  For a 1:1 message both participants get a conversation entry (the
        recipient's ``session_id`` is the sender and vice versa); the sender's read position
        moves to the new seq, since one has read what one wrote.
        """

    def history(conv: str, before_seq: int, limit: int, min_seq: int = 1):
        """Fire with up to ``limit`` messages of ``conv`` with ``min_seq <= seq < before_seq``
        (``before_seq`` 0 means from the newest), the newest ones, in ascending seq order."""

    def messages_by_seq(conv: str, seqs: list[int]):
        """Fire with the messages of ``conv`` whose seq is in ``seqs``, ascending."""

    def latest_seq(conv: str):
        """Fire with the last seq of ``conv`` (0 for a conversation without messages)."""

    def mark_read(user_id: int, conv: str, seq: int):
        """Move ``user_id``'s read position in ``conv`` forward to ``seq`` (clamped to the last
        seq; never backwards).  Fire with the read position after the call, or None when the
        user has no entry for ``conv``."""

    def mark_delivered(receipts: list[tuple[int, str, int]]):
        """Record delivery acks ``(user_id, conv, seq)`` (positions only move forward)."""

    def delivered_seq(user_id: int, conv: str):
        """Fire with the highest seq of ``conv`` acknowledged as delivered by ``user_id``."""

    def conversations_of(user_id: int, updated_since: int, limit: int):
        """Fire with ``user_id``'s :class:`~coffeechat.model.ConversationEntry` list for
        conversations updated at or after ``updated_since`` (unix seconds), most recent first,
        each with its last message."""

    def conversation_entry(user_id: int, conv: str):
        """Fire with ``user_id``'s ConversationEntry for ``conv`` or None."""


class IStore(IUserStore, IMessageStore):
    """Everything a storage backend provides, plus its lifecycle."""

    def start():
        """Open the database and run migrations; fires when ready."""

    def stop():
        """Flush pending writes and close; fires when done."""


class IDevice(Interface):
    """One connected, authenticated device of a user, as the core sees a transport connection."""

    user_id = Attribute("The authenticated user id.")
    device_id = Attribute("A process-unique id of this connection.")
    client_type = Attribute("The ClientType the device announced.")
    connected_at = Attribute("When the device logged in (reactor seconds).")

    def push(push):
        """Send a :class:`~coffeechat.model.Push` to the device (encoded by the transport)."""

    def disconnect(code: int, reason: str):
        """Close the connection, telling the client why (an ErrorCode) when the transport can."""


class IPresence(Interface):
    """Who is online and with which devices.  In-process by default; shared (Redis) when several
    nodes serve the same users."""

    def device_online(user_id: int, device_id: str, client_type: int):
        """Record that a device of ``user_id`` is connected to this node; fires with None."""

    def device_offline(user_id: int, device_id: str):
        """Record that the device went away; fires with None."""

    def devices_of(user_id: int):
        """Fire with a list of ``(node, device_id, client_type)`` of the user's online devices."""

    def online_count():
        """Fire with the number of online users this presence knows of."""
