"""Expensive checks of hostile input, run off the API's request threads within a budget.

Compiling and evaluating a program's JSON Schemas, decoding a job's inputs,
decompressing an archive and compiling its source can each take unbounded time
or memory for input a few kilobytes long. In a gevent API process a CPU-bound
request blocks every other request of that process, ``/health`` included, until
gunicorn kills it. So the API hands these checks to a few checker processes
(:mod:`orchestrator.check_process`, ``QRT_CHECK_PROCESSES`` per API process), started by
exec with a bare environment, and waits for the answer cooperatively:

- time: a check gets ``QRT_CHECK_TIMEOUT_S`` plus ``QRT_CHECK_TIMEOUT_PER_MB_S``
  per MiB of data; past that its process is killed and replaced, and the caller
  gets a 400 naming the limit;
- memory: a checker's address space is capped at its size at rest plus
  ``QRT_CHECK_MEMORY_MB``; a check that needs more gets a 400 naming the limit.

The pool starts on first use, all of it, and is reused; a checker that is
killed is replaced at once. A request waits for a free checker (the pool is the
bound on concurrent checks); time spent starting one does not count against a
check's budget.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.check_process import READY, recv_frame, send_frame
from orchestrator.errors import RequestError, UnavailableError
from orchestrator.settings import ENV_PREFIX, Settings

logger = logging.getLogger(__name__)

#: Longest a request waits for a checker process to be free (or to start: imports take seconds).
WAIT_FOR_CHECKER_S = 60.0
#: Largest reply a checker may send.
MAX_REPLY_BYTES = 4 * 1024 * 1024
_SOURCE_ROOT = str(Path(__file__).resolve().parent.parent)
_MIB = 1024 * 1024


class Checker:
    """A pool of checker processes, started on demand, one check at a time each."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._reset()

    def run(self, check: str, args: dict[str, Any], blob: bytes = b"", *, subject: str) -> Any:
        """The check's result; a RequestError when the input fails it or crosses a limit.

        ``subject`` names what is checked in messages ("the program's spec").

        Raises:
            RequestError: the input is refused (its message, or the limit it crossed).
            UnavailableError: no checker process could be had in time.
        """
        helper = self._take()
        timeout = self.settings.check_timeout_s + self.settings.check_timeout_per_mb_s * len(blob) / _MIB
        header = json.dumps({"check": check, "args": args}).encode()
        try:
            reply = helper.ask(header, blob, timeout)
        except TimeoutError:
            self._discard(helper)
            raise RequestError(
                f"Checking {subject} took longer than {timeout:.1f} s, the limit "
                f"({ENV_PREFIX}CHECK_TIMEOUT_S); simplify it."
            ) from None
        except (EOFError, OSError, ValueError) as exc:
            self._discard(helper)
            logger.warning("a checker process ended while checking %s: %s", subject, exc)
            raise RequestError(
                f"Checking {subject} ended its checker process (more than "
                f"{self.settings.check_memory_mb} MB, the limit ({ENV_PREFIX}CHECK_MEMORY_MB), or a crash)."
            ) from None
        self._release(helper)
        if "limit" in reply:
            raise RequestError(f"Checking {subject}: it {reply['limit']}.")
        if "error" in reply:
            raise RequestError(reply["error"]["message"], reply["error"].get("errors"))
        return reply["ok"]

    def close(self) -> None:
        """Stop every checker process (they also stop by themselves when this process ends)."""
        with self._lock:
            helpers, self._all = list(self._all), set()
        for helper in helpers:
            helper.stop()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: queue.Queue[_Helper] = queue.Queue()
        self._all: set[_Helper] = set()

    def _take(self) -> _Helper:
        with self._lock:
            if self._pid != os.getpid():  # forked (a preloading server): the processes are the parent's
                self._reset()
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            while len(self._all) < self.settings.check_processes:  # the whole pool at once: a
                self._start()  # check that has to be killed then leaves the others ready
        try:
            return self._idle.get(timeout=WAIT_FOR_CHECKER_S)
        except queue.Empty:
            raise UnavailableError("No input checker process is available; try again shortly.") from None

    def _start(self) -> None:
        helper = _Helper.spawn(self.settings)
        self._all.add(helper)
        threading.Thread(target=self._await_ready, args=(helper,), daemon=True, name="checker-start").start()

    def _await_ready(self, helper: _Helper) -> None:
        try:
            helper.sock.settimeout(WAIT_FOR_CHECKER_S)
            if recv_frame(helper.sock, len(READY)) != READY:
                raise ValueError("unexpected greeting")
        except (EOFError, OSError, ValueError) as exc:
            logger.error("a checker process did not start: %s", exc)
            self._discard(helper, replace=False)  # the next check tries again; no start loop
            return
        self._idle.put(helper)

    def _release(self, helper: _Helper) -> None:
        if helper.process.poll() is None:
            self._idle.put(helper)
        else:  # it served its last check (a memory error) and exited
            self._discard(helper)

    def _discard(self, helper: _Helper, *, replace: bool = True) -> None:
        """Stop a checker (out of time or memory, or ended); with ``replace``, start its
        replacement now, so the next check does not wait for one to start (imports take seconds)."""
        helper.stop()
        with self._lock:
            self._all.discard(helper)
            if replace and self._pid == os.getpid() and len(self._all) < self.settings.check_processes:
                self._start()


class _Helper:
    """One checker process and the socket to it."""

    def __init__(self, process: subprocess.Popen, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock

    @classmethod
    def spawn(cls, settings: Settings) -> _Helper:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {
            "PATH": os.defpath,
            "PYTHONPATH": _SOURCE_ROOT,
            "LANG": "C.UTF-8",
            # One thread: the memory cap is per process, and numeric libraries' pools are not needed.
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            f"{ENV_PREFIX}CHECK_MEMORY_MB": str(settings.check_memory_mb),
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.check_process", str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, cwd="/",
            )
        finally:
            theirs.close()
        return cls(process, ours)

    def ask(self, header: bytes, blob: bytes, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        send_frame(self.sock, header)
        send_frame(self.sock, blob)
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        return json.loads(recv_frame(self.sock, MAX_REPLY_BYTES))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.sock.close()
