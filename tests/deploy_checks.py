"""What docker-compose.yml and deploy/k8s must both get right, checked the same way.

``tests/test_compose.py`` and ``tests/test_k8s.py`` read a deployment's files (neither
Docker nor a cluster can be had here) and hold them to one standard: commands that this
repository really provides, settings that qruntime really reads, the worker's exact
capabilities, no secret written down.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from orchestrator.backends import find_backend
from orchestrator.settings import ENV_PREFIX, Settings
from qruntime.cli import build_parser
from qruntime.cli.server import flower_command

ROOT = Path(__file__).resolve().parent.parent
#: What the worker's zygote needs to hand jobs their own uids (docs/sandbox.md says why).
WORKER_CAPABILITIES = frozenset({"SETUID", "SETGID", "CHOWN", "KILL", "SETPCAP"})
#: Grace a worker gives running jobs on SIGTERM before it hands them back (issue 10's default).
HAND_BACK_GRACE_S = 30
#: Environment names that are not qruntime settings but which a deployment may set, and who reads them.
FOREIGN_ENV = {
    "FLOWER_BASIC_AUTH": "Flower's login (Flower reads FLOWER_* options)",
    "REDISCLI_AUTH": "redis-cli's password, for the Redis healthcheck",
    "REDIS_PASSWORD": "the Redis container's password, written into its config file",
}
#: Names that say a value is a secret.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH")


def known_settings() -> set[str]:
    """Every ``QRT_*`` variable qruntime reads (a misspelt one would be silently ignored)."""
    return {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}


def unknown_env_names(names: Sequence[str]) -> set[str]:
    """The names in ``names`` that neither qruntime nor a known foreign reader uses."""
    return set(names) - known_settings() - set(FOREIGN_ENV)


def parse_qruntime_command(argv: Sequence[str]):  # noqa: ANN201 - argparse.Namespace
    """Parse ``qruntime ...`` with the real CLI parser; fails (SystemExit) on anything it lacks."""
    assert argv[0] == "qruntime", argv
    return build_parser().parse_args(list(argv[1:]))


def is_flower_command(argv: Sequence[str]) -> bool:
    """``celery -A workers.app flower ...``, as ``qruntime up --flower`` runs it."""
    expected = flower_command("127.0.0.1", 5555)[2:6]  # without "python -m"
    return list(argv[:4]) == expected


def queues_of(backends: str) -> set[str]:
    """The Celery queues ``qruntime worker --backends <backends>`` consumes."""
    return {find_backend(name.strip()).queue for name in backends.split(",") if name.strip()}


def strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML document, keys and values."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def redis_passwords(text: str) -> list[str]:
    """The password part of every ``redis://user:password@`` URL in ``text``."""
    return re.findall(r"rediss?://[^:@/\s]*:([^@\s]*)@", text)


def duration_s(value: str | int) -> float:
    """A compose duration (``60s``, ``1m30s``) or a number of seconds."""
    if isinstance(value, int):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", value)
    assert parts and "".join(a + u for a, u in parts) == value, value
    return sum(float(amount) * units[unit] for amount, unit in parts)
