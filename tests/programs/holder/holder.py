import os
import time


def main(backend, user_messenger, **kwargs):
    user_messenger.publish({"pid": os.getpid()})
    while True:
        time.sleep(0.1)
