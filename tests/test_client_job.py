"""RuntimeJob against a live stack: status mapping, results, failures, cancel, streaming."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import pytest
from qiskit.providers import JobStatus

from qruntime.client.decoder import ResultDecoder
from qruntime.client.job import api_status_to_job_status
from qruntime.client.service import RuntimeService
from qruntime.exceptions import (
    IBMQError,
    JobTimeoutError,
    RuntimeInvalidStateError,
    RuntimeJobFailureError,
)
from tests.harness import Stack, wait_for

OPTIONS = {"backend_name": "aer_simulator"}


@pytest.fixture
def service(stack: Stack) -> RuntimeService:
    return RuntimeService(url=stack.url)


class Collector:
    """A callback that records what it is given, from the streaming thread."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.seen: list[Any] = []
        self.job_ids: set[str] = set()
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, job_id: str, interim: Any) -> None:
        with self.lock:
            self.job_ids.add(job_id)
            self.seen.append(interim)
        if isinstance(interim, dict) and interim.get("index") in self.fail_on:
            raise RuntimeError(f"callback refuses message {interim['index']}")


def test_server_statuses_map_to_qiskit_job_statuses_like_the_seed() -> None:
    assert api_status_to_job_status("QUEUED") is JobStatus.QUEUED
    assert api_status_to_job_status("RUNNING") is JobStatus.RUNNING
    assert api_status_to_job_status("COMPLETED") is JobStatus.DONE
    assert api_status_to_job_status("FAILED") is JobStatus.ERROR
    assert api_status_to_job_status("CANCELLED") is JobStatus.CANCELLED
    assert api_status_to_job_status("CANCELLED - RAN TOO LONG") is JobStatus.ERROR
    with pytest.raises(IBMQError, match="Unknown status: LOST"):
        api_status_to_job_status("LOST")


def test_a_completed_job_is_done_with_its_result_logs_interim_results_and_metadata(
        service: RuntimeService) -> None:
    job = service.run("runtime-simple", options=OPTIONS, inputs={"iterations": 2})
    assert job.result(timeout=120) == "All done!"
    assert job.result() == "All done!"
    assert job.status() is JobStatus.DONE
    assert job.error_message() is None
    assert [r["iteration"] for r in job.interim_results()] == [0, 1]
    assert isinstance(job.logs(), str)
    assert job.inputs == {"iterations": 2}
    assert job.program_id == "runtime-simple"
    assert job.backend().name == "aer_simulator"
    assert isinstance(job.creation_date, datetime) and job.creation_date.tzinfo is not None
    retrieved = service.job(job.job_id())
    assert retrieved.creation_date == job.creation_date
    assert retrieved.status() is JobStatus.DONE


def test_a_running_job_reports_running_then_done(service: RuntimeService) -> None:
    job = service.run("sleeper", options=OPTIONS, inputs={"seconds": 1})
    wait_for(lambda: job.status() in (JobStatus.RUNNING, JobStatus.DONE), message="sleeper to start")
    job.wait_for_final_state(timeout=60)
    assert job.status() is JobStatus.DONE
    assert job.result() == {"slept": 1}


def test_a_failed_job_is_an_error_with_the_seeds_message_and_result_raises(service: RuntimeService,
                                                                           stack: Stack) -> None:
    job = service.run("raiser", options=OPTIONS, inputs={})
    with pytest.raises(RuntimeJobFailureError) as caught:
        job.result(timeout=60)
    assert job.status() is JobStatus.ERROR
    text = stack.result_text(job.job_id())
    assert "KeyError" in text
    assert job.error_message() == f"Job {job.job_id()} has failed:\n{text}"
    assert caught.value.message == f"Unable to retrieve job result. Job {job.job_id()} has failed:\n{text}"
    assert "about to fail" in job.logs()
    with pytest.raises(RuntimeJobFailureError):
        job.result()


def test_a_job_that_ran_too_long_is_an_error_with_the_seeds_message(service: RuntimeService,
                                                                    stack: Stack) -> None:
    submitted = stack.submit("forever", max_execution_time=1)
    job = service.job(submitted["id"])
    job.wait_for_final_state(timeout=60)
    assert job.status() is JobStatus.ERROR
    text = stack.result_text(job.job_id())
    assert job.error_message() == (f"Job {job.job_id()} ran longer than maximum execution time. "
                                   f"Job was cancelled:\n{text}")
    with pytest.raises(RuntimeJobFailureError, match="ran longer than maximum execution time"):
        job.result()


def test_cancel_stops_a_running_job_and_a_second_cancel_is_an_invalid_state(service: RuntimeService) -> None:
    collector = Collector()
    job = service.run("holder", options=OPTIONS, inputs={}, callback=collector)
    wait_for(lambda: collector.seen, message="the holder's first message")
    job.cancel()
    assert job.status() is JobStatus.CANCELLED
    assert service.job(job.job_id()).status() is JobStatus.CANCELLED
    assert job.error_message() is None
    assert job.result() == ""
    with pytest.raises(RuntimeInvalidStateError, match="^'Job cannot be cancelled: "):
        job.cancel()


def test_wait_for_final_state_times_out_with_job_timeout_error(service: RuntimeService) -> None:
    job = service.run("holder", options=OPTIONS, inputs={})
    try:
        with pytest.raises(JobTimeoutError, match=f"Timeout while waiting for job {job.job_id()}."):
            job.wait_for_final_state(timeout=0.5)
        with pytest.raises(JobTimeoutError):
            job.result(timeout=0.5)
    finally:
        job.cancel()


def test_callback_gets_every_interim_result_once_in_order_before_result_returns(
        service: RuntimeService) -> None:
    collector = Collector()
    job = service.run("publisher", options=OPTIONS, inputs={"count": 20}, callback=collector)
    assert job.result(timeout=60) == "published 20"
    assert collector.seen == [{"index": i} for i in range(1, 21)]
    assert collector.job_ids == {job.job_id()}


def test_a_callback_that_raises_is_logged_and_streaming_continues(
        service: RuntimeService, caplog: pytest.LogCaptureFixture) -> None:
    collector = Collector(fail_on=(2, 4))
    with caplog.at_level(logging.WARNING, logger="qruntime.client.job"):
        job = service.run("publisher", options=OPTIONS, inputs={"count": 6}, callback=collector)
        job.result(timeout=60)
    assert collector.seen == [{"index": i} for i in range(1, 7)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(f"An error occurred while streaming results for job {job.job_id()}" in r.getMessage()
               for r in warnings)
    assert "callback refuses message 2" in warnings[0].getMessage()


def test_stream_results_replays_earlier_messages_with_the_given_decoder(service: RuntimeService) -> None:
    class Tagging(ResultDecoder):
        @classmethod
        def decode(cls, data: str) -> Any:
            return ("tagged", super().decode(data))

    job = service.run("holder", options=OPTIONS, inputs={})
    try:
        wait_for(lambda: job.interim_results(), message="the holder's message")
        collector = Collector()
        job.stream_results(collector, decoder=Tagging)
        wait_for(lambda: collector.seen, message="the replayed message")
        assert collector.seen[0][0] == "tagged" and "pid" in collector.seen[0][1]
        with pytest.raises(RuntimeInvalidStateError, match="already streaming"):
            job.stream_results(Collector())
        job.cancel_result_streaming()
        assert job._streamer is not None and job._streamer.ended.is_set()
        job.cancel_result_streaming()
    finally:
        job.cancel()
    with pytest.raises(RuntimeInvalidStateError, match="Job already finished."):
        job.stream_results(Collector())


def test_result_decodes_with_a_custom_decoder_without_caching_it_as_the_default(
        service: RuntimeService) -> None:
    class Upper(ResultDecoder):
        @classmethod
        def decode(cls, data: str) -> Any:
            return str(super().decode(data)).upper()

    job = service.run("publisher", options=OPTIONS, inputs={"count": 1})
    assert job.result(timeout=60, decoder=Upper) == "PUBLISHED 1"
    assert job.result() == "published 1"


@pytest.fixture
def private_stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        stack.start_worker(concurrency=1)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_a_callback_survives_an_api_restart_without_losing_or_repeating_a_message(
        private_stack: Stack) -> None:
    service = RuntimeService(url=private_stack.url)
    collector = Collector()
    count = 60
    job = service.run("publisher", options=OPTIONS, inputs={"count": count, "interval": 0.1},
                      callback=collector)
    wait_for(lambda: len(collector.seen) >= 3, message="the first messages")
    port = urlparse(private_stack.url).port
    private_stack.kill(private_stack.apis[-1])
    private_stack.start_api(port)
    assert job.result(timeout=120) == f"published {count}"
    assert collector.seen == [{"index": i} for i in range(1, count + 1)]
    assert job._streamer is not None and job._streamer.stream.reconnects >= 1


def test_a_followed_jobs_result_comes_with_its_done_event_without_another_request(service: RuntimeService) -> None:
    job = service.run("hello-world", inputs={"iterations": 1}, options={"backend_name": "aer_simulator"})
    asked: list[str] = []
    fetch = job._api.job_results
    job._api.job_results = lambda job_id: asked.append(job_id) or fetch(job_id)  # counts, then asks the server
    assert job.result(timeout=60) == "All done!"
    assert asked == []  # the stream's done event carried it
