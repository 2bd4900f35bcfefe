"""Configuration shared by the API, the workers and the CLI.

Every setting has a default, can be overridden by a ``QRT_<NAME>`` environment
variable, and can be overridden again by an explicit mapping (what tests and
``create_app(config)`` pass). Keeping one dataclass means the API and the
workers can never disagree about a limit they both enforce.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigurationError
from orchestrator.logs import LOG_FORMATS
from orchestrator.redisconn import parse_redis_url

#: Where the built-in programs live: ``programs/`` at the top of the source tree.
BUILTIN_PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"

ENV_PREFIX = "QRT_"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Runtime configuration. Field names map to ``QRT_<FIELD>`` in upper case."""

    #: Redis holding the job store, the event logs and (by default) the Celery broker.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Celery broker; empty means "same as redis_url".
    broker_url: str = ""
    #: The master's name in Redis Sentinel, for a ``sentinel://`` redis_url or broker_url
    #: (``sentinel://[:password@]host1:26379[/db];sentinel://[:password@]host2:26379;...``, the
    #: master's password in every part). docs/deploy.md, "Redis high availability (Sentinel)".
    redis_sentinel_master: str = "mymaster"
    #: Password of the sentinels themselves (their ``requirepass``), if they have one; the
    #: master's own password is the one in the URL.
    redis_sentinel_password: str = ""
    #: Prefix of every key qruntime writes, so several deployments can share a server.
    namespace: str = "qrt"
    #: Largest request body the API accepts (the seed capped at 127 KB).
    max_payload_bytes: int = 16 * 1024 * 1024
    #: Processes per API process that check hostile input (schemas, inputs, archives, source).
    check_processes: int = 2
    #: Longest one such check may take, plus ``check_timeout_per_mb_s`` per MiB checked.
    check_timeout_s: float = 1.0
    check_timeout_per_mb_s: float = 0.25
    #: Memory one check may allocate beyond what its process needs at rest.
    check_memory_mb: int = 512
    #: Server-wide ceiling on a program's max_execution_time (the seed's simulator cap: 3 h).
    max_execution_time_ceiling_s: int = 3 * 3600
    #: Extra directories of programs, ``os.pathsep``-separated, served like built-ins.
    programs_dirs: str = ""
    #: Memory of all of a job's processes together (a cgroup), and of each one (RLIMIT_AS).
    job_memory_mb: int = 8192
    #: CPU cores all of a job's processes together may use at once (a cgroup quota); 0: no cap,
    #: only an equal share with the worker's other jobs when the CPUs are busy.
    job_cpus: float = 0.0
    #: Open file limit of a program's process.
    job_max_open_files: int = 1024
    #: Processes (and threads) a job may have at once.
    job_pids_max: int = 256
    #: Size of a job's scratch directory (cwd, HOME, TMPDIR); writing past it fails with ENOSPC.
    job_disk_mb: int = 1024
    #: First of the uids a root worker hands to jobs, one per concurrent job (blocks of 64 per worker).
    job_uid_base: int = 1_500_000_000
    #: Confined children a worker keeps ready for jobs; 0 means one per pool slot.
    sandbox_ready: int = 0
    #: Where qruntime keeps its files: the embedded Redis of ``qruntime up``, each worker's program cache.
    data_dir: str = ""
    #: How often a running job's supervisor proves it is alive.
    heartbeat_interval_s: float = 1.0
    #: A running job whose heartbeat is older than this is considered orphaned.
    heartbeat_stale_s: float = 15.0
    #: How often a worker looks for orphaned jobs.
    reaper_interval_s: float = 5.0
    #: How many times a job orphaned by a dead worker is run before it is failed.
    max_attempts: int = 2
    #: Grace between SIGTERM and SIGKILL when a program is stopped.
    kill_grace_s: float = 2.0
    #: Bearer token a Prometheus scraper sends for the API's /metrics (admins' tokens work too).
    metrics_token: str = ""
    #: Port of a worker's Prometheus /metrics (0: none), and the address it listens on.
    worker_metrics_port: int = 0
    worker_metrics_address: str = "127.0.0.1"
    #: How long a worker asked to stop (SIGTERM) lets its running jobs finish before it hands them
    #: back to the queue (without using up one of their attempts) and exits.
    shutdown_grace_s: float = 30.0
    #: How long finished jobs (record, result, events) are kept.
    job_ttl_s: int = 30 * 86400
    #: Per-job budget of events (interim results + log lines) kept in the event log.
    max_events_per_job: int = 100_000
    #: Per-job budget of bytes of event payload kept in the event log.
    max_event_bytes_per_job: int = 256 * 1024 * 1024
    #: Largest final result a program may leave.
    max_result_bytes: int = 64 * 1024 * 1024
    #: Largest state a program may save with ``user_messenger.checkpoint`` (the last one is kept).
    max_checkpoint_bytes: int = 8 * 1024 * 1024
    #: How long a supervisor keeps retrying a write while Redis cannot be reached (a failover,
    #: a network cut) before it stops the job's program; its job is then the reaper's to settle.
    store_outage_s: float = 60.0
    #: Replicas that must hold a write before qruntime counts on it (Redis WAIT): a job, a status,
    #: an event, a checkpoint. 0 (one Redis) waits for none; with Sentinel set 1, so a failover
    #: cannot lose what a client was already told.
    redis_min_replicas: int = 0
    #: How long a job may wait QUEUED before the workers check that its Celery message still
    #: exists (a failover or a broker restart can lose one) and send it again if not; also how
    #: often one worker makes that check.
    lost_message_check_s: float = 60.0
    #: How long a cancel request waits for a running job to stop before answering.
    cancel_wait_s: float = 10.0
    #: "on" (every endpoint but /health needs a bearer token) or "off" (one local admin).
    auth: str = "on"
    #: "isolated" (a program gets an empty network namespace) or "host" (the worker's network).
    job_network: str = "isolated"
    #: Browser origins allowed to call the API cross-origin (comma-separated, "*" for any; empty: none).
    cors_origins: str = ""
    #: Idle time after which an SSE stream sends a keep-alive comment (proxies cut silent connections).
    stream_keepalive_s: float = 15.0
    #: Reconnection delay an SSE stream suggests to EventSource clients (the ``retry:`` field).
    stream_retry_ms: int = 3000
    #: Live events one SSE client may have waiting before it is cut off (it resumes via Last-Event-ID).
    stream_client_queue_events: int = 10_000
    #: Bytes of live events one SSE client may have waiting before it is cut off.
    stream_client_queue_bytes: int = 16 * 1024 * 1024
    #: Flower's login as ``user:password`` (comma-separated for several); empty: ``qruntime up
    #: --flower`` makes one for its run. Flower reads it as FLOWER_BASIC_AUTH, never from argv.
    flower_basic_auth: str = ""
    #: How the API's and the workers' logs are written: "text" (lines for people) or "json"
    #: (one object per line, for a log collector; lines about a job carry its id, program,
    #: backend and worker).
    log_format: str = "text"

    def __post_init__(self) -> None:
        """Refuse values that would silently break the service (a job run twice, a limit of -1)."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigurationError(f"{ENV_PREFIX}{field.name.upper()}={value} must not be negative.")
        if self.max_attempts < 1:
            raise ConfigurationError(f"{ENV_PREFIX}MAX_ATTEMPTS={self.max_attempts} must be at least 1.")
        if self.heartbeat_stale_s <= self.heartbeat_interval_s:
            # A live supervisor would look dead between two beats and its job would run twice.
            raise ConfigurationError(
                f"{ENV_PREFIX}HEARTBEAT_STALE_S={self.heartbeat_stale_s} must be longer than "
                f"{ENV_PREFIX}HEARTBEAT_INTERVAL_S={self.heartbeat_interval_s}."
            )
        for name in ("stream_keepalive_s", "stream_client_queue_events", "stream_client_queue_bytes",
                     "check_processes", "check_timeout_s", "check_memory_mb", "lost_message_check_s"):
            if getattr(self, name) == 0:  # 0 would spin on keep-alives, cut every stream or refuse every check
                raise ConfigurationError(f"{ENV_PREFIX}{name.upper()}=0 must be positive.")
        if self.job_cpus < 0:
            raise ConfigurationError(f"{ENV_PREFIX}JOB_CPUS={self.job_cpus} must be 0 (no cap) or more.")
        if self.job_pids_max < 8:  # the job's init, its program and Python's own helpers
            raise ConfigurationError(f"{ENV_PREFIX}JOB_PIDS_MAX={self.job_pids_max} must be at least 8.")
        if self.job_uid_base < 1000 or self.job_uid_base + 4096 * 64 >= 2**32 - 1:
            raise ConfigurationError(f"{ENV_PREFIX}JOB_UID_BASE={self.job_uid_base} must leave room for "
                                     "job uids between 1000 and 2^32-2.")
        for name in ("redis_url", "broker_url"):  # a Redis Cluster or a malformed sentinel:// list
            if parse_redis_url(getattr(self, name), f"{ENV_PREFIX}{name.upper()}") and not self.redis_sentinel_master:
                raise ConfigurationError(f"{ENV_PREFIX}REDIS_SENTINEL_MASTER must name the master the "
                                         f"sentinels of {ENV_PREFIX}{name.upper()} monitor.")
        if self.auth not in ("on", "off"):
            raise ConfigurationError(f"{ENV_PREFIX}AUTH={self.auth!r} must be 'on' or 'off'.")
        if self.log_format not in LOG_FORMATS:
            raise ConfigurationError(f"{ENV_PREFIX}LOG_FORMAT={self.log_format!r} must be 'text' or 'json'.")
        if self.job_network not in ("isolated", "host"):
            raise ConfigurationError(f"{ENV_PREFIX}JOB_NETWORK={self.job_network!r} must be 'isolated' or 'host'.")
        if self.flower_basic_auth and not all(
            user and password for user, _, password in (
                login.partition(":") for login in self.flower_basic_auth.split(",")
            )
        ):  # the value is a secret: the message must not repeat it
            raise ConfigurationError(f"{ENV_PREFIX}FLOWER_BASIC_AUTH must be user:password (several: "
                                     "user1:pw1,user2:pw2), with neither part empty.")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else Path.home() / ".qruntime"

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def program_paths(self) -> list[Path]:
        extra = [Path(p) for p in self.programs_dirs.split(os.pathsep) if p.strip()]
        return [BUILTIN_PROGRAMS_DIR, *extra]

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Defaults, then ``QRT_*`` environment variables, then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = _coerce(field, raw)
        for name, value in (overrides or {}).items():
            key = name.lower().removeprefix(ENV_PREFIX.lower())
            if key not in {f.name for f in dataclasses.fields(cls)}:
                raise ConfigurationError(f"Unknown setting {name!r}.")
            field = next(f for f in dataclasses.fields(cls) if f.name == key)
            values[key] = _coerce(field, value) if isinstance(value, str) else value
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The settings as ``QRT_*`` variables, to hand to a child process."""
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in dataclasses.fields(self)
        }


def _coerce(field: dataclasses.Field, raw: str) -> Any:
    kind = field.type if isinstance(field.type, type) else {"int": int, "float": float}.get(
        str(field.type), str
    )
    try:
        return kind(raw)
    except ValueError:
        raise ConfigurationError(
            f"{ENV_PREFIX}{field.name.upper()}={raw!r} is not a valid {kind.__name__}."
        ) from None
