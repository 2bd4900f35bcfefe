"""The API's logs: gunicorn's error and access logs and the app's loggers, in ``QRT_LOG_FORMAT``.

``qruntime api`` runs gunicorn with ``--logger-class api.logs.GunicornLogger``, which
also sends the app's own loggers to gunicorn's error stream in the same format
(otherwise only their warnings would show, bare). In ``json`` an access line is a
JSON object too (method, path without its query string, status, bytes, duration);
one about a job (a ``/jobs/<id>…`` URL, or the 201 of a submit) carries the job's
fields, which :func:`register`'s after-request hook reads from the job record: one
HMGET of three fields per such request, made in ``json`` only.
"""

from __future__ import annotations

import datetime
from typing import Any

import redis
from flask import Flask, Response, request
from gunicorn import glogging

from api.services import services
from orchestrator import logs
from orchestrator.settings import Settings
from orchestrator.store import is_job_id

#: Where a request's job fields wait, in its WSGI environ, for gunicorn's access line.
ENVIRON_KEY = "qruntime.job_fields"


class GunicornLogger(glogging.Logger):
    """Gunicorn's logger, writing in ``QRT_LOG_FORMAT`` and configuring the app's loggers alike."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.log_format = Settings.load().log_format
        if self.log_format == "json":
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    if getattr(handler, "_gunicorn", False):
                        handler.setFormatter(logs.JsonFormatter())
        logs.configure(self.log_format, self.loglevel, text_format=self.error_fmt, datefmt=self.datefmt)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta) -> None:
        if self.log_format != "json":
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        self.access_log.info("%s %s %s", method, path, status, extra={
            "remote_addr": environ.get("REMOTE_ADDR"),
            "method": method,
            "path": path,  # never the query string: a browser's stream URL may carry ?access_token=
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_s": round(request_time.total_seconds(), 6),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            **environ.get(ENVIRON_KEY, {}),
        })


def register(app: Flask, settings: Settings) -> None:
    """In ``json``, have each request about a job leave the job's fields for its access line."""
    if settings.log_format == "json":
        app.after_request(_note_job)


def _note_job(response: Response) -> Response:
    job_id = (request.view_args or {}).get("job_id")
    if job_id is None and request.endpoint == "jobs.submit_job" and response.status_code == 201:
        job_id = (response.location or "").rstrip("/").rpartition("/")[2]
    if not job_id or not is_job_id(job_id):
        return response
    store = services().store
    try:
        program, backend, worker = (
            None if value is None else value.decode() if isinstance(value, bytes) else value
            for value in store.redis.hmget(store.keys.job(job_id), "program_id", "backend", "worker")
        )
    except redis.RedisError:  # the response matters more than its log line
        program = backend = worker = None
    request.environ[ENVIRON_KEY] = logs.job_fields(job_id, program, backend, worker)
    return response
