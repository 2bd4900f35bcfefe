"""Checking a job's inputs against its program's ``spec.parameters`` JSON Schema.

Inputs are decoded first (RuntimeDecoder), the way the program will see them,
so a circuit is an object and a numpy array is an array. JSON Schema's types
are widened to match: ``object`` also accepts any decoded non-JSON value
(circuits, operators), ``array`` accepts tuples and numpy arrays, ``number``
and ``integer`` accept numpy scalars. Every violation is reported, up to a cap,
so a caller fixes them all in one go. The schema's size is bounded when the
program is uploaded, and no ``format`` checks (which may touch the network) run.
"""

from __future__ import annotations

import json
import numbers
from typing import Any

from orchestrator.errors import RequestError

#: Most violations listed in one error.
MAX_VIOLATIONS = 50


def check_inputs(params_text: str, schema: dict[str, Any] | bool | None) -> None:
    """Raise RequestError naming every violation of ``schema`` by the inputs.

    Raises:
        RequestError: the inputs do not decode, or violate the schema.
    """
    if not schema:
        return
    from qiskit_ibm_runtime.json import RuntimeDecoder

    try:
        inputs = json.loads(params_text, cls=RuntimeDecoder)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the caller's input
        raise RequestError(f"Program inputs could not be decoded: {type(exc).__name__}: {exc}") from None
    validator = _validator_for(schema)
    violations = []
    for error in validator.iter_errors(inputs):
        where = "/".join(str(p) for p in error.absolute_path) or "(inputs)"
        violations.append({"path": where, "message": _message(error)})
        if len(violations) >= MAX_VIOLATIONS:
            break
    if violations:
        listing = "; ".join(f"{v['path']}: {v['message']}" for v in violations)
        raise RequestError(f"Invalid program inputs: {listing}", {"params": violations})


def _message(error: Any) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is a required input and is missing")
    return error.message


def _validator_for(schema: dict[str, Any] | bool) -> Any:
    from jsonschema import validators

    base = validators.validator_for(schema) if isinstance(schema, dict) else validators.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many(
        {
            "object": _is_object,
            "array": _is_array,
            "number": _is_number,
            "integer": _is_integer,
        }
    )
    widened = validators.extend(base, type_checker=checker)
    return widened(schema)


def _is_object(_: Any, value: Any) -> bool:
    return isinstance(value, dict) or not isinstance(
        value, (list, tuple, str, bytes, bool, numbers.Number, type(None))
    ) and not _is_ndarray(value)


def _is_array(_: Any, value: Any) -> bool:
    return isinstance(value, (list, tuple)) or _is_ndarray(value)


def _is_number(_: Any, value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, complex)) and not _is_bool(value)


def _is_integer(_: Any, value: Any) -> bool:
    if isinstance(value, bool) or _is_bool(value):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_ndarray(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _is_bool(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "bool_"
