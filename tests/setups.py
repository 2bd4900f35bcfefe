"""Run a worker the way each supported deployment does: ``python -m tests.setups SETUP -- CMD...``.

The hostile-program suite runs in all three; each setup execs ``CMD`` as:

``root``
    as it is: a root worker (``qruntime up`` as root).
``nonroot``
    as the unprivileged uid :data:`NONROOT_UID`, with no capabilities. The
    interpreter and this checkout may live under a directory that uid cannot
    enter (``/root`` is 0700): in a private mount namespace, such a directory
    is covered by a tmpfs that holds only binds of the paths the worker needs.
    Nothing changes on the host.
``docker``
    as root without CAP_SYS_ADMIN and with namespace creation refused by a
    seccomp filter, as Docker's default capability set and seccomp profile do,
    in a mount namespace whose ``/dev`` holds only what Docker gives a container
    (null, zero, full, random, urandom, tty, a private /dev/shm): a host's
    ``/dev/fuse`` or ``/dev/kvm`` is not in a container, whatever its mode.
"""

from __future__ import annotations

import ctypes
import os
import site
import stat
import sys
from pathlib import Path

SETUPS = ("root", "nonroot", "docker")
#: The uid a non-root worker runs as (no passwd entry is needed).
NONROOT_UID = 4242
CAP_SYS_ADMIN = 21
PR_CAPBSET_DROP = 24
REPO = Path(__file__).resolve().parent.parent
#: Directories the non-root setup may cover with its own tmpfs (in its mount namespace only).
STASH_CANDIDATES = ("/mnt", "/media", "/srv", "/opt")


def needed_paths(extra: list[str]) -> list[str]:
    """What a non-root worker must reach: the interpreter, its packages, this checkout."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), str(REPO), *extra}
    return sorted(os.path.realpath(p) for p in paths if os.path.exists(p))


def _closed_ancestor(path: str) -> str | None:
    """The highest ancestor of ``path`` that others may not enter, if any."""
    parts = Path(path).parts
    for depth in range(2, len(parts)):
        ancestor = os.path.join(*parts[:depth])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


#: The devices Docker puts in a container's /dev by default.
CONTAINER_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    if libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                  data and data.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} {target}")


def private_mounts() -> None:
    """A mount namespace of this process's own, whose changes never reach the host."""
    if ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0:  # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def container_dev() -> None:
    """Cover /dev (in this process's own mount namespace) with what a Docker container's holds."""
    private_mounts()
    devices = {name: os.stat(f"/dev/{name}") for name in CONTAINER_DEVICES}
    mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755")
    for name, info in devices.items():
        os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, info.st_rdev)
        os.chmod(f"/dev/{name}", 0o666)  # mknod applies the umask
    os.mkdir("/dev/shm")
    mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")


def reveal(paths: list[str]) -> None:
    """In a new private mount namespace, make ``paths`` reachable for any uid (see module docstring)."""
    private_mounts()
    by_ancestor: dict[str, list[str]] = {}
    for path in paths:
        ancestor = _closed_ancestor(path)
        if ancestor:
            by_ancestor.setdefault(ancestor, []).append(path)
    # Holds the binds while their ancestor is covered: a tmpfs on an existing directory of
    # this private namespace, so nothing is left on the host when the worker ends.
    stash = next(d for d in STASH_CANDIDATES if os.path.isdir(d) and not os.path.islink(d)
                 and not any(p == d or p.startswith(d + "/") for p in paths))
    mount("tmpfs", stash, "tmpfs", 0, "mode=0700")
    for ancestor, inside in by_ancestor.items():
        held = []
        for index, path in enumerate(inside):
            keep = os.path.join(stash, f"{len(os.listdir(stash))}-{index}")
            os.mkdir(keep)
            mount(path, keep, None, MS_BIND | MS_REC)
            held.append((path, keep))
        mount("tmpfs", ancestor, "tmpfs", 0, "mode=0755")
        for path, keep in held:
            os.makedirs(path, exist_ok=True)
            mount(keep, path, None, MS_BIND | MS_REC)


def main(argv: list[str]) -> None:
    setup, command = argv[0], argv[argv.index("--") + 1:]
    if setup == "nonroot":
        reveal(needed_paths([os.environ.get("HOME", ""), os.environ.get("QRT_DATA_DIR", "")]))
        os.setgroups([])
        os.setresgid(NONROOT_UID, NONROOT_UID, NONROOT_UID)
        os.setresuid(NONROOT_UID, NONROOT_UID, NONROOT_UID)
    elif setup == "docker":
        from workers.seccomp_policy import namespace_refusal_filter

        container_dev()
        namespace_refusal_filter().load()
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "drop CAP_SYS_ADMIN")
    elif setup != "root":
        raise SystemExit(f"unknown setup {setup!r}; one of {SETUPS}")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
