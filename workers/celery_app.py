"""The workers' Celery application, configured by ``orchestrator.dispatch``.

Why each setting is what it is (at-least-once delivery of job ids) is told in
``orchestrator.dispatch``, which the API shares; this module only builds the app.
"""

from __future__ import annotations

from celery import Celery

from orchestrator.backends import groups, queue_for_group
from orchestrator.dispatch import TASK_RUN_JOB, celery_config
from orchestrator.settings import Settings

__all__ = ["TASK_RUN_JOB", "make_celery"]


def make_celery(settings: Settings) -> Celery:
    """A Celery app wired to ``settings`` (broker, queues, delivery guarantees)."""
    app = Celery("qruntime", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.qruntime_settings = settings
    app.conf.qruntime_queues = [queue_for_group(g) for g in groups()]
    return app
