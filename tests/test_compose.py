"""docker-compose.yml cannot be started here (no Docker engine): check it by reading.

It must parse, run Redis with AOF on a volume, and start the API, the workers
and Flower with the commands this repository actually provides.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from qruntime.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_redis_with_append_only_file_on_a_volume() -> None:
    redis = _compose()["services"]["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_compose_api_and_worker_use_real_qruntime_subcommands() -> None:
    services = _compose()["services"]
    parser = build_parser()
    for name in ("api", "worker"):
        command = services[name]["command"]
        assert command[0] == "qruntime"
        args = parser.parse_args(command[1:])
        assert args.command == name
        assert services[name]["environment"]["QRT_REDIS_URL"].startswith("redis://redis:")


def test_compose_worker_is_scalable_and_flower_watches_the_worker_app() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale needs both absent
    assert services["flower"]["command"][:3] == ["celery", "-A", "workers.app"]
    assert "flower" in services["flower"]["command"]


def test_dockerfile_copies_every_package_the_services_import() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("orchestrator", "workers", "api", "qruntime", "programs"):
        assert f"COPY {package} " in dockerfile
