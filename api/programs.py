"""``/programs``: list, read, upload, update, version, publish and delete programs.

Wire shapes follow the seed: upload is JSON ``{"name", "data": base64,
"cost", "description", "is_public", "spec"}``; ``PUT /programs/{id}/data``
takes the base64 text as the raw body; ``PATCH`` takes a subset of
``{"name", "description", "cost", "spec"}``. ``data`` may be Python source or a
zip/tar archive of a directory (then ``entry`` may name the main module).

Visibility: built-ins and public programs are visible to everyone, private
ones to their owner and admins; anything else answers 404. Changing a program
needs ownership (or admin) and is refused for built-ins (403) (rules in
:mod:`api.visibility`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, request

from api.auth import authorized_first, current_identity, require_uploader
from api.openapi import Blueprint, links
from api.parsing import PARSER
from api.responses import (
    Extended,
    ProgramDetailSchema,
    ProgramListSchema,
    ProgramSchema,
    ProgramVersionListSchema,
)
from api.schemas import (
    PageQuerySchema,
    ProgramDataSchema,
    ProgramMetadataSchema,
    ProgramQuerySchema,
    ProgramUploadSchema,
)
from api.services import services
from api.visibility import may_read_program_data, owned_program, visible_program, visible_programs
from orchestrator.check_process import CHECK_METADATA, CHECK_PROGRAM
from orchestrator.errors import RequestError
from orchestrator.program_files import KIND_SOURCE
from orchestrator.programs import Program

blueprint = Blueprint("programs", __name__, description="Runtime programs: built in or uploaded.")
#: The bodies ``PUT /programs/{id}/data`` takes: the seed's raw base64 text, or JSON.
RAW_DATA_TYPES = ("application/octet-stream", "text/plain")


def _program_view(program: Program) -> Program | Extended:
    """The program; its owner (and admins) also get its data, data_kind and entry."""
    if not may_read_program_data(current_identity(), program):
        return program
    data = services().programs.store.data(program.id, program.version)
    text = data.decode("utf-8") if program.kind == KIND_SOURCE else base64.b64encode(data).decode()
    return Extended(program, data=text, data_kind=program.kind, owner_entry=program.entry)


@blueprint.get("/programs")
@blueprint.arguments(PageQuerySchema, location="query")
@blueprint.response(200, ProgramListSchema)
@blueprint.errors(401)
def list_programs(query: dict[str, Any]) -> dict[str, Any]:
    """The programs the caller may see: built-ins, public ones, their own."""
    programs = visible_programs()
    offset = query["offset"]
    end = None if query["limit"] is None else offset + query["limit"]
    return {"programs": programs[offset:end], "count": len(programs)}


@blueprint.get("/programs/<program_id>")
@blueprint.arguments(ProgramQuerySchema, location="query")
@blueprint.response(200, ProgramDetailSchema)
@blueprint.errors(401, 404)
def get_program(query: dict[str, Any], program_id: str) -> Program | Extended:
    """One program (``?version=`` for an older one); its owner also gets its data."""
    return _program_view(visible_program(program_id, query["version"] or None))


@blueprint.get("/programs/<program_id>/versions")
@blueprint.response(200, ProgramVersionListSchema)
@blueprint.errors(401, 404)
def list_versions(program_id: str) -> dict[str, Any]:
    """Every version of a program, oldest first."""
    program = visible_program(program_id)
    if program.builtin:
        versions = [{"version": program.version, "created": program.creation_date, "name": program.name,
                     "description": program.description, "cost": program.max_execution_time,
                     "current": True}]
    else:
        versions = services().programs.store.versions(program_id)
    return {"versions": versions, "count": len(versions)}


@blueprint.post("/programs")
@blueprint.doc(**links(201, "id", {
    "GetProgram": ("get", "/programs/{program_id}", "program_id"),
    "ListVersions": ("get", "/programs/{program_id}/versions", "program_id"),
    "UpdateMetadata": ("patch", "/programs/{program_id}", "program_id"),
    "UpdateData": ("put", "/programs/{program_id}/data", "program_id"),
    "MakePublic": ("put", "/programs/{program_id}/public", "program_id"),
    "MakePrivate": ("put", "/programs/{program_id}/private", "program_id"),
    "DeleteProgram": ("delete", "/programs/{program_id}", "program_id"),
}))
@authorized_first(require_uploader)
@blueprint.arguments(ProgramUploadSchema)
@blueprint.response(201, ProgramSchema)
@blueprint.errors(401, 403, 409, 413, 503)
def upload_program(body: dict[str, Any]) -> Program:
    """Upload a program (developers and admins): its metadata, and its data base64-encoded."""
    identity = require_uploader()
    if not body["data"]:
        raise RequestError("data is required: the program's source (or a zip/tar archive), base64-encoded.",
                           {"data": ["Missing data for required field."]})
    metadata = _checked_metadata(body, partial=False)
    data = _b64(body["data"])
    files = _checked_files(data, metadata["name"], _entry(body))
    program = services().programs.store.create(owner=identity.name, metadata=metadata, data=data, files=files)
    return program


@blueprint.put("/programs/<program_id>/data")
@blueprint.doc(requestBody={"required": True, "content": {
    "application/json": {"schema": ProgramDataSchema},
    **{kind: {"schema": {"type": "string", "format": "byte", "minLength": 1}} for kind in RAW_DATA_TYPES}}})
@blueprint.response(200, ProgramSchema)
@blueprint.errors(400, 401, 403, 404, 413, 503)
def update_data(program_id: str) -> Program:
    """Replace a program's data: the raw base64 text as the body (the seed's way), or JSON {data, entry}."""
    current = owned_program(program_id)
    raw = request.get_data()
    entry = None
    if request.is_json:
        body = PARSER.parse(ProgramDataSchema, request, location="json")
        raw, entry = str(body.get("data", "")).encode(), _entry(body)
    data = _b64(raw)
    files = _checked_files(data, current.name, entry)
    return services().programs.store.update(program_id, data=data, files=files)


@blueprint.patch("/programs/<program_id>")
@authorized_first(owned_program)
@blueprint.arguments(ProgramMetadataSchema)
@blueprint.response(200, ProgramSchema)
@blueprint.errors(401, 403, 404, 413, 503)
def update_metadata(body: dict[str, Any], program_id: str) -> Program:
    """Change a program's name, description, cost or spec (a new version)."""
    metadata = _checked_metadata(body, partial=True)
    if not metadata:
        raise RequestError("Nothing to update: give name, description, cost or spec.")
    return services().programs.store.update(program_id, metadata=metadata)


@blueprint.put("/programs/<program_id>/public")
@blueprint.response(200, ProgramSchema)
@blueprint.errors(401, 403, 404)
def make_public(program_id: str) -> Program:
    """Let every user see and run the program."""
    owned_program(program_id)
    return services().programs.store.set_public(program_id, True)


@blueprint.put("/programs/<program_id>/private")
@blueprint.response(200, ProgramSchema)
@blueprint.errors(401, 403, 404)
def make_private(program_id: str) -> Program:
    """Let only its owner (and admins) see and run the program."""
    owned_program(program_id)
    return services().programs.store.set_public(program_id, False)


@blueprint.delete("/programs/<program_id>")
@blueprint.response(204)
@blueprint.errors(401, 403, 404)
def delete_program(program_id: str) -> Response:
    """Delete a program and all its versions."""
    owned_program(program_id)
    services().programs.store.delete(program_id)
    return Response(status=204)


def _checked_metadata(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The metadata fields of ``body``, checked (JSON Schemas compiled) by a checker process."""
    args = {"metadata": _metadata_fields(body), "partial": partial,
            "ceiling_s": services().settings.max_execution_time_ceiling_s}
    return services().checker.run(CHECK_METADATA, args, subject="the program's metadata")


def _checked_files(data: bytes, name: str, entry: str | None) -> dict[str, str]:
    """What the program's data is (kind, entry, sha256), unpacked and compiled by a checker process."""
    return services().checker.run(CHECK_PROGRAM, {"name": name, "entry": entry}, data, subject="the program's data")


def _metadata_fields(body: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in body.items() if k in {"name", "description", "is_public", "spec"}}
    if "max_execution_time" in body or "cost" in body:
        metadata["max_execution_time"] = body.get("max_execution_time", body.get("cost"))
    return metadata


def _entry(body: dict[str, Any]) -> str | None:
    entry = body.get("entry")
    if entry is not None and (not isinstance(entry, str) or not entry.endswith(".py")):
        raise RequestError("entry must name a .py file inside the archive.")
    return entry


def _b64(value: Any) -> bytes:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        raise RequestError("data must be base64 text.")
    try:
        data = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("data is not valid base64 (encode the program's bytes with base64).") from None
    if not data:
        raise RequestError("Program data is empty.")
    return data
