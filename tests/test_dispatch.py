"""Handing jobs to workers: one task name and one Celery configuration for the API and the workers.

The layering tests read the source with ``ast``: ``api/`` reaches the workers
only through ``orchestrator.dispatch`` and the broker, never by importing them,
and ``orchestrator/`` stays free of Flask and Celery.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.backends import find_backend
from orchestrator.dispatch import TASK_RUN_JOB, VISIBILITY_MARGIN_S, celery_config, enqueue
from orchestrator.redisconn import connect
from orchestrator.settings import Settings

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _imported_packages(directory: str) -> dict[str, set[str]]:
    """Top-level package of every absolute import in ``directory``'s modules, by module path."""
    found: dict[str, set[str]] = {}
    for path in sorted((SOURCE_ROOT / directory).rglob("*.py")):
        packages: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                packages.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                packages.add(node.module.split(".")[0])
        found[str(path.relative_to(SOURCE_ROOT))] = packages
    return found


# -- layering ------------------------------------------------------------------------


def test_api_imports_nothing_from_workers() -> None:
    imports = _imported_packages("api")
    assert "api/jobs.py" in imports  # the scan sees the module that enqueues
    assert {path for path, packages in imports.items() if "workers" in packages} == set()


@pytest.mark.parametrize("forbidden", ["flask", "celery", "kombu", "api", "workers"])
def test_orchestrator_imports_neither_a_framework_nor_its_users(forbidden: str) -> None:
    imports = _imported_packages("orchestrator")
    assert "orchestrator/dispatch.py" in imports
    assert {path for path, packages in imports.items() if forbidden in packages} == set()


# -- configuration -------------------------------------------------------------------


def test_the_broker_is_the_job_store_redis_unless_one_is_named() -> None:
    same = Settings.load({"redis_url": "redis://store:6379/0"}, environ={})
    assert celery_config(same)["broker_url"] == "redis://store:6379/0"
    apart = Settings.load({"redis_url": "redis://store:6379/0", "broker_url": "redis://broker:6379/1"}, environ={})
    assert celery_config(apart)["broker_url"] == "redis://broker:6379/1"


def test_a_message_is_not_redelivered_while_the_longest_allowed_job_may_still_run() -> None:
    settings = Settings.load({"max_execution_time_ceiling_s": 7200}, environ={})
    timeout = celery_config(settings)["broker_transport_options"]["visibility_timeout"]
    assert timeout == 7200 + VISIBILITY_MARGIN_S


def test_a_message_survives_a_worker_that_dies_mid_job() -> None:
    config = celery_config(Settings.load(environ={}))
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["accept_content"] == ["json"]


def test_the_api_and_the_workers_configure_celery_alike(settings: Settings) -> None:
    from api.services import Services
    from workers.celery_app import make_celery

    api_conf = Services.build(settings).celery.conf
    worker_conf = make_celery(settings).conf
    for name, value in celery_config(settings).items():
        assert api_conf[name] == value, name
        assert worker_conf[name] == value, name


def test_the_workers_register_the_task_under_the_dispatched_name() -> None:
    import workers.celery_app

    assert workers.celery_app.TASK_RUN_JOB is TASK_RUN_JOB == "qruntime.run_job"


# -- enqueue over a real broker ------------------------------------------------------



@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.load({"redis_url": redis_url}, environ={})


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    client = connect(settings)
    client.flushdb()
    yield client
    client.close()


def test_enqueue_puts_the_job_id_and_nothing_else_on_the_backends_queue(
    settings: Settings, client: redis.Redis
) -> None:
    from api.services import Services

    celery = Services.build(settings).celery
    queue = find_backend("ibmq_montreal").queue
    enqueue(celery, "job-one", queue)
    with celery.connection_for_read() as connection, connection.SimpleQueue(queue) as messages:
        message = messages.get(timeout=5)
        args, kwargs, _ = message.decode()
        message.ack()
    assert message.headers["task"] == TASK_RUN_JOB
    assert (args, kwargs) == (["job-one"], {})


def test_enqueue_needs_nothing_of_its_sender_but_send_task() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sent: list[tuple[str, list, dict]] = []

        def send_task(self, name: str, args: list | None = None, **options: object) -> None:
            self.sent.append((name, args, options))

    recorder = Recorder()
    enqueue(recorder, "job-two", "qruntime.aer")
    assert recorder.sent == [(TASK_RUN_JOB, ["job-two"], {"queue": "qruntime.aer", "task_id": "job-two"})]
