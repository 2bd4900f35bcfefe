"""The worker's Celery app, with its task and process hooks registered.

``celery -A workers.app worker`` (what ``qruntime worker`` runs) loads this.
Settings come from ``QRT_*`` environment variables.
"""

from __future__ import annotations

import logging
import os

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from prometheus_client import start_http_server

from orchestrator import logs, metrics
from orchestrator.backends import find_backend
from orchestrator.dispatch import enqueue, task_label
from orchestrator.settings import Settings
from orchestrator.status import JobStatus
from workers import context, shutdown, tasks
from workers.celery_app import TASK_RUN_JOB, make_celery
from workers.reaper import Reaper

logger = logging.getLogger(__name__)
#: Qiskit logs every transpiler pass at INFO; a worker's log is for jobs, not passes.
logging.getLogger("qiskit").setLevel(logging.WARNING)

app = make_celery(Settings.load())
_reaper: Reaper | None = None
_keeper = None


@app.task(name=TASK_RUN_JOB, bind=True)
def run_job(self, job_id: str) -> str:
    """Run the job with this id (the message carries nothing else)."""
    with metrics.SLOTS_BUSY.track_inprogress():
        status = tasks.execute(context.current(), job_id)
    if status == JobStatus.QUEUED.value:  # handed back by a stopping worker: another one runs it
        job = context.current().store.get(job_id)
        enqueue(self.app, job_id, find_backend(job.backend).queue, label=task_label(job.program_id, job.backend))
        logger.warning("job %s handed back to the queue: %s", job_id, shutdown.REASON, extra=logs.fields_of(job))
    return status


@setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, **_: object) -> None:
    """Celery's and qruntime's lines, in QRT_LOG_FORMAT, at the worker's --log-level, on stderr."""
    logs.configure(Settings.load().log_format, loglevel or logging.INFO)


@worker_shutting_down.connect
def _begin_graceful_stop(how: str = "", **_: object) -> None:
    """Give running jobs QRT_SHUTDOWN_GRACE_S to finish; supervisors hand back what is left.

    Only a warm stop (SIGTERM, a first SIGINT) waits for tasks; a cold one ends them now.
    """
    if how != "Warm":
        return
    settings = Settings.load()
    shutdown.begin(settings)
    logger.warning("worker stopping: running jobs get %g s to finish, then go back to the queue",
                   settings.shutdown_grace_s)


def _served_backends() -> list[str]:
    """Names of the catalogue backends whose queues this worker consumes."""
    from orchestrator.backends import backends_for_queues

    queues = [q.name for q in app.amqp.queues.consume_from.values()] if app.amqp.queues else []
    return [info.name for info in backends_for_queues(queues)]


@worker_init.connect
def _start_zygote(sender=None, **_: object) -> None:
    """Start the job zygote (by exec, with no secrets) before Celery forks its pool.

    Pool processes never import qiskit or build a backend: programs run in the
    zygote's children, which have both warm.
    """
    global _keeper
    from workers import zygote_client

    settings = Settings.load()
    concurrency = getattr(sender, "concurrency", 0)
    config = zygote_client.sandbox_config(
        settings, _served_backends(), concurrency if isinstance(concurrency, int) and concurrency > 0 else 1
    )
    metrics.SLOTS_TOTAL.set(concurrency if isinstance(concurrency, int) and concurrency > 0 else 1)
    _keeper = zygote_client.ZygoteKeeper(config)
    _keeper.start_zygote()
    _keeper.wait_ready()  # a worker takes no job before its sandbox can run one
    _keeper.start()
    zygote_client.socket_path = _keeper.path
    context.worker_node = getattr(sender, "hostname", "") or context.worker_node


@worker_ready.connect
def _start_reaper(sender=None, **_: object) -> None:
    global _reaper
    hostname = getattr(sender, "hostname", "worker")
    queues = sorted(q.name for q in app.amqp.queues.consume_from.values()) if app.amqp.queues else []
    settings = Settings.load()
    _reaper = Reaper(settings, app, worker_name=hostname, queues=queues)
    _reaper.start()
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, settings.worker_metrics_address, registry=metrics.registry())
        logger.info("metrics at http://%s:%d/metrics", settings.worker_metrics_address, settings.worker_metrics_port)


@worker_process_shutdown.connect
def _forget_pool_process(pid: int | None = None, **_: object) -> None:
    metrics.forget_process(pid or os.getpid())


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
    if _keeper is not None:
        _keeper.stop()
    context.remove_worker_files(Settings.load())
    metrics.remove_samples_dir()
