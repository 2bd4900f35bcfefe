"""The Celery application: at-least-once delivery of job ids to backend queues.

Celery carries nothing but job ids; the job store is the source of truth. The
settings below make a message survive a worker that dies mid-job (``acks_late``
+ ``reject_on_worker_lost``), keep a worker from hoarding jobs it cannot start
(prefetch 1), and keep Redis from redelivering a message while its job may
still legitimately run (visibility timeout above the longest allowed job).
Duplicate deliveries are harmless: the task's atomic claim runs a job once.
"""

from __future__ import annotations

from celery import Celery

from orchestrator.backends import groups, queue_for_group
from orchestrator.settings import Settings

TASK_RUN_JOB = "qruntime.run_job"
#: Added to the longest allowed max_execution_time to get the broker's visibility timeout.
VISIBILITY_MARGIN_S = 3600


def make_celery(settings: Settings) -> Celery:
    """A Celery app wired to ``settings`` (broker, queues, delivery guarantees)."""
    app = Celery("qruntime", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.max_execution_time_ceiling_s + VISIBILITY_MARGIN_S
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue_for_group("aer"),
        task_create_missing_queues=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.conf.qruntime_settings = settings
    app.conf.qruntime_queues = [queue_for_group(g) for g in groups()]
    return app
