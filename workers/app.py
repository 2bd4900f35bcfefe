"""The worker's Celery app, with its task and process hooks registered.

``celery -A workers.app worker`` (what ``qruntime worker`` runs) loads this.
Settings come from ``QRT_*`` environment variables.
"""

from __future__ import annotations

import logging

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

from orchestrator.settings import Settings
from workers import context, tasks
from workers.celery_app import TASK_RUN_JOB, make_celery
from workers.reaper import Reaper

logger = logging.getLogger(__name__)
#: Qiskit logs every transpiler pass at INFO; a worker's log is for jobs, not passes.
logging.getLogger("qiskit").setLevel(logging.WARNING)

app = make_celery(Settings.load())
_reaper: Reaper | None = None


@app.task(name=TASK_RUN_JOB, bind=True)
def run_job(self, job_id: str) -> str:
    """Run the job with this id (the message carries nothing else)."""
    return tasks.execute(context.current(), job_id)


def _served_backends() -> list[str]:
    """Names of the catalogue backends whose queues this worker consumes."""
    from orchestrator.backends import backends_for_queues

    queues = [q.name for q in app.amqp.queues.consume_from.values()] if app.amqp.queues else []
    return [info.name for info in backends_for_queues(queues)]


@worker_init.connect
def _build_backends(**_: object) -> None:
    """Build the served backends once, in the main process, so every pool process inherits them."""
    from workers.backends import build_all

    try:
        build_all(_served_backends())
    except Exception:  # a failed build only costs the first job time (it is retried lazily)
        logger.exception("building backends failed")


@worker_process_init.connect
def _warm_pool_process(**_: object) -> None:
    """Exercise transpile on the served backends before the first job, in each pool process."""
    from workers.backends import warm_up

    try:
        warm_up(_served_backends())
    except Exception:  # a failed warm-up only costs the first job time
        logger.exception("backend warm-up failed")
    context.current()


@worker_ready.connect
def _start_reaper(sender=None, **_: object) -> None:
    global _reaper
    hostname = getattr(sender, "hostname", "worker")
    queues = sorted(q.name for q in app.amqp.queues.consume_from.values()) if app.amqp.queues else []
    _reaper = Reaper(Settings.load(), app, worker_name=hostname, queues=queues)
    _reaper.start()


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
