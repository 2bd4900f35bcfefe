"""The one Celery task: run a job, given its id.

The task claims the job (atomic QUEUED→RUNNING), so a redelivered or duplicated
message finds the job already taken and does nothing. It then puts the program's
files in this worker's cache and hands the job to a
:class:`~workers.supervisor.Supervisor`, which records the final status.
"""

from __future__ import annotations

import logging
import time

import redis
from celery.exceptions import Reject

from orchestrator import logs, metrics
from orchestrator.backends import find_backend
from orchestrator.errors import (
    InvalidTransitionError,
    JobNotFoundError,
    NotFoundError,
    RequestError,
)
from orchestrator.outage import OUTAGE_ERRORS
from orchestrator.status import JobStatus
from orchestrator.store import Job
from workers.context import WorkerContext
from workers.supervisor import Supervisor

logger = logging.getLogger(__name__)

#: Pause before handing a message back when the job store cannot be reached, so a
#: Redis outage does not turn into a hot redelivery loop.
STORE_UNREACHABLE_BACKOFF_S = 1.0


def execute(ctx: WorkerContext, job_id: str) -> str:
    """Claim and run one job; returns its final status (or why it was skipped).

    Every line logged meanwhile is about the job (orchestrator/logs.py): by its id
    until it is claimed, then by its program, backend and worker too.
    """
    with logs.about_job(logs.job_fields(job_id)):
        job = _claim(ctx, job_id)
    if isinstance(job, str):
        return job
    with logs.about_job(logs.fields_of(job)):
        logger.info("job %s running: program %s on %s, attempt %d", job_id, job.program_id, job.backend,
                    job.attempts)
        return _run(ctx, job)


def _claim(ctx: WorkerContext, job_id: str) -> Job | str:
    """The job, now RUNNING on this worker; or why it is not run here ("missing", "skipped")."""
    store = ctx.store
    try:
        job = store.claim(job_id, ctx.name)
    except JobNotFoundError:
        logger.info("job %s no longer exists; message dropped", job_id)
        return "missing"
    except InvalidTransitionError as exc:
        logger.info("job %s not claimed: %s", job_id, exc.message)
        return "skipped"
    except redis.RedisError as exc:
        metrics.REDIS_ERRORS.labels(component="worker").inc()
        # Failing the task would ack the message and leave the job QUEUED forever.
        logger.warning("job %s: job store unreachable (%s); message handed back", job_id, exc)
        time.sleep(STORE_UNREACHABLE_BACKOFF_S)
        raise Reject(exc, requeue=True) from None
    return job


def _run(ctx: WorkerContext, job: Job) -> str:
    """Put the program's files in place and supervise the claimed job to its final status."""
    job_id, store = job.id, ctx.store
    try:
        program = ctx.programs.get(job.program_id, job.program_version or None)
        files = ctx.cache.files(program, ctx.settings.program_paths)
        backend = find_backend(job.backend).name
    except (NotFoundError, RequestError) as exc:
        _fail(ctx, job, f"Job {job_id} could not start: {exc.message}")
        return JobStatus.FAILED.value
    except redis.RedisError:
        raise
    except Exception as exc:  # files that cannot be unpacked here: fail now, not once per redelivery
        logger.exception("job %s: program files could not be prepared", job_id)
        _fail(ctx, job, f"Job {job_id} could not start: its program's files could not be prepared "
                           f"({type(exc).__name__}: {exc}).")
        return JobStatus.FAILED.value
    try:
        return Supervisor(store, job, files, backend, ctx.control).run().value
    except Exception as exc:  # the supervisor itself broke: never leave the job RUNNING
        logger.exception("supervisor of job %s failed", job_id)
        _fail(ctx, job, f"Job {job_id} failed inside qruntime: {type(exc).__name__}: {exc}")
        return JobStatus.FAILED.value


def _fail(ctx: WorkerContext, job: Job, text: str) -> None:
    """FAILED, if the job is still on this run (a run that lost it to another worker records nothing)."""
    try:
        ctx.store.transition(
            job.id, JobStatus.FAILED, expect=[JobStatus.RUNNING], result=text, reason=text, run=job.run
        )
    except (InvalidTransitionError, JobNotFoundError):
        pass
    except OUTAGE_ERRORS as exc:  # the reaper settles it once Redis is back (its heartbeat has stopped)
        logger.warning("job %s: could not record its failure (%s): %s", job.id, exc, text)
