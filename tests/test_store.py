"""The job store against a real Redis: transitions, listing, deletion, event ids, budgets."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
import redis

from orchestrator.errors import InvalidTransitionError, JobNotFoundError
from orchestrator.events import EVENT_DONE, EVENT_INTERIM, EVENT_LOG, EVENT_STATUS
from orchestrator.keys import ALL_SCOPE, INDEX_STATES, Keys
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import FINAL_STATUSES, JobStatus
from orchestrator.store import EXPIRY_GRACE_S, Job, JobStore, is_job_id

S = JobStatus



@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(Settings.load({"redis_url": redis_url}, environ={}))
    client.flushdb()
    yield client
    client.close()


def _store(client: redis.Redis, **overrides: object) -> JobStore:
    url = client.connection_pool.connection_kwargs
    settings = Settings.load({"redis_url": f"redis://{url['host']}:{url['port']}/0", **overrides}, environ={})
    return JobStore(client, settings)


@pytest.fixture
def store(client: redis.Redis) -> JobStore:
    return _store(client)


def _create(store: JobStore, *, owner: str = "alice", program_id: str = "prog", params: str = "{}") -> Job:
    return store.create(program_id=program_id, backend="aer_simulator", owner=owner, params=params,
                        log_level="WARNING", max_execution_time=60)


def _finish(store: JobStore, job_id: str, status: JobStatus = S.COMPLETED, result: str = "done") -> Job:
    store.transition(job_id, S.RUNNING)
    return store.transition(job_id, status, result=result, reason=None if status is S.COMPLETED else "why")


# -- create and read ------------------------------------------------------------------


def test_created_job_is_queued_with_a_well_formed_id_and_one_status_event(store: JobStore) -> None:
    job = _create(store, params='{"iterations": 3}')
    assert is_job_id(job.id)
    assert store.get(job.id) == job
    assert job.status is S.QUEUED and job.attempts == 0 and job.started == ""
    events = store.events.read(job.id)
    assert [(e.id, e.type, e.decoded()["status"]) for e in events] == [(1, EVENT_STATUS, "QUEUED")]
    assert json.loads(job.params) == {"iterations": 3}


@pytest.mark.parametrize("job_id", ["nope", "a" * 20, "A" * 20, "a" * 19 + ":", ""])
def test_get_of_an_unknown_or_malformed_id_raises_job_not_found(store: JobStore, job_id: str) -> None:
    with pytest.raises(JobNotFoundError):
        store.get(job_id)
    with pytest.raises(JobNotFoundError):
        store.transition(job_id, S.RUNNING)


def test_an_id_naming_another_key_of_a_real_job_is_not_a_job(store: JobStore) -> None:
    job = _finish(store, _create(store).id)
    for suffix in (":events", ":result"):
        with pytest.raises(JobNotFoundError):
            store.get(job.id + suffix)


# -- transitions ----------------------------------------------------------------------


def test_the_transition_table_is_enforced(store: JobStore) -> None:
    job = _finish(store, _create(store).id)
    assert job.status is S.COMPLETED
    for target in JobStatus:
        with pytest.raises(InvalidTransitionError, match="is COMPLETED and cannot become"):
            store.transition(job.id, target)
    assert store.get(job.id).status is S.COMPLETED
    queued = _create(store)
    for target in (S.COMPLETED, S.CANCELLED_RAN_TOO_LONG, S.QUEUED):
        with pytest.raises(InvalidTransitionError):
            store.transition(queued.id, target)


def test_expect_guards_a_transition_the_table_would_allow(store: JobStore) -> None:
    job = _create(store)
    store.transition(job.id, S.RUNNING)
    with pytest.raises(InvalidTransitionError):
        store.transition(job.id, S.CANCELLED, expect=[S.QUEUED])
    assert store.get(job.id).status is S.RUNNING


def test_claiming_twice_succeeds_once(store: JobStore) -> None:
    job = _create(store)
    claimed = store.transition(job.id, S.RUNNING, expect=[S.QUEUED], fields={"worker": "w1"})
    assert claimed.attempts == 1 and claimed.worker == "w1" and claimed.started
    with pytest.raises(InvalidTransitionError):
        store.transition(job.id, S.RUNNING, expect=[S.QUEUED], fields={"worker": "w2"})
    assert store.get(job.id).worker == "w1"


def test_final_transition_stores_result_reason_timestamps_and_done_event(store: JobStore) -> None:
    job = _create(store)
    store.transition(job.id, S.RUNNING)
    ended = store.transition(job.id, S.FAILED, result="Traceback ...", reason="KeyError: 'x'")
    assert store.get(job.id) == ended
    assert ended.ended and ended.reason == "KeyError: 'x'"
    assert store.result(job.id) == "Traceback ..."
    tail = store.events.read(job.id)[-2:]
    assert [e.type for e in tail] == [EVENT_STATUS, EVENT_DONE]
    assert tail[1].decoded() == {"status": "FAILED", "at": ended.ended, "reason": "KeyError: 'x'",
                                 "result": "Traceback ..."}  # a small result comes with done
    for key in store.keys.job_keys(job.id):
        if key == store.keys.checkpoint(job.id):
            assert not store.redis.exists(key)  # deleted with the job's end: no run resumes from it
            continue
        assert 0 < store.redis.ttl(key) <= store.settings.job_ttl_s + EXPIRY_GRACE_S, key
    assert store.redis.zscore(store.keys.expiry(), job.id) is not None


def test_pending_job_has_no_ttl(store: JobStore) -> None:
    job = _create(store)
    store.transition(job.id, S.RUNNING)
    assert store.redis.ttl(store.keys.job(job.id)) == -1


def test_running_index_follows_the_status(store: JobStore) -> None:
    job = _create(store)
    running = store.keys.running()
    assert store.redis.zscore(running, job.id) is None
    store.transition(job.id, S.RUNNING)
    assert store.redis.zscore(running, job.id) is not None
    store.transition(job.id, S.QUEUED)  # requeued by a reaper
    assert store.redis.zscore(running, job.id) is None
    assert not store.heartbeat(job.id, 1)  # a late heartbeat must not put it back
    assert store.redis.zscore(running, job.id) is None


def test_stale_running_finds_jobs_whose_heartbeat_stopped(store: JobStore) -> None:
    fresh, stale = _create(store), _create(store)
    for job in (fresh, stale):
        store.transition(job.id, S.RUNNING)
    store.redis.zadd(store.keys.running(), {stale.id: 1.0})  # last beat long ago
    assert store.stale_running(60) == [stale.id]


# -- listing ----------------------------------------------------------------------------


@pytest.fixture
def populated(store: JobStore) -> dict[str, list[str]]:
    """alice: 3 of prog-a (1 finished), 2 of prog-b (both finished); bob: 2 of prog-a."""
    ids: dict[str, list[str]] = {"alice-a": [], "alice-b": [], "bob-a": []}
    for _ in range(3):
        ids["alice-a"].append(_create(store, owner="alice", program_id="prog-a").id)
    for _ in range(2):
        ids["alice-b"].append(_create(store, owner="alice", program_id="prog-b").id)
        ids["bob-a"].append(_create(store, owner="bob", program_id="prog-a").id)
    _finish(store, ids["alice-a"][0])
    for job_id in ids["alice-b"]:
        _finish(store, job_id, S.FAILED)
    return ids


def test_list_counts_and_filters_by_owner_program_and_pending(store: JobStore, populated: dict) -> None:
    def listed(**kwargs: object) -> tuple[set[str], int]:
        jobs, total = store.list(limit=100, **kwargs)
        return {j.id for j in jobs}, total

    alice_all = set(populated["alice-a"] + populated["alice-b"])
    assert listed(owner="alice") == (alice_all, 5)
    assert listed(owner=None) == (alice_all | set(populated["bob-a"]), 7)
    assert listed(owner="alice", pending=True) == (set(populated["alice-a"][1:]), 2)
    assert listed(owner="alice", pending=False) == ({populated["alice-a"][0], *populated["alice-b"]}, 3)
    assert listed(owner="alice", program_id="prog-b") == (set(populated["alice-b"]), 2)
    assert listed(owner=None, program_id="prog-a", pending=True) == (
        set(populated["alice-a"][1:] + populated["bob-a"]), 4)
    assert listed(owner="carol") == (set(), 0)


def test_list_pages_with_limit_and_offset_newest_first(store: JobStore, populated: dict) -> None:
    pages = [store.list(owner=None, limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [total for _, total in pages] == [7, 7, 7, 7]
    assert [len(jobs) for jobs, _ in pages] == [3, 3, 1, 0]
    ids = [job.id for jobs, _ in pages for job in jobs]
    assert len(set(ids)) == 7
    created = [job.created for jobs, _ in pages for job in jobs]
    assert created == sorted(created, reverse=True)
    assert store.list(owner=None, limit=0) == ([], 7)


def test_list_forgets_jobs_whose_record_expired(store: JobStore, populated: dict) -> None:
    gone = populated["bob-a"][0]
    store.redis.delete(store.keys.job(gone))  # what a TTL expiry leaves behind
    jobs, total = store.list(owner=None, limit=100)
    assert gone not in {j.id for j in jobs} and total == 6
    assert store.list(owner=None, limit=100)[1] == 6


# -- delete -------------------------------------------------------------------------------


def test_delete_removes_every_key_and_index_entry(store: JobStore) -> None:
    keep = _create(store, owner="alice", program_id="prog")
    for status in (S.QUEUED, S.RUNNING, S.COMPLETED):
        job = _create(store, owner="alice", program_id="prog")
        if status is not S.QUEUED:
            store.transition(job.id, S.RUNNING)
            store.events.append(job.id, EVENT_INTERIM, '{"n": 1}')
            store.events.append(job.id, EVENT_LOG, json.dumps({"stream": "stdout", "level": None, "text": "hi\n"}))
        if status is S.COMPLETED:
            store.transition(job.id, S.COMPLETED, result="All done!")
        store.request_cancel(job.id)
        store.delete(job.id)
        assert [k for k in store.redis.scan_iter(match="*") if job.id.encode() in k] == []
        for key in store.redis.scan_iter(match="*"):
            if store.redis.type(key) == b"zset":
                assert store.redis.zscore(key, job.id) is None, key
        with pytest.raises(JobNotFoundError):
            store.get(job.id)
        # Writers that were still running must not bring it back.
        assert store.events.append(job.id, EVENT_LOG, '{"stream": "stdout", "level": null, "text": "x"}') == 0
        assert not store.heartbeat(job.id, 1)
        assert not store.exists(job.id)
        assert store.redis.zscore(store.keys.running(), job.id) is None
    assert store.list(owner="alice", limit=10) == ([store.get(keep.id)], 1)


def test_delete_of_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        store.delete("b" * 20)


def test_every_index_a_job_enters_is_one_delete_cleans(store: JobStore) -> None:
    job = _finish(store, _create(store, owner="dora", program_id="p1").id)
    indexes = [Keys.owner_scope("dora"), ALL_SCOPE]
    holding = [store.keys.index(scope, state, program)
               for scope in indexes for state in INDEX_STATES for program in (None, "p1")
               if store.redis.zscore(store.keys.index(scope, state, program), job.id) is not None]
    assert len(holding) == 8  # any + finished, per owner and all, with and without program
    store.delete(job.id)
    assert all(store.redis.zscore(key, job.id) is None for key in holding)


# -- events ---------------------------------------------------------------------------------


def test_events_get_ids_one_to_n_in_order(store: JobStore) -> None:
    job = _create(store)
    store.transition(job.id, S.RUNNING)
    appended = [store.events.append(job.id, EVENT_INTERIM, json.dumps({"i": i})) for i in range(5)]
    assert appended == [3, 4, 5, 6, 7]  # 1 QUEUED, 2 RUNNING
    store.transition(job.id, S.COMPLETED, result="ok")
    events = store.events.read(job.id)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events] == [EVENT_STATUS, EVENT_STATUS] + [EVENT_INTERIM] * 5 + [EVENT_STATUS, EVENT_DONE]
    assert [e.decoded()["i"] for e in events if e.type == EVENT_INTERIM] == [0, 1, 2, 3, 4]
    assert store.get(job.id).event_seq == len(events)
    assert [e.id for e in store.events.read(job.id, after=5)] == list(range(6, len(events) + 1))
    assert [e.id for e in store.events.read(job.id, types=(EVENT_INTERIM,), count=2)] == [3, 4]


def test_events_are_published_as_they_are_appended(store: JobStore) -> None:
    job = _create(store)
    listener = store.redis.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(store.keys.channel(job.id))
    try:
        store.events.append(job.id, EVENT_INTERIM, '{"x": [1, 2]}')
        message = None
        for _ in range(100):
            message = listener.get_message(timeout=0.1)
            if message:
                break
        assert message is not None
        from orchestrator.events import Event

        assert Event.from_message(message["data"]) == Event(2, EVENT_INTERIM, '{"x": [1, 2]}')
    finally:
        listener.close()


def test_over_budget_appends_leave_exactly_one_notice_then_are_dropped(client: redis.Redis) -> None:
    store = _store(client, max_events_per_job=3)
    job = _create(store)
    store.transition(job.id, S.RUNNING)
    results = [store.events.append(job.id, EVENT_INTERIM, json.dumps({"i": i})) for i in range(6)]
    results.append(store.events.append(job.id, EVENT_LOG, json.dumps({"stream": "stdout", "level": None, "text": "x\n"})))
    assert results == [3, 4, 5, 6, -1, -1, -1]
    store.transition(job.id, S.COMPLETED, result="ok")  # status events are never budgeted
    events = store.events.read(job.id)
    assert [e.type for e in events] == [EVENT_STATUS, EVENT_STATUS, EVENT_INTERIM, EVENT_INTERIM, EVENT_INTERIM,
                                        EVENT_LOG, EVENT_STATUS, EVENT_DONE]
    notice = events[5].decoded()
    assert notice["stream"] == "qruntime" and "exceeded its event budget" in notice["text"]
    assert store.logs(job.id).count("exceeded its event budget") == 1


def test_byte_budget_counts_payload_bytes(client: redis.Redis) -> None:
    store = _store(client, max_event_bytes_per_job=100)
    job = _create(store)
    payload = json.dumps({"blob": "x" * 40})  # 53 bytes
    assert [store.events.append(job.id, EVENT_INTERIM, payload) for _ in range(3)] == [2, 3, -1]
    assert [e.type for e in store.events.read(job.id)][-1] == EVENT_LOG


def test_logs_join_the_log_events_text(store: JobStore) -> None:
    job = _create(store)
    for text in ("one\n", "two\n"):
        store.events.append(job.id, EVENT_LOG, json.dumps({"stream": "stdout", "level": None, "text": text}))
    store.events.append(job.id, EVENT_INTERIM, '{"not": "a log"}')
    assert store.logs(job.id) == "one\ntwo\n"


def test_final_statuses_all_end_with_a_done_event(store: JobStore) -> None:
    for status in FINAL_STATUSES - {S.COMPLETED}:
        job = _finish(store, _create(store).id, status)
        assert store.events.read(job.id)[-1].type == EVENT_DONE


def test_finished_jobs_past_their_retention_are_deleted_whole(store: JobStore) -> None:
    short = JobStore(store.redis, dataclasses.replace(store.settings, job_ttl_s=0))
    kept = _create(store)
    gone = _create(short)
    for job, owner_store in ((kept, store), (gone, short)):
        owner_store.transition(job.id, S.RUNNING)
        owner_store.transition(job.id, S.COMPLETED, result="ok")
    assert short.delete_expired() == 1
    assert not store.exists(gone.id)
    assert not [k for k in store.redis.scan_iter(match="*", count=1000) if gone.id in k.decode()]
    for key in store.redis.scan_iter(match=store.keys.index_pattern(), count=1000):
        assert store.redis.zscore(key, gone.id) is None
    assert store.exists(kept.id) and store.redis.zscore(store.keys.expiry(), kept.id) is not None
    assert short.delete_expired() == 0


def test_done_carries_a_small_result_and_leaves_a_large_one_to_be_fetched(store: JobStore) -> None:
    from orchestrator.store import INLINE_RESULT_CHARS

    for text, inline in (('{"counts": {"0": 1}}', True), ("x" * (INLINE_RESULT_CHARS + 1), False)):
        job = _create(store)
        store.transition(job.id, S.RUNNING)
        store.transition(job.id, S.COMPLETED, result=text)
        done = store.events.read(job.id)[-1]
        assert done.type == EVENT_DONE and done.decoded()["status"] == "COMPLETED"
        assert done.decoded().get("result") == (text if inline else None)
        assert store.result(job.id) == text
