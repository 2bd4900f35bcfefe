"""The fault drills of tests/faults/drills.py, run small: nothing lost, repeated or stuck.

Each test also holds its drill to the promise particular to it; bench/faults.py
runs the same drills at size.
"""

from __future__ import annotations

from tests.faults.drills import (
    EXIT_MARGIN_S,
    GRACE_S,
    api_kill_streaming,
    redis_kill_aof,
    worker_sigterm_long_job,
)


def test_jobs_queued_and_running_when_redis_is_killed_all_complete_once_it_restarts_from_its_aof() -> None:
    result = redis_kill_aof(5)
    assert result.clean, result
    # The AOF brought back queued messages as well as records, and the worker ran them.
    assert result.notes["queued_at_kill"] > 0, result
    assert result.recovery_s, result


def test_sse_clients_get_every_interim_result_once_and_in_order_across_an_api_kill() -> None:
    result = api_kill_streaming(5)
    assert result.clean, result
    assert result.notes["out_of_order"] == 0 and result.notes["id_regressions"] == 0, result
    assert result.notes["raw_resumes"] > 0, result  # the raw clients did lose their connections
    assert result.recovery_s, result


def test_a_worker_told_to_stop_exits_within_its_grace_and_another_worker_finishes_its_job() -> None:
    result = worker_sigterm_long_job(1)
    assert result.clean, result
    assert max(result.recovery_s) <= GRACE_S + EXIT_MARGIN_S, result
    assert result.notes["not_requeued"] == 0 and result.notes["attempts_changed"] == 0, result
    assert result.notes["not_a_full_run"] == 0, result
