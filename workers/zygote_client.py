"""The worker's side of the zygote: start it by exec, keep it running, ask it for jobs.

:class:`ZygoteKeeper` runs in the Celery main process: it execs
``python -m workers.zygote`` with a scrubbed environment (no ``QRT_*``, no
HOME) and restarts it if it dies. Pool processes, forked from the main
process afterwards, find the socket through :data:`socket_path` and each job
opens a :class:`JobHandle` on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.settings import Settings
from workers import zygote_protocol
from workers.confinement import SandboxConfig

logger = logging.getLogger(__name__)

#: The zygote's environment: what Python, BLAS and qiskit need, nothing of the worker's.
ZYGOTE_ENV_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                          "PYTHONPATH")
#: Uids one zygote leases: ready children plus running jobs must fit with room to spare.
UID_BLOCK = 64
#: How long a job waits for a (re)starting zygote before it fails.
CONNECT_TIMEOUT_S = 120.0
#: Pause before restarting a zygote that died, so a crash loop does not spin.
RESTART_BACKOFF_S = 1.0

#: Each worker's zygote folder under the temp directory: its socket, scratch, /etc copy.
KEEPER_DIR_PREFIX = "qrt-zygote-"
#: Locked by a live worker's keeper for its whole life (see sweep_dead_keepers).
ALIVE_FILE = ".alive"
#: A zygote folder younger than this is never swept: its worker may be starting.
SWEEP_MIN_AGE_S = 60.0

#: Set in the main process before the pool forks; pool processes inherit it.
socket_path: str | None = None


class SandboxUnavailableError(RuntimeError):
    """Raised when no zygote answers within CONNECT_TIMEOUT_S, or it refuses the job."""


def sandbox_config(settings: Settings, backends: list[str], concurrency: int) -> SandboxConfig:
    return SandboxConfig(
        memory_bytes=settings.job_memory_mb * 1024 * 1024,
        pids_max=settings.job_pids_max,
        cpus=settings.job_cpus,
        disk_bytes=settings.job_disk_mb * 1024 * 1024,
        max_open_files=settings.job_max_open_files,
        network=settings.job_network,
        uid_base=settings.job_uid_base,
        uid_block=UID_BLOCK,
        program_paths=tuple(str(p.resolve()) for p in settings.program_paths if p.is_dir()),
        ready=settings.sandbox_ready or concurrency,
        backends=tuple(backends),
    )


class ZygoteKeeper(threading.Thread):
    """Starts the zygote and restarts it whenever it exits, until ``stop()``."""

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(name="qruntime-zygote-keeper", daemon=True)
        self.config = config
        sweep_dead_keepers()
        # Holds the socket (0600: only this worker's uid may connect) and the scratch root.
        self.directory = tempfile.mkdtemp(prefix=KEEPER_DIR_PREFIX)
        os.chmod(self.directory, 0o711)
        self._alive = _hold_alive_lock(self.directory)
        self.path = os.path.join(self.directory, "zygote.sock")
        self.scratch = os.path.join(self.directory, "scratch")
        self.cgroup = _cgroup_name(self.directory)
        self.process: subprocess.Popen | None = None
        self._stopped = threading.Event()

    def start_zygote(self) -> None:
        self._clean_after_zygote()
        env = {k: os.environ[k] for k in ZYGOTE_ENV_PASSTHROUGH if k in os.environ}
        env.update({"QISKIT_IN_PARALLEL": "TRUE", "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.zygote", "--socket", self.path, "--config", self.config.to_json(),
             "--scratch", self.scratch, "--cgroup", self.cgroup],
            env=env, cwd="/", close_fds=True, stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Block until the zygote accepts connections (it binds its socket once warm)."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.path):
            if self.process is not None and self.process.poll() is not None:
                raise SandboxUnavailableError(f"the job zygote exited with code {self.process.returncode} "
                                              "while starting (see the worker's log)")
            if time.monotonic() >= deadline:
                raise SandboxUnavailableError(f"the job zygote did not start within {timeout:.0f} s")
            time.sleep(0.05)

    def run(self) -> None:
        while not self._stopped.is_set():
            if self.process is None or self.process.poll() is not None:
                if self.process is not None:
                    logger.error("the job zygote exited with code %s; restarting it", self.process.returncode)
                    self._stopped.wait(RESTART_BACKOFF_S)
                    if self._stopped.is_set():
                        return
                self.start_zygote()
            self._stopped.wait(0.2)

    def stop(self) -> None:
        self._stopped.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._clean_after_zygote()
        shutil.rmtree(self.directory, ignore_errors=True)
        self._alive.close()

    def _clean_after_zygote(self) -> None:
        """What a zygote that died (SIGKILL, a crash) could not remove: its socket, scratch, cgroups."""
        from workers import cgroups

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        shutil.rmtree(self.scratch, ignore_errors=True)
        try:
            cgroups.remove_parent(self.cgroup)
        except OSError:
            logger.warning("could not remove cgroup %s", self.cgroup, exc_info=True)


def sweep_dead_keepers() -> None:
    """Remove what workers killed without a chance to clean up left: zygote folders and cgroups.

    A worker's keeper holds a lock on ``.alive`` in its folder for its life; a
    folder whose lock can be taken belongs to a worker that is gone (SIGKILL,
    OOM, a crash). Left alone, every such restart would leak a folder of
    scratch and a cgroup per job slot, and leaked memory cgroups slow the kernel.
    """
    from workers import cgroups

    for directory in glob.glob(os.path.join(tempfile.gettempdir(), KEEPER_DIR_PREFIX + "*")):
        try:
            if time.time() - os.stat(directory).st_mtime < SWEEP_MIN_AGE_S:
                continue  # a worker starting now may not hold its lock yet
            if not os.path.exists(os.path.join(directory, ALIVE_FILE)) and _answers(
                    os.path.join(directory, "zygote.sock")):
                continue  # a live worker of a version without the lock
            lock = _hold_alive_lock(directory)
        except OSError:  # alive, or another user's
            continue
        try:
            cgroups.remove_parent(_cgroup_name(directory))
        except OSError:
            logger.warning("could not remove the cgroup of dead zygote folder %s", directory, exc_info=True)
        shutil.rmtree(directory, ignore_errors=True)
        lock.close()
        logger.info("removed %s, left by a worker that is gone", directory)


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _hold_alive_lock(directory: str):  # noqa: ANN202 - the open, locked file
    # 0600: a job (another uid, in setups without a mount namespace) cannot open it to hold a lock.
    fd = os.open(os.path.join(directory, ALIVE_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    handle = os.fdopen(fd, "a")  # held for the keeper's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise
    return handle


def _cgroup_name(directory: str) -> str:
    return f"qrt-{os.path.basename(directory)}"


class JobHandle:
    """One job's connection to the zygote: start, signal, and learn how it ended."""

    def __init__(self, path: str | None = None, *, while_waiting: Callable[[], None] = lambda: None) -> None:
        path = path or socket_path
        if not path:
            raise SandboxUnavailableError("this process has no job zygote (not started by qruntime worker)")
        self.sock = _connect(path, while_waiting)
        self.pid = 0
        self.uid = 0
        self.layers: dict[str, str] = {}

    def start(self, *, spec_fd: int, messages: int, stdout: int, stderr: int, program: int, job_id: str) -> None:
        zygote_protocol.send(self.sock, {"op": zygote_protocol.OP_START, "job": job_id},
                             [spec_fd, messages, stdout, stderr, program])
        reply, fds = zygote_protocol.receive(self.sock)
        for fd in fds:
            os.close(fd)
        if reply is None:
            raise SandboxUnavailableError("the job zygote stopped before the job started")
        if reply.get("op") == zygote_protocol.OP_REFUSED:
            raise SandboxUnavailableError(str(reply.get("message")))
        self.pid, self.uid = int(reply["pid"]), int(reply["uid"])
        self.layers = {str(k): str(v) for k, v in dict(reply.get("layers") or {}).items()}

    def signal(self, signum: int) -> None:
        with contextlib.suppress(OSError):
            zygote_protocol.send(self.sock, {"op": zygote_protocol.OP_SIGNAL, "signal": int(signum)})

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_exit(self) -> dict[str, Any] | None:
        """The ``exited`` message once it has come; None if the zygote went away first."""
        message, fds = zygote_protocol.receive(self.sock)
        for fd in fds:
            os.close(fd)
        if message is None or message.get("op") != zygote_protocol.OP_EXITED:
            return None
        return message

    def close(self) -> None:
        self.sock.close()


def _connect(path: str, while_waiting: Callable[[], None]) -> socket.socket:
    """Connect, waiting for a zygote that is (re)starting; ``while_waiting`` runs about once a second."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    next_call = time.monotonic() + 1.0
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() >= deadline:
                raise SandboxUnavailableError(
                    f"no job zygote answered at {path} within {CONNECT_TIMEOUT_S:.0f} s") from None
            if time.monotonic() >= next_call:
                while_waiting()
                next_call = time.monotonic() + 1.0
            time.sleep(0.05)


def sealed_spec(text: str) -> int:
    """A read-only memfd holding ``text``: the job's spec, which the zygote passes on unread."""
    fd = os.memfd_create("qruntime-job-spec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    data = text.encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    import fcntl

    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    return fd


def program_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
