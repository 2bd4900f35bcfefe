# PYTHON_ARGCOMPLETE_OK
"""The ``qruntime`` command: the console script's entry point, and ``python -m qruntime``.

The marker above tells argcomplete's global completion that this command answers
completion requests: when the shell asks (``_ARGCOMPLETE`` is set, by the code that
``qruntime completion bash|zsh`` prints), argcomplete answers from the command's
parser and exits before any command runs. argcomplete is imported only then.
"""

from __future__ import annotations

import os
import sys

from qruntime import cli


def main() -> int:
    if os.environ.get("_ARGCOMPLETE"):
        try:
            import argcomplete
        except ImportError:
            return 1  # no completions, rather than running a command the shell did not ask for
        argcomplete.autocomplete(cli.build_parser())
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
