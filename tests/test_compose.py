"""docker-compose.yml cannot be started here (no Docker engine): check it by reading.

It must parse, run Redis with AOF on a volume and a password, and start the API,
the workers and Flower with the commands this repository actually provides, each
with no more privilege than it needs: the worker keeps exactly the capabilities
its job sandbox uses (docs/sandbox.md), the others none.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from orchestrator.settings import ENV_PREFIX, Settings
from qruntime.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
#: The services that run the qruntime image (Redis is the only other one).
QRUNTIME_SERVICES = ("api", "worker", "flower")
#: What the worker's zygote needs to hand jobs their own uids, and why, is in the compose file.
WORKER_CAPABILITIES = {"SETUID", "SETGID", "CHOWN", "KILL", "SETPCAP"}
REDIS_URL = "redis://:${QRT_REDIS_PASSWORD}@redis:6379/0"
#: A compose variable and nothing else, e.g. ``${QRT_REDIS_PASSWORD}`` or ``${X:?message}``.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _is_variable(value: str) -> bool:
    return INTERPOLATION.fullmatch(value) is not None


def _strings(node: Any) -> Iterator[str]:
    """Every string in the compose file, keys and values."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


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
        assert services[name]["environment"]["QRT_REDIS_URL"] == REDIS_URL


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


def test_redis_refuses_to_start_without_a_password_and_its_healthcheck_authenticates() -> None:
    redis = _compose()["services"]["redis"]
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${QRT_REDIS_PASSWORD:?") and _is_variable(password)
    assert redis["environment"]["REDISCLI_AUTH"] == "${QRT_REDIS_PASSWORD}"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_every_qruntime_service_connects_to_redis_with_the_password() -> None:
    services = _compose()["services"]
    for name in QRUNTIME_SERVICES:
        assert services[name]["environment"]["QRT_REDIS_URL"] == REDIS_URL, name


def test_no_service_holds_a_literal_secret() -> None:
    compose = _compose()
    for text in _strings(compose):
        for password in re.findall(r"redis://[^:@/]*:([^@]*)@", text):
            assert _is_variable(password), text
        if text.startswith("--basic-auth="):
            assert _is_variable(text.removeprefix("--basic-auth=")), text
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if "--requirepass" in command:
            assert _is_variable(command[command.index("--requirepass") + 1]), name
        for key, value in dict(service.get("environment", {})).items():
            if re.search("PASSWORD|SECRET|TOKEN|AUTH", key):
                assert _is_variable(str(value)), f"{name}: {key}"


def test_every_variable_compose_reads_is_documented_in_env_example_without_a_value() -> None:
    text = (ROOT / "docker-compose.yml").read_text().replace("$$", "")
    used = {match["name"] for match in INTERPOLATION.finditer(text)}
    documented = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert used == set(documented)
    assert all(value == "" for value in documented.values())  # the example holds no secret


def test_compose_sets_only_settings_that_qruntime_reads() -> None:
    known = {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}
    for name in QRUNTIME_SERVICES:
        environment = _compose()["services"][name]["environment"]
        assert set(environment) <= known, name  # a misspelt QRT_ variable is silently ignored


def test_worker_drops_every_capability_and_adds_back_only_what_its_sandbox_needs() -> None:
    worker = _compose()["services"]["worker"]
    assert worker["user"] == "0:0"
    assert worker["cap_drop"] == ["ALL"]
    assert set(worker["cap_add"]) == WORKER_CAPABILITIES
    assert len(worker["cap_add"]) == len(WORKER_CAPABILITIES)
    assert "SYS_ADMIN" not in worker["cap_add"]


def test_each_capability_of_the_worker_says_why_it_is_there() -> None:
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    for capability in WORKER_CAPABILITIES:
        assert any(re.fullmatch(rf"\s*- {capability}\s+# \S.*", line) for line in lines), capability


def test_no_service_is_privileged_or_unconfined() -> None:
    for name, service in _compose()["services"].items():
        assert not service.get("privileged", False), name
        assert "SYS_ADMIN" not in service.get("cap_add", []), name
        assert not any("unconfined" in option for option in service.get("security_opt", [])), name
        assert "pid" not in service and "network_mode" not in service, name


def test_every_qruntime_service_drops_capabilities_and_runs_on_a_read_only_root() -> None:
    services = _compose()["services"]
    for name in QRUNTIME_SERVICES:
        service = services[name]
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["read_only"] is True, name
        assert any(mount.split(":")[0] == "/tmp" for mount in service["tmpfs"]), name


def test_worker_has_sized_scratch_a_data_volume_and_host_wide_uid_leases() -> None:
    compose = _compose()
    worker = compose["services"]["worker"]
    tmpfs = {mount.split(":")[0]: mount for mount in worker["tmpfs"]}
    assert "size=" in tmpfs["/tmp"] and "/run" in tmpfs
    mounts = dict(volume.split(":")[::-1] for volume in worker["volumes"])
    assert mounts[worker["environment"]["QRT_DATA_DIR"]] in compose["volumes"]
    leases = compose["volumes"][mounts["/run/qruntime"]]
    assert leases["driver_opts"]["type"] == "tmpfs"
    assert "name" in leases  # not prefixed by the project: shared by every replica and project
    assert worker["pids_limit"] > 0 and worker["mem_limit"]
    assert worker["stop_grace_period"]


def test_api_and_flower_run_as_the_user_the_dockerfile_creates() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)[-1]
    assert f"useradd --create-home --uid 1000 {user}" in dockerfile
    services = _compose()["services"]
    for name in ("api", "flower"):
        assert services[name]["user"] == user, name


def test_every_qruntime_service_builds_the_image_it_runs() -> None:
    services = _compose()["services"]
    for name in QRUNTIME_SERVICES:
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == services["api"]["image"], name


def test_flower_requires_a_login_for_its_pages_and_its_api() -> None:
    services = _compose()["services"]
    command = services["flower"]["command"]
    assert any(arg.startswith("--basic-auth=${QRT_FLOWER_BASIC_AUTH:?") for arg in command)
    for name, service in services.items():
        assert "FLOWER_UNAUTHENTICATED_API" not in service.get("environment", {}), name


def test_api_healthcheck_asks_health_on_the_port_it_serves_with_python() -> None:
    api = _compose()["services"]["api"]
    test = api["healthcheck"]["test"]
    port = api["command"][api["command"].index("--port") + 1]
    assert test[:3] == ["CMD", "python", "-c"]  # python:3.11-slim has no curl
    assert f"http://127.0.0.1:{port}/health" in test[3]


def test_dockerfile_installs_libseccomp_and_checks_pyseccomp_loads_it() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends libseccomp2" in dockerfile
    assert 'python -c "import pyseccomp"' in dockerfile
