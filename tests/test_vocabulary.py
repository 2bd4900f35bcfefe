"""The client's vocabulary is the server's: statuses, event types, roles and sentences.

The client may not import the server (``qruntime/client/vocabulary.py`` restates
the names), so these tests are what keeps the two from drifting apart: each
compares the client's definition with the server's enum or with what a real
API answers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from qiskit.providers import JobStatus as QiskitJobStatus

from api import create_app
from orchestrator import accounts, events, status
from qruntime.client import vocabulary as words
from qruntime.client.job import API_TO_JOB_STATUS
from qruntime.exceptions import STATUS_ERRORS
from tests.harness import TEST_PROGRAMS_DIR


@pytest.fixture(scope="module")
def api(redis_url: str) -> Iterator[FlaskClient]:
    """The real API app on a private Redis, called in-process."""
    with tempfile.TemporaryDirectory(prefix="qrt-vocabulary-") as data_dir:
        app = create_app({"redis_url": redis_url, "auth": "off", "data_dir": data_dir,
                          "programs_dirs": str(TEST_PROGRAMS_DIR)})
        yield app.test_client()


def test_the_client_knows_every_job_status_by_the_servers_name_and_value() -> None:
    assert words.STATUSES == tuple(s.value for s in status.JobStatus)
    for server_status in status.JobStatus:
        assert getattr(words, server_status.name) == server_status.value


def test_final_and_pending_statuses_are_the_servers() -> None:
    assert set(words.FINAL_STATUSES) == {s.value for s in status.FINAL_STATUSES}
    assert set(words.PENDING_STATUSES) == {s.value for s in status.PENDING_STATUSES}


def test_every_server_status_maps_to_a_qiskit_status_that_agrees_on_finality() -> None:
    final = (QiskitJobStatus.DONE, QiskitJobStatus.CANCELLED, QiskitJobStatus.ERROR)
    assert set(API_TO_JOB_STATUS) == set(words.STATUSES)
    for server_status in status.JobStatus:
        assert (API_TO_JOB_STATUS[server_status.value] in final) is server_status.is_final


def test_failure_messages_exist_for_exactly_the_final_statuses_the_seed_calls_errors() -> None:
    errors = {s for s, qiskit_status in API_TO_JOB_STATUS.items() if qiskit_status is QiskitJobStatus.ERROR}
    assert set(words.FAILURE_MESSAGES) == errors
    assert errors <= {s.value for s in status.FINAL_STATUSES}
    assert words.failure_message("j1", words.FAILED, "Traceback") == "Job j1 has failed:\nTraceback"


def test_event_types_are_the_servers() -> None:
    assert words.EVENT_TYPES == events.EVENT_TYPES
    for name in ("EVENT_STATUS", "EVENT_INTERIM", "EVENT_LOG", "EVENT_DONE", "EVENT_RESTART",
                 "RESUME_CHECKPOINT", "RESUME_START"):
        assert getattr(words, name) == getattr(events, name)


def test_roles_are_the_servers() -> None:
    assert words.ROLES == accounts.ROLES
    for name in ("ROLE_ADMIN", "ROLE_DEVELOPER", "ROLE_USER"):
        assert getattr(words, name) == getattr(accounts, name)


def test_the_error_table_names_only_resources_the_client_knows() -> None:
    resources = {resource for _, resource in STATUS_ERRORS}
    assert resources == {None, words.RESOURCE_JOB, words.RESOURCE_PROGRAM}


def message(response: Any) -> str:
    return response.get_json()["message"]


def test_the_servers_not_found_sentences_start_as_the_client_expects(api: FlaskClient) -> None:
    job = api.get("/jobs/no-such-job")
    assert job.status_code == 404
    assert message(job) == words.JOB_NOT_FOUND + "no-such-job"
    program = api.get("/programs/no-such-program")
    assert program.status_code == 404
    assert message(program) == words.PROGRAM_NOT_FOUND + "no-such-program"


def test_the_servers_unknown_backend_sentence_starts_as_the_client_expects(api: FlaskClient) -> None:
    answer = api.post("/jobs", json={"program_id": "echo", "backend": "no_such_backend", "params": {}})
    assert answer.status_code == 400
    assert message(answer).startswith(words.UNKNOWN_BACKEND + "'no_such_backend'")
    assert "errors" not in answer.get_json()  # the client tells it from a field error by this
