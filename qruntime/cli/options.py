"""What every client-side command shares: where the API is, who you are, how to print, how to fail."""

from __future__ import annotations

import argparse
import sys


def connection_options() -> argparse.ArgumentParser:
    """A parent parser with ``--url``, ``--token`` and ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None,
                        help="API URL (default $QRT_URL, saved account, http://127.0.0.1:8000)")
    common.add_argument("--token", default=None, help="bearer token (default $QRT_TOKEN, saved account)")
    common.add_argument("--json", action="store_true", help="print JSON for machines")
    return common


def is_client_error(exc: BaseException) -> bool:
    """True for the client's own failures (the seed's exception tree), False for bugs.

    Any such exception was raised after :mod:`qruntime.exceptions` was imported, so
    looking it up here costs nothing and never imports qiskit.
    """
    exceptions = sys.modules.get("qruntime.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.QiskitError)


def failure_text(exc: BaseException) -> str:
    """One line for a failed command: the server's own sentence when it answered, else the message."""
    status_code = getattr(exc, "status_code", 0)
    detail = getattr(exc, "detail", "")
    if isinstance(status_code, int) and status_code > 0 and detail:
        return str(detail)
    return getattr(exc, "message", None) or str(exc)
