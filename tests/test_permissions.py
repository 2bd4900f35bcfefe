"""Accounts, tokens and the whole permission matrix, over real HTTP with auth on.

Roles × own/other × every endpoint: what a caller may not see answers 404, what
they may see but not change answers 403, and nothing answers without a token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import requests

from tests.harness import Caller, Stack

PUBLIC_SOURCE = '''
def main(backend, user_messenger, **kwargs):
    user_messenger.publish({"hello": kwargs.get("who", "world")})
    return "public done"
'''
PRIVATE_SOURCE = '''
def main(backend, user_messenger, **kwargs):
    return "private done"
'''


def _upload(caller: Caller, name: str, source: str, *, public: bool) -> str:
    body = {"name": name, "data": base64.b64encode(source.encode()).decode(), "cost": 60,
            "description": f"{name} program", "is_public": public}
    response = caller("POST", "/programs", data=json.dumps(body))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def world() -> Iterator[dict]:
    stack = Stack(auth="on")
    try:
        stack.start_worker(concurrency=2)
        stack.start_api()
        tokens = stack.add_users([("root", "admin"), ("dev1", "developer"), ("dev2", "developer"),
                                  ("u1", "user"), ("u2", "user")])
        callers = {name: Caller(stack.url, token) for name, token in tokens.items()}
        public_id = _upload(callers["dev1"], "shared", PUBLIC_SOURCE, public=True)
        private_id = _upload(callers["dev1"], "secret", PRIVATE_SOURCE, public=False)
        jobs = {}
        for user in ("u1", "u2"):
            response = callers[user]("POST", "/jobs", data=json.dumps(
                {"program_id": public_id, "backend": "aer_simulator", "params": {"who": user}}))
            assert response.status_code == 201, response.text
            jobs[user] = response.json()["id"]
        for job_id in jobs.values():
            stack.wait_status(job_id)
        yield {"stack": stack, "callers": callers, "accounts": stack.accounts, "public": public_id,
               "private": private_id, "jobs": jobs}
    finally:
        stack.stop()


JOB_READ_ENDPOINTS = ["", "/results", "/logs", "/interim_results"]


def test_no_endpoint_but_health_answers_without_a_valid_token(world: dict) -> None:
    stack = world["stack"]
    job_id = world["jobs"]["u1"]
    anonymous = Caller(stack.url, None)
    forged = Caller(stack.url, "qrt_not-a-real-token")
    seed_header = requests.Session()
    assert anonymous("GET", "/health").status_code == 200
    paths = [("GET", "/programs"), ("GET", "/programs/runtime-simple"), ("POST", "/programs"),
             ("GET", "/jobs"), ("POST", "/jobs"), ("GET", f"/jobs/{job_id}"),
             ("GET", f"/jobs/{job_id}/results"), ("GET", f"/jobs/{job_id}/logs"),
             ("POST", f"/jobs/{job_id}/cancel"), ("DELETE", f"/jobs/{job_id}"), ("GET", "/backends"),
             ("GET", "/users"), ("GET", "/tokens"), ("GET", "/me")]
    for caller in (anonymous, forged):
        for method, path in paths:
            response = caller(method, path)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["code"] == 401
    seed_header.headers["X-Access-Token"] = "qrt_bogus"
    assert seed_header.get(stack.url + "/jobs", timeout=10).status_code == 401
    assert stack.job(job_id)  # nothing was deleted by the refused DELETE
    assert world["callers"]["u1"]("GET", f"/jobs/{job_id}").status_code == 200


@pytest.mark.parametrize("viewer,expected", [("u1", 200), ("u2", 404), ("dev1", 404), ("root", 200)])
def test_a_job_is_visible_to_its_owner_and_admins_only(world: dict, viewer: str, expected: int) -> None:
    job_id = world["jobs"]["u1"]
    caller = world["callers"][viewer]
    for suffix in JOB_READ_ENDPOINTS:
        response = caller("GET", f"/jobs/{job_id}{suffix}")
        assert response.status_code == expected, (viewer, suffix, response.text)
    listed = {j["id"] for j in caller("GET", "/jobs?limit=100").json()["jobs"]}
    assert (job_id in listed) == (expected == 200)


@pytest.mark.parametrize("viewer", ["u2", "dev1", "dev2"])
def test_others_cannot_cancel_or_delete_a_job_and_learn_nothing(world: dict, viewer: str) -> None:
    job_id = world["jobs"]["u1"]
    caller = world["callers"][viewer]
    assert caller("POST", f"/jobs/{job_id}/cancel").status_code == 404
    assert caller("DELETE", f"/jobs/{job_id}").status_code == 404
    assert world["callers"]["u1"]("GET", f"/jobs/{job_id}").status_code == 200


def test_admin_lists_every_job_and_users_list_only_their_own(world: dict) -> None:
    callers, jobs = world["callers"], world["jobs"]
    everything = {j["id"] for j in callers["root"]("GET", "/jobs?limit=100").json()["jobs"]}
    assert set(jobs.values()) <= everything
    mine = callers["u2"]("GET", "/jobs?limit=100").json()
    assert {j["id"] for j in mine["jobs"]} == {jobs["u2"]} and mine["count"] == 1


@pytest.mark.parametrize("viewer,sees_private,sees_source",
                         [("dev1", True, True), ("dev2", False, False), ("u1", False, False),
                          ("root", True, True)])
def test_program_visibility_and_source_by_role(world: dict, viewer: str, sees_private: bool,
                                                sees_source: bool) -> None:
    caller = world["callers"][viewer]
    public = caller("GET", f"/programs/{world['public']}")
    assert public.status_code == 200
    assert ("data" in public.json()) == sees_source
    if sees_source:
        assert public.json()["data"] == PUBLIC_SOURCE
    private = caller("GET", f"/programs/{world['private']}")
    assert private.status_code == (200 if sees_private else 404)
    listed = {p["id"] for p in caller("GET", "/programs").json()["programs"]}
    assert "runtime-simple" in listed and world["public"] in listed
    assert (world["private"] in listed) == sees_private
    run = caller("POST", "/jobs", data=json.dumps({"program_id": world["private"], "backend": "aer_simulator"}))
    assert run.status_code == (201 if sees_private else 404), run.text


@pytest.mark.parametrize("viewer,expected", [("dev2", 403), ("u1", 403)])
def test_only_the_owner_or_an_admin_may_change_a_public_program(world: dict, viewer: str, expected: int) -> None:
    caller, program_id = world["callers"][viewer], world["public"]
    b64 = base64.b64encode(PRIVATE_SOURCE.encode())
    assert caller("PATCH", f"/programs/{program_id}", data=json.dumps({"description": "mine now"})).status_code == expected
    assert caller("PUT", f"/programs/{program_id}/data", data=b64,
                  headers={"Content-Type": "application/octet-stream"}).status_code == expected
    assert caller("PUT", f"/programs/{program_id}/private").status_code == expected
    assert caller("DELETE", f"/programs/{program_id}").status_code == expected
    assert world["callers"]["u1"]("GET", f"/programs/{program_id}").json()["description"] == "shared program"


@pytest.mark.parametrize("viewer", ["dev2", "u1"])
def test_a_private_program_is_404_to_everyone_else_for_every_change(world: dict, viewer: str) -> None:
    caller, program_id = world["callers"][viewer], world["private"]
    for method, path in [("PATCH", ""), ("PUT", "/data"), ("PUT", "/public"), ("PUT", "/private"),
                         ("DELETE", ""), ("GET", "/versions")]:
        response = caller(method, f"/programs/{program_id}{path}", data=json.dumps({"description": "x"}))
        assert response.status_code == 404, (method, path, response.text)


@pytest.mark.parametrize("viewer", ["root", "dev1", "u1"])
def test_built_in_programs_are_read_only_for_everyone(world: dict, viewer: str) -> None:
    caller = world["callers"][viewer]
    assert caller("PATCH", "/programs/runtime-simple", data=json.dumps({"description": "x"})).status_code == 403
    assert caller("DELETE", "/programs/runtime-simple").status_code == 403
    assert caller("PUT", "/programs/runtime-simple/private").status_code == 403


@pytest.mark.parametrize("viewer,expected", [("u1", 403), ("dev2", 201), ("root", 201)])
def test_only_developers_and_admins_upload(world: dict, viewer: str, expected: int) -> None:
    body = {"name": f"upload-by-{viewer}", "data": base64.b64encode(PRIVATE_SOURCE.encode()).decode(),
            "cost": 30, "description": "d"}
    response = world["callers"][viewer]("POST", "/programs", data=json.dumps(body))
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["message"] == "You are not authorized to upload programs."


@pytest.mark.parametrize("viewer", ["dev1", "u1"])
def test_user_administration_is_for_admins_only(world: dict, viewer: str) -> None:
    caller = world["callers"][viewer]
    assert caller("GET", "/users").status_code == 403
    assert caller("POST", "/users", data=json.dumps({"name": "eve", "role": "admin"})).status_code == 403
    assert caller("POST", "/tokens", data=json.dumps({"user": "root"})).status_code == 403
    assert caller("GET", "/me").json() == {"name": viewer, "role": "developer" if viewer == "dev1" else "user"}


def test_a_revoked_token_stops_working_at_once(world: dict) -> None:
    stack, root = world["stack"], world["callers"]["root"]
    assert root("POST", "/users", data=json.dumps({"name": "temp", "role": "user"})).status_code == 201
    created = root("POST", "/tokens", data=json.dumps({"user": "temp", "description": "short-lived"}))
    assert created.status_code == 201
    temp = Caller(stack.url, created.json()["token"])
    assert temp("GET", "/jobs").status_code == 200
    assert created.json()["id"] in {t["id"] for t in temp("GET", "/tokens").json()["tokens"]}
    assert root("DELETE", f"/tokens/{created.json()['id']}").status_code == 204
    assert temp("GET", "/jobs").status_code == 401


def test_an_expired_token_is_refused(world: dict) -> None:
    accounts, stack = world["accounts"], world["stack"]
    secret, info = accounts.create_token("u2", expires_in_s=0.2)
    assert Caller(stack.url, secret)("GET", "/me").status_code in (200, 401)
    stack_caller = Caller(stack.url, secret)
    from tests.harness import wait_for

    wait_for(lambda: stack_caller("GET", "/me").status_code == 401, timeout=10, message="expiry")
    stored = stack.redis.hgetall(stack.store.keys.token_ids())
    assert all(secret.encode() not in v for v in stored.values())  # only hashes are kept


def test_users_and_roles_are_validated(world: dict) -> None:
    root = world["callers"]["root"]
    assert root("POST", "/users", data=json.dumps({"name": "dev1", "role": "user"})).status_code == 409
    assert root("POST", "/users", data=json.dumps({"name": "x", "role": "superuser"})).status_code == 400
    assert root("POST", "/users", data=json.dumps({"name": "bad name!", "role": "user"})).status_code == 400
    assert root("POST", "/users", data="[]").status_code == 400
    names = {u["name"] for u in root("GET", "/users").json()["users"]}
    assert {"root", "dev1", "dev2", "u1", "u2"} <= names


def test_a_browser_may_send_its_token_in_the_stream_url_only_and_it_is_not_logged(world: dict) -> None:
    stack, accounts = world["stack"], world["accounts"]
    secret, _ = accounts.create_token("u1", description="browser")
    job_id = world["jobs"]["u1"]
    stream = requests.get(f"{stack.url}/jobs/{job_id}/stream", params={"access_token": secret},
                          timeout=30, stream=True)
    assert stream.status_code == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    body = b"".join(stream.iter_content(chunk_size=None)).decode()
    assert "event: done" in body
    assert requests.get(f"{stack.url}/jobs", params={"access_token": secret}, timeout=10).status_code == 401
    other = requests.get(f"{stack.url}/jobs/{world['jobs']['u2']}/stream", params={"access_token": secret},
                         timeout=10)
    assert other.status_code == 404
    assert secret not in stack.logs()
