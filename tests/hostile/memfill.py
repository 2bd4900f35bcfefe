"""A hostile program: holds memory in several processes at once, each under the per-process limit."""
import os
import time


def main(backend, user_messenger, processes=4, mb_each=700, **kwargs):
    if processes == 1:
        held = bytearray(mb_each << 20)  # one process past the per-process limit: MemoryError
        return len(held)
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            held = bytearray(mb_each << 20)
            for i in range(0, len(held), 4096):
                held[i] = 1
            time.sleep(600)
            os._exit(0)
        children.append(pid)
    time.sleep(30)
    return "held"
