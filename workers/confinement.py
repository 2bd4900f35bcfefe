"""The layers that confine a job's processes, as steps the zygote's children take.

A ready child (``workers.ready_child``) is the program's process, pid 1 of the
job's pid namespace: it unshares the other namespaces, builds the job's
filesystem, drops to the job's identity and loads the seccomp filter before
any job arrives.

Layers, in the order they are put on (docs/sandbox.md has the threat model):

1. identity: a root worker gives each concurrent job its own uid/gid from a
   leased block (no capabilities after the switch); a non-root worker keeps its
   uid inside a user namespace and drops every capability there;
2. filesystem: a mount namespace whose root is a small tmpfs holding read-only
   binds of the OS and the Python environment, a size-capped tmpfs scratch at
   ``/job`` (cwd, HOME, TMPDIR, /tmp, /dev/shm), a minimal /dev and the /proc of
   the job's own pid namespace;
3. network: an empty network namespace; the seccomp filter refuses non-UNIX
   sockets in every setup;
4. syscalls: seccomp (``workers.seccomp_policy``), with ``no_new_privs``;
5. resources: a cgroup per job (``workers.cgroups``) or per-uid RLIMIT_NPROC,
   and per-process RLIMIT_AS/NOFILE/CPU/FSIZE.

A namespace the kernel refuses (Docker's default seccomp profile refuses them
all without CAP_SYS_ADMIN) is reported, and the job runs on the other layers.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import glob
import json
import os
import resource
import shutil
import site
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)

#: Where the job's scratch appears inside its filesystem.
SCRATCH = "/job"
#: Size of the tmpfs that becomes the job's root: it only holds mount points.
ROOT_TMPFS_BYTES = 1 << 20
#: System directories every job sees, read-only.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Files of /etc a Python program may need; the rest of /etc (credentials, service
#: configuration) is not in the job's view.
ETC_ENTRIES = ("passwd", "group", "hosts", "nsswitch.conf", "host.conf", "gai.conf", "resolv.conf",
               "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "ssl",
               "ca-certificates", "ca-certificates.conf", "alternatives", "os-release",
               "debian_version", "mime.types", "protocols", "services", "python3*")
#: Device nodes a job gets (bound from the host's /dev): nothing else of /dev exists.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
#: /proc entries hidden from jobs, as container runtimes do: kernel memory and global state.
PROC_MASKED_FILES = ("kcore", "keys", "key-users", "kallsyms", "kmsg", "timer_list", "sched_debug",
                     "latency_stats", "sysrq-trigger", "kpagecount", "kpageflags", "kpagecgroup",
                     "vmallocinfo", "slabinfo", "iomem", "ioports", "config.gz", "modules")
PROC_MASKED_DIRS = ("acpi", "scsi", "asound", "irq", "bus", "fs", "sys", "driver", "tty")


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """The job limits and layout the zygote confines children with (no secrets: it is on argv)."""

    memory_bytes: int
    pids_max: int
    cpus: float  # 0: no quota
    disk_bytes: int
    max_open_files: int
    network: str  # "isolated" | "host"
    uid_base: int
    uid_block: int
    program_paths: tuple[str, ...]
    ready: int
    backends: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        raw = json.loads(text)
        raw["program_paths"] = tuple(raw["program_paths"])
        raw["backends"] = tuple(raw["backends"])
        return cls(**raw)

    @property
    def isolate_network(self) -> bool:
        return self.network != "host"


class ConfinementError(OSError):
    """Raised when a step of confinement that the setup allows fails: the child must not run jobs."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise ConfinementError(code, f"{what}: {os.strerror(code)}")


def close_fds_except(keep: set[int]) -> None:
    """Close every descriptor but ``keep``.

    ``os.closerange(n, n)`` must never be called: CPython turns an empty range
    into ``close_range(n, ~0)`` and closes everything above ``n``.
    """
    limit = os.sysconf("SC_OPEN_MAX")
    limit = limit if limit > 0 else 65536
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    if limit > low:
        os.closerange(low, limit)


def prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def die_with_parent(signum: int) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies."""
    prctl(PR_SET_PDEATHSIG, signum)


# -- R: namespaces -----------------------------------------------------------------


def unshare_pid_for_children() -> str | None:
    """Make this process's next child pid 1 of a new pid namespace; returns None or why not.

    The zygote calls it just before a fork and :func:`restore_pid_for_children`
    just after (in the parent), so the one fork of a warm image a job needs
    lands in a namespace of its own.
    """
    global _own_pid_namespace
    if _own_pid_namespace < 0:
        _own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    if _libc.unshare(CLONE_NEWPID) != 0:
        return f"namespaces refused by the kernel ({os.strerror(ctypes.get_errno())})"
    return None


def restore_pid_for_children() -> None:
    """Later children of this process are born in its own pid namespace again."""
    _check(_libc.setns(_own_pid_namespace, CLONE_NEWPID), "setns back to the zygote's pid namespace")


_own_pid_namespace = -1


def enter_namespaces(*, privileged: bool, isolate_network: bool, pid: bool = True) -> str | None:
    """Unshare mount, pid, ipc, uts (and network) namespaces; returns None or why not.

    A root worker needs no user namespace: it is privileged in the new mount
    namespace already, and its job drops to an unprivileged uid later. A
    non-root worker creates a user namespace mapping only its own uid and gid,
    so nothing of the host's root is ever mapped in.
    """
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWPID if pid else 0)
    if isolate_network:
        flags |= CLONE_NEWNET
    uid, gid = os.geteuid(), os.getegid()
    if not privileged:
        flags |= CLONE_NEWUSER
    if _libc.unshare(flags) != 0:
        return f"namespaces refused by the kernel ({os.strerror(ctypes.get_errno())})"
    if not privileged:
        try:
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        except OSError as exc:
            raise ConfinementError(exc.errno or errno.EPERM, f"user namespace map: {exc}") from None
    return None


# -- P: the job's filesystem ---------------------------------------------------------


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                       data and data.encode()), f"mount {source or fstype} on {target}")


def python_paths() -> list[str]:
    """The directories the interpreter and its packages live in (bound read-only for jobs)."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  *site.getsitepackages(), os.path.dirname(os.path.realpath(sys.executable))}
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        candidates.add(site.getusersitepackages())
    return sorted(p for p in candidates if p and os.path.isdir(p))


def prepare_etc(target: str) -> str:
    """Copy the /etc files jobs see (:data:`ETC_ENTRIES`) into ``target``, once per zygote.

    Every job then binds one directory instead of each file: about 45 fewer
    mount calls when a job's filesystem is built and as many fewer unmounts
    when it ends. Key directories (``ssl/private``) are left out; what this
    worker cannot read, jobs do without.
    """
    shutil.rmtree(target, ignore_errors=True)  # a copy left by an earlier zygote may be stale
    os.makedirs(target, mode=0o755)
    for pattern in ETC_ENTRIES:
        for path in glob.glob("/etc/" + pattern):
            dest = os.path.join(target, os.path.basename(path))
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.copytree(path, dest, symlinks=True, ignore=shutil.ignore_patterns("private"))
                else:
                    shutil.copy2(path, dest)  # the content: a link may point where jobs see nothing (/run)
            except OSError:
                continue
    os.chmod(target, 0o755)
    return target


def build_root(*, workroot: str, scratch_uid: int, scratch_gid: int, disk_bytes: int,
               extra_read_only: tuple[str, ...], etc: str) -> None:
    """Make and enter the job's root filesystem (in a fresh mount and pid namespace, as its pid 1).

    ``workroot`` is any existing directory to mount the new root on; in the job's
    private mount namespace covering it hides nothing from anyone else.
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    new = workroot.rstrip("/")
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, f"size={ROOT_TMPFS_BYTES},mode=0755")
    # The scratch and /tmp come first: a checkout or a virtualenv under /tmp is bound on top.
    scratch = new + SCRATCH
    os.makedirs(scratch)
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={disk_bytes},mode=0700,uid={scratch_uid},gid={scratch_gid}")
    for sub in (".tmp", ".shm"):
        os.mkdir(f"{scratch}/{sub}", 0o700)
        os.chown(f"{scratch}/{sub}", scratch_uid, scratch_gid)
    os.makedirs(new + "/tmp")
    _mount(f"{scratch}/.tmp", new + "/tmp", None, MS_BIND)
    read_only = [*SYSTEM_DIRS, *python_paths(), *extra_read_only]
    for path in read_only:
        _bind(path, new + path, read_only=True)
    _bind(etc, new + "/etc", read_only=True)  # prepare_etc's copy
    _make_dev(new, scratch)
    os.makedirs(new + "/proc")
    _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mask_proc(new + "/proc", new + "/dev/null")
    os.makedirs(new + "/.old-root")
    os.chdir(new)
    _check(_libc.syscall(_SYS_PIVOT_ROOT, b".", b".old-root"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old-root", MNT_DETACH), "detach the host's root")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _bind(source: str, target: str, *, read_only: bool) -> None:
    if not os.path.lexists(source) or os.path.lexists(target):
        return
    if os.path.islink(source) and os.path.dirname(source) in ("", "/"):
        # /bin -> usr/bin on merged-/usr systems: keep the link, /usr is bound anyway.
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Path(target).touch()
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        if _libc.mount(None, target.encode(), None, flags, None) != 0:
            # A mount that is already nodev/noexec keeps those flags locked; add only ro.
            _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(source))


def _locked_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return (MS_NOSUID if flags & os.ST_NOSUID else 0) | (MS_NODEV if flags & os.ST_NODEV else 0) | (
        MS_NOEXEC if flags & os.ST_NOEXEC else 0)


def _make_dev(new: str, scratch: str) -> None:
    dev = new + "/dev"
    os.makedirs(dev)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=65536,mode=0755")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            Path(f"{dev}/{name}").touch()
            _mount("/dev/" + name, f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(dev + "/shm")
    _mount(f"{scratch}/.shm", dev + "/shm", None, MS_BIND)
    _mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def _mask_proc(proc: str, null: str) -> None:
    for name in PROC_MASKED_FILES:
        if os.path.exists(f"{proc}/{name}"):
            _mount(null, f"{proc}/{name}", None, MS_BIND)
    for name in PROC_MASKED_DIRS:
        if os.path.isdir(f"{proc}/{name}"):
            _mount("tmpfs", f"{proc}/{name}", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")


# -- P: identity, limits, syscalls -------------------------------------------------


def drop_identity(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` with no capabilities left anywhere (effective, permitted, bounding).

    Works for a root worker (a real switch of uid) and inside a user namespace
    (the uid stays; the capabilities the namespace granted are dropped).
    """
    for cap in range(0, 64):
        if prctl(PR_CAPBSET_DROP, cap) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    if os.getuid() != uid or os.getgid() != gid or os.getgroups():
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    _clear_capabilities()
    prctl(PR_SET_DUMPABLE, 1)  # a uid switch clears it; /proc/self must stay the job's own
    _check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def _clear_capabilities() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)), "capset")


def capabilities_left() -> int:
    """This process's effective capability mask (0 once confined)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return -1


def set_limits(*, memory_bytes: int, max_open_files: int, pids_max: int | None, file_bytes: int | None) -> None:
    """Per-process limits; ``pids_max``/``file_bytes`` only where no cgroup/tmpfs does the job."""
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_AS, memory_bytes)
    _lower(resource.RLIMIT_NOFILE, max_open_files)
    if pids_max is not None:
        _lower(resource.RLIMIT_NPROC, pids_max)
    if file_bytes is not None:
        _lower(resource.RLIMIT_FSIZE, file_bytes)


def lower_cpu_seconds(seconds: int) -> None:
    _lower(resource.RLIMIT_CPU, seconds)


def _lower(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if value < 0:
        return
    new = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (new, new))
