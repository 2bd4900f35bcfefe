"""The ``user_messenger`` and the program's logging, as the seed client sees them.

Pinned by reference/seed-client-api.md §4: ``publish(..., final=True)`` makes the
message the job's result even when ``main`` returns None; non-final messages are
interim results, in order. §2: logs hold the program's printed output and its
``logging`` records at the job's ``log_level`` (default WARNING).
"""

from __future__ import annotations

import json

import pytest
import requests
from qiskit_ibm_runtime.json import RuntimeDecoder, RuntimeEncoder

from tests.harness import Stack


def interim(stack: Stack, job_id: str) -> list:
    body = requests.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=10).json()
    return [item["data"] for item in body]


def logs(stack: Stack, job_id: str) -> str:
    return requests.get(f"{stack.url}/jobs/{job_id}/logs", timeout=10).text


def test_a_final_publish_is_the_result_of_a_program_that_returns_none(stack: Stack) -> None:
    final = {"energy": -1.137, "amplitudes": [0.5 + 0.5j, -0.25j]}
    params = json.dumps({"interim": [{"step": 1}, {"step": 2}], "final": final}, cls=RuntimeEncoder)
    job_id = stack.submit("speaker", json.loads(params))["id"]

    assert stack.wait_status(job_id)["status"] == "COMPLETED"

    text = stack.result_text(job_id)
    assert text == json.dumps(final, cls=RuntimeEncoder)
    assert json.loads(text, cls=RuntimeDecoder) == final
    assert interim(stack, job_id) == [{"step": 1}, {"step": 2}]  # the final message is not an interim one


def test_publisher_with_final_and_no_return_completes_with_that_result(stack: Stack) -> None:
    job_id = stack.submit("publisher", {"count": 3, "final": "foo"})["id"]

    assert stack.wait_status(job_id)["status"] == "COMPLETED"
    assert json.loads(stack.result_text(job_id)) == "foo"
    assert [m["index"] for m in interim(stack, job_id)] == [1, 2, 3]


def test_a_program_that_returns_none_without_a_final_publish_has_a_null_result(stack: Stack) -> None:
    job_id = stack.submit("speaker", {"interim": [{"step": 1}]})["id"]

    assert stack.wait_status(job_id)["status"] == "COMPLETED"
    assert stack.result_text(job_id) == "null"  # main's None, encoded like any return value


@pytest.mark.parametrize(
    ("log_level", "shown", "hidden"),
    [
        (None, ["warning record", "error record"], ["info record", "debug record"]),
        ("INFO", ["info record", "warning record", "error record"], ["debug record"]),
        ("ERROR", ["error record"], ["warning record", "info record", "debug record"]),
        ("DEBUG", ["debug record", "info record", "warning record", "error record"], []),
    ],
)
def test_logging_records_reach_the_logs_at_the_jobs_log_level(
    stack: Stack, log_level: str | None, shown: list[str], hidden: list[str]
) -> None:
    fields = {"log_level": log_level} if log_level else {}
    job_id = stack.submit("speaker", {"returns": "ok"}, **fields)["id"]
    assert stack.wait_status(job_id)["status"] == "COMPLETED"

    text = logs(stack, job_id)

    assert "printed line" in text  # printed output is kept whatever the level
    for line in shown:
        assert line in text
    for line in hidden:
        assert line not in text
    assert stack.job(job_id)["log_level"] == (log_level or "WARNING")


def test_log_events_carry_their_level_and_stream(stack: Stack) -> None:
    job_id = stack.submit("speaker", {"returns": "ok"}, log_level="INFO")["id"]
    stack.wait_status(job_id)

    records = [
        json.loads(e.data) for e in stack.store.events.read(job_id, types=("log",))
    ]

    assert {"stream": "stdout", "level": None, "text": "printed line\n"} in records
    assert {"stream": "log", "level": "INFO", "text": "INFO:speaker:info record\n"} in records
    assert {"stream": "log", "level": "ERROR", "text": "ERROR:speaker:error record\n"} in records


def test_an_unknown_log_level_is_refused_at_submit(stack: Stack) -> None:
    response = stack.http.post(
        f"{stack.url}/jobs",
        data=json.dumps({"program_id": "speaker", "backend": "aer_simulator", "params": {}, "log_level": "LOUD"}),
        timeout=10,
    )
    assert response.status_code == 400
    assert "not a valid log level" in response.json()["message"]
