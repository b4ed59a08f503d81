"""``coffeechat check``: the doctor, as ``prosodyctl check`` is Prosody's.

One line per check, ``ok``, ``warning`` or ``problem``, with what to do about it: the
configuration, each listener's port (free, or held by a running CoffeeChat, else by which
process), the data directory (there, writable by this user, not world-readable: it holds the
database and its tokens), the TLS files of ``ssl:`` endpoints (readable, the key matching the
certificate, not expired), the database (opens, SQLite's ``quick_check``, the schema version),
Redis when presence is shared, and the settings that are weak in production.  The exit status is
1 when there is a problem; ``--json`` prints the same checks as one JSON object.

It opens the database as the other commands do (the features' tables brought up to date), so it
runs beside a running server; run it as the user the server runs as.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import socket
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coffeechat.config import Config
from coffeechat.endpoints import plan
from coffeechat.node import build_node
from coffeechat.plugins import presence_factory, transports

OK, WARNING, PROBLEM = "ok", "warning", "problem"
#: A config line (not a comment) giving a secret-like key a value.
_SECRET_LINE = re.compile(r'(?m)^\s*\w*(?:secret|token|password|api_key|private_key)\w*\s*=\s*"[^"]+"')
#: A certificate that expires sooner than this is a warning.
EXPIRY_WARNING = timedelta(days=14)


@dataclass
class Check:
    """One finding: its status, what it is about, what was found, and what to do."""

    status: str
    name: str
    message: str
    advice: str = ""

    def __post_init__(self) -> None:
        self.message = " ".join(self.message.split())  # one line, whatever an exception's text held

    def line(self) -> str:
        return f"{self.status:<8} {self.name}: {self.message}" + (f" -> {self.advice}" if self.advice else "")


def add_parser(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check", help="the doctor: config, ports, data dir, TLS files, database, Redis (exit 1 on a problem)"
    )
    check.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    check.add_argument(
        "--user",
        metavar="NAME",
        help="check file permissions for this user (the one the server runs as, e.g. under systemd) instead of "
        "the one running the check",
    )


def report(checks: list[Check], as_json: bool) -> int:
    """Print the checks; the exit status (1 when one is a problem)."""
    problems = sum(c.status == PROBLEM for c in checks)
    if as_json:
        print(json.dumps({"ok": not problems, "checks": [asdict(c) for c in checks]}, indent=1))
    else:
        for check in checks:
            print(check.line())
        print("All checks passed." if not problems else f"{problems} problem(s) found.")
    return 1 if problems else 0


def config_failed(args: argparse.Namespace, error: Exception) -> int:
    """``check --json`` on a configuration that does not load: the one check, a problem."""
    return report([Check(PROBLEM, "config", str(error), "fix the key named, etc/coffeechat.toml documents each")], True)


async def run(reactor: Any, config: Config, args: argparse.Namespace) -> int:
    """Every check, then the report."""
    checks: list[Check] = []
    who = Account.current()
    if getattr(args, "user", None):
        try:
            who = Account.named(args.user)
        except KeyError:
            checks.append(Check(PROBLEM, "user", f"no user {args.user!r} on this machine", "name the server's user"))
        else:
            checks.append(Check(OK, "user", f"permissions checked for {who.name} (uid {who.uid})"))
    checks += config_checks(config, args.config, who)
    data_dir_existed = config.data_path.is_dir()
    checks += await database_checks(reactor, config)
    checks += data_dir_checks(config, data_dir_existed, who)
    checks += listener_checks(reactor, config, args.config, who)
    checks += await presence_checks(reactor, config)
    checks += settings_checks(config)
    return report(checks, args.json)


# -- the configuration and the settings


# -- whose permissions


@dataclass(frozen=True)
class Account:
    """Whose access the checks judge: this process's (the kernel is asked), or another user's
    (``--user``: worked out from the owner, group and mode bits of the path and its parents)."""

    name: str
    uid: int | None = None  # None: this process
    gids: frozenset[int] = frozenset()

    @classmethod
    def current(cls) -> Account:
        return cls(_owner(os.geteuid()))

    @classmethod
    def named(cls, name: str) -> Account:
        """The account ``name`` with its groups; KeyError when there is none."""
        import pwd

        entry = pwd.getpwnam(name)
        return cls(entry.pw_name, entry.pw_uid, frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid)))

    def can(self, path: str | Path, want: int) -> bool:
        """Whether this account may ``want`` (os.R_OK | os.W_OK | os.X_OK) ``path``."""
        if self.uid is None:
            return os.access(path, want)
        if self.uid == 0:
            return True
        path = Path(path).absolute()
        try:
            return all(self._granted(p, os.X_OK) for p in reversed(path.parents)) and self._granted(path, want)
        except OSError:
            return False

    def _granted(self, path: Path, want: int) -> bool:
        st = os.stat(path)
        shift = 6 if st.st_uid == self.uid else 3 if st.st_gid in self.gids else 0
        return (st.st_mode >> shift) & want == want


def config_checks(config: Config, path: str | None, who: Account | None = None) -> Iterator[Check]:
    who = who or Account.current()
    if path is None:
        yield Check(OK, "config", "built-in defaults (no --config)")
        return
    resolved = Path(path).resolve()
    yield Check(OK, "config", f"{resolved} loads")
    if not who.can(resolved, os.R_OK):
        yield Check(PROBLEM, "config", f"{resolved} is not readable by {who.name}", f"chown {who.name} {resolved}")
    mode = resolved.stat().st_mode
    text = resolved.read_text(encoding="utf-8", errors="replace")  # load_config read it: so can we
    holds_secrets = bool(config.http.admin_token) or bool(_SECRET_LINE.search(text))
    if holds_secrets and mode & stat.S_IROTH:
        yield Check(WARNING, "config", f"{resolved} holds secrets and is world-readable", f"chmod 600 {resolved}")


def settings_checks(config: Config) -> Iterator[Check]:
    yield Check(OK, "features", ", ".join(config.features.enabled))
    token = config.http.admin_token
    yield Check(OK, "admin API", "enabled" if token else "disabled (set http.admin_token to enable)")
    if token and len(token) < 16:
        yield Check(WARNING, "admin API", "http.admin_token is shorter than 16 characters", "use `coffeechat init`'s")
    auth = config.section("auth")
    if auth is not None:
        yield Check(OK, "password KDF", f"scrypt n={auth.scrypt_n} r={auth.scrypt_r} p={auth.scrypt_p}")
        yield Check(OK, "token ttl", f"{auth.token_ttl / 86400:g} days")
        if auth.scrypt_n < 2**14:
            yield Check(WARNING, "password KDF", f"auth.scrypt_n = {auth.scrypt_n} is weak", "use 16384 or more")


# -- the data directory


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def data_dir_checks(config: Config, existed: bool, who: Account | None = None) -> Iterator[Check]:
    who = who or Account.current()
    path = config.data_path.resolve()
    if not path.is_dir():
        yield Check(PROBLEM, "data dir", f"{path} does not exist", "create it, or run `coffeechat init --data-dir`")
        return
    me = who.name
    yield Check(OK, "data dir", f"{path}" + ("" if existed else " (created now)"))
    if not who.can(path, os.R_OK | os.W_OK | os.X_OK):
        owner = _owner(path.stat().st_uid)
        mode = stat.S_IMODE(path.stat().st_mode)
        yield Check(
            PROBLEM,
            "data dir",
            f"{path} is not readable and writable by {me} (owner {owner}, mode {mode:o})",
            f"chown -R {me} {path}",
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IROTH | stat.S_IXOTH):
        yield Check(
            WARNING, "data dir", f"{path} is open to every user (mode {mode:o}); it holds tokens", f"chmod 700 {path}"
        )
    db = config.sqlite_path.resolve()
    reachable = db.parent.stat().st_mode & stat.S_IXOTH if db.parent.exists() else 0
    if config.storage.backend == "sqlite" and db.exists() and reachable and db.stat().st_mode & stat.S_IROTH:
        yield Check(WARNING, "database", f"{db} is world-readable", f"chmod 600 {db}*")
    if config.storage.backend == "sqlite" and db.exists() and not who.can(db, os.R_OK | os.W_OK):
        yield Check(PROBLEM, "database", f"{db} is not writable by {me}", f"chown {me} {db}*")


# -- the database


async def database_checks(reactor: Any, config: Config) -> list[Check]:
    backend = config.storage.backend
    where = str(config.sqlite_path.resolve()) if backend == "sqlite" else config.storage.dsn or "libpq defaults"
    try:
        node = build_node(config, reactor)
    except Exception as e:
        return [Check(PROBLEM, "database", f"{backend} at {where}: {e}", "check [storage]")]
    checks = []
    try:
        await node.open()
    except Exception as e:
        advice = "is PostgreSQL running, and the dsn right?" if backend == "postgres" else "check [storage] path"
        checks.append(Check(PROBLEM, "database", f"cannot open {backend} at {where}: {e}", advice))
    else:
        checks += await _database_opened(node, backend, where)
    finally:
        try:
            await node.close()
        except Exception as e:
            checks.append(Check(WARNING, "database", f"closing it failed: {e}"))
    return checks


async def _database_opened(node: Any, backend: str, where: str) -> list[Check]:
    store = node.store
    version = getattr(store, "schema_version", None)
    detail = f" (schema version {version})" if version else ""
    checks = []
    engine = getattr(store, "engine", None)
    try:
        if engine == "sqlite":
            result = await store.run_read(
                "doctor_quick_check", lambda txn: txn.execute("PRAGMA quick_check").fetchall()
            )
            verdict = ", ".join(str(row[0]) for row in result[:5])
            if verdict != "ok":
                checks.append(
                    Check(PROBLEM, "database", f"quick_check: {verdict}", "restore the last backup (docs/backups.md)")
                )
            detail += ", quick_check ok" if verdict == "ok" else ""
        elif engine == "postgres":
            row = await store.run_read("doctor_version", lambda txn: txn.execute("SHOW server_version").fetchone())
            detail += f", PostgreSQL {row[0]}"
    except Exception as e:
        checks.append(Check(PROBLEM, "database", f"a query failed: {e}"))
    checks.insert(0, Check(OK, "storage", f"{backend} at {where}{detail}"))
    try:
        total = disabled = after = 0
        while page := await node.feature("accounts").list_users(1000, after, include_disabled=True):
            total += len(page)
            disabled += sum(u.disabled for u in page)
            after = page[-1].user_id
        checks.append(Check(OK, "users", f"{total} ({disabled} disabled)"))
    except KeyError:
        pass
    return checks


# -- listeners: ports and TLS files


def endpoint_args(description: str) -> tuple[str, list[str], dict[str, str]]:
    """Split a Twisted endpoint string as Twisted does: ``kind``, positional and keyword arguments
    (``\\:`` and ``\\=`` escape)."""
    parts = [p.replace("\\:", ":") for p in re.split(r"(?<!\\):", description)]
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for part in parts[1:]:
        keyword = re.fullmatch(r"(\w+)=(.*)", part, re.S)
        if keyword:
            keywords[keyword.group(1)] = keyword.group(2).replace("\\=", "=")
        else:
            positional.append(part.replace("\\=", "="))
    return parts[0], positional, keywords


def listener_checks(
    reactor: Any, config: Config, config_path: str | None, who: Account | None = None
) -> Iterator[Check]:
    who = who or Account.current()
    configured = False
    for name in transports():
        endpoints = config.listen.endpoints.get(name, [])
        where = f"listen.{name}"
        if not endpoints:
            yield Check(OK, where, "off")
        for description in endpoints:
            configured = True
            inner = description
            while inner.startswith("haproxy:"):  # the PROXY protocol wraps the real endpoint
                inner = inner[len("haproxy:") :]
            kind, positional, keywords = endpoint_args(inner)
            tls = list(tls_checks(where, keywords, who)) if kind == "ssl" else []
            if any(c.status == PROBLEM for c in tls):  # more precise than the endpoint's own error
                yield from tls
                continue
            try:
                plan(reactor, description)
            except Exception as e:
                yield Check(
                    PROBLEM, where, f"{description!r} is not usable: {e}", "see docs/configuration.md#endpoints"
                )
                continue
            if kind in ("tcp", "tcp6", "ssl"):
                port = int(keywords.get("port", positional[0] if positional else "0"))
                yield port_check(where, description, kind, port, keywords.get("interface", ""), config_path, who)
            elif kind == "unix":
                address = keywords.get("address", positional[0] if positional else "")
                yield unix_check(where, description, address, who)
            elif kind == "systemd":
                yield Check(OK, where, f"{description} (the socket comes from systemd: etc/coffeechat.socket)")
            else:
                yield Check(OK, where, description)
            yield from tls
    if not configured:
        yield Check(WARNING, "listen", "no listeners configured", "set [listen] cim, http or ws")


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def port_check(
    where: str,
    description: str,
    kind: str,
    port: int,
    interface: str,
    config_path: str | None,
    who: Account | None = None,
) -> Check:
    """Whether this node could listen: bind (with SO_REUSEADDR, as Twisted does) and let go."""
    if port == 0:
        return Check(OK, where, f"{description} (any free port)")
    if who is not None and who.uid not in (None, 0) and port < _unprivileged_port_start():
        return Check(
            WARNING,
            where,
            f"{description}: port {port} needs privileges {who.name} lacks",
            "socket activation (etc/coffeechat.socket), AmbientCapabilities=CAP_NET_BIND_SERVICE, or a port above 1023",
        )
    family = socket.AF_INET6 if kind == "tcp6" or ":" in interface else socket.AF_INET
    host = interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except PermissionError:
        return Check(
            PROBLEM,
            where,
            f"{description}: port {port} needs privileges",
            "use a port above 1023, socket activation (etc/coffeechat.socket) or CAP_NET_BIND_SERVICE",
        )
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            return Check(PROBLEM, where, f"{description}: cannot bind {host}:{port}: {e.strerror}", "check interface=")
        holder = port_holder(port)
        if holder is None:
            return Check(
                PROBLEM,
                where,
                f"{description}: port {port} is in use by another user's process",
                "run as root to see which",
            )
        pid, command = holder
        if _is_coffeechat(command):
            mine = config_path is None or str(Path(config_path).resolve()) in _resolved_args(pid, command)
            if mine:
                return Check(OK, where, f"{description}: held by this node, running as pid {pid}")
            return Check(
                WARNING,
                where,
                f"{description}: held by another CoffeeChat node (pid {pid}: {command})",
                "stop it first",
            )
        return Check(
            PROBLEM,
            where,
            f"{description}: port {port} is in use by pid {pid} ({command})",
            "stop it or pick another port",
        )
    return Check(OK, where, f"{description} (port {port} free)")


def _is_coffeechat(command: str) -> bool:
    """A CoffeeChat node's command line: ``twistd ... coffeechat ...`` or the container's entry point."""
    return any(arg == "coffeechat" or os.path.basename(arg) == "coffeechat-entrypoint" for arg in command.split())


def _resolved_args(pid: int, command: str) -> str:
    """The command line with its relative paths resolved against the process's directory."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return command
    return " ".join(str((cwd / a).resolve()) if a.endswith(".toml") else a for a in command.split())


def port_holder(port: int) -> tuple[int, str] | None:
    """The process listening on TCP ``port`` (Linux /proc), or None when it cannot be told."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return int(proc.name), command
        except OSError:
            continue
    return None


def unix_check(where: str, description: str, address: str, who: Account | None = None) -> Check:
    who = who or Account.current()
    folder = Path(address).parent.resolve()
    if not who.can(folder, os.W_OK | os.X_OK):
        return Check(PROBLEM, where, f"{description}: cannot create a socket in {folder}", "create it, writable")
    return Check(OK, where, description)


def _pem_blocks(data: bytes, label: str) -> list[bytes]:
    pattern = rb"-----BEGIN ([A-Z ]*" + label.encode() + rb")-----.+?-----END \1-----"
    return [m.group(0) for m in re.finditer(pattern, data, re.S)]


def tls_checks(where: str, keywords: dict[str, str], who: Account | None = None) -> Iterator[Check]:
    """The key and certificate of an ``ssl:`` endpoint: there, readable, matching, in date."""
    who = who or Account.current()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_path = keywords.get("privateKey", "server.pem")  # Twisted's default, relative to the working directory
    cert_path = keywords.get("certKey", key_path)
    contents = {}
    files = [("key", key_path)] + ([("certificate", cert_path)] if cert_path != key_path else [])
    for role, path in files:
        try:
            contents[role] = Path(path).read_bytes()
        except FileNotFoundError:
            yield Check(PROBLEM, where, f"TLS {role} {path} does not exist", "fix privateKey=/certKey= or create it")
            continue
        except OSError as e:
            yield Check(PROBLEM, where, f"TLS {role} {path}: {e.strerror}", f"make it readable by {who.name}")
            continue
        if not who.can(path, os.R_OK):
            yield Check(PROBLEM, where, f"TLS {role} {path} is not readable by {who.name}", f"chown {who.name} {path}")
    if len(contents) < len(files):
        return
    contents.setdefault("certificate", contents["key"])
    try:
        blocks = _pem_blocks(contents["key"], "PRIVATE KEY")
        if not blocks:
            raise ValueError("no PEM private key in it")
        key = serialization.load_pem_private_key(blocks[0], password=None)
    except TypeError:
        yield Check(PROBLEM, where, f"TLS key {key_path} is encrypted", "Twisted needs it without a passphrase")
        return
    except ValueError as e:
        yield Check(PROBLEM, where, f"TLS key {key_path}: {e}", "give a PEM private key")
        return
    try:
        cert = x509.load_pem_x509_certificate(_pem_blocks(contents["certificate"], "CERTIFICATE")[0])
    except (ValueError, IndexError) as e:
        yield Check(
            PROBLEM, where, f"TLS certificate {cert_path}: {e or 'no PEM certificate in it'}", "give a PEM certificate"
        )
        return
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*der) != key.public_key().public_bytes(*der):
        yield Check(PROBLEM, where, f"TLS key {key_path} does not match certificate {cert_path}", "pair them again")
        return
    now = datetime.now(UTC)
    subject = cert.subject.rfc4514_string()
    until = cert.not_valid_after_utc
    if until < now:
        yield Check(PROBLEM, where, f"TLS certificate {cert_path} ({subject}) expired on {until:%Y-%m-%d}", "renew it")
    elif cert.not_valid_before_utc > now:
        yield Check(
            PROBLEM, where, f"TLS certificate {cert_path} is valid only from {cert.not_valid_before_utc:%Y-%m-%d}"
        )
    elif until - now < EXPIRY_WARNING:
        yield Check(WARNING, where, f"TLS certificate {cert_path} ({subject}) expires on {until:%Y-%m-%d}", "renew it")
    else:
        yield Check(OK, where, f"TLS certificate {cert_path} ({subject}) matches its key, valid until {until:%Y-%m-%d}")
    if os.stat(key_path).st_mode & stat.S_IROTH:
        yield Check(WARNING, where, f"TLS key {key_path} is world-readable", f"chmod 600 {key_path}")


# -- presence


async def presence_checks(reactor: Any, config: Config) -> list[Check]:
    presence_config = config.presence
    if presence_config.backend == "memory":
        return [Check(OK, "presence", "memory (a single node)")]
    where = ", ".join(presence_config.sentinels) if presence_config.sentinels else presence_config.redis
    presence = presence_factory(presence_config.backend)(reactor, presence_config, f"doctor-{os.getpid()}")
    try:
        await presence.observe()
    except Exception as e:
        return [Check(PROBLEM, "presence", f"cannot reach Redis at {where}: {e}", "is Redis running, the URL right?")]
    try:
        nodes = await presence.nodes()
    except Exception as e:
        return [Check(PROBLEM, "presence", f"Redis at {where} answered with an error: {e}")]
    finally:
        await presence.stop()
    alive = sum(1 for n in nodes if n.alive)
    return [Check(OK, "presence", f"redis at {where} reachable, {alive} of {len(nodes)} nodes alive")]
