"""The pipe protocol between a program's process and its supervisor.

A frame is one kind byte, a 4-byte big-endian length and that many bytes of
UTF-8 text. Kinds: ``I`` interim result (encoder output), ``F`` final result
published with ``final=True``, ``R`` the value ``main`` returned (encoded, or
the raw string), ``D`` (empty) ``main`` returned None after publishing its
final result, ``E`` the traceback of an exception, ``L`` a logging record
(JSON ``{"level", "text"}``), ``C`` a checkpoint (encoder output of the state),
``P`` an interim result with the checkpoint that goes with it, saved together
(the message's length in 10 decimal digits, the message, the state). ``R``, ``D`` and ``E`` end the job: the program
writes nothing after them and its output is flushed before them. A frame over the reader's limit is skipped
without being held in memory and reported as kind ``X`` with its size.
"""

from __future__ import annotations

import os
import struct

INTERIM = b"I"
FINAL = b"F"
RETURN = b"R"
DONE = b"D"
ERROR = b"E"
LOG = b"L"
CHECKPOINT = b"C"
INTERIM_CHECKPOINT = b"P"
OVERSIZED = b"X"
#: Frames after which the program writes nothing: the supervisor records the end at once.
CONCLUSIVE = (RETURN, DONE, ERROR)

_HEADER = struct.Struct(">cI")
_LENGTH_DIGITS = 10


def join_checkpoint(message: str, state: str) -> str:
    """The text of a ``P`` frame: an interim result and the checkpoint saved with it."""
    return f"{len(message):0{_LENGTH_DIGITS}d}{message}{state}"


def split_checkpoint(text: str) -> tuple[str, str]:
    """(message, state) of a ``P`` frame's text; raises ValueError if it is not one."""
    head = text[:_LENGTH_DIGITS]
    if len(head) != _LENGTH_DIGITS or not head.isdigit() or int(head) > len(text) - _LENGTH_DIGITS:
        raise ValueError("malformed interim result with checkpoint")
    cut = _LENGTH_DIGITS + int(head)
    return text[_LENGTH_DIGITS:cut], text[cut:]


def write_frame(fd: int, kind: bytes, text: str) -> None:
    """Write one whole frame to ``fd`` (blocking until the supervisor reads it)."""
    payload = text.encode("utf-8", errors="surrogateescape")
    if len(payload) > 0xFFFFFFFF:
        raise ValueError(f"message of {len(payload)} bytes is too large to send")
    view = memoryview(_HEADER.pack(kind, len(payload)) + payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Incrementally splits bytes read from the pipe into ``(kind, text)`` frames."""

    def __init__(self, max_frame_bytes: int, limits: dict[bytes, int] | None = None) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes
        self._limits = limits or {}  # kinds with a limit of their own
        self._skip = 0  # bytes still to discard of an oversized frame

    def feed(self, data: bytes) -> list[tuple[bytes, str]]:
        frames: list[tuple[bytes, str]] = []
        self._buffer += data
        while True:
            if self._skip:
                dropped = min(self._skip, len(self._buffer))
                del self._buffer[:dropped]
                self._skip -= dropped
                if self._skip:
                    return frames
            if len(self._buffer) < _HEADER.size:
                return frames
            kind, size = _HEADER.unpack_from(self._buffer)
            if size > self._limits.get(kind, self._max):
                del self._buffer[: _HEADER.size]
                self._skip = size
                frames.append((OVERSIZED, f"{kind.decode(errors='replace')}:{size}"))
                continue
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return frames
            text = bytes(self._buffer[_HEADER.size : end]).decode("utf-8", errors="replace")
            del self._buffer[:end]
            frames.append((kind, text))
