"""The admin console: static files served from this folder at ``/admin/`` (docs/admin-console.md).

``/admin/`` answers ``index.html`` and ``/admin/console/<file>`` the console's scripts and styles,
with the bundled uPlot (MIT, ``uPlot-LICENSE``) for the charts: nothing comes from a CDN.  The
page holds no data: it asks the admin API with the token the operator types in (kept in the
tab's sessionStorage only), so serving it needs no token.  Same headers as the web client
(``protocols/webclient``): a Content-Security-Policy allowing this origin's scripts, styles and
fetches only, and ``Cache-Control: no-cache``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from ..webclient import SECURITY_HEADERS, WebClientFiles

__all__ = ["FOLDER", "ConsolePage", "console_files"]

FOLDER = Path(__file__).resolve().parent
INDEX = FOLDER / "index.html"


class ConsolePage(Resource):
    """The page itself, answered from memory in one write (it is small; read once at start)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.body = INDEX.read_bytes()

    def render_GET(self, request: IRequest) -> bytes:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        return self.body

    render_HEAD = render_GET


class ConsoleFiles(WebClientFiles):
    """The console's scripts and styles; the folder itself (``/admin/console/``) is the page."""

    page: ConsolePage

    def render_GET(self, request: IRequest) -> Any:
        if self.isdir():
            return self.page.render_GET(request)
        return super().render_GET(request)

    render_HEAD = render_GET


def console_files(page: ConsolePage) -> Resource:
    """The console's files, to mount at ``/admin/console/``."""
    files = ConsoleFiles(str(FOLDER), defaultType="application/octet-stream")
    files.page = page
    return files
