"""Every Redis key and channel qruntime uses, built in one place.

All names live under one namespace (``Settings.namespace``, default ``qrt``). The
Celery broker may share the server; its keys (``celery``, ``_kombu.*``,
``unacked*``) never start with the namespace.

Schema (``{ns}`` = namespace, ``{id}`` = job id):

``{ns}:job:{id}`` — hash, the job record.
    Fields: ``id, program_id, program_version, backend, owner, status, params``
    (JSON text, seed wire format), ``log_level, max_execution_time`` (s),
    ``created, updated, started, ended`` (ISO-8601 UTC), ``attempts`` (int),
    ``run`` (which claim of the job is the latest, the fencing token of its
    supervisor's writes), ``write_seq`` (the last write of that run applied),
    ``worker`` (who runs it), ``reason`` (why it ended, for FAILED/CANCELLED),
    ``cancel_requested`` ("1" once asked), ``event_seq`` (last event id),
    ``event_count, event_bytes, budget_exceeded`` (event budget bookkeeping),
    ``superseded`` (JSON ``[[run, after, upto], …]``: interim results of that run
    with ids in (after, upto] were published again by a later run), ``usage``,
    ``index_score`` (its score in the indexes below: creation time, epoch seconds).
    Writer: JobStore (api creates; worker/reaper transition). Reader: everyone.
    TTL: none while pending; once final, ``job_ttl_s`` plus a grace period, a
    backstop: workers delete finished jobs whole when ``{ns}:expiry`` says so.
``{ns}:job:{id}:result`` — string, the final result text (encoded, or raw str).
    Writer: JobStore.transition (worker). Reader: api. TTL: as the job.
``{ns}:job:{id}:events`` — stream, the job's event log. Entry ids are ``0-<n>``
    with ``n`` = the event id (1, 2, …); fields ``type`` (status | interim | log |
    done | restart), ``data`` (JSON text) and, on what a supervisor wrote, ``run``.
    Writer: EventLog (worker, api on status change). Reader: api (replay, logs,
    interim_results). TTL: as the job.
``{ns}:job:{id}:checkpoint`` — hash, the program's last checkpoint: ``state``
    (encoder output), ``run`` (that saved it), ``event`` (the last event id
    before it), ``at`` (epoch s). Writer: EventLog (supervisor, fenced). Reader:
    supervisor of the next run, JobStore (restart). Deleted when the job ends.
``{ns}:job:{id}:channel`` — pub/sub channel carrying each event as it is
    appended (JSON ``{"id", "type", "data"}``). Publisher: EventLog. Subscriber:
    api's stream relay (pattern ``{ns}:job:*:channel``).
``{ns}:job:{id}:control`` — pub/sub channel telling a job's supervisor to look at
    the record now (payload ``cancel``). Publisher: api. Subscriber: supervisor.
``{ns}:idx:{scope}:{state}`` — sorted set of job ids by creation time (score =
    epoch seconds). ``scope`` is ``owner:<name>`` or ``all``; ``state`` is
    ``any``, ``pending`` or ``finished``. Writer: JobStore. Reader: job listing.
``{ns}:idx:{scope}:program:{program_id}:{state}`` — the same, per program.
``{ns}:expiry`` — sorted set, job id → when the finished job is to be deleted
    (epoch s: ended + ``job_ttl_s``). Writer: JobStore.transition, JobStore.delete.
    Reader: worker housekeeping (JobStore.delete_expired).
``{ns}:running`` — sorted set, job id → last heartbeat (epoch seconds) of every
    RUNNING job. Writer: supervisor heartbeat, JobStore.transition. Reader: reaper.
``{ns}:workers`` — hash, worker name → JSON ``{"queues", "seen"}`` (the queue
    names it consumes; epoch s of its last announcement). Writer: WorkerRegistry
    (worker reaper: announce every ``reaper_interval_s``, forget on shutdown).
    Reader: WorkerRegistry.live (api ``/backends``, ``/health``), which ignores
    entries older than ``WORKER_SILENCE_S``. TTL: none.
``{ns}:replication-probe`` — string, the time of the last write confirmed with
    WAIT (orchestrator/outage.py, only when ``QRT_REDIS_MIN_REPLICAS`` > 0).
    Writer: JobStore, EventLog. Reader: none. TTL: none.
``{ns}:lost-message-check`` — string with a TTL of ``lost_message_check_s``: set
    (NX) by the worker whose reaper checks for QUEUED jobs without a broker message
    this period (workers/lost_messages.py). TTL: that period.
``{ns}:users`` — hash, user name → JSON ``{"name", "role", "created"}``.
    Writer/reader: Accounts (api admin endpoints, ``qruntime users``). TTL: none.
``{ns}:token:{sha256}`` — hash, one bearer token by the SHA-256 of its secret:
    ``id, user, created, expires_at`` (epoch s or ""), ``description``. Writer:
    Accounts. Reader: api authentication. TTL: the token's expiry, if any.
``{ns}:token_ids`` — hash, public token id → SHA-256 (to list and revoke by id).
``{ns}:program:{id}`` — hash, an uploaded program's current state: ``id, name,
    owner, description, cost, spec`` (JSON), ``is_public`` ("1"/"0"), ``entry``,
    ``version`` (current), ``versions`` (count), ``creation_date, update_date``.
    Writer: ProgramStore (api). Reader: api, workers. TTL: none.
``{ns}:program:{id}:version:{v}`` — hash, one immutable version: the metadata
    fields above as they were, plus ``data`` (the source, or a zip/tar archive),
    ``kind`` (source | zip | tar), ``sha256``, ``created``. Writer: ProgramStore.
    Reader: api (``/versions``, source for authors), workers (materialise). TTL: none.
``{ns}:programs`` — sorted set of uploaded program ids by creation time.
``{ns}:program_names`` — hash, ``owner/name`` → program id (one name per owner).
"""

from __future__ import annotations

import dataclasses

INDEX_STATES = ("any", "pending", "finished")
ALL_SCOPE = "all"


@dataclasses.dataclass(frozen=True)
class Keys:
    """Key builder bound to one namespace."""

    namespace: str = "qrt"

    def job(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}"

    def result(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:result"

    def events(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:events"

    def channel(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:channel"

    def channel_pattern(self) -> str:
        return f"{self.namespace}:job:*:channel"

    def job_id_from_channel(self, channel: str) -> str:
        return channel[len(f"{self.namespace}:job:") : -len(":channel")]

    def checkpoint(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:checkpoint"

    def control(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:control"

    def job_keys(self, job_id: str) -> list[str]:
        """Every key that belongs to one job alone (indexes excluded)."""
        return [self.job(job_id), self.result(job_id), self.events(job_id), self.checkpoint(job_id)]

    @staticmethod
    def owner_scope(owner: str) -> str:
        return f"owner:{owner}"

    def index(self, scope: str, state: str = "any", program_id: str | None = None) -> str:
        if state not in INDEX_STATES:
            raise ValueError(f"unknown index state {state!r}")
        if program_id is None:
            return f"{self.namespace}:idx:{scope}:{state}"
        return f"{self.namespace}:idx:{scope}:program:{program_id}:{state}"

    def index_pattern(self) -> str:
        """SCAN pattern matching every index key."""
        return f"{self.namespace}:idx:*"

    def expiry(self) -> str:
        return f"{self.namespace}:expiry"

    def running(self) -> str:
        return f"{self.namespace}:running"

    def lost_message_check(self) -> str:
        return f"{self.namespace}:lost-message-check"

    def replication_probe(self) -> str:
        return f"{self.namespace}:replication-probe"

    def workers(self) -> str:
        return f"{self.namespace}:workers"

    def users(self) -> str:
        return f"{self.namespace}:users"

    def token(self, digest: str) -> str:
        return f"{self.namespace}:token:{digest}"

    def token_ids(self) -> str:
        return f"{self.namespace}:token_ids"

    def program(self, program_id: str) -> str:
        return f"{self.namespace}:program:{program_id}"

    def program_version(self, program_id: str, version: str) -> str:
        return f"{self.namespace}:program:{program_id}:version:{version}"

    def programs(self) -> str:
        return f"{self.namespace}:programs"

    def program_names(self) -> str:
        return f"{self.namespace}:program_names"
