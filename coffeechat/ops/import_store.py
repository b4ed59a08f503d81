"""The storage an importer writes through: accounts, groups, messages and conversation entries
with the ids and seqs they had on the server they come from, and a checkpoint per phase.

An import is the one writer that must choose ids (clients keep the user and group ids and the
server_msg_ids they cached), which ``IStore`` never lets a caller do; so this facet, written once
for every SQL engine (its tables: import_store.sql), inserts them as given, moves the id
sequences past them, and keeps ``conversations.last_seq`` at the highest seq stored, so that the
next message appended gets max + 1.  Every batch is one transaction that also records how far
its phase got and what it could not map: a run stopped anywhere resumes after the last batch
committed, and a batch written twice writes nothing the second time.

It writes ``conversations.last_seq``, which otherwise only appends write (the SQLite writer
caches it): an import runs with the server stopped (``coffeechat import`` refuses nothing, but
docs/import-v1.md says so), in a process that appends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.auth import name_key
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Group, Message, SessionType, User

__all__ = ["IImportStore", "ImportedGroup", "Imported", "Problem", "SQLImportStore"]

COMPONENT = "import"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something of the source that was not brought over (or not as it was): ``kind`` says what
    (``bad_user_name``, ``unknown_user``, ...), ``ref`` which row of the source."""

    kind: str
    ref: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Imported:
    """What a batch did: rows written now, rows found written already, rows refused."""

    new: int = 0
    existing: int = 0
    refused: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportedGroup:
    """A group as it is to be stored, with its members ``(user_id, role, joined_at)`` by
    seniority (the owner among them with role OWNER)."""

    group: Group
    members: tuple[tuple[int, int, int], ...] = ()


class IImportStore(Interface):
    """Bulk writes with source ids, each batch with its checkpoint (``source``: which import,
    ``phase``: which pass over the source, ``position``: the source key the batch ends at)."""

    def progress(source: str):
        """Fire with ``{phase: position}`` of what the import from ``source`` committed."""

    def reset(source: str):
        """Forget the progress and problems of ``source`` (a new run from the start)."""

    def record(source: str, phase: str, position: int, problems: list):
        """Move ``phase`` to ``position`` and record ``problems`` (a batch that wrote nothing)."""

    def import_users(source: str, phase: str, position: int, users: list, problems: list):
        """Insert :class:`~coffeechat.model.User` s with their ids (name keys computed here);
        a user whose id holds the same name already is ``existing`` and left as it is (its
        password may have been re-hashed since); an id or name taken by another account is
        refused (``user_id_taken``, ``user_name_taken``).  Later accounts get higher ids."""

    def import_groups(source: str, phase: str, position: int, groups: list, problems: list):
        """Insert :class:`ImportedGroup` s with their ids, members and members' conversation
        entries; a group whose id exists is ``existing`` and left alone.  Later groups get
        higher ids."""

    def import_messages(source: str, phase: str, position: int, messages: list, problems: list):
        """Insert :class:`~coffeechat.model.Message` s with their seqs; conversations' last
        seq and time move up to them; 1:1 participants get entries, and every entry's read
        position moves up to the highest seq imported (the source's unread counts are not
        known).  A message whose (conv, seq) holds one of the same sender is ``existing``;
        another sender's there is refused (``seq_taken``); a second message of one sender with
        one client_msg_id (a resend the source stored twice) is stored under
        ``<client_msg_id>#<seq>`` and recorded (``duplicate_client_msg_id``)."""

    def import_entries(source: str, phase: str, position: int, entries: list, problems: list):
        """For each ``(user_id, peer_id, session_type, removed)``: a 1:1 conversation entry if
        the user has none (read up to the conversation's last seq; a group member's was made
        with the group); ``removed``: the user had taken it off their list, so it is left out
        of it until a newer message (the ``deletes`` feature's ``conversation_deletes``, which
        must exist then)."""

    def problems(source: str):
        """Fire with every :class:`Problem` recorded for ``source``, by kind and ref."""

    def live_group_ids(group_ids: list):
        """Fire with the set of those ids that are groups, not dismissed."""


SQL_PROGRESS = "SELECT phase, position FROM import_progress WHERE source = ?"
SQL_SET_PROGRESS = (
    "INSERT INTO import_progress (source, phase, position) VALUES (?, ?, ?) "
    "ON CONFLICT (source, phase) DO UPDATE SET position = excluded.position"
)
SQL_ADD_PROBLEM = (
    "INSERT INTO import_problems (source, kind, ref, detail) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (source, kind, ref) DO UPDATE SET detail = excluded.detail"
)
SQL_PROBLEMS = "SELECT kind, ref, detail FROM import_problems WHERE source = ? ORDER BY kind, ref"
SQL_INSERT_USER = (
    "INSERT INTO users (user_id, name, name_key, nick_name, password_hash, disabled, created_at) "
    "VALUES (?, ?, ?, ?, ?, FALSE, ?) ON CONFLICT DO NOTHING RETURNING user_id"
)
SQL_USER_KEY = "SELECT name_key FROM users WHERE user_id = ?"
SQL_INSERT_GROUP = (
    "INSERT INTO chat_groups (group_id, name, group_type, owner_id, created_at, updated_at, version, join_model, "
    "be_invite_model, mute_model, intro, announcement, avatar, member_count, dismissed, join_counter, at_all_seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING RETURNING group_id"
)
SQL_GROUP_CONVERSATION = (
    "INSERT INTO conversations (conv, session_type, last_seq, updated_at) VALUES (?, 2, 0, ?) "
    "ON CONFLICT (conv) DO NOTHING"
)
SQL_LAST_SEQ = "SELECT last_seq FROM conversations WHERE conv = ?"
SQL_INSERT_MEMBER = (
    "INSERT INTO group_members (group_id, user_id, role, joined_at, joined_seq, join_no) VALUES (?, ?, ?, ?, 1, ?) "
    "ON CONFLICT DO NOTHING"
)
SQL_MEMBER_ENTRY = (
    "INSERT INTO user_conversations (user_id, conv, session_type, session_id, read_seq, delivered_seq, mention_seq) "
    "VALUES (?, ?, 2, ?, ?, ?, 0) ON CONFLICT (user_id, conv) DO NOTHING"
)
SQL_INSERT_MESSAGE = (
    "INSERT INTO messages (conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at, "
    "client_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq"
)
SQL_SENDER_AT = "SELECT sender_id, client_msg_id FROM messages WHERE conv = ? AND seq = ?"
SQL_RAISE_CONVERSATION = (
    "INSERT INTO conversations AS c (conv, session_type, last_seq, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (conv) DO UPDATE SET last_seq = GREATEST(c.last_seq, excluded.last_seq), "
    "updated_at = GREATEST(c.updated_at, excluded.updated_at)"
)
SQL_PAIR_ENTRY = (
    "INSERT INTO user_conversations AS uc (user_id, conv, session_type, session_id, read_seq, delivered_seq) "
    "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (user_id, conv) DO UPDATE SET "
    "read_seq = GREATEST(uc.read_seq, excluded.read_seq), "
    "delivered_seq = GREATEST(uc.delivered_seq, excluded.delivered_seq)"
)
SQL_GROUP_ENTRIES_READ = (
    "UPDATE user_conversations SET read_seq = GREATEST(read_seq, ?), delivered_seq = GREATEST(delivered_seq, ?) "
    "WHERE conv = ?"
)
SQL_NEW_PAIR_ENTRY = (
    "INSERT INTO user_conversations (user_id, conv, session_type, session_id, read_seq, delivered_seq) "
    "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (user_id, conv) DO NOTHING RETURNING user_id"
)
# A conversation the user had removed from their list there: removed here too (the deletes
# feature's table: the list leaves it out until a newer message), once, and only for an entry.
SQL_REMOVED_ENTRY = (
    "INSERT INTO conversation_deletes (user_id, conv, cleared_seq, removed_seq) "
    "SELECT ?, ?, 0, coalesce((SELECT last_seq FROM conversations WHERE conv = ?), 0) "
    "WHERE EXISTS (SELECT 1 FROM user_conversations WHERE user_id = ? AND conv = ?) "
    "ON CONFLICT (user_id, conv) DO NOTHING"
)
SQL_LIVE_GROUPS = "SELECT group_id FROM chat_groups WHERE NOT dismissed AND {}"
# PostgreSQL's identity sequences do not follow explicit ids (SQLite's AUTOINCREMENT does): move
# them past the highest id, never back.
SQL_PG_SEQUENCE_PAST = (
    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST("
    "(SELECT coalesce(max({column}), 1) FROM {table}), "
    "(SELECT coalesce(max(last_value), 1) FROM pg_sequences "
    "WHERE schemaname || '.' || sequencename = pg_get_serial_sequence('{table}', '{column}'))))"
)

_SINGLE = int(SessionType.SINGLE)


def _checkpoint(txn: ISQLTransaction, source: str, phase: str, position: int, problems: Iterable[Problem]) -> None:
    txn.executemany(SQL_ADD_PROBLEM, [(source, p.kind, p.ref, p.detail) for p in problems])
    txn.execute(SQL_SET_PROGRESS, (source, phase, int(position)))


def _sequence_past(txn: ISQLTransaction, table: str, column: str) -> None:
    if txn.engine == "postgres":
        txn.execute(SQL_PG_SEQUENCE_PAST.format(table=table, column=column)).fetchall()


def _progress_txn(txn: ISQLTransaction, source: str) -> dict[str, int]:
    return {phase: position for phase, position in txn.execute(SQL_PROGRESS, (source,))}


def _reset_txn(txn: ISQLTransaction, source: str) -> None:
    txn.execute("DELETE FROM import_progress WHERE source = ?", (source,))
    txn.execute("DELETE FROM import_problems WHERE source = ?", (source,))


def _record_txn(txn: ISQLTransaction, source: str, phase: str, position: int, problems: list[Problem]) -> None:
    _checkpoint(txn, source, phase, position, problems)


def _users_txn(
    txn: ISQLTransaction, source: str, phase: str, position: int, users: list[User], problems: list[Problem]
) -> Imported:
    new = existing = 0
    refused = []
    for u in users:
        key = name_key(u.name)
        row = txn.execute(
            SQL_INSERT_USER, (u.user_id, u.name, key, u.nick_name, u.password_hash, u.created_at)
        ).fetchone()
        if row is not None:
            new += 1
            continue
        holder = txn.execute(SQL_USER_KEY, (u.user_id,)).fetchone()
        if holder is not None and holder[0] == key:
            existing += 1
        elif holder is not None:
            refused.append(Problem("user_id_taken", str(u.user_id), f"{u.name!r}: id {u.user_id} is another account"))
        else:
            refused.append(Problem("user_name_taken", str(u.user_id), f"{u.name!r}: the name is another account's"))
    if new:
        _sequence_past(txn, "users", "user_id")
    _checkpoint(txn, source, phase, position, [*problems, *refused])
    return Imported(new, existing, tuple(refused))


def _groups_txn(
    txn: ISQLTransaction, source: str, phase: str, position: int, groups: list[ImportedGroup], problems: list[Problem]
) -> Imported:
    new = existing = 0
    for item in groups:
        g = item.group
        row = txn.execute(
            SQL_INSERT_GROUP,
            (
                g.group_id,
                g.name,
                g.group_type,
                g.owner_id,
                g.created_at,
                g.updated_at,
                max(1, g.version),
                g.join_model,
                g.be_invite_model,
                g.mute_model,
                g.intro,
                g.announcement,
                g.avatar,
                0 if g.dismissed else len(item.members),
                bool(g.dismissed),
                0 if g.dismissed else len(item.members),
            ),
        ).fetchone()
        if row is None:
            existing += 1
            continue
        new += 1
        if g.dismissed:
            continue
        conv = g.conv
        txn.execute(SQL_GROUP_CONVERSATION, (conv, g.updated_at))
        last = txn.execute(SQL_LAST_SEQ, (conv,)).fetchone()[0]
        txn.executemany(
            SQL_INSERT_MEMBER,
            [(g.group_id, uid, role, joined_at, n) for n, (uid, role, joined_at) in enumerate(item.members, 1)],
        )
        txn.executemany(SQL_MEMBER_ENTRY, [(uid, conv, g.group_id, last, last) for uid, _, _ in item.members])
    if new:
        _sequence_past(txn, "chat_groups", "group_id")
    _checkpoint(txn, source, phase, position, problems)
    return Imported(new, existing)


def _renamed(m: Message) -> str:
    """The client_msg_id a resend stored twice by the source is kept under (the seq makes it unique)."""
    return f"{m.client_msg_id}#{m.seq}"


def _resend(m: Message) -> Problem:
    return Problem(
        "duplicate_client_msg_id",
        f"{m.conv}#{m.seq}",
        f"user {m.sender_id} sent client_msg_id {m.client_msg_id!r} before (a resend the original stored twice): "
        f"kept as {_renamed(m)!r}",
    )


def _messages_txn(
    txn: ISQLTransaction, source: str, phase: str, position: int, messages: list[Message], problems: list[Problem]
) -> Imported:
    new = existing = 0
    refused, renamed = [], []
    convs: dict[str, list] = {}  # conv -> [session_type, highest seq, latest time, sender, to]
    for m in messages:
        row = txn.execute(
            SQL_INSERT_MESSAGE,
            (m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.client_msg_id, m.msg_type, m.data,
             m.created_at, m.client_type),
        ).fetchone()  # fmt: skip
        if row is None:
            at = txn.execute(SQL_SENDER_AT, (m.conv, m.seq)).fetchone()
            if at is not None and at[0] == m.sender_id:
                existing += 1
                if at[1] == _renamed(m):  # stored by an earlier run as a resend: say so again
                    renamed.append(_resend(m))
                continue
            if at is not None:
                refused.append(Problem("seq_taken", f"{m.conv}#{m.seq}", f"another sender's message has seq {m.seq}"))
                continue
            # A resend the source stored twice (its clients showed it twice, and may hold its
            # server_msg_id): kept at its seq, under a client_msg_id of its own.
            again = (m.conv, m.seq, m.session_type, m.sender_id, m.to_id, _renamed(m), m.msg_type, m.data,
                     m.created_at, m.client_type)  # fmt: skip
            if txn.execute(SQL_INSERT_MESSAGE, again).fetchone() is None:
                refused.append(Problem("seq_taken", f"{m.conv}#{m.seq}", f"client_msg_id {_renamed(m)!r} is taken too"))
                continue
            new += 1
            renamed.append(_resend(m))
        else:
            new += 1
        state = convs.get(m.conv)
        if state is None:
            convs[m.conv] = [m.session_type, m.seq, m.created_at, m.sender_id, m.to_id]
        else:
            state[1] = max(state[1], m.seq)
            state[2] = max(state[2], m.created_at)
    for conv, (st, last, when, sender, to) in sorted(convs.items()):
        txn.execute(SQL_RAISE_CONVERSATION, (conv, st, last, when))
        last = txn.execute(SQL_LAST_SEQ, (conv,)).fetchone()[0]
        if st == _SINGLE:
            pairs = {(sender, to), (to, sender)}
            txn.executemany(SQL_PAIR_ENTRY, [(user, conv, peer, last, last) for user, peer in sorted(pairs)])
        else:
            txn.execute(SQL_GROUP_ENTRIES_READ, (last, last, conv))
    _checkpoint(txn, source, phase, position, [*problems, *refused, *renamed])
    return Imported(new, existing, tuple(refused))


def _entries_txn(
    txn: ISQLTransaction,
    source: str,
    phase: str,
    position: int,
    entries: list[tuple[int, int, int, bool]],
    problems: list[Problem],
) -> Imported:
    new = existing = 0
    for user_id, peer_id, session_type, removed in entries:
        if session_type == _SINGLE:
            low, high = sorted((user_id, peer_id))
            conv = f"p:{low}:{high}"
            row = txn.execute(SQL_LAST_SEQ, (conv,)).fetchone()
            last = 0 if row is None else row[0]
            if txn.execute(SQL_NEW_PAIR_ENTRY, (user_id, conv, peer_id, last, last)).fetchone() is None:
                existing += 1
            else:
                new += 1
        else:
            conv = f"g:{peer_id}"
            existing += 1  # a member's entry: written with the group
        if removed:
            txn.execute(SQL_REMOVED_ENTRY, (user_id, conv, conv, user_id, conv))
    _checkpoint(txn, source, phase, position, problems)
    return Imported(new, existing)


def _problems_txn(txn: ISQLTransaction, source: str) -> list[Problem]:
    return [Problem(*r) for r in txn.execute(SQL_PROBLEMS, (source,))]


def _live_groups_txn(txn: ISQLTransaction, group_ids: list[int]) -> set[int]:
    clause, params = txn.in_list("group_id", group_ids)
    return {r[0] for r in txn.execute(SQL_LIVE_GROUPS.format(clause), params)}


@implementer(IImportStore)
class SQLImportStore:
    """IImportStore written once for every SQL backend (its tables: import_store.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def progress(self, source: str) -> defer.Deferred:
        return self.db.run_read("import_progress", _progress_txn, source)

    def reset(self, source: str) -> defer.Deferred:
        return self.db.run_write("import_reset", _reset_txn, source)

    def record(self, source: str, phase: str, position: int, problems: list[Problem]) -> defer.Deferred:
        return self.db.run_write("import_record", _record_txn, source, phase, position, list(problems))

    def import_users(
        self, source: str, phase: str, position: int, users: list[User], problems: list[Problem]
    ) -> defer.Deferred:
        return self.db.run_write("import_users", _users_txn, source, phase, position, list(users), list(problems))

    def import_groups(
        self, source: str, phase: str, position: int, groups: list[ImportedGroup], problems: list[Problem]
    ) -> defer.Deferred:
        return self.db.run_write("import_groups", _groups_txn, source, phase, position, list(groups), list(problems))

    def import_messages(
        self, source: str, phase: str, position: int, messages: list[Message], problems: list[Problem]
    ) -> defer.Deferred:
        return self.db.run_write(
            "import_messages", _messages_txn, source, phase, position, list(messages), list(problems)
        )

    def import_entries(
        self,
        source: str,
        phase: str,
        position: int,
        entries: list[tuple[int, int, int, bool]],
        problems: list[Problem],
    ) -> defer.Deferred:
        return self.db.run_write("import_entries", _entries_txn, source, phase, position, list(entries), list(problems))

    def problems(self, source: str) -> defer.Deferred:
        return self.db.run_read("import_problems", _problems_txn, source)

    def live_group_ids(self, group_ids: list[int]) -> defer.Deferred:
        ids = sorted({int(i) for i in group_ids})
        if not ids:
            return defer.succeed(set())
        return self.db.run_read("import_live_groups", _live_groups_txn, ids)


def open_import_store(db: Any) -> defer.Deferred:
    """The facet on an SQL store, its tables brought up to date first."""
    from coffeechat.sql import load_migrations

    d = defer.maybeDeferred(db.migrate, COMPONENT, load_migrations(SQLImportStore.migrations))
    return d.addCallback(lambda _: SQLImportStore(db))
