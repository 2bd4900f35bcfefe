"""The worker's housekeeping thread: announce the worker, settle orphans, expire jobs.

Runs in each worker's main process. It records which queues the worker serves
(for ``/backends`` and ``/health``) and, every few seconds, requeues or fails
jobs whose supervisor stopped heartbeating (see ``orchestrator.reaping``) and
deletes finished jobs whose retention (``QRT_JOB_TTL_S``) is over.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from celery import Celery

from orchestrator.backends import find_backend
from orchestrator.reaping import reap_orphans
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.store import Job, JobStore
from workers.celery_app import TASK_RUN_JOB

logger = logging.getLogger(__name__)



class Reaper(threading.Thread):
    """Daemon thread; ``stop()`` ends it within one interval."""

    def __init__(self, settings: Settings, app: Celery, *, worker_name: str, queues: list[str]) -> None:
        super().__init__(name="qruntime-reaper", daemon=True)
        self.settings = settings
        self.app = app
        self.worker_name = worker_name
        self.queues = queues
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        try:
            connect(self.settings).hdel(JobStore(connect(self.settings), self.settings).keys.workers(), self.worker_name)
        except Exception:
            pass

    def run(self) -> None:
        store = JobStore(connect(self.settings), self.settings)
        while not self._stopped.is_set():
            try:
                self._announce(store)
                reap_orphans(store, self._requeue)
                store.delete_expired()
            except Exception:
                logger.exception("reaper pass failed; trying again")
            self._stopped.wait(self.settings.reaper_interval_s)

    def _announce(self, store: JobStore) -> None:
        record = {"queues": self.queues, "seen": time.time()}
        store.redis.hset(store.keys.workers(), self.worker_name, json.dumps(record))

    def _requeue(self, job: Job) -> None:
        self.app.send_task(TASK_RUN_JOB, args=[job.id], queue=find_backend(job.backend).queue)
