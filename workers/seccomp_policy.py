"""The system calls a program's process may not make, as a libseccomp filter.

The filter is the layer that holds in every setup, including a worker without
CAP_SYS_ADMIN where no namespace can be made: it is why a program has no
network even when it shares the host's (``socket()`` of any family but AF_UNIX
fails), and why it cannot reach into other processes or out of its namespaces
(ptrace, process_vm_*, setns, unshare, mount ...). Everything not named here is
allowed: a denylist, like Docker's default profile, because numpy, Aer's OpenMP
and Python itself use a wide and changing set of calls. Denied calls fail with
an errno the program sees (it can catch the OSError); calls of another
architecture (x32, i386) kill the process, libseccomp's default.
"""

from __future__ import annotations

import errno
import socket

#: Namespace flags of clone(2): a program may fork and start threads, not make namespaces.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
NAMESPACE_FLAGS = (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                   CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME)

#: Reaching into other processes: reading or writing their memory, stealing their descriptors.
PROCESS_ACCESS = ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd")
#: Changing what the filesystem looks like, or which namespaces this process is in.
NAMESPACE_ESCAPE = ("mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig",
                    "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
                    "open_by_handle_at", "name_to_handle_at")
#: The kernel's own attack surface and machine-wide state, never needed by a program.
KERNEL_SURFACE = ("bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
                  "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
                  "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "lookup_dcookie",
                  "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
                  "sethostname", "setdomainname", "vhangup", "uselib", "nfsservctl",
                  # io_uring performs socket and file operations that seccomp never sees.
                  "io_uring_setup", "io_uring_enter", "io_uring_register")
#: Every call the filter refuses outright, whatever the arguments.
DENIED = PROCESS_ACCESS + NAMESPACE_ESCAPE + KERNEL_SURFACE


def program_filter(*, allow_network: bool):
    """The filter for a program's process; ``.load()`` it once, as the last step of confinement.

    Args:
        allow_network: True when the operator chose ``QRT_JOB_NETWORK=host``; then
            sockets of every family stay allowed.
    """
    import pyseccomp as seccomp

    policy = seccomp.SyscallFilter(seccomp.ALLOW)
    refuse = seccomp.ERRNO(errno.EPERM)
    for name in DENIED:
        _add(policy, refuse, name)
    for flag in NAMESPACE_FLAGS:
        _add(policy, refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory, where a filter cannot look; glibc falls back to clone.
    _add(policy, seccomp.ERRNO(errno.ENOSYS), "clone3")
    if not allow_network:
        no_family = seccomp.ERRNO(errno.EAFNOSUPPORT)
        for name in ("socket", "socketpair"):
            _add(policy, no_family, name, seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    return policy


def sockets_filter():
    """Only the socket-family rule: the zygote's own filter (its children still need mount and unshare)."""
    import pyseccomp as seccomp

    policy = seccomp.SyscallFilter(seccomp.ALLOW)
    no_family = seccomp.ERRNO(errno.EAFNOSUPPORT)
    for name in ("socket", "socketpair"):
        _add(policy, no_family, name, seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    return policy


def namespace_refusal_filter():
    """What Docker's default profile does to a worker without CAP_SYS_ADMIN: no new namespaces.

    Used by the tests (and operators) to run a worker the way Docker would.
    """
    import pyseccomp as seccomp

    policy = seccomp.SyscallFilter(seccomp.ALLOW)
    refuse = seccomp.ERRNO(errno.EPERM)
    for name in ("unshare", "setns", "mount", "umount2", "pivot_root"):
        _add(policy, refuse, name)
    for flag in NAMESPACE_FLAGS:
        _add(policy, refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    _add(policy, seccomp.ERRNO(errno.ENOSYS), "clone3")
    return policy


def _add(policy, action: int, name: str, *args) -> None:
    try:
        policy.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError):  # a call this kernel or architecture does not have
        pass
