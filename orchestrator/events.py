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
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import redis

from orchestrator.keys import Keys

EVENT_STATUS = "status"
EVENT_INTERIM = "interim"
EVENT_LOG = "log"
EVENT_DONE = "done"
EVENT_TYPES = (EVENT_STATUS, EVENT_INTERIM, EVENT_LOG, EVENT_DONE)

#: Event types that count against the per-job budget (the rest are bounded by the lifecycle).
BUDGETED_TYPES = frozenset({EVENT_INTERIM, EVENT_LOG})

_APPEND_LUA = """
-- KEYS: job hash, events stream, channel
-- ARGV: type, data, budgeted (1/0), max_events, max_bytes, over-budget notice (JSON)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local etype = ARGV[1]
local data = ARGV[2]
if ARGV[3] == '1' then
  local count = tonumber(redis.call('HGET', KEYS[1], 'event_count') or '0')
  local bytes = tonumber(redis.call('HGET', KEYS[1], 'event_bytes') or '0')
  if count + 1 > tonumber(ARGV[4]) or bytes + string.len(data) > tonumber(ARGV[5]) then
    if redis.call('HSETNX', KEYS[1], 'budget_exceeded', '1') == 0 then return -1 end
    etype = 'log'
    data = ARGV[6]
  else
    redis.call('HINCRBY', KEYS[1], 'event_count', 1)
    redis.call('HINCRBY', KEYS[1], 'event_bytes', string.len(data))
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'event_seq', 1)
redis.call('XADD', KEYS[2], '0-' .. n, 'type', etype, 'data', data)
redis.call('PUBLISH', KEYS[3], '{"id":' .. n .. ',"type":"' .. etype .. '","data":' .. data .. '}')
return n
"""


@dataclasses.dataclass(frozen=True)
class Event:
    """One entry of a job's event log. ``data`` is JSON text, kept byte-for-byte."""

    id: int
    type: str
    data: str

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
    ) -> None:
        self._redis = redis_client
        self._keys = keys
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._append = redis_client.register_script(_APPEND_LUA)

    def append(
        self, job_id: str, event_type: str, data: str, *, pipeline: redis.client.Pipeline | None = None
    ) -> int | None:
        """Append one event; returns its id, 0 if the job is gone, -1 if over budget.

        With ``pipeline`` the append is queued in that transaction and None is returned.
        """
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
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
        ]
        keys = [self._keys.job(job_id), self._keys.events(job_id), self._keys.channel(job_id)]
        if pipeline is not None:
            # EVAL, not the registered script's EVALSHA: in a pipeline redis-py would first
            # ask SCRIPT EXISTS, one more round trip on every status change. Redis caches
            # the compiled body by its digest either way.
            pipeline.eval(_APPEND_LUA, len(keys), *keys, *args)
            return None
        return int(self._append(keys=keys, args=args))

    def read(
        self, job_id: str, *, after: int = 0, types: tuple[str, ...] | None = None, count: int | None = None
    ) -> list[Event]:
        """Events with id > ``after``, oldest first, optionally only some types."""
        return list(self.iter(job_id, after=after, types=types, count=count))

    def iter(
        self, job_id: str, *, after: int = 0, types: tuple[str, ...] | None = None,
        count: int | None = None, page: int = 1000,
    ) -> Iterator[Event]:
        key = self._keys.events(job_id)
        start = f"(0-{after}" if after > 0 else "-"
        seen = 0
        while True:
            batch = self._redis.xrange(key, min=start, max="+", count=page)
            if not batch:
                return
            for entry_id, fields in batch:
                event = _event_from_entry(entry_id, fields)
                if types is None or event.type in types:
                    yield event
                    seen += 1
                    if count is not None and seen >= count:
                        return
            last = batch[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else last)
            if len(batch) < page:
                return


def _event_from_entry(entry_id: bytes | str, fields: dict) -> Event:
    raw_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    get = lambda name: fields.get(name.encode(), fields.get(name))  # noqa: E731
    etype, data = get("type"), get("data")
    return Event(
        id=int(raw_id.split("-", 1)[1]),
        type=etype.decode() if isinstance(etype, bytes) else etype,
        data=data.decode() if isinstance(data, bytes) else data,
    )
