"""One Redis pub/sub listener per API process, fanning job events out to SSE clients.

Every event a job emits is PUBLISHed on its channel (``orchestrator.events``). A
process serving a thousand streams must not open a thousand Redis connections, so
each API process runs exactly one :class:`Relay`: a background thread holding one
connection ``PSUBSCRIBE``d to every job channel, handing each event to the
:class:`Mailbox` of every local client that follows that job.

The thread is a plain :mod:`threading` thread and the mailboxes use
:class:`threading.Condition`: under gunicorn's gevent worker (which monkey-patches
``threading`` and ``socket`` before the app is imported) they are greenlets and
gevent locks; under a threaded server they are real threads. Nothing here knows
which.

The relay never blocks on a client. A mailbox is bounded in events and bytes; a
client that falls that far behind is marked overflowed and its stream ends, and
the client resumes with ``Last-Event-ID`` from the event log. When the Redis
connection drops, events published meanwhile are lost to pub/sub, so after the
re-subscription every mailbox gets a :data:`RESYNC` marker telling its stream to
re-read the log after the last id it sent.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time

import redis

from orchestrator import metrics
from orchestrator.events import Event
from orchestrator.keys import Keys

logger = logging.getLogger(__name__)

#: How long a stream waits for the relay's first subscription before answering 503.
READY_TIMEOUT_S = 10.0
#: How long the listener blocks in one read, so it notices ``stop()`` promptly.
POLL_TIMEOUT_S = 1.0
#: Delay before re-connecting after the pub/sub connection failed (doubles up to the max).
RECONNECT_DELAY_S = 0.1
RECONNECT_DELAY_MAX_S = 5.0
#: Idle time after which the listener PINGs, so a half-open connection is noticed.
PING_INTERVAL_S = 15.0


@dataclasses.dataclass(frozen=True)
class Frame:
    """One event, already encoded as an SSE frame; shared by every client of the job."""

    id: int
    type: str
    payload: bytes

    @classmethod
    def from_event(cls, event: Event) -> Frame:
        return cls(event.id, event.type, encode_event(event))


def encode_event(event: Event) -> bytes:
    """``id:``/``event:``/``data:`` lines of one event.

    ``data`` is the event's JSON text unchanged. JSON from an encoder that indents
    spans lines; each becomes its own ``data:`` line, which an SSE client joins
    with ``\\n`` again, so the text still arrives as written.
    """
    lines = event.data.split("\n")
    body = "".join(f"data: {line}\n" for line in lines)
    return f"id: {event.id}\nevent: {event.type}\n{body}\n".encode()


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


#: The relay re-subscribed after losing its connection: re-read the log.
RESYNC = _Marker("RESYNC")
#: The client fell too far behind: end the stream, the client resumes from the log.
OVERFLOW = _Marker("OVERFLOW")


class Mailbox:
    """A bounded queue of frames for one SSE client, filled by the relay, drained by the stream."""

    def __init__(self, job_id: str, max_events: int, max_bytes: int) -> None:
        self.job_id = job_id
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._items: collections.deque[Frame | _Marker] = collections.deque()
        self._bytes = 0
        self._overflowed = False
        self._cond = threading.Condition(threading.Lock())

    def offer(self, item: Frame | _Marker) -> None:
        """Add without ever blocking the relay; past the bounds the box only holds OVERFLOW."""
        with self._cond:
            if self._overflowed:
                return
            if isinstance(item, Frame):
                size = len(item.payload)
                too_many = len(self._items) >= self._max_events
                too_big = self._items and self._bytes + size > self._max_bytes
                if too_many or too_big:
                    self._overflowed = True
                    self._items.clear()
                    self._bytes = 0
                    self._items.append(OVERFLOW)
                    self._cond.notify()
                    return
                self._bytes += size
            self._items.append(item)
            self._cond.notify()

    def take_all(self, timeout: float) -> list[Frame | _Marker]:
        """Everything waiting (oldest first), after up to ``timeout`` seconds for the first item.

        Draining in one go lets a stream write a burst as one chunk: one socket write
        and one context switch per burst instead of per event.
        """
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            return items

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    def __len__(self) -> int:
        return len(self._items)


class Relay:
    """The process's single pub/sub listener and its table of mailboxes by job id."""

    def __init__(self, redis_client: redis.Redis, keys: Keys) -> None:
        self._redis = redis_client
        self._keys = keys
        self._lock = threading.Lock()
        self._boxes: dict[str, set[Mailbox]] = {}
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.reconnects = 0

    # -- lifecycle --------------------------------------------------------------------

    def ensure_started(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Start the listener in this process if needed; True once it is subscribed.

        Started lazily, on the first stream, so a pre-forking server never shares
        one listener (or its socket) between processes.
        """
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                if self._pid != os.getpid():  # forked: the parent's clients are not ours
                    self._boxes = {}
                self._pid = os.getpid()
                self._ready.clear()
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="qruntime-sse-relay", daemon=True)
                self._thread.start()
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(POLL_TIMEOUT_S * 3)

    # -- clients ----------------------------------------------------------------------

    def subscribe(self, job_id: str, max_events: int, max_bytes: int) -> Mailbox:
        """A new mailbox receiving every event of ``job_id`` the listener sees from now on."""
        box = Mailbox(job_id, max_events, max_bytes)
        with self._lock:
            self._boxes.setdefault(job_id, set()).add(box)
        metrics.STREAMS_OPEN.inc()
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        with self._lock:
            boxes = self._boxes.get(box.job_id)
            if boxes is None or box not in boxes:
                return
            boxes.discard(box)
            if not boxes:
                del self._boxes[box.job_id]
        metrics.STREAMS_OPEN.dec()

    def client_count(self) -> int:
        with self._lock:
            return sum(len(boxes) for boxes in self._boxes.values())

    # -- the listener -----------------------------------------------------------------

    def _run(self) -> None:
        delay = RECONNECT_DELAY_S
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.psubscribe(self._keys.channel_pattern())
                delay = RECONNECT_DELAY_S  # connected: the next failure starts the backoff afresh
                self._listen(pubsub)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("SSE relay lost its Redis connection (%s); reconnecting", exc)
            except Exception:  # never let the one listener of the process die silently
                logger.exception("SSE relay failed; restarting it")
            finally:
                self._ready.clear()
                try:
                    pubsub.close()
                except Exception:  # noqa: S110 - the connection is already broken
                    pass
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RECONNECT_DELAY_MAX_S)
            self.reconnects += 1

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        last_traffic = time.monotonic()
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=POLL_TIMEOUT_S)
            now = time.monotonic()
            if message is None:
                if now - last_traffic > PING_INTERVAL_S:
                    pubsub.ping()
                    last_traffic = now
                continue
            last_traffic = now
            kind = message["type"]
            if kind == "pmessage":
                self._dispatch(message["channel"], message["data"])
            elif kind == "psubscribe":
                # Whatever was published while we were not subscribed is only in the
                # log now: every client re-reads it (a no-op for those who missed nothing).
                self._ready.set()
                self._broadcast(RESYNC)


    def _dispatch(self, channel: bytes | str, payload: bytes | str) -> None:
        started = time.perf_counter()
        name = channel.decode() if isinstance(channel, bytes) else channel
        job_id = self._keys.job_id_from_channel(name)
        with self._lock:
            boxes = list(self._boxes.get(job_id, ()))
        if not boxes:
            return  # nobody here follows this job: do not even parse it
        try:
            frame = Frame.from_event(Event.from_message(payload))
        except (ValueError, KeyError):
            logger.warning("SSE relay ignored a malformed message on %s", name)
            return
        for box in boxes:
            box.offer(frame)
        metrics.FANOUT_SECONDS.observe(time.perf_counter() - started)

    def _broadcast(self, item: _Marker) -> None:
        with self._lock:
            boxes = [box for group in self._boxes.values() for box in group]
        for box in boxes:
            box.offer(item)
