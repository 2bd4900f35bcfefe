"""``/health``: is Redis reachable, and how many workers are alive (no token needed)."""

from __future__ import annotations

from typing import Any

import redis

from api.openapi import Blueprint
from api.responses import HealthSchema
from api.services import services

blueprint = Blueprint("health", __name__, description="Liveness of the API and its store.")


@blueprint.get("/health")
@blueprint.public
@blueprint.response(200, HealthSchema)
@blueprint.alt_response(503, schema=HealthSchema, description="Redis is unreachable.")
def health() -> tuple[dict[str, Any], int]:
    """Whether Redis answers, and how many workers are alive."""
    try:
        services().redis.ping()
    except redis.RedisError as exc:
        return {"status": "unavailable", "redis": f"{type(exc).__name__}: {exc}"}, 503
    return {"status": "ok", "redis": "ok", "workers": len(services().workers.live())}, 200
