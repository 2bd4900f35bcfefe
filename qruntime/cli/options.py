"""What every client-side command shares: where the API is, who you are, how to print, how to fail.

The conventions it fixes for every command: a failure is one line, ``qruntime:
<sentence>``, on stderr with exit status 1 (:func:`fail`); ``--json`` output is
UTF-8 JSON (:func:`print_json`); a time is shown as ISO 8601 in the user's time
zone (:func:`local_time`); every option has help that names its default
(:class:`HelpFormatter`), and an old spelling stays as a hidden alias
(:func:`add_deprecated_alias`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

#: What every failure line starts with.
ERROR_PREFIX = "qruntime: "


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, adding ``(default: X)`` to an option's help when the help does not say it.

    Unlike ``ArgumentDefaultsHelpFormatter`` it leaves flags and options whose
    default is None alone (their help says in words what happens by default).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if ("default" in help_text or action.nargs == 0 or action.default in (None, argparse.SUPPRESS)
                or not action.option_strings):
            return help_text
        return help_text + " (default: %(default)s)"


def connection_options() -> argparse.ArgumentParser:
    """A parent parser with ``--url``, ``--token`` and ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None,
                        help="API URL (default $QRT_URL, saved account, http://127.0.0.1:8000)")
    common.add_argument("--token", default=None, help="bearer token (default $QRT_TOKEN, saved account)")
    common.add_argument("--json", action="store_true", help="print JSON for machines (default: text for people)")
    return common


class _DeprecatedAlias(argparse.Action):
    """Stores like the option it stands for, and says on stderr which spelling to use instead."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str = "", **kwargs: Any) -> None:
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{ERROR_PREFIX}{option_string} is deprecated; use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, **kwargs: Any) -> None:
    """Accept ``old`` as a hidden spelling of the option ``new`` (same ``dest`` and type)."""
    target = next(a for a in parser._actions if new in a.option_strings)
    parser.add_argument(old, dest=target.dest, type=target.type, metavar=target.metavar,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, action=_DeprecatedAlias,
                        replacement=new, **kwargs)


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


def fail(message: str) -> int:
    """Print ``qruntime: <message>`` on stderr; the exit status of a failed command (1)."""
    print(ERROR_PREFIX + " ".join(message.split()), file=sys.stderr, flush=True)
    return 1


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, non-ASCII characters as themselves, in UTF-8 whatever the locale."""
    _write_utf8(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def print_json_line(value: Any) -> None:
    """``value`` as one line of JSON (a JSON Lines record), flushed at once, in UTF-8."""
    _write_utf8(json.dumps(value, ensure_ascii=False) + "\n")


def _write_utf8(text: str) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # stdout replaced by a text stream (an embedding program, a test)
        sys.stdout.write(text)
    else:
        buffer.write(text.encode("utf-8"))
        buffer.flush()


def local_time(value: str | float | None) -> str:
    """An API time (ISO 8601 in UTC, or Unix seconds) as ISO 8601 in the user's time zone, to the second.

    Anything that is not a time comes back as it was, so a changed wire format shows
    instead of failing the command.
    """
    if value is None or value == "":
        return ""
    try:
        if isinstance(value, (int, float)):
            moment = datetime.fromtimestamp(value, timezone.utc)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone().isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)
