"""Drills of a job whose worker is lost: SIGKILLed mid-run, or cut off from Redis by the network.

A program that publishes each interim result with a checkpoint resumes on the
next worker where the lost one stopped, and a client following the job gets
each result exactly once; one without checkpoints starts over, and its client is
warned and told the attempt. A worker cut off from Redis (its own network
namespace, the link taken down) comes back after its job went to another worker:
everything it then tries to write is refused.
"""

from __future__ import annotations

import json
import logging
import signal
import time

from orchestrator.events import EVENT_INTERIM, EVENT_RESTART
from qruntime.client.service import RuntimeService
from qruntime.localredis import LocalRedis
from tests.faults.drill import DrillResult, completed, settle
from tests.harness import Stack, wait_for
from tests.netns import NetNamespace

#: Longest a drill waits for a job to end after the fault before counting it stuck.
SETTLE_S = 90.0
#: The checkpointing job: it publishes 1..COUNT, each with a checkpoint, and its first run holds after HOLD_AT.
COUNT, HOLD_AT = 8, 3


class _Warnings(logging.Handler):
    """Collects the client's log records (its restart warnings)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _follow(stack: Stack, job_id: str):
    seen: list = []
    job = RuntimeService(url=stack.url).job(job_id)
    job.stream_results(lambda _, result: seen.append(result))
    return job, seen


def worker_sigkill(kills: int, *, checkpointing: bool = True) -> DrillResult:
    """SIGKILL the worker (its whole process group, the program included) mid-job, ``kills`` times.

    Each time a new job is followed by a ``callback=`` client; once the program has
    published HOLD_AT results its worker is killed and another started. With
    ``checkpointing`` the program publishes each result with a checkpoint: every job
    must complete having resumed after HOLD_AT, and the client must get 1..COUNT
    once each (``lost`` / ``repeated`` count the misses and repeats). Without, the
    program (``sleeper``) starts over: the client must log one warning naming the
    restart, and the job must report 2 attempts (``notes["unwarned"]`` counts misses).
    Recovered: the job completed (``recovery_s``: from the kill).
    """
    name = "worker SIGKILL, checkpointing program" if checkpointing else "worker SIGKILL, no checkpoints"
    result = DrillResult(name)
    client_log = logging.getLogger("qruntime.client.job")
    handler = _Warnings()
    client_log.addHandler(handler)
    previous_level = client_log.level
    client_log.setLevel(logging.INFO)
    stack = Stack()
    try:
        stack.start_api()
        worker = stack.start_worker(concurrency=1)
        result.notes.update(unwarned=0, not_resumed=0)
        for _ in range(kills):
            handler.records.clear()
            if checkpointing:
                job_id = stack.submit("checkpointer", {"count": COUNT, "hold_at": HOLD_AT})["id"]
            else:
                job_id = stack.submit("sleeper", {"seconds": 2})["id"]
            job, seen = _follow(stack, job_id)
            wait_for(lambda seen=seen: len(seen) >= (HOLD_AT if checkpointing else 1), timeout=SETTLE_S,
                     message="the program to publish before its worker dies")
            killed_at = time.monotonic()
            stack.kill(worker, signal.SIGKILL)
            result.runs += 1
            worker = stack.start_worker(concurrency=1)
            if not completed(stack, job_id, result, killed_at, SETTLE_S):
                continue
            if checkpointing:
                expected = list(range(1, COUNT + 1))
                settle(lambda seen=seen: len(seen) >= COUNT, 10.0)  # what never comes counts as lost
                numbers = [m["number"] for m in seen]
                result.lost += len(set(expected) - set(numbers))
                result.repeated += len(numbers) - len(set(numbers))
                if json.loads(stack.result_text(job_id)) != {"resumed_after": HOLD_AT}:
                    result.notes["not_resumed"] += 1
            else:
                warned = [r for r in handler.records if r.levelno == logging.WARNING
                          and "went back to the queue" in r.getMessage() and "run 2" in r.getMessage()]
                if len(warned) != 1 or job.attempts() != 2:
                    result.notes["unwarned"] += 1
            job.cancel_result_streaming()
    finally:
        client_log.removeHandler(handler)
        client_log.setLevel(previous_level)
        stack.stop()
    return result


def partitioned_worker(runs: int) -> DrillResult:
    """A worker on its own test host (a network namespace, veth to Redis) is cut off mid-job.

    The job (a checkpointing program publishing every 0.2 s) runs on the cut-off
    worker; the reaper of a second worker, on the host, finds its heartbeat stale
    and requeues it; the second worker resumes it from its checkpoint and completes
    it. Then the link comes back, and the first worker's supervisor, whose writes
    were held up by TCP, finds them refused (it logs so and stops its program).
    Counted: ``lost`` (jobs not completed by the second run), ``repeated`` (stale
    events in the stream: an event of run 1 after the restart), ``notes``: whether
    the stale worker logged the refusal. Recovered: the job completed (from the cut).
    """
    result = DrillResult("partitioned worker")
    result.notes.update(refusal_logged=0, stale_events=0, final_of_new_run=0)
    with NetNamespace() as namespace:
        server = LocalRedis(bind=("127.0.0.1", namespace.host_address)).start()
        stack = Stack(redis_url=server.url)
        inside_url = namespace.url_from_inside(server.url)
        try:
            stack.start_api()
            for _ in range(runs):
                _cut_off_during_a_job(stack, namespace, inside_url, result)
        finally:
            stack.stop()
            server.stop()
    return result


def _cut_off_during_a_job(stack: Stack, namespace: NetNamespace, inside_url: str, result: DrillResult) -> None:
    cut_off = stack.start_worker(concurrency=1, wrap=namespace.wrap, env={"QRT_REDIS_URL": inside_url})
    outside = None
    try:
        job_id = stack.submit("checkpointer", {"count": 40, "interval_s": 0.2})["id"]
        wait_for(lambda: len(stack.store.events.read(job_id, types=(EVENT_INTERIM,))) >= 3,
                 timeout=SETTLE_S, message="the job to publish on the cut-off worker")
        namespace.cut()
        cut_at = time.monotonic()
        result.runs += 1
        outside = stack.start_worker(concurrency=1)  # its reaper requeues the job, and it runs it
        if not completed(stack, job_id, result, cut_at, SETTLE_S):
            return
        namespace.restore()
        if stack.job(job_id)["run"] < 2:  # completed on the cut-off worker: the cut missed it
            result.lost += 1
            return
        refusal = f"job {job_id}: "
        result.notes["refusal_logged"] += settle(
            lambda: any(refusal in line and "was refused: run 1 is no longer the job's current run" in line
                        for line in stack.logs().splitlines()), 60.0)
        events = stack.store.events.read(job_id)
        restart_id = min(e.id for e in events if e.type == EVENT_RESTART)
        stale = [e for e in events if e.run == 1 and e.id > restart_id]
        result.notes["stale_events"] += len(stale)
        result.repeated += len(stale)
        result.notes["final_of_new_run"] += json.loads(stack.result_text(job_id))["resumed_after"] is not None
    finally:
        namespace.restore()
        for worker in (cut_off, outside):  # the next job must go to the next cut-off worker
            if worker is not None:
                stack.kill(worker)
                stack.workers.remove(worker)
