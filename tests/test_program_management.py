"""Uploading, versioning, running, updating and deleting programs, with auth on.

The story of the issue: a developer uploads a two-module program with a data
file, a user runs it with inputs, the developer updates it, the old job still
names the version it ran, and once deleted the program cannot be run.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Caller, Stack

ROOT = Path(__file__).resolve().parent.parent

MAIN_V1 = '''
import json
import os

from helpers import scale


def main(backend, user_messenger, factor=1, **kwargs):
    with open(os.path.join(os.path.dirname(__file__), "data", "table.json")) as handle:
        table = json.load(handle)
    for index, value in enumerate(table["values"]):
        user_messenger.publish({"index": index, "scaled": scale(value, factor)})
    return {"version": 1, "total": sum(scale(v, factor) for v in table["values"])}
'''
MAIN_V2 = MAIN_V1.replace('"version": 1', '"version": 2')
HELPERS = "def scale(value, factor):\n    return value * factor\n"
PARAMETERS = {
    "type": "object",
    "properties": {
        "factor": {"type": "integer", "minimum": 1, "maximum": 10, "description": "Scale factor."},
        "label": {"type": "string"},
    },
    "required": ["factor"],
}


def _zip(main_source: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("scaler/main.py", main_source)
        archive.writestr("scaler/helpers.py", HELPERS)
        archive.writestr("scaler/data/table.json", json.dumps({"values": [1, 2, 3]}))
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def env() -> Iterator[dict]:
    stack = Stack(auth="on")
    try:
        stack.start_worker(concurrency=2)
        stack.start_api()
        tokens = stack.add_users([("dev", "developer"), ("user", "user")])
        callers = {name: Caller(stack.url, token) for name, token in tokens.items()}
        yield {"stack": stack, **callers}
    finally:
        stack.stop()


def _wait_final(stack: Stack, caller: Caller, job_id: str) -> dict:
    from tests.harness import wait_for

    def final() -> dict | None:
        job = caller("GET", f"/jobs/{job_id}").json()
        return job if job["status"] not in ("QUEUED", "RUNNING") else None

    return wait_for(final, timeout=60, message=f"job {job_id} to end")


def test_a_directory_program_runs_is_updated_and_its_old_job_keeps_its_version(env: dict) -> None:
    stack, dev, user = env["stack"], env["dev"], env["user"]
    upload = dev("POST", "/programs", data=json.dumps({
        "name": "scaler", "data": _zip(MAIN_V1), "cost": 60, "description": "Scales a table.",
        "is_public": True, "spec": {"parameters": PARAMETERS}}))
    assert upload.status_code == 201, upload.text
    program_id = upload.json()["id"]
    assert program_id.startswith("scaler-") and upload.json()["version"] == "1"

    first = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                  "params": {"factor": 2}}))
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    assert _wait_final(stack, user, first_id)["status"] == "COMPLETED", user("GET", f"/jobs/{first_id}/results").text
    assert json.loads(user("GET", f"/jobs/{first_id}/results").text) == {"version": 1, "total": 12}
    interim = user("GET", f"/jobs/{first_id}/interim_results").json()
    assert [m["data"] for m in interim] == [{"index": i, "scaled": 2 * v} for i, v in enumerate([1, 2, 3])]

    source = user("GET", f"/programs/{program_id}").json()
    assert "data" not in source  # a user runs it but cannot read it

    update = dev("PUT", f"/programs/{program_id}/data", data=_zip(MAIN_V2),
                 headers={"Content-Type": "application/octet-stream"})
    assert update.status_code == 200, update.text
    assert update.json()["version"] == "2"
    second_id = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                      "params": {"factor": 1}})).json()["id"]
    _wait_final(stack, user, second_id)
    assert json.loads(user("GET", f"/jobs/{second_id}/results").text)["version"] == 2
    assert user("GET", f"/jobs/{first_id}").json()["program"]["version"] == "1"

    rerun = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                  "params": {"factor": 2}, "version": "1"}))
    assert rerun.status_code == 201, rerun.text
    _wait_final(stack, user, rerun.json()["id"])
    assert json.loads(user("GET", f"/jobs/{rerun.json()['id']}/results").text) == {"version": 1, "total": 12}

    versions = dev("GET", f"/programs/{program_id}/versions").json()
    assert [v["version"] for v in versions["versions"]] == ["1", "2"]
    assert [v["current"] for v in versions["versions"]] == [False, True]

    assert dev("DELETE", f"/programs/{program_id}").status_code == 204
    gone = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                 "params": {"factor": 1}}))
    assert gone.status_code == 404 and program_id in gone.json()["message"]
    assert user("GET", f"/jobs/{first_id}").json()["program"] == {"id": program_id, "version": "1"}


def test_the_seed_metadata_sample_uploads_unchanged(env: dict) -> None:
    metadata = json.loads((ROOT / "programs" / "runtime-simple" / "runtime-simple.json").read_text())
    source = (ROOT / "programs" / "runtime-simple" / "runtime-simple.py").read_text()
    body = {"name": "my-" + metadata["name"], "data": base64.b64encode(source.encode()).decode(),
            "cost": metadata["max_execution_time"], "description": metadata["description"],
            "is_public": False, "spec": metadata["spec"]}
    response = env["dev"]("POST", "/programs", data=json.dumps(body))
    assert response.status_code == 201, response.text
    assert response.json()["spec"] == metadata["spec"]
    again = env["dev"]("POST", "/programs", data=json.dumps(body))
    assert again.status_code == 409 and again.json()["message"] == "Program with the same name already exists."


def test_invalid_inputs_are_rejected_at_submit_with_every_violation_named(env: dict) -> None:
    stack, dev, user = env["stack"], env["dev"], env["user"]
    program_id = dev("POST", "/programs", data=json.dumps({
        "name": "strict", "data": _zip(MAIN_V1), "cost": 60, "description": "Checks its inputs.",
        "is_public": True, "spec": {"parameters": PARAMETERS}})).json()["id"]
    before = stack.redis.zcard(stack.store.keys.index("all", "any"))
    response = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                     "params": {"label": 5}}))
    assert response.status_code == 400
    message = response.json()["message"]
    assert "factor" in message and "required" in message and "label" in message and "string" in message
    paths = {v["path"] for v in response.json()["errors"]["params"]}
    assert paths == {"(inputs)", "label"}
    out_of_range = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                         "params": {"factor": 11}}))
    assert out_of_range.status_code == 400 and "maximum" in out_of_range.json()["message"]
    wrong_type = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                       "params": {"factor": "two"}}))
    assert wrong_type.status_code == 400 and "integer" in wrong_type.json()["message"]
    assert stack.redis.zcard(stack.store.keys.index("all", "any")) == before  # nothing enqueued


@pytest.mark.parametrize("body,fragment", [
    ({"data": "ZGVmIG1haW4oKTogcGFzcw==", "cost": 60, "description": "d"}, "name is a required"),
    ({"name": "a", "data": "ZGVmIG1haW4oKTogcGFzcw==", "cost": 60}, "description is a required"),
    ({"name": "a", "data": "ZGVmIG1haW4oKTogcGFzcw==", "description": "d"}, "max_execution_time is a required"),
    ({"name": "a", "data": "ZGVmIG1haW4oKTogcGFzcw==", "description": "d", "cost": 10**9}, "ceiling"),
    ({"name": "a", "data": "ZGVmIG1haW4oKTogcGFzcw==", "description": "d", "cost": "60"}, "whole number"),
    ({"name": "a", "data": "ZGVmIG1haW4oKTogcGFzcw==", "description": "d", "cost": 60,
      "spec": {"parameters": {"type": "banana"}}}, "JSON Schema"),
    ({"name": "a", "data": "not base64!", "description": "d", "cost": 60}, "base64"),
    ({"name": "a", "data": base64.b64encode(b"print('no main')").decode(), "description": "d", "cost": 60},
     "main"),
    ({"name": "a", "description": "d", "cost": 60}, "data is required"),
    ({"name": "a", "data": "ZGVmIG1haW4oKTogcGFzcw==", "description": "d", "cost": 60, "colour": "red"},
     "Unknown field"),
])
def test_bad_uploads_get_a_400_saying_what_is_wrong(env: dict, body: dict, fragment: str) -> None:
    response = env["dev"]("POST", "/programs", data=json.dumps(body))
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]


def test_an_archive_that_escapes_its_directory_is_refused(env: dict) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", "def main(backend, user_messenger):\n    return 1\n")
        archive.writestr("../evil.py", "x = 1\n")
    body = {"name": "escaper", "data": base64.b64encode(buffer.getvalue()).decode(), "cost": 5,
            "description": "d"}
    response = env["dev"]("POST", "/programs", data=json.dumps(body))
    assert response.status_code == 400 and "outside" in response.json()["message"]


def test_metadata_update_makes_a_new_version_and_visibility_toggles(env: dict) -> None:
    dev, user = env["dev"], env["user"]
    program_id = dev("POST", "/programs", data=json.dumps({
        "name": "toggled", "data": base64.b64encode(b"def main(backend, user_messenger):\n    return 'ok'\n").decode(),
        "cost": 30, "description": "first"})).json()["id"]
    assert user("GET", f"/programs/{program_id}").status_code == 404
    assert dev("PUT", f"/programs/{program_id}/public").json()["is_public"] is True
    assert user("GET", f"/programs/{program_id}").status_code == 200
    patched = dev("PATCH", f"/programs/{program_id}", data=json.dumps({"description": "second", "cost": 20}))
    assert patched.status_code == 200 and patched.json()["version"] == "2"
    assert patched.json()["description"] == "second" and patched.json()["cost"] == 20
    assert dev("GET", f"/programs/{program_id}?version=1").json()["description"] == "first"
    assert dev("PATCH", f"/programs/{program_id}", data="{}").status_code == 400
    assert dev("PUT", f"/programs/{program_id}/private").json()["is_public"] is False
    assert user("GET", f"/programs/{program_id}").status_code == 404


def test_a_hostile_schema_pattern_cannot_hang_the_api(env: dict) -> None:
    dev, user = env["dev"], env["user"]
    evil = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^(a+)+$"}},
            "patternProperties": {"^x_(a+)+$": {"type": "string"}}, "additionalProperties": False}
    program_id = dev("POST", "/programs", data=json.dumps({
        "name": "backtracker", "data": _zip(MAIN_V1), "cost": 60, "description": "Hostile pattern.",
        "is_public": True, "spec": {"parameters": evil}})).json()["id"]
    hostile = {"word": "a" * 64 + "!", "x_" + "a" * 64 + "!": "v"}
    response = user("POST", "/jobs", data=json.dumps({"program_id": program_id, "backend": "aer_simulator",
                                                     "params": hostile}))  # a backtracking engine would not answer
    assert response.status_code == 400
    assert "does not match" in response.json()["message"]
    assert user("GET", "/health").status_code == 200
