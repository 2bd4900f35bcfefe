"""A bare Celery app with one no-op task: the floor a qruntime job's round trip is compared to."""

from __future__ import annotations

import os

from celery import Celery

_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
app = Celery("bench_baseline", broker=_url, backend=_url, set_as_current=False)
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_default_queue="bench.baseline")


@app.task(name="bench.noop")
def noop() -> None:
    """Does nothing: the round trip is all broker, worker and result backend."""
