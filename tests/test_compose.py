"""docker-compose.yml cannot be started here (no Docker engine): check it by reading.

It must parse, run Redis with AOF on a volume and a password, and start the API,
the workers and Flower with the commands this repository actually provides, each
with no more privilege than it needs: the worker keeps exactly the capabilities
its job sandbox uses (docs/sandbox.md), the others none. What it shares with
deploy/k8s is checked by the helpers in ``tests/deploy_checks.py``; the worker's
and Flower's healthchecks are run for real against a live worker and Flower.
"""

from __future__ import annotations

import re
import socket
import subprocess

import yaml

from tests.deploy_checks import (
    HAND_BACK_GRACE_S,
    ROOT,
    WORKER_CAPABILITIES,
    duration_s,
    is_flower_command,
    parse_qruntime_command,
    redis_passwords,
    strings,
    unknown_env_names,
)
from tests.harness import Stack

#: The services that run the qruntime image (Redis is the only other one).
QRUNTIME_SERVICES = ("api", "worker", "flower")
REDIS_URL = "redis://:${QRT_REDIS_PASSWORD}@redis:6379/0"
#: A compose variable and nothing else, e.g. ``${QRT_REDIS_PASSWORD}`` or ``${X:?message}``.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _is_variable(value: str) -> bool:
    return INTERPOLATION.fullmatch(value) is not None


def test_compose_runs_redis_with_append_only_file_on_a_volume() -> None:
    redis = _compose()["services"]["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_compose_api_and_worker_use_real_qruntime_subcommands() -> None:
    services = _compose()["services"]
    for name in ("api", "worker"):
        assert parse_qruntime_command(services[name]["command"]).command == name
        assert services[name]["environment"]["QRT_REDIS_URL"] == REDIS_URL


def test_compose_worker_is_scalable_and_flower_watches_the_worker_app() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale needs both absent
    assert is_flower_command(services["flower"]["command"])


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
    for text in strings(compose):
        for password in redis_passwords(text):
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
    for name, service in _compose()["services"].items():
        # a misspelt QRT_ variable would be silently ignored
        assert not unknown_env_names(list(service.get("environment", {}))), name


def test_worker_drops_every_capability_and_adds_back_only_what_its_sandbox_needs() -> None:
    worker = _compose()["services"]["worker"]
    assert worker["user"] == "0:0"
    assert worker["cap_drop"] == ["ALL"]
    assert sorted(worker["cap_add"]) == sorted(WORKER_CAPABILITIES)  # each once, none more
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
    assert duration_s(worker["stop_grace_period"]) >= HAND_BACK_GRACE_S + 15  # the grace, then Celery's own stop


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


def test_flower_requires_a_login_for_its_pages_and_its_api_that_is_not_in_its_argv() -> None:
    services = _compose()["services"]
    login = services["flower"]["environment"]["FLOWER_BASIC_AUTH"]
    assert login.startswith("${QRT_FLOWER_BASIC_AUTH:?") and _is_variable(login)  # refuses to start without one
    assert not any("basic-auth" in arg or "QRT_FLOWER_BASIC_AUTH" in arg for arg in services["flower"]["command"])
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


def test_every_qruntime_service_has_a_healthcheck_with_a_start_period() -> None:
    services = _compose()["services"]
    for name in QRUNTIME_SERVICES:
        healthcheck = services[name]["healthcheck"]
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
        assert duration_s(healthcheck["timeout"]) < duration_s(healthcheck["interval"]), name
        assert duration_s(healthcheck["start_period"]) > 0, name


def test_worker_healthcheck_pings_the_node_name_its_command_gives_it() -> None:
    worker = _compose()["services"]["worker"]
    assert parse_qruntime_command(worker["command"]).name == "qruntime@%h"  # Celery's %h: the hostname
    assert worker["healthcheck"]["test"][0] == "CMD-SHELL"
    assert '-d "qruntime@$$HOSTNAME"' in worker["healthcheck"]["test"][1]  # $$: the container's, not compose's


def test_flower_healthcheck_asks_its_public_healthcheck_page_on_its_port() -> None:
    flower = _compose()["services"]["flower"]
    port = next(arg.split("=", 1)[1] for arg in flower["command"] if arg.startswith("--port="))
    assert flower["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]  # python:3.11-slim has no curl
    assert f"http://127.0.0.1:{port}/healthcheck" in flower["healthcheck"]["test"][3]


def test_worker_healthcheck_passes_for_a_live_worker_and_fails_for_a_missing_one() -> None:
    test = _compose()["services"]["worker"]["healthcheck"]["test"][1].replace("$$", "$")
    hostname = socket.gethostname()
    stack = Stack()
    try:
        stack.start_worker(concurrency=1, backends="ibmq_armonk", name=f"qruntime@{hostname}")
        env = {**stack.env, "HOSTNAME": hostname}
        live = subprocess.run(["sh", "-c", test], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert live.returncode == 0, live.stdout + live.stderr
        gone = subprocess.run(["sh", "-c", test.replace("--timeout 10", "--timeout 1")],
                              env={**env, "HOSTNAME": "no-such-host"}, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert gone.returncode != 0
    finally:
        stack.stop()
