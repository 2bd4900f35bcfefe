"""Gunicorn server hooks of ``qruntime api`` (``--config python:orchestrator.gunicorn_conf``).

A gunicorn worker process that exits takes its live gauges (open streams) with
it, which prometheus_client's multiprocess mode must be told from the master.
This module lives outside the ``api`` package and imports only
orchestrator/metrics_files.py, because the master loads it before forking: what
the master imports, every worker has imported before gevent patches it.
"""

from __future__ import annotations

from typing import Any

from orchestrator.metrics_files import forget_process, remove_samples_dir


def child_exit(server: Any, worker: Any) -> None:
    forget_process(worker.pid)


def on_exit(server: Any) -> None:
    remove_samples_dir()
