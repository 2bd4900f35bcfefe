"""The one exception hierarchy of the qruntime server.

Every error the server raises on purpose derives from :class:`RuntimeServiceError`
and carries the HTTP status it maps to, so the API renders any of them with one
handler and the client can rebuild the seed's exception classes from the status.
"""

from __future__ import annotations

from typing import Any


class RuntimeServiceError(Exception):
    """Raised for any failure qruntime reports on purpose."""

    http_status = 500

    def __init__(self, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class ConfigurationError(RuntimeServiceError):
    """Raised when a setting is missing or malformed."""


class RequestError(RuntimeServiceError):
    """Raised when a request is malformed or fails validation."""

    http_status = 400


class PayloadTooLargeError(RequestError):
    """Raised when a request body is over the configured limit."""

    http_status = 413


class AuthenticationError(RuntimeServiceError):
    """Raised when a request carries no valid bearer token."""

    http_status = 401


class PermissionDeniedError(RuntimeServiceError):
    """Raised when the caller may see a resource but not do what it asked to it."""

    http_status = 403


class NotFoundError(RuntimeServiceError):
    """Raised when a job, program or backend does not exist (or may not be seen)."""

    http_status = 404


class JobNotFoundError(NotFoundError):
    """Raised when a job id is unknown."""


class ProgramNotFoundError(NotFoundError):
    """Raised when a program id is unknown."""


class ConflictError(RuntimeServiceError):
    """Raised when a request contradicts the current state of a resource."""

    http_status = 409


class InvalidTransitionError(ConflictError):
    """Raised when a job cannot move from its current status to the one asked for."""


class StaleRunError(InvalidTransitionError):
    """Raised when a worker writes for a run of a job that is no longer the job's current run.

    Its worker was cut off long enough for the job to be handed to another worker
    (or its job ended meanwhile): what it has to say is refused, never applied.
    """


class ProgramLoadError(RuntimeServiceError):
    """Raised when a program's files are missing or its metadata is malformed."""


class UnavailableError(RuntimeServiceError):
    """Raised when a service qruntime depends on (Redis, the broker) cannot be reached."""

    http_status = 503
