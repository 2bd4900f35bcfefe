"""Fault drills at size: what each fault costs in lost, repeated and stuck work, and in time.

Runs the drills of tests/faults/drills.py (the tests run them small) on this
machine's real processes:

- ``redis-kill-aof``: Redis (AOF on) SIGKILLed while ``--jobs`` jobs are queued
  or running, restarted on its port and data; recovery = restart → first job completing.
- ``api-kill-streaming``: the API SIGKILLed under ``--clients`` SSE clients
  (half raw EventSource-like readers, half the SDK's ``stream_results``), a new
  one started on its port; recovery = kill → every client receiving again.
- ``worker-sigterm``: ``--kills`` rounds of SIGTERM to a worker running a job
  longer than its grace; recovery = SIGTERM → the worker's exit.
- ``worker-sigkill-checkpointing`` / ``worker-sigkill-plain``: ``--sigkills``
  worker SIGKILLs mid-job (tests/faults/restarts.py), a checkpointing program
  (must resume, each interim result once to a callback client) or one without
  checkpoints (the client must be warned, with the attempt); recovery = kill → job completed.
- ``partitioned-worker``: ``--partitions`` times a worker in its own network
  namespace is cut off mid-job and its link restored after another worker finished
  the job; its late writes must be refused; recovery = cut → job completed.
- ``sentinel-failover`` / ``sentinel-kill-master``: ``--failovers`` times the
  Redis master fails over (SENTINEL FAILOVER, or SIGKILL and restart as a replica)
  during a followed job (tests/faults/failover.py); recovery = failover → job completed.

Each drill runs ``--rounds`` times; its figures are summed and its recovery
times pooled. Prints a table and writes ``bench/results/faults.json``. Not a
test: no assertions.

    python bench/faults.py [--jobs 40] [--clients 40] [--kills 3] [--sigkills 20] [--partitions 3]
                           [--failovers 3] [--rounds 1] [--only NAME,...]

A new drill is one more entry in :data:`DRILLS`: a name and a function of the
parsed arguments returning a ``DrillResult``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.drill import DrillResult  # noqa: E402
from tests.faults.drills import api_kill_streaming, redis_kill_aof, worker_sigterm_long_job  # noqa: E402
from tests.faults.failover import sentinel_failover  # noqa: E402
from tests.faults.restarts import partitioned_worker, worker_sigkill  # noqa: E402

RESULTS = ROOT / "bench" / "results"

#: Drill name → how to run it at the sizes the command line asked for.
DRILLS: dict[str, Callable[[argparse.Namespace], DrillResult]] = {
    "redis-kill-aof": lambda args: redis_kill_aof(args.jobs),
    "api-kill-streaming": lambda args: api_kill_streaming(args.clients),
    "worker-sigterm": lambda args: worker_sigterm_long_job(args.kills),
    "worker-sigkill-checkpointing": lambda args: worker_sigkill(args.sigkills, checkpointing=True),
    "worker-sigkill-plain": lambda args: worker_sigkill(max(1, args.sigkills // 4), checkpointing=False),
    "partitioned-worker": lambda args: partitioned_worker(args.partitions),
    "sentinel-failover": lambda args: sentinel_failover(args.failovers),
    "sentinel-kill-master": lambda args: sentinel_failover(args.failovers, kill=True),
}


def pooled(results: list[DrillResult]) -> DrillResult:
    """One drill's rounds as one result: counts summed, recovery times pooled, notes per round."""
    total = DrillResult(results[0].name)
    for one in results:
        total.runs += one.runs
        total.lost += one.lost
        total.repeated += one.repeated
        total.stuck += one.stuck
        total.recovery_s.extend(one.recovery_s)
    total.notes = results[0].notes if len(results) == 1 else {"rounds": [one.notes for one in results]}
    return total


def recovery(samples: list[float]) -> dict[str, float | int]:
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50_s": statistics.median(samples), "max_s": max(samples)}


def report(rows: dict[str, tuple[DrillResult, float]]) -> None:
    print(f"\n{'drill':28} {'runs':>5} {'lost':>5} {'repeated':>8} {'stuck':>5} "
          f"{'recovery p50 s':>14} {'max s':>7} {'wall s':>7}  clean")
    for name, (result, wall_s) in rows.items():
        figures = recovery(result.recovery_s)
        p50, top = (f"{figures['p50_s']:.2f}", f"{figures['max_s']:.2f}") if figures["n"] else ("-", "-")
        print(f"{name:28} {result.runs:5d} {result.lost:5d} {result.repeated:8d} {result.stuck:5d} "
              f"{p50:>14} {top:>7} {wall_s:7.1f}  {'yes' if result.clean else 'NO'}")
    for name, (result, _) in rows.items():
        print(f"{name}: {json.dumps(result.notes)}")
    print(f"{os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs in flight when Redis is killed")
    parser.add_argument("--clients", type=int, default=40, help="SSE clients when the API is killed")
    parser.add_argument("--kills", type=int, default=3, help="SIGTERM rounds of the worker drill")
    parser.add_argument("--sigkills", type=int, default=20, help="worker SIGKILLs mid-job (checkpointing program)")
    parser.add_argument("--partitions", type=int, default=3, help="times a worker is cut off from Redis")
    parser.add_argument("--failovers", type=int, default=3, help="Sentinel failovers (and master kills)")
    parser.add_argument("--rounds", type=int, default=1, help="times each drill is run")
    parser.add_argument("--only", default="", help=f"comma-separated drills, of {', '.join(DRILLS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(DRILLS)
    unknown = sorted(set(chosen) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drill(s) {', '.join(unknown)}; known: {', '.join(DRILLS)}")
    rows: dict[str, tuple[DrillResult, float]] = {}
    for name in chosen:
        start = time.monotonic()
        results = [DRILLS[name](args) for _ in range(args.rounds)]
        rows[name] = (pooled(results), time.monotonic() - start)
        print(f"{name}: done in {rows[name][1]:.1f} s", flush=True)
    report(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "args": vars(args),
        "cores": os.cpu_count(),
        "drills": {name: {**result.as_dict(), "recovery": recovery(result.recovery_s), "wall_s": wall_s}
                   for name, (result, wall_s) in rows.items()},
    }
    (RESULTS / "faults.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'faults.json'}")


if __name__ == "__main__":
    main()
