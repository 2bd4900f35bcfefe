"""Which workers are alive and which queues they consume: the ``{ns}:workers`` hash.

A worker's housekeeping thread announces itself every few seconds and forgets
itself on shutdown; the API reads the live ones to say which backends are
served (``/backends``, a QUEUED job's waiting note) and how many workers are up
(``/health``). A worker that dies without forgetting itself simply stops being
live once its last announcement is older than ``stale_after_s``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TypedDict

import redis

from orchestrator.keys import Keys

#: A worker not heard from for this long is not counted as serving anything
#: (many reaper intervals, so one slow pass does not make a backend look unserved).
WORKER_SILENCE_S = 60.0


class WorkerRecord(TypedDict):
    """What one worker announced: the queues it consumes and when (epoch seconds)."""

    queues: list[str]
    seen: float


class WorkerRegistry:
    """The one reader and writer of the worker registry hash."""

    def __init__(
        self,
        redis_client: redis.Redis,
        keys: Keys,
        stale_after_s: float = WORKER_SILENCE_S,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self.keys = keys
        self.stale_after_s = stale_after_s
        self._clock = clock

    def announce(self, name: str, queues: list[str]) -> None:
        """Record that worker ``name`` is alive now and consumes ``queues``."""
        record: WorkerRecord = {"queues": list(queues), "seen": self._clock()}
        self.redis.hset(self.keys.workers(), name, json.dumps(record))

    def forget(self, name: str) -> None:
        """Drop worker ``name`` at once (it is shutting down)."""
        self.redis.hdel(self.keys.workers(), name)

    def live(self) -> dict[str, WorkerRecord]:
        """Worker name → record, for every worker heard from within ``stale_after_s``."""
        now = self._clock()
        workers: dict[str, WorkerRecord] = {}
        for name, raw in self.redis.hgetall(self.keys.workers()).items():
            record = json.loads(raw)
            if now - record.get("seen", 0) <= self.stale_after_s:
                workers[name.decode() if isinstance(name, bytes) else name] = record
        return workers
