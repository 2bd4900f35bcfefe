"""``qruntime up`` as a new user runs it: one command, a working service, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from qruntime.localredis import free_port
from tests.harness import qruntime_cli, running_api, start_up, up_env, wait_for


def test_up_starts_everything_saves_an_admin_account_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = up_env(tmp_path)
    log = tmp_path / "up.log"
    up = start_up(env, log, port)
    try:
        saved = json.loads((tmp_path / ".qruntime" / "account.json").read_text())
        assert saved["default"] == f"http://127.0.0.1:{port}"
        account = {"url": saved["default"], "token": saved["accounts"][saved["default"]]["token"]}
        headers = {"Authorization": f"Bearer {account['token']}"}
        assert requests.get(account["url"] + "/jobs", timeout=10).status_code == 401
        job = requests.post(account["url"] + "/jobs", headers=headers, timeout=30, json={
            "program_id": "hello-world", "backend": "aer_simulator", "params": {"iterations": 1}}).json()
        result = wait_for(lambda: (r := requests.get(f"{account['url']}/jobs/{job['id']}/results",
                                                      headers=headers, timeout=10)).status_code == 200 and r,
                          timeout=60, message="the job's result")
        assert result.text == "All done!"
        _a_second_up_is_refused(env, tmp_path, port)
    finally:
        os.killpg(up.pid, signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "qruntime: stopped." in log.read_text()
    wait_for(lambda: _refused(port), timeout=10, message="the API port to close")


def _a_second_up_is_refused(env: dict[str, str], home: Path, port: int) -> None:
    """Neither the same data directory nor the same port can be had twice; nothing else starts."""
    same_home = subprocess.run([sys.executable, "-m", "qruntime", "up", "--port", str(free_port())],
                               env=env, capture_output=True, text=True, timeout=60)
    assert same_home.returncode == 1, same_home.stdout + same_home.stderr
    assert f"is using {home / '.qruntime'}" in same_home.stderr and "is up" not in same_home.stdout
    other_home = home / "other"
    other_home.mkdir()
    same_port = subprocess.run([sys.executable, "-m", "qruntime", "up", "--port", str(port)],
                               env={**env, "HOME": str(other_home)}, capture_output=True, text=True, timeout=60)
    assert same_port.returncode == 1, same_port.stdout + same_port.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in same_port.stderr and "is up" not in same_port.stdout
    assert not (other_home / ".qruntime" / "redis").exists()  # no second embedded Redis was started


def _refused(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def test_up_restarts_a_crashed_worker_answers_status_and_stops_with_down(tmp_path: Path) -> None:
    """The laptop's process manager: a killed worker comes back, status says so, down stops it all."""
    env = up_env(tmp_path, QRT_SHUTDOWN_GRACE_S="1")
    log = tmp_path / "up.log"
    port = free_port()
    up = start_up(env, log, port)
    try:
        status = qruntime_cli(env, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        state = json.loads(status.stdout)
        assert state["url"] == f"http://127.0.0.1:{port}" and state["health"]["workers"] == 1
        assert "redis_url" not in state  # it holds the embedded Redis's password
        worker = next(p for p in state["processes"] if p["name"] == "worker 0")
        os.killpg(worker["pid"], signal.SIGKILL)  # the Celery main process and its pool
        wait_for(lambda: "worker 0 exited with code -9; restarting it." in log.read_text(), timeout=30,
                 message="up to say it restarts the worker")
        restarted = wait_for(lambda: (s := qruntime_cli(env, "status", "--json")).returncode == 0
                             and json.loads(s.stdout), timeout=120, message="status to be healthy again")
        worker = next(p for p in restarted["processes"] if p["name"] == "worker 0")
        assert worker["restarts"] == 1
        # --direct finds the embedded Redis (random port and password) by itself.
        made = qruntime_cli(env, "tokens", "create", "--direct", "--user", "admin", "--json")
        assert made.returncode == 0, made.stderr
        token = json.loads(made.stdout)["token"]
        ran = qruntime_cli(env, "run", "hello-world", "--backend", "aer_simulator", "--input", "iterations=1",
                        "--follow", "--token", token, "--url", f"http://127.0.0.1:{port}")
        assert ran.returncode == 0 and "All done!" in ran.stdout, ran.stdout + ran.stderr
        # A job still running when up stops is handed back to the queue, quietly.
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
        long_job = requests.post(f"{url}/jobs", headers=auth, timeout=30, json={
            "program_id": "hello-world", "backend": "aer_simulator", "params": {"iterations": 100000}}).json()["id"]
        wait_for(lambda: requests.get(f"{url}/jobs/{long_job}", headers=auth, timeout=10).json()["status"] == "RUNNING",
                 message="the long job to run")
        down = qruntime_cli(env, "down")
        assert down.returncode == 0 and f"stopped the up (pid {up.pid})" in down.stdout, down.stdout + down.stderr
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    text = log.read_text()
    assert "qruntime: stopped." in text
    assert f"job {long_job} handed back to the queue: worker shut down" in text
    assert "Traceback" not in text and "WorkerLostError" not in text, text[-3000:]
    gone = qruntime_cli(env, "status")
    assert gone.returncode == 3 and "not running" in gone.stdout


def test_up_on_another_port_saves_the_account_for_its_own_url_and_a_tokenless_call_says_how_to_log_in(
        tmp_path: Path) -> None:
    env = up_env(tmp_path)
    log = tmp_path / "up.log"
    first, second = free_port(), free_port()
    qruntime_cli(env, "down")
    up = start_up(env, log, first)
    try:
        assert qruntime_cli(env, "down").returncode == 0
        up.wait(timeout=30)
        up = start_up(env, log, second)  # same data directory: the users are kept
        assert f"it is now saved for http://127.0.0.1:{second}" in log.read_text()
        listing = qruntime_cli(env, "jobs")  # no --url, no --token: the default account is the new up's
        assert listing.returncode == 0, listing.stdout + listing.stderr
        accounts = qruntime_cli(env, "accounts")
        assert f"http://127.0.0.1:{second}  (default)" in accounts.stdout, accounts.stdout
        assert qruntime_cli(env, "logout", f"http://127.0.0.1:{second}").returncode == 0
        tokenless = qruntime_cli(env, "jobs", "--url", f"http://127.0.0.1:{second}")
        assert tokenless.returncode == 1
        assert f"No token for http://127.0.0.1:{second}" in tokenless.stderr
        assert f"qruntime login http://127.0.0.1:{second} --token" in tokenless.stderr
        refused = qruntime_cli(env, "login", f"http://127.0.0.1:{second}", "--token", "qrt_wrong")
        assert refused.returncode == 1 and "not saved" in refused.stderr
        made = qruntime_cli(env, "tokens", "create", "--direct", "--user", "admin", "--json")
        token = json.loads(made.stdout)["token"]
        logged = qruntime_cli(env, "login", f"http://127.0.0.1:{second}", "--token", token)
        assert logged.returncode == 0 and "as admin (admin)" in logged.stdout, logged.stdout + logged.stderr
        assert qruntime_cli(env, "jobs").returncode == 0
    finally:
        qruntime_cli(env, "down")
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        up.wait(timeout=30)


def test_a_tokenless_runtime_service_fails_at_once_saying_how_to_get_a_token(tmp_path: Path,
                                                                             monkeypatch) -> None:
    from qruntime.client.service import RuntimeService
    from qruntime.exceptions import IBMQAccountError

    monkeypatch.setenv("QRT_ACCOUNT_FILE", str(tmp_path / "account.json"))
    monkeypatch.delenv("QRT_TOKEN", raising=False)
    with running_api(auth="on") as stack, pytest.raises(IBMQAccountError, match="qruntime login"):
        RuntimeService(url=stack.url)
