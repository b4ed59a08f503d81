"""The layers, as the imports show them (docs/architecture.md): the core imports no transport and no
database driver, features no transport or backend, the client library no server code, and every
built-in feature and transport is registered once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from coffeechat.config import DEFAULT_FEATURES, Config
from coffeechat.plugins import BUILTIN_FEATURES, feature_module, transports
from coffeechat.schema import RESPONSE_OF, TABLE, Cmd

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = ("sqlite3", "psycopg", "txredisapi", "hiredis", "autobahn", "twisted.web")


def imports_of(path: Path) -> set[str]:
    """The modules a file imports (relative imports resolved within its package)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("coffeechat", *path.relative_to(ROOT).parent.parts))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                found.add(node.module or "")
    return found


def files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "_pb2" not in p.name)


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in paths
        for name in sorted(imports_of(p))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


CORE = [p for p in files("coffeechat") if "testing" not in p.parts]


def test_the_core_imports_no_transport_and_no_database_driver():
    assert offending(CORE, (*DRIVERS, "coffeechat.protocols", "coffeechat.backends")) == []


def test_the_client_library_imports_no_server_code():
    client = ROOT / "protocols" / "client.py"
    allowed = {"coffeechat.schema", "coffeechat.schema.jsonform", "coffeechat.protocols.framing",
               "coffeechat.protocols.lean_websocket"}  # fmt: skip
    ours = {name for name in imports_of(client) if name.startswith("coffeechat")}
    assert ours <= allowed, ours - allowed
    assert (
        offending([ROOT / "protocols" / "lean_websocket.py", ROOT / "protocols" / "framing.py"], ("coffeechat",)) == []
    )


def test_backends_do_not_reach_into_features_or_transports():
    assert offending(files("backends"), ("coffeechat.features", "coffeechat.protocols", "coffeechat.node")) == []


@pytest.mark.parametrize("name", sorted(BUILTIN_FEATURES))
def test_every_built_in_feature_is_a_module_with_setup_and_is_on_by_default(name):
    module = feature_module(name)
    assert callable(module.setup) and module.__doc__
    assert name in DEFAULT_FEATURES


def test_every_request_of_the_schema_is_served_or_known_to_wait_for_its_feature():
    """With every built-in feature on, every request of the schema is served (the VoIP ones by
    calls): nothing in the schema is dead."""
    from tests.memory_node import MemoryNode

    served = set(MemoryNode().core.registry.commands)
    unserved = {Cmd(c).name for c, command in TABLE.items() if not command.push and c not in served}
    requests_without_answer = {"MSG_DATA_ACK", "MSG_READ_ACK", "MSG_TYPING_REQ"}
    unserved -= {name for name in unserved if name.endswith(("_RSP", "_NOTIFY"))} - requests_without_answer
    assert unserved <= {"ERROR_RSP"}, unserved
    assert all(RESPONSE_OF[c] in TABLE for c in RESPONSE_OF)


def test_one_registry_of_transports_makes_the_listen_section_and_the_flags():
    from twisted.plugins.coffeechat_plugin import options

    names = list(transports())
    assert Config().keys_of(Config().listen) == names
    flags = options()()
    for name in names:
        assert hasattr(flags, f"opt_{name}")
