"""The program's side: a confined, ready child receives its job and runs ``main``.

By the time :func:`run_job` is called the process is already confined
(``workers.ready_child``): its own uid, namespaces, filesystem, limits and
seccomp filter. What is left is the job's own business: read the spec from
the descriptor the supervisor sealed it in, put the program's files in place,
wire stdout/stderr to the supervisor's pipes, close everything else, set the
CPU limit for this job, and call ``main``. ``run_job`` never returns.
"""

from __future__ import annotations

import faulthandler
import io
import json
import logging
import os
import stat
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from workers import frames
from workers.confinement import SCRATCH, close_fds_except, lower_cpu_seconds
from workers.messenger import PipeLogHandler, UserMessenger

#: Environment a program sees. Everything else of the worker's environment is dropped.
PROGRAM_ENV_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Qiskit's Rust thread pool does not survive fork; this makes it run serially after one.
FORK_SAFE_ENV = {"QISKIT_IN_PARALLEL": "TRUE"}
#: Extra CPU seconds past max_execution_time before the kernel's own limit fires.
CPU_LIMIT_SLACK_S = 60
#: Where an uploaded program's files are copied, inside the job's scratch.
PROGRAM_DIR_NAME = ".program"
#: Bounds on what is copied for a program (its upload was bounded too; this guards the copy).
MAX_PROGRAM_FILES = 10_000
MAX_PROGRAM_BYTES = 256 * 1024 * 1024
#: The module name a program's file is executed as.
PROGRAM_MODULE = "__qruntime_program__"
_SPEC_MAX_BYTES = 1 << 31


def run_job(fds: dict[str, int], scratch: str) -> None:
    """Run the job handed over in ``fds`` (see ``workers.zygote_protocol.JOB_FDS``); exits."""
    message_fd = fds["messages"]
    code = 1
    try:
        spec = json.loads(_read_all(fds.pop("spec")))
        _wire_stdio(fds["stdout"], fds["stderr"])
        source = _place_program(spec, fds.pop("program"), scratch)
        close_fds_except({0, 1, 2, message_fd})
        _set_environment(scratch)
        lower_cpu_seconds(int(spec["cpu_seconds"]))
        code = _run_program(source, spec, message_fd)
    except BaseException:  # noqa: BLE001 - report anything, then die
        _flush_output()
        try:
            frames.write_frame(message_fd, frames.ERROR, traceback.format_exc())
        except Exception:
            pass
    finally:
        _flush_output()
        os._exit(code)


def rehearse(scratch: str, backends: tuple[str, ...]) -> None:
    """Run a small program the way a job runs, before any job arrives, and leave no trace of it.

    A ready child shares the zygote's memory until it writes to it; the first
    write to each page (Python writes reference counts on every object it
    touches) copies it. Setting up logging, decoding inputs, compiling and
    running a ``main`` that publishes, logs and returns once here (into
    /dev/null) moves those copies out of the time between a job's claim and
    its ``main``.
    """
    path = Path(scratch) / REHEARSAL_FILE
    path.write_text(_REHEARSAL_SOURCE)
    sink = os.open(os.devnull, os.O_WRONLY)
    saved_path = list(sys.path)
    try:
        spec = {"params": _REHEARSAL_PARAMS, "log_level": "INFO", "backend": backends[0] if backends else None}
        _run_program(path, spec, sink)
    finally:
        os.close(sink)
        path.unlink()
        sys.path[:] = saved_path
        sys.modules.pop(PROGRAM_MODULE, None)
        logging.Logger.manager.loggerDict.pop(PROGRAM_MODULE, None)
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)


REHEARSAL_FILE = ".rehearsal.py"
_REHEARSAL_PARAMS = '{"n": 2, "x": [0.5, 1.5], "z": {"__type__": "complex", "__value__": [1.0, 2.0]}}'
_REHEARSAL_SOURCE = """
import logging


def main(backend, user_messenger, n=1, **kwargs):
    logging.getLogger(__name__).info("rehearsal %s", n)
    user_messenger.publish({"n": n, "kwargs": kwargs})
    return {"n": n}
"""


def _flush_output() -> None:
    """Whatever the program printed reaches its pipe before the frame that ends the job."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
        if sum(map(len, chunks)) > _SPEC_MAX_BYTES:
            raise ValueError("job spec too large")
    os.close(fd)
    return b"".join(chunks)


def _wire_stdio(stdout_fd: int, stderr_fd: int) -> None:
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 is /dev/null now; no new descriptor
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    faulthandler.enable(file=sys.stderr)


def _set_environment(scratch: str) -> None:
    environ = {k: os.environ[k] for k in PROGRAM_ENV_PASSTHROUGH if k in os.environ}
    os.environ.clear()
    os.environ.update(environ)
    os.environ.update(FORK_SAFE_ENV)
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PYTHONHASHSEED": "random"})
    os.chdir(scratch)


def _place_program(spec: dict[str, Any], program_fd: int, scratch: str) -> Path:
    """The path of the program's entry file, readable here.

    Built-in programs are bound read-only into the job's filesystem at their
    own path; anything else (uploads, or any program where no mount namespace
    could be had) is copied from the descriptor into the scratch. The
    descriptor is closed before program code runs: it must not be a way back
    into the worker's program cache.
    """
    try:
        bound = spec.get("host_path")
        if bound and os.path.isfile(bound) and os.access(bound, os.R_OK) and scratch == SCRATCH:
            return Path(bound)
        target = os.path.join(scratch, PROGRAM_DIR_NAME)
        _copy_tree(program_fd, target, budget=[MAX_PROGRAM_FILES, MAX_PROGRAM_BYTES])
        return Path(target) / spec["entry"]
    finally:
        os.close(program_fd)


def _copy_tree(dir_fd: int, target: str, budget: list[int]) -> None:
    os.mkdir(target, 0o700)
    for name in os.listdir(dir_fd):
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        budget[0] -= 1
        if budget[0] < 0:
            raise OSError(f"the program has more than {MAX_PROGRAM_FILES} files")
        if stat.S_ISDIR(info.st_mode):
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                _copy_tree(child, os.path.join(target, name), budget)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            budget[1] -= info.st_size
            if budget[1] < 0:
                raise OSError(f"the program's files exceed {MAX_PROGRAM_BYTES} bytes")
            source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                with open(os.path.join(target, name), "wb") as out:
                    while chunk := os.read(source, 1 << 20):
                        out.write(chunk)
            finally:
                os.close(source)


def _run_program(source_path: Path, spec: dict[str, Any], message_fd: int) -> int:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level = logging.getLevelName(str(spec["log_level"]).upper())
    level = level if isinstance(level, int) else logging.WARNING
    root.addHandler(PipeLogHandler(message_fd, level))
    root.setLevel(level)
    logging.captureWarnings(False)

    from workers.backends import get_backend
    from workers.wire_format import RuntimeDecoder, RuntimeEncoder

    inputs = json.loads(spec["params"], cls=RuntimeDecoder)
    if not isinstance(inputs, dict):
        raise TypeError(f"Program inputs must be a JSON object, not {type(inputs).__name__}.")
    backend = get_backend(spec["backend"]) if spec["backend"] else None
    main = _load_main(source_path)
    messenger = UserMessenger(message_fd, checkpoint=spec.get("checkpoint"),
                              **({"max_checkpoint_bytes": int(spec["max_checkpoint_bytes"])}
                                 if "max_checkpoint_bytes" in spec else {}))
    result = main(backend, messenger, **inputs)
    if result is None and messenger.final_published:
        _flush_output()
        frames.write_frame(message_fd, frames.DONE, "")
        return 0
    text = result if isinstance(result, str) else json.dumps(result, cls=RuntimeEncoder)
    _flush_output()
    frames.write_frame(message_fd, frames.RETURN, text)
    return 0


def _load_main(source_path: Path) -> Any:
    """Execute the program's file as a fresh module and return its ``main``."""
    source = source_path.read_text()
    sys.path.insert(0, str(source_path.parent))
    module = types.ModuleType(PROGRAM_MODULE)
    module.__file__ = str(source_path)
    sys.modules[module.__name__] = module
    exec(compile(source, str(source_path), "exec"), module.__dict__)  # noqa: S102 - running it is the point
    main = getattr(module, "main", None)
    if not callable(main):
        raise AttributeError(f"Program {source_path.name} has no main(backend, user_messenger, **kwargs).")
    return main
