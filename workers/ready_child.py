"""Forking a ready child: the process that becomes one job, confined before it arrives.

``P`` is the program's process and pid 1 of the job's pid namespace: it builds
the job's filesystem, drops to the job's identity, loads the seccomp filter,
says it is ready and blocks until the zygote hands it a job
(``workers.sandbox.run_job``). When it exits the kernel kills whatever is left
in the namespace, and the zygote's ``wait4`` tells the program's fate and the
CPU time of everything the job ran.

How P comes to be pid 1 depends on the worker. A root zygote unshares a pid
namespace for its next child, forks P straight into it and steps back into its
own (:func:`spawn`, one fork). A non-root zygote has no privilege to make a pid
namespace outside a user namespace of the job's own, which only the child can
make: it forks ``R``, which unshares the user namespace with the others, forks
P and exits the way P did.

The program is its namespace's init rather than a child of a separate one: a
fork of the warm zygote costs about 7 ms on a 2-core VM and its exit as much
again, and every job pays for each fork it needs. As init, the program only
receives the signals it has a handler for; :data:`STOP_SIGNALS` get one that
ends the process, so a cancel's SIGTERM still stops it. Orphans of the program
are re-parented to it; they die with it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import traceback
from typing import Any

from workers import confinement, sandbox, zygote_protocol
from workers.cgroups import JobGroup
from workers.confinement import SandboxConfig

#: Signals that stop a job (the program is pid 1 of its namespace: without a handler they would be ignored).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Directories the job's root may be mounted on (in its private mount namespace),
#: first one that holds none of the paths bound into it.
ROOT_MOUNT_CANDIDATES = ("/mnt", "/media", "/srv", "/run", "/var/tmp", "/tmp", "/home", "/opt")
#: Nice value a root zygote forks at and a ready child gets ready at: building the next
#: child (a fork of the warm image, mounts) yields the CPU to the jobs running meanwhile.
#: The zygote sets the child back to 0 when it hands it a job.
BACKGROUND_NICE = 19


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
    etc: str  # the zygote's copy of the /etc files jobs see (confinement.prepare_etc)
    syscall_filter: Any  # seccomp_policy.program_filter, built once by the zygote; each child loads it


def spawn(plan: ChildPlan) -> tuple[int, socket.socket, bool]:
    """Fork the child; returns its pid, the zygote's end of its channel, and whether it is P itself."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    direct = plan.privileged
    pid_refused = confinement.unshare_pid_for_children() if direct else None
    unshared = direct and pid_refused is None
    if direct:
        os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICE)
    try:
        pid = os.fork()
    except BaseException:
        _back_in_the_zygote(unshared, direct)
        raise
    if pid:
        _back_in_the_zygote(unshared, direct)
        theirs.close()
        return pid, mine, direct
    code = 70
    try:
        mine.close()
        _leave_the_zygote(plan, theirs)
        if direct:
            refused = pid_refused or confinement.enter_namespaces(
                privileged=True, isolate_network=plan.config.isolate_network, pid=False)
            _run_p(plan, theirs, refused)
        else:
            _run_r(plan, theirs)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote
        _report_crash("R")
    finally:
        os._exit(code)


def _back_in_the_zygote(unshared: bool, reniced: bool) -> None:
    if unshared:
        confinement.restore_pid_for_children()
    if reniced:
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def _leave_the_zygote(plan: ChildPlan, channel: socket.socket) -> None:
    """Drop what the child inherited of the zygote: handlers, descriptors, session; join the job's cgroup."""
    confinement.die_with_parent(signal.SIGKILL)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    confinement.close_fds_except({0, 1, 2, channel.fileno()})
    os.setsid()
    confinement.set_limits(memory_bytes=-1, max_open_files=-1, pids_max=None, file_bytes=None)
    if plan.group is not None:
        plan.group.add(0)  # "0" is the writer itself, whatever pid namespace it is in


def _run_r(plan: ChildPlan, channel: socket.socket) -> None:
    refused = confinement.enter_namespaces(privileged=False, isolate_network=plan.config.isolate_network)
    pid = os.fork()
    if pid == 0:
        _run_p(plan, channel, refused)
    zygote_protocol.send(channel, {"op": zygote_protocol.OP_PID, "pid": pid})
    channel.close()
    _, status = os.waitpid(pid, 0)
    _mirror(status)


def _run_p(plan: ChildPlan, channel: socket.socket, refused: str | None) -> None:
    code = 71
    try:
        confinement.die_with_parent(signal.SIGKILL)
        layers = _confine(plan, refused)
        scratch = confinement.SCRATCH if refused is None else plan.fallback_scratch
        for signum in STOP_SIGNALS:
            signal.signal(signum, _stop)
        if os.getpgid(0) != os.getpid():  # a child of R; the zygote's own child leads its session already
            os.setpgid(0, 0)
        sandbox.rehearse(scratch, plan.config.backends)
        zygote_protocol.send(channel, {"op": zygote_protocol.OP_READY, "layers": layers})
        message, fds = zygote_protocol.receive(channel)
        channel.close()
        if message is None or message.get("op") != zygote_protocol.OP_JOB or len(fds) != len(zygote_protocol.JOB_FDS):
            code = 0
            return
        sandbox.run_job(dict(zip(zygote_protocol.JOB_FDS, fds, strict=True)), scratch)  # never returns
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote
        _report_crash("sandbox")
    finally:
        os._exit(code)


def _stop(signum: int, _frame: object) -> None:
    """End the program's process as the signal's default action would have."""
    os._exit(128 + signum)


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
                disk_bytes=config.disk_bytes, extra_read_only=config.program_paths, etc=plan.etc,
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
    layers["resources"] = f"on: cgroup ({', '.join(plan.group.controllers)})" if plan.group is not None else (
        f"off: {plan.cgroup_note}; per-uid process limit and per-process memory limit instead")
    plan.syscall_filter.load()
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


