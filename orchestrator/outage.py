"""Riding out a Redis that cannot be reached for a while: a failover, a restart, a network cut.

A supervisor's job keeps running while Redis is away for a few seconds (a
Sentinel failover takes that long); what the supervisor has to write waits and
is retried, and the job's program only notices that its messages are slow.
Retrying is safe because every write a supervisor makes is idempotent or fenced
(orchestrator/events.py: a write retried after a lost reply is applied once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a write waits for its replicas (``QRT_REDIS_MIN_REPLICAS``) before it counts as not done.
REPLICA_WAIT_MS = 500


class NotReplicatedError(redis.ConnectionError):
    """A write reached the master but not the replicas it needs within ``REPLICA_WAIT_MS``.

    A failover may be under way: the master may be about to become a replica and
    lose the write. Retrying is safe (the write is fenced or idempotent) and goes on
    until the write is held by enough replicas, or lands on the new master.
    """


def wait_for_replicas(client: redis.Redis, replicas: int, probe_key: str) -> None:
    """Return once ``replicas`` replicas hold every write made so far on the master; raise if they do not.

    WAIT only covers the writes of the connection it is sent on, and a pooled
    client's last write may have gone over another one. So one pipeline (one
    connection) writes ``probe_key`` and then WAITs: the replication offset only
    grows, so replicas holding the probe hold everything written before it.
    """
    if replicas <= 0:
        return
    with client.pipeline(transaction=False) as pipe:
        pipe.set(probe_key, repr(time.time()))
        pipe.execute_command("WAIT", replicas, REPLICA_WAIT_MS)
        _, acked = pipe.execute()
    if int(acked) < replicas:
        raise NotReplicatedError(f"only {acked} of {replicas} replica(s) acknowledged the write "
                                 f"within {REPLICA_WAIT_MS} ms")


#: Errors that mean "Redis is not there right now", not "this command is wrong": a
#: connection refused or cut, a reply that never came, a replica refusing writes
#: while Sentinel promotes another, a server still loading its data after a restart,
#: a write its replicas did not confirm.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,
)
#: First and longest pause between two tries.
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0


def retrying(call: Callable[[], T], within_s: float, *, what: str = "a write to the job store",
             between: Callable[[], object] | None = None) -> T:
    """``call()``, tried again while Redis is unreachable, for ``within_s`` seconds at most.

    ``between`` runs before each pause (its outage errors ignored): a supervisor
    heartbeats there, so a write that waits for a failover to finish does not make
    its job look abandoned. Raises the last outage error once ``within_s`` has
    passed, and any other error at once.
    """
    deadline = time.monotonic() + within_s
    pause = FIRST_BACKOFF_S
    first_failure = None
    while True:
        try:
            result = call()
        except OUTAGE_ERRORS as exc:
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
                logger.warning("Redis unreachable during %s (%s); retrying for up to %g s", what, exc, within_s)
            if now + pause > deadline:
                raise
            if between is not None:
                try:
                    between()
                except OUTAGE_ERRORS:
                    pass
            time.sleep(pause)
            pause = min(pause * 2, MAX_BACKOFF_S)
            continue
        if first_failure is not None:
            logger.warning("Redis reachable again: %s went through after %.1f s", what,
                           time.monotonic() - first_failure)
        return result
