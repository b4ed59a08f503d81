"""The ``metrics`` transport: Prometheus' ``/metrics``, with ``/health`` and ``/ready``, on a
listener of its own (``listen.metrics``), e.g. on an internal interface only, so that the
public HTTP port need not serve them (``metrics.http = false``)."""

from __future__ import annotations

from twisted.web import server

from coffeechat.config import ConfigError
from coffeechat.modules import Route, _segments
from coffeechat.node import ChatNode

from .http import ApiResource, ChatSite

SERVED = ("/health", "/ready")


class MetricsResource(ApiResource):
    """Only the monitoring routes: /metrics (the metrics feature's), /health and /ready."""

    def __init__(self, node: ChatNode) -> None:
        super().__init__(node)
        try:
            metrics = node.feature("metrics")
        except KeyError:
            raise ConfigError("listen.metrics needs the metrics feature in [features] enabled") from None
        routes = [r for r in node.registry.routes if r.method == "GET" and r.path in SERVED]
        routes.append(Route("GET", _segments("/metrics"), metrics.serve, "public", "metrics", "Prometheus metrics"))
        self.routes = routes


def create_site(node: ChatNode) -> server.Site:
    """The ``metrics`` transport of :mod:`coffeechat.plugins`."""
    return ChatSite(MetricsResource(node), node, timeout=node.config.http.idle_timeout)
