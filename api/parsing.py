"""How request arguments are read: webargs' parser with qruntime's JSON rules and error envelope.

flask-smorest hands every ``@blueprint.arguments`` to :data:`PARSER`. Bodies are
parsed by :func:`api.schemas.load_json_body` whatever their ``Content-Type`` (the
seed's clients do not always send one), so NaN, deep nesting, non-UTF-8 text and
empty bodies get the same messages as everywhere else; a body must be a JSON
object. Validation failures are 400s in the one envelope (webargs would answer
422), with a readable ``message`` and the per-field ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import flask
import marshmallow as ma
from webargs.flaskparser import FlaskParser

from api.errors import summarize
from api.schemas import load_json_body, require_object
from orchestrator.errors import RequestError

#: Where webargs files messages; the envelope names fields without it.
_LOCATIONS = frozenset({"json", "query", "querystring", "headers", "path", "view_args"})


class QruntimeParser(FlaskParser):
    """webargs' Flask parser, answering 400 in qruntime's envelope."""

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        raw = req.get_data(cache=True)
        if not raw.strip() and getattr(schema.Meta, "empty_body_ok", False):
            return {}
        return require_object(load_json_body(raw))

    def handle_error(self, error: ma.ValidationError, req: flask.Request, schema: ma.Schema, *,
                     error_status_code: int | None, error_headers: Mapping[str, str] | None) -> NoReturn:
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1 and next(iter(messages)) in _LOCATIONS:
            messages = next(iter(messages.values()))
        raise RequestError(summarize(messages), messages)


PARSER = QruntimeParser()
