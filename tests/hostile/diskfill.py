"""A hostile program: writes into its scratch (and /tmp) until a write fails."""
import os


def main(backend, user_messenger, where=".", chunk_mb=8, **kwargs):
    written, error = 0, None
    block = b"x" * (chunk_mb << 20)
    try:
        with open(os.path.join(where, "filler"), "wb") as handle:
            while written < (64 << 30):
                handle.write(block)
                handle.flush()
                written += len(block)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {"written": written, "error": error}
