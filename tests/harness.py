"""Real stacks for tests and benchmarks: a private Redis, Celery workers, the API.

Each :class:`Stack` starts its own ``redis-server`` on a free port and runs the
same commands an operator runs (``qruntime worker``, ``qruntime api``) as child
processes, so tests exercise real HTTP, a real broker and real forks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests

from orchestrator.accounts import Accounts
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import FINAL_STATUSES
from orchestrator.store import JobStore
from qruntime.localredis import LocalRedis, free_port

TESTS_DIR = Path(__file__).resolve().parent
TEST_PROGRAMS_DIR = TESTS_DIR / "programs"
#: Longest any helper here waits for a condition before failing the test.
DEFAULT_WAIT_S = 60.0
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = DEFAULT_WAIT_S, interval: float = 0.02,
             message: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@contextmanager
def running_api(**overrides: Any) -> Iterator[Stack]:
    """A private Redis and API with no worker (a test starts one when it wants), stopped afterwards."""
    stack = Stack(**overrides)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def up_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user's ``qruntime up``: no QRT_* of the caller's, HOME in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRT_")}
    return {**env, "HOME": str(home), **extra}


def start_up(env: dict[str, str], log: Path, port: int, *args: str) -> subprocess.Popen:
    """Start ``qruntime up`` on ``port`` (serving aer_simulator), its output in ``log``; wait until it is up."""
    with open(log, "a") as out:
        up = subprocess.Popen([sys.executable, "-m", "qruntime", "up", "--port", str(port), "--backends",
                               "aer_simulator", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    wait_for(lambda: f"is up at http://127.0.0.1:{port}" in log.read_text() or up.poll() is not None, timeout=180,
             message="qruntime up to say it is up")
    assert up.poll() is None, log.read_text()[-3000:]
    return up


def qruntime_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one ``qruntime`` command as a user would; its output captured."""
    return subprocess.run([sys.executable, "-m", "qruntime", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@contextmanager
def running_stack(*, concurrency: int = 1, **overrides: Any) -> Iterator[Stack]:
    """A private stack with one worker and the API, stopped afterwards (for settings the shared one lacks)."""
    stack = Stack(**overrides)
    try:
        stack.start_worker(concurrency=concurrency)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


class Stack:
    """A Redis server plus any number of workers and API servers, all stopped together."""

    def __init__(self, redis_password: str | None = None, **overrides: Any) -> None:
        self.redis_server = LocalRedis(password=redis_password).start()
        base = {
            "redis_url": self.redis_server.url,
            "programs_dirs": str(TEST_PROGRAMS_DIR),
            "heartbeat_interval_s": 0.5,
            "heartbeat_stale_s": 3.0,
            "reaper_interval_s": 0.5,
            "kill_grace_s": 1.0,
            "job_memory_mb": 4096,
            "data_dir": tempfile.mkdtemp(prefix="qrt-test-data-"),
            # Feature tests run as the single local admin; tests/test_permissions.py turns auth on.
            "auth": "off",
        }
        base.update(overrides)
        self.settings = Settings.load(base, environ={})
        self.env = {**os.environ, **self.settings.as_env()}
        self.redis = connect(self.settings)
        self.store = JobStore(self.redis, self.settings)
        self.accounts = Accounts(self.redis, self.store.keys)
        self.http = requests.Session()
        self.admin_token = ""
        if self.settings.auth != "off":
            self.admin_token = self.add_users([("harness-admin", "admin")])["harness-admin"]
            self.http.headers["Authorization"] = f"Bearer {self.admin_token}"
        self.workers: list[subprocess.Popen] = []
        self.apis: list[subprocess.Popen] = []
        self.url = ""
        self._logs: list[Path] = []

    def add_users(self, users: list[tuple[str, str]]) -> dict[str, str]:
        """Create ``(name, role)`` users straight in the store; returns name → token."""
        tokens = {}
        for name, role in users:
            self.accounts.add_user(name, role)
            tokens[name] = self.accounts.create_token(name)[0]
        return tokens

    # -- processes -----------------------------------------------------------------

    def _spawn(self, args: list[str], name: str, *, setup: str = "root",
               env: dict[str, str] | None = None, wrap: list[str] | None = None) -> subprocess.Popen:
        log = Path(os.environ.get("QRT_TEST_LOG_DIR", "/tmp")) / f"qrt-test-{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._logs.append(log)
        command = [sys.executable, "-m", "qruntime", *args]
        if setup != "root":  # tests/setups.py: the worker as a non-root user, or as Docker runs it
            command = [sys.executable, "-m", "tests.setups", setup, "--", *command]
        # A prefix that execs the command (``ip netns exec <ns>``), so the pid is still the command's.
        command = [*(wrap or []), *command]
        with open(log, "wb") as out:
            return subprocess.Popen(
                command, env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=str(TESTS_DIR.parent),
            )

    def start_worker(self, *, concurrency: int = 2, backends: str = "", name: str | None = None,
                     setup: str = "root", env: dict[str, str] | None = None,
                     wrap: list[str] | None = None) -> subprocess.Popen:
        """Start ``qruntime worker`` (in one of tests/setups.py's setups, its command after ``wrap``)
        and wait until it announces itself."""
        node = name or f"w{len(self.workers)}-{os.getpid()}@test"
        args = ["worker", "--concurrency", str(concurrency), "--name", node, "--loglevel", "WARNING"]
        if backends:
            args += ["--backends", backends]
        process = self._spawn(args, "worker", setup=setup, env=env, wrap=wrap)
        self.workers.append(process)
        wait_for(lambda: self.redis.hexists(self.store.keys.workers(), node) or _died(process),
                 timeout=120, message=f"worker {node} to start")
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with code {process.returncode}")
        return process

    def start_api(self, port: int | None = None) -> str:
        """Start ``qruntime api`` (gunicorn + gevent) and wait for /health."""
        port = port or free_port()
        process = self._spawn(["api", "--port", str(port)], "api")
        self.apis.append(process)
        self.url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"api exited with code {process.returncode}")
            try:
                return requests.get(self.url + "/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(healthy, timeout=60, message="api to answer /health")
        return self.url

    def kill(self, process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Signal a worker/API's whole process group and reap it."""
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in [*self.apis, *self.workers]:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in [*self.apis, *self.workers]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.redis.close()
        self.redis_server.stop()
        shutil.rmtree(self.settings.data_dir, ignore_errors=True)
        for log in self._logs:
            log.unlink(missing_ok=True)

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self._logs if log.exists())

    # -- HTTP helpers -----------------------------------------------------------------

    def submit(self, program_id: str, params: dict | None = None, *, backend: str = "aer_simulator",
               **fields: Any) -> dict:
        body = {"program_id": program_id, "backend": backend, "params": params or {}, **fields}
        response = self.http.post(self.url + "/jobs", data=json.dumps(body), timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        response = self.http.get(f"{self.url}/jobs/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, job_id: str, *statuses: str, timeout: float = DEFAULT_WAIT_S) -> dict:
        """Wait until the job's status is one of ``statuses`` (default: any final one)."""
        wanted = set(statuses) or {status.value for status in FINAL_STATUSES}
        return wait_for(lambda: (j := self.job(job_id))["status"] in wanted and j,
                        timeout=timeout, interval=0.05, message=f"job {job_id} to become {sorted(wanted)}")

    def result_text(self, job_id: str) -> str:
        response = self.http.get(f"{self.url}/jobs/{job_id}/results", timeout=30)
        assert response.status_code == 200, response.text
        return response.text


SANDBOX_LINE = re.compile(r"qruntime: sandbox: uid (\d+), init pid (\d+)")


def sandbox_of(stack: Stack, job_id: str) -> tuple[int, int]:
    """The job's own uid (-1 if it shares the worker's) and its init's host pid, from the job's log."""
    def found() -> tuple[int, int] | None:
        text = stack.http.get(f"{stack.url}/jobs/{job_id}/logs", timeout=30).text
        match = SANDBOX_LINE.search(text)
        if not match:
            return None
        uid = int(match.group(1))
        return (uid if uid >= stack.settings.job_uid_base else -1, int(match.group(2)))

    return wait_for(found, message=f"job {job_id} to start in its sandbox")


def job_processes(uid: int, init_pid: int) -> list[int]:
    """Host pids still alive of a job: its init, and (``uid`` >= 0: a uid of its own) its uid's."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if "State:\tZ" in status:
            continue
        real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if int(entry) == init_pid or (uid >= 0 and real_uid == uid):
            alive.append(int(entry))
    return alive


def wait_job_gone(uid: int, init_pid: int, timeout: float = 30.0) -> None:
    wait_for(lambda: not job_processes(uid, init_pid), timeout=timeout,
             message=f"every process of the job (uid {uid}, init {init_pid}) to be gone")


class Caller:
    """One user's view of the API: every request carries their bearer token."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)


def _died(process: subprocess.Popen) -> bool:
    return process.poll() is not None
