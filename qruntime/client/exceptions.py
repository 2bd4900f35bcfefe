"""The seed client's exception tree, rebuilt from qruntime's error envelope.

Code written for the seed catches these names (``RuntimeJobFailureError``,
``RuntimeJobNotFound``, ``IBMQInputValueError`` …), so they keep the seed's
names, bases and messages, rooted at :class:`qiskit.exceptions.QiskitError`.
Importing this module imports qiskit (about half a second), which is why the
transport raises through :func:`api_error` lazily rather than at import time.
"""

from __future__ import annotations

from typing import Any

from qiskit.exceptions import QiskitError
from qiskit.providers.exceptions import JobTimeoutError, QiskitBackendNotFoundError

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
    "api_error",
]


class IBMQError(QiskitError):
    """Raised for any client-side failure; the root of the seed's provider errors."""


class QiskitRuntimeError(IBMQError):
    """Base class for errors raised by the runtime service modules."""


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
    """Raised when the caller may not perform the operation."""


class IBMQAccountError(IBMQError):
    """Raised when the saved account cannot be read or is malformed."""


class IBMQProviderError(IBMQAccountError):
    """Raised when the service cannot be set up from the given account."""


class ApiError(IBMQError):
    """Raised when talking to the qruntime API fails; base of the transport errors."""


class RequestsApiError(ApiError):
    """Raised for every failed HTTP request (non-2xx answer or no answer at all).

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


class StreamingError(ApiError):
    """Raised when a job's event stream cannot be (re)established."""


def api_error(method: str, url: str, status_code: int, reason: str, body: Any) -> RequestsApiError:
    """A :class:`RequestsApiError` for a non-2xx answer, read from the error envelope.

    The message keeps the seed's shape, ``"<status> <reason> for url: <url>. <message>,
    Error code: <code>."``, and ``detail`` holds the server's sentence alone so
    callers can build the seed's ``"Job not found: …"`` style messages from it.
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


def prefixed(prefix: str, detail: str) -> str:
    """``prefix + detail`` unless the server's sentence already starts with ``prefix``.

    The seed built messages like ``f"Job not found: {ex.message}"``; qruntime's
    server already says ``"Job not found: <id>"``, which would otherwise read twice.
    """
    return detail if detail.startswith(prefix) else prefix + detail
