"""Uploaded programs and their immutable versions, in Redis.

Every change of a program's data or metadata writes a new version (1, 2, …)
holding both as they then were, so a job that names a version can always be
re-run against the very code it ran. The program record points at the current
version. Names are unique per owner; ids derive from the name plus a random
suffix (the seed's style, e.g. ``hello-world-nq9dgrje``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

import redis

from orchestrator.errors import ConflictError, ProgramNotFoundError
from orchestrator.keys import Keys
from orchestrator.program_files import KIND_SOURCE, slug
from orchestrator.programs import Program, ProgramRegistry
from orchestrator.settings import Settings
from orchestrator.store import utcnow

#: What :func:`~orchestrator.program_files.describe` says about a program's data.
FILE_FIELDS = ("kind", "entry", "sha256")
#: Metadata fields copied into every version.
VERSIONED_FIELDS = ("name", "description", "cost", "spec", "entry", "kind", "sha256")


class ProgramStore:
    """Create, read, version, update and delete uploaded programs."""

    def __init__(self, redis_client: redis.Redis, keys: Keys) -> None:
        self.redis = redis_client
        self.keys = keys

    def create(self, *, owner: str, metadata: Mapping[str, Any], data: bytes, files: Mapping[str, str]) -> Program:
        """Store a new program (version 1). ``metadata`` and ``files`` (from
        :func:`~orchestrator.program_files.describe`) are already checked.

        Raises:
            ConflictError: the owner already has a program of that name.
        """
        name = metadata["name"]
        program_id = f"{slug(name)}-{secrets.token_hex(4)}"
        if not self.redis.hsetnx(self.keys.program_names(), f"{owner}/{name}", program_id):
            raise ConflictError("Program with the same name already exists.")
        now = utcnow()
        record = {
            "id": program_id,
            "name": name,
            "owner": owner,
            "description": metadata["description"],
            "cost": str(metadata["max_execution_time"]),
            "spec": json.dumps(metadata.get("spec") or {}),
            "is_public": "1" if metadata.get("is_public") else "0",
            "creation_date": now,
            "update_date": now,
            "version": "1",
            **{k: files[k] for k in FILE_FIELDS},
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.program(program_id), mapping=record)
            pipe.hset(self.keys.program_version(program_id, "1"), mapping=_version_record(record, data, now))
            pipe.zadd(self.keys.programs(), {program_id: _epoch()})
            pipe.execute()
        return _program_from(record)

    def get(self, program_id: str, version: str | None = None) -> Program:
        record = self._record(program_id)
        if version and version != record["version"]:
            raw = self.redis.hgetall(self.keys.program_version(program_id, version))
            if not raw:
                raise ProgramNotFoundError(f"Program {program_id} has no version {version}.")
            snapshot = _decode(raw)
            snapshot.pop("data", None)
            record = {**record, **{k: snapshot[k] for k in VERSIONED_FIELDS if k in snapshot}, "version": version}
        return _program_from(record)

    def exists(self, program_id: str) -> bool:
        return bool(self.redis.exists(self.keys.program(program_id)))

    def list(self) -> list[Program]:
        ids = [i.decode() for i in self.redis.zrange(self.keys.programs(), 0, -1)]
        with self.redis.pipeline(transaction=False) as pipe:
            for program_id in ids:
                pipe.hgetall(self.keys.program(program_id))
            raws = pipe.execute()
        return [_program_from(_decode(raw)) for raw in raws if raw]

    def data(self, program_id: str, version: str | None = None) -> bytes:
        version = version or self._record(program_id)["version"]
        raw = self.redis.hget(self.keys.program_version(program_id, version), "data")
        if raw is None:
            raise ProgramNotFoundError(f"Program {program_id} has no version {version}.")
        return raw

    def versions(self, program_id: str) -> list[dict[str, Any]]:
        record = self._record(program_id)
        out = []
        for number in range(1, int(record["version"]) + 1):
            raw = self.redis.hgetall(self.keys.program_version(program_id, str(number)))
            if raw:
                snapshot = _decode(raw)
                snapshot.pop("data", None)
                out.append(
                    {
                        "version": str(number),
                        "created": snapshot.get("created"),
                        "name": snapshot.get("name"),
                        "description": snapshot.get("description"),
                        "cost": int(snapshot.get("cost", "0")),
                        "sha256": snapshot.get("sha256"),
                        "kind": snapshot.get("kind"),
                        "current": str(number) == record["version"],
                    }
                )
        return out

    def update(
        self, program_id: str, *, metadata: Mapping[str, Any] | None = None, data: bytes | None = None,
        files: Mapping[str, str] | None = None,
    ) -> Program:
        """Write a new version with the changed data and/or metadata fields.

        ``files`` describes ``data`` (or, with no new data, the current data under a new entry).
        """
        record = self._record(program_id)
        changes: dict[str, str] = {}
        metadata = metadata or {}
        if "name" in metadata and metadata["name"] != record["name"]:
            old_key, new_key = f"{record['owner']}/{record['name']}", f"{record['owner']}/{metadata['name']}"
            if not self.redis.hsetnx(self.keys.program_names(), new_key, program_id):
                raise ConflictError("Program with the same name already exists.")
            self.redis.hdel(self.keys.program_names(), old_key)
            changes["name"] = metadata["name"]
        if "description" in metadata:
            changes["description"] = metadata["description"]
        if "max_execution_time" in metadata:
            changes["cost"] = str(metadata["max_execution_time"])
        if "spec" in metadata:
            changes["spec"] = json.dumps(metadata["spec"])
        current_data = data if data is not None else self.data(program_id, record["version"])
        if files is not None:
            changes.update({k: files[k] for k in FILE_FIELDS})
        version = str(int(record["version"]) + 1)
        now = utcnow()
        updated = {**record, **changes, "version": version, "update_date": now}
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.program(program_id), mapping=updated)
            pipe.hset(
                self.keys.program_version(program_id, version),
                mapping=_version_record(updated, current_data, now),
            )
            pipe.execute()
        return _program_from(updated)

    def set_public(self, program_id: str, public: bool) -> Program:
        record = self._record(program_id)
        self.redis.hset(self.keys.program(program_id), "is_public", "1" if public else "0")
        return _program_from({**record, "is_public": "1" if public else "0"})

    def delete(self, program_id: str) -> None:
        record = self._record(program_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.program(program_id))
            for number in range(1, int(record["version"]) + 1):
                pipe.delete(self.keys.program_version(program_id, str(number)))
            pipe.zrem(self.keys.programs(), program_id)
            pipe.hdel(self.keys.program_names(), f"{record['owner']}/{record['name']}")
            pipe.execute()

    def _record(self, program_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(self.keys.program(program_id))
        if not raw:
            raise ProgramNotFoundError(f"Program not found: {program_id}")
        return _decode(raw)


class Programs:
    """Built-in and uploaded programs behind one lookup (built-ins win on an id clash)."""

    def __init__(self, builtins: ProgramRegistry, store: ProgramStore) -> None:
        self.builtins = builtins
        self.store = store

    @classmethod
    def for_settings(cls, redis_client: redis.Redis, settings: Settings) -> Programs:
        """The built-ins of ``settings.program_paths`` and the uploads in ``redis_client``."""
        return cls(ProgramRegistry(settings.program_paths), ProgramStore(redis_client, Keys(settings.namespace)))

    def get(self, program_id: str, version: str | None = None) -> Program:
        try:
            program = self.builtins.get(program_id)
        except ProgramNotFoundError:
            return self.store.get(program_id, version)
        if version and version != program.version:
            raise ProgramNotFoundError(f"Program {program_id} has no version {version}.")
        return program

    def list(self) -> list[Program]:
        return [*self.builtins.list(), *self.store.list()]


def _version_record(record: Mapping[str, str], data: bytes, now: str) -> dict[str, Any]:
    return {**{k: record[k] for k in VERSIONED_FIELDS if k in record}, "data": data, "created": now}


def _program_from(record: Mapping[str, str]) -> Program:
    return Program(
        id=record["id"],
        name=record["name"],
        description=record.get("description", ""),
        max_execution_time=int(record.get("cost", "0")),
        spec=json.loads(record.get("spec") or "{}"),
        source_path=None,
        version=record.get("version", "1"),
        creation_date=record.get("creation_date", ""),
        update_date=record.get("update_date", ""),
        is_public=record.get("is_public") == "1",
        owner=record.get("owner", ""),
        kind=record.get("kind", KIND_SOURCE),
        entry=record.get("entry", ""),
        sha256=record.get("sha256", ""),
    )


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): (v.decode() if k != b"data" else v) for k, v in raw.items()}


def _epoch() -> float:
    import time

    return time.time()
