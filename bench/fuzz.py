"""Fuzz every operation of ``/openapi.json`` against a live API, with realistic data.

schemathesis generates requests from the document (valid ones and, as often,
invalid ones); before each operation the fixtures are (re)created over HTTP (two
users, a token, an uploaded private program, a queued job, a cancelled job), and
about half the generated requests have their path ids, and ``POST /jobs`` its
program and backend, swapped for those fixtures, so operations are reached and
not only answered 404. Every response is checked against the document: its
status, content type, headers and body schema.

Counts per operation: examples sent, server errors (5xx), schema-violating
responses, and the status codes seen. A stateful phase then follows the
document's OpenAPI links (create a job, program, user or token, then read,
change and delete what came back), checked the same way (hypothesis does not
take a seed there). tests/test_openapi.py runs both at a small budget; run it
directly for the full one (a private stack with auth on):

    python bench/fuzz.py --examples 500

Prints a table and writes ``bench/results/fuzz.json``. Not a test: no assertions.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import requests
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import schemathesis  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

RESULTS = ROOT / "bench" / "results" / "fuzz.json"
DEFAULT_EXAMPLES = 500
DEFAULT_SEED = 20261124
#: How far the last stateful phase got (scenarios_run, stopped_early).
STATEFUL_PROGRESS: dict[str, Any] = {}
#: Stateful scenarios (chains of linked calls) and the most calls in one.
DEFAULT_SCENARIOS = 200
DEFAULT_STEPS = 6
#: Scenarios per hypothesis run, and how many runs cut short end the phase.
STATEFUL_CHUNK = 10
MAX_STATEFUL_STOPS = 100
#: Longest wait for one response; a stream of a final job ends at once.
REQUEST_TIMEOUT_S = 30.0
SCHEMA_CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
                 response_schema_conformance]
FIXTURE_SOURCE = b"def main(backend, user_messenger, **kwargs):\n    return 'fuzzed'\n"
FIXTURE_PROGRAM = "fuzz-program"
FIXTURE_USERS = (("fuzz-dev", "developer"), ("fuzz-user", "user"))
#: Names a realistic upload takes (the first ones are new; the last exists).
UPLOAD_NAMES = ("fuzz-upload-a", "fuzz-upload-b", FIXTURE_PROGRAM)
#: The program and backend a realistic ``POST /jobs`` names.
JOB_PROGRAM, JOB_BACKEND = "echo", "aer_simulator"


@dataclasses.dataclass
class OperationReport:
    examples: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    samples: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "server_errors": self.server_errors,
                "schema_violations": self.schema_violations,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "samples": self.samples}


class Fixtures:
    """Things for requests to find, recreated over HTTP whenever the fuzzer deleted them."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.ids: dict[str, list[str]] = {}

    def _call(self, method: str, path: str, body: Any = None) -> requests.Response:
        data = None if body is None else json.dumps(body)
        return self.http.request(method, self.url + path, data=data, timeout=REQUEST_TIMEOUT_S)

    def refresh(self) -> dict[str, list[str]]:
        for name, role in FIXTURE_USERS:
            self._call("POST", "/users", {"name": name, "role": role})  # 409 if it exists
        tokens = self._call("GET", "/tokens?user=fuzz-dev").json()["tokens"]
        if not tokens:
            tokens = [self._call("POST", "/tokens", {"user": "fuzz-dev", "description": "fuzz"}).json()]
        programs = self._call("GET", "/programs?limit=1000").json()["programs"]
        uploaded = [p["id"] for p in programs if not p["builtin"]][:3]
        if not uploaded:
            uploaded = [self._call("POST", "/programs", {
                "name": FIXTURE_PROGRAM, "description": "fuzz fixture", "cost": 60,
                "data": base64.b64encode(FIXTURE_SOURCE).decode(), "is_public": False}).json()["id"]]
        jobs = self._call("GET", "/jobs?limit=50").json()["jobs"]
        queued = [j["id"] for j in jobs if j["status"] == "QUEUED"][:1]
        final = [j["id"] for j in jobs if j["status"] not in ("QUEUED", "RUNNING")][:1]
        if not queued:
            queued = [self._submit()]
        if not final:
            final = [self._submit()]
            self._call("POST", f"/jobs/{final[0]}/cancel")
        self.ids = {
            "job_id": queued + final, "final_job_id": final,
            "program_id": [*uploaded, JOB_PROGRAM],
            "name": [name for name, _ in FIXTURE_USERS],
            "token_id": [t["id"] for t in tokens],
        }
        return self.ids

    def _submit(self) -> str:
        response = self._call("POST", "/jobs", {"program_id": JOB_PROGRAM, "backend": JOB_BACKEND})
        response.raise_for_status()
        return response.json()["id"]


def _realistic(case: Any, operation_path: str, ids: dict[str, list[str]], draw: Callable[..., Any]) -> None:
    """Swap some generated values for fixtures, so the operation gets past 404."""
    for name in list(case.path_parameters or {}):
        pool = ids["final_job_id"] if name == "job_id" and operation_path.endswith("/stream") else ids.get(name)
        if pool and draw(st.integers(0, 3)):  # three times in four
            case.path_parameters[name] = draw(st.sampled_from(pool))
    method = case.method.upper()
    if not draw(st.booleans()):
        return
    if operation_path.endswith("/stream"):
        for where in (case.headers, case.query):
            for name in ("Last-Event-ID", "last_event_id"):
                if where and name in where:
                    where[name] = "0"
    if operation_path == "/jobs" and method == "POST" and isinstance(case.body, dict):
        case.body.update(program_id=draw(st.sampled_from(ids["program_id"])), backend=JOB_BACKEND)
        for name in ("log_level", "max_execution_time", "version", "params"):
            if draw(st.booleans()):
                case.body.pop(name, None)
    elif operation_path == "/programs" and method == "POST" and isinstance(case.body, dict):
        case.body.update(name=draw(st.sampled_from(UPLOAD_NAMES)), description="fuzzed", cost=60,
                         data=base64.b64encode(FIXTURE_SOURCE).decode())
        case.body.pop("entry", None)
    elif operation_path == "/programs/{program_id}" and method == "PATCH":
        case.body = {"description": "fuzzed", "cost": draw(st.integers(1, 60))}
    elif operation_path.endswith("/data") and method == "PUT":
        case.body = base64.b64encode(FIXTURE_SOURCE).decode()
        case.media_type = "text/plain"


def fuzz(url: str, token: str, *, examples: int, seed: int = DEFAULT_SEED,
         log: Callable[[str], None] = print) -> dict[str, OperationReport]:
    """Fuzz every operation of ``url``'s document with ``examples`` generated requests each."""
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    fixtures = Fixtures(url, token)
    headers = {"Authorization": f"Bearer {token}"}
    reports: dict[str, OperationReport] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        started = time.monotonic()
        report = reports[label] = _fuzz_operation(operation, url, headers, fixtures.refresh(), examples, seed)
        log(f"{label:45} {report.examples:6} examples  5xx {report.server_errors}  "
            f"schema {report.schema_violations}  {time.monotonic() - started:5.1f} s  {dict(report.statuses)}")
    return reports


def _fuzz_operation(operation: Any, url: str, headers: dict[str, str], ids: dict[str, list[str]],
                    examples: int, seed: int) -> OperationReport:
    report = OperationReport()
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @hypothesis.settings(max_examples=examples, deadline=None, database=None,
                         phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.seed(seed)
    @hypothesis.given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        _realistic(case, operation.path, ids, data.draw)
        report.examples += 1
        try:
            response = case.call(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as exc:
            report.server_errors += 1
            _sample(report, f"no response: {exc!r} for {case.as_curl_command(headers)}")
            return
        _judge(report, case, response, headers)

    run()
    return report


def _judge(report: OperationReport, case: Any, response: Any, headers: dict[str, str]) -> None:
    """Count one answer: its status, a server error, a response that breaks the document."""
    report.statuses[response.status_code] += 1
    if response.status_code >= 500:
        report.server_errors += 1
        _sample(report, f"{response.status_code} {response.text[:300]} for {case.as_curl_command(headers)}")
    try:
        case.validate_response(response, checks=SCHEMA_CHECKS)
    except (Failure, FailureGroup) as exc:
        report.schema_violations += 1
        _sample(report, f"{type(exc).__name__}: {str(exc)[:600]} for {case.as_curl_command(headers)}")


def fuzz_stateful(url: str, token: str, *, scenarios: int, steps: int = DEFAULT_STEPS) -> dict[str, OperationReport]:
    """Follow the document's links: create a job, program, user or token, then use what came back.

    hypothesis replays scenarios to explore them; the server's state has moved on
    meanwhile (a name taken, a job deleted), so a replay may take another path and
    hypothesis stop with FlakyStrategyDefinition. So scenarios run in short runs
    of :data:`STATEFUL_CHUNK`; one cut short is counted and the next one starts,
    and ``scenarios_run`` in the result says how many scenarios started.
    """
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    reports: dict[str, OperationReport] = collections.defaultdict(OperationReport)
    progress = {"scenarios_run": 0, "stopped_early": ""}

    me = requests.get(url + "/me", headers=headers, timeout=REQUEST_TIMEOUT_S).json()["name"]
    my_tokens = {t["id"] for t in requests.get(url + "/tokens", headers=headers,
                                               timeout=REQUEST_TIMEOUT_S).json()["tokens"] if t["user"] == me}

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            progress["scenarios_run"] += 1

        def before_call(self, case: Any) -> None:
            # schemathesis also follows what responses name (GET /tokens lists the fuzzer's own
            # token, POST /tokens its user): revoking or demoting itself would turn the rest of
            # the run into 401s and 403s.
            params = case.path_parameters or {}
            if params.get("name") == me:
                params["name"] = FIXTURE_USERS[1][0]
            if params.get("token_id") in my_tokens:
                params["token_id"] = "0" * 12
            # Chains need the token at every step (the per-operation phase covers its absence).
            case.headers = {**(case.headers or {}), **headers}
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": url, "headers": headers, "timeout": REQUEST_TIMEOUT_S}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            report = reports[f"{case.method.upper()} {case.operation.path}"]
            report.examples += 1
            _judge(report, case, response, headers)

    stops = 0
    while progress["scenarios_run"] < scenarios and stops < MAX_STATEFUL_STOPS:
        try:
            Machine.run(settings=hypothesis.settings(
                max_examples=min(STATEFUL_CHUNK, scenarios - progress["scenarios_run"]),
                stateful_step_count=steps, deadline=None, database=None,
                phases=[hypothesis.Phase.generate], suppress_health_check=list(hypothesis.HealthCheck)))
        except hypothesis.errors.FlakyStrategyDefinition as exc:
            stops += 1
            progress["stopped_early"] = f"{stops} runs cut short ({type(exc).__name__})"
    STATEFUL_PROGRESS.update(progress)
    return dict(reports)


def _sample(report: OperationReport, text: str) -> None:
    if len(report.samples) < 5:
        report.samples.append(text)


def _table(title: str, reports: dict[str, OperationReport]) -> dict[str, int]:
    totals = {key: sum(getattr(r, key) for r in reports.values())
              for key in ("examples", "server_errors", "schema_violations")}
    print(f"\n{title}\n{'operation':45} {'examples':>8} {'5xx':>5} {'schema':>7}")
    for label, report in sorted(reports.items()) if title.startswith("stateful") else reports.items():
        print(f"{label:45} {report.examples:8} {report.server_errors:5} {report.schema_violations:7}")
    print(f"{'total':45} {totals['examples']:8} {totals['server_errors']:5} {totals['schema_violations']:7}")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="generated requests per operation")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scenarios", type=int, default=DEFAULT_SCENARIOS, help="stateful scenarios (0: none)")
    args = parser.parse_args()
    from tests.harness import Stack

    stack = Stack(auth="on")
    try:
        stack.start_api()
        started = time.monotonic()
        reports = fuzz(stack.url, stack.admin_token, examples=args.examples, seed=args.seed)
        totals = _table("per operation", reports)
        stateful = fuzz_stateful(stack.url, stack.admin_token, scenarios=args.scenarios) if args.scenarios else {}
        elapsed = time.monotonic() - started
    finally:
        stack.stop()
    stateful_totals = _table(f"stateful: {STATEFUL_PROGRESS.get('scenarios_run', 0)} of {args.scenarios} scenarios "
                             f"of up to {DEFAULT_STEPS} linked calls {STATEFUL_PROGRESS.get('stopped_early', '')}",
                             stateful)
    print(f"({elapsed:.0f} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "examples_per_operation": args.examples, "seed": args.seed, "elapsed_s": round(elapsed, 1),
        "totals": totals, "operations": {k: r.as_dict() for k, r in reports.items()},
        "stateful": {"scenarios": args.scenarios, **STATEFUL_PROGRESS, "totals": stateful_totals,
                     "operations": {k: r.as_dict() for k, r in stateful.items()}},
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
