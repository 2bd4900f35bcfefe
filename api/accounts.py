"""``/users``, ``/tokens`` and ``/me``: accounts and bearer tokens.

Admins manage users and everyone's tokens; any user may list, create and
revoke their own tokens. A new token's secret is in the creation response only.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from api.auth import authorized_first, current_identity, require_admin
from api.openapi import Blueprint, links
from api.responses import (
    Extended,
    MeSchema,
    TokenCreatedSchema,
    TokenListSchema,
    UserListSchema,
    UserSchema,
)
from api.schemas import TokenCreateSchema, TokenListQuerySchema, UserChangeSchema, UserCreateSchema
from api.services import services
from api.visibility import require_token_visible, token_owner_scope
from orchestrator.accounts import Identity

blueprint = Blueprint("accounts", __name__, description="Users, roles and bearer tokens.")


@blueprint.get("/me")
@blueprint.response(200, MeSchema)
@blueprint.errors(401)
def me() -> Identity:
    """Who the token belongs to."""
    return current_identity()


@blueprint.get("/users")
@blueprint.response(200, UserListSchema)
@blueprint.errors(401, 403)
def list_users() -> dict[str, Any]:
    """Every user (admins)."""
    require_admin()
    users = services().accounts.list_users()
    return {"users": users, "count": len(users)}


@blueprint.post("/users")
@blueprint.doc(**links(201, "name", {
    "ChangeUser": ("patch", "/users/{name}", "name"),
    "RemoveUser": ("delete", "/users/{name}", "name"),
}))
@authorized_first(lambda: require_admin())
@blueprint.arguments(UserCreateSchema)
@blueprint.response(201, UserSchema)
@blueprint.errors(401, 403, 409, 413)
def add_user(body: dict[str, Any]) -> dict[str, str]:
    """Add a user (admins)."""
    return services().accounts.add_user(body["name"], body["role"])


@blueprint.patch("/users/<name>")
@authorized_first(lambda name: require_admin())
@blueprint.arguments(UserChangeSchema)
@blueprint.response(200, UserSchema)
@blueprint.errors(401, 403, 404, 413)
def change_user(body: dict[str, Any], name: str) -> dict[str, str]:
    """Change a user's role (admins)."""
    return services().accounts.set_role(name, body["role"])


@blueprint.delete("/users/<name>")
@blueprint.response(204)
@blueprint.errors(401, 403, 404)
def remove_user(name: str) -> Response:
    """Remove a user and revoke their tokens (admins)."""
    require_admin()
    services().accounts.remove_user(name)
    return Response(status=204)


@blueprint.get("/tokens")
@blueprint.arguments(TokenListQuerySchema, location="query")
@blueprint.response(200, TokenListSchema)
@blueprint.errors(401)
def list_tokens(query: dict[str, Any]) -> dict[str, Any]:
    """The caller's tokens (admins: anyone's, or ``?user=``'s)."""
    tokens = services().accounts.list_tokens(token_owner_scope(query.get("user")))
    return {"tokens": tokens, "count": len(tokens)}


@blueprint.post("/tokens")
@blueprint.doc(**links(201, "id", {"RevokeToken": ("delete", "/tokens/{token_id}", "token_id")}))
@blueprint.arguments(TokenCreateSchema, required=False)
@blueprint.response(201, TokenCreatedSchema)
@blueprint.errors(401, 403, 404, 413)
def create_token(body: dict[str, Any]) -> Extended:
    """A new token for the caller (admins: for any user); its secret is shown this once."""
    identity = current_identity()
    user = body["user"] or identity.name
    if user != identity.name:
        require_admin()
    secret, info = services().accounts.create_token(
        user, expires_in_s=body["expires_in_s"], description=body["description"] or "")
    return Extended(info, token=secret)


@blueprint.delete("/tokens/<token_id>")
@blueprint.response(204)
@blueprint.errors(401, 404)
def revoke_token(token_id: str) -> Response:
    """Revoke a token (the caller's own; admins: any)."""
    require_token_visible(token_id)
    services().accounts.revoke(token_id)
    return Response(status=204)
