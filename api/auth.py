"""Who is calling: the one place the caller's identity is decided.

Every view asks :func:`current_identity`; nothing else looks at headers or
decides ownership. Until accounts exist, every caller is the local admin.
"""

from __future__ import annotations

import dataclasses

ROLE_ADMIN = "admin"
ROLE_DEVELOPER = "developer"
ROLE_USER = "user"
LOCAL_USER = "local"


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    def may_see_job(self, owner: str) -> bool:
        return self.is_admin or owner == self.name

    @property
    def list_scope(self) -> str | None:
        """The owner whose jobs a listing shows; None means everyone's."""
        return None if self.is_admin else self.name


def current_identity() -> Identity:
    return Identity(name=LOCAL_USER, role=ROLE_ADMIN)
