"""``qruntime users`` and ``qruntime tokens``, run as a user would, against a live stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness import Stack, running_api


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_api(auth="on") as stack:
        yield stack


def qruntime(stack: Stack, tmp_path: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.settings.as_env(), "QRT_URL": stack.url,
           "QRT_ACCOUNT_FILE": str(tmp_path / "account.json")}
    env.pop("QRT_TOKEN", None)
    if token:
        env["QRT_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "qruntime", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_first_admin_is_made_directly_then_manages_users_over_rest(stack: Stack, tmp_path: Path) -> None:
    made = qruntime(stack, tmp_path, "users", "add", "boss", "--role", "admin", "--direct", "--json")
    assert made.returncode == 0, made.stderr
    boss_token = json.loads(made.stdout)["token"]["token"]
    added = qruntime(stack, tmp_path, "users", "add", "carol", "--role", "developer", "--json", token=boss_token)
    assert added.returncode == 0, added.stderr
    carol = json.loads(added.stdout)
    assert carol["user"] == {"name": "carol", "role": "developer", "created": carol["user"]["created"]}
    me = requests.get(stack.url + "/me", headers={"Authorization": f"Bearer {carol['token']['token']}"}, timeout=10)
    assert me.json() == {"name": "carol", "role": "developer"}
    listed = qruntime(stack, tmp_path, "users", "list", token=boss_token)
    assert "carol" in listed.stdout and "developer" in listed.stdout


def test_a_token_is_created_saved_listed_and_revoked_from_the_cli(stack: Stack, tmp_path: Path) -> None:
    boss_token = json.loads(qruntime(stack, tmp_path, "users", "add", "dave", "--role", "admin", "--direct",
                                     "--json").stdout)["token"]["token"]
    created = qruntime(stack, tmp_path, "tokens", "create", "--description", "laptop", "--save", "--json",
                       token=boss_token)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    shown = qruntime(stack, tmp_path, "tokens", "show")
    assert shown.stdout.strip() == token["token"]
    listed = qruntime(stack, tmp_path, "tokens", "list", "--json", token=boss_token)
    assert token["id"] in {t["id"] for t in json.loads(listed.stdout)}
    assert token["token"] not in listed.stdout  # secrets are never listed
    revoked = qruntime(stack, tmp_path, "tokens", "revoke", token["id"], token=boss_token)
    assert revoked.returncode == 0, revoked.stderr
    refused = requests.get(stack.url + "/me", headers={"Authorization": f"Bearer {token['token']}"}, timeout=10)
    assert refused.status_code == 401


def test_a_non_admin_is_told_clearly_that_it_may_not(stack: Stack, tmp_path: Path) -> None:
    user_token = json.loads(qruntime(stack, tmp_path, "users", "add", "erin", "--role", "user", "--direct",
                                     "--json").stdout)["token"]["token"]
    refused = qruntime(stack, tmp_path, "users", "add", "mallory", "--role", "admin", token=user_token)
    assert refused.returncode == 1
    assert "Only administrators" in refused.stderr
    assert "Traceback" not in refused.stderr
    forged = qruntime(stack, tmp_path, "users", "list", token="qrt_forged")
    assert forged.returncode == 1 and forged.stderr.startswith("qruntime: The token is not valid")
    assert forged.stderr.count("\n") == 1  # one line, no traceback


def test_an_admin_promotes_a_user_and_the_new_role_applies_to_their_token(stack: Stack, tmp_path: Path) -> None:
    boss = json.loads(qruntime(stack, tmp_path, "users", "add", "frank", "--role", "admin", "--direct",
                               "--json").stdout)["token"]["token"]
    grace = json.loads(qruntime(stack, tmp_path, "users", "add", "grace", "--role", "user", "--json",
                                token=boss).stdout)["token"]["token"]
    headers = {"Authorization": f"Bearer {grace}"}
    assert requests.get(stack.url + "/me", headers=headers, timeout=10).json()["role"] == "user"
    promoted = qruntime(stack, tmp_path, "users", "set-role", "grace", "developer", token=boss)
    assert promoted.returncode == 0 and "grace is now developer" in promoted.stdout
    assert requests.get(stack.url + "/me", headers=headers, timeout=10).json()["role"] == "developer"
    refused = qruntime(stack, tmp_path, "users", "set-role", "grace", "admin", token=grace)
    assert refused.returncode == 1 and "Only administrators" in refused.stderr
    unknown = qruntime(stack, tmp_path, "users", "set-role", "nobody", "user", token=boss)
    assert unknown.returncode == 1 and "User not found" in unknown.stderr
