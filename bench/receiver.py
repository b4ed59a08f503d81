"""``coffeechat-bench receiver``: a local webhook receiver for benchmarks (and for trying webhooks
out): a twisted.web server on loopback that counts the POSTs it gets, optionally verifies their
Standard Webhooks signatures (``--secret``), dedupes events by id (``webhook-id``, or each
event's own id in a ``batch`` POST), and prints a line of counts every ``--report`` seconds.
Run it, point ``[[webhooks.endpoints]]`` (or a bot) at it, then run
``coffeechat-bench p2p --server-config <that config>``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import OrderedDict
from typing import Any

SEEN_KEPT = 1_000_000  # webhook-ids remembered for dedupe, at most


def add_arguments(sub: Any) -> None:
    p = sub.add_parser("receiver", help="a local webhook receiver: counts (and verifies) webhook POSTs")
    p.add_argument("--port", type=int, default=8099, help="port on 127.0.0.1 (default 8099)")
    p.add_argument("--secret", default="", help="whsec_... : verify every signature with standardwebhooks")
    p.add_argument("--status", type=int, default=200, help="HTTP status to answer (default 200; 503 = down)")
    p.add_argument("--report", type=float, default=5.0, help="seconds between count lines (default 5)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: never)")


class Counter:
    """What the receiver counts."""

    def __init__(self, secret: str, status: int) -> None:
        from standardwebhooks.webhooks import Webhook

        self.webhook = Webhook(secret) if secret else None
        self.status = status
        self.posts = 0
        self.unique = 0
        self.bad = 0
        self.types: dict[str, int] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        self.posts += 1
        if self.webhook is not None:
            try:
                self.webhook.verify(body, headers, json_parse=False)
            except Exception:
                self.bad += 1
                return 401
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("type") == "batch":
            events = (document.get("data") or {}).get("events") or []
            for event in events:
                self._count(str(event.get("id", "")), event.get("type", "?"))
        else:
            kind = document.get("type", "?") if isinstance(document, dict) else "?"
            self._count(headers.get("webhook-id", ""), kind)
        return self.status

    def _count(self, event_id: str, kind: str) -> None:
        """An event, counted once by its id (a POST's webhook-id, or a batched event's own id)."""
        if event_id in self._seen:
            return
        self._seen[event_id] = None
        if len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)
        self.unique += 1
        self.types[kind] = self.types.get(kind, 0) + 1

    def line(self, elapsed: float) -> str:
        return json.dumps(
            {"t": round(elapsed, 1), "posts": self.posts, "unique": self.unique, "bad": self.bad, "types": self.types}
        )


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor, task
    from twisted.web import resource, server

    counter = Counter(args.secret, args.status)

    class Hook(resource.Resource):
        isLeaf = True

        def render_POST(self, request: Any) -> bytes:  # noqa: N802
            headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
            request.setResponseCode(counter.handle(request.content.read(), headers))
            return b""

    site = server.Site(Hook())
    site.noisy = False
    reactor.listenTCP(args.port, site, interface="127.0.0.1")
    start = time.monotonic()
    print(f"webhook receiver on http://127.0.0.1:{args.port}/ (any path)", flush=True)
    task.LoopingCall(lambda: print(counter.line(time.monotonic() - start), flush=True)).start(args.report, now=False)
    if args.duration:
        reactor.callLater(args.duration, reactor.stop)
    reactor.run()
    print(counter.line(time.monotonic() - start), flush=True)
    return 1 if counter.bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    add_arguments(parser.add_subparsers(dest="scenario"))
    sys.exit(run(parser.parse_args()))
