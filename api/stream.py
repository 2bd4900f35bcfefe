"""``GET /jobs/{id}/stream``: a job's events as resumable Server-Sent Events.

A stream replays the job's event log after the client's resume point
(``Last-Event-ID``, or ``?last_event_id=n`` for clients that cannot set
headers), then relays live events from the process's :class:`~api.relay.Relay`,
and ends after the terminal ``done`` event.

No gap, no duplicate: the client's mailbox is registered with the relay *before*
the log is read. An event appended before the read is in the replay; one
appended after it is PUBLISHed after the registration (append and publish are
one Lua call), so it reaches the mailbox. Overlap is dropped by id (each frame
sent has an id greater than the last one sent); an id that jumps ahead (the
relay missed something) is filled from the log first.

While nothing happens (a job waiting in the queue) a comment line goes out every
``stream_keepalive_s``; the same tick notices a deleted job (the stream just
ends) or a final job whose ``done`` the relay never saw (read from the log).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, request

from api.openapi import Blueprint
from api.relay import OVERFLOW, RESYNC, Frame, Mailbox, Relay
from api.responses import StreamEventSchema
from api.schemas import StreamHeadersSchema, StreamQuerySchema
from api.services import services
from api.visibility import visible_job
from orchestrator.errors import JobNotFoundError, RequestError, UnavailableError
from orchestrator.events import EVENT_DONE, EventLog
from orchestrator.settings import Settings
from orchestrator.store import JobStore

blueprint = Blueprint("stream", __name__, description="A job's events as Server-Sent Events.")

EVENT_STREAM_MIMETYPE = "text/event-stream"
#: Where the process's relay is kept on the app.
RELAY_EXTENSION = "qruntime_relay"
#: Frames joined into one write, at most about this many bytes.
CHUNK_BYTES = 64 * 1024
KEEPALIVE = b": keep-alive\n\n"
TOO_FAR_BEHIND = b": too far behind; reconnect with Last-Event-ID to resume\n\n"
_relay_lock = threading.Lock()


def relay() -> Relay:
    """The app's one relay (created on first use, started in the serving process)."""
    app = current_app
    with _relay_lock:
        found = app.extensions.get(RELAY_EXTENSION)
        if found is None:
            svc = services()
            found = app.extensions[RELAY_EXTENSION] = Relay(svc.redis, svc.store.keys)
    return found


@blueprint.get("/jobs/<job_id>/stream")
@blueprint.arguments(StreamQuerySchema, location="query")
@blueprint.arguments(StreamHeadersSchema, location="headers")
@blueprint.response(200, StreamEventSchema, content_type=EVENT_STREAM_MIMETYPE, description="The job's events, replayed then followed.")
@blueprint.alt_response(204, success=True, description="The client already has every event, done included.")
@blueprint.errors(401, 404, 503)
def stream_job(query: dict[str, Any], headers: dict[str, Any], job_id: str) -> Response:
    """Replay then follow a job's events (see the module docstring for the guarantees)."""
    job = visible_job(job_id)
    after = _resume_point()
    if after > job.event_seq:
        # An id this job never issued (another job's, or another deployment's): following
        # from there would skip everything up to it, ``done`` included.
        raise RequestError(
            f"Last event id {after} is beyond job {job_id}'s last event ({job.event_seq}); "
            "resume from an id this job's stream sent."
        )
    svc = services()
    events = svc.store.events
    if job.status.is_final and not events.read(job_id, after=after, count=1):
        # The client already has everything, ``done`` included: 204 tells an
        # EventSource to stop reconnecting (any other answer would make it retry).
        return Response(status=204)
    hub = relay()
    if not hub.ensure_started():
        raise UnavailableError("The event relay is not connected to Redis; try again shortly.")
    box = hub.subscribe(job_id, svc.settings.stream_client_queue_events, svc.settings.stream_client_queue_bytes)
    follower = StreamFollower(svc.store, svc.settings, job_id, after)

    def generate() -> Iterator[bytes]:
        try:
            yield from follower.run(box)
        finally:
            hub.unsubscribe(box)

    response = Response(generate(), status=200, mimetype=EVENT_STREAM_MIMETYPE)
    response.direct_passthrough = True  # the server iterates generate() itself: no wrapper per chunk
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def _resume_point() -> int:
    """The last event id the client has: the header wins (EventSource updates it on reconnect)."""
    header = request.headers.get("Last-Event-ID")
    raw, name = (header, "Last-Event-ID header") if header not in (None, "") else (
        request.args.get("last_event_id", ""), "last_event_id")
    if raw in (None, ""):
        return 0
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 18:
        raise RequestError(f"{name} must be a non-negative integer event id, not {raw[:40]!r}.")
    return int(raw)


class StreamFollower:
    """Produces one client's bytes: replay, then live events, deduplicated by id.

    Frames available at once (a replay page, a burst of live events) go out
    joined into chunks of up to :data:`CHUNK_BYTES`, one socket write each.
    """

    def __init__(self, store: JobStore, settings: Settings, job_id: str, after: int) -> None:
        self._store = store
        self._events: EventLog = store.events
        self._settings = settings
        self._job_id = job_id
        self.last_sent = after
        self.finished = False  # the stream must end: ``done`` sent, job gone, or client cut off

    def run(self, box: Mailbox) -> Iterator[bytes]:
        yield f"retry: {self._settings.stream_retry_ms}\n\n".encode()
        yield from _chunks(self._catch_up())
        if self.finished:
            return
        if self._job_final_or_gone():
            yield from _chunks(self._catch_up())  # ``done`` was appended with the final status
            return
        keepalive = self._settings.stream_keepalive_s
        while not self.finished:
            items = box.take_all(keepalive)
            if len(items) == 1 and isinstance(items[0], Frame) and items[0].id == self.last_sent + 1:
                yield self._send(items[0])  # the common live case: the relay's bytes, as they are
                continue
            if items:
                yield from _chunks(self._deliver(items))
                continue
            yield KEEPALIVE
            if self._job_final_or_gone():
                yield from _chunks(self._catch_up())
                return

    def _deliver(self, items: list[Frame | object]) -> Iterator[bytes]:
        for item in items:
            if self.finished:
                return
            if item is RESYNC:
                yield from self._catch_up()
            elif item is OVERFLOW:
                self.finished = True
                yield TOO_FAR_BEHIND
            elif isinstance(item, Frame) and item.id > self.last_sent:
                if item.id > self.last_sent + 1:
                    yield from self._catch_up()  # fills the gap, this frame included
                else:
                    yield self._send(item)

    def _catch_up(self) -> Iterator[bytes]:
        """Everything in the log after the last id sent (up to and including ``done``), but the
        interim results a restart superseded (the ``restart`` event after them says which)."""
        for event in self._events.iter(self._job_id, after=self.last_sent, live_only=True):
            yield self._send(Frame.from_event(event))
            if self.finished:
                return

    def _send(self, frame: Frame) -> bytes:
        self.last_sent = frame.id
        if frame.type == EVENT_DONE:
            self.finished = True
        return frame.payload

    def _job_final_or_gone(self) -> bool:
        try:
            return self._store.get(self._job_id).status.is_final
        except JobNotFoundError:
            self.finished = True  # deleted: nothing more will ever come
            return True


def _chunks(frames: Iterator[bytes]) -> Iterator[bytes]:
    """Join consecutive frames into chunks of about ``CHUNK_BYTES``."""
    buffer: list[bytes] = []
    size = 0
    for frame in frames:
        buffer.append(frame)
        size += len(frame)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)
