"""Users, roles and bearer tokens.

A token is shown once, when it is created; the store keeps only its SHA-256
(tokens are 256 random bits, so a plain hash is as strong as a slow one and
keeps every request's check to one Redis read). Revoking deletes the hash
record, so a revoked token stops working on the very next request. Tokens may
carry an expiry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import time

import redis

from orchestrator.errors import ConflictError, NotFoundError, RequestError
from orchestrator.keys import Keys
from orchestrator.store import utcnow

ROLE_ADMIN = "admin"
ROLE_DEVELOPER = "developer"
ROLE_USER = "user"
ROLES = (ROLE_ADMIN, ROLE_DEVELOPER, ROLE_USER)
TOKEN_PREFIX = "qrt_"
#: Random bytes in a token (256 bits).
TOKEN_BYTES = 32
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a request acts as."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def may_upload(self) -> bool:
        return self.role in (ROLE_ADMIN, ROLE_DEVELOPER)

    def owns(self, owner: str) -> bool:
        """True for the owner of a thing, and for admins (who may act on everything)."""
        return self.is_admin or owner == self.name

    @property
    def list_scope(self) -> str | None:
        """The owner whose jobs a listing shows; None means everyone's (admins)."""
        return None if self.is_admin else self.name


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    created: str
    expires_at: float | None
    description: str



def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users and tokens in Redis (keys from ``Keys``)."""

    def __init__(self, redis_client: redis.Redis, keys: Keys) -> None:
        self.redis = redis_client
        self.keys = keys

    # -- users -------------------------------------------------------------------------

    def add_user(self, name: str, role: str) -> dict[str, str]:
        if not USER_NAME_PATTERN.match(name or ""):
            raise RequestError(
                f"Invalid user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'."
            )
        if role not in ROLES:
            raise RequestError(f"Invalid role {role!r}; roles are: {', '.join(ROLES)}.")
        record = {"name": name, "role": role, "created": utcnow()}
        if not self.redis.hsetnx(self.keys.users(), name, _dump(record)):
            raise ConflictError(f"User {name} already exists.")
        return record

    def get_user(self, name: str) -> dict[str, str]:
        raw = self.redis.hget(self.keys.users(), name)
        if raw is None:
            raise NotFoundError(f"User not found: {name}")
        return _load(raw)

    def list_users(self) -> list[dict[str, str]]:
        return sorted((_load(v) for v in self.redis.hvals(self.keys.users())), key=lambda u: u["name"])

    def has_users(self) -> bool:
        return bool(self.redis.hlen(self.keys.users()))

    def set_role(self, name: str, role: str) -> dict[str, str]:
        """Change a user's role; their tokens carry the new role from the next request on."""
        if role not in ROLES:
            raise RequestError(f"Invalid role {role!r}; roles are: {', '.join(ROLES)}.")
        record = {**self.get_user(name), "role": role}
        self.redis.hset(self.keys.users(), name, _dump(record))
        return record

    def remove_user(self, name: str) -> None:
        self.get_user(name)
        for token in self.list_tokens(name):
            self.revoke(token.id)
        self.redis.hdel(self.keys.users(), name)

    # -- tokens ------------------------------------------------------------------------

    def create_token(self, user: str, *, expires_in_s: float | None = None, description: str = "") -> tuple[str, TokenInfo]:
        """A new token for ``user``: returns the secret (shown once) and its record."""
        self.get_user(user)
        if expires_in_s is not None and expires_in_s <= 0:
            raise RequestError("expires_in_s must be positive.")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        info = TokenInfo(
            id=secrets.token_hex(6),
            user=user,
            created=utcnow(),
            expires_at=None if expires_in_s is None else time.time() + expires_in_s,
            description=description[:200],
        )
        digest = hash_token(secret)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.token(digest), mapping=_token_fields(info))
            if info.expires_at is not None:
                pipe.expireat(self.keys.token(digest), int(info.expires_at) + 1)
            pipe.hset(self.keys.token_ids(), info.id, digest)
            pipe.execute()
        return secret, info

    def authenticate(self, secret: str) -> Identity | None:
        """The identity a token stands for, or None if it is unknown, revoked or expired."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        raw = self.redis.hgetall(self.keys.token(hash_token(secret)))
        if not raw:
            return None
        info = _token_from_hash(raw)
        if info.expires_at is not None and info.expires_at <= time.time():
            return None
        user = self.redis.hget(self.keys.users(), info.user)
        if user is None:
            return None
        return Identity(name=info.user, role=_load(user)["role"])

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        tokens = []
        for token_id, digest in self.redis.hgetall(self.keys.token_ids()).items():
            raw = self.redis.hgetall(self.keys.token(digest.decode()))
            if not raw:  # expired by TTL: forget its id
                self.redis.hdel(self.keys.token_ids(), token_id)
                continue
            info = _token_from_hash(raw)
            if user is None or info.user == user:
                tokens.append(info)
        return sorted(tokens, key=lambda t: t.created)

    def revoke(self, token_id: str) -> TokenInfo:
        digest = self.redis.hget(self.keys.token_ids(), token_id)
        if digest is None:
            raise NotFoundError(f"Token not found: {token_id}")
        raw = self.redis.hgetall(self.keys.token(digest.decode()))
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.token(digest.decode()))
            pipe.hdel(self.keys.token_ids(), token_id)
            pipe.execute()
        if not raw:
            raise NotFoundError(f"Token not found: {token_id}")
        return _token_from_hash(raw)


def _token_fields(info: TokenInfo) -> dict[str, str]:
    return {
        "id": info.id,
        "user": info.user,
        "created": info.created,
        "expires_at": "" if info.expires_at is None else repr(info.expires_at),
        "description": info.description,
    }


def _token_from_hash(raw: dict) -> TokenInfo:
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return TokenInfo(
        id=data["id"],
        user=data["user"],
        created=data["created"],
        expires_at=float(data["expires_at"]) if data.get("expires_at") else None,
        description=data.get("description", ""),
    )


def _dump(record: dict[str, str]) -> str:
    return json.dumps(record)


def _load(raw: bytes | str) -> dict[str, str]:
    return json.loads(raw)
