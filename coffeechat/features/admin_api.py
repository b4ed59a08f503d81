"""The admin REST API's own part: user search, inspection, deletion, sessions and kicks; groups
(list, inspect, change owner, dissolve); messages (a conversation's history, its export as JSON
lines); system notices to one user and broadcasts to all or a segment; and the OpenAPI documents
of the whole HTTP API (``GET /admin/openapi.json``, ``GET /api/openapi.json``).

The other admin routes stay in the features they belong to (accounts: create, disable, password,
tokens; recall; bots; files; webhooks); this module uses their services, never copies of them.
Every route describes itself (``request=``, ``response=``, ``query=``) for the OpenAPI document.

Decisions (docs/admin-api.md, docs/decisions.md "Issue 14: the admin REST API"):

- Deleting a user keeps the account's row, anonymised (name ``deleted-<id>``, no nick, avatar,
  phone or password, disabled), so that ids are never reused and the messages others received
  keep a sender; it revokes the tokens, disconnects every device, leaves every group (an owner's
  group passes to its longest-standing member), and fires ``account/deleted`` so that each
  feature erases what it keeps of the user (friends, push targets, files, profile ...).  The
  messages the user sent stay in their conversations: they are the recipients' history too.
- A system notice is a 1:1 message from a system account (``[admin_api] system_user``, made on
  first use, without a password): TEXT by default, so the original clients show it as a chat
  with "System", or TIPS (8) on request.  Stored like any message, so offline users get it.
  A broadcast is a background job, walked in user id order in batches by one node at a time
  (a lease in the database), with its progress readable and a cancel; each recipient's copy has
  the client_msg_id ``broadcast-<job>-<user>``, so a batch replayed after a crash stores nothing
  twice.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

import coffeechat
from coffeechat import openapi
from coffeechat.auth import name_key
from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.accounts import check_name
from coffeechat.features.messages import MessagePush
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Message, MsgType, NewMessage, SessionType, User, conversation_key
from coffeechat.modules import HttpCall, HttpReply, ModuleAPI
from coffeechat.openapi import ID, Query, array, boolean, integer, nullable, obj, paging, string

SECTION = "admin_api"
NOTICE_TYPES = (int(MsgType.TEXT), int(MsgType.TIPS))
RUNNING, DONE, CANCELLED = "running", "done", "cancelled"
CONV_PATTERN = r"^(p:[1-9][0-9]{0,18}:[1-9][0-9]{0,18}|g:[1-9][0-9]{0,18})$"
CONV_RE = re.compile(r"(?:p:([1-9][0-9]{0,18}):([1-9][0-9]{0,18})|g:([1-9][0-9]{0,18}))")
PAGE_DEFAULT = 50
PAGE_MAX = 500
MAX_QUERY = 64
EXPORT_READ = 500
KICK_CODE = ErrorCode.FORBIDDEN
DELETED_NAME = "deleted-{}"


@dataclass
class Config:
    """[admin_api]: the sender of system notices, and the bounds of broadcasts and exports."""

    #: the account system notices come from (made on first use, without a password)
    system_user: str = "system"
    system_nick: str = "System"
    max_notice_bytes: int = 4096
    #: recipients a broadcast reaches per step, and the seconds between steps (per node)
    broadcast_batch: int = 500
    broadcast_interval: float = 1.0
    #: the largest list of user ids a broadcast segment may name
    max_segment_users: int = 10000
    #: how long a node holds a running broadcast before another may take it over (seconds)
    broadcast_lease: int = 60
    #: one export answer holds at most this many messages, and about this many bytes
    export_max_messages: int = 10000
    export_max_bytes: int = 8 * 1024 * 1024

    def validate(self) -> None:
        try:
            check_name(self.system_user)
        except ChatError:
            raise ConfigError("admin_api.system_user must be 5-32 letters, digits or _.@-") from None
        if not self.system_nick.strip() or len(self.system_nick) > 64:
            raise ConfigError("admin_api.system_nick must be 1-64 characters")
        for key, low, high in (
            ("max_notice_bytes", 1, 65536),
            ("broadcast_batch", 1, 100000),
            ("max_segment_users", 1, 1000000),
            ("broadcast_lease", 5, 86400),
            ("export_max_messages", 1, 1000000),
            ("export_max_bytes", 1024, 1024**3),
        ):
            if not low <= getattr(self, key) <= high:
                raise ConfigError(f"admin_api.{key} must be within {low}..{high}")
        if not 0 < self.broadcast_interval <= 3600:
            raise ConfigError("admin_api.broadcast_interval must be within (0, 3600] seconds")


# -- storage


@dataclass(frozen=True, slots=True)
class Broadcast:
    job_id: int
    created_at: int
    msg_type: int
    body: str
    segment: dict
    targets: tuple[int, ...]
    created_after: int
    created_before: int
    status: str
    cursor: int
    sent: int
    finished_at: int


class IAdminStore(Interface):
    """What the admin API reads and writes beyond the core's interfaces (a facet)."""

    def search_users(key_prefix: str, nick_prefix: str, after_id: int, limit: int):
        """Fire with up to ``limit`` Users with id > ``after_id``, ascending, whose name key
        starts with ``key_prefix`` or whose lower-cased nick starts with ``nick_prefix``."""

    def deleted(user_ids: list):
        """Fire with the set of those of ``user_ids`` that were deleted."""

    def anonymise_user(user_id: int, name: str, now: int):
        """Rename the account to ``name``, clear its nick, avatar, phone and password, disable
        it, and record it as deleted; fire with True when it existed."""

    def tokens_of(user_id: int, now: int, limit: int):
        """Fire with ``(hash, created_at, expires_at, label)`` of the user's live tokens, newest first."""

    def groups(name_part: str, after_id: int, limit: int):
        """Fire with ``(group_id, name, group_type, owner_id, member_count, created_at,
        updated_at)`` of live groups with id > ``after_id`` whose lower-cased name contains
        ``name_part``, ascending."""

    def create_broadcast(msg_type: int, body: str, segment: str, targets: str, after: int, before: int, now: int):
        """Store a running broadcast; fire with it."""

    def broadcast(job_id: int):
        """Fire with the Broadcast or None."""

    def broadcasts(after_id: int, limit: int):
        """Fire with Broadcasts by descending id, below ``after_id`` (0: from the newest)."""

    def claim_broadcast(node: str, now: int, lease: int):
        """Take (or keep) the lease of the oldest running broadcast whose lease is this node's or
        ran out; fire with it, or None."""

    def advance_broadcast(job_id: int, node: str, cursor: int, sent: int, done: bool, now: int, lease: int):
        """Record a step of a broadcast this node holds; fire with False when it no longer runs
        here (cancelled, or taken over)."""

    def cancel_broadcast(job_id: int, now: int):
        """Stop a running broadcast; fire with it (None when there is none)."""

    def recipients(after_id: int, targets: list, created_after: int, created_before: int, limit: int):
        """Fire with up to ``limit`` ids > ``after_id``, ascending, of enabled, undeleted users
        created in [``created_after``, ``created_before``) (0: unbounded), among ``targets``
        when it is not empty."""


_USER_COLS = "user_id, name, nick_name, password_hash, disabled, created_at, avatar_url, phone"
_BROADCAST_COLS = (
    "job_id, created_at, msg_type, body, segment, targets, created_after, created_before, status, cursor_id, sent, "
    "finished_at"
)


def _like(prefix: str) -> str:
    return prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _user(row: Any) -> User:
    return User(int(row[0]), row[1], row[2], row[3], bool(row[4]), int(row[5]), row[6], row[7])


def _broadcast(row: Any) -> Broadcast:
    return Broadcast(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        row[3],
        json.loads(row[4]),
        tuple(json.loads(row[5])) if row[5] else (),
        int(row[6]),
        int(row[7]),
        row[8],
        int(row[9]),
        int(row[10]),
        int(row[11]),
    )


def _search_txn(txn: ISQLTransaction, key_prefix: str, nick_prefix: str, after_id: int, limit: int) -> list[User]:
    rows = txn.execute(
        f"SELECT {_USER_COLS} FROM users WHERE user_id > ? AND (name_key LIKE ? ESCAPE '!' "
        "OR lower(nick_name) LIKE ? ESCAPE '!') ORDER BY user_id LIMIT ?",
        (after_id, _like(key_prefix) + "%", _like(nick_prefix) + "%", limit),
    ).fetchall()
    return [_user(r) for r in rows]


def _deleted_txn(txn: ISQLTransaction, user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    clause, params = txn.in_list("user_id", user_ids)
    return {int(r[0]) for r in txn.execute(f"SELECT user_id FROM admin_deleted_users WHERE {clause}", params)}


def _anonymise_txn(txn: ISQLTransaction, user_id: int, name: str, now: int) -> bool:
    cursor = txn.execute(
        "UPDATE users SET name = ?, name_key = ?, nick_name = '', password_hash = '', avatar_url = '', phone = '', "
        "disabled = TRUE WHERE user_id = ?",
        (name, name_key(name), user_id),
    )
    if cursor.rowcount == 0:
        return False
    txn.execute(
        "INSERT INTO admin_deleted_users (user_id, deleted_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (user_id, now)
    )
    return True


def _tokens_txn(txn: ISQLTransaction, user_id: int, now: int, limit: int) -> list[tuple]:
    rows = txn.execute(
        "SELECT token_hash, created_at, expires_at, label FROM tokens WHERE user_id = ? AND NOT revoked "
        "AND expires_at > ? ORDER BY created_at DESC LIMIT ?",
        (user_id, now, limit),
    ).fetchall()
    return [tuple(r) for r in rows]


def _groups_txn(txn: ISQLTransaction, name_part: str, after_id: int, limit: int) -> list[tuple]:
    rows = txn.execute(
        "SELECT group_id, name, group_type, owner_id, member_count, created_at, updated_at FROM chat_groups "
        "WHERE group_id > ? AND NOT dismissed AND lower(name) LIKE ? ESCAPE '!' ORDER BY group_id LIMIT ?",
        (after_id, "%" + _like(name_part) + "%", limit),
    ).fetchall()
    return [tuple(r) for r in rows]


def _create_broadcast_txn(txn: ISQLTransaction, *values: Any) -> Broadcast:
    row = txn.execute(
        "INSERT INTO admin_broadcasts (msg_type, body, segment, targets, created_after, created_before, created_at, "
        f"status) VALUES (?, ?, ?, ?, ?, ?, ?, '{RUNNING}') RETURNING {_BROADCAST_COLS}",
        values,
    ).fetchone()
    return _broadcast(row)


def _broadcast_txn(txn: ISQLTransaction, job_id: int) -> Broadcast | None:
    row = txn.execute(f"SELECT {_BROADCAST_COLS} FROM admin_broadcasts WHERE job_id = ?", (job_id,)).fetchone()
    return _broadcast(row) if row is not None else None


def _broadcasts_txn(txn: ISQLTransaction, before_id: int, limit: int) -> list[Broadcast]:
    rows = txn.execute(
        f"SELECT {_BROADCAST_COLS} FROM admin_broadcasts WHERE job_id < ? ORDER BY job_id DESC LIMIT ?",
        (before_id or 2**63 - 1, limit),
    ).fetchall()
    return [_broadcast(r) for r in rows]


def _claim_txn(txn: ISQLTransaction, node: str, now: int, lease: int) -> Broadcast | None:
    row = txn.execute(
        f"SELECT job_id FROM admin_broadcasts WHERE status = '{RUNNING}' "
        "AND (lease_node IN ('', ?) OR lease_until < ?) ORDER BY job_id LIMIT 1",
        (node, now),
    ).fetchone()
    if row is None:
        return None
    cursor = txn.execute(
        "UPDATE admin_broadcasts SET lease_node = ?, lease_until = ? WHERE job_id = ? "
        f"AND status = '{RUNNING}' AND (lease_node IN ('', ?) OR lease_until < ?)",
        (node, now + lease, row[0], node, now),
    )
    return _broadcast_txn(txn, int(row[0])) if cursor.rowcount else None


def _advance_txn(
    txn: ISQLTransaction, job_id: int, node: str, cursor_id: int, sent: int, done: bool, now: int, lease: int
) -> bool:
    cursor = txn.execute(
        "UPDATE admin_broadcasts SET cursor_id = ?, sent = sent + ?, lease_until = ?, status = ?, finished_at = ? "
        f"WHERE job_id = ? AND lease_node = ? AND status = '{RUNNING}'",
        (cursor_id, sent, now + lease, DONE if done else RUNNING, now if done else 0, job_id, node),
    )
    return cursor.rowcount > 0


def _cancel_txn(txn: ISQLTransaction, job_id: int, now: int) -> Broadcast | None:
    txn.execute(
        f"UPDATE admin_broadcasts SET status = '{CANCELLED}', finished_at = ? "
        f"WHERE job_id = ? AND status = '{RUNNING}'",
        (now, job_id),
    )
    return _broadcast_txn(txn, job_id)


def _recipients_txn(
    txn: ISQLTransaction, after_id: int, targets: list[int], created_after: int, created_before: int, limit: int
) -> list[int]:
    sql = (
        "SELECT u.user_id FROM users AS u WHERE u.user_id > ? AND NOT u.disabled AND u.created_at >= ? "
        "AND u.created_at < ? AND NOT EXISTS (SELECT 1 FROM admin_deleted_users AS d WHERE d.user_id = u.user_id)"
    )
    params: list[Any] = [after_id, created_after, created_before or 2**63 - 1]
    if targets:
        clause, extra = txn.in_list("u.user_id", targets)
        sql += f" AND {clause}"
        params += list(extra)
    rows = txn.execute(sql + " ORDER BY u.user_id LIMIT ?", (*params, limit)).fetchall()
    return [int(r[0]) for r in rows]


@implementer(IAdminStore)
class SQLAdminStore:
    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def search_users(self, key_prefix: str, nick_prefix: str, after_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("admin search users", _search_txn, key_prefix, nick_prefix, after_id, limit)

    def deleted(self, user_ids: list) -> defer.Deferred:
        return self.db.run_read("admin deleted users", _deleted_txn, list(user_ids))

    def anonymise_user(self, user_id: int, name: str, now: int) -> defer.Deferred:
        return self.db.run_write("admin anonymise user", _anonymise_txn, user_id, name, now)

    def tokens_of(self, user_id: int, now: int, limit: int) -> defer.Deferred:
        return self.db.run_read("admin tokens of", _tokens_txn, user_id, now, limit)

    def groups(self, name_part: str, after_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("admin groups", _groups_txn, name_part, after_id, limit)

    def create_broadcast(
        self, msg_type: int, body: str, segment: str, targets: str, after: int, before: int, now: int
    ) -> defer.Deferred:
        return self.db.run_write(
            "admin create broadcast", _create_broadcast_txn, msg_type, body, segment, targets, after, before, now
        )

    def broadcast(self, job_id: int) -> defer.Deferred:
        return self.db.run_read("admin broadcast", _broadcast_txn, job_id)

    def broadcasts(self, after_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("admin broadcasts", _broadcasts_txn, after_id, limit)

    def claim_broadcast(self, node: str, now: int, lease: int) -> defer.Deferred:
        return self.db.run_write("admin claim broadcast", _claim_txn, node, now, lease)

    def advance_broadcast(
        self, job_id: int, node: str, cursor: int, sent: int, done: bool, now: int, lease: int
    ) -> defer.Deferred:
        return self.db.run_write("admin advance broadcast", _advance_txn, job_id, node, cursor, sent, done, now, lease)

    def cancel_broadcast(self, job_id: int, now: int) -> defer.Deferred:
        return self.db.run_write("admin cancel broadcast", _cancel_txn, job_id, now)

    def recipients(
        self, after_id: int, targets: list, created_after: int, created_before: int, limit: int
    ) -> defer.Deferred:
        return self.db.run_read(
            "admin recipients", _recipients_txn, after_id, list(targets), created_after, created_before, limit
        )


# -- checking input


def _int(value: Any, name: str, minimum: int = 1) -> int:
    if type(value) is not int or not minimum <= value <= openapi.ID_MAX:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{name} must be an integer from {minimum} below 2^63")
    return value


def _query_text(call: HttpCall, name: str, limit: int = MAX_QUERY) -> str:
    values = call.query.get(name)
    value = values[-1] if values else ""
    if len(value) > limit:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{name} is limited to {limit} characters")
    return value


def _page(call: HttpCall, default: int = PAGE_DEFAULT, maximum: int = PAGE_MAX) -> tuple[int, int]:
    return call.query_int("after", 0, minimum=0), min(call.query_int("limit", default, minimum=1), maximum)


def parse_conv(value: str) -> str:
    """A conversation key as storage has them: ``p:<low>:<high>`` or ``g:<group id>``."""
    match = CONV_RE.fullmatch(value)
    if match is None:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "conv must be p:<user id>:<user id> or g:<group id>")
    ids = [int(g) for g in match.groups() if g is not None]
    if any(i > openapi.ID_MAX for i in ids):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "ids must be below 2^63")
    if len(ids) == 2:
        if ids[0] >= ids[1]:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "a 1:1 conversation is p:<lower id>:<higher id>")
        return conversation_key(SessionType.SINGLE, ids[0], ids[1])
    return conversation_key(SessionType.GROUP, 0, ids[0])


def message_entry(m: Message) -> dict[str, Any]:
    """A stored message as JSON: the body as text when it is UTF-8 (it is for every built-in
    type), else base64 in ``dataBase64``."""
    entry: dict[str, Any] = {
        "conv": m.conv,
        "msgId": m.seq,
        "sessionType": int(m.session_type),
        "fromUserId": m.sender_id,
        "toId": m.to_id,
        "clientMsgId": m.client_msg_id,
        "msgType": m.msg_type,
        "createTime": m.created_at,
        "clientType": m.client_type,
    }
    try:
        entry["data"] = bytes(m.data).decode("utf-8")
    except UnicodeDecodeError:
        entry["data"] = None
        entry["dataBase64"] = base64.b64encode(bytes(m.data)).decode("ascii")
    return entry


def user_entry(user: User, deleted: bool) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "userName": user.name,
        "nickName": user.nick_name,
        "disabled": user.disabled,
        "deleted": deleted,
        "createdAt": user.created_at,
        "avatarUrl": user.avatar_url,
    }


def broadcast_entry(b: Broadcast) -> dict[str, Any]:
    return {
        "id": b.job_id,
        "status": b.status,
        "createdAt": b.created_at,
        "finishedAt": b.finished_at,
        "msgType": b.msg_type,
        "text": b.body,
        "segment": b.segment,
        "sent": b.sent,
        "cursor": b.cursor,
        "targets": len(b.targets) if b.targets else None,
    }


# -- the service


class AdminApi:
    """The admin use cases of this module, on top of the other features' services."""

    def __init__(self, api: ModuleAPI, store: IAdminStore, config: Config) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.core = api.store
        self.accounts = api.depends("accounts")
        self.messages = api.depends("messages")
        self.groups = api.depends("groups")
        self._system: User | None = None
        self._stepping = False
        #: users whose deletion runs on this node (refused revival before they are marked deleted)
        self._deleting: set[int] = set()

    def _now(self) -> int:
        return int(self.api.clock.seconds())

    async def user(self, user_id: int) -> User:
        user = await self.core.user_by_id(user_id)
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        return user

    # -- users

    async def search_users(self, query: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Accounts whose name or nick starts with ``query`` (all of them for ""), by id."""
        found = await self.store.search_users(name_key(query), query.lower(), after, limit)
        deleted = await self.store.deleted([u.user_id for u in found])
        return [user_entry(u, u.user_id in deleted) for u in found]

    async def inspect_user(self, user_id: int) -> dict[str, Any]:
        user = await self.user(user_id)
        deleted = await self.store.deleted([user_id])
        groups = await self.core.groups_of(user_id)
        entry = user_entry(user, bool(deleted))
        entry["groups"] = [g.group_id for g in groups]
        entry["online"] = len(await self.api.presence.devices_of(user_id))
        return entry

    async def sessions(self, user_id: int) -> dict[str, Any]:
        """The user's connected devices on every live node, and their live login tokens."""
        await self.user(user_id)
        local = {d.device_id: d for d in self.api.router.devices_of(user_id)}
        devices = []
        for node, device_id, client_type in await self.api.presence.devices_of(user_id):
            entry: dict[str, Any] = {"node": node, "deviceId": device_id, "clientType": int(client_type)}
            here = local.get(device_id)
            if here is not None:
                entry["connectedAt"] = int(here.connected_at)
                peer = getattr(here, "peer", "")
                entry["peer"] = peer if isinstance(peer, str) else str(peer)
            devices.append(entry)
        tokens = await self.store.tokens_of(user_id, self._now(), 100)
        return {
            "user_id": user_id,
            "devices": devices,
            "tokens": [
                {"id": h[:16], "createdAt": int(c), "expiresAt": int(e), "label": label} for h, c, e, label in tokens
            ],
        }

    async def kick(self, user_id: int, device_id: str | None) -> dict[str, Any]:
        """Disconnect every device of the user, or one, wherever it is connected.  A kick is not a
        ban: a client may log in again (disable the account for that)."""
        await self.user(user_id)
        reason = "kicked by an administrator"
        if device_id is None:
            return {"user_id": user_id, "disconnected": self.api.disconnect_user(user_id, KICK_CODE, reason)}
        known = {d for _, d, _ in await self.api.presence.devices_of(user_id)}
        if device_id not in known:
            raise ChatError(ErrorCode.NOT_FOUND, "no such device online")
        self.api.broadcast("admin-kick-device", {"u": user_id, "d": device_id})
        return {"user_id": user_id, "disconnected": self.kick_device(user_id, device_id)}

    def kick_device(self, user_id: int, device_id: str) -> int:
        for device in self.api.router.devices_of(user_id):
            if device.device_id == device_id:
                device.disconnect(KICK_CODE, "kicked by an administrator")
                return 1
        return 0

    def kicked_elsewhere(self, data: dict, sender: str) -> None:
        self.kick_device(int(data["u"]), str(data["d"]))

    async def refuse_deleted(self, user_id: int) -> None:
        """An accounts revival check: a deleted account (or one being deleted here) is never
        enabled, given a password or issued a token again (403, as other refusals of the API)."""
        if user_id in self._deleting or await self.store.deleted([user_id]):
            raise ChatError(
                ErrorCode.FORBIDDEN, f"user {user_id} was deleted: it cannot be enabled, given a password or a token"
            )

    async def delete_user(self, user_id: int) -> dict[str, Any]:
        """Delete an account with its data (the module docstring says what that means).  Each
        step is idempotent, so a deletion cut short is finished by asking again."""
        user = await self.user(user_id)
        if user.name == self.config.system_user:
            raise ChatError(ErrorCode.FORBIDDEN, "the system account cannot be deleted")
        self._deleting.add(user_id)
        try:
            return await self._delete_user(user)
        finally:
            self._deleting.discard(user_id)

    async def _delete_user(self, user: User) -> dict[str, Any]:
        user_id = user.user_id
        if not user.disabled:
            await self.accounts.disable(user_id)
        else:
            await self.core.revoke_user_tokens(user_id)
            self.api.disconnect_user(user_id, ErrorCode.USER_DISABLED, "account deleted")
        left = 0
        for group in await self.core.groups_of(user_id):
            try:
                await self.groups.exit(user, None, group.group_id)
                left += 1
            except ChatError as e:  # dismissed meanwhile
                self.api.log.info("deleting user {u}: leaving group {g}: {e}", u=user_id, g=group.group_id, e=e)
        failed = await self.api.fire_and_wait("account/deleted", user)
        await self.store.anonymise_user(user_id, DELETED_NAME.format(user_id), self._now())
        self.api.log.info("deleted user {u} ({n} groups left)", u=user_id, n=left)
        return {"user_id": user_id, "deleted": True, "groupsLeft": left, "incomplete": bool(failed)}

    # -- groups

    async def list_groups(self, query: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.store.groups(query.lower(), after, limit)
        keys = ("group_id", "name", "groupType", "ownerId", "memberCount", "createdAt", "updatedAt")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def _group(self, group_id: int) -> Any:
        state = await self.groups.cache.get(group_id)
        if state is None or state.group.dismissed:
            raise ChatError(ErrorCode.NOT_FOUND, f"no group {group_id}")
        return state

    async def inspect_group(self, group_id: int) -> dict[str, Any]:
        state = await self._group(group_id)
        g = state.group
        members = list(state.members.values())
        nicks = {u.user_id: u.nick_name for u in await self.core.users_by_ids([m.user_id for m in members])}
        return {
            "group": {
                "group_id": g.group_id,
                "name": g.name,
                "groupType": g.group_type,
                "ownerId": g.owner_id,
                "createdAt": g.created_at,
                "updatedAt": g.updated_at,
                "version": g.version,
                "intro": g.intro,
                "announcement": g.announcement,
                "avatar": g.avatar,
                "joinModel": g.join_model,
                "beInviteModel": g.be_invite_model,
                "muteModel": g.mute_model,
                "memberCount": g.member_count,
            },
            "members": [
                {"user_id": m.user_id, "role": m.role, "joinedAt": m.joined_at, "nickName": nicks.get(m.user_id, "")}
                for m in members
            ],
        }

    async def change_owner(self, group_id: int, new_owner_id: int) -> dict[str, Any]:
        """Hand the group to another member, in its owner's name (the group feature's own
        transfer, its notice included: clients show the owner handing it over)."""
        state = await self._group(group_id)
        owner = await self.user(state.group.owner_id)
        if new_owner_id == owner.user_id:
            return {"group_id": group_id, "ownerId": owner.user_id}
        if new_owner_id not in state.members:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "the new owner must be a member of the group")
        outcome = await self.groups.transfer_owner(owner, None, group_id, new_owner_id)
        return {"group_id": group_id, "ownerId": outcome.group.owner_id}

    async def dissolve(self, group_id: int) -> dict[str, Any]:
        """Dismiss the group in its owner's name: every member is told and loses it."""
        state = await self._group(group_id)
        owner = await self.user(state.group.owner_id)
        outcome = await self.groups.dismiss(owner, None, group_id)
        return {"group_id": group_id, "dismissed": outcome.group.dismissed}

    # -- messages

    async def _seq_at(self, conv: str, when: int, last: int) -> int:
        """The first seq of ``conv`` created at or after ``when`` (last + 1 if none): a binary
        search over seqs (dense, and created in time order), a read per step."""
        low, high = 1, last + 1
        while low < high:
            mid = (low + high) // 2
            found = await self.core.messages_by_seq(conv, [mid])
            if found and found[0].created_at >= when:
                high = mid
            else:
                low = mid + 1
        return low

    async def _range(self, conv: str, after: int, since: int, until: int) -> tuple[int, int]:
        """The seqs to read, ``[first, end)``, for a cursor and a time range."""
        last = await self.core.latest_seq(conv)
        first = after + 1
        if since:
            first = max(first, await self._seq_at(conv, since, last))
        end = last + 1
        if until:
            end = min(end, await self._seq_at(conv, until, last))
        return first, end

    async def history(self, conv: str, after: int, limit: int, since: int, until: int) -> dict[str, Any]:
        """A page of a conversation, ascending from after ``after`` (seqs are dense, so a page is
        one range read), within [``since``, ``until``) when given."""
        first, end = await self._range(conv, after, since, until)
        end = min(end, first + limit)
        found = await self.core.history(conv, end, limit, first) if first < end else []
        return {
            "conv": conv,
            "messages": [message_entry(m) for m in found],
            "next": found[-1].seq if found else after,
            "more": bool(found) and found[-1].seq + 1 < (await self._range(conv, found[-1].seq, since, until))[1],
        }

    async def export(self, conv: str, after: int, limit: int, since: int, until: int) -> HttpReply:
        """JSON lines, one message each, ascending: at most ``limit`` (and export_max_messages)
        messages or about export_max_bytes per answer; ``X-Next-After`` is the cursor of the
        next answer and ``X-More`` says whether there is one."""
        first, end = await self._range(conv, after, since, until)
        end = min(end, first + min(limit, self.config.export_max_messages))
        lines: list[bytes] = []
        size, cursor = 0, after
        while first < end and size < self.config.export_max_bytes:
            page_end = min(end, first + EXPORT_READ)
            page = await self.core.history(conv, page_end, page_end - first, first)
            for m in page:
                line = json.dumps(message_entry(m), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                lines.append(line)
                size += len(line)
                cursor = m.seq
                if size >= self.config.export_max_bytes:
                    break
            first = page_end
        more = cursor + 1 < (await self._range(conv, cursor, since, until))[1]
        headers = {
            "Content-Type": "application/x-ndjson; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Next-After": str(cursor),
            "X-More": "1" if more else "0",
        }
        return HttpReply(200, headers, body=b"".join(lines))

    # -- notices and broadcasts

    def _check_notice(self, body: dict) -> tuple[int, str]:
        text = body.get("text")
        msg_type = body.get("msgType", int(MsgType.TEXT))
        if not isinstance(text, str) or not text.strip():
            raise ChatError(ErrorCode.INVALID_ARGUMENT, '"text" must be a non-blank string')
        if len(text.encode()) > self.config.max_notice_bytes:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a notice is limited to {self.config.max_notice_bytes} bytes")
        if type(msg_type) is not int or msg_type not in NOTICE_TYPES:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "msgType must be 1 (text) or 8 (tips)")
        return msg_type, text

    async def system_user(self) -> User:
        """The sender of system notices (made the first time, token-only without a password)."""
        if self._system is not None:
            return self._system
        user = await self.core.user_by_name(self.config.system_user)
        if user is None:
            try:
                user = await self.accounts.create_user(self.config.system_user, self.config.system_nick)
            except ChatError as e:
                if e.code != ErrorCode.USER_ALREADY_EXIST:  # another node made it meanwhile
                    raise
                user = await self.core.user_by_name(self.config.system_user)
        self._system = user
        return user

    async def _deliver(self, sender: User, to_id: int, msg_type: int, text: str, client_msg_id: str) -> Message:
        """Store a system message to ``to_id`` and push it as any message (send checks are not
        asked: blocks and friendship do not apply to the server's own notices)."""
        result = await self.messages.append(
            NewMessage(
                conv=conversation_key(SessionType.SINGLE, sender.user_id, to_id),
                session_type=SessionType.SINGLE,
                sender_id=sender.user_id,
                to_id=to_id,
                client_msg_id=client_msg_id,
                msg_type=msg_type,
                data=text.encode(),
                created_at=self._now(),
                client_type=0,
            )
        )
        if result.created:
            self.messages.fan_out(MessagePush(result.message, sender.nick_name), [to_id])
            self.messages.stored(result.message, sender, None)
        return result.message

    async def notice(self, user_id: int, body: dict) -> dict[str, Any]:
        msg_type, text = self._check_notice(body)
        user = await self.user(user_id)
        if user.disabled or await self.store.deleted([user_id]):
            raise ChatError(ErrorCode.USER_DISABLED, "the account is disabled or deleted")
        sender = await self.system_user()
        if user_id == sender.user_id:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "the system account sends notices, it gets none")
        message = await self._deliver(sender, user_id, msg_type, text, f"notice-{uuid.uuid4().hex}")
        return {"message": message_entry(message)}

    async def start_broadcast(self, body: dict) -> Broadcast:
        """Check a broadcast and store it as a running job (the periodic step sends it)."""
        msg_type, text = self._check_notice(body)
        segment = body.get("segment", {"all": True})
        if not isinstance(segment, dict):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, '"segment" must be an object')
        known = {"all", "userIds", "groupId", "createdAfter", "createdBefore"}
        if set(segment) - known:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"segment keys are {sorted(known)}")
        chosen = [k for k in ("all", "userIds", "groupId") if k in segment]
        if len(chosen) > 1:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "a segment is all, userIds or groupId, not several")
        if "all" in segment and segment["all"] is not True:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, '"all" must be true')
        after = _int(segment.get("createdAfter", 0), "createdAfter", 0)
        before = _int(segment.get("createdBefore", 0), "createdBefore", 0)
        targets: list[int] = []
        if "userIds" in segment:
            ids = segment["userIds"]
            limit = self.config.max_segment_users
            if not isinstance(ids, list) or not ids or len(ids) > limit:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, f'"userIds" must be a list of 1-{limit} user ids')
            targets = sorted({_int(i, "userIds") for i in ids})
        elif "groupId" in segment:
            state = await self._group(_int(segment["groupId"], "groupId"))
            targets = sorted(state.members)
        job = await self.store.create_broadcast(
            msg_type, text, json.dumps(segment), json.dumps(targets) if targets else "", after, before, self._now()
        )
        self.api.log.info("broadcast {id} started: {segment}", id=job.job_id, segment=segment)
        self.api.clock.callLater(0, self.step)
        return job

    def step(self) -> defer.Deferred | None:
        """One batch of the oldest running broadcast this node may run (periodic)."""
        if self._stepping:
            return None
        self._stepping = True

        def done(result: Any) -> Any:
            self._stepping = False
            return result

        return defer.ensureDeferred(self._step()).addBoth(done)

    async def _step(self) -> None:
        c = self.config
        node, lease = self.api.node_name, c.broadcast_lease
        job = await self.store.claim_broadcast(node, self._now(), lease)
        if job is None:
            return
        sender = await self.system_user()
        targets: list[int] = []
        if job.targets:
            targets = [t for t in job.targets if t > job.cursor][: c.broadcast_batch]
            if not targets:
                await self.store.advance_broadcast(job.job_id, node, job.cursor, 0, True, self._now(), lease)
                return
        raw = await self.store.recipients(job.cursor, targets, job.created_after, job.created_before, c.broadcast_batch)
        found = [u for u in raw if u != sender.user_id]
        messages = await defer.gatherResults(
            [
                defer.ensureDeferred(self._deliver(sender, u, job.msg_type, job.body, f"broadcast-{job.job_id}-{u}"))
                for u in found
            ]
        )
        if targets:
            cursor = targets[-1]
            finished = cursor >= job.targets[-1]
        else:
            cursor = raw[-1] if raw else job.cursor
            finished = len(raw) < c.broadcast_batch
        still = await self.store.advance_broadcast(
            job.job_id, node, cursor, len(messages), finished, self._now(), c.broadcast_lease
        )
        if still and finished:
            self.api.log.info("broadcast {id} done: {n} sent", id=job.job_id, n=job.sent + len(messages))


# -- schemas (the OpenAPI document)

USER = obj(
    ["user_id", "userName", "nickName", "disabled", "deleted"],
    user_id=ID,
    userName=string(),
    nickName=string(),
    disabled=boolean(),
    deleted=boolean(),
    createdAt=integer(0),
    avatarUrl=string(),
)
MESSAGE = obj(
    ["conv", "msgId", "fromUserId", "msgType", "createTime", "data"],
    conv=string(),
    msgId=integer(1),
    sessionType=integer(1, 2),
    fromUserId=integer(0),
    toId=integer(0),
    clientMsgId=string(),
    msgType=integer(),
    createTime=integer(),
    clientType=integer(),
    data=nullable(string()),
    dataBase64=string(),
)
NOTICE = obj(
    ["text"],
    text=string(1, pattern=r"\S", description="the notice's text (UTF-8, at most admin_api.max_notice_bytes)"),
    msgType={"enum": list(NOTICE_TYPES), "description": "1 text (default) or 8 tips"},
)
SEGMENT = obj(
    additional=False,
    all={"const": True},
    userIds=array(ID, description="these users (at most admin_api.max_segment_users)"),
    groupId={**ID, "description": "the group's members when the broadcast starts"},
    createdAfter=integer(0, openapi.ID_MAX, description="accounts created at or after (unix seconds)"),
    createdBefore=integer(0, openapi.ID_MAX, description="accounts created before (unix seconds)"),
)
BROADCAST = obj(
    ["id", "status", "sent"],
    id=ID,
    status={"enum": [RUNNING, DONE, CANCELLED]},
    createdAt=integer(),
    finishedAt=integer(),
    msgType=integer(),
    text=string(),
    segment=obj(),
    sent=integer(0),
    cursor=integer(0),
    targets=nullable(integer(0)),
)
GROUP_ROW = obj(
    ["group_id", "name", "ownerId"],
    group_id=ID,
    name=string(),
    groupType=integer(),
    ownerId=integer(0),
    memberCount=integer(0),
    createdAt=integer(),
    updatedAt=integer(),
)
CONV_QUERY = (
    Query("conv", string(1, 64, pattern=CONV_PATTERN), "p:<low id>:<high id> or g:<group id>", True),
    *paging(PAGE_DEFAULT, PAGE_MAX),
    Query("since", integer(0, openapi.PATH_INT_MAX), "created at or after (unix seconds)"),
    Query("until", integer(0, openapi.PATH_INT_MAX), "created before (unix seconds)"),
)


def setup(api: ModuleAPI) -> AdminApi:
    """Register the admin routes of this module, the OpenAPI documents and the broadcast step."""
    config: Config = api.config
    admin = AdminApi(api, api.open_store(IAdminStore, SQLAdminStore), config)
    admin.accounts.revival_checks.append(admin.refuse_deleted)
    api.cluster_command("admin-kick-device", admin.kicked_elsewhere)
    api.periodic(config.broadcast_interval, admin.step)

    def route(method: str, path: str, handler: Any, **kwargs: Any) -> None:
        api.route(method, path, handler, auth="admin", **kwargs)

    async def admin_openapi(call: HttpCall) -> tuple[int, dict]:
        """The OpenAPI 3.1 document of the admin API."""
        return 200, openapi.document(api.routes, True, coffeechat.__version__)

    async def public_openapi(call: HttpCall) -> tuple[int, dict]:
        """The OpenAPI 3.1 document of the public and user API."""
        return 200, openapi.document(api.routes, False, coffeechat.__version__)

    route("GET", "/admin/openapi.json", admin_openapi, response=obj(["openapi", "paths"]), produces="application/json")
    api.route("GET", "/api/openapi.json", public_openapi)

    # -- users

    async def search(call: HttpCall) -> dict:
        """Search accounts by name or nick prefix (all of them without q), by id, paged."""
        after, limit = _page(call)
        found = await admin.search_users(_query_text(call, "q"), after, limit)
        return {"users": found, "next": found[-1]["user_id"] if found else after}

    async def inspect(call: HttpCall) -> dict:
        """An account: its fields, whether deleted, its groups and how many devices are online."""
        return {"user": await admin.inspect_user(call.params["user_id"])}

    async def delete(call: HttpCall) -> dict:
        """Delete an account with its data (anonymised row, tokens, devices, groups, friends,
        push targets, files, profile); its sent messages stay with their recipients."""
        return await admin.delete_user(call.params["user_id"])

    async def sessions(call: HttpCall) -> dict:
        """The user's connected devices on every node and their live login tokens."""
        return await admin.sessions(call.params["user_id"])

    async def kick(call: HttpCall) -> dict:
        """Disconnect all the user's devices, or one ({"deviceId"}), on whichever node."""
        body = call.json() if call.body.strip() else {}
        device_id = body.get("deviceId")
        if "deviceId" in body and (not isinstance(device_id, str) or not 0 < len(device_id) <= 200):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, '"deviceId" must be a device id string')
        return await admin.kick(call.params["user_id"], device_id)

    async def notice(call: HttpCall) -> dict:
        """Send the user a system notice, stored (offline users get it) and pushed."""
        return await admin.notice(call.params["user_id"], call.json())

    search_query = (Query("q", string(0, MAX_QUERY), "name or nick prefix"), *paging(PAGE_DEFAULT, PAGE_MAX))
    route(
        "GET",
        "/admin/users/search",
        search,
        query=search_query,
        response=obj(["users", "next"], users=array(USER), next=integer(0)),
    )
    route(
        "GET",
        "/admin/users/{user_id:int}",
        inspect,
        response=obj(
            ["user"], user={**USER, "properties": {**USER["properties"], "groups": array(ID), "online": integer(0)}}
        ),
    )
    route(
        "DELETE",
        "/admin/users/{user_id:int}",
        delete,
        response=obj(
            ["user_id", "deleted"], user_id=ID, deleted=boolean(), groupsLeft=integer(0), incomplete=boolean()
        ),
    )
    device = obj(
        ["node", "deviceId", "clientType"],
        node=string(),
        deviceId=string(),
        clientType=integer(),
        connectedAt=integer(),
        peer=string(),
    )
    token = obj(["id", "createdAt", "expiresAt"], id=string(), createdAt=integer(), expiresAt=integer(), label=string())
    route(
        "GET",
        "/admin/users/{user_id:int}/sessions",
        sessions,
        response=obj(["user_id", "devices", "tokens"], user_id=ID, devices=array(device), tokens=array(token)),
    )
    route(
        "POST",
        "/admin/users/{user_id:int}/kick",
        kick,
        request=obj(deviceId=string(1, 200, description="one device (GET .../sessions); all without it")),
        response=obj(["user_id", "disconnected"], user_id=ID, disconnected=integer(0)),
    )
    route(
        "POST", "/admin/users/{user_id:int}/notice", notice, request=NOTICE, response=obj(["message"], message=MESSAGE)
    )

    # -- groups

    async def groups(call: HttpCall) -> dict:
        """Live groups by id, paged, whose name contains q."""
        after, limit = _page(call)
        found = await admin.list_groups(_query_text(call, "q"), after, limit)
        return {"groups": found, "next": found[-1]["group_id"] if found else after}

    async def group(call: HttpCall) -> dict:
        """A group's info, and its members with their roles (3 owner, 2 admin, 1 member)."""
        return await admin.inspect_group(call.params["group_id"])

    async def owner(call: HttpCall) -> dict:
        """Make another member ({"userId"}) the group's owner; the old owner stays as an admin."""
        body = call.json()
        return await admin.change_owner(call.params["group_id"], _int(body.get("userId"), "userId"))

    async def dissolve(call: HttpCall) -> dict:
        """Dissolve the group: every member is told and loses it."""
        return await admin.dissolve(call.params["group_id"])

    group_query = (Query("q", string(0, MAX_QUERY), "a part of the name"), *paging(PAGE_DEFAULT, PAGE_MAX))
    route(
        "GET",
        "/admin/groups",
        groups,
        query=group_query,
        response=obj(["groups", "next"], groups=array(GROUP_ROW), next=integer(0)),
    )
    member = obj(["user_id", "role"], user_id=ID, role=integer(1, 3), joinedAt=integer(), nickName=string())
    route(
        "GET",
        "/admin/groups/{group_id:int}",
        group,
        response=obj(["group", "members"], group=obj(["group_id"], group_id=ID), members=array(member)),
    )
    route(
        "POST",
        "/admin/groups/{group_id:int}/owner",
        owner,
        request=obj(["userId"], userId=ID),
        response=obj(["group_id", "ownerId"], group_id=ID, ownerId=ID),
    )
    route(
        "DELETE",
        "/admin/groups/{group_id:int}",
        dissolve,
        response=obj(["group_id", "dismissed"], group_id=ID, dismissed=boolean()),
    )

    # -- messages

    def conv_args(call: HttpCall, default: int, maximum: int) -> tuple[str, int, int, int, int]:
        after, limit = _page(call, default, maximum)
        conv = parse_conv(_query_text(call, "conv"))
        return conv, after, limit, call.query_int("since", 0, 0), call.query_int("until", 0, 0)

    async def history(call: HttpCall) -> dict:
        """A conversation's messages, ascending from after a msgId, within a time range, paged."""
        return await admin.history(*conv_args(call, PAGE_DEFAULT, PAGE_MAX))

    async def export(call: HttpCall) -> HttpReply:
        """A conversation as JSON lines (one message per line), in bounded answers: follow
        X-Next-After while X-More is 1."""
        return await admin.export(*conv_args(call, config.export_max_messages, config.export_max_messages))

    route(
        "GET",
        "/admin/messages",
        history,
        query=CONV_QUERY,
        response=obj(
            ["conv", "messages", "next", "more"],
            conv=string(),
            messages=array(MESSAGE),
            next=integer(0),
            more=boolean(),
        ),
    )
    route("GET", "/admin/messages/export", export, query=CONV_QUERY, produces="application/x-ndjson")

    # -- broadcasts

    async def broadcast(call: HttpCall) -> tuple[int, dict]:
        """Send a system notice to all users or a segment, as a background job (202)."""
        job = await admin.start_broadcast(call.json())
        return 202, {"error_code": int(ErrorCode.SUCCESS), "error_msg": "ok", "broadcast": broadcast_entry(job)}

    async def broadcasts(call: HttpCall) -> dict:
        """Broadcasts, newest first (after: an id to continue below)."""
        after, limit = _page(call)
        found = await admin.store.broadcasts(after, limit)
        return {"broadcasts": [broadcast_entry(b) for b in found], "next": found[-1].job_id if found else 0}

    async def progress(call: HttpCall) -> dict:
        """A broadcast's status and progress (sent so far, cursor)."""
        job = await admin.store.broadcast(call.params["job_id"])
        if job is None:
            raise ChatError(ErrorCode.NOT_FOUND, "no such broadcast")
        return {"broadcast": broadcast_entry(job)}

    async def cancel(call: HttpCall) -> dict:
        """Stop a running broadcast (those who got it keep it)."""
        job = await admin.store.cancel_broadcast(call.params["job_id"], int(api.clock.seconds()))
        if job is None:
            raise ChatError(ErrorCode.NOT_FOUND, "no such broadcast")
        return {"broadcast": broadcast_entry(job)}

    one = obj(["broadcast"], broadcast=BROADCAST)
    route(
        "POST",
        "/admin/broadcasts",
        broadcast,
        request={**NOTICE, "properties": {**NOTICE["properties"], "segment": SEGMENT}},
        response=openapi.accepted(one),
    )
    route(
        "GET",
        "/admin/broadcasts",
        broadcasts,
        query=paging(PAGE_DEFAULT, PAGE_MAX),
        response=obj(["broadcasts"], broadcasts=array(BROADCAST), next=integer(0)),
    )
    route("GET", "/admin/broadcasts/{job_id:int}", progress, response=one)
    route("POST", "/admin/broadcasts/{job_id:int}/cancel", cancel, response=one)
    return admin
