"""``qruntime up --flower``: Flower beside the stack, behind the login QRT_FLOWER_BASIC_AUTH sets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from qruntime.localredis import free_port
from tests.harness import wait_for

LOGIN = ("ops", "flower-test-password-3f9c")


def test_up_with_flower_serves_it_behind_the_login_from_the_setting_and_never_in_argv(tmp_path: Path) -> None:
    port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QRT_", "FLOWER_"))}
    env.update(HOME=str(tmp_path), QRT_FLOWER_BASIC_AUTH=":".join(LOGIN))
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        up = subprocess.Popen([sys.executable, "-m", "qruntime", "up", "--port", str(port),
                               "--backends", "ibmq_armonk", "--flower", str(flower_port)],
                              env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    flower = f"http://127.0.0.1:{flower_port}"
    try:
        wait_for(lambda: "is up at" in log.read_text() or up.poll() is not None, timeout=180,
                 message="qruntime up to say it is up")
        assert up.poll() is None, log.read_text()[-3000:]
        assert "login from QRT_FLOWER_BASIC_AUTH" in log.read_text()
        wait_for(lambda: _answers(flower + "/healthcheck"), timeout=60, message="Flower to answer")
        for page in ("/", "/workers", "/api/workers"):
            assert requests.get(flower + page, timeout=10).status_code == 401, page
            assert requests.get(flower + page, auth=("ops", "wrong"), timeout=10).status_code == 401, page
            assert requests.get(flower + page, auth=LOGIN, timeout=30).status_code == 200, page
        assert requests.get(flower + "/metrics", timeout=10).status_code == 200  # public, as docs/deploy.md says
        processes = _descendants(up.pid)
        assert any("flower" in argv for argv, _ in processes.values())
        for pid, (argv, environ) in processes.items():
            assert LOGIN[1] not in " ".join(argv), argv
            if pid == up.pid:
                continue  # it was given the setting; it hands it on only to Flower, renamed
            assert "QRT_FLOWER_BASIC_AUTH" not in environ, argv
            if "flower" not in argv:
                assert "FLOWER_BASIC_AUTH" not in environ, argv
    finally:
        os.killpg(up.pid, signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]


def test_up_refuses_a_malformed_flower_login_without_repeating_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRT_")}
    env.update(HOME=str(tmp_path), QRT_FLOWER_BASIC_AUTH="only-a-password-7d1e")
    result = subprocess.run([sys.executable, "-m", "qruntime", "up", "--port", str(free_port()),
                             "--flower", str(free_port())], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "QRT_FLOWER_BASIC_AUTH must be user:password" in result.stderr
    assert "only-a-password-7d1e" not in result.stdout + result.stderr
    assert not (tmp_path / ".qruntime" / "redis").exists()  # refused before anything started


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _descendants(root: int) -> dict[int, tuple[list[str], dict[str, str]]]:
    """pid → (argv, environment) of ``root`` and every process below it, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid == frontier[-1] and pid not in found]
        frontier.pop()
        found.update(children)
        frontier.extend(children)
    processes = {}
    for pid in found:
        try:
            argv = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
            environ = (Path(f"/proc/{pid}") / "environ").read_bytes().split(b"\0")
        except OSError:  # it exited meanwhile
            continue
        processes[pid] = ([a.decode() for a in argv if a],
                          dict(e.decode().partition("=")[::2] for e in environ if b"=" in e))
    return processes
