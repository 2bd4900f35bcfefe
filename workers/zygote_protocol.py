"""Messages between a supervisor, the zygote and its ready children.

Every message is one JSON object in one SOCK_SEQPACKET datagram, with
descriptors attached by SCM_RIGHTS where it says so. The zygote never sees a
job's inputs: they travel inside a descriptor it only passes on, so nothing of
one job is in the memory later children are forked from.

Supervisor → zygote, on its own connection (one connection per job):
  ``{"op": "start", "job": id}`` + fds [spec, messages, stdout, stderr, program]
      ``spec`` is a sealed memfd holding the job's JSON spec; ``program`` a
      directory descriptor of the program's files; the three pipes are the
      child's ends of the pipes the supervisor reads.
  ``{"op": "signal", "signal": n}`` deliver ``n`` to the program's process (pid 1
      of the job's namespace: SIGTERM, SIGINT, SIGHUP end it; SIGKILL ends the whole job).
Zygote → supervisor:
  ``{"op": "started", "pid": n, "uid": n, "layers": {layer: "on" | "off: why"}}``
  ``{"op": "refused", "message": text}`` the job cannot be run here (setup too weak)
  ``{"op": "exited", "status": wait status, "oom": bool, "peak_memory_bytes": n|null,
     "cpu_s": float}`` the job's processes are all gone; the connection closes.
A supervisor that closes its connection early has its job killed.

Ready child → zygote, on the child's own socketpair:
  ``{"op": "pid", "pid": n}`` (from R, non-root workers only) the host pid of the program's process
  ``{"op": "ready", "layers": {...}}`` (from the program's process, confined)
Zygote → ready child: ``{"op": "job"}`` + the five fds of ``start``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

#: Largest message; descriptors carry anything bigger.
MAX_MESSAGE_BYTES = 64 * 1024
#: Descriptors one message may carry.
MAX_FDS = 8
JOB_FDS = ("spec", "messages", "stdout", "stderr", "program")

OP_START, OP_SIGNAL, OP_STARTED, OP_REFUSED, OP_EXITED = "start", "signal", "started", "refused", "exited"
OP_PID, OP_READY, OP_JOB = "pid", "ready", "job"


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and its descriptors; ``(None, [])`` when the peer has gone (closed, or killed mid-talk)."""
    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE_BYTES, MAX_FDS)
    except ConnectionResetError:
        return None, []
    if not data:
        for fd in fds:
            _close(fd)
        return None, []
    try:
        message = json.loads(data)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        for fd in fds:
            _close(fd)
        return None, []
    return message, fds


def _close(fd: int) -> None:
    import os

    try:
        os.close(fd)
    except OSError:
        pass
