"""The ``coffeechat`` admin command, run as a real subprocess against a temporary data dir."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted

from coffeechat.config import load_config
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.node import build_node
from coffeechat.ops.init import EXAMPLE_SECRET
from tests.pgserver import free_port
from tests.redisserver import redis_server  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
MAIN = "from coffeechat.admin import main; raise SystemExit(main())"


def md5(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


@pytest.fixture
def cli(tmp_path):
    """``cli(*args)`` runs the command on this test's config and data dir."""
    config = tmp_path / "coffeechat.toml"
    config.write_text("[auth]\nscrypt_n = 1024\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    def run(*args: str, config_file: Path = config) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", MAIN, "--config", str(config_file), "--data-dir", str(tmp_path / "data"), *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def ok(result: subprocess.CompletedProcess) -> list[str]:
    """The stdout lines of a command that must have succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def refused(result: subprocess.CompletedProcess, code: int = 1) -> str:
    """The one-line stderr of a command that must have been refused, with no traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if code == 1:
        assert len(lines) == 1, result.stderr
    return result.stderr


async def with_core(tmp_path, fn):
    """Open the same database in-process and run ``fn(core)``."""
    from twisted.internet import reactor

    config = load_config(tmp_path / "coffeechat.toml", {"server.data_dir": str(tmp_path / "data")})
    core = build_node(config, reactor)
    await core.open()
    try:
        return await fn(core)
    finally:
        await core.close()


def test_user_add_and_list(cli):
    assert ok(cli("user", "add", "alice", "--password", "pw")) == ["1\talice\talice\tactive"]
    assert ok(cli("user", "add", "robot1", "--no-password", "--nick", "Robot One")) == ["2\trobot1\tRobot One\tactive"]
    assert ok(cli("user", "add", "bob.b", "--password-md5", md5("pw").upper()))[0].startswith("3\tbob.b\t")
    assert ok(cli("user", "list")) == [
        "1\talice\talice\tactive",
        "2\trobot1\tRobot One\tactive",
        "3\tbob.b\tbob.b\tactive",
    ]
    assert ok(cli("user", "list", "--after", "1", "--limit", "1")) == ["2\trobot1\tRobot One\tactive"]


def test_user_add_refusals(cli):
    ok(cli("user", "add", "alice", "--password", "pw"))
    assert "taken" in refused(cli("user", "add", "ALICE", "--no-password"))
    assert "userName" in refused(cli("user", "add", "abcd", "--no-password"))
    assert "32 hex" in refused(cli("user", "add", "carol", "--password-md5", "xyz"))
    refused(cli("user", "add", "carol"), code=2)  # a password choice is required
    refused(cli("user", "add", "carol", "--password", "a", "--no-password"), code=2)
    assert "no user 'nobody'" in refused(cli("user", "disable", "nobody"))
    assert ok(cli("user", "list")) == ["1\talice\talice\tactive"]


@pytest_twisted.ensureDeferred
async def test_disable_enable_and_passwd(cli, tmp_path):
    ok(cli("user", "add", "alice", "--password", "old"))
    token = ok(cli("token", "issue", "alice"))[0].removeprefix("token: ")
    assert ok(cli("user", "disable", "alice")) == ["1\talice\talice\tdisabled"]
    assert ok(cli("user", "list")) == ["1\talice\talice\tdisabled"]

    async def disabled(core):
        with pytest.raises(ChatError) as e:
            await core.feature("accounts").login_password("alice", md5("old"))
        assert e.value.code == ErrorCode.USER_DISABLED
        with pytest.raises(ChatError) as e:
            await core.feature("accounts").login_token(0, token)
        assert e.value.code == ErrorCode.LOGIN_INVALID_USER_TOKEN  # revoked with the disable

    await with_core(tmp_path, disabled)

    assert ok(cli("user", "enable", "1")) == ["1\talice\talice\tactive"]
    assert "changed" in ok(cli("user", "passwd", "1", "--password", "new"))[0]

    async def new_password(core):
        with pytest.raises(ChatError) as e:
            await core.feature("accounts").login_password("alice", md5("old"))
        assert e.value.code == ErrorCode.LOGIN_INVALID_USER_OR_PWD
        assert (await core.feature("accounts").login_password("alice", md5("new"))).user_id == 1

    await with_core(tmp_path, new_password)
    ok(cli("user", "passwd", "alice", "--password-md5", md5("third")))

    async def third(core):
        assert (await core.feature("accounts").login_password("ALICE", md5("third"))).name == "alice"

    await with_core(tmp_path, third)
    refused(cli("user", "passwd", "alice"), code=2)


@pytest_twisted.ensureDeferred
async def test_token_issue_and_revoke_all(cli, tmp_path):
    ok(cli("user", "add", "robot1", "--no-password"))
    lines = ok(cli("token", "issue", "robot1"))
    assert lines[0].startswith("token: ")
    assert lines[1].startswith("expires_at: ")
    token = lines[0].removeprefix("token: ")
    second = ok(cli("token", "issue", "1"))[0].removeprefix("token: ")

    async def works(core):
        assert (await core.feature("accounts").login_token(1, token)).name == "robot1"
        assert (await core.feature("accounts").login_token(0, second)).name == "robot1"

    await with_core(tmp_path, works)
    assert ok(cli("token", "revoke-all", "robot1")) == ["revoked 2 tokens of robot1 (id 1)"]

    async def revoked(core):
        for t in (token, second):
            with pytest.raises(ChatError):
                await core.feature("accounts").login_token(0, t)

    await with_core(tmp_path, revoked)


def test_check(cli, tmp_path):
    # the doctor checks the ports too: free ones of this test's, not the defaults another process may hold
    ports = [free_port() for _ in range(3)]
    config = tmp_path / "ports.toml"
    config.write_text(
        "[auth]\nscrypt_n = 1024\n[listen]\n"
        + "".join(
            f'{name} = ["tcp:{port}:interface=127.0.0.1"]\n'
            for name, port in zip(("cim", "http", "ws"), ports, strict=True)
        )
    )
    lines = ok(cli("check", config_file=config))
    text = "\n".join(lines)
    for port in ports:
        assert f"(port {port} free)" in text
    assert str((tmp_path / "data").resolve()) in text
    assert str((tmp_path / "data" / "coffeechat.sqlite3").resolve()) in text
    assert "users:" in text
    assert "scrypt_n = 1024 is weak" in text
    assert lines[-1] == "All checks passed."

    bad_endpoint = tmp_path / "endpoint.toml"
    bad_endpoint.write_text('[auth]\nscrypt_n = 1024\n[listen]\nhttp = ["tcp:notaport"]\n')
    result = cli("check", config_file=bad_endpoint)
    assert result.returncode == 1
    assert "listen.http: 'tcp:notaport'" in result.stdout


def test_init_writes_a_commented_config_with_fresh_secrets_and_never_over_one(cli, tmp_path):
    config = tmp_path / "coffeechat.toml"  # the fixture's, already there
    before = config.read_text()
    assert "exists; not overwritten (--force replaces it" in refused(cli("init"))
    assert config.read_text() == before

    def token() -> str:
        return re.search(r'(?m)^admin_token = "([^"]+)"$', config.read_text()).group(1)

    lines = ok(cli("init", "--force"))
    assert lines[0] == f"wrote {config} (mode 0600), fresh secrets in http.admin_token, moderation.secret"
    assert lines[1] == f"created the data dir {tmp_path / 'data'} (mode 0700)"
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert config.stat().st_mode & 0o777 == 0o600
    text = config.read_text()
    assert EXAMPLE_SECRET not in text and len(token()) >= 40
    assert text.count("whsec_") >= 3  # the commented-out examples got secrets of their own
    assert f'data_dir = "{tmp_path / "data"}"' in text
    first = token()
    ok(cli("init", "--force"))
    assert token() != first
    loaded = load_config(config)
    assert loaded.http.admin_token == token() and loaded.data_path == tmp_path / "data"

    assert "does not exist; create it first" in refused(cli("init", "--config", str(tmp_path / "no" / "c.toml")))
    assert "is a directory" in refused(cli("init", "--config", str(tmp_path)))


def test_bad_config_key_is_named(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[auth]\nscrypt_nn = 1024\n")
    for args in (["check"], ["user", "list"]):
        assert "auth.scrypt_nn" in refused(cli(*args, config_file=bad))
    assert "cannot read config file" in refused(cli("check", config_file=tmp_path / "missing.toml"))


# -- nodes (the cluster's view in Redis)


def test_nodes_needs_a_shared_presence(cli):
    assert "single node" in refused(cli("nodes"))


def test_nodes_says_when_redis_is_unreachable(cli, tmp_path):
    config = tmp_path / "redis.toml"
    config.write_text('[presence]\nbackend = "redis"\nredis = "redis://127.0.0.1:1/0"\ntimeout = 1.0\n')
    assert "cannot reach Redis" in refused(cli("nodes", config_file=config))


@pytest_twisted.ensureDeferred
async def test_nodes_lists_every_node_with_its_counts(tmp_path, redis_server):  # noqa: F811
    from twisted.internet import reactor, utils

    from coffeechat.backends.presence_redis import RedisPresence
    from coffeechat.config import PresenceConfig

    class Here:  # what the node holds: two users, three devices
        user_count, device_count = 2, 3

        def all_devices(self):
            return []

    settings = PresenceConfig(backend="redis", redis=redis_server.url, lease_seconds=30)
    node = RedisPresence(reactor, settings, "chat-1")
    await node.start(Here())
    try:
        config = tmp_path / "redis.toml"
        config.write_text(f'[presence]\nbackend = "redis"\nredis = "{redis_server.url}"\n')
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = ["-c", MAIN, "--config", str(config), "--data-dir", str(tmp_path / "data"), "nodes"]
        out, err, code = await utils.getProcessOutputAndValue(sys.executable, args, env=env)
        assert code == 0, err
        lines = out.decode().splitlines()
        row = next(line.split() for line in lines if line.startswith("chat-1"))
        assert row[:4] == ["chat-1", "alive", "2", "3"]
        assert lines[-1] == "1 of 1 nodes alive, 2 users online"
    finally:
        await node.stop()
