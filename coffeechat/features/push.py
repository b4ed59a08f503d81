"""Offline push notifications: a device that is offline, or whose app said it is in the
background, is notified of each message it should hear about, through the service its platform
uses (coffeechat/pushproviders/: APNs, FCM, Web Push, UnifiedPush, a signed webhook).

Devices register a *target* (PUSH_REGISTER_REQ: platform, token or endpoint, app id, locale,
extras such as Web Push's keys), bound to the connection that registered it (its device id);
registering the same (platform, token) again binds it again (apps register at every login).
PUSH_UNREGISTER_REQ forgets it, PUSH_SETTINGS_REQ holds the user's privacy (preview or "New
message", sender shown or not), APP_STATE_REQ says the app went to the background (or came back).

Nothing of this is on the message path: the ``message/stored`` hook only appends to a bounded
queue (drops are counted), and only when a provider is configured; a worker takes the queue in
batches off the reactor's current turn and decides, per recipient with targets (group members
looked up in batches, targets cached per user with a bound): do-not-disturb and mutes
(``dnd.notify_wanted``; @-mentions override a muted group), which targets' devices are offline or
in the background (presence ``devices_of``, across nodes), the badge (total unread, from the
conversation list, cached briefly and counted up meanwhile), the thread and collapse id (per
conversation), the title and text per the recipient's privacy, or the sender app's
``push_content``.  Sends are retried with exponential backoff and jitter (bounded attempts and
pending sends); a token the service calls dead is removed.  docs/push.md tells the rest.
"""

from __future__ import annotations

import importlib
import json
import random
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Message, MsgType, SessionType, User
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.pushproviders import IPushProvider, Notification, PushOutcome, PushTarget
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)
BUILTIN_PLATFORMS = ("apns", "fcm", "webpush", "unifiedpush", "webhook")
MAX_TOKEN = 4096  # characters: an endpoint URL, an APNs token (64 hex), an FCM token (~160)
MAX_FIELD = 128  # app_id, locale, extra keys
MAX_EXTRA = 16  # extra keys
MAX_EXTRA_VALUE = 1024
LOOKUP_CHUNK = 500  # users per targets query
NEW_MESSAGE = "New message"
_LABELS = {
    int(MsgType.FILE): "[File]",
    int(MsgType.IMAGE): "[Image]",
    int(MsgType.AUDIO): "[Voice]",
    int(MsgType.VIDEO): "[Video]",
    int(MsgType.LOCATION): "[Location]",
    int(MsgType.AVCHAT): "[Call]",
    12: "[Chat record]",
    int(pb.kCIM_MSG_TYPE_CUSTOM): "[Custom message]",
}
_TEXTS = frozenset({int(MsgType.TEXT), int(MsgType.TIPS)})


@dataclass
class Config:
    """[push]: the providers (a non-empty ``[push.<platform>]`` table turns one on), and the bounds
    of the worker that decides and sends off the message path."""

    apns: dict[str, Any] = field(default_factory=dict)
    fcm: dict[str, Any] = field(default_factory=dict)
    webpush: dict[str, Any] = field(default_factory=dict)
    unifiedpush: dict[str, Any] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    #: third parties' providers, by entry-point name (group ``coffeechat.push_providers``)
    providers: dict[str, Any] = field(default_factory=dict)
    app_name: str = "CoffeeChat"  # the title when the recipient hides the sender
    max_targets_per_user: int = 10
    queue_size: int = 10_000  # stored messages waiting for a decision (more are dropped, counted)
    batch_size: int = 200  # messages decided per worker turn
    interval: float = 0.05  # seconds between worker turns while there is work
    max_pending: int = 10_000  # notifications being sent or waiting for a retry
    max_in_flight: int = 200  # concurrent sends
    max_attempts: int = 5
    retry_base: float = 2.0  # seconds: the first retry's delay; doubled each time, with jitter
    retry_max: float = 300.0
    ttl: int = 86400  # how long a service may keep a notification for an offline device
    cache_users: int = 50_000  # users whose targets and settings a node keeps in memory
    badge_ttl: float = 30.0  # seconds a user's unread total is counted up before it is read again
    max_group_members: int = 10_000  # larger groups are not pushed (their members would not want it)
    preview_chars: int = 100
    max_push_content_bytes: int = 256
    default_show_preview: bool = True
    default_show_sender: bool = True

    def validate(self) -> None:
        for name in ("max_targets_per_user", "queue_size", "batch_size", "max_pending", "max_in_flight"):
            if getattr(self, name) < 1:
                raise ConfigError(f"push.{name} must be at least 1")
        if not 1 <= self.max_attempts <= 20:
            raise ConfigError("push.max_attempts must be between 1 and 20")
        for name in ("interval", "retry_base", "retry_max", "badge_ttl"):
            if getattr(self, name) < 0:
                raise ConfigError(f"push.{name} must be >= 0")
        if self.cache_users < 0 or self.preview_chars < 1 or self.ttl < 0 or self.max_push_content_bytes < 1:
            raise ConfigError("push: cache_users, ttl >= 0; preview_chars, max_push_content_bytes >= 1")
        for platform in BUILTIN_PLATFORMS:
            table = getattr(self, platform)
            if not isinstance(table, dict):
                raise ConfigError(f"[push.{platform}] must be a table")
        if not isinstance(self.providers, dict) or not all(isinstance(v, dict) for v in self.providers.values()):
            raise ConfigError("[push.providers.<name>] must be tables")

    def provider_tables(self) -> dict[str, dict[str, Any]]:
        """The configured providers: platform name -> its table."""
        tables = {p: getattr(self, p) for p in BUILTIN_PLATFORMS if getattr(self, p)}
        tables.update({name: table for name, table in self.providers.items() if table})
        return tables


# -- the records


@dataclass(frozen=True, slots=True)
class StoredTarget:
    """A registered target with what the decision needs: the device it is bound to."""

    target: PushTarget
    device_id: str
    background: bool
    updated_at: int


@dataclass(frozen=True, slots=True)
class PushSettings:
    """A user's notification privacy."""

    show_preview: bool = True
    show_sender: bool = True


class PushRefused(Exception):
    """A registration the store refused in its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- storage


class IPushStore(Interface):
    """The push feature's storage (a facet: an SQL backend gets :class:`SQLPushStore`; tested by
    ``coffeechat.testing.conformance_push.PushStoreConformanceTests``)."""

    def register(user_id: int, platform: str, token: str, app_id: str, locale: str, extra: dict,
                 device_id: str, now: int, max_targets: int):  # fmt: skip
        """Add or re-bind the target (platform, token) to this user and device (in the
        foreground); fire with its StoredTarget.  A new one beyond ``max_targets`` of the user
        fails with :class:`PushRefused` (PUSH_TOO_MANY_TARGETS)."""

    def unregister(user_id: int, target_id: int, platform: str, token: str, device_id: str):
        """Remove the user's target ``target_id``, or (platform, token), or (both empty) every
        target bound to ``device_id``; fire with the user ids and count removed: ``(count)``."""

    def remove_targets(target_ids: list[int]):
        """Remove targets (dead tokens); fire with the count removed."""

    def set_background(user_id: int, device_id: str, background: bool):
        """Mark the user's targets bound to ``device_id``; fire with how many there are."""

    def targets_of(user_ids: list[int]):
        """Fire with ``{user_id: [StoredTarget]}`` for those of ``user_ids`` that have targets
        (oldest first)."""

    def settings_of(user_ids: list[int]):
        """Fire with ``{user_id: PushSettings}`` for those that saved one."""

    def save_settings(user_id: int, settings: PushSettings, now: int):
        """Replace the user's settings; fires with None."""


_TARGET_COLS = "target_id, user_id, platform, token, app_id, locale, extra, device_id, background, updated_at"


def _target(row: tuple) -> StoredTarget:
    target_id, user_id, platform, token, app_id, locale, extra, device_id, background, updated_at = row
    try:
        extras = json.loads(extra)
    except ValueError:
        extras = {}
    target = PushTarget(int(user_id), int(target_id), platform, token, app_id, locale, extras)
    return StoredTarget(target, device_id, bool(background), int(updated_at))


def _register_txn(
    txn: ISQLTransaction,
    user_id: int,
    platform: str,
    token: str,
    app_id: str,
    locale: str,
    extra: str,
    device_id: str,
    now: int,
    max_targets: int,
) -> StoredTarget:
    if txn.engine == "postgres":  # one user's registrations one at a time (the count)
        txn.execute("SELECT user_id FROM users WHERE user_id = ? FOR UPDATE", (user_id,))
    found = txn.execute(
        "SELECT user_id FROM push_targets WHERE platform = ? AND token = ?", (platform, token)
    ).fetchone()
    if found is None or int(found[0]) != user_id:
        (count,) = txn.execute("SELECT count(*) FROM push_targets WHERE user_id = ?", (user_id,)).fetchone()
        if count >= max_targets:
            raise PushRefused(ErrorCode.PUSH_TOO_MANY_TARGETS, f"at most {max_targets} push targets per user")
    row = txn.execute(
        "INSERT INTO push_targets (user_id, platform, token, app_id, locale, extra, device_id, background, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?) "
        "ON CONFLICT (platform, token) DO UPDATE SET user_id = excluded.user_id, app_id = excluded.app_id, "
        "locale = excluded.locale, extra = excluded.extra, device_id = excluded.device_id, background = FALSE, "
        f"updated_at = excluded.updated_at RETURNING {_TARGET_COLS}",
        (user_id, platform, token, app_id, locale, extra, device_id, now, now),
    ).fetchone()
    return _target(row)


def _unregister_txn(
    txn: ISQLTransaction, user_id: int, target_id: int, platform: str, token: str, device_id: str
) -> int:
    if target_id:
        sql, params = "user_id = ? AND target_id = ?", (user_id, target_id)
    elif token:
        sql, params = "user_id = ? AND platform = ? AND token = ?", (user_id, platform, token)
    else:
        sql, params = "user_id = ? AND device_id = ?", (user_id, device_id)
    return len(txn.execute(f"DELETE FROM push_targets WHERE {sql} RETURNING target_id", params).fetchall())


def _remove_txn(txn: ISQLTransaction, target_ids: list[int]) -> int:
    clause, params = txn.in_list("target_id", target_ids)
    return len(txn.execute(f"DELETE FROM push_targets WHERE {clause} RETURNING target_id", params).fetchall())


def _background_txn(txn: ISQLTransaction, user_id: int, device_id: str, background: bool) -> int:
    rows = txn.execute(
        "UPDATE push_targets SET background = ? WHERE user_id = ? AND device_id = ? RETURNING target_id",
        (background, user_id, device_id),
    ).fetchall()
    return len(rows)


def _targets_txn(txn: ISQLTransaction, user_ids: list[int]) -> dict[int, list[StoredTarget]]:
    clause, params = txn.in_list("user_id", user_ids)
    rows = txn.execute(f"SELECT {_TARGET_COLS} FROM push_targets WHERE {clause} ORDER BY target_id", params)
    out: dict[int, list[StoredTarget]] = {}
    for row in rows.fetchall():
        found = _target(row)
        out.setdefault(found.target.user_id, []).append(found)
    return out


def _settings_txn(txn: ISQLTransaction, user_ids: list[int]) -> dict[int, PushSettings]:
    clause, params = txn.in_list("user_id", user_ids)
    rows = txn.execute(f"SELECT user_id, show_preview, show_sender FROM push_settings WHERE {clause}", params)
    return {int(u): PushSettings(bool(p), bool(s)) for u, p, s in rows.fetchall()}


def _save_settings_txn(txn: ISQLTransaction, user_id: int, s: PushSettings, now: int) -> None:
    txn.execute(
        "INSERT INTO push_settings (user_id, show_preview, show_sender, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET show_preview = excluded.show_preview, "
        "show_sender = excluded.show_sender, updated_at = excluded.updated_at",
        (user_id, s.show_preview, s.show_sender, now),
    )


@implementer(IPushStore)
class SQLPushStore:
    """IPushStore written once for every SQL backend (its tables: push.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def register(
        self,
        user_id: int,
        platform: str,
        token: str,
        app_id: str,
        locale: str,
        extra: dict,
        device_id: str,
        now: int,
        max_targets: int,
    ) -> defer.Deferred:
        extras = json.dumps(extra, ensure_ascii=False, sort_keys=True)
        return self.db.run_write(
            "push_register",
            _register_txn,
            int(user_id),
            platform,
            token,
            app_id,
            locale,
            extras,
            device_id,
            int(now),
            int(max_targets),
        )

    def unregister(self, user_id: int, target_id: int, platform: str, token: str, device_id: str) -> defer.Deferred:
        return self.db.run_write(
            "push_unregister", _unregister_txn, int(user_id), int(target_id), platform, token, device_id
        )

    def remove_targets(self, target_ids: list[int]) -> defer.Deferred:
        if not target_ids:
            return defer.succeed(0)
        return self.db.run_write("push_remove", _remove_txn, [int(t) for t in target_ids])

    def set_background(self, user_id: int, device_id: str, background: bool) -> defer.Deferred:
        return self.db.run_write("push_background", _background_txn, int(user_id), device_id, bool(background))

    def targets_of(self, user_ids: list[int]) -> defer.Deferred:
        if not user_ids:
            return defer.succeed({})
        return self.db.run_read("push_targets", _targets_txn, [int(u) for u in user_ids])

    def settings_of(self, user_ids: list[int]) -> defer.Deferred:
        if not user_ids:
            return defer.succeed({})
        return self.db.run_read("push_settings", _settings_txn, [int(u) for u in user_ids])

    def save_settings(self, user_id: int, settings: PushSettings, now: int) -> defer.Deferred:
        return self.db.run_write("push_save_settings", _save_settings_txn, int(user_id), settings, int(now))


# -- the providers


def build_providers(config: Config, reactor: Any) -> dict[str, Any]:
    """The providers the config names: ``coffeechat.pushproviders.<platform>.create(table,
    reactor)`` for the built-in platforms, the ``coffeechat.push_providers`` entry point of that
    name for the others."""
    providers: dict[str, Any] = {}
    third_party = {ep.name: ep for ep in entry_points(group="coffeechat.push_providers")}
    for platform, table in config.provider_tables().items():
        if platform in BUILTIN_PLATFORMS:
            try:
                module = importlib.import_module(f"coffeechat.pushproviders.{platform}")
            except ImportError as e:
                raise ConfigError(f"[push.{platform}]: the provider cannot be loaded ({e})") from None
            create = module.create
        elif isinstance(table.get("factory"), str):  # "package.module:callable", not installed as a plugin
            from coffeechat.plugins import load_object

            table = {k: v for k, v in table.items() if k != "factory"}
            create = load_object(table_factory := config.providers[platform]["factory"])
            del table_factory
        elif platform in third_party:
            create = third_party[platform].load()
        else:
            raise ConfigError(f"[push.providers.{platform}]: no provider of that name (entry point group "
                              "coffeechat.push_providers)")  # fmt: skip
        try:
            provider = create(dict(table), reactor)
        except ConfigError:
            raise
        except (ValueError, TypeError, KeyError, OSError) as e:
            raise ConfigError(f"[push.{platform}]: {e}") from None
        if not IPushProvider.providedBy(provider):
            raise ConfigError(f"[push.{platform}]: {provider!r} does not provide IPushProvider")
        providers[platform] = provider
    return providers


# -- the decision


def preview(message: Message, chars: int) -> str:
    """One line for a notification: the text, or the kind of message."""
    if message.msg_type in _TEXTS:
        text = message.data.decode("utf-8", "replace").strip().replace("\n", " ")
        return text if len(text) <= chars else text[: max(0, chars - 1)] + "\u2026"
    label = _LABELS.get(message.msg_type, "[Message]")
    if message.msg_type == int(pb.kCIM_MSG_TYPE_CUSTOM):
        try:
            body = json.loads(message.data)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("description"), str) and body["description"].strip():
            return body["description"][:chars]
    return label


def cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8 (at a character boundary)."""
    raw = text.encode("utf-8", "replace")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


@dataclass(slots=True)
class _Send:
    target: PushTarget
    notification: Notification
    attempt: int = 0


class _Entry:
    """What a node keeps of one user: their targets and settings."""

    __slots__ = ("settings", "targets")

    def __init__(self, targets: tuple[StoredTarget, ...], settings: PushSettings) -> None:
        self.targets = targets
        self.settings = settings


class PushNotifier:
    """Registers targets, decides who is notified of each stored message, and sends."""

    def __init__(self, api: ModuleAPI, store: IPushStore, config: Config, providers: dict[str, Any]) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.providers = providers
        self.clock = api.clock
        self.defaults = PushSettings(config.default_show_preview, config.default_show_sender)
        self.queue: deque[tuple[Message, str]] = deque()
        self.pending: deque[_Send] = deque()  # ready to send
        self.waiting = 0  # scheduled retries
        self.in_flight = 0
        self._cache: OrderedDict[int, _Entry] = OrderedDict()
        self._badges: OrderedDict[int, tuple[int, float, dict[str, int]]] = OrderedDict()
        self._turn: Any = None
        self._retries: dict[int, Any] = {}  # scheduled retries, cancelled when the node stops
        self._deciding = False
        self._dnd: Any = None
        self._groups: Any = None
        self._random = random.Random()
        self.stats = {"queued": 0, "dropped": 0, "decided": 0, "sent": 0, "failed": 0, "retried": 0,
                      "dead": 0, "given_up": 0, "overflow": 0}  # fmt: skip

    # -- the cache

    def forget(self, user_id: int) -> None:
        self._cache.pop(user_id, None)

    def changed(self, user_id: int) -> None:
        """The user's targets or settings changed here: forget them here and on the other nodes."""
        self.forget(user_id)
        self.api.broadcast("push/changed", {"u": user_id})

    def changed_elsewhere(self, data: dict, from_node: str) -> None:
        self.forget(int(data["u"]))

    async def entries(self, user_ids: Iterable[int]) -> dict[int, _Entry]:
        """The targets and settings of these users (cached; the misses read in batches)."""
        found: dict[int, _Entry] = {}
        missing: list[int] = []
        for user_id in user_ids:
            entry = self._cache.get(user_id)
            if entry is None:
                missing.append(user_id)
            else:
                self._cache.move_to_end(user_id)
                found[user_id] = entry
        for start in range(0, len(missing), LOOKUP_CHUNK):
            chunk = missing[start : start + LOOKUP_CHUNK]
            targets = await self.store.targets_of(chunk)
            settings = await self.store.settings_of([u for u in chunk if u in targets]) if targets else {}
            for user_id in chunk:
                entry = _Entry(tuple(targets.get(user_id, ())), settings.get(user_id, self.defaults))
                found[user_id] = entry
                if self.config.cache_users:
                    self._cache[user_id] = entry
            while len(self._cache) > self.config.cache_users:
                self._cache.popitem(last=False)
        return found

    # -- the commands

    async def register(self, user: User, device_id: str, req: Any) -> StoredTarget:
        platform, token = req.platform, req.token
        if platform not in self.providers:
            raise ChatError(ErrorCode.PUSH_PLATFORM_UNAVAILABLE, f"no push provider for {platform[:32]!r} here")
        if not token or len(token) > MAX_TOKEN or len(req.app_id) > MAX_FIELD or len(req.locale) > MAX_FIELD:
            raise ChatError(ErrorCode.PUSH_BAD_TARGET, "token (1-4096 characters), app_id and locale (128)")
        # map<string, string> on the wire; "true"/"false" become booleans (APNs "sandbox")
        extra: dict[str, Any] = {k: {"true": True, "false": False}.get(v, v) for k, v in req.extra.items()}
        if len(extra) > MAX_EXTRA or any(len(k) > MAX_FIELD or len(v) > MAX_EXTRA_VALUE for k, v in req.extra.items()):
            raise ChatError(ErrorCode.PUSH_BAD_TARGET, "at most 16 extra keys, 128 / 1024 characters")
        if platform in ("webpush", "unifiedpush") and not token.startswith(("https://", "http://")):
            raise ChatError(ErrorCode.PUSH_BAD_TARGET, f"a {platform} token is the push endpoint URL")
        if platform == "webpush" and not (extra.get("p256dh") and extra.get("auth")):
            raise ChatError(ErrorCode.PUSH_BAD_TARGET, "a Web Push subscription needs its p256dh and auth keys")
        check = getattr(self.providers[platform], "check_target", None)
        if check is not None:
            problem = check(token, extra)
            if problem:
                raise ChatError(ErrorCode.PUSH_BAD_TARGET, problem)
        try:
            found = await self.store.register(
                user.user_id,
                platform,
                token,
                req.app_id,
                req.locale,
                extra,
                device_id,
                int(self.clock.seconds()),
                self.config.max_targets_per_user,
            )
        except PushRefused as e:
            raise ChatError(e.code, str(e)) from None
        self.changed(user.user_id)
        return found

    def logged_out(self, session: Any) -> None:
        """``device/logout``: a device that signs out is not notified any more (its targets go)."""
        if not session.device_id:
            return
        done = defer.ensureDeferred(self.unregister(session.user, session.device_id, 0, "", ""))
        done.addErrback(lambda f: self.api.log.failure("push: unregistering at logout failed", f))

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: every push target of the account goes (its settings are inert)."""
        targets = (await self.store.targets_of([user.user_id])).get(user.user_id, [])
        if targets and await self.store.remove_targets([t.target.target_id for t in targets]):
            self.changed(user.user_id)

    async def unregister(self, user: User, device_id: str, target_id: int, platform: str, token: str) -> int:
        removed = await self.store.unregister(user.user_id, target_id, platform, token, device_id)
        if removed:
            self.changed(user.user_id)
        return removed

    async def settings(self, user: User, wanted: PushSettings | None) -> PushSettings:
        if wanted is not None:
            await self.store.save_settings(user.user_id, wanted, int(self.clock.seconds()))
            self.changed(user.user_id)
            return wanted
        found = await self.store.settings_of([user.user_id])
        return found.get(user.user_id, self.defaults)

    async def app_state(self, user: User, device_id: str, background: bool) -> None:
        if await self.store.set_background(user.user_id, device_id, background):
            self.changed(user.user_id)

    # -- the queue (the message path's only cost)

    def message_stored(self, message: Message, sender: User, device: object) -> None:
        if len(self.queue) >= self.config.queue_size:
            self.stats["dropped"] += 1
            return
        self.queue.append((message, sender.nick_name))
        self.stats["queued"] += 1
        if self._turn is None and not self._deciding:
            self._turn = self.clock.callLater(0, self._decide_batch)

    def _decide_batch(self) -> None:
        self._turn = None
        if not self.queue:
            return
        batch = [self.queue.popleft() for _ in range(min(self.config.batch_size, len(self.queue)))]
        self._deciding = True
        d = defer.ensureDeferred(self._decide_all(batch))
        d.addErrback(lambda f: self.api.log.failure("push: deciding a batch failed", f))
        d.addBoth(self._batch_done)

    def _batch_done(self, _: Any) -> None:
        self._deciding = False
        if self.queue and self._turn is None:
            self._turn = self.clock.callLater(self.config.interval, self._decide_batch)

    async def _decide_all(self, batch: list[tuple[Message, str]]) -> None:
        for message, nick in batch:
            try:
                await self.decide(message, nick)
            except Exception:  # one message's failure (storage down) must not lose the batch
                self.api.log.failure("push: deciding message {conv}/{seq} failed", conv=message.conv, seq=message.seq)
            self.stats["decided"] += 1

    async def recipients(self, message: Message) -> tuple[list[int], str]:
        """Whom a message may notify (never its sender), and the group's name for groups."""
        if message.session_type == _SINGLE:
            return ([message.to_id] if message.to_id != message.sender_id else []), ""
        if message.session_type != _GROUP or self._groups is None:
            return [], ""
        state = await self._groups.cache.get(message.to_id)
        if state is None or len(state.members) > self.config.max_group_members:
            return [], ""
        return [u for u in state.members if u != message.sender_id], state.group.name

    async def decide(self, message: Message, nick: str) -> int:
        """Enqueue the notifications of one stored message; returns how many."""
        users, group_name = await self.recipients(message)
        if not users:
            return 0
        entries = await self.entries(users)
        mentions = getattr(message, "mentions", ()) or ()
        at_all = bool(getattr(message, "at_all", False))
        count = 0
        for user_id, entry in entries.items():
            targets = [t for t in entry.targets if t.target.platform in self.providers]
            if not targets:
                continue
            if self._dnd is not None and not await self._dnd.notify_wanted(user_id, message, mentions, at_all):
                continue
            online = {device_id for _, device_id, _ in await self.api.router.presence.devices_of(user_id)}
            wanted = [t for t in targets if t.background or t.device_id not in online]
            if not wanted:
                continue
            badge = await self.badge(user_id, message)
            notification = self.notification(user_id, message, nick, group_name, entry.settings, badge)
            for t in wanted:
                self._enqueue(_Send(t.target, notification))
                count += 1
        return count

    async def badge(self, user_id: int, message: Message) -> int:
        """The user's total unread: read from the conversation list at most every badge_ttl
        seconds, and meanwhile counted up by each newer message (the list read already counts
        the messages stored before it)."""
        now = self.clock.seconds()
        cached = self._badges.get(user_id)
        if cached is not None and now - cached[1] < self.config.badge_ttl:
            self._badges.move_to_end(user_id)
            badge, at, seen = cached
            if message.seq > seen.get(message.conv, 0):
                seen[message.conv] = message.seq
                badge += 1
                self._badges[user_id] = (badge, at, seen)
            return badge
        entries = await self.api.store.conversations_of(user_id, 0, 1000)
        badge = sum(e.unread for e in entries)
        self._badges[user_id] = (badge, now, {e.conv: e.last_seq for e in entries if e.unread})
        while len(self._badges) > max(1, self.config.cache_users // 10):
            self._badges.popitem(last=False)
        return badge

    def notification(
        self, user_id: int, message: Message, nick: str, group_name: str, settings: PushSettings, badge: int
    ) -> Notification:
        session_id = message.session_id_for(user_id)
        thread = f"c{message.session_type}-{session_id}"
        group = message.session_type == _GROUP
        if settings.show_sender:
            title = (group_name or f"Group {session_id}") if group else (nick or self.config.app_name)
        else:
            title = self.config.app_name
        if settings.show_preview:
            text = cut_bytes(message.push_content, self.config.max_push_content_bytes) or preview(
                message, self.config.preview_chars
            )
            body = f"{nick}: {text}" if group and settings.show_sender and nick else text
        else:
            body = NEW_MESSAGE
        return Notification(
            title=title,
            body=body,
            badge=badge,
            thread_id=thread,
            collapse_id=thread,
            session_type=message.session_type,
            session_id=session_id,
            server_msg_id=message.seq,
            sender_id=message.sender_id,
            ttl=self.config.ttl,
            data={
                "session_type": message.session_type,
                "session_id": session_id,
                "server_msg_id": message.seq,
                "sender_id": message.sender_id,
                "msg_type": message.msg_type,
            },
        )

    async def notify_call(
        self, user_id: int, title: str, body: str, caller_id: int, data: dict[str, Any], ttl: int
    ) -> int:
        """An incoming call (the calls feature): a high-priority notification to each of the
        user's targets whose device is offline or in the background; a target registered with
        ``extra`` ``voip`` true (an APNs PushKit token) gets a VoIP push where its provider
        ``supports_voip`` (APNs).  Returns how many."""
        if not self.providers:
            return 0
        entry = (await self.entries([user_id]))[user_id]
        targets = [t for t in entry.targets if t.target.platform in self.providers]
        if not targets:
            return 0
        online = {device_id for _, device_id, _ in await self.api.router.presence.devices_of(user_id)}
        wanted = [t for t in targets if t.background or t.device_id not in online]
        if not wanted:
            return 0
        badge = sum(e.unread for e in await self.api.store.conversations_of(user_id, 0, 1000))
        thread = f"c{_SINGLE}-{caller_id}"
        for t in wanted:
            provider = self.providers[t.target.platform]
            voip = t.target.extra.get("voip") is True and getattr(provider, "supports_voip", False)
            note = Notification(
                title=title if entry.settings.show_sender else self.config.app_name,
                body=body if entry.settings.show_sender else "Incoming call",
                badge=badge,
                thread_id=thread,
                collapse_id=f"call-{data.get('call', '')}"[:64],
                session_type=_SINGLE,
                session_id=caller_id,
                sender_id=caller_id,
                high_priority=True,
                voip=voip,
                ttl=ttl,
                data={"kind": "call", **data},
            )
            self._enqueue(_Send(t.target, note))
        return len(wanted)

    # -- sending

    def _enqueue(self, send: _Send) -> None:
        if len(self.pending) + self.waiting + self.in_flight >= self.config.max_pending:
            self.stats["overflow"] += 1
            return
        self.pending.append(send)
        self._pump()

    def _pump(self) -> None:
        while self.pending and self.in_flight < self.config.max_in_flight:
            send = self.pending.popleft()
            provider = self.providers.get(send.target.platform)
            if provider is None:
                continue
            self.in_flight += 1
            d = defer.maybeDeferred(provider.send, send.target, send.notification)
            d.addErrback(lambda f: PushOutcome(ok=False, detail=f.getErrorMessage()))
            d.addCallback(self._sent, send)
            d.addErrback(lambda f: self.api.log.failure("push: handling an outcome failed", f))

    def _sent(self, outcome: PushOutcome, send: _Send) -> None:
        self.in_flight -= 1
        if outcome.ok:
            self.stats["sent"] += 1
        elif outcome.dead:
            self.stats["dead"] += 1
            d = self.store.remove_targets([send.target.target_id])
            d.addCallback(lambda _: self.changed(send.target.user_id))
            d.addErrback(lambda f: self.api.log.failure("push: removing a dead target failed", f))
        elif outcome.permanent or send.attempt + 1 >= self.config.max_attempts:
            self.stats["given_up" if not outcome.permanent else "failed"] += 1
            self.api.log.info(
                "push: gave up on target {target} after {n} attempts: {detail}",
                target=send.target.target_id,
                n=send.attempt + 1,
                detail=outcome.detail,
            )
        else:
            self.stats["retried"] += 1
            send.attempt += 1
            delay = min(self.config.retry_max, self.config.retry_base * 2 ** (send.attempt - 1))
            delay = delay * (0.5 + self._random.random() / 2)  # jitter: not all at once after an outage
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, self.config.retry_max))
            self.waiting += 1
            call = self.clock.callLater(delay, self._retry, send)
            self._retries[id(send)] = call
        self._pump()

    def _retry(self, send: _Send) -> None:
        self._retries.pop(id(send), None)
        self.waiting -= 1
        self.pending.append(send)
        self._pump()

    def close(self) -> defer.Deferred:
        if self._turn is not None and self._turn.active():
            self._turn.cancel()
        self._turn = None
        for call in self._retries.values():  # a stopping node sends nothing more
            if call.active():
                call.cancel()
        self._retries.clear()
        self.waiting = 0
        self.pending.clear()
        self.queue.clear()
        closing = [defer.maybeDeferred(p.close) for p in self.providers.values()]
        return defer.gatherResults(closing, consumeErrors=True).addBoth(lambda _: None)


def settings_pb(s: PushSettings) -> pb.CIMPushSettings:
    return pb.CIMPushSettings(show_preview=s.show_preview, show_sender=s.show_sender)


def setup(api: ModuleAPI) -> PushNotifier:
    """PUSH_REGISTER / UNREGISTER / SETTINGS / APP_STATE, GET /push/vapid, and the worker (only
    when a provider is configured)."""
    config: Config = api.config
    providers = build_providers(config, api.clock)
    push = PushNotifier(api, api.open_store(IPushStore, SQLPushStore), config, providers)
    api.cluster_command("push/changed", push.changed_elsewhere)
    if providers:
        try:
            push._dnd = api.depends("dnd")
        except ConfigError:
            push._dnd = None
        try:
            push._groups = api.depends("groups")
        except ConfigError:
            push._groups = None
        api.hook("message/stored", push.message_stored)
        api.on_stop(push.close)

    api.hook("device/logout", push.logged_out)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(push.account_deleted(user)))

    @api.request(Cmd.PUSH_REGISTER_REQ)
    async def register(session: Session, req: pb.CIMPushRegisterReq) -> pb.CIMPushRegisterRsp:
        found = await push.register(session.user, session.device_id, req)
        return pb.CIMPushRegisterRsp(
            user_id=session.user_id, result_code=ErrorCode.SUCCESS, result_string="ok", target_id=found.target.target_id
        )

    @api.request(Cmd.PUSH_UNREGISTER_REQ)
    async def unregister(session: Session, req: pb.CIMPushUnregisterReq) -> pb.CIMPushUnregisterRsp:
        removed = await push.unregister(session.user, session.device_id, req.target_id, req.platform, req.token)
        return pb.CIMPushUnregisterRsp(
            user_id=session.user_id, result_code=ErrorCode.SUCCESS, result_string="ok", removed=removed
        )

    @api.request(Cmd.PUSH_SETTINGS_REQ)
    async def settings(session: Session, req: pb.CIMPushSettingsReq) -> pb.CIMPushSettingsRsp:
        wanted = PushSettings(req.settings.show_preview, req.settings.show_sender) if req.set else None
        found = await push.settings(session.user, wanted)
        return pb.CIMPushSettingsRsp(
            user_id=session.user_id, result_code=ErrorCode.SUCCESS, result_string="ok", settings=settings_pb(found)
        )

    @api.request(Cmd.APP_STATE_REQ)
    async def app_state(session: Session, req: pb.CIMAppStateReq) -> pb.CIMAppStateRsp:
        await push.app_state(session.user, session.device_id, req.background)
        return pb.CIMAppStateRsp(user_id=session.user_id, result_code=ErrorCode.SUCCESS, result_string="ok")

    async def vapid(call: HttpCall) -> dict:
        """The Web Push VAPID public key (the web client subscribes with it)."""
        provider = providers.get("webpush")
        key = getattr(provider, "public_key", "") if provider is not None else ""
        if not key:
            return {"error_code": ErrorCode.PUSH_PLATFORM_UNAVAILABLE, "error_msg": "Web Push is not configured"}
        return {"error_code": ErrorCode.SUCCESS, "error_msg": "ok", "public_key": key}

    api.route("GET", "/push/vapid", vapid, auth="public")
    return push
