"""A program's files: one source file, or a zip/tar archive of a directory.

An archive may hold helper modules and data files beside the entry module; in
the sandbox the program's directory is the working import path. Archives are
checked before they are stored (no absolute paths, no ``..``, no links or
devices, bounded size and file count) and unpacked the same careful way on
workers. The entry module is, in order: the metadata's ``entry``, ``main.py``,
``<name>.py``, or the only top-level ``.py`` file that defines ``main(``.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zipfile
from pathlib import Path

from orchestrator.errors import RequestError

KIND_SOURCE = "source"
KIND_ZIP = "zip"
KIND_TAR = "tar"
#: Limits on what an archive may unpack to.
MAX_ARCHIVE_FILES = 2000
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAIN_MARKER = "def main("


def detect_kind(data: bytes) -> str:
    """``zip``, ``tar`` (plain or compressed) or ``source`` (UTF-8 Python text)."""
    if data[:4] == b"PK\x03\x04":
        return KIND_ZIP
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*"):
            return KIND_TAR
    except (tarfile.TarError, EOFError, OSError):
        pass
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("Program data is neither UTF-8 Python source nor a zip/tar archive.") from None
    return KIND_SOURCE


def list_members(data: bytes, kind: str) -> dict[str, int]:
    """Archive member path → size, after checking every member is safe to unpack."""
    members: dict[str, int] = {}
    if kind == KIND_ZIP:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise RequestError(f"Archive member {info.filename!r} is a symbolic link; links are not allowed.")
                members[_safe_path(info.filename)] = info.file_size
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for info in archive.getmembers():
                if info.isdir():
                    continue
                if not info.isfile():
                    raise RequestError(f"Archive member {info.name!r} is not a regular file; only files are allowed.")
                members[_safe_path(info.name)] = info.size
    if not members:
        raise RequestError("The program archive is empty.")
    if len(members) > MAX_ARCHIVE_FILES:
        raise RequestError(f"The program archive has {len(members)} files; the limit is {MAX_ARCHIVE_FILES}.")
    total = sum(members.values())
    if total > MAX_UNPACKED_BYTES:
        raise RequestError(f"The program archive unpacks to {total} bytes; the limit is {MAX_UNPACKED_BYTES}.")
    return members


def find_entry(data: bytes, kind: str, name: str, entry: str | None = None) -> str:
    """The archive path of the entry module (checked to define ``main``)."""
    members = list_members(data, kind)
    root = _common_root(members)
    candidates = [entry] if entry else ["main.py", f"{name}.py", f"{name.replace('-', '_')}.py"]
    for candidate in candidates:
        path = posixpath.join(root, candidate) if root else candidate
        if path in members:
            if MAIN_MARKER not in read_member(data, kind, path).decode("utf-8", errors="replace"):
                raise RequestError(f"The entry module {candidate} does not define main(backend, user_messenger, ...).")
            return path
    if entry:
        raise RequestError(f"The entry module {entry!r} is not in the archive.")
    top = [p for p in members if p.endswith(".py") and posixpath.dirname(p) == root]
    with_main = [p for p in top if MAIN_MARKER in read_member(data, kind, p).decode("utf-8", errors="replace")]
    if len(with_main) == 1:
        return with_main[0]
    raise RequestError(
        "Cannot tell which module of the archive is the program: name it with the metadata field "
        "'entry', or call it main.py."
    )


def read_member(data: bytes, kind: str, path: str) -> bytes:
    if kind == KIND_ZIP:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(path)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for info in archive.getmembers():
            if info.isfile() and _safe_path(info.name) == path:
                handle = archive.extractfile(info)
                return handle.read() if handle else b""
    raise KeyError(path)


def unpack(data: bytes, kind: str, target: Path) -> None:
    """Write every member under ``target``, after the same checks as on upload."""
    list_members(data, kind)
    if kind == KIND_ZIP:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    _write(target / _safe_path(info.filename), archive.read(info))
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for info in archive.getmembers():
            if info.isfile():
                handle = archive.extractfile(info)
                _write(target / _safe_path(info.name), handle.read() if handle else b"")


def _write(destination: Path, content: bytes) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(content)


def _safe_path(name: str) -> str:
    normalized = posixpath.normpath(name.replace("\\", "/"))
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../") or "\x00" in normalized:
        raise RequestError(f"Archive member {name!r} would be written outside the program's directory.")
    return normalized.removeprefix("./")


def _common_root(members: dict[str, int]) -> str:
    """The single top-level folder every member sits in, if there is one."""
    tops = {p.split("/", 1)[0] for p in members}
    if len(tops) == 1 and all("/" in p for p in members):
        return tops.pop()
    return ""
