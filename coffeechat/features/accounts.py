"""Accounts: registration, password and token login, the token lifecycle, and the account use
cases an administrator runs (disable, reset a password, issue tokens), over CIM and HTTP.

Passwords arrive as the MD5 hex the original clients compute and are stored with scrypt on a
small bounded thread pool; tokens are 256 random bits stored as their hash (docs/decisions.md,
Accounts).  Password logins are throttled before the hash runs, per name, per address and per
(name, address), and the KDF jobs of one address take turns with everybody else's
(docs/limits.md, docs/decisions.md "Issue 11: logins").
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from coffeechat.auth import hash_password, is_legacy_hash, name_key, new_token, token_hash, verify_password
from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IUserStore, StorageUnavailable, UserExists
from coffeechat.model import User
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.openapi import ID, array, boolean, integer, obj, paging, string
from coffeechat.ratelimit import FairQueue, KeyedBuckets, LoginThrottle, RateLimited, address_key, peer_address
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

log = Logger()

SECTION = "auth"
# Both are used with fullmatch: "$" alone would let a trailing newline through.
NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{5,32}")
# What a name looks like once normalised (name_key): a login for anything else cannot succeed.
NAME_KEY_RE = re.compile(r"[a-z0-9_.@-]{5,32}")
MD5_RE = re.compile(r"[0-9a-fA-F]{32}")
MAX_NICK = 64
MAX_BULK_USERS = 1000
LIST_PAGE_DEFAULT = 100
TOKEN_PURGE_INTERVAL = 3600.0

# Verified against when the user does not exist, so a wrong name costs the same time as a wrong
# password and login timing does not reveal which names exist.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

CpuRunner = Callable[..., defer.Deferred]


@dataclass
class Config:
    """[auth]: tokens and the password KDF (scrypt)."""

    token_ttl: float = 30 * 24 * 3600.0
    scrypt_n: int = 2**14
    scrypt_r: int = 8
    scrypt_p: int = 1
    kdf_threads: int = 2
    #: failed password logins per minute for one name from one address
    login_failures_per_minute: int = 10
    #: failed password logins per minute from one address (IPv4, or IPv6 /64), whatever the names
    login_failures_per_address_per_minute: int = 30
    #: failed password logins per minute for one name from all addresses; beyond, only addresses
    #: that have not failed for that name this minute may still try (the owner is not locked out)
    login_failures_per_name_per_minute: int = 100
    #: account registrations per address: the steady rate, and how many at once
    registrations_per_address_per_hour: float = 30.0
    registration_burst: int = 10
    #: password-hash jobs one address may have queued or running; all addresses together
    kdf_jobs_per_address: int = 8
    kdf_queue_max: int = 256

    def validate(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"auth.{f.name} must be positive, got {getattr(self, f.name)!r}")
        if self.scrypt_n & (self.scrypt_n - 1):
            raise ConfigError("auth.scrypt_n must be a power of two")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "userName must be 5-32 letters, digits or _.@-")
    return name


def check_nick(nick: Any) -> str:
    if not isinstance(nick, str) or not nick.strip() or len(nick) > MAX_NICK:
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"userNickName must be 1-{MAX_NICK} non-blank characters")
    return nick.strip()


def check_password_md5(password: Any) -> str:
    if not isinstance(password, str) or not MD5_RE.fullmatch(password):
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "userPwd must be 32 hex characters (an MD5)")
    return password.lower()


class UserDirectory:
    """Answers "does this user exist?" without a database read per message.

    Users are never deleted, so a positive answer is cached for good.  Concurrent lookups of one
    user share one query and resume in the order they were asked, so messages to a user not yet
    cached still reach storage in the order they were sent.
    """

    def __init__(self, store: IUserStore) -> None:
        self.store = store
        self._known: set[int] = set()
        self._waiting: dict[int, list[defer.Deferred]] = {}

    def known(self, user_id: int) -> bool:
        """Whether ``user_id`` is known to exist already (no lookup): the message path's fast
        case, which then needs no Deferred for the answer."""
        return user_id in self._known

    def exists(self, user_id: int) -> defer.Deferred:
        if user_id in self._known:
            return defer.succeed(True)
        d: defer.Deferred = defer.Deferred()
        waiters = self._waiting.get(user_id)
        if waiters is not None:
            waiters.append(d)
            return d
        self._waiting[user_id] = [d]
        self.store.user_by_id(user_id).addBoth(self._resolved, user_id)
        return d

    def _resolved(self, result: User | None | Failure, user_id: int) -> None:
        waiters = self._waiting.pop(user_id)
        if isinstance(result, Failure):
            for d in waiters:
                d.errback(result)
            return
        if result is not None:
            self._known.add(user_id)
        for d in waiters:
            d.callback(result is not None)


class TokenLookups:
    """Batches the token logins of one reactor turn into one storage read.

    A reconnect storm (a node restarts, a network comes back) brings thousands of token logins
    at once; one read per turn instead of one thread hand-off per login is what keeps the login
    rate up.
    """

    def __init__(self, store: IUserStore, clock: IReactorTime) -> None:
        self.store = store
        self.clock = clock
        self._waiting: dict[str, list[defer.Deferred]] = {}
        self._now = 0

    def lookup(self, hashed: str, now: int) -> defer.Deferred:
        """Fire with the User owning a live token of that hash, or None."""
        d: defer.Deferred = defer.Deferred()
        if not self._waiting:
            self._now = now
            self.clock.callLater(0, self._flush)
        self._waiting.setdefault(hashed, []).append(d)
        return d

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, {}

        def found(users: dict) -> None:
            for hashed, ds in waiting.items():
                for d in ds:
                    d.callback(users.get(hashed))

        def failed(failure) -> None:
            for ds in waiting.values():
                for d in ds:
                    d.errback(failure)

        self.store.users_by_tokens(list(waiting), self._now).addCallbacks(found, failed)


class Accounts:
    """Creates accounts, turns credentials into an authenticated :class:`User`, and holds the
    account use cases (disable, reset a password, tokens) in one place, cluster-wide: the HTTP
    admin API and the ``coffeechat`` command both call these.

    ``run_cpu(f, *args)`` runs the KDF off the reactor thread on a small bounded pool (of
    ``config.kdf_threads``: that many jobs are handed to it at once, the rest wait their turn
    here); ``disconnect_user(user_id, code, reason)`` closes a user's devices on every node.

    ``address`` arguments are the client's address (:func:`~coffeechat.ratelimit.address_key`);
    None means a trusted caller (the admin API, the command line), held to no per-address budget.
    """

    def __init__(
        self,
        store: IUserStore,
        clock: IReactorTime,
        config: Config,
        run_cpu: CpuRunner,
        disconnect_user: Callable[[int, int, str], int],
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.run_cpu = run_cpu
        self._disconnect_user = disconnect_user
        c = config
        self.throttle = LoginThrottle(
            clock,
            per_name_address=c.login_failures_per_minute,
            per_address=c.login_failures_per_address_per_minute,
            per_name=c.login_failures_per_name_per_minute,
        )
        self.registrations = KeyedBuckets(clock, c.registrations_per_address_per_hour / 3600.0, c.registration_burst)
        self.kdf = FairQueue(run_cpu, c.kdf_threads, c.kdf_jobs_per_address, c.kdf_queue_max)
        self._token_lookups = TokenLookups(store, clock)
        self.users = UserDirectory(store)
        #: logins checked here, by (method, "ok" | "failed"), for the metrics
        self.logins: dict[tuple[str, str], int] = {}
        #: ``fire(event, user)``: tells other features of account/created, /disabled, /enabled
        #: (the module's setup binds it to ``api.fire``)
        self.fire: Callable[..., None] = lambda event, *args: None
        #: ``check(user_id)``: raises the ChatError refusing to bring an account back (enable it,
        #: set its password, issue it a token); admin_api adds one for deleted accounts
        self.revival_checks: list[Callable[[int], Awaitable[None]]] = []

    def _now(self) -> int:
        return int(self.clock.seconds())

    def _hash(self, secret: str, address: str | None = None) -> defer.Deferred:
        c = self.config
        return self.kdf.submit(address, hash_password, secret, c.scrypt_n, c.scrypt_r, c.scrypt_p)

    async def register(self, name: Any, nick: Any, password_md5: Any, address: str | None = None) -> User:
        """Create an account as the original's ``POST /user/register`` did; at most
        ``registrations_per_address_per_hour`` (after a burst) from one ``address``."""
        name, nick, password_md5 = check_name(name), check_nick(nick), check_password_md5(password_md5)
        if address is not None:
            wait = self.registrations.take(address)
            if wait:
                raise RateLimited("too many registrations from this address; try again later", wait)
        if await self.store.user_by_name(name) is not None:
            raise ChatError(ErrorCode.USER_ALREADY_EXIST, "user name is taken")
        try:
            password_hash = await self._hash(password_md5, address)
        except RateLimited:
            if address is not None:
                self.registrations.refund(address)  # the KDF was busy: nothing was registered
            raise
        return await self._create(name, nick, password_hash)

    async def create_user(self, name: str, nick: str | None = None, password_md5: str | None = None) -> User:
        """Create an account for an administrator; without a password it may only use tokens."""
        name = check_name(name)
        nick = check_nick(nick if nick is not None else name)
        password_hash = await self._hash(check_password_md5(password_md5)) if password_md5 else ""
        return await self._create(name, nick, password_hash)

    async def _create(self, name: str, nick: str, password_hash: str) -> User:
        try:
            user = await self.store.create_user(name, nick, password_hash, self._now())
        except UserExists:
            raise ChatError(ErrorCode.USER_ALREADY_EXIST, "user name is taken") from None
        self.fire("account/created", user)
        return user

    def _counted(self, method: str, outcome: str) -> None:
        key = (method, outcome)
        self.logins[key] = self.logins.get(key, 0) + 1

    async def login_password(self, name: Any, password_md5: Any, address: str = "") -> User:
        """Check a name and password from ``address`` (counted in ``logins``)."""
        try:
            user = await self._login_password(name, password_md5, address)
        except ChatError:
            self._counted("password", "failed")
            raise
        self._counted("password", "ok")
        return user

    async def _login_password(self, name: Any, password_md5: Any, address: str) -> User:
        """Check a name and password from ``address``.

        The attempt is counted against the login budgets before the hash runs and given back
        only if the password was right, so concurrent guesses cannot outrun the count; the hash
        job then waits its turn with the other addresses' (:class:`~coffeechat.ratelimit.FairQueue`).
        A name that cannot exist (its normalised form is not a valid name) is refused at once.
        """
        if not isinstance(name, str) or not isinstance(password_md5, str):
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_OR_PWD, "invalid user name or password")
        key = name_key(name)
        if not NAME_KEY_RE.fullmatch(key):
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_OR_PWD, "invalid user name or password")
        reservation = self.throttle.reserve(key, address)
        try:
            user = await self.store.user_by_name(key)
            encoded = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
            # An imported CIM v1 verifier was made from the MD5 exactly as the client sent it.
            secret = password_md5 if is_legacy_hash(encoded) else password_md5.lower()
            verified = await self.kdf.submit(address, verify_password, secret, encoded)
        except BaseException:
            self.throttle.release(reservation)  # never evaluated (busy, storage down): not a failure
            raise
        if user is None or not verified or not user.password_hash:
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_OR_PWD, "invalid user name or password")
        self.throttle.release(reservation)
        if user.disabled:
            raise ChatError(ErrorCode.USER_DISABLED, "this account is disabled")
        if is_legacy_hash(user.password_hash):
            await self._upgrade_legacy(user, password_md5, address)
        return user

    async def _upgrade_legacy(self, user: User, password_md5: str, address: str | None) -> None:
        """Replace an imported CIM v1 verifier with scrypt after a login proved the password.
        The login stands whatever happens here; a later one tries again."""
        try:
            new_hash = await self._hash(password_md5.lower(), address)
            replaced = await self.store.upgrade_password_hash(user.user_id, user.password_hash, new_hash)
        except (RateLimited, StorageUnavailable) as e:
            log.info("imported password of user {uid} not re-hashed now: {e}", uid=user.user_id, e=e)
            return
        except Exception:
            log.failure("re-hashing the imported password of user {uid} failed", uid=user.user_id)
            return
        if replaced:
            log.info("imported password of user {uid} re-hashed with scrypt", uid=user.user_id)

    async def issue_token(self, user_id: int, label: str = "") -> tuple[str, int]:
        """A new login token for ``user_id`` and its expiry (unix seconds)."""
        token = new_token()
        now = self._now()
        expires_at = now + int(self.config.token_ttl)
        await self.store.add_token(token_hash(token), user_id, now, expires_at, label)
        return token, expires_at

    async def login_token(self, user_id: int, token: Any) -> User:
        """The user a token belongs to (counted in ``logins``)."""
        try:
            user = await self._login_token(user_id, token)
        except ChatError:
            self._counted("token", "failed")
            raise
        self._counted("token", "ok")
        return user

    async def _login_token(self, user_id: int, token: Any) -> User:
        """An empty, unknown, expired or revoked token never logs in, nor one presented for
        another user id (0 means "whoever owns it")."""
        if not isinstance(token, str) or not token:
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_TOKEN, "invalid token")
        user = await self._token_lookups.lookup(token_hash(token), self._now())
        if user is None or (user_id and user.user_id != user_id):
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_TOKEN, "invalid token")
        if user.disabled:
            raise ChatError(ErrorCode.USER_DISABLED, "this account is disabled")
        return user

    async def revoke_token(self, token: str) -> bool:
        return await self.store.revoke_token(token_hash(token))

    async def purge_expired_tokens(self, batch: int = 10_000) -> int:
        """Delete the tokens that expired (every login issues one, so they pile up), in batches
        that each hold the writer only briefly; returns how many went."""
        total = 0
        while True:
            removed = await self.store.purge_tokens(self._now(), batch)
            total += removed
            if removed < batch:
                return total

    async def revoke_all_tokens(self, user_id: int) -> int:
        return await self.store.revoke_user_tokens(user_id)

    async def set_password(self, user_id: int, password_md5: str) -> tuple[User, int]:
        """Reset a password: every token of the user is revoked and every device of theirs, on
        every node, is disconnected (whoever held the old password must not stay connected on
        it).  Returns the user and how many devices were disconnected on this node."""
        password_md5 = check_password_md5(password_md5)
        await self.check_revival(user_id)
        password_hash = await self._hash(password_md5)
        user = await self.store.update_user(user_id, password_hash=password_hash)
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        await self.store.revoke_user_tokens(user_id)
        disconnected = self._disconnect_user(user_id, ErrorCode.SESSION_REPLACED, "password changed")
        log.info("password of user {uid} reset ({n} devices disconnected here)", uid=user_id, n=disconnected)
        return user, disconnected

    async def disable(self, user_id: int) -> tuple[User, int, int]:
        """Disable an account: its next logins are refused, its tokens revoked, and its devices on
        every node disconnected now.  Returns the user, the tokens revoked and the devices
        disconnected on this node."""
        user = await self.set_disabled(user_id, True)
        revoked = await self.store.revoke_user_tokens(user_id)
        disconnected = self._disconnect_user(user_id, ErrorCode.USER_DISABLED, "account disabled")
        log.info("disabled user {uid} ({n} devices disconnected here)", uid=user_id, n=disconnected)
        self.fire("account/disabled", user)
        return user, revoked, disconnected

    async def check_revival(self, user_id: int) -> None:
        """Refuse (ChatError) to bring back an account a check says must stay out (a deleted one)."""
        for check in self.revival_checks:
            await check(user_id)

    async def enable(self, user_id: int) -> User:
        await self.check_revival(user_id)
        user = await self.set_disabled(user_id, False)
        log.info("enabled user {uid}", uid=user_id)
        self.fire("account/enabled", user)
        return user

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        user = await self.store.update_user(user_id, disabled=disabled)
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        return user

    def exists(self, user_id: int) -> defer.Deferred:
        """Fire with whether the user exists (cached: accounts are never deleted)."""
        return self.users.exists(user_id)

    async def list_users(self, limit: int, after_id: int = 0, include_disabled: bool = False) -> list[User]:
        """Active users in id order (CIM v1's user list), at most ``limit``; administrators also
        see disabled ones (``include_disabled``)."""
        users = await self.store.list_users(after_id, limit)
        return users if include_disabled else [u for u in users if not u.disabled]

    async def find_user(self, name_or_id: str) -> User:
        """A user by id or by name (normalised as at login)."""
        user = None
        if name_or_id.isdigit():
            user = await self.store.user_by_id(int(name_or_id))
        if user is None:
            user = await self.store.user_by_name(name_key(name_or_id))
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {name_or_id!r}")
        return user


def user_info(user: User) -> pb.CIMUserInfo:
    return pb.CIMUserInfo(user_id=user.user_id, nick_name=user.nick_name, avatar_url=user.avatar_url, phone=user.phone)


def _user_entry(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "userName": user.name, "nickName": user.nick_name, "disabled": user.disabled}


def setup(api: ModuleAPI) -> Accounts:
    """Register the login commands, the account HTTP API and the hourly token purge."""
    config: Config = api.config
    accounts = Accounts(api.store, api.clock, config, api.cpu_runner(config.kdf_threads), api.disconnect_user)
    accounts.fire = api.fire
    clock = api.clock
    limits = api.limits

    def ok_answer(rsp_type: type, user: User) -> Any:
        return rsp_type(
            server_time=int(clock.seconds()),
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            user_info=user_info(user),
        )

    @api.request(Cmd.LOGIN_AUTH_REQ, login=True)
    async def login_password(session: Session, req: pb.CIMAuthReq) -> pb.CIMAuthRsp | None:
        """Name and password (the MD5 hex); a fresh token comes with the answer (extension)."""
        session.logging_in = True
        try:
            user = await accounts.login_password(req.user_name, req.user_pwd, peer_address(session.peer))
            token, expires_at = await accounts.issue_token(user.user_id, "cim-password-login")
        except ChatError as e:
            session.login_refused(f"name {req.user_name[:64]!r}", e)
            raise
        finally:
            session.logging_in = False
        if not session.logged_in(user, req.client_type, "password"):
            return None
        rsp = ok_answer(pb.CIMAuthRsp, user)
        rsp.user_token = token
        rsp.token_expire_time = expires_at
        return rsp

    @api.request(Cmd.LOGIN_AUTH_TOKEN_REQ, login=True)
    async def login_token(session: Session, req: pb.CIMAuthTokenReq) -> pb.CIMAuthTokenRsp | None:
        session.logging_in = True
        try:
            user = await accounts.login_token(req.user_id, req.user_token)
        except ChatError as e:
            session.login_refused(f"user {req.user_id}", e)
            raise
        finally:
            session.logging_in = False
        if not session.logged_in(user, req.client_type, "token"):
            return None
        return ok_answer(pb.CIMAuthTokenRsp, user)

    def logout(session: Session, seq: int, req: pb.CIMLogoutReq) -> None:
        """Ends the connection; the token stays valid (the original clients log out to switch
        networks as much as to sign out; ``/api/logout`` revokes it).  ``device/logout`` tells the
        features that keep something per device (push targets) that it signed out."""
        session.answer(Cmd.LOGIN_AUTH_LOGOUT_RSP, seq, pb.CIMLogoutRsp(result_code=ErrorCode.SUCCESS))
        if session.user is not None:
            api.fire("device/logout", session)
        session.end("logged out")

    api.command(Cmd.LOGIN_AUTH_LOGOUT_REQ, logout)

    # -- HTTP: the public API (the original's registration, and token login/logout)

    async def register(call: HttpCall) -> dict:
        """``POST /user/register`` {"userName", "userNickName", "userPwd"}, as the original."""
        body = call.json()
        user = await accounts.register(
            body.get("userName"), body.get("userNickName"), body.get("userPwd"), address_key(call.peer)
        )
        return {"user_id": user.user_id}

    async def http_login(call: HttpCall) -> dict:
        """``POST /api/login`` {"userName", "userPwd"}: a token for the CIM token login."""
        body = call.json()
        user = await accounts.login_password(body.get("userName"), body.get("userPwd"), address_key(call.peer))
        token, expires_at = await accounts.issue_token(user.user_id, "http login")
        return {"user_id": user.user_id, "nick_name": user.nick_name, "token": token, "expires_at": expires_at}

    async def http_logout(call: HttpCall) -> dict:
        """``POST /api/logout`` with ``Authorization: Bearer <token>``: revokes that token."""
        try:
            # The store revokes known tokens whatever their state, so check first: a token
            # already revoked or expired answers 2002 like any invalid one.
            await accounts.login_token(0, call.bearer)
        except ChatError as e:
            if e.code != ErrorCode.USER_DISABLED:
                raise
        await accounts.revoke_token(call.bearer)
        return {}

    api.route("POST", "/user/register", register)
    api.route("POST", "/api/login", http_login)
    api.route("POST", "/api/logout", http_logout)

    # -- HTTP: the admin API

    async def list_users(call: HttpCall) -> dict:
        """``GET /admin/users?after=&limit=``: accounts by id, disabled ones included."""
        after = call.query_int("after", 0, minimum=0)
        limit = min(call.query_int("limit", LIST_PAGE_DEFAULT, minimum=1), limits.users_listed_max)
        found = await accounts.list_users(limit, after, include_disabled=True)
        return {"users": [_user_entry(u) for u in found]}

    async def create_users(call: HttpCall) -> dict:
        """``POST /admin/users`` {"users": [{"userName", "userNickName", "userPwd"?}], "issueTokens"}."""
        body = call.json()
        specs = body.get("users")
        issue_tokens = body.get("issueTokens", False)
        if not isinstance(specs, list):
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, '"users" must be a list')
        if len(specs) > MAX_BULK_USERS:
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"at most {MAX_BULK_USERS} users per request")
        if not isinstance(issue_tokens, bool):
            raise ChatError(ErrorCode.USER_INVALID_PARAMETER, '"issueTokens" must be true or false')
        # All at once: the storage writer commits whatever is queued together, so a thousand
        # accounts cost a few transactions, not a thousand.
        results = await defer.gatherResults(
            [defer.ensureDeferred(create_one(spec, issue_tokens)) for spec in specs], consumeErrors=True
        )
        created = sum(1 for r in results if "user_id" in r and "error_code" not in r)
        log.info("admin: created {created} of {asked} users", created=created, asked=len(specs))
        return {"users": results}

    async def create_one(spec: Any, issue_token: bool) -> dict[str, Any]:
        """One account of a bulk request: its entry, or its own error (never raises)."""
        name = spec.get("userName") if isinstance(spec, dict) else None
        entry: dict[str, Any] = {"userName": name}
        try:
            if not isinstance(spec, dict):
                raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "each user must be a JSON object")
            user = await accounts.create_user(name, spec.get("userNickName"), spec.get("userPwd"))
            entry = {"user_id": user.user_id, "userName": user.name}
            if issue_token:
                entry["token"], entry["expires_at"] = await accounts.issue_token(user.user_id, "admin")
            return entry
        except ChatError as e:
            return {**entry, "error_code": int(e.code), "error_msg": e.message}
        except Exception:
            log.failure("admin: creating user {name!r} failed", name=name)
            return {**entry, "error_code": int(ErrorCode.INTERNAL_ERROR), "error_msg": "internal error"}

    async def disable(call: HttpCall) -> dict:
        """Disable the account, revoke its tokens and disconnect its devices on every node now."""
        uid = call.params["user_id"]
        _, revoked, disconnected = await accounts.disable(uid)
        return {"user_id": uid, "disabled": True, "revoked_tokens": revoked, "disconnected": disconnected}

    async def enable(call: HttpCall) -> dict:
        """Allow the account to log in again."""
        await accounts.enable(call.params["user_id"])
        return {"user_id": call.params["user_id"], "disabled": False}

    async def password(call: HttpCall) -> dict:
        """Reset the password ({"userPwd": 32 hex}): tokens revoked, devices disconnected everywhere."""
        body = call.json()
        _, disconnected = await accounts.set_password(call.params["user_id"], body.get("userPwd"))
        return {"user_id": call.params["user_id"], "disconnected": disconnected}

    async def tokens(call: HttpCall) -> dict:
        """Issue a login token for the user."""
        uid = call.params["user_id"]
        if not await accounts.exists(uid):
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        await accounts.check_revival(uid)
        token, expires_at = await accounts.issue_token(uid, "admin")
        return {"user_id": uid, "token": token, "expires_at": expires_at}

    entry = obj(["user_id", "userName"], user_id=ID, userName=string(), nickName=string(), disabled=boolean())
    # Each account is checked on its own: a refused one gets its own error_code in the answer,
    # so the entries' schema is a description, not a condition of the request (no "type").
    spec = {
        "description": "an account",
        "properties": {
            "userName": {"description": "5-32 letters, digits or _.@-"},
            "userNickName": {"description": f"1-{MAX_NICK} characters"},
            "userPwd": {"description": "the password's MD5 (32 hex digits); none: token-only"},
        },
    }
    created = obj(
        ["userName"],
        user_id=ID,
        userName={"description": "as given"},
        token=string(),
        expires_at=integer(),
        error_code=integer(),
        error_msg=string(),
    )
    uid = {"user_id": ID}
    api.route(
        "GET",
        "/admin/users",
        list_users,
        auth="admin",
        query=paging(LIST_PAGE_DEFAULT, limits.users_listed_max),
        response=obj(["users"], users=array(entry)),
    )
    api.route(
        "POST",
        "/admin/users",
        create_users,
        auth="admin",
        request=obj(["users"], users=array(spec, MAX_BULK_USERS), issueTokens=boolean()),
        response=obj(["users"], users=array(created)),
    )
    api.route(
        "POST",
        "/admin/users/{user_id:int}/disable",
        disable,
        auth="admin",
        response=obj(
            ["user_id", "disabled"], **uid, disabled=boolean(), revoked_tokens=integer(0), disconnected=integer(0)
        ),
    )
    api.route(
        "POST",
        "/admin/users/{user_id:int}/enable",
        enable,
        auth="admin",
        response=obj(["user_id", "disabled"], **uid, disabled=boolean()),
    )
    api.route(
        "POST",
        "/admin/users/{user_id:int}/password",
        password,
        auth="admin",
        request=obj(["userPwd"], userPwd=string(32, 32, description="the new password's MD5, hex")),
        response=obj(["user_id"], **uid, disconnected=integer(0)),
    )
    api.route(
        "POST",
        "/admin/users/{user_id:int}/tokens",
        tokens,
        auth="admin",
        response=obj(["user_id", "token", "expires_at"], **uid, token=string(), expires_at=integer()),
    )

    async def purge() -> None:
        """Hourly: expired tokens go (every password login issues one, so they pile up)."""
        n = await accounts.purge_expired_tokens()
        if n:
            log.info("purged {n} expired login tokens", n=n)

    api.periodic(TOKEN_PURGE_INTERVAL, lambda: defer.ensureDeferred(purge()))
    return accounts
