"""The program's side of the fork: confine the process, then run ``main``.

Runs in the child the supervisor forks for each job. Before any program code
runs it: leaves the worker's process group (so the whole tree can be killed),
asks the kernel to kill it if the supervisor dies, closes every inherited
descriptor but its pipes (no Redis or broker socket is reachable), replaces the
environment with a minimal one (no ``QRT_*`` secrets), moves into a fresh
temporary directory, and sets resource limits. ``run_child`` never returns.
"""

from __future__ import annotations

import ctypes
import dataclasses
import faulthandler
import io
import json
import logging
import os
import resource
import signal
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from workers import frames
from workers.isolation import isolate_network
from workers.messenger import PipeLogHandler, UserMessenger

#: Environment a program sees. Everything else of the worker's environment is dropped.
PROGRAM_ENV_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Qiskit's Rust thread pool does not survive fork; this makes it run serially after one.
FORK_SAFE_ENV = {"QISKIT_IN_PARALLEL": "TRUE"}
_PR_SET_PDEATHSIG = 1
#: Extra CPU seconds past max_execution_time before the kernel's own limit fires.
CPU_LIMIT_SLACK_S = 60


@dataclasses.dataclass(frozen=True)
class ChildSpec:
    """Everything the child needs, decided by the supervisor before the fork."""

    source_path: Path
    params: str
    log_level: str
    workdir: Path
    memory_bytes: int
    max_open_files: int
    cpu_seconds: int
    message_fd: int
    stdout_fd: int
    stderr_fd: int
    isolate_network: bool = True


def run_child(spec: ChildSpec, backend: Any) -> None:
    """Confine this process and run the program; exits the process, never returns."""
    code = 1
    try:
        _confine(spec)
        code = _run_program(spec, backend)
    except BaseException:  # noqa: BLE001 - report anything, then die
        try:
            frames.write_frame(spec.message_fd, frames.ERROR, traceback.format_exc())
        except Exception:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _confine(spec: ChildSpec) -> None:
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_DFL)
    os.dup2(spec.stdout_fd, 1)
    os.dup2(spec.stderr_fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    keep = sorted({0, 1, 2, spec.message_fd})
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, _max_fd())
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 is /dev/null now; no new descriptor
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    faulthandler.enable(file=sys.stderr)

    environ = {k: os.environ[k] for k in PROGRAM_ENV_PASSTHROUGH if k in os.environ}
    os.environ.clear()
    os.environ.update(environ)
    os.environ.update(FORK_SAFE_ENV)
    os.environ.update({"HOME": str(spec.workdir), "TMPDIR": str(spec.workdir), "PYTHONHASHSEED": "random"})
    os.chdir(spec.workdir)
    if spec.isolate_network:
        refused = isolate_network()
        if refused:
            print(f"qruntime: this job runs with the host's network: {refused}", file=sys.stderr)

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _lower_limit(resource.RLIMIT_AS, spec.memory_bytes)
    _lower_limit(resource.RLIMIT_NOFILE, spec.max_open_files)
    _lower_limit(resource.RLIMIT_CPU, spec.cpu_seconds)


def _run_program(spec: ChildSpec, backend: Any) -> int:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level = logging.getLevelName(spec.log_level.upper())
    root.addHandler(PipeLogHandler(spec.message_fd, level if isinstance(level, int) else logging.WARNING))
    root.setLevel(level if isinstance(level, int) else logging.WARNING)
    logging.captureWarnings(False)

    from qiskit_ibm_runtime.json import RuntimeDecoder, RuntimeEncoder

    inputs = json.loads(spec.params, cls=RuntimeDecoder)
    if not isinstance(inputs, dict):
        raise TypeError(f"Program inputs must be a JSON object, not {type(inputs).__name__}.")
    main = _load_main(spec.source_path)
    messenger = UserMessenger(spec.message_fd)
    result = main(backend, messenger, **inputs)
    if result is None and messenger.final_published:
        return 0
    text = result if isinstance(result, str) else json.dumps(result, cls=RuntimeEncoder)
    frames.write_frame(spec.message_fd, frames.RETURN, text)
    return 0


def _load_main(source_path: Path) -> Any:
    """Execute the program's file as a fresh module and return its ``main``."""
    source = source_path.read_text()
    sys.path.insert(0, str(source_path.parent))
    module = types.ModuleType("__qruntime_program__")
    module.__file__ = str(source_path)
    sys.modules[module.__name__] = module
    exec(compile(source, str(source_path), "exec"), module.__dict__)  # noqa: S102 - running it is the point
    main = getattr(module, "main", None)
    if not callable(main):
        raise AttributeError(f"Program {source_path.name} has no main(backend, user_messenger, **kwargs).")
    return main


def _lower_limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if value <= 0:
        return
    new_hard = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (new_hard, new_hard))


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536
