"""The seed client's exception tree, and how a failed request becomes one of them.

Code written for the seed imported these from ``...runtime.exceptions`` and catches
them by name (``RuntimeJobFailureError``, ``RuntimeJobNotFound``,
``IBMQNotAuthorizedError`` …), so they keep the seed's names, bases and messages,
rooted at :class:`qiskit.exceptions.QiskitError`. This module is their only home::

    from qruntime.exceptions import RuntimeJobFailureError

A failed request is read from the server's error envelope into a
:class:`RequestsApiError`, then :data:`STATUS_ERRORS` (the one mapping of HTTP
status to the seed's classes) decides what the caller sees. Importing this module
imports qiskit (about half a second), which is why the transport imports it only
when a request fails.
"""

from __future__ import annotations

from typing import Any

from qiskit.exceptions import QiskitError
from qiskit.providers.exceptions import JobTimeoutError, QiskitBackendNotFoundError

from qruntime.client.vocabulary import (
    JOB_NOT_FOUND,
    PROGRAM_NOT_FOUND,
    RESOURCE_JOB,
    RESOURCE_PROGRAM,
    UNKNOWN_BACKEND,
)

__all__ = [
    "ApiError",
    "IBMQAccountError",
    "IBMQError",
    "IBMQInputValueError",
    "IBMQNotAuthorizedError",
    "IBMQProviderError",
    "JobTimeoutError",
    "QiskitBackendNotFoundError",
    "QiskitRuntimeError",
    "RequestsApiError",
    "RuntimeDuplicateProgramError",
    "RuntimeInvalidStateError",
    "RuntimeJobFailureError",
    "RuntimeJobNotFound",
    "RuntimeProgramNotFound",
    "StreamingError",
]


class IBMQError(QiskitError):
    """Raised for any client-side failure; the root of the seed's provider errors."""


class QiskitRuntimeError(IBMQError):
    """Raised when a runtime operation fails; base class of the runtime service's errors."""


class RuntimeDuplicateProgramError(QiskitRuntimeError):
    """Raised when a program with the same name already exists (HTTP 409 on upload)."""


class RuntimeProgramNotFound(QiskitRuntimeError):
    """Raised when a program id is unknown (or not visible to the caller)."""


class RuntimeJobFailureError(QiskitRuntimeError):
    """Raised when the result of a failed job is asked for."""


class RuntimeJobNotFound(QiskitRuntimeError):
    """Raised when a job id is unknown (or not visible to the caller)."""


class RuntimeInvalidStateError(QiskitRuntimeError):
    """Raised when a job is not in a state that allows the operation (cancel, streaming)."""


class IBMQInputValueError(IBMQError):
    """Raised when options, inputs or metadata given to the client are invalid."""


class IBMQNotAuthorizedError(IBMQError):
    """Raised when the caller has no valid token (HTTP 401) or may not do what it asked (403)."""


class IBMQAccountError(IBMQError):
    """Raised when the saved account cannot be read or is malformed."""


class IBMQProviderError(IBMQAccountError):
    """Raised when the service cannot be set up from the given account."""


class ApiError(IBMQError):
    """Raised when talking to the qruntime API fails; base of the transport errors."""


class RequestsApiError(ApiError):
    """Raised for a failed HTTP request the seed did not name otherwise (or no answer at all).

    Attributes:
        status_code: the HTTP status, or -1 when the server could not be reached.
        code: the envelope's ``code`` (equal to the status for qruntime servers).
        errors: the envelope's per-field details, if any.
        detail: the envelope's ``message`` alone, without the request summary.
    """

    def __init__(self, message: str, status_code: int = -1, *, code: int | None = None,
                 errors: Any = None, detail: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.errors = errors
        self.detail = detail or message

    @property
    def retryable(self) -> bool:
        """True when no answer came or the server failed (5xx): trying again may work."""
        return self.status_code < 0 or self.status_code >= 500


class StreamingError(ApiError):
    """Raised when a job's event stream cannot be (re)established."""


#: (HTTP status, resource) → the seed's class and message for a failed request; the
#: resource ``None`` row applies to every request. ``{detail}`` is the server's
#: sentence; a template whose fixed start the sentence already has is not repeated
#: ("Job not found: " + "Job not found: j1" stays "Job not found: j1").
STATUS_ERRORS: dict[tuple[int, str | None], tuple[type[IBMQError], str]] = {
    (401, None): (IBMQNotAuthorizedError, "{detail}"),
    (403, None): (IBMQNotAuthorizedError, "{detail}"),
    (404, RESOURCE_JOB): (RuntimeJobNotFound, JOB_NOT_FOUND + "{detail}"),
    (404, RESOURCE_PROGRAM): (RuntimeProgramNotFound, PROGRAM_NOT_FOUND + "{detail}"),
    (409, RESOURCE_JOB): (RuntimeInvalidStateError, "Job cannot be cancelled: {detail}"),
    (409, RESOURCE_PROGRAM): (RuntimeDuplicateProgramError, "Program with the same name already exists."),
}


def api_error(method: str, url: str, status_code: int, reason: str, body: Any) -> RequestsApiError:
    """A :class:`RequestsApiError` for a non-2xx answer, read from the error envelope.

    The message keeps the seed's shape, ``"<status> <reason> for url: <url>. <message>,
    Error code: <code>."``, and ``detail`` holds the server's sentence alone.
    """
    summary = f"{status_code} {reason} for {method} url: {url}"
    if isinstance(body, dict) and "message" in body:
        detail = str(body["message"])
        code = body.get("code", status_code)
        return RequestsApiError(f"{summary}. {detail}, Error code: {code}.", status_code,
                                code=code, errors=body.get("errors"), detail=detail)
    text = body if isinstance(body, str) else ""
    return RequestsApiError(f"{summary}. {text}".rstrip(". ") + ".", status_code,
                            code=status_code, detail=text or reason)


def seed_error(error: RequestsApiError, resource: str | None = None,
               action: str | None = None) -> QiskitError:
    """What the seed raised for ``error``, a failed request about ``resource``.

    Args:
        error: the failed request, as read from the envelope.
        resource: ``"job"``, ``"program"`` or None: which rows of :data:`STATUS_ERRORS` apply.
        action: the seed's words for the operation (``"delete job"``): any other failure
            becomes ``QiskitRuntimeError("Failed to delete job: …")``. None keeps the
            :class:`RequestsApiError`, as the seed did for listings and ``run``.

    An unreachable server always stays a :class:`RequestsApiError` (status -1).
    """
    if error.status_code < 0:
        return error
    row = STATUS_ERRORS.get((error.status_code, resource)) or STATUS_ERRORS.get((error.status_code, None))
    if row is not None:
        cls, template = row
        return cls(_fill(template, error.detail))
    if error.status_code == 400 and error.errors is None and error.detail.startswith(UNKNOWN_BACKEND):
        return QiskitBackendNotFoundError(error.detail)
    if action is not None:
        return QiskitRuntimeError(f"Failed to {action}: {error.detail}")
    return error


def _fill(template: str, detail: str) -> str:
    start = template.split("{detail}", 1)[0]
    return detail if start and detail.startswith(start) else template.format(detail=detail)
