"""Completing a finished job's usage with the zygote's measure, after its task has returned.

A job's final status is recorded as soon as its program has returned; its
processes are then killed, and the zygote reports their CPU time and peak
memory once the last one has exited. On a 2-core VM that exit (unmapping a
fork of the warm image) takes ~10 ms. Waiting for it inside the Celery task
kept the pool slot busy that long after the job's end, with nothing to do: in a
burst, slots rather than CPUs bounded the jobs per second. Each pool process
instead hands the job's zygote connection to one background thread, which
waits for the measure and adds it to the job's usage, fenced by the job's run
like every write of the run (``JobStore.record_usage``). A measure that does
not come within :data:`USAGE_WAIT_S`, or a worker that stops first, leaves the
usage as recorded at the end, without ``cpu_s`` and ``peak_memory_bytes``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import selectors
import threading
import time
from typing import Any

from orchestrator.outage import OUTAGE_ERRORS
from orchestrator.status import FINAL_STATUSES, JobStatus
from orchestrator.store import Job, JobStore
from orchestrator.usage import with_measures
from workers.zygote_client import JobHandle

logger = logging.getLogger(__name__)

#: Longest the measure of a job's processes is waited for after its end was recorded.
USAGE_WAIT_S = 2.0


class UsageCompleter(threading.Thread):
    """One per pool process: waits on finished jobs' zygote connections, writes their measures."""

    def __init__(self) -> None:
        super().__init__(name="qruntime-usage", daemon=True)
        self._incoming: queue.SimpleQueue[tuple[JobStore, Job, JobHandle, dict, JobStatus]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)

    def add(self, store: JobStore, job: Job, handle: JobHandle, usage: dict[str, Any], status: JobStatus) -> None:
        """Take over ``handle`` (this thread closes it): add its measure to ``usage`` of ``job``."""
        self._incoming.put((store, job, handle, usage, status))
        os.write(self._wake_w, b"x")

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        while True:
            now = time.monotonic()
            waiting = [key.data for key in selector.get_map().values() if key.data is not None]
            timeout = min((entry[0] for entry in waiting), default=now + 60) - now
            for key, _ in selector.select(timeout=max(timeout, 0)):
                if key.data is None:
                    self._take_new(selector)
                else:
                    selector.unregister(key.fd)
                    try:
                        self._complete(*key.data[1:])
                    except Exception:  # noqa: BLE001 - one job's usage must not stop the others'
                        logger.exception("job %s: completing its usage failed", key.data[2].id)
            now = time.monotonic()
            for key in list(selector.get_map().values()):
                if key.data is not None and key.data[0] <= now:  # no measure in time: usage stays as recorded
                    selector.unregister(key.fd)
                    key.data[3].close()

    def _take_new(self, selector: selectors.BaseSelector) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while not self._incoming.empty():
            store, job, handle, usage, status = self._incoming.get()
            selector.register(handle.fileno(), selectors.EVENT_READ,
                              (time.monotonic() + USAGE_WAIT_S, store, job, handle, usage, status))

    @staticmethod
    def _complete(store: JobStore, job: Job, handle: JobHandle, usage: dict[str, Any], status: JobStatus) -> None:
        try:
            measure = handle.read_exit()
        finally:
            handle.close()
        if measure is None or status not in FINAL_STATUSES:
            return
        usage = with_measures(usage, cpu_s=measure.get("cpu_s"), peak_memory_bytes=measure.get("peak_memory_bytes"))
        try:
            store.record_usage(job.id, json.dumps(usage), run=job.run)
        except OUTAGE_ERRORS as exc:  # the usage keeps what was recorded at the end
            logger.warning("job %s: could not add the measure of its processes to its usage (%s)", job.id, exc)


_completer: UsageCompleter | None = None
_completer_pid = 0
_lock = threading.Lock()


def completer() -> UsageCompleter:
    """This process's completer (a pool process forked after another one started gets its own)."""
    global _completer, _completer_pid
    with _lock:
        if _completer is None or _completer_pid != os.getpid():
            _completer, _completer_pid = UsageCompleter(), os.getpid()
            _completer.start()
        return _completer
