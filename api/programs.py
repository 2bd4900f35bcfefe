"""``/programs``: the read side of the program registry."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.schemas import PageQuerySchema
from api.services import services

blueprint = Blueprint("programs", __name__)


@blueprint.get("/programs")
def list_programs() -> Response:
    query = PageQuerySchema().load(request.args)
    programs = services().registry.list()
    offset = query["offset"]
    end = None if query["limit"] is None else offset + query["limit"]
    page = programs[offset:end]
    return jsonify({"programs": [p.to_api() for p in page], "count": len(programs)})


@blueprint.get("/programs/<program_id>")
def get_program(program_id: str) -> Response:
    return jsonify(services().registry.get(program_id).to_api())
