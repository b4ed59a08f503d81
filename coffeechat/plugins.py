"""Finding the pluggable parts by name: storage backends, presence backends and transports.

The core never imports a transport or a database driver; it names them in the config and
loads them here, like Prosody loads its modules.  Third-party storage backends register under
the ``coffeechat.storage`` entry-point group (see docs/backends.md).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
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
TRANSPORTS = {
    "cim": "coffeechat.protocols.tcp:CIMServerFactory",
    "http": "coffeechat.protocols.http:create_site",
    "ws": "coffeechat.protocols.websocket:create_factory",
}


def load_object(spec: str) -> Any:
    """Import ``package.module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


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


def transport_factory(name: str) -> Any:
    return load_object(TRANSPORTS[name])
