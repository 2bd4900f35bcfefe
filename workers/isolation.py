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


PR_SET_CHILD_SUBREAPER = 36
#: Rounds of killing strays: one that forks while being killed leaves new orphans.
STRAY_ROUNDS = 5


def become_subreaper() -> bool:
    """Make processes orphaned below this one re-parent here instead of to init.

    A program can leave its process group (``setsid``) and close its pipes, and
    then nothing ties it to its job. As a subreaper the supervisor inherits such
    orphans and :func:`kill_strays` ends them when the job is over.
    """
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_strays() -> int:
    """SIGKILL and reap every child of this process; returns how many there were."""
    killed = 0
    for _ in range(STRAY_ROUNDS):
        strays = _children()
        if not strays:
            break
        for pid in strays:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for pid in strays:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        killed += len(strays)
    return killed


def _children() -> list[int]:
    me = os.getpid()
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children") as handle:
                found += [int(pid) for pid in handle.read().split()]
    except OSError:
        return []
    return found
