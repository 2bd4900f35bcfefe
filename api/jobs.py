"""``/jobs``: submit, read, list, results, logs, interim results, cancel, delete."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Response, url_for

from api.auth import current_identity
from api.openapi import Blueprint, links
from api.responses import Extended, InterimResultSchema, JobListSchema, JobSchema
from api.schemas import EventQuerySchema, JobListQuerySchema, JobSubmitSchema
from api.services import services
from api.visibility import visible_job, visible_program
from orchestrator import metrics
from orchestrator.backends import find_backend
from orchestrator.check_process import CHECK_INPUTS
from orchestrator.dispatch import enqueue, task_label
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
blueprint = Blueprint("jobs", __name__, description="Jobs: runs of a program on a backend.")

#: How often a cancel/delete re-reads a running job while waiting for it to stop.
STOP_POLL_S = 0.05
#: Default page size of GET /jobs (the seed client's default).
DEFAULT_JOB_PAGE = 10
#: How the text answers and their status header are documented.
JOB_STATUS_HEADER = {"X-Job-Status": {"description": "The job's status.", "schema": {"type": "string"}}}
TEXT = {"type": "string"}


@blueprint.post("/jobs")
@blueprint.doc(**links(201, "id", {
    "GetJob": ("get", "/jobs/{job_id}", "job_id"),
    "GetResults": ("get", "/jobs/{job_id}/results", "job_id"),
    "GetLogs": ("get", "/jobs/{job_id}/logs", "job_id"),
    "GetInterimResults": ("get", "/jobs/{job_id}/interim_results", "job_id"),
    "CancelJob": ("post", "/jobs/{job_id}/cancel", "job_id"),
    "DeleteJob": ("delete", "/jobs/{job_id}", "job_id"),
}))
@blueprint.arguments(JobSubmitSchema)
@blueprint.response(201, JobSchema, headers={"Location": {
    "description": "The job's URL.", "schema": {"type": "string"}}})
@blueprint.errors(401, 404, 413, 503)
def submit_job(body: dict[str, Any]) -> tuple[Any, int, dict[str, str]]:
    """Run a program on a backend: the job is stored QUEUED and enqueued for a worker."""
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
    metrics.JOBS_SUBMITTED.labels(program=job.program_id, backend=job.backend).inc()
    location = url_for("jobs.get_job", job_id=job.id)
    return _job_view(job), 201, {"Location": location}


def _enqueue(job: Job, queue: str) -> None:
    try:
        enqueue(services().celery, job.id, queue, label=task_label(job.program_id, job.backend))
    except Exception as exc:  # broker unreachable: the job must not sit QUEUED forever
        logger.exception("could not enqueue job %s", job.id)
        reason = f"could not be enqueued: {type(exc).__name__}: {exc}"
        services().store.transition(job.id, JobStatus.FAILED, result=f"Job {job.id} {reason}", reason=reason)
        raise UnavailableError(f"Job {job.id} {reason}") from None


@blueprint.get("/jobs")
@blueprint.arguments(JobListQuerySchema, location="query")
@blueprint.response(200, JobListSchema)
@blueprint.errors(401)
def list_jobs(query: dict[str, Any]) -> dict[str, Any]:
    """The caller's jobs (admins: everyone's), newest first; queued ones say why they wait."""
    limit = DEFAULT_JOB_PAGE if query["limit"] is None else query["limit"]
    jobs, count = services().store.list(
        owner=current_identity().list_scope,
        limit=limit,
        offset=query["offset"],
        pending=query["pending"],
        program_id=query["program"],
    )
    live = services().workers.live() if any(j.status is JobStatus.QUEUED for j in jobs) else {}
    return {"jobs": [_job_view(job, live) for job in jobs], "count": count}


@blueprint.get("/jobs/<job_id>")
@blueprint.response(200, JobSchema)
@blueprint.errors(401, 404)
def get_job(job_id: str) -> Job | Extended:
    """One job."""
    return _job_view(visible_job(job_id))


def _job_view(job: Job, live: dict | None = None) -> Job | Extended:
    """The job; a QUEUED job no live worker can take says so in ``waiting_reason``.

    ``live``: the live workers, when the caller has read them once for many jobs.
    """
    if job.status is not JobStatus.QUEUED:
        return job
    try:
        note = services().waiting_note(find_backend(job.backend), live)
    except RequestError:  # a backend since removed from the catalogue
        note = f"Backend {job.backend} is no longer in the catalogue; no worker will take this job."
    return Extended(job, waiting_reason=note) if note else job


@blueprint.get("/jobs/<job_id>/results")
@blueprint.response(200, TEXT, content_type="text/plain", headers=JOB_STATUS_HEADER,
                    description="The job has ended: its result text (a traceback if it failed).")
@blueprint.alt_response(204, description="The job has not ended yet.", headers=JOB_STATUS_HEADER, success=True)
@blueprint.errors(401, 404)
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
@blueprint.response(200, TEXT, content_type="text/plain", description="What the program logged.")
@blueprint.errors(401, 404)
def get_logs(job_id: str) -> Response:
    """The job's log text."""
    visible_job(job_id)
    return Response(services().store.logs(job_id), status=200, mimetype="text/plain")


@blueprint.get("/jobs/<job_id>/interim_results")
@blueprint.arguments(EventQuerySchema, location="query")
@blueprint.response(200, InterimResultSchema(many=True))
@blueprint.errors(401, 404)
def get_interim_results(query: dict[str, Any], job_id: str) -> Response:
    """``[{"id": n, "run": r, "data": <the program's encoder output>}, …]``, oldest first.

    ``?after=n`` returns only newer ones, for polling. ``data`` is spliced in as
    the program wrote it, so it stays byte-identical. Interim results of a run
    that a later run published again (it resumed from an earlier checkpoint) are
    left out: each appears once.
    """
    visible_job(job_id)
    events = services().store.events.iter(job_id, after=query["after"], types=(EVENT_INTERIM,), live_only=True)
    body = "[" + ",".join(f'{{"id":{e.id},"run":{e.run},"data":{e.data}}}' for e in events) + "]"
    return Response(body, status=200, mimetype="application/json")


@blueprint.post("/jobs/<job_id>/cancel")
@blueprint.response(200, JobSchema, description="The job is cancelled.")
@blueprint.alt_response(202, schema=JobSchema, success=True,
                        description="Cancelling was asked for; the job has not stopped yet.")
@blueprint.errors(401, 404, 409)
def cancel_job(job_id: str) -> tuple[Job, int]:
    """Cancel a queued or running job (409 if it has already ended)."""
    job = _cancel(visible_job(job_id))
    return job, (200 if job.status.is_final else 202)


@blueprint.delete("/jobs/<job_id>")
@blueprint.response(204)
@blueprint.errors(401, 404)
def delete_job(job_id: str) -> Response:
    """Delete a job (cancelling it first if it is still running)."""
    job = visible_job(job_id)
    if not job.status.is_final:
        _cancel(job)
    try:
        services().store.delete(job_id)
    except JobNotFoundError:
        pass
    return Response(status=204)


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
