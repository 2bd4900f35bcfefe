"""Checkpoints across a lost worker: the next run resumes, and a following client sees each result once.

A program that publishes each interim result with a checkpoint
(``user_messenger.publish(message, checkpoint=state)``) is SIGKILLed with its
worker mid-run; the reaper requeues the job, another worker runs it from the
checkpoint, and a ``callback=`` client receives every interim result exactly
once, with a ``restart`` event in between.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterator

import numpy as np
import pytest

from qruntime.client.service import RuntimeService
from tests.hamiltonians import H2_TERMS
from tests.harness import Stack, wait_for

JOB_DEADLINE_S = 120


@pytest.fixture
def stack() -> Iterator[Stack]:
    own = Stack()
    try:
        own.start_api()
        yield own
    finally:
        own.stop()


def _follow(stack: Stack, job_id: str) -> tuple[object, list]:
    seen: list = []
    job = RuntimeService(url=stack.url).job(job_id)
    job.stream_results(lambda _, result: seen.append(result))
    return job, seen


def _lose_worker_when(stack: Stack, worker, condition) -> None:
    """SIGKILL the worker's whole process group (program included) once ``condition()`` holds, start another."""
    wait_for(condition, timeout=JOB_DEADLINE_S, message="the program to reach the point where its worker dies")
    stack.kill(worker, signal.SIGKILL)
    stack.start_worker(concurrency=1)


def test_a_checkpointing_program_resumes_after_its_worker_dies_and_its_client_sees_each_result_once(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    worker = stack.start_worker(concurrency=1)
    job_id = stack.submit("checkpointer", {"count": 8, "hold_at": 3})["id"]
    job, seen = _follow(stack, job_id)
    with caplog.at_level(logging.INFO, logger="qruntime.client.job"):
        _lose_worker_when(stack, worker, lambda: len(seen) >= 3)
        final = stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
        assert final["status"] == "COMPLETED", final
        assert json.loads(stack.result_text(job_id)) == {"resumed_after": 3}
        wait_for(lambda: len(seen) >= 8, message="every interim result to reach the client")
    assert [m["number"] for m in seen] == list(range(1, 9))  # each once, in order
    restarts = job.restarts()
    assert len(restarts) == 1 and restarts[0]["resume"] == "checkpoint" and restarts[0]["next_run"] == 2
    assert final["attempts"] == 2 and final["run"] == 2
    notes = [r for r in caplog.records if "went back to the queue" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO and "resumes from its last checkpoint" in notes[0].getMessage()
    # A client arriving afterwards replays the same once-each list.
    replayed = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=10).json()
    assert [m["data"]["number"] for m in replayed] == list(range(1, 9))
    assert [m["run"] for m in replayed] == [1] * 3 + [2] * 5  # which run published each
    logs = stack.http.get(f"{stack.url}/jobs/{job_id}/logs", timeout=10).text
    assert "run 2 resumes from the checkpoint run 1 saved" in logs


def test_a_program_without_checkpoints_starts_over_and_its_client_is_warned_with_the_attempt(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    worker = stack.start_worker(concurrency=1)
    job_id = stack.submit("sleeper", {"seconds": 3})["id"]
    job, seen = _follow(stack, job_id)
    _lose_worker_when(stack, worker, lambda: len(seen) >= 1)
    final = stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
    assert final["status"] == "COMPLETED", final
    wait_for(lambda: len(seen) == 2, message="the second run's interim result")
    assert job.attempts() == 2
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and "went back to the queue" in r.getMessage()]
    assert len(warnings) == 1 and "run again from the start (run 2)" in warnings[0], warnings
    assert job.restarts()[0]["resume"] == "start"
    # The replay keeps the run that finished: its interim result, once.
    replayed = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=10).json()
    assert [m["data"] for m in replayed] == [{"started": True}]


def test_a_checkpoint_larger_than_the_limit_is_refused_inside_the_program() -> None:
    own = Stack(max_checkpoint_bytes=1024)
    try:
        own.start_worker(concurrency=1)
        own.start_api()
        job_id = own.submit("checkpointer", {"oversized": True})["id"]
        final = own.wait_status(job_id, timeout=JOB_DEADLINE_S)
        assert final["status"] == "COMPLETED", final
        refused = json.loads(own.result_text(job_id))["refused"]
        assert "larger than the 1024 bytes" in refused and "QRT_MAX_CHECKPOINT_BYTES" in refused
    finally:
        own.stop()


def test_the_builtin_vqe_killed_mid_run_resumes_and_ends_as_an_uninterrupted_run(stack: Stack) -> None:
    """Its interim results come once each (1..n), and its answer is the uninterrupted run's."""
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_ibm_runtime.json import RuntimeEncoder

    worker = stack.start_worker(concurrency=1)
    inputs = {"operator": SparsePauliOp.from_list(H2_TERMS), "maxiter": 60, "seed": 7}
    params = json.loads(json.dumps(inputs, cls=RuntimeEncoder))
    reference = stack.submit("vqe", params)["id"]
    assert stack.wait_status(reference, timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"
    expected = json.loads(stack.result_text(reference))
    job_id = stack.submit("vqe", params)["id"]
    job, seen = _follow(stack, job_id)
    _lose_worker_when(stack, worker, lambda: len(seen) >= 15)
    final = stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
    assert final["status"] == "COMPLETED", final
    result = json.loads(stack.result_text(job_id))
    evals = result["cost_function_evals"]
    wait_for(lambda: len(seen) >= evals, message="every evaluation to reach the client")
    assert [m["iteration"] for m in seen] == list(range(1, evals + 1))
    assert job.restarts()[0]["resume"] == "checkpoint"
    assert evals == expected["cost_function_evals"]
    np.testing.assert_allclose(result["optimal_value"], expected["optimal_value"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["history"]["energy"], expected["history"]["energy"], rtol=0, atol=1e-12)


def test_a_vqe_whose_checkpoint_outgrows_the_limit_goes_on_without_and_says_so() -> None:
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_ibm_runtime.json import RuntimeEncoder

    own = Stack(max_checkpoint_bytes=2048)
    try:
        own.start_worker(concurrency=1)
        own.start_api()
        params = json.loads(json.dumps({"operator": SparsePauliOp.from_list(H2_TERMS), "maxiter": 60},
                                       cls=RuntimeEncoder))
        job_id = own.submit("vqe", params)["id"]
        final = own.wait_status(job_id, timeout=JOB_DEADLINE_S)
        assert final["status"] == "COMPLETED", final
        result = json.loads(own.result_text(job_id))
        interim = own.http.get(f"{own.url}/jobs/{job_id}/interim_results", timeout=10).json()
        assert [m["data"]["iteration"] for m in interim] == list(range(1, result["cost_function_evals"] + 1))
        logs = own.http.get(f"{own.url}/jobs/{job_id}/logs", timeout=10).text
        assert "no more checkpoints for this run" in logs and "QRT_MAX_CHECKPOINT_BYTES" in logs
        assert own.store.events.checkpoint(job_id) is None  # the job ended: its checkpoint went with it
    finally:
        own.stop()
