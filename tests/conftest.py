"""Shared fixtures: one real stack (Redis + worker + API) for the session.

Tests that kill or reconfigure processes build their own ``Stack`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qruntime.localredis import LocalRedis
from tests.harness import Stack


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private Redis server for one test module (for tests of the core against the real thing)."""
    with LocalRedis() as server:
        yield server.url


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        stack.start_worker(concurrency=2)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def api_url(stack: Stack) -> str:
    return stack.url
