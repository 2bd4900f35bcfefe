"""``GET /openapi.json``: the API described as OpenAPI 3, built from the app itself.

Paths come from Flask's URL map (so no endpoint can be forgotten), summaries
from each view's docstring, request bodies and query parameters from the
marshmallow schemas that validate them (via apispec). It needs no token.
"""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify

from api import schemas
from qruntime import __version__

blueprint = Blueprint("openapi", __name__)

#: Request bodies and query strings, by (method, Flask rule).
BODIES = {("POST", "/jobs"): schemas.JobSubmitSchema}
QUERIES = {
    ("GET", "/jobs"): schemas.JobListQuerySchema,
    ("GET", "/programs"): schemas.PageQuerySchema,
    ("GET", "/jobs/<job_id>/interim_results"): schemas.EventQuerySchema,
}
PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})
ERROR_ENVELOPE = {
    "type": "object",
    "required": ["code", "status", "message"],
    "properties": {
        "code": {"type": "integer"},
        "status": {"type": "string"},
        "message": {"type": "string"},
        "errors": {},
    },
}


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="qruntime",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "A self-hosted Qiskit Runtime: run quantum programs as jobs beside their backend."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", ERROR_ENVELOPE)
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        view = app.view_functions[rule.endpoint]
        summary = (view.__doc__ or rule.endpoint).strip().splitlines()[0]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": summary,
                "responses": {
                    "default": {
                        "description": "error envelope",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "200": {"description": "success"},
                },
                "parameters": [
                    {"in": "path", "name": arg, "required": True, "schema": {"type": "string"}}
                    for arg in sorted(rule.arguments)
                ],
            }
            if path not in PUBLIC_PATHS:
                operation["security"] = [{"bearer": []}]
            body = BODIES.get((method, rule.rule))
            if body is not None:
                operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            query = QUERIES.get((method, rule.rule))
            if query is not None:
                operation["parameters"].append({"in": "query", "schema": query})
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 description of this API."""
    cache = current_app.extensions.setdefault("qruntime_openapi", {})
    if "spec" not in cache:
        cache["spec"] = build_spec(current_app)
    return jsonify(cache["spec"])
