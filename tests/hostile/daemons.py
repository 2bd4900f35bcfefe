"""A hostile program: a 12-deep chain of daemons in sessions of their own, outliving it."""
import os
import time


def main(backend, user_messenger, depth=12, **kwargs):
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        for level in range(depth):
            if os.fork():
                os._exit(0)  # each level's parent leaves; its child goes on in a new session
            os.setsid()
            if level == depth - 1:
                os.write(write_end, b"ready")
        os.close(write_end)
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(600)
        os._exit(0)
    os.close(write_end)
    os.read(read_end, 5)
    return "daemons left behind"
