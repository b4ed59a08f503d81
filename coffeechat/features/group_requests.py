"""Group requests: asking to join a group, invitations the invitee accepts, and their decisions.

- **Requests to join** (GROUP_JOIN_REQ 0x0520) go to groups whose ``join_model`` is NEED_AUTH: the
  owner and admins get the request on every device (GROUP_REQUEST_NOTIFY 0x0526), one of them
  approves or rejects it (GROUP_REQUEST_DECIDE_REQ 0x0524; the first decision wins, the others'
  devices are told it was handled), and an approval adds the member through the group store as an
  invitation by that admin does (its role is checked again in the writing transaction).  Groups
  with ``join_model`` DEFAULT are joined by invitation only and REJECT groups not at all: a
  request to either is refused (GROUP_NOT_JOINABLE), with the same answer as for a group that
  does not exist, so that group ids reveal nothing to non-members.
- **Invitations needing consent**: when the group's ``be_invite_model`` is NEED_AGREE, or the
  invitee turned on "invitations need my consent" (GROUP_INVITE_SETTING_REQ 0x052B), an invitation
  (0x0511) keeps a pending invitation for them instead of adding them; the invitee accepts or
  declines it (0x0524), and accepting adds them on the inviter's authority, checked again then.
- Pending requests expire after ``ttl`` (a week), are bounded per group and per user, and are
  listed (0x0522) for a device that was offline: those the user may decide and those they made.

Everything is pushed to every device concerned on every node (the router), the acting device
excepted when its answer says it already.  docs/group-requests.md tells the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.groups import attached, invite_min_role
from coffeechat.interfaces import ISQLDatabase, ISQLTransaction
from coffeechat.model import BeInviteModel, GroupRole, JoinModel, Push, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import MAX_ID, Cmd, pb
from coffeechat.session import Session

SECTION = "group_requests"

KIND_JOIN = 1
KIND_INVITE = 2

PENDING = 0
ACCEPTED = 1
REJECTED = 2
EXPIRED = 3
WITHDRAWN = 4

LIST_MAX = 200


@dataclass
class Config:
    """[group_requests]: how long a request waits, how long its message may be, and how many may
    wait per group and per user."""

    ttl: int = 7 * 24 * 3600
    max_message: int = 200
    max_pending_per_group: int = 200
    max_pending_per_user: int = 50

    def validate(self) -> None:
        if self.ttl < 60:
            raise ConfigError("group_requests.ttl must be at least 60 seconds")
        if not 0 <= self.max_message <= 2000:
            raise ConfigError("group_requests.max_message must be between 0 and 2000 characters")
        if self.max_pending_per_group < 1 or self.max_pending_per_user < 1:
            raise ConfigError("group_requests.max_pending_per_group and max_pending_per_user must be at least 1")


# -- storage


class RequestRefused(Exception):
    """A write the store refused in its transaction; ``code`` is the answer's error code and
    ``request`` the request as it is (when there is one)."""

    def __init__(self, code: int, message: str, request: GroupRequest | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request = request


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """A request to join (``kind`` 1: ``user_id`` asked, ``actor_id`` = ``user_id``) or an
    invitation (``kind`` 2: ``actor_id`` invited ``user_id``), and its status."""

    request_id: int
    kind: int
    group_id: int
    user_id: int
    actor_id: int
    message: str
    status: int
    created_at: int
    expires_at: int
    decided_by: int = 0
    decided_at: int = 0
    group_name: str = ""

    def pending(self, now: int) -> bool:
        return self.status == PENDING and self.expires_at > now


class IGroupRequestStore(Interface):
    """The group_requests feature's storage (an SQL backend gets :class:`SQLGroupRequestStore`; any
    other provides it through ``facet(IGroupRequestStore)``; tested by
    ``coffeechat.testing.conformance_group_requests``).  A request is pending while its status is
    0 and ``expires_at`` is in the future."""

    def create(
        kind: int,
        group_id: int,
        actor_id: int,
        user_ids: list[int],
        message: str,
        now: int,
        expires_at: int,
        max_per_group: int,
        max_per_user: int,
    ):
        """Keep a pending request of ``kind`` to ``group_id`` for each of ``user_ids``, in one
        transaction; fire with ``[(GroupRequest, new)]`` in that order: ``new`` False when one was
        pending already (it is returned unchanged).  A pending request that expired is marked
        EXPIRED and a new one made.  All or nothing: RequestRefused(TOO_MANY_GROUP_REQUESTS) when
        the group would have more than ``max_per_group`` pending, or a user more than
        ``max_per_user``."""

    def get(request_id: int):
        """Fire with the GroupRequest (any status), or None."""

    def decide(request_id: int, group_id: int, decider_id: int, status: int, now: int):
        """Move a pending request to ``status`` (decided by ``decider_id``): the first decision
        wins.  Fire with the GroupRequest afterwards; RequestRefused(GROUP_REQUEST_HANDLED, with
        the request as it is) when it is not pending (decided or expired), GROUP_REQUEST_NOT_FOUND
        when there is no such request in ``group_id``."""

    def reopen(request_id: int, status: int):
        """An acceptance that could not be carried out: the ACCEPTED request goes back to
        ``status`` (PENDING, decision cleared; or EXPIRED).  Fire with the GroupRequest or None."""

    def pending_for(user_id: int, group_id: int, now: int, limit: int):
        """Fire with up to ``limit`` pending GroupRequests (with ``group_name``), oldest first, of
        group ``group_id`` (0: any): those for or by ``user_id`` and the requests to join groups
        where ``user_id`` is owner or admin; none of dismissed groups, none whose user is a
        member by now."""

    def set_consent(user_id: int, need_consent: bool):
        """Record whether invitations to ``user_id`` need their consent."""

    def consent_of(user_ids: list[int]):
        """Fire with the set of ``user_ids`` whose invitations need their consent."""

    def purge(before: int):
        """Delete requests that expired before ``before`` (decided or not); fire with how many."""

    def forget_user(user_id: int):
        """Erase every request by or for the user (asked, invited or inviting; any status) and
        their consent setting (a deleted account); fire with how many requests went."""


_COLS = "request_id, kind, group_id, user_id, actor_id, message, status, created_at, expires_at, decided_by, decided_at"
_R_COLS = ", ".join("r." + c for c in _COLS.split(", "))


def _row(r: Any) -> GroupRequest:
    return GroupRequest(*r)


def _get_txn(txn: ISQLTransaction, request_id: int) -> GroupRequest | None:
    row = txn.execute(f"SELECT {_COLS} FROM group_requests WHERE request_id = ?", (request_id,)).fetchone()
    return None if row is None else _row(row)


def _create_txn(
    txn: ISQLTransaction,
    kind: int,
    group_id: int,
    actor_id: int,
    user_ids: list[int],
    message: str,
    now: int,
    expires_at: int,
    max_per_group: int,
    max_per_user: int,
) -> list[tuple[GroupRequest, bool]]:
    clause, params = txn.in_list("user_id", user_ids)
    found = {
        r.user_id: r
        for r in map(
            _row,
            txn.execute(
                f"SELECT {_COLS} FROM group_requests WHERE group_id = ? AND kind = ? AND status = 0 AND {clause}",
                (group_id, kind, *params),
            ).fetchall(),
        )
    }
    expired = [r.request_id for r in found.values() if r.expires_at <= now]
    if expired:
        ids_clause, ids = txn.in_list("request_id", expired)
        txn.execute(f"UPDATE group_requests SET status = 3 WHERE {ids_clause}", ids)
    fresh = [u for u in user_ids if u not in found or found[u].expires_at <= now]
    if fresh:
        (in_group,) = txn.execute(
            "SELECT count(*) FROM group_requests WHERE group_id = ? AND status = 0 AND expires_at > ?",
            (group_id, now),
        ).fetchone()
        if in_group + len(fresh) > max_per_group:
            raise RequestRefused(
                ErrorCode.TOO_MANY_GROUP_REQUESTS, f"group {group_id} has {max_per_group} requests waiting already"
            )
        fresh_clause, fresh_params = txn.in_list("user_id", fresh)
        counts = dict(
            txn.execute(
                "SELECT user_id, count(*) FROM group_requests WHERE status = 0 AND expires_at > ? AND "
                f"{fresh_clause} GROUP BY user_id",
                (now, *fresh_params),
            ).fetchall()
        )
        over = [u for u in fresh if counts.get(u, 0) >= max_per_user]
        if over:
            raise RequestRefused(
                ErrorCode.TOO_MANY_GROUP_REQUESTS, f"users {over} have {max_per_user} requests waiting already"
            )
    out = []
    for user_id in user_ids:
        if user_id not in fresh:
            out.append((found[user_id], False))
            continue
        row = txn.execute(
            "INSERT INTO group_requests (kind, group_id, user_id, actor_id, message, status, created_at, expires_at) "
            f"VALUES (?, ?, ?, ?, ?, 0, ?, ?) RETURNING {_COLS}",
            (kind, group_id, user_id, actor_id, message, now, expires_at),
        ).fetchone()
        out.append((_row(row), True))
    return out


def _decide_txn(
    txn: ISQLTransaction, request_id: int, group_id: int, decider_id: int, status: int, now: int
) -> GroupRequest:
    row = txn.execute(
        f"UPDATE group_requests SET status = ?, decided_by = ?, decided_at = ? WHERE request_id = ? "
        f"AND group_id = ? AND status = 0 AND expires_at > ? RETURNING {_COLS}",
        (status, decider_id, now, request_id, group_id, now),
    ).fetchone()
    if row is not None:
        return _row(row)
    found = _get_txn(txn, request_id)
    if found is None or found.group_id != group_id:
        raise RequestRefused(ErrorCode.GROUP_REQUEST_NOT_FOUND, f"no request {request_id}")
    raise RequestRefused(ErrorCode.GROUP_REQUEST_HANDLED, f"request {request_id} was handled already", found)


def _reopen_txn(txn: ISQLTransaction, request_id: int, status: int) -> GroupRequest | None:
    row = txn.execute(
        "UPDATE group_requests SET status = ?, decided_by = CASE WHEN ? = 0 THEN 0 ELSE decided_by END, "
        "decided_at = CASE WHEN ? = 0 THEN 0 ELSE decided_at END "
        f"WHERE request_id = ? AND status = 1 RETURNING {_COLS}",
        (status, status, status, request_id),
    ).fetchone()
    return None if row is None else _row(row)


def _pending_txn(txn: ISQLTransaction, user_id: int, group_id: int, now: int, limit: int) -> list[GroupRequest]:
    rows = txn.execute(
        f"SELECT {_R_COLS}, g.name FROM group_requests AS r "
        "JOIN chat_groups AS g ON g.group_id = r.group_id AND NOT g.dismissed "
        "WHERE r.request_id IN ("
        "SELECT request_id FROM group_requests WHERE user_id = ? AND status = 0 "
        "UNION SELECT request_id FROM group_requests WHERE actor_id = ? AND status = 0 "
        "UNION SELECT q.request_id FROM group_members AS m JOIN group_requests AS q "
        "ON q.group_id = m.group_id AND q.status = 0 AND q.kind = 1 WHERE m.user_id = ? AND m.role >= 2"
        ") AND r.expires_at > ? AND (? = 0 OR r.group_id = ?) AND NOT EXISTS (SELECT 1 FROM group_members AS j "
        "WHERE j.group_id = r.group_id AND j.user_id = r.user_id) ORDER BY r.created_at, r.request_id LIMIT ?",
        (user_id, user_id, user_id, now, group_id, group_id, limit),
    ).fetchall()
    return [GroupRequest(*r) for r in rows]


def _set_consent_txn(txn: ISQLTransaction, user_id: int, need_consent: bool) -> bool:
    txn.execute(
        "INSERT INTO group_invite_consent (user_id, need_consent) VALUES (?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET need_consent = excluded.need_consent",
        (user_id, need_consent),
    )
    return need_consent


def _consent_txn(txn: ISQLTransaction, user_ids: list[int]) -> set[int]:
    clause, params = txn.in_list("user_id", user_ids)
    rows = txn.execute(f"SELECT user_id FROM group_invite_consent WHERE need_consent AND {clause}", params)
    return {r[0] for r in rows.fetchall()}


def _purge_txn(txn: ISQLTransaction, before: int) -> int:
    return txn.execute("DELETE FROM group_requests WHERE expires_at < ?", (before,)).rowcount


def _forget_txn(txn: ISQLTransaction, user_id: int) -> int:
    gone = txn.execute(
        "DELETE FROM group_requests WHERE user_id = ? OR actor_id = ? RETURNING request_id", (user_id, user_id)
    ).fetchall()
    txn.execute("DELETE FROM group_invite_consent WHERE user_id = ?", (user_id,))
    return len(gone)


@implementer(IGroupRequestStore)
class SQLGroupRequestStore:
    """IGroupRequestStore written once for every SQL backend (its tables: group_requests.sql).
    Writes to one group take that group's lock (``locks``), as the group store's do; a creation
    also takes its users' locks (``user_locks``), for the per-user bound."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def create(
        self,
        kind: int,
        group_id: int,
        actor_id: int,
        user_ids: list[int],
        message: str,
        now: int,
        expires_at: int,
        max_per_group: int,
        max_per_user: int,
    ) -> defer.Deferred:
        ids = list(dict.fromkeys(int(u) for u in user_ids))
        if not ids:
            return defer.succeed([])
        return self.db.run_write(
            "group_request_create",
            _create_txn,
            int(kind),
            int(group_id),
            int(actor_id),
            ids,
            str(message),
            int(now),
            int(expires_at),
            int(max_per_group),
            int(max_per_user),
            locks=(f"g:{int(group_id)}",),
            user_locks=ids,  # the per-user bound counts across groups: their locks keep it on PostgreSQL
        )

    def get(self, request_id: int) -> defer.Deferred:
        return self.db.run_read("group_request", _get_txn, int(request_id))

    def decide(self, request_id: int, group_id: int, decider_id: int, status: int, now: int) -> defer.Deferred:
        return self.db.run_write(
            "group_request_decide",
            _decide_txn,
            int(request_id),
            int(group_id),
            int(decider_id),
            int(status),
            int(now),
            locks=(f"g:{int(group_id)}",),
        )

    def reopen(self, request_id: int, status: int) -> defer.Deferred:
        return self.db.run_write("group_request_reopen", _reopen_txn, int(request_id), int(status))

    def pending_for(self, user_id: int, group_id: int, now: int, limit: int) -> defer.Deferred:
        return self.db.run_read("group_requests_pending", _pending_txn, int(user_id), int(group_id), int(now), limit)

    def set_consent(self, user_id: int, need_consent: bool) -> defer.Deferred:
        return self.db.run_write("group_invite_consent", _set_consent_txn, int(user_id), bool(need_consent))

    def consent_of(self, user_ids: list[int]) -> defer.Deferred:
        ids = [int(u) for u in user_ids]
        if not ids:
            return defer.succeed(set())
        return self.db.run_read("group_invite_consent_of", _consent_txn, ids)

    def purge(self, before: int) -> defer.Deferred:
        return self.db.run_write("group_requests_purge", _purge_txn, int(before))

    def forget_user(self, user_id: int) -> defer.Deferred:
        return self.db.run_write("group_requests_forget_user", _forget_txn, int(user_id))


# -- the pushes


@dataclass(slots=True)
class GroupRequestPush(Push):
    """GROUP_REQUEST_NOTIFY: a request or invitation is new (status 0) or was decided."""

    request_id: int
    kind: int
    group_id: int
    user_id: int
    actor_id: int
    message: str
    status: int
    created_at: int
    expires_at: int
    decided_by: int
    decided_at: int
    group_name: str


@dataclass(slots=True)
class InviteSettingPush(Push):
    """GROUP_INVITE_SETTING_NOTIFY: the user's consent setting changed on another device."""

    user_id: int
    need_consent: bool


def request_info(r: GroupRequest | GroupRequestPush) -> pb.CIMGroupRequest:
    return pb.CIMGroupRequest(
        request_id=r.request_id,
        kind=r.kind,
        group_id=r.group_id,
        user_id=r.user_id,
        actor_id=r.actor_id,
        message=r.message,
        status=r.status,
        create_time=r.created_at,
        expire_time=r.expires_at,
        decided_by=r.decided_by,
        decide_time=r.decided_at,
        group_name=r.group_name,
    )


def request_notify(push: GroupRequestPush) -> pb.CIMGroupRequestNotify:
    return pb.CIMGroupRequestNotify(request=request_info(push))


def setting_notify(push: InviteSettingPush) -> pb.CIMGroupInviteSettingNotify:
    return pb.CIMGroupInviteSettingNotify(user_id=push.user_id, need_consent=push.need_consent)


def _push_of(r: GroupRequest, group_name: str) -> GroupRequestPush:
    return GroupRequestPush(
        r.request_id,
        r.kind,
        r.group_id,
        r.user_id,
        r.actor_id,
        r.message,
        r.status,
        r.created_at,
        r.expires_at,
        r.decided_by,
        r.decided_at,
        group_name or r.group_name,
    )


# -- the service


@dataclass(frozen=True, slots=True)
class Decision:
    """What a decision did: the request afterwards and the group's outcome (an acceptance)."""

    request: GroupRequest
    outcome: Any = None


def _not_joinable(group_id: int) -> ChatError:
    return ChatError(ErrorCode.GROUP_NOT_JOINABLE, f"no group {group_id} takes requests to join")


class GroupRequests:
    """Requests to join, invitations needing consent, and their decisions; the feature's service."""

    def __init__(self, api: ModuleAPI, groups: Any, store: IGroupRequestStore, config: Config) -> None:
        self.api = api
        self.groups = groups
        self.store = store
        self.config = config
        self.clock = api.clock
        self.router = api.router

    def _now(self) -> int:
        return int(self.clock.seconds())

    async def _store(self, d: defer.Deferred) -> Any:
        try:
            return await d
        except RequestRefused as e:
            raise ChatError(e.code, str(e)) from None

    def _tell(self, request: GroupRequest, group_name: str, users: Any, device: Any = None) -> None:
        """One push (encoded once) to every device of ``users`` on every node but ``device``."""
        self.router.push_many(list(dict.fromkeys(users)), _push_of(request, group_name), device)

    @staticmethod
    def _managers(state: Any) -> list[int]:
        return [u for u, m in state.members.items() if m.role >= GroupRole.ADMIN]

    # -- asking

    async def public_info(self, user: User, group_id: int) -> tuple[Any, bool]:
        """The group as a non-member may see it: only groups that take requests (and one's own)."""
        state = await self.groups.cache.get(group_id) if 0 < group_id <= MAX_ID else None
        if state is None or state.group.dismissed:
            raise _not_joinable(group_id)
        member = user.user_id in state.members
        if not member and state.group.join_model != JoinModel.NEED_AUTH:
            raise _not_joinable(group_id)
        return state.group, member

    async def ask_to_join(self, user: User, device: Any, group_id: int, message: str) -> GroupRequest:
        """Ask to join a NEED_AUTH group; its owner and admins are told, on every device."""
        message = self._message(message)
        state = await self.groups.cache.get(group_id) if 0 < group_id <= MAX_ID else None
        if state is None or state.group.dismissed:
            raise _not_joinable(group_id)
        if user.user_id in state.members:
            raise ChatError(ErrorCode.ALREADY_GROUP_MEMBER, "you are a member of this group already")
        if state.group.join_model != JoinModel.NEED_AUTH:
            raise _not_joinable(group_id)
        now = self._now()
        ((request, new),) = await self._store(
            self.store.create(
                KIND_JOIN,
                group_id,
                user.user_id,
                [user.user_id],
                message,
                now,
                now + self.config.ttl,
                self.config.max_pending_per_group,
                self.config.max_pending_per_user,
            )
        )
        if new:
            self._tell(request, state.group.name, [*self._managers(state), user.user_id], device)
        return replace_name(request, state.group.name)

    def _message(self, message: str) -> str:
        message = (message or "").strip()
        if len(message) > self.config.max_message:
            limit = self.config.max_message
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"the message is limited to {limit} characters")
        return message

    async def invite_consent(self, inviter: User, device: Any, state: Any, ids: list[int]) -> list[int]:
        """The groups feature's hook for an invitation: keep a pending invitation for those of
        ``ids`` who must agree (the group's NEED_AGREE, or their own setting) and tell them (and
        the inviter's devices); return the others, whom the invitation adds at once."""
        group = state.group
        if group.be_invite_model == BeInviteModel.NEED_AGREE:
            asked = list(ids)
        else:
            consenting = await self.store.consent_of(ids)
            asked = [u for u in ids if u in consenting]
        if not asked:
            return ids
        now = self._now()
        created = await self._store(
            self.store.create(
                KIND_INVITE,
                group.group_id,
                inviter.user_id,
                asked,
                "",
                now,
                now + self.config.ttl,
                self.config.max_pending_per_group,
                self.config.max_pending_per_user,
            )
        )
        for request, new in created:
            if new:
                self._tell(request, group.name, [request.user_id, inviter.user_id])
        waiting = set(asked)
        return [u for u in ids if u not in waiting]

    # -- deciding

    async def decide(self, user: User, device: Any, request_id: int, accept: bool) -> Decision:
        """Approve or reject a request to join (owner, admins), accept or decline an invitation
        (the invitee), or withdraw one's own (accept False).  The first decision wins."""
        found = await self.store.get(request_id) if 0 < request_id <= MAX_ID else None
        if found is None or not self._may_see(user.user_id, found, await self.groups.cache.get(found.group_id)):
            raise ChatError(ErrorCode.GROUP_REQUEST_NOT_FOUND, f"no request {request_id}")
        state = await self.groups.cache.get(found.group_id)
        if state is None or state.group.dismissed:
            raise ChatError(ErrorCode.NOT_FOUND, f"no group {found.group_id}")
        me = user.user_id
        manager = state.role_of(me) >= GroupRole.ADMIN
        if found.kind == KIND_JOIN:
            if manager:
                status = ACCEPTED if accept else REJECTED
            elif me == found.user_id and not accept:
                status = WITHDRAWN
            else:
                raise ChatError(ErrorCode.FORBIDDEN, "only the group's owner and admins decide requests to join")
        else:
            if me == found.user_id:
                status = ACCEPTED if accept else REJECTED
            elif me == found.actor_id and not accept:
                status = WITHDRAWN
            else:
                raise ChatError(ErrorCode.FORBIDDEN, "only the invitee accepts an invitation")
        if status == ACCEPTED and state.group.join_model == JoinModel.REJECT:
            raise ChatError(ErrorCode.FORBIDDEN, "this group takes no new members")
        request = await self._store(self.store.decide(request_id, found.group_id, me, status, self._now()))
        outcome = None
        if status == ACCEPTED:
            outcome, request = await self._carry_out(user, device, request, state)
        self._tell(request, state.group.name, self._audience(request, state), device)
        return Decision(replace_name(request, state.group.name), outcome)

    async def _carry_out(self, user: User, device: Any, request: GroupRequest, state: Any) -> tuple[Any, GroupRequest]:
        """Add the member of an accepted request; if that fails, the request goes back to pending
        (a full group, a limit) or lapses (the inviter may no longer invite), and the error is the
        answer."""
        if request.kind == KIND_JOIN:
            authority, min_role, how = user.user_id, int(GroupRole.ADMIN), "request"
        else:
            authority, min_role, how = request.actor_id, invite_min_role(state.group), "invitation"
        try:
            outcome = await self.groups.admit(user, device, request.group_id, request.user_id, authority, min_role, how)
        except ChatError as e:
            lapsed = request.kind == KIND_INVITE and e.code == ErrorCode.FORBIDDEN
            undone = await self.store.reopen(request.request_id, EXPIRED if lapsed else PENDING)
            if lapsed and undone is not None:
                self._tell(undone, state.group.name, self._audience(undone, state), None)
            raise
        return outcome, request

    def _audience(self, request: GroupRequest, state: Any) -> list[int]:
        if request.kind == KIND_JOIN:
            return [*self._managers(state), request.user_id]
        return [request.user_id, request.actor_id]

    @staticmethod
    def _may_see(user_id: int, request: GroupRequest, state: Any) -> bool:
        if user_id in (request.user_id, request.actor_id):
            return True
        return request.kind == KIND_JOIN and state is not None and state.role_of(user_id) >= GroupRole.ADMIN

    # -- listing, settings

    async def pending(self, user: User, group_id: int, limit: int) -> tuple[list[GroupRequest], bool]:
        limit = LIST_MAX if limit <= 0 else min(limit, LIST_MAX)
        if group_id < 0 or group_id > MAX_ID:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "group_id must be a group id or 0")
        found = await self.store.pending_for(user.user_id, group_id, self._now(), limit + 1)
        return found[:limit], len(found) > limit

    async def consent_setting(self, user: User, device: Any, need_consent: bool | None) -> bool:
        if need_consent is None:
            return user.user_id in await self.store.consent_of([user.user_id])
        value = await self.store.set_consent(user.user_id, bool(need_consent))
        self.router.push(user.user_id, InviteSettingPush(user.user_id, bool(value)), device)
        return bool(value)

    def purge(self) -> defer.Deferred:
        return self.store.purge(self._now() - self.config.ttl)

    async def account_deleted(self, user: User) -> None:
        """``account/deleted``: every request by or for the user goes (their requests to join,
        invitations to them and those they sent), and their consent setting."""
        await self.store.forget_user(user.user_id)


def replace_name(request: GroupRequest, name: str) -> GroupRequest:
    """The request with its group's name (the store returns it only when listing)."""
    return replace(request, group_name=name) if name and not request.group_name else request


_OK = int(ErrorCode.SUCCESS)


def setup(api: ModuleAPI) -> GroupRequests:
    """The request, decision, list, public card and consent commands, and their pushes."""
    groups = api.depends("groups")
    service = GroupRequests(api, groups, api.open_store(IGroupRequestStore, SQLGroupRequestStore), api.config)
    groups.invite_consent = service.invite_consent
    groups.consent_needed = service.store.consent_of
    api.push_kind(GroupRequestPush, name="group_request", cmd=Cmd.GROUP_REQUEST_NOTIFY, encode=request_notify)
    api.push_kind(InviteSettingPush, name="group_invite_setting", cmd=Cmd.GROUP_INVITE_SETTING_NOTIFY,
                  encode=setting_notify)  # fmt: skip
    api.periodic(3600.0, service.purge)
    api.hook("account/deleted", lambda user: defer.ensureDeferred(service.account_deleted(user)))

    @api.request(Cmd.GROUP_JOIN_REQ)
    async def join(session: Session, req: pb.CIMGroupJoinReq) -> pb.CIMGroupJoinRsp:
        request = await service.ask_to_join(session.user, session, req.group_id, req.message)
        return pb.CIMGroupJoinRsp(
            user_id=session.user_id, group_id=req.group_id, result_code=_OK, request=request_info(request)
        )

    @api.request(Cmd.GROUP_REQUEST_DECIDE_REQ)
    async def decide(session: Session, req: pb.CIMGroupRequestDecideReq) -> pb.CIMGroupRequestDecideRsp:
        decision = await service.decide(session.user, session, req.request_id, req.accept)
        return pb.CIMGroupRequestDecideRsp(
            user_id=session.user_id,
            request_id=req.request_id,
            group_id=decision.request.group_id,
            result_code=_OK,
            request=request_info(decision.request),
            attach_notificatino_msg=attached(decision.outcome) if decision.outcome is not None else b"",
        )

    @api.request(Cmd.GROUP_REQUEST_LIST_REQ)
    async def listed(session: Session, req: pb.CIMGroupRequestListReq) -> pb.CIMGroupRequestListRsp:
        found, more = await service.pending(session.user, req.group_id, req.limit)
        return pb.CIMGroupRequestListRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=_OK,
            requests=[request_info(r) for r in found],
            has_more=more,
        )

    @api.request(Cmd.GROUP_PUBLIC_INFO_REQ)
    async def public(session: Session, req: pb.CIMGroupPublicInfoReq) -> pb.CIMGroupPublicInfoRsp:
        group, member = await service.public_info(session.user, req.group_id)
        return pb.CIMGroupPublicInfoRsp(
            user_id=session.user_id,
            group_id=group.group_id,
            result_code=_OK,
            group_name=group.name,
            group_avatar=group.avatar,
            group_intro=group.intro,
            member_count=group.member_count,
            join_model=group.join_model,
            group_type=group.group_type,
            is_member=member,
        )

    @api.request(Cmd.GROUP_INVITE_SETTING_REQ)
    async def setting(session: Session, req: pb.CIMGroupInviteSettingReq) -> pb.CIMGroupInviteSettingRsp:
        wanted = req.need_consent if req.HasField("need_consent") else None
        value = await service.consent_setting(session.user, session, wanted)
        return pb.CIMGroupInviteSettingRsp(user_id=session.user_id, result_code=_OK, need_consent=value)

    return service
