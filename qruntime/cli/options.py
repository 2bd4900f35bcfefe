"""Options every client-side command shares: where the API is, who you are, how to print."""

from __future__ import annotations

import argparse


def connection_options() -> argparse.ArgumentParser:
    """A parent parser with ``--url``, ``--token`` and ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None,
                        help="API URL (default $QRT_URL, saved account, http://127.0.0.1:8000)")
    common.add_argument("--token", default=None, help="bearer token (default $QRT_TOKEN, saved account)")
    common.add_argument("--json", action="store_true", help="print JSON for machines")
    return common
