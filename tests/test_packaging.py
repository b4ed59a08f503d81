"""Packaging: the Dockerfile and its entry point, the compose files and the configs they mount, the
systemd units, and a wheel built offline that ships the sample config and ``coffeechat init``.

What can run here runs for real (the container's entry point and HEALTHCHECK command, the unit's
ExecStart line, ``systemd-analyze verify``, ``haproxy -c``, a wheel installed and run); ``docker
build`` runs only where a Docker daemon answers, and the unit is started by systemd only where
systemd is the init system."""

from __future__ import annotations

import ast
import fnmatch
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from coffeechat.config import load_config
from coffeechat.ops.doctor import endpoint_args
from tests.test_logs import installed_plugin_is_this_checkouts

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra: pip install '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
ETC = ROOT / "etc"
BIN = Path(sys.executable).parent


def missing(binary: str, why: str) -> None:
    """A binary the test needs is not installed: skip, or fail when ``CI`` is set."""
    message = f"{binary} not found ({why})"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: not skipping)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_with_checkout(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PATH": path, "PYTHONPATH": pythonpath, **extra}


def health(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
    except OSError:
        return False


def wait_for_health(process: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health(port):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"no /health on port {port}:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the node did not stop on SIGTERM") from None


def listener_port(endpoint: str) -> int:
    """The TCP port of a [listen] endpoint string (``haproxy:`` unwrapped)."""
    while endpoint.startswith("haproxy:"):
        endpoint = endpoint[len("haproxy:") :]
    kind, positional, keywords = endpoint_args(endpoint)
    assert kind in ("tcp", "ssl"), endpoint
    return int(keywords.get("port", positional[0]))


# -- the Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
            current = ""
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in dockerfile():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def sample_ports() -> dict[str, int]:
    """The ports the sample config (what `coffeechat init` writes) listens on, per transport."""
    config = load_config(ETC / "coffeechat.toml")
    return {name: listener_port(e[0]) for name, e in config.listen.endpoints.items() if e}


def test_dockerfile_is_multi_stage_and_the_runtime_is_not_root_with_a_healthcheck():
    build, *_, runtime = stages()
    assert len(stages()) >= 2
    assert re.fullmatch(r"\S+ AS build", build[0][1], re.I), build[0]
    runtime_text = "\n".join(f"{i} {a}" for i, a in runtime)
    assert "from=build" in runtime_text  # the runtime takes the build stage's wheels, not its tools
    # no sources in the image: the runtime copies only the entry point script
    assert all(" etc/docker/" in f" {a}" for i, a in runtime if i == "COPY"), runtime_text
    users = [a for i, a in runtime if i == "USER"]
    assert users, "the runtime stage must drop root"
    name = users[-1].split(":")[0]
    assert name not in ("root", "0")
    assert re.search(rf"useradd .*--uid (\d+) .*{name}", runtime_text)
    assert int(re.search(r"--uid (\d+)", runtime_text).group(1)) >= 1000
    # the user comes before what runs: nothing after USER switches back
    order = [i for i, _ in runtime]
    assert order.index("USER") < order.index("ENTRYPOINT") and order.count("USER") == 1
    # the data dir is the user's, mode 0700 (it holds the database and tokens)
    assert re.search(rf"install -d -o {name} -g {name} -m 0700 /var/lib/coffeechat", runtime_text)
    (check,) = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert "CMD " in check and "--interval=" in check
    env = " ".join(a for i, a in runtime if i == "ENV")
    url = re.search(r"COFFEECHAT_HEALTH_URL=(\S+)", env).group(1)
    assert url == f"http://127.0.0.1:{sample_ports()['http']}/health"
    (exposed,) = [a for i, a in runtime if i == "EXPOSE"]
    assert {int(p) for p in exposed.split()} == set(sample_ports().values())
    assert re.search(r"COFFEECHAT_CONFIG=/etc/coffeechat/coffeechat.toml", env)


def setup_py_sources() -> set[str]:
    """The top-level paths setup.py builds from: its packages' folders and the sample config."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("packages", "package_dir")}
    folders = set()
    for package in keywords["packages"]:
        mapped = keywords["package_dir"].get(package)
        folders.add((mapped or package.replace(".", "/")).split("/")[0])
    return folders | {"setup.py", "pyproject.toml", "etc/coffeechat.toml"}


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pattern.lstrip("/")) for p in prefixes for pattern in patterns)


def test_dockerfile_copies_what_the_wheel_is_built_from_and_dockerignore_keeps_it():
    copied = set()
    for instruction, args in dockerfile():
        if instruction == "COPY" and "--from" not in args:
            *sources, _target = [a for a in shlex.split(args) if not a.startswith("--")]
            copied.update(sources)
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
        assert not dockerignored(source), f".dockerignore leaves {source} out of the build context"
    assert setup_py_sources() <= copied, f"the build stage misses {setup_py_sources() - copied}"
    for local_state in ("coffeechat-data", ".git", "tests"):
        assert dockerignored(local_state)


def docker_answers() -> str | None:
    """Why ``docker build`` cannot run here, or None when a daemon answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "the docker command is not installed"
    result = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return f"no Docker daemon answers `docker info`: {(result.stderr or result.stdout).strip()[-300:]}"
    return None


def test_docker_image_builds_runs_as_its_user_and_gets_healthy(tmp_path):
    why = docker_answers()
    if why:
        pytest.skip(why + " (skipped under CI too: its machines run no Docker daemon)")
    tag = f"coffeechat-test:{os.getpid()}"
    name = f"coffeechat-test-{os.getpid()}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    try:
        subprocess.run(["docker", "run", "-d", "--name", name, tag], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 120
        state = ""
        while time.monotonic() < deadline and state != "healthy":
            state = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", name], capture_output=True, text=True
            ).stdout.strip()
            time.sleep(2)
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
        assert state == "healthy", logs
        uid = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True).stdout.strip()
        assert uid not in ("", "0")
        users = subprocess.run(
            ["docker", "exec", name, "coffeechat", "--config", "/var/lib/coffeechat/coffeechat.toml", "user", "list"],
            capture_output=True,
            text=True,
        )
        assert users.returncode == 0, users.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_the_entrypoint_writes_a_config_and_runs_the_node_and_the_healthcheck_sees_it(tmp_path):
    """etc/docker/entrypoint.sh as the container runs it: no config mounted, so `coffeechat init`
    writes one with fresh secrets into the data dir; the flags go to twistd; the Dockerfile's
    HEALTHCHECK command passes while the node runs and fails once it stopped."""
    installed_plugin_is_this_checkouts()
    data = tmp_path / "var-lib-coffeechat"
    data.mkdir(mode=0o700)
    cim, http = free_port(), free_port()
    env = env_with_checkout(COFFEECHAT_CONFIG=str(tmp_path / "not-mounted.toml"), COFFEECHAT_DATA=str(data))
    entrypoint = ETC / "docker" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    ran = subprocess.run([str(entrypoint), "echo", "a command"], env=env, capture_output=True, text=True)
    assert ran.stdout == "a command\n" and not (data / "coffeechat.toml").exists()

    log = tmp_path / "node.log"
    with open(log, "wb") as out:
        flags = ["--cim", f"tcp:{cim}:interface=127.0.0.1", "--http", f"tcp:{http}:interface=127.0.0.1", "--ws", "none"]
        process = subprocess.Popen(
            [str(entrypoint), *flags], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_health(process, http, log)
        written = data / "coffeechat.toml"
        assert written.stat().st_mode & 0o777 == 0o600
        assert re.search(r'(?m)^admin_token = "[\w-]{40,}"$', written.read_text())
        assert f'data_dir = "{data}"' in written.read_text()
        (check,) = [a for i, a in stages()[-1] if i == "HEALTHCHECK"]
        command = check[check.index("CMD ") + 4 :]
        healthy = subprocess.run(
            ["sh", "-c", command], env={**env, "COFFEECHAT_HEALTH_URL": f"http://127.0.0.1:{http}/health"}
        )
        assert healthy.returncode == 0
    finally:
        stop(process)
    assert "node stopped" in log.read_text()
    unhealthy = subprocess.run(
        ["sh", "-c", command],
        env={**env, "COFFEECHAT_HEALTH_URL": f"http://127.0.0.1:{http}/health"},
        capture_output=True,
    )
    assert unhealthy.returncode == 1


# -- the compose files


def compose(name: str) -> dict:
    with open(ETC / name) as f:
        return yaml.safe_load(f)


def mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (short syntax)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def published(service: dict, side: int = -1) -> set[int]:
    """The container ports a service publishes (``side=0``: the host's ports)."""
    return {int(str(p).split("/")[0].split(":")[side]) for p in service.get("ports", [])}


def node_config(service: dict):
    """The config a chat service mounts, loaded as the node would, and checked against the service."""
    target = service["environment"]["COFFEECHAT_CONFIG"]
    source = mounts(service)[target]
    assert source.startswith("./"), source
    config = load_config(ETC / source)
    assert config.data_path.as_posix() == "/var/lib/coffeechat"
    assert "/var/lib/coffeechat" in mounts(service), "the data dir must be a volume"
    assert "--admin-token" in service["command"]
    assert "${POSTGRES_PASSWORD" in service["environment"]["PGPASSWORD"]
    return config


def check_backends(config, services: dict) -> None:
    dsn = urlsplit(config.storage.dsn)
    postgres = services["postgres"]["environment"]
    assert config.storage.backend == "postgres"
    assert dsn.hostname in services and services[dsn.hostname]["image"].startswith("postgres:")
    assert dsn.username == postgres["POSTGRES_USER"] and dsn.path == "/" + postgres["POSTGRES_DB"]
    assert dsn.password is None  # PGPASSWORD, from the .env file, not in a mounted file
    assert "${POSTGRES_PASSWORD" in postgres["POSTGRES_PASSWORD"]
    redis = urlsplit(config.presence.redis)
    assert config.presence.backend == "redis"
    assert redis.hostname in services and services[redis.hostname]["image"].startswith("redis:")


def check_chat_service(service: dict, config) -> None:
    assert service["build"]["context"] == ".." and (ETC / service["build"]["context"] / "Dockerfile").is_file()
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    http = listener_port(config.listen.http[0])
    assert f"127.0.0.1:{http}/health" in " ".join(service["healthcheck"]["test"])
    assert "user" not in service or service["user"] not in ("root", "0")


def test_compose_runs_one_node_on_postgres_and_redis_with_the_config_it_mounts():
    spec = compose("compose.yaml")
    services = spec["services"]
    assert set(services) == {"chat", "postgres", "redis"}
    chat = services["chat"]
    config = node_config(chat)
    check_backends(config, services)
    check_chat_service(chat, config)
    ports = {listener_port(e[0]) for e in config.listen.endpoints.values() if e}
    assert published(chat) == ports  # every listener reachable, nothing published that nobody serves
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    volumes = {source for s in services.values() for target, source in mounts(s).items() if not source.startswith(".")}
    assert volumes <= set(spec["volumes"])


def haproxy_servers() -> dict[str, list[tuple[str, str, int, bool, int]]]:
    """backend -> (server name, address, port, sends a PROXY header, health check port)."""
    backends: dict[str, list] = {}
    backend = None
    for line in (ETC / "haproxy-coffeechat.cfg").read_text().splitlines():
        words = line.split()
        if words[:1] == ["backend"]:
            backend = words[1]
            backends[backend] = []
        elif words[:1] == ["server"] and backend:
            host, port = words[2].rsplit(":", 1)
            check_port = int(words[words.index("port") + 1])
            backends[backend].append(
                (words[1], host, int(port), any(w.startswith("send-proxy") for w in words), check_port)
            )
    return backends


def test_compose_two_nodes_behind_haproxy_match_its_config_and_share_files():
    spec = compose("compose-two-nodes.yaml")
    services = spec["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("chat-")}
    assert sorted(nodes) == ["chat-1", "chat-2"]
    network = spec["networks"]["chat"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(network["subnet"]), ipaddress.ip_network(network["ip_range"])
    configs = {}
    for name, service in nodes.items():
        config = configs[name] = node_config(service)
        check_backends(config, services)
        check_chat_service(service, config)
        assert config.server.node_name == name  # its name in Redis: unique and stable
        address = ipaddress.ip_address(service["networks"]["chat"]["ipv4_address"])
        assert address in subnet and address not in dynamic  # no other container can take it
        assert mounts(service)["/var/lib/coffeechat/files"] == "files"  # one upload store for both
        files = config.section("files")
        assert files is None or files.storage.get("backend", "local") == "local" and not files.storage.get("path")
    assert len({mounts(s)["/var/lib/coffeechat"] for s in nodes.values()}) == 2  # each its own data volume

    haproxy = services["haproxy"]
    assert mounts(haproxy)["/usr/local/etc/haproxy/haproxy.cfg"] == "./haproxy-coffeechat.cfg"
    backends = haproxy_servers()
    expected = set()
    for name, service in nodes.items():
        address = service["networks"]["chat"]["ipv4_address"]
        config = configs[name]
        http = listener_port(config.listen.http[0])
        for transport in ("cim", "ws"):
            endpoint = config.listen.endpoints[transport][0]
            expected.add((name, address, listener_port(endpoint), endpoint.startswith("haproxy:"), http))
    assert {server for servers in backends.values() for server in servers} == expected
    frontends = re.findall(r"(?m)^\s*bind :(\d+)", (ETC / "haproxy-coffeechat.cfg").read_text())
    assert published(haproxy) == {int(p) for p in frontends}
    for name, service in nodes.items():  # each node's HTTP (admin API, /metrics) on a host port of its own
        assert published(service) == {listener_port(configs[name].listen.http[0])}
    assert len(set.union(*(published(s, side=0) for s in nodes.values()))) == len(nodes)


def test_the_haproxy_config_the_two_node_compose_mounts_is_valid():
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        missing("haproxy", "Debian's haproxy package checks the config with -c")
    result = subprocess.run([haproxy, "-c", "-f", str(ETC / "haproxy-coffeechat.cfg")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- systemd


def unit_copy(folder: Path, twistd: str) -> Path:
    """The units, with ExecStart's twistd where this machine has it (pip puts it in
    /usr/local/bin on Debian; a virtualenv elsewhere)."""
    for name in ("coffeechat.service", "coffeechat.socket"):
        text = (ETC / name).read_text()
        (folder / name).write_text(text.replace("/usr/local/bin/twistd", twistd))
    return folder / "coffeechat.service"


def exec_start() -> list[str]:
    line = next(ln for ln in (ETC / "coffeechat.service").read_text().splitlines() if ln.startswith("ExecStart="))
    return shlex.split(line.partition("=")[2])


def installed_twistd() -> str:
    return str((BIN / "twistd").resolve()) if (BIN / "twistd").exists() else shutil.which("twistd") or "twistd"


def test_systemd_units_verify_clean(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze", "Debian's systemd package; it checks the units")
    service = unit_copy(tmp_path, installed_twistd())
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(service), str(tmp_path / "coffeechat.socket")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "coffeechat" in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr
    text = service.read_text()
    for hardening in ("NoNewPrivileges=true", "ProtectSystem=strict", "User=coffeechat", "UMask=0077"):
        assert hardening in text
    assert "ReadWritePaths=/var/lib/coffeechat" in text or "StateDirectory=coffeechat" in text


def test_the_units_exec_start_runs_the_node(tmp_path):
    """The command systemd runs, word for word but for the config path, serves and stops on SIGTERM."""
    installed_plugin_is_this_checkouts()
    argv = exec_start()
    assert argv[0] == "/usr/local/bin/twistd" and "--nodaemon" in argv and "--pidfile=" in argv
    config_at = argv.index("--config") + 1
    assert argv[config_at] == "/etc/coffeechat/coffeechat.toml"
    http = free_port()
    config = tmp_path / "coffeechat.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[listen]\ncim = []\nws = []\n'
        f'http = ["tcp:{http}:interface=127.0.0.1"]\n'
    )
    argv[0], argv[config_at] = installed_twistd(), str(config)
    log = tmp_path / "journal.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=tmp_path, env=env_with_checkout(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_health(process, http, log)
    finally:
        status = stop(process)
    assert status in (0, -signal.SIGTERM), log.read_text()
    assert "node stopped" in log.read_text()


def test_systemd_starts_the_unit(tmp_path):
    """Where systemd runs this machine: the unit as shipped, started by systemd, with a drop-in for
    what a test must change (the config, the user, the paths under /tmp)."""
    if not Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is not the init system here (no /run/systemd/system): systemd-analyze verify only")
    if os.geteuid() != 0:
        pytest.skip("starting a system unit needs root")
    installed_plugin_is_this_checkouts()
    name = f"coffeechat-test-{os.getpid()}"
    units = Path("/run/systemd/system")
    http = free_port()
    config = tmp_path / "coffeechat.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[listen]\ncim = []\nws = []\n'
        f'http = ["tcp:{http}:interface=127.0.0.1"]\n'
    )
    tmp_path.chmod(0o755)
    (units / f"{name}.service").write_text((ETC / "coffeechat.service").read_text())
    dropin = units / f"{name}.service.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "test.conf").write_text(
        f"""[Service]
User=root
Group=root
WorkingDirectory={tmp_path}
ExecStart=
ExecStart={installed_twistd()} --nodaemon --pidfile= coffeechat --config {config}
Environment=PYTHONPATH={ROOT}
ReadWritePaths={tmp_path}
PrivateTmp=false
ProtectHome=false
"""
    )
    try:
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(["systemctl", "start", name], check=True, timeout=60)
        deadline = time.monotonic() + 60
        while not health(http) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health(http), subprocess.run(["journalctl", "-u", name, "-n", "50"], capture_output=True, text=True)
        subprocess.run(["systemctl", "stop", name], check=True, timeout=60)
        state = subprocess.run(["systemctl", "is-failed", name], capture_output=True, text=True).stdout.strip()
        assert state != "failed"
    finally:
        subprocess.run(["systemctl", "stop", name], capture_output=True)
        shutil.rmtree(dropin, ignore_errors=True)
        (units / f"{name}.service").unlink(missing_ok=True)
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)


# -- the wheel


def test_a_wheel_built_offline_ships_the_sample_config_and_installs_coffeechat_init(tmp_path):
    """Built from exactly what the Dockerfile's build stage copies (so the image builds too), with no
    network (no build isolation, no index), installed into a directory of its own, run outside the checkout."""
    source = tmp_path / "src"
    for path in sorted(setup_py_sources()):
        if (ROOT / path).is_dir():
            shutil.copytree(ROOT / path, source / path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, source / path)
    wheels = tmp_path / "wheels"
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        env=offline,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("coffeechat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("coffeechat/ops/coffeechat.toml") == (ROOT / "etc" / "coffeechat.toml").read_bytes()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "twisted/plugins/coffeechat_plugin.py" in names
    assert {"coffeechat/ops/init.py", "coffeechat/ops/doctor.py", "coffeechat/ops/logs.py"} <= names
    assert re.search(r"(?m)^coffeechat = coffeechat.admin:main$", entry_points)

    # into a directory of its own (no venv: Debian's python3 needs python3-venv for one), its
    # dependencies from this Python's site-packages
    target = tmp_path / "installed"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        env=offline,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    script = target / "bin" / "coffeechat"
    assert script.is_file(), sorted(p.name for p in target.iterdir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(target)}
    init = subprocess.run(
        [str(script), "init", "--config", "chat.toml", "--data-dir", "data"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    assert init.stdout.startswith(f"wrote {elsewhere / 'chat.toml'} (mode 0600), fresh secrets in http.admin_token")
    written = (elsewhere / "chat.toml").read_text()
    assert written.count("\n# ") > 100  # the commented sample, not a bare file
    where = subprocess.run(
        [sys.executable, "-c", "import coffeechat.ops.init as m; print(m.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(target)), where  # the wheel's code ran, not the checkout's
    check = subprocess.run(
        [str(script), "--config", "chat.toml", "check", "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert '"name": "config"' in check.stdout and "Traceback" not in check.stderr, check.stderr
