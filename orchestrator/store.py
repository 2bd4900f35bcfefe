"""The Redis job store: the source of truth for every job.

It owns the job record, its result, its index entries and its lifecycle. Status
changes go through :meth:`JobStore.transition` alone, which checks the
transition table and writes status, timestamps, result, indexes, TTLs and the
status event in one MULTI/EXEC guarded by WATCH, so two writers racing for the
same job (a redelivered message, a cancel and a completion) cannot both win.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import redis

from orchestrator.errors import InvalidTransitionError, JobNotFoundError, StaleRunError
from orchestrator.events import (
    EVENT_DONE,
    EVENT_LOG,
    EVENT_RESTART,
    EVENT_STATUS,
    RESUME_CHECKPOINT,
    RESUME_START,
    SUPERSEDED_FIELD,
    Checkpoint,
    EventLog,
)
from orchestrator.keys import ALL_SCOPE, Keys
from orchestrator.lifecycle_scripts import CLAIM_LUA, FINISH_LUA
from orchestrator.outage import wait_for_replicas
from orchestrator.settings import Settings
from orchestrator.status import FINAL_STATUSES, JobStatus, can_transition

#: Key TTLs outlive the deletion schedule by this much: a backstop if no worker deletes.
EXPIRY_GRACE_S = 3600
#: Finished jobs deleted per housekeeping pass at most.
EXPIRY_BATCH = 500
#: Results up to this long (characters of their text) also travel in the job's ``done`` event.
INLINE_RESULT_CHARS = 64 * 1024
#: The job record's field holding its score in the indexes (creation time, epoch seconds).
INDEX_SCORE_FIELD = "index_score"
#: How many times a transition retries when another writer touched the job meanwhile.
_TRANSITION_RETRIES = 20


def utcnow() -> str:
    """ISO-8601 UTC timestamp with millisecond precision and a ``Z`` suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    """A 20-character lowercase id, like the seed's job ids."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()[:20]


#: What :func:`new_job_id` produces. Anything else cannot be a job, and must not
#: reach Redis: ``<id>:events`` would name another key of the job.
JOB_ID_PATTERN = re.compile(r"[a-z2-7]{20}")


def is_job_id(text: str) -> bool:
    return JOB_ID_PATTERN.fullmatch(text) is not None


@dataclasses.dataclass(frozen=True)
class Job:
    """A job record as read from the store."""

    id: str
    program_id: str
    backend: str
    owner: str
    status: JobStatus
    params: str
    log_level: str
    max_execution_time: int
    created: str
    updated: str
    program_version: str = ""
    started: str = ""
    ended: str = ""
    attempts: int = 0
    #: Which claim of the job this is (1, 2, …; never goes back, unlike ``attempts`` after a
    #: hand-back): the fencing token every write of the run's supervisor carries.
    run: int = 0
    worker: str = ""
    reason: str = ""
    cancel_requested: bool = False
    event_seq: int = 0
    #: What the run that ended the job cost, as JSON (orchestrator/usage.py); "" until it ends.
    usage: str = ""

    @classmethod
    def from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> Job:
        data = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            id=data["id"],
            program_id=data.get("program_id", ""),
            program_version=data.get("program_version", ""),
            backend=data.get("backend", ""),
            owner=data.get("owner", ""),
            status=JobStatus(data["status"]),
            params=data.get("params", "{}"),
            log_level=data.get("log_level", "WARNING"),
            max_execution_time=int(data.get("max_execution_time", "0")),
            created=data.get("created", ""),
            updated=data.get("updated", ""),
            started=data.get("started", ""),
            ended=data.get("ended", ""),
            attempts=int(data.get("attempts", "0")),
            run=int(data.get("run", "0")),
            worker=data.get("worker", ""),
            reason=data.get("reason", ""),
            cancel_requested=data.get("cancel_requested") == "1",
            event_seq=int(data.get("event_seq", "0")),
            usage=data.get("usage", ""),
        )



_SET_IF_RUN_LUA = """
-- KEYS: job hash. ARGV: field, value, run ('' = any). Set unless the job is gone or on another run.
local run = redis.call('HGET', KEYS[1], 'run')
if not run then return 0 end
if ARGV[3] ~= '' and run ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_HEARTBEAT_LUA = """
-- KEYS: job hash, running set. ARGV: run, now. Beat only while the job is RUNNING this run.
local current = redis.call('HMGET', KEYS[1], 'run', 'status')
if current[1] ~= ARGV[1] or current[2] ~= 'RUNNING' then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], redis.call('HGET', KEYS[1], 'id'))
return 1
"""


class JobStore:
    """Create, read, list, transition and delete jobs in Redis."""

    def __init__(self, redis_client: redis.Redis, settings: Settings) -> None:
        self.redis = redis_client
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self._set_if_run = redis_client.register_script(_SET_IF_RUN_LUA)
        self._heartbeat = redis_client.register_script(_HEARTBEAT_LUA)
        self._claim = redis_client.register_script(CLAIM_LUA)
        self._finish = redis_client.register_script(FINISH_LUA)
        self.events = EventLog(
            redis_client,
            self.keys,
            max_events=settings.max_events_per_job,
            max_bytes=settings.max_event_bytes_per_job,
            min_replicas=settings.redis_min_replicas,
        )

    # -- create / read -------------------------------------------------------------

    def create(
        self,
        *,
        program_id: str,
        backend: str,
        owner: str,
        params: str,
        log_level: str,
        max_execution_time: int,
        program_version: str = "",
    ) -> Job:
        """Write a new QUEUED job with its index entries and first status event."""
        job_id = new_job_id()
        now = utcnow()
        record = {
            "id": job_id,
            "program_id": program_id,
            "program_version": program_version,
            "backend": backend,
            "owner": owner,
            "status": JobStatus.QUEUED.value,
            "params": params,
            "log_level": log_level,
            "max_execution_time": str(max_execution_time),
            "created": now,
            "updated": now,
            "attempts": "0",
            "event_seq": "0",
        }
        score = time.time()
        record[INDEX_SCORE_FIELD] = repr(score)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.job(job_id), mapping=record)
            for key in self._index_keys(owner, program_id, "any", "pending"):
                pipe.zadd(key, {job_id: score})
            self.events.append(job_id, EVENT_STATUS, _status_data(JobStatus.QUEUED, now), pipeline=pipe)
            pipe.execute()
        self._replicated()
        return Job.from_hash({**record, "event_seq": "1"})  # the QUEUED event just appended

    def get(self, job_id: str) -> Job:
        if not is_job_id(job_id):
            raise JobNotFoundError(f"Job not found: {job_id}")
        raw = self.redis.hgetall(self.keys.job(job_id))
        if not raw:
            raise JobNotFoundError(f"Job not found: {job_id}")
        return Job.from_hash(raw)

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.keys.job(job_id)))

    def result(self, job_id: str) -> str | None:
        raw = self.redis.get(self.keys.result(job_id))
        return None if raw is None else _text(raw)

    def logs(self, job_id: str) -> str:
        """The job's log lines (stdout, stderr, logging) as one text."""
        return "".join(json.loads(e.data)["text"] for e in self.events.iter(job_id, types=(EVENT_LOG,)))

    def list(
        self,
        *,
        owner: str | None,
        limit: int = 10,
        offset: int = 0,
        pending: bool | None = None,
        program_id: str | None = None,
    ) -> tuple[list[Job], int]:
        """Newest first. ``owner=None`` lists every owner's jobs (admins)."""
        scope = ALL_SCOPE if owner is None else Keys.owner_scope(owner)
        state = "any" if pending is None else ("pending" if pending else "finished")
        index = self.keys.index(scope, state, program_id)
        total = self.redis.zcard(index)
        ids = [_text(i) for i in self.redis.zrevrange(index, offset, offset + limit - 1)] if limit else []
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            raws = pipe.execute()
        jobs, dangling = [], []
        for job_id, raw in zip(ids, raws, strict=True):
            if raw:
                jobs.append(Job.from_hash(raw))
            else:
                dangling.append(job_id)
        if dangling:  # expired by TTL: forget them so counts heal
            self.redis.zrem(index, *dangling)
            total -= len(dangling)
        return jobs, total

    # -- lifecycle -------------------------------------------------------------------

    def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        expect: Iterable[JobStatus] | None = None,
        result: str | None = None,
        reason: str | None = None,
        fields: Mapping[str, str] | None = None,
        run: int | None = None,
    ) -> Job:
        """Move a job to ``target`` atomically; the one writer of job status.

        ``run``: the writer's run of the job (a supervisor's fencing token); the move
        is refused unless it is still the job's current run. A running job moved back
        to QUEUED gets a ``restart`` event, and the interim results its run published
        after its last checkpoint are marked superseded (orchestrator/events.py).

        Raises:
            JobNotFoundError: the job does not exist (any more).
            StaleRunError: ``run`` is no longer the job's run.
            InvalidTransitionError: the job's status does not allow the move, or is
                not one of ``expect``.
        """
        if not is_job_id(job_id):
            raise JobNotFoundError(f"Job not found: {job_id}")
        key = self.keys.job(job_id)
        expected = frozenset(expect) if expect is not None else None
        for _ in range(_TRANSITION_RETRIES):
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.hgetall(key)
                    if not raw:
                        raise JobNotFoundError(f"Job not found: {job_id}")
                    job = Job.from_hash(raw)
                    if run is not None and job.run != run:
                        raise StaleRunError(
                            f"Job {job_id} is on run {job.run}, not {run}: the write of run {run} is refused."
                        )
                    if run is not None and job.status is target and target is not JobStatus.RUNNING:
                        # This very move, made before by this run, whose replicas had not confirmed
                        # it (a failover under way): it counts once they do.
                        pipe.reset()
                        self._replicated()
                        return job
                    restarting = job.status is JobStatus.RUNNING and target is JobStatus.QUEUED
                    checkpoint = self.events.checkpoint(job_id) if restarting else None
                    if (expected is not None and job.status not in expected) or not can_transition(
                        job.status, target
                    ):
                        raise InvalidTransitionError(
                            f"Job {job_id} is {job.status.value} and cannot become {target.value}."
                        )
                    now = utcnow()
                    update = _status_update(target, now, reason, fields)
                    if target is JobStatus.RUNNING:
                        update["started"] = now
                        update["attempts"] = str(job.attempts + 1)
                        update["run"] = str(job.run + 1)
                        update["write_seq"] = "0"
                    restart = None
                    if restarting:
                        restart, ranges = _restart(job, checkpoint, reason, raw.get(SUPERSEDED_FIELD.encode()))
                        update[SUPERSEDED_FIELD] = ranges
                    pipe.multi()
                    pipe.hset(key, mapping=update)
                    if result is not None:
                        pipe.set(self.keys.result(job_id), result)
                    self._move_indexes(pipe, job, target, raw.get(INDEX_SCORE_FIELD.encode()))
                    if restart is not None:
                        self.events.append(job_id, EVENT_RESTART, restart, pipeline=pipe)
                    status_data = _status_data(target, now, reason)
                    self.events.append(job_id, EVENT_STATUS, status_data, pipeline=pipe)
                    if target in FINAL_STATUSES:
                        self.events.append(job_id, EVENT_DONE, _done_data(target, now, reason, result), pipeline=pipe)
                        pipe.delete(self.keys.checkpoint(job_id))  # no run will resume from it
                        for k in self.keys.job_keys(job_id):
                            pipe.expire(k, self.settings.job_ttl_s + EXPIRY_GRACE_S)
                        pipe.zadd(self.keys.expiry(), {job_id: time.time() + self.settings.job_ttl_s})
                    pipe.execute()
                    self._replicated()
                    # WATCH guarantees nobody appended meanwhile: ours are the only new events.
                    seq = job.event_seq + (2 if target in FINAL_STATUSES else 1) + (restart is not None)
                    return dataclasses.replace(job, **_job_fields(update), event_seq=seq)
                except redis.WatchError:
                    continue
        raise InvalidTransitionError(f"Job {job_id} kept changing; could not become {target.value}.")

    def claim(self, job_id: str, worker: str) -> Job:
        """QUEUED → RUNNING for ``worker``, in one round trip (orchestrator/lifecycle_scripts.py).

        Raises what :meth:`transition` raises when the job is not QUEUED (gone, or
        taken by another worker): the general path is asked why.
        """
        if is_job_id(job_id):
            now = utcnow()
            raw = self._claim(
                keys=[self.keys.job(job_id), self.keys.events(job_id), self.keys.channel(job_id),
                      self.keys.running()],
                args=[now, worker, _status_data(JobStatus.RUNNING, now), time.time(), job_id],
            )
            if raw:
                self._replicated()
                return Job.from_hash(dict(zip(raw[::2], raw[1::2], strict=True)))
        return self.transition(job_id, JobStatus.RUNNING, expect=[JobStatus.QUEUED], fields={"worker": worker})

    def finish(self, job: Job, target: JobStatus, *, result: str | None = None, reason: str | None = None,
               fields: Mapping[str, str] | None = None) -> None:
        """End the run ``job.run`` of a RUNNING job with the final status ``target``, in one round trip.

        What :meth:`transition` with ``expect=[RUNNING]`` and ``run=job.run`` writes, and
        it raises the same errors: when the job is not RUNNING this run, the general
        path decides (and answers a retry of this very change as done).
        """
        if target not in FINAL_STATUSES:
            raise ValueError(f"{target.value} is not a final status")
        now = utcnow()
        update = _status_update(target, now, reason, fields)
        pending = self._index_keys(job.owner, job.program_id, "pending")
        finished = self._index_keys(job.owner, job.program_id, "finished")
        keys = [self.keys.job(job.id), self.keys.events(job.id), self.keys.channel(job.id),
                self.keys.checkpoint(job.id), self.keys.result(job.id), self.keys.running(), self.keys.expiry(),
                *pending, *finished]
        args = [job.run, _status_data(target, now, reason), _done_data(target, now, reason, result),
                result or "", "0" if result is None else "1", self.settings.job_ttl_s + EXPIRY_GRACE_S,
                time.time() + self.settings.job_ttl_s, job.id, INDEX_SCORE_FIELD, len(pending),
                *(item for pair in update.items() for item in pair)]
        if self._finish(keys=keys, args=args):
            self._replicated()
            return
        self.transition(job.id, target, expect=[JobStatus.RUNNING], result=result, reason=reason,
                        fields=fields, run=job.run)

    def _move_indexes(self, pipe: redis.client.Pipeline, job: Job, target: JobStatus,
                      index_score: bytes | None) -> None:
        running = self.keys.running()
        if target is JobStatus.RUNNING:
            pipe.zadd(running, {job.id: time.time()})
        elif job.status is JobStatus.RUNNING:
            pipe.zrem(running, job.id)
        if target in FINAL_STATUSES:
            # The job's place in every index is its creation time (kept in its record; read from
            # the index for a job created before the record kept it).
            score = (float(index_score) if index_score else
                     self.redis.zscore(self.keys.index(ALL_SCOPE, "any"), job.id) or time.time())
            for key in self._index_keys(job.owner, job.program_id, "pending"):
                pipe.zrem(key, job.id)
            for key in self._index_keys(job.owner, job.program_id, "finished"):
                pipe.zadd(key, {job.id: score})

    def request_cancel(self, job_id: str) -> None:
        """Flag a job for cancellation and tell its supervisor to look now."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.job(job_id), "cancel_requested", "1")
            pipe.publish(self.keys.control(job_id), "cancel")
            pipe.execute()

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self.keys.job(job_id), "cancel_requested") in (b"1", "1")

    def heartbeat(self, job_id: str, run: int) -> bool:
        """Prove the supervisor of the job's run ``run`` is alive; False if the job is no longer
        RUNNING that run (ended, deleted, or handed to another worker meanwhile)."""
        return bool(self._heartbeat(keys=[self.keys.job(job_id), self.keys.running()],
                                    args=[run, time.time()]))

    def record_usage(self, job_id: str, usage: str, run: int | None = None) -> bool:
        """Set a job's ``usage`` (JSON text) unless the job is gone (or on another run); True if set.

        Usage may be completed a moment after the final status (once the zygote has
        measured the job's processes); a job deleted meanwhile must not come back as a
        hash holding only its usage, so the existence check and the write are one call.
        """
        args = ["usage", usage, "" if run is None else str(run)]
        return bool(self._set_if_run(keys=[self.keys.job(job_id)], args=args))

    def _replicated(self) -> None:
        """Wait until ``QRT_REDIS_MIN_REPLICAS`` replicas hold what was just written (orchestrator/outage.py)."""
        wait_for_replicas(self.redis, self.settings.redis_min_replicas, self.keys.replication_probe())

    def stale_running(self, older_than_s: float) -> list[str]:
        """Ids of RUNNING jobs whose last heartbeat is older than ``older_than_s``."""
        cutoff = time.time() - older_than_s
        return [_text(i) for i in self.redis.zrangebyscore(self.keys.running(), "-inf", cutoff)]

    def delete(self, job_id: str) -> None:
        """Remove every key and index entry of a job in one transaction."""
        job = self.get(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*self.keys.job_keys(job_id))
            pipe.zrem(self.keys.running(), job_id)
            pipe.zrem(self.keys.expiry(), job_id)
            for key in self._index_keys(job.owner, job.program_id, "any", "pending", "finished"):
                pipe.zrem(key, job_id)
            pipe.execute()

    def delete_expired(self) -> int:
        """Delete whole (record, result, events, index entries) the finished jobs now due."""
        due = [_text(i) for i in self.redis.zrangebyscore(self.keys.expiry(), "-inf", time.time(),
                                                           start=0, num=EXPIRY_BATCH)]
        for job_id in due:
            try:
                self.delete(job_id)
            except JobNotFoundError:  # already gone (its TTL backstop fired): drop the schedule entry
                self.redis.zrem(self.keys.expiry(), job_id)
        return len(due)

    def _index_keys(self, owner: str, program_id: str, *states: str) -> list[str]:
        scopes = (ALL_SCOPE, Keys.owner_scope(owner))
        return [
            self.keys.index(scope, state, program)
            for scope in scopes
            for state in states
            for program in (None, program_id)
        ]


def _restart(job: Job, checkpoint: Checkpoint | None, reason: str | None,
             ranges_text: bytes | None) -> tuple[str, str]:
    """The ``restart`` event of a run that ends with its job going back to the queue, and the
    job's superseded ranges with this run's added: (event data, ranges as JSON).

    The next run starts from the last checkpoint (of any run), so what this run
    published after it is published again: those interim results are superseded.
    """
    # A checkpoint of an earlier run: everything this run published comes again.
    after = checkpoint.event if checkpoint is not None and checkpoint.run == job.run else 0
    ranges = json.loads(ranges_text) if ranges_text else []
    ranges.append([job.run, after, job.event_seq])
    data = {
        "run": job.run,
        "next_run": job.run + 1,
        "reason": reason or "requeued",
        "resume": RESUME_CHECKPOINT if checkpoint is not None else RESUME_START,
        "checkpoint_event": checkpoint.event if checkpoint is not None else None,
        "superseded": [after, job.event_seq],
    }
    return json.dumps(data), json.dumps(ranges)


def _status_update(target: JobStatus, now: str, reason: str | None,
                   fields: Mapping[str, str] | None) -> dict[str, str]:
    """The record fields every move to ``target`` writes (a claim adds its counters to them)."""
    update = {"status": target.value, "updated": now, **(fields or {})}
    if reason is not None:
        update["reason"] = reason
    elif target is JobStatus.COMPLETED:
        update["reason"] = ""  # an earlier "requeued: ..." no longer explains anything
    if target in FINAL_STATUSES:
        update["ended"] = now
    return update


def _done_data(status: JobStatus, at: str, reason: str | None, result: str | None) -> str:
    """The ``done`` event: the final status, and the result itself when it is small, so a client
    that followed the job has it without asking again."""
    data: dict[str, Any] = json.loads(_status_data(status, at, reason))
    if result is not None and len(result) <= INLINE_RESULT_CHARS:
        data["result"] = result
    return json.dumps(data)


def _status_data(status: JobStatus, at: str, reason: str | None = None) -> str:
    data: dict[str, Any] = {"status": status.value, "at": at}
    if reason:
        data["reason"] = reason
    return json.dumps(data)


def _job_fields(update: Mapping[str, str]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(Job)}
    out: dict[str, Any] = {}
    for name, value in update.items():
        if name not in names:
            continue
        if name == "status":
            out[name] = JobStatus(value)
        elif name in ("attempts", "run", "max_execution_time", "event_seq"):
            out[name] = int(value)
        elif name == "cancel_requested":
            out[name] = value == "1"
        else:
            out[name] = value
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
