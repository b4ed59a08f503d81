"""ICE servers for WebRTC calls: the STUN and TURN servers a logged-in user's client should use.

A browser's ``RTCPeerConnection`` needs ``iceServers`` before it can connect a call; STUN finds a
device's public address, TURN relays media when no direct path exists (symmetric NATs, strict
firewalls).  A TURN server must not relay for anyone, so ``GET /api/ice-servers`` hands each user
credentials that expire: the TURN REST API scheme that coturn implements with
``use-auth-secret`` / ``static-auth-secret``.  The username is ``"<expiry unix time>:<user_id>"``
and the password ``base64(HMAC-SHA1(secret, username))``; coturn recomputes the HMAC with the same
secret and refuses a username whose expiry has passed, so nothing is shared between this server
and coturn but the secret, and nothing is stored.

The call signalling (invite, ringing, bye) is another module: coffeechat/features/calls.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.modules import HttpCall, HttpReply, ModuleAPI
from coffeechat.openapi import array, integer, obj, string

SECTION = "ice"
MIN_TTL = 60
MAX_TTL = 7 * 24 * 3600
MAX_URLS = 16
MAX_URL_LENGTH = 512
STUN_SCHEMES = ("stun", "stuns")
TURN_SCHEMES = ("turn", "turns")
# scheme ":" host [":" port] [?transport=udp|tcp] (RFC 7064, RFC 7065); host: a name, IPv4 or [IPv6]
_URL = re.compile(
    r"^(?P<scheme>[a-z]+):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<query>\?transport=(?:udp|tcp))?$"
)


def check_url(key: str, url: Any, schemes: tuple[str, ...]) -> None:
    """Refuse what a browser would refuse in ``iceServers`` (it throws on a bad URL and the whole
    call fails), with the key that names it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise ConfigError(f"{key}: {url!r} is not a URL like '{schemes[0]}:host.example.org:3478'")
    match = _URL.match(url)
    if match is None or match["scheme"] not in schemes:
        raise ConfigError(
            f"{key}: {url!r} is not a URL like '{schemes[0]}:host.example.org:3478' "
            f"(schemes: {', '.join(s + ':' for s in schemes)})"
        )
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(f"{key}: {url!r} has a port outside 1..65535")
    if match["query"] and match["scheme"] not in TURN_SCHEMES:
        raise ConfigError(f"{key}: {url!r}: only turn: and turns: URLs take ?transport=")


@dataclass
class Config:
    """[ice]: the STUN and TURN servers clients use for calls, and coturn's shared secret."""

    stun: list[str] = field(default_factory=list)
    turn: list[str] = field(default_factory=list)
    turn_secret: str = ""
    ttl: int = 86400

    def validate(self) -> None:
        for key, urls, schemes in (("ice.stun", self.stun, STUN_SCHEMES), ("ice.turn", self.turn, TURN_SCHEMES)):
            if not isinstance(urls, list):
                raise ConfigError(f"{key} must be a list of URLs, like ['{schemes[0]}:host.example.org:3478']")
            if len(urls) > MAX_URLS:
                raise ConfigError(f"{key}: at most {MAX_URLS} URLs")
            for url in urls:
                check_url(key, url, schemes)
        if not isinstance(self.turn_secret, str):
            raise ConfigError("ice.turn_secret must be a string (coturn's static-auth-secret)")
        if self.turn and not self.turn_secret:
            raise ConfigError(
                "ice.turn names TURN servers but ice.turn_secret is empty: set it to coturn's static-auth-secret"
            )
        if self.turn_secret and not self.turn:
            raise ConfigError("ice.turn_secret is set but ice.turn names no TURN server")
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or not MIN_TTL <= self.ttl <= MAX_TTL:
            raise ConfigError(f"ice.ttl must be a whole number of seconds in {MIN_TTL}..{MAX_TTL} (7 days)")


def turn_credentials(secret: str, user_id: int, expires_at: int) -> tuple[str, str]:
    """The TURN REST API username and password for ``user_id`` until ``expires_at`` (unix time),
    as coturn's ``use-auth-secret`` checks them: ``"<expiry>:<user_id>"`` and the base64 of its
    HMAC-SHA1 under the shared secret."""
    username = f"{int(expires_at)}:{int(user_id)}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


class IceServers:
    """Hands out the configured servers, with fresh TURN credentials for each request."""

    def __init__(self, api: ModuleAPI, config: Config) -> None:
        self.api = api
        self.config = config
        self.clock = api.clock
        self.issued = 0  # TURN credentials handed out, for tests and metrics

    def servers_for(self, user_id: int) -> dict[str, Any]:
        """``{"ice_servers": [...], "ttl": n}`` in the shape of ``RTCConfiguration.iceServers``."""
        config = self.config
        servers: list[dict[str, Any]] = []
        if config.stun:
            servers.append({"urls": list(config.stun)})
        if config.turn and config.turn_secret:
            expires_at = int(self.clock.seconds()) + config.ttl
            username, credential = turn_credentials(config.turn_secret, user_id, expires_at)
            servers.append({"urls": list(config.turn), "username": username, "credential": credential})
            self.issued += 1
        return {"ice_servers": servers, "ttl": config.ttl}


def _refusal(status: int, code: int, message: str) -> HttpReply:
    headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="coffeechat"'
    body = json.dumps({"error_code": int(code), "error_msg": message}, separators=(",", ":")).encode()
    return HttpReply(status, headers, body)


ICE_SERVER = obj(
    ["urls"],
    urls=array(string(1, MAX_URL_LENGTH), MAX_URLS),
    username=string(1),
    credential=string(1),
)


def setup(api: ModuleAPI) -> IceServers:
    """``GET /api/ice-servers`` for users with a login token."""
    config: Config = api.config
    ice = IceServers(api, config)
    accounts = api.depends("accounts")

    async def ice_servers(call: HttpCall) -> dict[str, Any] | HttpReply:
        """The STUN/TURN servers for WebRTC calls, with TURN credentials valid for ``ttl`` seconds."""
        if not call.bearer:
            return _refusal(401, ErrorCode.LOGIN_INVALID_USER_TOKEN, "a login token is required")
        try:
            user = await accounts.login_token(0, call.bearer)
        except ChatError as e:
            if e.code == ErrorCode.LOGIN_INVALID_USER_TOKEN:
                return _refusal(401, e.code, e.message)
            if e.code == ErrorCode.USER_DISABLED:
                return _refusal(403, e.code, e.message)
            raise
        return ice.servers_for(user.user_id)

    api.route(
        "GET",
        "/api/ice-servers",
        ice_servers,
        auth="user",
        response=obj(["ice_servers", "ttl"], ice_servers=array(ICE_SERVER), ttl=integer(MIN_TTL, MAX_TTL)),
    )
    return ice
