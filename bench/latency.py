"""Submit→result latency of a trivial job through the whole path, against baselines.

Measured in one run on one private Redis:

- ``qruntime job``: POST /jobs of ``hello-world`` with ``iterations=0`` (the program
  returns at once), then wait for the job's ``done`` event and GET its result —
  HTTP, job store, Celery, claim, fork of the sandboxed child, result write.
- ``raw celery task``: a no-op Celery task's round trip (``delay().get()``) with a
  Redis broker and result backend, on a worker of the same concurrency.
- ``in-process call``: the same program's ``main`` called directly.
- ``burst``: 500 jobs submitted as fast as 8 client threads can, until all complete.

Prints a table and writes ``bench/results/latency.json``. Not a test: no assertions.

    python bench/latency.py [--samples 200] [--burst 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.events import Event  # noqa: E402
from tests.harness import Stack, wait_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CONCURRENCY = 2


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


class DoneWatcher:
    """Follows every job's channel and signals when a job's ``done`` event arrives."""

    def __init__(self, stack: Stack) -> None:
        self._pubsub = stack.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(stack.store.keys.channel_pattern())
        self._keys = stack.store.keys
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def event_for(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._done.setdefault(job_id, threading.Event())

    def _run(self) -> None:
        try:
            for message in self._pubsub.listen():
                channel = message["channel"].decode()
                event = Event.from_message(message["data"])
                if event.type == "done":
                    self.event_for(self._keys.job_id_from_channel(channel)).set()
        except Exception:  # the stack was stopped under us: the run is over
            return


def bench_job_path(stack: Stack, watcher: DoneWatcher, samples: int) -> list[float]:
    session = requests.Session()
    body = json.dumps({"program_id": "hello-world", "backend": "aer_simulator", "params": {"iterations": 0}})
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        job = session.post(stack.url + "/jobs", data=body, timeout=30).json()
        done = watcher.event_for(job["id"])
        if not done.wait(60):
            raise RuntimeError(f"job {job['id']} did not finish")
        text = session.get(f"{stack.url}/jobs/{job['id']}/results", timeout=30).text
        timings.append(time.perf_counter() - start)
        assert text == "All done!", text
    return timings


def bench_raw_celery(stack: Stack, samples: int) -> list[float]:
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
        timings = []
        for _ in range(samples):
            start = time.perf_counter()
            noop.delay().get(timeout=30)
            timings.append(time.perf_counter() - start)
        return timings
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)


def bench_in_process(samples: int) -> list[float]:
    import importlib.util

    from qiskit_aer import AerSimulator

    path = ROOT / "programs" / "hello-world" / "hello-world.py"
    spec = importlib.util.spec_from_file_location("hello_world", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Messenger:
        def publish(self, message, encoder=None, final=False):
            json.dumps(message)

    backend, messenger = AerSimulator(), Messenger()
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        module.main(backend, messenger, iterations=0)
        timings.append(time.perf_counter() - start)
    return timings


def bench_burst(stack: Stack, watcher: DoneWatcher, count: int) -> dict[str, float]:
    body = json.dumps({"program_id": "hello-world", "backend": "aer_simulator", "params": {"iterations": 0}})
    local = threading.local()

    def submit(_: int) -> str:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        return session.post(stack.url + "/jobs", data=body, timeout=60).json()["id"]

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(count)))
    submitted = time.perf_counter() - start
    for job_id in ids:
        if not watcher.event_for(job_id).wait(600):
            raise RuntimeError(f"job {job_id} did not finish")
    elapsed = time.perf_counter() - start
    return {"jobs": count, "submit_s": submitted, "total_s": elapsed,
            "submit_per_s": count / submitted, "jobs_per_s": count / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args()

    stack = Stack(heartbeat_interval_s=1.0)
    try:
        stack.start_worker(concurrency=CONCURRENCY)
        stack.start_api()
        watcher = DoneWatcher(stack)
        bench_job_path(stack, watcher, 10)  # warm-up
        job = percentiles(bench_job_path(stack, watcher, args.samples))
        celery = percentiles(bench_raw_celery(stack, args.samples))
        direct = percentiles(bench_in_process(args.samples))
        burst = bench_burst(stack, watcher, args.burst)
    finally:
        stack.stop()

    rows = [("qruntime job (HTTP→worker→fork→result)", job),
            ("raw celery task round trip", celery),
            ("in-process call of main()", direct)]
    print(f"\n{'path':42} {'median ms':>10} {'p90 ms':>9} {'p99 ms':>9} {'n':>5}")
    for name, stats in rows:
        print(f"{name:42} {stats['median_ms']:10.2f} {stats['p90_ms']:9.2f} {stats['p99_ms']:9.2f} {stats['n']:5d}")
    print(f"\nqruntime job / raw celery (median): {job['median_ms'] / celery['median_ms']:.1f}x")
    print(f"burst of {burst['jobs']} jobs: submitted at {burst['submit_per_s']:.0f}/s, "
          f"completed at {burst['jobs_per_s']:.1f} jobs/s ({burst['total_s']:.1f} s), "
          f"worker concurrency {CONCURRENCY}, {os.cpu_count()} cores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"job_path": job, "raw_celery": celery, "in_process": direct, "burst": burst,
           "cores": os.cpu_count(), "worker_concurrency": CONCURRENCY}
    (RESULTS / "latency.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'latency.json'}")


if __name__ == "__main__":
    main()
