"""The two status changes on every job's path, each as one Lua call.

:meth:`JobStore.transition` is the general writer of status: WATCH the job,
read it, decide, MULTI/EXEC (three round trips and the decoding of the whole
record, then the re-encoding of its update). Every job passes through two
status changes on the way from its submit to its result, and both are simple:

- the claim, QUEUED → RUNNING by a worker (:data:`CLAIM_LUA`);
- the end of a run, RUNNING (this very run) → a final status
  (:data:`FINISH_LUA`), written by the run's supervisor.

Each is one script here, applied only when the job is in the state the fast
path assumes. When it is not (the job is gone, was claimed by another worker,
went to another run, or the record predates a field the script needs) the
script changes nothing and answers so, and the store takes the general path,
which says exactly why the change is refused, or applies it. So the rules live
in one place (orchestrator/status.py and ``transition``); these scripts only
write what ``transition`` would have written in that one common case.
"""

from __future__ import annotations

from orchestrator.events import LUA_EMIT

#: KEYS: job hash, events stream, channel, running set.
#: ARGV: now (ISO-8601), worker name, the status event's data, score in the running set, job id.
#: Returns the updated record (flat field/value list), or nil when the job is not QUEUED.
CLAIM_LUA = LUA_EMIT + """
if redis.call('HGET', KEYS[1], 'status') ~= 'QUEUED' then return false end
local counts = redis.call('HMGET', KEYS[1], 'attempts', 'run')
redis.call('HSET', KEYS[1], 'status', 'RUNNING', 'updated', ARGV[1], 'started', ARGV[1],
           'attempts', tonumber(counts[1] or '0') + 1, 'run', tonumber(counts[2] or '0') + 1,
           'write_seq', '0', 'worker', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
emit(KEYS[1], KEYS[2], KEYS[3], 'status', ARGV[3], '')
return redis.call('HGETALL', KEYS[1])
"""

#: KEYS: job hash, events stream, channel, checkpoint hash, result, running set, expiry set,
#:       then the job's ``pending`` index keys, then as many ``finished`` index keys.
#: ARGV: run, status data, done data, result ('' and has-result '0': none), has-result,
#:       TTL seconds, expiry score, job id, index field name, number of index keys per state,
#:       then field, value pairs of the record's update.
#: Returns 1, or 0 when the job is not RUNNING this run (or has no index score): nothing written.
FINISH_LUA = LUA_EMIT + """
local current = redis.call('HMGET', KEYS[1], 'run', 'status', ARGV[9])
if current[1] ~= ARGV[1] or current[2] ~= 'RUNNING' or not current[3] then return 0 end
local job_id = ARGV[8]
local update = {}
for i = 11, #ARGV do update[#update + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(update))
if ARGV[5] == '1' then redis.call('SET', KEYS[5], ARGV[4]) end
redis.call('ZREM', KEYS[6], job_id)
local per_state = tonumber(ARGV[10])
for i = 8, 7 + per_state do redis.call('ZREM', KEYS[i], job_id) end
for i = 8 + per_state, 7 + 2 * per_state do redis.call('ZADD', KEYS[i], current[3], job_id) end
emit(KEYS[1], KEYS[2], KEYS[3], 'status', ARGV[2], '')
emit(KEYS[1], KEYS[2], KEYS[3], 'done', ARGV[3], '')
redis.call('DEL', KEYS[4])
for _, key in ipairs({KEYS[1], KEYS[5], KEYS[2], KEYS[4]}) do redis.call('EXPIRE', key, ARGV[6]) end
redis.call('ZADD', KEYS[7], ARGV[7], job_id)
return 1
"""
