"""Watching a job from the command line: ``follow``, ``run --follow`` and ``result`` while it waits.

The stories of the first hour: a job for a backend no worker serves says why it waits
(``job``, ``result``, ``run --follow``) and finishes once a worker comes; ``follow``
re-attaches to a running job and, when the connection drops, resumes without missing or
repeating an interim result.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.harness import Stack, running_api, wait_for

NO_WORKER = re.compile(r"No live worker serves backend aer_simulator \(queue [^)]+\); the job stays QUEUED "
                       r"until a worker for it starts \(qruntime worker --backends aer_simulator\)")
#: ``[n] iteration i: {...}``: the progress line of an interim result that counts iterations.
PROGRESS = re.compile(r"\[(\d+)\] iteration (\d+): \{")


class Watched:
    """``qruntime ARGS`` running in the background, its output lines collected as they come."""

    def __init__(self, url: str, *args: str) -> None:
        env = {**os.environ, "QRT_URL": url}
        env.pop("QRT_TOKEN", None)
        self.process = subprocess.Popen([sys.executable, "-m", "qruntime", *args], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class CuttingProxy:
    """A TCP proxy in front of the API that can drop every open connection at once, as a network blip does."""

    def __init__(self, url: str) -> None:
        target = urlsplit(url)
        self._target = (target.hostname, target.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.first_requests: list[str] = []  # the request line that opened each connection
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, is_request: bool) -> None:
        first = is_request
        try:
            while data := source.recv(65536):
                if first:
                    with self._lock:
                        self.first_requests.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                    first = False
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            dropped, self._open = self._open, []
        for end in dropped:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


@pytest.fixture
def idle_stack() -> Iterator[Stack]:
    """The API and Redis, with no worker until the test starts one."""
    with running_api() as stack:
        yield stack


def test_a_job_no_worker_serves_says_why_it_waits_then_finishes_once_a_worker_comes(idle_stack: Stack) -> None:
    stack = idle_stack
    job_id = stack.submit("echo", {"x": 1})["id"]
    shown = Watched(stack.url, "job", job_id)
    assert shown.wait() == 0
    waiting = next(line for line in shown.stdout if line.startswith("Waiting:"))
    assert NO_WORKER.search(waiting), shown.stdout

    no_wait = Watched(stack.url, "result", job_id, "--no-wait")
    assert no_wait.wait() == 1
    assert len(no_wait.stderr) == 1 and no_wait.stderr[0].startswith(f"qruntime: Job {job_id} is QUEUED: No live")
    assert no_wait.stderr[0].endswith("Its result is not ready yet.")

    result = Watched(stack.url, "result", job_id)
    run = Watched(stack.url, "run", "echo", "--input", "x=2", "--backend", "aer_simulator", "--follow")
    try:
        wait_for(lambda: result.stderr and run.stderr, message="result and run --follow to say they wait")
        assert result.stderr[0].startswith(f"Job {job_id} is QUEUED: ") and NO_WORKER.search(result.stderr[0])
        assert run.stderr[0].startswith("[status] QUEUED at ") and NO_WORKER.search(run.stderr[0])
        assert result.process.poll() is None and run.process.poll() is None  # still waiting, not failed

        stack.start_worker(concurrency=1)
        assert result.wait() == 0, result.stderr
        assert run.wait() == 0, run.stderr
    finally:
        result.kill()
        run.kill()
    assert result.stderr == [result.stderr[0], f"Job {job_id} is RUNNING. Waiting for it to end."]
    assert result.stdout == ['{"x": 1}']
    assert run.stdout[0].startswith("job ID: ") and run.stdout[1:] == ['{"x": 2}']
    assert [line.split(" at ")[0] for line in run.stderr if line.startswith("[status]")] == [
        "[status] QUEUED", "[status] RUNNING", "[status] COMPLETED"]


def test_follow_reattaches_to_a_running_job_and_resumes_across_a_dropped_connection(stack: Stack) -> None:
    job_id = stack.submit("pacer", {"count": 20, "rate_hz": 5})["id"]
    stack.wait_status(job_id, "RUNNING")
    proxy = CuttingProxy(stack.url)
    follower = Watched(proxy.url, "follow", job_id)
    try:
        wait_for(lambda: len(follower.stdout) >= 3, message="the first interim results")
        proxy.cut()
        assert follower.wait() == 0, follower.stderr
    finally:
        follower.kill()
        proxy.close()
    progress = [PROGRESS.match(line) for line in follower.stdout[:-1]]
    assert all(progress), follower.stdout
    assert [(int(m[1]), int(m[2])) for m in progress] == [(i, i) for i in range(1, 21)]  # none missed, none twice
    assert follower.stdout[-1].startswith('{"published": 20')
    streams = [line for line in proxy.first_requests if line.startswith(f"GET /jobs/{job_id}/stream")]
    assert len(streams) >= 2, proxy.first_requests  # it did reconnect
    assert [line.split(" at ")[0] for line in follower.stderr if line.startswith("[status]")] == [
        "[status] QUEUED", "[status] RUNNING", "[status] COMPLETED"]
