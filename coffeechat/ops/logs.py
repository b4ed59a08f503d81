"""Structured logs: one JSON object per line (``[server] log_format = "json"``).

Why not twisted.logger's ``jsonFileLogObserver``: it writes the event as Twisted serialises it
(``log_level`` as a constant, ``log_format`` unrendered, every field, records separated by
RS), made for reading back with ``eventsFromJSONLogFile``; log shippers want flat, named fields.
Each line here has ``time`` (ISO 8601, UTC), ``level``, ``namespace``, ``text`` (the rendered
message), ``system`` when there is one, the event's own scalar fields under ``fields``, and for a
failure ``error`` and ``traceback``.

twistd starts its log observer after the plugin made the service, from the application's
``ILogObserver`` component when it has one: :class:`JSONLogging` sets it when twistd attaches it
to the application, choosing the file as twistd would (stdout with ``-n``, else ``--logfile``,
default twistd.log, reopened on SIGUSR1 as twistd does).
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from typing import IO, Any

from twisted.application import service
from twisted.logger import ILogObserver, formatEvent
from twisted.python import logfile
from zope.interface import implementer

#: A field's string value longer than this is cut (a request body logged by mistake, say).
MAX_FIELD_CHARS = 2000
_SCALARS = (str, int, float, bool, type(None))


def event_as_dict(event: dict[str, Any]) -> dict[str, Any]:
    """The flat record of one twisted.logger event."""
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(timespec="milliseconds"),
        "level": level.name if level is not None else "info",
        "namespace": event.get("log_namespace", ""),
        "text": formatEvent(event),
    }
    system = event.get("log_system")
    if system and system != "-":
        record["system"] = system
    fields = {}
    for key, value in event.items():
        if key.startswith("log_") or key in ("format", "message", "isError", "failure", "why", "system", "time"):
            continue
        if isinstance(value, _SCALARS):
            fields[key] = value[:MAX_FIELD_CHARS] if isinstance(value, str) else value
    if fields:
        record["fields"] = fields
    failure = event.get("log_failure")
    if failure is not None:
        record["error"] = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        record["traceback"] = failure.getTraceback()
    return record


@implementer(ILogObserver)
class JSONLineObserver:
    """Writes each event as one JSON line to ``out`` and flushes it."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            line = json.dumps(event_as_dict(event), ensure_ascii=False, default=str)
        except Exception as e:  # a field's __str__ failing must not lose the event
            line = json.dumps({"level": "error", "text": f"unloggable event: {e!r}"})
        self.out.write(line + "\n")
        self.out.flush()


def log_file(twistd_options: Any) -> IO[str]:
    """Where twistd would log: stdout with ``-n`` (or ``--logfile -``), else the log file."""
    options = twistd_options if twistd_options is not None else {}
    name = options.get("logfile")
    if name == "-" or (options.get("nodaemon") and not name):
        return sys.stdout
    out = logfile.LogFile.fromFullPath(name or "twistd.log")
    if not signal.getsignal(signal.SIGUSR1):

        def rotate(signum: int, frame: Any) -> None:
            from twisted.internet import reactor

            reactor.callFromThread(out.rotate)

        signal.signal(signal.SIGUSR1, rotate)
    return out


class JSONLogging(service.MultiService):
    """Holds the node's service; on joining twistd's application, makes JSON its log observer."""

    def __init__(self, child: service.IService, twistd_options: Any) -> None:
        super().__init__()
        self.twistd_options = twistd_options
        child.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        options = self.twistd_options if self.twistd_options is not None else {}
        if options.get("syslog"):  # twistd --syslog: its syslog observer, which has no JSON form
            return
        if hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, JSONLineObserver(log_file(self.twistd_options)))
