"""``/health``: is Redis reachable, and how many workers are alive."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from api.services import services

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> tuple[Response, int]:
    try:
        services().redis.ping()
    except redis.RedisError as exc:
        return jsonify({"status": "unavailable", "redis": f"{type(exc).__name__}: {exc}"}), 503
    return jsonify({"status": "ok", "redis": "ok", "workers": len(services().workers.live())}), 200
