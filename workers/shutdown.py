"""A worker's graceful stop: its running jobs get a grace period, then go back to the queue.

On SIGTERM (what Kubernetes, systemd, ``docker compose stop`` and ``qruntime
up``/``down`` send) Celery stops taking messages and waits for running tasks.
That wait would last as long as the longest job, hours perhaps, until a SIGKILL
loses the jobs and burns one of their attempts. Instead the main process writes
a deadline, ``QRT_SHUTDOWN_GRACE_S`` from now, into the worker's own folder
(private to the worker; jobs never see it). Each supervisor, in a pool process,
looks at it with every heartbeat: a job still running at the deadline is
stopped and *handed back*: QUEUED again with its attempt count as it was before
this run, a reason saying so, and a new message, so another worker runs it.
"""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.settings import Settings
from workers import context
from workers.program_cache import worker_dir

DEADLINE_FILE = "shutdown-deadline"
#: Why a handed-back job is QUEUED again (its reason says "requeued: worker shut down").
REASON = "worker shut down"


def _path(settings: Settings) -> Path:
    return worker_dir(settings.data_path, context.worker_node) / DEADLINE_FILE


def begin(settings: Settings) -> float:
    """Record that this worker is stopping; returns the deadline (epoch seconds) for its jobs."""
    deadline = time.time() + settings.shutdown_grace_s
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(repr(deadline))
    return deadline


def deadline(settings: Settings) -> float | None:
    """The deadline of a stop under way, or None while the worker is not stopping."""
    try:
        return float(_path(settings).read_text())
    except (OSError, ValueError):
        return None
