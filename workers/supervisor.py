"""The supervisor: runs one claimed job in a confined child of the zygote and watches it.

The supervisor is the Celery task's process. It asks the job zygote for a
ready, confined child (``workers.zygote_client``), hands it the job's spec and
the write ends of three pipes, and then owns every Redis write of the job
while the program runs: interim results, log lines, heartbeats, the final
status. It enforces ``max_execution_time`` with its own clock, honours cancel
requests (flag in the store, nudged over the job's control channel), and turns
any way the program can end into exactly one final status with a reason.

Every write carries the job's run as a fence (orchestrator/events.py): once the
job has gone to another worker (this one was cut off and the reaper requeued
it), the writes are refused, and the supervisor stops the program and records
nothing. While Redis cannot be reached at all, writes are retried for
``QRT_STORE_OUTAGE_S`` (orchestrator/outage.py), so a failover does not end a job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import selectors
import signal
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from orchestrator import logs, metrics
from orchestrator.errors import InvalidTransitionError, JobNotFoundError, StaleRunError
from orchestrator.events import APPEND_STALE, EVENT_INTERIM, EVENT_LOG, Fence
from orchestrator.outage import OUTAGE_ERRORS, retrying
from orchestrator.status import FINAL_STATUSES, JobStatus
from orchestrator.store import Job, JobStore
from orchestrator.usage import usage_record
from workers import frames, shutdown
from workers.program_cache import ProgramFiles
from workers.sandbox import CPU_LIMIT_SLACK_S
from workers.usage_completer import completer
from workers.zygote_client import JobHandle, SandboxUnavailableError, program_dir, sealed_spec

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How long the supervisor's loop waits for output before checking clocks and flags.
POLL_INTERVAL_S = 0.05
#: After the program's process exits, how long what it left may keep its pipes open.
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

    def __init__(self, store: JobStore, job: Job, files: ProgramFiles, backend: str,
                 control: redis.client.PubSub | None = None) -> None:
        self.store = store
        self.control = control  # this process's subscriber, kept across jobs (subscribing is per job)
        self.settings = store.settings
        self.job = job
        self.files = files
        self.backend = backend
        self._final: str | None = None
        self._returned: str | None = None
        self._error: str | None = None
        self._oversized: str | None = None
        self._stopping: JobStatus | None = None
        self._exit: dict | None = None
        self._exited = False
        self._concluded = False  # the program sent the frame that ends the job (frames.CONCLUSIVE)
        self._line_buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._started = time.monotonic()
        self._interim_count = 0
        self._recorded_usage: dict | None = None
        self._interim_bytes = 0
        self._log_bytes = 0
        self._write_seq = 0  # this run's writes so far (the fence's sequence number)
        self._saved_checkpoints = 0
        self._lost_run = False  # the job is no longer RUNNING this run: stop, record nothing
        self._checkpoint = (
            self.store.events.checkpoint(job.id) if job.run > 1 else None  # a first run has none
        )

    def run(self) -> JobStatus:
        """Start the program in a ready child, supervise it and record the final status; returns it."""
        spec = json.dumps({
            "params": self.job.params,
            "log_level": self.job.log_level,
            "backend": self.backend,
            "cpu_seconds": self.job.max_execution_time + CPU_LIMIT_SLACK_S,
            "entry": self.files.entry,
            "host_path": self.files.host_path,
            "checkpoint": self._checkpoint.state if self._checkpoint is not None else None,
            "max_checkpoint_bytes": self.settings.max_checkpoint_bytes,
        })
        msg_r, msg_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child_ends = [sealed_spec(spec), msg_w, out_w, err_w, program_dir(self.files.root)]
        handle = None
        try:
            handle = JobHandle(while_waiting=self._beat_while_waiting)
            handle.start(spec_fd=child_ends[0], messages=msg_w, stdout=out_w, stderr=err_w,
                         program=child_ends[4], job_id=self.job.id)
        except SandboxUnavailableError as exc:
            if handle is not None:
                handle.close()
            for fd in (msg_r, out_r, err_r):
                os.close(fd)
            text = f"Job {self.job.id} could not start: {exc}"
            return self._record(Outcome(JobStatus.FAILED, text, str(exc)))
        finally:
            for fd in child_ends:
                os.close(fd)
        self._log(f"qruntime: sandbox: uid {handle.uid}, init pid {handle.pid} (as the worker's host sees them)\n",
                  stream="qruntime", level="INFO")
        self._report_layers(handle.layers)
        if self._checkpoint is not None:
            self._log(f"qruntime: run {self.job.run} resumes from the checkpoint run {self._checkpoint.run} "
                      f"saved after event {self._checkpoint.event}\n", stream="qruntime", level="INFO")
        handed_over = False
        try:
            try:
                outcome = self._watch(handle, {msg_r: "messages", out_r: "stdout", err_r: "stderr"})
            except BaseException:
                # The supervisor cannot go on (Redis lost, a bug): never leave the program
                # running with nobody to enforce its limits or record its end.
                handle.signal(signal.SIGKILL)
                raise
            if self._lost_run:
                return self._give_up()
            status = self._record(outcome)  # the job's end is visible from here on
            handed_over = self._complete_usage(handle, status)
            return status
        finally:
            if not handed_over:
                handle.close()  # the zygote kills whatever of the job is still running
            for fd in (msg_r, out_r, err_r):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _complete_usage(self, handle: JobHandle, status: JobStatus) -> bool:
        """Have what the zygote measures of the job's processes (CPU, peak memory) added to its usage.

        A program that returned is not waited for before its end is recorded (that is
        the critical path); its processes are ended now, and the zygote's measure of
        them follows the final status by milliseconds, taken over by this process's
        usage completer (workers/usage_completer.py) so the task returns at once.
        True when the completer took ``handle`` over.
        """
        if self._exit is not None or self._recorded_usage is None or status not in FINAL_STATUSES:
            return False  # measured before the end was recorded (or nothing to complete)
        handle.signal(signal.SIGKILL)
        completer().add(self.store, self.job, handle, self._recorded_usage, status)
        return True

    # -- writing to the store: fenced, retried through an outage -------------------------

    def _fence(self) -> Fence:
        self._write_seq += 1
        return Fence(self.job.run, self._write_seq)

    def _persist(self, call: Callable[[], T]) -> T:
        return retrying(call, self.settings.store_outage_s, what=f"a write for job {self.job.id}",
                        between=self._beat_while_waiting)

    def _append(self, event_type: str, data: str, checkpoint: str | None = None) -> None:
        fence = self._fence()  # one fence per write: its retries are recognised and applied once
        result = self._persist(lambda: self.store.events.append(
            self.job.id, event_type, data, fence=fence, checkpoint=checkpoint))
        if result == APPEND_STALE:
            self._refused(f"its {event_type} event")
        elif checkpoint is not None:
            self._saved_checkpoints += 1

    def _save_checkpoint(self, state: str) -> None:
        fence = self._fence()
        if self._persist(lambda: self.store.events.save_checkpoint(self.job.id, state, fence)) == APPEND_STALE:
            self._refused("its checkpoint")
        self._saved_checkpoints += 1

    def _checkpointed(self) -> bool:
        """Whether a run of the job (this one or an earlier one) saved a checkpoint to resume from."""
        return self._checkpoint is not None or self._saved_checkpoints > 0

    def _beat(self) -> None:
        if not self._persist(lambda: self.store.heartbeat(self.job.id, self.job.run)):
            self._refused("its heartbeat")

    def _beat_while_waiting(self) -> None:
        """Heartbeat while the zygote readies a child; a failed beat is tried again with the next."""
        try:
            self.store.heartbeat(self.job.id, self.job.run)
        except OUTAGE_ERRORS:
            pass

    def _refused(self, what: str) -> None:
        """The job is no longer RUNNING this run: whatever the program does now, nobody records it."""
        if not self._lost_run:
            self._lost_run = True
            logger.warning("job %s: %s was refused: run %d is no longer the job's current run (it ended, was "
                           "deleted, or went to another worker while this one was cut off); stopping its "
                           "program and recording nothing", self.job.id, what, self.job.run,
                           extra=logs.fields_of(self.job))

    def _give_up(self) -> JobStatus:
        """What to report for a run whose job went on without it."""
        try:
            return self._persist(lambda: self.store.get(self.job.id)).status
        except JobNotFoundError:
            return JobStatus.CANCELLED

    def _report_layers(self, layers: dict[str, str]) -> None:
        """Name, in the job's log, every layer of the sandbox this setup could not put on."""
        for layer, state in layers.items():
            if not state.startswith("on"):
                self._log(f"qruntime: sandbox layer {layer} {state}\n", stream="qruntime", level="WARNING")

    # -- the watch loop ----------------------------------------------------------

    def _watch(self, handle: JobHandle, pipes: dict[int, str]) -> Outcome:
        selector = selectors.DefaultSelector()
        for fd, name in pipes.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, name)
        selector.register(handle.fileno(), selectors.EVENT_READ, "zygote")
        checkpoint_limit = self.settings.max_checkpoint_bytes
        reader = frames.FrameReader(self.settings.max_result_bytes, limits={
            frames.CHECKPOINT: checkpoint_limit,
            frames.INTERIM_CHECKPOINT: self.settings.max_result_bytes + checkpoint_limit + 16,
        })
        own_control = self.control is None
        control = self.store.redis.pubsub(ignore_subscribe_messages=True) if own_control else self.control
        channel = self.store.keys.control(self.job.id)
        self._persist(lambda: control.subscribe(channel))
        started = time.monotonic()
        deadline = started + self.job.max_execution_time
        # The claim has just beaten for it, and a cancel asked meanwhile comes over the control
        # channel: the first look at the store can wait a heartbeat (a short job never pays for it).
        next_beat = started + self.settings.heartbeat_interval_s
        exited_at = 0.0
        try:
            while not self._exited or selector.get_map():
                for key, _ in selector.select(timeout=POLL_INTERVAL_S):
                    if key.data == "zygote":
                        selector.unregister(key.fd)
                        if not self._exited:  # _stop may have read it already
                            self._exit = handle.read_exit()
                            self._exited = True
                        exited_at = time.monotonic()
                    else:
                        self._read(key.fd, key.data, selector, reader)
                if self._lost_run:
                    handle.signal(signal.SIGKILL)  # not ours any more: no grace, nothing to record
                    break
                if self._concluded and self._stopping is None:
                    self._drain(selector)
                    break  # the outcome is known; closing the handle has the zygote end the rest
                now = time.monotonic()
                if self._exited and now - exited_at > DRAIN_AFTER_EXIT_S:
                    break  # every process of the job is gone; nothing more can arrive
                if now >= next_beat:
                    next_beat = now + self.settings.heartbeat_interval_s
                    self._beat()
                    if self._stopping is None and self._cancel_wanted():
                        self._stop(handle, JobStatus.CANCELLED)
                    if self._stopping is None and not self._exited and self._shutdown_due():
                        self._stop(handle, JobStatus.QUEUED)  # handed back (workers/shutdown.py)
                if self._stopping is None and _nudged(control):
                    if self._cancel_wanted():
                        self._stop(handle, JobStatus.CANCELLED)
                if self._stopping is None and not self._exited and now >= deadline:
                    self._stop(handle, JobStatus.CANCELLED_RAN_TOO_LONG)
        finally:
            try:
                if own_control:
                    control.close()
                else:
                    control.unsubscribe(channel)  # a late message of this job only costs the next one a flag check
            except OUTAGE_ERRORS:
                pass  # the subscription went with the connection
            selector.close()
        self._flush_lines()
        return self._judge()

    def _drain(self, selector: selectors.BaseSelector) -> None:
        """Read what the program printed before its last frame (it flushed both streams first)."""
        for key in list(selector.get_map().values()):
            if key.data in self._line_buffers:
                while self._read(key.fd, key.data, selector, None):
                    pass

    def _shutdown_due(self) -> bool:
        """This worker is stopping and the job's grace is over (less the program's own SIGTERM grace,
        so that the program is gone when the grace ends)."""
        deadline = shutdown.deadline(self.settings)
        return deadline is not None and time.time() >= deadline - self.settings.kill_grace_s

    def _cancel_wanted(self) -> bool:
        """A cancel was asked for, or the job was deleted: nobody is left to want its result."""
        return self._persist(lambda: self.store.cancel_requested(self.job.id) or not self.store.exists(self.job.id))

    def _read(self, fd: int, name: str, selector: selectors.BaseSelector, reader: frames.FrameReader | None) -> int:
        """Read what is there now from one pipe; returns how many bytes (0: nothing, or closed)."""
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return 0
        if not data:
            selector.unregister(fd)
            return 0
        if name == "messages":
            for kind, text in reader.feed(data):
                self._on_frame(kind, text)
        else:
            self._on_output(name, data)
        return len(data)

    def _on_frame(self, kind: bytes, text: str) -> None:
        if kind in (frames.INTERIM, frames.INTERIM_CHECKPOINT):
            try:
                message, state = frames.split_checkpoint(text) if kind == frames.INTERIM_CHECKPOINT else (text, None)
            except ValueError:  # only a program writing its own frames gets here
                self._log("qruntime: the program sent a malformed interim result with checkpoint; it was dropped.\n",
                          stream="qruntime", level="ERROR")
                return
            if len(message) > self.settings.max_result_bytes:
                self._drop_oversized("an interim result", len(message), "QRT_MAX_RESULT_BYTES",
                                     self.settings.max_result_bytes)
                return
            if state is not None and not self._checkpoint_fits(state):
                state = None
            self._interim_count += 1
            self._interim_bytes += len(message)
            self._append(EVENT_INTERIM, message, checkpoint=state)
        elif kind == frames.CHECKPOINT:
            if self._checkpoint_fits(text):
                self._save_checkpoint(text)
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
        if kind in frames.CONCLUSIVE:  # RETURN, DONE, ERROR: nothing follows
            self._concluded = True

    def _checkpoint_fits(self, state: str) -> bool:
        """Whether a checkpoint is within QRT_MAX_CHECKPOINT_BYTES (the messenger checks first; this is a
        program that wrote its own frames). One that is not is dropped and the last one kept."""
        size = len(state.encode("utf-8", errors="surrogateescape"))
        if size <= self.settings.max_checkpoint_bytes:
            return True
        self._drop_oversized("a checkpoint", size, "QRT_MAX_CHECKPOINT_BYTES", self.settings.max_checkpoint_bytes)
        return False

    def _drop_oversized(self, what: str, size: int, setting: str, limit: int) -> None:
        self._log(f"qruntime: the program sent {what} of {size} bytes; the limit is {limit} bytes ({setting}). "
                  "It was dropped.\n", stream="qruntime", level="ERROR")

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
        self._log_bytes += len(data)
        self._append(EVENT_LOG, data)

    def _stop(self, handle: JobHandle, why: JobStatus) -> None:
        """SIGTERM the program's process group; SIGKILL the whole job after the grace period."""
        self._stopping = why
        handle.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.kill_grace_s
        while time.monotonic() < deadline and not self._exited:
            if _readable(handle.fileno(), POLL_INTERVAL_S):
                self._exit = handle.read_exit()
                self._exited = True
        handle.signal(signal.SIGKILL)  # the program, or what it left behind

    # -- deciding and recording the end --------------------------------------------

    def _judge(self) -> Outcome:
        limit = self.job.max_execution_time
        if self._stopping is JobStatus.QUEUED and not self._concluded:
            return Outcome(JobStatus.QUEUED, None, f"requeued: {shutdown.REASON}")
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
        if self._exit is not None and self._exit.get("oom"):
            limit_mb = self.settings.job_memory_mb
            text = (f"Job {self.job.id} failed: its processes together passed the job memory limit of "
                    f"{limit_mb} MB (QRT_JOB_MEMORY_MB) and the kernel killed one.")
            return Outcome(JobStatus.FAILED, text, f"exceeded the job memory limit ({limit_mb} MB)")
        if self._concluded and result is not None:
            return Outcome(JobStatus.COMPLETED, result, "")
        code = _describe_exit(None if self._exit is None else int(self._exit["status"]))
        if code is None and result is not None:
            return Outcome(JobStatus.COMPLETED, result, "")
        if code is None:
            code = "exited without returning a result"
        text = f"Job {self.job.id} failed: the program's process {code}."
        return Outcome(JobStatus.FAILED, text, f"program process {code}")

    def _record(self, outcome: Outcome) -> JobStatus:
        usage = self._recorded_usage = self._usage()
        self._observe(outcome.status, usage)
        if outcome.status is JobStatus.QUEUED:
            return self._hand_back(outcome)
        if outcome.status is not JobStatus.COMPLETED and outcome.reason:
            self._log(f"qruntime: job ended {outcome.status.value}: {outcome.reason}\n", stream="qruntime", level="INFO")
        try:
            self._persist(lambda: self.store.finish(
                self.job, outcome.status, result=outcome.result, reason=outcome.reason or None,
                fields={"usage": json.dumps(usage)},
            ))
        except StaleRunError:
            self._refused(f"its final status ({outcome.status.value})")
            return self._give_up()
        except (InvalidTransitionError, JobNotFoundError):
            # Someone else ended it first (reaper, delete); their word stands.
            logger.info("job %s ended elsewhere first (reaper or delete); its run here saw %s", self.job.id,
                        outcome.status.value, extra=logs.fields_of(self.job))
            return outcome.status
        logger.info("job %s ended %s%s (%.3f s)", self.job.id, outcome.status.value,
                    f": {outcome.reason}" if outcome.reason else "", usage["wall_s"], extra=logs.fields_of(self.job))
        return outcome.status


    def _observe(self, status: JobStatus, usage: dict) -> None:
        """This run in the worker's Prometheus metrics (orchestrator/metrics.py)."""
        labels = {"program": self.job.program_id, "backend": self.job.backend}
        metrics.INTERIM_RESULTS.labels(**labels).inc(self._interim_count)
        metrics.INTERIM_BYTES.labels(**labels).inc(self._interim_bytes)
        metrics.LOG_BYTES.labels(**labels).inc(self._log_bytes)
        if status is JobStatus.QUEUED:
            metrics.JOBS_HANDED_BACK.labels(**labels).inc()
            return
        metrics.JOBS_FINISHED.labels(**labels, status=status.value).inc()
        metrics.RUN_SECONDS.labels(**labels, status=status.value).observe(usage["wall_s"])
        if usage["queue_wait_s"] is not None:
            metrics.QUEUE_WAIT_SECONDS.labels(**labels).observe(usage["queue_wait_s"])

    def _usage(self) -> dict:
        """What this run of the job cost (the job record's ``usage``; see orchestrator/usage.py)."""
        exit_info = self._exit or {}
        return usage_record(
            created=self.job.created, started=self.job.started, wall_s=time.monotonic() - self._started,
            cpu_s=exit_info.get("cpu_s"), peak_memory_bytes=exit_info.get("peak_memory_bytes"),
            interim_bytes=self._interim_bytes, log_bytes=self._log_bytes, attempts=self.job.attempts,
        )

    def _hand_back(self, outcome: Outcome) -> JobStatus:
        """QUEUED again, with the attempt count it had before this run (the caller sends the message)."""
        resume = "resume from its last checkpoint" if self._checkpointed() else "run again from the start"
        self._log(f"qruntime: the worker is shutting down; the job goes back to the queue after "
                  f"{self.settings.shutdown_grace_s:g} s of grace and will {resume}\n",
                  stream="qruntime", level="WARNING")
        try:
            self._persist(lambda: self.store.transition(
                self.job.id, JobStatus.QUEUED, expect=[JobStatus.RUNNING], reason=outcome.reason,
                fields={"attempts": str(max(self.job.attempts - 1, 0))}, run=self.job.run))
        except (InvalidTransitionError, JobNotFoundError):  # ended, deleted or taken over meanwhile
            try:
                return self.store.get(self.job.id).status
            except JobNotFoundError:
                return JobStatus.CANCELLED
        return JobStatus.QUEUED


def _nudged(control: redis.client.PubSub) -> bool:
    """A message on the job's control channel (a cancel); an outage only delays it to the next heartbeat."""
    try:
        return bool(control.get_message(timeout=0))
    except OUTAGE_ERRORS:
        return False


def _readable(fd: int, timeout: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _describe_exit(status: int | None) -> str | None:
    """None for a clean exit, else how the process ended, in words."""
    if status is None:
        return "vanished with the worker's job sandbox"
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
