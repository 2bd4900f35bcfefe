"""The qruntime REST API: a Flask app that validates, authorizes, stores and enqueues.

It never runs quantum code. ``create_app(config)`` layers defaults, then ``QRT_*``
environment variables, then ``config``; each resource has its own flask-smorest
blueprint, which ``/openapi.json`` documents. The web console is a plain Flask
blueprint outside the document (HTML, not API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from api import (
    accounts,
    auth,
    backends,
    console,
    cors,
    errors,
    health,
    jobs,
    logs,
    metrics,
    openapi,
    programs,
    stream,
)
from api.services import Services
from orchestrator.settings import Settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` keys are setting names (``redis_url``, ``QRT_NAMESPACE``…)."""
    settings = Settings.load(config)
    app = Flask("qruntime")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    app.json.sort_keys = False
    app.extensions["qruntime"] = Services.build(settings)
    errors.register(app)
    cors.register(app, settings.cors_origins)
    app.before_request(auth.authenticate_request)
    api = openapi.build_api(app)
    for module in (jobs, programs, backends, health, stream, accounts):
        api.register_blueprint(module.blueprint)
    app.register_blueprint(console.blueprint)
    app.register_blueprint(metrics.blueprint)  # for scrapers: outside the document, with its own token
    metrics.register(app)
    logs.register(app, settings)
    return app
