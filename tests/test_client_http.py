"""``ApiClient``: a method for every route of the API, one paging helper, escaped ids."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from flask import Flask

from api import create_app
from qruntime.client.http import ApiClient
from qruntime.client.streaming import EventStream
from qruntime.client.vocabulary import EVENT_DONE, EVENT_INTERIM, FINAL_STATUSES
from qruntime.exceptions import RuntimeInvalidStateError, RuntimeJobNotFound
from tests.harness import Stack

#: Endpoints that serve browsers, not API clients: files and HTML pages.
BROWSER_ENDPOINTS = ("static", "console.")
#: Documentation pages an OpenAPI extension may add next to the JSON document.
DOCUMENTATION_PAGES = ("swagger_ui", "redoc", "rapidoc")
#: Endpoints for operators' tools, not API clients: Prometheus's scrape of /metrics.
OPERATOR_ENDPOINTS = ("metrics.",)

Route = tuple[str, str]  # (method, rule)


def api_routes(app: Flask) -> set[Route]:
    """Every (method, rule) of the app an API client may call."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(BROWSER_ENDPOINTS + OPERATOR_ENDPOINTS) or any(
                p in rule.endpoint for p in DOCUMENTATION_PAGES):
            continue
        routes.update((method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"})
    return routes


class Recorder:
    """Wraps ``client.request`` (every method's one way out) and notes the routes it reaches."""

    def __init__(self, client: ApiClient, app: Flask) -> None:
        self.sent: list[tuple[str, str]] = []
        self.adapter = app.url_map.bind("localhost")
        send = client.request

        def request(method: str, path: str, **kwargs: Any) -> Any:
            self.sent.append((method, path))
            return send(method, path, **kwargs)

        client.request = request  # type: ignore[method-assign]

    def routes(self) -> set[Route]:
        found = set()
        for method, path in self.sent:
            rule, _ = self.adapter.match(unquote(urlsplit(path).path), method, return_rule=True)
            found.add((method, rule.rule))
        return found


@pytest.fixture
def app(stack: Stack) -> Flask:
    return create_app({"redis_url": stack.settings.redis_url, "auth": "off",
                       "data_dir": stack.settings.data_dir, "programs_dirs": stack.settings.programs_dirs})


def test_every_route_of_the_api_has_an_api_client_method_that_reaches_it(stack: Stack, app: Flask) -> None:
    client = ApiClient(stack.url)
    recorder = Recorder(client, app)

    assert client.health()["status"] == "ok"
    assert "paths" in client.openapi()
    assert client.me()["role"] == "admin"
    assert "aer_simulator" in [b["name"] for b in client.list_backends()]

    name = f"http-{uuid.uuid4().hex[:8]}"
    source = "def main(backend, user_messenger, **kwargs):\n    return 'v1'\n"
    program_id = client.upload_program({"name": name, "data": base64.b64encode(source.encode()).decode(),
                                        "cost": 60, "description": "ApiClient test"})["id"]
    assert program_id in [p["id"] for p in client.programs()]
    client.update_program_data(program_id, base64.b64encode(source.replace("v1", "v2").encode()).decode())
    client.update_program(program_id, {"description": "Changed."})
    assert [v["version"] for v in client.program_versions(program_id)] == ["1", "2", "3"]
    assert client.set_program_visibility(program_id, True)["is_public"] is True
    assert client.set_program_visibility(program_id, False)["is_public"] is False
    assert client.get_program(program_id)["description"] == "Changed."
    client.delete_program(program_id)

    job = client.submit_job({"program_id": "echo", "backend": "aer_simulator", "params": {"n": 1}})
    events = list(EventStream(client, job["id"]))
    assert events[-1].type == EVENT_DONE
    assert client.get_job(job["id"])["status"] in FINAL_STATUSES
    assert client.job_results(job["id"]) == (True, '{"n": 1}')
    assert isinstance(client.job_logs(job["id"]), str)
    assert client.job_interim_results(job["id"]) == [
        (e.id, e.data) for e in events if e.type == EVENT_INTERIM]
    assert job["id"] in [j["id"] for j in client.jobs(limit=None, program_id="echo")]
    with pytest.raises(RuntimeInvalidStateError, match="cannot be cancelled"):
        client.cancel_job(job["id"])
    client.delete_job(job["id"])

    user = f"user-{uuid.uuid4().hex[:8]}"
    assert client.add_user(user, "user")["role"] == "user"
    assert client.set_user_role(user, "developer")["role"] == "developer"
    assert user in [u["name"] for u in client.list_users()]
    token = client.create_token(user, description="test")
    assert token["id"] in [t["id"] for t in client.list_tokens(user)]
    client.revoke_token(token["id"])
    client.remove_user(user)

    missing = api_routes(app) - recorder.routes()
    assert not missing, f"ApiClient has no method for {sorted(missing)}"


def test_an_id_is_one_escaped_path_segment(stack: Stack, app: Flask) -> None:
    client = ApiClient(stack.url)
    recorder = Recorder(client, app)
    with pytest.raises(RuntimeJobNotFound):
        client.get_job("../programs/echo")
    assert recorder.sent == [("GET", "/jobs/..%2Fprograms%2Fecho")]


def pages_of(items: list[int], count: int | None = None) -> tuple[Callable[[int, int], dict], list]:
    """A listing of ``items`` that claims ``count`` of them, and the (size, offset) it was asked."""
    asked: list[tuple[int, int]] = []

    def page(size: int, offset: int) -> dict[str, Any]:
        asked.append((size, offset))
        return {"items": items[offset:offset + size], "count": len(items) if count is None else count}

    return page, asked


def test_collect_walks_pages_up_to_the_limit_from_the_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    from qruntime.client import http

    monkeypatch.setattr(http, "PAGE_SIZE", 3)
    client = ApiClient("http://127.0.0.1:9")
    page, asked = pages_of(list(range(10)))
    assert client.collect(page, "items") == list(range(10))
    assert asked == [(3, 0), (3, 3), (3, 6), (3, 9)]
    page, asked = pages_of(list(range(10)))
    assert client.collect(page, "items", limit=4, offset=5) == [5, 6, 7, 8]
    assert asked == [(3, 5), (1, 8)]
    page, asked = pages_of(list(range(10)))
    assert client.collect(page, "items", limit=0) == [] and asked == []


def test_collect_stops_at_an_empty_page_when_the_count_overstates() -> None:
    page, asked = pages_of([1, 2], count=1000)
    assert ApiClient("http://127.0.0.1:9").collect(page, "items") == [1, 2]
    assert len(asked) == 2
