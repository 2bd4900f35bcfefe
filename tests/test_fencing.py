"""Fencing and checkpoints in the job store, against a real Redis.

A supervisor's writes carry its run of the job; once the job is on another run
(or no longer RUNNING) they are refused, and a write retried after a lost reply
is applied once. A run that ends without its job ending leaves a ``restart``
event and marks what it published after its last checkpoint as superseded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrator.errors import StaleRunError
from orchestrator.events import (
    APPEND_REPEATED,
    APPEND_STALE,
    EVENT_INTERIM,
    EVENT_LOG,
    EVENT_RESTART,
    Fence,
)
from orchestrator.reaping import reap_orphans
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import JobStatus as S
from orchestrator.store import Job, JobStore


@pytest.fixture
def store(redis_url: str) -> Iterator[JobStore]:
    settings = Settings.load({"redis_url": redis_url, "namespace": "fence"}, environ={})
    client = connect(settings)
    yield JobStore(client, settings)
    for key in client.scan_iter(match="fence:*"):
        client.delete(key)
    client.close()


def _running(store: JobStore) -> Job:
    job = store.create(program_id="p", backend="aer_simulator", owner="alice", params="{}",
                       log_level="WARNING", max_execution_time=60)
    return store.transition(job.id, S.RUNNING, expect=[S.QUEUED])


def _interims(store: JobStore, job_id: str, live_only: bool = False) -> list[dict]:
    return [e.decoded() for e in store.events.iter(job_id, types=(EVENT_INTERIM,), live_only=live_only)]


def test_each_claim_is_a_new_run_and_a_hand_back_does_not_reuse_its_number(store: JobStore) -> None:
    job = _running(store)
    assert (job.run, job.attempts) == (1, 1)
    store.transition(job.id, S.QUEUED, fields={"attempts": "0"}, run=1)  # handed back: not an attempt
    again = store.transition(job.id, S.RUNNING, expect=[S.QUEUED])
    assert (again.run, again.attempts) == (2, 1)
    assert store.get(job.id).run == 2


def test_writes_of_an_earlier_run_are_refused_and_leave_no_trace(store: JobStore) -> None:
    job = _running(store)
    assert store.events.append(job.id, EVENT_INTERIM, '{"run": 1}', fence=Fence(1, 1)) > 0
    store.transition(job.id, S.QUEUED, run=1)  # the reaper requeued it
    store.transition(job.id, S.RUNNING)  # another worker claimed it: run 2
    before = store.events.read(job.id)
    assert store.events.append(job.id, EVENT_INTERIM, '{"late": 1}', fence=Fence(1, 2)) == APPEND_STALE
    assert store.events.append(job.id, EVENT_LOG, '{"stream": "stdout", "level": null, "text": "x"}',
                               fence=Fence(1, 3)) == APPEND_STALE
    assert store.events.save_checkpoint(job.id, '{"late": true}', Fence(1, 4)) == APPEND_STALE
    assert not store.heartbeat(job.id, 1)
    with pytest.raises(StaleRunError):
        store.transition(job.id, S.COMPLETED, expect=[S.RUNNING], result='"late"', run=1)
    assert not store.record_usage(job.id, "{}", run=1)
    assert store.events.read(job.id) == before
    assert store.events.checkpoint(job.id) is None
    assert store.get(job.id).status is S.RUNNING and store.result(job.id) is None
    # The current run's writes go through.
    assert store.heartbeat(job.id, 2)
    assert store.events.append(job.id, EVENT_INTERIM, '{"run": 2}', fence=Fence(2, 1)) > 0
    done = store.transition(job.id, S.COMPLETED, expect=[S.RUNNING], result='"ok"', run=2)
    assert done.status is S.COMPLETED
    # And once the job has ended, even its own run can add nothing.
    assert store.events.append(job.id, EVENT_INTERIM, '{"after": 1}', fence=Fence(2, 2)) == APPEND_STALE


def test_a_write_retried_after_its_reply_was_lost_is_applied_once(store: JobStore) -> None:
    job = _running(store)
    first = store.events.append(job.id, EVENT_INTERIM, '{"i": 1}', fence=Fence(1, 1))
    assert store.events.append(job.id, EVENT_INTERIM, '{"i": 1}', fence=Fence(1, 1)) == APPEND_REPEATED
    assert store.events.append(job.id, EVENT_INTERIM, '{"i": 2}', fence=Fence(1, 2)) == first + 1
    assert _interims(store, job.id) == [{"i": 1}, {"i": 2}]


def test_events_record_the_run_that_published_them(store: JobStore) -> None:
    job = _running(store)
    store.events.append(job.id, EVENT_INTERIM, '{"i": 1}', fence=Fence(1, 1))
    store.transition(job.id, S.QUEUED, run=1)
    store.transition(job.id, S.RUNNING)
    store.events.append(job.id, EVENT_INTERIM, '{"i": 1}', fence=Fence(2, 1))
    runs = [(e.type, e.run) for e in store.events.read(job.id) if e.type == EVENT_INTERIM]
    assert runs == [(EVENT_INTERIM, 1), (EVENT_INTERIM, 2)]


def test_a_checkpoint_is_saved_with_its_interim_result_and_a_restart_supersedes_only_what_followed(
        store: JobStore) -> None:
    job = _running(store)
    for i in (1, 2):
        store.events.append(job.id, EVENT_INTERIM, json.dumps({"i": i}), fence=Fence(1, i),
                            checkpoint=json.dumps({"done": i}))
    store.events.append(job.id, EVENT_INTERIM, '{"i": 3}', fence=Fence(1, 3))  # published, not checkpointed
    saved = store.events.checkpoint(job.id)
    assert saved is not None and json.loads(saved.state) == {"done": 2} and saved.run == 1
    store.transition(job.id, S.QUEUED, reason="requeued: its worker stopped responding", run=1)
    restart = [e for e in store.events.read(job.id) if e.type == EVENT_RESTART]
    assert len(restart) == 1
    data = restart[0].decoded()
    assert data["run"] == 1 and data["next_run"] == 2 and data["resume"] == "checkpoint"
    assert data["checkpoint_event"] == saved.event and data["reason"] == "requeued: its worker stopped responding"
    assert data["superseded"][0] == saved.event
    # A replay leaves out the interim result the next run will publish again; the log keeps it.
    assert _interims(store, job.id, live_only=True) == [{"i": 1}, {"i": 2}]
    assert _interims(store, job.id) == [{"i": 1}, {"i": 2}, {"i": 3}]
    store.transition(job.id, S.RUNNING)
    store.events.append(job.id, EVENT_INTERIM, '{"i": 3}', fence=Fence(2, 1), checkpoint='{"done": 3}')
    assert _interims(store, job.id, live_only=True) == [{"i": 1}, {"i": 2}, {"i": 3}]
    store.transition(job.id, S.COMPLETED, result='"ok"', run=2)
    assert store.events.checkpoint(job.id) is None  # the job ended: nothing will resume from it


def test_a_run_without_a_checkpoint_of_its_own_has_everything_it_published_superseded(store: JobStore) -> None:
    job = _running(store)
    store.events.append(job.id, EVENT_INTERIM, '{"i": 1}', fence=Fence(1, 1), checkpoint='{"done": 1}')
    store.transition(job.id, S.QUEUED, run=1)
    store.transition(job.id, S.RUNNING)
    store.events.append(job.id, EVENT_INTERIM, '{"i": 2}', fence=Fence(2, 1))  # run 2 dies before checkpointing
    store.transition(job.id, S.QUEUED, run=2)
    restarts = [e.decoded() for e in store.events.read(job.id) if e.type == EVENT_RESTART]
    assert [r["resume"] for r in restarts] == ["checkpoint", "checkpoint"]  # run 1's checkpoint still stands
    assert _interims(store, job.id, live_only=True) == [{"i": 1}]


def test_a_restart_without_any_checkpoint_says_the_program_starts_over(store: JobStore) -> None:
    job = _running(store)
    store.events.append(job.id, EVENT_INTERIM, '{"i": 1}', fence=Fence(1, 1))
    store.transition(job.id, S.QUEUED, run=1)
    restart = next(e.decoded() for e in store.events.read(job.id) if e.type == EVENT_RESTART)
    assert restart["resume"] == "start" and restart["checkpoint_event"] is None
    assert _interims(store, job.id, live_only=True) == []


def test_a_reaper_that_read_an_old_run_cannot_requeue_the_new_one(store: JobStore) -> None:
    """The reaper reads a stale RUNNING job; before it writes, the job is requeued and claimed again."""
    job = _running(store)
    store.redis.zadd(store.keys.running(), {job.id: 0})  # run 1's heartbeat stopped long ago
    stale_view = store.get(job.id)
    store.transition(job.id, S.QUEUED, run=1)
    store.transition(job.id, S.RUNNING)  # run 2, heartbeating now
    with pytest.raises(StaleRunError):
        store.transition(job.id, S.QUEUED, expect=[S.RUNNING], run=stale_view.run)
    assert store.get(job.id).status is S.RUNNING and store.get(job.id).run == 2
    assert reap_orphans(store, lambda _: None) == []  # run 2's heartbeat is fresh
