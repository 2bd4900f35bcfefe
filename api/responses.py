"""marshmallow schemas for every response of the API: the wire format of the domain objects.

flask-smorest's ``response`` dumps ``Job``, ``Program``, ``TokenInfo``,
``BackendInfo``… with these, so the wire format lives here and nowhere else, and
``/openapi.json`` documents exactly what is sent. Field order is the wire's key
order (the seed's, where it defined one). What a view adds to a domain object
(a job's ``waiting_reason``, a backend's ``workers``) comes in as
:class:`Extended` attributes.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, fields, missing

from orchestrator.accounts import ROLES
from orchestrator.events import EVENT_TYPES
from orchestrator.status import JobStatus


class Extended:
    """``obj`` seen with extra attributes: what a response adds to a domain object."""

    def __init__(self, obj: Any, **extra: Any) -> None:
        self._obj = obj
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)


class Whole(fields.Nested):
    """A nested object dumped from the parent object itself (``program: {id, version}`` of a job)."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = missing) -> Any:
        return obj


class NullIfEmpty(fields.String):
    """A string that is ``null`` on the wire when empty."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return value or None


class JsonText(fields.Dict):
    """A JSON object stored as text, sent as the object."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return json.loads(value)


class UsageSchema(Schema):
    """What the run that ended a job cost (orchestrator/usage.py); a figure nothing measured is null."""

    queue_wait_s = fields.Float(allow_none=True, metadata={"description": "From submission to the start of the run."})
    wall_s = fields.Float(allow_none=True, metadata={"description": "The run, from its sandbox to its end."})
    cpu_s = fields.Float(allow_none=True, metadata={"description": "User + system CPU seconds of its processes."})
    peak_memory_bytes = fields.Int(allow_none=True, metadata={"description": "Peak memory of its processes."})
    interim_bytes = fields.Int(allow_none=True, metadata={"description": "Bytes of interim results it wrote."})
    log_bytes = fields.Int(allow_none=True, metadata={"description": "Bytes of log lines it wrote."})
    attempts = fields.Int(allow_none=True, metadata={"description": "Runs it took."})


class UsageText(fields.Nested):
    """The job record's usage JSON text, sent as the object (null before the job has ended)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(UsageSchema, allow_none=True, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return super()._serialize(json.loads(value), attr, obj, **kwargs) if value else None


class ErrorSchema(Schema):
    """The one error envelope."""

    code = fields.Int(required=True, metadata={"description": "The HTTP status."})
    status = fields.Str(required=True, metadata={"description": "Its phrase."})
    message = fields.Str(required=True, metadata={"description": "What is wrong, as a sentence."})
    errors = fields.Dict(metadata={"description": "Per-field details, from validation."})


class JobProgramSchema(Schema):
    id = fields.Str(attribute="program_id")
    version = fields.Str(attribute="program_version")


class JobSchema(Schema):
    """A job: the seed's fields (id, hub, group, project, backend, status, params, program, created), then ours."""

    id = fields.Str(required=True)
    hub = fields.Constant("", metadata={"type": "string"})
    group = fields.Constant("", metadata={"type": "string"})
    project = fields.Constant("", metadata={"type": "string"})
    backend = fields.Str(required=True)
    status = fields.Enum(JobStatus, by_value=True, required=True)
    params = JsonText(required=True, metadata={"description": "The program's inputs as submitted."})
    program = Whole(JobProgramSchema, required=True)
    created = fields.Str(required=True)
    updated = fields.Str()
    started = NullIfEmpty()
    ended = NullIfEmpty()
    log_level = fields.Str()
    cost = fields.Int(attribute="max_execution_time", metadata={"description": "Its time limit in seconds."})
    owner = fields.Str()
    attempts = fields.Int(metadata={"description": "Runs that counted against its attempts (a hand-back does not)."})
    run = fields.Int(metadata={"description": "Which run of it is the latest (one more at each start, "
                                              "hand-backs included); 0 until it first starts."})
    reason = NullIfEmpty(metadata={"description": "Why it ended as it did (failed, cancelled)."})
    last_event_id = fields.Int(attribute="event_seq", metadata={"description": "Id of its latest event."})
    waiting_reason = fields.Str(metadata={"description": "Why a QUEUED job cannot start yet (no live worker)."})
    usage = UsageText(metadata={"description": "What its run cost; null until it has ended."})


class JobListSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    count = fields.Int(required=True)


class InterimResultSchema(Schema):
    id = fields.Int(required=True, metadata={"description": "The event id."})
    run = fields.Int(required=True, metadata={"description": "The run of the job that published it (1, 2, … "
                                                             "when the job ran again after a lost worker)."})
    data = fields.Raw(required=True, metadata={"description": "What the program published, byte for byte."})


class StreamEventSchema(Schema):
    """One Server-Sent Event of ``/jobs/{id}/stream`` (``id:``, ``event:`` and ``data:`` lines)."""

    id = fields.Str(required=True, metadata={"pattern": "^[0-9]+$", "description": "The event id (resume point)."})
    event = fields.Str(required=True, metadata={"enum": list(EVENT_TYPES)})
    data = fields.Str(required=True, metadata={"description": "The event's JSON text."})


class ProgramSchema(Schema):
    """A program in the seed's layout (``cost`` = its time limit), plus version, owner and builtin."""

    id = fields.Str(required=True)
    name = fields.Str(required=True)
    description = fields.Str(required=True)
    cost = fields.Int(attribute="max_execution_time", required=True)
    creation_date = fields.Str(required=True)
    update_date = fields.Str(required=True)
    is_public = fields.Bool(required=True)
    spec = fields.Dict(required=True)
    version = fields.Str(required=True)
    owner = NullIfEmpty()
    builtin = fields.Bool(required=True)


class ProgramDetailSchema(ProgramSchema):
    """A program; its owner (and admins) also get its data."""

    data = fields.Str(metadata={"description": "The source text, or a base64 archive (see data_kind)."})
    data_kind = fields.Str(metadata={"description": "source, zip or tar."})
    entry = fields.Str(attribute="owner_entry", metadata={"description": "The main module of an archive."})


class ProgramListSchema(Schema):
    programs = fields.List(fields.Nested(ProgramSchema), required=True)
    count = fields.Int(required=True)


class ProgramVersionSchema(Schema):
    version = fields.Str(required=True)
    created = fields.Str(allow_none=True)
    name = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)
    cost = fields.Int()
    sha256 = fields.Str(allow_none=True)
    kind = fields.Str(allow_none=True)
    current = fields.Bool(required=True)


class ProgramVersionListSchema(Schema):
    versions = fields.List(fields.Nested(ProgramVersionSchema), required=True)
    count = fields.Int(required=True)


class BackendSchema(Schema):
    """A catalogue entry and the live workers serving its queue."""

    name = fields.Str(required=True)
    group = fields.Str(required=True)
    queue = fields.Str(required=True)
    num_qubits = fields.Int(required=True)
    basis_gates = fields.List(fields.Str(), required=True)
    coupling_map_size = fields.Int(allow_none=True, metadata={"description": "Directed edges; null: all-to-all."})
    simulator_method = fields.Str()
    noisy = fields.Bool()
    device = fields.Str(allow_none=True)
    aliases = fields.List(fields.Str())
    workers = fields.List(fields.Str(), required=True)
    served = fields.Bool(required=True)


class BackendListSchema(Schema):
    backends = fields.List(fields.Nested(BackendSchema), required=True)
    count = fields.Int(required=True)


class UserSchema(Schema):
    name = fields.Str(required=True)
    role = fields.Str(required=True, metadata={"enum": list(ROLES)})
    created = fields.Str()


class UserListSchema(Schema):
    users = fields.List(fields.Nested(UserSchema), required=True)
    count = fields.Int(required=True)


class MeSchema(Schema):
    name = fields.Str(required=True)
    role = fields.Str(required=True, metadata={"enum": list(ROLES)})


class TokenSchema(Schema):
    id = fields.Str(required=True)
    user = fields.Str(required=True)
    created = fields.Str(required=True)
    expires_at = fields.Float(allow_none=True, metadata={"description": "Unix time; null: never."})
    description = fields.Str()


class TokenCreatedSchema(TokenSchema):
    token = fields.Str(required=True, metadata={"description": "The secret: shown this once only."})


class TokenListSchema(Schema):
    tokens = fields.List(fields.Nested(TokenSchema), required=True)
    count = fields.Int(required=True)


class HealthSchema(Schema):
    status = fields.Str(required=True, metadata={"enum": ["ok", "unavailable"]})
    redis = fields.Str(required=True, metadata={"description": "ok, or why Redis cannot be reached."})
    workers = fields.Int(metadata={"description": "Live workers."})
