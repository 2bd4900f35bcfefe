"""Program management on ``RuntimeService``: upload, update, delete, share.

The seed's semantics and messages (reference §1.4–1.6): metadata is a dict or
the path of a JSON file, of which only ``name, max_execution_time, description,
spec, is_public`` are kept (and qruntime's ``entry``); ``data`` is the program's
source text, or a path. qruntime also takes a directory or a ``.zip``/``.tar``
file as ``data``: the directory is zipped, so helper modules and data files
travel with the program. Unlike the seed, a visibility change on an unknown
program raises ``RuntimeProgramNotFound``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qruntime.exceptions import IBMQInputValueError

if TYPE_CHECKING:
    from qruntime.client.http import ApiClient

UPLOAD_KEYS = ("name", "max_execution_time", "description", "spec", "is_public", "entry")
UPDATE_KEYS = ("name", "max_execution_time", "description", "spec")
REQUIRED_KEYS = ("name", "description", "max_execution_time")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class ProgramManagement:
    """Mixed into ``RuntimeService``; uses its ``_api`` and ``_programs`` cache."""

    _api: ApiClient
    _programs: dict

    def upload_program(self, data: str | os.PathLike, metadata: dict[str, Any] | str | None = None) -> str:
        """Upload a program; returns its id.

        Args:
            data: the source text (anything containing ``def main(``), or the path of a
                source file, a program directory, or a zip/tar archive of one.
            metadata: a dict, or the path of a JSON file, in the seed's format.

        Raises:
            IBMQInputValueError: a required metadata field is missing.
            RuntimeDuplicateProgramError: you already have a program of that name.
            IBMQNotAuthorizedError: your role may not upload programs.
            QiskitRuntimeError: the upload failed otherwise.
        """
        fields = _read_metadata(metadata, UPLOAD_KEYS)
        for key in REQUIRED_KEYS:
            if not fields.get(key):
                raise IBMQInputValueError(f"{key} is a required metadata field.")
        body: dict[str, Any] = {
            "name": fields["name"],
            "data": _encode_data(data),
            "cost": fields["max_execution_time"],
            "description": fields["description"],
            "is_public": bool(fields.get("is_public", False)),
        }
        for optional in ("spec", "entry"):
            if fields.get(optional):
                body[optional] = fields[optional]
        return self._api.upload_program(body)["id"]

    def update_program(
        self,
        program_id: str,
        data: str | os.PathLike | None = None,
        metadata: dict[str, Any] | str | None = None,
        name: str | None = None,
        description: str | None = None,
        max_execution_time: int | None = None,
        spec: dict[str, Any] | None = None,
    ) -> None:
        """Change a program's code and/or metadata; each change is a new version.

        Raises:
            RuntimeProgramNotFound: no program with that id is visible to you.
            IBMQNotAuthorizedError: you may not change it (not yours, or built in).
            QiskitRuntimeError: the update failed otherwise.
        """
        if not any([data, metadata, name, description, max_execution_time, spec]):
            warnings.warn(
                "None of the 'data', 'metadata', 'name', 'description', 'max_execution_time', "
                "or 'spec' parameters is specified. No update is made.",
                stacklevel=2,
            )
            return
        fields = _read_metadata(metadata, UPDATE_KEYS)
        overrides = {"name": name, "description": description, "max_execution_time": max_execution_time,
                     "spec": spec}
        fields.update({k: v for k, v in overrides.items() if v is not None})
        patch = {("cost" if k == "max_execution_time" else k): v for k, v in fields.items() if v}
        if data:
            self._api.update_program_data(program_id, _encode_data(data))
        if patch:
            self._api.update_program(program_id, patch)
        if program_id in self._programs:
            self._programs[program_id]._refresh()

    def delete_program(self, program_id: str) -> None:
        """Delete a program and all its versions (jobs that ran it keep their records).

        Raises:
            RuntimeProgramNotFound: no program with that id is visible to you.
            QiskitRuntimeError: the delete failed otherwise.
        """
        self._api.delete_program(program_id)
        self._programs.pop(program_id, None)

    def set_program_visibility(self, program_id: str, public: bool) -> None:
        """Make a program public (everyone may see and run it) or private.

        Raises:
            RuntimeProgramNotFound: no program with that id is visible to you.
            QiskitRuntimeError: the change failed otherwise.
        """
        self._api.set_program_visibility(program_id, public)
        if program_id in self._programs:
            self._programs[program_id]._is_public = public

    def program_versions(self, program_id: str) -> list[dict[str, Any]]:
        """Every version of a program, oldest first (run one with ``options={"version": ...}``)."""
        return self._api.program_versions(program_id)


def _read_metadata(metadata: dict[str, Any] | str | None, keys: tuple[str, ...]) -> dict[str, Any]:
    if metadata is None:
        return {}
    if isinstance(metadata, (str, os.PathLike)):
        try:
            metadata = json.loads(Path(metadata).read_text())
        except (OSError, ValueError) as exc:
            raise IBMQInputValueError(f"Cannot read program metadata from {metadata}: {exc}") from None
    if not isinstance(metadata, dict):
        raise IBMQInputValueError("Program metadata must be a dict or the path of a JSON file.")
    return {k: metadata[k] for k in keys if k in metadata}


def _encode_data(data: str | os.PathLike) -> str:
    """Base64 of the program: source text, a source file, a directory, or an archive."""
    if isinstance(data, str) and "def main(" in data:
        raw = data.encode("utf-8")
    else:
        path = Path(data)
        if path.is_dir():
            raw = _zip_directory(path)
        elif path.is_file():
            raw = path.read_bytes()
            if not path.name.endswith(ARCHIVE_SUFFIXES):
                raw = raw.decode("utf-8").encode("utf-8")  # source must be text
        else:
            raise IBMQInputValueError(f"Program data {data!r} is neither source with main() nor an existing path.")
    return base64.b64encode(raw).decode("ascii")


def _zip_directory(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()
