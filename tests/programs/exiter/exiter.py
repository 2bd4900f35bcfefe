import os


def main(backend, user_messenger, code=3, **kwargs):
    print("leaving abruptly", flush=True)
    os._exit(code)
