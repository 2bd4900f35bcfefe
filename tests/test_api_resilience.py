"""The API when its job store goes away: a clear 503, never a 500 or a hang."""

from __future__ import annotations

import requests

from tests.harness import Stack


def test_requests_get_a_503_envelope_while_redis_is_down() -> None:
    stack = Stack()
    try:
        stack.start_api()
        assert requests.get(stack.url + "/jobs", timeout=10).status_code == 200
        stack.redis_server.stop()
        listing = requests.get(stack.url + "/jobs", timeout=30)
        assert listing.status_code == 503
        assert listing.json()["message"] == "The job store (Redis) is unreachable; try again shortly."
        submit = requests.post(stack.url + "/jobs", timeout=30,
                               json={"program_id": "runtime-simple", "backend": "aer_simulator",
                                     "params": {"iterations": 1}})
        assert submit.status_code == 503
        health = requests.get(stack.url + "/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
    finally:
        stack.stop()
