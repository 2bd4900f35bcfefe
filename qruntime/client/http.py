"""The HTTP session to a qruntime API: one method per endpoint, retries, auth, errors.

:class:`ApiClient` has a method for every route of the REST API and returns
plain JSON (or text); it knows nothing about jobs or programs as objects. It is
the only place a path is built (each id is one escaped segment) and the only
place a failure is turned into an exception: each method names the resource it
is about and the seed's words for what it does, and
:func:`qruntime.exceptions.seed_error` picks the class from its one table. The
exceptions are imported only when a request fails, so the CLI can use this
module without importing qiskit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from qruntime import __version__
from qruntime.client.vocabulary import RESOURCE_JOB, RESOURCE_PROGRAM

#: Connect / read timeouts of ordinary requests. A cancel may wait up to the
#: server's QRT_CANCEL_WAIT_S (10 s) for a program to stop, so reads get room.
TIMEOUT_S = (5.0, 120.0)
#: The seed session's retry policy: transient gateway errors and refused
#: connections are retried with exponential backoff (0.5 s, 1 s, 2 s, …).
#: Unlike the seed, a POST that reached the server is not re-sent on a 5xx
#: (it may have created the job already); refused connections are retried for all.
RETRY_TOTAL = 5
RETRY_CONNECT = 3
RETRY_BACKOFF_S = 0.5
RETRY_STATUSES = frozenset({500, 502, 503, 504, 520, 522, 524})
#: Page size the client asks for when walking a listing (the seed's).
PAGE_SIZE = 20


def make_session(token: str | None) -> requests.Session:
    """A session with the retry policy and the headers every call carries."""
    session = requests.Session()
    retry = Retry(total=RETRY_TOTAL, connect=RETRY_CONNECT, backoff_factor=RETRY_BACKOFF_S,
                  status_forcelist=RETRY_STATUSES, allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
                  raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"qruntime-client/{__version__}"
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


class ApiClient:
    """One method per endpoint of the qruntime REST API.

    Failures raise the seed's classes (:mod:`qruntime.exceptions`): 401 and 403 are
    ``IBMQNotAuthorizedError``; a missing job or program is ``RuntimeJobNotFound`` /
    ``RuntimeProgramNotFound``; other failures of a named operation are
    ``QiskitRuntimeError("Failed to <action>: …")``; the rest (listings, submit,
    accounts, an unreachable server) stay ``RequestsApiError``.

    Args:
        url: the API's base URL, e.g. ``http://127.0.0.1:8000``.
        token: bearer token, sent as ``Authorization: Bearer <token>`` when given.
    """

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.session = make_session(token)

    # -- plumbing -------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, stream: bool = False, headers: dict[str, str] | None = None,
                timeout: Any = TIMEOUT_S, session: requests.Session | None = None,
                resource: str | None = None, action: str | None = None) -> requests.Response:
        """Send one request; raise the seed's exception for it unless the answer is 2xx.

        Args:
            resource: ``"job"`` or ``"program"`` when the path names one (for the 404/409 classes).
            action: the seed's words for the operation, for ``"Failed to <action>: …"``.
        """
        url = self.url + path
        data = None
        sent_headers = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (str, bytes)) else json.dumps(body)
            sent_headers.setdefault("Content-Type", "application/json")
        try:
            response = (session or self.session).request(
                method, url, params=_clean(params), data=data, headers=sent_headers,
                stream=stream, timeout=timeout)
        except requests.RequestException as exc:
            from qruntime.exceptions import RequestsApiError

            raise RequestsApiError(f"Cannot reach the qruntime API at {self.url}: {exc}", -1,
                                   detail=f"cannot reach {self.url}") from None
        if response.status_code == 401 and not self.token:
            from qruntime.client.account import no_token_message
            from qruntime.exceptions import IBMQNotAuthorizedError

            raise IBMQNotAuthorizedError(no_token_message(self.url))
        if response.status_code >= 400:
            raise _failure(method, response, resource, action)
        return response

    def stream_session(self) -> requests.Session:
        """A separate session for one long-lived event stream (sessions are not thread-safe)."""
        return make_session(self.token)

    def collect(self, page: Callable[[int, int], dict[str, Any]], key: str,
                limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Walk a paged listing: ``page(size, offset)`` answers ``{key: [...], "count": n}``.

        Args:
            page: one request of the listing, e.g. :meth:`list_jobs`.
            key: the field holding the items (``"jobs"``, ``"programs"``).
            limit: how many items at most; None for all.
            offset: how many to skip first.

        Stops at ``limit``, at the listing's ``count``, or at an empty page (so a
        server that overstates ``count`` cannot make it loop forever).
        """
        items: list[dict[str, Any]] = []
        while limit is None or len(items) < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(items))
            answer = page(size, offset)
            batch = answer[key]
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= answer["count"]:
                break
        return items

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # -- service --------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: Redis reachability and the number of live workers."""
        return self._json("GET", "/health")

    def openapi(self) -> dict[str, Any]:
        """``GET /openapi.json``: the API's OpenAPI document."""
        return self._json("GET", "/openapi.json")

    def list_backends(self) -> list[dict[str, Any]]:
        return self._json("GET", "/backends")["backends"]

    # -- programs -------------------------------------------------------------------

    def list_programs(self, limit: int | None = PAGE_SIZE, offset: int = 0) -> dict[str, Any]:
        """One page of ``GET /programs``: ``{"programs": [...], "count": n}``."""
        return self._json("GET", "/programs", params={"limit": limit, "offset": offset})

    def programs(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Every program the caller may see (or ``limit`` of them), walking the pages."""
        return self.collect(self.list_programs, "programs", limit, offset)

    def get_program(self, program_id: str, version: str | None = None) -> dict[str, Any]:
        return self._json("GET", _path("programs", program_id), params={"version": version},
                          resource=RESOURCE_PROGRAM, action="get program")

    def program_versions(self, program_id: str) -> list[dict[str, Any]]:
        return self._json("GET", _path("programs", program_id, "versions"),
                          resource=RESOURCE_PROGRAM, action="get program versions")["versions"]

    def upload_program(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /programs`` with the seed's JSON (``data`` is base64); returns the program."""
        return self._json("POST", "/programs", body=body, resource=RESOURCE_PROGRAM,
                          action="create program")

    def update_program_data(self, program_id: str, data: str) -> dict[str, Any]:
        """``PUT /programs/{id}/data`` with the base64 text as the raw body (a new version)."""
        return self._json("PUT", _path("programs", program_id, "data"), body=data,
                          headers={"Content-Type": "application/octet-stream"},
                          resource=RESOURCE_PROGRAM, action="update program")

    def update_program(self, program_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /programs/{id}`` with some of ``name, description, cost, spec``."""
        return self._json("PATCH", _path("programs", program_id), body=fields,
                          resource=RESOURCE_PROGRAM, action="update program")

    def set_program_visibility(self, program_id: str, public: bool) -> dict[str, Any]:
        """``PUT /programs/{id}/public`` or ``/private``."""
        return self._json("PUT", _path("programs", program_id, "public" if public else "private"),
                          resource=RESOURCE_PROGRAM, action="set program visibility")

    def delete_program(self, program_id: str) -> None:
        self.request("DELETE", _path("programs", program_id), resource=RESOURCE_PROGRAM,
                     action="delete program")

    # -- jobs -----------------------------------------------------------------------

    def submit_job(self, body: dict[str, Any] | str) -> dict[str, Any]:
        """``POST /jobs``; ``body`` may be pre-encoded JSON text (RuntimeEncoder output)."""
        return self._json("POST", "/jobs", body=body)

    def list_jobs(self, limit: int | None = None, offset: int = 0, pending: bool | None = None,
                  program_id: str | None = None) -> dict[str, Any]:
        """One page of ``GET /jobs``, newest first: ``{"jobs": [...], "count": n}``."""
        params: dict[str, Any] = {"limit": limit, "offset": offset, "program": program_id}
        if pending is not None:
            params["pending"] = "true" if pending else "false"
        return self._json("GET", "/jobs", params=params)

    def jobs(self, limit: int | None = None, offset: int = 0, pending: bool | None = None,
             program_id: str | None = None) -> list[dict[str, Any]]:
        """The caller's jobs, newest first (``limit`` of them, or all), walking the pages."""
        def page(size: int, at: int) -> dict[str, Any]:
            return self.list_jobs(size, at, pending=pending, program_id=program_id)

        return self.collect(page, "jobs", limit, offset)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", _path("jobs", job_id), resource=RESOURCE_JOB, action="get job")

    def job_results(self, job_id: str) -> tuple[bool, str]:
        """``(finished, text)``: the result text once the job has ended, else ``(False, "")``."""
        response = self.request("GET", _path("jobs", job_id, "results"), resource=RESOURCE_JOB,
                                action="get job result")
        if response.status_code == 204:
            return False, ""
        return True, response.content.decode("utf-8")

    def job_logs(self, job_id: str) -> str:
        return self.request("GET", _path("jobs", job_id, "logs"), resource=RESOURCE_JOB,
                            action="get job logs").content.decode("utf-8")

    def job_interim_results(self, job_id: str, after: int = 0) -> list[tuple[int, str]]:
        """``[(event id, data as JSON text), …]``, oldest first."""
        items = self._json("GET", _path("jobs", job_id, "interim_results"), params={"after": after},
                           resource=RESOURCE_JOB, action="get interim results")
        return [(int(item["id"]), json.dumps(item["data"])) for item in items]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """``POST /jobs/{id}/cancel``: the job, CANCELLED or (202) still stopping."""
        return self._json("POST", _path("jobs", job_id, "cancel"), resource=RESOURCE_JOB,
                          action="cancel job")

    def delete_job(self, job_id: str) -> None:
        self.request("DELETE", _path("jobs", job_id), resource=RESOURCE_JOB, action="delete job")

    def open_stream(self, job_id: str, last_event_id: int, session: requests.Session,
                    read_timeout_s: float) -> requests.Response:
        """``GET /jobs/{id}/stream`` as a streamed response, resuming after ``last_event_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = str(last_event_id)
        return self.request("GET", _path("jobs", job_id, "stream"), headers=headers, stream=True,
                            timeout=(TIMEOUT_S[0], read_timeout_s), session=session,
                            resource=RESOURCE_JOB)

    # -- accounts -------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """``GET /me``: the caller's ``{"name", "role"}``."""
        return self._json("GET", "/me")

    def list_users(self) -> list[dict[str, Any]]:
        return self._json("GET", "/users")["users"]

    def add_user(self, name: str, role: str) -> dict[str, Any]:
        return self._json("POST", "/users", body={"name": name, "role": role})

    def set_user_role(self, name: str, role: str) -> dict[str, Any]:
        return self._json("PATCH", _path("users", name), body={"role": role})

    def remove_user(self, name: str) -> None:
        self.request("DELETE", _path("users", name))

    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Tokens (ids and metadata, never secrets): the caller's, or ``user``'s for admins."""
        return self._json("GET", "/tokens", params={"user": user})["tokens"]

    def create_token(self, user: str | None = None, expires_in_s: float | None = None,
                     description: str = "") -> dict[str, Any]:
        """A new token for ``user`` (default: the caller); the secret is in ``"token"``, once."""
        body = {"user": user, "expires_in_s": expires_in_s, "description": description}
        return self._json("POST", "/tokens", body={k: v for k, v in body.items() if v not in (None, "")})

    def revoke_token(self, token_id: str) -> None:
        self.request("DELETE", _path("tokens", token_id))


def _path(collection: str, *segments: str) -> str:
    """``/collection/seg/…`` with each segment escaped, so an id can never address another endpoint."""
    return "/" + "/".join([collection, *(quote(str(s), safe="") for s in segments)])


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop unset query parameters (the seed omitted falsy limit/offset too)."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None and v != ""}


def _failure(method: str, response: requests.Response, resource: str | None,
             action: str | None) -> Exception:
    from qruntime.exceptions import api_error, seed_error

    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    error = api_error(method, response.url, response.status_code, response.reason, body)
    return seed_error(error, resource, action)
