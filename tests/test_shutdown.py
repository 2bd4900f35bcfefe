"""A worker asked to stop (SIGTERM) lets running jobs finish within a grace, then hands the rest back.

Handed back means QUEUED again with the attempt count it had, a reason saying
why, and a new message, so another worker runs it (workers/shutdown.py).
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from qruntime.client.service import RuntimeService
from tests.harness import Stack, wait_for

GRACE_S = 1.0


def _started(stack: Stack, job_id: str) -> bool:
    """The program is running: it published its first interim result."""
    return bool(stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=10).json())


def _stop_worker(stack: Stack, worker: subprocess.Popen) -> int:
    """SIGTERM the worker's main process only (as Kubernetes and qruntime up do); its exit code."""
    worker.send_signal(signal.SIGTERM)
    # Grace, the program's kill grace, Celery's own stop: a deadline, not a measurement.
    return worker.wait(timeout=GRACE_S + stack.settings.kill_grace_s + 20)


def test_a_job_still_running_at_the_end_of_the_grace_is_handed_back_and_run_by_another_worker(
        caplog: pytest.LogCaptureFixture) -> None:
    stack = Stack(shutdown_grace_s=GRACE_S)
    try:
        first = stack.start_worker(concurrency=1)
        stack.start_api()
        job_id = stack.submit("sleeper", {"seconds": 6})["id"]
        seen: list = []
        watched = RuntimeService(url=stack.url).job(job_id)
        watched.stream_results(lambda _, result: seen.append(result))  # a client following the job
        wait_for(lambda: seen, message="the program's first interim result")
        assert _stop_worker(stack, first) == 0, stack.logs()[-3000:]
        job = stack.job(job_id)
        assert job["status"] == "QUEUED", job
        assert stack.store.get(job_id).attempts == 0  # the stopped run does not count
        assert stack.store.get(job_id).reason == "requeued: worker shut down"
        logs = stack.http.get(f"{stack.url}/jobs/{job_id}/logs", timeout=10).text
        assert "the worker is shutting down; the job goes back to the queue" in logs
        stack.start_worker(concurrency=1)
        final = stack.wait_status(job_id)
        assert final["status"] == "COMPLETED", final
        assert json.loads(stack.result_text(job_id)) == {"slept": 6}
        assert stack.store.get(job_id).attempts == 1
        assert watched.attempts() == 1
        # The following client was told, once, that the program would run again from the start.
        wait_for(lambda: len(seen) == 2, message="the second run's interim result")
        warnings = [r.getMessage() for r in caplog.records if "went back to the queue" in r.getMessage()]
        assert len(warnings) == 1 and "requeued: worker shut down" in warnings[0], warnings
    finally:
        stack.stop()


def test_a_job_that_ends_within_the_grace_completes_before_the_worker_exits() -> None:
    stack = Stack(shutdown_grace_s=30.0)
    try:
        worker = stack.start_worker(concurrency=1)
        stack.start_api()
        job_id = stack.submit("sleeper", {"seconds": 2})["id"]
        wait_for(lambda: _started(stack, job_id), message="the program to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, stack.logs()[-3000:]
        job = stack.job(job_id)
        assert job["status"] == "COMPLETED", job
        assert stack.store.get(job_id).attempts == 1
    finally:
        stack.stop()
