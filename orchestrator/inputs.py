"""Checking a job's inputs against its program's ``spec.parameters`` JSON Schema.

Inputs are decoded first (RuntimeDecoder), the way the program will see them,
so a circuit is an object and a numpy array is an array. JSON Schema's types
are widened to match: ``object`` also accepts any decoded non-JSON value
(circuits, operators), ``array`` accepts tuples and numpy arrays, ``number``
and ``integer`` accept numpy scalars. Every violation is reported, up to a cap,
so a caller fixes them all in one go.

A hostile schema or input cannot hang the API: the schema's size is bounded when
the program is uploaded, no ``format`` checks (which may touch the network) run,
and every regular expression (``pattern``, ``patternProperties``, and the
``additionalProperties`` that depends on them) runs on the ``regex`` engine
with a time limit, so a catastrophically backtracking pattern fails that one
check instead of blocking the process.
"""

from __future__ import annotations

import json
import numbers
from typing import Any

from orchestrator.errors import RequestError

#: Most violations listed in one error.
MAX_VIOLATIONS = 50
#: Longest one regular-expression match may take.
REGEX_TIMEOUT_S = 0.1


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
    widened = validators.extend(
        base,
        validators={
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
        type_checker=checker,
    )
    return widened(schema)


def _search(pattern: str, text: str) -> bool | None:
    """``regex.search`` with a deadline: True/False, or None if it ran out of time or is invalid."""
    import regex

    try:
        return regex.search(pattern, text, timeout=REGEX_TIMEOUT_S) is not None
    except (TimeoutError, regex.error):
        return None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if not validator.is_type(instance, "string"):
        return
    found = _search(pattern, instance)
    if found is None:
        yield ValidationError(f"could not be checked against pattern {pattern!r} in time")
    elif not found:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            found = _search(pattern, key)
            if found is None:
                yield ValidationError(f"key {key!r} could not be checked against pattern {pattern!r} in time")
            elif found:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = sorted(
        key for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        listing = ", ".join(repr(extra) for extra in extras)
        yield ValidationError(f"Additional properties are not allowed ({listing} unexpected)")


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
