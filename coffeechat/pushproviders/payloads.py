"""Helpers the APNs and FCM providers share: fitting a payload into the service's size limit and
reading a Retry-After header.  (Kept apart from the contract in ``__init__`` so it stays small.)"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable
from typing import Any

ELLIPSIS = "\u2026"


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON: every byte counts against a 4 KiB limit."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fit_body(build: Callable[[str], Any], body: str, limit: int) -> bytes | None:
    """The encoded payload ``build(body')`` with ``body'`` the longest prefix of ``body`` (plus an
    ellipsis when cut) that keeps it within ``limit`` bytes; None when even an empty body does not
    fit (the rest of the payload is too large by itself).

    A binary search over the prefix length: about 12 encodings for a 4 KiB payload, whatever the
    body's length, instead of one per character cut."""
    encoded = dumps(build(body))
    if len(encoded) <= limit:
        return encoded
    low, high = 0, len(body) - 1  # the longest prefix length known to fit is >= low
    best = dumps(build(""))
    if len(best) > limit:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        candidate = dumps(build(body[:middle].rstrip() + ELLIPSIS))
        if len(candidate) <= limit:
            low, best = middle, candidate
        else:
            high = middle - 1
    if low == 0:
        candidate = dumps(build(ELLIPSIS))
        return candidate if len(candidate) <= limit else best
    return best


def parse_retry_after(value: str | bytes | None, now: float, ceiling: float = 3600.0) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped at
    ``ceiling`` so that a wrong header cannot park a notification for days; None when absent or
    unreadable."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), ceiling)
