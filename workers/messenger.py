"""The ``user_messenger`` a program receives: its one way to talk to the caller."""

from __future__ import annotations

import json
import logging
from typing import Any

from workers import frames


class UserMessenger:
    """Publishes interim results (and optionally the final result) to the job's caller.

    Same signature as the seed's ``UserMessenger.publish``. The message is encoded
    here, in the program's process, so a value the encoder rejects raises inside
    the program, where its author can see it.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.final_published = False

    def publish(self, message: Any, encoder: type[json.JSONEncoder] | None = None, final: bool = False) -> None:
        if encoder is None:
            from qiskit_ibm_runtime.json import RuntimeEncoder

            encoder = RuntimeEncoder
        text = json.dumps(message, cls=encoder)
        frames.write_frame(self._fd, frames.FINAL if final else frames.INTERIM, text)
        if final:
            self.final_published = True


class PipeLogHandler(logging.Handler):
    """Sends the program's ``logging`` records to the supervisor as log events."""

    def __init__(self, fd: int, level: int) -> None:
        super().__init__(level)
        self._fd = fd
        self.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            frames.write_frame(self._fd, frames.LOG, json.dumps({"level": record.levelname, "text": text}))
        except Exception:  # a broken log pipe must not break the program
            self.handleError(record)
