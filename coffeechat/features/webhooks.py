"""Webhooks: a copy of every stored message, recall, and group, friend and account event, POSTed to
the app's server (the seed's 消息抄送), signed per Standard Webhooks, at least once, in order per
conversation, from a durable cursor.

Two streams feed an endpoint:

- **messages**, read back from the messages table from a per-endpoint, per-conversation mark
  (``webhook_marks``), as the search indexer does (coffeechat/features/search.py):
  ``message/stored`` only adds the conversation to a set; a delivery round reads what is past
  the marks, POSTs it and moves the marks.  At start, on taking over an endpoint, and every
  ``catch_up_interval``, a scan lists the conversations past their mark, so nothing stored
  before a crash, by a node that died, or while the receiver was down is skipped.
- **events** (recalls, groups, friends, accounts, and a bot's messages: coffeechat/features/bots.py)
  go through a small outbox table (``webhook_outbox``), one row per endpoint, deleted once sent.

Each endpoint is delivered by one node at a time: the holder of its lease (a row of
``webhook_endpoints``, renewed every ``lease_ttl / 3``; a dead node's lease runs out and another
node takes over, from the marks).  The other nodes forward the conversations they saw change
to it (a cluster command, once per round).  A failure (no 2xx) backs the whole endpoint off
exponentially (``backoff_initial`` doubling up to ``backoff_max``); nothing moves past a message
until it was accepted, so the order per conversation holds.  ``webhook-id`` is stable
(``msg_<conv>_<seq>``, ``evt_<outbox id>``): a receiver dedupes the resends that at-least-once
implies (after a crash between a POST and its mark).  docs/webhooks.md tells the rest.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook
from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction, StorageUnavailable, StoreClosed
from coffeechat.model import Message
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.openapi import array, integer, obj, string

EVENT_TYPES = (
    "message.created",
    "message.recalled",
    "group.changed",
    "friend.added",
    "friend.removed",
    "account.created",
    "account.disabled",
    "account.enabled",
)
MAX_FORWARDED = 5000  # conversation keys forwarded to the lease holders per round, at most
MAX_ERROR_CHARS = 300
MAX_BATCH = 1000  # events per POST, at most (an endpoint's ``batch``)
MAX_CONVS_PER_ROUND = 2000  # conversations read per endpoint and round, at most


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One receiver: its name (the key of its cursor: renaming it starts afresh), URL, secret
    (``whsec_`` + base64), the event types it wants (glob patterns: ``"message.*"``), and whether
    it gets the stream of every stored message (bots' endpoints do not: theirs come through the
    outbox), and how many events a POST may carry (``batch``: 1 is one event per POST; more makes
    a ``batch`` envelope, for receivers that take thousands a second)."""

    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ("*",)
    messages: bool = True
    batch: int = 1

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events)

    @property
    def streams(self) -> bool:
        """Whether it gets the message stream (read from the messages table)."""
        return self.messages and self.wants("message.created")


def check_secret(where: str, secret: Any) -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of at least 24 bytes."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ConfigError(f"{where}: secret must be 'whsec_' followed by base64 (24 to 64 random bytes)")
    try:
        key = Webhook(secret)._whsecret
    except Exception:
        raise ConfigError(f"{where}: secret is not valid base64 after 'whsec_'") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(f"{where}: secret must hold 24 to 64 bytes (it holds {len(key)})")
    return secret


def check_url(where: str, url: Any) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(f"{where}: url must be an http:// or https:// URL, got {url!r}")
    return url


def parse_endpoint(where: str, raw: Any) -> Endpoint:
    if isinstance(raw, Endpoint):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table (url, secret, events, name, batch)")
    unknown = set(raw) - {"name", "url", "secret", "events", "batch"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (known: name, url, secret, events, batch)")
    url = check_url(where, raw.get("url"))
    secret = check_secret(where, raw.get("secret"))
    name = raw.get("name", url)
    if not isinstance(name, str) or not 1 <= len(name) <= 200 or name.startswith("bot:"):
        raise ConfigError(f"{where}: name must be 1 to 200 characters, not starting with 'bot:'")
    events = raw.get("events", ["*"])
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
        raise ConfigError(f"{where}: events must be a list of event types or patterns, e.g. ['message.*']")
    for pattern in events:
        if not any(fnmatch.fnmatchcase(t, pattern) for t in EVENT_TYPES):
            raise ConfigError(f"{where}: {pattern!r} matches no event type (known: {', '.join(EVENT_TYPES)})")
    batch = raw.get("batch", 1)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
        raise ConfigError(f"{where}: batch must be an integer within 1..{MAX_BATCH} (events per POST)")
    return Endpoint(name, url, secret, tuple(events), batch=batch)


@dataclass
class Config:
    """[webhooks]: the endpoints (``[[webhooks.endpoints]]``; none: the feature does nothing),
    how often and how much a delivery round sends, retries, and the cluster lease."""

    endpoints: Any = ()
    interval: float = 1.0
    concurrency: int = 8
    batch_size: int = 100
    events_batch: int = 200
    timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    lease_ttl: float = 15.0
    catch_up_interval: float = 300.0
    outbox_queue_max: int = 10000

    def validate(self) -> None:
        raw = self.endpoints
        if not isinstance(raw, list | tuple):
            raise ConfigError("webhooks.endpoints must be a list of tables ([[webhooks.endpoints]])")
        parsed = tuple(parse_endpoint(f"webhooks.endpoints[{i}]", e) for i, e in enumerate(raw))
        if len({e.name for e in parsed}) != len(parsed):
            raise ConfigError("webhooks.endpoints: two endpoints have the same name (or url)")
        self.endpoints = parsed
        if not 0 < self.interval <= 60:
            raise ConfigError("webhooks.interval must be within (0, 60] seconds")
        if not 1 <= self.concurrency <= 256:
            raise ConfigError("webhooks.concurrency must be within 1..256")
        if not 1 <= self.batch_size <= 10000 or not 1 <= self.events_batch <= 10000:
            raise ConfigError("webhooks.batch_size and events_batch must be within 1..10000")
        if not 0 < self.timeout <= 300:
            raise ConfigError("webhooks.timeout must be within (0, 300] seconds")
        if not 0 < self.backoff_initial <= self.backoff_max <= 86400:
            raise ConfigError("webhooks: 0 < backoff_initial <= backoff_max <= 86400 seconds")
        if self.lease_ttl < 3 * self.interval:
            raise ConfigError("webhooks.lease_ttl must be at least 3 * webhooks.interval")
        if self.catch_up_interval < 0:
            raise ConfigError("webhooks.catch_up_interval must be >= 0 seconds (0: only at start)")
        if self.outbox_queue_max < 1:
            raise ConfigError("webhooks.outbox_queue_max must be >= 1")


# -- payloads


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def message_payload(message: Message) -> dict[str, Any]:
    """What a receiver gets of a stored message (``data`` of ``message.created``)."""
    return {
        "conv": message.conv,
        "session_type": message.session_type,
        "server_msg_id": message.seq,
        "from_user_id": message.sender_id,
        "to_session_id": message.to_id,
        "client_msg_id": message.client_msg_id,
        "msg_type": message.msg_type,
        "msg_data": bytes(message.data).decode("utf-8", "replace"),
        "create_time": message.created_at,
        "client_type": message.client_type,
    }


def message_webhook_id(message: Message) -> str:
    return f"msg_{message.conv}_{message.seq}"


def envelope(event_type: str, at: float, data: dict[str, Any]) -> bytes:
    """The body POSTed: Standard Webhooks' recommended ``{type, timestamp, data}``."""
    body = {"type": event_type, "timestamp": _iso(at), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def batch_envelope(at: float, events: list[tuple[str, str, float, dict[str, Any]]]) -> tuple[str, bytes]:
    """The webhook-id and body of one POST carrying ``events`` ``(webhook_id, type, at, data)``
    (each conversation's in order): ``{type: "batch", timestamp, data: {events: [{id, type,
    timestamp, data}]}}``.  The id names the first and last event, so a resend of the same events
    has the same id; receivers dedupe by each event's own id."""
    items = [{"id": i, "type": t, "timestamp": _iso(when), "data": data} for i, t, when, data in events]
    webhook_id = f"batch_{events[0][0]}.{events[-1][0]}"
    body = {"type": "batch", "timestamp": _iso(at), "data": {"events": items}}
    return webhook_id, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=64)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def signed_headers(secret: str, webhook_id: str, body: bytes, now: float) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (signed with the ``standardwebhooks``
    package, so what it verifies is exactly what is sent)."""
    at = datetime.fromtimestamp(int(now), UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": _signer(secret).sign(webhook_id, at, body),
        "content-type": "application/json",
        "user-agent": "CoffeeChat-Webhooks/1",
    }


# -- storage


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One queued event for one endpoint."""

    event_id: int
    order_key: str
    event_type: str
    payload: str
    created_at: int


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    endpoint: str
    start_at: int
    holder: str
    lease_until: int
    failures: int
    last_error: str
    last_error_at: int
    last_success_at: int
    delivered: int
    backlog_messages: int
    backlog_events: int


class IWebhookStore(Interface):
    """The webhooks feature's storage (a facet; tested by
    ``coffeechat.testing.conformance_webhooks.WebhookStoreConformanceTests``)."""

    def acquire(endpoint: str, node: str, now_ms: int, ttl_ms: int, start_at: int):
        """Create the endpoint's row if it has none (messages from ``start_at``), then take or
        renew its lease for ``node`` if it is free, expired or already ``node``'s; fire with
        ``(held, start_at)``."""

    def release(endpoint: str, node: str):
        """Give the lease up (when ``node`` holds it)."""

    def pending(endpoint: str, start_at: int, convs: list[str], limit: int):
        """Fire with ``(messages, marks, more)``: per conversation of ``convs``, up to ``limit``
        messages after the endpoint's mark in seq order (``{conv: [Message]}``, only those
        created at or after ``start_at``), the ``{conv: last seq read}`` (also past skipped old
        messages), and the conversations that may have more.  Reads only."""

    def mark(endpoint: str, marks: dict[str, int]):
        """Move the endpoint's marks forward (never back)."""

    def unsent(endpoint: str, start_at: int, after: str, limit: int):
        """Up to ``limit`` conversation keys above ``after`` (key order) updated at or after
        ``start_at`` whose last seq is past the endpoint's mark."""

    def enqueue(rows: list[tuple[str, str, str, str, int]]):
        """Queue ``(endpoint, order_key, event_type, payload, created_at)`` events, in order."""

    def events(endpoint: str, limit: int):
        """The endpoint's first ``limit`` queued OutboxEvents, in queue order."""

    def events_sent(endpoint: str, event_ids: list[int]):
        """Drop delivered events."""

    def record(endpoint: str, failures: int, last_error: str, error_at: int, success_at: int, delivered: int):
        """Store the delivery status: failures in a row, the last error and when, the last success
        (0: leave as is) and ``delivered`` more events."""

    def status(endpoints: list[str]):
        """EndpointStatus of each of ``endpoints`` that has a row, with its backlog."""

    def forget(endpoint: str):
        """Drop an endpoint, its marks and its queued events (a bot no longer a bot)."""


def _acquire_txn(txn: ISQLTransaction, endpoint: str, node: str, now_ms: int, ttl_ms: int, start_at: int) -> Any:
    txn.execute(
        "INSERT INTO webhook_endpoints (endpoint, start_at) VALUES (?, ?) ON CONFLICT (endpoint) DO NOTHING",
        (endpoint, start_at),
    )
    row = txn.execute(
        "UPDATE webhook_endpoints SET holder = ?, lease_until = ? WHERE endpoint = ? "
        "AND (holder = ? OR holder = '' OR lease_until < ?) RETURNING start_at",
        (node, now_ms + ttl_ms, endpoint, node, now_ms),
    ).fetchone()
    if row is not None:
        return True, int(row[0])
    row = txn.execute("SELECT start_at FROM webhook_endpoints WHERE endpoint = ?", (endpoint,)).fetchone()
    return False, int(row[0])


def _release_txn(txn: ISQLTransaction, endpoint: str, node: str) -> None:
    txn.execute(
        "UPDATE webhook_endpoints SET holder = '', lease_until = 0 WHERE endpoint = ? AND holder = ?", (endpoint, node)
    )


_Pending = tuple[dict[str, list[Message]], dict[str, int], list[str]]


def _pending_txn(txn: ISQLTransaction, endpoint: str, start_at: int, convs: list[str], limit: int) -> _Pending:
    clause, params = txn.in_list("conv", convs)
    marks = dict(
        txn.execute(f"SELECT conv, sent_seq FROM webhook_marks WHERE endpoint = ? AND {clause}", [endpoint, *params])
    )
    found: dict[str, list[Message]] = {}
    read: dict[str, int] = {}
    more: list[str] = []
    for conv in convs:
        rows = txn.execute(
            "SELECT conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at, client_type "
            "FROM messages WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?",
            (conv, marks.get(conv, 0), limit),
        ).fetchall()
        if not rows:
            continue
        if len(rows) == limit:
            more.append(conv)
        read[conv] = int(rows[-1][1])
        kept = [Message(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), r[8], r[9]) for r in rows]
        kept = [m for m in kept if m.created_at >= start_at]
        if kept:
            found[conv] = kept
    return found, read, more


_MARK = (
    "INSERT INTO webhook_marks (endpoint, conv, sent_seq) VALUES (?, ?, ?) ON CONFLICT (endpoint, conv) "
    "DO UPDATE SET sent_seq = GREATEST(webhook_marks.sent_seq, excluded.sent_seq)"
)


def _mark_txn(txn: ISQLTransaction, endpoint: str, marks: dict[str, int]) -> None:
    txn.executemany(_MARK, [(endpoint, conv, seq) for conv, seq in sorted(marks.items())])


def _unsent_txn(txn: ISQLTransaction, endpoint: str, start_at: int, after: str, limit: int) -> list[str]:
    rows = txn.execute(
        "SELECT c.conv FROM conversations AS c LEFT JOIN webhook_marks AS m ON m.endpoint = ? AND m.conv = c.conv "
        "WHERE c.conv > ? AND c.updated_at >= ? AND c.last_seq > coalesce(m.sent_seq, 0) ORDER BY c.conv LIMIT ?",
        (endpoint, after, start_at, limit),
    ).fetchall()
    return [r[0] for r in rows]


def _enqueue_txn(txn: ISQLTransaction, rows: list[tuple[str, str, str, str, int]]) -> None:
    txn.executemany(
        "INSERT INTO webhook_outbox (endpoint, order_key, event_type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def _events_txn(txn: ISQLTransaction, endpoint: str, limit: int) -> list[OutboxEvent]:
    rows = txn.execute(
        "SELECT event_id, order_key, event_type, payload, created_at FROM webhook_outbox WHERE endpoint = ? "
        "ORDER BY event_id LIMIT ?",
        (endpoint, limit),
    ).fetchall()
    return [OutboxEvent(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows]


def _events_sent_txn(txn: ISQLTransaction, endpoint: str, event_ids: list[int]) -> None:
    clause, params = txn.in_list("event_id", event_ids)
    txn.execute(f"DELETE FROM webhook_outbox WHERE endpoint = ? AND {clause}", [endpoint, *params])


def _record_txn(
    txn: ISQLTransaction, endpoint: str, failures: int, last_error: str, error_at: int, success_at: int, delivered: int
) -> None:
    txn.execute(
        "UPDATE webhook_endpoints SET failures = ?, last_error = CASE WHEN ? > 0 THEN ? ELSE last_error END, "
        "last_error_at = GREATEST(last_error_at, ?), last_success_at = GREATEST(last_success_at, ?), "
        "delivered = delivered + ? WHERE endpoint = ?",
        (failures, error_at, last_error, error_at, success_at, delivered, endpoint),
    )


def _status_txn(txn: ISQLTransaction, endpoints: list[str]) -> list[EndpointStatus]:
    clause, params = txn.in_list("endpoint", endpoints)
    rows = txn.execute(
        "SELECT endpoint, start_at, holder, lease_until, failures, last_error, last_error_at, last_success_at, "
        f"delivered FROM webhook_endpoints WHERE {clause} ORDER BY endpoint",
        params,
    ).fetchall()
    out = []
    for r in rows:
        messages = txn.execute(
            "SELECT coalesce(SUM(c.last_seq - coalesce(m.sent_seq, 0)), 0) FROM conversations AS c "
            "LEFT JOIN webhook_marks AS m ON m.endpoint = ? AND m.conv = c.conv "
            "WHERE c.updated_at >= ? AND c.last_seq > coalesce(m.sent_seq, 0)",
            (r[0], r[1]),
        ).fetchone()[0]
        events = txn.execute("SELECT count(*) FROM webhook_outbox WHERE endpoint = ?", (r[0],)).fetchone()[0]
        out.append(
            EndpointStatus(
                r[0],
                int(r[1]),
                r[2],
                int(r[3]),
                int(r[4]),
                r[5],
                int(r[6]),
                int(r[7]),
                int(r[8]),
                int(messages),
                int(events),
            )
        )
    return out


def _forget_txn(txn: ISQLTransaction, endpoint: str) -> None:
    for table in ("webhook_outbox", "webhook_marks", "webhook_endpoints"):
        txn.execute(f"DELETE FROM {table} WHERE endpoint = ?", (endpoint,))


@implementer(IWebhookStore)
class SQLWebhookStore:
    """IWebhookStore written once for every SQL backend (its tables: webhooks.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def acquire(self, endpoint: str, node: str, now_ms: int, ttl_ms: int, start_at: int) -> defer.Deferred:
        return self.db.run_write("webhook_lease", _acquire_txn, endpoint, node, int(now_ms), int(ttl_ms), int(start_at))

    def release(self, endpoint: str, node: str) -> defer.Deferred:
        return self.db.run_write("webhook_release", _release_txn, endpoint, node)

    def pending(self, endpoint: str, start_at: int, convs: list[str], limit: int) -> defer.Deferred:
        return self.db.run_read(
            "webhook_pending", _pending_txn, endpoint, int(start_at), sorted(set(convs)), int(limit)
        )

    def mark(self, endpoint: str, marks: dict[str, int]) -> defer.Deferred:
        return self.db.run_write("webhook_mark", _mark_txn, endpoint, dict(marks))

    def unsent(self, endpoint: str, start_at: int, after: str, limit: int) -> defer.Deferred:
        return self.db.run_read("webhook_unsent", _unsent_txn, endpoint, int(start_at), str(after), int(limit))

    def enqueue(self, rows: list[tuple[str, str, str, str, int]]) -> defer.Deferred:
        return self.db.run_write("webhook_enqueue", _enqueue_txn, list(rows))

    def events(self, endpoint: str, limit: int) -> defer.Deferred:
        return self.db.run_read("webhook_events", _events_txn, endpoint, int(limit))

    def events_sent(self, endpoint: str, event_ids: list[int]) -> defer.Deferred:
        return self.db.run_write("webhook_events_sent", _events_sent_txn, endpoint, [int(i) for i in event_ids])

    def record(
        self, endpoint: str, failures: int, last_error: str, error_at: int, success_at: int, delivered: int
    ) -> defer.Deferred:
        return self.db.run_write(
            "webhook_record",
            _record_txn,
            endpoint,
            int(failures),
            last_error,
            int(error_at),
            int(success_at),
            int(delivered),
        )

    def status(self, endpoints: list[str]) -> defer.Deferred:
        return self.db.run_read("webhook_status", _status_txn, list(endpoints))

    def forget(self, endpoint: str) -> defer.Deferred:
        return self.db.run_write("webhook_forget", _forget_txn, endpoint)


# -- sending


class DeliveryFailed(Exception):
    """A POST that was not accepted (no 2xx, timeout, connection refused)."""


#: ``post(url, body, headers)``: fire with the HTTP status (any: the caller judges it), or fail
Poster = Callable[[str, bytes, dict[str, str]], defer.Deferred]


class TreqPoster:
    """POSTs with treq on the node's reactor, over a pool of persistent connections (at most
    ``concurrency`` per receiver); the answer's body is read and dropped (never kept)."""

    def __init__(self, reactor: Any, concurrency: int, timeout: float) -> None:
        import treq
        from treq.api import Agent, HTTPConnectionPool  # twisted.web's, as treq builds its clients

        self._treq = treq
        self.reactor = reactor
        self.timeout = timeout
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = concurrency
        self.pool.cachedConnectionTimeout = 60
        self.client = treq.client.HTTPClient(Agent(reactor, pool=self.pool, connectTimeout=timeout))

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> defer.Deferred:
        d = self.client.post(url, data=body, headers={k: [v] for k, v in headers.items()}, reactor=self.reactor)

        def answered(response: Any) -> defer.Deferred:
            return self._treq.collect(response, lambda _chunk: None).addCallback(lambda _: response.code)

        d.addCallback(answered)
        d.addTimeout(self.timeout, self.reactor)
        return d

    def close(self) -> defer.Deferred:
        return self.pool.closeCachedConnections()


class EndpointWorker:
    """Delivers one endpoint while this node holds its lease: a round reads what is pending (the
    message stream and the outbox), sends each conversation's (or order key's) items one after
    the other, ``concurrency`` conversations at a time, and moves the cursors."""

    def __init__(self, service: Webhooks, endpoint: Endpoint) -> None:
        self.service = service
        self.endpoint = endpoint
        self.config = service.config
        self.dirty: set[str] = set()
        self.held = False
        self.start_at: int | None = None
        self.lease_renewed = float("-inf")
        self.catch_up_after: str | None = ""  # next page of the catch-up scan (None: done)
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = ""
        self.last_error_at = 0
        self.last_success_at = 0
        self.delivered = 0  # posts accepted since start (this node)
        self.attempts = 0
        self.running = False
        self.stopped = False
        self._recorded = (0, "")

    # -- the lease

    async def _lease(self) -> bool:
        now = self.service.clock.seconds()
        ttl = self.config.lease_ttl
        if self.held and now - self.lease_renewed < ttl / 3:
            return True
        was = self.held
        held, start_at = await self.service.store.acquire(
            self.endpoint.name, self.service.node_name, int(now * 1000), int(ttl * 1000), self.service.started_at
        )
        self.held, self.start_at = held, start_at
        if held:
            self.lease_renewed = now
            if not was:  # taken over (or first start): look for everything not yet sent
                self.catch_up_after = ""
                self.service.log.info("webhooks: delivering endpoint {name} from this node", name=self.endpoint.name)
        return held

    # -- a round

    async def round(self) -> bool:
        """One delivery round; True when there is more to send at once."""
        if self.running or self.stopped:
            return False
        self.running = True
        convs: list[str] = []
        try:
            if not await self._lease():
                self.dirty.clear()  # the holder was told (cluster command) or will scan
                return False
            if self.service.clock.seconds() < self.retry_at:
                return False
            more = False
            if self.endpoint.streams:
                convs, more = await self._take_convs()
            messages, marks, more_convs = ({}, {}, [])
            if convs:
                messages, marks, more_convs = await self.service.store.pending(
                    self.endpoint.name, self.start_at or 0, convs, self.config.batch_size
                )
            events = await self.service.store.events(self.endpoint.name, self.config.events_batch)
            lanes = self._lanes(messages, events)
            sent_marks, sent_events, sent, failed = await self._send(lanes)
            # what was read but not sent (a failure) stays past its mark: those conversations again
            for conv, seq in marks.items():
                if conv not in messages:  # nothing to send (all older than start_at): move on
                    sent_marks[conv] = max(sent_marks.get(conv, 0), seq)
                elif sent_marks.get(conv, 0) >= messages[conv][-1].seq:
                    sent_marks[conv] = max(sent_marks[conv], seq)
                else:
                    self.dirty.add(conv)
            self.dirty.update(more_convs)
            if sent_marks:
                await self.service.store.mark(self.endpoint.name, sent_marks)
            if sent_events:
                await self.service.store.events_sent(self.endpoint.name, sent_events)
            await self._record(sent)
            if failed:
                return False
            return bool(more or more_convs or len(events) >= self.config.events_batch)
        except (StorageUnavailable, StoreClosed) as e:
            self.dirty.update(convs)
            self.service.storage_trouble(e)
            return False
        except Exception:
            self.dirty.update(convs)
            raise
        finally:
            self.running = False

    async def _take_convs(self) -> tuple[list[str], bool]:
        # enough conversations for every POST in flight to be full (a conversation usually has a
        # message or two per round), within what one read should hold
        limit = min(MAX_CONVS_PER_ROUND, self.config.concurrency * max(4, self.endpoint.batch))
        if self.catch_up_after is not None and len(self.dirty) < limit:
            page = await self.service.store.unsent(self.endpoint.name, self.start_at or 0, self.catch_up_after, limit)
            self.dirty.update(page)
            self.catch_up_after = page[-1] if len(page) == limit else None
        convs = []
        while self.dirty and len(convs) < limit:
            convs.append(self.dirty.pop())
        return convs, bool(self.dirty) or self.catch_up_after is not None

    def _lanes(self, messages: dict[str, list[Message]], events: list[OutboxEvent]) -> list[list[tuple]]:
        """Each conversation's (order key's) items, in order: ``("m", Message)`` or
        ``("e", OutboxEvent)``; a key's events wait behind a failed earlier one."""
        lanes: dict[str, list[tuple]] = {}
        for conv, found in messages.items():
            lanes["m:" + conv] = [("m", m) for m in found]
        for event in events:
            lanes.setdefault("e:" + event.order_key, []).append(("e", event))
        return list(lanes.values())

    async def _send(self, lanes: list[list[tuple]]) -> tuple[dict[str, int], list[int], int, bool]:
        """Send the lanes; fire with the marks and event ids to record, how many were accepted,
        and whether one failed (then every lane stops before its next item).

        The lanes are dealt out to ``concurrency`` queues, a lane whole to one queue, and each
        queue is sent in order, ``batch`` items a POST: a POST may hold the end of one lane and
        the start of the next, and each lane's items still go in order, one POST after another."""
        marks: dict[str, int] = {}
        sent_events: list[int] = []
        state = {"failed": False, "sent": 0}
        batch = self.endpoint.batch

        def event(kind: str, item: Any) -> tuple[str, str, float, dict[str, Any]]:
            if kind == "m":
                return message_webhook_id(item), "message.created", item.created_at, message_payload(item)
            return f"evt_{item.event_id}", item.event_type, item.created_at, json.loads(item.payload)

        async def send_queue(items: list[tuple]) -> None:
            for start in range(0, len(items), batch):
                if state["failed"] or self.stopped:
                    return
                chunk = items[start : start + batch]
                if batch == 1:
                    webhook_id, event_type, at, data = event(*chunk[0])
                    body = envelope(event_type, at, data)
                else:
                    webhook_id, body = batch_envelope(self.service.clock.seconds(), [event(*c) for c in chunk])
                if not await self._post(webhook_id, body, len(chunk)):
                    state["failed"] = True
                    return
                state["sent"] += len(chunk)
                for kind, item in chunk:
                    if kind == "m":
                        marks[item.conv] = item.seq
                    else:
                        sent_events.append(item.event_id)

        queues: list[list[tuple]] = [[] for _ in range(min(self.config.concurrency, len(lanes)))]
        for lane in sorted(lanes, key=len, reverse=True):  # the longest first, each to the shortest queue
            min(queues, key=len).extend(lane)
        await defer.gatherResults([defer.ensureDeferred(send_queue(items)) for items in queues], consumeErrors=True)
        return marks, sent_events, state["sent"], bool(state["failed"])

    async def _post(self, webhook_id: str, body: bytes, events: int = 1) -> bool:
        service = self.service
        headers = signed_headers(self.endpoint.secret, webhook_id, body, service.clock.seconds())
        self.attempts += 1
        try:
            status = await service.post(self.endpoint.url, body, headers)
            if not 200 <= int(status) < 300:
                raise DeliveryFailed(f"HTTP {status}")
        except Exception as e:
            self._failed(e)
            return False
        self.failures = 0
        self.retry_at = 0.0
        self.last_success_at = int(service.clock.seconds())
        self.delivered += events
        service.delivered += events
        return True

    def _failed(self, error: BaseException) -> None:
        service = self.service
        now = service.clock.seconds()
        if self.retry_at > now:  # several lanes failing at once count as one failure
            return
        self.failures += 1
        delay = min(self.config.backoff_max, self.config.backoff_initial * 2 ** min(self.failures - 1, 30))
        self.retry_at = now + delay
        reason = error.getErrorMessage() if isinstance(error, Failure) else (str(error) or type(error).__name__)
        self.last_error = reason[:MAX_ERROR_CHARS]
        self.last_error_at = int(now)
        service.log.warn(
            "webhooks: {name} failed ({why}); failure {n} in a row, next try in {delay:.0f} s",
            name=self.endpoint.name,
            why=self.last_error,
            n=self.failures,
            delay=delay,
        )

    async def _record(self, delivered: int) -> None:
        state = (self.failures, self.last_error, self.last_success_at)
        if state == self._recorded and not delivered:
            return
        self._recorded = state
        await self.service.store.record(
            self.endpoint.name, self.failures, self.last_error, self.last_error_at, self.last_success_at, delivered
        )

    async def stop(self) -> None:
        self.stopped = True
        if self.held:
            self.held = False
            try:
                await self.service.store.release(self.endpoint.name, self.service.node_name)
            except Exception:
                pass


class Webhooks:
    """The endpoints' workers, the hooks that feed them, and the outbox writer; other features
    (bots) add endpoints of their own and queue events for them."""

    def __init__(self, api: ModuleAPI, store: IWebhookStore, config: Config) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.clock = api.clock
        self.log = api.log
        self.node_name = api.node_name
        #: a new endpoint gets the messages stored from the start of the node that saw it first
        self.started_at = int(api.clock.seconds())
        self.workers: dict[str, EndpointWorker] = {}
        self._post: Poster | None = None
        self.delivered = 0
        #: conversations changed here since the last round, for the other nodes' lease holders
        self._forward: set[str] = set()
        self._forward_overflow = False
        self._queue: list[tuple[str, str, str, str, int]] = []
        self._flushing_queue: defer.Deferred | None = None
        self._complained = float("-inf")
        self.dropped = 0  # events dropped because the outbox queue was full (storage down)
        self._running = False
        self.message_workers: list[EndpointWorker] = []
        for endpoint in config.endpoints:
            self.add_endpoint(endpoint)

    @property
    def queued(self) -> int:
        """Events waiting to be written to the outbox (for metrics)."""
        return len(self._queue)

    @property
    def post(self) -> Poster:
        if self._post is None:
            self._post = TreqPoster(self.clock, self.config.concurrency, self.config.timeout)
        return self._post

    @post.setter
    def post(self, poster: Poster) -> None:
        """Tests put a poster of their own here."""
        self._post = poster

    # -- endpoints

    def add_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.name not in self.workers:
            self.workers[endpoint.name] = EndpointWorker(self, endpoint)
        else:
            self.workers[endpoint.name].endpoint = endpoint
        self._changed()

    async def remove_endpoint(self, name: str, forget: bool = False) -> None:
        worker = self.workers.pop(name, None)
        self._changed()
        if worker is not None:
            await worker.stop()
        if forget:
            await self.store.forget(name)

    def _changed(self) -> None:
        #: the endpoints that get the message stream (read on every message: a list, kept)
        self.message_workers = [w for w in self.workers.values() if w.endpoint.streams]

    # -- what feeds them

    def message_stored(self, message: Message, sender: Any, device: Any) -> None:
        """``message/stored``: the conversation is dirty for each endpoint (nothing else here)."""
        workers = self.message_workers
        if not workers:
            return
        conv = message.conv
        for worker in workers:
            worker.dirty.add(conv)
        if len(self._forward) < MAX_FORWARDED:
            self._forward.add(conv)
        else:
            self._forward_overflow = True

    def forwarded(self, data: dict, from_node: str) -> None:
        """Another node's changed conversations: for the endpoints whose lease is held here."""
        convs = data.get("convs")
        if not isinstance(convs, list):
            return
        for worker in self.message_workers:
            if worker.held:
                worker.dirty.update(c for c in convs if isinstance(c, str))
                if data.get("overflow"):
                    worker.catch_up_after = worker.catch_up_after or ""

    def emit(self, event_type: str, order_key: str, data: dict[str, Any], only: Iterable[str] | None = None) -> None:
        """Queue an event for every endpoint that wants it (or only those named ``only``); written
        to the outbox in batches, off the caller's path."""
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        now = int(self.clock.seconds())
        names = list(only) if only is not None else [n for n, w in self.workers.items() if w.endpoint.messages]
        for name in names:
            worker = self.workers.get(name)
            if worker is None or not worker.endpoint.wants(event_type):
                continue
            if len(self._queue) >= self.config.outbox_queue_max:
                self.dropped += 1
                self._complain("webhooks: the outbox queue is full (storage down?): an event was dropped")
                continue
            self._queue.append((name, order_key, event_type, payload, now))
        if self._queue and self._flushing_queue is None:
            self._flushing_queue = self.clock.callLater(0, self._flush_queue)

    def _flush_queue(self) -> defer.Deferred:
        rows, self._queue = self._queue, []
        d = self.store.enqueue(rows)

        def done(result: Any) -> None:
            self._flushing_queue = None
            if isinstance(result, Failure):
                # keep them (bounded) for the next try
                self._queue[:0] = rows[: max(0, self.config.outbox_queue_max - len(self._queue))]
                self._complain(f"webhooks: queuing events failed ({result.getErrorMessage()}); retrying")
                self._flushing_queue = self.clock.callLater(self.config.interval, self._flush_queue)
            elif self._queue:
                self._flushing_queue = self.clock.callLater(0, self._flush_queue)

        d.addBoth(done)
        return d

    def flush_queue(self) -> defer.Deferred:
        """Write what is queued now (tests, and the node stopping)."""
        if self._flushing_queue is not None and getattr(self._flushing_queue, "active", lambda: False)():
            self._flushing_queue.cancel()
            self._flushing_queue = None
        if not self._queue:
            return defer.succeed(None)
        return self._flush_queue()

    def storage_trouble(self, e: Exception) -> None:
        self._complain(f"webhooks: delivery waits for storage ({e})")

    def _complain(self, text: str) -> None:
        now = self.clock.seconds()
        if now - self._complained >= 60:
            self._complained = now
            self.log.warn(text)

    # -- the hooks of the built-in events

    def recalled(self, recall: Any) -> None:
        self.emit(
            "message.recalled",
            recall.conv,
            {
                "conv": recall.conv,
                "server_msg_id": recall.seq,
                "session_type": recall.session_type,
                "from_user_id": recall.sender_id,
                "to_session_id": recall.to_id,
                "client_msg_id": recall.client_msg_id,
                "recalled_by": recall.recalled_by,
                "recalled_at": recall.recalled_at,
            },
        )

    def group_changed(self, change: Any) -> None:
        group = change.group

        def member(m: Any) -> dict[str, Any]:
            return {"user_id": m.user_id, "role": int(getattr(m, "role", 0))}

        self.emit(
            "group.changed",
            group.conv,
            {
                "group_id": group.group_id,
                "name": group.name,
                "owner_id": group.owner_id,
                "version": group.version,
                "member_count": group.member_count,
                "dismissed": group.dismissed,
                "added": [member(m) for m in change.added],
                "removed": [member(m) for m in change.removed],
                "roles": [member(m) for m in change.roles],
            },
        )

    def friend_added(self, a: int, b: int) -> None:
        self.emit("friend.added", _pair(a, b), {"user_id": int(a), "friend_id": int(b)})

    def friend_removed(self, a: int, b: int) -> None:
        self.emit("friend.removed", _pair(a, b), {"user_id": int(a), "friend_id": int(b)})

    def account(self, event_type: str) -> Callable[[Any], None]:
        def hook(user: Any) -> None:
            self.emit(
                event_type,
                f"u:{user.user_id}",
                {"user_id": user.user_id, "name": user.name, "nick_name": user.nick_name, "disabled": user.disabled},
            )

        return hook

    # -- the rounds

    def tick(self) -> defer.Deferred:
        """Once per ``interval``: forward what changed here, then a round of every endpoint."""
        if self._forward or self._forward_overflow:
            convs, self._forward = sorted(self._forward), set()
            self.api.broadcast("webhooks.dirty", {"convs": convs, "overflow": self._forward_overflow})
            self._forward_overflow = False
        return defer.ensureDeferred(self._rounds())

    async def _rounds(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            work = list(self.workers.values())
            results = await defer.gatherResults([defer.ensureDeferred(w.round()) for w in work], consumeErrors=True)
            again = [w for w, more in zip(work, results, strict=True) if more]
        finally:
            self._running = False
        if again:
            self.clock.callLater(0, self.tick)

    def catch_up(self) -> None:
        for worker in self.workers.values():
            if worker.catch_up_after is None:
                worker.catch_up_after = ""

    async def stop(self) -> None:
        await self.flush_queue()
        for worker in list(self.workers.values()):
            await worker.stop()
        if isinstance(self._post, TreqPoster):
            await self._post.close()

    # -- the admin view

    async def status(self) -> list[dict[str, Any]]:
        names = sorted(self.workers)
        found = {s.endpoint: s for s in await self.store.status(names)} if names else {}
        out = []
        for name in names:
            worker = self.workers[name]
            s = found.get(name)
            entry: dict[str, Any] = {
                "name": name,
                "url": worker.endpoint.url,
                "events": list(worker.endpoint.events),
                "messages": worker.endpoint.messages,
            }
            if s is None:
                entry.update(backlog=0, backlog_messages=0, backlog_events=0, failures=0, last_error="", holder="")
            else:
                lease_live = s.lease_until > self.clock.seconds() * 1000
                entry.update(
                    backlog=s.backlog_messages + s.backlog_events,
                    backlog_messages=s.backlog_messages,
                    backlog_events=s.backlog_events,
                    failures=s.failures,
                    last_error=s.last_error,
                    last_error_at=s.last_error_at,
                    last_success_at=s.last_success_at,
                    delivered=s.delivered,
                    holder=s.holder if lease_live else "",
                    since=s.start_at,
                )
            if worker.held:  # this node delivers it: its live state is the freshest
                entry.update(failures=worker.failures, last_error=worker.last_error, retry_at=worker.retry_at)
            out.append(entry)
        return out


def _pair(a: int, b: int) -> str:
    low, high = sorted((int(a), int(b)))
    return f"p:{low}:{high}"


def setup(api: ModuleAPI) -> Webhooks:
    """The hooks (all cheap: a set add, or an event queued), the delivery rounds and the admin view."""
    config: Config = api.config
    webhooks = Webhooks(api, api.open_store(IWebhookStore, SQLWebhookStore), config)
    api.hook("message/stored", webhooks.message_stored)
    api.hook("message/recalled", webhooks.recalled)
    api.hook("group/changed", webhooks.group_changed)
    api.hook("friend/added", webhooks.friend_added)
    api.hook("friend/removed", webhooks.friend_removed)
    for event in ("created", "disabled", "enabled"):
        api.hook(f"account/{event}", webhooks.account(f"account.{event}"))
    api.cluster_command("webhooks.dirty", webhooks.forwarded)
    api.periodic(config.interval, webhooks.tick)
    if config.catch_up_interval:
        api.periodic(config.catch_up_interval, webhooks.catch_up)
    api.on_stop(lambda: defer.ensureDeferred(webhooks.stop()))

    async def admin_status(call: HttpCall) -> dict:
        """``GET /admin/webhooks``: each endpoint's backlog, failures, last error and success."""
        return {"endpoints": await webhooks.status()}

    endpoint = obj(
        ["name", "url", "backlog", "failures"], name=string(), url=string(), backlog=integer(0), failures=integer(0)
    )
    api.route(
        "GET", "/admin/webhooks", admin_status, auth="admin", response=obj(["endpoints"], endpoints=array(endpoint))
    )
    return webhooks


__all__ = [
    "EVENT_TYPES",
    "Config",
    "Endpoint",
    "IWebhookStore",
    "SQLWebhookStore",
    "Webhooks",
    "envelope",
    "message_payload",
    "signed_headers",
]
