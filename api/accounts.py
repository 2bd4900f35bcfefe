"""``/users``, ``/tokens`` and ``/me``: accounts and bearer tokens.

Admins manage users and everyone's tokens; any user may list, create and
revoke their own tokens. A new token's secret is in the creation response only.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.auth import current_identity, require_admin
from api.schemas import load_json_object
from api.services import services
from orchestrator.errors import NotFoundError, RequestError

blueprint = Blueprint("accounts", __name__)


@blueprint.get("/me")
def me() -> Response:
    identity = current_identity()
    return jsonify({"name": identity.name, "role": identity.role})


@blueprint.get("/users")
def list_users() -> Response:
    require_admin()
    users = services().accounts.list_users()
    return jsonify({"users": users, "count": len(users)})


@blueprint.post("/users")
def add_user() -> tuple[Response, int]:
    require_admin()
    body = load_json_object(request.get_data(), frozenset({"name", "role"}))
    user = services().accounts.add_user(str(body.get("name", "")), str(body.get("role", "user")))
    return jsonify(user), 201


@blueprint.patch("/users/<name>")
def change_user(name: str) -> Response:
    """Change a user's role (admins)."""
    require_admin()
    body = load_json_object(request.get_data(), frozenset({"role"}))
    if "role" not in body:
        raise RequestError("role is required: admin, developer or user.")
    return jsonify(services().accounts.set_role(name, str(body["role"])))


@blueprint.delete("/users/<name>")
def remove_user(name: str) -> tuple[str, int]:
    require_admin()
    services().accounts.remove_user(name)
    return "", 204


@blueprint.get("/tokens")
def list_tokens() -> Response:
    identity = current_identity()
    user = request.args.get("user") if identity.is_admin else identity.name
    tokens = services().accounts.list_tokens(user or None)
    return jsonify({"tokens": [t.to_api() for t in tokens], "count": len(tokens)})


@blueprint.post("/tokens")
def create_token() -> tuple[Response, int]:
    identity = current_identity()
    body = load_json_object(request.get_data(), frozenset({"user", "expires_in_s", "description"}), empty_ok=True)
    user = body.get("user") or identity.name
    if user != identity.name:
        require_admin()
    expires = body.get("expires_in_s")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))):
        raise RequestError("expires_in_s must be a number of seconds.")
    description = body.get("description") or ""
    if not isinstance(description, str):
        raise RequestError("description must be text.")
    secret, info = services().accounts.create_token(str(user), expires_in_s=expires, description=description)
    return jsonify({**info.to_api(), "token": secret}), 201


@blueprint.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> tuple[str, int]:
    identity = current_identity()
    accounts = services().accounts
    mine = {t.id for t in accounts.list_tokens(identity.name)}
    if not identity.is_admin and token_id not in mine:
        raise NotFoundError(f"Token not found: {token_id}")
    accounts.revoke(token_id)
    return "", 204
