"""Accounts and login tokens (:class:`~coffeechat.interfaces.IUserStore`), written once for
every SQL engine."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from coffeechat.auth import name_key
from coffeechat.interfaces import UserExists
from coffeechat.model import User

USER_COLS = "user_id, name, nick_name, password_hash, disabled, created_at, avatar_url, phone"

SQL_CREATE_USER = (
    "INSERT INTO users (name, name_key, nick_name, password_hash, disabled, created_at) "
    f"VALUES (?, ?, ?, ?, FALSE, ?) RETURNING {USER_COLS}"
)
SQL_USER_BY_NAME = f"SELECT {USER_COLS} FROM users WHERE name_key = ?"
SQL_USER_BY_ID = f"SELECT {USER_COLS} FROM users WHERE user_id = ?"
SQL_USERS_BY_IDS = f"SELECT {USER_COLS} FROM users WHERE {{}} ORDER BY user_id"
SQL_LIST_USERS = f"SELECT {USER_COLS} FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?"
SQL_UPDATE_USER = (
    "UPDATE users SET nick_name = coalesce(CAST(? AS TEXT), nick_name), "
    "password_hash = coalesce(CAST(? AS TEXT), password_hash), disabled = coalesce(CAST(? AS BOOLEAN), disabled) "
    f"WHERE user_id = ? RETURNING {USER_COLS}"
)
SQL_UPGRADE_PASSWORD = "UPDATE users SET password_hash = ? WHERE user_id = ? AND password_hash = ?"
SQL_ADD_TOKEN = (
    "INSERT INTO tokens (token_hash, user_id, created_at, expires_at, revoked, label) VALUES (?, ?, ?, ?, FALSE, ?)"
)
# A token is valid while now < expires_at.
SQL_USERS_BY_TOKENS = (
    f"SELECT t.token_hash, {', '.join('u.' + c for c in USER_COLS.split(', '))} FROM tokens AS t "
    "JOIN users AS u ON u.user_id = t.user_id WHERE {} AND NOT t.revoked AND t.expires_at > ?"
)
# True only for a live token (revoking twice says False).
SQL_REVOKE_TOKEN = "UPDATE tokens SET revoked = TRUE WHERE token_hash = ? AND NOT revoked"
SQL_REVOKE_USER_TOKENS = "UPDATE tokens SET revoked = TRUE WHERE user_id = ? AND NOT revoked"
# SKIP LOCKED (PostgreSQL): nodes purging at the same time take different rows instead of waiting.
SQL_PURGE_TOKENS = (
    "DELETE FROM tokens WHERE token_hash IN "
    "(SELECT token_hash FROM tokens WHERE expires_at <= ? LIMIT ? FOR UPDATE SKIP LOCKED)"
)


def row_user(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])


def _create_user_txn(txn: Any, name: str, nick_name: str, password_hash: str, created_at: int) -> User:
    try:
        row = txn.execute(SQL_CREATE_USER, (name, name_key(name), nick_name, password_hash, created_at)).fetchone()
    except txn.IntegrityError as e:
        raise UserExists(name) from e
    return row_user(row)


def _update_user_txn(
    txn: Any, user_id: int, nick_name: str | None, password_hash: str | None, disabled: bool | None
) -> User | None:
    flag = None if disabled is None else bool(disabled)
    row = txn.execute(SQL_UPDATE_USER, (nick_name, password_hash, flag, user_id)).fetchone()
    return None if row is None else row_user(row)


def _upgrade_password_txn(txn: Any, user_id: int, old_hash: str, new_hash: str) -> bool:
    return txn.execute(SQL_UPGRADE_PASSWORD, (new_hash, user_id, old_hash)).rowcount > 0


def _add_token_txn(txn: Any, token_hash: str, user_id: int, created_at: int, expires_at: int, label: str) -> None:
    txn.execute(SQL_ADD_TOKEN, (token_hash, user_id, created_at, expires_at, label))


def _revoke_token_txn(txn: Any, token_hash: str) -> bool:
    return txn.execute(SQL_REVOKE_TOKEN, (token_hash,)).rowcount > 0


def _revoke_user_tokens_txn(txn: Any, user_id: int) -> int:
    return txn.execute(SQL_REVOKE_USER_TOKENS, (user_id,)).rowcount


def _purge_tokens_txn(txn: Any, now: int, limit: int) -> int:
    return txn.execute(SQL_PURGE_TOKENS, (now, limit)).rowcount


def _one_user(txn: Any, sql: str, key: Any) -> User | None:
    row = txn.execute(sql, (key,)).fetchone()
    return None if row is None else row_user(row)


def _users_by_ids(txn: Any, ids: list[int]) -> list[User]:
    clause, params = txn.in_list("user_id", ids)
    return [row_user(r) for r in txn.execute(SQL_USERS_BY_IDS.format(clause), params)]


def _list_users(txn: Any, after_id: int, limit: int) -> list[User]:
    return [row_user(r) for r in txn.execute(SQL_LIST_USERS, (after_id, limit))]


def _users_by_tokens(txn: Any, token_hashes: list[str], now: int) -> dict[str, User]:
    clause, params = txn.in_list("t.token_hash", token_hashes)
    return {r[0]: row_user(r[1:]) for r in txn.execute(SQL_USERS_BY_TOKENS.format(clause), (*params, now))}


class SQLUserStore:
    """IUserStore over ``run_read``/``run_write`` (see :class:`backends.sql.store.SQLStore`)."""

    def create_user(self, name: str, nick_name: str, password_hash: str, created_at: int) -> defer.Deferred:
        return self.run_write("create_user", _create_user_txn, name, nick_name, password_hash, created_at)

    def user_by_name(self, name: str) -> defer.Deferred:
        return self.run_read("user_by_name", _one_user, SQL_USER_BY_NAME, name_key(name))

    def user_by_id(self, user_id: int) -> defer.Deferred:
        return self.run_read("user_by_id", _one_user, SQL_USER_BY_ID, user_id)

    def users_by_ids(self, user_ids: list[int]) -> defer.Deferred:
        ids = sorted({int(i) for i in user_ids})
        if not ids:
            return self._shortcut([])
        return self.run_read("users_by_ids", _users_by_ids, ids)

    def list_users(self, after_id: int, limit: int) -> defer.Deferred:
        return self.run_read("list_users", _list_users, after_id, limit)

    def update_user(
        self, user_id: int, nick_name: str | None = None, password_hash: str | None = None, disabled: bool | None = None
    ) -> defer.Deferred:
        return self.run_write("update_user", _update_user_txn, user_id, nick_name, password_hash, disabled)

    def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> defer.Deferred:
        return self.run_write("upgrade_password_hash", _upgrade_password_txn, user_id, old_hash, new_hash)

    def add_token(self, token_hash: str, user_id: int, created_at: int, expires_at: int, label: str) -> defer.Deferred:
        return self.run_write("add_token", _add_token_txn, token_hash, user_id, created_at, expires_at, label)

    def users_by_tokens(self, token_hashes: list[str], now: int) -> defer.Deferred:
        hashes = list(dict.fromkeys(token_hashes))
        if not hashes:
            return self._shortcut({})
        return self.run_read("users_by_tokens", _users_by_tokens, hashes, now)

    def revoke_token(self, token_hash: str) -> defer.Deferred:
        return self.run_write("revoke_token", _revoke_token_txn, token_hash)

    def revoke_user_tokens(self, user_id: int) -> defer.Deferred:
        return self.run_write("revoke_user_tokens", _revoke_user_tokens_txn, user_id)

    def purge_tokens(self, now: int, limit: int) -> defer.Deferred:
        return self.run_write("purge_tokens", _purge_tokens_txn, now, limit)
