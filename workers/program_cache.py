"""Putting an uploaded program's files on the worker's disk, once per version.

Versions are immutable, so each is unpacked once into
``<tmp>/qrt-programs/<namespace>/<program>/<version>/`` and reused by every job
that runs it. Unpacking happens in a scratch folder renamed into place, so two
processes materialising the same version at once cannot see half a program.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from orchestrator.program_files import KIND_SOURCE, unpack
from orchestrator.program_store import ProgramStore
from orchestrator.programs import Program

CACHE_ROOT = Path(tempfile.gettempdir()) / "qrt-programs"


def with_source_path(program: Program, store: ProgramStore, namespace: str) -> Program:
    """``program`` with ``source_path`` pointing at its entry module on this disk."""
    if program.source_path is not None:
        return program
    folder = CACHE_ROOT / namespace / program.id / program.version
    if not folder.is_dir():
        data = store.data(program.id, program.version)
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
        try:
            if program.kind == KIND_SOURCE:
                (scratch / program.entry).write_bytes(data)
            else:
                unpack(data, program.kind, scratch)
            try:
                os.rename(scratch, folder)
            except OSError:  # another process won the race; its copy is identical
                pass
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(program, source_path=folder / program.entry)
