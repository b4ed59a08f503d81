"""Finding the pluggable parts by name: storage and presence backends, transports, features.

The core never imports a transport or a database driver; it names them in the config and loads
them here, as Prosody loads its modules.  Third parties register theirs under the entry-point
groups ``coffeechat.storage``, ``coffeechat.transports`` and ``coffeechat.features``
(docs/backends.md, docs/extending.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from coffeechat.config import ConfigError

BUILTIN_STORAGE = {
    "sqlite": "coffeechat.backends.sqlite:create_store",
    "memory": "coffeechat.backends.memory:create_store",
    "postgres": "coffeechat.backends.postgres:create_store",
}
BUILTIN_PRESENCE = {
    "memory": "coffeechat.backends.presence_memory:create_presence",
    "redis": "coffeechat.backends.presence_redis:create_presence",
}
BUILTIN_FEATURES = {
    "accounts": "coffeechat.features.accounts",
    "messages": "coffeechat.features.messages",
    "groups": "coffeechat.features.groups",
    "group_reads": "coffeechat.features.group_reads",
    "recall": "coffeechat.features.recall",
    "group_requests": "coffeechat.features.group_requests",
    "typing": "coffeechat.features.typing",
    "dnd": "coffeechat.features.dnd",
    "pins": "coffeechat.features.pins",
    "custom_messages": "coffeechat.features.custom_messages",
    "forward": "coffeechat.features.forward",
    "friends": "coffeechat.features.friends",
    "online_status": "coffeechat.features.online_status",
    "search": "coffeechat.features.search",
    "deletes": "coffeechat.features.deletes",
    "group_mutes": "coffeechat.features.group_mutes",
    "group_tags": "coffeechat.features.group_tags",
    "directory": "coffeechat.features.directory",
    "blocks": "coffeechat.features.blocks",
    "push": "coffeechat.features.push",
    "moderation": "coffeechat.features.moderation",
    "webhooks": "coffeechat.features.webhooks",
    "bots": "coffeechat.features.bots",
    "files": "coffeechat.features.files",
    "ice": "coffeechat.features.ice",
    "calls": "coffeechat.features.calls",
    "rooms": "coffeechat.features.rooms",
    "admin_api": "coffeechat.features.admin_api",
    "analytics": "coffeechat.features.analytics",
    "metrics": "coffeechat.features.metrics",
    "backups": "coffeechat.features.backups",
}


@dataclass(frozen=True)
class Transport:
    """A kind of listener: its ``[listen]`` key and ``--<name>`` flag, the factory that builds its
    protocol factory (or Site) from a node, its default endpoints and what it is for."""

    name: str
    factory: str  # "package.module:callable", called with the node
    default: tuple[str, ...]
    description: str


BUILTIN_TRANSPORTS = (
    Transport("cim", "coffeechat.protocols.tcp:CIMServerFactory", ("tcp:8000",), "CIM v1 frames over TCP"),
    Transport(
        "http",
        "coffeechat.protocols.http:create_site",
        ("tcp:18080",),
        "HTTP: web client, registration, login, admin API, and WebSocket at websocket.http_path",
    ),
    Transport("ws", "coffeechat.protocols.websocket:create_factory", ("tcp:8001",), "CIM frames over WebSocket"),
    Transport(
        "metrics",
        "coffeechat.protocols.metrics:create_site",
        (),
        "Prometheus /metrics (and /health, /ready) on a listener of its own (off by default)",
    ),
)


def load_object(spec: str) -> Any:
    """Import ``package.module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@cache
def transports() -> dict[str, Transport]:
    """Every transport, by name: the built-in ones, then those of the ``coffeechat.transports``
    entry points (each loads a :class:`Transport`).  The one list that the ``[listen]`` section,
    twistd's flags, ``coffeechat check`` and the node's listeners are made from."""
    found = {t.name: t for t in BUILTIN_TRANSPORTS}
    for ep in entry_points(group="coffeechat.transports"):
        transport = ep.load()
        if not isinstance(transport, Transport):
            raise ConfigError(f"entry point coffeechat.transports {ep.name!r} is not a coffeechat.plugins.Transport")
        found[transport.name] = transport
    return found


def transport_factory(name: str) -> Any:
    return load_object(transports()[name].factory)


def storage_factory(name: str) -> Any:
    """The ``create_store(reactor, options)`` of the storage backend called ``name``."""
    for ep in entry_points(group="coffeechat.storage"):
        if ep.name == name:
            return ep.load()
    if name in BUILTIN_STORAGE:
        return load_object(BUILTIN_STORAGE[name])
    known = sorted({ep.name for ep in entry_points(group="coffeechat.storage")} | set(BUILTIN_STORAGE))
    raise ConfigError(f"storage.backend: unknown backend {name!r} (known: {', '.join(known)})")


def presence_factory(name: str) -> Any:
    """The ``create_presence(reactor, presence_config, node_name)`` of the presence backend ``name``."""
    if name not in BUILTIN_PRESENCE:
        raise ConfigError(f"presence.backend: unknown backend {name!r} (known: {', '.join(BUILTIN_PRESENCE)})")
    return load_object(BUILTIN_PRESENCE[name])


def feature_module(name: str) -> ModuleType:
    """The module of the feature called ``name`` (docs/extending.md)."""
    for ep in entry_points(group="coffeechat.features"):
        if ep.name == name:
            module = ep.load()
            if not isinstance(module, ModuleType) or not callable(getattr(module, "setup", None)):
                raise ConfigError(f"feature {name!r}: entry point {ep.value!r} is not a module with setup(api)")
            return module
    if name in BUILTIN_FEATURES:
        return importlib.import_module(BUILTIN_FEATURES[name])
    known = sorted({ep.name for ep in entry_points(group="coffeechat.features")} | set(BUILTIN_FEATURES))
    raise ConfigError(f"features.enabled: unknown feature {name!r} (known: {', '.join(known)})")


def feature_sections(names: list[str]) -> dict[str, type]:
    """The config section classes of the features ``names``, by section name."""
    sections: dict[str, type] = {}
    owners: dict[str, str] = {}
    for name in names:
        module = feature_module(name)
        section_class = getattr(module, "Config", None)
        if section_class is None:
            continue
        section_name = getattr(module, "SECTION", name)
        if section_name in owners:
            raise ConfigError(f"features {owners[section_name]} and {name} both claim the section [{section_name}]")
        owners[section_name] = name
        sections[section_name] = section_class
    return sections
