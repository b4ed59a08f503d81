"""``[server] log_format = "json"``: a real ``twistd -n coffeechat`` writes one JSON object per line,
to stdout or to its ``--logfile``, a failure with its traceback (coffeechat/ops/logs.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from twisted.logger import Logger, LogLevel, globalLogPublisher

from coffeechat.ops.logs import MAX_FIELD_CHARS, event_as_dict

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed_plugin_is_this_checkouts() -> None:
    """twistd finds its plugins in the installed ``twisted/plugins`` first: a stale install runs
    old code, whatever PYTHONPATH says."""
    import twisted.plugins

    for folder in twisted.plugins.__path__:
        plugin = Path(folder) / "coffeechat_plugin.py"
        if plugin.is_file():
            mine = ROOT / "twisted" / "plugins" / "coffeechat_plugin.py"
            if plugin.resolve() != mine.resolve() and plugin.read_bytes() != mine.read_bytes():
                pytest.fail(f"{plugin} is not this checkout's: run `pip install .` (the README's install command)")
            return


def twistd(cwd: Path, *args: str, options: tuple[str, ...] = ()) -> subprocess.Popen:
    """``twistd --pidfile= -n OPTIONS coffeechat ARGS`` in ``cwd``, stdout and stderr to cwd/stdout.log."""
    installed_plugin_is_this_checkouts()
    script = Path(sys.executable).parent / "twistd"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with open(cwd / "stdout.log", "ab") as out:
        return subprocess.Popen(
            [str(script), "--pidfile=", "-n", *options, "coffeechat", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def write_config(path: Path, http_port: int, cim_port: int) -> Path:
    path.write_text(
        f"""[server]
data_dir = "data"
log_format = "json"
[auth]
scrypt_n = 1024
[listen]
cim = ["tcp:{cim_port}:interface=127.0.0.1"]
http = ["tcp:{http_port}:interface=127.0.0.1"]
ws = []
"""
    )
    return path


def wait_until(process: subprocess.Popen, ready, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"{what} did not happen:\n{log.read_text(errors='replace') if log.exists() else ''}")


def records(path: Path) -> list[dict]:
    """Every line of ``path`` as JSON: a line that is not one object fails the test."""
    lines = path.read_text().splitlines()
    assert lines, f"{path} is empty"
    found = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path}:{number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"time", "level", "namespace", "text"} <= set(record), line
        found.append(record)
    return found


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("twistd did not stop on SIGTERM") from None


def test_a_running_node_logs_json_lines_to_stdout(tmp_path):
    http, cim = free_port(), free_port()
    config = write_config(tmp_path / "coffeechat.toml", http, cim)
    process = twistd(tmp_path, "--config", str(config))
    health = f"http://127.0.0.1:{http}/health"

    def answers() -> bool:
        try:
            return urllib.request.urlopen(health, timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_until(process, answers, "/health answering", tmp_path / "stdout.log")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{http}/no-such-page", timeout=5)
    finally:
        stop(process)
    log = records(tmp_path / "stdout.log")
    texts = [r["text"] for r in log]
    started = next(r for r in log if r["namespace"] == "coffeechat.node" and "started with features" in r["text"])
    assert started["level"] == "info"
    assert started["fields"]["node"]  # the event's own fields, by name
    assert any("/no-such-page" in t and " 404 " in t for t in texts), texts
    assert any("node stopped" in t for t in texts), texts
    assert all(r["time"].endswith("+00:00") for r in log)


def test_a_failure_is_logged_with_its_traceback_to_the_logfile(tmp_path):
    """A node that cannot listen (the port is taken) logs why, traceback included, and exits."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        config = write_config(tmp_path / "coffeechat.toml", free_port(), taken.getsockname()[1])
        process = twistd(tmp_path, "--config", str(config), options=("--logfile", "node.log"))
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("twistd kept running on a taken port") from None
    finally:
        taken.close()
    log = records(tmp_path / "node.log")  # --logfile: the JSON goes there, not to stdout
    failed = [r for r in log if r["text"] == "CoffeeChat could not start"]
    assert len(failed) == 1, [r["text"] for r in log]
    record = failed[0]
    assert record["level"] == "critical"
    assert "CannotListenError" in record["error"]
    assert record["traceback"].startswith("Traceback")
    assert "CannotListenError" in record["traceback"]
    assert "\n" in record["traceback"]  # the whole traceback, inside the one line's JSON string
    assert "CoffeeChat could not start" not in (tmp_path / "stdout.log").read_text()


def test_event_as_dict_keeps_named_scalars_and_the_failure():
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        log = Logger(namespace="coffeechat.test")
        try:
            {}["missing"]
        except KeyError:
            log.failure("handling {what} failed", what="a thing", big="x" * (MAX_FIELD_CHARS + 10), obj=object())
        log.warn("plain {n}", n=3)
    finally:
        globalLogPublisher.removeObserver(events.append)
    failure, plain = (event_as_dict(e) for e in events if e.get("log_namespace") == "coffeechat.test")
    assert failure["level"] == LogLevel.critical.name
    assert failure["text"] == "handling a thing failed"
    assert failure["fields"]["what"] == "a thing"
    assert len(failure["fields"]["big"]) == MAX_FIELD_CHARS
    assert "obj" not in failure["fields"]  # not a scalar: its repr says nothing a shipper can use
    assert failure["error"] == "KeyError: 'missing'"
    assert "Traceback" in failure["traceback"] and "KeyError" in failure["traceback"]
    assert plain == {
        "time": plain["time"],
        "level": "warn",
        "namespace": "coffeechat.test",
        "text": "plain 3",
        "fields": {"n": 3},
    }
    json.dumps(failure)  # serialisable as it is
