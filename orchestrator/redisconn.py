"""Opening the Redis connection every part of qruntime shares."""

from __future__ import annotations

import redis

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


def connect(settings: Settings) -> redis.Redis:
    """A client for ``settings.redis_url`` (bytes responses; callers decode).

    The pool blocks (cooperatively, under gevent) when all connections are busy
    instead of raising "Too many connections".
    """
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes its pool
