"""What one fault drill measured, in the same shape for every drill (tests and bench/faults.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from tests.harness import wait_for


@dataclasses.dataclass
class DrillResult:
    """The figures of one drill run.

    ``runs``: how many times the fault was injected (or jobs exposed to it);
    ``lost``: jobs (or streamed events) that never reached their end / the client;
    ``repeated``: interim results a client received more than once;
    ``stuck``: jobs not in a final state by the drill's deadline;
    ``recovery_s``: per injected fault, seconds from the fault to the service working again
    (what "working again" means is the drill's docstring).
    ``notes``: anything else the drill wants in the table (drill-specific counters).
    """

    name: str
    runs: int = 0
    lost: int = 0
    repeated: int = 0
    stuck: int = 0
    recovery_s: list[float] = dataclasses.field(default_factory=list)
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.repeated == 0 and self.stuck == 0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "clean": self.clean}


def settle(condition: Callable[[], object], timeout: float) -> bool:
    """Whether ``condition`` came true within ``timeout`` (a drill counts what did not, it does not fail)."""
    try:
        wait_for(condition, timeout=max(timeout, 0.0), interval=0.05)
    except AssertionError:
        return False
    return True


def completed(stack: Any, job_id: str, result: DrillResult, since: float, timeout: float) -> bool:
    """Whether the job ended COMPLETED within ``timeout``; counts it stuck or lost if not, and its
    recovery (from ``since``, a ``time.monotonic()``) if so."""
    if not settle(lambda: stack.store.get(job_id).status.is_final, timeout):
        result.stuck += 1
        return False
    final = stack.job(job_id)
    if final["status"] != "COMPLETED":
        result.lost += 1
        result.notes.setdefault("ended", []).append(f"{final['status']} on run {final['run']}: {final.get('reason')}")
        return False
    result.recovery_s.append(time.monotonic() - since)
    return True
