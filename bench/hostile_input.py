"""Hostile input against a live API: time to the 4xx, and the longest /health wait meanwhile.

For each hostile input of tests/hostile_inputs.py (an anyOf bomb in a spec, the
same bomb met at submit time, a 4 MB tar.gz declaring 4 GiB, a spec nested 900
deep, a zip member that lies about its size, a syntax error, a 200 MB body from
urllib), a thread polls ``/health`` while the request runs. The baseline, in the
same run, is the /health latency with nothing else going on.

Prints a table and writes ``bench/results/hostile_input.json``. Not a test: no assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.program_files import describe  # noqa: E402
from orchestrator.program_store import ProgramStore  # noqa: E402
from tests.harness import Caller, running_stack  # noqa: E402
from tests.hostile_inputs import (  # noqa: E402
    MAIN,
    SYNTAX_ERROR_SOURCE,
    HealthWatch,
    anyof_bomb_spec,
    lying_zip,
    nested_spec,
    tar_gz_bomb,
    upload_body,
)

RESULTS = ROOT / "bench" / "results"


def _health_waits(url: str, action: Callable[[], int]) -> tuple[int, float, list[float]]:
    """Run ``action`` while polling /health: (its status, its duration, each /health wait)."""
    with HealthWatch(url) as watch:
        while not watch.answers:
            time.sleep(0.001)
        start = time.monotonic()
        status = action()
        took = time.monotonic() - start
    return status, took, watch.waits()


def _urllib_post(url: str, token: str, size: int) -> int:
    request = urllib.request.Request(f"{url}/jobs", data=b" " * size, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code
    except urllib.error.URLError:
        return -1  # a reset: the client never read an answer
    return 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with running_stack(auth="on") as stack:
        tokens = stack.add_users([("dev", "developer"), ("user", "user")])
        dev, user = Caller(stack.url, tokens["dev"]), Caller(stack.url, tokens["user"])
        store = ProgramStore(stack.redis, stack.store.keys)
        stored = store.create(owner="dev", data=MAIN, files=describe(MAIN, "old-bomb"), metadata={
            "name": "old-bomb", "description": "stored before the limits", "max_execution_time": 60,
            "spec": anyof_bomb_spec(), "is_public": True})
        # Warm the checker processes so the first case does not pay their start.
        dev("POST", "/programs", data=json.dumps(upload_body("warm", MAIN)))
        cases: dict[str, Callable[[], int]] = {
            "anyOf bomb at upload": lambda: dev(
                "POST", "/programs", data=json.dumps(upload_body("bomb", MAIN, spec=anyof_bomb_spec()))).status_code,
            "anyOf bomb at submit": lambda: user("POST", "/jobs", data=json.dumps(
                {"program_id": stored.id, "backend": "aer_simulator", "params": {"x": "s"}})).status_code,
            "4 MB tar.gz of 4 GiB": lambda: dev(
                "POST", "/programs", data=json.dumps(upload_body("tarbomb", tar_gz_bomb()))).status_code,
            "spec nested 900 deep": lambda: dev(
                "POST", "/programs", data=json.dumps(upload_body("deep", MAIN, spec=nested_spec(900)))).status_code,
            "zip member lying about size": lambda: dev(
                "POST", "/programs", data=json.dumps(upload_body("liar", lying_zip()))).status_code,
            "syntax error": lambda: dev(
                "POST", "/programs", data=json.dumps(upload_body("broken", SYNTAX_ERROR_SOURCE))).status_code,
            "urllib 200 MB body": lambda: _urllib_post(stack.url, tokens["user"], 200 << 20),
        }
        _, _, idle = _health_waits(stack.url, lambda: time.sleep(1.0) or 0)
        rows = []
        for name, action in cases.items():
            status, took, waits = _health_waits(stack.url, action)
            rows.append({"case": name, "status": status, "answer_s": round(took, 3),
                         "health_max_ms": round(max(waits) * 1000, 1),
                         "health_p50_ms": round(statistics.median(waits) * 1000, 1)})
    baseline = {"health_max_ms": round(max(idle) * 1000, 1), "health_p50_ms": round(statistics.median(idle) * 1000, 1)}
    print(f"{'case':32} {'status':>6} {'answer s':>9} {'/health max ms':>15} {'p50 ms':>7}")
    print(f"{'(idle baseline)':32} {'':>6} {'':>9} {baseline['health_max_ms']:>15} {baseline['health_p50_ms']:>7}")
    for row in rows:
        print(f"{row['case']:32} {row['status']:>6} {row['answer_s']:>9} {row['health_max_ms']:>15} "
              f"{row['health_p50_ms']:>7}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile_input.json").write_text(json.dumps({"baseline": baseline, "cases": rows}, indent=2))
    print(f"wrote {RESULTS / 'hostile_input.json'}")


if __name__ == "__main__":
    main()
