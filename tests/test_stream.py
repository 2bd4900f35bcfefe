"""``GET /jobs/{id}/stream`` over real HTTP, against a real worker running real programs.

The story of each test: a program publishes; SSE clients connect early, late,
reconnect, crowd in, or wait in the queue; every client sees each event once,
in order, and the stream ends with a ``done`` carrying the job's final status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from qiskit import QuantumCircuit
from qiskit_ibm_runtime.json import RuntimeDecoder

from tests.harness import Stack, running_api, wait_for
from tests.sse import SSEEvent, StreamSwarm, read_stream

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CANCELLED - RAN TOO LONG"}


def stream_url(stack: Stack, job_id: str) -> str:
    return f"{stack.url}/jobs/{job_id}/stream"


def interim_indexes(events: list[SSEEvent]) -> list[int]:
    return [json.loads(e.data)["index"] for e in events if e.event == "interim"]


def assert_well_formed(events: list[SSEEvent], first_id: int = 1) -> None:
    """Ids run first_id, first_id+1, … without a gap or a repeat, and ``done`` comes last."""
    assert [e.int_id for e in events] == list(range(first_id, first_id + len(events)))
    assert {e.event for e in events} <= {"status", "interim", "log", "done"}
    assert events[-1].event == "done"
    assert [e.event for e in events].count("done") == 1


def pattern_subscribers(stack: Stack) -> int:
    """Redis connections in PSUBSCRIBE mode (the API's relay, and Celery's own fan-out)."""
    return sum(1 for client in stack.redis.client_list(_type="pubsub") if int(client["psub"]) > 0)


def published(stack: Stack, job_id: str) -> int:
    return len(stack.store.events.read(job_id, types=("interim",)))


# -- replay + live, resume -------------------------------------------------------------


def test_late_client_receives_all_hundred_messages_in_order_exactly_once(stack: Stack) -> None:
    job_id = stack.submit("publisher", {"count": 100, "interval": 0.1})["id"]
    wait_for(lambda: published(stack, job_id) >= 50, message="50 messages published")

    read = read_stream(stream_url(stack, job_id))

    assert read.ended
    assert interim_indexes(read.events) == list(range(1, 101))
    assert_well_formed(read.events)
    assert json.loads(read.events[-1].data)["status"] == "COMPLETED"


def test_reconnecting_with_last_event_id_resumes_after_it_without_duplicates(stack: Stack) -> None:
    job_id = stack.submit("publisher", {"count": 100, "interval": 0.05})["id"]
    first = read_stream(stream_url(stack, job_id), until=lambda events, _: len(interim_indexes(events)) >= 30)
    assert interim_indexes(first.events) == list(range(1, 31))
    last_id = first.events[-1].id

    by_header = read_stream(stream_url(stack, job_id), last_event_id=last_id)
    by_query = read_stream(stream_url(stack, job_id), query={"last_event_id": last_id})

    for resumed in (by_header, by_query):
        assert resumed.ended
        assert interim_indexes(resumed.events) == list(range(31, 101))
        assert_well_formed(resumed.events, first_id=int(last_id) + 1)
    assert [e.id for e in first.events + by_header.events] == [str(i) for i in range(1, len(first.events) + len(by_header.events) + 1)]


def test_two_hundred_concurrent_clients_on_one_job_all_get_every_message(stack: Stack) -> None:
    job_id = stack.submit("publisher", {"count": 100, "interval": 0.05})["id"]
    read_stream(stream_url(stack, job_id), until=lambda events, _: bool(events))  # the relay is up now
    before = pattern_subscribers(stack)
    swarm = StreamSwarm(stream_url(stack, job_id), 200)
    try:
        swarm.connect()
        assert swarm.run_until(lambda: all(swarm.events), timeout=60), "not every stream started"
        assert pattern_subscribers(stack) == before  # no Redis subscription per stream: one relay serves all
        assert swarm.run_until(swarm.all_closed, timeout=180), "not every stream ended"
    finally:
        swarm.close()
    assert swarm.status == [200] * 200
    for events in swarm.events:
        assert interim_indexes(events) == list(range(1, 101))
        assert_well_formed(events)


def test_finished_jobs_stream_replays_everything_and_closes(stack: Stack) -> None:
    job_id = stack.submit("publisher", {"count": 5})["id"]
    stack.wait_status(job_id)

    read = read_stream(stream_url(stack, job_id), timeout=30)

    assert read.ended
    assert interim_indexes(read.events) == [1, 2, 3, 4, 5]
    assert_well_formed(read.events)
    assert [e.event for e in read.events][:2] == ["status", "status"]  # QUEUED, RUNNING
    # Resuming after ``done`` has nothing to send: 204 makes an EventSource stop reconnecting.
    again = read_stream(stream_url(stack, job_id), last_event_id=read.events[-1].id, timeout=30)
    assert again.status == 204


# -- how streams end ----------------------------------------------------------------------


@pytest.fixture
def reader() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def test_cancelling_a_running_job_ends_its_stream_with_cancelled(stack: Stack, reader: ThreadPoolExecutor) -> None:
    job_id = stack.submit("forever")["id"]
    future = reader.submit(read_stream, stream_url(stack, job_id))
    wait_for(lambda: published(stack, job_id) >= 2, message="the program to publish")

    assert requests.post(f"{stack.url}/jobs/{job_id}/cancel", timeout=30).status_code in (200, 202)

    read = future.result(timeout=60)
    assert read.ended
    assert_well_formed(read.events)
    assert json.loads(read.events[-1].data)["status"] == "CANCELLED"


def test_a_job_that_runs_too_long_ends_its_stream_with_ran_too_long(stack: Stack) -> None:
    job_id = stack.submit("forever", max_execution_time=2)["id"]

    read = read_stream(stream_url(stack, job_id), timeout=90)

    assert read.ended
    assert_well_formed(read.events)
    assert json.loads(read.events[-1].data)["status"] == "CANCELLED - RAN TOO LONG"
    assert any(e.event == "interim" for e in read.events)


def test_deleting_a_running_job_ends_its_streams(stack: Stack, reader: ThreadPoolExecutor) -> None:
    job_id = stack.submit("forever")["id"]
    futures = [reader.submit(read_stream, stream_url(stack, job_id)) for _ in range(2)]
    wait_for(lambda: published(stack, job_id) >= 2, message="the program to publish")

    assert requests.delete(f"{stack.url}/jobs/{job_id}", timeout=60).status_code == 204

    for future in futures:
        read = future.result(timeout=60)
        assert read.ended
        assert read.events[-1].event == "done"
    assert read_stream(stream_url(stack, job_id), timeout=30).status == 404


# -- what is on the wire -----------------------------------------------------------------


def test_interim_data_is_byte_identical_to_the_programs_encoder_output(stack: Stack) -> None:
    job_id = stack.submit("payloads")["id"]

    read = read_stream(stream_url(stack, job_id))

    interim = [e.data for e in read.events if e.event == "interim"]
    printed = [
        json.loads(e.data)["text"].removeprefix("ENCODED ").rstrip("\n")
        for e in read.events
        if e.event == "log" and json.loads(e.data)["text"].startswith("ENCODED ")
    ]
    assert len(interim) == 3
    assert interim == printed
    circuit, array, numbers = (json.loads(text, cls=RuntimeDecoder) for text in interim)
    expected = QuantumCircuit(2, 2, name="bell")
    expected.h(0)
    expected.cx(0, 1)
    expected.measure([0, 1], [0, 1])
    assert circuit["circuit"] == expected
    np.testing.assert_array_equal(array["array"], np.arange(12, dtype=np.float64).reshape(3, 4) / 7)
    assert numbers == {"complex": 1.5 - 2.25j, "list": [1j, -0.5]}
    # The polling endpoint serves the same bytes.
    polled = requests.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=10)
    assert polled.text == "[" + ",".join(
        f'{{"id":{e.id},"run":1,"data":{e.data}}}' for e in read.events if e.event == "interim"
    ) + "]"


def test_stream_speaks_event_source_framing_and_matches_the_logs_endpoint(stack: Stack) -> None:
    job_id = stack.submit("speaker", {"interim": [{"n": 1}]}, log_level="INFO")["id"]

    read = read_stream(stream_url(stack, job_id))

    assert read.headers["Content-Type"].startswith("text/event-stream")
    assert "no-cache" in read.headers["Cache-Control"]
    assert read.parser.retry_ms == stack.settings.stream_retry_ms
    logs = [json.loads(e.data) for e in read.events if e.event == "log"]
    assert all(set(record) == {"stream", "level", "text"} for record in logs)
    text = requests.get(f"{stack.url}/jobs/{job_id}/logs", timeout=10).text
    assert "".join(record["text"] for record in logs) == text
    statuses = [json.loads(e.data)["status"] for e in read.events if e.event == "status"]
    assert statuses == ["QUEUED", "RUNNING", "COMPLETED"]


def test_unknown_job_and_bad_resume_point_get_error_envelopes(stack: Stack) -> None:
    missing = requests.get(f"{stack.url}/jobs/no-such-job/stream", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Job not found: no-such-job"
    job_id = stack.submit("publisher", {"count": 1})["id"]
    for headers, query in (({"Last-Event-ID": "abc"}, {}), ({}, {"last_event_id": "-3"})):
        bad = requests.get(stream_url(stack, job_id), headers=headers, params=query, timeout=10)
        assert bad.status_code == 400
        assert bad.json()["code"] == 400
        assert "non-negative integer" in bad.json()["message"]
    stack.wait_status(job_id)
    beyond = requests.get(stream_url(stack, job_id), headers={"Last-Event-ID": "9999"}, timeout=10)
    assert beyond.status_code == 400
    assert "beyond" in beyond.json()["message"]


# -- a job waiting in the queue; browsers ----------------------------------------------------


@pytest.fixture(scope="module")
def idle_stack() -> Iterator[Stack]:
    """An API with no worker yet, short keep-alives and one allowed browser origin."""
    with running_api(stream_keepalive_s=0.2, cors_origins="https://dash.example") as stack:
        yield stack


def test_stream_on_a_queued_job_keeps_alive_then_delivers_once_a_worker_runs_it(idle_stack: Stack) -> None:
    job_id = idle_stack.submit("publisher", {"count": 5})["id"]
    swarm = StreamSwarm(stream_url(idle_stack, job_id), 1)
    try:
        swarm.connect()
        assert swarm.run_until(lambda: swarm.parsers[0].comments.count("keep-alive") >= 3, timeout=30)
        assert idle_stack.job(job_id)["status"] == "QUEUED"
        assert not swarm.closed[0]

        idle_stack.start_worker(concurrency=1)

        assert swarm.run_until(swarm.all_closed, timeout=120), "stream did not end"
    finally:
        swarm.close()
    assert interim_indexes(swarm.events[0]) == [1, 2, 3, 4, 5]
    assert_well_formed(swarm.events[0])
    assert json.loads(swarm.events[0][-1].data)["status"] == "COMPLETED"


def test_allowed_browser_origin_gets_cors_headers_on_the_stream(idle_stack: Stack) -> None:
    origin = "https://dash.example"
    preflight = requests.options(
        f"{idle_stack.url}/jobs/x/stream",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "last-event-id"},
        timeout=10,
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "Last-Event-ID" in preflight.headers["Access-Control-Allow-Headers"]
    job_id = idle_stack.submit("publisher", {"count": 1})["id"]
    read = read_stream(stream_url(idle_stack, job_id), session=_with_origin(origin),
                       until=lambda events, _: bool(events), timeout=30)
    assert read.headers["Access-Control-Allow-Origin"] == origin
    assert read.events[0].event == "status"
    other = requests.get(stream_url(idle_stack, job_id), headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers


def _with_origin(origin: str) -> requests.Session:
    session = requests.Session()
    session.headers["Origin"] = origin
    return session
