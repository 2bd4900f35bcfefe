"""The OpenAPI description is valid and complete, and generated requests get no 500 and no off-schema answer.

Completeness is checked against Flask's URL map, so a route added without its
schemas fails here. The fuzz test drives schemathesis through ``bench/fuzz.py``
(the same run at ``--examples 500``) against a private stack with auth on, with
fixtures it creates so that operations are reached and not only answered 404.
"""

from __future__ import annotations

import re

import pytest
import requests
from openapi_spec_validator import validate

from api import create_app
from bench.fuzz import fuzz, fuzz_stateful
from tests.harness import Stack

#: Generated cases per operation; enough to hit every validator, small enough for CI.
FUZZ_EXAMPLES = 25
FUZZ_SEED = 20261124
#: Stateful scenarios following the document's links (create, then use what came back).
FUZZ_SCENARIOS = 10
#: Routes outside the document: the web console (HTML) and the document itself.
#: Not in the document: the console's HTML and files, the document itself, Prometheus's /metrics
#: (a text format for scrapers, with its own token).
UNDOCUMENTED_ENDPOINTS = re.compile(r"^(console\.|api-docs\.|metrics\.|static$)")
#: Operations anyone may call; every other one names the bearer scheme.
PUBLIC_OPERATIONS = {("get", "/health")}
ERROR_REF = re.compile(r"^#/components/responses/[A-Z_]+$")


@pytest.fixture(scope="module")
def document() -> dict:
    app = create_app({"auth": "off"})
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture(scope="module")
def routes() -> list[tuple[str, str, frozenset[str]]]:
    """(method, OpenAPI path, path arguments) of every API route in the app's URL map."""
    app = create_app({"auth": "off"})
    found = []
    for rule in app.url_map.iter_rules():
        if UNDOCUMENTED_ENDPOINTS.match(rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method.lower(), path, frozenset(rule.arguments)))
    return found


def test_openapi_document_is_valid_and_lists_every_endpoint(stack: Stack) -> None:
    response = requests.get(stack.url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    document = response.json()
    validate(document)
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/results", "/jobs/{job_id}/cancel",
                 "/programs", "/programs/{program_id}", "/backends", "/health"):
        assert path in document["paths"], path
    assert "JobSubmit" in document["components"]["schemas"]


def test_every_route_has_a_documented_operation(document: dict, routes: list) -> None:
    missing = [(method, path) for method, path, _ in routes if method not in document["paths"].get(path, {})]
    assert not missing, (f"routes without an operation in /openapi.json: {missing}; build them on "
                         "api.openapi.Blueprint with their schemas (or, if not API, add them to UNDOCUMENTED_ENDPOINTS)")
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops if m != "parameters"}
    assert documented == {(m, p) for m, p, _ in routes}


def test_every_operation_documents_its_parameters_body_and_responses(document: dict, routes: list) -> None:
    for method, path, arguments in routes:
        item = document["paths"][path]
        operation = item[method]
        where = f"{method.upper()} {path}"
        params = {p["name"] for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                  if p["in"] == "path"}
        assert params == arguments, where
        if method in ("post", "put", "patch") and not path.endswith(("/cancel", "/public", "/private")):
            content = operation["requestBody"]["content"]
            assert all("schema" in media for media in content.values()), where
        responses = operation["responses"]
        successes = {code for code in responses if code.startswith("2")}
        assert successes, f"{where} documents no success response"
        for code in successes:
            if code != "204":
                content = responses[code]["content"]
                assert all("schema" in media for media in content.values()), f"{where} {code}"
        errors = {code for code in responses if code == "default" or code[0] in "45"}
        assert "default" in errors and len(errors) > 1, f"{where} documents no error responses"
        for code in errors:  # the envelope, or (GET /health's 503) a documented body of its own
            answer = responses[code]
            assert ERROR_REF.match(answer.get("$ref", "")) or answer["content"], f"{where} {code}"
        public = (method, path) in PUBLIC_OPERATIONS
        assert (operation.get("security") == []) == public, where


def test_error_responses_are_the_one_envelope(document: dict) -> None:
    envelope = document["components"]["schemas"]["Error"]
    assert set(envelope["properties"]) == {"code", "status", "message", "errors"}
    assert set(envelope["required"]) == {"code", "status", "message"}
    for name, response in document["components"]["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        assert schema is None or schema == {"$ref": "#/components/schemas/Error"}, name


def test_non_json_answers_are_documented_with_their_media_types(document: dict) -> None:
    paths = document["paths"]
    results = paths["/jobs/{job_id}/results"]["get"]["responses"]
    assert "text/plain" in results["200"]["content"] and "X-Job-Status" in results["204"]["headers"]
    assert "text/plain" in paths["/jobs/{job_id}/logs"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in paths["/jobs/{job_id}/stream"]["get"]["responses"]["200"]["content"]
    interim = paths["/jobs/{job_id}/interim_results"]["get"]["responses"]["200"]["content"]["application/json"]
    assert interim["schema"]["type"] == "array"
    assert "Location" in paths["/jobs"]["post"]["responses"]["201"]["headers"]
    data = paths["/programs/{program_id}/data"]["put"]["requestBody"]["content"]
    assert {"application/json", "application/octet-stream", "text/plain"} <= set(data)


def test_links_in_the_document_lead_from_a_creation_to_its_resource(document: dict) -> None:
    links = document["paths"]["/jobs"]["post"]["responses"]["201"]["links"]
    assert links["GetJob"] == {"operationRef": "#/paths/~1jobs~1{job_id}/get",
                               "parameters": {"job_id": "$response.body#/id"}}
    for path in ("/programs", "/users", "/tokens"):
        assert document["paths"][path]["post"]["responses"]["201"]["links"], path


def test_generated_requests_get_no_server_error_and_only_documented_answers() -> None:
    private = Stack(auth="on")  # the fuzzer creates users, programs and jobs: keep them out of the shared stack
    try:
        private.start_api()
        reports = fuzz(private.url, private.admin_token, examples=FUZZ_EXAMPLES, seed=FUZZ_SEED, log=lambda _: None)
        stateful = fuzz_stateful(private.url, private.admin_token, scenarios=FUZZ_SCENARIOS)
    finally:
        private.stop()
    failures = {label: report.samples for label, report in [*reports.items(), *stateful.items()]
                if report.server_errors or report.schema_violations}
    assert not failures, failures
    unreached = [label for label, report in reports.items()
                 if not any(200 <= code < 300 for code in report.statuses)]
    assert not unreached, f"operations never answered 2xx (fixtures not used?): {unreached}"
