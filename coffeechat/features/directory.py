"""The user directory and profiles: find users by name, edit one's own profile, see others'.

- **Search** (USER_SEARCH_REQ, 0x0603): users whose user name or nick name starts with the query,
  compared as logins compare names (:func:`coffeechat.auth.name_key`: NFKC casefolded), disabled
  accounts left out, in pages of at most ``search_page_max`` with an opaque cursor.  The keys live
  in the feature's own table (``directory_keys``), so a search is a range scan of its primary key
  on SQLite and PostgreSQL alike, never a scan of the users.  New accounts (made by registration,
  the admin API or the command line, none of which know this feature) are indexed by a sweep of
  the ids above the last one indexed, run before each search and every ``index_interval``.
- **Profiles** (PROFILE_UPDATE_REQ 0x0605, PROFILE_GET_REQ 0x0607): nick name and avatar URL (in
  the core's ``users`` row, so logins and CIM v1's user info carry them), a signature and an
  ``ex`` JSON object for the app's own data (in ``user_profiles``).  A change is pushed to the
  user's other devices (PROFILE_CHANGED_NOTIFY 0x0609), and every node is told to refresh the
  :class:`~coffeechat.model.User` its sessions of that user hold, so the messages they send from
  then on carry the new ``from_nick_name``.  Contacts are not pushed: they see the change in the
  next message and on their next fetch (docs/decisions.md, "Issue 12: directory").
- **CIM v1's user list** (FRIEND_QUERY_USER_LIST_REQ 0x0601): the caller's friends (when the
  ``friends`` feature is enabled) and recent 1:1 partners, at most ``contacts_listed_max``; no
  longer the first thousand accounts.

docs/directory.md tells the rest.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.auth import name_key
from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.accounts import check_nick, user_info
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.ratelimit import KeyedBuckets, RateLimited
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

KEY_NAME, KEY_NICK = 1, 2
INDEX_BATCH = 500
SEARCH_SWEEP_BATCHES = 2  # batches of new accounts a search indexes first (the periodic sweep: all)
#: accounts created this recently are looked at again by each sweep: on PostgreSQL, ids come from
#: a sequence and commit out of order, so an id below the highest indexed may still appear
INDEX_SETTLE_SECONDS = 120
_MAX_CODE_POINT = 0x10FFFF


@dataclass
class Config:
    """[directory]: page sizes, profile field limits and the new-account index sweep."""

    search_page_default: int = 20
    search_page_max: int = 50
    query_max: int = 64
    profile_fetch_max: int = 100
    #: users in the answer to CIM v1's user list (0x0601): friends first, then recent partners
    contacts_listed_max: int = 500
    avatar_url_max: int = 512
    signature_max: int = 256
    ex_max_bytes: int = 4096
    ex_max_depth: int = 8
    #: seconds between sweeps that index new accounts (a search also runs one first)
    index_interval: float = 10.0
    #: profile changes per user: the steady rate per minute, and how many at once (each is a
    #: write, a push to the user's devices and, for a nick, a message to every node)
    updates_per_minute: float = 10.0
    update_burst: int = 5

    def validate(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"directory.{f.name} must be positive, got {getattr(self, f.name)!r}")
        if self.search_page_default > self.search_page_max:
            raise ConfigError("directory.search_page_default must be at most directory.search_page_max")


# -- storage


@dataclass(frozen=True, slots=True)
class Profile:
    """A user as the directory shows them."""

    user_id: int
    name: str
    nick_name: str
    avatar_url: str
    signature: str = ""
    ex: str = "{}"
    updated_at: int = 0
    disabled: bool = False


class IDirectoryStore(Interface):
    """The directory feature's storage (a facet: an SQL backend gets :class:`SQLDirectoryStore`;
    tested by ``coffeechat.testing.conformance_directory``)."""

    def search(prefix: str, after_key: str, after_id: int, limit: int):
        """Fire with up to ``limit`` ``(key, Profile)`` of enabled users having a search key that
        starts with ``prefix`` and sorts after ``(after_key, after_id)``, in (key, user id) order.
        Keys are compared by code point."""

    def unindexed(after_id: int, limit: int):
        """Fire with up to ``limit`` ``(user_id, created_at)`` of accounts with an id above
        ``after_id``, by id (indexed or not: the caller knows what it indexed)."""

    def index_users(user_ids: list, upto: int):
        """Record the search keys of these accounts (their name's and nick's :func:`name_key`,
        as they are now; keys already there stay) and raise the indexed-up-to mark to ``upto``."""

    def indexed_upto():
        """Fire with the highest account id known indexed (every lower one is, too)."""

    def update_profile(user_id: int, nick_name, nick_key, avatar_url, signature, ex, now: int):
        """Change the given fields (None: keep) in one transaction; a new nick replaces the user's
        nick search key.  Fire with the Profile, or None when there is no such user."""

    def profiles(user_ids: list):
        """Fire with the Profiles of those of ``user_ids`` that exist, by ascending id."""


_PROFILE_COLS = (
    "u.user_id, u.name, u.nick_name, u.avatar_url, coalesce(p.signature, ''), coalesce(p.ex, '{}'), "
    "coalesce(p.updated_at, 0), u.disabled"
)
_PROFILE_FROM = "users AS u LEFT JOIN user_profiles AS p ON p.user_id = u.user_id"


def _profile(row: Any) -> Profile:
    return Profile(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]))


#: a range scan of directory_keys' primary key (tests/test_storage_directory.py checks the plans)
SQL_SEARCH = (
    f"SELECT k.search_key, {_PROFILE_COLS} FROM directory_keys AS k JOIN users AS u ON u.user_id = k.user_id "
    "LEFT JOIN user_profiles AS p ON p.user_id = u.user_id "
    "WHERE k.search_key >= ? AND k.search_key < ? AND (k.search_key > ? OR k.user_id > ?) AND NOT u.disabled "
    "ORDER BY k.search_key, k.user_id LIMIT ?"
)


def _search_txn(txn: ISQLTransaction, prefix: str, upper: str, after_key: str, after_id: int, limit: int) -> list:
    start = max(prefix, after_key)
    rows = txn.execute(SQL_SEARCH, (start, upper, after_key, after_id, limit)).fetchall()
    return [(r[0], _profile(r[1:])) for r in rows]


def _unindexed_txn(txn: ISQLTransaction, after_id: int, limit: int) -> list:
    rows = txn.execute(
        "SELECT user_id, created_at FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?",
        (after_id, limit),
    ).fetchall()
    return [tuple(r) for r in rows]


_INSERT_KEY = "INSERT INTO directory_keys (search_key, user_id, kind) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


def _index_txn(txn: ISQLTransaction, user_ids: list[int], upto: int) -> None:
    # The names are read here, in the writing transaction, so that a nick changed meanwhile
    # (update_profile) is not overwritten by the one the sweep read.
    if user_ids:
        clause, params = txn.in_list("user_id", user_ids)
        rows = txn.execute(f"SELECT user_id, name, nick_name FROM users WHERE {clause}", params).fetchall()
        for user_id, name, nick in rows:
            name_k = name_key(name)
            txn.execute(_INSERT_KEY, (name_k, user_id, KEY_NAME))
            nick_k = name_key(nick) if nick else ""
            if nick_k and nick_k != name_k:
                txn.execute(_INSERT_KEY, (nick_k, user_id, KEY_NICK))
    txn.execute("UPDATE directory_progress SET indexed_upto = GREATEST(indexed_upto, ?) WHERE id = 1", (upto,))


def _upto_txn(txn: ISQLTransaction) -> int:
    row = txn.execute("SELECT indexed_upto FROM directory_progress WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _update_txn(
    txn: ISQLTransaction,
    user_id: int,
    nick_name: str | None,
    nick_key: str | None,
    avatar_url: str | None,
    signature: str | None,
    ex: str | None,
    now: int,
) -> Profile | None:
    row = txn.execute(
        "UPDATE users SET nick_name = coalesce(CAST(? AS TEXT), nick_name), "
        "avatar_url = coalesce(CAST(? AS TEXT), avatar_url) WHERE user_id = ? RETURNING name",
        (nick_name, avatar_url, user_id),
    ).fetchone()
    if row is None:
        return None
    if nick_key is not None:
        txn.execute("DELETE FROM directory_keys WHERE user_id = ? AND kind = ?", (user_id, KEY_NICK))
        if nick_key != name_key(row[0]):
            txn.execute(_INSERT_KEY, (nick_key, user_id, KEY_NICK))
    txn.execute(
        "INSERT INTO user_profiles (user_id, signature, ex, updated_at) VALUES (?, coalesce(CAST(? AS TEXT), ''), "
        "coalesce(CAST(? AS TEXT), '{}'), ?) ON CONFLICT (user_id) DO UPDATE SET "
        "signature = coalesce(CAST(? AS TEXT), user_profiles.signature), "
        "ex = coalesce(CAST(? AS TEXT), user_profiles.ex), updated_at = ?",
        (user_id, signature, ex, now, signature, ex, now),
    )
    found = txn.execute(f"SELECT {_PROFILE_COLS} FROM {_PROFILE_FROM} WHERE u.user_id = ?", (user_id,)).fetchone()
    return _profile(found)


def _profiles_txn(txn: ISQLTransaction, user_ids: list[int]) -> list[Profile]:
    clause, params = txn.in_list("u.user_id", user_ids)
    rows = txn.execute(f"SELECT {_PROFILE_COLS} FROM {_PROFILE_FROM} WHERE {clause} ORDER BY u.user_id", params)
    return [_profile(r) for r in rows.fetchall()]


@implementer(IDirectoryStore)
class SQLDirectoryStore:
    """IDirectoryStore written once for every SQL backend (its tables: directory.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def search(self, prefix: str, after_key: str, after_id: int, limit: int) -> defer.Deferred:
        upper = successor(prefix)
        return self.db.run_read("directory_search", _search_txn, prefix, upper, after_key, int(after_id), int(limit))

    def unindexed(self, after_id: int, limit: int) -> defer.Deferred:
        return self.db.run_read("directory_unindexed", _unindexed_txn, int(after_id), int(limit))

    def index_users(self, user_ids: list, upto: int) -> defer.Deferred:
        return self.db.run_write("directory_index", _index_txn, sorted({int(i) for i in user_ids}), int(upto))

    def indexed_upto(self) -> defer.Deferred:
        return self.db.run_read("directory_upto", _upto_txn)

    def update_profile(
        self,
        user_id: int,
        nick_name: str | None,
        nick_key: str | None,
        avatar_url: str | None,
        signature: str | None,
        ex: str | None,
        now: int,
    ) -> defer.Deferred:
        return self.db.run_write(
            "profile_update", _update_txn, int(user_id), nick_name, nick_key, avatar_url, signature, ex, int(now)
        )

    def profiles(self, user_ids: list) -> defer.Deferred:
        ids = sorted({int(i) for i in user_ids})
        if not ids:
            return defer.succeed([])
        return self.db.run_read("profiles", _profiles_txn, ids)


def successor(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (by code point)."""
    chars = list(prefix)
    while chars and ord(chars[-1]) == _MAX_CODE_POINT:
        chars.pop()
    if not chars:
        return chr(_MAX_CODE_POINT) * (len(prefix) + 1)
    last = ord(chars[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not stored text: skip them
        last = 0xE000
    chars[-1] = chr(last)
    return "".join(chars)


# -- validation


def check_avatar_url(value: str, limit: int) -> str:
    """An http(s) URL with a host, at most ``limit`` characters, no spaces or controls; "" clears."""
    if value == "":
        return ""
    if len(value) > limit or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"avatar_url must be an http(s) URL of at most {limit} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "avatar_url must be an http or https URL with a host")
    return value


def check_signature(value: str, limit: int) -> str:
    if len(value) > limit or "\x00" in value:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"signature must be at most {limit} characters")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_ex(value: str, max_bytes: int, max_depth: int) -> str:
    """A JSON object of at most ``max_bytes`` (UTF-8) and ``max_depth`` levels, stored compact;
    "" clears it (to ``{}``)."""
    if value == "":
        return "{}"
    if len(value.encode()) > max_bytes:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"ex must be at most {max_bytes} bytes of JSON")
    try:
        parsed = json.loads(value)
        compact = json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))
        compact.encode()  # lone surrogates ("\\ud800") parse but cannot be stored
    except (ValueError, RecursionError):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "ex must be valid JSON") from None
    if not isinstance(parsed, dict):
        raise ChatError(ErrorCode.INVALID_ARGUMENT, "ex must be a JSON object")
    if _depth(parsed) > max_depth:
        raise ChatError(ErrorCode.INVALID_ARGUMENT, f"ex must nest at most {max_depth} levels")
    return compact


def encode_cursor(key: str, user_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, user_id], ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> tuple[str, int]:
    """The position a cursor names; it must be of a search for the same ``prefix``."""
    if not cursor:
        return "", 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, user_id = json.loads(raw)
        if isinstance(key, str) and type(user_id) is int and user_id >= 0 and key.startswith(prefix):
            return key, user_id
    except (ValueError, TypeError, binascii.Error, RecursionError):
        pass
    raise ChatError(ErrorCode.INVALID_ARGUMENT, "cursor is not one of this search's")


# -- the push


@dataclass(slots=True)
class ProfilePush(Push):
    """PROFILE_CHANGED_NOTIFY: the user's profile as it is now (to their other devices)."""

    user_id: int
    name: str
    nick_name: str
    avatar_url: str
    signature: str
    ex: str
    updated_at: int


def profile_info(p: Profile | ProfilePush) -> pb.CIMUserProfile:
    return pb.CIMUserProfile(
        user_id=p.user_id,
        user_name=p.name,
        nick_name=p.nick_name,
        avatar_url=p.avatar_url,
        signature=p.signature,
        ex=p.ex,
        updated_time=p.updated_at,
    )


def profile_notify(push: ProfilePush) -> pb.CIMProfileChangedNotify:
    return pb.CIMProfileChangedNotify(profile=profile_info(push))


# -- the service


class Directory:
    """Searches, profile changes and CIM v1's contact list (see the module docstring)."""

    def __init__(self, api: ModuleAPI, messages: Any, store: IDirectoryStore, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.store = store
        self.config = config
        self.clock = api.clock
        self._upto: int | None = None  # highest account id indexed (every lower one is)
        self._recent: set[int] = set()  # ids above the mark that this node indexed already
        self._seen = 0  # the highest account id this node has indexed
        self._sweeping: defer.Deferred | None = None
        self._waiting: list[defer.Deferred] = []
        self._updates = KeyedBuckets(api.clock, config.updates_per_minute / 60.0, config.update_burst)

    # -- indexing new accounts

    def catch_up(self, full: bool = False) -> defer.Deferred:
        """Index the accounts made since the last sweep.  One sweep at a time: callers that come
        while one runs wait for it, then share one of their own (theirs may be newer).

        A search runs a quick sweep (the ids above the highest this node has seen, at most
        SEARCH_SWEEP_BATCHES batches, so a bulk import does not make one search slow); the
        periodic one is ``full``: it also looks again at the ids not yet settled."""
        if self._sweeping is not None:
            d: defer.Deferred = defer.Deferred()
            self._waiting.append(d)
            return d
        sweep = self._sweeping = defer.ensureDeferred(self._sweep(full))

        def done(result: Any) -> Any:
            self._sweeping = None
            waiting, self._waiting = self._waiting, []
            if waiting:
                again = self.catch_up()
                for d in waiting:
                    again.addBoth(lambda r, d=d: d.callback(None))
            return result

        sweep.addBoth(done)
        return sweep

    async def _sweep(self, full: bool) -> None:
        if self._upto is None:
            self._upto = await self.store.indexed_upto()
            self._seen = self._upto
        settle_before = int(self.clock.seconds()) - INDEX_SETTLE_SECONDS
        after = self._upto if full else max(self._upto, self._seen)
        batches = 0
        contiguous = after == self._upto
        while full or batches < SEARCH_SWEEP_BATCHES:
            batches += 1
            rows = await self.store.unindexed(after, INDEX_BATCH)
            if not rows:
                return
            entries, upto = [], self._upto
            for user_id, created_at in rows:
                if user_id not in self._recent:
                    entries.append(user_id)
                # The mark moves only over settled accounts: a younger id may still be missing.
                if contiguous and created_at < settle_before:
                    upto = user_id
                else:
                    contiguous = False
            if entries or upto > self._upto:
                await self.store.index_users(entries, upto)
            self._upto = max(self._upto, upto)
            self._seen = max(self._seen, rows[-1][0])
            self._recent.update(entries)
            self._recent = {u for u in self._recent if u > self._upto}
            if len(rows) < INDEX_BATCH:
                return
            after = rows[-1][0]

    # -- search

    async def search(self, query: str, cursor: str, limit: int) -> tuple[list[Profile], str]:
        c = self.config
        if len(query) > c.query_max:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"query must be at most {c.query_max} characters")
        prefix = name_key(query.strip())
        if not prefix:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "query must not be blank")
        limit = c.search_page_default if limit <= 0 else min(limit, c.search_page_max)
        after_key, after_id = decode_cursor(cursor, prefix)
        await self.catch_up()
        found = await self.store.search(prefix, after_key, after_id, limit + 1)
        page, more = found[:limit], len(found) > limit
        seen: set[int] = set()
        profiles = []
        for _, profile in page:  # a user matched by both names is listed once per page
            if profile.user_id not in seen:
                seen.add(profile.user_id)
                profiles.append(profile)
        next_cursor = encode_cursor(page[-1][0], page[-1][1].user_id) if more else ""
        return profiles, next_cursor

    # -- profiles

    async def profiles(self, user_ids: list[int]) -> list[Profile]:
        if len(user_ids) > self.config.profile_fetch_max:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {self.config.profile_fetch_max} user ids per request")
        return await self.store.profiles([i for i in user_ids if i > 0])

    async def update(
        self,
        user: User,
        device: Any,
        nick_name: str | None = None,
        avatar_url: str | None = None,
        signature: str | None = None,
        ex: str | None = None,
    ) -> Profile:
        """Change the user's profile (only the fields given) and tell whom it concerns."""
        c = self.config
        nick_key = None
        if nick_name is not None:
            nick_name = check_nick(nick_name)
            nick_key = name_key(nick_name)
        if avatar_url is not None:
            avatar_url = check_avatar_url(avatar_url, c.avatar_url_max)
        if signature is not None:
            signature = check_signature(signature, c.signature_max)
        if ex is not None:
            ex = check_ex(ex, c.ex_max_bytes, c.ex_max_depth)
        wait = self._updates.take(str(user.user_id))
        if wait:
            raise RateLimited("too many profile changes; try again later", wait)
        now = int(self.clock.seconds())
        profile = await self.store.update_profile(user.user_id, nick_name, nick_key, avatar_url, signature, ex, now)
        if profile is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        if nick_name is not None or avatar_url is not None:
            self.refresh_sessions(profile.user_id, profile.nick_name, profile.avatar_url)
            self.api.broadcast(
                "directory/user",
                {"user_id": profile.user_id, "nick_name": profile.nick_name, "avatar_url": profile.avatar_url},
            )
        p = profile
        push = ProfilePush(p.user_id, p.name, p.nick_name, p.avatar_url, p.signature, p.ex, p.updated_at)
        self.api.router.push(p.user_id, push, device)
        self.api.fire("profile/changed", profile)
        return profile

    def refresh_sessions(self, user_id: int, nick_name: str, avatar_url: str) -> int:
        """The user's sessions on this node take the new nick and avatar: the messages they send
        from now on carry them.  Returns how many sessions changed."""
        changed = 0
        for device in self.api.router.devices_of(user_id):
            current = getattr(device, "user", None)
            if current is not None and (current.nick_name, current.avatar_url) != (nick_name, avatar_url):
                device.user = replace(current, nick_name=nick_name, avatar_url=avatar_url)
                changed += 1
        return changed

    def user_changed(self, data: dict, sender: str) -> None:
        """Cluster command ``directory/user``: another node changed a user's nick or avatar."""
        user_id, nick, avatar = data.get("user_id"), data.get("nick_name"), data.get("avatar_url")
        if type(user_id) is int and isinstance(nick, str) and isinstance(avatar, str):
            self.refresh_sessions(user_id, nick, avatar)

    async def resumed(self, lost_at: float) -> None:
        """After a cluster outage a ``directory/user`` may have been lost: reload the users of the
        sessions on this node from storage."""
        ids = sorted({d.user_id for d in self.api.router.all_devices()})
        for start in range(0, len(ids), INDEX_BATCH):
            for user in await self.api.store.users_by_ids(ids[start : start + INDEX_BATCH]):
                self.refresh_sessions(user.user_id, user.nick_name, user.avatar_url)

    # -- CIM v1's user list

    async def contacts(self, user: User) -> list[User]:
        """The caller's friends (if the friends feature is on), then their recent 1:1 partners,
        at most ``contacts_listed_max``, disabled accounts left out.  Group members are not
        contacts: a group is not an introduction."""
        limit = self.config.contacts_listed_max
        ids: dict[int, None] = {}
        friends = self._friends()
        if friends is not None and hasattr(friends, "friend_ids"):
            for friend_id in await friends.friend_ids(user.user_id):
                ids[int(friend_id)] = None
        if len(ids) < limit:
            for entry in await self.messages.conversations(user, 0):
                if entry.session_type == SessionType.SINGLE:
                    ids[entry.session_id] = None
        ids.pop(user.user_id, None)
        wanted = list(ids)[:limit]
        found = {u.user_id: u for u in await self.api.store.users_by_ids(wanted)}
        return [found[i] for i in wanted if i in found and not found[i].disabled]

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: the profile's signature and app fields go (the accounts row, with
        the nick and avatar, is anonymised by the admin API; a disabled user is never found)."""
        await self.store.update_profile(user.user_id, None, None, None, "", "{}", int(self.clock.seconds()))

    def _friends(self) -> Any:
        try:
            return self.api.depends("friends")
        except ConfigError:
            return None


def setup(api: ModuleAPI) -> Directory:
    """Search, profiles, the profile push, and CIM v1's user list (0x0601)."""
    config: Config = api.config
    directory = Directory(api, api.depends("messages"), api.open_store(IDirectoryStore, SQLDirectoryStore), config)
    api.push_kind(ProfilePush, name="profile", cmd=Cmd.PROFILE_CHANGED_NOTIFY, encode=profile_notify)
    api.cluster_command("directory/user", directory.user_changed)
    api.hook("cluster/resumed", lambda lost_at: defer.ensureDeferred(directory.resumed(lost_at)))
    api.hook("account/deleted", lambda user: defer.ensureDeferred(directory.account_deleted(user)))
    api.periodic(config.index_interval, lambda: directory.catch_up(full=True), now=True)

    @api.request(Cmd.USER_SEARCH_REQ)
    async def search(session: Session, req: pb.CIMUserSearchReq) -> pb.CIMUserSearchRsp:
        found, cursor = await directory.search(req.query, req.cursor, req.limit)
        return pb.CIMUserSearchRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            users=[profile_info(p) for p in found],
            next_cursor=cursor,
        )

    @api.request(Cmd.PROFILE_UPDATE_REQ)
    async def update(session: Session, req: pb.CIMProfileUpdateReq) -> pb.CIMProfileUpdateRsp:
        given = {f: getattr(req, f) for f in ("nick_name", "avatar_url", "signature", "ex") if req.HasField(f)}
        if not given:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "nothing to change")
        profile = await directory.update(session.user, session, **given)
        return pb.CIMProfileUpdateRsp(
            user_id=session.user_id, result_code=ErrorCode.SUCCESS, result_string="ok", profile=profile_info(profile)
        )

    @api.request(Cmd.PROFILE_GET_REQ)
    async def get(session: Session, req: pb.CIMProfileGetReq) -> pb.CIMProfileGetRsp:
        found = await directory.profiles(list(req.user_id_list))
        return pb.CIMProfileGetRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            profiles=[profile_info(p) for p in found],
        )

    @api.request(Cmd.FRIEND_QUERY_USER_LIST_REQ)
    async def users(session: Session, req: pb.CIMFriendQueryUserListReq) -> pb.CIMFriendQueryUserListRsp:
        """CIM v1's user list, as the original clients read it (same message, same fields), with
        the caller's friends and recent contacts instead of every account."""
        found = await directory.contacts(session.user)
        return pb.CIMFriendQueryUserListRsp(user_id=session.user_id, user_info_list=[user_info(u) for u in found])

    return directory
