"""The HTTP session to a qruntime API: retries, auth header, error envelopes.

:class:`ApiClient` has one method per REST endpoint and returns plain JSON (or
text); it knows nothing about jobs or programs as objects. Failures become
:class:`~qruntime.client.exceptions.RequestsApiError`, imported only when a
request fails, so the CLI can use this module without importing qiskit.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from qruntime import __version__

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
#: Page size the client asks for when walking a listing.
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
                timeout: Any = TIMEOUT_S, session: requests.Session | None = None) -> requests.Response:
        """Send one request; raise ``RequestsApiError`` unless the answer is 2xx."""
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
            from qruntime.client.exceptions import RequestsApiError

            raise RequestsApiError(f"Cannot reach the qruntime API at {self.url}: {exc}", -1,
                                   detail=f"cannot reach {self.url}") from None
        if response.status_code >= 400:
            raise self._error(method, response)
        return response

    @staticmethod
    def _error(method: str, response: requests.Response) -> Exception:
        from qruntime.client.exceptions import api_error

        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return api_error(method, response.url, response.status_code, response.reason, body)

    def stream_session(self) -> requests.Session:
        """A separate session for one long-lived event stream (sessions are not thread-safe)."""
        return make_session(self.token)

    # -- programs -------------------------------------------------------------------

    def list_programs(self, limit: int | None = PAGE_SIZE, offset: int = 0) -> dict[str, Any]:
        return self.request("GET", "/programs", params={"limit": limit, "offset": offset}).json()

    def get_program(self, program_id: str) -> dict[str, Any]:
        return self.request("GET", f"/programs/{_seg(program_id)}").json()

    # -- jobs -----------------------------------------------------------------------

    def submit_job(self, body: dict[str, Any] | str) -> dict[str, Any]:
        """``POST /jobs``; ``body`` may be pre-encoded JSON text (RuntimeEncoder output)."""
        return self.request("POST", "/jobs", body=body).json()

    def list_jobs(self, limit: int | None = None, offset: int = 0, pending: bool | None = None,
                  program_id: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset, "program": program_id}
        if pending is not None:
            params["pending"] = "true" if pending else "false"
        return self.request("GET", "/jobs", params=params).json()

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/jobs/{_seg(job_id)}").json()

    def job_results(self, job_id: str) -> tuple[bool, str]:
        """``(finished, text)``: the result text once the job has ended, else ``(False, "")``."""
        response = self.request("GET", f"/jobs/{_seg(job_id)}/results")
        if response.status_code == 204:
            return False, ""
        return True, response.content.decode("utf-8")

    def job_logs(self, job_id: str) -> str:
        return self.request("GET", f"/jobs/{_seg(job_id)}/logs").content.decode("utf-8")

    def job_interim_results(self, job_id: str, after: int = 0) -> list[tuple[int, str]]:
        """``[(event id, data as JSON text), …]``, oldest first."""
        items = self.request("GET", f"/jobs/{_seg(job_id)}/interim_results",
                             params={"after": after}).json()
        return [(int(item["id"]), json.dumps(item["data"])) for item in items]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"/jobs/{_seg(job_id)}/cancel").json()

    def delete_job(self, job_id: str) -> None:
        self.request("DELETE", f"/jobs/{_seg(job_id)}")

    def open_stream(self, job_id: str, last_event_id: int, session: requests.Session,
                    read_timeout_s: float) -> requests.Response:
        """``GET /jobs/{id}/stream`` as a streamed response, resuming after ``last_event_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = str(last_event_id)
        return self.request("GET", f"/jobs/{_seg(job_id)}/stream", headers=headers, stream=True,
                            timeout=(TIMEOUT_S[0], read_timeout_s), session=session)

    # -- backends -------------------------------------------------------------------

    def list_backends(self) -> list[dict[str, Any]]:
        return self.request("GET", "/backends").json()["backends"]


def _seg(value: str) -> str:
    """One URL path segment, escaped so an id can never address another endpoint."""
    return quote(str(value), safe="")


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop unset query parameters (the seed omitted falsy limit/offset too)."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None and v != ""}
