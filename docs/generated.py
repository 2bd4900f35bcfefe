"""What the page generators (docs/gen_*.py) share: write the page, or check it is current."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(output: Path, text: str, script: str, argv: list[str]) -> int:
    """Write ``text`` to ``output``; with ``--check`` in ``argv``, exit 1 (saying how to fix it) if stale."""
    root = output.parent.parent
    if "--check" in argv:
        if not output.exists() or output.read_text() != text:
            print(f"{output.relative_to(root)} is stale: run python {script}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    print(f"wrote {output.relative_to(root)}")
    return 0
