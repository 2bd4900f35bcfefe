"""Per-process state of a worker: settings, Redis, store, registry, backends.

Built lazily in each pool process (after Celery forks it), so no Redis socket
is shared across a fork.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket

import redis

from orchestrator.program_store import Programs
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.store import JobStore


@dataclasses.dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    programs: Programs
    name: str


@functools.lru_cache(maxsize=1)
def _context_for(pid: int) -> WorkerContext:
    settings = Settings.load()
    client = connect(settings)
    store = JobStore(client, settings)
    return WorkerContext(
        settings=settings,
        redis=client,
        store=store,
        programs=Programs.for_settings(client, settings),
        name=f"{socket.gethostname()}:{pid}",
    )


def current() -> WorkerContext:
    """This process's context (a new one after a fork)."""
    return _context_for(os.getpid())
