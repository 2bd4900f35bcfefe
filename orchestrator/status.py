"""Job statuses and the only transitions allowed between them.

The store's ``transition`` method is the single writer of a job's status and it
consults :data:`TRANSITIONS`; nothing else decides whether a move is legal.
"""

from __future__ import annotations

import enum


class JobStatus(str, enum.Enum):
    """What the REST API reports as a job's ``status`` (the seed's server strings)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CANCELLED_RAN_TOO_LONG = "CANCELLED - RAN TOO LONG"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    def __str__(self) -> str:
        return self.value


PENDING_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
FINAL_STATUSES = frozenset(set(JobStatus) - PENDING_STATUSES)

#: from → allowed destinations. RUNNING → QUEUED is the reaper requeueing an orphan.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.CANCELLED_RAN_TOO_LONG,
            JobStatus.QUEUED,
        }
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
    JobStatus.CANCELLED_RAN_TOO_LONG: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]
