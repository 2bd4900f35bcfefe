"""The Sentinel drill: the Redis master fails over while a job runs and a client follows it.

qruntime runs on a real Sentinel deployment (tests/sentinels.py: a master, a
replica, three sentinels), with ``QRT_REDIS_MIN_REPLICAS=1`` so a write counts
only once the replica holds it. Mid-job the master is failed over (``SENTINEL
FAILOVER``, the old master left taking writes until the sentinels demote it) or
SIGKILLed (and restarted as a replica, as a supervisor of processes would). The
job must complete, and the client must have every interim result exactly once.
"""

from __future__ import annotations

import time

from qruntime.client.service import RuntimeService
from tests.faults.drill import DrillResult, completed, settle
from tests.harness import Stack, wait_for
from tests.sentinels import SentinelCluster

#: Longest a drill waits for its job to end after the failover before counting it stuck.
SETTLE_S = 120.0
#: The job: numbers 1..COUNT, one every INTERVAL_S, each published with a checkpoint.
COUNT, INTERVAL_S = 60, 0.1
#: Interim results the client must have before the master goes.
FAIL_AFTER = 10


def sentinel_failover(runs: int, *, kill: bool = False) -> DrillResult:
    """Fail the master over (``kill``: SIGKILL it) ``runs`` times, each during a followed job.

    ``lost``: jobs not COMPLETED plus interim results the client never got;
    ``repeated``: interim results it got twice. ``notes["restarts"]``: runs of the
    job that ended with the failover (the job resumed from its checkpoint).
    Recovered: the job completed (``recovery_s`` from the failover).
    """
    result = DrillResult("Sentinel " + ("master SIGKILL" if kill else "failover") + " during a job")
    result.notes["restarts"] = 0
    with SentinelCluster() as cluster:
        stack = Stack(**cluster.settings(), redis_min_replicas=1)
        try:
            stack.start_worker(concurrency=1)
            stack.start_api()
            for _ in range(runs):
                _fail_over_during_a_job(stack, cluster, kill, result)
        finally:
            stack.stop()
    return result


def _fail_over_during_a_job(stack: Stack, cluster: SentinelCluster, kill: bool, result: DrillResult) -> None:
    # With QRT_REDIS_MIN_REPLICAS=1, a submit is refused (503) until the master has a synced replica again.
    cluster.wait_settled()
    job_id = stack.submit("checkpointer", {"count": COUNT, "interval_s": INTERVAL_S})["id"]
    seen: list = []
    job = RuntimeService(url=stack.url).job(job_id)
    job.stream_results(lambda _, message: seen.append(message["number"]))
    wait_for(lambda: len(seen) >= FAIL_AFTER, timeout=SETTLE_S, message="the job to be under way")
    failed_at = time.monotonic()
    if kill:
        cluster.kill_master()
        # Restarted as a replica of the new master, as systemd or Kubernetes would: with
        # QRT_REDIS_MIN_REPLICAS=1, writes wait until a replica holds them again.
        cluster.revive()
    else:
        cluster.failover()
    result.runs += 1
    if not completed(stack, job_id, result, failed_at, SETTLE_S):
        return
    settle(lambda: len(seen) >= COUNT, 30.0)  # what never comes counts as lost
    result.lost += len(set(range(1, COUNT + 1)) - set(seen))
    result.repeated += len(seen) - len(set(seen))
    result.notes["restarts"] += len(job.restarts())
    job.cancel_result_streaming()
