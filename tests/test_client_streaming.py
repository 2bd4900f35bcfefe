"""The SSE consumer: framing, resume after drops, replay of finished jobs, stopping."""

from __future__ import annotations

import json
import threading

from qruntime.client.http import ApiClient
from qruntime.client.streaming import EventStream, ServerEvent, iter_lines, parse_sse
from tests.harness import Stack, wait_for


def test_lines_split_at_any_terminator_whatever_the_chunking() -> None:
    chunks = [b"id: 1\r", b"\nevent: log\rdata: {\"a\"", b": 1}\n", b"\n: keep-alive\r\n\r\nlast"]
    assert list(iter_lines(chunks)) == ["id: 1", "event: log", 'data: {"a": 1}', "", ": keep-alive", "",
                                        "last"]


def test_frames_skip_comments_and_join_data_lines() -> None:
    lines = ["retry: 1000", "", ": keep-alive", "", "id: 3", "event: interim", "data: {\"x\":", "data: 1}", "",
             "id: 4", "event: done", 'data: {"status": "COMPLETED"}', ""]
    assert list(parse_sse(lines)) == [
        ServerEvent(3, "interim", '{"x":\n1}'),
        ServerEvent(4, "done", '{"status": "COMPLETED"}'),
    ]


def test_a_finished_jobs_stream_replays_every_event_then_ends(stack: Stack) -> None:
    job = stack.submit("publisher", {"count": 4})
    stack.wait_status(job["id"])
    events = list(EventStream(ApiClient(stack.url), job["id"]))
    assert [json.loads(e.data) for e in events if e.type == "interim"] == [{"index": i} for i in range(1, 5)]
    assert events[-1].type == "done"
    assert [e.id for e in events] == list(range(1, len(events) + 1))


def test_resuming_after_an_id_yields_only_later_events(stack: Stack) -> None:
    job = stack.submit("publisher", {"count": 4})
    stack.wait_status(job["id"])
    client = ApiClient(stack.url)
    everything = list(EventStream(client, job["id"]))
    middle = everything[len(everything) // 2].id
    assert list(EventStream(client, job["id"], after=middle)) == [e for e in everything if e.id > middle]
    finished = EventStream(client, job["id"], after=everything[-1].id)
    assert list(finished) == []
    assert finished.finished


def test_close_from_another_thread_stops_a_stream_blocked_on_a_quiet_job(stack: Stack) -> None:
    job = stack.submit("holder")
    stream = EventStream(ApiClient(stack.url), job["id"])
    seen: list[ServerEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    wait_for(lambda: any(e.type == "interim" for e in seen), message="the holder's pid")
    stream.close()
    reader.join(30)
    assert not reader.is_alive()
    assert not stream.finished
    assert ApiClient(stack.url).cancel_job(job["id"])["status"] == "CANCELLED"
