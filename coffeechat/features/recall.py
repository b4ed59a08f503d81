"""Recall: take a message back, everywhere.

The sender may recall a message of theirs within ``[recall] window`` seconds (default two
minutes); a group's owner and admins any message of their group at any time; the admin API
(``POST /admin/messages/recall``) any message at any time.  A recall removes the content from
storage: the message keeps its seq (ids stay dense) but becomes a tombstone of type RECALLED
(11) whose body says who recalled it, when, and what type it had.  So history and the
conversation list show the tombstone, and every device of every member is told at once
(MSG_RECALL_NOTIFY, across nodes); a device that keeps messages of its own asks, when it comes
back, for the recalls since it last looked (MSG_RECALL_LIST_REQ).  docs/recall.md tells the rest.

The permission is decided twice, as group rules are: against the caches for a prompt answer,
and again in the writing transaction (the message, its sender, the actor's role in the group),
so that a recall racing a demotion cannot slip through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import GroupRole, Message, MsgType, Push, SessionType, conversation_key
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.openapi import integer, obj, string
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

LIST_MAX = 1000
_RECALLED = int(MsgType.RECALLED)
_NOTIFICATION = int(MsgType.NOTIFICATION)
_GROUP = int(SessionType.GROUP)


@dataclass
class Config:
    """[recall]: how long senders may recall their own messages."""

    window: float = 120.0

    def validate(self) -> None:
        if self.window < 0:
            raise ConfigError("recall.window must be >= 0 seconds (0: senders may not recall)")


# -- storage


class RecallRefused(Exception):
    """A recall the store refused inside its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Recall:
    """A recalled message: which, whose, by whom and when (``recalled_by`` 0: an administrator)."""

    conv: str
    seq: int
    session_type: int
    sender_id: int
    to_id: int
    client_msg_id: str
    recalled_by: int
    recalled_at: int


class IRecallStore(Interface):
    """The recall feature's storage (a facet: an SQL backend gets :class:`SQLRecallStore`; any other
    backend provides it through ``facet(IRecallStore)``; tested by
    ``coffeechat.testing.conformance.RecallStoreConformanceTests``)."""

    def recall(conv: str, seq: int, actor_id: int, not_before: int, now: int, force: bool = False):
        """Recall message ``seq`` of ``conv`` for ``actor_id``, in one transaction: fire with
        ``(Recall, new)``; ``new`` False when it was recalled already (the earlier recall).  The
        message's type becomes RECALLED and its body the tombstone JSON; its content is gone.
        Unless ``force`` (the admin API), the actor must be its sender, and then it must be no
        older than ``not_before`` (unix seconds), or an owner or admin of its group.  Fails with
        :class:`RecallRefused` (NOT_FOUND, FORBIDDEN, RECALL_TOO_LATE); NOTIFICATION messages are
        never recalled."""

    def recalls_of(user_id: int, since: int, limit: int):
        """Fire with up to ``limit`` Recalls at or after ``since`` in the conversations ``user_id``
        is in (in a group, only of messages from their join on), oldest first."""


def tombstone(recalled_by: int, recalled_at: int, msg_type: int) -> bytes:
    return json.dumps({"recalledBy": recalled_by, "recallTime": recalled_at, "msgType": msg_type}).encode()


_RECALL_COLS = "conv, seq, session_type, sender_id, to_id, client_msg_id, recalled_by, recalled_at"


def _recall_txn(
    txn: ISQLTransaction, conv: str, seq: int, actor_id: int, not_before: int, now: int, force: bool
) -> tuple[Recall, bool]:
    row = txn.execute(
        "SELECT session_type, sender_id, to_id, client_msg_id, msg_type, created_at FROM messages "
        "WHERE conv = ? AND seq = ?",
        (conv, seq),
    ).fetchone()
    if row is None:
        raise RecallRefused(ErrorCode.NOT_FOUND, f"no message {seq} in this conversation")
    session_type, sender_id, to_id, client_msg_id, msg_type, created_at = row
    if msg_type == _RECALLED:
        earlier = txn.execute(f"SELECT {_RECALL_COLS} FROM message_recalls WHERE conv = ? AND seq = ?", (conv, seq))
        found = earlier.fetchone()
        if found is not None:
            return Recall(*found), False
    if msg_type == _NOTIFICATION:
        raise RecallRefused(ErrorCode.FORBIDDEN, "notices cannot be recalled")
    if not force:
        moderator = False
        if session_type == _GROUP:
            role = txn.execute(
                "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?", (to_id, actor_id)
            ).fetchone()
            moderator = role is not None and role[0] >= GroupRole.ADMIN
        if actor_id != sender_id and not moderator:
            raise RecallRefused(ErrorCode.FORBIDDEN, "only its sender (or a group's owner and admins) may recall it")
        if not moderator and created_at < not_before:
            raise RecallRefused(ErrorCode.RECALL_TOO_LATE, "too late to recall this message")
    txn.execute(
        "UPDATE messages SET msg_type = ?, data = ? WHERE conv = ? AND seq = ?",
        (_RECALLED, tombstone(actor_id, now, msg_type), conv, seq),
    )
    recall = Recall(conv, seq, session_type, sender_id, to_id, client_msg_id, actor_id, now)
    txn.execute(
        f"INSERT INTO message_recalls ({_RECALL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (conv, seq, session_type, sender_id, to_id, client_msg_id, actor_id, now),
    )
    return recall, True


def _recalls_txn(txn: ISQLTransaction, user_id: int, since: int, limit: int) -> list[Recall]:
    rows = txn.execute(
        "SELECT r.conv, r.seq, r.session_type, r.sender_id, r.to_id, r.client_msg_id, r.recalled_by, r.recalled_at "
        "FROM user_conversations AS uc JOIN message_recalls AS r ON r.conv = uc.conv "
        "LEFT JOIN group_members AS m ON uc.session_type = 2 AND m.group_id = uc.session_id AND m.user_id = uc.user_id "
        "WHERE uc.user_id = ? AND r.recalled_at >= ? AND (uc.session_type <> 2 OR r.seq >= m.joined_seq) "
        "ORDER BY r.recalled_at, r.conv, r.seq LIMIT ?",
        (user_id, since, limit),
    ).fetchall()
    return [Recall(*r) for r in rows]


@implementer(IRecallStore)
class SQLRecallStore:
    """IRecallStore written once for every SQL backend (its table: recall.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def recall(
        self, conv: str, seq: int, actor_id: int, not_before: int, now: int, force: bool = False
    ) -> defer.Deferred:
        return self.db.run_write(
            "recall", _recall_txn, conv, int(seq), int(actor_id), int(not_before), int(now), bool(force), locks=(conv,)
        )

    def recalls_of(self, user_id: int, since: int, limit: int) -> defer.Deferred:
        return self.db.run_read("recalls_of", _recalls_txn, int(user_id), int(since), int(limit))


# -- the push


@dataclass(slots=True)
class RecallPush(Push):
    """MSG_RECALL_NOTIFY: message ``seq`` (``from_user_id`` -> ``to_id``, as in its MSG_DATA) was
    recalled by ``recalled_by`` at ``recalled_at``."""

    from_user_id: int
    to_id: int
    session_type: int
    seq: int
    client_msg_id: str
    recalled_by: int
    recalled_at: int


def recall_notify(push: RecallPush | Recall) -> pb.CIMMsgRecallNotify:
    if isinstance(push, Recall):
        push = _push_of(push)
    return pb.CIMMsgRecallNotify(
        from_user_id=push.from_user_id,
        to_session_id=push.to_id,
        session_type=push.session_type,
        server_msg_id=push.seq,
        client_msg_id=push.client_msg_id,
        recalled_by=push.recalled_by,
        recall_time=push.recalled_at,
    )


def _push_of(recall: Recall) -> RecallPush:
    r = recall
    return RecallPush(r.sender_id, r.to_id, r.session_type, r.seq, r.client_msg_id, r.recalled_by, r.recalled_at)


# -- the service


_REFUSALS = {ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.RECALL_TOO_LATE}


class Recalls:
    """Recalls messages for users and administrators, and tells everyone concerned."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IRecallStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.clock = api.clock

    async def recall(self, user_id: int, device: Any, session_type: int, session_id: int, seq: int) -> Recall:
        """A user recalls message ``seq`` of a conversation they file as ``session_id``."""
        where = await self.messages.locate(user_id, session_type, session_id)
        if seq < where.first_seq:
            raise ChatError(ErrorCode.NOT_FOUND, f"no message {seq} in this conversation")
        now = int(self.clock.seconds())
        return await self._recall(where.conv, seq, user_id, now - int(self.config.window), now, False, device)

    async def recall_as_admin(self, conv: str, seq: int) -> Recall:
        """The admin API: any message, any time (``recalled_by`` 0)."""
        return await self._recall(conv, seq, 0, 0, int(self.clock.seconds()), True, None)

    async def _recall(
        self, conv: str, seq: int, actor_id: int, not_before: int, now: int, force: bool, device: Any
    ) -> Recall:
        try:
            recall, new = await self.store.recall(conv, seq, actor_id, not_before, now, force)
        except RecallRefused as e:
            raise ChatError(e.code if e.code in _REFUSALS else ErrorCode.FORBIDDEN, str(e)) from None
        if new:
            message = Message(
                conv, seq, recall.session_type, recall.sender_id, recall.to_id, recall.client_msg_id, 0, b"", 0
            )
            audience = await self.messages.kind(recall.session_type).audience(message)
            self.messages.fan_out(_push_of(recall), audience, device)
            self.api.fire("message/recalled", recall)
        return recall

    async def since(self, user_id: int, since: int, limit: int) -> tuple[list[Recall], bool]:
        limit = LIST_MAX if limit <= 0 else min(limit, LIST_MAX)
        found = await self.store.recalls_of(user_id, max(0, since), limit + 1)
        return found[:limit], len(found) > limit


def _positive_id(value: Any) -> bool:
    """An id as storage keeps them: a positive JSON integer within signed 64 bits."""
    return type(value) is int and 0 < value <= MAX_ID


def setup(api: ModuleAPI) -> Recalls:
    """The recall command, its notify, the catch-up list and the admin API's recall."""
    messages = api.depends("messages")
    recalls = Recalls(api, messages, api.open_store(IRecallStore, SQLRecallStore), api.config)
    api.push_kind(RecallPush, name="recall", cmd=Cmd.MSG_RECALL_NOTIFY, encode=recall_notify)

    @api.request(Cmd.MSG_RECALL_REQ)
    async def recall(session: Session, req: pb.CIMMsgRecallReq) -> pb.CIMMsgRecallRsp:
        await recalls.recall(session.user_id, session, req.session_type, req.session_id, req.msg_id)
        return pb.CIMMsgRecallRsp(
            user_id=session.user_id,
            session_type=req.session_type,
            session_id=req.session_id,
            msg_id=req.msg_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
        )

    @api.request(Cmd.MSG_RECALL_LIST_REQ)
    async def listed(session: Session, req: pb.CIMMsgRecallListReq) -> pb.CIMMsgRecallListRsp:
        found, more = await recalls.since(session.user_id, req.since_time, req.limit)
        return pb.CIMMsgRecallListRsp(user_id=session.user_id, recalls=[recall_notify(r) for r in found], has_more=more)

    async def admin_recall(call: HttpCall) -> dict:
        """``POST /admin/messages/recall`` {"sessionType": 1, "userId", "sessionId", "msgId"} (a 1:1
        message between userId and sessionId) or {"sessionType": 2, "sessionId": group, "msgId"}."""
        body = call.json()
        values = {k: body.get(k) for k in ("sessionType", "userId", "sessionId", "msgId")}
        for key in ("sessionType", "sessionId", "msgId"):
            if not _positive_id(values[key]):
                raise ChatError(ErrorCode.INVALID_ARGUMENT, f"{key} must be a positive integer below 2^63")
        if values["sessionType"] == SessionType.SINGLE:
            if not _positive_id(values["userId"]) or values["userId"] == values["sessionId"]:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "userId must be the other participant, a positive integer")
        elif values["sessionType"] != _GROUP:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "sessionType must be 1 (single) or 2 (group)")
        conv = conversation_key(values["sessionType"], values["userId"] or 0, values["sessionId"])
        found = await recalls.recall_as_admin(conv, values["msgId"])
        return {
            "recalled": {
                "conv": found.conv,
                "msgId": found.seq,
                "recalledBy": found.recalled_by,
                "recallTime": found.recalled_at,
            }
        }

    id_ = integer(1, MAX_ID)
    api.route(
        "POST",
        "/admin/messages/recall",
        admin_recall,
        auth="admin",
        request=obj(
            ["sessionType", "sessionId", "msgId"], sessionType={"enum": [1, 2]}, userId=id_, sessionId=id_, msgId=id_
        ),
        response=obj(
            ["recalled"],
            recalled=obj(["conv", "msgId"], conv=string(), msgId=id_, recalledBy=integer(), recallTime=integer()),
        ),
    )
    return recalls
