"""The zygote: a secret-free, warm process that keeps confined children ready for jobs.

The worker starts it by exec (``python -m workers.zygote``, see
``workers.zygote_client.start``), never by fork, with a minimal environment and
a command line that holds only job limits: it never has the Redis URL, a
password, a token or the account file's path, so no child forked from it can
find one in its memory. It imports qiskit, Aer and the wire format, builds the
served backends from static data, transpiles once, and then keeps
``config.ready`` children forked and confined (``workers.ready_child``) so a
job's start costs two socket messages.

Supervisors (the Celery pool processes) connect to its UNIX socket; the
protocol is in ``workers.zygote_protocol``. The zygote leases each child a uid
of its own (root workers), puts it in a cgroup of its own (where it may; a
group serves one job at a time, and then the next), and when the child's job
is over kills what is left of it, removes its scratch and files, and tells the
supervisor how the program ended.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import gc
import logging
import os
import selectors
import shutil
import signal
import socket
import stat
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from workers import cgroups, zygote_protocol
from workers.confinement import SandboxConfig, die_with_parent, prepare_etc
from workers.ready_child import BACKGROUND_NICE, ChildPlan, spawn
from workers.seccomp_policy import program_filter

logger = logging.getLogger("qruntime.zygote")

#: Where root workers lease blocks of job uids, one lock file per block (host-wide).
UID_LOCK_DIR = Path("/run/qruntime/uid-blocks")
#: Blocks a host can hand out: uid_base .. uid_base + MAX_UID_BLOCKS * uid_block.
MAX_UID_BLOCKS = 4096
#: World-writable places a job without a mount namespace could leave files in.
SHARED_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")
#: Rounds of ``kill(-1)`` as a job's uid before its processes count as gone.
UID_KILL_ROUNDS = 100
CAP_SETGID, CAP_SETUID = 6, 7
IPC_RMID = 0
#: Children that die before they are ready, in a row, before the zygote pauses and fails waiting jobs.
CHILD_FAILURES_BEFORE_PAUSE = 3
CHILD_FAILURE_PAUSE_S = 5
#: How often running jobs' cgroups are checked for a process the kernel killed for memory.
MEMORY_CHECK_INTERVAL_S = 0.25
#: Finished jobs whose teardown may wait for an idle moment before the zygote does one anyway.
MAX_DEFERRED_CLEANUPS = 4


@dataclasses.dataclass
class Slot:
    """One ready child, from fork to the end of its job."""

    plan: ChildPlan
    r_pid: int
    channel: socket.socket | None
    p_pid: int = 0
    pidfd: int = -1
    layers: dict[str, str] | None = None
    client: socket.socket | None = None
    oom: bool = False

    @property
    def ready(self) -> bool:
        return self.channel is not None and self.p_pid > 0 and self.layers is not None and self.client is None


class Zygote:
    """The serve loop: children, supervisor connections and the end of every job."""

    def __init__(self, config: SandboxConfig, socket_path: str, scratch_root: str, cgroup_name: str,
                 uids: list[int]) -> None:
        self.config = config
        self.privileged = _may_switch_uids()
        self.uids = uids
        self._serial = 0
        self.free_uids = deque(self.uids)
        self.cgroup_parent, self.cgroup_note = cgroups.open_parent(cgroup_name)
        self.spare_groups: list[cgroups.JobGroup] = []  # emptied by finished jobs, ready for the next
        self.scratch_root = scratch_root  # 0711: a job's uid may enter its own scratch, list none
        os.mkdir(self.scratch_root, 0o711)
        os.chmod(self.scratch_root, 0o711)
        self.etc = prepare_etc(os.path.join(os.path.dirname(self.scratch_root), "etc"))
        self.syscall_filter = program_filter(allow_network=not config.isolate_network)
        self.slots: dict[int, Slot] = {}  # by R's pid
        self.waiting: deque[tuple[socket.socket, list[int]]] = deque()  # starts without a ready child
        self.cleanups: deque[Callable[[], None]] = deque()  # teardowns of finished jobs, run when idle
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(socket_path)
        os.chmod(socket_path, 0o600)
        self.listener.listen(64)
        self.selector.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self.wake_r, wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        self._wake_w = wake_w
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.stopping = False
        self.failed_children = 0  # in a row, died before they were ready
        self.spawn_paused_until = 0.0

    # -- children ----------------------------------------------------------------------

    def refill(self, *, one: bool = False) -> None:
        """Keep ``config.ready`` children ready or on their way, plus one per waiting start.

        ``one``: fork at most one child now. A fork of the warm image holds the loop
        for milliseconds; the serve loop forks one per round, between rounds that
        hand ready children to starts and hear children become ready.
        """
        if time.monotonic() < self.spawn_paused_until:
            return
        coming = self._coming()
        while coming < self.config.ready + len(self.waiting) and self.free_uids:
            self._spawn(self.free_uids.popleft())
            coming += 1
            if one:
                return

    def _coming(self) -> int:
        """Children ready for a job or on their way to it."""
        return sum(1 for s in self.slots.values() if s.client is None)

    def _starts_outnumber_children(self) -> bool:
        """More starts wait than children are on their way to being ready for them."""
        return len(self.waiting) > self._coming()

    def _spawn(self, uid: int) -> None:
        self._serial += 1
        name = f"slot-{self._serial}"
        group = self._group_for(name)
        scratch = os.path.join(self.scratch_root, name)
        os.mkdir(scratch, 0o700)
        os.chown(scratch, uid, uid)
        plan = ChildPlan(self.config, uid, uid if self.privileged else os.getgid(), self.privileged,
                         group, scratch, self.cgroup_note, self.etc, self.syscall_filter)
        r_pid, channel, direct = spawn(plan)
        slot = Slot(plan, r_pid, channel)
        if direct:  # the child is the program's process itself
            self._set_program_pid(slot, r_pid)
        self.slots[r_pid] = slot
        self.selector.register(channel, selectors.EVENT_READ, ("child", r_pid))

    def _group_for(self, name: str) -> cgroups.JobGroup | None:
        """A cgroup for the next child: one an earlier job left empty, else a new one (None: no cgroups)."""
        while self.spare_groups:
            group = self.spare_groups.pop()
            if group.begin_job():
                return group
            group.remove()  # not empty, or its peak cannot be reset here: a new one instead
        if self.cgroup_parent is None:
            return None
        try:
            group = self.cgroup_parent.job_group(name, pids_max=self.config.pids_max,
                                                 memory_bytes=self.config.memory_bytes, cpus=self.config.cpus)
        except OSError as exc:
            self.cgroup_note = f"no cgroup for jobs ({exc})"
            return None
        group.begin_job()
        return group

    def _on_child_message(self, r_pid: int) -> None:
        slot = self.slots[r_pid]
        message, fds = zygote_protocol.receive(slot.channel)
        for fd in fds:
            os.close(fd)
        if message is None:
            self._drop_channel(slot)  # the child died before it was ready; its reaping follows
            return
        if message.get("op") == zygote_protocol.OP_PID and slot.p_pid == 0:
            self._set_program_pid(slot, int(message["pid"]))
        elif message.get("op") == zygote_protocol.OP_READY:
            slot.layers = {str(k): str(v) for k, v in dict(message["layers"]).items()}
            self.failed_children = 0
            if len(self.slots) == 1 or not getattr(self, "_reported", False):
                self._reported = True
                weakened = any(not state.startswith("on") for state in slot.layers.values())
                logger.log(logging.WARNING if weakened else logging.INFO, "job sandbox layers: %s", slot.layers)
        if slot.ready and self.waiting:
            client, start_fds = self.waiting.popleft()
            self._hand_over(slot, client, start_fds)

    @staticmethod
    def _set_program_pid(slot: Slot, pid: int) -> None:
        slot.p_pid = pid
        with contextlib.suppress(OSError):
            slot.pidfd = os.pidfd_open(pid)

    def _drop_channel(self, slot: Slot) -> None:
        if slot.channel is not None:
            self.selector.unregister(slot.channel)
            slot.channel.close()
            slot.channel = None

    # -- supervisors --------------------------------------------------------------------

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        self.selector.register(client, selectors.EVENT_READ, ("client", client))

    def _on_client_message(self, client: socket.socket) -> None:
        message, fds = zygote_protocol.receive(client)
        slot = self._slot_of(client)
        if message is None:
            self._close_client(client)
            if slot is not None:
                slot.client = None
                self._end_in_background(slot)  # its outcome is recorded, or nobody is left to watch it
            self.waiting = deque((c, f) for c, f in self.waiting if c is not client or _close_all(f))
            return
        op = message.get("op")
        if op == zygote_protocol.OP_START and slot is None and len(fds) == len(zygote_protocol.JOB_FDS):
            ready = next((s for s in self.slots.values() if s.ready), None)
            if ready is not None:
                self._hand_over(ready, client, fds)
            else:
                self.waiting.append((client, fds))
                if not self.free_uids:
                    self._run_cleanups()  # uids of finished jobs come back with their teardown
                # The serve loop forks for it (one child per round), unless a child is about to be ready.
                if not self.free_uids and not self._coming():
                    self._refuse(client, fds, "every job uid of this worker is in use")
        elif op == zygote_protocol.OP_SIGNAL and slot is not None:
            _close_all(fds)
            self._signal(slot, int(message.get("signal", signal.SIGKILL)))
        else:
            _close_all(fds)

    def _hand_over(self, slot: Slot, client: socket.socket, fds: list[int]) -> None:
        if _shares_the_worker(slot.layers):
            self._refuse(client, fds, "this worker cannot keep programs apart: it is not root (no uid per "
                         "job) and the kernel refuses it a user, mount and pid namespace of their own; run the "
                         "worker as root or allow unprivileged user namespaces (docs/sandbox.md)")
            return
        if self.privileged:  # it got ready in the background (ready_child.BACKGROUND_NICE)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, slot.p_pid, 0)
        # The supervisor hears first: once the child has its job it takes the CPU it shares with us.
        slot.client = client
        zygote_protocol.send(client, {"op": zygote_protocol.OP_STARTED, "pid": slot.p_pid,
                                      "uid": slot.plan.uid, "layers": slot.layers})
        zygote_protocol.send(slot.channel, {"op": zygote_protocol.OP_JOB}, fds)
        _close_all(fds)
        self._drop_channel(slot)  # the serve loop forks its replacement once this round is handled

    def _refuse(self, client: socket.socket, fds: list[int], text: str) -> None:
        _close_all(fds)
        self.waiting = deque((c, f) for c, f in self.waiting if c is not client)
        with contextlib.suppress(OSError):
            zygote_protocol.send(client, {"op": zygote_protocol.OP_REFUSED, "message": text})
        self._close_client(client)

    def _slot_of(self, client: socket.socket) -> Slot | None:
        return next((s for s in self.slots.values() if s.client is client), None)

    def _close_client(self, client: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client)
        client.close()

    def _end_in_background(self, slot: Slot) -> None:
        """SIGKILL the job; its exit (unmapping a large image) yields the CPU to running jobs."""
        if self.privileged and slot.p_pid > 0:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, slot.p_pid, BACKGROUND_NICE)
        self._signal(slot, signal.SIGKILL)

    def _signal(self, slot: Slot, signum: int) -> None:
        if slot.pidfd >= 0:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(slot.pidfd, signum)

    # -- the end of a job ------------------------------------------------------------------

    def _reap(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.wake_r.recv(4096):
                pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.slots.pop(pid, None)
            if slot is not None:  # else an orphan of a job, reparented to this subreaper
                self._finish(slot, status, usage)

    def _finish(self, slot: Slot, status: int, usage: os.struct_rusage) -> None:
        """The job's init has exited: make sure nothing of it runs, tell its supervisor, clean up.

        The supervisor hears as soon as no process of the job is left. Giving
        the emptied cgroup to a later job (workers/cgroups.py: making and removing
        one takes milliseconds), removing the scratch and freeing the uid wait
        until the zygote has nothing else to do (:meth:`serve`), so no job's
        start queues behind another's teardown.
        """
        if slot.layers is None and slot.client is None:
            self._child_failed()
        self._drop_channel(slot)
        oom, peak = False, None
        group = slot.plan.group
        if group is not None:
            group.kill_all()
            oom, peak = slot.oom or group.oom_killed(), group.peak_memory_bytes()
        if peak is None:  # no cgroup here: the largest resident size of the job's init, the program
            peak = usage.ru_maxrss * 1024
        no_pid_namespace = slot.layers is None or slot.layers.get("pid", "off").startswith("off")
        if no_pid_namespace:
            self._clean_after_uid(slot.plan)
        if slot.client is not None:
            with contextlib.suppress(OSError):
                zygote_protocol.send(slot.client, {
                    "op": zygote_protocol.OP_EXITED, "status": status, "oom": oom,
                    "peak_memory_bytes": peak, "cpu_s": round(usage.ru_utime + usage.ru_stime, 6),
                })
            self._close_client(slot.client)
        if slot.pidfd >= 0:
            os.close(slot.pidfd)

        def remove_the_rest() -> None:
            if group is not None:
                self.spare_groups.append(group)  # emptied above; the next child's job reuses it
            if not no_pid_namespace:
                shutil.rmtree(slot.plan.fallback_scratch, ignore_errors=True)
            self.free_uids.append(slot.plan.uid)  # only now: nothing of the job is left anywhere

        self.cleanups.append(remove_the_rest)

    def _run_cleanups(self) -> None:
        while self.cleanups:
            self.cleanups.popleft()()

    def _child_failed(self) -> None:
        """A child died before it was ready: after a few in a row, stop and fail waiting jobs clearly."""
        self.failed_children += 1
        if self.failed_children < CHILD_FAILURES_BEFORE_PAUSE:
            return
        logger.error("%d sandbox children in a row died before they were ready (tracebacks above); "
                     "pausing %d s", self.failed_children, CHILD_FAILURE_PAUSE_S)
        self.spawn_paused_until = time.monotonic() + CHILD_FAILURE_PAUSE_S
        for client, fds in list(self.waiting):
            self._refuse(client, fds, "the worker's sandbox could not start a confined process for the job "
                         "(the worker's log says why)")

    def _clean_after_uid(self, plan: ChildPlan) -> None:
        """Without a pid namespace: kill every process of the job's uid, remove its files."""
        if not self.privileged:
            shutil.rmtree(plan.fallback_scratch, ignore_errors=True)
            return
        def remove_files() -> None:
            _remove_tree(plan.fallback_scratch, keep_top=True)
            for shared in SHARED_WRITABLE_DIRS:
                _remove_owned(shared, plan.uid)

        _run_as(plan.uid, plan.gid, _kill_own_processes, remove_files, _remove_own_ipc_objects)
        with contextlib.suppress(OSError):
            os.rmdir(plan.fallback_scratch)

    # -- the loop --------------------------------------------------------------------------

    def _watch_memory(self) -> None:
        """A job whose processes passed its memory limit ends: the kernel killed one, the rule kills all."""
        for slot in self.slots.values():
            group = slot.plan.group
            if slot.client is not None and group is not None and not slot.oom and group.oom_killed():
                slot.oom = True
                self._signal(slot, signal.SIGKILL)

    def serve(self) -> None:
        self.refill()
        while not self.stopping:
            self._watch_memory()
            events = self.selector.select(timeout=0 if self.cleanups else MEMORY_CHECK_INTERVAL_S)
            for key, _ in events:
                kind, data = key.data
                try:
                    if kind == "listen":
                        self._accept()
                    elif kind == "wake":
                        self._reap()
                    elif kind == "child" and data in self.slots:
                        self._on_child_message(data)
                    elif kind == "client" and data.fileno() >= 0:  # not closed by this round's reaping
                        self._on_client_message(data)
                except OSError:
                    logger.exception("zygote: %s event failed", kind)
            self._reap()
            if self.cleanups and (not events or len(self.cleanups) > MAX_DEFERRED_CLEANUPS
                                  or len(self.free_uids) <= self.config.ready):
                self.cleanups.popleft()()  # idle (or falling behind): tear down one finished job
            # After this round's starts and ends, a pause, or a child that died early; events that
            # came meanwhile (a start, a child now ready) are heard first, unless starts would starve.
            if self._starts_outnumber_children() or not self.selector.select(timeout=0):
                self.refill(one=True)

    def shutdown(self) -> None:
        self.stopping = True
        for slot in list(self.slots.values()):
            self._signal(slot, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.r_pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.slots and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)
        self._run_cleanups()
        if self.cgroup_parent is not None:
            self.cgroup_parent.remove()
        shutil.rmtree(self.scratch_root, ignore_errors=True)


def _shares_the_worker(layers: dict[str, str]) -> bool:
    """A job with the worker's uid and without its own filesystem and pid namespace could reach the worker."""
    return layers.get("identity", "").startswith("off") and (
        layers.get("filesystem", "").startswith("off") or layers.get("pid", "").startswith("off"))


def _may_switch_uids() -> bool:
    """Root with CAP_SETUID and CAP_SETGID: every job gets a uid of its own."""
    if os.geteuid() != 0:
        return False
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            caps = int(line.split()[1], 16)
            return bool(caps & (1 << CAP_SETUID)) and bool(caps & (1 << CAP_SETGID))
    return False


def job_uids(config: SandboxConfig) -> list[int]:
    """The uids this zygote gives jobs, each free of processes left by an earlier holder.

    A non-root worker has one uid to give: every job shares it, inside namespaces
    of its own. A root worker leases a block; a zygote that died may have left
    processes of a job without a pid namespace running under one of its uids.
    """
    if not _may_switch_uids():
        return [os.getuid()] * config.uid_block
    uids = _lease_uid_block(config)
    for uid in _uids_with_processes(set(uids)):
        _run_as(uid, uid, _kill_own_processes)
    return uids


def _run_as(uid: int, gid: int, *steps) -> None:  # noqa: ANN002 - callables without arguments
    """Run ``steps`` in a helper process that has become ``uid``: it may touch only what is the job's."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            for step in steps:
                step()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _kill_own_processes() -> None:
    """SIGKILL every process this uid may signal, which is its own, until none is left.

    ``kill(-1)`` answers 0 whenever any other process exists, so /proc says when it is done.
    """
    uid = os.getuid()
    for _ in range(UID_KILL_ROUNDS):
        if not _uids_with_processes({uid}, exclude=os.getpid()):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        time.sleep(0.002)


def _remove_own_ipc_objects() -> None:
    """Remove the System V shared memory, queues and semaphores this uid owns (run as that uid).

    Without an IPC namespace of its own a job's objects outlive it on the host.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    remove = {"shm": lambda i: libc.shmctl(i, IPC_RMID, None), "msg": lambda i: libc.msgctl(i, IPC_RMID, None),
              "sem": lambda i: libc.semctl(i, 0, IPC_RMID)}
    uid = os.getuid()
    for kind, rmid in remove.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                header, *rows = [line.split() for line in table]
        except OSError:
            continue
        id_column, uid_column = 1, header.index("uid")
        for row in rows:
            if len(row) > uid_column and int(row[uid_column]) == uid:
                rmid(int(row[id_column]))


def _uids_with_processes(uids: set[int], exclude: int = 0) -> set[int]:
    """Which of ``uids`` some live process (not a zombie) runs as, by real uid."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                status = handle.read()
        except OSError:
            continue
        if "\nState:\tZ" in status:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                if uid in uids:
                    found.add(uid)
                break
    return found


def _lease_uid_block(config: SandboxConfig) -> list[int]:
    """Lock a block of uids no other zygote on this host holds (the lock dies with us)."""
    UID_LOCK_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    for block in range(MAX_UID_BLOCKS):
        handle = open(UID_LOCK_DIR / f"{config.uid_base}-{block}.lock", "a")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _LEASES.append(handle)
        first = config.uid_base + block * config.uid_block
        return list(range(first, first + config.uid_block))
    raise RuntimeError(f"no free block of job uids under {UID_LOCK_DIR}")


_LEASES: list = []


def _remove_owned(directory: str, uid: int) -> None:
    """Remove what ``uid`` owns at the top of a shared directory (run as that uid)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid != uid:
            continue
        if stat.S_ISDIR(info.st_mode):
            _remove_tree(entry.path, keep_top=False)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _remove_tree(path: str, *, keep_top: bool) -> None:
    """rmtree that first gives its owner back the rights a program may have taken away."""
    def unlock(func, target, _exc):  # noqa: ANN001 - shutil's onerror signature
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)

    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    if keep_top:
        for entry in os.listdir(path) if os.path.isdir(path) else ():
            target = os.path.join(path, entry)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target, onerror=unlock)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(target)
    else:
        shutil.rmtree(path, onerror=unlock)


def _close_all(fds: list[int]) -> bool:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    return False


#: Modules runtime programs use (the built-in ones import them) that ``import qiskit`` does not
#: load: imported once here, not by each job (scipy.optimize alone takes ~0.3 s to import).
WARM_MODULES = ("scipy.optimize", "scipy.sparse", "scipy.linalg", "scipy.special", "qiskit_aer.primitives",
                "qiskit.primitives", "qiskit.quantum_info", "qiskit.circuit.library", "qiskit.circuit.random")


def _warm(config: SandboxConfig) -> None:
    """Import and build everything a program's first line would otherwise wait for."""
    import importlib

    import qiskit  # noqa: F401
    import qiskit_aer  # noqa: F401

    for name in WARM_MODULES:
        importlib.import_module(name)

    from workers import sandbox, wire_format  # noqa: F401 - the codec, not the IBM client (see wire_format)
    from workers.backends import warm_up

    warm_up(list(config.backends))


#: madvise(2) advice (Linux 6.1+): make this range huge pages now, whatever the THP setting.
MADV_COLLAPSE = 25
HUGE_PAGE_BYTES = 2 << 20


def _collapse_into_huge_pages() -> None:
    """Back the zygote's warm heap with 2 MiB pages, so forking and ending a child costs less.

    Every job is a fork of this process and ends with that fork's exit; both
    walk one page-table entry per 4 KiB page of its ~160 MB of private memory.
    In huge pages that is one entry per 2 MiB: measured on a 2-core VM, the
    kernel time of the zygote and its children per trivial job fell from ~27 ms
    to ~19 ms. A child that writes to a shared huge page gets a 4 KiB copy, as
    before. On kernels without MADV_COLLAPSE nothing changes.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    for fields in regions:
        anonymous = len(fields) < 6 or fields[5] == "[heap]"
        if not anonymous or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        start = (low + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1)
        end = high & ~(HUGE_PAGE_BYTES - 1)
        if end > start:
            libc.madvise(start, end - start, MADV_COLLAPSE)  # a failure leaves the range as it was


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.zygote")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--config", required=True, help="SandboxConfig as JSON")
    parser.add_argument("--scratch", required=True, help="directory for jobs' scratch where no mount namespace is had")
    parser.add_argument("--cgroup", required=True, help="name of this zygote's cgroup")
    args = parser.parse_args(argv)
    die_with_parent(signal.SIGKILL)
    # Warnings only: a sandbox layer this host refuses, a child that failed. The zygote has a
    # bare environment by design (no secrets), so it does not read the workers' log settings.
    logging.basicConfig(level=logging.WARNING, format="[zygote %(process)d] %(levelname)s %(message)s")
    logging.getLogger("qiskit").setLevel(logging.WARNING)
    config = SandboxConfig.from_json(args.config)
    from workers.seccomp_policy import sockets_filter

    if config.isolate_network:
        sockets_filter().load()  # the zygote needs no network either: only its UNIX sockets
    uids = job_uids(config)  # before the imports: a helper per uid forks a small process
    _warm(config)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    from workers.confinement import prctl

    prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of jobs without a pid namespace come here
    zygote = Zygote(config, args.socket, args.scratch, args.cgroup, uids)
    gc.collect()
    gc.freeze()  # children share these pages instead of copying them on the first collection
    _collapse_into_huge_pages()
    signal.signal(signal.SIGTERM, lambda *_: setattr(zygote, "stopping", True))
    try:
        zygote.serve()
    finally:
        zygote.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
