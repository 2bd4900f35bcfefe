"""A checker process: runs the API's expensive checks of hostile input, one at a time.

Started by the API (``api.checker``) as ``python -m orchestrator.check_process FD PARENT_PID`` with a bare
environment (no Redis URL, no token) and one end of a socketpair as ``FD``. It
imports what the checks need, caps its own address space at its size at rest
plus the memory budget, says it is ready, then answers requests until the
socket closes. A check that runs out of memory gets an answer naming the
limit, after which the process exits (its heap may be in any state); one that
runs out of time is killed by the API.

Wire: every message is a frame, a 4-byte big-endian length then that many
bytes. A request is two frames, a JSON header ``{"check": name, "args": {…}}``
and a blob (the bytes checked: program data, job inputs); a reply is one JSON
frame: ``{"ok": value}``, ``{"error": {"message", "errors"}}`` (the input fails
the check) or ``{"limit": text}`` (checking it crossed a limit).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

CHECK_METADATA = "metadata"
CHECK_INPUTS = "inputs"
CHECK_PROGRAM = "program"
READY = b"ready"
_LENGTH = struct.Struct(">I")


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def recv_frame(sock: socket.socket, limit: int) -> bytes:
    """One frame; raises EOFError when the peer has gone, ValueError past ``limit`` bytes."""
    (length,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    if length > limit:
        raise ValueError(f"frame of {length} bytes is over the limit of {limit}")
    return _recv_exactly(sock, length)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(min(size - len(buffer), 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the connection")
        buffer += chunk
    return bytes(buffer)


def _checks() -> dict[str, Callable[[dict[str, Any], bytes], Any]]:
    from orchestrator.inputs import check_inputs
    from orchestrator.program_files import describe
    from orchestrator.program_metadata import check_metadata

    return {
        CHECK_METADATA: lambda args, _: check_metadata(
            args["metadata"], ceiling_s=args["ceiling_s"], partial=args["partial"]
        ),
        CHECK_INPUTS: lambda args, blob: check_inputs(blob.decode("utf-8"), args["schema"]),
        CHECK_PROGRAM: lambda args, blob: describe(blob, args["name"], args.get("entry")),
    }


def _answer(checks: dict[str, Callable[[dict[str, Any], bytes], Any]], header: bytes, blob: bytes) -> tuple[dict, bool]:
    """The reply to one request, and whether this process may go on serving."""
    from orchestrator.errors import RuntimeServiceError

    request = json.loads(header)
    try:
        return {"ok": checks[request["check"]](request["args"], blob)}, True
    except RuntimeServiceError as exc:
        return {"error": {"message": exc.message, "errors": exc.errors}}, True
    except MemoryError:
        budget = os.environ.get("QRT_CHECK_MEMORY_MB", "?")
        return {"limit": f"needed more than {budget} MB, the limit (QRT_CHECK_MEMORY_MB)"}, False
    except RecursionError:
        return {"limit": "is nested too deeply to be checked"}, True


def main(fd: int, parent: int) -> None:
    _die_with_parent(parent)
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)  # a gevent parent made its end non-blocking, and the flag is shared
    checks = _checks()
    import qiskit_ibm_runtime.json  # noqa: F401 - what decoding job inputs needs, loaded at rest

    budget = int(os.environ.get("QRT_CHECK_MEMORY_MB", "512")) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + budget,) * 2)
    send_frame(sock, READY)
    while True:
        try:
            header = recv_frame(sock, 1 << 20)
            blob = recv_frame(sock, 1 << 31)
        except EOFError:
            return
        reply, healthy = _answer(checks, header, blob)
        send_frame(sock, json.dumps(reply).encode())
        if not healthy:
            return


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the API process that started it ends (Linux's PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the line above took effect
        sys.exit(0)


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
