"""A hostile program: tries every way out of its sandbox and reports what worked.

Each probe records ``"ok"`` or the error it met; the test decides which must fail.
"""
import ctypes
import errno
import os
import re
import socket

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
PTRACE_ATTACH = 16
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS = 0x10000000, 0x40000000, 0x00020000


def attempt(action):
    try:
        value = action()
        return "ok" if value is None else value
    except OSError as exc:
        return f"error: {errno.errorcode.get(exc.errno, exc.errno)}"
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}: {exc}"


def call(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def read(path, size=4096):
    with open(path, "rb") as handle:
        return handle.read(size).decode("latin-1")


def scan_own_memory(patterns):
    """Every match of ``patterns`` in this process's readable memory."""
    found = set()
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            for offset in range(start, end, 1 << 24):
                try:
                    mem.seek(offset)
                    chunk = mem.read(min(1 << 24, end - offset))
                except (OSError, ValueError, OverflowError):
                    break
                for pattern in patterns:
                    found.update(m.decode("latin-1") for m in pattern.findall(chunk))
    return sorted(found)


def main(backend, user_messenger, files=(), dirs=(), worker_pids=(), sockets=(), marker="m", **kwargs):
    report = {"uid": os.getuid(), "pid": os.getpid()}
    report["read"] = {path: attempt(lambda p=path: read(p)[:0] or "ok") for path in files}
    report["list"] = {path: attempt(lambda p=path: sorted(os.listdir(p))[:0] or "ok") for path in dirs}
    visible = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    report["visible_pids"] = visible
    report["worker_proc"] = {}
    for pid in worker_pids:
        report["worker_proc"][str(pid)] = {
            name: attempt(lambda n=name, p=pid: read(f"/proc/{p}/{n}", 1 << 16)[:0] or "ok")
            for name in ("environ", "mem", "maps", "cmdline")
        }
        report["worker_proc"][str(pid)]["cmdline_text"] = attempt(lambda p=pid: read(f"/proc/{p}/cmdline", 1 << 16))
        report["worker_proc"][str(pid)]["signal"] = attempt(lambda p=pid: os.kill(p, 0))
        report["worker_proc"][str(pid)]["ptrace"] = attempt(
            lambda p=pid: call(libc.ptrace(PTRACE_ATTACH, p, None, None), "ptrace"))
        report["worker_proc"][str(pid)]["setns"] = attempt(
            lambda p=pid: call(libc.setns(os.open(f"/proc/{p}/ns/net", os.O_RDONLY), 0), "setns"))
    report["secrets_in_memory"] = scan_own_memory([
        re.compile(rb"redis://[\w.:@%-]+:\d+"), re.compile(rb"qrt_[A-Za-z0-9_-]{20,}"),
        re.compile(rb"requirepass [A-Za-z0-9]{16,}"),
    ])
    report["net"] = {
        "inet": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        "inet6": attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()),
        "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()),
        "unix": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
    }
    report["zygote"] = {}
    for path in sockets:
        def connect(p=path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
                sock.connect(p)
        report["zygote"][path] = attempt(connect)
    report["unshare_user"] = attempt(lambda: call(libc.unshare(CLONE_NEWUSER), "unshare"))
    report["unshare_net"] = attempt(lambda: call(libc.unshare(CLONE_NEWNET), "unshare"))
    report["mount_tmpfs"] = attempt(lambda: call(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None), "mount"))
    report["devices"] = {d: attempt(lambda d=d: os.close(os.open(d, os.O_RDONLY)))
                         for d in ("/dev/kmsg", "/dev/kvm", "/dev/fuse", "/dev/mem", "/dev/sda", "/dev/vda")}
    writes = {}
    for folder in ("/root", "/etc", "/usr", "/var/tmp", "/dev/shm", "/tmp", "/", os.path.expanduser("~"), *dirs):
        def write(f=folder):
            with open(os.path.join(f, f"qrt-hostile-{marker}"), "w") as handle:
                handle.write("left behind")
        writes[folder] = attempt(write)
    report["writes"] = writes
    return report
