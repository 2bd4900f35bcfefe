"""Who is calling: the one place the caller's identity is decided.

Every request but ``/health`` must carry ``Authorization: Bearer <token>`` (the
seed's ``X-Access-Token`` header is accepted too). The token is looked up in the
account store on every request, so a revoked token stops working at once. With
``QRT_AUTH=off`` every caller is one local admin — for a single-user laptop only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request

from api import console, metrics
from api.services import services
from orchestrator.accounts import ROLE_ADMIN, Identity
from orchestrator.errors import AuthenticationError, PermissionDeniedError

#: Endpoints anyone may call without a token.
#: (/metrics checks its own token: the metrics token or an admin's.)
PUBLIC_ENDPOINTS = frozenset({"health.health", "api-docs.openapi_json", metrics.ENDPOINT}) | console.PUBLIC_ENDPOINTS
#: Endpoints that also take the token as ``?access_token=``: a browser's EventSource
#: cannot set headers. Access logs record paths without query strings.
QUERY_TOKEN_ENDPOINTS = frozenset({"stream.stream_job"})
LOCAL_ADMIN = Identity(name="local", role=ROLE_ADMIN)


def authenticate_request() -> None:
    """``before_request`` hook: set ``g.identity`` or answer 401."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return
    if services().settings.auth == "off":
        g.identity = LOCAL_ADMIN
        return
    token = _presented_token()
    if not token:
        raise AuthenticationError(
            "This endpoint needs a token: send 'Authorization: Bearer <token>'."
        )
    identity = services().accounts.authenticate(token)
    if identity is None:
        raise AuthenticationError("The token is not valid: unknown, revoked or expired.")
    g.identity = identity


def current_identity() -> Identity:
    identity = g.get("identity")
    if identity is None:  # a public endpoint asked: it gets no rights
        raise AuthenticationError("This endpoint needs a token.")
    return identity


def require_admin() -> Identity:
    identity = current_identity()
    if not identity.is_admin:
        raise PermissionDeniedError("Only administrators may do this.")
    return identity


def require_uploader() -> Identity:
    identity = current_identity()
    if not identity.may_upload:
        raise PermissionDeniedError("You are not authorized to upload programs.")
    return identity


def authorized_first(check: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run ``check(**path_args)`` before the request's arguments are parsed.

    Put it above ``@blueprint.arguments``: a caller who may not do something
    hears 403/404, not what is wrong with a body they may not send anyway.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check(**kwargs)
            return func(*args, **kwargs)

        return wrapper

    return decorator


def _presented_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    seed_header = request.headers.get("X-Access-Token", "").strip()
    if seed_header:
        return seed_header
    if request.endpoint in QUERY_TOKEN_ENDPOINTS:
        return request.args.get("access_token", "").strip()
    return ""
