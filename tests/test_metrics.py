"""Prometheus metrics and per-job usage, scraped from a real API and a real worker.

Jobs that complete, fail, are cancelled and time out each move the counters and
histograms by exactly one; /metrics answers only the metrics token or an
admin; a job's usage figures are the ones it really had.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qruntime.localredis import free_port
from tests.harness import Caller, running_stack, wait_for

METRICS_TOKEN = "scraper-secret-token"


@pytest.fixture(scope="module")
def world() -> Iterator[dict]:
    port = free_port()
    with running_stack(auth="on", metrics_token=METRICS_TOKEN, worker_metrics_port=port, concurrency=2) as stack:
        tokens = stack.add_users([("dev", "developer"), ("user", "user")])
        yield {"stack": stack, "worker_url": f"http://127.0.0.1:{port}/metrics", "tokens": tokens,
               "user": Caller(stack.url, tokens["user"])}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def _scrape(world: dict) -> tuple[dict, dict]:
    api = requests.get(f"{world['stack'].url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                       timeout=10)
    assert api.status_code == 200, api.text
    worker = requests.get(world["worker_url"], timeout=10)
    assert worker.status_code == 200
    return _samples(api.text), _samples(worker.text)


def test_metrics_need_the_metrics_token_or_an_admin(world: dict) -> None:
    url = f"{world['stack'].url}/metrics"
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(url, headers={"Authorization": f"Bearer {world['tokens']['user']}"},
                        timeout=10).status_code == 404
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 404
    admin = requests.get(url, headers={"Authorization": f"Bearer {world['stack'].admin_token}"}, timeout=10)
    assert admin.status_code == 200 and "qruntime_jobs_queued" in admin.text


def test_jobs_that_complete_fail_are_cancelled_and_time_out_each_move_the_counters_by_one(world: dict) -> None:
    stack, user = world["stack"], world["user"]
    api_before, worker_before = _scrape(world)

    def submit(program: str, params: dict, **extra: object) -> str:
        response = user("POST", "/jobs", data=json.dumps(
            {"program_id": program, "backend": "aer_simulator", "params": params, **extra}))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    done = submit("echo", {"x": 1})
    failed = submit("raiser", {})
    timed_out = submit("forever", {}, max_execution_time=1)
    cancelled = submit("sleeper", {"seconds": 60})
    wait_for(lambda: stack.job(cancelled)["status"] == "RUNNING", message="the sleeper to run")
    assert user("POST", f"/jobs/{cancelled}/cancel").status_code in (200, 202)
    finals = {job_id: stack.wait_status(job_id)["status"] for job_id in (done, failed, timed_out, cancelled)}
    assert finals == {done: "COMPLETED", failed: "FAILED", timed_out: "CANCELLED - RAN TOO LONG",
                      cancelled: "CANCELLED"}
    api_after, worker_after = wait_for(
        lambda: (s := _scrape(world)) and _value(s[1], "qruntime_jobs_finished_total")
        - _value(worker_before, "qruntime_jobs_finished_total") >= 4 and s,
        message="the worker's counters to show the four jobs")

    def moved(before: dict, after: dict, name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    for program in ("echo", "raiser", "forever", "sleeper"):
        assert moved(api_before, api_after, "qruntime_jobs_submitted_total", program=program,
                     backend="aer_simulator") == 1
    for program, status in (("echo", "COMPLETED"), ("raiser", "FAILED"), ("forever", "CANCELLED - RAN TOO LONG"),
                            ("sleeper", "CANCELLED")):
        assert moved(worker_before, worker_after, "qruntime_jobs_finished_total", program=program,
                     status=status) == 1, (program, status)
        assert moved(worker_before, worker_after, "qruntime_job_run_seconds_count", program=program,
                     status=status) == 1
    assert moved(worker_before, worker_after, "qruntime_job_queue_wait_seconds_count") == 4
    assert moved(worker_before, worker_after, "qruntime_job_run_seconds_sum", program="sleeper") < 60
    assert moved(worker_before, worker_after, "qruntime_interim_results_total", program="raiser") == 1
    assert moved(worker_before, worker_after, "qruntime_log_bytes_total", program="raiser") > 0
    assert moved(api_before, api_after, "qruntime_api_request_duration_seconds_count", endpoint="/jobs",
                 method="POST", status="201") == 4
    assert _value(worker_after, "qruntime_worker_slots") == 2
    assert _value(worker_after, "qruntime_worker_slots_busy") == 0
    assert ("qruntime_jobs_queued", (("queue", "qruntime.aer"),)) in api_after


def test_a_jobs_usage_shows_its_cpu_seconds_and_peak_memory(world: dict) -> None:
    stack, user = world["stack"], world["user"]
    response = user("POST", "/jobs", data=json.dumps(
        {"program_id": "burner", "backend": "aer_simulator", "params": {"cpu_seconds": 2.0, "hold_mb": 300}}))
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    assert response.json()["usage"] is None  # nothing has run yet: null, not zeros
    assert stack.wait_status(job_id)["status"] == "COMPLETED"
    usage = wait_for(lambda: (u := user("GET", f"/jobs/{job_id}").json()["usage"]) and u["cpu_s"] is not None and u,
                     message="the zygote's measure of the job's processes")
    assert 1.8 <= usage["cpu_s"] <= 4.0, usage
    assert usage["peak_memory_bytes"] >= 300 * 1024 * 1024, usage
    assert usage["wall_s"] >= 2.0 and usage["queue_wait_s"] >= 0 and usage["attempts"] == 1, usage
    assert usage["log_bytes"] >= 0 and usage["interim_bytes"] == 0, usage


def test_the_cli_shows_a_jobs_usage(world: dict) -> None:
    import subprocess
    import sys

    stack, user = world["stack"], world["user"]
    job_id = user("POST", "/jobs", data=json.dumps(
        {"program_id": "burner", "backend": "aer_simulator", "params": {"cpu_seconds": 0.5}})).json()["id"]
    assert stack.wait_status(job_id)["status"] == "COMPLETED"
    wait_for(lambda: user("GET", f"/jobs/{job_id}").json()["usage"]["cpu_s"] is not None,
             message="the job's CPU seconds")
    env = {"QRT_URL": stack.url, "QRT_TOKEN": world["tokens"]["user"], "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, "-m", "qruntime", "job", job_id], env=env, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0 and "Usage:" in shown.stdout and "CPU 0." in shown.stdout, shown.stdout + shown.stderr
    listed = subprocess.run([sys.executable, "-m", "qruntime", "jobs", "--usage"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert "CPU S" in listed.stdout and "PEAK MIB" in listed.stdout, listed.stdout + listed.stderr
