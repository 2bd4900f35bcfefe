"""``RuntimeJob``: one execution of a program, as the seed's client showed it.

Status follows the seed's mapping onto qiskit's ``JobStatus``. Interim results
arrive over the job's SSE stream on a background thread that resumes after a
dropped connection with ``Last-Event-ID``, so a callback sees every message once,
in order. ``result()`` and ``wait_for_final_state()`` wait for the stream's
``done`` event instead of polling; they poll only when no stream can be held.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from qiskit.providers import JobStatus

from qruntime.client.backend import RuntimeBackend
from qruntime.client.decoder import ResultDecoder
from qruntime.client.http import ApiClient
from qruntime.client.streaming import EventStream
from qruntime.client.vocabulary import (
    CANCELLED,
    CANCELLED_RAN_TOO_LONG,
    COMPLETED,
    EVENT_DONE,
    EVENT_INTERIM,
    EVENT_RESTART,
    EVENT_STATUS,
    FAILED,
    QUEUED,
    RESUME_CHECKPOINT,
    RUNNING,
    failure_message,
)
from qruntime.exceptions import (
    IBMQError,
    JobTimeoutError,
    RuntimeInvalidStateError,
    RuntimeJobFailureError,
    RuntimeJobNotFound,
)

logger = logging.getLogger(__name__)

JOB_FINAL_STATES = (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.ERROR)
#: Server status → qiskit JobStatus (the seed's mapping; running too long is an error).
API_TO_JOB_STATUS = {
    QUEUED: JobStatus.QUEUED,
    RUNNING: JobStatus.RUNNING,
    COMPLETED: JobStatus.DONE,
    FAILED: JobStatus.ERROR,
    CANCELLED: JobStatus.CANCELLED,
    CANCELLED_RAN_TOO_LONG: JobStatus.ERROR,
}
#: How long cancel_result_streaming() waits for the streaming thread to stop.
STREAM_JOIN_S = 10.0

Callback = Callable[[str, Any], None]


def api_status_to_job_status(status: str) -> JobStatus:
    """The qiskit ``JobStatus`` of a server status string.

    Raises:
        IBMQError: the server sent a status the client does not know.
    """
    try:
        return API_TO_JOB_STATUS[status.upper()]
    except (KeyError, AttributeError):
        raise IBMQError(f"Unknown status: {status}") from None


@dataclasses.dataclass
class _Streamer:
    """One background stream of a job: its events, thread and consumer."""

    stream: EventStream
    callback: Callback | None
    decoder: type[ResultDecoder]
    thread: threading.Thread | None = None
    ended: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: Exception | None = None


class RuntimeJob:
    """A job of a runtime program. Get one from ``RuntimeService.run``/``job``/``jobs``.

    Args:
        api_client: the REST client of the service the job belongs to.
        job_id: the job's id.
        program_id: the program it runs.
        backend_name: the backend it runs on.
        params: the inputs, already decoded (jobs created by ``run``).
        raw_params: the inputs as the API returned them (decoded on first access).
        creation_date: the API's ``created`` timestamp.
        user_callback: called as ``callback(job_id, interim_result)`` for each interim result.
        result_decoder: decodes interim and final results.
        image: the seed's image option, if one was given.
        api_status: the server status last seen, if known.
        last_event_id: the id of the job's last event when ``api_status`` was read.
    """

    def __init__(self, api_client: ApiClient, job_id: str, program_id: str, *,
                 backend_name: str = "", params: dict[str, Any] | None = None,
                 raw_params: Any = None, creation_date: str | None = None,
                 user_callback: Callback | None = None,
                 result_decoder: type[ResultDecoder] | None = None, image: str = "",
                 api_status: str | None = None, last_event_id: int = 0) -> None:
        self._api = api_client
        self._job_id = job_id
        self._program_id = program_id
        self._backend_name = backend_name
        self._params = params
        self._raw_params = raw_params
        self._creation_date = creation_date
        self._result_decoder = result_decoder or ResultDecoder
        self._image = image
        self._api_status: str | None = None
        self._status = JobStatus.INITIALIZING
        self._last_event_id = last_event_id
        self._error_message: str | None = None
        self._result_text: str | None = None
        self._final_text: str | None = None  # the result (or error) as the ``done`` event carried it
        self._results: dict[type, Any] = {}
        self._lock = threading.Lock()
        self._restarts: dict[int | None, dict[str, Any]] = {}  # by event id
        self._streamer: _Streamer | None = None
        self._stream_unavailable = False
        if api_status:
            self._set_status(api_status)
        if user_callback is not None:
            self.stream_results(user_callback)

    @classmethod
    def from_api(cls, api_client: ApiClient, raw: dict[str, Any]) -> RuntimeJob:
        """A job from the API's job JSON (inputs decoded lazily)."""
        return cls(api_client, raw["id"], (raw.get("program") or {}).get("id", ""),
                   backend_name=raw.get("backend", ""), raw_params=raw.get("params", {}),
                   creation_date=raw.get("created"), api_status=raw.get("status"),
                   image=raw.get("runtime") or "", last_event_id=int(raw.get("last_event_id") or 0))

    def __repr__(self) -> str:
        return f"<RuntimeJob('{self._job_id}', '{self._program_id}', {self._status.name})>"

    # -- identity ---------------------------------------------------------------------

    def job_id(self) -> str:
        return self._job_id

    def backend(self) -> RuntimeBackend:
        return RuntimeBackend(self._backend_name)

    @property
    def program_id(self) -> str:
        return self._program_id

    @property
    def image(self) -> str:
        return self._image

    @property
    def inputs(self) -> dict[str, Any]:
        """The job's inputs, as given to ``run`` or decoded from the server's copy."""
        if self._params is None:
            raw = self._raw_params
            if isinstance(raw, list):
                raw = raw[0] if raw else {}
            text = raw if isinstance(raw, str) else json.dumps(raw if raw is not None else {})
            self._params = ResultDecoder.decode(text)
        return self._params

    @property
    def creation_date(self) -> datetime | None:
        """When the job was created, in the local time zone."""
        if not self._creation_date:
            self._creation_date = self._get().get("created")
        if not self._creation_date:
            return None
        stamp = datetime.fromisoformat(self._creation_date.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.astimezone()

    # -- status -----------------------------------------------------------------------

    def status(self) -> JobStatus:
        """The job's status, asked of the server until it is final."""
        if self._status not in JOB_FINAL_STATES:
            self._apply(self._get())
        return self._status

    def error_message(self) -> str | None:
        """Why the job failed (FAILED or ran too long), else None."""
        self.status()
        if self._status is not JobStatus.ERROR:
            return None
        if self._error_message is None:
            text = self._final_text if self._final_text is not None else self._api.job_results(self._job_id)[1]
            self._error_message = failure_message(self._job_id, self._api_status or "", text)
        return self._error_message

    def attempts(self) -> int:
        """Runs of the job so far that counted against its attempts: more than one means it was
        restarted (its worker was lost), from its last checkpoint or from the start. A run handed
        back by a worker that was stopped does not count; :meth:`restarts` lists every restart."""
        return int(self._get().get("attempts") or 0)

    def restarts(self) -> list[dict[str, Any]]:
        """The restarts this job's stream has reported so far, oldest first: for each, ``run``
        (the run that ended), ``next_run``, ``reason``, ``resume`` ("checkpoint" or "start"),
        ``checkpoint_event`` and ``superseded`` (the event ids whose interim results the next
        run publishes again). Filled while results are streamed (``stream_results``, ``result``)."""
        with self._lock:
            return list(self._restarts.values())

    def _get(self) -> dict[str, Any]:
        return self._api.get_job(self._job_id)

    def _apply(self, raw: dict[str, Any]) -> None:
        with self._lock:
            self._last_event_id = max(self._last_event_id, int(raw.get("last_event_id") or 0))
        self._set_status(raw["status"])

    def _set_status(self, api_status: str) -> None:
        status = api_status_to_job_status(api_status)
        with self._lock:
            if self._status in JOB_FINAL_STATES and status not in JOB_FINAL_STATES:
                return  # an older event replayed after a newer read: final is final
            self._api_status = api_status.upper()
            self._status = status

    # -- waiting and results ------------------------------------------------------------

    def wait_for_final_state(self, timeout: float | None = None, wait: float = 5) -> None:
        """Block until the job has ended.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.
            wait: seconds between status polls, used only when no event stream can be held.

        Raises:
            JobTimeoutError: the job did not end within ``timeout``.
        """
        start = time.monotonic()
        if self.status() in JOB_FINAL_STATES:
            return
        streamer = self._streamer_to_wait_on()
        if streamer is not None:
            remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
            if not streamer.ended.wait(remaining):
                raise JobTimeoutError(f"Timeout while waiting for job {self._job_id}.")
            if self._status in JOB_FINAL_STATES:
                return
        while self.status() not in JOB_FINAL_STATES:
            elapsed = time.monotonic() - start
            if timeout is not None and elapsed >= timeout:
                raise JobTimeoutError(f"Timeout while waiting for job {self._job_id}.")
            time.sleep(wait if timeout is None else min(wait, timeout - elapsed))

    def result(self, timeout: float | None = None, wait: float = 5,
               decoder: type[ResultDecoder] | None = None) -> Any:
        """The job's final result, decoded; waits for the job to end first.

        Raises:
            RuntimeJobFailureError: the job failed or ran too long.
            JobTimeoutError: the job did not end within ``timeout``.
        """
        chosen = decoder or self._result_decoder
        if chosen in self._results:
            return self._results[chosen]
        if self._result_text is None:
            self.wait_for_final_state(timeout, wait)
            if self._status is JobStatus.ERROR:
                raise RuntimeJobFailureError(f"Unable to retrieve job result. {self.error_message()}")
            if self._final_text is not None:  # it came with the job's ``done`` event
                self._result_text = self._final_text
            else:
                finished, text = self._api.job_results(self._job_id)
                if not finished:  # our status raced ahead of the server's: ask again once it agrees
                    self._status = JobStatus.RUNNING
                    return self.result(timeout, wait, decoder)
                self._result_text = text
        value = chosen.decode(self._result_text)
        self._results[chosen] = value
        return value

    def interim_results(self, decoder: type[ResultDecoder] | None = None) -> list[Any]:
        """Every interim result the job has published so far, oldest first, decoded."""
        chosen = decoder or self._result_decoder
        return [chosen.decode(data) for _, data in self._api.job_interim_results(self._job_id)]

    def logs(self) -> str:
        """What the program printed and logged (at the job's log level) so far."""
        try:
            return self._api.job_logs(self._job_id)
        except RuntimeJobNotFound:
            return ""  # the seed's answer for a job without logs

    # -- cancel -----------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the job (a running program is stopped) and stop streaming its results.

        Raises:
            RuntimeInvalidStateError: the job has already ended.
            QiskitRuntimeError: the request failed otherwise.
        """
        raw = self._api.cancel_job(self._job_id)
        self.cancel_result_streaming()
        self._apply(raw)
        if self._status not in JOB_FINAL_STATES:  # 202: still stopping; it will end CANCELLED
            self._set_status(CANCELLED)

    # -- streaming ----------------------------------------------------------------------

    def stream_results(self, callback: Callback, decoder: type[ResultDecoder] | None = None) -> None:
        """Call ``callback(job_id, interim_result)`` for each interim result, in order.

        Runs on a background thread from the job's first message on, so results
        published before this call are delivered too. A callback that raises is
        logged at WARNING and streaming continues.

        Raises:
            RuntimeInvalidStateError: a callback is already streaming, or the job has ended.
        """
        current = self._streamer
        if current is not None and current.callback is not None and not current.ended.is_set():
            raise RuntimeInvalidStateError("A callback function is already streaming results.")
        if self._status in JOB_FINAL_STATES:
            raise RuntimeInvalidStateError("Job already finished.")
        if current is not None and not current.ended.is_set():
            self.cancel_result_streaming()  # a result() watcher: replaced by a full replay
        self._start_streamer(after=0, callback=callback, decoder=decoder or self._result_decoder)

    def cancel_result_streaming(self) -> None:
        """Stop streaming results (no-op when not streaming)."""
        streamer = self._streamer
        if streamer is None or streamer.ended.is_set():
            return
        streamer.stream.close()
        if streamer.thread is not None and streamer.thread is not threading.current_thread():
            streamer.thread.join(STREAM_JOIN_S)

    def _streamer_to_wait_on(self) -> _Streamer | None:
        """The running stream, or a new callback-less one that only watches for ``done``."""
        streamer = self._streamer
        if streamer is not None and not streamer.ended.is_set():
            return streamer
        if self._stream_unavailable:
            return None
        return self._start_streamer(after=self._last_event_id, callback=None, decoder=self._result_decoder)

    def _start_streamer(self, after: int, callback: Callback | None,
                        decoder: type[ResultDecoder]) -> _Streamer:
        streamer = _Streamer(EventStream(self._api, self._job_id, after), callback, decoder)
        streamer.thread = threading.Thread(target=self._consume, args=(streamer,), daemon=True,
                                           name=f"runtime_job-{self._job_id}")
        self._streamer = streamer
        streamer.thread.start()
        return streamer

    def _consume(self, streamer: _Streamer) -> None:
        """The streaming thread: deliver interim results, track status, note ``done``."""
        try:
            for event in streamer.stream:
                if event.id is not None:
                    with self._lock:
                        self._last_event_id = max(self._last_event_id, event.id)
                if event.type == EVENT_INTERIM:
                    if streamer.callback is not None:
                        self._deliver(streamer, event.data)
                elif event.type == EVENT_RESTART:
                    self._note_restart(event.id, event.data)
                elif event.type in (EVENT_STATUS, EVENT_DONE):
                    status = _event_status(event.data)
                    if event.type == EVENT_DONE:
                        self._final_text = _event_field(event.data, "result")  # small results come along
                    if status:
                        self._set_status(status)
        except Exception as exc:
            streamer.error = exc
            self._stream_unavailable = True
            if not streamer.stream.closed:
                logger.warning("Streaming results for job %s stopped: %s", self._job_id, exc)
        finally:
            streamer.ended.set()

    def _note_restart(self, event_id: int | None, data: str) -> None:
        """A run of the job ended and the job went back to the queue: say (once) what that means for its results."""
        try:
            restart = json.loads(data)
        except ValueError:
            restart = {}
        restart = restart if isinstance(restart, dict) else {}
        with self._lock:
            if event_id in self._restarts:
                return  # replayed by a later stream of this job
            self._restarts[event_id] = restart
        reason = restart.get("reason") or "requeued"
        if restart.get("resume") == RESUME_CHECKPOINT:
            logger.info("Job %s went back to the queue (%s); run %s resumes from its last checkpoint, so "
                        "interim results published with a checkpoint do not come again.",
                        self._job_id, reason, restart.get("next_run", "?"))
            return
        logger.warning("Job %s went back to the queue (%s): its program will run again from the start "
                       "(run %s), so interim results it already sent may come again. restarts() lists the "
                       "restarts, attempts() the attempts.", self._job_id, reason, restart.get("next_run", "?"))

    def _deliver(self, streamer: _Streamer, data: str) -> None:
        try:
            assert streamer.callback is not None
            streamer.callback(self._job_id, streamer.decoder.decode(data))
        except Exception:
            logger.warning("An error occurred while streaming results for job %s:\n%s",
                           self._job_id, traceback.format_exc())


def _event_status(data: str) -> str | None:
    return _event_field(data, "status")


def _event_field(data: str, name: str) -> str | None:
    try:
        decoded = json.loads(data)
    except ValueError:
        return None
    return decoded.get(name) if isinstance(decoded, dict) else None
