import socket


def main(backend, user_messenger, host="127.0.0.1", port=6379, **kwargs):
    try:
        with socket.create_connection((host, port), timeout=2):
            return {"connected": True, "error": None}
    except OSError as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}
