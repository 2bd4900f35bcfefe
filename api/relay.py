"""One Redis pub/sub listener per API process, fanning job events out to SSE clients.

Every event a job emits is PUBLISHed on its channel (``orchestrator.events``). A
process serving a thousand streams must not open a thousand Redis connections, so
each API process runs exactly one :class:`Relay`: a background thread holding one
connection ``PSUBSCRIBE``d to every job channel.

Fan-out costs the relay the same for one client or ten thousand: each event is
encoded once into a :class:`Frame` and appended to its job's :class:`Feed`, and
one event wakes every stream of the job; each client's :class:`Mailbox` is only
a cursor into the feed, and every client writes the very same bytes object.

The thread is a plain :mod:`threading` thread and the feeds use
:class:`threading.Lock` and :class:`threading.Event`: under gunicorn's gevent
worker (which monkey-patches ``threading`` and ``socket`` before the app is
imported) they are greenlets and gevent primitives; under a threaded server they
are real threads. Nothing here knows which.

The relay never blocks on a client. A mailbox is bounded in events and bytes; a
client that falls that far behind is marked overflowed and its stream ends, and
the client resumes with ``Last-Event-ID`` from the event log. When the Redis
connection drops, events published meanwhile are lost to pub/sub, so after the
re-subscription every feed gets a :data:`RESYNC` marker telling its streams to
re-read the log after the last id they sent. Through Redis Sentinel the listener
also re-subscribes when the sentinels name a new master while its old one still
answers (a manual failover), since publishers have moved on to the new one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import redis

from orchestrator import metrics
from orchestrator.events import Event
from orchestrator.keys import Keys
from orchestrator.redisconn import follows_master

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

#: A feed drops the frames every mailbox has taken at most once per this many appends
#: (a pass over its mailboxes: O(clients) once per this many messages, not per message).
COMPACT_EVERY_FRAMES = 256


class Feed:
    """The live frames of one job in this process, shared by every mailbox following it.

    Appending is O(1) whatever the number of clients: the frame goes into one list
    and one event wakes every waiting stream, each of which then takes the frames
    after its own cursor. The feed keeps at most ``max_events`` frames and
    ``max_bytes`` bytes (but always the newest frame), so a stalled client costs
    bounded memory; frames every mailbox has taken are dropped in passing.
    """

    def __init__(self, job_id: str, max_events: int, max_bytes: int) -> None:
        self.job_id = job_id
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.boxes: set[Mailbox] = set()
        self._lock = threading.Lock()
        self._frames: list[Frame | _Marker] = []
        self._first = 0  # sequence number of _frames[0]
        self._end = 0  # sequence number the next frame gets
        self._first_bytes = 0  # payload bytes appended before _frames[0]
        self._total_bytes = 0  # payload bytes ever appended
        self._compact_at = COMPACT_EVERY_FRAMES  # the sequence number at which to compact next
        self._wakeup = threading.Event()

    def add(self, max_events: int, max_bytes: int) -> Mailbox:
        """A new mailbox that sees every frame appended from now on."""
        with self._lock:
            self.max_events = max(self.max_events, max_events)
            self.max_bytes = max(self.max_bytes, max_bytes)
            box = Mailbox(self.job_id, max_events, max_bytes, feed=self, start=(self._end, self._total_bytes))
            self.boxes.add(box)
        return box

    def remove(self, box: Mailbox) -> bool:
        with self._lock:
            if box not in self.boxes:
                return False
            self.boxes.discard(box)
            return True

    def append(self, item: Frame | _Marker) -> None:
        """Add a frame (or a marker) for every mailbox of the feed and wake their streams."""
        with self._lock:
            self._frames.append(item)
            if isinstance(item, Frame):
                self._total_bytes += len(item.payload)
            self._end += 1
            if self._end >= self._compact_at:
                self._compact()
            if len(self._frames) > self.max_events or self._total_bytes - self._first_bytes > self.max_bytes:
                self._trim_to_bounds()
            wakeup, self._wakeup = self._wakeup, threading.Event()
        wakeup.set()

    def wait(self, position: int, timeout: float) -> None:
        """Block up to ``timeout`` seconds unless a frame past ``position`` exists or arrives.

        The event is read before the position is compared: an append in between sets
        that very event, so no wake-up is lost (with threads as with greenlets).
        """
        wakeup = self._wakeup
        if self._end == position:
            wakeup.wait(timeout)

    def take(self, box: Mailbox) -> list[Frame | _Marker]:
        """The frames after ``box``'s cursor, moving it to the end; [OVERFLOW] once if it fell behind."""
        with self._lock:
            if box.cut:
                return []
            if self.behind(box):
                box.cut = True
                box.position = (self._end, self._total_bytes)
                return [OVERFLOW]
            items = self._frames[box.position[0] - self._first:]
            box.position = (self._end, self._total_bytes)
            return items

    def pending(self, box: Mailbox) -> int:
        return self._end - box.position[0]

    def behind(self, box: Mailbox) -> bool:
        """Has ``box`` lost frames to the bounds, or does it hold more than its own bounds allow?"""
        next_frame, next_bytes = box.position
        if next_frame < self._first:
            return True
        events = self._end - next_frame
        return events > box.max_events or (events > 1 and self._total_bytes - next_bytes > box.max_bytes)

    def _trim_to_bounds(self) -> None:
        frames = self._frames
        drop, held = 0, self._total_bytes - self._first_bytes
        while len(frames) - drop > 1 and (len(frames) - drop > self.max_events or held > self.max_bytes):
            held -= _size(frames[drop])
            drop += 1
        self._drop(drop)

    def _compact(self) -> None:
        """Drop the frames every mailbox still following has taken."""
        cursors = [box.position[0] for box in self.boxes if box.position[0] >= self._first and not box.cut]
        self._drop(min(cursors, default=self._end) - self._first)
        self._compact_at = self._end + COMPACT_EVERY_FRAMES

    def _drop(self, count: int) -> None:
        if count <= 0:
            return
        self._first_bytes += sum(_size(item) for item in self._frames[:count])
        del self._frames[:count]
        self._first += count


def _size(item: Frame | _Marker) -> int:
    return len(item.payload) if isinstance(item, Frame) else 0


class Mailbox:
    """One SSE client's cursor into its job's :class:`Feed`, drained by the stream.

    A mailbox made on its own (``feed=None``) has a feed of its own; the relay's
    mailboxes share one feed per job. Bounds are per client: more than
    ``max_events`` frames, or more than ``max_bytes`` in more than one frame,
    waiting for it and it is cut off (it takes :data:`OVERFLOW` once, then nothing).
    """

    def __init__(
        self,
        job_id: str,
        max_events: int,
        max_bytes: int,
        *,
        feed: Feed | None = None,
        start: tuple[int, int] = (0, 0),
    ) -> None:
        self.job_id = job_id
        self.max_events = max_events
        self.max_bytes = max_bytes
        if feed is None:
            feed = Feed(job_id, max_events, max_bytes)
            feed.boxes.add(self)
        self.feed = feed
        #: (sequence number of the next frame to take, payload bytes appended before it); the feed's lock guards it.
        self.position = start
        #: Cut off for falling behind: OVERFLOW was handed out.
        self.cut = False

    def offer(self, item: Frame | _Marker) -> None:
        """Append to this box's feed: every mailbox of the feed gets it, and nobody ever blocks."""
        self.feed.append(item)

    def take_all(self, timeout: float) -> list[Frame | _Marker]:
        """Everything waiting (oldest first), after up to ``timeout`` seconds for the first item.

        Draining in one go lets a stream write a burst as one chunk: one socket write
        and one context switch per burst instead of per event.
        """
        if not self.cut:
            self.feed.wait(self.position[0], timeout)
        return self.feed.take(self)

    @property
    def overflowed(self) -> bool:
        return self.cut or self.feed.behind(self)

    def __len__(self) -> int:
        """Items :meth:`take_all` would hand out now (an overflowed box holds only OVERFLOW)."""
        if self.cut:
            return 0
        return 1 if self.feed.behind(self) else self.feed.pending(self)


class Relay:
    """The process's single pub/sub listener and its table of feeds by job id."""

    def __init__(self, redis_client: redis.Redis, keys: Keys) -> None:
        self._redis = redis_client
        self._keys = keys
        self._lock = threading.Lock()
        self._feeds: dict[str, Feed] = {}
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
                    self._feeds = {}
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
        with self._lock:
            feed = self._feeds.get(job_id)
            if feed is None:
                feed = self._feeds[job_id] = Feed(job_id, max_events, max_bytes)
            box = feed.add(max_events, max_bytes)
        metrics.STREAMS_OPEN.inc()
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        with self._lock:
            feed = self._feeds.get(box.job_id)
            if feed is not box.feed or not feed.remove(box):
                return
            if not feed.boxes:
                del self._feeds[box.job_id]
        metrics.STREAMS_OPEN.dec()

    def client_count(self) -> int:
        with self._lock:
            return sum(len(feed.boxes) for feed in self._feeds.values())

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
            if not follows_master(self._redis, pubsub.connection):
                # Through Redis Sentinel: a failover's old master may live on for seconds,
                # and what is published meanwhile goes to the new one.
                raise redis.ConnectionError("the Redis master moved")
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
            feed = self._feeds.get(job_id)
        if feed is None:
            return  # nobody here follows this job: do not even parse it
        try:
            frame = Frame.from_event(Event.from_message(payload))
        except (ValueError, KeyError):
            logger.warning("SSE relay ignored a malformed message on %s", name)
            return
        feed.append(frame)  # encoded once; every client of the job writes these same bytes
        metrics.FANOUT_SECONDS.observe(time.perf_counter() - started)

    def _broadcast(self, item: _Marker) -> None:
        with self._lock:
            feeds = list(self._feeds.values())
        for feed in feeds:
            feed.append(item)
