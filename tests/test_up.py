"""``qruntime up`` as a new user runs it: one command, a working service, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from qruntime.localredis import free_port
from tests.harness import wait_for


def test_up_starts_everything_saves_an_admin_account_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRT_")}
    env["HOME"] = str(tmp_path)
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        up = subprocess.Popen([sys.executable, "-m", "qruntime", "up", "--port", str(port),
                               "--backends", "aer_simulator"],
                              env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "is up at" in log.read_text() or up.poll() is not None, timeout=180,
                 message="qruntime up to say it is up")
        assert up.poll() is None, log.read_text()[-3000:]
        account = json.loads((tmp_path / ".qruntime" / "account.json").read_text())
        assert account["url"] == f"http://127.0.0.1:{port}"
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
