"""Failures the server logs: tracebacks (``log.failure``) and lines at level error or critical."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from twisted.logger import LogLevel, formatEvent, globalLogPublisher


def _bad(event: dict) -> bool:
    level = event.get("log_level")
    return "log_failure" in event or level in (LogLevel.error, LogLevel.critical) or event.get("isError")


@contextmanager
def logged_failures() -> Iterator[list[str]]:
    """The text of every failure logged inside the block (a test asserts the list is empty)."""
    found: list[str] = []

    def observe(event: dict) -> None:
        if _bad(event):
            failure = event.get("log_failure")
            text = formatEvent(event)
            if failure is not None:
                text += f": {failure.type.__name__}: {failure.value}"
            found.append(text)

    globalLogPublisher.addObserver(observe)
    try:
        yield found
    finally:
        globalLogPublisher.removeObserver(observe)
