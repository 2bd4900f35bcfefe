"""Logs as an operator reads them: JSON lines that name the job, and a quiet ``qruntime up``."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from orchestrator import logs
from orchestrator.dispatch import task_label
from qruntime.localredis import free_port
from tests.harness import Stack, start_up, up_env, wait_for


def _spawn(stack: Stack, args: list[str], log: Path) -> subprocess.Popen:
    """``qruntime <args>`` on the stack's settings, stdout and stderr both into ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "qruntime", *args], env=stack.env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _lines_about(log: Path, job_id: str) -> list[dict]:
    """Every line of ``log`` that mentions the job, parsed (a line that is not JSON fails the test)."""
    lines = [line for line in log.read_text().splitlines() if job_id in line]
    assert lines, log.read_text()[-3000:]
    return [json.loads(line) for line in lines]


def test_a_workers_and_an_apis_lines_about_a_job_are_json_with_its_id_program_backend_and_worker(
        tmp_path: Path) -> None:
    stack = Stack(log_format="json")
    try:
        node = f"logs-{os.getpid()}@test"
        worker_log, api_log = tmp_path / "worker.log", tmp_path / "api.log"
        stack.workers.append(_spawn(stack, ["worker", "--concurrency", "1", "--name", node, "--log-level", "INFO"],
                                    worker_log))
        wait_for(lambda: stack.redis.hexists(stack.store.keys.workers(), node) or stack.workers[0].poll() is not None,
                 timeout=120, message="the worker to announce itself")
        port = free_port()
        stack.apis.append(_spawn(stack, ["api", "--port", str(port)], api_log))
        stack.url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(stack.url) or stack.apis[0].poll() is not None, message="the API to answer")
        job = stack.submit("hello-world", {"iterations": 1})
        stack.wait_status(job["id"], "COMPLETED")
        stack.job(job["id"])  # after the run: the job record names its worker
        wait_for(lambda: "ended COMPLETED" in worker_log.read_text(), message="the worker's line on the job's end")
    finally:
        stack.stop()

    worker_lines = _lines_about(worker_log, job["id"])
    for line in worker_lines:
        assert {"time", "level", "logger", "message", *logs.JOB_FIELDS} <= line.keys(), line
        assert (line["job_id"], line["program"], line["backend"]) == (job["id"], "hello-world", "aer_simulator"), line
    ran = [line for line in worker_lines if line["logger"].startswith("workers.")]
    assert {line["message"].split()[2] for line in ran} == {"running:", "ended"}, ran
    assert all(line["worker"] for line in ran), ran
    assert any(line["message"].startswith("Task hello-world @ aer_simulator[") for line in worker_lines)

    access = [line for line in _lines_about(api_log, job["id"]) if line["logger"] == "gunicorn.access"]
    assert {(line["method"], line["status"]) for line in access} == {("POST", 201), ("GET", 200)}, access
    for line in access:
        assert (line["job_id"], line["program"], line["backend"]) == (job["id"], "hello-world", "aer_simulator"), line
        assert "worker" in line
    assert access[-1]["worker"], access  # read after the run: the worker that ran it


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_text_lines_about_a_job_show_its_fields_and_celerys_task_lines_are_about_their_job() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.test_logs")
    logger.addHandler(logs.handler("text", stream))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with logs.about_job(logs.job_fields("j1", "sampler", "aer_simulator", "host:42")):
            logger.info("running")
        celery_context = {"id": "t1", "name": task_label("sampler", "ibmq_manila"), "args": "['j2']"}
        logger.info("Task %(name)s[%(id)s] received", celery_context, extra={"data": celery_context})
        logger.info("not about a job")
    finally:
        logger.handlers.clear()
    running, received, other = stream.getvalue().splitlines()
    assert running.endswith("running job_id=j1 program=sampler backend=aer_simulator worker=host:42")
    assert received.endswith("received job_id=j2 program=sampler backend=ibmq_manila")
    assert other.endswith("not about a job")


def test_up_without_verbose_prints_no_access_log_and_no_celery_banner_but_says_it_is_up(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    up = start_up(up_env(tmp_path), log, port)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/jobs", timeout=10).status_code == 401
    finally:
        os.killpg(up.pid, signal.SIGINT)
        code = up.wait(timeout=60)
    text = log.read_text()
    assert code == 0 and "qruntime: stopped." in text, text[-3000:]
    assert "GET /health" not in text and "GET /jobs" not in text, text  # no access log
    assert "[queues]" not in text and "[config]" not in text, text  # no Celery banner
    assert "INFO/" not in text and "[INFO]" not in text, text  # no Celery or gunicorn INFO lines
