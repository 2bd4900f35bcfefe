"""One error envelope for every failure: ``{"code", "status", "message", "errors"?}``.

Views raise; these handlers render. ``code`` is the HTTP status, ``status`` its
phrase, ``message`` a sentence saying what is wrong, ``errors`` per-field
details from validation. Anything unexpected is logged and answered as a 500
envelope, never an HTML page.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

import redis
from flask import Flask, Response, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from orchestrator.errors import RuntimeServiceError
from orchestrator.outage import NotReplicatedError

logger = logging.getLogger(__name__)

#: How much of a refused body is read (and dropped) so that the client can read the 413.
DRAIN_MAX_BYTES = 512 * 1024 * 1024
DRAIN_MAX_S = 30.0
DRAIN_CHUNK_BYTES = 1024 * 1024


def envelope(code: int, message: str, errors: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = code
    return response


def register(app: Flask) -> None:
    app.before_request(_refuse_oversized_stream)
    app.after_request(_drain_body)

    @app.errorhandler(RuntimeServiceError)
    def _service_error(exc: RuntimeServiceError) -> Response:
        return envelope(exc.http_status, exc.message, exc.errors)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        return envelope(400, summarize(exc.messages), exc.messages)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        size = request.content_length
        told = f"of {size} bytes " if size is not None else "(sent without a length) "
        return envelope(
            413,
            f"Request body {told}exceeds the limit of {limit} bytes (QRT_MAX_PAYLOAD_BYTES).",
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        message = exc.description or HTTPStatus(code).phrase
        if code == 404 and exc.description and "requested URL was not found" in exc.description:
            message = f"No such endpoint: {request.method} {request.path}"
        if code == 405:
            message = f"Method {request.method} is not allowed on {request.path}."
        return envelope(code, message)

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _store_unreachable(exc: redis.RedisError) -> Response:
        logger.error("job store unreachable on %s %s: %s", request.method, request.path, exc)
        if isinstance(exc, NotReplicatedError):  # a failover under way, or the replicas are down
            return envelope(503, "The job store's replicas did not confirm the write (QRT_REDIS_MIN_REPLICAS); "
                                 "it may not have been kept. Try again shortly.")
        return envelope(503, "The job store (Redis) is unreachable; try again shortly.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(500, f"Internal error ({type(exc).__name__}); the server log has details.")


def _drain_body(response: Response) -> Response:
    """Read and drop what the view left of the request body, up to a bound, before answering.

    An answer given before the body was read (a 401, a 413, a 404) would
    otherwise reach a client that sends its whole body first (Python's urllib,
    most scripts) as a connection reset: the server closes a socket holding
    unread bytes, and the kernel answers with RST, dropping the response in
    flight. Past the bound the connection is closed anyway (nginx's lingering
    close makes the same trade).
    """
    stream = _unread_body()
    if stream is None:
        return response
    budget, deadline = DRAIN_MAX_BYTES, time.monotonic() + DRAIN_MAX_S
    try:
        while budget > 0 and time.monotonic() < deadline:
            chunk = stream.read(min(DRAIN_CHUNK_BYTES, budget))
            if not chunk:
                break
            budget -= len(chunk)
    except (OSError, ValueError, ClientDisconnected, RequestEntityTooLarge):  # the client went away: nothing left to drain
        pass
    return response


def _unread_body() -> Any:
    """A stream of what is left of the request body, bounded by its length; None if there is none."""
    length = request.content_length
    if length is None:  # chunked: only a server that marks the end lets it be read to the end
        return request.environ["wsgi.input"] if request.environ.get("wsgi.input_terminated") else None
    if length == 0:
        return None
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and length > limit:  # refused before a byte was read
        return LimitedStream(request.environ["wsgi.input"], length)
    return request.stream  # werkzeug's view of the body: it knows what the view already read


def _refuse_oversized_stream() -> None:
    """A chunked body over the limit is a 413, like one with a Content-Length.

    werkzeug stops reading such a body at the limit without a word, so the view
    would parse a truncated body and answer a misleading 400. Reading it here
    caches it for the view; one byte more in the server's stream means too large.
    """
    if request.content_length is not None or request.method not in ("POST", "PUT", "PATCH"):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(request.get_data()) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def summarize(messages: Any) -> str:
    """'Invalid request: field: problem; other: problem.' from marshmallow's messages."""
    parts = []
    if isinstance(messages, dict):
        for field, problems in messages.items():
            text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
            parts.append(f"{field}: {text}")
    else:
        parts.append(str(messages))
    return "Invalid request: " + "; ".join(parts)
