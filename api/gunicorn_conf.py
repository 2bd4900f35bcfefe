"""Gunicorn server hooks of ``qruntime api`` (loaded with ``--config python:api.gunicorn_conf``).

A gunicorn worker process that exits takes its live gauges (open streams) with
it: prometheus_client's multiprocess mode needs to be told, from the master
(orchestrator/metrics.py).
"""

from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    from orchestrator.metrics import process_ended

    process_ended(worker.pid)


def on_exit(server: Any) -> None:
    from orchestrator.metrics import remove_samples_dir

    remove_samples_dir()
