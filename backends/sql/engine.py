"""The engine layer: portable SQL in, each engine's dialect out, one transaction object each.

Statements are written once (docs/backends.md, "SQL written once") and converted per engine the
first time a text is seen, then found in a cache keyed by the text: the conversion costs one dict
lookup per statement afterwards, like Synapse's ``convert_param_style``.

What the conversion does:

* ``?`` placeholders: SQLite's own; ``%s`` for psycopg (and a literal ``%`` doubled).
* ``GREATEST(`` / ``LEAST(``: SQLite's scalar ``max(`` / ``min(`` (give them non-NULL arguments:
  SQLite's return NULL when any argument is NULL, PostgreSQL's skip NULLs).
* ``FOR UPDATE`` (``SKIP LOCKED``, ``NOWAIT``): dropped on SQLite, whose single writer holds the
  database lock anyway.
* ``in_list(column, values)``: ``column IN (SELECT value FROM json_each(?))`` with a JSON list on
  SQLite, ``column = ANY(?)`` with a list on PostgreSQL: one parameter and one statement text
  whatever the number of values (Synapse's ``make_in_list_sql_clause``).

Both engines take ``TRUE``/``FALSE``, ``CAST(? AS TEXT)``, ``INSERT ... ON CONFLICT``,
``RETURNING`` and ``count(*) FILTER (WHERE ...)`` as they are; Python ``bool`` parameters are
SQLite's 1/0.  Quoted strings, quoted names and comments are left alone.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from zope.interface import implementer

from coffeechat.interfaces import ISQLTransaction

__all__ = ["PostgresTransaction", "SQLiteTransaction", "postgres_sql", "sqlite_sql"]

# Quoted strings, quoted names and comments: what a conversion must not touch (odd indexes of a split).
_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/)", re.S)
_EXTREMA = re.compile(r"\b(GREATEST|LEAST)\s*\(", re.I)
_FOR_UPDATE = re.compile(r"\s+FOR\s+UPDATE(?:\s+SKIP\s+LOCKED|\s+NOWAIT)?\b", re.I)
_CACHE_MAX = 4096  # distinct statement texts kept per engine; more means SQL built per call


def _outside_quotes(sql: str, convert: Callable[[str], str]) -> str:
    parts = _QUOTED.split(sql)
    return "".join(convert(part) if i % 2 == 0 else part for i, part in enumerate(parts))


def _sqlite_part(part: str) -> str:
    part = _EXTREMA.sub(lambda m: "max(" if m.group(1).upper() == "GREATEST" else "min(", part)
    return _FOR_UPDATE.sub("", part)


def _postgres_part(part: str) -> str:
    return part.replace("?", "%s")


_sqlite_cache: dict[str, str] = {}
_postgres_cache: dict[str, str] = {}


def sqlite_sql(sql: str) -> str:
    """``sql`` in SQLite's dialect (cached)."""
    converted = _sqlite_cache.get(sql)
    if converted is None:
        converted = _outside_quotes(sql, _sqlite_part)
        if len(_sqlite_cache) >= _CACHE_MAX:
            _sqlite_cache.clear()
        _sqlite_cache[sql] = converted
    return converted


def postgres_sql(sql: str) -> str:
    """``sql`` in psycopg's dialect (cached): ``%s`` placeholders, every literal ``%`` doubled."""
    converted = _postgres_cache.get(sql)
    if converted is None:
        converted = _outside_quotes(sql.replace("%", "%%"), _postgres_part)
        if len(_postgres_cache) >= _CACHE_MAX:
            _postgres_cache.clear()
        _postgres_cache[sql] = converted
    return converted


@implementer(ISQLTransaction)
class SQLiteTransaction:
    """One transaction (or, on a reader, one autocommit session) on a sqlite3 connection.

    ``cursor`` is the raw sqlite3 cursor, for the engine's own hot path only (the append)."""

    engine = "sqlite"
    IntegrityError = sqlite3.IntegrityError
    __slots__ = ("cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor = cursor

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        converted = _sqlite_cache.get(sql)
        return self.cursor.execute(sqlite_sql(sql) if converted is None else converted, params)

    def executemany(self, sql: str, params_seq: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        return self.cursor.executemany(sqlite_sql(sql), params_seq)

    @staticmethod
    def in_list(column: str, values: Iterable[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    def lock_conversation(self, conv: str) -> None:
        """Nothing to do: SQLite has one writer."""

    def lock_users(self, user_ids: Iterable[int]) -> None:
        """Nothing to do: SQLite has one writer."""


# Advisory lock keys (64-bit): schema migrations, and one per user for group-count limits.
MIGRATION_LOCK = 0x4343_4D49_4752_0001  # "CCMIGR"
USER_LOCK_BASE = 0x4343_5500_0000_0000  # "CCU" + user id
_LOCK_CONV = "SELECT 1 FROM conversations WHERE conv = %s FOR UPDATE"
_LOCK_USERS = "SELECT pg_advisory_xact_lock(%s + u) FROM (SELECT DISTINCT unnest(%s::bigint[]) AS u ORDER BY u) AS t"


@implementer(ISQLTransaction)
class PostgresTransaction:
    """One transaction (or one autocommit session) on a psycopg 3 connection.

    ``cursor`` is the raw psycopg cursor, for the engine's own hot path only (the append)."""

    engine = "postgres"
    __slots__ = ("cursor",)

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    @property
    def IntegrityError(self) -> type[Exception]:  # noqa: N802  (an exception class, as on SQLite)
        import psycopg

        return psycopg.IntegrityError

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        converted = _postgres_cache.get(sql)
        return self.cursor.execute(postgres_sql(sql) if converted is None else converted, params)

    def executemany(self, sql: str, params_seq: Iterable[Iterable[Any]], returning: bool = False) -> Any:
        cursor = self.cursor
        cursor.executemany(postgres_sql(sql), params_seq, returning=returning)
        return cursor

    @staticmethod
    def in_list(column: str, values: Iterable[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def lock_conversation(self, conv: str) -> None:
        """Take the conversation row's lock (every append to it takes it too), so a group write
        and a message are ordered exactly, across nodes."""
        self.cursor.execute(_LOCK_CONV, (conv,))

    def lock_users(self, user_ids: Iterable[int]) -> None:
        """Per-user advisory locks (sorted), so group-count limits are exact across nodes."""
        ids = sorted(set(user_ids))
        if ids:
            self.cursor.execute(_LOCK_USERS, (USER_LOCK_BASE, ids))
