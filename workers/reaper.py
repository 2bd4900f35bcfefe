"""The worker's housekeeping thread: announce the worker, settle orphans, expire jobs.

Runs in each worker's main process. It records which queues the worker serves
(for ``/backends`` and ``/health``) and, every few seconds, requeues or fails
jobs whose supervisor stopped heartbeating (see ``orchestrator.reaping``),
deletes finished jobs whose retention (``QRT_JOB_TTL_S``) is over, and sends
again the message of a job long QUEUED without one (``workers.lost_messages``).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery import Celery

from orchestrator import metrics
from orchestrator.backends import find_backend
from orchestrator.dispatch import enqueue, task_label
from orchestrator.keys import Keys
from orchestrator.reaping import reap_orphans
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import JobStatus
from orchestrator.store import Job, JobStore
from orchestrator.worker_registry import WorkerRegistry
from workers.lost_messages import resend_lost

logger = logging.getLogger(__name__)
#: How long ``stop()`` lets a pass in progress finish, so it cannot re-announce a forgotten worker.
STOP_WAIT_S = 5.0


class Reaper(threading.Thread):
    """Daemon thread; ``stop()`` ends it and takes the worker out of the registry."""

    def __init__(self, settings: Settings, app: Celery, *, worker_name: str, queues: list[str]) -> None:
        super().__init__(name="qruntime-reaper", daemon=True)
        self.settings = settings
        self.app = app
        self.worker_name = worker_name
        self.queues = queues
        self.registry = WorkerRegistry(connect(settings), Keys(settings.namespace))
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(STOP_WAIT_S)
        try:
            self.registry.forget(self.worker_name)
        except Exception:  # shutting down anyway: the entry goes stale on its own
            logger.warning("could not remove worker %s from the registry", self.worker_name, exc_info=True)

    def run(self) -> None:
        store = JobStore(connect(self.settings), self.settings)
        while not self._stopped.is_set():
            try:
                self.registry.announce(self.worker_name, self.queues)
                for _, status in reap_orphans(store, self._requeue):
                    if status is JobStatus.QUEUED:
                        metrics.REAPER_REQUEUES.inc()
                    elif status is JobStatus.FAILED:
                        metrics.REAPER_FAILURES.inc()
                store.delete_expired()
                lost = resend_lost(store, self.app, self.app.conf.qruntime_queues, self._requeue, time.time())
                metrics.LOST_MESSAGES_RESENT.inc(len(lost))
            except redis.RedisError:
                metrics.REDIS_ERRORS.labels(component="reaper").inc()
                logger.exception("reaper pass failed (Redis); trying again")
            except Exception:
                logger.exception("reaper pass failed; trying again")
            self._stopped.wait(self.settings.reaper_interval_s)

    def _requeue(self, job: Job) -> None:
        enqueue(self.app, job.id, find_backend(job.backend).queue, label=task_label(job.program_id, job.backend))
