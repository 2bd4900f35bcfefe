"""What a job cost: the ``usage`` of its record, shown by the API, the client and the CLI.

Written once by the supervisor when the job's run ends, from what it measured
and what the zygote reported about the job's processes:

- ``queue_wait_s``: from submission to the start of the run that finished it;
- ``wall_s``: that run, from handing the job to a sandbox to its end;
- ``cpu_s``: user + system CPU seconds of the job's processes (those its init
  waited for; a job's processes all end with it);
- ``peak_memory_bytes``: the job's cgroup's peak, where the worker could make a
  cgroup; else the largest resident size of its init process;
- ``interim_bytes`` / ``log_bytes``: bytes of interim results and log lines it
  wrote to its event log;
- ``attempts``: runs it took (a run handed back by a stopping worker does not count).

A figure nothing measured is null, never a guess. The zygote's two figures (CPU,
peak memory) of a program that returned normally follow its final status by
milliseconds: its end is recorded first, so that waiting clients hear at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def usage_record(*, created: str, started: str, wall_s: float, cpu_s: float | None,
                 peak_memory_bytes: int | None, interim_bytes: int, log_bytes: int, attempts: int) -> dict[str, Any]:
    """The ``usage`` object of a job record (see the module docstring for each figure)."""
    return with_measures({
        "queue_wait_s": _seconds_between(created, started),
        "wall_s": round(wall_s, 3),
        "cpu_s": None,
        "peak_memory_bytes": None,
        "interim_bytes": interim_bytes,
        "log_bytes": log_bytes,
        "attempts": attempts,
    }, cpu_s=cpu_s, peak_memory_bytes=peak_memory_bytes)


def with_measures(usage: dict[str, Any], *, cpu_s: float | None, peak_memory_bytes: int | None) -> dict[str, Any]:
    """``usage`` completed with the zygote's measure of the job's processes (it may come later)."""
    return {**usage, "cpu_s": None if cpu_s is None else round(float(cpu_s), 3),
            "peak_memory_bytes": None if peak_memory_bytes is None else int(peak_memory_bytes)}


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return round((_parse(end) - _parse(start)).total_seconds(), 3)
    except ValueError:
        return None


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
