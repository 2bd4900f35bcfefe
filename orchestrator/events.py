"""A job's event log: every status change, interim result and log line, in order.

Each event gets the next integer id of its job (1, 2, …), is appended to the
job's Redis stream and published on the job's channel in one Lua call, so the
log and the live fan-out can never disagree about order or ids. Readers that
join late replay the stream after the last id they saw and then follow the
channel, dropping ids they already have: no gap, no duplicate.

An append is a no-op once the job record is gone, so a supervisor still
running when its job is deleted cannot resurrect its keys. Interim results and
log lines count against a per-job budget; the first event over the budget is
replaced by one log line saying so, later ones are dropped.

A supervisor's appends are *fenced* (:class:`Fence`): each names the run of the
job it belongs to (the job's ``run``, one more at every claim) and its own
sequence number. The Lua call applies it only while the job is RUNNING that
very run, so a worker cut off from Redis, whose job was meanwhile handed to
another worker, cannot add a word to the log when it comes back; and a write
retried after a lost reply is recognised by its sequence number and applied
once. The same call can save the program's checkpoint with the interim result
it goes with, so the two are never apart.

When a run ends without its job ending (its worker was lost or stopped), the
job store appends a ``restart`` event and marks the interim results that run
published after its last checkpoint as *superseded*: the next run starts from
that checkpoint and publishes them again. Readers that replay the log
(:meth:`EventLog.iter` with ``live_only``) skip superseded interim results, so a
client that replays gets each once; a client that saw them live is told by the
``restart`` event.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import redis

from orchestrator.keys import Keys
from orchestrator.outage import wait_for_replicas

EVENT_STATUS = "status"
EVENT_INTERIM = "interim"
EVENT_LOG = "log"
EVENT_DONE = "done"
#: A run of the job ended without the job ending: it goes back to the queue (data: orchestrator.store.restart_data).
EVENT_RESTART = "restart"
EVENT_TYPES = (EVENT_STATUS, EVENT_INTERIM, EVENT_LOG, EVENT_DONE, EVENT_RESTART)

#: A ``restart`` event's ``resume``: the next run starts from the program's last checkpoint, or from the start.
RESUME_CHECKPOINT = "checkpoint"
RESUME_START = "start"

#: The job record's field listing superseded ranges as JSON ``[[run, after, upto], …]`` (JobStore writes it).
SUPERSEDED_FIELD = "superseded"

#: What a fenced append answers besides an event id (> 0).
APPEND_GONE = 0  # the job no longer exists
APPEND_OVER_BUDGET = -1  # dropped: the job's event budget is spent
APPEND_STALE = -2  # refused: the job is no longer RUNNING the writer's run
APPEND_REPEATED = -3  # already applied: a retry of a write whose reply was lost

#: Event types that count against the per-job budget (the rest are bounded by the lifecycle).
BUDGETED_TYPES = frozenset({EVENT_INTERIM, EVENT_LOG})

#: Lua: give one event the job's next id, add it to the job's stream and publish it on its
#: channel. The one place the stream entry and the published message are written, shared by
#: every script that appends (this module's and orchestrator/lifecycle_scripts.py's).
LUA_EMIT = """
local function emit(job, stream, channel, etype, data, run)
  local n = redis.call('HINCRBY', job, 'event_seq', 1)
  if run ~= '' then
    redis.call('XADD', stream, '0-' .. n, 'type', etype, 'data', data, 'run', run)
  else
    redis.call('XADD', stream, '0-' .. n, 'type', etype, 'data', data)
  end
  redis.call('PUBLISH', channel, '{"id":' .. n .. ',"type":"' .. etype .. '","data":' .. data .. '}')
  return n
end
"""

_APPEND_LUA = LUA_EMIT + """
-- KEYS: job hash, events stream, channel, checkpoint hash
-- ARGV: type ('' = no event: a checkpoint alone), data, budgeted (1/0), max_events, max_bytes,
--       over-budget notice (JSON), run ('' = not fenced), write seq, checkpoint state ('' = none), now
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local run = ARGV[7]
if run ~= '' then
  local current = redis.call('HMGET', KEYS[1], 'run', 'status', 'write_seq')
  if current[1] ~= run or current[2] ~= 'RUNNING' then return -2 end
  if tonumber(current[3] or '0') >= tonumber(ARGV[8]) then return -3 end
  redis.call('HSET', KEYS[1], 'write_seq', ARGV[8])
end
local n = -1
local etype = ARGV[1]
if etype ~= '' then
  local data = ARGV[2]
  local keep = true
  if ARGV[3] == '1' then
    local count = tonumber(redis.call('HGET', KEYS[1], 'event_count') or '0')
    local bytes = tonumber(redis.call('HGET', KEYS[1], 'event_bytes') or '0')
    if count + 1 > tonumber(ARGV[4]) or bytes + string.len(data) > tonumber(ARGV[5]) then
      if redis.call('HSETNX', KEYS[1], 'budget_exceeded', '1') == 0 then
        keep = false
      else
        etype = 'log'
        data = ARGV[6]
      end
    else
      redis.call('HINCRBY', KEYS[1], 'event_count', 1)
      redis.call('HINCRBY', KEYS[1], 'event_bytes', string.len(data))
    end
  end
  if keep then
    n = emit(KEYS[1], KEYS[2], KEYS[3], etype, data, run)
  end
end
if ARGV[9] ~= '' then
  local after = tonumber(redis.call('HGET', KEYS[1], 'event_seq') or '0')
  redis.call('HSET', KEYS[4], 'state', ARGV[9], 'event', after, 'run', run, 'at', ARGV[10])
  if etype == '' then n = after end
end
return n
"""


@dataclasses.dataclass(frozen=True)
class Fence:
    """Who is writing: the job's run it belongs to, and this writer's count of its writes (1, 2, …)."""

    run: int
    seq: int


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A program's last saved state: encoder output, the run that saved it, the last event id before it."""

    state: str
    run: int
    event: int
    at: float


@dataclasses.dataclass(frozen=True)
class Event:
    """One entry of a job's event log. ``data`` is JSON text, kept byte-for-byte."""

    id: int
    type: str
    data: str
    #: The run of the job whose supervisor appended it (0: written by the service itself).
    run: int = 0

    def decoded(self) -> Any:
        return json.loads(self.data)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "data": json.loads(self.data)}

    @classmethod
    def from_message(cls, payload: bytes | str) -> Event:
        """Parse what :meth:`EventLog.append` published, keeping ``data`` as text."""
        text = payload.decode() if isinstance(payload, bytes) else payload
        head, _, rest = text.partition(',"data":')
        meta = json.loads(head + "}")
        return cls(id=int(meta["id"]), type=meta["type"], data=rest[:-1])


class EventLog:
    """Appends to and reads from the per-job event logs."""

    def __init__(
        self,
        redis_client: redis.Redis,
        keys: Keys,
        *,
        max_events: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        min_replicas: int = 0,
    ) -> None:
        self._redis = redis_client
        self._keys = keys
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._append = redis_client.register_script(_APPEND_LUA)
        self._min_replicas = min_replicas

    def superseded(self, job_id: str) -> tuple[tuple[int, int, int], ...]:
        """The job's superseded ranges: (run, after event id, up to event id), from its record."""
        raw = self._redis.hget(self._keys.job(job_id), SUPERSEDED_FIELD)
        return tuple(tuple(r) for r in json.loads(raw)) if raw else ()

    def append(
        self, job_id: str, event_type: str, data: str, *, pipeline: redis.client.Pipeline | None = None,
        fence: Fence | None = None, checkpoint: str | None = None,
    ) -> int | None:
        """Append one event; returns its id, or one of the ``APPEND_*`` codes.

        ``fence``: apply only while the job is RUNNING that run, and once per write
        seq. ``checkpoint``: save this state (encoder output) in the same call, as
        the program's last checkpoint. With ``pipeline`` the append is queued in that
        transaction and None is returned.
        """
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        return self._call(job_id, event_type, data, pipeline=pipeline, fence=fence, checkpoint=checkpoint)

    def save_checkpoint(self, job_id: str, state: str, fence: Fence) -> int:
        """Save the program's state alone; returns the last event id it follows, or an ``APPEND_*`` code."""
        result = self._call(job_id, "", "", pipeline=None, fence=fence, checkpoint=state)
        assert result is not None
        return result

    def checkpoint(self, job_id: str) -> Checkpoint | None:
        """The last checkpoint the job's program saved, or None."""
        raw = self._redis.hgetall(self._keys.checkpoint(job_id))
        if not raw:
            return None
        get = lambda name: _text(raw.get(name.encode(), raw.get(name, b"")))  # noqa: E731
        return Checkpoint(state=get("state"), run=int(get("run") or 0), event=int(get("event") or 0),
                          at=float(get("at") or 0))

    def _call(self, job_id: str, event_type: str, data: str, *, pipeline: redis.client.Pipeline | None,
              fence: Fence | None, checkpoint: str | None) -> int | None:
        notice = json.dumps(
            {
                "stream": "qruntime",
                "level": "WARNING",
                "text": (
                    f"qruntime: job {job_id} exceeded its event budget "
                    f"({self._max_events} events or {self._max_bytes} bytes); "
                    "further interim results and log lines are dropped.\n"
                ),
            }
        )
        args = [
            event_type,
            data,
            "1" if event_type in BUDGETED_TYPES else "0",
            self._max_events,
            self._max_bytes,
            notice,
            "" if fence is None else str(fence.run),
            0 if fence is None else fence.seq,
            checkpoint or "",
            repr(time.time()),
        ]
        keys = [self._keys.job(job_id), self._keys.events(job_id), self._keys.channel(job_id),
                self._keys.checkpoint(job_id)]
        if pipeline is not None:
            # EVAL, not the registered script's EVALSHA: in a pipeline redis-py would first
            # ask SCRIPT EXISTS, one more round trip on every status change. Redis caches
            # the compiled body by its digest either way.
            pipeline.eval(_APPEND_LUA, len(keys), *keys, *args)
            return None
        result = int(self._append(keys=keys, args=args))
        if fence is not None and result not in (APPEND_STALE, APPEND_GONE):
            # Written (or written before, a retry): it counts once replicas hold it.
            wait_for_replicas(self._redis, self._min_replicas, self._keys.replication_probe())
        return result

    def read(
        self, job_id: str, *, after: int = 0, types: tuple[str, ...] | None = None, count: int | None = None
    ) -> list[Event]:
        """Events with id > ``after``, oldest first, optionally only some types."""
        return list(self.iter(job_id, after=after, types=types, count=count))

    def iter(
        self, job_id: str, *, after: int = 0, types: tuple[str, ...] | None = None,
        count: int | None = None, page: int = 1000, live_only: bool = False,
    ) -> Iterator[Event]:
        """Events with id > ``after``, oldest first; ``live_only`` skips superseded interim results."""
        superseded = self.superseded(job_id) if live_only else ()
        key = self._keys.events(job_id)
        start = f"(0-{after}" if after > 0 else "-"
        seen = 0
        while True:
            batch = self._redis.xrange(key, min=start, max="+", count=page)
            if not batch:
                return
            for entry_id, fields in batch:
                event = _event_from_entry(entry_id, fields)
                if superseded and is_superseded(event, superseded):
                    continue
                if types is None or event.type in types:
                    yield event
                    seen += 1
                    if count is not None and seen >= count:
                        return
            last = batch[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else last)
            if len(batch) < page:
                return


def is_superseded(event: Event, ranges: tuple[tuple[int, int, int], ...]) -> bool:
    """An interim result that a run published after its last checkpoint, and a later run publishes again."""
    return event.type == EVENT_INTERIM and any(
        event.run == run and after < event.id <= upto for run, after, upto in ranges
    )


def _event_from_entry(entry_id: bytes | str, fields: dict) -> Event:
    raw_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    get = lambda name: fields.get(name.encode(), fields.get(name))  # noqa: E731
    etype, data, run = get("type"), get("data"), get("run")
    return Event(
        id=int(raw_id.split("-", 1)[1]),
        type=_text(etype),
        data=_text(data),
        run=int(run) if run else 0,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
