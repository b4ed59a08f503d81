"""Configuration: one TOML file, one class per section that reads, validates and documents its keys.

Every key has a typed default, so ``twistd -n coffeechat`` runs with no file at all; unknown keys
and bad values fail at start with a message naming them (``ConfigError``).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration names an unknown key or holds a bad value."""


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")


MAX_WORKERS = 256

#: Integer keys that also take a word.
_INT_WORDS = {"server.workers": ("auto",)}


@dataclass
class ServerConfig:
    """[server]: where the node keeps its files and what it calls itself."""

    data_dir: str = "coffeechat-data"
    node_name: str = ""
    drain_delay: float = 0.0  # SIGTERM: /ready answers 503 this long before clients are told to go
    drain_timeout: float = 10.0  # SIGTERM: the whole drain (delay, goodbyes, flushes) takes at most this
    log_format: str = "text"  # "text" (twistd's lines) or "json" (one JSON object per line)
    workers: int = 1  # processes sharing the listening ports (coffeechat/workers.py); "auto": one per core

    @property
    def worker_count(self) -> int:
        """``workers`` as a number: ``auto`` is the cores this process may run on."""
        if self.workers == "auto":
            try:
                return len(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                return os.cpu_count() or 1
        return int(self.workers)

    def validate(self) -> None:
        if self.workers != "auto" and not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"server.workers must be 'auto' or within 1..{MAX_WORKERS}, got {self.workers!r}")
        if not self.data_dir:
            raise ConfigError("server.data_dir must not be empty")
        if self.drain_delay < 0:
            raise ConfigError("server.drain_delay must be >= 0")
        _positive("server.drain_timeout", self.drain_timeout)
        if self.drain_delay >= self.drain_timeout:
            raise ConfigError("server.drain_delay must be shorter than server.drain_timeout")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"server.log_format must be 'text' or 'json', got {self.log_format!r}")


class ListenConfig:
    """[listen]: Twisted endpoint strings per transport, e.g. ``cim = ["tcp:8000"]``,
    ``"ssl:8443:privateKey=key.pem"``, ``"systemd:domain=INET:index=0"``.  The keys are the
    transports' names (coffeechat/plugins.py: cim, http, ws, and third parties'); an empty list
    turns a listener off."""

    def __init__(self) -> None:
        from coffeechat.plugins import transports

        self.endpoints: dict[str, list[str]] = {name: list(t.default) for name, t in transports().items()}

    def __getattr__(self, name: str) -> list[str]:
        endpoints = self.__dict__.get("endpoints", {})
        if name in endpoints:
            return endpoints[name]
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ListenConfig) and other.endpoints == self.endpoints

    def __repr__(self) -> str:
        return f"ListenConfig({self.endpoints!r})"

    def keys(self) -> list[str]:
        return list(self.endpoints)

    def set(self, name: str, value: list[str]) -> None:
        self.endpoints[name] = value

    def default(self, name: str) -> list[str]:
        return self.endpoints[name]

    def validate(self) -> None:
        for name, endpoints in self.endpoints.items():
            for endpoint in endpoints:
                if not isinstance(endpoint, str) or ":" not in endpoint:
                    raise ConfigError(f"listen.{name}: {endpoint!r} is not an endpoint string like 'tcp:8000'")


@dataclass
class StorageConfig:
    """[storage]: which backend keeps accounts and messages, and its tuning."""

    backend: str = "sqlite"
    path: str = ""  # SQLite file; default <data_dir>/coffeechat.sqlite3
    # 0: a batch is what queued while the writer committed the previous one (issue 16)
    group_commit_ms: float = 0.0
    max_batch: int = 512
    reader_threads: int = 4
    synchronous: str = "full"
    dsn: str = ""  # PostgreSQL (backend "postgres"): libpq connection string or URI

    def validate(self) -> None:
        if self.group_commit_ms < 0:
            raise ConfigError("storage.group_commit_ms must be >= 0")
        _positive("storage.max_batch", self.max_batch)
        _positive("storage.reader_threads", self.reader_threads)
        if self.synchronous not in ("full", "normal"):
            raise ConfigError("storage.synchronous must be 'full' or 'normal'")


@dataclass
class PresenceConfig:
    """[presence]: who is online, and the node-to-node path.  "memory" serves one node; "redis"
    lets several nodes (active + standby, or N active) share presence and deliver to each other."""

    backend: str = "memory"
    redis: str = "redis://127.0.0.1:6379/0"  # redis://[:password@]host:port/db
    sentinels: list[str] = field(default_factory=list)  # ["host:port", ...]: find the master through Sentinel
    sentinel_master: str = "mymaster"
    key_prefix: str = "coffeechat:"
    lease_seconds: float = 20.0  # a dead node's users look offline within this (+ lease/4)
    timeout: float = 5.0  # a Redis command that takes longer fails
    publish_queue: int = 10000  # node-to-node payloads kept while Redis is unreachable

    def validate(self) -> None:
        if self.backend not in ("memory", "redis"):
            raise ConfigError(f"presence.backend: unknown backend {self.backend!r} (known: memory, redis)")
        if not self.redis.startswith(("redis://", "unix://")):
            raise ConfigError("presence.redis must be a redis:// or unix:// URL")
        for address in self.sentinels:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"presence.sentinels: {address!r} is not host:port")
        if self.lease_seconds < 2:
            raise ConfigError("presence.lease_seconds must be at least 2")
        _positive("presence.timeout", self.timeout)
        _positive("presence.publish_queue", self.publish_queue)


@dataclass
class LimitsConfig:
    """[limits]: sizes, timeouts and rates that protect the server from its clients."""

    max_frame_bytes: int = 256 * 1024
    max_text_bytes: int = 12 * 1024
    max_body_bytes: int = 64 * 1024
    max_devices: int = 10
    login_timeout: float = 15.0
    idle_timeout: float = 60.0
    messages_per_second: float = 50.0
    message_burst: int = 200
    requests_per_second: float = 100.0
    request_burst: int = 400
    # Per user, across all their devices on one node (each node of a cluster has its own).
    user_messages_per_second: float = 100.0
    user_message_burst: int = 400
    user_requests_per_second: float = 200.0
    user_request_burst: int = 800
    redeliver_after: float = 15.0
    history_page_default: int = 20
    history_page_max: int = 100
    users_listed_max: int = 1000
    # Connections and output (docs/limits.md#connections-and-output)
    max_output_bytes: int = 8 * 1024 * 1024  # queued toward a logged-in client; over it: cut off
    max_output_bytes_before_login: int = 64 * 1024  # the same before login (answers are small then)
    close_timeout: float = 5.0  # a close whose output has not drained by then is aborted
    max_unauthenticated_per_address: int = 64  # CIM connections not logged in, per address
    max_connections_per_address: int = 1024  # CIM connections in all, per address
    unlimited_addresses: list[str] = field(default_factory=list)  # e.g. a TCP balancer: no caps

    def validate(self) -> None:
        for f in fields(self):
            if f.name != "unlimited_addresses":
                _positive(f"limits.{f.name}", getattr(self, f.name))
        for network in self.unlimited_addresses:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"limits.unlimited_addresses: {network!r} is not an address or network like '10.0.0.0/8'"
                ) from None
        if self.max_frame_bytes < 16:
            raise ConfigError("limits.max_frame_bytes must be at least 16 (the header)")
        if self.max_frame_bytes > 10 * 1024 * 1024:
            raise ConfigError("limits.max_frame_bytes must be at most 10 MiB")


@dataclass
class HttpConfig:
    """[http]: the HTTP API.  The admin API answers only with ``Authorization: Bearer <admin_token>``
    and is off while admin_token is empty."""

    admin_token: str = ""
    max_request_bytes: int = 64 * 1024
    header_timeout: float = 10.0  # from a request's first byte to the end of its headers
    body_timeout: float = 30.0  # from the end of the headers to the end of the body
    upload_timeout: float = 900.0  # the same, for a route that takes uploads (POST /files, tus PATCH)
    idle_timeout: float = 15.0  # a connection with no request under way
    max_connections_per_address: int = 64
    # Proxies whose X-Forwarded-For names the client (HTTP API, WebSocket handshake): docs/tls.md
    trusted_proxies: list[str] = field(default_factory=list)

    def validate(self) -> None:
        for f in fields(self):
            if f.name not in ("admin_token", "trusted_proxies"):
                _positive(f"http.{f.name}", getattr(self, f.name))
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"http.trusted_proxies: {network!r} is not an address or network like '10.0.0.0/8'"
                ) from None


@dataclass
class WebSocketConfig:
    """[websocket]: the CIM frames over WebSocket (its own port, and a path on the HTTP port)."""

    http_path: str = "/ws"
    allowed_origins: list[str] = field(default_factory=list)
    compression: bool = True

    def validate(self) -> None:
        if self.http_path and (not self.http_path.startswith("/") or self.http_path.count("/") != 1):
            raise ConfigError(f"websocket.http_path must be one path segment like '/ws', got {self.http_path!r}")
        for origin in self.allowed_origins:
            if origin != "*" and "://" not in origin:
                raise ConfigError(
                    f"websocket.allowed_origins: {origin!r} is not an origin like 'https://chat.example.com'"
                )


#: The features a node loads unless the config says otherwise (coffeechat/features/).
DEFAULT_FEATURES = (
    "accounts",
    "messages",
    "groups",
    "group_reads",
    "recall",
    "typing",
    "dnd",
    "pins",
    "custom_messages",
    "forward",
    "group_requests",
    "friends",
    "online_status",
    "search",
    "deletes",
    "group_mutes",
    "group_tags",
    "directory",
    "blocks",
    "push",
    "moderation",
    "webhooks",
    "bots",
    "files",
    "ice",
    "calls",
    "rooms",
    "metrics",
    "backups",
    "admin_api",
    "analytics",
)


@dataclass
class FeaturesConfig:
    """[features]: the feature modules this node loads: the built-in ones (coffeechat/features/)
    and third parties' (the ``coffeechat.features`` entry-point group), by name."""

    enabled: list[str] = field(default_factory=lambda: list(DEFAULT_FEATURES))

    def validate(self) -> None:
        if len(set(self.enabled)) != len(self.enabled):
            raise ConfigError("features.enabled names a feature twice")


_SECTIONS = {
    "server": ServerConfig,
    "listen": ListenConfig,
    "storage": StorageConfig,
    "presence": PresenceConfig,
    "limits": LimitsConfig,
    "http": HttpConfig,
    "websocket": WebSocketConfig,
    "features": FeaturesConfig,
}


@dataclass
class Config:
    """The whole configuration of a node: the core's sections, and those of its features
    (``section(name)``; also as attributes, ``config.auth``)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    #: the feature sections, by section name (filled from the enabled features' ``Config``)
    sections: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sections:
            self.use_features(self.features.enabled)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(name)

    def section(self, name: str) -> Any:
        """A feature's section, or None when no enabled feature has one by that name."""
        return self.sections.get(name)

    def all_sections(self) -> dict[str, Any]:
        """Every section, the core's then the features', by name."""
        return {**{name: getattr(self, name) for name in _SECTIONS}, **self.sections}

    @staticmethod
    def keys_of(section: Any) -> list[str]:
        """The keys of a section (for the listen section: the transports)."""
        return section.keys() if isinstance(section, ListenConfig) else [f.name for f in fields(section)]

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def sqlite_path(self) -> Path:
        return Path(self.storage.path) if self.storage.path else self.data_path / "coffeechat.sqlite3"

    def validate(self) -> None:
        for name in _SECTIONS:
            getattr(self, name).validate()
        for section in self.sections.values():
            validate = getattr(section, "validate", None)
            if validate is not None:
                validate()
        if self.server.worker_count > 1:
            self._validate_workers()

    def _validate_workers(self) -> None:
        """Several workers are several nodes of one cluster: they need what a cluster needs."""
        workers = self.server.worker_count
        if self.storage.backend == "sqlite":
            raise ConfigError(
                f"server.workers = {workers} needs storage.backend = 'postgres': every worker is a node "
                "of a cluster, and SQLite has one writer per file, which remembers each conversation's "
                "last seq in memory (set server.workers = 1, or move to PostgreSQL: docs/workers.md)"
            )
        if self.presence.backend != "redis":
            raise ConfigError(
                f"server.workers = {workers} needs presence.backend = 'redis': the workers find each "
                "other's users and deliver to them through it (docs/workers.md)"
            )
        for name, endpoints in self.listen.endpoints.items():
            for endpoint in endpoints:
                kind = endpoint
                while kind.startswith("haproxy:"):
                    kind = kind[len("haproxy:") :]
                if kind.partition(":")[0] not in ("tcp", "tcp6", "ssl"):
                    raise ConfigError(
                        f"listen.{name}: {endpoint!r}: with server.workers > 1 every listener must be a TCP "
                        "port (tcp:, tcp6:, ssl:, or haproxy: of those), which the workers share"
                    )

    def set(self, dotted: str, value: Any) -> None:
        """Set ``section.key`` from a command-line flag or test, with the same checks as the file."""
        section_name, _, key = dotted.partition(".")
        _apply_section(self, section_name, {key: value})

    def use_features(self, names: list[str]) -> None:
        """Enable exactly ``names``: their config sections appear, with their defaults."""
        from coffeechat.plugins import feature_sections

        self.features.enabled = list(names)
        known = {}
        for section_name, section_class in feature_sections(names).items():
            existing = self.sections.get(section_name)
            known[section_name] = existing if isinstance(existing, section_class) else section_class()
        self.sections = known


def _coerce(where: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, str) and value in _INT_WORDS.get(where, ()):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            words = "".join(f" or {word!r}" for word in _INT_WORDS.get(where, ()))
            raise ConfigError(f"{where} must be an integer{words}, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, list):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return list(value)
    return value


def _apply_section(config: Config, section_name: str, values: dict[str, Any]) -> None:
    if section_name in _SECTIONS:
        section = getattr(config, section_name)
    else:
        section = config.sections.get(section_name)
        if section is None:
            known = ", ".join([*_SECTIONS, *config.sections])
            raise ConfigError(
                f"unknown section [{section_name}] (known: {known}; a feature's section needs the "
                "feature in [features] enabled)"
            )
    if not isinstance(values, dict):
        raise ConfigError(f"[{section_name}] must be a table")
    if isinstance(section, ListenConfig):
        for key, value in values.items():
            if key not in section.keys():
                raise ConfigError(f"unknown key listen.{key} (known transports: {', '.join(section.keys())})")
            section.set(key, _coerce(f"listen.{key}", [], value))
        return
    known = {f.name for f in fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {section_name}.{key} (known: {', '.join(sorted(known))})")
        setattr(section, key, _coerce(f"{section_name}.{key}", getattr(section, key), value))
    if isinstance(section, FeaturesConfig) and "enabled" in values:
        config.use_features(section.enabled)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``path`` (TOML; None for defaults only), apply ``section.key`` overrides, validate.

    ``[features] enabled`` is read first, so that the enabled features' sections are known."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from e
    overrides = dict(overrides or {})
    config = Config()
    features = data.pop("features", None)
    if features is not None:
        _apply_section(config, "features", features)
    if "features.enabled" in overrides:
        config.set("features.enabled", overrides.pop("features.enabled"))
    elif features is None or "enabled" not in features:
        config.use_features(config.features.enabled)
    for section_name, values in data.items():
        _apply_section(config, section_name, values)
    for dotted, value in overrides.items():
        config.set(dotted, value)
    config.validate()
    return config
