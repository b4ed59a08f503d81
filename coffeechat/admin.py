"""``coffeechat``: administration from the shell, like ``prosodyctl``.

    coffeechat [--config FILE] [--data-dir DIR] user add NAME [--nick NICK] (--password PW | --password-md5 HEX
                                                                            | --no-password)
    coffeechat ... user list [--after ID] [--limit N]
    coffeechat ... user disable|enable NAME_OR_ID
    coffeechat ... user passwd NAME_OR_ID (--password PW | --password-md5 HEX)
    coffeechat ... token issue NAME_OR_ID
    coffeechat ... token revoke-all NAME_OR_ID
    coffeechat ... check [--json] [--user NAME]
    coffeechat [--config FILE] [--data-dir DIR] init [--force]
    coffeechat ... nodes [--json]
    coffeechat ... import coffeechat-v1 --mysql mysql://user:pass@host:port/db [--batch N] [--json]
    coffeechat ... backup [--dir DIR] [--prune] | backup verify BACKUP | backup list | restore BACKUP [--force]
    coffeechat ... analytics export [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--output FILE]

It reads the same configuration as the server and works on the database directly (with the server
stopped or running), so a running server does not hear of a change: a disabled user's tokens are
revoked and the next login is refused, but connections already open stay until they reconnect.
The HTTP admin API (``POST /admin/users/<id>/disable``) disconnects live sessions at once.

Plain passwords are turned into the MD5 hex the CIM clients send (``--password``); that MD5 is
what the server stores with scrypt.  Nothing is read from stdin.  Mistakes (a taken name, a bad
config key) print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from twisted.internet import task, threads

from coffeechat.config import Config, ConfigError, load_config
from coffeechat.errors import ChatError
from coffeechat.features.accounts import MD5_RE
from coffeechat.model import User
from coffeechat.node import ChatNode, build_node
from coffeechat.ops import analytics_export, backup, doctor, import_v1, init
from coffeechat.plugins import presence_factory

PROG = "coffeechat"


class CommandError(Exception):
    """A mistake of the user's, told in one line."""


def build_parser() -> argparse.ArgumentParser:
    """The command line: global options, then ``user``, ``token`` or ``check``."""
    parser = argparse.ArgumentParser(prog=PROG, description="Administer a CoffeeChat server.")
    parser.add_argument("--config", "-c", metavar="FILE", help="TOML configuration file (as given to twistd)")
    parser.add_argument("--data-dir", "-d", metavar="DIR", help="data directory (server.data_dir)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    user = commands.add_parser("user", help="manage accounts").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--nick", help="nick name (default: the name)")
    _password_options(add, allow_none=True)
    listing = user.add_parser("list", help="list accounts: id, name, nick, active|disabled")
    listing.add_argument("--after", type=int, default=0, metavar="ID", help="start after this user id")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help="at most N users (default 100)")
    for name, text in (("disable", "refuse logins and revoke tokens"), ("enable", "allow logins again")):
        user.add_parser(name, help=text).add_argument("user", metavar="NAME_OR_ID")
    passwd = user.add_parser("passwd", help="set a new password (revokes every token)")
    passwd.add_argument("user", metavar="NAME_OR_ID")
    _password_options(passwd, allow_none=False)

    token = commands.add_parser("token", help="manage login tokens").add_subparsers(dest="action", required=True)
    token.add_parser("issue", help="issue a login token").add_argument("user", metavar="NAME_OR_ID")
    token.add_parser("revoke-all", help="revoke every token of a user").add_argument("user", metavar="NAME_OR_ID")

    doctor.add_parser(commands)
    init.add_parser(commands)
    backup.add_commands(commands)
    import_v1.add_parser(commands)
    analytics_export.add_parser(commands)
    nodes = commands.add_parser("nodes", help="the nodes of the cluster and their online counts (from Redis)")
    nodes.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _password_options(parser: argparse.ArgumentParser, allow_none: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--password", metavar="PW", help="the plain password")
    group.add_argument("--password-md5", metavar="HEX", help="the MD5 hex of the password, as clients send it")
    if allow_none:
        group.add_argument("--no-password", action="store_true", help="token login only")


def _password_md5(args: argparse.Namespace) -> str | None:
    """The secret to store: the MD5 hex of the password, or None for a token-only account."""
    if args.password is not None:
        if not args.password:
            raise CommandError("--password must not be empty")
        return hashlib.md5(args.password.encode()).hexdigest()
    if args.password_md5 is not None:
        if not MD5_RE.fullmatch(args.password_md5):
            raise CommandError("--password-md5 must be 32 hex characters")
        return args.password_md5.lower()
    return None


def _line(user: User) -> str:
    return f"{user.user_id}\t{user.name}\t{user.nick_name}\t{'disabled' if user.disabled else 'active'}"


def _when(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _user(node: ChatNode, args: argparse.Namespace) -> None:
    accounts = node.feature("accounts")
    if args.action == "add":
        try:
            user = await accounts.create_user(args.name, args.nick, _password_md5(args))
        except ChatError as e:
            raise CommandError(f"cannot add user {args.name!r}: {e.message}") from None
        print(_line(user))
    elif args.action == "list":
        if args.limit < 1 or args.after < 0:
            raise CommandError("--limit must be at least 1 and --after not negative")
        for user in await accounts.list_users(args.limit, args.after, include_disabled=True):
            print(_line(user))
    elif args.action == "disable":
        user = await accounts.find_user(args.user)
        user, _, _ = await accounts.disable(user.user_id)
        print(_line(user))
    elif args.action == "enable":
        user = await accounts.find_user(args.user)
        print(_line(await accounts.enable(user.user_id)))
    elif args.action == "passwd":
        secret = _password_md5(args)
        user = await accounts.find_user(args.user)
        await accounts.set_password(user.user_id, secret)
        print(f"password of {user.name} (id {user.user_id}) changed; its tokens are revoked")


async def _token(node: ChatNode, args: argparse.Namespace) -> None:
    accounts = node.feature("accounts")
    user = await accounts.find_user(args.user)
    if args.action == "issue":
        await accounts.check_revival(user.user_id)  # never for a deleted account
        token, expires_at = await accounts.issue_token(user.user_id, "cli")
        print(f"token: {token}")
        print(f"expires_at: {expires_at} ({_when(expires_at)})")
        if user.disabled:
            print(
                f"warning: {user.name} is disabled; the token works only once the account is enabled", file=sys.stderr
            )
    else:
        count = await accounts.revoke_all_tokens(user.user_id)
        print(f"revoked {count} tokens of {user.name} (id {user.user_id})")


async def _nodes(reactor: Any, config: Config, args: argparse.Namespace) -> int:
    """Every node registered in the shared presence, alive or dead, with its counts."""
    if config.presence.backend == "memory":
        raise CommandError(
            'presence.backend is "memory": a single node, nothing shared to list (its GET /health gives its counts)'
        )
    presence = presence_factory(config.presence.backend)(reactor, config.presence, f"admin-{os.getpid()}")
    try:
        await presence.observe()
    except Exception as e:
        raise CommandError(str(e)) from None
    try:
        infos = await presence.nodes()
        total = await presence.online_count()
    finally:
        await presence.stop()
    if args.json:
        rows = [info._asdict() | {"lease_left": min(info.lease_left, 1e9)} for info in infos]
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'node':<24}{'state':<7}{'users':>9}{'devices':>9}  {'running since':<20}{'lease left':>11}")
    for info in infos:
        since = _when(int(info.started_at)) if info.started_at else "-"
        lease = f"{info.lease_left:.1f} s" if info.alive else "expired"
        state = "alive" if info.alive else "dead"
        print(f"{info.name:<24}{state:<7}{info.online_users:>9}{info.devices:>9}  {since:<20}{lease:>11}")
    alive = sum(1 for info in infos if info.alive)
    print(f"{alive} of {len(infos)} nodes alive, {total} users online")
    return 0


async def _run(reactor: Any, config: Config, args: argparse.Namespace) -> int:
    if args.command == "nodes":
        return await _nodes(reactor, config, args)
    if args.command == "check":
        return await doctor.run(reactor, config, args)
    if args.command in ("backup", "restore"):  # never opens the node: restore needs the database closed
        try:
            return await threads.deferToThread(backup.command, config, args)
        except backup.BackupError as e:
            raise CommandError(str(e)) from None
    try:
        node = build_node(config, reactor)
    except (ConfigError, OSError) as e:
        raise CommandError(str(e)) from None
    try:
        await node.open()
    except Exception as e:
        await _close(node)
        raise CommandError(f"cannot open the database at {config.sqlite_path}: {e}") from None
    try:
        if args.command == "user":
            await _user(node, args)
        elif args.command == "token":
            await _token(node, args)
        elif args.command == "analytics":
            return await analytics_export.run(node, args, CommandError)
        elif args.command == "import":
            return await import_v1.run(reactor, node, args, CommandError)
        return 0
    finally:
        await _close(node)


async def _close(node: ChatNode) -> None:
    try:
        await node.close()
    except Exception:
        traceback.print_exc()


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status: 0 done, 1 refused or failed, 2 bad usage."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already explained
        return e.code if isinstance(e.code, int) else 2
    if args.command == "init":
        return init.run(args)
    overrides = {"server.data_dir": args.data_dir} if args.data_dir else {}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as e:
        if args.command == "check" and args.json:
            return doctor.config_failed(args, e)
        return _fail(f"configuration: {e}")

    status = 1

    async def command(reactor: Any) -> None:
        nonlocal status
        try:
            status = await _run(reactor, config, args)
        except (ChatError, CommandError) as e:
            status = _fail(e.message if isinstance(e, ChatError) else str(e))
        except Exception:
            traceback.print_exc()
            status = _fail("internal error (traceback above)")

    try:
        task.react(command)
    except SystemExit:  # react always exits; the status is ours
        pass
    return status


if __name__ == "__main__":
    raise SystemExit(main())
