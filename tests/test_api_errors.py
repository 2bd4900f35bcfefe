"""Bad input over real HTTP: always a 4xx envelope that says what is wrong, never a 500.

Every case goes through gunicorn + gevent to the Flask app of the session
``stack``, the way a client's request does.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
import requests

from tests.harness import Stack

ECHO = {"program_id": "echo", "backend": "aer_simulator"}


def _assert_envelope(response: requests.Response, code: int, *fragments: str) -> dict:
    """The response is the error envelope with ``code`` and a message holding ``fragments``."""
    assert response.status_code == code, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.json()
    assert body["code"] == code
    assert body["status"] == HTTPStatus(code).phrase
    for fragment in fragments:
        assert fragment in body["message"], body
    return body


def _post_jobs(stack: Stack, body: bytes | str) -> requests.Response:
    return stack.http.post(f"{stack.url}/jobs", data=body, timeout=30)


# -- POST /jobs bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("{bad", ("not valid JSON", "line 1 column 2")),
        ("", ("empty", "JSON object was expected")),
        ("   \n", ("empty",)),
        (b"\xff\xfe{}", ("not UTF-8",)),
        ("[1, 2]", ("must be a JSON object", "an array")),
        ('"text"', ("must be a JSON object", "a string")),
        ("null", ("must be a JSON object", "null")),
        ("3", ("must be a JSON object", "a number")),
        ("[" * 100_000, ("nested too deeply",)),
        (json.dumps({**ECHO, "params": "[" * 100_000}), ("params", "nested too deeply")),
        ('{"program_id": "echo", "backend": "aer_simulator", "params": {"x": NaN}}', ("NaN",)),
        ('{"program_id": "echo", "backend": "aer_simulator", "params": {"x": Infinity}}', ("Infinity",)),
    ],
    ids=["malformed", "empty", "blank", "not-utf8", "array", "string", "null", "number",
         "deeply-nested", "deeply-nested-params-string", "nan", "infinity"],
)
def test_body_that_is_not_a_json_object_is_refused(stack: Stack, body: str | bytes, fragments: tuple[str, ...]) -> None:
    _assert_envelope(_post_jobs(stack, body), 400, *fragments)


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({"backend": "aer_simulator"}, ("program_id", "Missing data")),
        ({"program_id": "echo"}, ("backend", "Missing data")),
        ({**ECHO, "params": 5}, ("params", "object of program inputs", "int")),
        ({**ECHO, "params": "{bad"}, ("params", "not JSON text")),
        ({**ECHO, "max_execution_time": "10"}, ("max_execution_time", "Not a valid integer")),
        ({**ECHO, "max_execution_time": 1.5}, ("max_execution_time", "Not a valid integer")),
        ({**ECHO, "max_execution_time": 0}, ("max_execution_time", "greater than or equal to 1")),
        ({**ECHO, "log_level": "bogus"}, ("log_level", "bogus is not a valid log level", "INFO")),
        ({**ECHO, "log_level": 5}, ("log_level", "Not a valid string")),
        ({**ECHO, "program_id": 5}, ("program_id", "Not a valid string")),
        ({**ECHO, "backend": None}, ("backend", "may not be null")),
        ({**ECHO, "surprise": 1}, ("surprise", "Unknown field")),
        ({**ECHO, "max_execution_time": 61}, ("above program echo's own limit of 60 s",)),
        ({**ECHO, "backend": "no_such_backend"}, ("Unknown backend 'no_such_backend'", "aer_simulator")),
    ],
    ids=["no-program", "no-backend", "params-int", "params-bad-string", "time-string", "time-float",
         "time-zero", "level-bogus", "level-int", "program-int", "backend-null", "unknown-field",
         "time-above-program", "unknown-backend"],
)
def test_submit_with_missing_or_ill_typed_fields_is_refused(stack: Stack, fields: dict,
                                                            fragments: tuple[str, ...]) -> None:
    body = _assert_envelope(_post_jobs(stack, json.dumps(fields)), 400, *fragments)
    assert body["message"].strip()


def test_submit_of_unknown_program_is_not_found(stack: Stack) -> None:
    response = _post_jobs(stack, json.dumps({**ECHO, "program_id": "no-such-program"}))
    _assert_envelope(response, 404, "no-such-program")


def test_oversized_body_is_refused_naming_its_size_and_the_limit(stack: Stack) -> None:
    limit = stack.settings.max_payload_bytes
    filler = "x" * (limit + 1)
    body = json.dumps({**ECHO, "params": {"blob": filler}})
    envelope = _assert_envelope(_post_jobs(stack, body), 413)
    assert str(len(body.encode())) in envelope["message"]
    assert str(limit) in envelope["message"]
    assert "QRT_MAX_PAYLOAD_BYTES" in envelope["message"]


def _chunks(body: bytes, size: int = 1 << 20):
    """The body as a generator, so requests sends it chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.parametrize(("extra", "expected"), [(0, 201), (1, 413)], ids=["at-limit", "over-limit"])
def test_chunked_body_is_held_to_the_same_limit(stack: Stack, extra: int, expected: int) -> None:
    """Without a Content-Length werkzeug would silently cut the body at the limit."""
    head = json.dumps(ECHO).encode()
    body = head + b" " * (stack.settings.max_payload_bytes - len(head) + extra)
    response = stack.http.post(f"{stack.url}/jobs", data=_chunks(body), timeout=60)
    if expected == 413:
        _assert_envelope(response, 413, "exceeds the limit", str(stack.settings.max_payload_bytes))
    else:
        assert response.status_code == 201, response.text


def test_a_lower_max_execution_time_is_accepted(stack: Stack) -> None:
    response = _post_jobs(stack, json.dumps({**ECHO, "max_execution_time": 30, "log_level": "warn"}))
    assert response.status_code == 201, response.text
    assert response.json()["cost"] == 30
    assert response.json()["log_level"] == "WARNING"


# -- job ids that do not exist ------------------------------------------------------------

JOB_ENDPOINTS = [
    ("GET", "/jobs/{id}"),
    ("GET", "/jobs/{id}/results"),
    ("GET", "/jobs/{id}/logs"),
    ("GET", "/jobs/{id}/interim_results"),
    ("POST", "/jobs/{id}/cancel"),
    ("DELETE", "/jobs/{id}"),
]


@pytest.mark.parametrize(("method", "path"), JOB_ENDPOINTS)
def test_unknown_job_id_is_not_found_on_every_job_endpoint(stack: Stack, method: str, path: str) -> None:
    missing = "a" * 20  # shaped like a job id, never issued
    response = stack.http.request(method, stack.url + path.format(id=missing), timeout=30)
    _assert_envelope(response, 404, f"Job not found: {missing}")


@pytest.mark.parametrize(("method", "path"), JOB_ENDPOINTS)
def test_job_id_naming_another_key_of_a_real_job_is_not_found(stack: Stack, method: str, path: str) -> None:
    """``<id>:events`` would address the job's stream; it must be a plain 404, not a Redis error."""
    real = stack.submit("echo", {})["id"]
    for suffix in (":events", ":result", ":control"):
        response = stack.http.request(method, stack.url + path.format(id=real + suffix), timeout=30)
        _assert_envelope(response, 404, "Job not found")


# -- routes, methods and query strings -------------------------------------------------------


def test_unknown_route_is_an_envelope_not_an_html_page(stack: Stack) -> None:
    _assert_envelope(stack.http.get(f"{stack.url}/no/such/route", timeout=30), 404,
                     "No such endpoint: GET /no/such/route")


@pytest.mark.parametrize(("method", "path"), [("PUT", "/jobs"), ("DELETE", "/jobs"), ("PATCH", "/jobs/x"),
                                              ("GET", "/jobs/x/cancel")])
def test_wrong_method_is_refused_naming_it(stack: Stack, method: str, path: str) -> None:
    response = stack.http.request(method, stack.url + path, timeout=30)
    _assert_envelope(response, 405, f"Method {method} is not allowed on {path}")


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ("limit=abc", ("limit", "Not a valid integer")),
        ("limit=-1", ("limit", "greater than or equal to 0")),
        ("limit=100000", ("limit", "less than or equal to 1000")),
        ("offset=-1", ("offset", "greater than or equal to 0")),
        ("offset=x", ("offset", "Not a valid integer")),
        ("pending=maybe", ("pending", "true or false")),
        ("pending=", ("pending", "true or false")),
        (f"offset={10**20}", ("offset", "less than or equal to")),
    ],
)
def test_job_listing_with_bad_query_is_refused(stack: Stack, query: str, fragments: tuple[str, ...]) -> None:
    _assert_envelope(stack.http.get(f"{stack.url}/jobs?{query}", timeout=30), 400, *fragments)


@pytest.mark.parametrize(("query", "fragments"), [("after=abc", ("after", "Not a valid integer")),
                                                  ("after=-1", ("after", "greater than or equal to 0")),
                                                  (f"after={10**24}", ("after", "less than or equal to"))])
def test_interim_results_with_bad_after_is_refused(stack: Stack, query: str, fragments: tuple[str, ...]) -> None:
    job_id = stack.submit("echo", {})["id"]
    response = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results?{query}", timeout=30)
    _assert_envelope(response, 400, *fragments)


def test_largest_allowed_offset_and_after_are_answered_not_crashed_on(stack: Stack) -> None:
    from api.schemas import MAX_QUERY_INT

    listing = stack.http.get(f"{stack.url}/jobs?offset={MAX_QUERY_INT}&limit=5", timeout=30)
    assert listing.status_code == 200 and listing.json()["jobs"] == []
    job_id = stack.submit("echo", {})["id"]
    interim = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results?after={MAX_QUERY_INT}", timeout=30)
    assert interim.status_code == 200 and interim.json() == []
