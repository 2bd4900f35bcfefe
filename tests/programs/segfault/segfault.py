import ctypes


def main(backend, user_messenger, **kwargs):
    ctypes.string_at(0)
