"""Per-process state of a worker: settings, Redis, store, programs and their cache.

Built lazily in each pool process (after Celery forks it), so no Redis socket
is shared across a fork.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import socket

import redis

from orchestrator.program_store import Programs
from orchestrator.redisconn import connect
from orchestrator.settings import Settings
from orchestrator.store import JobStore
from workers.program_cache import ProgramCache, worker_dir

#: This worker's Celery node name, set in the main process before the pool forks.
worker_node: str = f"qruntime-{os.getpid()}@{socket.gethostname()}"


@dataclasses.dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    programs: Programs
    cache: ProgramCache
    name: str
    #: Cancel requests arrive here; one subscriber connection per process, not per job.
    control: redis.client.PubSub


@functools.lru_cache(maxsize=1)
def _context_for(pid: int) -> WorkerContext:
    settings = Settings.load()
    client = connect(settings)
    store = JobStore(client, settings)
    programs = Programs.for_settings(client, settings)
    return WorkerContext(
        settings=settings,
        redis=client,
        store=store,
        programs=programs,
        cache=ProgramCache(programs.store, worker_dir(settings.data_path, worker_node), settings.namespace),
        name=f"{socket.gethostname()}:{pid}",
        control=client.pubsub(ignore_subscribe_messages=True),
    )


def current() -> WorkerContext:
    """This process's context (a new one after a fork)."""
    return _context_for(os.getpid())


def remove_worker_files(settings: Settings) -> None:
    """Remove this worker's program cache (on shutdown: a node name is not reused)."""
    shutil.rmtree(worker_dir(settings.data_path, worker_node), ignore_errors=True)
