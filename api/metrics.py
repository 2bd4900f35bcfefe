"""``GET /metrics``: the API's Prometheus metrics, for the operator's scraper.

Metrics name programs and backends, so they are not public: ``/metrics`` takes
the bearer token ``QRT_METRICS_TOKEN`` (what a Prometheus scrape config sends
as ``authorization: credentials``) or an admin's token, and answers 404 to
anyone else, as if it were not there. Besides what the API's processes count
(orchestrator/metrics.py), each scrape reads from Redis what no single process
knows: the jobs waiting in each backend queue and the jobs running on each
backend.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.services import services
from orchestrator import metrics
from orchestrator.backends import CATALOGUE
from orchestrator.errors import NotFoundError

blueprint = Blueprint("metrics", __name__)
#: The endpoint the auth hook lets through without a user's token (it checks its own).
ENDPOINT = "metrics.metrics_endpoint"


@blueprint.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus metrics (QRT_METRICS_TOKEN or an admin token)."""
    if not _may_scrape():
        raise NotFoundError(f"No such endpoint: {request.method} {request.path}")
    registry = metrics.registry()
    collector = _StoreCollector()
    registry.register(collector)
    try:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
    finally:
        registry.unregister(collector)


def register(app: Flask) -> None:
    """Time every request, by endpoint (the route, not the path: ids are not labels) and status."""

    @app.before_request
    def _start_clock() -> None:
        g.qruntime_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("qruntime_started")
        if started is not None and request.endpoint != ENDPOINT:
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.REQUEST_SECONDS.labels(endpoint=endpoint, method=request.method,
                                           status=str(response.status_code)).observe(time.perf_counter() - started)
        return response


def _may_scrape() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if not token:
        return False
    expected = services().settings.metrics_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    identity = services().accounts.authenticate(token)
    return identity is not None and identity.is_admin


class _StoreCollector(Collector):
    """Queue lengths and running jobs, read from Redis at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        svc = services()
        queued = GaugeMetricFamily("qruntime_jobs_queued", "Job messages waiting in each backend queue.",
                                   labels=["queue"])
        with svc.redis.pipeline(transaction=False) as pipe:
            queues = sorted({info.queue for info in CATALOGUE})
            for queue in queues:
                pipe.llen(queue)
            for queue, length in zip(queues, pipe.execute(), strict=True):
                queued.add_metric([queue], length)
        yield queued
        running = GaugeMetricFamily("qruntime_jobs_running", "Jobs running now, by backend.", labels=["backend"])
        counts: dict[str, int] = {}
        keys = svc.store.keys
        ids = [i.decode() for i in svc.redis.zrange(keys.running(), 0, -1)]
        with svc.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(keys.job(job_id), "backend")
            for backend in pipe.execute():
                if backend is not None:
                    counts[backend.decode()] = counts.get(backend.decode(), 0) + 1
        for backend, count in sorted(counts.items()):
            running.add_metric([backend], count)
        yield running
