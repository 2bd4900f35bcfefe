"""The supervisor: runs one claimed job in a forked, confined child and watches it.

The supervisor is the Celery task's process. It forks the child (which inherits
warm qiskit/aer imports and the backend), then owns every Redis write of the
job while the child runs: interim results, log lines, heartbeats, the final
status. It enforces ``max_execution_time`` with its own clock, honours cancel
requests (flag in the store, nudged over the job's control channel), and turns
any way the child can end into exactly one final status with a reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.errors import InvalidTransitionError, JobNotFoundError
from orchestrator.events import EVENT_INTERIM, EVENT_LOG
from orchestrator.programs import Program
from orchestrator.status import JobStatus
from orchestrator.store import Job, JobStore
from workers import frames
from workers.isolation import become_subreaper, kill_strays
from workers.sandbox import CPU_LIMIT_SLACK_S, ChildSpec, run_child

#: How long the supervisor's loop waits for output before checking clocks and flags.
POLL_INTERVAL_S = 0.05
#: After the child exits, how long grandchildren may keep its pipes open.
DRAIN_AFTER_EXIT_S = 1.0
#: Longest line kept whole in a log event; longer output is split.
MAX_LOG_LINE_BYTES = 64 * 1024
_READ_CHUNK = 1 << 16


@dataclasses.dataclass
class Outcome:
    """How the child ended, as far as the supervisor saw."""

    status: JobStatus
    result: str | None
    reason: str


class Supervisor:
    """Runs one job's program to a final status. Create one per job."""

    def __init__(self, store: JobStore, job: Job, program: Program, backend: Any) -> None:
        self.store = store
        self.settings = store.settings
        self.job = job
        self.program = program
        self.backend = backend
        self._final: str | None = None
        self._returned: str | None = None
        self._error: str | None = None
        self._oversized: str | None = None
        self._stopping: JobStatus | None = None
        self._exit_status: int | None = None
        self._line_buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def run(self) -> JobStatus:
        """Fork, supervise and record the final status; returns it."""
        workdir = Path(tempfile.mkdtemp(prefix=f"qrt-{self.job.id}-"))
        msg_r, msg_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        spec = ChildSpec(
            source_path=self.program.source_path,
            params=self.job.params,
            log_level=self.job.log_level,
            workdir=workdir,
            memory_bytes=self.settings.job_memory_mb * 1024 * 1024,
            max_open_files=self.settings.job_max_open_files,
            cpu_seconds=self.job.max_execution_time + CPU_LIMIT_SLACK_S,
            message_fd=msg_w,
            stdout_fd=out_w,
            stderr_fd=err_w,
            isolate_network=self.settings.job_network == "isolated",
        )
        become_subreaper()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            for fd in (msg_r, out_r, err_r):
                os.close(fd)
            run_child(spec, self.backend)
        for fd in (msg_w, out_w, err_w):
            os.close(fd)
        try:
            outcome = self._watch(pid, {msg_r: "messages", out_r: "stdout", err_r: "stderr"})
        except BaseException:
            # The supervisor cannot go on (Redis lost, a bug): never leave the program
            # running with nobody to enforce its limits or record its end.
            _kill_group(pid, signal.SIGKILL)
            _reap(pid)
            raise
        finally:
            kill_strays()  # whatever the program left behind, even outside its process group
            for fd in (msg_r, out_r, err_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(workdir, ignore_errors=True)
        return self._record(outcome)

    # -- the watch loop ----------------------------------------------------------

    def _watch(self, pid: int, pipes: dict[int, str]) -> Outcome:
        selector = selectors.DefaultSelector()
        for fd, name in pipes.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, name)
        reader = frames.FrameReader(self.settings.max_result_bytes)
        control = self.store.redis.pubsub(ignore_subscribe_messages=True)
        control.subscribe(self.store.keys.control(self.job.id))
        started = time.monotonic()
        deadline = started + self.job.max_execution_time
        next_beat = 0.0
        self._exit_status = None
        exited_at = 0.0
        try:
            while selector.get_map():
                for key, _ in selector.select(timeout=POLL_INTERVAL_S):
                    self._read(key.fd, key.data, selector, reader)
                now = time.monotonic()
                if self._exit_status is None:
                    self._poll_exit(pid)
                    exited_at = now
                elif now - exited_at > DRAIN_AFTER_EXIT_S:
                    _kill_group(pid, signal.SIGKILL)  # grandchildren holding the pipes
                    break
                if now >= next_beat:
                    next_beat = now + self.settings.heartbeat_interval_s
                    self.store.heartbeat(self.job.id)
                    if self._stopping is None and self._cancel_wanted():
                        self._stop(pid, JobStatus.CANCELLED)
                if self._stopping is None and control.get_message(timeout=0):
                    if self._cancel_wanted():
                        self._stop(pid, JobStatus.CANCELLED)
                if self._stopping is None and self._exit_status is None and now >= deadline:
                    self._stop(pid, JobStatus.CANCELLED_RAN_TOO_LONG)
            if self._exit_status is None:
                _, self._exit_status = os.waitpid(pid, 0)
        finally:
            control.close()
            selector.close()
        self._flush_lines()
        return self._judge(self._exit_status)

    def _cancel_wanted(self) -> bool:
        """A cancel was asked for, or the job was deleted: nobody is left to want its result."""
        return self.store.cancel_requested(self.job.id) or not self.store.exists(self.job.id)

    def _poll_exit(self, pid: int) -> bool:
        """Reap the child if it has exited; True once it has."""
        if self._exit_status is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self._exit_status = status
        return self._exit_status is not None

    def _read(self, fd: int, name: str, selector: selectors.BaseSelector, reader: frames.FrameReader) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        if not data:
            selector.unregister(fd)
            return
        if name == "messages":
            for kind, text in reader.feed(data):
                self._on_frame(kind, text)
        else:
            self._on_output(name, data)

    def _on_frame(self, kind: bytes, text: str) -> None:
        if kind == frames.INTERIM:
            self.store.events.append(self.job.id, EVENT_INTERIM, text)
        elif kind == frames.FINAL:
            self._final = text
        elif kind == frames.RETURN:
            self._returned = text
        elif kind == frames.ERROR:
            self._error = text
        elif kind == frames.LOG:
            record = json.loads(text)
            self._log(record["text"], stream="log", level=record["level"])
        elif kind == frames.OVERSIZED:
            what, size = text.split(":")
            self._oversized = (
                f"The program sent a message of {size} bytes; the limit is "
                f"{self.settings.max_result_bytes} bytes (QRT_MAX_RESULT_BYTES)."
            )
            self._log(f"qruntime: {self._oversized} It was dropped.\n", stream="qruntime", level="ERROR")

    def _on_output(self, stream: str, data: bytes) -> None:
        buffer = self._line_buffers[stream]
        buffer += data
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                if len(buffer) >= MAX_LOG_LINE_BYTES:
                    cut = MAX_LOG_LINE_BYTES - 1
                else:
                    return
            line = bytes(buffer[: cut + 1])
            del buffer[: cut + 1]
            self._log(line.decode("utf-8", errors="replace"), stream=stream)

    def _flush_lines(self) -> None:
        for stream, buffer in self._line_buffers.items():
            if buffer:
                self._log(buffer.decode("utf-8", errors="replace") + "\n", stream=stream)
                buffer.clear()

    def _log(self, text: str, *, stream: str, level: str | None = None) -> None:
        data = json.dumps({"stream": stream, "level": level, "text": text})
        self.store.events.append(self.job.id, EVENT_LOG, data)

    def _stop(self, pid: int, why: JobStatus) -> None:
        """SIGTERM the program's process group, then SIGKILL after the grace period."""
        self._stopping = why
        _kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.kill_grace_s
        while time.monotonic() < deadline:
            if self._poll_exit(pid):
                break
            time.sleep(POLL_INTERVAL_S)
        _kill_group(pid, signal.SIGKILL)  # the child, or what it left behind

    # -- deciding and recording the end --------------------------------------------

    def _judge(self, exit_status: int | None) -> Outcome:
        limit = self.job.max_execution_time
        if self._stopping is JobStatus.CANCELLED_RAN_TOO_LONG:
            return Outcome(
                JobStatus.CANCELLED_RAN_TOO_LONG,
                f"Job {self.job.id} ran longer than its maximum execution time of {limit} s and was stopped.",
                f"ran longer than max_execution_time ({limit} s)",
            )
        if self._stopping is JobStatus.CANCELLED:
            return Outcome(JobStatus.CANCELLED, self._final, "cancelled on request")
        if self._error is not None:
            return Outcome(JobStatus.FAILED, self._error, _first_line_of_error(self._error))
        if self._oversized is not None:
            return Outcome(JobStatus.FAILED, self._oversized, "result too large")
        result = self._returned if self._returned is not None else self._final
        code = _describe_exit(exit_status)
        if code is None and result is not None:
            return Outcome(JobStatus.COMPLETED, result, "")
        if code is None:
            code = "exited without returning a result"
        text = f"Job {self.job.id} failed: the program's process {code}."
        return Outcome(JobStatus.FAILED, text, f"program process {code}")

    def _record(self, outcome: Outcome) -> JobStatus:
        if outcome.status is not JobStatus.COMPLETED and outcome.reason:
            self._log(f"qruntime: job ended {outcome.status.value}: {outcome.reason}\n", stream="qruntime", level="INFO")
        try:
            self.store.transition(
                self.job.id,
                outcome.status,
                expect=[JobStatus.RUNNING],
                result=outcome.result,
                reason=outcome.reason or None,
            )
        except (InvalidTransitionError, JobNotFoundError):
            # Someone else ended it first (reaper, delete); their word stands.
            pass
        return outcome.status


def _kill_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped by the watch loop
        pass


def _describe_exit(status: int | None) -> str | None:
    """None for a clean exit, else how the process ended, in words."""
    if status is None:
        return "vanished"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        hint = {
            "SIGSEGV": " (segmentation fault)",
            "SIGKILL": " (killed: out of memory, or a CPU time limit)",
            "SIGXCPU": " (CPU time limit)",
            "SIGABRT": " (aborted)",
            "SIGBUS": " (bus error)",
        }.get(name, "")
        return f"was killed by signal {name}{hint}"
    code = os.WEXITSTATUS(status)
    return None if code == 0 else f"exited with code {code} before returning a result"


def _first_line_of_error(traceback_text: str) -> str:
    lines = [line for line in traceback_text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "the program raised an exception"
