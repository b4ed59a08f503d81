"""Accounts: registration, password and token login, token lifecycle, administration."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from coffeechat.auth import hash_password, new_token, token_hash, verify_password
from coffeechat.config import AuthConfig
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IUserStore, UserExists
from coffeechat.model import User

NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{5,32}$")
MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
MAX_NICK = 64

# Verified against when the user does not exist, so a wrong name costs the same time as a wrong
# password and login timing does not reveal which names exist.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

CpuRunner = Callable[..., defer.Deferred]


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "userName must be 5-32 letters, digits or _.@-")
    return name


def check_nick(nick: Any) -> str:
    if not isinstance(nick, str) or not nick.strip() or len(nick) > MAX_NICK:
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, f"userNickName must be 1-{MAX_NICK} non-blank characters")
    return nick.strip()


def check_password_md5(password: Any) -> str:
    if not isinstance(password, str) or not MD5_RE.match(password):
        raise ChatError(ErrorCode.USER_INVALID_PARAMETER, "userPwd must be 32 hex characters (an MD5)")
    return password.lower()


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


class AccountHandler:
    """Creates accounts and turns credentials into an authenticated :class:`User`.

    ``run_cpu(f, *args)`` runs the KDF off the reactor thread on a small bounded pool.
    """

    def __init__(self, store: IUserStore, clock: IReactorTime, config: AuthConfig, run_cpu: CpuRunner) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.run_cpu = run_cpu
        self._failures: dict[str, tuple[int, int]] = {}
        self._token_lookups = TokenLookups(store, clock)

    def _now(self) -> int:
        return int(self.clock.seconds())

    def _hash(self, secret: str) -> defer.Deferred:
        c = self.config
        return self.run_cpu(hash_password, secret, c.scrypt_n, c.scrypt_r, c.scrypt_p)

    async def register(self, name: Any, nick: Any, password_md5: Any) -> User:
        """Create an account as the original's ``POST /user/register`` did."""
        name, nick, password_md5 = check_name(name), check_nick(nick), check_password_md5(password_md5)
        if await self.store.user_by_name(name) is not None:
            raise ChatError(ErrorCode.USER_ALREADY_EXIST, "user name is taken")
        password_hash = await self._hash(password_md5)
        return await self._create(name, nick, password_hash)

    async def create_user(self, name: str, nick: str | None = None, password_md5: str | None = None) -> User:
        """Create an account for an administrator; without a password it may only use tokens."""
        name = check_name(name)
        nick = check_nick(nick if nick is not None else name)
        password_hash = await self._hash(check_password_md5(password_md5)) if password_md5 else ""
        return await self._create(name, nick, password_hash)

    async def _create(self, name: str, nick: str, password_hash: str) -> User:
        try:
            return await self.store.create_user(name, nick, password_hash, self._now())
        except UserExists:
            raise ChatError(ErrorCode.USER_ALREADY_EXIST, "user name is taken") from None

    def _throttled(self, name: str) -> bool:
        minute = self._now() // 60
        window, count = self._failures.get(name.lower(), (minute, 0))
        return window == minute and count >= self.config.login_failures_per_minute

    def _failed(self, name: str) -> None:
        minute = self._now() // 60
        if len(self._failures) > 100_000:
            self._failures = {k: v for k, v in self._failures.items() if v[0] == minute}
        window, count = self._failures.get(name.lower(), (minute, 0))
        self._failures[name.lower()] = (minute, count + 1 if window == minute else 1)

    async def login_password(self, name: Any, password_md5: Any) -> User:
        """Check a name and password; too many failures for one name in a minute are refused."""
        if not isinstance(name, str) or not isinstance(password_md5, str) or not name:
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_OR_PWD, "invalid user name or password")
        if self._throttled(name):
            raise ChatError(ErrorCode.RATE_LIMITED, "too many failed logins; try again in a minute")
        user = await self.store.user_by_name(name)
        encoded = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        ok = await self.run_cpu(verify_password, password_md5.lower(), encoded)
        if user is None or not ok or not user.password_hash:
            self._failed(name)
            raise ChatError(ErrorCode.LOGIN_INVALID_USER_OR_PWD, "invalid user name or password")
        if user.disabled:
            raise ChatError(ErrorCode.USER_DISABLED, "this account is disabled")
        return user

    async def issue_token(self, user_id: int, label: str = "") -> tuple[str, int]:
        """A new login token for ``user_id`` and its expiry (unix seconds)."""
        token = new_token()
        now = self._now()
        expires_at = now + int(self.config.token_ttl)
        await self.store.add_token(token_hash(token), user_id, now, expires_at, label)
        return token, expires_at

    async def login_token(self, user_id: int, token: Any) -> User:
        """The user a token belongs to; an empty, unknown, expired or revoked token never logs in,
        nor one presented for another user id (0 means "whoever owns it")."""
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

    async def set_password(self, user_id: int, password_md5: str) -> User:
        """Reset a password; every token of the user is revoked with it."""
        password_hash = await self._hash(check_password_md5(password_md5))
        user = await self.store.update_user(user_id, password_hash=password_hash)
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        await self.store.revoke_user_tokens(user_id)
        return user

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        user = await self.store.update_user(user_id, disabled=disabled)
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, "no such user")
        return user

    async def list_users(self, limit: int, after_id: int = 0, include_disabled: bool = False) -> list[User]:
        """Active users in id order (CIM v1's user list), at most ``limit``; administrators also
        see disabled ones (``include_disabled``)."""
        users = await self.store.list_users(after_id, limit)
        return users if include_disabled else [u for u in users if not u.disabled]

    async def find_user(self, name_or_id: str) -> User:
        user = None
        if name_or_id.isdigit():
            user = await self.store.user_by_id(int(name_or_id))
        if user is None:
            user = await self.store.user_by_name(name_or_id)
        if user is None:
            raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {name_or_id!r}")
        return user
