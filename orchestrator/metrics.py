"""Prometheus metrics of qruntime: every metric defined once, for the API and the workers.

Both run several processes (gunicorn workers; Celery's prefork pool), so they
use prometheus_client's multiprocess mode, as its documentation prescribes:
``qruntime api`` and ``qruntime worker`` point ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh private folder before any process imports prometheus_client, each process
writes its samples there, and the endpoint that serves ``/metrics`` collects
them all (:func:`registry`). Without that variable (a test's in-process app)
the default single-process registry is used.

Labels are the field's usual ones, bounded: program, backend, status, queue,
endpoint, method. Never a job id.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import REGISTRY

from orchestrator.metrics_files import (
    MULTIPROC_ENV,
    forget_process,
    remove_samples_dir,
    samples_dir_env,
)

__all__ = ["MULTIPROC_ENV", "forget_process", "registry", "remove_samples_dir", "samples_dir_env"]

#: Job durations run from milliseconds to the 3 h ceiling of max_execution_time.
JOB_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 10800)
REQUEST_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FANOUT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1)

# -- the API -------------------------------------------------------------------------------
JOBS_SUBMITTED = Counter("qruntime_jobs_submitted_total", "Jobs accepted by POST /jobs.", ["program", "backend"])
REQUEST_SECONDS = Histogram("qruntime_api_request_duration_seconds", "API requests, by endpoint and status.",
                            ["endpoint", "method", "status"], buckets=REQUEST_SECONDS_BUCKETS)
STREAMS_OPEN = Gauge("qruntime_sse_streams_open", "Server-Sent Event streams open now.",
                     multiprocess_mode="livesum")
FANOUT_SECONDS = Histogram("qruntime_stream_fanout_seconds",
                           "From a job event reaching the API's relay to its being queued for every open stream.",
                           buckets=FANOUT_SECONDS_BUCKETS)

# -- the workers ----------------------------------------------------------------------------
JOBS_FINISHED = Counter("qruntime_jobs_finished_total", "Jobs that reached a final status.",
                        ["program", "backend", "status"])
JOBS_HANDED_BACK = Counter("qruntime_jobs_handed_back_total", "Jobs a stopping worker put back in the queue.",
                           ["program", "backend"])
QUEUE_WAIT_SECONDS = Histogram("qruntime_job_queue_wait_seconds", "From submission to the start of the run.",
                               ["program", "backend"], buckets=JOB_SECONDS_BUCKETS)
RUN_SECONDS = Histogram("qruntime_job_run_seconds", "A job's run, from its sandbox to its final status.",
                        ["program", "backend", "status"], buckets=JOB_SECONDS_BUCKETS)
INTERIM_RESULTS = Counter("qruntime_interim_results_total", "Interim results programs published.",
                          ["program", "backend"])
INTERIM_BYTES = Counter("qruntime_interim_result_bytes_total", "Bytes of interim results written.",
                        ["program", "backend"])
LOG_BYTES = Counter("qruntime_log_bytes_total", "Bytes of job log lines written.", ["program", "backend"])
SLOTS_BUSY = Gauge("qruntime_worker_slots_busy", "Pool slots running a job now.", multiprocess_mode="livesum")
SLOTS_TOTAL = Gauge("qruntime_worker_slots", "Pool slots (jobs a worker runs at once).", multiprocess_mode="max")
REAPER_REQUEUES = Counter("qruntime_reaper_requeues_total", "Orphaned jobs the reaper put back in the queue.")
LOST_MESSAGES_RESENT = Counter("qruntime_lost_messages_resent_total",
                               "QUEUED jobs found without a broker message and enqueued again.")
REAPER_FAILURES = Counter("qruntime_reaper_failures_total", "Orphaned jobs the reaper failed (no attempts left).")
REDIS_ERRORS = Counter("qruntime_redis_errors_total", "Redis calls that failed, by the part that made them.",
                       ["component"])


def registry() -> CollectorRegistry:
    """What ``/metrics`` serves: every process's samples in multiprocess mode, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        collected = CollectorRegistry()
        _multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY
