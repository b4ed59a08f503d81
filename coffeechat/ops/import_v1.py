"""``coffeechat import coffeechat-v1 --mysql DSN``: move in from the original CoffeeChat server.

Reads the original server's MySQL database (tables: /shared/reference/cim-v1.md, "The original
server's MySQL database") and writes, through :mod:`coffeechat.ops.import_store`, in phases:

1. ``users``: ids kept; the old verifier ``(salt, md5(md5(P) + salt))`` kept as a legacy
   password scheme that the first login re-hashes with scrypt (coffeechat/auth.py); tokens are
   not imported (the original accepted empty ones);
2. ``groups``: ids, owner, settings, announcement, intro, avatar and the present members
   (``del_flag`` 0); dismissed groups keep their id, without members;
3. ``messages:<table>``: every shard, the ``recv`` ones first (they hold every message), then
   the ``send`` ones (the same messages again, found stored already): msg_id becomes the
   server_msg_id of its conversation, client_msg_id is kept (made from the source's ids where
   the old desktop client sent none);
4. ``sessions``: the conversation-list entries that have no messages, and the conversations
   users had removed from their lists (removed here too, with the ``deletes`` feature).

Each batch commits with its checkpoint, so an interrupted run resumes where it stopped; a run
after a finished one reads everything again and writes only what is missing (rows of the old
server added since).  What could not be mapped is recorded with the batch and listed at the end.
The MySQL reads run on a thread of their own, never on the reactor.  docs/import-v1.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet import defer, threads
from twisted.logger import Logger

from coffeechat.auth import legacy_cim_v1_hash, name_key
from coffeechat.errors import ChatError
from coffeechat.features.accounts import MD5_RE, check_name, check_nick
from coffeechat.features.groups import MAX_ANNOUNCEMENT, MAX_AVATAR, MAX_INTRO, MAX_NAME
from coffeechat.interfaces import ISQLDatabase
from coffeechat.model import (
    BeInviteModel,
    Group,
    GroupRole,
    GroupType,
    JoinModel,
    Message,
    MsgType,
    MuteModel,
    SessionType,
    User,
    conversation_key,
)
from coffeechat.ops.import_store import Imported, ImportedGroup, Problem, open_import_store
from coffeechat.threadpools import DaemonThreadPool

__all__ = ["ImportInterrupted", "V1Importer", "add_parser", "parse_mysql_dsn", "run"]

log = Logger()

SOURCE = "coffeechat-v1"
SHARDS = 4
# recv first: every message is in a recv shard (1:1 under the recipient, groups under the group)
MESSAGE_TABLES = tuple(f"im_message_recv_{i}" for i in range(SHARDS)) + tuple(
    f"im_message_send_{i}" for i in range(SHARDS)
)
DONE = "done"
# client_msg_ids made for messages the old desktop client sent without one: the same every run
CLIENT_MSG_ID_NAMESPACE = uuid.UUID("7f3c1e52-6a8b-4c1e-9f0d-c0ffeec4a7a1")
EXAMPLES = 20  # problems of a kind shown in the text summary
SESSION_REMOVED = 2  # im_session.session_status: kCIM_SESSION_STATUS_DELETE


class ImportInterrupted(Exception):
    """The run stopped early on purpose (``stop_after_messages``); the next one resumes."""


@dataclass
class Summary:
    """What one run did per phase, and every problem recorded for the import so far."""

    phases: dict[str, dict[str, int]] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    resumed: bool = False
    complete: bool = False

    def add(self, phase: str, result: Imported) -> None:
        counts = self.phases.setdefault(phase, {"new": 0, "existing": 0, "refused": 0})
        counts["new"] += result.new
        counts["existing"] += result.existing
        counts["refused"] += len(result.refused)

    def as_json(self) -> dict[str, Any]:
        kinds: dict[str, list[Problem]] = defaultdict(list)
        for p in self.problems:
            kinds[p.kind].append(p)
        return {
            "source": SOURCE,
            "complete": self.complete,
            "resumed": self.resumed,
            "phases": self.phases,
            "stats": dict(sorted(self.stats.items())),
            "problems": {
                kind: {"count": len(ps), "items": [{"ref": p.ref, "detail": p.detail} for p in ps]}
                for kind, ps in sorted(kinds.items())
            },
        }

    def text(self) -> str:
        lines = [f"import from {SOURCE}: " + ("complete" if self.complete else "stopped; run it again to resume")]
        for phase, c in self.phases.items():
            lines.append(f"  {phase:<36} {c['new']:>9} new {c['existing']:>9} already there {c['refused']:>7} refused")
        for name, count in sorted(self.stats.items()):
            lines.append(f"  {name:<36} {count:>9}")
        kinds: dict[str, list[Problem]] = defaultdict(list)
        for p in self.problems:
            kinds[p.kind].append(p)
        if not kinds:
            lines.append("not mapped: nothing")
        for kind, ps in sorted(kinds.items()):
            lines.append(f"not mapped: {kind} ({len(ps)})")
            lines.extend(f"    {p.ref}: {p.detail}" for p in ps[:EXAMPLES])
            if len(ps) > EXAMPLES:
                lines.append(f"    ... and {len(ps) - EXAMPLES} more (--json lists all)")
        return "\n".join(lines)


def parse_mysql_dsn(dsn: str) -> dict[str, Any]:
    """``mysql://user:password@host:port/database?unix_socket=/path&charset=utf8mb4`` as PyMySQL
    connection arguments (user name and password percent-decoded)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb") or not parts.path.strip("/"):
        raise ValueError("the DSN must look like mysql://user:password@host:port/database")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"unix_socket", "charset", "connect_timeout"}
    if unknown:
        raise ValueError(f"unknown DSN parameters: {', '.join(sorted(unknown))}")
    try:
        port = parts.port or 3306
    except ValueError as e:
        raise ValueError(f"bad port in the DSN: {e}") from None
    args: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": port,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.strip("/")),
        "charset": query.get("charset", "utf8mb4"),
        "connect_timeout": int(query.get("connect_timeout", 10)),
    }
    if "unix_socket" in query:
        args["unix_socket"] = query["unix_socket"]
    return args


class V1Source:
    """The original database, read in keyset pages (``WHERE id > ? ORDER BY id LIMIT ?``) on a
    single thread of its own."""

    def __init__(self, reactor: Any, connect_args: dict[str, Any]) -> None:
        self.reactor = reactor
        self.connect_args = connect_args
        self._pool = DaemonThreadPool(1, 1, name="import-v1-mysql")
        self._conn: Any = None

    def _call(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        return threads.deferToThreadPool(self.reactor, self._pool, fn, *args)

    def open(self) -> defer.Deferred:
        self._pool.start()
        return self._call(self._connect)

    def _connect(self) -> None:
        import pymysql

        self._conn = pymysql.connect(**self.connect_args, cursorclass=pymysql.cursors.DictCursor, autocommit=True)

    def close(self) -> defer.Deferred:
        def closing() -> None:
            if self._conn is not None:
                self._conn.close()

        d = self._call(closing) if self._pool.started else defer.succeed(None)

        def stop(result: Any) -> Any:
            self._pool.stop()
            return result

        return d.addBoth(stop)

    def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def query(self, sql: str, *params: Any) -> defer.Deferred:
        return self._call(self._query, sql, params)

    def page(self, table: str, columns: str, key: str, after: int, limit: int) -> defer.Deferred:
        return self.query(f"SELECT {columns} FROM {table} WHERE {key} > %s ORDER BY {key} LIMIT %s", after, limit)

    async def counts(self, table: str, key: str, after: int) -> tuple[int, int]:
        """(rows in ``table``, rows at or before ``after``), for the progress bar."""
        rows = await self.query(f"SELECT COUNT(*) AS n, COALESCE(SUM({key} <= %s), 0) AS done FROM {table}", after)
        return int(rows[0]["n"]), int(rows[0]["done"])

    async def missing_tables(self) -> list[str]:
        wanted = ["im_user", "im_group", "im_group_member", "im_session", *MESSAGE_TABLES]
        rows = await self.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()")
        present = {r["t"].lower() for r in rows}
        return [t for t in wanted if t not in present]


def _progress_bar(total: int, initial: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="rows", file=sys.stderr, disable=not sys.stderr.isatty())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class V1Importer:
    """One run of the import from ``source`` into ``store`` (an IStore that is an SQL database);
    ``stop_after_messages`` stops the run once at least that many messages were committed (for
    tests of resuming); ``removals``: the deletes feature is on, so conversations removed from a
    user's list there are removed here too."""

    def __init__(
        self,
        store: Any,
        source: V1Source,
        batch: int = 1000,
        stop_after_messages: int | None = None,
        removals: bool = False,
    ) -> None:
        self.store = store
        self.removals = removals
        self.source = source
        self.batch = batch
        self.stop_after_messages = stop_after_messages
        self.facet: Any = None
        self.summary = Summary()
        self.known_users: set[int] = set()
        self.known_groups: set[int] = set()
        self._messages_written = 0

    async def run(self) -> Summary:
        if not ISQLDatabase.providedBy(self.store):
            raise ValueError("the import writes to an SQL storage backend (sqlite or postgres)")
        missing = await self.source.missing_tables()
        if missing:
            raise ValueError(f"not a CoffeeChat v1 database: no table {', '.join(missing)}")
        self.facet = await open_import_store(self.store)
        progress = await self.facet.progress(SOURCE)
        if DONE in progress:
            await self.facet.reset(SOURCE)  # a new pass over everything; only what is missing is written
            progress = {}
        elif progress:
            self.summary.resumed = True
        elif await self.store.list_users(0, 1):
            raise ValueError(
                "this deployment has accounts already and no import to resume: import into a new, empty one "
                "(ids are kept, so they must be free)"
            )
        try:
            await self._users(progress.get("users", 0))
            await self._groups(progress.get("groups", 0))
            await self._load_groups()
            for table in MESSAGE_TABLES:
                await self._messages(table, progress.get(f"messages:{table}", 0))
            await self._sessions(progress.get("sessions", 0))
            await self.facet.record(SOURCE, DONE, 1, [])
            self.summary.complete = True
        finally:
            self.summary.problems = await self.facet.problems(SOURCE)
        return self.summary

    async def _pages(self, phase: str, table: str, columns: str, key: str, after: int, write: Callable) -> None:
        """Read ``table`` after ``after`` in pages, each written (with its checkpoint) by ``write``."""
        total, done = await self.source.counts(table, key, after)
        bar = _progress_bar(total, done, phase)
        try:
            pending = self.source.page(table, columns, key, after, self.batch)
            while True:
                rows = await pending
                if not rows:
                    return
                position = int(rows[-1][key])
                full = len(rows) == self.batch
                pending = self.source.page(table, columns, key, position, self.batch) if full else None
                await write(phase, position, rows)
                bar.update(len(rows))
                if pending is None:
                    return
        finally:
            bar.close()

    # -- users

    async def _users(self, after: int) -> None:
        columns = "id, user_name, user_pwd_salt, user_pwd_hash, user_nick_name, user_attach, created"
        await self._pages("users", "im_user", columns, "id", after, self._write_users)

    async def _write_users(self, phase: str, position: int, rows: list[dict]) -> None:
        users, problems = [], []
        for r in rows:
            uid, name = int(r["id"]), _text(r["user_name"])
            try:
                check_name(name)
            except ChatError:
                problems.append(Problem("bad_user_name", str(uid), f"{name!r} is not 5-32 of A-Z a-z 0-9 _ . @ -"))
                continue
            try:
                nick = check_nick(_text(r["user_nick_name"]))
            except ChatError:
                nick = name
                problems.append(Problem("nick_name_replaced", str(uid), f"{name!r}: blank nick name, the name used"))
            salt, digest = _text(r["user_pwd_salt"]).strip(), _text(r["user_pwd_hash"]).strip()
            if salt and "$" not in salt and MD5_RE.fullmatch(digest):
                password_hash = legacy_cim_v1_hash(salt, digest)
            else:
                password_hash = ""
                problems.append(
                    Problem("no_password", str(uid), f"{name!r}: no usable verifier; set one (coffeechat user passwd)")
                )
            if _text(r["user_attach"]).strip():
                problems.append(Problem("user_attach_not_mapped", str(uid), f"{name!r}: user_attach has no place here"))
            users.append(User(uid, name, nick, password_hash, False, int(r["created"] or 0)))
        result = await self.facet.import_users(SOURCE, phase, position, users, problems)
        self.summary.add(phase, result)

    # -- groups

    async def _load_users(self) -> None:
        """The source's users that are accounts here by the same id and name: whom groups,
        messages and sessions may name."""
        self.known_users = set()
        after = 0
        while rows := await self.source.page("im_user", "id, user_name", "id", after, 5000):
            after = int(rows[-1]["id"])
            ours = {u.user_id: name_key(u.name) for u in await self.store.users_by_ids([int(r["id"]) for r in rows])}
            self.known_users.update(
                int(r["id"]) for r in rows if ours.get(int(r["id"])) == name_key(_text(r["user_name"]))
            )

    async def _load_groups(self) -> None:
        """The source's groups that are live groups here: where group messages may go."""
        self.known_groups = set()
        after = 0
        while rows := await self.source.page("im_group", "group_id", "group_id", after, 5000):
            after = int(rows[-1]["group_id"])
            self.known_groups |= await self.facet.live_group_ids([int(r["group_id"]) for r in rows])

    async def _groups(self, after: int) -> None:
        await self._load_users()
        columns = (
            "group_id, group_name, group_version, owner, announcement, intro, avatar, type, join_model, "
            "be_invite_model, mute_model, created, updated, del_flag"
        )
        await self._pages("groups", "im_group", columns, "group_id", after, self._write_groups)

    async def _write_groups(self, phase: str, position: int, rows: list[dict]) -> None:
        ids = [int(r["group_id"]) for r in rows]
        placeholders = ", ".join(["%s"] * len(ids))
        member_rows = await self.source.query(
            f"SELECT id, group_id, user_id, created, del_flag FROM im_group_member WHERE group_id IN ({placeholders}) "
            "ORDER BY created, id",
            *ids,
        )
        members: dict[int, list[dict]] = defaultdict(list)
        for m in member_rows:
            members[int(m["group_id"])].append(m)
        groups, problems = [], []
        for r in rows:
            item = self._group(r, members.get(int(r["group_id"]), []), problems)
            groups.append(item)
        result = await self.facet.import_groups(SOURCE, phase, position, groups, problems)
        self.summary.add(phase, result)

    def _group(self, r: dict, member_rows: list[dict], problems: list[Problem]) -> ImportedGroup:
        gid = int(r["group_id"])
        ref = str(gid)

        def setting(column: str, enum: type, default: int) -> int:
            value = int(r[column] or 0)
            if value not in {int(v) for v in enum}:
                problems.append(Problem("bad_group_setting", f"{gid}:{column}", f"{column} = {value}, {default} used"))
                return default
            return value

        def text(column: str, limit: int) -> str:
            value = _text(r[column])
            if len(value) > limit:
                problems.append(Problem("group_text_cut", f"{gid}:{column}", f"{column} cut to {limit} characters"))
            return value[:limit]

        group = Group(
            group_id=gid,
            name=text("group_name", MAX_NAME),
            group_type=setting("type", GroupType, int(GroupType.NORMAL)),
            owner_id=int(r["owner"] or 0),
            created_at=int(r["created"] or 0),
            updated_at=int(r["updated"] or r["created"] or 0),
            version=max(1, int(r["group_version"] or 1)),
            join_model=setting("join_model", JoinModel, int(JoinModel.DEFAULT)),
            be_invite_model=setting("be_invite_model", BeInviteModel, int(BeInviteModel.DEFAULT)),
            mute_model=setting("mute_model", MuteModel, int(MuteModel.DEFAULT)),
            intro=text("intro", MAX_INTRO),
            announcement=text("announcement", MAX_ANNOUNCEMENT),
            avatar=text("avatar", MAX_AVATAR),
        )
        if int(r["del_flag"] or 0):
            self.summary.stats["groups dismissed before"] += 1
            return ImportedGroup(_dismissed(group))
        present: dict[int, int] = {}
        for m in member_rows:
            uid = int(m["user_id"])
            if int(m["del_flag"] or 0):
                self.summary.stats["members who had left"] += 1
            elif uid not in self.known_users:
                problems.append(Problem("orphan_member", f"{gid}:{uid}", f"member {uid} is no user here"))
            else:
                present.setdefault(uid, int(m["created"] or 0))
        if not present:
            problems.append(Problem("empty_group", ref, f"group {gid} has no member left: imported as dismissed"))
            return ImportedGroup(_dismissed(group))
        owner = group.owner_id
        if owner not in present:
            new_owner = next(iter(present))
            problems.append(
                Problem("owner_replaced", ref, f"owner {owner} is not a member: {new_owner}, the longest-standing, is")
            )
            owner = new_owner
        members = [(owner, int(GroupRole.OWNER), present[owner])]
        members += [(uid, int(GroupRole.MEMBER), at) for uid, at in present.items() if uid != owner]
        group = Group(**{**_fields(group), "owner_id": owner, "member_count": len(members)})
        return ImportedGroup(group, tuple(members))

    # -- messages

    async def _messages(self, table: str, after: int) -> None:
        columns = "id, msg_id, client_msg_id, from_id, to_id, group_id, msg_type, msg_content, created"
        await self._pages(f"messages:{table}", table, columns, "id", after, self._write_messages)

    async def _write_messages(self, phase: str, position: int, rows: list[dict]) -> None:
        messages, problems = [], []
        for r in rows:
            message = self._message(r, problems)
            if message is not None:
                messages.append(message)
        result = await self.facet.import_messages(SOURCE, phase, position, messages, problems)
        self.summary.add(phase, result)
        self._messages_written += len(rows)
        if self.stop_after_messages is not None and self._messages_written >= self.stop_after_messages:
            raise ImportInterrupted(f"stopped after {self._messages_written} message rows, as asked")

    def _message(self, r: dict, problems: list[Problem]) -> Message | None:
        sender, to, gid, seq = int(r["from_id"] or 0), int(r["to_id"] or 0), int(r["group_id"] or 0), int(r["msg_id"])
        if gid:
            st, to, conv = int(SessionType.GROUP), gid, f"g:{gid}"
        else:
            st, conv = int(SessionType.SINGLE), conversation_key(SessionType.SINGLE, sender, to)
        ref = f"{conv}#{seq}"
        if seq <= 0:
            problems.append(Problem("bad_msg_id", f"{conv}@{r['id']}", f"msg_id {seq} is no server_msg_id"))
            return None
        if gid and gid not in self.known_groups:
            problems.append(Problem("unknown_group", ref, f"group {gid} is not a live group here"))
            return None
        unknown = [u for u in ((sender,) if gid else (sender, to)) if u not in self.known_users]
        if unknown:
            problems.append(Problem("unknown_user", ref, f"user {unknown[0]} is no user here"))
            return None
        msg_type = int(r["msg_type"] or 0)
        if not MsgType.TEXT <= msg_type <= MsgType.AVCHAT:
            problems.append(Problem("unknown_msg_type", ref, f"msg_type {msg_type} is none of CIM v1's: kept as it is"))
        client_msg_id = _text(r["client_msg_id"]).strip()
        if not client_msg_id:
            client_msg_id = str(uuid.uuid5(CLIENT_MSG_ID_NAMESPACE, f"{SOURCE}:{ref}"))
        data = _text(r["msg_content"]).encode("utf-8")
        return Message(conv, seq, st, sender, to, client_msg_id, msg_type, data, int(r["created"] or 0), 0)

    # -- sessions

    async def _sessions(self, after: int) -> None:
        columns = "id, user_id, peer_id, session_type, session_status"
        await self._pages("sessions", "im_session", columns, "id", after, self._write_sessions)

    async def _write_sessions(self, phase: str, position: int, rows: list[dict]) -> None:
        entries, problems = [], []
        for r in rows:
            user, peer, st = int(r["user_id"] or 0), int(r["peer_id"] or 0), int(r["session_type"] or 0)
            ref = f"{user}:{st}:{peer}"
            removed = int(r["session_status"] or 0) == SESSION_REMOVED
            if st not in (SessionType.SINGLE, SessionType.GROUP):
                problems.append(Problem("bad_session_type", ref, f"session_type {st}"))
                continue
            if user not in self.known_users or (st == SessionType.SINGLE and peer not in self.known_users):
                problems.append(Problem("unknown_user", f"session {ref}", "a user of the session is no user here"))
                continue
            if st == SessionType.GROUP and peer not in self.known_groups:
                continue  # a dismissed or unknown group: nothing to list (its messages said so)
            if removed and not self.removals:
                problems.append(
                    Problem(
                        "session_removed_kept",
                        f"session {ref}",
                        "removed from the list there, listed here (the deletes feature is off)",
                    )
                )
                removed = False
            if st == SessionType.GROUP:
                self.summary.stats["group sessions (entries of members)"] += 1
            if removed:
                self.summary.stats["sessions removed from the list"] += 1
            entries.append((user, peer, st, removed))
        result = await self.facet.import_entries(SOURCE, phase, position, entries, problems)
        self.summary.add(phase, result)


def _fields(group: Group) -> dict[str, Any]:
    return {name: getattr(group, name) for name in Group.__dataclass_fields__}


def _dismissed(group: Group) -> Group:
    return Group(**{**_fields(group), "dismissed": True, "member_count": 0})


# -- the command line (wired into coffeechat/admin.py)


def add_parser(commands: Any) -> None:
    """``coffeechat import coffeechat-v1 --mysql DSN [--batch N] [--json]``."""
    imports = commands.add_parser("import", help="import another server's data").add_subparsers(
        dest="source", required=True
    )
    v1 = imports.add_parser("coffeechat-v1", help="the original CoffeeChat server's MySQL database")
    v1.add_argument("--mysql", required=True, metavar="DSN", help="mysql://user:password@host:port/database")
    v1.add_argument("--batch", type=int, default=1000, metavar="N", help="rows per transaction (default 1000)")
    v1.add_argument("--json", action="store_true", help="print the summary as JSON")
    v1.add_argument("--stop-after-messages", type=int, default=None, help=argparse.SUPPRESS)


async def run(reactor: Any, node: Any, args: argparse.Namespace, error: type[Exception]) -> int:
    """Run the import on an opened node; 0 when complete, 3 when stopped early (resumable).
    Mistakes are raised as ``error`` (one line)."""
    if not 1 <= args.batch <= 100_000:
        raise error("--batch must be between 1 and 100000")
    if node.config.storage.backend == "memory":
        raise error(
            'storage.backend is "memory": the import would vanish when the command ends (use sqlite or postgres)'
        )
    try:
        connect_args = parse_mysql_dsn(args.mysql)
    except ValueError as e:
        raise error(f"--mysql: {e}") from None
    try:
        import pymysql
    except ImportError:
        raise error("PyMySQL is not installed (pip install PyMySQL)") from None
    source = V1Source(reactor, connect_args)
    try:
        try:
            await source.open()
        except pymysql.MySQLError as e:
            raise error(f"cannot connect to MySQL at {connect_args['host']}:{connect_args['port']}: {e}") from None
        removals = "deletes" in node.features
        importer = V1Importer(node.store, source, args.batch, args.stop_after_messages, removals)
        status = 0
        try:
            summary = await importer.run()
        except ImportInterrupted as e:
            summary, status = importer.summary, 3
            print(f"{e}; run the same command again to resume", file=sys.stderr)
        except ValueError as e:
            raise error(str(e)) from None
        except pymysql.MySQLError as e:
            raise error(f"reading the MySQL database failed: {e}") from None
    finally:
        await source.close()
    print(json.dumps(summary.as_json(), indent=1) if args.json else summary.text())
    return status
