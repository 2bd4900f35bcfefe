"""Finding jobs whose worker died and deciding what becomes of them.

A RUNNING job's supervisor heartbeats; when a worker is SIGKILLed (or its host
vanishes) the heartbeat stops. Such an orphan is requeued while it has attempts
left, cancelled if a cancel was already asked for, and failed with a reason
otherwise — never left RUNNING. Safe to run from many places at once: every
decision is an atomic transition that only one reaper can win.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.errors import InvalidTransitionError, JobNotFoundError
from orchestrator.logs import fields_of
from orchestrator.status import JobStatus
from orchestrator.store import Job, JobStore

logger = logging.getLogger(__name__)


def reap_orphans(store: JobStore, requeue: Callable[[Job], None]) -> list[tuple[str, JobStatus]]:
    """Settle every RUNNING job with a stale heartbeat; returns (job id, new status)."""
    settings = store.settings
    settled: list[tuple[str, JobStatus]] = []
    for job_id in store.stale_running(settings.heartbeat_stale_s):
        try:
            job = store.get(job_id)
        except JobNotFoundError:
            store.redis.zrem(store.keys.running(), job_id)
            continue
        if job.status is not JobStatus.RUNNING:
            store.redis.zrem(store.keys.running(), job_id)
            continue
        lost = f"its worker ({job.worker or 'unknown'}) stopped responding"
        try:
            if job.cancel_requested:
                target = JobStatus.CANCELLED
                store.transition(job_id, target, expect=[JobStatus.RUNNING], reason=f"cancelled; {lost}",
                                 run=job.run)
            elif job.attempts < settings.max_attempts:
                target = JobStatus.QUEUED
                job = store.transition(
                    job_id, target, expect=[JobStatus.RUNNING], reason=f"requeued: {lost}", run=job.run
                )
                try:
                    requeue(job)
                except Exception as exc:  # no message, no run: it must not sit QUEUED forever
                    logger.exception("could not requeue job %s", job_id, extra=fields_of(job))
                    target = JobStatus.FAILED
                    text = f"Job {job_id} failed: {lost} and it could not be requeued ({type(exc).__name__}: {exc})."
                    store.transition(job_id, target, expect=[JobStatus.QUEUED], result=text, reason=text)
            else:
                target = JobStatus.FAILED
                text = (
                    f"Job {job_id} failed: {lost} and it has run {job.attempts} "
                    f"time(s), the most allowed (QRT_MAX_ATTEMPTS={settings.max_attempts})."
                )
                store.transition(job_id, target, expect=[JobStatus.RUNNING], result=text, reason=text,
                                 run=job.run)
        except (InvalidTransitionError, JobNotFoundError):
            continue  # another reaper, the job's own supervisor, or a new run of it got there first
        logger.warning("job %s was orphaned (%s): now %s", job_id, lost, target.value, extra=fields_of(job))
        settled.append((job_id, target))
    return settled
