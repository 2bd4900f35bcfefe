"""How qruntime's processes write their logs: text or JSON lines (``QRT_LOG_FORMAT``), with job fields.

One line per record. ``json``: an object with ``time`` (ISO 8601, UTC), ``level``,
``logger``, ``message``, ``exception`` when there is one, the job fields when the
line is about a job, and whatever else the caller passed as ``extra=``. ``text``:
the usual line, with the job fields appended as ``job_id=… program=…``.

A line is about a job when its record carries ``job_id`` (``extra=job_fields(…)``),
when it is logged inside :func:`about_job` (a context variable a worker sets for the
duration of a job), or when it is one of Celery's own task lines ("Task … received",
"… succeeded"), whose job id and program/backend come from the task's argument and
label (:func:`orchestrator.dispatch.task_label`). Such a line always has all four of
:data:`JOB_FIELDS`; one that is not known there (the worker before a job is claimed) is null.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import datetime
import json
import logging
import sys
from collections.abc import Iterator
from typing import IO, Any

#: What every line about a job carries. ``worker`` is the job record's: the pool process that runs it.
JOB_FIELDS = ("job_id", "program", "backend", "worker")
LOG_FORMATS = ("text", "json")
#: The text line of the workers (Celery's own layout) and, by default, of everything else.
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
#: What ``orchestrator.dispatch.task_label`` puts between a job's program and backend.
LABEL_SEPARATOR = " @ "

_current_job: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "qruntime_job", default=None)
#: A LogRecord's own attributes: everything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName",
    "data",  # Celery's task context, which the job fields and task_id already say
}


def job_fields(job_id: str, program: str | None = None, backend: str | None = None,
               worker: str | None = None) -> dict[str, str | None]:
    """The ``extra=`` of a line about a job (empty strings count as unknown)."""
    return {"job_id": job_id, "program": program or None, "backend": backend or None, "worker": worker or None}


def fields_of(job: Any) -> dict[str, str | None]:
    """The job fields of an ``orchestrator.store.Job``."""
    return job_fields(job.id, job.program_id, job.backend, job.worker)


@contextlib.contextmanager
def about_job(fields: dict[str, str | None]) -> Iterator[None]:
    """Every line logged inside is about this job (unless it names another with ``extra=``)."""
    token = _current_job.set(fields)
    try:
        yield
    finally:
        _current_job.reset(token)


class JobFields(logging.Filter):
    """Puts the job fields on a record that has none: from :func:`about_job`, or Celery's task context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            fields = _current_job.get() or _celery_task_fields(record)
            if fields:
                record.__dict__.update(fields)
        return True


def _celery_task_fields(record: logging.LogRecord) -> dict[str, str | None] | None:
    """Job fields of Celery's "Task <label>[<task id>] received/succeeded/failed" lines."""
    data = getattr(record, "data", None)
    if not isinstance(data, dict) or "args" not in data:
        return None
    try:
        args = ast.literal_eval(str(data["args"]))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(args, (list, tuple)) or len(args) != 1 or not isinstance(args[0], str):
        return None
    program, separator, backend = str(data.get("name", "")).partition(LABEL_SEPARATOR)
    fields: dict[str, str | None] = job_fields(args[0], *((program, backend) if separator else ()))
    return {**fields, "task_id": data.get("id")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        if getattr(record, "job_id", None) is not None:
            entry.update({name: getattr(record, name, None) for name in JOB_FIELDS})
        entry.update({key: value for key, value in record.__dict__.items()
                      if key not in _RECORD_ATTRIBUTES and key not in entry and not key.startswith("_")})
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The usual line, then the job fields it has as ``key=value``, before any traceback."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        if getattr(record, "job_id", None) is None:
            return line
        return line + "".join(f" {name}={value}" for name in JOB_FIELDS
                              if (value := getattr(record, name, None)) is not None)


def formatter(log_format: str, text_format: str = TEXT_FORMAT, datefmt: str | None = None) -> logging.Formatter:
    """The formatter of ``log_format`` ("text" or "json")."""
    return JsonFormatter() if log_format == "json" else TextFormatter(text_format, datefmt)


def handler(log_format: str, stream: IO[str] | None = None, *, text_format: str = TEXT_FORMAT,
            datefmt: str | None = None) -> logging.Handler:
    """A stream handler (default stderr) in ``log_format`` that adds job fields."""
    result = logging.StreamHandler(stream if stream is not None else sys.stderr)
    result.setFormatter(formatter(log_format, text_format, datefmt))
    result.addFilter(JobFields())
    return result


def configure(log_format: str, level: int | str, *, text_format: str = TEXT_FORMAT,
              datefmt: str | None = None) -> None:
    """Send every logger's records to one stderr handler in ``log_format`` (replacing the root's handlers)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format, text_format=text_format, datefmt=datefmt))
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a line in the same format, not bare text
