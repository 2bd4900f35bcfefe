"""A hostile tenant: looks for another tenant's secret in every process it can see, and tries to reach it."""
import ctypes
import errno
import os

PTRACE_ATTACH = 16


def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return f"error: {errno.errorcode.get(exc.errno, exc.errno)}"


def ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def read_memory(pid):
    with open(f"/proc/{pid}/mem", "rb") as handle:
        handle.read(1)


def main(backend, user_messenger, prefix="", pids=(), **kwargs):
    me = str(os.getpid())
    seen, found = [], []
    needle = prefix.encode() + b"-"
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        seen.append(int(pid))
        for name in ("environ", "cmdline", "mem"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as handle:
                    if needle in handle.read(1 << 20):
                        found.append(f"{pid}/{name}")
            except OSError:
                pass
    # The other tenant's job by the host pid its owner's log shows (its owner could pass it on).
    reached = {str(pid): {"signal": attempt(lambda p=pid: os.kill(p, 0)), "ptrace": attempt(lambda p=pid: ptrace(p)),
                          "mem": attempt(lambda p=pid: read_memory(p))} for pid in pids if str(pid) != me}
    return {"seen": seen, "found": found, "reached": reached}
