"""Checking program metadata (the seed's format) before it is stored.

Required: ``name``, ``description``, ``max_execution_time`` (whole seconds,
between 1 and the server-wide ceiling). Optional ``spec`` with
``backend_requirements`` (an object), and ``parameters`` / ``return_values`` /
``interim_results``, each of which must be a valid JSON Schema within the bounds of
orchestrator/schema_budget.py (depth, local ``$ref`` only, evaluation cost). Every
problem is reported at once, per field. The API runs this in a checker process
(api/checker.py), never on a request thread.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.errors import RequestError
from orchestrator.schema_budget import MAX_SCHEMA_DEPTH, json_depth, schema_problems

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SCHEMA_PARTS = ("parameters", "return_values", "interim_results")
#: Largest spec accepted, so a hostile schema cannot make validation expensive.
MAX_SPEC_BYTES = 64 * 1024
MAX_DESCRIPTION_CHARS = 10_000
#: A spec holds its schemas one level down.
MAX_SPEC_DEPTH = MAX_SCHEMA_DEPTH + 1


def check_metadata(
    metadata: dict[str, Any], *, ceiling_s: int, partial: bool = False
) -> dict[str, Any]:
    """Validated metadata (only the known keys). ``partial`` allows missing fields (PATCH).

    Raises:
        RequestError: with ``errors`` naming every bad field.
    """
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}

    def bad(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field in ("name", "description", "max_execution_time"):
        if field not in metadata or metadata[field] in (None, ""):
            if not partial:
                bad(field, f"{field} is a required metadata field.")
    if "name" in metadata and metadata["name"] not in (None, ""):
        name = metadata["name"]
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            bad("name", "Must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit.")
        else:
            out["name"] = name
    if "description" in metadata and metadata["description"] not in (None, ""):
        description = metadata["description"]
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
            bad("description", f"Must be text of at most {MAX_DESCRIPTION_CHARS} characters.")
        else:
            out["description"] = description
    if "max_execution_time" in metadata and metadata["max_execution_time"] not in (None, ""):
        seconds = metadata["max_execution_time"]
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            bad("max_execution_time", "Must be a whole number of seconds.")
        elif not 1 <= seconds <= ceiling_s:
            bad("max_execution_time", f"Must be between 1 and {ceiling_s} seconds (the server's ceiling).")
        else:
            out["max_execution_time"] = seconds
    if "is_public" in metadata and metadata["is_public"] is not None:
        if not isinstance(metadata["is_public"], bool):
            bad("is_public", "Must be true or false.")
        else:
            out["is_public"] = metadata["is_public"]
    if "spec" in metadata and metadata["spec"] is not None:
        spec = metadata["spec"]
        if not isinstance(spec, dict):
            bad("spec", "Must be an object.")
        elif json_depth(spec, MAX_SPEC_DEPTH) > MAX_SPEC_DEPTH:
            bad("spec", f"Nests more than {MAX_SPEC_DEPTH} levels deep (the limit for a spec).")
        elif len(json.dumps(spec)) > MAX_SPEC_BYTES:
            bad("spec", f"Must be at most {MAX_SPEC_BYTES} bytes of JSON.")
        else:
            for part, problem in _spec_problems(spec):
                bad(f"spec.{part}", problem)
            out["spec"] = spec
    if errors:
        first = next(iter(errors.values()))[0]
        summary = first if len(errors) == 1 else f"{first} (and {len(errors) - 1} more problem(s))"
        raise RequestError(f"Invalid program metadata: {summary}", errors)
    return out


def _spec_problems(spec: dict[str, Any]) -> list[tuple[str, str]]:
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    problems = []
    requirements = spec.get("backend_requirements")
    if requirements is not None and not isinstance(requirements, dict):
        problems.append(("backend_requirements", "Must be an object."))
    elif isinstance(requirements, dict) and "min_num_qubits" in requirements:
        qubits = requirements["min_num_qubits"]
        if isinstance(qubits, bool) or not isinstance(qubits, int) or qubits < 0:
            problems.append(("backend_requirements", "min_num_qubits must be a non-negative integer."))
    for part in SCHEMA_PARTS:
        if part not in spec:
            continue
        schema = spec[part]
        if not isinstance(schema, (dict, bool)):
            problems.append((part, "Must be a JSON Schema (an object)."))
            continue
        budget = schema_problems(schema)
        if budget:
            problems.extend((part, problem) for problem in budget)
            continue
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            problems.append((part, f"Not a valid JSON Schema: {exc.message}"))
    return problems
