"""Handing a job to the workers: the task name, the Celery settings, ``enqueue``.

Celery carries nothing but job ids; the job store is the source of truth. The
settings below make a message survive a worker that dies mid-job (``acks_late``
+ ``reject_on_worker_lost``), keep a worker from hoarding jobs it cannot start
(prefetch 1), and keep Redis from redelivering a message while its job may
still legitimately run (visibility timeout above the longest allowed job).
Duplicate deliveries are harmless: the task's atomic claim runs a job once.

The API (submit) and the workers (reaper requeue, the task itself) both use
this module, so they cannot disagree about a name or a delivery guarantee. It
imports no Celery: a sender is anything with Celery's ``send_task``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from orchestrator.backends import queue_for_group
from orchestrator.redisconn import parse_redis_url, sentinel_kwargs
from orchestrator.settings import ENV_PREFIX, Settings

#: The one task there is: run the job whose id is the message's only argument.
TASK_RUN_JOB = "qruntime.run_job"
#: Added to the longest allowed max_execution_time to get the broker's visibility timeout.
VISIBILITY_MARGIN_S = 3600


class TaskSender(Protocol):
    """What ``enqueue`` needs of a Celery app."""

    def send_task(self, name: str, args: Sequence[Any] | None = ..., **options: Any) -> Any: ...


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for ``settings`` (broker, queues, delivery guarantees), for ``conf.update``."""
    return {
        "broker_url": settings.broker,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": broker_transport_options(settings),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": queue_for_group("aer"),
        "task_create_missing_queues": True,
        # Task events cost the worker's main process ~5 ms of CPU a job (three broker
        # writes); Flower switches them on in running workers itself (its
        # --enable_events, on by default), so they flow only while someone watches.
        "worker_send_task_events": False,
        "task_send_sent_event": False,  # one more broker write on every submit
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's options for the broker: the visibility timeout, and how to reach sentinels.

    A ``sentinel://`` broker URL needs the master's name and, if the sentinels ask for
    one, their password (``sentinel_kwargs``); the master's own password is in the URL,
    where kombu reads it. Flower reads these same options for its broker page.
    """
    options: dict[str, Any] = {"visibility_timeout": settings.max_execution_time_ceiling_s + VISIBILITY_MARGIN_S}
    if parse_redis_url(settings.broker, f"{ENV_PREFIX}BROKER_URL") is not None:
        options["master_name"] = settings.redis_sentinel_master
        options["sentinel_kwargs"] = sentinel_kwargs(settings)
    return options


def task_label(program_id: str, backend: str) -> str:
    """The name Flower and worker logs show for a job's task: its program and backend at a glance.

    Celery sends it as the message's ``shadow`` header; workers still dispatch on
    ``TASK_RUN_JOB``. Program ids and backend names are few, unlike job ids, so the
    label also makes a bounded Prometheus label in Flower's ``/metrics``.
    """
    return f"{program_id} @ {backend}"


def enqueue(sender: TaskSender, job_id: str, queue: str, *, label: str = "") -> None:
    """Send job ``job_id`` to ``queue``; raises whatever the broker raises if it is unreachable.

    ``label`` (see :func:`task_label`) is what monitors show instead of the task's name.
    """
    options = {"shadow": label} if label else {}
    # The job id as the task id: monitors show it, and the workers can tell which jobs
    # have a message in the broker (workers/lost_messages.py).
    sender.send_task(TASK_RUN_JOB, args=[job_id], queue=queue, task_id=job_id, **options)
