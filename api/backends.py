"""``/backends``: the catalogue, with which live workers serve each backend's queue.

Each entry is ``BackendInfo.to_api()`` (name, group, queue, num_qubits,
basis_gates, coupling_map_size — directed edges, null for all-to-all —,
simulator_method, noisy, device, aliases) plus ``workers`` (names of live
workers consuming its queue) and ``served`` (whether there is any). A job for a
backend no live worker serves is accepted and stays QUEUED until a worker for
that queue starts; :func:`waiting_note` is what the job JSON then says about it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.services import services
from orchestrator.backends import CATALOGUE, BackendInfo
from orchestrator.worker_registry import WorkerRecord

blueprint = Blueprint("backends", __name__)

def workers_serving(info: BackendInfo, workers: dict[str, WorkerRecord] | None = None) -> list[str]:
    """Names of the live workers consuming ``info``'s queue."""
    workers = services().workers.live() if workers is None else workers
    return sorted(w for w, rec in workers.items() if info.queue in rec.get("queues", []))


def waiting_note(info: BackendInfo) -> str | None:
    """Why a QUEUED job for ``info`` cannot start yet, or None if some live worker serves it."""
    if workers_serving(info):
        return None
    return (
        f"No live worker serves backend {info.name} (queue {info.queue}); the job stays QUEUED "
        f"until a worker for it starts (qruntime worker --backends {info.name})."
    )


@blueprint.get("/backends")
def list_backends() -> Response:
    workers = services().workers.live()
    backends = []
    for info in CATALOGUE:
        entry = info.to_api()
        entry["workers"] = workers_serving(info, workers)
        entry["served"] = bool(entry["workers"])
        backends.append(entry)
    return jsonify({"backends": backends, "count": len(backends)})
