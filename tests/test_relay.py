"""The per-process relay and a stream's follower, in-process against a real Redis.

These cover what is hard to provoke over HTTP: a client too slow to keep up, the
relay's Redis connection dropping mid-stream, and the relay under a plain
threaded WSGI server (the HTTP tests run it under gunicorn's gevent worker).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import requests
from werkzeug.serving import make_server

from api import create_app
from api.relay import COMPACT_EVERY_FRAMES, OVERFLOW, Frame, Mailbox, Relay
from api.stream import StreamFollower
from orchestrator.events import EVENT_INTERIM
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import JobStatus
from orchestrator.store import JobStore
from tests.harness import wait_for
from tests.sse import SSEParser, read_stream


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.load(
        {"redis_url": redis_url, "stream_keepalive_s": 0.1, "auth": "off"}, environ={}
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[JobStore]:
    client = connect(settings)
    client.flushdb()
    yield JobStore(client, settings)
    client.close()


@pytest.fixture
def relay(store: JobStore) -> Iterator[Relay]:
    hub = Relay(store.redis, store.keys)
    assert hub.ensure_started()
    yield hub
    hub.stop()


def new_job(store: JobStore) -> str:
    return store.create(
        program_id="publisher", backend="aer_simulator", owner="local", params="{}",
        log_level="WARNING", max_execution_time=60,
    ).id


def publish(store: JobStore, job_id: str, first: int, last: int) -> None:
    for index in range(first, last + 1):
        store.events.append(job_id, EVENT_INTERIM, json.dumps({"index": index}))


def finish(store: JobStore, job_id: str) -> None:
    store.transition(job_id, JobStatus.RUNNING)
    store.transition(job_id, JobStatus.COMPLETED, result='"ok"')


def parse(chunks: list[bytes]) -> tuple[list, SSEParser]:
    parser = SSEParser()
    return parser.feed(b"".join(chunks)), parser


def test_mailbox_past_its_bounds_drops_what_it_holds_and_keeps_only_overflow() -> None:
    box = Mailbox("job", max_events=3, max_bytes=1_000)
    for index in range(1, 5):
        box.offer(Frame(index, "interim", b"x" * 10))
    assert box.overflowed
    assert box.take_all(0) == [OVERFLOW]
    box.offer(Frame(5, "interim", b"x"))  # an overflowed box takes nothing more
    assert box.take_all(0) == []
    big = Mailbox("job", max_events=100, max_bytes=25)
    big.offer(Frame(1, "interim", b"x" * 40))  # one event larger than the bound still passes
    assert [f.id for f in big.take_all(0)] == [1]
    big.offer(Frame(2, "interim", b"x" * 20))
    big.offer(Frame(3, "interim", b"x" * 5))
    assert not big.overflowed
    assert [f.id for f in big.take_all(0)] == [2, 3]


def test_three_hundred_clients_of_one_job_each_take_every_event_once_as_one_shared_frame(
    store: JobStore, relay: Relay
) -> None:
    job_id = new_job(store)
    boxes = [relay.subscribe(job_id, max_events=1000, max_bytes=1 << 20) for _ in range(300)]
    assert relay.client_count() == 300
    for first, last in ((1, 40), (41, 45)):  # two rounds: the second starts from where each box stood
        publish(store, job_id, first, last)
        taken: list[list[Frame]] = [[] for _ in boxes]

        def everyone_has_them(taken: list[list[Frame]] = taken, count: int = last - first + 1) -> bool:
            for box, frames in zip(boxes, taken, strict=True):
                # (the job's QUEUED status may still be on its way through the relay: not counted)
                frames.extend(f for f in box.take_all(0) if isinstance(f, Frame) and f.type == EVENT_INTERIM)
            return all(len(frames) >= count for frames in taken)

        wait_for(everyone_has_them, timeout=10, message="every mailbox to take the new frames")
        reference = taken[0]
        events, _ = parse([frame.payload for frame in reference])
        assert [json.loads(e.data)["index"] for e in events] == list(range(first, last + 1))  # each once
        for frames in taken:  # encoded once: every client holds the very same bytes objects
            assert len(frames) == len(reference)
            assert all(mine.payload is theirs.payload for mine, theirs in zip(frames, reference, strict=True))
        assert all(box.take_all(0) == [] for box in boxes)
    for box in boxes:
        relay.unsubscribe(box)
    assert relay.client_count() == 0


def test_a_stalled_client_is_cut_off_while_the_others_keep_everything_in_bounded_memory() -> None:
    fast = Mailbox("job", max_events=2 * COMPACT_EVERY_FRAMES, max_bytes=1 << 20)
    feed = fast.feed
    stalled = feed.add(max_events=2 * COMPACT_EVERY_FRAMES, max_bytes=1 << 20)
    received: list[int] = []
    for index in range(1, 10 * COMPACT_EVERY_FRAMES + 1):
        feed.append(Frame(index, "interim", b"x" * 10))
        received.extend(frame.id for frame in fast.take_all(0))
    assert received == list(range(1, 10 * COMPACT_EVERY_FRAMES + 1))
    assert not fast.overflowed
    assert stalled.overflowed and stalled.take_all(0) == [OVERFLOW] and stalled.take_all(0) == []
    assert len(feed._frames) <= COMPACT_EVERY_FRAMES  # what every live box has taken is dropped


def test_a_client_that_falls_behind_is_cut_off_and_resumes_from_the_log(
    store: JobStore, relay: Relay, settings: Settings
) -> None:
    job_id = new_job(store)
    box = relay.subscribe(job_id, max_events=5, max_bytes=1 << 20)
    stream = StreamFollower(store, settings, job_id, 0).run(box)
    head = [next(stream), next(stream)]  # retry hint, the QUEUED status; then the client stalls

    publish(store, job_id, 1, 20)
    wait_for(lambda: box.overflowed, timeout=10, message="the mailbox to overflow")
    assert len(box) == 1  # memory stayed bounded: the frames were dropped for one OVERFLOW marker
    tail = list(stream)
    relay.unsubscribe(box)

    events, parser = parse(head + tail)
    assert [e.int_id for e in events] == [1]
    assert parser.comments[-1].startswith("too far behind")

    # Roomy this time: a relay running behind may still hand this box the 20 stale frames.
    box = relay.subscribe(job_id, max_events=100, max_bytes=1 << 20)
    resumed = StreamFollower(store, settings, job_id, events[-1].int_id).run(box)
    finisher = threading.Timer(0.2, finish, (store, job_id))
    finisher.start()
    events, _ = parse(list(resumed))
    finisher.join()
    relay.unsubscribe(box)
    assert [json.loads(e.data)["index"] for e in events if e.event == "interim"] == list(range(1, 21))
    assert [e.int_id for e in events] == list(range(2, 2 + len(events)))
    assert events[-1].event == "done"


def test_events_published_while_the_relay_is_disconnected_still_reach_the_client(
    store: JobStore, relay: Relay, settings: Settings
) -> None:
    job_id = new_job(store)
    box = relay.subscribe(job_id, max_events=1000, max_bytes=1 << 20)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(StreamFollower(store, settings, job_id, 0).run(box)))
    reader.start()
    publish(store, job_id, 1, 5)
    wait_for(lambda: len(parse(list(chunks))[0]) >= 6, timeout=10, message="the first events")

    store.redis.client_kill_filter(_type="pubsub")
    publish(store, job_id, 6, 30)  # some of these go out while nobody is subscribed
    wait_for(lambda: relay.reconnects >= 1, timeout=10, message="the relay to reconnect")
    publish(store, job_id, 31, 40)
    finish(store, job_id)
    reader.join(timeout=30)
    relay.unsubscribe(box)

    assert not reader.is_alive()
    events, _ = parse(chunks)
    assert [json.loads(e.data)["index"] for e in events if e.event == "interim"] == list(range(1, 41))
    assert [e.int_id for e in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "done"


def test_streams_work_under_a_plain_threaded_wsgi_server(store: JobStore, settings: Settings) -> None:
    app = create_app({"redis_url": settings.redis_url, "stream_keepalive_s": 0.1, "auth": "off"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        job_id = new_job(store)
        url = f"http://127.0.0.1:{server.server_port}/jobs/{job_id}/stream"
        results: list = [None] * 3

        def follow(slot: int) -> None:
            results[slot] = read_stream(url, timeout=30)

        readers = [threading.Thread(target=follow, args=(i,)) for i in range(3)]
        for thread in readers:
            thread.start()
        wait_for(lambda: "qruntime_relay" in app.extensions and app.extensions["qruntime_relay"].client_count() == 3,
                 timeout=10,
                 message="three streams to subscribe")
        publish(store, job_id, 1, 10)
        finish(store, job_id)
        for thread in readers:
            thread.join(timeout=30)
        for read in results:
            assert [json.loads(e.data)["index"] for e in read.events if e.event == "interim"] == list(range(1, 11))
            assert read.events[-1].event == "done"
        assert requests.get(url, headers={"Last-Event-ID": read.events[-1].id}, timeout=10).status_code == 204
    finally:
        server.shutdown()
        if "qruntime_relay" in app.extensions:
            app.extensions["qruntime_relay"].stop()


def test_a_stream_ends_when_its_job_record_disappears_without_a_done(
    store: JobStore, relay: Relay, settings: Settings
) -> None:
    job_id = new_job(store)
    store.transition(job_id, JobStatus.RUNNING)
    box = relay.subscribe(job_id, max_events=100, max_bytes=1 << 20)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(StreamFollower(store, settings, job_id, 0).run(box)))
    reader.start()
    publish(store, job_id, 1, 3)
    wait_for(lambda: len(parse(list(chunks))[0]) >= 5, timeout=10, message="the first events")

    store.delete(job_id)  # as when a supervisor is still stopping the program: no ``done`` comes

    reader.join(timeout=10)
    relay.unsubscribe(box)
    assert not reader.is_alive()
    events, parser = parse(chunks)
    assert [e.event for e in events] == ["status", "status", "interim", "interim", "interim"]
    assert "keep-alive" in parser.comments
