"""The browser client: static files served from this folder (see docs/webclient.md).

``web_resource()`` is mounted twice by :func:`coffeechat.protocols.http.create_site`: at ``/``,
where it answers ``index.html``, and at ``/app/``, where it answers the client's scripts, styles
and icon. Only those files are served (never this module or ``__pycache__``), each with
``Cache-Control: no-cache`` (so an upgraded server is picked up at once; browsers still
revalidate with If-Modified-Since) and a Content-Security-Policy that allows only this origin's
scripts and styles, and WebSocket connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.web import static
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

__all__ = ["FOLDER", "SECURITY_HEADERS", "WebClientFiles", "web_resource"]

FOLDER = Path(__file__).resolve().parent
INDEX = "index.html"
SERVICE_WORKER = "sw.js"  # the Web Push service worker (docs/push.md)

# Served files, by extension. Modules must be text/javascript: browsers refuse to run a module
# script of another type (and with nosniff, any script).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# No inline script or style anywhere: whatever text a message smuggles into the page cannot run.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # voice notes and videos play from this origin's /files (signed URLs), never from elsewhere
        "media-src 'self'",
        "connect-src 'self' ws: wss:",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    b"Content-Security-Policy": CONTENT_SECURITY_POLICY.encode(),
    b"Cache-Control": b"no-cache",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"X-Frame-Options": b"DENY",
}


class _NotFound(Resource):
    """A plain 404 (static.File's own is an HTML page)."""

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return b"not found\n"


class WebClientFiles(static.File):
    """The client's folder: the folder itself answers ``index.html``, its children are the files
    with a served extension; nothing else (no listings, no other files, no subfolders)."""

    contentTypes = CONTENT_TYPES
    indexNames: list[str] = []
    childNotFound = _NotFound()

    def getChild(self, path: bytes, request: IRequest) -> Any:
        if not self.isdir():
            return self.childNotFound
        name = path.decode("utf-8", "replace")
        if name.startswith(".") or "/" in name or "\x00" in name or Path(name).suffix not in CONTENT_TYPES:
            return self.childNotFound
        return super().getChild(path, request)

    def directoryListing(self) -> Resource:
        return self.childNotFound

    def render_GET(self, request: IRequest) -> Any:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        if Path(self.path).name == SERVICE_WORKER:  # push.js registers it for the whole site
            request.setHeader(b"Service-Worker-Allowed", b"/")
        if self.isdir():
            # The folder itself (the site's "/"): the page, without a redirect to "/index.html".
            return self.createSimilarFile(str(Path(self.path) / INDEX)).render_GET(request)
        return super().render_GET(request)

    render_HEAD = render_GET


def web_resource() -> Resource:
    """The web client's files, as a resource to mount at ``/`` and at ``/app/``."""
    return WebClientFiles(str(FOLDER), defaultType="application/octet-stream")
