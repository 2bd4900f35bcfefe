"""The Sentinel drills of tests/faults/failover.py, once each: nothing lost, nothing repeated."""

from __future__ import annotations

from tests.faults.failover import sentinel_failover


def test_a_sentinel_failover_during_a_job_loses_and_repeats_nothing() -> None:
    result = sentinel_failover(1)
    assert result.runs == 1 and result.clean, result


def test_a_killed_master_during_a_job_loses_and_repeats_nothing() -> None:
    result = sentinel_failover(1, kill=True)
    assert result.runs == 1 and result.clean, result
