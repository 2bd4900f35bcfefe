"""The web console in a real browser: sign in, run VQE from its form and watch it converge,
cancel a job, follow a stream across an API restart, and keep up with twenty busy jobs.

One private stack for the module with tokens required (the console signs in with one)
and a worker with twenty pool slots, so twenty jobs can stream at once. Each page the
tests visit leaves a screenshot in ``tests/artifacts/console/``; the load test also
leaves a Chromium trace there and the frame times read from it and from the page's own
per-batch measures (``frame-times.json``). Timings are printed and recorded, never asserted.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from orchestrator.status import FINAL_STATUSES
from tests.console.browser import PHONE, ConsolePage, chromium, record
from tests.hamiltonians import H2_TERMS
from tests.harness import Stack, running_stack

#: Twenty jobs at fifty results a second each: the load the issue names.
LOAD_JOBS = 20
LOAD_RATE_HZ = 50
LOAD_COUNT = 400
#: VQE on a noisy device replica takes ~0.15 s per energy: slow enough to watch it grow.
VQE_BACKEND = "ibmq_manila"
VQE_MAXITER = 40
#: Observations of the energy line, each with more points than the one before.
GROWTH_OBSERVATIONS = 4
FINAL = sorted(status.value for status in FINAL_STATUSES)


@pytest.fixture(scope="module")
def console_stack() -> Iterator[Stack]:
    with running_stack(concurrency=LOAD_JOBS, auth="on") as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


@pytest.fixture
def console(browser, console_stack: Stack) -> Iterator[ConsolePage]:
    page = ConsolePage(browser, console_stack.url)
    page.sign_in(console_stack.admin_token)
    yield page
    page.close()


def encoded(value: object) -> str:
    """``value`` as a client sends it: RuntimeEncoder JSON text."""
    from qiskit_ibm_runtime.json import RuntimeEncoder

    return json.dumps(value, cls=RuntimeEncoder)


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(browser, console_stack: Stack) -> None:
    console = ConsolePage(browser, console_stack.url)
    page = console.page
    page.goto(console_stack.url + "/")  # the API's root leads to the console
    page.wait_for_selector("main h1:has-text('Sign in')")
    console.screenshot("01-sign-in")

    page.fill("#token", "qrt_this-is-not-a-token")
    page.click("form button[type=submit]")
    alert = page.wait_for_selector("[role=alert]")
    assert "Token refused" in alert.inner_text()
    assert page.evaluate("() => sessionStorage.length + localStorage.length") == 0
    console.screenshot("02-sign-in-refused")

    page.fill("#token", "")
    page.keyboard.type(console_stack.admin_token)  # the field keeps focus after a refusal
    page.keyboard.press("Enter")
    page.wait_for_selector("main h1:has-text('Jobs')")
    assert "harness-admin" in console.text("#who")
    assert page.evaluate("() => localStorage.length") == 0  # the token stays in this tab's session
    assert not [url for url in console.requested if console_stack.admin_token in url]
    console.close()


def test_vqe_runs_from_its_form_and_its_energy_line_grows_until_it_completes(
        console: ConsolePage, console_stack: Stack) -> None:
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_ibm_runtime.json import RuntimeDecoder

    page = console.page
    console.go("#/programs", "Programs")
    console.screenshot("03-programs")
    page.click("main a:text-is('vqe')")
    page.wait_for_selector("main h1:has-text('vqe')")
    page.fill("#input-operator", encoded(SparsePauliOp.from_list(H2_TERMS)))
    page.fill("#input-maxiter", str(VQE_MAXITER))
    page.select_option("#run-backend", VQE_BACKEND)
    console.screenshot("04-program-vqe")
    page.click("form.run-form button[type=submit]")
    page.wait_for_url(re.compile(r"#/jobs/\w+$"))
    job_id = page.url.rsplit("/", 1)[1]

    observations = []  # (results drawn, status shown), each after the line has grown
    points = 0
    while len(observations) < GROWTH_OBSERVATIONS:
        points, status = console.wait_for_points("energy", points + 1, unless=FINAL)
        if status in FINAL:
            break
        observations.append((points, status))
    assert len(observations) == GROWTH_OBSERVATIONS, f"the job ended after only {observations}"
    console.wait_for_points("energy", VQE_MAXITER // 2, unless=FINAL)  # half way: the descent shows
    console.screenshot("05-job-vqe-running")
    assert all(status == "RUNNING" for _, status in observations)
    counts = [count for count, _ in observations]
    assert counts == sorted(set(counts)), counts  # strictly growing, one observation to the next

    assert console.wait_for_status(*FINAL) == "COMPLETED"
    page.wait_for_selector("#result table.fields")
    result = json.loads(console_stack.result_text(job_id), cls=RuntimeDecoder)
    interim = console_stack.http.get(f"{console_stack.url}/jobs/{job_id}/interim_results", timeout=30).json()
    assert console.points("energy") == len(interim) == result["cost_function_evals"]
    assert "eigenvalue" in console.text("#result")
    assert re.search(r"Completed in .+: \d+ interim results, latest energy -\d", console.text("#job-now"))
    console.screenshot("06-job-vqe-completed")
    page.set_viewport_size(PHONE)
    console.screenshot("07-job-vqe-phone")


def test_a_running_job_is_cancelled_then_deleted_from_its_page_with_the_keyboard(
        console: ConsolePage, console_stack: Stack) -> None:
    job = console_stack.submit("forever")
    console.go(f"#/jobs/{job['id']}", job["id"])
    console.wait_for_status("RUNNING")
    console.wait_for_points("count", 1)
    console.page.focus("#cancel-job")
    console.page.keyboard.press("Enter")
    assert console.wait_for_status(*FINAL) == "CANCELLED"
    assert console_stack.job(job["id"])["status"] == "CANCELLED"
    console.page.wait_for_selector("#result >> text=cancelled")
    assert console.page.is_disabled("#cancel-job")
    console.screenshot("08-job-cancelled")

    console.page.focus("#delete-job")
    console.page.keyboard.press("Enter")
    console.page.wait_for_selector("dialog[open]")
    assert console.page.evaluate("() => document.activeElement.textContent") == "Keep it"  # the safe choice first
    console.page.keyboard.press("Tab")
    console.page.keyboard.press("Enter")
    console.page.wait_for_selector("main h1:has-text('Jobs')")
    gone = console_stack.http.get(f"{console_stack.url}/jobs/{job['id']}", timeout=30)
    assert gone.status_code == 404


def test_the_jobs_list_updates_statuses_live_and_filters_by_state_and_program(
        console: ConsolePage, console_stack: Stack) -> None:
    held = console_stack.submit("holder")  # runs until cancelled
    console_stack.wait_status(console_stack.submit("sleeper", {"seconds": 0})["id"])
    console.go("#/jobs", "Jobs")
    row = f"tr[data-job-id='{held['id']}']"
    console.page.wait_for_selector(f"{row} .badge[data-status='RUNNING']")
    console.screenshot("09-jobs")
    response = console_stack.http.post(f"{console_stack.url}/jobs/{held['id']}/cancel", timeout=30)
    assert response.status_code == 200, response.text
    console.page.wait_for_selector(f"{row} .badge[data-status='CANCELLED']")  # no reload: the list polls

    console.page.select_option("#filter-program", "holder")
    console.page.wait_for_url(re.compile(r"program=holder"))
    console.page.select_option("#filter-state", "ended")
    console.page.wait_for_url(re.compile(r"state=ended"))
    console.page.wait_for_selector(row)
    programs = console.page.eval_on_selector_all("table.jobs tbody td:nth-child(3)", "cells => cells.map(c => c.textContent)")
    assert programs and set(programs) == {"holder"}
    console.page.set_viewport_size(PHONE)
    console.screenshot("10-jobs-phone")


def test_the_backends_page_names_the_workers_serving_each_backend(
        console: ConsolePage, console_stack: Stack) -> None:
    catalogue = console_stack.http.get(console_stack.url + "/backends", timeout=30).json()["backends"]
    console.go("#/backends", "Backends")
    for backend in catalogue:
        row = console.text(f"tr[data-backend='{backend['name']}']")
        assert backend["workers"] and all(worker in row for worker in backend["workers"])
    console.screenshot("11-backends")


def test_the_job_page_resumes_where_it_left_off_when_the_api_restarts(
        console: ConsolePage, console_stack: Stack) -> None:
    count = 120
    job = console_stack.submit("publisher", {"count": count, "interval": 0.05})
    console.go(f"#/jobs/{job['id']}", job["id"])
    console.wait_for_points("index", 20)
    port = urlparse(console_stack.url).port
    console_stack.kill(console_stack.apis[-1])
    console.page.wait_for_selector(".connection[data-state='reconnecting']")
    console.screenshot("12-job-reconnecting")
    console_stack.start_api(port=port)

    assert console.wait_for_status(*FINAL) == "COMPLETED"
    console.page.wait_for_selector(".connection[data-state='ended']")
    assert console.points("index") == count  # every result once: no gap, no duplicate
    assert f"latest {count}, min 1, max {count}" in console.text("figure[data-field='index'] figcaption")


def test_one_job_page_keeps_up_with_twenty_jobs_streaming_fifty_results_a_second(
        console: ConsolePage, console_stack: Stack) -> None:
    jobs = [console_stack.submit("pacer", {"rate_hz": LOAD_RATE_HZ, "count": LOAD_COUNT})
            for _ in range(LOAD_JOBS)]
    with console.traced("load-trace") as frames:
        console.go(f"#/jobs/{jobs[0]['id']}", jobs[0]["id"])
        console.wait_for_points("energy", LOAD_COUNT // 2)
        console.screenshot("13-job-under-load", full_page=False)  # a full-page shot resizes the view
        assert console.wait_for_status(*FINAL) == "COMPLETED"
    assert console.points("energy") == LOAD_COUNT  # every result drawn
    for job in jobs:
        assert console_stack.wait_status(job["id"])["status"] == "COMPLETED"
    figures = frame_figures(frames, console.frame_stats())
    path = record("frame-times", figures)
    print(f"\nthe job page under load ({LOAD_JOBS} jobs x {LOAD_RATE_HZ} results/s), recorded in {path}:")
    for key, value in figures.items():
        print(f"  {key:<44} {value}")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    pick = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.95)]
    return " / ".join(f"{v:.1f}" for v in [*pick, ordered[-1]])


def frame_figures(frames: list[dict[str, float]], stats: dict) -> dict:
    """What a frame that applied stream events cost: in the Chromium trace (its whole
    main-thread task: the batch, then style, layout, paint), and as the page measured its
    own batches (Performance API)."""
    batches = [b for b in stats["batches"] if b["interim"]]
    start, end = batches[0]["start"], batches[-1]["start"] + batches[-1]["duration"]
    long_frames = [f for f in stats["longFrames"] if start <= f["start"] <= end]
    return {
        "frames running the page's rAF (trace)": len(frames),
        "frame main-thread wall ms p50/p95/max": percentiles([f["wall_ms"] for f in frames]),
        "frame main-thread CPU ms p50/p95/max": percentiles([f["cpu_ms"] for f in frames]),
        "update batches (performance measures)": len(batches),
        "results per batch (mean)": round(statistics.mean(b["interim"] for b in batches), 2),
        "batch script ms p50/p95/max": percentiles([b["duration"] for b in batches]),
        "streaming window s": round((end - start) / 1000, 2),
        "long animation frames >50 ms (count)": len(long_frames) if stats["longFramesObserved"] else "n/a",
        "long animation frames, with their scripts": long_frames,
    }
