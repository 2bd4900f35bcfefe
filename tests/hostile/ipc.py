"""A hostile program: leaves System V shared memory, a message queue and semaphores behind.

They outlive a process by design; without an IPC namespace of the job's own
they would stay on the host, owned by the job's uid, after the job.
"""
import ctypes

IPC_PRIVATE, IPC_CREAT = 0, 0o1000


def main(backend, user_messenger, **kwargs):
    libc = ctypes.CDLL(None, use_errno=True)
    made = {
        "shm": libc.shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0o666),
        "msg": libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o666),
        "sem": libc.semget(IPC_PRIVATE, 4, IPC_CREAT | 0o666),
    }
    return {kind: ident if ident >= 0 else f"error {ctypes.get_errno()}" for kind, ident in made.items()}
