"""marshmallow schemas for every request body and query string the API accepts, and the JSON rules.

Requests are loaded by :mod:`api.parsing` (flask-smorest's ``arguments``), and
``/openapi.json`` is generated from the same classes; responses are in
:mod:`api.responses`.

Program metadata fields are typed for the document only: they are checked by
:mod:`orchestrator.program_metadata` in a checker process (the one validator of
metadata, built-ins included), which says what is wrong in its own words.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
)

from orchestrator.accounts import ROLES
from orchestrator.errors import RequestError
from orchestrator.schema_budget import json_depth

#: Page size limits for listings.
MAX_PAGE_SIZE = 1000
#: Largest offset or event id a query may name: Redis indexes and stream ids are
#: 64-bit, and a bigger number would reach Redis as an error instead of a 400.
MAX_QUERY_INT = 2**53
#: Longest token lifetime: beyond it Redis refuses the key's expiry time.
MAX_TOKEN_LIFETIME_S = 100 * 365 * 86400
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


class Body(Schema):
    """A JSON request body: unknown fields are refused, named, with the allowed ones listed."""

    #: Field names accepted besides the declared ones (renamed by a ``pre_load``).
    ALIASES: tuple[str, ...] = ()

    @pre_load
    def _refuse_unknown(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            allowed = {f.data_key or name for name, f in self.load_fields.items()} | set(self.ALIASES)
            unknown = sorted(set(data) - allowed)
            if unknown:
                raise RequestError(
                    f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
                    {name: ["Unknown field."] for name in unknown},
                )
        return data


class JobSubmitSchema(Body):
    """``POST /jobs`` (the seed's fields; hub/group/project/runtime are accepted and ignored)."""

    ALIASES = ("programId",)

    program_id = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    backend = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    params = Params(load_default=lambda: "{}", metadata={
        "description": "The program's inputs (RuntimeEncoder JSON); a JSON string of one, or a one-element "
                       "list, is accepted too.",
        "oneOf": [{"type": "object"}, {"type": "string"}, {"type": "array", "minItems": 1, "maxItems": 1}]})
    log_level = fields.Str(load_default="WARNING", metadata={
        "enum": list(LOG_LEVELS), "description": "Case-insensitive; WARN and FATAL are accepted too."})
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


class QueryBool(fields.Boolean):
    """``true``/``1``/``yes`` or ``false``/``0``/``no`` in a query string."""

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


class ProgramQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    version = fields.Str(load_default=None, metadata={"description": "A version number; the current one if absent."})


class StreamQuerySchema(Schema):
    """Checked by the view (its message names the header or the parameter)."""

    class Meta:
        unknown = EXCLUDE

    last_event_id = fields.Str(metadata={"description": "Resume after this event id (for clients that cannot "
                                                        "send Last-Event-ID).", "pattern": "^[0-9]{1,18}$"})
    access_token = fields.Str(metadata={"description": "The bearer token, for a browser's EventSource."})


class StreamHeadersSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    last_event_id = fields.Str(data_key="Last-Event-ID", metadata={
        "description": "The id of the last event the client has (EventSource sends it on reconnecting).",
        "pattern": "^[0-9]{1,18}$"})


class TokenListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    user = fields.Str(metadata={"description": "Whose tokens (admins only; others always see their own)."})


# -- program, account and token bodies -------------------------------------------------

def _typed(type_: str, description: str, **extra: Any) -> fields.Raw:
    """A field checked by its consumer, documented as ``type_``."""
    return fields.Raw(metadata={"type": type_, "description": description, **extra})


class ProgramMetadataSchema(Body):
    name = _typed("string", "The program's name, also its id.", minLength=1)
    description = _typed("string", "What the program does.")
    cost = _typed("integer", "The longest a job may run, in seconds (the seed's name).", minimum=1)
    max_execution_time = _typed("integer", "Same as cost.", minimum=1)
    spec = _typed("object", "backend_requirements, and JSON Schemas of parameters, return_values and "
                            "interim_results.")


class ProgramUploadSchema(ProgramMetadataSchema):
    """``POST /programs``: the seed's upload body; ``data`` may also hold a zip or tar archive."""

    data = fields.Raw(required=True, metadata={
        "type": "string", "format": "byte", "minLength": 1,
        "description": "The program's source, or a zip/tar archive of its directory, base64-encoded."},
        error_messages={"required": "data is required: the program's source (or a zip/tar archive), "
                                    "base64-encoded."})
    is_public = _typed("boolean", "Whether every user may see and run it.")
    entry = _typed("string", "The main module inside an archive.", pattern=r"\.py$")


class ProgramDataSchema(Body):
    """``PUT /programs/{id}/data`` as JSON; the raw base64 text is accepted as the body too."""

    data = _typed("string", "The new source or archive, base64-encoded.", format="byte", minLength=1)
    entry = _typed("string", "The main module inside an archive.", pattern=r"\.py$")


class UserCreateSchema(Body):
    name = fields.Str(required=True, metadata={"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"},
                      error_messages={"required": "name is required: 1-64 letters, digits, '_', '.', '@' or '-'."})
    role = fields.Str(load_default="user", metadata={"enum": list(ROLES)})


class UserChangeSchema(Body):
    role = fields.Str(required=True, metadata={"enum": list(ROLES)},
                      error_messages={"required": "role is required: admin, developer or user."})


class Seconds(fields.Float):
    """A number of seconds: JSON numbers only (no numeric strings, no booleans)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, (str, bool)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class TokenCreateSchema(Body):
    """``POST /tokens`` (an empty body is a token for the caller that never expires)."""

    class Meta:
        empty_body_ok = True

    user = fields.Str(load_default=None, allow_none=True, metadata={"description": "Whose token (admins only)."})
    expires_in_s = Seconds(load_default=None, allow_none=True,
                           validate=validate.Range(min=0, min_inclusive=False, max=MAX_TOKEN_LIFETIME_S,
                                                   error="expires_in_s must be positive and at most {max} s "
                                                         "(100 years)."),
                           error_messages={"invalid": "expires_in_s must be a number of seconds."},
                           metadata={"description": "Lifetime in seconds (positive); none: never expires."})
    description = fields.Str(load_default="", allow_none=True)


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
