"""Finding QUEUED jobs whose Celery message is gone, and sending each another.

A job's record lives in the job store and its message in the broker's queue.
Both survive a worker crash, and a Redis restart from its AOF. But a message can
be lost where the record is not: a Sentinel failover during which kombu still
wrote to the old master (docs/deploy.md), a broker Redis restarted without
persistence, an operator's cleanup of the broker's keys. Such a job would wait
QUEUED forever, its client watching.

So every ``QRT_LOST_MESSAGE_CHECK_S`` one worker's reaper (a lock in Redis picks
one) lists the jobs that have been QUEUED at least that long, reads the job id
of every message waiting in the broker's queues or delivered and not yet
acknowledged, and enqueues again each job it did not find. A false alarm (a
message caught between the queue and the unacknowledged set) costs one duplicate
message, which the claim makes harmless.

Only a Redis broker can be read this way; with another transport the check is
skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from celery import Celery

from orchestrator.keys import ALL_SCOPE
from orchestrator.status import JobStatus
from orchestrator.store import Job, JobStore

logger = logging.getLogger(__name__)

#: A job's id as a task's id in a message's headers (orchestrator.dispatch.enqueue sends it so).
_TASK_ID = re.compile(rb'"id":\s*"([a-z2-7]{20})"')


def job_ids_in_broker(app: Celery, queues: list[str]) -> set[str] | None:
    """The job ids of every message in ``queues`` or delivered and unacknowledged; None if unknowable."""
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        client = getattr(channel, "client", None)
        if client is None or not hasattr(channel, "_q_for_pri"):
            return None  # not kombu's Redis transport
        keys = [channel._q_for_pri(queue, priority) for queue in queues for priority in channel.priority_steps]
        with client.pipeline(transaction=False) as pipe:
            for key in dict.fromkeys(keys):
                pipe.lrange(key, 0, -1)
            pipe.hvals(channel.unacked_key)
            replies = pipe.execute()
    found: set[str] = set()
    for messages in replies:
        for message in messages:
            raw = message if isinstance(message, bytes) else str(message).encode()
            found.update(match.decode() for match in _TASK_ID.findall(raw))
    return found


def long_queued_jobs(store: JobStore, older_than_s: float, now: float) -> list[Job]:
    """Jobs QUEUED, unchanged for ``older_than_s`` or more."""
    index = store.keys.index(ALL_SCOPE, "pending")
    ids = [i.decode() if isinstance(i, bytes) else i
           for i in store.redis.zrangebyscore(index, "-inf", now - older_than_s)]
    if not ids:
        return []
    with store.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(store.keys.job(job_id))
        raws = pipe.execute()
    jobs = [Job.from_hash(raw) for raw in raws if raw]
    return [job for job in jobs if job.status is JobStatus.QUEUED and _age_s(job, now) >= older_than_s]


def resend_lost(store: JobStore, app: Celery, queues: list[str], requeue: Callable[[Job], None],
                now: float) -> list[str]:
    """Enqueue again each long-QUEUED job without a message; returns their ids (one worker per period)."""
    period = store.settings.lost_message_check_s
    lock = store.keys.lost_message_check()
    if not store.redis.set(lock, "1", nx=True, px=max(int(period * 1000), 1)):
        return []  # another worker's reaper checked within this period
    waiting = long_queued_jobs(store, period, now)
    if not waiting:
        return []
    present = job_ids_in_broker(app, queues)
    if present is None:
        return []
    lost = [job for job in waiting if job.id not in present]
    for job in lost:
        logger.warning("job %s has been QUEUED %.0f s with no message in the broker (lost in a failover or a "
                       "broker restart?); enqueued again", job.id, _age_s(job, now))
        requeue(job)
    return [job.id for job in lost]


def _age_s(job: Job, now: float) -> float:
    return now - datetime.fromisoformat(job.updated.replace("Z", "+00:00")).timestamp()
