"""Group tags and custom fields (the seed's 自定义群标签): labels and app data on a group.

The owner and admins set a group's tags (at most ``[group_tags] max_tags``, each normalised: NFKC,
case-folded, inner whitespace collapsed, at most ``max_tag_length`` characters) and its custom
fields (a JSON object of at most ``max_fields`` keys, ``max_fields_bytes`` bytes as compact
JSON), and whether the group is **discoverable**: found by anyone's search by tag, not only by
its members'.  The server stores them, returns them with the group's info (GROUP_TAGS_GET), and
finds groups by tag (GROUP_TAGS_SEARCH: my groups, or the discoverable ones; paged by group id,
an index range scan on both engines).  Every member's devices are told of each change
(GROUP_TAGS_NOTIFY).  docs/group-tags.md tells the rest.

The permission is checked against the groups cache for a prompt answer, and again in the
writing transaction (the actor's role, a dismissed group).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.groups import group_info
from coffeechat.interfaces import IDevice, ISQLDatabase, ISQLTransaction
from coffeechat.model import Group, GroupRole, Push, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

SECTION = "group_tags"
MAX_GET_IDS = 100  # groups per GROUP_TAGS_GET
MAX_FIELD_KEY = 64
SCOPE_MINE = 0
SCOPE_DISCOVERABLE = 1


@dataclass
class Config:
    """[group_tags]: how many tags, how long, how much custom data; search page sizes; whether
    groups may be made discoverable by anyone's tag search."""

    max_tags: int = 10
    max_tag_length: int = 32
    max_fields: int = 20
    max_fields_bytes: int = 2048
    page_size: int = 20
    max_page: int = 100
    discoverable: bool = True

    def validate(self) -> None:
        if not 1 <= self.max_tags <= 100:
            raise ConfigError("group_tags.max_tags must be between 1 and 100")
        if not 1 <= self.max_tag_length <= 256:
            raise ConfigError("group_tags.max_tag_length must be between 1 and 256 characters")
        if not 0 <= self.max_fields <= 1000:
            raise ConfigError("group_tags.max_fields must be between 0 and 1000")
        if not 2 <= self.max_fields_bytes <= 65536:
            raise ConfigError("group_tags.max_fields_bytes must be between 2 and 65536")
        if not 1 <= self.page_size <= self.max_page <= 1000:
            raise ConfigError("group_tags: 1 <= page_size <= max_page <= 1000")


# -- what may be stored


def normalise_tag(raw: str, max_length: int) -> str:
    """A tag as stored and searched: NFKC, case-folded, whitespace trimmed and collapsed."""
    if not isinstance(raw, str):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "a tag must be a string")
    tag = " ".join(unicodedata.normalize("NFKC", raw).casefold().split())
    if not tag:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "a tag must not be blank")
    if len(tag) > max_length:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a tag is limited to {max_length} characters")
    if any(unicodedata.category(c)[0] == "C" for c in tag):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "a tag must not contain control characters")
    return tag


def normalise_tags(raw: list[str], config: Config) -> list[str]:
    """Distinct normalised tags in the order given (at most ``max_tags``)."""
    if len(raw) > config.max_tags * 4:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a group has at most {config.max_tags} tags")
    tags = list(dict.fromkeys(normalise_tag(t, config.max_tag_length) for t in raw))
    if len(tags) > config.max_tags:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"a group has at most {config.max_tags} tags")
    return tags


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def normalise_fields(raw: str, config: Config) -> str:
    """The custom fields as stored: a JSON object, compact, within the limits."""
    if len(raw.encode()) > config.max_fields_bytes * 4:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"custom fields are limited to {config.max_fields_bytes} bytes")
    try:
        value = json.loads(raw or "{}", parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "custom_fields must be a JSON object") from None
    if not isinstance(value, dict):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "custom_fields must be a JSON object")
    if len(value) > config.max_fields:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {config.max_fields} custom fields")
    if any(not key or len(key) > MAX_FIELD_KEY for key in value):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"custom field names are 1 to {MAX_FIELD_KEY} characters")
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > config.max_fields_bytes:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"custom fields are limited to {config.max_fields_bytes} bytes")
    return text


# -- storage


class TagsRefused(Exception):
    """A change the store refused inside its transaction; ``code`` is the answer's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class GroupTags:
    """A group's tags (in the order set), custom fields (JSON object text), discoverability, and
    who changed them when; ``version`` 0: never set."""

    group_id: int
    tags: tuple[str, ...] = ()
    custom_fields: str = "{}"
    discoverable: bool = False
    updated_by: int = 0
    updated_at: int = 0
    version: int = 0


class IGroupTagStore(Interface):
    """The group_tags feature's storage (an SQL backend gets :class:`SQLGroupTagStore`; tested by
    ``coffeechat.testing.conformance_group_tags.GroupTagStoreConformanceTests``)."""

    def set_tags(
        group_id: int,
        actor_id: int,
        tags: list[str] | None,
        custom_fields: str | None,
        discoverable: bool | None,
        now: int,
    ):
        """Change what is not None (``tags`` replaces the whole list, already normalised), in one
        transaction that first checks that the group exists and is not dismissed (NOT_FOUND) and
        that the actor is its owner or an admin (FORBIDDEN); fails with :class:`TagsRefused`.
        Bumps ``version``; fires with the GroupTags as they now are."""

    def tags_of(group_ids: list[int]):
        """Fire with the GroupTags of those groups (in the order asked; a group never tagged has
        version 0 and nothing set)."""

    def search(tag: str, member_id: int, after_group_id: int, limit: int):
        """Fire with the GroupTags of up to ``limit`` groups tagged ``tag`` with ids above
        ``after_group_id``, ascending: those ``member_id`` is a member of, or (``member_id`` 0)
        the discoverable ones that are not dismissed."""


def _set_txn(
    txn: ISQLTransaction,
    group_id: int,
    actor_id: int,
    tags: list[str] | None,
    custom_fields: str | None,
    discoverable: bool | None,
    now: int,
) -> GroupTags:
    group = txn.execute("SELECT dismissed FROM chat_groups WHERE group_id = ?", (group_id,)).fetchone()
    if group is None or bool(group[0]):
        raise TagsRefused(ErrorCode.NOT_FOUND, f"no group {group_id}")
    role = txn.execute(
        "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, actor_id)
    ).fetchone()
    if role is None or role[0] < GroupRole.ADMIN:
        raise TagsRefused(ErrorCode.FORBIDDEN, "only the owner and admins may change a group's tags")
    txn.execute(
        "INSERT INTO group_tag_sets (group_id, updated_by, updated_at, version) VALUES (?, ?, ?, 0) "
        "ON CONFLICT (group_id) DO NOTHING",
        (group_id, actor_id, now),
    )
    sets = ["updated_by = ?", "updated_at = ?", "version = version + 1"]
    params: list[Any] = [actor_id, now]
    if custom_fields is not None:
        sets.append("custom_fields = ?")
        params.append(custom_fields)
    if discoverable is not None:
        sets.append("discoverable = ?")
        params.append(bool(discoverable))
    txn.execute(f"UPDATE group_tag_sets SET {', '.join(sets)} WHERE group_id = ?", (*params, group_id))
    if tags is not None:
        txn.execute("DELETE FROM group_tags WHERE group_id = ?", (group_id,))
        if tags:
            txn.executemany(
                "INSERT INTO group_tags (tag, group_id, position) VALUES (?, ?, ?)",
                [(tag, group_id, i) for i, tag in enumerate(tags)],
            )
    (found,) = _tags_txn(txn, [group_id])
    return found


def _tags_txn(txn: ISQLTransaction, group_ids: list[int]) -> list[GroupTags]:
    if not group_ids:
        return []
    clause, params = txn.in_list("group_id", group_ids)
    sets = {
        r[0]: r
        for r in txn.execute(
            "SELECT group_id, custom_fields, discoverable, updated_by, updated_at, version FROM group_tag_sets "
            f"WHERE {clause}",
            params,
        ).fetchall()
    }
    tags: dict[int, list[str]] = {}
    for group_id, tag in txn.execute(
        f"SELECT group_id, tag FROM group_tags WHERE {clause} ORDER BY group_id, position", params
    ).fetchall():
        tags.setdefault(group_id, []).append(tag)
    out = []
    for group_id in group_ids:
        row = sets.get(group_id)
        if row is None:
            out.append(GroupTags(group_id))
        else:
            _, fields, discoverable, by, at, version = row
            out.append(GroupTags(group_id, tuple(tags.get(group_id, ())), fields, bool(discoverable), by, at, version))
    return out


def _search_txn(txn: ISQLTransaction, tag: str, member_id: int, after: int, limit: int) -> list[GroupTags]:
    if member_id:
        rows = txn.execute(
            "SELECT t.group_id FROM group_tags AS t "
            "JOIN group_members AS m ON m.group_id = t.group_id AND m.user_id = ? "
            "WHERE t.tag = ? AND t.group_id > ? ORDER BY t.group_id LIMIT ?",
            (member_id, tag, after, limit),
        ).fetchall()
    else:
        rows = txn.execute(
            "SELECT t.group_id FROM group_tags AS t "
            "JOIN group_tag_sets AS s ON s.group_id = t.group_id "
            "JOIN chat_groups AS g ON g.group_id = t.group_id "
            "WHERE t.tag = ? AND t.group_id > ? AND s.discoverable = TRUE AND g.dismissed = FALSE "
            "ORDER BY t.group_id LIMIT ?",
            (tag, after, limit),
        ).fetchall()
    return _tags_txn(txn, [r[0] for r in rows])


@implementer(IGroupTagStore)
class SQLGroupTagStore:
    """IGroupTagStore written once for every SQL backend (its tables: group_tags.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def set_tags(
        self,
        group_id: int,
        actor_id: int,
        tags: list[str] | None,
        custom_fields: str | None,
        discoverable: bool | None,
        now: int,
    ) -> defer.Deferred:
        return self.db.run_write(
            "set_group_tags",
            _set_txn,
            int(group_id),
            int(actor_id),
            None if tags is None else [str(t) for t in tags],
            custom_fields,
            discoverable,
            int(now),
            locks=(f"g:{int(group_id)}",),
        )

    def tags_of(self, group_ids: list[int]) -> defer.Deferred:
        return self.db.run_read("group_tags_of", _tags_txn, [int(g) for g in group_ids])

    def search(self, tag: str, member_id: int, after_group_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read(
            "search_group_tags", _search_txn, str(tag), int(member_id), int(after_group_id), int(limit)
        )


# -- the push


@dataclass(slots=True)
class GroupTagsPush(Push):
    """GROUP_TAGS_NOTIFY: the tags, custom fields or discoverability of ``group_id`` changed."""

    group_id: int
    actor_id: int
    tags: tuple[str, ...]
    custom_fields: str
    discoverable: bool
    updated_at: int
    version: int


def tags_info(tags: GroupTags, group: Group | None = None) -> pb.CIMGroupTags:
    out = pb.CIMGroupTags(
        group_id=tags.group_id,
        tags=list(tags.tags),
        custom_fields=tags.custom_fields,
        discoverable=tags.discoverable,
        updated_by=tags.updated_by,
        updated_at=tags.updated_at,
        version=tags.version,
    )
    if group is not None:
        out.group_info.CopyFrom(group_info(group))
    return out


def tags_notify(push: GroupTagsPush) -> pb.CIMGroupTagsNotify:
    tags = GroupTags(
        push.group_id, push.tags, push.custom_fields, push.discoverable, push.actor_id, push.updated_at, push.version
    )
    return pb.CIMGroupTagsNotify(group_id=push.group_id, actor_id=push.actor_id, group_tags=tags_info(tags))


# -- the service


class GroupTagService:
    """Sets, fetches and searches group tags for users, and tells members of changes."""

    def __init__(self, api: ModuleAPI, groups: Any, store: IGroupTagStore, config: Config) -> None:
        self.api = api
        self.groups = groups
        self.store = store
        self.config = config
        self.clock = api.clock

    async def set(
        self,
        user: User,
        device: IDevice | None,
        group_id: int,
        tags: list[str] | None,
        custom_fields: str | None,
        discoverable: bool | None,
    ) -> tuple[GroupTags, Group]:
        """The owner or an admin changes the group's tags, custom fields or discoverability."""
        if tags is None and custom_fields is None and discoverable is None:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nothing to change")
        if discoverable and not self.config.discoverable:
            raise ChatError(ErrorCode.NOT_SUPPORTED, "this server does not make groups discoverable")
        tags = None if tags is None else normalise_tags(tags, self.config)
        custom_fields = None if custom_fields is None else normalise_fields(custom_fields, self.config)
        state, me = await self.groups.member(user.user_id, group_id)
        if me.role < GroupRole.ADMIN:
            raise ChatError(ErrorCode.FORBIDDEN, "only the owner and admins may change a group's tags")
        try:
            found = await self.store.set_tags(
                group_id, user.user_id, tags, custom_fields, discoverable, int(self.clock.seconds())
            )
        except TagsRefused as e:
            raise ChatError(e.code, str(e)) from None
        push = GroupTagsPush(
            group_id, user.user_id, found.tags, found.custom_fields, found.discoverable, found.updated_at, found.version
        )
        self.groups.messages.fan_out(push, list(state.members), device)
        return found, state.group

    async def get(self, user: User, group_ids: list[int]) -> list[tuple[GroupTags, Group]]:
        """The tags and info of those groups the user is a member of (the others are left out)."""
        wanted = list(dict.fromkeys(int(g) for g in group_ids))
        if not wanted:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "no group ids")
        if len(wanted) > MAX_GET_IDS:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_GET_IDS} groups per request")
        groups: dict[int, Group] = {}
        for group_id in wanted:
            state = await self.groups.cache.get(group_id) if group_id > 0 else None
            if state is not None and not state.group.dismissed and user.user_id in state.members:
                groups[group_id] = state.group
        found = await self.store.tags_of(list(groups)) if groups else []
        return [(t, groups[t.group_id]) for t in found]

    async def search(
        self, user: User, tag: str, scope: int, after_group_id: int, limit: int
    ) -> tuple[list[tuple[GroupTags, Group]], bool]:
        """Groups tagged ``tag``: mine, or the discoverable ones; a page and whether more follow.
        A non-member is not shown a group's announcement."""
        tag = normalise_tag(tag, self.config.max_tag_length)
        if scope not in (SCOPE_MINE, SCOPE_DISCOVERABLE):
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"scope {scope} is not known")
        if scope == SCOPE_DISCOVERABLE and not self.config.discoverable:
            raise ChatError(ErrorCode.NOT_SUPPORTED, "this server does not make groups discoverable")
        if limit < 0 or limit > self.config.max_page:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"limit must be 0 (default) to {self.config.max_page}")
        limit = limit or self.config.page_size
        found = await self.store.search(
            tag, user.user_id if scope == SCOPE_MINE else 0, max(0, after_group_id), limit + 1
        )
        more = len(found) > limit
        out = []
        for tags in found[:limit]:
            state = await self.groups.cache.get(tags.group_id)
            if state is None or state.group.dismissed:
                continue
            group = state.group if user.user_id in state.members else replace(state.group, announcement="")
            out.append((tags, group))
        return out, more


def setup(api: ModuleAPI) -> GroupTagService:
    """The tag commands and their notify."""
    groups = api.depends("groups")
    service = GroupTagService(api, groups, api.open_store(IGroupTagStore, SQLGroupTagStore), api.config)
    api.push_kind(GroupTagsPush, name="group-tags", cmd=Cmd.GROUP_TAGS_NOTIFY, encode=tags_notify)

    @api.request(Cmd.GROUP_TAGS_SET_REQ)
    async def set_tags(session: Session, req: pb.CIMGroupTagsSetReq) -> pb.CIMGroupTagsSetRsp:
        found, group = await service.set(
            session.user,
            session,
            req.group_id,
            list(req.tags) if req.set_tags else None,
            req.custom_fields if req.HasField("custom_fields") else None,
            req.discoverable if req.HasField("discoverable") else None,
        )
        return pb.CIMGroupTagsSetRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            group_tags=tags_info(found, group),
        )

    @api.request(Cmd.GROUP_TAGS_GET_REQ)
    async def get_tags(session: Session, req: pb.CIMGroupTagsGetReq) -> pb.CIMGroupTagsGetRsp:
        found = await service.get(session.user, list(req.group_id_list))
        return pb.CIMGroupTagsGetRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            group_tags_list=[tags_info(t, g) for t, g in found],
        )

    @api.request(Cmd.GROUP_TAGS_SEARCH_REQ)
    async def search(session: Session, req: pb.CIMGroupTagsSearchReq) -> pb.CIMGroupTagsSearchRsp:
        found, more = await service.search(session.user, req.tag, req.scope, req.after_group_id, req.limit)
        return pb.CIMGroupTagsSearchRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            group_tags_list=[tags_info(t, g) for t, g in found],
            has_more=more,
        )

    return service
