"""The fault drills: a real stack, one fault injected on purpose, and what it cost.

Each drill builds its own :class:`~tests.harness.Stack`, injects its fault into
real processes, waits for the service to settle (conditions with deadlines; the
only fixed pause is an outage's own length), and returns a
:class:`~tests.faults.drill.DrillResult`. The docstring of
each says what "recovered" means for it. tests/faults/test_drills.py runs them
small; bench/faults.py runs them at size.
"""

from __future__ import annotations

import collections
import itertools
import json
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

from orchestrator.errors import JobNotFoundError
from orchestrator.status import JobStatus
from qruntime.client.service import RuntimeService
from qruntime.localredis import LocalRedis
from tests.faults.drill import DrillResult, settle
from tests.harness import Stack, wait_for
from tests.sse import SSEEvent, read_stream

#: Longest a drill waits for its jobs to settle after the fault before counting them stuck.
SETTLE_S = 90.0

# -- Redis SIGKILLed, restarted from its AOF -------------------------------------------------

#: Each job sleeps this long, so the worker is busy and jobs wait in the queue when Redis dies.
AOF_JOB_S = 1.0
#: Pool slots of the drill's worker.
AOF_CONCURRENCY = 2
#: How long Redis stays dead: an outage, not a blip.
REDIS_DOWN_S = 1.0

# -- the API SIGKILLed under its SSE clients -------------------------------------------------

#: Jobs the clients share (one per pool slot of the worker, so all of them run at once).
STREAM_JOBS = 2
#: Each job publishes this many numbered interim results at this rate: 6 s of stream.
STREAM_EVENTS, STREAM_RATE_HZ = 120, 20.0
#: Interim results every client must have before the API is killed: it dies mid-stream.
KILL_AFTER_EVENTS = 10
#: The ``retry:`` the API tells SSE clients to wait before reconnecting (browsers honour it).
STREAM_RETRY_MS = 100

# -- a worker asked to stop (SIGTERM) with a job longer than its grace ------------------------

#: The worker's shutdown grace (QRT_SHUTDOWN_GRACE_S): short, so the job outlives it.
GRACE_S = 1.0
#: What "the worker exits promptly" allows beyond the grace.
EXIT_MARGIN_S = 5.0
#: The long job: numbered interim results for 4 s, four times the grace.
LONG_JOB_EVENTS, LONG_JOB_RATE_HZ = 40, 10.0


def redis_kill_aof(n_jobs: int) -> DrillResult:
    """SIGKILL Redis (AOF on) while ``n_jobs`` jobs are queued or running, restart it, and every job completes.

    The Redis is what ``qruntime up`` runs (:class:`LocalRedis` with a data dir:
    ``appendonly yes`` and Redis's default ``appendfsync everysec``, as in
    docker-compose.yml). ``everysec`` is enough here: a SIGKILL ends the process,
    not the kernel, and Redis ``write()``s its AOF buffer before it sends the
    replies of the commands in it, so every acknowledged write is in the page
    cache when the process dies; ``always`` would only add safety against the
    host itself crashing, which no drill on one machine can stage.

    The worker stays up through the outage, as a deployed one would. Recovered:
    the first job completing after Redis answers again (``recovery_s``, seconds
    from the restart). Lost: a job whose record is gone or that ended other than
    COMPLETED; stuck: not final ``SETTLE_S`` after the restart.
    """
    result = DrillResult("redis SIGKILL (AOF), jobs queued and running", runs=n_jobs)
    with tempfile.TemporaryDirectory(prefix="qrt-drill-aof-") as data_dir, \
            LocalRedis(data_dir=Path(data_dir)) as server:
        stack = Stack(redis_url=server.url)
        try:
            stack.start_worker(concurrency=AOF_CONCURRENCY)
            stack.start_api()
            ids = [stack.submit("sleeper", {"seconds": AOF_JOB_S})["id"] for _ in range(n_jobs)]
            wait_for(lambda: JobStatus.RUNNING in _statuses(stack, ids).values(), message="a job to be running")
            result.notes["appendfsync"] = stack.redis.config_get("appendfsync")["appendfsync"]
            restarted, queued = _kill_and_restart(server, stack, ids, result)
            done_at_restart = {i for i, s in _statuses(stack, ids).items() if s is JobStatus.COMPLETED}
            firsts = _first_times(stack, ids, {
                "completion": lambda i, s: s is JobStatus.COMPLETED and i not in done_at_restart,
                "queued_start": lambda i, s: i in queued and s not in (None, JobStatus.QUEUED),
            }, SETTLE_S)
            if "completion" in firsts:
                result.recovery_s.append(firsts["completion"] - restarted)
            if "queued_start" in firsts:  # the broker's side: a message kept by the AOF delivered again
                result.notes["restart_to_queued_job_start_s"] = round(firsts["queued_start"] - restarted, 3)
            settle(lambda: all(s is not None and s.is_final for s in _statuses(stack, ids).values()),
                    SETTLE_S - (time.monotonic() - restarted))
            _count_outcomes(result, stack, _statuses(stack, ids))
        finally:
            stack.stop()
    return result


def _kill_and_restart(server: LocalRedis, stack: Stack, ids: list[str],
                      result: DrillResult) -> tuple[float, list[str]]:
    """SIGKILL Redis, leave it dead :data:`REDIS_DOWN_S`, restart it; when it answered, and the jobs queued then."""
    before = _statuses(stack, ids)
    queued = [i for i, s in before.items() if s is JobStatus.QUEUED]
    result.notes["queued_at_kill"] = len(queued)
    result.notes["running_at_kill"] = sum(s is JobStatus.RUNNING for s in before.values())
    server.kill()
    time.sleep(REDIS_DOWN_S)  # the outage itself, not a wait for anything
    server.start()
    return time.monotonic(), queued


def api_kill_streaming(n_clients: int) -> DrillResult:
    """SIGKILL the API under ``n_clients`` SSE clients mid-stream, start a new one on its port.

    The clients share :data:`STREAM_JOBS` ``pacer`` jobs publishing numbered
    interim results. Half of them are raw SSE readers that reconnect the way a
    browser's EventSource does (after the server's ``retry:``, with
    ``Last-Event-ID``): they see exactly what the server sends. The other half
    are the SDK's ``RuntimeJob.stream_results``, which resumes by itself: what a
    user's callback sees. Each must receive every interim result once, in order:
    ``lost`` counts numbers a client never got, ``repeated`` numbers it got twice;
    ``notes["out_of_order"]`` numbers that came after a higher one, and
    ``notes["id_regressions"]`` raw SSE ids not above the one before.

    Recovered: every client receiving events again (``recovery_s``, seconds from
    the SIGKILL until the last client's first event after the new API answered).
    """
    result = DrillResult("API SIGKILL under SSE clients", runs=n_clients)
    stack = Stack(stream_retry_ms=STREAM_RETRY_MS)
    clients: list[_Client] = []
    try:
        stack.start_worker(concurrency=STREAM_JOBS)
        port = int(stack.start_api().rsplit(":", 1)[1])
        params = {"count": STREAM_EVENTS, "rate_hz": STREAM_RATE_HZ}
        jobs = [stack.submit("pacer", params)["id"] for _ in range(min(STREAM_JOBS, n_clients))]
        for index in range(n_clients):
            kind = _RawClient if index % 2 == 0 else _SdkClient
            clients.append(kind(stack.url, jobs[index % len(jobs)]))
        wait_for(lambda: all(len(c.numbers) >= KILL_AFTER_EVENTS for c in clients),
                 timeout=SETTLE_S, message=f"every client to have {KILL_AFTER_EVENTS} interim results")
        killed = time.monotonic()
        stack.kill(stack.apis[-1])
        stack.start_api(port)
        back = time.monotonic()
        result.notes["api_down_s"] = round(back - killed, 3)
        if settle(lambda: all(c.first_event_after(back) for c in clients), SETTLE_S):
            result.recovery_s.append(max(c.first_event_after(back) or back for c in clients) - killed)
            for kind, label in ((_RawClient, "raw"), (_SdkClient, "sdk")):
                mine = [c.first_event_after(back) or back for c in clients if isinstance(c, kind)]
                if mine:  # each kind's own reconnection schedule: the server's retry, the SDK's backoff
                    result.notes[f"recovery_{label}_s"] = round(max(mine) - killed, 3)
        settle(lambda: all(stack.store.get(j).status.is_final for j in jobs), SETTLE_S)
        settle(lambda: all(c.finished() for c in clients), SETTLE_S / 3)
        expected = list(range(1, STREAM_EVENTS + 1))
        for client in clients:
            numbers = client.numbers
            result.lost += len(set(expected) - set(numbers))
            result.repeated += len(numbers) - len(set(numbers))
            result.notes["out_of_order"] = result.notes.get("out_of_order", 0) + sum(
                b < a for a, b in itertools.pairwise(numbers))
            result.notes["id_regressions"] = result.notes.get("id_regressions", 0) + client.id_regressions
        result.stuck = sum(not stack.store.get(j).status.is_final for j in jobs)
        result.stuck += sum(not c.finished() for c in clients)
        result.notes["raw_resumes"] = sum(c.connections - 1 for c in clients if isinstance(c, _RawClient))
    finally:
        for client in clients:
            client.stop()
        stack.stop()
    return result


def worker_sigterm_long_job(n: int) -> DrillResult:
    """``n`` times: SIGTERM the worker running a job longer than its grace; another worker finishes it.

    The worker runs with ``QRT_SHUTDOWN_GRACE_S`` = :data:`GRACE_S` and its job
    publishes numbered interim results for four times that. Each round SIGTERMs
    the worker's main process (as Kubernetes and ``qruntime up`` do), then checks
    that it exited within grace + :data:`EXIT_MARGIN_S` (``recovery_s``: seconds
    from the SIGTERM to the exit), that the job is QUEUED again with the
    ``attempts`` it was submitted with, and that it COMPLETES on the worker
    started next, as one full run there (the result counts every interim result).
    That worker is the next round's victim. ``lost``: a job that did not complete
    on another worker; ``stuck``: not final by the deadline; ``notes`` count each
    other broken promise.
    """
    result = DrillResult("worker SIGTERM, job longer than the grace", runs=n)
    broken = collections.Counter({"exit_over_bound": 0, "not_requeued": 0, "attempts_changed": 0,
                                  "not_a_full_run": 0})
    stack = Stack(shutdown_grace_s=GRACE_S)
    try:
        victim = stack.start_worker(concurrency=1)
        stack.start_api()
        for _ in range(n):
            victim = _sigterm_round(stack, victim, result, broken)
        result.notes.update(broken)
        result.notes["exit_bound_s"] = GRACE_S + EXIT_MARGIN_S
    finally:
        stack.stop()
    return result


def _sigterm_round(stack: Stack, victim: subprocess.Popen, result: DrillResult,
                   broken: collections.Counter) -> subprocess.Popen:
    """One round of :func:`worker_sigterm_long_job`; returns the worker that finished the job."""
    submitted = stack.submit("pacer", {"count": LONG_JOB_EVENTS, "rate_hz": LONG_JOB_RATE_HZ})
    job_id = submitted["id"]
    wait_for(lambda: _interim_count(stack, job_id), message=f"job {job_id} to start")
    first_run = stack.store.get(job_id).worker
    stopped = time.monotonic()
    victim.send_signal(signal.SIGTERM)  # the main process only, as tests/test_shutdown.py does
    try:
        victim.wait(timeout=GRACE_S + stack.settings.kill_grace_s + SETTLE_S)
    except subprocess.TimeoutExpired:
        stack.kill(victim)
    exit_s = time.monotonic() - stopped
    result.recovery_s.append(exit_s)
    broken["exit_over_bound"] += exit_s > GRACE_S + EXIT_MARGIN_S
    handed_back = stack.store.get(job_id)
    broken["not_requeued"] += handed_back.status is not JobStatus.QUEUED
    broken["attempts_changed"] += handed_back.attempts != submitted["attempts"]
    successor = stack.start_worker(concurrency=1)
    settle(lambda: stack.store.get(job_id).status.is_final, SETTLE_S)
    final = stack.store.get(job_id)
    if not final.status.is_final:
        result.stuck += 1
    elif final.status is not JobStatus.COMPLETED or final.worker == first_run:
        result.lost += 1
    elif json.loads(stack.result_text(job_id)).get("published") != LONG_JOB_EVENTS:
        broken["not_a_full_run"] += 1
    return successor


# -- helpers --------------------------------------------------------------------------------


def _statuses(stack: Stack, ids: list[str]) -> dict[str, JobStatus | None]:
    """Each job's status (None: no record), or all None while the store cannot be reached."""
    statuses: dict[str, JobStatus | None] = {}
    try:
        for job_id in ids:
            try:
                statuses[job_id] = stack.store.get(job_id).status
            except JobNotFoundError:
                statuses[job_id] = None
    except redis.RedisError:
        return dict.fromkeys(ids)
    return statuses


def _first_times(stack: Stack, ids: list[str],
                 conditions: dict[str, Callable[[str, JobStatus | None], bool]],
                 timeout: float) -> dict[str, float]:
    """When (monotonic) each named condition first held for some job, polled until all did or ``timeout``."""
    seen: dict[str, float] = {}

    def all_seen() -> bool:
        statuses = _statuses(stack, ids)
        now = time.monotonic()
        for name, condition in conditions.items():
            if name not in seen and any(condition(i, s) for i, s in statuses.items()):
                seen[name] = now
        return len(seen) == len(conditions)

    settle(all_seen, timeout)
    return seen


def _count_outcomes(result: DrillResult, stack: Stack, final: dict[str, JobStatus | None]) -> None:
    """Lost (no record, or ended other than COMPLETED) and stuck (not final) jobs, and their reruns."""
    result.stuck = sum(s is not None and not s.is_final for s in final.values())
    result.lost = sum(s is None or (s.is_final and s is not JobStatus.COMPLETED) for s in final.values())
    result.notes["statuses"] = dict(collections.Counter(s.value if s else "missing" for s in final.values()))
    result.notes["ran_twice"] = sum(stack.store.get(i).attempts > 1 for i, s in final.items() if s)


def _interim_count(stack: Stack, job_id: str) -> int:
    response = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=30)
    return len(response.json()) if response.status_code == 200 else 0


class _Client:
    """One streaming client on its own thread: the interim results' numbers as they arrived."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.id_regressions = 0
        self._arrivals: list[float] = []
        self._lock = threading.Lock()

    def _received(self, number: int) -> None:
        with self._lock:
            self.numbers.append(number)
            self._arrivals.append(time.monotonic())

    def first_event_after(self, moment: float) -> float | None:
        with self._lock:
            return next((t for t in self._arrivals if t >= moment), None)

    def finished(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class _RawClient(_Client):
    """Follows a job's SSE stream like EventSource: on any break, waits ``retry:`` and resumes."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__()
        self._url = f"{url}/jobs/{job_id}/stream"
        self._done = threading.Event()
        self._stopping = threading.Event()
        self._last_id = 0
        self._taken = 0
        #: Connections that delivered something; all but the first are resumptions.
        self.connections = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def finished(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        pause_s = STREAM_RETRY_MS / 1000
        deadline = time.monotonic() + SETTLE_S * 2
        while not (self._done.is_set() or self._stopping.is_set()) and time.monotonic() < deadline:
            self._taken = -1
            try:
                read = read_stream(self._url, last_event_id=self._last_id or None, until=self._take,
                                   timeout=SETTLE_S)
                if read.status == 204:
                    self._done.set()
                if read.parser.retry_ms is not None:
                    pause_s = read.parser.retry_ms / 1000
            except (requests.RequestException, AssertionError):
                pass  # refused, reset or cut short: resume from the last id like EventSource
            if not self._done.is_set():
                self._stopping.wait(pause_s)

    def _take(self, events: list[SSEEvent], parser: object) -> bool:
        if self._taken < 0:  # the connection's first chunk
            self.connections += 1
            self._taken = 0
        for event in events[self._taken:]:
            if event.int_id <= self._last_id:
                self.id_regressions += 1
            self._last_id = max(self._last_id, event.int_id)
            if event.event == "interim":
                self._received(_number_of(event.data))
            elif event.event == "done":
                self._done.set()
        self._taken = len(events)
        return self._done.is_set() or self._stopping.is_set()


class _SdkClient(_Client):
    """The SDK's own resuming stream: ``RuntimeJob.stream_results`` with a callback."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__()
        self._job = RuntimeService(url=url).job(job_id)
        self._job.stream_results(lambda _, interim: self._received(int(interim["iteration"])))

    def finished(self) -> bool:
        return len(set(self.numbers)) >= STREAM_EVENTS

    def stop(self) -> None:
        self._job.cancel_result_streaming()


def _number_of(data: str) -> int:
    """The number a ``pacer`` interim result carries (its SSE data is the program's JSON, as published)."""
    return int(json.loads(data)["iteration"])
