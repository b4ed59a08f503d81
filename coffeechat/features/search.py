"""Search: full-text search over the history a user may read, in the engines' own indexes.

What is searchable: text messages (1), custom messages' (100) ``description``/``text``/``title``
strings, chat records' (12) title and records' content, and FILE messages' (2) file name
(``name``/``displayName``/``fileName``/``filename``/``file_name``), in
the 1:1 conversations of the searcher and in the groups they are in now, from the message they
joined at; minus what they deleted or cleared for themselves (module ``deletes``' events) and what
was recalled.  By words, sender, type and time range, newest first, paged with a cursor, with a
snippet and the matched stretches in it.

Text is tokenised here, in Python, the same way for every engine (:func:`tokens`): Latin (any
non-CJK) words NFKC-normalised, casefolded and without accents; CJK runs as overlapping bigrams (a run of one
character as that character), so that Chinese, Japanese and Korean text without spaces is found
by any two or more consecutive characters.  The engines only see the terms: SQLite keeps them in
an FTS5 table (the ``ascii`` tokenizer, which splits on spaces and leaves every non-ASCII
character alone), PostgreSQL in a ``tsvector`` column (``to_tsvector('simple', ...)``) with a GIN
index.  A query becomes an FTS5 MATCH or a ``tsquery`` from the same parts: a word is a prefix
(from two characters), a CJK run a phrase of its bigrams, all of them ANDed.

Indexing stays off the message path: ``message/stored`` only adds the conversation key to a set;
once a second (``[search] index_interval``) the indexer reads, on a reader, the messages of those
conversations after each one's indexed mark (``search_progress``), tokenises them there, and
writes the terms and the marks in one write.  At start (and every ``catch_up_interval``) it also
lists the conversations whose last seq is past their mark, so nothing stored before a crash, or
by a node that died, stays unindexed.  Search is thus eventually consistent: a message is
findable about one or two seconds after it was sent.  docs/search.md tells the rest.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import message_info
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction, StorageUnavailable, StoreClosed
from coffeechat.model import Message, MsgType, SessionType
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

_TEXT = int(MsgType.TEXT)
_FILE = int(MsgType.FILE)
_CUSTOM = 100  # the custom type (module custom_messages); its JSON's description/text fields
_MERGED = 12  # a chat record (module forward): its title and its records' content
_RECALLED = int(MsgType.RECALLED)
_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)
#: the message types whose text is indexed
INDEXED_TYPES = frozenset({_TEXT, _FILE, _MERGED, _CUSTOM})
_CUSTOM_FIELDS = ("description", "desc", "text", "title")
_FILE_FIELDS = ("name", "displayName", "fileName", "filename", "file_name")
MAX_TERM_CHARS = 64  # a longer word is indexed (and searched) by its first 64 characters
MAX_INDEXED_CHARS = 16 * 1024  # text indexed per message (the text limit is 12 KB anyway)


@dataclass
class Config:
    """[search]: how often the indexer runs and how much it takes, and the bounds of a query."""

    index_interval: float = 1.0
    batch_size: int = 1000
    busy_rate: int = 1000
    busy_batch_size: int = 200
    catch_up_interval: float = 600.0
    max_query_chars: int = 100
    max_terms: int = 8
    page_size: int = 20
    max_page_size: int = 50
    snippet_chars: int = 80

    def validate(self) -> None:
        if not 0 < self.index_interval <= 60:
            raise ConfigError("search.index_interval must be within (0, 60] seconds")
        if not 1 <= self.batch_size <= 100_000:
            raise ConfigError("search.batch_size must be within 1..100000 messages")
        if self.busy_rate < 0:
            raise ConfigError("search.busy_rate must be >= 0 messages per second (0: never busy)")
        if self.busy_batch_size < 1:
            raise ConfigError("search.busy_batch_size must be >= 1 (it is capped at batch_size)")
        if self.catch_up_interval < 0:
            raise ConfigError("search.catch_up_interval must be >= 0 seconds (0: only at start)")
        if not 1 <= self.max_query_chars <= 1000:
            raise ConfigError("search.max_query_chars must be within 1..1000")
        if not 1 <= self.max_terms <= 32:
            raise ConfigError("search.max_terms must be within 1..32")
        if not 1 <= self.page_size <= self.max_page_size <= 500:
            raise ConfigError("search.page_size and max_page_size must be 1 <= page_size <= max_page_size <= 500")
        if not 10 <= self.snippet_chars <= 1000:
            raise ConfigError("search.snippet_chars must be within 10..1000")


# -- tokenising: the same for indexing and for queries, on every engine


def is_cjk(ch: str) -> bool:
    """Han, kana and Hangul: scripts written without spaces, indexed as bigrams."""
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x3040 <= o <= 0x30FF
        or 0x31F0 <= o <= 0x31FF
        or 0xAC00 <= o <= 0xD7AF
        or 0x1100 <= o <= 0x11FF
        or 0x3130 <= o <= 0x318F
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3FFFF
    )


@dataclass(frozen=True, slots=True)
class Token:
    """A term and where it came from in the (NFC) text: ``start``/``end`` in code points; ``cjk``
    for a bigram (or lone character) of a CJK run."""

    term: str
    start: int
    end: int
    cjk: bool


@functools.lru_cache(maxsize=65536)
def fold(ch: str) -> str:
    """One character as it is indexed: NFKC-normalised, casefolded and, outside CJK, without its
    accents (nonspacing marks), so that "Café", "CAFE" and "ｃａｆé" are one word."""
    folded = unicodedata.normalize("NFKC", ch).casefold()
    if is_cjk(ch):
        return folded
    return "".join(c for c in unicodedata.normalize("NFD", folded) if unicodedata.category(c) != "Mn")


def _normalised(text: str) -> Iterable[tuple[str, int]]:
    """Each character of ``text`` folded (maybe into several, maybe into none), with the index of
    the character it came from."""
    for i, ch in enumerate(text):
        if ch < "\x80":
            yield ch.lower(), i
            continue
        for c in fold(ch):
            yield c, i


_ASCII_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[Token]:
    """The terms of ``text`` (already NFC), in order: words, and CJK runs as overlapping bigrams."""
    if text.isascii():  # the common case, at C speed: the same as the loop below gives for ASCII
        words = _ASCII_WORD.finditer(text.lower())
        return [Token(m.group()[:MAX_TERM_CHARS], m.start(), m.end(), False) for m in words]
    return tokens_of_any(text)


def tokens_of_any(text: str) -> list[Token]:
    """:func:`tokens` for any text, character by character."""
    out: list[Token] = []
    word: list[str] = []
    word_start = word_end = 0
    run: list[tuple[str, int]] = []

    def end_word() -> None:
        if word:
            out.append(Token("".join(word)[:MAX_TERM_CHARS], word_start, word_end, False))
            word.clear()

    def end_run() -> None:
        if len(run) == 1:
            out.append(Token(run[0][0], run[0][1], run[0][1] + 1, True))
        else:
            for (a, i), (b, j) in zip(run, run[1:], strict=False):
                out.append(Token(a + b, i, j + 1, True))
        run.clear()

    for c, i in _normalised(text):
        if is_cjk(c):
            end_word()
            run.append((c, i))
        elif c.isalnum() or (word and unicodedata.category(c)[0] == "M"):
            if run:
                end_run()
            if not word:
                word_start = i
            word.append(c)
            word_end = i + 1
        else:
            end_word()
            if run:
                end_run()
    end_word()
    if run:
        end_run()
    return out


def index_terms(text: str) -> str:
    """What the engine indexes for ``text``: its terms separated by spaces."""
    text = text[:MAX_INDEXED_CHARS]
    if text.isascii():
        return " ".join(w[:MAX_TERM_CHARS] for w in _ASCII_WORD.findall(text.lower()))
    return " ".join(t.term for t in tokens(unicodedata.normalize("NFC", text)))


@dataclass(frozen=True, slots=True)
class QueryPart:
    """One word of a query (one term, a prefix when ``prefix``), or one CJK run (its bigrams, a
    phrase)."""

    terms: tuple[str, ...]
    prefix: bool = False


def parse_query(query: str) -> list[QueryPart]:
    """The parts of a query, in order, duplicates dropped: words match as prefixes from two
    characters on; a CJK run matches where those characters stand together."""
    parts: list[QueryPart] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            parts.append(QueryPart(tuple(run), prefix=len(run) == 1))
            run.clear()

    previous_end = -1
    for token in tokens(unicodedata.normalize("NFC", query)):
        if token.cjk:
            # consecutive bigrams of one run overlap by one character
            if not run or token.start != previous_end - 1:
                end_run()
            run.append(token.term)
            previous_end = token.end
        else:
            end_run()
            parts.append(QueryPart((token.term,), prefix=len(token.term) >= 2))
    end_run()
    unique: list[QueryPart] = []
    for part in parts:
        if part not in unique:
            unique.append(part)
    return unique


def fts5_query(parts: Sequence[QueryPart]) -> str:
    """The FTS5 MATCH expression of a query (terms hold no quotes or ASCII punctuation)."""
    return " AND ".join('"' + " ".join(p.terms) + '"' + ("*" if p.prefix else "") for p in parts)


def tsquery(parts: Sequence[QueryPart]) -> str:
    """The ``to_tsquery('simple', ...)`` text of a query."""
    out = []
    for p in parts:
        if len(p.terms) == 1:
            out.append(f"'{p.terms[0]}'" + (":*" if p.prefix else ""))
        else:
            out.append("(" + " <-> ".join(f"'{t}'" for t in p.terms) + ")")
    return " & ".join(out)


def indexed_text(msg_type: int, data: bytes) -> str:
    """The searchable text of a message: a text's text, a custom message's description and text, a
    file's name; "" for anything else."""
    if msg_type == _TEXT:
        return bytes(data).decode("utf-8", "replace")
    if msg_type not in (_CUSTOM, _FILE, _MERGED):
        return ""
    try:
        body = json.loads(bytes(data))
    except (ValueError, RecursionError):
        return ""
    if not isinstance(body, dict):
        return ""
    if msg_type == _MERGED:
        texts = [body.get("title")]
        records = body.get("records")
        if isinstance(records, list):
            texts += [r.get("content") for r in records if isinstance(r, dict)]
        return "\n".join(t for t in texts if isinstance(t, str) and t)
    fields = _CUSTOM_FIELDS if msg_type == _CUSTOM else _FILE_FIELDS
    texts = []
    for key in fields:
        value = body.get(key)
        if isinstance(value, str) and value and value not in texts:
            texts.append(value)
    return "\n".join(texts)


def document_terms(msg_type: int, data: bytes) -> str:
    """What is indexed for a message ("" when nothing)."""
    text = indexed_text(msg_type, data)
    return index_terms(text) if text else ""


def highlight(text: str, parts: Sequence[QueryPart], snippet_chars: int) -> tuple[str, list[tuple[int, int]]]:
    """A snippet of ``text`` (NFC) around its first match, and the matched stretches in it as
    ``(start, length)`` in code points.  "…" marks where the text was cut."""
    text = unicodedata.normalize("NFC", text[:MAX_INDEXED_CHARS])
    found = tokens(text)
    spans: list[tuple[int, int]] = []
    for part in parts:
        n = len(part.terms)
        for k in range(len(found) - n + 1):
            head = found[k]
            if n == 1:
                term = part.terms[0]
                if head.term == term or (part.prefix and head.term.startswith(term)):
                    spans.append((head.start, head.end))
            elif all(found[k + j].cjk and found[k + j].term == part.terms[j] for j in range(n)):
                spans.append((head.start, found[k + n - 1].end))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    begin = 0
    if len(text) > snippet_chars and merged:
        begin = max(0, min(merged[0][0] - snippet_chars // 4, len(text) - snippet_chars))
    end = min(len(text), begin + snippet_chars)
    snippet = text[begin:end]
    shift = -begin
    if begin > 0:
        snippet = "…" + snippet
        shift += 1
    if end < len(text):
        snippet += "…"
    ranges = []
    for start, stop in merged:
        start, stop = max(start, begin), min(stop, end)
        if start < stop:
            ranges.append((start + shift, stop - start))
    return snippet, ranges


# -- storage


@dataclass(frozen=True, slots=True)
class SearchDoc:
    """One message's entry in the index."""

    conv: str
    seq: int
    session_type: int
    sender_id: int
    to_id: int
    msg_type: int
    created_at: int
    terms: str


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A search as the store runs it: the query's parts and every filter (already checked)."""

    user_id: int
    parts: tuple[QueryPart, ...]
    limit: int
    conv: str = ""
    first_seq: int = 1
    session_type: int = 0
    sender_id: int = 0
    msg_type: int = 0
    start_time: int = 0
    end_time: int = 0
    #: (created_at, conv, seq) of the last hit of the previous page
    after: tuple[int, str, int] | None = None


class ISearchStore(Interface):
    """The search feature's storage (a facet: an SQL backend gets :class:`SQLSearchStore`; tested
    by ``coffeechat.testing.conformance_search.SearchStoreConformanceTests``)."""

    def pending(convs: list[str], limit: int):
        """Fire with ``(docs, marks, more)``: the SearchDocs of up to ``limit`` messages of
        ``convs`` after each one's indexed mark (in seq order per conversation), ``marks`` the
        ``{conv: last seq read}`` to record (also for messages with nothing to index), ``more``
        the conversations that may have more.  Reads only."""

    def write(docs: list[SearchDoc], marks: dict[str, int]):
        """Index ``docs`` (one already indexed is left as it is) and move the marks forward (never
        back), in one transaction."""

    def unindexed(after: str, limit: int):
        """Fire with up to ``limit`` conversation keys above ``after`` (in key order) whose last
        message is past their indexed mark."""

    def remove(conv: str, seqs: list[int]):
        """Take messages out of the index (recalled)."""

    def hide(user_id: int, conv: str, seqs: list[int]):
        """Leave messages out of ``user_id``'s results (deleted for themselves)."""

    def clear(user_id: int, conv: str, up_to_seq: int):
        """Leave ``conv``'s messages up to ``up_to_seq`` out of ``user_id``'s results (cleared);
        the mark only moves forward."""

    def forget_user(user_id: int):
        """Erase what ``user_id`` hid or cleared from their results (a deleted account; the
        messages they sent stay indexed with their conversations); fires with None."""

    def search(spec: SearchSpec):
        """Fire with up to ``spec.limit`` Messages matching every part of ``spec.parts`` that
        ``spec.user_id`` may read now (their 1:1 conversations; groups they are in, not dismissed,
        from their join seq on), not hidden or cleared for them, not recalled, within the filters,
        newest first (created_at, conv, seq descending), after ``spec.after``."""


_DOC_COLS = "conv, seq, session_type, sender_id, to_id, msg_type, created_at"
_INSERT_DOC = {
    "sqlite": f"INSERT INTO search_docs ({_DOC_COLS}, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (conv, seq) DO NOTHING",
    "postgres": f"INSERT INTO search_docs ({_DOC_COLS}, terms) VALUES (?, ?, ?, ?, ?, ?, ?, to_tsvector('simple', ?)) "
    "ON CONFLICT (conv, seq) DO NOTHING",
}
_MARK = (
    "INSERT INTO search_progress (conv, indexed_seq) VALUES (?, ?) ON CONFLICT (conv) DO UPDATE "
    "SET indexed_seq = GREATEST(search_progress.indexed_seq, excluded.indexed_seq)"
)
# the FTS part of a search: where the terms are and how they match
_SOURCE = {
    "sqlite": "search_fts JOIN search_docs AS d ON d.doc_id = search_fts.rowid",
    "postgres": "search_docs AS d",
}
_MATCH = {"sqlite": "search_fts MATCH ?", "postgres": "d.terms @@ to_tsquery('simple', ?)"}
_QUERY_TEXT = {"sqlite": fts5_query, "postgres": tsquery}
_SEARCH = (
    "SELECT m.conv, m.seq, m.session_type, m.sender_id, m.to_id, m.client_msg_id, m.msg_type, m.data, "
    "m.created_at, m.client_type FROM {source} "
    "JOIN messages AS m ON m.conv = d.conv AND m.seq = d.seq "
    "LEFT JOIN group_members AS gm ON d.session_type = 2 AND gm.group_id = d.to_id AND gm.user_id = ? "
    "LEFT JOIN search_cleared AS sc ON sc.user_id = ? AND sc.conv = d.conv "
    "WHERE {match} AND m.msg_type <> 11 "
    "AND ((d.session_type = 1 AND (d.sender_id = ? OR d.to_id = ?)) OR (d.session_type = 2 AND d.seq >= gm.joined_seq "
    "AND EXISTS (SELECT 1 FROM chat_groups AS g WHERE g.group_id = d.to_id AND NOT g.dismissed))) "
    "AND (sc.up_to_seq IS NULL OR d.seq > sc.up_to_seq) "
    "AND NOT EXISTS (SELECT 1 FROM search_hidden AS h WHERE h.user_id = ? AND h.conv = d.conv AND h.seq = d.seq)"
    "{filters} ORDER BY d.created_at DESC, d.conv DESC, d.seq DESC LIMIT ?"
)


_Pending = tuple[list[SearchDoc], dict[str, int], list[str]]


def _pending_txn(txn: ISQLTransaction, convs: list[str], limit: int) -> _Pending:
    clause, params = txn.in_list("conv", convs)
    marks = dict(txn.execute(f"SELECT conv, indexed_seq FROM search_progress WHERE {clause}", params).fetchall())
    docs: list[SearchDoc] = []
    read: dict[str, int] = {}
    more: list[str] = []
    left = limit
    for conv in convs:
        if left <= 0:
            more.append(conv)
            continue
        rows = txn.execute(
            "SELECT seq, session_type, sender_id, to_id, msg_type, "
            "CASE WHEN msg_type IN (1, 2, 12, 100) THEN data ELSE NULL END, created_at FROM messages "
            "WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?",
            (conv, marks.get(conv, 0), left),
        ).fetchall()
        if not rows:
            continue
        left -= len(rows)
        if left <= 0:
            more.append(conv)
        for seq, session_type, sender_id, to_id, msg_type, data, created_at in rows:
            if msg_type in INDEXED_TYPES:
                terms = document_terms(msg_type, data)
                if terms:
                    docs.append(SearchDoc(conv, seq, session_type, sender_id, to_id, msg_type, created_at, terms))
        read[conv] = rows[-1][0]
    return docs, read, more


def _write_txn(txn: ISQLTransaction, docs: list[SearchDoc], marks: dict[str, int]) -> int:
    if docs:
        txn.executemany(
            _INSERT_DOC[txn.engine],
            [(d.conv, d.seq, d.session_type, d.sender_id, d.to_id, d.msg_type, d.created_at, d.terms) for d in docs],
        )
    if marks:
        txn.executemany(_MARK, sorted(marks.items()))
    return len(docs)


def _unindexed_txn(txn: ISQLTransaction, after: str, limit: int) -> list[str]:
    rows = txn.execute(
        "SELECT c.conv FROM conversations AS c LEFT JOIN search_progress AS p ON p.conv = c.conv "
        "WHERE c.conv > ? AND c.last_seq > coalesce(p.indexed_seq, 0) ORDER BY c.conv LIMIT ?",
        (after, limit),
    ).fetchall()
    return [r[0] for r in rows]


def _remove_txn(txn: ISQLTransaction, conv: str, seqs: list[int]) -> None:
    clause, params = txn.in_list("seq", seqs)
    txn.execute(f"DELETE FROM search_docs WHERE conv = ? AND {clause}", [conv, *params])


def _hide_txn(txn: ISQLTransaction, user_id: int, conv: str, seqs: list[int]) -> None:
    txn.executemany(
        "INSERT INTO search_hidden (user_id, conv, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [(user_id, conv, s) for s in sorted(set(seqs))],
    )


def _clear_txn(txn: ISQLTransaction, user_id: int, conv: str, up_to_seq: int) -> None:
    txn.execute(
        "INSERT INTO search_cleared (user_id, conv, up_to_seq) VALUES (?, ?, ?) ON CONFLICT (user_id, conv) "
        "DO UPDATE SET up_to_seq = GREATEST(search_cleared.up_to_seq, excluded.up_to_seq)",
        (user_id, conv, up_to_seq),
    )
    # what the deletes made hidden below the mark is covered by it now
    txn.execute("DELETE FROM search_hidden WHERE user_id = ? AND conv = ? AND seq <= ?", (user_id, conv, up_to_seq))


def _search_txn(txn: ISQLTransaction, spec: SearchSpec) -> list[Message]:
    engine = txn.engine
    u = spec.user_id
    params: list[Any] = [u, u, _QUERY_TEXT[engine](spec.parts), u, u, u]
    filters = []
    if spec.conv:
        filters.append(" AND d.conv = ? AND d.seq >= ?")
        params += [spec.conv, spec.first_seq]
    if spec.session_type:
        filters.append(" AND d.session_type = ?")
        params.append(spec.session_type)
    if spec.sender_id:
        filters.append(" AND d.sender_id = ?")
        params.append(spec.sender_id)
    if spec.msg_type:
        filters.append(" AND d.msg_type = ?")
        params.append(spec.msg_type)
    if spec.start_time:
        filters.append(" AND d.created_at >= ?")
        params.append(spec.start_time)
    if spec.end_time:
        filters.append(" AND d.created_at < ?")
        params.append(spec.end_time)
    if spec.after is not None:
        filters.append(" AND (d.created_at, d.conv, d.seq) < (?, ?, ?)")
        params += list(spec.after)
    params.append(spec.limit)
    sql = _SEARCH.format(source=_SOURCE[engine], match=_MATCH[engine], filters="".join(filters))
    rows = txn.execute(sql, params).fetchall()
    return [Message(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), r[8], r[9]) for r in rows]


def _forget_txn(txn: ISQLTransaction, user_id: int) -> None:
    txn.execute("DELETE FROM search_hidden WHERE user_id = ?", (user_id,))
    txn.execute("DELETE FROM search_cleared WHERE user_id = ?", (user_id,))


@implementer(ISearchStore)
class SQLSearchStore:
    """ISearchStore written once for every SQL backend (its tables: search.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def pending(self, convs: list[str], limit: int) -> defer.Deferred:
        return self.db.run_read("search_pending", _pending_txn, sorted(set(convs)), int(limit))

    def write(self, docs: list[SearchDoc], marks: dict[str, int]) -> defer.Deferred:
        return self.db.run_write("search_index", _write_txn, list(docs), dict(marks))

    def unindexed(self, after: str, limit: int) -> defer.Deferred:
        return self.db.run_read("search_unindexed", _unindexed_txn, str(after), int(limit))

    def remove(self, conv: str, seqs: list[int]) -> defer.Deferred:
        return self.db.run_write("search_remove", _remove_txn, conv, [int(s) for s in seqs])

    def hide(self, user_id: int, conv: str, seqs: list[int]) -> defer.Deferred:
        return self.db.run_write("search_hide", _hide_txn, int(user_id), conv, [int(s) for s in seqs])

    def clear(self, user_id: int, conv: str, up_to_seq: int) -> defer.Deferred:
        return self.db.run_write("search_clear", _clear_txn, int(user_id), conv, int(up_to_seq))

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("search_forget_user", _forget_txn, int(user_id))

    def search(self, spec: SearchSpec) -> defer.Deferred:
        return self.db.run_read("search", _search_txn, spec)


# -- the service


_CURSOR = re.compile(r"^(\d{1,12})/((?:p:\d{1,19}:\d{1,19})|(?:g:\d{1,19}))/(\d{1,19})$")
_HIDE_CHUNK = 1000


def encode_cursor(message: Message) -> str:
    """Where the next page starts: after this hit."""
    return f"{message.created_at}/{message.conv}/{message.seq}"


def decode_cursor(cursor: str) -> tuple[int, str, int]:
    found = _CURSOR.match(cursor)
    if found is None or int(found.group(3)) > MAX_ID:
        raise ChatError(ErrorCode.SEARCH_BAD_CURSOR, "cursor is not one a search answer gave")
    return int(found.group(1)), found.group(2), int(found.group(3))


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result: the message, the session id its searcher files it under, a snippet and
    the highlighted stretches of it (code points)."""

    message: Message
    session_id: int
    snippet: str
    highlights: tuple[tuple[int, int], ...]


class Search:
    """Keeps the index in step with the history and answers searches."""

    def __init__(self, api: ModuleAPI, messages: Any, store: ISearchStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.log = api.log
        self._run_cpu = api.cpu_runner(1)
        #: conversations with messages the index may not have yet
        self.dirty: set[str] = set()
        self._flushing = False
        #: the next page of the catch-up over every conversation ("" from the start; None: done)
        self._catch_up_after: str | None = ""
        self.indexed = 0  # messages indexed since start (for tests and metrics)
        self._complained = float("-inf")  # when storage trouble was last logged
        self._stored = 0  # messages stored on this node since the last round
        self._round_at = api.clock.seconds()

    # -- keeping the index in step

    def message_stored(self, message: Message, sender: Any, device: Any) -> None:
        """``message/stored``: remember the conversation; the indexer reads it within a second."""
        self._stored += 1
        if message.msg_type in INDEXED_TYPES:
            self.dirty.add(message.conv)

    def _budget(self) -> int:
        """Messages this round may index: fewer while the node is busy storing messages, so that
        indexing yields to delivery at peaks and catches up after."""
        now = self.api.clock.seconds()
        elapsed = max(now - self._round_at, 1e-3)
        rate = self._stored / elapsed
        self._stored, self._round_at = 0, now
        busy = self.config.busy_rate and rate > self.config.busy_rate
        return min(self.config.busy_batch_size, self.config.batch_size) if busy else self.config.batch_size

    def catch_up(self) -> None:
        """Look again, page by page, for conversations that are not fully indexed."""
        if self._catch_up_after is None:
            self._catch_up_after = ""

    def flush(self) -> defer.Deferred:
        """One indexing round: up to ``batch_size`` new messages, one read and one write."""
        return defer.ensureDeferred(self._flush())

    async def _flush(self) -> None:
        if self._flushing:
            return
        self._flushing = True
        batch = self._budget()
        convs: list[str] = []
        try:
            if self._catch_up_after is not None and len(self.dirty) < batch:
                page = await self.store.unindexed(self._catch_up_after, batch)
                self.dirty.update(page)
                self._catch_up_after = page[-1] if len(page) == batch else None
            while self.dirty and len(convs) < batch:
                convs.append(self.dirty.pop())
            if not convs:
                return
            docs, marks, more = await self.store.pending(convs, batch)
            if marks:
                await self.store.write(docs, marks)
            self.indexed += len(docs)
            self.dirty.update(more)
        except (StorageUnavailable, StoreClosed) as e:
            self.dirty.update(convs)  # the next round tries again
            now = self.api.clock.seconds()
            if now - self._complained >= 60:
                self._complained = now
                self.log.warn("search: indexing waits for storage ({why})", why=e)
        except Exception:
            self.dirty.update(convs)
            raise
        finally:
            self._flushing = False

    def recalled(self, recall: Any) -> defer.Deferred:
        """``message/recalled``: out of the index at once."""
        return self.store.remove(recall.conv, [recall.seq])

    def deleted(self, user_id: int, conv: str, seqs: Iterable[int]) -> defer.Deferred:
        """``message/deleted`` (module ``deletes``): out of that user's results."""
        seqs = [int(s) for s in seqs]
        chunks = [seqs[i : i + _HIDE_CHUNK] for i in range(0, len(seqs), _HIDE_CHUNK)]
        return defer.gatherResults([self.store.hide(user_id, conv, c) for c in chunks], consumeErrors=True)

    def cleared(self, user_id: int, conv: str, up_to_seq: int) -> defer.Deferred:
        """``conversation/cleared`` (module ``deletes``): out of that user's results."""
        return self.store.clear(user_id, conv, up_to_seq)

    # -- searching

    def _checked(self, user_id: int, req: pb.CIMMsgSearchReq) -> tuple[SearchSpec, list[QueryPart]]:
        config = self.config
        if len(req.query) > config.max_query_chars:
            raise ChatError(
                ErrorCode.SEARCH_QUERY_TOO_LONG, f"a query is limited to {config.max_query_chars} characters"
            )
        parts = parse_query(req.query)
        if not parts:
            raise ChatError(ErrorCode.SEARCH_NO_TERMS, "the query has no word to search for")
        if len(parts) > config.max_terms:
            raise ChatError(ErrorCode.SEARCH_QUERY_TOO_LONG, f"a query is limited to {config.max_terms} words")
        if req.session_type not in (0, _SINGLE, _GROUP):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_type must be 0 (any), 1 (single) or 2 (group)")
        if req.session_id and not req.session_type:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_id needs its session_type")
        if req.session_id > MAX_ID or req.sender_id > MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "ids are below 2^63")
        if req.msg_type and req.msg_type not in INDEXED_TYPES:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "msg_type must be 0 (any) or an indexed type: 1, 2, 12 or 100")
        if req.end_time and req.end_time <= req.start_time:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "end_time must be after start_time")
        limit = config.page_size if req.limit == 0 else min(req.limit, config.max_page_size)
        after = decode_cursor(req.cursor) if req.cursor else None
        spec = SearchSpec(
            user_id=user_id,
            parts=tuple(parts),
            limit=limit + 1,
            session_type=req.session_type,
            sender_id=req.sender_id,
            msg_type=req.msg_type,
            start_time=req.start_time,
            end_time=req.end_time,
            after=after,
        )
        return spec, parts

    async def search(self, user_id: int, req: pb.CIMMsgSearchReq) -> tuple[list[Hit], str, bool]:
        """Fire with a page of hits, the cursor of the next page and whether there is one."""
        spec, parts = self._checked(user_id, req)
        if req.session_id:
            where = await self.messages.locate(user_id, req.session_type, req.session_id)
            spec = replace(spec, conv=where.conv, first_seq=where.first_seq)
        found = await self.store.search(spec)
        limit = spec.limit - 1
        page, more = found[:limit], len(found) > limit
        hits = await self._run_cpu(self._hits, user_id, page, parts)
        return hits, encode_cursor(page[-1]) if more else "", more

    def _hits(self, user_id: int, page: list[Message], parts: list[QueryPart]) -> list[Hit]:
        hits = []
        for message in page:
            snippet, ranges = highlight(indexed_text(message.msg_type, message.data), parts, self.config.snippet_chars)
            hits.append(Hit(message, message.session_id_for(user_id), snippet, tuple(ranges)))
        return hits


def search_hit(hit: Hit, viewer_id: int) -> pb.CIMMsgSearchHit:
    info = message_info(hit.message, viewer_id, 0, 0)
    info.msg_status = pb.kCIM_MSG_STATUS_NONE  # a hit says nothing of read positions
    return pb.CIMMsgSearchHit(
        session_type=hit.message.session_type,
        session_id=hit.session_id,
        msg=info,
        snippet=hit.snippet,
        highlights=[pb.CIMMsgSearchRange(start=s, length=n) for s, n in hit.highlights],
    )


def setup(api: ModuleAPI) -> Search:
    """The search command, the indexer and the hooks that keep the index in step."""
    config: Config = api.config
    messages = api.depends("messages")
    search = Search(api, messages, api.open_store(ISearchStore, SQLSearchStore), config)
    api.hook("message/stored", search.message_stored)
    api.hook("message/recalled", search.recalled)
    api.hook("message/deleted", search.deleted)
    api.hook("conversation/cleared", search.cleared)
    api.hook("account/deleted", lambda user: search.store.forget_user(user.user_id))
    api.periodic(config.index_interval, search.flush)
    if config.catch_up_interval:
        api.periodic(config.catch_up_interval, search.catch_up)

    @api.request(Cmd.MSG_SEARCH_REQ)
    async def searched(session: Session, req: pb.CIMMsgSearchReq) -> pb.CIMMsgSearchRsp:
        hits, cursor, more = await search.search(session.user_id, req)
        return pb.CIMMsgSearchRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            hits=[search_hit(h, session.user_id) for h in hits],
            next_cursor=cursor,
            has_more=more,
        )

    return search
