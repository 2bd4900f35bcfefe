"""The web console: one static page, served by the API, that drives the API like any client.

The page (``/console/``, with ``/`` redirecting to it) and its assets are public:
they hold no data. Everything the console shows it fetches from the REST API
with the token the user signs in with (kept in the browser's ``sessionStorage``),
so it sees exactly what that token may see through REST, and nothing more. The
one place the token goes into a URL is the job stream's documented
``?access_token=`` fallback, because a browser's ``EventSource`` cannot send a
header.

The assets live in ``api/console_static/`` (plain ES modules and a vendored
copy of uPlot with its licence), ship as package data, and need no Node at run
time. Every answer carries a Content-Security-Policy that lets the page load
and call nothing but this server.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory

blueprint = Blueprint("console", __name__)

STATIC_DIR = Path(__file__).resolve().parent / "console_static"
#: Endpoints that need no token (the page and its files; the data behind them does).
PUBLIC_ENDPOINTS = frozenset({"console.root", "console.index", "console.asset"})
#: How long a browser may reuse an asset before revalidating it (ETag makes that cheap).
ASSET_MAX_AGE_S = 300
#: Everything from this origin, nothing inline, no frames: the page cannot be
#: made to load or post to anywhere else, nor be framed to steal clicks.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@blueprint.get("/")
def root() -> Response:
    """Redirect to the web console."""
    return redirect("/console/", code=302)


@blueprint.get("/console/")
def index() -> Response:
    """The web console's page (public: it holds no data until you sign in)."""
    response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return _secured(response)


@blueprint.get("/console/<path:filename>")
def asset(filename: str) -> Response:
    """One of the web console's static files (404 for anything else)."""
    return _secured(send_from_directory(STATIC_DIR, filename, max_age=ASSET_MAX_AGE_S))


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
