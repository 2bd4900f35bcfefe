"""Hostile inputs to the API, built small and fast, and a /health watcher (shared by tests and bench/hostile_input.py).

Each is what a malicious client or developer sends to make a check take
unbounded time or memory, or to slip something past it.
"""

from __future__ import annotations

import base64
import io
import struct
import tarfile
import threading
import time
import zipfile
import zlib

import requests

MAIN = b"def main(backend, user_messenger, **kwargs):\n    return 'ok'\n"


def anyof_bomb_spec(levels: int = 20) -> dict:
    """A ~1.5 KB ``spec`` whose ``parameters`` visit 2**levels branches for input ``{"x": "s"}``.

    Every branch ends in ``{"type": "integer"}``, which a string fails, so
    ``anyOf`` never stops early.
    """
    defs = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
            for i in range(levels)}
    defs[f"d{levels}"] = {"type": "integer"}
    return {"parameters": {"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": defs}}


def nested_spec(depth: int = 900) -> dict:
    """A ``spec`` whose ``parameters`` nest ``depth`` JSON objects deep (arrays of arrays of …)."""
    schema: dict = {"type": "integer"}
    for _ in range(depth - 1):
        schema = {"type": "array", "items": schema}
    return {"parameters": schema}


def tar_gz_bomb(declared_bytes: int = 4 << 30) -> bytes:
    """A ~4 MB tar.gz holding ``main.py`` and one member of ``declared_bytes`` zeros.

    Built without compressing gigabytes: after a full flush deflate forgets its
    history, so compressing 1 MiB of zeros yields the same bytes every time and
    can be repeated. The gzip trailer's CRC is wrong, which only a reader that
    reaches the end (none should) would notice.
    """
    main = tarfile.TarInfo("main.py")
    main.size = len(MAIN)
    header = main.tobuf(format=tarfile.GNU_FORMAT) + MAIN + b"\0" * (-len(MAIN) % 512)
    zeros = tarfile.TarInfo("zeros.bin")
    zeros.size = declared_bytes
    header += zeros.tobuf(format=tarfile.GNU_FORMAT)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    mib = b"\0" * (1 << 20)
    piece = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    return start + piece * (declared_bytes >> 20) + deflate.flush()


def lying_zip(real_bytes: int = 10 << 20, declared_bytes: int = 1000) -> bytes:
    """A zip whose ``data.bin`` declares ``declared_bytes`` but inflates to ``real_bytes``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("main.py", MAIN)
        archive.writestr("data.bin", b"\0" * real_bytes)
    data = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        offset = archive.getinfo("data.bin").header_offset
    struct.pack_into("<I", data, offset + 22, declared_bytes)  # local header: uncompressed size
    central = data.index(b"PK\x01\x02")  # the central directory's records, after every member's data
    while data[central + 46:central + 46 + 8] != b"data.bin":
        central = data.index(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, declared_bytes)  # central directory: uncompressed size
    return bytes(data)


SYNTAX_ERROR_SOURCE = b"def main(backend, user_messenger, **kwargs):\n    return (1 +\n"


def upload_body(name: str, data: bytes, **extra: object) -> dict:
    return {"name": name, "data": base64.b64encode(data).decode(), "cost": 60,
            "description": "hostile", "is_public": True, **extra}


class HealthWatch:
    """Polls /health in a thread; records when each answer came back and with what status."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, float, int]] = []  # (sent, answered, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _poll(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                sent = time.monotonic()
                status = session.get(f"{self.url}/health", timeout=30).status_code
                self.answers.append((sent, time.monotonic(), status))

    def waits(self) -> list[float]:
        """How long each /health request took."""
        return [answered - sent for sent, answered, _ in self.answers]

    def answered_within(self, start: float, end: float) -> list[int]:
        """Statuses of the /health requests both sent and answered between ``start`` and ``end``."""
        return [status for sent, answered, status in self.answers if start <= sent and answered <= end]
