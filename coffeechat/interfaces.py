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


class StorageUnavailable(RuntimeError):
    """The database cannot take the operation now: unreachable or restarting, out of disk space,
    or read-only.  Nothing of it was stored; the same request may succeed later (clients are
    answered STORAGE_UNAVAILABLE).  Backends raise it instead of their driver's error, so the
    core can tell "try again" from a bug without importing a driver."""


class GroupRefused(Exception):
    """A group write the store refused, checked inside the writing transaction so that it is
    exact even against concurrent writes (a message racing a kick).  Nothing was written."""


class GroupNotFound(GroupRefused):
    """No such group, or it was dismissed."""


class NotGroupMember(GroupRefused):
    """The acting user (or the sender of a group message) is not a member of the group."""


class GroupForbidden(GroupRefused):
    """The acting user's role does not allow this (e.g. a member writing while the group is muted,
    @all by a member, an admin kicking an admin)."""


class GroupFull(GroupRefused):
    """Adding the members would take the group over its member limit."""


class TooManyGroups(GroupRefused):
    """A user would be in more groups than ``max_groups_per_user``; ``user_ids`` says who."""

    def __init__(self, user_ids: list[int]) -> None:
        super().__init__(f"users {user_ids} are in too many groups")
        self.user_ids = user_ids


class IUserStore(Interface):
    """Accounts and login tokens."""

    def create_user(name: str, nick_name: str, password_hash: str, created_at: int):
        """Create an account; fires with the new :class:`~coffeechat.model.User` (ids start at 1
        and increase), or fails with :class:`UserExists` when ``name`` is taken (names compare
        by :func:`coffeechat.auth.name_key`, NFKC casefolded; ``name`` is stored as given)."""

    def user_by_name(name: str):
        """Fire with the User whose name has the same :func:`coffeechat.auth.name_key`, or None."""

    def user_by_id(user_id: int):
        """Fire with the User of that id, or None."""

    def users_by_ids(user_ids: list[int]):
        """Fire with the Users among ``user_ids`` that exist, in ascending id order."""

    def list_users(after_id: int, limit: int):
        """Fire with up to ``limit`` Users whose id is greater than ``after_id``, ascending."""

    def update_user(user_id: int, nick_name=None, password_hash=None, disabled=None):
        """Change the given fields (None leaves a field alone); fire with the updated User, or
        None when there is no such user."""

    def upgrade_password_hash(user_id: int, old_hash: str, new_hash: str):
        """Replace the user's password hash with ``new_hash`` only if it is still ``old_hash``
        (a login re-hashing an imported verifier must not undo a reset made meanwhile); fires
        with True when it was replaced."""

    def add_token(token_hash: str, user_id: int, created_at: int, expires_at: int, label: str):
        """Remember a login token by its hash; fires with None."""

    def users_by_tokens(token_hashes: list[str], now: int):
        """Fire with ``{token hash: User}`` (disabled users included) for the given hashes that
        are unexpired and unrevoked; unknown ones are left out.  A batch, so that a storm of
        reconnects costs one read per reactor turn rather than one per login."""

    def revoke_token(token_hash: str):
        """Revoke one token; fires with True when it existed."""

    def revoke_user_tokens(user_id: int):
        """Revoke every token of a user; fires with the number revoked."""

    def purge_tokens(now: int, limit: int):
        """Delete at most ``limit`` tokens that expired at or before ``now`` (revoked ones go
        when they expire); fires with the number deleted.  Bounded, so that a purge never holds
        the writer for long; the caller repeats while it returns ``limit``."""


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

        A group message (``session_type`` GROUP, ``to_id`` the group) is stored once for the
        group, in O(1) + O(mentioned) writes: in the same transaction the store checks that the
        group exists and is not dismissed, that the sender is a member, that the group is not
        muted for them (``mute_model`` ALL: owner and admins only) and that ``at_all`` comes from
        the owner or an admin, and otherwise fails with :class:`GroupNotFound`,
        :class:`NotGroupMember` or :class:`GroupForbidden` (a resend of a message stored
        earlier is still answered with that message).  NOTIFICATION messages are made by the
        core about a change it has just committed and skip the sender checks.  Only the sender's
        existing entry moves its read position; no entry is created.  Each mentioned member's
        entry records the seq (``mention_seq``); ``at_all`` records it once for the group.
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


class IGroupStore(Interface):
    """Groups and their members.  A member has a conversation entry for ``g:<group id>`` exactly
    as long as they are a member; it is created at join with the read position at the group's
    last seq (older messages are not unread) and ``joined_seq`` = last seq + 1.

    Writes fire with a :class:`~coffeechat.model.GroupChange` and bump the group's ``version``
    and ``updated_at``.  Those taking ``actor_id`` first check, in their transaction, that the
    actor is a member with at least ``min_role`` (:class:`NotGroupMember`,
    :class:`GroupForbidden`); all fail with :class:`GroupNotFound` for a missing or dismissed
    group.  Every write costs O(changed members), never O(all members), dismissal excepted.
    """

    def create_group(
        owner_id: int,
        name: str,
        group_type: int,
        member_ids: list[int],
        created_at: int,
        max_members: int,
        max_groups_per_user: int,
    ):
        """Create a group owned by ``owner_id`` with the other ``member_ids`` (duplicates and the
        owner ignored) as members, in that order; fire with the GroupChange (``added`` = all
        members, owner first).  Fails with :class:`GroupFull` beyond ``max_members`` (owner
        included) and :class:`TooManyGroups` if a member would be in more than
        ``max_groups_per_user`` groups (0: no limit)."""

    def group_by_id(group_id: int):
        """Fire with the Group (dismissed ones included), or None."""

    def groups_of(user_id: int):
        """Fire with the Groups ``user_id`` is a member of, by ascending id."""

    def group_members(group_id: int):
        """Fire with the GroupMembers of a group, by seniority (``join_no``)."""

    def group_member(group_id: int, user_id: int):
        """Fire with the GroupMember, or None when ``user_id`` is not a member."""

    def add_members(
        group_id: int,
        actor_id: int,
        min_role: int,
        user_ids: list[int],
        now: int,
        max_members: int,
        max_groups_per_user: int,
    ):
        """Add the users who are not members yet, as members (after the actor's check); fire with
        the GroupChange (nothing changes, version included, when all are members already).
        All or nothing: :class:`GroupFull`, :class:`TooManyGroups` as for create_group."""

    def remove_members(
        group_id: int, actor_id: int, min_role: int, user_ids: list[int], now: int, protect_role: int = 0
    ):
        """Remove those of ``user_ids`` who are members, with their conversation entries (the
        group leaves their lists).  If any of them has a role >= ``protect_role`` (when not 0)
        nothing is removed and it fails with :class:`GroupForbidden`.  When the owner goes, the
        longest-standing remaining member becomes owner (in ``roles``); when nobody is left the
        group is dismissed."""

    def update_group(group_id: int, actor_id: int, min_role: int, changes: dict, now: int):
        """Change group fields (keys from :data:`~coffeechat.model.GROUP_UPDATABLE`); fire with
        the GroupChange."""

    def set_member_roles(group_id: int, actor_id: int, min_role: int, user_ids: list[int], role: int, now: int):
        """Give the members among ``user_ids`` (the owner excepted) ``role`` (MEMBER or ADMIN);
        fire with the GroupChange listing those whose role changed."""

    def transfer_owner(group_id: int, actor_id: int, new_owner_id: int, now: int):
        """The owner ``actor_id`` hands the group to the member ``new_owner_id`` and becomes an
        admin; fire with the GroupChange (``roles``: the new owner, then the old one; the
        group's ``owner_id`` changed).  :class:`GroupForbidden` unless the actor is the owner,
        :class:`NotGroupMember` when the new owner is not a member."""

    def dismiss_group(group_id: int, actor_id: int, min_role: int, now: int):
        """Mark the group dismissed and remove every member and their entries (O(members), once);
        fire with the GroupChange (``removed`` = everyone)."""

    def group_read_count(group_id: int, seq: int, exclude_user_id: int):
        """Fire with ``(read, members)`` for message ``seq``: of the members other than
        ``exclude_user_id`` who can see it (``joined_seq <= seq``), how many have read up to it
        or beyond, and how many there are."""


class IStore(IUserStore, IMessageStore, IGroupStore):
    """Everything a storage backend provides, plus its lifecycle."""

    def start():
        """Open the database and run migrations; fires when ready."""

    def stop():
        """Flush pending writes and close; fires when done."""


class ISQLTransaction(Interface):
    """What a function given to :meth:`ISQLDatabase.run_read` / ``run_write`` gets: one
    transaction on one connection, speaking the portable SQL described in docs/backends.md
    ("SQL written once"): ``?`` placeholders, ``TRUE``/``FALSE``, ``CAST(? AS TEXT)``,
    ``GREATEST``/``LEAST``, ``INSERT ... ON CONFLICT ... DO UPDATE``, ``RETURNING``,
    ``count(*) FILTER (WHERE ...)``.  The engine translates what differs."""

    engine = Attribute('"sqlite" or "postgres": the dialect the statements run on')

    def execute(sql: str, params=()):
        """Run one statement; return a cursor (``fetchone``, ``fetchall``, ``rowcount``, iteration)."""

    def executemany(sql: str, params_seq):
        """Run one statement once per parameter tuple."""

    def in_list(column: str, values):
        """``(clause, params)`` testing ``column`` against the values, for a WHERE clause: one
        parameter however many values there are (no statement per list length)."""


class ISQLDatabase(Interface):
    """A storage backend that runs SQL (SQLite, PostgreSQL, and the in-memory SQLite behind
    ``memory``).  Feature modules bring their own tables, as migrations, and their queries,
    written once, and run them here; they never see a driver."""

    engine = Attribute('"sqlite" or "postgres"')

    def run_read(description: str, fn, *args):
        """Run ``fn(txn, *args)`` (``txn`` an :class:`ISQLTransaction`) where reads run, and fire
        with its result.  Every statement sees committed data; several statements that need one
        snapshot say so with ``txn.execute("BEGIN")`` ... ``COMMIT`` on SQLite only, so prefer
        single statements."""

    def run_write(description: str, fn, *args, locks=()):
        """Run ``fn(txn, *args)`` inside the writer's next transaction and fire with its result
        once that transaction has committed.  ``fn`` may run more than once (a batch replayed after
        another operation failed, a deadlock retried), so it has no effect outside the database;
        if it raises, only its own changes are undone and only its Deferred fails.  ``locks`` names
        conversation keys whose rows are locked before anything runs, in one global order: every
        writer of those conversations, on every node, waits (nothing to do on SQLite's single
        writer)."""

    def migrate(component: str, migrations):
        """Bring the tables of ``component`` (a feature module's name) up to date: ``migrations``
        are :class:`coffeechat.sql.SQLMigration` from version 1 up; the pending ones run in order,
        each in its own transaction together with the recorded version.  Fires when done; fails
        (and the node does not start) when the database holds a newer version than given."""


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


class ILocalDevices(Interface):
    """What a node holds right now (the :class:`~coffeechat.router.Router` provides it): a shared
    presence backend re-writes these entries after it lost its server (a Redis restart) and
    reports the counts in its lease."""

    user_count = Attribute("number of users with at least one device on this node")
    device_count = Attribute("number of devices on this node")

    def all_devices():
        """A list of the :class:`IDevice` connected to this node."""


class IPresence(Interface):
    """Who is online, on which node and with which devices.  In-process by default; shared
    (Redis) when several nodes serve the same users.

    A shared presence holds a lease per node that the node renews; the entries of a node whose
    lease ran out are not reported (and are reaped), so a dead node's users look offline within
    the lease time.  Every method that returns a Deferred fires with its result or fails; none
    waits forever on a lost server.
    """

    node = Attribute("the name of this node (unique in the cluster)")

    def start(local: ILocalDevices):
        """Connect, clean up what an earlier process of this node name left, register this
        node's lease and keep renewing it; fires when registered (or fails)."""

    def stop():
        """Remove this node's entries and lease and disconnect; fires when done."""

    def observe():
        """Shared backends only: connect without joining, so that a tool (``coffeechat nodes``)
        can call :meth:`nodes`, :meth:`devices_of` and :meth:`online_count`; :meth:`stop`
        disconnects."""

    def device_online(user_id: int, device_id: str, client_type: int):
        """Record that a device of ``user_id`` is connected to this node; fires with None."""

    def device_offline(user_id: int, device_id: str):
        """Record that the device went away; fires with None."""

    def devices_of(user_id: int):
        """Fire with a list of ``(node, device_id, client_type)`` of the user's online devices
        on live nodes (this one included)."""

    def locate(user_ids):
        """Fire with ``{user_id: set of node names}`` for those of ``user_ids`` that have devices
        on live nodes *other than this one* (users with none are left out).  One round trip
        for the whole batch."""

    def live_nodes():
        """The names of the nodes whose lease is current, as last seen (synchronous, cached;
        refreshed at least every lease/4 and whenever a node announces itself)."""

    def online_count():
        """Fire with the number of online users in the cluster (the sum of the live nodes'
        reports; exact for one node)."""

    def nodes():
        """Fire with a list of :class:`~coffeechat.model.NodeInfo`, one per registered node,
        the dead ones (lease expired, not yet reaped) included with ``alive`` False."""


class IClusterReceiver(Interface):
    """What a node does with what other nodes send it (the core's ``Cluster`` provides it)."""

    def received(payload: bytes):
        """A payload published to this node (or to all nodes) arrived."""

    def resumed(lost_at: float):
        """The subscription was lost at ``lost_at`` (reactor seconds) and is back: anything
        published to this node meanwhile may be lost, so the node catches up from storage."""


class IClusterBus(Interface):
    """Node-to-node messages: one channel per node and one for all, never a broadcast of every
    message.  Delivery is best-effort (Redis pub/sub may drop): correctness never depends on it."""

    def listen(receiver: IClusterReceiver):
        """Subscribe to this node's channel and the all-nodes channel; fires once subscribed.
        Re-subscribes by itself after a lost connection and then calls ``receiver.resumed``."""

    def publish(node: str, payload: bytes):
        """Send ``payload`` to ``node``'s channel.  Never fails: while the server is unreachable
        payloads wait in a bounded queue (oldest dropped first) and go out on reconnection.
        Payloads in flight when a connection broke are sent again: receivers see duplicates
        (pushes are idempotent for clients, which ignore a server_msg_id they hold)."""

    def broadcast(payload: bytes):
        """Send ``payload`` to every node's all-nodes channel (this one included), as publish."""

    def stop():
        """Unsubscribe and disconnect; fires when done."""


class IBlobStore(Interface):
    """Where uploaded files' bytes live (the files feature keeps what they are in its SQL facet).

    Keys are opaque ASCII strings of ``[A-Za-z0-9._/-]``, at most 200 characters, chosen by the
    caller; a stored blob never changes (a new version is a new key).  Every method returns a
    Deferred and does its I/O off the reactor.  Backends: a local directory (the embedded default)
    and an S3-compatible object store (``backends/blobs_local.py``, ``backends/blobs_s3.py``);
    ``coffeechat.testing.conformance_blobs`` is the suite a third party's backend must pass."""

    def put_file(key: str, path: str, content_type: str):
        """Store the local file at ``path`` under ``key`` (its content type kept where the backend
        can); fires None once the blob is durable.  ``path`` is left as it was (the caller removes
        it).  Storing a key that exists replaces it."""

    def read(key: str, offset: int, length: int):
        """Fire the bytes ``offset`` .. ``offset + length`` of the blob (fewer at its end, b"" past
        it); ``BlobNotFound`` when there is no such blob."""

    def size(key: str):
        """Fire the blob's size in bytes, or None when there is no such blob."""

    def delete(key: str):
        """Remove the blob; fires None, also when there was none."""

    def close():
        """Release connections and threads; fires when done."""


class BlobNotFound(KeyError):
    """No blob is stored under the key."""
