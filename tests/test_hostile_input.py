"""Hostile input cannot stall the API: every one gets a 4xx naming the problem, and /health answers meanwhile.

Over real HTTP with auth on: a developer uploads what a malicious developer
would, a plain user submits what a malicious client would. The expensive checks
run in checker processes with a time and memory budget (api/checker.py), so the
API process itself stays responsive; tests/hostile_inputs.py builds the inputs.
The figures (time to the 400, longest /health wait) are in bench/hostile_input.py.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import requests

from orchestrator.program_files import describe
from orchestrator.program_store import ProgramStore
from orchestrator.schema_budget import MAX_SCHEMA_EXPANSION
from tests.harness import Caller, Stack, running_stack, wait_for
from tests.hostile_inputs import (
    MAIN,
    SYNTAX_ERROR_SOURCE,
    HealthWatch,
    anyof_bomb_spec,
    lying_zip,
    nested_spec,
    tar_gz_bomb,
    upload_body,
)


@pytest.fixture(scope="module")
def world() -> Iterator[dict]:
    with running_stack(auth="on") as stack:
        tokens = stack.add_users([("dev", "developer"), ("user", "user")])
        yield {"stack": stack, "dev": Caller(stack.url, tokens["dev"]), "user": Caller(stack.url, tokens["user"]),
               "tokens": tokens}


def _while_health_is_watched(stack: Stack, action: Callable[[], requests.Response]) -> requests.Response:
    """Run ``action`` while /health is polled; /health must answer, and only 200, while it runs."""
    with HealthWatch(stack.url) as watch:
        wait_for(lambda: watch.answers, message="a first /health answer")
        start = time.monotonic()
        response = action()
        end = time.monotonic()
    during = watch.answered_within(start, end)
    assert during and set(during) == {200}, f"/health during the check: {during}"
    return response


def _assert_refused(response: requests.Response, *fragments: str) -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    for fragment in fragments:
        assert fragment in body["message"], body
    return body


def test_an_anyof_bomb_in_a_spec_is_refused_at_upload_naming_the_limit(world: dict) -> None:
    response = world["dev"]("POST", "/programs", data=json.dumps(
        upload_body("bomb", MAIN, spec=anyof_bomb_spec())))
    body = _assert_refused(response, "Too expensive to evaluate", str(MAX_SCHEMA_EXPANSION))
    assert "spec.parameters" in body["errors"]


def test_a_job_for_a_program_with_an_anyof_bomb_is_refused_in_time_and_health_stays_up(world: dict) -> None:
    """A program stored before the limit existed (or put there by an operator) still cannot stall the API."""
    stack = world["stack"]
    store = ProgramStore(stack.redis, stack.store.keys)
    program = store.create(
        owner="dev", data=MAIN, files=describe(MAIN, "old-bomb"),
        metadata={"name": "old-bomb", "description": "stored before the limit", "max_execution_time": 60,
                  "spec": anyof_bomb_spec(), "is_public": True})
    submit = json.dumps({"program_id": program.id, "backend": "aer_simulator", "params": {"x": "s"}})
    response = _while_health_is_watched(stack, lambda: world["user"]("POST", "/jobs", data=submit))
    _assert_refused(response, "Checking the job's inputs took longer than", "CHECK_TIMEOUT_S")
    # The checker that was stopped is replaced: the next check works.
    fine = world["user"]("POST", "/jobs", data=json.dumps(
        {"program_id": "hello-world", "backend": "aer_simulator", "params": {"iterations": 1}}))
    assert fine.status_code == 201, fine.text
    wrong = world["user"]("POST", "/jobs", data=json.dumps(
        {"program_id": "hello-world", "backend": "aer_simulator", "params": {"iterations": "one"}}))
    _assert_refused(wrong, "Invalid program inputs", "iterations")


def test_a_tar_gz_declaring_4_gib_is_refused_at_the_unpacked_limit_and_health_stays_up(world: dict) -> None:
    bomb = tar_gz_bomb()
    body = json.dumps(upload_body("tarbomb", bomb))
    response = _while_health_is_watched(world["stack"], lambda: world["dev"]("POST", "/programs", data=body))
    _assert_refused(response, "unpacks to more than", "MiB (the limit)")


def test_a_spec_nested_900_deep_is_refused_with_the_depth_limit(world: dict) -> None:
    response = world["dev"]("POST", "/programs", data=json.dumps(upload_body("deep", MAIN, spec=nested_spec(900))))
    _assert_refused(response, "nests more than 100 levels deep")


def test_a_spec_nested_past_the_schema_depth_limit_is_refused(world: dict) -> None:
    response = world["dev"]("POST", "/programs", data=json.dumps(upload_body("deepish", MAIN, spec=nested_spec(40))))
    _assert_refused(response, "Nests more than")


def test_a_zip_member_that_lies_about_its_size_is_refused_at_upload(world: dict) -> None:
    response = world["dev"]("POST", "/programs", data=json.dumps(upload_body("liar", lying_zip())))
    _assert_refused(response, "damaged", "data.bin")


def test_a_stored_archive_a_worker_cannot_unpack_fails_its_job_at_once_with_the_reason(world: dict) -> None:
    """Belt and braces: an archive stored without the upload checks fails once, saying why, and is not retried."""
    stack = world["stack"]
    store = ProgramStore(stack.redis, stack.store.keys)
    data = lying_zip()
    files = {"kind": "zip", "entry": "main.py", "sha256": hashlib.sha256(data).hexdigest()}
    program = store.create(owner="dev", data=data, files=files, metadata={
        "name": "stored-liar", "description": "bypassed the upload checks", "max_execution_time": 60,
        "is_public": True})
    job = world["user"]("POST", "/jobs", data=json.dumps({"program_id": program.id, "backend": "aer_simulator"}))
    assert job.status_code == 201, job.text
    final = stack.wait_status(job.json()["id"], "FAILED", "COMPLETED")
    assert final["status"] == "FAILED"
    reason = stack.result_text(job.json()["id"])
    assert "could not start" in reason and "damaged" in reason, reason
    assert stack.store.get(job.json()["id"]).attempts <= 1


def test_a_syntax_error_is_refused_at_upload_with_its_line_and_message(world: dict) -> None:
    response = world["dev"]("POST", "/programs", data=json.dumps(upload_body("broken", SYNTAX_ERROR_SOURCE)))
    body = _assert_refused(response, "Syntax error", "line 2", "was never closed")
    assert body["errors"]["data"][0]["line"] == 2


@pytest.mark.parametrize("megabytes", [20, 200])
@pytest.mark.parametrize("authorized", [True, False], ids=["token", "no-token"])
def test_urllib_posting_an_oversized_body_reads_the_error_envelope(world: dict, megabytes: int,
                                                                   authorized: bool) -> None:
    """urllib sends the whole body before reading: the server drains it, so the answer is not a reset."""
    headers = {"Content-Type": "application/json"}
    if authorized:
        headers["Authorization"] = f"Bearer {world['tokens']['user']}"
    request = urllib.request.Request(f"{world['stack'].url}/jobs", data=b" " * (megabytes << 20),
                                     headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    expected = 413 if authorized else 401
    assert caught.value.code == expected
    envelope = json.loads(caught.value.read())
    assert envelope["code"] == expected and envelope["message"]
