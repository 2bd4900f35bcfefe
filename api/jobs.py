"""``/jobs``: submit, read, list, results, logs, interim results, cancel, delete."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request, url_for

from api.auth import current_identity
from api.backends import waiting_note
from api.programs import visible_program
from api.schemas import (
    EventQuerySchema,
    JobListQuerySchema,
    JobSubmitSchema,
    load_json_body,
    require_object,
)
from api.services import services
from orchestrator.backends import find_backend
from orchestrator.check_process import CHECK_INPUTS
from orchestrator.dispatch import enqueue
from orchestrator.errors import (
    InvalidTransitionError,
    JobNotFoundError,
    RequestError,
    UnavailableError,
)
from orchestrator.events import EVENT_INTERIM
from orchestrator.status import JobStatus
from orchestrator.store import Job

logger = logging.getLogger(__name__)
blueprint = Blueprint("jobs", __name__)

#: How often a cancel/delete re-reads a running job while waiting for it to stop.
STOP_POLL_S = 0.05
#: Default page size of GET /jobs (the seed client's default).
DEFAULT_JOB_PAGE = 10


def visible_job(job_id: str) -> Job:
    """The job, if it exists and the caller may see it; 404 otherwise (ids do not leak)."""
    try:
        job = services().store.get(job_id)
    except JobNotFoundError:
        raise JobNotFoundError(f"Job not found: {job_id}") from None
    if not current_identity().owns(job.owner):
        raise JobNotFoundError(f"Job not found: {job_id}")
    return job


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    body = JobSubmitSchema().load(require_object(load_json_body(request.get_data())))
    svc = services()
    program = visible_program(body["program_id"], body["version"])
    backend = find_backend(body["backend"])
    min_qubits = program.backend_requirements.get("min_num_qubits")
    if isinstance(min_qubits, int) and backend.num_qubits < min_qubits:
        raise RequestError(
            f"Backend {backend.name} has {backend.num_qubits} qubits; program "
            f"{program.id} needs at least {min_qubits}."
        )
    max_time = program.max_execution_time
    if body["max_execution_time"] is not None:
        if body["max_execution_time"] > max_time:
            raise RequestError(
                f"max_execution_time {body['max_execution_time']} s is above program "
                f"{program.id}'s own limit of {max_time} s; a job may only lower it."
            )
        max_time = body["max_execution_time"]
    schema = program.spec.get("parameters")
    if schema:
        svc.checker.run(CHECK_INPUTS, {"schema": schema}, body["params"].encode(), subject="the job's inputs")
    job = svc.store.create(
        program_id=program.id,
        program_version=program.version,
        backend=backend.name,
        owner=current_identity().name,
        params=body["params"],
        log_level=body["log_level"],
        max_execution_time=max_time,
    )
    _enqueue(job, backend.queue)
    location = url_for("jobs.get_job", job_id=job.id)
    return jsonify(_job_json(job)), 201, {"Location": location}


def _enqueue(job: Job, queue: str) -> None:
    try:
        enqueue(services().celery, job.id, queue)
    except Exception as exc:  # broker unreachable: the job must not sit QUEUED forever
        logger.exception("could not enqueue job %s", job.id)
        reason = f"could not be enqueued: {type(exc).__name__}: {exc}"
        services().store.transition(job.id, JobStatus.FAILED, result=f"Job {job.id} {reason}", reason=reason)
        raise UnavailableError(f"Job {job.id} {reason}") from None


@blueprint.get("/jobs")
def list_jobs() -> Response:
    query = JobListQuerySchema().load(request.args)
    limit = DEFAULT_JOB_PAGE if query["limit"] is None else query["limit"]
    jobs, count = services().store.list(
        owner=current_identity().list_scope,
        limit=limit,
        offset=query["offset"],
        pending=query["pending"],
        program_id=query["program"],
    )
    return jsonify({"jobs": [j.to_api() for j in jobs], "count": count})


@blueprint.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return jsonify(_job_json(visible_job(job_id)))


def _job_json(job: Job) -> dict:
    """The job's JSON; a QUEUED job no live worker can take says so in ``waiting_reason``."""
    data = job.to_api()
    if job.status is JobStatus.QUEUED:
        try:
            note = waiting_note(find_backend(job.backend))
        except RequestError:  # a backend since removed from the catalogue
            note = f"Backend {job.backend} is no longer in the catalogue; no worker will take this job."
        if note:
            data["waiting_reason"] = note
    return data


@blueprint.get("/jobs/<job_id>/results")
def get_results(job_id: str) -> Response:
    """The final result text; 204 (with ``X-Job-Status``) until the job has ended."""
    job = visible_job(job_id)
    if not job.status.is_final:
        response = Response(status=204)
        response.headers["X-Job-Status"] = job.status.value
        return response
    text = services().store.result(job_id) or ""
    response = Response(text, status=200, mimetype="text/plain")
    response.headers["X-Job-Status"] = job.status.value
    return response


@blueprint.get("/jobs/<job_id>/logs")
def get_logs(job_id: str) -> Response:
    visible_job(job_id)
    return Response(services().store.logs(job_id), status=200, mimetype="text/plain")


@blueprint.get("/jobs/<job_id>/interim_results")
def get_interim_results(job_id: str) -> Response:
    """``[{"id": n, "data": <the program's encoder output>}, …]``, oldest first.

    ``?after=n`` returns only newer ones, for polling. ``data`` is spliced in as
    the program wrote it, so it stays byte-identical.
    """
    visible_job(job_id)
    after = EventQuerySchema().load(request.args)["after"]
    events = services().store.events.iter(job_id, after=after, types=(EVENT_INTERIM,))
    body = "[" + ",".join(f'{{"id":{e.id},"data":{e.data}}}' for e in events) + "]"
    return Response(body, status=200, mimetype="application/json")


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[Response, int]:
    job = _cancel(visible_job(job_id))
    return jsonify(job.to_api()), (200 if job.status.is_final else 202)


@blueprint.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> tuple[str, int]:
    job = visible_job(job_id)
    if not job.status.is_final:
        _cancel(job)
    try:
        services().store.delete(job_id)
    except JobNotFoundError:
        pass
    return "", 204


def _cancel(job: Job) -> Job:
    """QUEUED → CANCELLED at once; RUNNING → ask the supervisor and wait for it to stop.

    Raises:
        InvalidTransitionError: the job has already ended (409).
    """
    store = services().store
    if job.status.is_final:
        raise InvalidTransitionError(f"Job {job.id} has already ended ({job.status.value}) and cannot be cancelled.")
    if job.status is JobStatus.QUEUED:
        try:
            return store.transition(job.id, JobStatus.CANCELLED, expect=[JobStatus.QUEUED], reason="cancelled on request")
        except InvalidTransitionError:
            job = store.get(job.id)  # it started meanwhile: cancel it as a running job
            if job.status.is_final:
                raise InvalidTransitionError(
                    f"Job {job.id} has already ended ({job.status.value}) and cannot be cancelled."
                ) from None
    store.request_cancel(job.id)
    deadline = time.monotonic() + store.settings.cancel_wait_s
    while time.monotonic() < deadline:
        job = store.get(job.id)
        if job.status.is_final:
            return job
        time.sleep(STOP_POLL_S)
    return store.get(job.id)
