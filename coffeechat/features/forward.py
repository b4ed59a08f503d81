"""Forward: copy messages one can read into other conversations, server-side, keeping their origin.

A client names only references: the source conversation (as it files it), the messages' ids and
the targets.  The server reads the messages as that user may see them (``messages.locate`` and
``messages_by_id``: a group from one's join, without what history views hide), refuses what
cannot be forwarded (a recalled message, a notice), and sends each copy through
``messages.send(..., origin=...)`` so that every check of the target applies (membership, mutes,
blocks ...).  The origin (the original sender and nick, its conversation, server_msg_id and time)
goes out with the push; the core does not store it, so this module keeps it in its table
``forward_origins`` keyed by the new message's (conv, seq) and puts it back into history through
a history view.

A merged forward sends one chat record instead (msg_type MERGED, 12): a JSON body with a title and
the records (sender, nick, time, type, content), so that the recipients can read it without access
to the source conversation.  Only the server makes chat records: a client's MSG_DATA of type 12
is refused.

Forwards are idempotent: every copy's client_msg_id is derived from the request's
client_forward_id, the target and the source message, so a resent request returns the messages
already made.  docs/forward.md tells the rest.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import Located, json_object_body
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Message, MsgType, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

MERGED = pb.kCIM_MSG_TYPE_MERGED
CUSTOM = pb.kCIM_MSG_TYPE_CUSTOM
#: the prefix of every forwarded copy's client_msg_id: history looks up origins only for these
CLIENT_MSG_ID_PREFIX = "fw-"
MAX_CLIENT_FORWARD_ID = 64
_FETCH_CHUNK = 20  # messages_by_id takes at most 20 ids at once
_UNFORWARDABLE = frozenset({int(MsgType.RECALLED), int(MsgType.NOTIFICATION)})
_TEXTS = frozenset({int(MsgType.TEXT), int(MsgType.TIPS)})
_SUMMARIES = {
    int(MsgType.FILE): "[File]",
    int(MsgType.IMAGE): "[Image]",
    int(MsgType.AUDIO): "[Voice]",
    int(MsgType.VIDEO): "[Video]",
    int(MsgType.LOCATION): "[Location]",
    int(MsgType.AVCHAT): "[Call]",
    MERGED: "[Chat record]",
    CUSTOM: "[Custom message]",
}
SHORT_TEXT_CHARS = 50  # a record's text when the full records do not fit the body limit


@dataclass
class Config:
    """[forward]: how much one request may forward, to how many targets, and how big a merged
    chat record's entries are."""

    max_messages: int = 30
    max_merged: int = 100
    max_targets: int = 10
    max_title_chars: int = 64
    record_text_chars: int = 200
    record_body_bytes: int = 1024

    def validate(self) -> None:
        for key in ("max_messages", "max_merged", "max_targets"):
            if not 1 <= getattr(self, key) <= 1000:
                raise ConfigError(f"forward.{key} must be between 1 and 1000")
        if not 1 <= self.max_title_chars <= 256:
            raise ConfigError("forward.max_title_chars must be between 1 and 256")
        if not 1 <= self.record_text_chars <= 10_000:
            raise ConfigError("forward.record_text_chars must be between 1 and 10000")
        if not 0 <= self.record_body_bytes <= 16_384:
            raise ConfigError("forward.record_body_bytes must be between 0 and 16384")


# -- storage


class IForwardStore(Interface):
    """The forward feature's storage: the origin of each forwarded copy (a facet: an SQL backend
    gets :class:`SQLForwardStore`; tested by
    ``coffeechat.testing.conformance_forward.ForwardStoreConformanceTests``)."""

    def save_origins(entries: Sequence[tuple[str, int, str]]):
        """Record ``(conv, seq, origin JSON)`` for each entry, in one transaction; an entry whose
        (conv, seq) has an origin already keeps the first one (a resent forward)."""

    def origins(conv: str, seqs: Sequence[int]):
        """Fire with ``{seq: origin}`` for those of ``seqs`` in ``conv`` that have one."""


def _save_txn(txn: ISQLTransaction, entries: list[tuple[str, int, str]]) -> None:
    txn.executemany(
        "INSERT INTO forward_origins (conv, seq, origin) VALUES (?, ?, ?) ON CONFLICT (conv, seq) DO NOTHING",
        entries,
    )


def _origins_txn(txn: ISQLTransaction, conv: str, seqs: list[int]) -> dict[int, str]:
    clause, params = txn.in_list("seq", seqs)
    rows = txn.execute(f"SELECT seq, origin FROM forward_origins WHERE conv = ? AND {clause}", (conv, *params))
    return {seq: origin for seq, origin in rows.fetchall()}


@implementer(IForwardStore)
class SQLForwardStore:
    """IForwardStore written once for every SQL backend (its table: forward.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def save_origins(self, entries: Sequence[tuple[str, int, str]]) -> defer.Deferred:
        rows = [(str(conv), int(seq), str(origin)) for conv, seq, origin in entries]
        if not rows:
            return defer.succeed(None)
        return self.db.run_write("forward_origins", _save_txn, rows)

    def origins(self, conv: str, seqs: Sequence[int]) -> defer.Deferred:
        wanted = sorted({int(s) for s in seqs})
        if not wanted:
            return defer.succeed({})
        return self.db.run_read("forward_origins", _origins_txn, str(conv), wanted)


# -- what a forward makes


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def origin_of(message: Message, nick: str) -> str:
    """The origin JSON of a copy of ``message``: a copy of a copy keeps the first origin."""
    if message.origin:
        return message.origin
    return _dumps(
        {
            "fromUserId": message.sender_id,
            "fromNick": nick,
            "sessionType": message.session_type,
            "toId": message.to_id,
            "serverMsgId": message.seq,
            "time": message.created_at,
        }
    )


def _cut(text: str, chars: int) -> tuple[str, bool]:
    if len(text) <= chars:
        return text, False
    return text[: max(0, chars - 1)] + "\u2026", True


def summary(message: Message, body: Any) -> str:
    """A one-line text for a non-text message: its kind and, where it has one, its name."""
    label = _SUMMARIES.get(message.msg_type, "[Message]")
    if not isinstance(body, dict):
        return label
    if message.msg_type == CUSTOM and isinstance(body.get("description"), str) and body["description"]:
        return body["description"]
    detail = body.get("displayName") or body.get("address") or body.get("title")
    if isinstance(detail, str) and detail:
        return f"{label} {detail}"
    return label


def record_of(message: Message, nick: str, text_chars: int, body_bytes: int) -> dict:
    """One entry of a chat record: the message as its recipients need it to display it."""
    record: dict[str, Any] = {
        "senderId": message.sender_id,
        "nick": nick,
        "time": message.created_at,
        "msgType": message.msg_type,
        "serverMsgId": message.seq,
    }
    if message.msg_type in _TEXTS:
        content, cut = _cut(message.data.decode("utf-8", "replace"), text_chars)
        record["content"] = content
        if cut:
            record["truncated"] = True
        return record
    try:
        body = json.loads(message.data)
    except ValueError:
        body = None
    content, _ = _cut(summary(message, body), text_chars)
    record["content"] = content
    if isinstance(body, dict) and message.msg_type != MERGED and len(message.data) <= body_bytes:
        record["body"] = body
    elif message.data:
        record["truncated"] = True
    return record


class Forwarder:
    """Forwards messages for users (see the module docstring)."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IForwardStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.limits = api.limits

    # -- the merged type, and origins in history

    def check_merged(self, data: bytes, limits: Any, origin: str) -> None:
        """msg_type MERGED: made by this module only (it always has an origin), a JSON object with
        a title and a list of records."""
        if not origin:
            raise ChatError(ErrorCode.INVALID_MSG, "chat records are made by the server: use MSG_FORWARD_REQ")
        body = json_object_body(MERGED, data, limits.max_body_bytes)
        if not isinstance(body.get("title"), str) or not isinstance(body.get("records"), list):
            raise ChatError(ErrorCode.INVALID_MSG, "a chat record needs a title and records")

    def description(self, message: Message) -> str:
        """The preview text of a chat record (for notifications): "[Chat record] <title>"."""
        try:
            body = json.loads(message.data)
        except ValueError:
            body = None
        title = body.get("title") if isinstance(body, dict) else None
        return f"{_SUMMARIES[MERGED]} {title}" if isinstance(title, str) and title else _SUMMARIES[MERGED]

    def history_view(self, user_id: int, where: Located, page: list[Message]) -> list[Message] | defer.Deferred:
        """Put the origins back on forwarded copies (only those carry the client_msg_id prefix:
        a page without one costs nothing)."""
        wanted = [
            m.seq
            for m in page
            if m.client_msg_id.startswith(CLIENT_MSG_ID_PREFIX) and not m.origin and m.msg_type != MsgType.RECALLED
        ]
        if not wanted:
            return page

        def annotate(found: dict[int, str]) -> list[Message]:
            return [replace(m, origin=found[m.seq]) if m.seq in found else m for m in page]

        return self.store.origins(where.conv, wanted).addCallback(annotate)

    # -- forwarding

    def _checked(self, req: pb.CIMMsgForwardReq) -> tuple[list[int], list[tuple[int, int]], str]:
        config = self.config
        ids = list(dict.fromkeys(int(i) for i in req.msg_ids))
        if not ids:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "msg_ids names no message")
        if not 0 < req.session_id <= MAX_ID or any(not 0 < i <= MAX_ID for i in ids):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "session_id and msg_ids must be positive ids below 2^63")
        most = config.max_merged if req.merged else config.max_messages
        if len(ids) > most:
            how = "merged into one record" if req.merged else "forwarded at once"
            raise ChatError(ErrorCode.FORWARD_TOO_MANY, f"at most {most} messages may be {how}")
        targets = list(dict.fromkeys((int(t.session_type), int(t.session_id)) for t in req.targets))
        if not targets:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "targets names no conversation")
        if len(targets) > config.max_targets:
            raise ChatError(ErrorCode.FORWARD_TOO_MANY, f"at most {config.max_targets} targets per forward")
        for session_type, session_id in targets:
            if session_type not in (SessionType.SINGLE, SessionType.GROUP) or not 0 < session_id <= MAX_ID:
                raise ChatError(ErrorCode.INVALID_ARGUMENT, "a target is a user (session_type 1) or a group (2)")
        if len(req.title) > config.max_title_chars:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"the title is limited to {config.max_title_chars} characters")
        if len(req.client_forward_id) > MAX_CLIENT_FORWARD_ID:
            raise ChatError(
                ErrorCode.INVALID_ARGUMENT, f"client_forward_id is limited to {MAX_CLIENT_FORWARD_ID} characters"
            )
        return ids, targets, req.client_forward_id or uuid.uuid4().hex

    async def _sources(self, user: User, session_type: int, session_id: int, ids: list[int]) -> list[Message]:
        """The messages as ``user`` may read them, ascending; refusals for the rest."""
        where = await self.messages.locate(user.user_id, session_type, session_id)
        if any(seq < where.first_seq for seq in ids):
            raise ChatError(ErrorCode.NOT_FOUND, "no such message in this conversation")
        found: dict[int, Message] = {}
        for i in range(0, len(ids), _FETCH_CHUNK):
            chunk = [str(seq) for seq in ids[i : i + _FETCH_CHUNK]]
            page, _, _ = await self.messages.messages_by_id(user, session_type, session_id, chunk)
            found.update((m.seq, m) for m in page)
        missing = [seq for seq in ids if seq not in found]
        if missing:
            raise ChatError(ErrorCode.NOT_FOUND, f"no message {missing[0]} in this conversation")
        sources = [found[seq] for seq in sorted(ids)]
        for m in sources:
            if m.msg_type in _UNFORWARDABLE:
                what = "a recalled message" if m.msg_type == MsgType.RECALLED else "a notice"
                raise ChatError(ErrorCode.NOT_FORWARDABLE, f"message {m.seq} is {what}: it cannot be forwarded")
        return sources

    async def _nicks(self, sources: list[Message]) -> dict[int, str]:
        nicks: dict[int, str] = {}
        for sender_id in dict.fromkeys(m.sender_id for m in sources):
            found = await self.api.store.user_by_id(sender_id)
            nicks[sender_id] = found.nick_name if found else ""
        return nicks

    def chat_record(self, title: str, sources: list[Message], nicks: dict[int, str]) -> bytes:
        """The body of a merged forward, within the body limit: full records when they fit, else
        short ones (texts cut, bodies left out); FORWARD_TOO_LARGE when even those do not."""
        if not title:
            names = list(dict.fromkeys(nicks[m.sender_id] for m in sources if nicks.get(m.sender_id)))
            title = "Chat history" + (": " + ", ".join(names[:3]) if names else "")
            title = _cut(title, self.config.max_title_chars)[0]
        limit = self.limits.max_body_bytes
        for text_chars, body_bytes in (
            (self.config.record_text_chars, self.config.record_body_bytes),
            (min(SHORT_TEXT_CHARS, self.config.record_text_chars), 0),
        ):
            records = [record_of(m, nicks.get(m.sender_id, ""), text_chars, body_bytes) for m in sources]
            data = _dumps({"title": title, "count": len(records), "records": records}).encode()
            if len(data) <= limit:
                return data
        raise ChatError(ErrorCode.FORWARD_TOO_LARGE, f"the chat record would exceed {limit} bytes: forward fewer")

    async def forward(self, session: Session, req: pb.CIMMsgForwardReq) -> pb.CIMMsgForwardRsp:
        """Forward for the authenticated user; the answer says per target what was made."""
        user = session.user
        ids, targets, base = self._checked(req)
        sources = await self._sources(user, req.session_type, req.session_id, ids)
        nicks = await self._nicks(sources)
        where_conv = sources[0].conv
        if req.merged:
            origin = _dumps(
                {
                    "merged": True,
                    "fromUserId": user.user_id,
                    "sessionType": int(req.session_type),
                    "toId": int(req.session_id),
                    "count": len(sources),
                }
            )
            copies = [(MERGED, self.chat_record(req.title, sources, nicks), origin, "merged")]
        else:
            copies = [(m.msg_type, m.data, origin_of(m, nicks.get(m.sender_id, "")), str(m.seq)) for m in sources]
        rsp = pb.CIMMsgForwardRsp(
            user_id=user.user_id, result_code=ErrorCode.SUCCESS, result_string="ok", client_forward_id=base
        )
        for session_type, session_id in targets:
            rsp.results.append(await self._to_target(session, base, where_conv, session_type, session_id, copies))
        return rsp

    async def _to_target(
        self,
        session: Session,
        base: str,
        source_conv: str,
        session_type: int,
        session_id: int,
        copies: list[tuple[int, bytes, str, str]],
    ) -> pb.CIMForwardResult:
        """Send the copies to one target in order; the first refusal ends that target's copies."""
        user = session.user
        result = pb.CIMForwardResult(session_type=session_type, session_id=session_id, result_code=ErrorCode.SUCCESS)
        saved: list[tuple[str, int, str]] = []
        if not session.take_message_token():  # one per target: a forward is one send per conversation
            result.result_code, result.result_string = ErrorCode.RATE_LIMITED, "too many messages"
            return result
        for msg_type, data, origin, key in copies:
            client_msg_id = derived_client_msg_id(user.user_id, base, session_type, session_id, source_conv, key)
            try:
                sent = await self.messages.send(
                    user, None, session_type, session_id, client_msg_id, msg_type, data, session.client_type,
                    origin=origin,
                )  # fmt: skip
            except ChatError as e:
                result.result_code, result.result_string = e.code, e.message
                break
            message = sent.message
            if not sent.created and not await self._same_copy(message, session_type, session_id, msg_type, data):
                result.result_code = ErrorCode.INVALID_ARGUMENT
                result.result_string = "client_forward_id was used already for other messages"
                break
            saved.append((message.conv, message.seq, origin))
            result.server_msg_ids.append(message.seq)
            result.client_msg_ids.append(message.client_msg_id)
            result.create_time = message.created_at
        if saved:
            await self.store.save_origins(saved)
        if result.result_code == ErrorCode.SUCCESS:
            result.result_string = "ok"
        return result

    async def _same_copy(
        self, message: Message, session_type: int, session_id: int, msg_type: int, data: bytes
    ) -> bool:
        """A copy that existed already (a resent forward) is this copy: in the target, with its
        origin (saved when it was made) or its content.  Else the forwarder sent a message of
        their own under the copy's client_msg_id (derived, so computable; resends are found by
        sender and client_msg_id, in any conversation): it must not get this origin."""
        if (message.session_type, message.to_id) != (session_type, session_id):
            return False
        if (message.msg_type, message.data) == (msg_type, data):
            return True
        return message.seq in await self.store.origins(message.conv, [message.seq])


def derived_client_msg_id(
    user_id: int, base: str, session_type: int, session_id: int, source_conv: str, key: str
) -> str:
    """The client_msg_id of one copy: the same for the same request, target and source message."""
    digest = hashlib.sha256(f"{user_id}|{base}|{session_type}|{session_id}|{source_conv}|{key}".encode()).hexdigest()
    return CLIENT_MSG_ID_PREFIX + digest[:40]


def setup(api: ModuleAPI) -> Forwarder:
    """The forward command, the merged type and the history view that shows origins."""
    messages = api.depends("messages")
    forwarder = Forwarder(api, messages, api.open_store(IForwardStore, SQLForwardStore), api.config)
    messages.register_msg_type(MERGED, forwarder.check_merged)
    messages.add_history_view(forwarder.history_view)

    @api.request(Cmd.MSG_FORWARD_REQ)
    async def forward(session: Session, req: pb.CIMMsgForwardReq) -> pb.CIMMsgForwardRsp:
        return await forwarder.forward(session, req)

    return forwarder
