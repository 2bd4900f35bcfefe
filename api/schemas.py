"""marshmallow schemas for every request body and query string the API accepts."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from orchestrator.errors import RequestError
from orchestrator.schema_budget import json_depth

#: Page size limits for listings.
MAX_PAGE_SIZE = 1000
#: Largest offset or event id a query may name: Redis indexes and stream ids are
#: 64-bit, and a bigger number would reach Redis as an error instead of a 400.
MAX_QUERY_INT = 2**53
#: Deepest nesting of objects and arrays in a request body.
MAX_BODY_DEPTH = 100
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Params(fields.Field):
    """Program inputs: a JSON object in the seed wire format.

    Also accepts the legacy shapes the seed's server took: a JSON string holding
    the object, or a one-element list of either.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValidationError("Must be an object (or a one-element list holding one).")
            value = value[0]
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_constant=_refuse_constant)
            except RecursionError:
                raise ValidationError("Is a string of JSON nested too deeply to be parsed.") from None
            except ValueError as exc:
                raise ValidationError(f"Is a string but not JSON text: {exc}.") from None
            if json_depth(value, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
                raise ValidationError(f"Nests more than {MAX_BODY_DEPTH} levels deep, the limit.")
        if not isinstance(value, dict):
            raise ValidationError(f"Must be an object of program inputs, not {type(value).__name__}.")
        return json.dumps(value)


class JobSubmitSchema(Schema):
    """``POST /jobs`` (the seed's fields; hub/group/project/runtime are accepted and ignored)."""

    program_id = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    backend = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    params = Params(load_default=lambda: "{}")
    log_level = fields.Str(load_default="WARNING")
    version = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))
    max_execution_time = fields.Int(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1))
    hub = fields.Str(allow_none=True)
    group = fields.Str(allow_none=True)
    project = fields.Str(allow_none=True)
    runtime = fields.Str(allow_none=True)

    @pre_load
    def _accept_seed_spelling(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and "programId" in data and "program_id" not in data:
            data = {**data, "program_id": data["programId"]}
            del data["programId"]
        return data

    @post_load
    def _normalize(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        level = data["log_level"].upper() if isinstance(data["log_level"], str) else data["log_level"]
        level = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
        if level not in LOG_LEVELS:
            raise ValidationError(
                f"{data['log_level']} is not a valid log level. The valid log levels are: "
                + ", ".join(LOG_LEVELS) + ".",
                field_name="log_level",
            )
        data["log_level"] = level
        return data


def _bool_param(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError("Must be true or false.")


class QueryBool(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        return _bool_param(str(value))


class PageQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Int(load_default=None, validate=validate.Range(min=0, max=MAX_PAGE_SIZE))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=MAX_QUERY_INT))


class JobListQuerySchema(PageQuerySchema):
    pending = QueryBool(load_default=None)
    program = fields.Str(load_default=None)


class EventQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=MAX_QUERY_INT))


def load_json_body(raw: bytes) -> Any:
    """Parse a request body, saying exactly why it is not JSON when it is not.

    NaN and Infinity are refused: Python's json accepts them, but they are not
    JSON, and echoing them back in a job would break every other client. Nesting
    is bounded: whatever walks the body later (encoders, validators) recurses.
    """
    if not raw.strip():
        raise RequestError("Request body is empty; a JSON object was expected.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise RequestError("Request body is not UTF-8 text; a JSON object was expected.") from None
    except RecursionError:
        raise RequestError("Request body is nested too deeply to be parsed.") from None
    except ValueError as exc:
        raise RequestError(f"Request body is not valid JSON: {exc}.") from None
    if json_depth(body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
        raise RequestError(f"Request body nests more than {MAX_BODY_DEPTH} levels deep, the limit.")
    return body


def require_object(body: Any) -> dict[str, Any]:
    """``body`` if it is a JSON object; else a 400 naming what it is instead."""
    if not isinstance(body, dict):
        raise RequestError(f"Request body must be a JSON object, not {json_type_name(body)}.")
    return body


def json_type_name(value: Any) -> str:
    """The JSON name of a parsed value's type (array, string, number, …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def load_json_object(raw: bytes, allowed: frozenset[str], *, empty_ok: bool = False) -> dict[str, Any]:
    """A JSON object body with only ``allowed`` keys (unknown ones are named in the 400)."""
    body = {} if empty_ok and not raw.strip() else load_json_body(raw)
    if not isinstance(body, dict):
        raise RequestError(f"Request body must be a JSON object, not {type(body).__name__}.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
            {name: ["Unknown field."] for name in unknown},
        )
    return body
