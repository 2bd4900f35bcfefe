"""The lost-worker drills of tests/faults/restarts.py, small: each must lose, repeat and strand nothing."""

from __future__ import annotations

from tests.faults.restarts import partitioned_worker, worker_sigkill


def test_worker_sigkill_during_a_checkpointing_program_resumes_it_and_its_client_sees_each_result_once() -> None:
    result = worker_sigkill(2, checkpointing=True)
    assert result.runs == 2 and result.clean, result
    assert result.notes["not_resumed"] == 0, result


def test_worker_sigkill_during_a_program_without_checkpoints_warns_its_client_with_the_attempt() -> None:
    result = worker_sigkill(1, checkpointing=False)
    assert result.runs == 1 and result.clean, result
    assert result.notes["unwarned"] == 0, result


def test_a_partitioned_worker_that_comes_back_has_its_late_writes_refused() -> None:
    result = partitioned_worker(1)
    assert result.runs == 1 and result.clean, result
    assert result.notes == {"refusal_logged": 1, "stale_events": 0, "final_of_new_run": 1}, result
