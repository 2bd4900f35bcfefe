"""A job whose Celery message was lost (a failover, a broker restart) is sent again, not left QUEUED.

workers/lost_messages.py: a worker's reaper checks, every QRT_LOST_MESSAGE_CHECK_S,
that each job QUEUED that long has a message in the broker's queues or among the
delivered-but-unacknowledged ones, and enqueues again those that do not.
"""

from __future__ import annotations

import json

from orchestrator.backends import find_backend
from tests.harness import Stack

CHECK_S = 1.0
JOB_DEADLINE_S = 120


def _broker_keys(stack: Stack, queue: str) -> list[bytes]:
    return [key for key in stack.redis.scan_iter(match=f"{queue}*") if stack.redis.type(key) == b"list"]


def test_a_queued_job_whose_message_was_lost_is_sent_again_and_runs_once() -> None:
    stack = Stack(lost_message_check_s=CHECK_S)
    try:
        stack.start_api()
        job_id = stack.submit("sleeper", {"seconds": 0})["id"]
        queue = find_backend("aer_simulator").queue
        lost = _broker_keys(stack, queue)
        assert lost, "the job's message should wait in the broker's queue"
        stack.redis.delete(*lost)  # what a failover onto a replica that never got it does
        stack.start_worker(concurrency=1)
        final = stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
        assert final["status"] == "COMPLETED", final
        assert final["attempts"] == 1 and final["run"] == 1
        assert json.loads(stack.result_text(job_id)) == {"slept": 0}
        assert f"job {job_id} has been QUEUED" in stack.logs() and "no message in the broker" in stack.logs()
    finally:
        stack.stop()


def test_a_job_waiting_behind_a_busy_worker_keeps_its_one_message() -> None:
    """Its message is in the queue, or prefetched (unacknowledged): no false alarm, however long it waits."""
    stack = Stack(lost_message_check_s=CHECK_S)
    try:
        stack.start_api()
        stack.start_worker(concurrency=1)
        busy = stack.submit("sleeper", {"seconds": 5 * CHECK_S})["id"]
        waiting = stack.submit("sleeper", {"seconds": 0})["id"]
        stack.wait_status(busy, "RUNNING", timeout=JOB_DEADLINE_S)
        assert stack.wait_status(waiting, timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"
        assert stack.wait_status(busy, timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"
        assert "no message in the broker" not in stack.logs()
        assert stack.store.get(waiting).run == 1
    finally:
        stack.stop()
