"""Cutting a program's process off the network.

A forked child inherits the worker's memory, so a determined program can find
the worker's Redis address in it even though its environment is scrubbed.
What it cannot do, once in a network namespace of its own, is reach that Redis
(or anything else): the new namespace has only a loopback interface, and it is
down. Root gets one with ``unshare(CLONE_NEWNET)``; an unprivileged worker tries
a user namespace as well. Where the kernel refuses both, the job runs with the
host's network and its log says so.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000


def isolate_network() -> str | None:
    """Move this process into a new, empty network namespace.

    Returns:
        None on success, else why it could not be done.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return f"libc not loadable: {exc}"
    if libc.unshare(CLONE_NEWNET) == 0:
        return None
    first = ctypes.get_errno()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return None
    second = ctypes.get_errno()
    return f"unshare refused ({os.strerror(first)}; with a user namespace: {os.strerror(second)})"
