"""A job's life when something interrupts it: cancel, time limit, dead worker, duplicates.

Each test drives real processes: the session ``stack`` for cancel, the time
limit and duplicate delivery; a private :class:`Stack` where a worker must be
SIGKILLed, so the shared one stays healthy.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.events import EVENT_INTERIM, EVENT_LOG
from orchestrator.reaping import reap_orphans
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.status import JobStatus
from orchestrator.store import Job, JobStore
from qruntime.localredis import LocalRedis
from tests.harness import Stack, job_processes, sandbox_of, wait_for
from workers.celery_app import TASK_RUN_JOB, make_celery

#: Generous bound for a short job on a busy 2-core machine.
JOB_DEADLINE_S = 60.0
#: kombu's Redis transport: the queue list and the hash of delivered-but-unacked messages.
BROKER_QUEUE = "qruntime.aer"
BROKER_UNACKED = "unacked"


def _interim(stack: Stack, job_id: str) -> list[dict]:
    response = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _cancel(stack: Stack, job_id: str) -> requests.Response:
    return stack.http.post(f"{stack.url}/jobs/{job_id}/cancel", timeout=60)


def _pid_of_holder(stack: Stack, job_id: str) -> tuple[int, int]:
    """The sandbox (uid, init pid) of a ``holder`` job, once the program is running."""
    wait_for(lambda: _interim(stack, job_id), timeout=JOB_DEADLINE_S, message=f"job {job_id} to publish its pid")
    return sandbox_of(stack, job_id)


def _process_gone(sandbox: tuple[int, int]) -> bool:
    """No process of the job is left on the host."""
    return not job_processes(*sandbox)


def _broker_drained(stack: Stack) -> bool:
    """Every message was taken from the queue and acknowledged."""
    return stack.redis.llen(BROKER_QUEUE) == 0 and stack.redis.hlen(BROKER_UNACKED) == 0


# -- the time limit -----------------------------------------------------------------


def test_job_over_its_max_execution_time_is_stopped_and_the_worker_runs_the_next(stack: Stack) -> None:
    job = stack.submit("forever", max_execution_time=2)
    assert job["cost"] == 2
    final = stack.wait_status(job["id"], timeout=30)
    assert final["status"] == "CANCELLED - RAN TOO LONG"
    assert "max_execution_time (2 s)" in final["reason"]
    assert "maximum execution time of 2 s" in stack.result_text(job["id"])
    assert _interim(stack, job["id"])  # it did run and publish before being stopped
    follow_up = stack.submit("echo", {"after": "timeout"})
    assert stack.wait_status(follow_up["id"], timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"


# -- cancel -----------------------------------------------------------------------------


def test_cancel_of_queued_job_is_immediate_and_the_program_never_runs(stack: Stack) -> None:
    """Both worker slots are held by running jobs, so the third job stays QUEUED."""
    holders = [stack.submit("holder")["id"] for _ in range(2)]
    pids = [_pid_of_holder(stack, job_id) for job_id in holders]
    waiting = stack.submit("echo", {"should": "never run"})
    assert stack.job(waiting["id"])["status"] == "QUEUED"

    response = _cancel(stack, waiting["id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["reason"] == "cancelled on request"

    for job_id in holders:  # free the slots: the worker now receives the cancelled job's message
        assert _cancel(stack, job_id).json()["status"] == "CANCELLED"
    for pid in pids:
        wait_for(lambda pid=pid: _process_gone(pid), timeout=30, message=f"holder child {pid} to exit")
    wait_for(lambda: _broker_drained(stack), timeout=JOB_DEADLINE_S, message="the broker queue to drain")

    after = stack.job(waiting["id"])
    assert after["status"] == "CANCELLED"
    assert after["attempts"] == 0 and after["started"] is None
    assert stack.store.events.read(waiting["id"], types=(EVENT_INTERIM, EVENT_LOG)) == []
    assert stack.result_text(waiting["id"]) == ""


def test_cancel_of_running_job_stops_its_child(stack: Stack) -> None:
    job_id = stack.submit("holder")["id"]
    pid = _pid_of_holder(stack, job_id)
    assert stack.job(job_id)["status"] == "RUNNING"
    pending = stack.http.get(f"{stack.url}/jobs/{job_id}/results", timeout=30)
    assert pending.status_code == 204 and pending.headers["X-Job-Status"] == "RUNNING"
    response = _cancel(stack, job_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "CANCELLED" and body["reason"] == "cancelled on request"
    assert body["ended"] is not None
    wait_for(lambda: _process_gone(pid), timeout=30, message=f"child {pid} to exit")


def test_cancel_of_finished_job_is_a_conflict(stack: Stack) -> None:
    job_id = stack.submit("echo", {"x": 1})["id"]
    assert stack.wait_status(job_id, timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"
    response = _cancel(stack, job_id)
    assert response.status_code == 409
    envelope = response.json()
    assert envelope["code"] == 409 and envelope["status"] == "Conflict"
    assert "already ended (COMPLETED)" in envelope["message"]
    assert stack.job(job_id)["status"] == "COMPLETED"


def test_delete_of_running_job_stops_it_and_removes_it(stack: Stack) -> None:
    job_id = stack.submit("holder")["id"]
    pid = _pid_of_holder(stack, job_id)
    response = stack.http.delete(f"{stack.url}/jobs/{job_id}", timeout=60)
    assert response.status_code == 204, response.text
    wait_for(lambda: _process_gone(pid), timeout=30, message=f"child {pid} to exit")
    assert stack.http.get(f"{stack.url}/jobs/{job_id}", timeout=30).status_code == 404
    # The supervisor finished after the record was gone: it must not have recreated keys.
    wait_for(lambda: stack.redis.zscore(stack.store.keys.running(), job_id) is None, timeout=30,
             message="the running index to forget the job")
    assert [k for k in stack.redis.scan_iter(match="*", count=1000) if job_id in k.decode()] == []


# -- duplicate delivery ----------------------------------------------------------------


def test_the_same_message_delivered_twice_runs_the_program_once(stack: Stack) -> None:
    job = stack.submit("publisher", {"count": 1, "interval": 0.5})
    celery = make_celery(stack.settings)
    celery.send_task(TASK_RUN_JOB, args=[job["id"]], queue=BROKER_QUEUE)  # the duplicate
    final = stack.wait_status(job["id"], timeout=JOB_DEADLINE_S)
    wait_for(lambda: _broker_drained(stack), timeout=JOB_DEADLINE_S, message="both deliveries to be consumed")
    final = stack.job(job["id"])
    assert final["status"] == "COMPLETED"
    assert final["attempts"] == 1
    assert [m["data"] for m in _interim(stack, job["id"])] == [{"index": 1}]
    assert stack.result_text(job["id"]) == "published 1"


# -- a worker killed mid-job -------------------------------------------------------------


@pytest.fixture
def private_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack of its own, API only; settings come from indirect parametrization."""
    own = Stack(**getattr(request, "param", {}))
    try:
        own.start_api()
        yield own
    finally:
        own.stop()


def _kill_worker_mid_job(stack: Stack) -> tuple[str, str]:
    """Run a sleeper on worker A, SIGKILL A's whole process group, start worker B.

    Returns the job id and the name worker A recorded on the job.
    """
    worker_a = stack.start_worker(concurrency=1)
    job_id = stack.submit("sleeper", {"seconds": 3})["id"]
    wait_for(lambda: _interim(stack, job_id), timeout=JOB_DEADLINE_S, message="the sleeper to start")
    lost_worker = stack.store.get(job_id).worker
    assert lost_worker
    stack.kill(worker_a)
    assert stack.job(job_id)["status"] == "RUNNING"  # nobody has noticed yet
    stack.start_worker(concurrency=1)
    return job_id, lost_worker


def test_job_whose_pool_process_dies_is_run_again_by_the_same_worker(stack: Stack) -> None:
    """What the kernel's OOM killer does: only the supervising pool process dies.

    Celery redelivers the message (reject_on_worker_lost), the claim refuses it
    because the job is still RUNNING, and the reaper requeues the orphan.
    """
    job_id = stack.submit("sleeper", {"seconds": 1})["id"]
    wait_for(lambda: _interim(stack, job_id), timeout=JOB_DEADLINE_S, message="the sleeper to start")
    supervisor_pid = int(stack.store.get(job_id).worker.rsplit(":", 1)[1])
    os.kill(supervisor_pid, signal.SIGKILL)
    final = stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
    assert final["status"] == "COMPLETED", final
    assert final["attempts"] == 2
    assert not stack.store.get(job_id).worker.endswith(f":{supervisor_pid}")  # a fresh pool process


@pytest.mark.parametrize("private_stack", [{"max_attempts": 2}], indirect=True)
def test_job_of_a_killed_worker_is_requeued_and_completes_on_another(private_stack: Stack) -> None:
    job_id, lost_worker = _kill_worker_mid_job(private_stack)
    final = private_stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
    assert final["status"] == "COMPLETED", final
    assert final["attempts"] == 2
    assert private_stack.store.get(job_id).worker != lost_worker
    statuses = [e.decoded()["status"] for e in private_stack.store.events.read(job_id, types=("status",))]
    assert statuses == ["QUEUED", "RUNNING", "QUEUED", "RUNNING", "COMPLETED"]


@pytest.mark.parametrize("private_stack", [{"max_attempts": 1}], indirect=True)
def test_job_of_a_killed_worker_fails_naming_it_when_no_attempts_are_left(private_stack: Stack) -> None:
    job_id, lost_worker = _kill_worker_mid_job(private_stack)
    final = private_stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
    assert final["status"] == "FAILED", final
    assert final["attempts"] == 1
    assert lost_worker in final["reason"]
    assert "stopped responding" in final["reason"]
    assert "QRT_MAX_ATTEMPTS=1" in private_stack.result_text(job_id)


@pytest.mark.parametrize("private_stack", [{"cancel_wait_s": 0}], indirect=True)
def test_delete_that_does_not_wait_for_the_program_still_stops_it(private_stack: Stack) -> None:
    """With no wait, the record is gone before the supervisor reads the cancel flag."""
    private_stack.start_worker(concurrency=1)
    job_id = private_stack.submit("holder")["id"]
    pid = _pid_of_holder(private_stack, job_id)
    response = private_stack.http.delete(f"{private_stack.url}/jobs/{job_id}", timeout=60)
    assert response.status_code == 204, response.text
    wait_for(lambda: _process_gone(pid), timeout=30, message=f"child {pid} of the deleted job to exit")
    follow_up = private_stack.submit("echo", {"slot": "free"})  # the only slot is free again
    assert private_stack.wait_status(follow_up["id"], timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"
    assert not private_stack.store.exists(job_id)


# -- the reaper's decisions, against a real Redis ------------------------------------------


@pytest.fixture(scope="module")
def reaper_redis_url() -> Iterator[str]:
    with LocalRedis() as server:
        yield server.url


def _reaper_store(url: str, **overrides: object) -> JobStore:
    settings = Settings.load({"redis_url": url, "heartbeat_stale_s": 10, **overrides}, environ={})
    client = connect(settings)
    client.flushdb()
    return JobStore(client, settings)


def _orphan(store: JobStore, *, attempts: int = 1, cancel: bool = False) -> str:
    """A RUNNING job on worker 'lost-host:42' whose last heartbeat was long ago."""
    job = store.create(program_id="echo", backend="aer_simulator", owner="alice", params="{}",
                       log_level="WARNING", max_execution_time=60)
    for _ in range(attempts):
        store.transition(job.id, JobStatus.RUNNING, fields={"worker": "lost-host:42"})
        if _ < attempts - 1:
            store.transition(job.id, JobStatus.QUEUED)
    if cancel:
        store.request_cancel(job.id)
    store.redis.zadd(store.keys.running(), {job.id: 1.0})
    return job.id


def test_reaper_requeues_an_orphan_with_attempts_left(reaper_redis_url: str) -> None:
    store = _reaper_store(reaper_redis_url, max_attempts=2)
    job_id = _orphan(store)
    requeued: list[Job] = []
    assert reap_orphans(store, requeued.append) == [(job_id, JobStatus.QUEUED)]
    assert [j.id for j in requeued] == [job_id]
    job = store.get(job_id)
    assert job.status is JobStatus.QUEUED
    assert job.reason == "requeued: its worker (lost-host:42) stopped responding"
    assert store.stale_running(0) == []
    assert reap_orphans(store, requeued.append) == []  # nothing left to settle


def test_reaper_fails_an_orphan_out_of_attempts_naming_its_worker(reaper_redis_url: str) -> None:
    store = _reaper_store(reaper_redis_url, max_attempts=2)
    job_id = _orphan(store, attempts=2)
    requeued: list[Job] = []
    assert reap_orphans(store, requeued.append) == [(job_id, JobStatus.FAILED)]
    assert requeued == []
    job = store.get(job_id)
    assert job.status is JobStatus.FAILED and "lost-host:42" in job.reason
    assert "QRT_MAX_ATTEMPTS=2" in store.result(job_id)


def test_reaper_cancels_an_orphan_whose_cancel_was_asked(reaper_redis_url: str) -> None:
    store = _reaper_store(reaper_redis_url)
    job_id = _orphan(store, cancel=True)
    assert reap_orphans(store, lambda job: None) == [(job_id, JobStatus.CANCELLED)]
    assert store.get(job_id).status is JobStatus.CANCELLED


def test_reaper_leaves_jobs_with_a_fresh_heartbeat_alone(reaper_redis_url: str) -> None:
    store = _reaper_store(reaper_redis_url)
    job_id = _orphan(store)
    assert store.heartbeat(job_id, store.get(job_id).run)
    assert reap_orphans(store, lambda job: None) == []
    assert store.get(job_id).status is JobStatus.RUNNING


def test_reaper_forgets_running_entries_of_deleted_jobs(reaper_redis_url: str) -> None:
    store = _reaper_store(reaper_redis_url)
    ghost = "c" * 20
    store.redis.zadd(store.keys.running(), {ghost: 1.0})
    assert reap_orphans(store, lambda job: None) == []
    assert store.redis.zscore(store.keys.running(), ghost) is None


def test_reaper_fails_an_orphan_it_cannot_requeue(reaper_redis_url: str) -> None:
    store = _reaper_store(reaper_redis_url, max_attempts=2)
    job_id = _orphan(store)

    def broker_down(job: Job) -> None:
        raise ConnectionError("broker unreachable")

    assert reap_orphans(store, broker_down) == [(job_id, JobStatus.FAILED)]
    job = store.get(job_id)
    assert job.status is JobStatus.FAILED
    assert "could not be requeued (ConnectionError: broker unreachable)" in job.reason


# -- Redis lost mid-job ---------------------------------------------------------------------


@pytest.mark.parametrize("private_stack", [{"store_outage_s": 2.0}], indirect=True)
def test_program_is_stopped_when_its_supervisor_loses_redis(private_stack: Stack) -> None:
    """Nobody could enforce its time limit or record its end: it must not run on unsupervised
    once the outage outlasts QRT_STORE_OUTAGE_S."""
    worker = private_stack.start_worker(concurrency=1)
    job_id = private_stack.submit("holder")["id"]
    pid = _pid_of_holder(private_stack, job_id)
    private_stack.redis_server.stop()
    try:
        wait_for(lambda: _process_gone(pid), timeout=60, message=f"child {pid} to be stopped")
    finally:  # a worker without its broker shuts down slowly; this one has served its purpose
        private_stack.kill(worker)


def test_message_claimed_while_the_job_store_is_down_is_run_once_it_is_back(tmp_path: Path) -> None:
    """The broker lives apart from the store here; failing the task would ack the
    message and leave the job QUEUED forever."""
    store_server = LocalRedis(data_dir=tmp_path / "store").start()
    broker_server = LocalRedis().start()
    own = Stack(redis_url=store_server.url, broker_url=broker_server.url)
    try:
        own.start_worker(concurrency=1)
        job = own.store.create(program_id="echo", backend="aer_simulator", owner="local",
                               params='{"back": true}', log_level="WARNING", max_execution_time=60)
        store_server.stop()  # a clean shutdown: the AOF keeps the job
        make_celery(own.settings).send_task(TASK_RUN_JOB, args=[job.id], queue=BROKER_QUEUE)
        wait_for(lambda: f"job {job.id}: job store unreachable" in own.logs(), timeout=JOB_DEADLINE_S,
                 message="the worker to find the store down")
        store_server = LocalRedis(port=store_server.port, data_dir=tmp_path / "store").start()
        wait_for(lambda: own.store.get(job.id).status.is_final, timeout=JOB_DEADLINE_S,
                 message="the job to run once the store is back")
        final = own.store.get(job.id)
        assert final.status is JobStatus.COMPLETED and final.attempts == 1
        assert json.loads(own.store.result(job.id)) == {"back": True}
    finally:
        own.stop()
        store_server.stop()
        broker_server.stop()
