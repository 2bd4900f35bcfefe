"""The ``qruntime`` command line.

Each command group registers its subcommands from its own module; heavy imports
(qiskit, the encoder, Flask, Celery) happen inside the commands that need them,
so ``qruntime --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from qruntime import __version__
from qruntime.cli import admin, client, login, publishing, server

#: Modules that add subcommands: each has ``register(subparsers)``.
COMMAND_MODULES = [server, client, publishing, admin, login]


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the CLI's one format: ``qruntime: <sentence>``.

    They exit 2 (a usage error, as argparse and the shell's own tools do), and name
    the help to read instead of printing the whole usage.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"qruntime: {message[:1].upper()}{message[1:]}; see '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="qruntime",
        description="qruntime: run quantum programs as jobs beside their backend.",
    )
    parser.add_argument("--version", action="version", version=f"qruntime {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
