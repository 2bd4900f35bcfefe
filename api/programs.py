"""``/programs``: list, read, upload, update, version, publish and delete programs.

Wire shapes follow the seed: upload is JSON ``{"name", "data": base64,
"cost", "description", "is_public", "spec"}``; ``PUT /programs/{id}/data``
takes the base64 text as the raw body; ``PATCH`` takes a subset of
``{"name", "description", "cost", "spec"}``. ``data`` may be Python source or a
zip/tar archive of a directory (then ``entry`` may name the main module).

Visibility: built-ins and public programs are visible to everyone, private
ones to their owner and admins; anything else answers 404. Changing a program
needs ownership (or admin) and is refused for built-ins (403).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import current_identity
from api.schemas import PageQuerySchema, load_json_object
from api.services import services
from orchestrator.check_process import CHECK_METADATA, CHECK_PROGRAM
from orchestrator.errors import PermissionDeniedError, ProgramNotFoundError, RequestError
from orchestrator.program_files import KIND_SOURCE
from orchestrator.programs import Program

blueprint = Blueprint("programs", __name__)
UPLOAD_FIELDS = frozenset({"name", "data", "cost", "max_execution_time", "description", "is_public", "spec", "entry"})
PATCH_FIELDS = frozenset({"name", "description", "cost", "max_execution_time", "spec"})


def visible_program(program_id: str, version: str | None = None) -> Program:
    """The program if the caller may see it; 404 otherwise (ids do not leak)."""
    program = services().programs.get(program_id, version)
    if program.builtin or program.is_public or current_identity().owns(program.owner):
        return program
    raise ProgramNotFoundError(f"Program not found: {program_id}")


def _owned_program(program_id: str) -> Program:
    program = visible_program(program_id)
    if program.builtin:
        raise PermissionDeniedError(f"Program {program_id} is built in and cannot be changed.")
    if not current_identity().owns(program.owner):
        raise PermissionDeniedError(f"Only the owner of program {program_id} (or an admin) may change it.")
    return program


def _program_json(program: Program) -> dict[str, Any]:
    body = program.to_api()
    if not program.builtin and current_identity().owns(program.owner):
        data = services().programs.store.data(program.id, program.version)
        body["data"] = data.decode("utf-8") if program.kind == KIND_SOURCE else base64.b64encode(data).decode()
        body["data_kind"] = program.kind
        body["entry"] = program.entry
    return body


@blueprint.get("/programs")
def list_programs() -> Response:
    query = PageQuerySchema().load(request.args)
    identity = current_identity()
    programs = [p for p in services().programs.list() if p.builtin or p.is_public or identity.owns(p.owner)]
    offset = query["offset"]
    end = None if query["limit"] is None else offset + query["limit"]
    return jsonify({"programs": [p.to_api() for p in programs[offset:end]], "count": len(programs)})


@blueprint.get("/programs/<program_id>")
def get_program(program_id: str) -> Response:
    version = request.args.get("version") or None
    return jsonify(_program_json(visible_program(program_id, version)))


@blueprint.get("/programs/<program_id>/versions")
def list_versions(program_id: str) -> Response:
    program = visible_program(program_id)
    if program.builtin:
        versions = [{"version": program.version, "created": program.creation_date, "name": program.name,
                     "description": program.description, "cost": program.max_execution_time,
                     "current": True}]
    else:
        versions = services().programs.store.versions(program_id)
    return jsonify({"versions": versions, "count": len(versions)})


@blueprint.post("/programs")
def upload_program() -> tuple[Response, int]:
    identity = current_identity()
    if not identity.may_upload:
        raise PermissionDeniedError("You are not authorized to upload programs.")
    body = load_json_object(request.get_data(), UPLOAD_FIELDS)
    if "data" not in body or not body["data"]:
        raise RequestError("data is required: the program's source (or a zip/tar archive), base64-encoded.",
                           {"data": ["Missing data for required field."]})
    metadata = _checked_metadata(body, partial=False)
    data = _b64(body["data"])
    files = _checked_files(data, metadata["name"], _entry(body))
    program = services().programs.store.create(owner=identity.name, metadata=metadata, data=data, files=files)
    return jsonify(program.to_api()), 201


@blueprint.put("/programs/<program_id>/data")
def update_data(program_id: str) -> Response:
    current = _owned_program(program_id)
    raw = request.get_data()
    entry = None
    if request.is_json:
        body = load_json_object(request.get_data(), frozenset({"data", "entry"}))
        raw, entry = str(body.get("data", "")).encode(), _entry(body)
    data = _b64(raw)
    files = _checked_files(data, current.name, entry)
    program = services().programs.store.update(program_id, data=data, files=files)
    return jsonify(program.to_api())


@blueprint.patch("/programs/<program_id>")
def update_metadata(program_id: str) -> Response:
    _owned_program(program_id)
    body = load_json_object(request.get_data(), PATCH_FIELDS)
    metadata = _checked_metadata(body, partial=True)
    if not metadata:
        raise RequestError("Nothing to update: give name, description, cost or spec.")
    program = services().programs.store.update(program_id, metadata=metadata)
    return jsonify(program.to_api())


@blueprint.put("/programs/<program_id>/public")
def make_public(program_id: str) -> Response:
    _owned_program(program_id)
    return jsonify(services().programs.store.set_public(program_id, True).to_api())


@blueprint.put("/programs/<program_id>/private")
def make_private(program_id: str) -> Response:
    _owned_program(program_id)
    return jsonify(services().programs.store.set_public(program_id, False).to_api())


@blueprint.delete("/programs/<program_id>")
def delete_program(program_id: str) -> tuple[str, int]:
    _owned_program(program_id)
    services().programs.store.delete(program_id)
    return "", 204


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
