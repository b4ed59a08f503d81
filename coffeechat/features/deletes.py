"""Deletes: delete messages, clear a conversation's history, remove a conversation from the
list, each for oneself only.

What a user deletes vanishes from their own history (LIST_MSG, MSG_GET_BY_MSG_ID), from their
conversation list's preview and from their unread count, on every device of theirs; the other
participants see nothing of it.  Nothing is taken out of the messages table: the feature keeps,
per (user, conversation), a cleared-up-to seq and the set of seqs deleted one by one above it
(bounded: ``[deletes] max_per_conversation``; a run of deletes starting right above the cleared
seq is folded into it), and applies them when the user reads, through a history view and a
session view.  So a device that was offline sees the change on its next fetch, and the user's
online devices are told at once (MSG_DELETE_NOTIFY, across nodes).

Removing a conversation from the list keeps its history: the list leaves it out until a message
after the one that was its latest at removal arrives.  Read positions never move: clearing or
deleting unread messages takes them out of the unread count (``ConversationEntry.hidden_unread``)
without telling anyone that they were read (docs/deletes.md, docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import Located
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import ConversationEntry, Message, Push, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

ACTION_MESSAGES = pb.kCIM_DELETE_ACTION_MESSAGES
ACTION_CLEAR = pb.kCIM_DELETE_ACTION_CLEAR
ACTION_REMOVE = pb.kCIM_DELETE_ACTION_REMOVE
SESSION_VIEW_PRIORITY = 30  # hiding comes before marking (dnd, 20) and ordering (pins, 10)
MAX_REQUEST = 1000  # the highest max_per_request a config may set


@dataclass
class Config:
    """[deletes]: how many messages one request may delete, and how many deleted one by one a
    conversation keeps per user (beyond that, the user clears the history instead)."""

    max_per_request: int = 100
    max_per_conversation: int = 1000

    def validate(self) -> None:
        if not 1 <= self.max_per_request <= MAX_REQUEST:
            raise ConfigError(f"deletes.max_per_request must be between 1 and {MAX_REQUEST}")
        if self.max_per_conversation < self.max_per_request:
            raise ConfigError("deletes.max_per_conversation must be at least deletes.max_per_request")


# -- storage


class DeleteRefused(Exception):
    """A delete the store refused inside its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class DeleteState:
    """What one user hid of one conversation: every seq up to ``cleared``, the seqs in
    ``deleted`` (all above ``cleared``), and, when ``removed`` >= the conversation's last seq, the
    conversation itself from the list (-1: never removed)."""

    cleared: int = 0
    removed: int = -1
    deleted: frozenset[int] = frozenset()

    def hides(self, seq: int) -> bool:
        return seq <= self.cleared or seq in self.deleted


class IDeleteStore(Interface):
    """The deletes feature's storage (a facet: an SQL backend gets :class:`SQLDeleteStore`;
    tested by ``coffeechat.testing.conformance_deletes.DeleteStoreConformanceTests``).  Every
    write is for one user and touches no one else's state."""

    def delete(user_id: int, conv: str, seqs: list[int], first_seq: int, max_kept: int):
        """Delete ``seqs`` of ``conv`` for ``user_id``; fire with ``(new, cleared)``: the seqs not
        deleted before, ascending, and the cleared-up-to seq after the call.  Seqs below
        ``first_seq`` (what the user may see) or already hidden are ignored.  When the deleted
        seqs run contiguously from above ``max(cleared, first_seq - 1)``, the run is folded into
        the cleared seq.  Fails with :class:`DeleteRefused` NOT_FOUND for a seq beyond the
        conversation's last one, TOO_MANY_DELETES when more than ``max_kept`` deleted seqs would
        remain above the cleared seq (nothing is changed then)."""

    def clear(user_id: int, conv: str):
        """Hide everything of ``conv`` up to its last seq for ``user_id``; fire with ``(up_to,
        moved)`` (``moved`` False when it was cleared that far already).  Fails with
        :class:`DeleteRefused` NOT_FOUND when the user has no entry for ``conv``."""

    def remove(user_id: int, conv: str):
        """Take ``conv`` out of ``user_id``'s list until a message after its current last seq;
        fire with ``(removed_at, moved)``.  NOT_FOUND as :meth:`clear`."""

    def state(user_id: int, conv: str, low: int, high: int):
        """Fire with the user's :class:`DeleteState` of ``conv``, its ``deleted`` limited to
        ``low <= seq <= high``, or None when they never deleted anything there."""

    def states_of(user_id: int, convs: list[str]):
        """Fire with ``{conv: DeleteState}`` for those of ``convs`` where ``user_id`` deleted,
        cleared or removed anything; ``deleted`` holds the seqs above their read position and the
        conversation's last seq (if deleted): what the conversation list needs."""

    def latest_visible(user_id: int, wanted: list[tuple[str, int, int]]):
        """For each ``(conv, floor, below)``: the newest message of ``conv`` with ``floor < seq <
        below`` that ``user_id`` did not delete and may see (a group: from their join); fire with
        ``{conv: Message or None}``."""

    def forget_user(user_id: int):
        """Erase everything ``user_id`` hid, cleared or removed (a deleted account); fires with None."""


def _state_row(txn: ISQLTransaction, user_id: int, conv: str) -> tuple[int, int] | None:
    row = txn.execute(
        "SELECT cleared_seq, removed_seq FROM conversation_deletes WHERE user_id = ? AND conv = ?", (user_id, conv)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def _delete_txn(
    txn: ISQLTransaction, user_id: int, conv: str, seqs: list[int], first_seq: int, max_kept: int
) -> tuple[list[int], int]:
    row = txn.execute("SELECT last_seq FROM conversations WHERE conv = ?", (conv,)).fetchone()
    last = 0 if row is None else row[0]
    beyond = [s for s in seqs if s > last]
    if beyond:
        raise DeleteRefused(ErrorCode.NOT_FOUND, f"no message {beyond[0]} in this conversation")
    state = _state_row(txn, user_id, conv)
    cleared = 0 if state is None else state[0]
    wanted = sorted({s for s in seqs if s > cleared and s >= first_seq})
    if not wanted:
        return [], cleared
    clause, params = txn.in_list("seq", wanted)
    have = {
        r[0]
        for r in txn.execute(
            f"SELECT seq FROM message_deletes WHERE user_id = ? AND conv = ? AND {clause}", (user_id, conv, *params)
        ).fetchall()
    }
    new = [s for s in wanted if s not in have]
    if not new:
        return [], cleared
    if state is None:
        txn.execute(
            "INSERT INTO conversation_deletes (user_id, conv, cleared_seq, removed_seq) VALUES (?, ?, 0, -1)",
            (user_id, conv),
        )
    txn.executemany(
        "INSERT INTO message_deletes (user_id, conv, seq) VALUES (?, ?, ?)", [(user_id, conv, s) for s in new]
    )
    # Fold the run right above the cleared seq (what the user may see starts at first_seq).
    floor = start = max(cleared, first_seq - 1)
    for (seq,) in txn.execute(
        "SELECT seq FROM message_deletes WHERE user_id = ? AND conv = ? AND seq > ? ORDER BY seq",
        (user_id, conv, floor),
    ).fetchall():
        if seq != floor + 1:
            break
        floor = seq
    if floor > start:
        cleared = floor
        txn.execute(
            "UPDATE conversation_deletes SET cleared_seq = ? WHERE user_id = ? AND conv = ?", (cleared, user_id, conv)
        )
        txn.execute("DELETE FROM message_deletes WHERE user_id = ? AND conv = ? AND seq <= ?", (user_id, conv, cleared))
    kept = txn.execute(
        "SELECT count(*) FROM message_deletes WHERE user_id = ? AND conv = ?", (user_id, conv)
    ).fetchone()[0]
    if kept > max_kept:
        raise DeleteRefused(
            ErrorCode.TOO_MANY_DELETES,
            f"at most {max_kept} messages of a conversation are deleted one by one: clear its history instead",
        )
    return new, cleared


def _entry_last_seq(txn: ISQLTransaction, user_id: int, conv: str) -> int:
    row = txn.execute(
        "SELECT coalesce(c.last_seq, 0) FROM user_conversations AS uc LEFT JOIN conversations AS c ON c.conv = uc.conv "
        "WHERE uc.user_id = ? AND uc.conv = ?",
        (user_id, conv),
    ).fetchone()
    if row is None:
        raise DeleteRefused(ErrorCode.NOT_FOUND, "no such conversation")
    return row[0]


def _clear_txn(txn: ISQLTransaction, user_id: int, conv: str) -> tuple[int, bool]:
    last = _entry_last_seq(txn, user_id, conv)
    state = _state_row(txn, user_id, conv)
    if state is not None and state[0] >= last:
        return state[0], False
    if state is None:
        txn.execute(
            "INSERT INTO conversation_deletes (user_id, conv, cleared_seq, removed_seq) VALUES (?, ?, ?, -1)",
            (user_id, conv, last),
        )
    else:
        txn.execute(
            "UPDATE conversation_deletes SET cleared_seq = ? WHERE user_id = ? AND conv = ?", (last, user_id, conv)
        )
    txn.execute("DELETE FROM message_deletes WHERE user_id = ? AND conv = ? AND seq <= ?", (user_id, conv, last))
    return last, True


def _remove_txn(txn: ISQLTransaction, user_id: int, conv: str) -> tuple[int, bool]:
    last = _entry_last_seq(txn, user_id, conv)
    state = _state_row(txn, user_id, conv)
    if state is not None and state[1] >= last:
        return state[1], False
    if state is None:
        txn.execute(
            "INSERT INTO conversation_deletes (user_id, conv, cleared_seq, removed_seq) VALUES (?, ?, 0, ?)",
            (user_id, conv, last),
        )
    else:
        txn.execute(
            "UPDATE conversation_deletes SET removed_seq = ? WHERE user_id = ? AND conv = ?", (last, user_id, conv)
        )
    return last, True


def _state_txn(txn: ISQLTransaction, user_id: int, conv: str, low: int, high: int) -> DeleteState | None:
    rows = txn.execute(
        "SELECT s.cleared_seq, s.removed_seq, d.seq FROM conversation_deletes AS s "
        "LEFT JOIN message_deletes AS d ON d.user_id = s.user_id AND d.conv = s.conv AND d.seq >= ? AND d.seq <= ? "
        "WHERE s.user_id = ? AND s.conv = ?",
        (low, high, user_id, conv),
    ).fetchall()
    if not rows:
        return None
    return DeleteState(rows[0][0], rows[0][1], frozenset(r[2] for r in rows if r[2] is not None))


def _states_txn(txn: ISQLTransaction, user_id: int, convs: list[str]) -> dict[str, DeleteState]:
    clause, params = txn.in_list("s.conv", convs)
    rows = txn.execute(
        "SELECT s.conv, s.cleared_seq, s.removed_seq, d.seq FROM conversation_deletes AS s "
        "LEFT JOIN user_conversations AS uc ON uc.user_id = s.user_id AND uc.conv = s.conv "
        "LEFT JOIN conversations AS c ON c.conv = s.conv "
        "LEFT JOIN message_deletes AS d ON d.user_id = s.user_id AND d.conv = s.conv "
        "AND (d.seq > coalesce(uc.read_seq, 0) OR d.seq = c.last_seq) "
        f"WHERE s.user_id = ? AND {clause}",
        (user_id, *params),
    ).fetchall()
    found: dict[str, tuple[int, int, set[int]]] = {}
    for conv, cleared, removed, seq in rows:
        entry = found.setdefault(conv, (cleared, removed, set()))
        if seq is not None:
            entry[2].add(seq)
    return {conv: DeleteState(c, r, frozenset(d)) for conv, (c, r, d) in found.items()}


_MSG_COLS = (
    "m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.client_msg_id, m.msg_type, m.data, m.created_at, "
    "m.client_type"
)
_SQL_LATEST_VISIBLE = (
    f"SELECT {_MSG_COLS} FROM messages AS m WHERE m.conv = ? AND m.seq > ? AND m.seq < ? AND NOT EXISTS "
    "(SELECT 1 FROM message_deletes AS d WHERE d.user_id = ? AND d.conv = m.conv AND d.seq = m.seq) "
    "ORDER BY m.seq DESC LIMIT 1"
)


def _latest_visible_txn(
    txn: ISQLTransaction, user_id: int, wanted: list[tuple[str, int, int]]
) -> dict[str, Message | None]:
    found: dict[str, Message | None] = {}
    for conv, floor, below in wanted:
        if conv.startswith("g:"):
            row = txn.execute(
                "SELECT joined_seq FROM group_members WHERE group_id = ? AND user_id = ?", (int(conv[2:]), user_id)
            ).fetchone()
            if row is None:
                found[conv] = None
                continue
            floor = max(floor, row[0] - 1)
        row = txn.execute(_SQL_LATEST_VISIBLE, (conv, floor, below, user_id)).fetchone()
        found[conv] = None if row is None else Message(*row)
    return found


def _forget_txn(txn: ISQLTransaction, user_id: int) -> None:
    txn.execute("DELETE FROM message_deletes WHERE user_id = ?", (user_id,))
    txn.execute("DELETE FROM conversation_deletes WHERE user_id = ?", (user_id,))


@implementer(IDeleteStore)
class SQLDeleteStore:
    """IDeleteStore written once for every SQL backend (its tables: deletes.sql).  Writes take
    the user's lock (``user_locks``): they are the user's own state, and never wait behind a
    busy conversation's appends."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def delete(self, user_id: int, conv: str, seqs: list[int], first_seq: int, max_kept: int) -> defer.Deferred:
        seqs = sorted({int(s) for s in seqs})
        return self.db.run_write(
            "delete_messages",
            _delete_txn,
            int(user_id),
            conv,
            seqs,
            int(first_seq),
            int(max_kept),
            user_locks=(int(user_id),),
        )

    def clear(self, user_id: int, conv: str) -> defer.Deferred:
        return self.db.run_write("clear_history", _clear_txn, int(user_id), conv, user_locks=(int(user_id),))

    def remove(self, user_id: int, conv: str) -> defer.Deferred:
        return self.db.run_write("remove_conversation", _remove_txn, int(user_id), conv, user_locks=(int(user_id),))

    def state(self, user_id: int, conv: str, low: int, high: int) -> defer.Deferred:
        return self.db.run_read("delete_state", _state_txn, int(user_id), conv, int(low), int(high))

    def states_of(self, user_id: int, convs: list[str]) -> defer.Deferred:
        convs = sorted(set(convs))
        if not convs:
            return defer.succeed({})
        return self.db.run_read("delete_states", _states_txn, int(user_id), convs)

    def latest_visible(self, user_id: int, wanted: list[tuple[str, int, int]]) -> defer.Deferred:
        return self.db.run_read("latest_visible", _latest_visible_txn, int(user_id), list(wanted))

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("deletes_forget_user", _forget_txn, int(user_id), user_locks=(int(user_id),))


# -- the push


@dataclass(slots=True)
class DeletePush(Push):
    """MSG_DELETE_NOTIFY to the user's own devices: in the conversation they file as
    ``session_id``, ``seqs`` were deleted (``action`` MESSAGES), everything up to ``up_to``
    cleared (CLEAR), or the conversation removed from the list at ``up_to`` (REMOVE)."""

    user_id: int
    session_type: int
    session_id: int
    action: int
    seqs: tuple[int, ...]
    up_to: int


def delete_notify(push: DeletePush) -> pb.CIMMsgDeleteNotify:
    return pb.CIMMsgDeleteNotify(
        user_id=push.user_id,
        session_type=push.session_type,
        session_id=push.session_id,
        action=push.action,
        msg_ids=push.seqs,
        up_to_msg_id=push.up_to,
    )


# -- the service


_REFUSALS = {ErrorCode.NOT_FOUND, ErrorCode.TOO_MANY_DELETES}
HIGHEST = 1 << 62  # "no upper bound" for a state lookup


class Deletes:
    """Deletes, clears and removes for one user at a time, tells their devices, and shows each
    user their history and list without what they hid."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IDeleteStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.router = api.router

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: what the user hid, cleared or removed for themselves goes (the
        other side's history and list are theirs, and stay)."""
        await self.store.forget_user(user.user_id)

    async def delete(
        self, user_id: int, device: Any, session_type: int, session_id: int, msg_ids: list[int]
    ) -> list[int]:
        """Delete ``msg_ids`` of a conversation the user can see, for them; returns the seqs
        newly deleted."""
        ids = list(msg_ids)
        if not ids:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "msg_ids is empty")
        if len(ids) > self.config.max_per_request:
            raise ChatError(
                ErrorCode.DELETE_BATCH_TOO_LARGE, f"at most {self.config.max_per_request} messages per request"
            )
        if any(not 0 < i <= MAX_ID for i in ids):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "msg_ids must be positive server_msg_ids below 2^63")
        where = await self.messages.locate(user_id, session_type, session_id)
        seqs = sorted(set(ids))
        if seqs[0] < where.first_seq:
            raise ChatError(ErrorCode.NOT_FOUND, f"no message {seqs[0]} in this conversation")
        try:
            new, _ = await self.store.delete(
                user_id, where.conv, seqs, where.first_seq, self.config.max_per_conversation
            )
        except DeleteRefused as e:
            raise ChatError(e.code if e.code in _REFUSALS else ErrorCode.FORBIDDEN, str(e)) from None
        if new:
            self.router.push(
                user_id, DeletePush(user_id, session_type, session_id, ACTION_MESSAGES, tuple(new), 0), device
            )
            self.api.fire("message/deleted", user_id, where.conv, list(new))
        return new

    async def clear(self, user_id: int, device: Any, session_type: int, session_id: int) -> int:
        """Clear the conversation's history for the user up to its latest seq; returns it."""
        where = await self.messages.locate(user_id, session_type, session_id)
        try:
            up_to, moved = await self.store.clear(user_id, where.conv)
        except DeleteRefused as e:
            raise ChatError(ErrorCode.NOT_FOUND, str(e)) from None
        if moved:
            self.router.push(user_id, DeletePush(user_id, session_type, session_id, ACTION_CLEAR, (), up_to), device)
            self.api.fire("conversation/cleared", user_id, where.conv, up_to)
        return up_to

    async def remove(self, user_id: int, device: Any, session_type: int, session_id: int) -> int:
        """Take the conversation out of the user's list until a newer message; returns the seq
        it was removed at."""
        where = await self.messages.locate(user_id, session_type, session_id)
        try:
            removed_at, moved = await self.store.remove(user_id, where.conv)
        except DeleteRefused as e:
            raise ChatError(ErrorCode.NOT_FOUND, str(e)) from None
        if moved:
            self.router.push(
                user_id, DeletePush(user_id, session_type, session_id, ACTION_REMOVE, (), removed_at), device
            )
        return removed_at

    async def state(self, user_id: int, session_type: int, session_id: int) -> tuple[DeleteState, int]:
        """The user's DeleteState of a conversation and the conversation's last seq."""
        where = await self.messages.locate(user_id, session_type, session_id)
        found = await self.store.state(user_id, where.conv, 0, HIGHEST)
        last = await self.messages.store.latest_seq(where.conv)
        return (found if found is not None else DeleteState()), last

    # -- the views

    def history_view(self, user_id: int, where: Located, page: list[Message]) -> list[Message] | defer.Deferred:
        """A page of history without what the user deleted or cleared: one lookup per page."""
        if not page:
            return page
        d = self.store.state(user_id, where.conv, page[0].seq, page[-1].seq)

        def shown(state: DeleteState | None) -> list[Message]:
            if state is None:
                return page
            return [m for m in page if not state.hides(m.seq)]

        return d.addCallback(shown)

    def session_view(self, user: User, entries: list[ConversationEntry]) -> defer.Deferred:
        """The list without removed conversations; hidden messages out of the unread counts, the
        mentions and the previews (the latest message the user still has, or none)."""
        return defer.ensureDeferred(self._session_view(user, entries))

    async def _session_view(self, user: User, entries: list[ConversationEntry]) -> list[ConversationEntry]:
        if not entries:
            return entries
        states = await self.store.states_of(user.user_id, [e.conv for e in entries])
        if not states:
            return entries
        shown: list[ConversationEntry] = []
        refill: list[tuple[str, int, int]] = []
        for entry in entries:
            state = states.get(entry.conv)
            if state is None:
                shown.append(entry)
                continue
            if state.removed >= entry.last_seq:
                continue
            floor = max(state.cleared, state.removed)
            above = max(entry.read_seq, floor)
            hidden = max(0, min(floor, entry.last_seq) - entry.read_seq)
            hidden += sum(1 for s in state.deleted if above < s <= entry.last_seq)
            changes: dict[str, Any] = {}
            if hidden:
                changes["hidden_unread"] = entry.hidden_unread + hidden
            if entry.mention_seq and (entry.mention_seq <= floor or entry.mention_seq in state.deleted):
                changes["mention_seq"] = 0
            last = entry.last_message
            if last is not None and state.hides(last.seq):
                changes["last_message"] = None
                if last.seq > state.cleared:
                    refill.append((entry.conv, state.cleared, last.seq))
            shown.append(replace(entry, **changes) if changes else entry)
        if refill:
            latest = await self.store.latest_visible(user.user_id, refill)
            shown = [
                replace(e, last_message=latest.get(e.conv)) if e.last_message is None and e.conv in latest else e
                for e in shown
            ]
        return shown


def setup(api: ModuleAPI) -> Deletes:
    """The delete, clear, remove and state commands, their notify, and the two views."""
    messages = api.depends("messages")
    config: Config = api.config
    deletes = Deletes(api, messages, api.open_store(IDeleteStore, SQLDeleteStore), config)
    api.push_kind(DeletePush, name="delete", cmd=Cmd.MSG_DELETE_NOTIFY, encode=delete_notify)
    messages.add_history_view(deletes.history_view)
    messages.add_session_view(deletes.session_view, SESSION_VIEW_PRIORITY)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(deletes.account_deleted(user)))

    @api.request(Cmd.MSG_DELETE_REQ)
    async def delete(session: Session, req: pb.CIMMsgDeleteReq) -> pb.CIMMsgDeleteRsp:
        await deletes.delete(session.user_id, session, req.session_type, req.session_id, list(req.msg_ids))
        return pb.CIMMsgDeleteRsp(
            user_id=session.user_id,
            session_type=req.session_type,
            session_id=req.session_id,
            msg_ids=sorted(set(req.msg_ids)),
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
        )

    @api.request(Cmd.SESSION_CLEAR_REQ)
    async def clear(session: Session, req: pb.CIMSessionClearReq) -> pb.CIMSessionClearRsp:
        up_to = await deletes.clear(session.user_id, session, req.session_type, req.session_id)
        return pb.CIMSessionClearRsp(
            user_id=session.user_id,
            session_type=req.session_type,
            session_id=req.session_id,
            up_to_msg_id=up_to,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
        )

    @api.request(Cmd.SESSION_REMOVE_REQ)
    async def remove(session: Session, req: pb.CIMSessionRemoveReq) -> pb.CIMSessionRemoveRsp:
        removed_at = await deletes.remove(session.user_id, session, req.session_type, req.session_id)
        return pb.CIMSessionRemoveRsp(
            user_id=session.user_id,
            session_type=req.session_type,
            session_id=req.session_id,
            removed_at_msg_id=removed_at,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
        )

    @api.request(Cmd.MSG_DELETE_STATE_REQ)
    async def state(session: Session, req: pb.CIMMsgDeleteStateReq) -> pb.CIMMsgDeleteStateRsp:
        found, last = await deletes.state(session.user_id, req.session_type, req.session_id)
        return pb.CIMMsgDeleteStateRsp(
            user_id=session.user_id,
            session_type=req.session_type,
            session_id=req.session_id,
            cleared_up_to=found.cleared,
            msg_ids=sorted(found.deleted),
            removed_at_msg_id=max(0, found.removed),
            removed=found.removed >= last,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
        )

    return deletes
