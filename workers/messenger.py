"""The ``user_messenger`` a program receives: its one way to talk to the caller."""

from __future__ import annotations

import json
import logging
from typing import Any

from workers import frames

#: ``publish(..., checkpoint=NO_CHECKPOINT)``: the message goes alone.
NO_CHECKPOINT: Any = object()


class CheckpointTooLargeError(ValueError):
    """A checkpoint larger than the service keeps (QRT_MAX_CHECKPOINT_BYTES)."""


class UserMessenger:
    """Publishes interim results (and optionally the final result) to the job's caller,
    and saves checkpoints a restarted job resumes from.

    ``publish`` has the seed's signature. Messages are encoded here, in the
    program's process, so a value the encoder rejects raises inside the program,
    where its author can see it.

    Checkpoints (beyond the seed): when a job's worker is lost or stopped, the job
    runs again on another worker, from the start of ``main``. A program that
    calls ``checkpoint(state)`` finds that state in ``restore()`` on its next run
    and can go on from there. ``publish(message, checkpoint=state)`` saves the
    two together, so a resumed run neither repeats nor skips that message: a
    client following the job sees each such interim result exactly once.
    """

    def __init__(self, fd: int, *, checkpoint: str | None = None, max_checkpoint_bytes: int | None = None) -> None:
        self._fd = fd
        self._restored = checkpoint
        self._max_checkpoint_bytes = max_checkpoint_bytes
        self.final_published = False

    def publish(self, message: Any, encoder: type[json.JSONEncoder] | None = None, final: bool = False,
                *, checkpoint: Any = NO_CHECKPOINT) -> None:
        """Send ``message`` to the job's caller; with ``checkpoint``, save that state with it."""
        encoder = encoder or _runtime_encoder()
        text = json.dumps(message, cls=encoder)
        if final:
            frames.write_frame(self._fd, frames.FINAL, text)
            self.final_published = True
            return
        if checkpoint is NO_CHECKPOINT:
            frames.write_frame(self._fd, frames.INTERIM, text)
            return
        frames.write_frame(self._fd, frames.INTERIM_CHECKPOINT, frames.join_checkpoint(text, self._encode(checkpoint)))

    def checkpoint(self, state: Any, encoder: type[json.JSONEncoder] | None = None) -> None:
        """Save ``state`` (anything the encoder takes) as the point a restarted job resumes from.

        Each call replaces the previous checkpoint.

        Raises:
            CheckpointTooLargeError: the encoded state is larger than the service keeps.
        """
        frames.write_frame(self._fd, frames.CHECKPOINT, self._encode(state, encoder))

    def restore(self, decoder: type[json.JSONDecoder] | None = None) -> Any:
        """The last state this job's program saved with ``checkpoint`` (on an earlier run), or None."""
        if self._restored is None:
            return None
        if decoder is None:
            from workers.wire_format import RuntimeDecoder

            decoder = RuntimeDecoder
        return json.loads(self._restored, cls=decoder)

    def _encode(self, state: Any, encoder: type[json.JSONEncoder] | None = None) -> str:
        text = json.dumps(state, cls=encoder or _runtime_encoder())
        size = len(text.encode("utf-8", errors="surrogateescape"))
        if self._max_checkpoint_bytes is not None and size > self._max_checkpoint_bytes:
            raise CheckpointTooLargeError(
                f"checkpoint of {size} bytes is larger than the {self._max_checkpoint_bytes} bytes this "
                "service keeps (QRT_MAX_CHECKPOINT_BYTES); save less state")
        return text


def _runtime_encoder() -> type[json.JSONEncoder]:
    from workers.wire_format import RuntimeEncoder

    return RuntimeEncoder


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
