"""The one-call claim and end of a run (orchestrator/lifecycle_scripts.py) against a real Redis:
they write exactly what the general ``transition`` writes, and refuse as it does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrator.errors import InvalidTransitionError, JobNotFoundError, StaleRunError
from orchestrator.keys import ALL_SCOPE, INDEX_STATES, Keys
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import JobStatus
from orchestrator.store import INDEX_SCORE_FIELD, Job, JobStore

S = JobStatus
#: Fields that differ between two jobs by nature (who they are, when things happened).
VARYING = {"id", "created", "updated", "started", "ended", INDEX_SCORE_FIELD}


@pytest.fixture
def store(redis_url: str) -> Iterator[JobStore]:
    settings = Settings.load({"redis_url": redis_url}, environ={})
    client = connect(settings)
    client.flushdb()
    yield JobStore(client, settings)
    client.close()


def _create(store: JobStore) -> Job:
    return store.create(program_id="prog", backend="aer_simulator", owner="alice", params="{}",
                        log_level="WARNING", max_execution_time=60)


def _written(store: JobStore, job_id: str) -> dict:
    """Everything the store holds about a job, with what varies between jobs taken out."""
    r, keys = store.redis, store.keys
    record = {k.decode(): v.decode() for k, v in r.hgetall(keys.job(job_id)).items() if k.decode() not in VARYING}
    events = []
    for event in store.events.read(job_id):
        data = event.decoded()
        data.pop("at", None)
        events.append((event.id, event.type, data, event.run))
    indexes = sorted(
        (scope, state, program or "")
        for scope in (ALL_SCOPE, Keys.owner_scope("alice")) for state in INDEX_STATES for program in (None, "prog")
        if r.zscore(keys.index(scope, state, program), job_id) is not None
    )
    return {
        "record": record, "events": events, "indexes": indexes,
        "running": r.zscore(keys.running(), job_id) is not None,
        "expiry": r.zscore(keys.expiry(), job_id) is not None,
        "result": r.get(keys.result(job_id)),
        "ttls": [r.ttl(k) > 0 for k in keys.job_keys(job_id) if r.exists(k)],
    }


def _same_as_transition(store: JobStore, finish: JobStatus, **kwargs: object) -> None:
    general, fast = _create(store), _create(store)
    store.transition(general.id, S.RUNNING, expect=[S.QUEUED], fields={"worker": "w1"})
    claimed = store.claim(fast.id, "w1")
    assert claimed == store.get(fast.id) and claimed.run == 1 and claimed.status is S.RUNNING
    assert _written(store, fast.id) == _written(store, general.id)
    store.transition(general.id, finish, expect=[S.RUNNING], run=1, **kwargs)
    store.finish(claimed, finish, **kwargs)
    assert _written(store, fast.id) == _written(store, general.id)


def test_claim_and_finish_write_what_transition_writes_for_a_completed_job(store: JobStore) -> None:
    _same_as_transition(store, S.COMPLETED, result='{"energy": -1.1}', fields={"usage": '{"wall_s": 0.1}'})


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED, S.CANCELLED_RAN_TOO_LONG])
def test_claim_and_finish_write_what_transition_writes_for_every_other_end(store: JobStore, status: JobStatus) -> None:
    _same_as_transition(store, status, result=f"Job ended {status.value}", reason="why")


def test_finish_without_a_result_leaves_none(store: JobStore) -> None:
    _same_as_transition(store, S.CANCELLED, reason="cancelled on request")
    done = [json.loads(e.data) for e in store.events.read(store.list(owner=None, limit=1)[0][0].id)][-1]
    assert "result" not in done


def test_a_second_claim_is_refused_as_transition_refuses_it(store: JobStore) -> None:
    job = _create(store)
    store.claim(job.id, "w1")
    with pytest.raises(InvalidTransitionError):
        store.claim(job.id, "w2")
    assert store.get(job.id).worker == "w1" and store.get(job.id).attempts == 1


def test_claim_of_a_missing_or_malformed_job_raises_not_found(store: JobStore) -> None:
    for job_id in ("a" * 20, "not-a-job-id"):
        with pytest.raises(JobNotFoundError):
            store.claim(job_id, "w1")


def test_finish_of_a_run_that_lost_its_job_is_refused_and_writes_nothing(store: JobStore) -> None:
    job = store.claim(_create(store).id, "w1")
    store.transition(job.id, S.QUEUED, expect=[S.RUNNING], run=job.run, reason="worker lost")
    store.claim(job.id, "w2")  # run 2
    before = _written(store, job.id)
    with pytest.raises(StaleRunError):
        store.finish(job, S.COMPLETED, result="late")
    assert _written(store, job.id) == before


def test_a_repeated_finish_counts_once(store: JobStore) -> None:
    """A retry after a lost reply (orchestrator/outage.py) finds its own change applied."""
    job = store.claim(_create(store).id, "w1")
    store.finish(job, S.COMPLETED, result="ok")
    after = _written(store, job.id)
    store.finish(job, S.COMPLETED, result="ok")
    assert _written(store, job.id) == after


def test_finish_of_a_job_ended_by_someone_else_raises(store: JobStore) -> None:
    job = store.claim(_create(store).id, "w1")
    store.transition(job.id, S.CANCELLED, reason="cancelled on request")
    with pytest.raises(InvalidTransitionError):
        store.finish(job, S.FAILED, result="boom", reason="boom")
    assert store.get(job.id).status is S.CANCELLED


def test_finish_of_a_deleted_job_raises_not_found_and_brings_nothing_back(store: JobStore) -> None:
    job = store.claim(_create(store).id, "w1")
    store.delete(job.id)
    with pytest.raises(JobNotFoundError):
        store.finish(job, S.COMPLETED, result="ok")
    assert not any(store.redis.exists(k) for k in store.keys.job_keys(job.id))


def test_finish_refuses_a_status_that_is_not_final(store: JobStore) -> None:
    job = store.claim(_create(store).id, "w1")
    with pytest.raises(ValueError, match="not a final status"):
        store.finish(job, S.QUEUED)
