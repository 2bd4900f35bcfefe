import subprocess


def main(backend, user_messenger, **kwargs):
    grandchild = subprocess.Popen(["sleep", "300"], start_new_session=True, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
    user_messenger.publish({"grandchild": grandchild.pid})
    return "escaped"
