"""``/backends``: the catalogue, with which live workers serve each backend's queue."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, jsonify

from api.services import services
from orchestrator.backends import CATALOGUE

blueprint = Blueprint("backends", __name__)

#: A worker not heard from for this long is not counted as serving anything.
WORKER_SILENCE_S = 60


def live_workers() -> dict[str, dict]:
    svc = services()
    raw = svc.redis.hgetall(svc.store.keys.workers())
    now = time.time()
    workers = {}
    for name, record in raw.items():
        info = json.loads(record)
        if now - info.get("seen", 0) <= WORKER_SILENCE_S:
            workers[name.decode() if isinstance(name, bytes) else name] = info
    return workers


@blueprint.get("/backends")
def list_backends() -> Response:
    workers = live_workers()
    backends = []
    for info in CATALOGUE:
        entry = info.to_api()
        entry["workers"] = sorted(w for w, rec in workers.items() if info.queue in rec.get("queues", []))
        backends.append(entry)
    return jsonify({"backends": backends, "count": len(backends)})
