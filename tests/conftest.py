"""Shared fixtures: a real node on loopback sockets (SQLite in a temporary directory)."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from coffeechat.config import load_config
from coffeechat.node import build_node
from coffeechat.protocols import client as cim_client
from coffeechat.service import NodeService

# The transports a client can reach the chat core by: name -> (address attribute, encoding).
TRANSPORTS = {
    "tcp": ("cim_endpoint", None),
    "ws-binary": ("ws_url", "binary"),
    "ws-json": ("ws_url", "json"),
}


class LiveNode:
    """A started node plus helpers to reach it as a client would."""

    def __init__(self, node: NodeService) -> None:
        self.node = node
        self.core = node.node
        cim = node.listening_port("cim")
        http = node.listening_port("http")
        ws = node.listening_port("ws")
        self.cim_endpoint = f"tcp:127.0.0.1:{cim.getHost().port}" if cim else None
        self.http_url = f"http://127.0.0.1:{http.getHost().port}" if http else None
        self.ws_url = f"ws://127.0.0.1:{ws.getHost().port}/" if ws else None
        path = self.core.config.websocket.http_path
        self.ws_http_url = f"ws://127.0.0.1:{http.getHost().port}{path}" if http and path else None
        self.clients: list[cim_client.CIMClient] = []

    async def register(self, name: str, password: str = "secret", nick: str | None = None) -> int:
        answer = await cim_client.register(
            reactor, self.http_url, name, nick or name.title(), cim_client.md5_password(password)
        )
        assert answer["error_code"] == 200, answer
        user = await self.core.store.user_by_name(name)
        return user.user_id

    async def connect(self, transport: str = "tcp", url: str | None = None, **kwargs) -> cim_client.CIMClient:
        """A connection over ``transport`` ("tcp", "ws-binary" or "ws-json"); ``url`` overrides the
        address (e.g. ``ws_http_url``)."""
        attribute, encoding = TRANSPORTS[transport]
        if encoding is not None:
            kwargs.setdefault("encoding", encoding)
        client = await cim_client.connect(reactor, url or getattr(self, attribute), **kwargs)
        self.clients.append(client)
        return client

    async def login(self, name: str, password: str = "secret", **kwargs) -> cim_client.CIMClient:
        client = await self.connect(**kwargs)
        rsp = await client.login_password(name, cim_client.md5_password(password))
        assert rsp.result_code == 200, rsp
        return client


def node_config(tmp_path, **overrides):
    settings = {
        "server.data_dir": str(tmp_path / "data"),
        "listen.cim": ["tcp:0:interface=127.0.0.1"],
        "listen.http": ["tcp:0:interface=127.0.0.1"],
        "listen.ws": ["tcp:0:interface=127.0.0.1"],
        "auth.scrypt_n": 1024,
        "http.admin_token": "admin-secret",
    }
    settings.update(overrides)
    return load_config(None, settings)


async def start_node(config) -> LiveNode:
    node = NodeService(build_node(config, reactor), reactor)
    node.startService()
    await node.started
    return LiveNode(node)


async def stop_node(live: LiveNode) -> None:
    for client in live.clients:
        if client.transport is not None and client.transport.connected:
            client.transport.abortConnection()
    await live.node.stopService()


@pytest_twisted.async_yield_fixture
async def live_node(tmp_path):
    live = await start_node(node_config(tmp_path))
    yield live
    await stop_node(live)


def pytest_sessionfinish(session, exitstatus):
    """Stop any Twisted thread pool a test left running.  Their threads are not daemons: one pool
    left started would keep the finished test process from ever exiting (and CI from ending)."""
    import gc
    import sys

    from twisted.python.threadpool import ThreadPool

    own = getattr(reactor, "threadpool", None)  # the reactor stops its own at its shutdown
    leaked = [o for o in gc.get_objects() if isinstance(o, ThreadPool) and o.started and o is not own]
    for pool in leaked:
        pool.stop()
    if leaked:
        names = sorted({getattr(p, "name", None) or "?" for p in leaked})
        print(f"\nconftest: stopped {len(leaked)} thread pool(s) left running: {names}", file=sys.stderr)
