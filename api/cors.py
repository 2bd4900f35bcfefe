"""Cross-origin access for browsers (``QRT_CORS_ORIGINS``), e.g. an ``EventSource`` on a dashboard.

Off by default. An allowed origin gets ``Access-Control-Allow-Origin`` on every
answer, and preflight ``OPTIONS`` requests are answered with the methods and
headers the API uses (``Authorization``, ``Content-Type``, and ``Last-Event-ID``,
which an EventSource sends when it reconnects).
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Access-Token"
EXPOSED_HEADERS = "Location, X-Job-Status"
#: How long a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE_S = 600


def register(app: Flask, origins: str) -> None:
    """Answer cross-origin requests from ``origins`` (comma-separated; ``*`` for any)."""
    allowed = {o.strip().rstrip("/") for o in origins.split(",") if o.strip()}
    if not allowed:
        return

    @app.after_request
    def _cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin", "")
        if not origin or not ("*" in allowed or origin.rstrip("/") in allowed):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
        if "*" not in allowed:
            response.vary.add("Origin")
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
        return response
