"""Where a trivial job's time goes, stage by stage, against a raw Celery round trip.

Measured in one run on one private Redis:

- ``qruntime job``: POST /jobs of the ``stamper`` bench program with ``count=1``
  (its main's first act is to publish ``time.time()``, then it returns), wait for
  the job's ``done`` event, and take the result it carries (GET it when it does not:
  results over 64 KiB), as the Python client does. Each of the ``--samples`` sequential
  jobs is split into stages: the POST; created → started (enqueue, delivery,
  claim) and started → ended from the job record; claim → main entered (the
  program's stamp minus the record's ``started``); main entered → ``done`` seen
  on the job's channel; the GET of the result.
- ``raw celery task``: a no-op Celery task's round trip (``delay().get()``) with a
  Redis broker and result backend, on a worker of the same concurrency.
- ``in-process call``: the same program's ``main`` called directly.
- ``burst``: ``--burst`` jobs submitted as fast as 8 client threads can, until all
  complete, against as many no-op Celery tasks sent from one thread.

The record's timestamps have millisecond precision (truncated), so stages taken
from them carry up to 1 ms of rounding. All clocks are this host's wall clock.
Targets are printed beside the figures for a later change to meet; nothing here
asserts them.

Prints a table and writes ``bench/results/latency.json``. Not a test: no assertions.

    python bench/latency.py [--samples 200] [--burst 500]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import requests
from celery import Task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.events import EVENT_DONE, EVENT_INTERIM, Event  # noqa: E402
from tests.harness import Stack, wait_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BENCH_PROGRAMS = ROOT / "bench" / "programs"
CONCURRENCY = 2
#: The trivial job: one time-stamped interim result, then return.
PROGRAM, PARAMS, RESULT = "stamper", {"count": 1, "interval": 0}, "published 1"
#: Longest one job (or a whole burst) may take before the run is abandoned.
JOB_TIMEOUT_S, BURST_TIMEOUT_S = 60.0, 600.0

#: (key, label) of each stage of a sequential job, in the order they happen.
STAGES = [
    ("post", "POST /jobs"),
    ("created_started", "created → started (enqueue, delivery, claim)"),
    ("claim_main", "claim → program's main entered"),
    ("main_done", "main entered → done seen on channel"),
    ("started_ended", "started → ended (job record)"),
    ("get_result", "result (in done; GET if not)"),
]
#: What a later change must meet (printed, never asserted).
TARGETS = {
    "ratio_p50": 3.0,  # submit→result p50 ≤ 3× raw Celery p50
    "ratio_p99": 5.0,  # submit→result p99 ≤ 5× raw Celery p99
    "claim_main_p50_ms": 2.0,
    "burst_ratio": 0.3,  # jobs/s ≥ 0.3× raw Celery tasks/s
}
STAGE_TARGETS = {"claim_main": f"p50 ≤ {TARGETS['claim_main_p50_ms']:g} ms"}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": pick(0.90) * 1000,
        "p99_ms": pick(0.99) * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def wall(timestamp: str) -> float:
    """A job record's ISO-8601 UTC timestamp (``...Z``) as ``time.time()`` seconds."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class JobWatcher:
    """Follows every job's channel: when each job's main was entered (its stamp) and its ``done`` seen."""

    def __init__(self, stack: Stack) -> None:
        self._pubsub = stack.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(stack.store.keys.channel_pattern())
        self._keys = stack.store.keys
        self._done: dict[str, threading.Event] = {}
        self._entered: dict[str, float] = {}
        self._done_seen: dict[str, float] = {}
        self.results: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wait(self, job_id: str, timeout: float = JOB_TIMEOUT_S) -> tuple[float, float]:
        """Block until the job is done; returns (main entered, done seen), wall-clock seconds."""
        if not self._event_for(job_id).wait(timeout):
            raise RuntimeError(f"job {job_id} did not finish")
        return self._entered[job_id], self._done_seen[job_id]

    def _event_for(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._done.setdefault(job_id, threading.Event())

    def _run(self) -> None:
        try:
            for message in self._pubsub.listen():
                seen = time.time()
                job_id = self._keys.job_id_from_channel(message["channel"].decode())
                event = Event.from_message(message["data"])
                if event.type == EVENT_INTERIM:
                    self._entered.setdefault(job_id, json.loads(event.data)["t"])
                elif event.type == EVENT_DONE:
                    self._done_seen[job_id] = seen
                    self.results[job_id] = json.loads(event.data).get("result")
                    self._event_for(job_id).set()
        except Exception:  # the stack was stopped under us: the run is over
            return


def bench_job_path(stack: Stack, watcher: JobWatcher, samples: int) -> dict[str, list[float]]:
    """Run ``samples`` jobs one after another; every stage's duration (s) per job."""
    stages: dict[str, list[float]] = {key: [] for key in ["submit_result", *dict(STAGES)]}
    for _ in range(samples):
        start = time.perf_counter()
        job_id = stack.submit(PROGRAM, PARAMS)["id"]
        posted = time.perf_counter()
        entered, done_seen = watcher.wait(job_id)
        fetching = time.perf_counter()
        text = watcher.results.get(job_id)
        if text is None:
            text = stack.result_text(job_id)
        end = time.perf_counter()
        if text != RESULT:
            raise RuntimeError(f"job {job_id} returned {text!r}")
        job = stack.store.get(job_id)
        created, started, ended = wall(job.created), wall(job.started), wall(job.ended)
        sample = {
            "submit_result": end - start,
            "post": posted - start,
            "created_started": started - created,
            "claim_main": entered - started,
            "main_done": done_seen - entered,
            "started_ended": ended - started,
            "get_result": end - fetching,
        }
        for key, value in sample.items():
            stages[key].append(value)
    return stages


@contextmanager
def celery_baseline(stack: Stack) -> Iterator[Task]:
    """A bare Celery worker on the stack's Redis; yields its warmed-up no-op task."""
    env = {**os.environ, "BENCH_REDIS_URL": stack.settings.redis_url, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker", "--pool", "prefork",
         "--concurrency", str(CONCURRENCY), "--loglevel", "WARNING", "--without-mingle", "--without-gossip"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    os.environ["BENCH_REDIS_URL"] = stack.settings.redis_url
    from bench.celery_baseline import app, noop

    try:
        wait_for(lambda: app.control.ping(timeout=0.5), timeout=60, message="baseline worker")
        for _ in range(20):
            noop.delay().get(timeout=30)
        yield noop
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)


def bench_raw_celery(noop: Task, samples: int) -> list[float]:
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        noop.delay().get(timeout=30)
        timings.append(time.perf_counter() - start)
    return timings


def bench_celery_burst(noop: Task, count: int) -> dict[str, float]:
    start = time.perf_counter()
    results = [noop.delay() for _ in range(count)]
    submitted = time.perf_counter()
    for result in results:
        result.get(timeout=BURST_TIMEOUT_S)
    return rates(count, submitted - start, time.perf_counter() - start)


def bench_in_process(samples: int) -> list[float]:
    from qiskit_aer import AerSimulator

    path = BENCH_PROGRAMS / PROGRAM / f"{PROGRAM}.py"
    spec = importlib.util.spec_from_file_location(PROGRAM, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Messenger:
        def publish(self, message, encoder=None, final=False):
            json.dumps(message)

    backend, messenger = AerSimulator(), Messenger()
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        module.main(backend, messenger, **PARAMS)
        timings.append(time.perf_counter() - start)
    return timings


def bench_burst(stack: Stack, watcher: JobWatcher, count: int) -> dict[str, float]:
    body = json.dumps({"program_id": PROGRAM, "backend": "aer_simulator", "params": PARAMS})
    local = threading.local()

    def submit(_: int) -> str:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        return session.post(stack.url + "/jobs", data=body, timeout=60).json()["id"]

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(count)))
    submitted = time.perf_counter()
    for job_id in ids:
        watcher.wait(job_id, timeout=BURST_TIMEOUT_S)
    return rates(count, submitted - start, time.perf_counter() - start)


def rates(count: int, submit_s: float, total_s: float) -> dict[str, float]:
    return {"count": count, "submit_s": submit_s, "total_s": total_s,
            "submit_per_s": count / submit_s, "done_per_s": count / total_s}


def report(stages: dict[str, dict], celery: dict, direct: dict, burst: dict, celery_burst: dict) -> dict:
    """Print the table; returns the ratios the targets are about."""
    job = stages["submit_result"]
    ratios = {
        "p50": job["median_ms"] / celery["median_ms"],
        "p99": job["p99_ms"] / celery["p99_ms"],
        "burst": burst["done_per_s"] / celery_burst["done_per_s"],
    }
    rows = [
        ("raw celery task round trip", celery, ""),
        ("qruntime job: submit → result", job, ""),
        *((f"  {label}", stages[key], STAGE_TARGETS.get(key, "")) for key, label in STAGES),
        ("in-process call of main()", direct, ""),
    ]
    print(f"\n{'path':46} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'n':>5}  target")
    for name, stats, target in rows:
        print(f"{name:46} {stats['median_ms']:9.2f} {stats['p90_ms']:9.2f} {stats['p99_ms']:9.2f} "
              f"{stats['n']:5d}  {target}")
    print(f"{'submit → result / raw celery':46} {ratios['p50']:8.1f}x {'':9} {ratios['p99']:8.1f}x {'':5}  "
          f"p50 ≤ {TARGETS['ratio_p50']:g}x, p99 ≤ {TARGETS['ratio_p99']:g}x")
    print(f"\n{'burst of ' + str(burst['count']):46} {'done/s':>9} {'sent/s':>9} {'total s':>9}  target")
    print(f"{'qruntime jobs (8 HTTP client threads)':46} {burst['done_per_s']:9.1f} "
          f"{burst['submit_per_s']:9.1f} {burst['total_s']:9.2f}")
    print(f"{'raw celery tasks (1 client thread)':46} {celery_burst['done_per_s']:9.1f} "
          f"{celery_burst['submit_per_s']:9.1f} {celery_burst['total_s']:9.2f}")
    print(f"{'qruntime / raw celery':46} {ratios['burst']:8.2f}x {'':9} {'':9}  ≥ {TARGETS['burst_ratio']:g}x")
    print(f"worker concurrency {CONCURRENCY}, {os.cpu_count()} cores")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args()

    stack = Stack(heartbeat_interval_s=1.0, programs_dirs=str(BENCH_PROGRAMS))
    try:
        stack.start_worker(concurrency=CONCURRENCY)
        stack.start_api()
        watcher = JobWatcher(stack)
        bench_job_path(stack, watcher, 10)  # warm-up
        stages = {key: percentiles(v) for key, v in bench_job_path(stack, watcher, args.samples).items()}
        with celery_baseline(stack) as noop:
            celery = percentiles(bench_raw_celery(noop, args.samples))
            celery_burst = bench_celery_burst(noop, args.burst)
        direct = percentiles(bench_in_process(args.samples))
        burst = bench_burst(stack, watcher, args.burst)
    finally:
        stack.stop()

    ratios = report(stages, celery, direct, burst, celery_burst)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"program": PROGRAM, "params": PARAMS, "job_path": stages["submit_result"], "stages": stages,
           "raw_celery": celery, "in_process": direct, "burst": burst, "raw_celery_burst": celery_burst,
           "ratios": ratios, "targets": TARGETS, "cores": os.cpu_count(), "worker_concurrency": CONCURRENCY}
    (RESULTS / "latency.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'latency.json'}")


if __name__ == "__main__":
    main()
