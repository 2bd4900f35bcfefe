"""Opening the Redis connection every part of qruntime shares."""

from __future__ import annotations

import redis

from orchestrator.settings import Settings

#: Socket timeouts keep a dead Redis from hanging a request or a supervisor forever.
CONNECT_TIMEOUT_S = 5.0
HEALTH_CHECK_INTERVAL_S = 30


def connect(settings: Settings) -> redis.Redis:
    """A client for ``settings.redis_url`` (bytes responses; callers decode)."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )
