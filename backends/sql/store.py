"""The domain stores together: everything of :class:`~coffeechat.interfaces.IStore` but the
append and the lifecycle, for any backend that provides ``run_read``, ``run_write`` and
``_shortcut`` (the threaded SQLite and PostgreSQL stores, and the in-memory SQLite one)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from coffeechat.backends.sql.groups import SQLGroupStore
from coffeechat.backends.sql.messages import SQLMessageStore
from coffeechat.backends.sql.users import SQLUserStore


class SQLStore(SQLUserStore, SQLMessageStore, SQLGroupStore):
    """Users, messages (but ``append``) and groups, in SQL written once.

    A subclass provides ``run_read(description, fn, *args)``, ``run_write(description, fn,
    *args, locks=(), user_locks=())`` (``user_locks``: user ids whose advisory locks PostgreSQL
    takes in the batch's prelock, for group-count limits; ignored elsewhere) and
    ``_shortcut(value)`` (an already-fired Deferred of ``value`` when the store is open, the
    store's "closed" failure otherwise: a call that needs no SQL still fails on a closed store)."""

    engine: str = ""

    def _shortcut(self, value: Any) -> defer.Deferred:
        raise NotImplementedError
