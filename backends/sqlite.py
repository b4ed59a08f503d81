"""SQLite storage backend: one writer thread with group commit, a pool of reader threads.

Why this shape: SQLite allows one writer at a time and a durable COMMIT costs an fsync, so
every write goes through ONE thread that gathers whatever was queued during a short window
(``group_commit_ms``, at most ``max_batch`` operations), runs it all in one transaction,
commits once (``synchronous=FULL``, WAL), and only then fires the Deferreds of the whole batch,
in queue order, with a single ``reactor.callFromThread``.  A failing operation fails only its
own Deferred: the batch is then replayed with a SAVEPOINT per operation (see ``_run_batch``).
Reads run on a small ThreadPool, each thread with its own read-only connection; WAL lets them
read while the writer writes, and the writer checkpoints the WAL between batches.  The reactor
thread never touches the database.

``run_write(description, fn, *args)`` and ``run_read(description, fn, *args)`` are the entry
points in the style of Synapse's ``runInteraction``: ``fn(cursor, *args)`` runs in a database
thread and the Deferred fires (on the reactor thread) with its result.  A ``run_write`` function
runs inside the batch transaction: it must not BEGIN, COMMIT or ROLLBACK itself, and it may be
run twice (when the batch is replayed), so it must not have effects outside the database.  A
``run_read`` function runs in autocommit mode; every single statement sees a consistent
snapshot, and a function needing one snapshot across several statements may wrap them in
``BEGIN``/``COMMIT`` itself.

One process writes a database: the writer remembers each conversation's last seq, and while it
notices commits made by other connections (``PRAGMA data_version``) and then forgets, several
serving processes on one file are not a supported setup.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlite_utils
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from coffeechat.backends.threaded import _NEW, _RUNNING, _STARTING, _STOP, _STOPPED, ThreadedStore
from coffeechat.interfaces import (
    GroupForbidden,
    GroupFull,
    GroupNotFound,
    IStore,
    NotGroupMember,
    StoreClosed,
    TooManyGroups,
    UserExists,
)
from coffeechat.model import (
    GROUP_UPDATABLE,
    AppendResult,
    ConversationEntry,
    Group,
    GroupChange,
    GroupMember,
    GroupRole,
    Message,
    MsgType,
    MuteModel,
    SessionType,
    User,
)

__all__ = ["SQLiteStore", "StoreClosed", "create_store", "MIGRATIONS"]


# --------------------------------------------------------------------------------------------
# Schema and migrations
# --------------------------------------------------------------------------------------------


def _migration_1_initial(db: sqlite_utils.Database) -> None:
    """Accounts, tokens, conversations, messages and per-user read state."""
    # sqlite-utils cannot express AUTOINCREMENT, so users is written out.  ``name_key`` is the
    # casefolded name: SQLite's NOCASE only folds ASCII, and names must compare
    # case-insensitively in every script.
    db.execute(
        """
        CREATE TABLE users (
            user_id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL COLLATE NOCASE,
            name_key TEXT NOT NULL UNIQUE,
            nick_name TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL DEFAULT '',
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL DEFAULT 0,
            avatar_url TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.create_table(
        "tokens",
        {
            "token_hash": str,
            "user_id": int,
            "created_at": int,
            "expires_at": int,
            "revoked": int,
            "label": str,
        },
        pk="token_hash",
        not_null=["user_id", "created_at", "expires_at", "revoked", "label"],
        defaults={"revoked": 0, "label": "", "expires_at": 0, "created_at": 0},
    )
    db["tokens"].create_index(["user_id"], index_name="tokens_user_id")
    db.create_table(
        "conversations",
        {"conv": str, "session_type": int, "last_seq": int, "updated_at": int},
        pk="conv",
        not_null=["session_type", "last_seq", "updated_at"],
        defaults={"last_seq": 0, "updated_at": 0},
    )
    # sqlite-utils writes the CREATE TABLE; WITHOUT ROWID keeps (conv, seq) as the b-tree key
    # so history is one range scan and a message is stored once.
    messages_sql = db.create_table_sql(
        "messages",
        {
            "conv": str,
            "seq": int,
            "session_type": int,
            "sender_id": int,
            "to_id": int,
            "client_msg_id": str,
            "msg_type": int,
            "data": bytes,
            "created_at": int,
            "client_type": int,
        },
        pk=("conv", "seq"),
        not_null=[
            "session_type",
            "sender_id",
            "to_id",
            "client_msg_id",
            "msg_type",
            "data",
            "created_at",
            "client_type",
        ],
    )
    db.execute(messages_sql.rstrip().rstrip(";") + " WITHOUT ROWID")
    # Partial: an empty client_msg_id means "the client gave none", not one shared id.
    db.execute(
        "CREATE UNIQUE INDEX messages_sender_client_msg_id "
        "ON messages (sender_id, client_msg_id) WHERE client_msg_id <> ''"
    )
    uc_sql = db.create_table_sql(
        "user_conversations",
        {
            "user_id": int,
            "conv": str,
            "session_type": int,
            "session_id": int,
            "read_seq": int,
            "delivered_seq": int,
        },
        pk=("user_id", "conv"),
        not_null=["session_type", "session_id", "read_seq", "delivered_seq"],
        defaults={"read_seq": 0, "delivered_seq": 0},
    )
    db.execute(uc_sql.rstrip().rstrip(";") + " WITHOUT ROWID")


def _migration_2_groups(db: sqlite_utils.Database) -> None:
    """Groups and members; mentions in read state.

    ``chat_groups`` ("groups" is an SQL keyword) holds the group with its member count (limits
    are checked without counting rows), ``join_counter`` (seniority of members, for the owner's
    hand-over) and ``at_all_seq`` (the last @all message: one write per @all, not one per
    member).  ``group_members`` is keyed (group, user) for the per-message sender check and
    indexed by user for "my groups".  A member's read state stays the user_conversations row;
    ``mention_seq`` there is the last message that mentioned them.
    """
    db.execute(
        """
        CREATE TABLE chat_groups (
            group_id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL DEFAULT '',
            group_type INTEGER NOT NULL DEFAULT 1,
            owner_id INTEGER NOT NULL,
            created_at INTEGER NOT NULL DEFAULT 0,
            updated_at INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 1,
            join_model INTEGER NOT NULL DEFAULT 0,
            be_invite_model INTEGER NOT NULL DEFAULT 0,
            mute_model INTEGER NOT NULL DEFAULT 0,
            intro TEXT NOT NULL DEFAULT '',
            announcement TEXT NOT NULL DEFAULT '',
            avatar TEXT NOT NULL DEFAULT '',
            member_count INTEGER NOT NULL DEFAULT 0,
            dismissed INTEGER NOT NULL DEFAULT 0,
            join_counter INTEGER NOT NULL DEFAULT 0,
            at_all_seq INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute(
        """
        CREATE TABLE group_members (
            group_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            role INTEGER NOT NULL,
            joined_at INTEGER NOT NULL,
            joined_seq INTEGER NOT NULL,
            join_no INTEGER NOT NULL,
            PRIMARY KEY (group_id, user_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX group_members_user ON group_members (user_id, group_id)")
    db.execute("ALTER TABLE user_conversations ADD COLUMN mention_seq INTEGER NOT NULL DEFAULT 0")


#: Applied in order; ``schema_version`` records how many have run.  Append, never reorder.
def _migration_3_token_expiry(db: sqlite_utils.Database) -> None:
    """An index on ``tokens.expires_at``, so that purging expired tokens reads only those."""
    db.execute("CREATE INDEX tokens_expires_at ON tokens (expires_at)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1_initial,
    _migration_2_groups,
    _migration_3_token_expiry,
]


def _migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; each migration commits together with its version bump."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        version = 0
    else:
        version = row[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(f"database schema version {version} is newer than this code knows ({len(MIGRATIONS)})")
    db = sqlite_utils.Database(conn)
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[number - 1](db)
            conn.execute("UPDATE schema_version SET version = ?", (number,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


# --------------------------------------------------------------------------------------------
# SQL (module constants: prepared once, found in the statement cache afterwards)
# --------------------------------------------------------------------------------------------

_MSG_COLS = "conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at, client_type"
_USER_COLS = "user_id, name, nick_name, password_hash, disabled, created_at, avatar_url, phone"

SQL_FIND_RESEND = f"SELECT {_MSG_COLS} FROM messages WHERE sender_id = ? AND client_msg_id = ? AND client_msg_id <> ''"
SQL_LAST_SEQ = "SELECT last_seq FROM conversations WHERE conv = ?"
# DO NOTHING on the (sender_id, client_msg_id) index is the resend check: a plain SELECT first
# would cost a statement on every append for the rare resend.
SQL_INSERT_MESSAGE = f"INSERT INTO messages ({_MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
# The writer is the only writer and knows last_seq (its cache, else SQL_LAST_SEQ), so it
# writes the new value back: cheaper than UPDATE ... RETURNING (which costs as much again in
# CPython's sqlite3) and one statement fewer per append.  conversations.last_seq belongs to
# append: nothing else may change it.
SQL_SET_LAST_SEQ = "UPDATE conversations SET last_seq = ?, updated_at = max(updated_at, ?) WHERE conv = ?"
SQL_NEW_CONVERSATION = "INSERT INTO conversations (conv, session_type, last_seq, updated_at) VALUES (?, ?, ?, ?)"
# The recipient's VALUES row has read_seq 0, so on conflict the WHERE leaves its row alone
# (not even rewritten: one dirty page less per append).
SQL_UPSERT_PAIR = (
    "INSERT INTO user_conversations (user_id, conv, session_type, session_id, read_seq, delivered_seq) "
    "VALUES (?, ?, ?, ?, ?, 0), (?, ?, ?, ?, 0, 0) "
    "ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = excluded.read_seq "
    "WHERE excluded.read_seq > read_seq"
)
# Group appends: the sender is a member (checked first), so its row exists; nobody else's row
# is touched, whatever the size of the group.
SQL_GROUP_SENDER = (
    "SELECT m.role, g.mute_model FROM group_members AS m JOIN chat_groups AS g ON g.group_id = m.group_id "
    "WHERE m.group_id = ? AND m.user_id = ? AND g.dismissed = 0"
)
SQL_GROUP_SENDER_READ = "UPDATE user_conversations SET read_seq = ? WHERE user_id = ? AND conv = ? AND read_seq < ?"
SQL_MENTION = "UPDATE user_conversations SET mention_seq = ? WHERE user_id = ? AND conv = ?"
SQL_AT_ALL = "UPDATE chat_groups SET at_all_seq = ? WHERE group_id = ?"
SQL_HISTORY = f"SELECT {_MSG_COLS} FROM messages WHERE conv = ? AND seq >= ? AND seq < ? ORDER BY seq DESC LIMIT ?"
SQL_MESSAGES_BY_SEQ = (
    f"SELECT {_MSG_COLS} FROM messages WHERE conv = ? AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq"
)
SQL_MARK_READ = (
    "UPDATE user_conversations SET read_seq = max(read_seq, min(?, "
    "coalesce((SELECT last_seq FROM conversations WHERE conv = ?), 0))) "
    "WHERE user_id = ? AND conv = ? RETURNING read_seq"
)
SQL_MARK_DELIVERED = (
    "UPDATE user_conversations SET delivered_seq = max(delivered_seq, min(?, "
    "coalesce((SELECT last_seq FROM conversations WHERE conv = ?), 0))) "
    "WHERE user_id = ? AND conv = ?"
)
SQL_DELIVERED_SEQ = "SELECT delivered_seq FROM user_conversations WHERE user_id = ? AND conv = ?"
_ENTRY_SELECT = (
    "SELECT uc.conv, uc.session_type, uc.session_id, uc.read_seq, "
    "coalesce(c.last_seq, 0), coalesce(c.updated_at, 0), "
    "m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.client_msg_id, m.msg_type, m.data, "
    "m.created_at, m.client_type, max(uc.mention_seq, coalesce(g.at_all_seq, 0)) "
    "FROM user_conversations AS uc "
    "LEFT JOIN conversations AS c ON c.conv = uc.conv "
    "LEFT JOIN messages AS m ON m.conv = c.conv AND m.seq = c.last_seq "
    "LEFT JOIN chat_groups AS g ON uc.session_type = 2 AND g.group_id = uc.session_id "
)
SQL_CONVERSATIONS_OF = (
    _ENTRY_SELECT + "WHERE uc.user_id = ? AND coalesce(c.updated_at, 0) >= ? "
    "ORDER BY coalesce(c.updated_at, 0) DESC, coalesce(c.last_seq, 0) DESC, uc.conv DESC LIMIT ?"
)
SQL_CONVERSATION_ENTRY = _ENTRY_SELECT + "WHERE uc.user_id = ? AND uc.conv = ?"

SQL_CREATE_USER = (
    "INSERT INTO users (name, name_key, nick_name, password_hash, disabled, created_at) "
    f"VALUES (?, ?, ?, ?, 0, ?) RETURNING {_USER_COLS}"
)
SQL_USER_BY_NAME = f"SELECT {_USER_COLS} FROM users WHERE name_key = ?"
SQL_USER_BY_ID = f"SELECT {_USER_COLS} FROM users WHERE user_id = ?"
SQL_USERS_BY_IDS = f"SELECT {_USER_COLS} FROM users WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id"
SQL_LIST_USERS = f"SELECT {_USER_COLS} FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?"
SQL_UPDATE_USER = (
    "UPDATE users SET nick_name = coalesce(?, nick_name), "
    "password_hash = coalesce(?, password_hash), disabled = coalesce(?, disabled) "
    f"WHERE user_id = ? RETURNING {_USER_COLS}"
)
SQL_ADD_TOKEN = (
    "INSERT INTO tokens (token_hash, user_id, created_at, expires_at, revoked, label) VALUES (?, ?, ?, ?, 0, ?)"
)
# A token is valid while now < expires_at.
SQL_USERS_BY_TOKENS = (
    f"SELECT t.token_hash, {', '.join('u.' + c for c in _USER_COLS.split(', '))} FROM tokens AS t "
    "JOIN users AS u ON u.user_id = t.user_id "
    "WHERE t.token_hash IN (SELECT value FROM json_each(?)) AND t.revoked = 0 AND t.expires_at > ?"
)
# True only for a live token, as the memory backend answers (revoking twice says False).
SQL_REVOKE_TOKEN = "UPDATE tokens SET revoked = 1 WHERE token_hash = ? AND revoked = 0"
SQL_REVOKE_USER_TOKENS = "UPDATE tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0"

_GROUP_COLS = (
    "group_id, name, group_type, owner_id, created_at, updated_at, version, join_model, be_invite_model, "
    "mute_model, intro, announcement, avatar, member_count, dismissed"
)
_MEMBER_COLS = "group_id, user_id, role, joined_at, joined_seq, join_no"
SQL_GROUP_BY_ID = f"SELECT {_GROUP_COLS} FROM chat_groups WHERE group_id = ?"
SQL_GROUP_STATE = "SELECT dismissed FROM chat_groups WHERE group_id = ?"
SQL_CREATE_GROUP = (
    "INSERT INTO chat_groups (name, group_type, owner_id, created_at, updated_at, version, member_count, "
    f"join_counter) VALUES (?, ?, ?, ?, ?, 1, ?, ?) RETURNING {_GROUP_COLS}"
)
SQL_NEW_GROUP_CONVERSATION = (
    "INSERT INTO conversations (conv, session_type, last_seq, updated_at) VALUES (?, 2, 0, ?) "
    "ON CONFLICT (conv) DO NOTHING"
)
SQL_GROUPS_OF = (
    f"SELECT {', '.join('g.' + c for c in _GROUP_COLS.split(', '))} FROM group_members AS m "
    "JOIN chat_groups AS g ON g.group_id = m.group_id WHERE m.user_id = ? ORDER BY m.group_id"
)
SQL_GROUP_MEMBERS = f"SELECT {_MEMBER_COLS} FROM group_members WHERE group_id = ? ORDER BY join_no"
SQL_GROUP_MEMBER = f"SELECT {_MEMBER_COLS} FROM group_members WHERE group_id = ? AND user_id = ?"
SQL_MEMBERS_AMONG = (
    f"SELECT {_MEMBER_COLS} FROM group_members "
    "WHERE group_id = ? AND user_id IN (SELECT value FROM json_each(?)) ORDER BY join_no"
)
SQL_GROUP_COUNT_OF = "SELECT count(*) FROM group_members WHERE user_id = ?"
SQL_INSERT_MEMBER = f"INSERT INTO group_members ({_MEMBER_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
# A row left by an earlier membership (or by group messages written before migration 2) is
# reset: the new member starts reading at the current last seq.
SQL_INSERT_MEMBER_ENTRY = (
    "INSERT INTO user_conversations (user_id, conv, session_type, session_id, read_seq, delivered_seq, "
    "mention_seq) VALUES (?, ?, 2, ?, ?, ?, 0) ON CONFLICT (user_id, conv) DO UPDATE SET "
    "read_seq = excluded.read_seq, delivered_seq = excluded.delivered_seq, mention_seq = 0"
)
SQL_DELETE_MEMBERS = "DELETE FROM group_members WHERE group_id = ? AND user_id IN (SELECT value FROM json_each(?))"
SQL_DELETE_MEMBER_ENTRIES = (
    "DELETE FROM user_conversations WHERE user_id IN (SELECT value FROM json_each(?)) AND conv = ?"
)
SQL_SENIOR_MEMBER = f"SELECT {_MEMBER_COLS} FROM group_members WHERE group_id = ? ORDER BY join_no LIMIT 1"
SQL_SET_ROLE = "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?"
SQL_TAKE_JOIN_NOS = "UPDATE chat_groups SET join_counter = join_counter + ? WHERE group_id = ? RETURNING join_counter"
# Every change bumps version; member_count moves by the delta; owner/dismissed are set when given.
SQL_BUMP_GROUP = (
    "UPDATE chat_groups SET version = version + 1, updated_at = max(updated_at, ?), "
    "member_count = member_count + ?, owner_id = coalesce(?, owner_id), dismissed = max(dismissed, ?) "
    f"WHERE group_id = ? RETURNING {_GROUP_COLS}"
)
SQL_UPDATE_GROUP = (
    "UPDATE chat_groups SET name = coalesce(?, name), intro = coalesce(?, intro), "
    "announcement = coalesce(?, announcement), avatar = coalesce(?, avatar), "
    "join_model = coalesce(?, join_model), be_invite_model = coalesce(?, be_invite_model), "
    "mute_model = coalesce(?, mute_model) WHERE group_id = ?"
)
SQL_GROUP_READ_COUNT = (
    "SELECT count(*), coalesce(sum(uc.read_seq >= ?), 0) FROM group_members AS m "
    "JOIN user_conversations AS uc ON uc.user_id = m.user_id AND uc.conv = ? "
    "WHERE m.group_id = ? AND m.user_id <> ? AND m.joined_seq <= ?"
)

_SAVEPOINT = "SAVEPOINT op"
_RELEASE = "RELEASE op"
_ROLLBACK_TO = "ROLLBACK TO op"

_SINGLE = int(SessionType.SINGLE)
_NOTIFICATION = int(MsgType.NOTIFICATION)
_ADMIN = int(GroupRole.ADMIN)
_MUTE_ALL = int(MuteModel.ALL)
_LAST_SEQS_MAX = 100_000  # conversations whose last_seq the writer remembers
_WAL_CHECKPOINT_AT = 16 * 1024 * 1024  # bytes of WAL after which the writer checkpoints
_NO_UPPER = 1 << 62


# --------------------------------------------------------------------------------------------
# Transaction functions (run in the writer thread or a reader thread)
# --------------------------------------------------------------------------------------------


def _row_user(row: tuple) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])


def _append_txn(cur: sqlite3.Cursor, m: Any, last_seqs: dict[str, int] | None = None) -> AppendResult:
    """The hot path: insert (or find the resend), bump the conversation, upsert read state;
    plus reading last_seq when ``last_seqs`` (the writer's cache) does not know it."""
    conv = m.conv
    st = m.session_type
    sender = m.sender_id
    to_id = m.to_id
    cmid = m.client_msg_id
    created_at = m.created_at
    if st != _SINGLE and m.msg_type != _NOTIFICATION:
        refused = _group_sender_refusal(cur, m)
        if refused is not None:
            old = cur.execute(SQL_FIND_RESEND, (sender, cmid)).fetchone() if cmid else None
            return refused if old is None else AppendResult(Message(*old), False)
    last = None if last_seqs is None else last_seqs.get(conv)
    if last is None:
        row = cur.execute(SQL_LAST_SEQ, (conv,)).fetchone()
        last = None if row is None else row[0]
    seq = 1 if last is None else last + 1
    inserted = cur.execute(
        SQL_INSERT_MESSAGE,
        (conv, seq, st, sender, to_id, cmid, m.msg_type, m.data, created_at, m.client_type),
    ).rowcount
    if not inserted:
        # Nothing was written: this is a resend of (sender, client_msg_id).
        old = cur.execute(SQL_FIND_RESEND, (sender, cmid)).fetchone()
        if old is None:
            raise RuntimeError(f"conversation {conv!r} has seq {seq} already: last_seq is behind")
        return AppendResult(Message(*old), False)
    if last is None:
        cur.execute(SQL_NEW_CONVERSATION, (conv, st, seq, created_at))
    else:
        cur.execute(SQL_SET_LAST_SEQ, (seq, created_at, conv))
    if st == _SINGLE:
        # Both sides in one statement: the sender's read position follows its own message,
        # the recipient's entry is created if missing and otherwise left alone.
        cur.execute(SQL_UPSERT_PAIR, (sender, conv, st, to_id, seq, to_id, conv, st, sender))
    else:
        # A group append is O(1) writes (plus one per mentioned member): member rows come from
        # group joins, only the sender's read position moves.
        cur.execute(SQL_GROUP_SENDER_READ, (seq, sender, conv, seq))
        if m.mentions:
            cur.executemany(SQL_MENTION, [(seq, uid, conv) for uid in m.mentions])
        if m.at_all:
            cur.execute(SQL_AT_ALL, (seq, to_id))
    if last_seqs is not None:
        last_seqs[conv] = seq  # last: only once every statement of the append succeeded
    return AppendResult(
        Message(conv, seq, st, sender, to_id, cmid, m.msg_type, m.data, created_at, m.client_type),
        True,
    )


def _group_sender_refusal(cur: sqlite3.Cursor, m: Any) -> Exception | None:
    """Why the sender of group message ``m`` may not send it, or None.  Returned, not raised:
    a raise would roll back and replay the whole group-commit batch."""
    row = cur.execute(SQL_GROUP_SENDER, (m.to_id, m.sender_id)).fetchone()
    if row is None:
        state = cur.execute(SQL_GROUP_STATE, (m.to_id,)).fetchone()
        if state is None or state[0]:
            return GroupNotFound(f"no group {m.to_id}")
        return NotGroupMember(f"user {m.sender_id} is not a member of group {m.to_id}")
    role, mute = row
    if role < _ADMIN:
        if mute == _MUTE_ALL:
            return GroupForbidden("the group is muted: only the owner and admins may send")
        if m.at_all:
            return GroupForbidden("only the owner and admins may mention everyone")
    return None


def _refusal(result: Any) -> Any:
    """Turn a refusal returned by ``_append_txn`` into the failure of the append."""
    if isinstance(result, Exception):
        raise result
    return result


def _create_user_txn(cur: sqlite3.Cursor, name: str, nick_name: str, password_hash: str, created_at: int) -> User:
    try:
        row = cur.execute(SQL_CREATE_USER, (name, name.casefold(), nick_name, password_hash, created_at)).fetchone()
    except sqlite3.IntegrityError as e:
        raise UserExists(name) from e
    return _row_user(row)


def _update_user_txn(
    cur: sqlite3.Cursor, user_id: int, nick_name: str | None, password_hash: str | None, disabled: bool | None
) -> User | None:
    flag = None if disabled is None else int(bool(disabled))
    row = cur.execute(SQL_UPDATE_USER, (nick_name, password_hash, flag, user_id)).fetchone()
    return None if row is None else _row_user(row)


def _add_token_txn(
    cur: sqlite3.Cursor, token_hash: str, user_id: int, created_at: int, expires_at: int, label: str
) -> None:
    cur.execute(SQL_ADD_TOKEN, (token_hash, user_id, created_at, expires_at, label))


def _revoke_token_txn(cur: sqlite3.Cursor, token_hash: str) -> bool:
    return cur.execute(SQL_REVOKE_TOKEN, (token_hash,)).rowcount > 0


def _revoke_user_tokens_txn(cur: sqlite3.Cursor, user_id: int) -> int:
    return cur.execute(SQL_REVOKE_USER_TOKENS, (user_id,)).rowcount


def _purge_tokens_txn(cur: sqlite3.Cursor, now: int, limit: int) -> int:
    return cur.execute(
        "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens WHERE expires_at <= ? LIMIT ?)", (now, limit)
    ).rowcount


def _mark_read_txn(cur: sqlite3.Cursor, user_id: int, conv: str, seq: int) -> int | None:
    row = cur.execute(SQL_MARK_READ, (seq, conv, user_id, conv)).fetchone()
    return None if row is None else row[0]


def _mark_delivered_txn(cur: sqlite3.Cursor, receipts: list[tuple[int, str, int]]) -> None:
    cur.executemany(SQL_MARK_DELIVERED, [(seq, conv, uid, conv) for uid, conv, seq in receipts])


def _one_user(cur: sqlite3.Cursor, sql: str, key: Any) -> User | None:
    row = cur.execute(sql, (key,)).fetchone()
    return None if row is None else _row_user(row)


def _users_by_ids(cur: sqlite3.Cursor, ids: str) -> list[User]:
    return [_row_user(r) for r in cur.execute(SQL_USERS_BY_IDS, (ids,))]


def _list_users(cur: sqlite3.Cursor, after_id: int, limit: int) -> list[User]:
    return [_row_user(r) for r in cur.execute(SQL_LIST_USERS, (after_id, limit))]


def _users_by_tokens(cur: sqlite3.Cursor, token_hashes: str, now: int) -> dict[str, User]:
    return {r[0]: _row_user(r[1:]) for r in cur.execute(SQL_USERS_BY_TOKENS, (token_hashes, now))}


def _history(cur: sqlite3.Cursor, conv: str, before_seq: int, limit: int, min_seq: int) -> list[Message]:
    rows = cur.execute(SQL_HISTORY, (conv, min_seq, before_seq, limit)).fetchall()
    rows.reverse()
    return [Message(*r) for r in rows]


def _messages_by_seq(cur: sqlite3.Cursor, conv: str, seqs: str) -> list[Message]:
    return [Message(*r) for r in cur.execute(SQL_MESSAGES_BY_SEQ, (conv, seqs))]


def _scalar(cur: sqlite3.Cursor, sql: str, params: tuple) -> int:
    row = cur.execute(sql, params).fetchone()
    return 0 if row is None else row[0]


def _row_entry(r: tuple) -> ConversationEntry:
    last = None if r[6] is None else Message(*r[6:16])
    return ConversationEntry(r[0], r[1], r[2], r[3], r[4], r[5], last, r[16])


# ---- groups (see IGroupStore) ----


def _row_group(r: tuple) -> Group:
    return Group(*r[:14], bool(r[14]))


def _live_group(cur: sqlite3.Cursor, group_id: int) -> Group:
    row = cur.execute(SQL_GROUP_BY_ID, (group_id,)).fetchone()
    if row is None or row[14]:
        raise GroupNotFound(f"no group {group_id}")
    return _row_group(row)


def _check_actor(cur: sqlite3.Cursor, group_id: int, actor_id: int, min_role: int) -> GroupMember:
    row = cur.execute(SQL_GROUP_MEMBER, (group_id, actor_id)).fetchone()
    if row is None:
        raise NotGroupMember(f"user {actor_id} is not a member of group {group_id}")
    if row[2] < min_role:
        raise GroupForbidden(f"user {actor_id} may not do this in group {group_id}")
    return GroupMember(*row)


def _unique(ids: list[int], skip: int = 0) -> list[int]:
    """Distinct ids in their given order, without ``skip``."""
    seen = {skip}
    return [i for i in ids if not (i in seen or seen.add(i))]


def _check_group_counts(cur: sqlite3.Cursor, user_ids: list[int], max_groups_per_user: int) -> None:
    if max_groups_per_user <= 0:
        return
    over = [u for u in user_ids if cur.execute(SQL_GROUP_COUNT_OF, (u,)).fetchone()[0] >= max_groups_per_user]
    if over:
        raise TooManyGroups(over)


def _insert_members(
    cur: sqlite3.Cursor, group_id: int, members: list[tuple[int, int]], now: int, first_join_no: int
) -> tuple[GroupMember, ...]:
    """Member rows and conversation entries; entries start read at the group's last seq."""
    conv = f"g:{group_id}"
    row = cur.execute(SQL_LAST_SEQ, (conv,)).fetchone()
    last = 0 if row is None else row[0]
    added = tuple(
        GroupMember(group_id, uid, role, now, last + 1, first_join_no + i) for i, (uid, role) in enumerate(members)
    )
    cur.executemany(SQL_INSERT_MEMBER, [(group_id, m.user_id, m.role, now, m.joined_seq, m.join_no) for m in added])
    cur.executemany(SQL_INSERT_MEMBER_ENTRY, [(m.user_id, conv, group_id, last, last) for m in added])
    return added


def _bump(
    cur: sqlite3.Cursor, group_id: int, now: int, delta: int = 0, owner_id: int | None = None, dismissed: bool = False
) -> Group:
    row = cur.execute(SQL_BUMP_GROUP, (now, delta, owner_id, int(dismissed), group_id)).fetchone()
    return _row_group(row)


def _create_group_txn(
    cur: sqlite3.Cursor,
    owner_id: int,
    name: str,
    group_type: int,
    member_ids: list[int],
    created_at: int,
    max_members: int,
    max_groups_per_user: int,
) -> GroupChange:
    members = [owner_id, *_unique(member_ids, owner_id)]
    if len(members) > max_members:
        raise GroupFull(f"a group has at most {max_members} members")
    _check_group_counts(cur, members, max_groups_per_user)
    row = cur.execute(
        SQL_CREATE_GROUP, (name, group_type, owner_id, created_at, created_at, len(members), len(members))
    ).fetchone()
    group = _row_group(row)
    cur.execute(SQL_NEW_GROUP_CONVERSATION, (group.conv, created_at))
    roles = [(owner_id, int(GroupRole.OWNER))] + [(u, int(GroupRole.MEMBER)) for u in members[1:]]
    return GroupChange(group, added=_insert_members(cur, group.group_id, roles, created_at, 1))


def _add_members_txn(
    cur: sqlite3.Cursor,
    group_id: int,
    actor_id: int,
    min_role: int,
    user_ids: list[int],
    now: int,
    max_members: int,
    max_groups_per_user: int,
) -> GroupChange:
    group = _live_group(cur, group_id)
    _check_actor(cur, group_id, actor_id, min_role)
    wanted = _unique(user_ids)
    present = {r[1] for r in cur.execute(SQL_MEMBERS_AMONG, (group_id, json.dumps(wanted)))}
    new = [u for u in wanted if u not in present]
    if not new:
        return GroupChange(group)
    if group.member_count + len(new) > max_members:
        raise GroupFull(f"group {group_id} has at most {max_members} members")
    _check_group_counts(cur, new, max_groups_per_user)
    counter = cur.execute(SQL_TAKE_JOIN_NOS, (len(new), group_id)).fetchone()[0]
    added = _insert_members(cur, group_id, [(u, int(GroupRole.MEMBER)) for u in new], now, counter - len(new) + 1)
    return GroupChange(_bump(cur, group_id, now, len(added)), added=added)


def _remove_members_txn(
    cur: sqlite3.Cursor, group_id: int, actor_id: int, min_role: int, user_ids: list[int], now: int, protect_role: int
) -> GroupChange:
    group = _live_group(cur, group_id)
    _check_actor(cur, group_id, actor_id, min_role)
    ids = json.dumps(_unique(user_ids))
    removed = tuple(GroupMember(*r) for r in cur.execute(SQL_MEMBERS_AMONG, (group_id, ids)).fetchall())
    if not removed:
        return GroupChange(group)
    if protect_role and any(m.role >= protect_role for m in removed):
        raise GroupForbidden("the owner and admins cannot be removed by this user")
    cur.execute(SQL_DELETE_MEMBERS, (group_id, ids))
    cur.execute(SQL_DELETE_MEMBER_ENTRIES, (json.dumps([m.user_id for m in removed]), group.conv))
    if len(removed) >= group.member_count:
        return GroupChange(_bump(cur, group_id, now, -len(removed), dismissed=True), removed=removed)
    roles: tuple[GroupMember, ...] = ()
    owner = None
    if any(m.user_id == group.owner_id for m in removed):
        senior = GroupMember(*cur.execute(SQL_SENIOR_MEMBER, (group_id,)).fetchone())
        cur.execute(SQL_SET_ROLE, (int(GroupRole.OWNER), group_id, senior.user_id))
        owner = senior.user_id
        roles = (
            GroupMember(
                group_id, senior.user_id, int(GroupRole.OWNER), senior.joined_at, senior.joined_seq, senior.join_no
            ),
        )
    return GroupChange(_bump(cur, group_id, now, -len(removed), owner), removed=removed, roles=roles)


def _update_group_txn(
    cur: sqlite3.Cursor, group_id: int, actor_id: int, min_role: int, changes: dict, now: int
) -> GroupChange:
    _live_group(cur, group_id)
    _check_actor(cur, group_id, actor_id, min_role)
    values = [changes.get(k) for k in GROUP_UPDATABLE]
    cur.execute(SQL_UPDATE_GROUP, (*values, group_id))
    return GroupChange(_bump(cur, group_id, now))


def _set_roles_txn(
    cur: sqlite3.Cursor, group_id: int, actor_id: int, min_role: int, user_ids: list[int], role: int, now: int
) -> GroupChange:
    group = _live_group(cur, group_id)
    _check_actor(cur, group_id, actor_id, min_role)
    members = [GroupMember(*r) for r in cur.execute(SQL_MEMBERS_AMONG, (group_id, json.dumps(_unique(user_ids))))]
    changed = tuple(
        GroupMember(m.group_id, m.user_id, role, m.joined_at, m.joined_seq, m.join_no)
        for m in members
        if m.role != role and m.role != GroupRole.OWNER
    )
    if not changed:
        return GroupChange(group)
    cur.executemany(SQL_SET_ROLE, [(role, group_id, m.user_id) for m in changed])
    return GroupChange(_bump(cur, group_id, now), roles=changed)


def _dismiss_group_txn(cur: sqlite3.Cursor, group_id: int, actor_id: int, min_role: int, now: int) -> GroupChange:
    group = _live_group(cur, group_id)
    _check_actor(cur, group_id, actor_id, min_role)
    removed = tuple(GroupMember(*r) for r in cur.execute(SQL_GROUP_MEMBERS, (group_id,)).fetchall())
    ids = json.dumps([m.user_id for m in removed])
    cur.execute(SQL_DELETE_MEMBERS, (group_id, ids))
    cur.execute(SQL_DELETE_MEMBER_ENTRIES, (ids, group.conv))
    return GroupChange(_bump(cur, group_id, now, -len(removed), dismissed=True), removed=removed)


def _group_by_id(cur: sqlite3.Cursor, group_id: int) -> Group | None:
    row = cur.execute(SQL_GROUP_BY_ID, (group_id,)).fetchone()
    return None if row is None else _row_group(row)


def _groups_of(cur: sqlite3.Cursor, user_id: int) -> list[Group]:
    return [_row_group(r) for r in cur.execute(SQL_GROUPS_OF, (user_id,))]


def _group_members(cur: sqlite3.Cursor, group_id: int) -> list[GroupMember]:
    return [GroupMember(*r) for r in cur.execute(SQL_GROUP_MEMBERS, (group_id,))]


def _group_member(cur: sqlite3.Cursor, group_id: int, user_id: int) -> GroupMember | None:
    row = cur.execute(SQL_GROUP_MEMBER, (group_id, user_id)).fetchone()
    return None if row is None else GroupMember(*row)


def _group_read_count(cur: sqlite3.Cursor, group_id: int, seq: int, exclude: int) -> tuple[int, int]:
    members, read = cur.execute(SQL_GROUP_READ_COUNT, (seq, f"g:{group_id}", group_id, exclude, seq)).fetchone()
    return read, members


def _conversations_of(cur: sqlite3.Cursor, user_id: int, updated_since: int, limit: int) -> list[ConversationEntry]:
    return [_row_entry(r) for r in cur.execute(SQL_CONVERSATIONS_OF, (user_id, updated_since, limit))]


def _conversation_entry(cur: sqlite3.Cursor, user_id: int, conv: str) -> ConversationEntry | None:
    row = cur.execute(SQL_CONVERSATION_ENTRY, (user_id, conv)).fetchone()
    return None if row is None else _row_entry(row)


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


@implementer(IStore)
class SQLiteStore(ThreadedStore):
    """IStore on one SQLite file.

    Counters, so group commit can be observed: ``commits`` (write transactions, one per
    batch), ``ops_committed`` (the operations they carried), ``replays`` (batches re-run with
    savepoints because an operation failed) and ``checkpoints``."""

    def __init__(
        self,
        reactor: Any,
        path: str,
        group_commit_ms: float = 2,
        max_batch: int = 512,
        reader_threads: int = 4,
        synchronous: str = "full",
    ) -> None:
        if str(path) in ("", ":memory:") or str(path).startswith("file::memory:"):
            raise ValueError("SQLiteStore needs a database file (WAL is shared between threads)")
        synchronous = str(synchronous).lower()
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        if int(max_batch) < 1 or int(reader_threads) < 1 or float(group_commit_ms) < 0:
            raise ValueError("max_batch and reader_threads must be >= 1, group_commit_ms >= 0")
        self._reactor = reactor
        self.path = str(path)
        self._wal_path = self.path + "-wal"
        self.group_commit_ms = float(group_commit_ms)
        self.max_batch = int(max_batch)
        self.reader_threads = int(reader_threads)
        self.synchronous = synchronous
        self.schema_version = 0
        self.commits = 0
        self.ops_committed = 0
        self.replays = 0
        self.checkpoints = 0
        # conv -> last_seq as of the writer's open transaction, so an append need not read
        # it.  Writer thread only.  Emptied whenever a batch is rolled back (in whole or in
        # part), when another connection has committed (PRAGMA data_version), and when big.
        self._last_seqs: dict[str, int] = {}
        self._data_version = -1
        self._state = _NEW
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._put = self._queue.put
        self._writer: threading.Thread | None = None
        self._pool: ThreadPool | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_conns_lock = threading.Lock()
        self._reads_in_flight = 0
        self._reads_drained: defer.Deferred | None = None
        self._writer_done: defer.Deferred | None = None
        self._writer_alive = False
        self._stop_waiters: list[defer.Deferred] = []
        self._shutdown_trigger: Any = None

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    # ---- lifecycle ---------------------------------------------------------------------------

    def _connect(self, reader: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
        conn.execute("PRAGMA busy_timeout = 10000")
        if reader:
            conn.execute("PRAGMA query_only = ON")
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"could not switch {self.path} to WAL (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            conn.execute("PRAGMA cache_size = -32000")
            conn.execute("PRAGMA temp_store = MEMORY")
            # The writer checkpoints between batches (see _writer_loop), not in a COMMIT.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_CHECKPOINT_AT}")
        return conn

    def start(self) -> defer.Deferred:
        """Open the database in the writer thread, migrate, then start the readers."""
        if self._state != _NEW:
            return defer.fail(StoreClosed(f"{self!r} cannot be started twice"))
        self._state = _STARTING
        ready: defer.Deferred = defer.Deferred()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name=f"sqlite-writer:{self.path}", daemon=True
        )
        self._writer.start()

        def started(_: object) -> None:
            self._pool = ThreadPool(1, self.reader_threads, name=f"sqlite-readers:{self.path}")
            self._pool.start()
            self._state = _RUNNING
            # A safety net for stores used outside a service: "during" runs after the "before"
            # phase, where the node's service stops the core (which flushes, then stops us).
            self._shutdown_trigger = self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
            if self._stop_waiters:  # stop() was called while starting
                self._begin_stop()

        def failed(f: Failure) -> Failure:
            self._state = _STOPPED
            self._fire_stop_waiters()
            return f

        ready.addCallbacks(started, failed)
        return ready

    # ---- the writer thread -------------------------------------------------------------------

    def _writer_main(self, ready: defer.Deferred) -> None:
        call = self._reactor.callFromThread
        conn = None
        try:
            conn = self._connect(reader=False)
            self.schema_version = _migrate(conn)
        except BaseException:
            failure = Failure()
            if conn is not None:
                conn.close()
            call(ready.errback, failure)
            return
        self._writer_alive = True
        call(ready.callback, None)
        clean = False
        try:
            self._writer_loop(conn)
            clean = True
        finally:
            try:
                conn.close()  # the last connection: checkpoints and removes the WAL
            except sqlite3.Error:
                pass
            call(self._writer_exited, clean)

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        q = self._queue
        get = q.get
        get_nowait = q.get_nowait
        qsize = q.qsize
        window = self.group_commit_ms / 1000.0
        max_batch = self.max_batch
        sleep = time.sleep
        run_batch = self._run_batch
        wal_size = self._wal_size
        cur = conn.cursor()
        while True:
            idle = qsize() == 0
            op = get()
            if op is _STOP:
                return
            batch = [op]
            stopping = False
            # Group commit: when this op found the writer idle, give concurrent writers the
            # window to queue up behind it.  Ops that queued while the previous batch was
            # committing have waited a whole commit already, so a backlog goes at once.
            if idle and window:
                sleep(window)
            append = batch.append
            while len(batch) < max_batch:
                try:
                    op = get_nowait()
                except queue.Empty:
                    break
                if op is _STOP:
                    stopping = True
                    break
                append(op)
            run_batch(cur, batch)
            if wal_size() > _WAL_CHECKPOINT_AT:
                # Here rather than inside a COMMIT (autocheckpoint): the batch's Deferreds are
                # on their way already, so the copy delays no acknowledgement of it.  With no
                # write in between, a PASSIVE checkpoint catches up and the next transaction
                # restarts the WAL from its beginning (truncated to journal_size_limit).
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    pass
            if stopping:
                return

    def _wal_size(self) -> int:
        try:
            return os.stat(self._wal_path).st_size
        except OSError:
            return 0

    def _run_batch(self, cur: sqlite3.Cursor, batch: list) -> None:
        """One transaction for the batch, one callFromThread for all of its results.

        Savepoints are taken lazily: the batch first runs without them (a SAVEPOINT/RELEASE
        pair plus the sub-journal copies it causes cost about a quarter of an append).  If any
        operation raises, the whole transaction is rolled back and the batch replayed with one
        SAVEPOINT per operation, so a failing operation fails only its own Deferred."""
        execute = cur.execute
        last_seqs = self._last_seqs
        try:
            execute("BEGIN IMMEDIATE")
            version = execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version or len(last_seqs) > _LAST_SEQS_MAX:
                last_seqs.clear()  # someone else wrote (another process?): trust nothing cached
                self._data_version = version
            results = []
            record = results.append
            try:
                for fn, args, d in batch:
                    record((d, True, fn(cur, *args)))
            except Exception:
                execute("ROLLBACK")
                last_seqs.clear()
                self.replays += 1
                execute("BEGIN IMMEDIATE")
                results = self._run_guarded(cur, batch, last_seqs)
            execute("COMMIT")
        except Exception:
            # The transaction itself failed (disk full, I/O error...): nothing of the batch
            # is durable, so nothing of it may be acknowledged.
            failure = Failure()
            last_seqs.clear()
            try:
                if cur.connection.in_transaction:
                    execute("ROLLBACK")
            except sqlite3.Error:
                pass
            results = [(op[2], False, failure) for op in batch]
        else:
            self.commits += 1
            self.ops_committed += len(batch)
        self._reactor.callFromThread(self._fire, results)

    @staticmethod
    def _run_guarded(cur: sqlite3.Cursor, batch: list, last_seqs: dict[str, int]) -> list:
        """Run every operation of the batch under its own savepoint."""
        execute = cur.execute
        results = []
        record = results.append
        for fn, args, d in batch:
            execute(_SAVEPOINT)
            try:
                value = fn(cur, *args)
            except Exception:
                record((d, False, Failure()))
                execute(_ROLLBACK_TO)
                execute(_RELEASE)
                last_seqs.clear()  # the rolled back op may have cached a seq it gave back
            else:
                execute(_RELEASE)
                record((d, True, value))
        return results

    # ---- entry points ------------------------------------------------------------------------

    def run_write(self, description: str, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Queue ``fn(cursor, *args)`` for the writer; it runs inside the next batch's
        transaction and the Deferred fires after the COMMIT.  If it raises, only its own
        changes are undone and only its Deferred fails.  ``fn`` may run twice (when another
        operation of its batch raised, the batch is replayed), so it must have no effects
        outside the database and must not BEGIN/COMMIT/ROLLBACK itself."""
        if self._state != _RUNNING:
            return self._closed()
        d: defer.Deferred = defer.Deferred()
        self._put((fn, args, d))
        return d

    def _in_reader(self, fn: Callable[..., Any], args: tuple) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(reader=True)
            self._local.conn = conn
            with self._reader_conns_lock:
                self._reader_conns.append(conn)
        cur = conn.cursor()
        try:
            return fn(cur, *args)
        finally:
            cur.close()

    # ---- IUserStore --------------------------------------------------------------------------

    def create_user(self, name: str, nick_name: str, password_hash: str, created_at: int) -> defer.Deferred:
        return self.run_write("create_user", _create_user_txn, name, nick_name, password_hash, created_at)

    def user_by_name(self, name: str) -> defer.Deferred:
        return self.run_read("user_by_name", _one_user, SQL_USER_BY_NAME, name.casefold())

    def user_by_id(self, user_id: int) -> defer.Deferred:
        return self.run_read("user_by_id", _one_user, SQL_USER_BY_ID, user_id)

    def users_by_ids(self, user_ids: list[int]) -> defer.Deferred:
        ids = sorted({int(i) for i in user_ids})
        if not ids:
            return defer.succeed([]) if self._state == _RUNNING else self._closed()
        return self.run_read("users_by_ids", _users_by_ids, json.dumps(ids))

    def list_users(self, after_id: int, limit: int) -> defer.Deferred:
        return self.run_read("list_users", _list_users, after_id, limit)

    def update_user(
        self, user_id: int, nick_name: str | None = None, password_hash: str | None = None, disabled: bool | None = None
    ) -> defer.Deferred:
        return self.run_write("update_user", _update_user_txn, user_id, nick_name, password_hash, disabled)

    def add_token(self, token_hash: str, user_id: int, created_at: int, expires_at: int, label: str) -> defer.Deferred:
        return self.run_write("add_token", _add_token_txn, token_hash, user_id, created_at, expires_at, label)

    def users_by_tokens(self, token_hashes: list[str], now: int) -> defer.Deferred:
        return self.run_read("users_by_tokens", _users_by_tokens, json.dumps(list(token_hashes)), now)

    def revoke_token(self, token_hash: str) -> defer.Deferred:
        return self.run_write("revoke_token", _revoke_token_txn, token_hash)

    def revoke_user_tokens(self, user_id: int) -> defer.Deferred:
        return self.run_write("revoke_user_tokens", _revoke_user_tokens_txn, user_id)

    def purge_tokens(self, now: int, limit: int) -> defer.Deferred:
        return self.run_write("purge_tokens", _purge_tokens_txn, now, limit)

    # ---- IMessageStore -----------------------------------------------------------------------

    def append(self, message: Any) -> defer.Deferred:
        # run_write inlined: this is the hottest call of the server.
        if self._state != _RUNNING:
            return self._closed()
        d: defer.Deferred = defer.Deferred()
        self._put((_append_txn, (message, self._last_seqs), d))
        if message.session_type != _SINGLE:
            d.addCallback(_refusal)
        return d

    def history(self, conv: str, before_seq: int, limit: int, min_seq: int = 1) -> defer.Deferred:
        if limit <= 0:
            return defer.succeed([]) if self._state == _RUNNING else self._closed()
        upper = before_seq if before_seq > 0 else _NO_UPPER
        return self.run_read("history", _history, conv, upper, limit, min_seq)

    def messages_by_seq(self, conv: str, seqs: list[int]) -> defer.Deferred:
        wanted = sorted({int(s) for s in seqs})
        if not wanted:
            return defer.succeed([]) if self._state == _RUNNING else self._closed()
        return self.run_read("messages_by_seq", _messages_by_seq, conv, json.dumps(wanted))

    def latest_seq(self, conv: str) -> defer.Deferred:
        return self.run_read("latest_seq", _scalar, SQL_LAST_SEQ, (conv,))

    def mark_read(self, user_id: int, conv: str, seq: int) -> defer.Deferred:
        return self.run_write("mark_read", _mark_read_txn, user_id, conv, seq)

    def mark_delivered(self, receipts: list[tuple[int, str, int]]) -> defer.Deferred:
        receipts = list(receipts)
        if not receipts:
            return defer.succeed(None) if self._state == _RUNNING else self._closed()
        return self.run_write("mark_delivered", _mark_delivered_txn, receipts)

    def delivered_seq(self, user_id: int, conv: str) -> defer.Deferred:
        return self.run_read("delivered_seq", _scalar, SQL_DELIVERED_SEQ, (user_id, conv))

    def conversations_of(self, user_id: int, updated_since: int, limit: int) -> defer.Deferred:
        return self.run_read("conversations_of", _conversations_of, user_id, updated_since, limit)

    def conversation_entry(self, user_id: int, conv: str) -> defer.Deferred:
        return self.run_read("conversation_entry", _conversation_entry, user_id, conv)

    # ---- IGroupStore -------------------------------------------------------------------------

    def create_group(
        self,
        owner_id: int,
        name: str,
        group_type: int,
        member_ids: list[int],
        created_at: int,
        max_members: int,
        max_groups_per_user: int,
    ) -> defer.Deferred:
        return self.run_write(
            "create_group",
            _create_group_txn,
            owner_id,
            name,
            int(group_type),
            [int(i) for i in member_ids],
            created_at,
            max_members,
            max_groups_per_user,
        )

    def group_by_id(self, group_id: int) -> defer.Deferred:
        return self.run_read("group_by_id", _group_by_id, group_id)

    def groups_of(self, user_id: int) -> defer.Deferred:
        return self.run_read("groups_of", _groups_of, user_id)

    def group_members(self, group_id: int) -> defer.Deferred:
        return self.run_read("group_members", _group_members, group_id)

    def group_member(self, group_id: int, user_id: int) -> defer.Deferred:
        return self.run_read("group_member", _group_member, group_id, user_id)

    def add_members(
        self,
        group_id: int,
        actor_id: int,
        min_role: int,
        user_ids: list[int],
        now: int,
        max_members: int,
        max_groups_per_user: int,
    ) -> defer.Deferred:
        return self.run_write(
            "add_members",
            _add_members_txn,
            group_id,
            actor_id,
            int(min_role),
            [int(i) for i in user_ids],
            now,
            max_members,
            max_groups_per_user,
        )

    def remove_members(
        self, group_id: int, actor_id: int, min_role: int, user_ids: list[int], now: int, protect_role: int = 0
    ) -> defer.Deferred:
        return self.run_write(
            "remove_members",
            _remove_members_txn,
            group_id,
            actor_id,
            int(min_role),
            [int(i) for i in user_ids],
            now,
            int(protect_role),
        )

    def update_group(self, group_id: int, actor_id: int, min_role: int, changes: dict, now: int) -> defer.Deferred:
        unknown = set(changes) - set(GROUP_UPDATABLE)
        if unknown:
            return defer.fail(ValueError(f"not updatable: {sorted(unknown)}"))
        return self.run_write("update_group", _update_group_txn, group_id, actor_id, int(min_role), dict(changes), now)

    def set_member_roles(
        self, group_id: int, actor_id: int, min_role: int, user_ids: list[int], role: int, now: int
    ) -> defer.Deferred:
        return self.run_write(
            "set_member_roles",
            _set_roles_txn,
            group_id,
            actor_id,
            int(min_role),
            [int(i) for i in user_ids],
            int(role),
            now,
        )

    def dismiss_group(self, group_id: int, actor_id: int, min_role: int, now: int) -> defer.Deferred:
        return self.run_write("dismiss_group", _dismiss_group_txn, group_id, actor_id, int(min_role), now)

    def group_read_count(self, group_id: int, seq: int, exclude_user_id: int) -> defer.Deferred:
        return self.run_read("group_read_count", _group_read_count, group_id, seq, exclude_user_id)


def create_store(reactor: Any, options: dict) -> SQLiteStore:
    """The ``coffeechat.storage`` entry point: build an (unstarted) store from config options."""
    if "path" not in options:
        raise ValueError("the sqlite store needs a 'path' option")
    return SQLiteStore(
        reactor,
        path=options["path"],
        group_commit_ms=float(options.get("group_commit_ms", 2)),
        max_batch=int(options.get("max_batch", 512)),
        reader_threads=int(options.get("reader_threads", 4)),
        synchronous=str(options.get("synchronous", "full")),
    )
