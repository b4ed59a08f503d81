"""``coffeechat check``, the doctor (coffeechat/ops/doctor.py), run as a real subprocess: ports taken
or free, the data dir's permissions, the TLS files of ``ssl:`` listeners, a real PostgreSQL and Redis
when reachable and a closed port when not, ``--json``."""

from __future__ import annotations

import datetime
import json
import os
import pwd
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.pgserver import free_port, pg_server  # noqa: F401
from tests.redisserver import redis_server  # noqa: F401
from tests.test_logs import stop, twistd, wait_until

REPO = Path(__file__).resolve().parent.parent
MAIN = "from coffeechat.admin import main; raise SystemExit(main())"


def doctor(config: Path, *args: str, as_json: bool = True) -> tuple[int, dict | str]:
    """Run ``coffeechat --config CONFIG check [--json] ARGS``: its exit status and report."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", MAIN, "--config", str(config), "check", *(["--json"] if as_json else []), *args],
        cwd=config.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if not as_json:
        return result.returncode, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] == (result.returncode == 0), report
    return result.returncode, report


def checks(report: dict, name: str, status: str | None = None) -> list[str]:
    """The messages of the checks called ``name`` (with ``status``)."""
    return [c["message"] for c in report["checks"] if c["name"] == name and status in (None, c["status"])]


def problems(report: dict) -> list[str]:
    return [f"{c['name']}: {c['message']}" for c in report["checks"] if c["status"] == "problem"]


def config_file(tmp_path: Path, text: str, data_mode: int = 0o700) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=data_mode, exist_ok=True)
    data.chmod(data_mode)
    path = tmp_path / "coffeechat.toml"
    path.write_text(f'[server]\ndata_dir = "{data}"\n[auth]\nscrypt_n = 16384\n' + text)
    path.chmod(0o600)
    return path


def certificate(folder: Path, name: str, days: tuple[int, int] = (-1, 90)) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 valid from ``days[0]`` to ``days[1]`` days from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_a_healthy_node_on_postgres_and_redis_passes(tmp_path, pg_server, redis_server):  # noqa: F811
    key, cert = certificate(tmp_path, "chat.example")
    cim, http, ws = free_port(), free_port(), free_port()
    config = config_file(
        tmp_path,
        f"""[storage]
backend = "postgres"
dsn = "{pg_server.database(tmp_path)}"
[presence]
backend = "redis"
redis = "{redis_server.url}"
[listen]
cim = ["ssl:{cim}:interface=127.0.0.1:privateKey={key}:certKey={cert}"]
http = ["tcp:{http}:interface=127.0.0.1"]
ws = ["haproxy:tcp:{ws}:interface=127.0.0.1"]
""",
    )
    try:
        status, report = doctor(config)
    finally:
        pg_server.release(tmp_path)
    assert status == 0, problems(report)
    assert [c for c in report["checks"] if c["status"] == "warning"] == []
    (storage,) = checks(report, "storage", "ok")
    assert storage.startswith("postgres at host=127.0.0.1") and "PostgreSQL" in storage
    assert checks(report, "users") == ["0 (0 disabled)"]
    assert checks(report, "presence") == [f"redis at {redis_server.url} reachable, 0 of 0 nodes alive"]
    assert f"port {cim} free" in checks(report, "listen.cim")[0]
    assert f"TLS certificate {cert} (CN=chat.example) matches its key" in checks(report, "listen.cim")[1]
    assert checks(report, "listen.http") == [f"tcp:{http}:interface=127.0.0.1 (port {http} free)"]
    assert f"port {ws} free" in checks(report, "listen.ws")[0]


def test_a_taken_port_is_a_problem_naming_the_process(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_file(tmp_path, f'[listen]\ncim = []\nws = []\nhttp = ["tcp:{port}:interface=127.0.0.1"]\n')
        status, report = doctor(config)
    assert status == 1
    (message,) = checks(report, "listen.http", "problem")
    assert f"port {port} is in use by pid {os.getpid()}" in message  # this test's own process holds it
    advice = next(c["advice"] for c in report["checks"] if c["name"] == "listen.http")
    assert "another port" in advice
    assert problems(report) == [f"listen.http: {message}"]


def test_a_port_held_by_this_very_node_is_fine(tmp_path):
    """The doctor runs beside the node it checks: the node's own ports are not a problem."""
    http = free_port()
    config = config_file(tmp_path, f'[listen]\ncim = []\nws = []\nhttp = ["tcp:{http}:interface=127.0.0.1"]\n')
    process = twistd(tmp_path, "--config", str(config))

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_until(process, answers, "/health answering", tmp_path / "stdout.log")
        status, report = doctor(config)
    finally:
        stop(process)
    assert status == 0, problems(report)
    assert checks(report, "listen.http") == [
        f"tcp:{http}:interface=127.0.0.1: held by this node, running as pid {process.pid}"
    ]


def test_a_data_dir_the_server_user_cannot_write_is_a_problem(tmp_path):
    config = config_file(tmp_path, "[listen]\ncim = []\nws = []\nhttp = []\n")
    data = tmp_path / "data"
    if os.geteuid() == 0:
        # root may write anywhere: ask about the user a service runs as (here "nobody") instead
        args: tuple[str, ...] = ("--user", "nobody")
        who = "nobody"
    else:
        data.chmod(0o500)
        args, who = (), None
    try:
        status, report = doctor(config, *args)
    finally:
        data.chmod(0o700)
    assert status == 1
    (message,) = checks(report, "data dir", "problem")
    me = who or pwd.getpwuid(os.geteuid()).pw_name
    assert message.startswith(f"{data.resolve()} is not readable and writable by {me} (owner ")
    if who == "nobody":
        assert checks(report, "user") == [f"permissions checked for nobody (uid {pwd.getpwnam('nobody').pw_uid})"]
        # the config (mode 0600, root's) is unreadable for nobody too, and said so
        assert checks(report, "config", "problem") == [f"{config.resolve()} is not readable by nobody"]


def test_a_data_dir_or_config_with_secrets_open_to_everyone_is_a_warning(tmp_path):
    config = config_file(tmp_path, "[listen]\ncim = []\nws = []\nhttp = []\n", data_mode=0o755)
    config.chmod(0o644)
    status, report = doctor(config)
    assert status == 0
    assert checks(report, "data dir", "warning") == [
        f"{(tmp_path / 'data').resolve()} is open to every user (mode 755); it holds tokens"
    ]
    assert checks(report, "config", "warning") == []  # no secret in it: nothing to hide
    config.write_text(config.read_text() + '[http]\nadmin_token = "an-admin-token-of-some-length"\n')
    status, report = doctor(config)
    assert checks(report, "config", "warning") == [f"{config.resolve()} holds secrets and is world-readable"]


def test_tls_files_missing_mismatched_or_expired_are_problems(tmp_path):
    good_key, good_cert = certificate(tmp_path, "good")
    other_key, _ = certificate(tmp_path, "other")
    expired_key, expired_cert = certificate(tmp_path, "old", days=(-30, -1))
    missing = tmp_path / "missing.pem"
    config = config_file(
        tmp_path,
        f"""[listen]
cim = ["ssl:{free_port()}:interface=127.0.0.1:privateKey={missing}"]
ws = ["ssl:{free_port()}:interface=127.0.0.1:privateKey={other_key}:certKey={good_cert}"]
http = ["ssl:{free_port()}:interface=127.0.0.1:privateKey={expired_key}:certKey={expired_cert}"]
""",
    )
    status, report = doctor(config)
    assert status == 1
    assert checks(report, "listen.cim", "problem") == [f"TLS key {missing} does not exist"]
    assert checks(report, "listen.ws", "problem") == [f"TLS key {other_key} does not match certificate {good_cert}"]
    (expired,) = checks(report, "listen.http", "problem")
    assert expired.startswith(f"TLS certificate {expired_cert} (CN=old) expired on ")
    assert good_key.exists()


def test_unreachable_postgres_and_redis_are_problems(tmp_path):
    pg_port, redis_port = free_port(), free_port()  # nothing listens there
    config = config_file(
        tmp_path,
        f"""[storage]
backend = "postgres"
dsn = "host=127.0.0.1 port={pg_port} user=coffeechat dbname=coffeechat connect_timeout=5"
[presence]
backend = "redis"
redis = "redis://127.0.0.1:{redis_port}/0"
timeout = 1.0
[listen]
cim = []
ws = []
http = []
""",
    )
    started = time.monotonic()
    status, text = doctor(config, as_json=False)
    assert time.monotonic() - started < 60
    assert status == 1
    lines = text.splitlines()
    database = [line for line in lines if line.startswith("problem  database: cannot open postgres")]
    assert len(database) == 1 and f"port={pg_port}" in database[0] and "PostgreSQL running" in database[0]
    presence = [line for line in lines if line.startswith("problem  presence: cannot reach Redis")]
    assert len(presence) == 1 and f"127.0.0.1:{redis_port}" in presence[0]
    assert lines[-1] == "2 problem(s) found."


def test_a_config_that_does_not_load_is_reported_as_json(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nlog_format = "xml"\n')
    status, report = doctor(config)
    assert status == 1
    assert report["ok"] is False
    assert checks(report, "config", "problem") == ["server.log_format must be 'text' or 'json', got 'xml'"]


@pytest.mark.parametrize("as_json", [True, False])
def test_an_unknown_user_is_a_problem(tmp_path, as_json):
    config = config_file(tmp_path, "[listen]\ncim = []\nws = []\nhttp = []\n")
    status, report = doctor(config, "--user", "no-such-user-here", as_json=as_json)
    assert status == 1
    if as_json:
        assert checks(report, "user", "problem") == ["no user 'no-such-user-here' on this machine"]
    else:
        assert "problem  user: no user 'no-such-user-here' on this machine" in report
