"""One control group per job: a limit on processes and memory for all of its processes.

RLIMIT_NPROC and RLIMIT_AS are per user and per process: ten processes of a job
may each hold the memory limit. A cgroup counts the whole job. Where the cpu
controller is there too, each job's group also gets an equal share of the
CPUs when they are busy (a job of eight threads does not starve a job of one)
and, with ``QRT_JOB_CPUS``, a quota of cores. The zygote makes
one group per ready child under a group of its own, moves the child in before
it drops privileges (so everything the program forks lands inside), and after
the job kills what is left in the group and removes it.

Both hierarchies are handled: cgroup v1 (``pids`` and ``memory`` controllers
mounted under ``/sys/fs/cgroup/<controller>``) and the unified v2 tree. Where
the worker may not make groups (not root, Docker's read-only ``/sys/fs/cgroup``,
v2 without delegation) :func:`open_parent` says why and the job falls back on
per-uid RLIMIT_NPROC and per-process RLIMIT_AS (docs/sandbox.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("pids", "memory")
#: Used where mounted (v1) or delegated (v2); a job without them still has its pids and memory limits.
OPTIONAL_CONTROLLERS = ("cpu",)
#: The scheduler period a CPU quota is a share of.
CPU_PERIOD_US = 100_000
#: Rounds of SIGKILL over a group's members: a member forking while being killed leaves new ones.
KILL_ROUNDS = 50


class JobGroup:
    """The cgroup(s) of one job at a time: limits set at creation, members killed at each job's end.

    A group serves one job after another (:meth:`begin_job`): making and removing a
    memory cgroup costs the kernel milliseconds of work (and leaves more to its
    workqueues), on the zygote's own loop, where every job's start waits.
    """

    def __init__(self, paths: dict[str, Path], v2: bool, controllers: tuple[str, ...] = ()) -> None:
        self.paths = paths  # controller (or "unified") -> directory
        self.v2 = v2
        self.controllers = controllers  # what limits this group, for the job's sandbox report
        self._oom_before = 0  # the kernel's count of OOM kills in the group before this job
        self._peak_fd = -1  # v2: memory.peak opened and reset for this job (the reset is per descriptor)

    def add(self, pid: int) -> None:
        for path in self.paths.values():
            (path / "cgroup.procs").write_text(str(pid))

    def begin_job(self) -> bool:
        """Make the (empty) group's peak memory and OOM count start afresh for its next job.

        False when this kernel cannot reset the peak (cgroup v2 before Linux 6.12):
        the group then cannot serve another job and is removed instead.
        """
        if self.members():
            return False
        try:
            if self.v2:
                self._close_peak()
                self._peak_fd = os.open(self.paths["unified"] / "memory.peak", os.O_RDWR | os.O_CLOEXEC)
                os.write(self._peak_fd, b"reset")
            else:
                _write(self.paths["memory"] / "memory.max_usage_in_bytes", "0")
        except OSError:
            self._close_peak()
            return False
        self._oom_before = self._oom_kills()
        return True

    def peak_memory_bytes(self) -> int | None:
        if self._peak_fd >= 0:
            text = os.pread(self._peak_fd, 64, 0).decode().strip()
            return int(text) if text.isdigit() else None
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        path = self.paths.get("unified" if self.v2 else "memory")
        return _read_int(path / name) if path else None

    def oom_killed(self) -> bool:
        """True if the kernel killed a member for passing the group's memory limit during this job."""
        return self._oom_kills() > self._oom_before

    def _oom_kills(self) -> int:
        if self.v2:
            events = _read_text(self.paths["unified"] / "memory.events")
        else:
            events = _read_text(self.paths["memory"] / "memory.oom_control")
        for line in (events or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def _close_peak(self) -> None:
        if self._peak_fd >= 0:
            os.close(self._peak_fd)
            self._peak_fd = -1

    def kill_all(self) -> None:
        """SIGKILL every member until none is left."""
        if self.v2 and (self.paths["unified"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.paths["unified"] / "cgroup.kill").write_text("1")
        for _ in range(KILL_ROUNDS):
            members = self.members()
            if not members:
                return
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            _wait_empty(self, members)

    def members(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths.values():
            text = _read_text(path / "cgroup.procs") or ""
            found.update(int(pid) for pid in text.split())
        return found

    def remove(self) -> None:
        self.kill_all()
        self._close_peak()
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.rmdir()


class GroupParent:
    """The zygote's own group, under which it makes one group per job."""

    def __init__(self, paths: dict[str, Path], v2: bool, cpu: bool = False) -> None:
        self.paths = paths
        self.v2 = v2
        self.cpu = cpu  # the cpu controller limits job groups too

    def job_group(self, name: str, *, pids_max: int, memory_bytes: int, cpus: float = 0.0) -> JobGroup:
        paths = {}
        for controller, parent in self.paths.items():
            path = parent / name
            if path.exists():  # left by a zygote that died: empty it first
                JobGroup({controller: path}, self.v2).remove()
            path.mkdir()
            paths[controller] = path
        controllers = ("pids", "memory", "cpu") if self.cpu else ("pids", "memory")
        group = JobGroup(paths, self.v2, controllers)
        quota = int(cpus * CPU_PERIOD_US) if cpus > 0 else 0
        try:
            if self.v2:
                _write(paths["unified"] / "pids.max", str(pids_max))
                _write(paths["unified"] / "memory.max", str(memory_bytes))
                with contextlib.suppress(OSError):
                    _write(paths["unified"] / "memory.swap.max", "0")
                if self.cpu:
                    _write(paths["unified"] / "cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}")
            else:
                _write(paths["pids"] / "pids.max", str(pids_max))
                _write(paths["memory"] / "memory.limit_in_bytes", str(memory_bytes))
                with contextlib.suppress(OSError):  # only with swap accounting on
                    _write(paths["memory"] / "memory.memsw.limit_in_bytes", str(memory_bytes))
                if self.cpu:
                    _write(paths["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                    _write(paths["cpu"] / "cpu.cfs_quota_us", str(quota or -1))
        except OSError:
            group.remove()
            raise
        return group

    def remove(self) -> None:
        for path in self.paths.values():
            for child in path.iterdir() if path.is_dir() else ():
                if child.is_dir():
                    JobGroup({"x": child}, self.v2).remove()
            with contextlib.suppress(OSError):
                path.rmdir()


def remove_parent(name: str) -> None:
    """Remove a zygote's group and every job group in it, if they exist (after the zygote died)."""
    own = _own_groups()
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        paths, v2 = {"unified": CGROUP_ROOT / own.get("", "/").lstrip("/") / name}, True
    else:
        controllers = V1_CONTROLLERS + OPTIONAL_CONTROLLERS
        paths, v2 = {c: CGROUP_ROOT / c / own.get(c, "/").lstrip("/") / name for c in controllers}, False
    existing = {k: v for k, v in paths.items() if v.is_dir()}
    if existing:
        GroupParent(existing, v2).remove()


def open_parent(name: str) -> tuple[GroupParent | None, str]:
    """Make the zygote's parent group; returns it, or None and why not."""
    try:
        if (CGROUP_ROOT / "cgroup.controllers").exists():
            return _open_v2(name), ""
        return _open_v1(name), ""
    except OSError as exc:
        return None, f"no cgroup for jobs ({exc.strerror or exc}: {getattr(exc, 'filename', '') or ''})"


def _open_v1(name: str) -> GroupParent:
    own = _own_groups()
    paths = {}
    for controller in V1_CONTROLLERS:
        mount = CGROUP_ROOT / controller
        if not (mount / "cgroup.procs").exists():
            raise OSError(0, f"the {controller} controller is not mounted", str(mount))
        path = mount / own.get(controller, "/").lstrip("/") / name
        path.mkdir(exist_ok=True)
        paths[controller] = path
    if not os.access(paths["pids"], os.W_OK):
        raise OSError(13, "not writable", str(paths["pids"]))
    for controller in OPTIONAL_CONTROLLERS:
        mount = CGROUP_ROOT / controller
        if (mount / "cgroup.procs").exists():
            try:
                path = mount / own.get(controller, "/").lstrip("/") / name
                path.mkdir(exist_ok=True)
                paths[controller] = path
            except OSError:
                pass  # jobs keep their pids and memory limits
    return GroupParent(paths, v2=False, cpu="cpu" in paths)


def _open_v2(name: str) -> GroupParent:
    own = _own_groups().get("", "/")
    base = CGROUP_ROOT / own.lstrip("/")
    path = base / name
    path.mkdir(exist_ok=True)
    enabled = (_read_text(path / "cgroup.controllers") or "").split()
    if not {"pids", "memory"} <= set(enabled):
        path.rmdir()
        raise OSError(0, "pids/memory controllers not delegated to this cgroup", str(base))
    _write(path / "cgroup.subtree_control", "+pids +memory")
    cpu = "cpu" in enabled
    if cpu:
        try:
            _write(path / "cgroup.subtree_control", "+cpu")
        except OSError:
            cpu = False
    return GroupParent({"unified": path}, v2=True, cpu=cpu)


def _own_groups() -> dict[str, str]:
    """This process's group per v1 controller ("" for the v2 tree), from /proc/self/cgroup."""
    groups: dict[str, str] = {}
    for line in (_read_text(Path("/proc/self/cgroup")) or "").splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _wait_empty(group: JobGroup, members: set[int]) -> None:
    """Give killed members a moment to leave the group (reaped by their parents)."""
    import time

    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and group.members() & members:
        time.sleep(0.005)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    return int(text) if text and text.strip().isdigit() else None
