"""A program's files: one source file, or a zip/tar archive of a directory.

An archive may hold helper modules and data files beside the entry module; in
the sandbox the program's directory is the working import path. The entry
module is, in order: the metadata's ``entry``, ``main.py``, ``<name>.py``, or
the only top-level ``.py`` file that defines ``main``.

Archives are hostile input. An archive's headers may lie (a zip member that
declares 1 KB and inflates to 1 GB, a 4 MB tar.gz of 4 GiB of zeros), so sizes
are never taken from headers: every member is really decompressed, counting
bytes as they come, and the read stops at the first limit crossed: the total
(:data:`MAX_UNPACKED_BYTES`), the ratio to the archive's own size
(:data:`MAX_RATIO`), the member count. A member whose content does not match
its header (size or CRC) is refused. Paths may not leave the program's
directory; links and devices are refused. Upload and the worker's unpack use
the same reader, so what was accepted is exactly what a worker unpacks.

Every Python file is compiled at upload, so a syntax error is a 400 naming the
file, line and message instead of a job that fails when run. The API runs all
of this off its request threads, under a time and memory budget
(``api.checker``).
"""

from __future__ import annotations

import ast
import hashlib
import io
import posixpath
import re
import tarfile
import zipfile
from pathlib import Path

from orchestrator.errors import RequestError

KIND_SOURCE = "source"
KIND_ZIP = "zip"
KIND_TAR = "tar"
#: Limits on what an archive may unpack to.
MAX_ARCHIVE_FILES = 2000
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
#: Most bytes an archive may unpack to per byte of archive, once past RATIO_FLOOR_BYTES.
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


def detect_kind(data: bytes) -> str:
    """``zip``, ``tar`` (plain or compressed) or ``source`` (UTF-8 Python text)."""
    if data[:4] == b"PK\x03\x04":
        return KIND_ZIP
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*"):
            return KIND_TAR
    except (tarfile.TarError, EOFError, OSError, ValueError):
        pass
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("Program data is neither UTF-8 Python source nor a zip/tar archive.") from None
    return KIND_SOURCE


def describe(data: bytes, name: str, entry: str | None = None) -> dict[str, str]:
    """``{"kind", "entry", "sha256"}`` of a program's data, after every check above.

    Raises:
        RequestError: not a program: empty, damaged, over a limit, a syntax error, no ``main``.
    """
    if not data:
        raise RequestError("Program data is empty.")
    kind = detect_kind(data)
    if kind == KIND_SOURCE:
        entry_path = f"{slug(name).replace('-', '_')}.py"
        if not defines_main(_compiled(data, "the program source")):
            raise RequestError("Program source does not define main(backend, user_messenger, ...).")
    else:
        entry_path = _find_entry(read_archive(data, kind), name, entry)
    return {"kind": kind, "entry": entry_path, "sha256": hashlib.sha256(data).hexdigest()}


def read_archive(data: bytes, kind: str) -> dict[str, bytes]:
    """Every regular file of the archive, path → content, really decompressed within the limits.

    Raises:
        RequestError: a member is unsafe, damaged or lies about its size, or a limit is crossed.
    """
    budget = _Budget(len(data))
    try:
        if kind == KIND_ZIP:
            return _read_zip(data, budget)
        return _read_tar(data, budget)
    except RequestError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        raise RequestError(f"The program archive is damaged: {exc}.") from None


def unpack(data: bytes, kind: str, target: Path) -> None:
    """Write every member under ``target``, read by :func:`read_archive` (the upload's checks)."""
    for path, content in read_archive(data, kind).items():
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(content)


def defines_main(tree: ast.Module) -> bool:
    """Whether a module binds ``main`` at its top level (def, assignment or import)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main":
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "main" for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((alias.asname or alias.name) == "main" for alias in node.names):
                return True
    return False


class _Budget:
    """Counts real bytes and files against the limits; raises at the first one crossed."""

    def __init__(self, archive_bytes: int) -> None:
        self.limit = min(MAX_UNPACKED_BYTES, max(RATIO_FLOOR_BYTES, MAX_RATIO * archive_bytes))
        self.total = 0
        self.files = 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > MAX_ARCHIVE_FILES:
            raise RequestError(f"The program archive has more than {MAX_ARCHIVE_FILES} files (the limit).")

    def read(self, handle: io.BufferedIOBase | zipfile.ZipExtFile, name: str) -> bytes:
        parts = []
        while chunk := handle.read(_CHUNK):
            self.total += len(chunk)
            if self.total > self.limit:
                which = (f"{MAX_UNPACKED_BYTES >> 20} MiB (the limit)" if self.limit == MAX_UNPACKED_BYTES
                         else f"{MAX_RATIO} times its own size (the limit for an archive this small)")
                raise RequestError(f"The program archive unpacks to more than {which}; it stopped at {name!r}.")
            parts.append(chunk)
        return b"".join(parts)


def _read_zip(data: bytes, budget: _Budget) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_FILES * 2:
            raise RequestError(f"The program archive has more than {MAX_ARCHIVE_FILES} files (the limit).")
        for info in infos:
            if info.is_dir():
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise RequestError(f"Archive member {info.filename!r} is a symbolic link; links are not allowed.")
            path = _safe_path(info.filename)
            budget.add_file()
            with archive.open(info) as handle:  # checks the CRC and the declared size at the end
                content = budget.read(handle, info.filename)
            if len(content) != info.file_size:
                raise RequestError(f"Archive member {info.filename!r} is not the size its header declares.")
            files[path] = content
    return _non_empty(files)


def _read_tar(data: bytes, budget: _Budget) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    # Stream mode: members are read in order and never seeked, so nothing is decompressed twice.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as archive:
        for info in archive:
            if info.isdir():
                continue
            if not info.isfile():
                raise RequestError(f"Archive member {info.name!r} is not a regular file; only files are allowed.")
            path = _safe_path(info.name)
            budget.add_file()
            handle = archive.extractfile(info)
            content = budget.read(handle, info.name) if handle else b""
            if len(content) != info.size:
                raise RequestError(f"Archive member {info.name!r} is truncated.")
            files[path] = content
    return _non_empty(files)


def _non_empty(files: dict[str, bytes]) -> dict[str, bytes]:
    if not files:
        raise RequestError("The program archive is empty.")
    return files


def _find_entry(files: dict[str, bytes], name: str, entry: str | None) -> str:
    """The archive path of the entry module, after compiling every Python file."""
    trees = {path: _compiled(content, path) for path, content in files.items() if path.endswith(".py")}
    root = _common_root(files)
    candidates = [entry] if entry else ["main.py", f"{name}.py", f"{name.replace('-', '_')}.py"]
    for candidate in candidates:
        path = posixpath.join(root, candidate) if root else candidate
        if path in trees:
            if not defines_main(trees[path]):
                raise RequestError(f"The entry module {candidate} does not define main(backend, user_messenger, ...).")
            return path
    if entry:
        raise RequestError(f"The entry module {entry!r} is not in the archive.")
    with_main = [p for p, tree in trees.items() if posixpath.dirname(p) == root and defines_main(tree)]
    if len(with_main) == 1:
        return with_main[0]
    raise RequestError(
        "Cannot tell which module of the archive is the program: name it with the metadata field "
        "'entry', or call it main.py."
    )


def _compiled(source: bytes, where: str) -> ast.Module:
    """The module's syntax tree, after compiling it; a syntax error is a 400 naming the line."""
    try:
        tree = ast.parse(source, filename=where)
        compile(tree, where, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise RequestError(
            f"Syntax error in {where}, line {exc.lineno}: {exc.msg}.",
            {"data": [{"file": where, "line": exc.lineno, "offset": exc.offset, "message": exc.msg}]},
        ) from None
    except (RecursionError, MemoryError):
        raise RequestError(f"{where} is nested too deeply to compile.") from None
    except ValueError as exc:  # e.g. source holding NUL bytes
        raise RequestError(f"{where} cannot be compiled: {exc}.") from None
    return tree


def _safe_path(name: str) -> str:
    normalized = posixpath.normpath(name.replace("\\", "/"))
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../") or "\x00" in normalized:
        raise RequestError(f"Archive member {name!r} would be written outside the program's directory.")
    return normalized.removeprefix("./")


def _common_root(members: dict[str, bytes]) -> str:
    """The single top-level folder every member sits in, if there is one."""
    tops = {p.split("/", 1)[0] for p in members}
    if len(tops) == 1 and all("/" in p for p in members):
        return tops.pop()
    return ""


def slug(name: str) -> str:
    """A program name as an id prefix and a module name: lower-case letters, digits and '-'."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "program"
