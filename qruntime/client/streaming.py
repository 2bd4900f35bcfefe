"""Consume a job's Server-Sent Events stream, resuming after a dropped connection.

The API's ``GET /jobs/{id}/stream`` sends frames ``id: n`` / ``event: interim|log|
status|done`` / ``data: <JSON text>``, comment lines as keep-alives, and ends after
the ``done`` event; a finished job's stream replays and closes (or answers 204
when the client already has everything). Event ids are the
job's event-log ids (1, 2, …), so a client that reconnects with
``Last-Event-ID: <last id it saw>`` gets exactly the events it missed. This module
turns that into an iterator that never yields an event twice and never skips one,
however often the connection drops, and that another thread can stop at once.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import requests

from qruntime.client.vocabulary import EVENT_DONE

if TYPE_CHECKING:
    from qruntime.client.http import ApiClient

logger = logging.getLogger(__name__)

#: A read that sees nothing (not even a keep-alive comment) for this long means the
#: connection is dead; it is dropped and resumed.
READ_TIMEOUT_S = 75.0
#: How long the API may stay unreachable before streaming gives up.
RECONNECT_WINDOW_S = 60.0
#: Pause before reconnecting: doubles per consecutive failure, from the first to the cap.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0
#: Connections in a row that close cleanly without a single event before the stream
#: is judged broken (the server keeps closing on us) and given up.
MAX_EMPTY_CONNECTIONS = 3


@dataclasses.dataclass(frozen=True)
class ServerEvent:
    """One SSE frame: ``data`` is the JSON text exactly as the server sent it."""

    id: int | None
    type: str
    data: str


class StreamClosed(Exception):
    """Raised inside the reader when :meth:`EventStream.close` interrupts it."""


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into lines at ``\\r\\n``, ``\\n`` or ``\\r`` (the SSE rule).

    Lines are yielded as soon as their terminator arrives, whatever the chunking.
    """
    buffer = b""
    for chunk in chunks:
        if not chunk:
            continue
        buffer += chunk
        while True:
            cut = _line_end(buffer)
            if cut is None:
                break
            end, width = cut
            if width == 1 and buffer[end:end + 1] == b"\r" and end + 1 == len(buffer):
                break  # a lone \r at the end may be the first half of \r\n: wait for more
            yield buffer[:end].decode("utf-8", errors="replace")
            buffer = buffer[end + width:]
    if buffer:
        yield buffer.rstrip(b"\r").decode("utf-8", errors="replace")


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    cr, lf = buffer.find(b"\r"), buffer.find(b"\n")
    if cr == -1 and lf == -1:
        return None
    if cr != -1 and (lf == -1 or cr < lf):
        return (cr, 2) if buffer[cr + 1:cr + 2] == b"\n" else (cr, 1)
    return lf, 1


def parse_sse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """SSE frames from text lines: comments skipped, ``data`` lines joined with ``\\n``."""
    event_id: int | None = None
    event_type = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data or event_type:
                yield ServerEvent(event_id, event_type or "message", "\n".join(data))
            event_id, event_type, data = None, "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event_type = value
        elif field == "id":
            try:
                event_id = int(value)
            except ValueError:
                event_id = None


class EventStream:
    """Iterate one job's events from ``after`` on, reconnecting until ``done`` arrives.

    Args:
        client: the API client (its URL and token are reused on a private session).
        job_id: the job to follow.
        after: the last event id already seen; 0 replays the job's whole log.
        reconnect_window_s: how long the API may stay unreachable before giving up.

    Iteration raises :class:`~qruntime.exceptions.StreamingError` when the
    stream cannot be re-established (``RuntimeJobNotFound`` or
    ``IBMQNotAuthorizedError`` when the job is gone or the token may not see it),
    and simply ends after ``done`` or :meth:`close`.
    """

    def __init__(self, client: ApiClient, job_id: str, after: int = 0, *,
                 reconnect_window_s: float = RECONNECT_WINDOW_S,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.client = client
        self.job_id = job_id
        self.last_event_id = after
        self.finished = False
        self.reconnects = 0
        self._reconnect_window_s = reconnect_window_s
        self._read_timeout_s = read_timeout_s
        self._session = client.stream_session()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._response: requests.Response | None = None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the stream, also from another thread: a blocked read returns at once."""
        self._closed.set()
        with self._lock:
            response = self._response
        if response is not None:
            _interrupt(response)

    def __iter__(self) -> Iterator[ServerEvent]:
        failures = 0
        empty_connections = 0
        down_since: float | None = None
        while not self._closed.is_set():
            try:
                response = self.client.open_stream(self.job_id, self.last_event_id, self._session,
                                                   self._read_timeout_s)
            except Exception as exc:
                # http.py raised it, so qruntime.exceptions (and qiskit) is loaded already.
                from qruntime.exceptions import RequestsApiError, StreamingError

                if not isinstance(exc, RequestsApiError):
                    raise  # the seed's classes: the job is gone, or the token may not see it
                if not exc.retryable:
                    raise StreamingError(f"Cannot stream job {self.job_id}: {exc.detail}") from None
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > self._reconnect_window_s:
                    raise StreamingError(
                        f"Max retries exceeded: could not re-establish the event stream of job "
                        f"{self.job_id} within {self._reconnect_window_s:g} s. Error: {exc.detail}"
                    ) from None
            else:
                down_since = None
                if response.status_code == 204:
                    # The job has ended and we already have everything, ``done`` included.
                    response.close()
                    self.finished = True
                    return
                got_any = False
                with self._lock:
                    self._response = response
                if self._closed.is_set():
                    _interrupt(response)
                try:
                    for event in parse_sse(iter_lines(response.iter_content(chunk_size=None))):
                        if event.id is not None:
                            if event.id <= self.last_event_id:
                                continue  # replayed twice around a reconnect: already delivered
                            self.last_event_id = event.id
                        got_any = True
                        failures = 0
                        yield event
                        if event.type == EVENT_DONE:
                            self.finished = True
                            return
                except (requests.RequestException, OSError, AttributeError, ValueError) as exc:
                    if not self._closed.is_set():
                        logger.debug("event stream of job %s dropped: %s", self.job_id, exc)
                else:
                    empty_connections = 0 if got_any else empty_connections + 1
                    if empty_connections >= MAX_EMPTY_CONNECTIONS:
                        raise StreamingError(
                            f"The event stream of job {self.job_id} keeps closing without a "
                            f"'done' event (after event {self.last_event_id})."
                        )
                finally:
                    with self._lock:
                        self._response = None
                    response.close()
            if self._closed.is_set():
                return
            failures += 1
            self.reconnects += 1
            self._closed.wait(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (failures - 1)))


def _interrupt(response: requests.Response) -> None:
    """Wake a thread blocked reading ``response``: shut its socket down, then close it.

    Closing a file descriptor does not wake a ``recv`` blocked on it in another
    thread on Linux; ``shutdown`` does.
    """
    sock = None
    raw = response.raw
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        fp = getattr(raw, "_fp", None)
        sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        response.close()
    except Exception:  # closing a half-torn connection may complain; it is closed either way
        pass
