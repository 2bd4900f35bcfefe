"""Who may see and change what: the one place the API decides it, from the caller's identity.

A job is visible to its owner and to admins; a program to everyone when it is
built in or public, else to its owner and admins; a token to its user and to
admins. What the caller may not see answers 404 exactly like what does not
exist, so ids do not leak. Changing a program needs ownership (or admin) and is
refused for built-ins (403).
"""

from __future__ import annotations

from api.auth import current_identity
from api.services import services
from orchestrator.accounts import Identity, TokenInfo
from orchestrator.errors import (
    JobNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    ProgramNotFoundError,
)
from orchestrator.programs import Program
from orchestrator.store import Job


def may_see_program(identity: Identity, program: Program) -> bool:
    return program.builtin or program.is_public or identity.owns(program.owner)


def may_read_program_data(identity: Identity, program: Program) -> bool:
    """Owners (and admins) get an uploaded program's data back; built-ins' stays on the server."""
    return not program.builtin and identity.owns(program.owner)


def visible_job(job_id: str) -> Job:
    """The job, if it exists and the caller may see it; 404 otherwise."""
    try:
        job = services().store.get(job_id)
    except JobNotFoundError:
        raise JobNotFoundError(f"Job not found: {job_id}") from None
    if not current_identity().owns(job.owner):
        raise JobNotFoundError(f"Job not found: {job_id}")
    return job


def visible_program(program_id: str, version: str | None = None) -> Program:
    """The program (at ``version``, default current) if the caller may see it; 404 otherwise."""
    program = services().programs.get(program_id, version)
    if may_see_program(current_identity(), program):
        return program
    raise ProgramNotFoundError(f"Program not found: {program_id}")


def visible_programs() -> list[Program]:
    identity = current_identity()
    return [p for p in services().programs.list() if may_see_program(identity, p)]


def owned_program(program_id: str) -> Program:
    """The program if the caller may change it: 404 if they may not see it, 403 if only see it."""
    program = visible_program(program_id)
    if program.builtin:
        raise PermissionDeniedError(f"Program {program_id} is built in and cannot be changed.")
    if not current_identity().owns(program.owner):
        raise PermissionDeniedError(f"Only the owner of program {program_id} (or an admin) may change it.")
    return program


def token_owner_scope(requested_user: str | None) -> str | None:
    """Whose tokens a listing shows: admins choose (None: everyone's), others see their own."""
    identity = current_identity()
    return (requested_user or None) if identity.is_admin else identity.name


def require_token_visible(token_id: str) -> None:
    """404 unless the caller is an admin or the token is theirs."""
    identity = current_identity()
    if identity.is_admin:
        return
    mine: list[TokenInfo] = services().accounts.list_tokens(identity.name)
    if token_id not in {t.id for t in mine}:
        raise NotFoundError(f"Token not found: {token_id}")
