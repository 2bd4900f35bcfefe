"""What a running ``qruntime up`` leaves in its data directory, so other commands can find it.

- ``up.lock``: held (``flock``) by the running ``up`` for its whole life; it holds
  the pid. While it is held no second ``up`` starts on the same directory.
- ``up.json`` (``0600``, in the ``0700`` data directory): the running ``up``'s
  pid, URL, start time, its processes and the embedded Redis's URL *with its
  password*, which ``qruntime users|tokens --direct`` use to reach the store
  without being told where it is. Only the user who ran ``up`` can read it, the
  same as the saved account; jobs never see the data directory.

Whether an ``up`` is running is decided by the lock, never by the state file
alone: a state file left by an ``up`` that was killed is stale, and ignored.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

UP_LOCK_FILE = "up.lock"
UP_STATE_FILE = "up.json"
STATE_FILE_MODE = 0o600


def default_data_dir() -> Path:
    """``QRT_DATA_DIR``, else ``~/.qruntime`` (the default of ``qruntime up --data-dir``)."""
    configured = os.environ.get("QRT_DATA_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".qruntime"


def take_lock(data_dir: Path) -> IO[str]:
    """Hold the data directory for this process (until the returned file is closed).

    Raises:
        RuntimeError: another ``qruntime up`` holds it (its pid is in the message).
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(data_dir / UP_LOCK_FILE, "a+")  # noqa: SIM115 - held for the life of this process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RuntimeError(f"another qruntime up (pid {holder}) is using {data_dir}; stop it first "
                           "(qruntime down, or Ctrl-C in its terminal), or give this one its own --data-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def write_state(data_dir: Path, state: dict[str, Any]) -> None:
    """Replace ``up.json`` atomically (readers never see half of it)."""
    target = data_dir / UP_STATE_FILE
    scratch = data_dir / f".{UP_STATE_FILE}.{os.getpid()}"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, STATE_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2)
    os.replace(scratch, target)


def clear_state(data_dir: Path) -> None:
    (data_dir / UP_STATE_FILE).unlink(missing_ok=True)


def running(data_dir: Path) -> dict[str, Any] | None:
    """The state of the ``up`` running on ``data_dir``, or None when none is."""
    lock = data_dir / UP_LOCK_FILE
    try:
        handle = open(lock)  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: an up is running
        else:
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    try:
        return json.loads((data_dir / UP_STATE_FILE).read_text())
    except (OSError, ValueError):
        return {"pid": _pid_in(lock)}  # starting: the lock is held, the state not written yet


def _pid_in(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None
