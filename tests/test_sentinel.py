"""qruntime through Redis Sentinel: a real master, replica and three sentinels, a real worker and API.

The story: the job store, the Celery broker and the API's pub/sub relay all find
Redis through the sentinels (both with passwords), a job runs to COMPLETED; the
master fails over while a stream is open, and the stream keeps receiving live
while new jobs still complete; a URL qruntime cannot use is refused by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from api import create_app
from api.relay import RESYNC, Frame, Relay
from orchestrator.errors import ConfigurationError
from orchestrator.events import EVENT_INTERIM
from orchestrator.redisconn import MASTER_RECHECK_S, connect
from orchestrator.settings import Settings
from orchestrator.store import JobStore
from qruntime.localredis import free_port
from tests.harness import Stack, running_stack, wait_for
from tests.sentinels import SentinelCluster
from tests.sse import SSEEvent, SSEParser, read_stream

PASSWORD = "master-pw-5be1"
SENTINEL_PASSWORD = "sentinel-pw-90c2"
#: Seconds between the interim results of the job that streams across the failover: longer
#: than the failover takes to reach the clients (~1.5 s), so the last results are published
#: to the new master only.
PUBLISH_INTERVAL_S = 3.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[SentinelCluster]:
    with SentinelCluster(password=PASSWORD, sentinel_password=SENTINEL_PASSWORD) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def sentinel_stack(cluster: SentinelCluster) -> Iterator[Stack]:
    with running_stack(concurrency=2, **cluster.settings()) as stack:
        yield stack


def interim_indexes(events: list[SSEEvent]) -> list[int]:
    return [json.loads(e.data)["index"] for e in events if e.event == "interim"]


def final_status(events: list[SSEEvent]) -> str:
    assert events[-1].event == "done", events[-1]
    return json.loads(events[-1].data)["status"]


def test_a_job_completes_with_the_store_broker_and_relay_all_reaching_redis_through_the_sentinels(
    cluster: SentinelCluster, sentinel_stack: Stack
) -> None:
    job_id = sentinel_stack.submit("publisher", {"count": 5})["id"]

    read = read_stream(f"{sentinel_stack.url}/jobs/{job_id}/stream", timeout=60)

    assert read.ended and interim_indexes(read.events) == [1, 2, 3, 4, 5]
    assert final_status(read.events) == "COMPLETED"
    assert sentinel_stack.job(job_id)["status"] == "COMPLETED"
    master = cluster.client(cluster.master_node())
    assert master.exists(sentinel_stack.store.keys.job(job_id))
    assert any(client["cmd"] == "brpop" for client in master.client_list())  # a worker waits there for jobs
    with redis.Redis.from_url(sentinel_stack.redis_server.url) as unused:
        assert unused.dbsize() == 0  # the stack's own Redis: nothing went around the sentinels


def test_after_a_failover_a_stream_keeps_receiving_live_clients_move_at_once_and_new_jobs_complete(
    cluster: SentinelCluster, sentinel_stack: Stack
) -> None:
    old_master = cluster.master_address()
    client = connect(Settings.load(cluster.settings(), environ={}))  # pooled, as in the API and the workers
    client.set("probe", "before")
    job_id = sentinel_stack.submit("publisher", {"count": 3, "interval": PUBLISH_INTERVAL_S})["id"]
    with ThreadPoolExecutor(1) as reader:
        streaming = reader.submit(read_stream, f"{sentinel_stack.url}/jobs/{job_id}/stream", timeout=60)
        wait_for(lambda: sentinel_stack.store.events.read(job_id, types=("interim",)),
                 message="the first interim result")

        new_master = cluster.failover()

        # Redis leaves the old master taking writes for ~10 s more; the pool leaves it within a re-check.
        wait_for(lambda: client.set("probe", "after") and client.connection_pool.master_address == new_master,
                 timeout=MASTER_RECHECK_S + 1.0, message="the pooled client to write to the new master")
        read = streaming.result(timeout=60)
    assert new_master != old_master
    assert cluster.client(cluster.master_node()).get("probe") == "after"
    assert read.ended and interim_indexes(read.events) == [1, 2, 3]
    assert [e.int_id for e in read.events] == list(range(1, len(read.events) + 1))  # no gap, no repeat
    assert final_status(read.events) == "COMPLETED"
    second, third = (e for e in read.events if e.event == "interim" and json.loads(e.data)["index"] > 1)
    # Live, not read from the log at the end: the relay left the old master for the new one.
    assert third.received - second.received > PUBLISH_INTERVAL_S / 2
    client.close()

    cluster.wait_settled()  # the old master is a replica now (Redis's pace: ~20 s after the failover)
    after = sentinel_stack.submit("publisher", {"count": 2})["id"]
    replay = read_stream(f"{sentinel_stack.url}/jobs/{after}/stream", timeout=60)
    assert interim_indexes(replay.events) == [1, 2] and final_status(replay.events) == "COMPLETED"
    assert cluster.client(cluster.master_node()).exists(sentinel_stack.store.keys.job(after))


def test_a_redis_cluster_url_is_refused_by_the_settings_with_what_to_use_instead() -> None:
    for url in ("redis+cluster://10.0.0.1:7000", "redis://10.0.0.1:7000,10.0.0.2:7000/0"):
        with pytest.raises(ConfigurationError, match="Redis Cluster.*sentinel://"):
            Settings.load({"redis_url": url}, environ={})
    with pytest.raises(ConfigurationError, match="QRT_BROKER_URL"):
        Settings.load({"broker_url": "sentinel://:a@h1:26379;sentinel://:b@h2:26379"}, environ={})


def test_without_a_reachable_sentinel_or_known_master_health_says_why_instead_of_failing(
    cluster: SentinelCluster,
) -> None:
    nowhere = ";".join(f"sentinel://127.0.0.1:{free_port()}" for _ in range(3))
    wrong_name = {**cluster.settings(), "redis_sentinel_master": "not-monitored"}
    for config, reason in (({"redis_url": nowhere}, "No master found for 'mymaster'"),
                           (wrong_name, "No master found for 'not-monitored'")):
        app = create_app({**config, "auth": "off"})
        health = app.test_client().get("/health")
        assert health.status_code == 503, health.text
        assert health.json["status"] == "unavailable" and reason in health.json["redis"]
        assert PASSWORD not in health.text and SENTINEL_PASSWORD not in health.text
        jobs = app.test_client().get("/jobs")
        assert jobs.status_code == 503 and "unreachable" in jobs.json["message"]
        app.extensions["qruntime"].redis.close()


def test_when_the_master_dies_clients_and_the_relay_reach_the_promoted_replica(cluster: SentinelCluster) -> None:
    settings = Settings.load(cluster.settings(), environ={})
    client = connect(settings)
    store = JobStore(client, settings)
    job_id = store.create(program_id="publisher", backend="aer_simulator", owner="local", params="{}",
                          log_level="WARNING", max_execution_time=60).id
    relay = Relay(client, store.keys)
    assert relay.ensure_started()
    box = relay.subscribe(job_id, max_events=1000, max_bytes=1 << 20)

    cluster.kill_master()

    wait_for(lambda: _answers(client), timeout=30, message="the client to reach the promoted master")
    assert client.connection_pool.master_address == cluster.master_address()
    assert store.get(job_id).id == job_id  # replicated before the kill
    wait_for(lambda: relay.reconnects >= 1, timeout=10, message="the relay to notice its connection is gone")
    assert relay.ensure_started(timeout=30)  # subscribed again, through the sentinels, to the new master
    assert RESYNC in box.take_all(0)  # so every stream re-reads the log for what it missed
    store.events.append(job_id, EVENT_INTERIM, json.dumps({"index": 1}))
    frames: list = []
    wait_for(lambda: frames.extend(f for f in box.take_all(0) if isinstance(f, Frame)) or frames, timeout=10,
             message="an event published on the new master to reach the relay")
    assert [json.loads(e.data) for e in SSEParser().feed(frames[-1].payload)] == [{"index": 1}]
    relay.stop()
    sentinels = client.connection_pool.sentinel_manager.sentinels
    client.close()
    assert all(conn._sock is None for s in sentinels for conn in s.connection_pool._available_connections)
    cluster.revive()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.set("after", 1))
    except redis.ConnectionError:
        return False
