"""twistd plugin: ``twistd -n coffeechat [--config coffeechat.toml] ...``.

Kept small and lazy: twistd imports every plugin module to list them, so the server itself is
imported only in makeService.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    synopsis = "[--config FILE] [--data-dir DIR] [--cim ENDPOINT]... [--http ENDPOINT]... [--ws ENDPOINT]..."
    longdesc = (
        "Run a CoffeeChat node. Settings come from the TOML file given with --config "
        "(see etc/coffeechat.toml); the flags below override it. Endpoints are Twisted "
        "endpoint strings such as tcp:8000 or ssl:8443:privateKey=key.pem."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["data-dir", "d", None, "Directory for the database and other files (server.data_dir)."],
        ["admin-token", None, None, "Bearer token that unlocks the HTTP admin API (http.admin_token)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["cim"] = []
        self["http"] = []
        self["ws"] = []

    def opt_cim(self, endpoint: str) -> None:
        """Listen for CIM TCP clients on ENDPOINT (repeatable; replaces listen.cim)."""
        self["cim"].append(endpoint)

    def opt_http(self, endpoint: str) -> None:
        """Serve HTTP on ENDPOINT (repeatable; replaces listen.http)."""
        self["http"].append(endpoint)

    def opt_ws(self, endpoint: str) -> None:
        """Serve CIM over WebSocket on ENDPOINT (repeatable; replaces listen.ws)."""
        self["ws"].append(endpoint)

    def postOptions(self) -> None:
        from coffeechat.config import ConfigError, load_config

        overrides = {}
        if self["data-dir"]:
            overrides["server.data_dir"] = self["data-dir"]
        if self["admin-token"]:
            overrides["http.admin_token"] = self["admin-token"]
        for transport in ("cim", "http", "ws"):
            if self[transport]:
                overrides[f"listen.{transport}"] = [e for e in self[transport] if e != "none"]
        try:
            self.config = load_config(self["config"], overrides)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


@implementer(IServiceMaker, IPlugin)
class CoffeeChatServiceMaker:
    tapname = "coffeechat"
    description = "CoffeeChat instant-messaging server (CIM v1 over TCP, HTTP API)."
    options = Options

    def makeService(self, options: Options):
        from coffeechat.service import make_node

        return make_node(options.config)


serviceMaker = CoffeeChatServiceMaker()
