"""Putting a program's files where a job can be given them, once per version.

Uploaded versions are immutable, so each is unpacked once into this worker's
own cache, ``<data dir>/workers/<worker>/programs/<namespace>/<program>/<version>/``.
The cache's top is ``0700`` and owned by the worker: jobs, which run under
other uids or in a filesystem of their own, never see it. A job is handed a
directory descriptor of its own program's version only, and copies what it
needs (``workers.sandbox``). The upload's sha256 is checked before unpacking,
and a digest of the unpacked files is checked before every use, so a version
folder that changed on disk (or a stale one from a reused id) is unpacked
again rather than run. Unpacking happens in a scratch folder renamed into
place, so two pool processes materialising the same version never see half.

Built-in programs are not copied: they are handed as the directory of
programs they belong to (a built-in may read its siblings, as qaoa reads vqe).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from orchestrator.errors import RequestError
from orchestrator.program_files import KIND_SOURCE, unpack
from orchestrator.program_store import ProgramStore
from orchestrator.programs import Program

DIGEST_FILE = ".qruntime-digest"
DIR_MODE, FILE_MODE = 0o755, 0o444


@dataclasses.dataclass(frozen=True)
class ProgramFiles:
    """Where a job finds its program: a directory, the entry under it, and (built-ins) its own path."""

    root: Path
    entry: str
    host_path: str | None


def worker_dir(data_dir: Path, worker_name: str) -> Path:
    """This worker's own folder under the data directory."""
    return data_dir / "workers" / _safe(worker_name)


class ProgramCache:
    """This worker's unpacked uploaded programs."""

    def __init__(self, store: ProgramStore, top: Path, namespace: str) -> None:
        self.store = store
        top.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(top, 0o700)
        self.root = top / "programs" / _safe(namespace)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def files(self, program: Program, builtin_dirs: list[Path]) -> ProgramFiles:
        if program.source_path is not None:
            return _builtin_files(program.source_path, tuple(builtin_dirs))
        folder = self.root / _safe(program.id) / _safe(program.version)
        if not (folder.is_dir() and _read_digest(folder) == _tree_digest(folder)):
            self._materialise(program, folder)
        return ProgramFiles(folder, program.entry, None)

    def _materialise(self, program: Program, folder: Path) -> None:
        data = self.store.data(program.id, program.version)
        if program.sha256 and hashlib.sha256(data).hexdigest() != program.sha256:
            raise RequestError(f"Program {program.id} version {program.version} does not match its sha256.")
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
        try:
            if program.kind == KIND_SOURCE:
                (scratch / program.entry).write_bytes(data)
            else:
                unpack(data, program.kind, scratch)
            _seal(scratch)
            (scratch / DIGEST_FILE).write_text(_tree_digest(scratch))
            if folder.exists():  # changed on disk since it was unpacked: replace it
                shutil.rmtree(folder, ignore_errors=True)
            try:
                os.rename(scratch, folder)
            except OSError:  # another process won the race; its copy is identical
                pass
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@functools.lru_cache(maxsize=256)
def _builtin_files(source_path: Path, builtin_dirs: tuple[Path, ...]) -> ProgramFiles:
    """Where a built-in program is (its paths are fixed for the worker's life: resolved once, not per job)."""
    source = source_path.resolve()
    for directory in builtin_dirs:
        directory = directory.resolve()
        if source.is_relative_to(directory):
            return ProgramFiles(directory, str(source.relative_to(directory)), str(source))
    return ProgramFiles(source.parent, source.name, str(source))


def _seal(folder: Path) -> None:
    """Directories a job's uid may enter, files it may read; nothing it may change."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():
            os.chmod(path, DIR_MODE)
        else:
            os.chmod(path, FILE_MODE)
    os.chmod(folder, DIR_MODE)


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.name != DIGEST_FILE):
        relative = str(path.relative_to(folder)).encode()
        if path.is_file() and not path.is_symlink():
            digest.update(b"F" + relative + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(b"D" + relative + b"\0")
    return digest.hexdigest()


def _read_digest(folder: Path) -> str | None:
    try:
        return (folder / DIGEST_FILE).read_text().strip()
    except OSError:
        return None


def _safe(name: str) -> str:
    """A path component from an id or a worker name (``w0@host`` and the like)."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", name).lstrip(".") or "_"
