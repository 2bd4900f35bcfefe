"""Opening the Redis connection every part of qruntime shares, to one server or through Redis Sentinel.

``QRT_REDIS_URL`` (and ``QRT_BROKER_URL``) is either one server (``redis://``,
``rediss://``, ``unix://``) or the sentinels of a replicated one, in kombu's own
form so that the job store and the Celery broker read one URL the same way::

    sentinel://[[user]:password@]host1:port[/db];sentinel://[[user]:password@]host2:port;...

The user and password are the *master's*, as kombu reads them, and the same in
every part (kombu moves on to the next part after a connection error and logs in
with that one's); the db is the first part's, which the others may repeat. The
master's name and the sentinels' own password are settings
(``QRT_REDIS_SENTINEL_MASTER``, ``QRT_REDIS_SENTINEL_PASSWORD``). Redis Cluster is
refused: Celery's Redis broker cannot use one.

Through sentinels, every connection asks them for the master when it connects,
and a pool also asks again at most every :data:`MASTER_RECHECK_S` while it is
used: after a failover whose old master is still up (``SENTINEL FAILOVER``,
maintenance), Redis leaves that old master accepting writes for some ten seconds
before the sentinels demote it, and everything written to it then is lost.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from orchestrator.errors import ConfigurationError

if TYPE_CHECKING:
    from orchestrator.settings import Settings

#: Socket timeouts keep a dead Redis from hanging a request or a supervisor forever.
CONNECT_TIMEOUT_S = 5.0
#: No qruntime command blocks on the server, so one that gets no answer this long
#: means a hung Redis: fail it, so a supervisor stops its program (and the reaper
#: settles the job) instead of both waiting forever.
SOCKET_TIMEOUT_S = 60.0
HEALTH_CHECK_INTERVAL_S = 30
#: Connections one process opens at most. redis-py's default pool caps at 100 and then
#: *fails* the command; a gevent API serving hundreds of streams has bursts above that.
MAX_CONNECTIONS = 200
#: How long a command waits for a free pooled connection before failing.
POOL_WAIT_S = 20.0

SENTINEL_SCHEME = "sentinel"
#: A sentinel's port when its part of the URL names none (Redis's default).
SENTINEL_DEFAULT_PORT = 26379
#: A sentinel answers from memory in well under a millisecond: one that takes this long
#: (connecting or answering) is down, and the next one is asked.
SENTINEL_TIMEOUT_S = 0.5
#: How often a pool in use asks the sentinels whether the master moved; a manual failover's
#: old master keeps taking writes (then lost) until the sentinels demote it, ~10 s later.
MASTER_RECHECK_S = 0.5
#: After no sentinel answered a re-check, how long before the next one (each costs up
#: to SENTINEL_TIMEOUT_S per sentinel, paid by the command that triggers it).
MASTER_RECHECK_AFTER_FAILURE_S = 5.0


@dataclasses.dataclass(frozen=True)
class SentinelURL:
    """What a ``sentinel://`` URL names: the sentinels, and the master's db and login."""

    sentinels: tuple[tuple[str, int], ...]
    db: int | None = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str, setting: str = "QRT_REDIS_URL") -> SentinelURL | None:
    """The sentinels ``url`` names, or None when it names one server (left to redis-py / kombu).

    Raises:
        ConfigurationError: a Redis Cluster URL, several servers that are not sentinels,
            or a ``sentinel://`` URL that is malformed or that kombu would read otherwise.
            The message never repeats a password.
    """
    parts = [part.strip() for part in url.split(";") if part.strip()]
    schemes = {part.partition("://")[0].lower() for part in parts}
    if any("cluster" in scheme for scheme in schemes) or any("," in urlsplit(part).netloc for part in parts):
        raise ConfigurationError(
            f"{setting} names a Redis Cluster (or several servers in one URL), which qruntime does not support (Celery's Redis broker "
            "cannot use one). Use one Redis server, or Redis Sentinel for failover: "
            "sentinel://host1:26379;sentinel://host2:26379;sentinel://host3:26379 (docs/deploy.md).")
    if schemes != {SENTINEL_SCHEME}:
        if len(parts) > 1:
            raise ConfigurationError(
                f"{setting} lists {len(parts)} URLs separated by ';'; only sentinels can be listed "
                "(sentinel://host1:26379;sentinel://host2:26379;...).")
        return None
    first, *rest = (_sentinel_part(part, setting) for part in parts)
    for part in rest:
        host, port = part.sentinels[0]
        if (part.username, part.password) != (first.username, first.password):
            # kombu logs in with the first part's, and after a connection error with the next one's.
            raise ConfigurationError(
                f"{setting}: the part for the sentinel at {host}:{port} does not give the same user and "
                "password as the first part; give the master's login in every part, the same "
                "(kombu, Celery's broker library, moves on to the next part after a connection error).")
        if part.db is not None and part.db != (first.db or 0):
            raise ConfigurationError(f"{setting}: the part for the sentinel at {host}:{port} names another "
                                     "db than the first part; name it in the first part, or the same in every part.")
    return SentinelURL(
        sentinels=tuple(part.sentinels[0] for part in (first, *rest)),
        db=first.db or 0, username=first.username, password=first.password,
    )


def _sentinel_part(part: str, setting: str) -> SentinelURL:
    """One ``sentinel://[[user]:password@]host[:port][/db]`` of the list (``db`` None if it names none)."""
    split = urlsplit(part)
    if not split.hostname:
        raise ConfigurationError(f"{setting}: a sentinel:// part names no host.")
    where = f"{setting}: the part for the sentinel at {split.hostname}"
    try:
        port = split.port or SENTINEL_DEFAULT_PORT
    except ValueError:
        raise ConfigurationError(f"{where} has a port that is not a number.") from None
    if split.query or split.fragment:
        raise ConfigurationError(f"{where} has options after '?' or '#', which are not read; "
                                 "settings carry them (QRT_REDIS_SENTINEL_*).")
    path = split.path.strip("/")
    if path and not path.isdigit():
        raise ConfigurationError(f"{where} names db {path!r}; a db is a number, as in sentinel://host:26379/0.")
    return SentinelURL(
        sentinels=((split.hostname, port),),
        db=int(path) if path else None,
        username=unquote(split.username) if split.username else None,
        password=unquote(split.password) if split.password else None,
    )


class SentinelBlockingConnectionPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's sentinel-managed pool, blocking like ``connect``'s plain pool, re-checking the master.

    Each connection asks the sentinels for the master when it connects, and one
    that meets a demoted master (READONLY) drops itself (redis-py's
    SentinelManagedConnection). On top, a checkout asks the sentinels again at
    most every :data:`MASTER_RECHECK_S`; when the master moved, idle connections
    are closed and busy ones are dropped when released, so the next commands go
    to the new master even while the old one still takes writes.
    """

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)
        self._next_recheck = 0.0

    def get_connection(self, *args: Any, **kwargs: Any) -> redis.connection.Connection:
        self.recheck_master()
        return super().get_connection(*args, **kwargs)

    def recheck_master(self) -> None:
        """Ask the sentinels for the master, at most every MASTER_RECHECK_S; keep going if none answers."""
        now = time.monotonic()
        if now < self._next_recheck:
            return
        self._next_recheck = now + MASTER_RECHECK_S
        try:
            self.get_master_address()  # on a change, closes the idle connections to the old master
        except redis.ConnectionError:  # no sentinel answered (MasterNotFoundError is one)
            self._next_recheck = now + MASTER_RECHECK_AFTER_FAILURE_S

    def is_current(self, connection: redis.connection.Connection) -> bool:
        """Whether ``connection`` still goes to the master the sentinels name (re-checked as above)."""
        self.recheck_master()
        return self.master_address is None or (connection.host, connection.port) == self.master_address

    def release(self, connection: redis.connection.Connection) -> None:
        stale = connection.pid == self.pid and not self.owns_connection(connection)
        super().release(connection)  # a stale one is disconnected and its slot freed
        if stale:
            with self._lock:  # and forgotten, or each failover would leave its busy connections here
                self._connections = [c for c in self._connections if c is not connection]

    def close(self) -> None:
        super().close()
        for sentinel in self.sentinel_manager.sentinels:  # the connections to the sentinels themselves
            sentinel.close()


class Sentinels(Sentinel):
    """redis-py's client of the sentinels, saying in one line why no master was found.

    redis-py's own message repeats each sentinel client's full settings (kilobytes,
    in ``/health`` and in logs); this one names each sentinel and what it answered.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        problems = []
        for index, sentinel in enumerate(self.sentinels):
            where = "{host}:{port}".format_map(sentinel.connection_pool.connection_kwargs)
            try:
                masters = sentinel.sentinel_masters()
            except redis.RedisError as exc:  # down, a wrong password, or not a sentinel at all
                problems.append(str(exc) if where in str(exc) else f"{where}: {exc}")
                continue
            state = masters.get(service_name)
            if state is None:
                problems.append(f"{where} monitors no master of that name")
            elif not self.check_master_state(state, service_name):
                problems.append(f"{where} sees the master down")
            else:
                self.sentinels[0], self.sentinels[index] = sentinel, self.sentinels[0]  # ask it first next time
                return state["ip"], state["port"]
        raise MasterNotFoundError(f"No master found for {service_name!r}: {'; '.join(problems)}")


def connect(settings: Settings) -> redis.Redis:
    """A client for ``settings.redis_url`` (bytes responses; callers decode).

    The pool blocks (cooperatively, under gevent) when all connections are busy
    instead of raising "Too many connections". Closing the client closes its pool
    (and, through sentinels, its connections to them).
    """
    options = {
        "max_connections": MAX_CONNECTIONS,
        "timeout": POOL_WAIT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }
    target = parse_redis_url(settings.redis_url)
    if target is None:
        pool = redis.BlockingConnectionPool.from_url(settings.redis_url, **options)
        return redis.Redis.from_pool(pool)  # closing the client closes its pool
    sentinels = Sentinels(list(target.sentinels), sentinel_kwargs=sentinel_kwargs(settings))
    return sentinels.master_for(
        settings.redis_sentinel_master,
        connection_pool_class=SentinelBlockingConnectionPool,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


def sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """How to reach the sentinels themselves (redis-py's and kombu's ``sentinel_kwargs``).

    No retries: the next sentinel is the retry (redis-py's default of ten, with
    backoff, made one dead sentinel cost seconds each time the master is looked up).
    """
    options: dict[str, Any] = {"socket_connect_timeout": SENTINEL_TIMEOUT_S, "socket_timeout": SENTINEL_TIMEOUT_S,
                               "retry": Retry(NoBackoff(), 0)}
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password
    return options


def follows_master(client: redis.Redis, connection: redis.connection.Connection | None) -> bool:
    """Whether a connection held outside the pool (a pub/sub's) still goes to the master.

    Always True for one server; through sentinels, False once they name another
    master (see :class:`SentinelBlockingConnectionPool`), so its holder reconnects.
    """
    pool = client.connection_pool
    if connection is None or not isinstance(pool, SentinelBlockingConnectionPool):
        return True
    return pool.is_current(connection)
