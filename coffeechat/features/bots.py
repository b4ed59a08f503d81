"""Bots: accounts flagged as bots receive, on a webhook, the messages sent to them (1:1) and the
group messages that mention them, and answer through the HTTP API; the original proto's ROBOT
message type (msg_type 7, a JSON body) is theirs to send.

A bot is an ordinary account (``POST /admin/users`` makes one) that the admin API flags:
``POST /admin/bots/{user_id}`` with its webhook URL (and a Standard Webhooks secret, made when
none is given) answers with a bot API key (256 random bits, kept as its hash).  The bot answers
with ``POST /api/bots/messages`` and ``Authorization: Bearer <key>``: it sends as itself, through
the same path as any client (the send checks: blocks, friendship, group membership, mutes).

Delivery is the webhooks feature's (coffeechat/features/webhooks.py), not a copy of it: each bot
is an endpoint of its own (``bot:<user_id>``), without the message stream; its messages go through
the outbox, so they are signed, retried with backoff, in order per conversation, leased to one
node of a cluster, and shown by ``GET /admin/webhooks``.  docs/bots.md tells the rest.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.auth import new_token, token_hash
from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import Outgoing, json_object_body
from coffeechat.features.webhooks import Endpoint, check_secret, check_url, message_payload
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import ConversationEntry, Message, MsgType, SessionType, User
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.openapi import array, integer, obj, string

ROBOT = int(MsgType.ROBOT)
_SINGLE = int(SessionType.SINGLE)
_GROUP = int(SessionType.GROUP)


@dataclass
class Config:
    """[bots]: the largest ROBOT body, and how many bots a node keeps."""

    max_robot_bytes: int = 16384
    max_bots: int = 1000

    def validate(self) -> None:
        if not 2 <= self.max_robot_bytes <= 1024 * 1024:
            raise ConfigError("bots.max_robot_bytes must be within 2..1048576")
        if not 1 <= self.max_bots <= 100000:
            raise ConfigError("bots.max_bots must be within 1..100000")


@dataclass(frozen=True, slots=True)
class Bot:
    user_id: int
    url: str
    secret: str
    key_hash: str
    created_at: int

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(f"bot:{self.user_id}", self.url, self.secret, ("message.created",), messages=False)


class IBotStore(Interface):
    """The bots feature's storage (a facet; tested by
    ``coffeechat.testing.conformance_webhooks.BotStoreConformanceTests``)."""

    def put(bot: Bot):
        """Flag (or update) a bot: its URL, secret and key hash replace any earlier ones."""

    def remove(user_id: int):
        """Unflag; fire with True if it was a bot."""

    def all(limit: int):
        """Every bot, by user id, at most ``limit``."""

    def by_key(key_hash: str):
        """The Bot whose API key hashes to ``key_hash``, or None."""

    def get(user_id: int):
        """The Bot, or None."""


_COLS = "user_id, url, secret, key_hash, created_at"


def _bot(row: Any) -> Bot:
    return Bot(int(row[0]), row[1], row[2], row[3], int(row[4]))


def _put_txn(txn: ISQLTransaction, bot: Bot) -> None:
    txn.execute(
        f"INSERT INTO bots ({_COLS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET url = excluded.url, "
        "secret = excluded.secret, key_hash = excluded.key_hash",
        (bot.user_id, bot.url, bot.secret, bot.key_hash, bot.created_at),
    )


def _remove_txn(txn: ISQLTransaction, user_id: int) -> bool:
    return txn.execute("DELETE FROM bots WHERE user_id = ? RETURNING user_id", (user_id,)).fetchone() is not None


def _all_txn(txn: ISQLTransaction, limit: int) -> list[Bot]:
    return [_bot(r) for r in txn.execute(f"SELECT {_COLS} FROM bots ORDER BY user_id LIMIT ?", (limit,)).fetchall()]


def _by_key_txn(txn: ISQLTransaction, key_hash: str) -> Bot | None:
    row = txn.execute(f"SELECT {_COLS} FROM bots WHERE key_hash = ?", (key_hash,)).fetchone()
    return _bot(row) if row else None


def _get_txn(txn: ISQLTransaction, user_id: int) -> Bot | None:
    row = txn.execute(f"SELECT {_COLS} FROM bots WHERE user_id = ?", (user_id,)).fetchone()
    return _bot(row) if row else None


@implementer(IBotStore)
class SQLBotStore:
    """IBotStore written once for every SQL backend (its table: bots.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def put(self, bot: Bot) -> defer.Deferred:
        return self.db.run_write("bot_put", _put_txn, bot)

    def remove(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("bot_remove", _remove_txn, int(user_id))

    def all(self, limit: int) -> defer.Deferred:
        return self.db.run_read("bots", _all_txn, int(limit))

    def by_key(self, key_hash: str) -> defer.Deferred:
        return self.db.run_read("bot_by_key", _by_key_txn, key_hash)

    def get(self, user_id: int) -> defer.Deferred:
        return self.db.run_read("bot", _get_txn, int(user_id))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Bots:
    """Which accounts are bots (in memory, from storage at start and on every change anywhere),
    what they are sent, and what they send."""

    def __init__(self, api: ModuleAPI, store: IBotStore, webhooks: Any, messages: Any, groups: Any, config: Config):
        self.api = api
        self.store = store
        self.webhooks = webhooks
        self.messages = messages
        self.groups = groups
        self.config = config
        self.bots: dict[int, Bot] = {}

    # -- which accounts are bots

    async def load(self) -> None:
        for bot in await self.store.all(self.config.max_bots):
            self._known(bot)

    def _known(self, bot: Bot) -> None:
        self.bots[bot.user_id] = bot
        self.webhooks.add_endpoint(bot.endpoint)

    async def reload(self, user_id: int) -> None:
        bot = await self.store.get(user_id)
        if bot is None:
            if self.bots.pop(user_id, None) is not None:
                await self.webhooks.remove_endpoint(f"bot:{user_id}")
        else:
            self._known(bot)

    def changed(self, data: dict, from_node: str) -> None:
        """Another node flagged or unflagged a bot."""
        user_id = data.get("user_id")
        if isinstance(user_id, int):
            d = defer.ensureDeferred(self.reload(user_id))
            d.addErrback(lambda f: self.api.log.failure("bots: reloading bot {uid} failed", f, uid=user_id))

    async def flag(self, user_id: int, url: Any, secret: Any) -> tuple[Bot, str]:
        """Make an account a bot (or change its webhook); fire with the Bot and its new API key."""
        if await self.api.store.user_by_id(user_id) is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        try:
            url = check_url("url", url)
            secret = check_secret("secret", secret) if secret is not None else new_secret()
        except ConfigError as e:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, str(e)) from None
        if user_id not in self.bots and len(self.bots) >= self.config.max_bots:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {self.config.max_bots} bots ([bots] max_bots)")
        key = "bot_" + new_token()
        existing = self.bots.get(user_id)
        bot = Bot(
            user_id, url, secret, token_hash(key), existing.created_at if existing else int(self.api.clock.seconds())
        )
        await self.store.put(bot)
        self._known(bot)
        self.api.broadcast("bots.changed", {"user_id": user_id})
        return bot, key

    async def unflag(self, user_id: int) -> bool:
        removed = await self.store.remove(user_id)
        if self.bots.pop(user_id, None) is not None:
            await self.webhooks.remove_endpoint(f"bot:{user_id}", forget=True)
        self.api.broadcast("bots.changed", {"user_id": user_id})
        return bool(removed)

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: a bot's flag, API key and webhook go with its account."""
        if user.user_id in self.bots or await self.store.get(user.user_id) is not None:
            await self.unflag(user.user_id)

    async def authenticate(self, bearer: str) -> User:
        if not bearer.startswith("bot_"):
            raise ChatError(ErrorCode.BOT_KEY_INVALID, "a bot API key is needed (Authorization: Bearer bot_...)")
        bot = await self.store.by_key(token_hash(bearer))
        user = await self.api.store.user_by_id(bot.user_id) if bot is not None else None
        if user is None:
            raise ChatError(ErrorCode.BOT_KEY_INVALID, "unknown or revoked bot API key")
        if user.disabled:
            raise ChatError(ErrorCode.USER_DISABLED, "this bot's account is disabled")
        return user

    # -- what they receive

    def check_robot(self, data: bytes, limits: Any, origin: str) -> None:
        """The body of a ROBOT message: a JSON object, at most ``max_robot_bytes``."""
        json_object_body(ROBOT, data, self.config.max_robot_bytes)

    def only_bots_send_robot(self, sender: User, outgoing: Outgoing) -> None:
        """A send check: msg_type 7 from bots only."""
        if outgoing.msg_type == ROBOT and sender.user_id not in self.bots:
            raise ChatError(ErrorCode.ROBOT_ONLY, "ROBOT messages (msg_type 7) are sent by bots only")
        return None

    def stored(self, message: Message, sender: Any, device: Any) -> None:
        """``message/stored``: a message for a bot goes to its endpoint's outbox."""
        bots = self.bots
        if not bots:
            return
        if message.session_type == _SINGLE:
            if message.to_id in bots and message.sender_id != message.to_id:
                self.webhooks.emit(
                    "message.created", message.conv, message_payload(message), only=[f"bot:{message.to_id}"]
                )
            return
        # the members the message mentions, as sent (the stored message carries them to its hooks)
        mentioned = tuple(u for u in dict.fromkeys(message.mentions) if u in bots and u != message.sender_id)
        if mentioned:
            d = self.groups.cache.get(message.to_id)
            d.addCallback(self._mentioned, message, mentioned)
            d.addErrback(lambda f: self.api.log.failure("bots: a mention could not be routed", f))

    def _mentioned(self, state: Any, message: Message, mentioned: tuple[int, ...]) -> None:
        members = state.members if state is not None else {}
        payload = message_payload(message)
        for bot_id in mentioned:
            if bot_id in members:
                self.webhooks.emit(
                    "message.created", message.conv, {**payload, "mentioned": True}, only=[f"bot:{bot_id}"]
                )

    def session_view(self, user: User, entries: list[ConversationEntry]) -> list[ConversationEntry]:
        """A 1:1 conversation with a bot is a robot session (CIMContactSessionInfo.is_robot_session)."""
        bots = self.bots
        if not bots:
            return entries
        return [replace(e, robot=True) if e.session_type == _SINGLE and e.session_id in bots else e for e in entries]

    # -- what they send

    async def send(self, bot_user: User, body: dict[str, Any]) -> Any:
        session_type = body.get("session_type", _SINGLE)
        to_id = body.get("to_session_id", body.get("to"))
        msg_type = body.get("msg_type", int(MsgType.TEXT))
        data = body.get("msg_data", "")
        client_msg_id = body.get("client_msg_id", "")
        mentions = body.get("at_user_list", [])
        for name, value in (("session_type", session_type), ("to_session_id", to_id), ("msg_type", msg_type)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{name} must be a non-negative integer")
        if not isinstance(client_msg_id, str):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "client_msg_id must be a string")
        if not isinstance(mentions, list) or not all(isinstance(m, int) and not isinstance(m, bool) for m in mentions):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "at_user_list must be a list of user ids")
        if isinstance(data, dict | list):
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if not isinstance(data, str):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "msg_data must be a string (or, for JSON types, an object)")
        return await self.messages.send(
            bot_user,
            None,
            session_type,
            to_id,
            client_msg_id,
            msg_type,
            data.encode(),
            4,  # CIMClientType REST_API
            mentions[:100],
        )


def setup(api: ModuleAPI) -> Bots:
    """The bot flag, its admin and bot APIs, the ROBOT type and the robot-session mark."""
    config: Config = api.config
    webhooks = api.depends("webhooks")
    messages = api.depends("messages")
    groups = api.depends("groups")
    bots = Bots(api, api.open_store(IBotStore, SQLBotStore), webhooks, messages, groups, config)
    messages.register_msg_type(ROBOT, bots.check_robot)
    messages.add_send_check(_SINGLE, bots.only_bots_send_robot)
    messages.add_send_check(_GROUP, bots.only_bots_send_robot)
    messages.add_session_view(bots.session_view, priority=5)
    api.hook("message/stored", bots.stored)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(bots.account_deleted(user)))
    api.cluster_command("bots.changed", bots.changed)
    api.on_start(lambda: defer.ensureDeferred(bots.load()))

    async def flag(call: HttpCall) -> dict:
        """``POST /admin/bots/{user_id}`` {"url", "secret"?}: flag a bot; answers its API key."""
        body = call.json()
        bot, key = await bots.flag(call.params["user_id"], body.get("url"), body.get("secret"))
        return {"user_id": bot.user_id, "url": bot.url, "secret": bot.secret, "api_key": key}

    async def unflag(call: HttpCall) -> dict:
        """``DELETE /admin/bots/{user_id}``: no longer a bot (its key and queued events go)."""
        removed = await bots.unflag(call.params["user_id"])
        if not removed:
            raise ChatError(ErrorCode.NOT_FOUND, "not a bot")
        return {"user_id": call.params["user_id"]}

    async def listed(call: HttpCall) -> dict:
        """``GET /admin/bots``: every bot and its webhook URL."""
        found = await bots.store.all(config.max_bots)
        return {"bots": [{"user_id": b.user_id, "url": b.url, "created_at": b.created_at} for b in found]}

    async def send(call: HttpCall) -> dict:
        """``POST /api/bots/messages`` (Bearer: the bot API key): send as the bot."""
        user = await bots.authenticate(call.bearer)
        result = await bots.send(user, call.json())
        m = result.message
        return {
            "server_msg_id": m.seq,
            "client_msg_id": m.client_msg_id,
            "create_time": m.created_at,
            "session_type": m.session_type,
            "to_session_id": m.to_id,
        }

    api.route(
        "POST",
        "/admin/bots/{user_id:int}",
        flag,
        auth="admin",
        request=obj(
            ["url"],
            url=string(1, description="the bot's webhook (http or https)"),
            secret={"description": "its signing secret (Standard Webhooks whsec_...); made when missing"},
        ),
        response=obj(
            ["user_id", "url", "api_key"], user_id=integer(1), url=string(), secret=string(), api_key=string()
        ),
    )
    api.route(
        "DELETE", "/admin/bots/{user_id:int}", unflag, auth="admin", response=obj(["user_id"], user_id=integer(1))
    )
    api.route(
        "GET",
        "/admin/bots",
        listed,
        auth="admin",
        response=obj(
            ["bots"], bots=array(obj(["user_id", "url"], user_id=integer(1), url=string(), created_at=integer()))
        ),
    )
    api.route("POST", "/api/bots/messages", send)
    return bots
