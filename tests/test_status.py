"""The status machine: which moves are legal, and which statuses are final."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.status import (
    FINAL_STATUSES,
    PENDING_STATUSES,
    TRANSITIONS,
    JobStatus,
    can_transition,
)

S = JobStatus
#: DESIGN §2, row by row (RUNNING → QUEUED is the reaper requeueing an orphan;
#: QUEUED → FAILED is a job that could not be enqueued).
ALLOWED = {
    (S.QUEUED, S.RUNNING), (S.QUEUED, S.CANCELLED), (S.QUEUED, S.FAILED),
    (S.RUNNING, S.COMPLETED), (S.RUNNING, S.FAILED), (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.CANCELLED_RAN_TOO_LONG), (S.RUNNING, S.QUEUED),
}


def test_server_strings_are_the_seeds() -> None:
    assert [s.value for s in JobStatus] == [
        "QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CANCELLED - RAN TOO LONG",
    ]
    assert str(S.CANCELLED_RAN_TOO_LONG) == "CANCELLED - RAN TOO LONG"
    assert JobStatus("CANCELLED - RAN TOO LONG") is S.CANCELLED_RAN_TOO_LONG


@pytest.mark.parametrize(("current", "target"), list(itertools.product(JobStatus, JobStatus)),
                         ids=lambda s: s.name)
def test_transition_table_allows_exactly_the_designed_moves(current: JobStatus, target: JobStatus) -> None:
    assert can_transition(current, target) is ((current, target) in ALLOWED)


def test_final_statuses_go_nowhere_and_pending_ones_do() -> None:
    assert PENDING_STATUSES == {S.QUEUED, S.RUNNING}
    assert FINAL_STATUSES == {S.COMPLETED, S.FAILED, S.CANCELLED, S.CANCELLED_RAN_TOO_LONG}
    for status in JobStatus:
        assert status.is_final is (status in FINAL_STATUSES)
        assert (TRANSITIONS[status] == frozenset()) is status.is_final


def test_no_status_moves_to_itself() -> None:
    assert not any(can_transition(status, status) for status in JobStatus)
