"""A hostile program: forks until the kernel refuses, and leaves every child running."""
import os
import time


def main(backend, user_messenger, limit=5000, **kwargs):
    started, error = 0, None
    for _ in range(limit):
        try:
            pid = os.fork()
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        started += 1
    return {"started": started, "error": error}
