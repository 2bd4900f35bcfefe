"""Forking a ready child: the three processes that become one job, confined before it arrives.

``spawn`` forks ``R`` from the zygote. ``R`` unshares the job's namespaces
(``workers.confinement``), forks ``P`` and reports P's pid, then waits and exits
the way the program's process did, so the zygote's ``wait4`` tells the program's
fate and the CPU time of everything the job ran. ``P`` is pid 1 of the job's pid
namespace: it builds the job's filesystem, drops to the job's identity, loads
the seccomp filter, forks ``Q`` and stays as the namespace's init (it forwards
SIGTERM to the program's process group and reaps orphans; when it exits the
kernel kills whatever is left in the namespace). ``Q`` says it is ready and
blocks until the zygote hands it a job (``workers.sandbox.run_job``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import struct
import sys
import traceback

from workers import confinement, sandbox, zygote_protocol
from workers.cgroups import JobGroup
from workers.confinement import SandboxConfig
from workers.seccomp_policy import program_filter

#: Signals the job's init passes on to the program's process group.
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
#: Directories the job's root may be mounted on (in its private mount namespace),
#: first one that holds none of the paths bound into it.
ROOT_MOUNT_CANDIDATES = ("/mnt", "/media", "/srv", "/run", "/var/tmp", "/tmp", "/home", "/opt")
_STATUS = struct.Struct("=i")


@dataclasses.dataclass
class ChildPlan:
    """What one ready child is to be: decided by the zygote before the fork."""

    config: SandboxConfig
    uid: int
    gid: int
    privileged: bool  # the zygote may switch uids (root with CAP_SETUID)
    group: JobGroup | None
    fallback_scratch: str  # host directory used as scratch where no mount namespace can be had
    cgroup_note: str  # why there is no cgroup, when there is none


def spawn(plan: ChildPlan) -> tuple[int, socket.socket]:
    """Fork ``R``; returns its pid and the zygote's end of the child's channel."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid:
        theirs.close()
        return pid, mine
    code = 70
    try:
        mine.close()
        _run_r(plan, theirs)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote
        _report_crash("R")
    finally:
        os._exit(code)


def _run_r(plan: ChildPlan, channel: socket.socket) -> None:
    confinement.die_with_parent(signal.SIGKILL)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    confinement.close_fds_except({0, 1, 2, channel.fileno()})
    os.setsid()
    confinement.set_limits(memory_bytes=-1, max_open_files=-1, pids_max=None, file_bytes=None)
    if plan.group is not None:
        plan.group.add(os.getpid())
    refused = confinement.enter_namespaces(privileged=plan.privileged,
                                           isolate_network=plan.config.isolate_network)
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(status_r)
        _run_p(plan, channel, refused, status_w)
    os.close(status_w)
    zygote_protocol.send(channel, {"op": zygote_protocol.OP_PID, "pid": pid})
    channel.close()
    _, p_status = os.waitpid(pid, 0)
    data = os.read(status_r, _STATUS.size)
    _mirror(_STATUS.unpack(data)[0] if len(data) == _STATUS.size else p_status)


def _run_p(plan: ChildPlan, channel: socket.socket, refused: str | None, status_w: int) -> None:
    code = 71
    try:
        confinement.die_with_parent(signal.SIGKILL)
        layers = _confine(plan, refused)
        q = os.fork()
        if q == 0:
            os.close(status_w)
            _run_q(channel, layers, confinement.SCRATCH if refused is None else plan.fallback_scratch)
        channel.close()
        _init(q, status_w)
    except BaseException:  # noqa: BLE001
        _report_crash("sandbox")
    finally:
        os._exit(code)


def _confine(plan: ChildPlan, refused: str | None) -> dict[str, str]:
    """Put every layer the setup allows on this process (P); returns the layer report."""
    config = plan.config
    layers: dict[str, str] = {}
    if plan.privileged:
        layers["identity"] = f"on: uid {plan.uid}"
    else:
        layers["identity"] = (f"off: the worker is not root; jobs run as its uid {plan.uid}, "
                              "kept apart by user and pid namespaces")
    if refused is None:
        try:
            confinement.build_root(
                workroot=_root_mount_point(config.program_paths), scratch_uid=plan.uid, scratch_gid=plan.gid,
                disk_bytes=config.disk_bytes, extra_read_only=config.program_paths,
            )
        except confinement.ConfinementError as exc:
            # Namespaces granted but mounts refused (e.g. an LSM restricting user namespaces).
            refused = f"the job's filesystem could not be built ({exc})"
    if refused is None:
        layers["filesystem"] = "on"
        layers["pid"] = "on"
        layers["network"] = "on" if config.isolate_network else "off: QRT_JOB_NETWORK=host"
    else:
        os.chdir(plan.fallback_scratch)
        layers["filesystem"] = f"off: {refused}; the job sees the host's files its uid may read"
        layers["pid"] = f"off: {refused}"
        layers["network"] = ("off: no network namespace; sockets are refused by seccomp"
                             if config.isolate_network else "off: QRT_JOB_NETWORK=host")
    confinement.drop_identity(plan.uid, plan.gid)
    memory = config.memory_bytes if config.memory_bytes > 0 else -1
    confinement.set_limits(
        memory_bytes=memory, max_open_files=config.max_open_files,
        pids_max=None if plan.group is not None else config.pids_max,
        file_bytes=None if refused is None else config.disk_bytes,
    )
    if refused is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG instead
    layers["resources"] = "on: cgroup" if plan.group is not None else (
        f"off: {plan.cgroup_note}; per-uid process limit and per-process memory limit instead")
    program_filter(allow_network=not config.isolate_network).load()
    layers["syscalls"] = "on"
    return layers


def _root_mount_point(program_paths: tuple[str, ...]) -> str:
    sources = [*confinement.python_paths(), *program_paths]
    for candidate in ROOT_MOUNT_CANDIDATES:
        if os.path.isdir(candidate) and not os.path.islink(candidate) and not any(
            s == candidate or s.startswith(candidate + "/") for s in sources
        ):
            return candidate
    raise confinement.ConfinementError(0, "no directory to mount the job's root on")


def _run_q(channel: socket.socket, layers: dict[str, str], scratch: str) -> None:
    code = 72
    try:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        os.setpgid(0, 0)
        zygote_protocol.send(channel, {"op": zygote_protocol.OP_READY, "layers": layers})
        message, fds = zygote_protocol.receive(channel)
        channel.close()
        if message is None or message.get("op") != zygote_protocol.OP_JOB or len(fds) != len(zygote_protocol.JOB_FDS):
            code = 0
            return
        sandbox.run_job(dict(zip(zygote_protocol.JOB_FDS, fds, strict=True)), scratch)  # never returns
    except BaseException:  # noqa: BLE001
        _report_crash("sandbox")
    finally:
        os._exit(code)


def _init(program: int, status_w: int) -> None:
    """Be the job's init: forward stop signals, reap orphans, end when the program ends."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(program, signum)
        except (ProcessLookupError, PermissionError):
            pass

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == program:
            try:
                os.write(status_w, _STATUS.pack(status))
            except OSError:  # R is gone (the zygote died): nobody is left to tell
                pass
            os._exit(0)


def _report_crash(who: str) -> None:
    """The traceback of a child that could not get ready, in the worker's log."""
    try:
        sys.stderr.write(f"qruntime zygote child ({who}, pid {os.getpid()}) failed:\n{traceback.format_exc()}")
        sys.stderr.flush()
    except Exception:
        pass


def _mirror(status: int) -> None:
    """End this process the way ``status`` says another one ended."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


