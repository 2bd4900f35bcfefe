"""The program registry: which runtime programs exist and where their code is.

Built-in programs live in ``programs/<name>/<name>.py`` beside
``programs/<name>/<name>.json`` (the seed's metadata format). Operators may add
directories of programs laid out the same way (``QRT_PROGRAMS_DIRS``). A
program's id is its metadata ``name``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.errors import ProgramLoadError, ProgramNotFoundError

REQUIRED_METADATA = ("name", "description", "max_execution_time")


@dataclasses.dataclass(frozen=True)
class Program:
    """A runtime program: metadata plus the file holding ``main``."""

    id: str
    name: str
    description: str
    max_execution_time: int
    spec: dict[str, Any]
    source_path: Path | None
    version: str
    creation_date: str
    update_date: str
    is_public: bool = True
    owner: str = ""
    kind: str = "source"
    entry: str = ""
    #: sha256 of the uploaded data (empty for built-ins), checked by workers before use.
    sha256: str = ""

    @property
    def builtin(self) -> bool:
        """Built-ins ship with the server: public, read-only, their source on disk."""
        return self.source_path is not None

    @property
    def backend_requirements(self) -> dict[str, Any]:
        return self.spec.get("backend_requirements", {})



class ProgramRegistry:
    """Serves the programs found in a list of directories (first one wins on a name clash)."""

    def __init__(self, directories: Iterable[Path]) -> None:
        self._programs: dict[str, Program] = {}
        for directory in directories:
            for program in _scan(Path(directory)):
                self._programs.setdefault(program.id, program)

    def get(self, program_id: str) -> Program:
        try:
            return self._programs[program_id]
        except KeyError:
            raise ProgramNotFoundError(f"Program not found: {program_id}") from None

    def list(self) -> list[Program]:
        return sorted(self._programs.values(), key=lambda p: p.id)


def _scan(directory: Path) -> list[Program]:
    if not directory.is_dir():
        return []
    programs = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        metadata_files = sorted(folder.glob("*.json"))
        if metadata_files:
            programs.append(load_program(metadata_files[0]))
    return programs


def load_program(metadata_path: Path) -> Program:
    """Read one program's metadata and locate its source beside it."""
    try:
        metadata = json.loads(metadata_path.read_text())
    except (OSError, ValueError) as exc:
        raise ProgramLoadError(f"Cannot read program metadata {metadata_path}: {exc}") from None
    missing = [k for k in REQUIRED_METADATA if not metadata.get(k)]
    if missing:
        raise ProgramLoadError(f"{metadata_path}: {', '.join(missing)} is a required metadata field.")
    source = metadata_path.with_suffix(".py")
    if not source.is_file():
        raise ProgramLoadError(f"Program source {source} not found beside its metadata.")
    code = source.read_bytes()
    stamp = datetime.fromtimestamp(source.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Program(
        id=metadata["name"],
        name=metadata["name"],
        description=metadata["description"],
        max_execution_time=int(metadata["max_execution_time"]),
        spec=metadata.get("spec", {}),
        source_path=source,
        version=hashlib.sha256(code + metadata_path.read_bytes()).hexdigest()[:12],
        creation_date=stamp,
        update_date=stamp,
        is_public=True,
    )
