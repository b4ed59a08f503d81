"""What the HTTP providers share: one non-blocking client per provider (treq on a persistent
connection pool), a bounded read of the answer, and the mapping of HTTP statuses to outcomes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer

from coffeechat.pushproviders import PushOutcome

MAX_ANSWER = 64 * 1024  # bytes of an answer body read (the rest is dropped)


class HttpClient:
    """Outbound HTTP on ``reactor`` through treq (its shared persistent connection pool: the
    core imports no twisted.web itself)."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def post(self, url: str, **kwargs: Any) -> defer.Deferred:
        import treq

        return treq.post(url, reactor=self.reactor, **kwargs)


def http_client(reactor: Any) -> HttpClient:
    return HttpClient(reactor)


def close_client(client: Any) -> defer.Deferred:
    return defer.succeed(None)


def check_url(url: str, allow_http: bool) -> str:
    """Why ``url`` is no push endpoint ("" when it is one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        return "the endpoint must be an https:// URL"
    if not parts.hostname:
        return "the endpoint URL has no host"
    return ""


def retry_after(headers: Any) -> float | None:
    raw = headers.getRawHeaders(b"retry-after") or []
    try:
        return max(0.0, float(raw[-1])) if raw else None
    except ValueError:
        return None  # an HTTP date: back off as usual


async def post(client: Any, url: str, body: bytes, headers: dict[str, str], timeout: float,
               dead: tuple[int, ...] = (404, 410)) -> PushOutcome:  # fmt: skip
    """POST and say what became of it: 2xx ok; ``dead`` statuses dead; 429 and 5xx retried
    (after Retry-After); other 4xx permanent; a network error retried."""
    import treq

    try:
        response = await client.post(
            url, data=body, headers={k: [v] for k, v in headers.items()}, timeout=timeout, persistent=True
        )
        text = await treq.content(response) if (response.length or 0) <= MAX_ANSWER else b""
    except Exception as e:  # connection refused, timeout, TLS: the service may be back later
        return PushOutcome(ok=False, detail=f"{type(e).__name__}: {e}"[:300])
    code = response.code
    detail = f"HTTP {code} {text[:200].decode('utf-8', 'replace')}".strip()
    if 200 <= code < 300:
        return PushOutcome(ok=True, detail=detail)
    if code in dead:
        return PushOutcome(ok=False, dead=True, detail=detail)
    if code == 429 or code >= 500:
        return PushOutcome(ok=False, retry_after=retry_after(response.headers), detail=detail)
    return PushOutcome(ok=False, permanent=True, detail=detail)
