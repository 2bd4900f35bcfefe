"""``qruntime.exceptions``: the seed's classes at the seed's import path, and what a failed request becomes."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from qiskit.exceptions import QiskitError

import qruntime
from qruntime import exceptions
from qruntime.client.http import ApiClient
from qruntime.client.service import RuntimeService
from qruntime.exceptions import (
    IBMQError,
    IBMQNotAuthorizedError,
    QiskitBackendNotFoundError,
    QiskitRuntimeError,
    RequestsApiError,
    RuntimeDuplicateProgramError,
    RuntimeInvalidStateError,
    RuntimeJobNotFound,
    RuntimeProgramNotFound,
    seed_error,
)
from tests.harness import Stack, running_api

#: The seed's tree (reference §0): class → its direct base.
SEED_BASES = {
    "IBMQError": "QiskitError",
    "QiskitRuntimeError": "IBMQError",
    "RuntimeDuplicateProgramError": "QiskitRuntimeError",
    "RuntimeProgramNotFound": "QiskitRuntimeError",
    "RuntimeJobFailureError": "QiskitRuntimeError",
    "RuntimeJobNotFound": "QiskitRuntimeError",
    "RuntimeInvalidStateError": "QiskitRuntimeError",
    "IBMQInputValueError": "IBMQError",
    "IBMQNotAuthorizedError": "IBMQError",
    "IBMQAccountError": "IBMQError",
    "IBMQProviderError": "IBMQAccountError",
    "ApiError": "IBMQError",
    "RequestsApiError": "ApiError",
}


def test_seed_code_imports_the_exceptions_from_qruntime_exceptions() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from qruntime.exceptions import RuntimeJobFailureError, "
         "IBMQNotAuthorizedError, RuntimeJobNotFound; print(RuntimeJobFailureError.__module__)"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "qruntime.exceptions"
    assert qruntime.exceptions is importlib.import_module("qruntime.exceptions")


def test_the_classes_keep_the_seeds_bases_and_are_defined_once_here() -> None:
    for name, base in SEED_BASES.items():
        cls = getattr(exceptions, name)
        assert cls.__bases__[0].__name__ == base, name
        assert cls.__module__ == "qruntime.exceptions", name
    assert issubclass(exceptions.IBMQError, QiskitError)


def failed(status_code: int, detail: str, errors: object = None) -> RequestsApiError:
    return RequestsApiError(f"{status_code} … {detail}", status_code, errors=errors, detail=detail)


@pytest.mark.parametrize(("status_code", "resource", "detail", "expected", "text"), [
    (401, None, "The token is not valid.", IBMQNotAuthorizedError, "The token is not valid."),
    (403, "program", "You are not authorized to upload programs.", IBMQNotAuthorizedError,
     "You are not authorized to upload programs."),
    (404, "job", "Job not found: j1", RuntimeJobNotFound, "Job not found: j1"),
    (404, "program", "p1 is gone", RuntimeProgramNotFound, "Program not found: p1 is gone"),
    (409, "job", "Job j1 has already ended.", RuntimeInvalidStateError,
     "Job cannot be cancelled: Job j1 has already ended."),
    (409, "program", "Taken.", RuntimeDuplicateProgramError, "Program with the same name already exists."),
    (500, "job", "Redis is down.", QiskitRuntimeError, "Failed to delete job: Redis is down."),
])
def test_each_status_becomes_the_seeds_class_with_the_seeds_message(
        status_code: int, resource: str | None, detail: str, expected: type, text: str) -> None:
    error = seed_error(failed(status_code, detail), resource, "delete job")
    assert type(error) is expected
    assert error.message == text


def test_listings_keep_requests_api_error_and_an_unreachable_server_is_never_renamed() -> None:
    not_found = failed(404, "Program not found: p1")
    assert seed_error(not_found) is not_found  # the seed's run() of an unknown program
    unreachable = failed(-1, "cannot reach http://127.0.0.1:9")
    assert seed_error(unreachable, "job", "get job") is unreachable
    assert unreachable.retryable and failed(503, "down").retryable and not not_found.retryable


def test_an_unknown_backend_is_backend_not_found_but_a_field_error_is_not() -> None:
    unknown = seed_error(failed(400, "Unknown backend 'nope'. Known backends: aer_simulator."))
    assert type(unknown) is QiskitBackendNotFoundError
    field = failed(400, "Unknown backend 'nope'.", errors={"backend": ["bad"]})
    assert seed_error(field) is field


@pytest.fixture(scope="module")
def secured() -> Iterator[Stack]:
    with running_api(auth="on") as stack:
        yield stack


def test_a_bad_token_is_ibmq_not_authorized_from_every_entry_point(secured: Stack) -> None:
    service = RuntimeService(url=secured.url, token="qrt_not-a-real-token")
    with pytest.raises(IBMQNotAuthorizedError, match="The token is not valid"):
        service.programs()
    with pytest.raises(IBMQNotAuthorizedError, match="The token is not valid"):
        service.job("any-job")
    with pytest.raises(IBMQNotAuthorizedError, match=f"No token for {secured.url}, which needs one.*qruntime login"):
        ApiClient(secured.url).me()


def test_a_role_that_may_not_is_ibmq_not_authorized(secured: Stack) -> None:
    token = secured.add_users([("plain", "user")])["plain"]
    api = ApiClient(secured.url, token)
    assert api.me() == {"name": "plain", "role": "user"}
    with pytest.raises(IBMQNotAuthorizedError, match="Only administrators may do this."):
        api.list_users()
    with pytest.raises(IBMQError):  # and it is still caught by seed code's broad handler
        api.add_user("mallory", "admin")
