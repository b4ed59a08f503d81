"""Messages, conversations and read state (:class:`~coffeechat.interfaces.IMessageStore`),
written once for every SQL engine — except ``append``, the hot path, which each engine brings
(``backends/sqlite.py``, ``backends/postgres.py``)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from coffeechat.model import ConversationEntry, Message

MSG_COLS = "conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at, client_type"

SQL_LAST_SEQ = "SELECT last_seq FROM conversations WHERE conv = ?"
SQL_HISTORY = f"SELECT {MSG_COLS} FROM messages WHERE conv = ? AND seq >= ? AND seq < ? ORDER BY seq DESC LIMIT ?"
SQL_MESSAGES_BY_SEQ = f"SELECT {MSG_COLS} FROM messages WHERE conv = ? AND {{}} ORDER BY seq"
# Clamped to the last seq, never backwards.
SQL_MARK_READ = (
    "UPDATE user_conversations SET read_seq = GREATEST(read_seq, LEAST(?, "
    "coalesce((SELECT last_seq FROM conversations WHERE conv = ?), 0))) "
    "WHERE user_id = ? AND conv = ? RETURNING read_seq"
)
SQL_MARK_DELIVERED = (
    "UPDATE user_conversations SET delivered_seq = GREATEST(delivered_seq, LEAST(?, "
    "coalesce((SELECT last_seq FROM conversations WHERE conv = ?), 0))) "
    "WHERE user_id = ? AND conv = ?"
)
SQL_DELIVERED_SEQ = "SELECT delivered_seq FROM user_conversations WHERE user_id = ? AND conv = ?"
_ENTRY_SELECT = (
    "SELECT uc.conv, uc.session_type, uc.session_id, uc.read_seq, "
    "coalesce(c.last_seq, 0), coalesce(c.updated_at, 0), "
    "m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.client_msg_id, m.msg_type, m.data, "
    "m.created_at, m.client_type, GREATEST(uc.mention_seq, coalesce(g.at_all_seq, 0)) "
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

NO_UPPER = 1 << 62  # "before_seq 0": no upper bound


def _history(txn: Any, conv: str, before_seq: int, limit: int, min_seq: int) -> list[Message]:
    rows = txn.execute(SQL_HISTORY, (conv, min_seq, before_seq, limit)).fetchall()
    rows.reverse()
    return [Message(*r) for r in rows]


def _messages_by_seq(txn: Any, conv: str, seqs: list[int]) -> list[Message]:
    clause, params = txn.in_list("seq", seqs)
    return [Message(*r) for r in txn.execute(SQL_MESSAGES_BY_SEQ.format(clause), (conv, *params))]


def _scalar(txn: Any, sql: str, params: tuple) -> int:
    row = txn.execute(sql, params).fetchone()
    return 0 if row is None else row[0]


def _mark_read_txn(txn: Any, user_id: int, conv: str, seq: int) -> int | None:
    row = txn.execute(SQL_MARK_READ, (seq, conv, user_id, conv)).fetchone()
    return None if row is None else row[0]


def _mark_delivered_txn(txn: Any, receipts: list[tuple[int, str, int]]) -> None:
    txn.executemany(SQL_MARK_DELIVERED, [(seq, conv, uid, conv) for uid, conv, seq in receipts])


def _row_entry(r: Any) -> ConversationEntry:
    last = None if r[6] is None else Message(*r[6:16])
    return ConversationEntry(r[0], r[1], r[2], r[3], r[4], r[5], last, r[16])


def _conversations_of(txn: Any, user_id: int, updated_since: int, limit: int) -> list[ConversationEntry]:
    return [_row_entry(r) for r in txn.execute(SQL_CONVERSATIONS_OF, (user_id, updated_since, limit))]


def _conversation_entry(txn: Any, user_id: int, conv: str) -> ConversationEntry | None:
    row = txn.execute(SQL_CONVERSATION_ENTRY, (user_id, conv)).fetchone()
    return None if row is None else _row_entry(row)


class SQLMessageStore:
    """IMessageStore but ``append`` over ``run_read``/``run_write``.  Writes to a conversation
    name it in ``locks``: on PostgreSQL they then queue behind its appends on every node."""

    def history(self, conv: str, before_seq: int, limit: int, min_seq: int = 1) -> defer.Deferred:
        if limit <= 0:
            return self._shortcut([])
        upper = before_seq if before_seq > 0 else NO_UPPER
        return self.run_read("history", _history, conv, upper, limit, min_seq)

    def messages_by_seq(self, conv: str, seqs: list[int]) -> defer.Deferred:
        wanted = sorted({int(s) for s in seqs})
        if not wanted:
            return self._shortcut([])
        return self.run_read("messages_by_seq", _messages_by_seq, conv, wanted)

    def latest_seq(self, conv: str) -> defer.Deferred:
        return self.run_read("latest_seq", _scalar, SQL_LAST_SEQ, (conv,))

    def mark_read(self, user_id: int, conv: str, seq: int) -> defer.Deferred:
        return self.run_write("mark_read", _mark_read_txn, user_id, conv, seq, locks=(conv,))

    def mark_delivered(self, receipts: list[tuple[int, str, int]]) -> defer.Deferred:
        receipts = list(receipts)
        if not receipts:
            return self._shortcut(None)
        return self.run_write("mark_delivered", _mark_delivered_txn, receipts, locks={r[1] for r in receipts})

    def delivered_seq(self, user_id: int, conv: str) -> defer.Deferred:
        return self.run_read("delivered_seq", _scalar, SQL_DELIVERED_SEQ, (user_id, conv))

    def conversations_of(self, user_id: int, updated_since: int, limit: int) -> defer.Deferred:
        return self.run_read("conversations_of", _conversations_of, user_id, updated_since, limit)

    def conversation_entry(self, user_id: int, conv: str) -> defer.Deferred:
        return self.run_read("conversation_entry", _conversation_entry, user_id, conv)
