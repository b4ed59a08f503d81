"""twistd plugin: ``twistd -n coffeechat [--config coffeechat.toml] ...``.

Kept small and lazy: twistd imports every plugin module to list them, so the server itself is
imported only in makeService.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class BaseOptions(usage.Options):
    """twistd's flags; :func:`options` adds one ``--<transport> ENDPOINT`` per transport of the
    registry (coffeechat/plugins.py)."""

    longdesc = (
        "Run a CoffeeChat node. Settings come from the TOML file given with --config "
        "(see etc/coffeechat.toml); the flags below override it. Endpoints are Twisted "
        "endpoint strings such as tcp:8000 or ssl:8443:privateKey=key.pem; 'none' turns a listener off."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["data-dir", "d", None, "Directory for the database and other files (server.data_dir)."],
        ["admin-token", None, None, "Bearer token that unlocks the HTTP admin API (http.admin_token)."],
        ["worker", None, None, "Internal: run as worker N of a supervisor (server.workers, docs/workers.md)."],
    ]
    transports: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        for name in self.transports:
            self[name] = []

    def postOptions(self) -> None:
        from coffeechat.config import ConfigError, load_config

        overrides = {}
        if self["data-dir"]:
            overrides["server.data_dir"] = self["data-dir"]
        if self["admin-token"]:
            overrides["http.admin_token"] = self["admin-token"]
        for transport in self.transports:
            if self[transport]:
                overrides[f"listen.{transport}"] = [e for e in self[transport] if e != "none"]
        try:
            self.config = load_config(self["config"], overrides)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        if self["worker"] is not None and not self["worker"].isdigit():
            raise usage.UsageError("--worker takes a worker number")

    def plugin_args(self) -> list[str]:
        """The coffeechat flags given, for the workers of a supervisor (same config, same overrides)."""
        args: list[str] = []
        for flag in ("config", "data-dir", "admin-token"):
            if self[flag]:
                args += [f"--{flag}", self[flag]]
        for transport in self.transports:
            for endpoint in self[transport]:
                args += [f"--{transport}", endpoint]
        return args


def options() -> type[BaseOptions]:
    """The Options class, with a repeatable flag per transport (built when twistd asks for it, so
    that listing plugins imports nothing of the server)."""
    from coffeechat.plugins import transports

    def flag(name: str, description: str):
        def add(self: BaseOptions, endpoint: str) -> None:
            self[name].append(endpoint)

        add.__doc__ = f"{description}: listen on ENDPOINT (repeatable; replaces listen.{name})."
        return add

    found = transports()
    namespace = {f"opt_{name}": flag(name, t.description) for name, t in found.items()}
    namespace["transports"] = tuple(found)
    namespace["synopsis"] = "[--config FILE] [--data-dir DIR] " + " ".join(f"[--{n} ENDPOINT]..." for n in found)
    return type("Options", (BaseOptions,), namespace)


@implementer(IServiceMaker, IPlugin)
class CoffeeChatServiceMaker:
    tapname = "coffeechat"
    description = "CoffeeChat instant-messaging server (CIM v1 over TCP and WebSocket, HTTP API)."

    @property
    def options(self) -> type[BaseOptions]:
        return options()

    def makeService(self, options: BaseOptions):
        from twisted.internet import reactor

        from coffeechat.protocols.eventloop import freeze_heap, lean_dispatch, tune_gc
        from coffeechat.service import make_node

        config = options.config
        if options["worker"] is None and config.server.worker_count > 1:
            from coffeechat.workers import Supervisor

            top = Supervisor(config, options.plugin_args(), reactor)
        else:
            shared, offset = None, 0
            if options["worker"] is not None:
                from coffeechat.workers import enter_worker

                offset = int(options["worker"])
                shared = enter_worker(config, offset)
            lean_dispatch(reactor)  # twistd has installed the reactor by now
            tune_gc()
            top = make_node(config, shared=shared, port_offset=offset)
            top.started.addCallback(freeze_heap)
        if config.server.log_format == "json":
            from coffeechat.ops.logs import JSONLogging

            return JSONLogging(top, getattr(options, "parent", None))
        return top


serviceMaker = CoffeeChatServiceMaker()
