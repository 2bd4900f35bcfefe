import os
import subprocess
import time


def main(backend, user_messenger, wait=False, **kwargs):
    grandchild = subprocess.Popen(["sleep", "300"])  # inherits stdout/stderr: the job's pipes
    user_messenger.publish({"pid": os.getpid(), "grandchild": grandchild.pid})
    while wait:
        time.sleep(0.1)
    return "left a grandchild behind"
