"""``/backends``: the catalogue, with which live workers serve each backend's queue.

Each entry is a catalogue :class:`~orchestrator.backends.BackendInfo` plus
``workers`` (names of live workers consuming its queue) and ``served`` (whether
there is any). A job for a backend no live worker serves is accepted and stays
QUEUED until a worker for that queue starts (``Services.waiting_note``).
"""

from __future__ import annotations

from typing import Any

from api.openapi import Blueprint
from api.responses import BackendListSchema, Extended
from api.services import services
from orchestrator.backends import CATALOGUE

blueprint = Blueprint("backends", __name__, description="The backends jobs may run on.")


@blueprint.get("/backends")
@blueprint.response(200, BackendListSchema)
@blueprint.errors(401)
def list_backends() -> dict[str, Any]:
    """Every backend in the catalogue, with the live workers serving it."""
    svc = services()
    live = svc.workers.live()
    backends = []
    for info in CATALOGUE:
        workers = svc.workers_serving(info, live)
        backends.append(Extended(info, workers=workers, served=bool(workers)))
    return {"backends": backends, "count": len(backends)}
