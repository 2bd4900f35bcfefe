"""The worker registry against a real Redis: announce, forget, staleness, and the reaper using it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from orchestrator.keys import Keys
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.worker_registry import WORKER_SILENCE_S, WorkerRegistry
from tests.harness import wait_for

QUEUES = ["qruntime.aer", "qruntime.ibmq_montreal"]


class Clock:
    """A clock the test moves by hand, so staleness is checked to the second without sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now



@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.load({"redis_url": redis_url, "reaper_interval_s": 0.1}, environ={})


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    client = connect(settings)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(client: redis.Redis, clock: Clock) -> WorkerRegistry:
    return WorkerRegistry(client, Keys("qrt"), clock=clock)


def test_an_announced_worker_is_live_with_its_queues(registry: WorkerRegistry, clock: Clock) -> None:
    registry.announce("w1@host", QUEUES)
    assert registry.live() == {"w1@host": {"queues": QUEUES, "seen": clock.now}}


def test_the_stored_record_is_exactly_what_keys_py_documents(registry: WorkerRegistry, client: redis.Redis) -> None:
    registry.announce("w1@host", QUEUES)
    raw = client.hget(Keys("qrt").workers(), "w1@host")
    assert set(json.loads(raw)) == {"queues", "seen"}


def test_a_forgotten_worker_is_no_longer_live(registry: WorkerRegistry) -> None:
    registry.announce("w1@host", QUEUES)
    registry.announce("w2@host", QUEUES[:1])
    registry.forget("w1@host")
    assert list(registry.live()) == ["w2@host"]


def test_forgetting_an_unknown_worker_is_harmless(registry: WorkerRegistry) -> None:
    registry.forget("never-announced@host")
    assert registry.live() == {}


def test_a_worker_is_live_up_to_the_silence_limit_and_not_a_moment_after(
    registry: WorkerRegistry, clock: Clock
) -> None:
    registry.announce("w1@host", QUEUES)
    clock.now += WORKER_SILENCE_S
    assert "w1@host" in registry.live()
    clock.now += 0.001
    assert registry.live() == {}


def test_announcing_again_brings_a_silent_worker_back(registry: WorkerRegistry, clock: Clock) -> None:
    registry.announce("w1@host", QUEUES)
    clock.now += WORKER_SILENCE_S + 1
    assert registry.live() == {}
    registry.announce("w1@host", QUEUES[:1])
    assert registry.live() == {"w1@host": {"queues": QUEUES[:1], "seen": clock.now}}


def test_the_silence_limit_is_the_registrys_own(client: redis.Redis, clock: Clock) -> None:
    strict = WorkerRegistry(client, Keys("qrt"), stale_after_s=5, clock=clock)
    strict.announce("w1@host", QUEUES)
    clock.now += 6
    assert strict.live() == {}
    assert "w1@host" in WorkerRegistry(client, Keys("qrt"), clock=clock).live()


def test_two_namespaces_keep_separate_registries(client: redis.Redis, clock: Clock) -> None:
    one = WorkerRegistry(client, Keys("one"), clock=clock)
    two = WorkerRegistry(client, Keys("two"), clock=clock)
    one.announce("w1@host", QUEUES)
    assert list(one.live()) == ["w1@host"]
    assert two.live() == {}


def test_a_workers_reaper_announces_it_and_forgets_it_on_stop(settings: Settings, client: redis.Redis) -> None:
    from workers.celery_app import make_celery
    from workers.reaper import Reaper

    registry = WorkerRegistry(client, Keys(settings.namespace))
    reaper = Reaper(settings, make_celery(settings), worker_name="reaped@test", queues=QUEUES)
    reaper.start()
    try:
        record = wait_for(lambda: registry.live().get("reaped@test"), timeout=10, message="the announcement")
        assert record["queues"] == QUEUES
    finally:
        reaper.stop()
        reaper.join(timeout=10)
    assert not reaper.is_alive()
    assert registry.live() == {}
