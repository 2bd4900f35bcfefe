"""deploy/k8s renders with ``kubectl kustomize`` and holds what a cluster would enforce.

No cluster can be had here, so each overlay is rendered offline and every object is
validated against the Kubernetes schemas (``kubernetes-validate``, strict: an unknown
field fails) or, for KEDA's kinds, against ``tests/keda_schema.py``; an object of any
other kind fails the test rather than go unchecked. Then the properties that matter
are asserted: the worker's exact capabilities and its grace period, probes, secrets
referenced and never written down, settings qruntime reads, commands it provides,
and a worker Deployment, disruption budget and scaler for every backend group.
"""

from __future__ import annotations

import functools
import itertools
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from orchestrator.backends import groups, queue_for_group
from tests.deploy_checks import (
    HAND_BACK_GRACE_S,
    ROOT,
    WORKER_CAPABILITIES,
    duration_s,
    is_flower_command,
    parse_qruntime_command,
    queues_of,
    redis_passwords,
    strings,
    unknown_env_names,
)
from tests.harness import Stack
from tests.keda_schema import SCHEMAS as KEDA_SCHEMAS
from workers.zygote import MAX_UID_BLOCKS
from workers.zygote_client import UID_BLOCK

OVERLAYS = ("dev", "production")
#: The Kubernetes release the manifests are validated against (schemas shipped in kubernetes-validate).
KUBERNETES_VERSION = "1.32"
#: The oldest kubectl whose kustomize (v4+) reads ``resources: [<directory>]`` and ``patches:``.
MIN_KUBECTL = (1, 21)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@functools.cache
def _render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/k8s (.ci/run installs it)"
    version = subprocess.run([kubectl, "version", "--client", "-o", "yaml"], capture_output=True, text=True,
                             check=True).stdout
    client = yaml.safe_load(version)["clientVersion"]
    found = (int(client["major"]), int(re.match(r"\d+", client["minor"])[0]))
    assert found >= MIN_KUBECTL, f"kubectl {client['gitVersion']} has a kustomize too old for deploy/k8s"
    result = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no deprecation warning either
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [obj for obj in _render(overlay) if obj["kind"] == kind]


def _one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in _objects(overlay, kind) if o["metadata"]["name"] == name]
    return obj


def _workloads(overlay: str) -> list[dict[str, Any]]:
    return [obj for obj in _render(overlay) if obj["kind"] in WORKLOAD_KINDS]


def _containers(overlay: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in _workloads(overlay):
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield workload, container


def _workers(overlay: str) -> list[dict[str, Any]]:
    return [d for d in _objects(overlay, "Deployment")
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"]


def _container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _worker_queues(worker: dict[str, Any]) -> set[str]:
    args = parse_qruntime_command(_container(worker, "worker")["command"])
    return queues_of(args.backends)


def _selects(match: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a selector's label map picks a pod with ``labels``."""
    return all(labels.get(key) == value for key, value in match.items())


# -- rendering and schemas -----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_with_kubectl_kustomize_without_warnings(overlay: str) -> None:
    kinds = {obj["kind"] for obj in _render(overlay)}
    assert {"Namespace", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    namespace = _objects(overlay, "Namespace")[0]["metadata"]["name"]
    assert all(obj["metadata"].get("namespace") == namespace for obj in _render(overlay) if obj["kind"] != "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema_and_none_goes_unchecked(overlay: str) -> None:
    for obj in _render(overlay):
        where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "keda.sh/v1alpha1":
            assert obj["kind"] in KEDA_SCHEMAS, f"{where}: no schema for this KEDA kind"
            jsonschema.Draft202012Validator(KEDA_SCHEMAS[obj["kind"]]).validate(obj)
        else:  # raises SchemaNotFoundError for a kind that is neither core nor KEDA's
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validators_refuse_an_unknown_field() -> None:
    """The checks above would catch a misspelt field: strict really is strict, in both."""
    deployment = yaml.safe_load(yaml.safe_dump(_one("dev", "Deployment", "qruntime-api")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    scaled = yaml.safe_load(yaml.safe_dump(_objects("production", "ScaledObject")[0]))
    scaled["spec"]["triggers"][0]["metadata"]["listname"] = "qruntime.aer"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(KEDA_SCHEMAS["ScaledObject"]).validate(scaled)


# -- commands, settings, secrets ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_qruntime_containers_run_real_qruntime_commands_and_flower_watches_the_worker_app(overlay: str) -> None:
    for workload, container in _containers(overlay):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in ("api", "worker"):
            assert parse_qruntime_command(container["command"]).command == component
        elif component == "flower":
            assert is_flower_command(container["command"])
        else:
            assert component == "redis" and container["image"].startswith("redis:"), component


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_set_only_settings_qruntime_reads(overlay: str) -> None:
    for workload, container in _containers(overlay):
        assert not unknown_env_names(list(_env(container))), workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_written_down(overlay: str) -> None:
    rendered = _render(overlay)
    assert not [obj for obj in rendered if obj["kind"] == "Secret"]  # made by the operator (docs/deploy.md)
    for obj in rendered:
        for text in strings(obj):
            assert not redis_passwords(text), text
    for workload, container in _containers(overlay):
        for name, item in _env(container).items():
            if re.search("PASSWORD|SECRET|TOKEN|AUTH", name) or name == "QRT_REDIS_URL":
                assert "value" not in item and "secretKeyRef" in item["valueFrom"], f"{workload['metadata']['name']}: {name}"
        argv = " ".join(container["command"] + container.get("args", []))
        assert "requirepass" not in argv or "$REDIS_PASSWORD" in argv, argv  # only ever the variable
        assert "basic-auth" not in argv and "--password" not in argv, argv


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_gets_a_kubernetes_api_token_or_host_namespaces(overlay: str) -> None:
    for workload in _workloads(overlay):
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, workload["metadata"]["name"]
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(field, False), workload["metadata"]["name"]
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], workload["metadata"]["name"]


# -- the worker and its sandbox ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_is_root_with_exactly_the_capabilities_its_sandbox_needs(overlay: str) -> None:
    for worker in _workers(overlay):
        pod = worker["spec"]["template"]["spec"]
        context = _container(worker, "worker")["securityContext"]
        assert context["runAsUser"] == 0 and context["runAsNonRoot"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert sorted(context["capabilities"]["add"]) == sorted(WORKER_CAPABILITIES)  # each once, none more
        assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in _container(worker, "worker")["volumeMounts"]}
        for path in ("/tmp", "/run"):
            assert mounts[path]["emptyDir"]["medium"] == "Memory" and mounts[path]["emptyDir"]["sizeLimit"], path
        assert pod["shareProcessNamespace"] is True  # pid 1 (pause) reaps orphaned job processes


def test_each_capability_of_the_worker_says_why_it_is_there() -> None:
    lines = (ROOT / "deploy" / "k8s" / "base" / "workers.yaml").read_text().splitlines()
    for capability in WORKER_CAPABILITIES:
        reasons = [line for line in lines if re.fullmatch(rf"\s*- {capability}\s+# \S.*", line)]
        assert len(reasons) == len(_workers("dev")), capability


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_grace_period_covers_the_hand_back_grace_and_matches_compose(overlay: str) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    stop_grace_s = duration_s(compose["services"]["worker"]["stop_grace_period"])
    for worker in _workers(overlay):
        grace_s = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace_s >= HAND_BACK_GRACE_S + 15, worker["metadata"]["name"]  # the grace, then Celery's own stop
        assert grace_s == stop_grace_s, worker["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_backend_group_is_served_by_exactly_one_worker_deployment(overlay: str) -> None:
    served = [queue for worker in _workers(overlay) for queue in _worker_queues(worker)]
    assert sorted(served) == sorted(queue_for_group(g) for g in groups())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_groups_hand_out_job_uids_that_no_other_worker_on_the_node_can(overlay: str) -> None:
    ranges = []
    for worker in _workers(overlay):
        base = int(_env(_container(worker, "worker"))["QRT_JOB_UID_BASE"]["value"])
        ranges.append(range(base, base + MAX_UID_BLOCKS * UID_BLOCK))
        group = worker["spec"]["selector"]["matchLabels"]
        (term,) = worker["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == group  # one pod of the group per node
    ranges.sort(key=lambda r: r.start)
    assert all(a.stop <= b.start for a, b in itertools.pairwise(ranges))  # no two groups share a uid


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_memory_limit_holds_its_jobs_and_their_scratch(overlay: str) -> None:
    gib = {"Gi": 1024, "Mi": 1}
    for worker in _workers(overlay):
        container = _container(worker, "worker")
        env = _env(container)
        slots = parse_qruntime_command(container["command"]).concurrency
        volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
        limit = container["resources"]["limits"]["memory"]
        scratch = volumes["tmp"]["emptyDir"]["sizeLimit"]
        limit_mb, scratch_mb = (int(q[:-2]) * gib[q[-2:]] for q in (limit, scratch))
        assert scratch_mb >= slots * int(env["QRT_JOB_DISK_MB"]["value"]), worker["metadata"]["name"]
        assert limit_mb >= slots * int(env["QRT_JOB_MEMORY_MB"]["value"]) + scratch_mb, worker["metadata"]["name"]


def test_worker_liveness_probe_passes_for_a_live_worker_and_fails_for_a_missing_one() -> None:
    worker = _workers("dev")[0]
    container = _container(worker, "worker")
    assert parse_qruntime_command(container["command"]).name == "qruntime@%h"  # %h: the pod's hostname
    probe = container["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["sh", "-c"] and '"qruntime@$HOSTNAME"' in probe[2]
    hostname = socket.gethostname()
    stack = Stack()
    try:
        stack.start_worker(concurrency=1, backends="ibmq_armonk", name=f"qruntime@{hostname}")
        live = subprocess.run(probe, env={**stack.env, "HOSTNAME": hostname}, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert live.returncode == 0, live.stdout + live.stderr
        assert container["livenessProbe"]["timeoutSeconds"] > 10  # the ping's own --timeout
        gone = subprocess.run([*probe[:2], probe[2].replace("--timeout 10", "--timeout 1")],
                              env={**stack.env, "HOSTNAME": "no-such-pod"}, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert gone.returncode != 0
    finally:
        stack.stop()


# -- the API, Flower, Redis -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_flower_and_redis_run_non_root_under_the_restricted_profile(overlay: str) -> None:
    for workload, container in _containers(overlay):
        if workload["metadata"]["labels"]["app.kubernetes.io/component"] == "worker":
            continue
        pod = workload["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, workload["metadata"]["name"]
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container["securityContext"]
        assert context == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                           "capabilities": {"drop": ["ALL"]}}, workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_baseline_and_audits_restricted(overlay: str) -> None:
    labels = _objects(overlay, "Namespace")[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_is_ready_and_alive_by_health_on_the_port_it_serves(overlay: str) -> None:
    api = _one(overlay, "Deployment", "qruntime-api")
    container = _container(api, "api")
    port = int(parse_qruntime_command(container["command"]).port)
    (named,) = [p for p in container["ports"] if p["containerPort"] == port]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": named["name"]}, probe
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60  # a short Redis outage restarts nothing
    service = _one(overlay, "Service", "qruntime-api")
    assert _selects(service["spec"]["selector"], api["spec"]["template"]["metadata"]["labels"])
    assert service["spec"]["ports"][0]["targetPort"] == named["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_flower_takes_its_login_from_a_secret_and_is_probed_on_its_public_page(overlay: str) -> None:
    flower = _one(overlay, "Deployment", "qruntime-flower")
    container = _container(flower, "flower")
    env = _env(container)
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": "qruntime-flower", "key": "basic-auth"}
    assert "FLOWER_UNAUTHENTICATED_API" not in env
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthcheck", probe


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_cpu_and_memory_requests_and_limits(overlay: str) -> None:
    for workload, container in _containers(overlay):
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, (workload["metadata"]["name"], bound)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_and_every_worker_group_have_a_disruption_budget(overlay: str) -> None:
    budgets = _objects(overlay, "PodDisruptionBudget")
    for deployment in [_one(overlay, "Deployment", "qruntime-api"), *_workers(overlay)]:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(covering) == 1, deployment["metadata"]["name"]
        assert covering[0]["spec"]["maxUnavailable"] == 1  # never blocks a drain, even with one replica


def test_dev_runs_redis_with_an_append_only_file_a_volume_and_a_password_from_the_secret() -> None:
    redis = _one("dev", "StatefulSet", "redis")
    config = _one("dev", "ConfigMap", "redis-config")["data"]["redis.conf"].splitlines()
    assert "appendonly yes" in config and "dir /data" in config
    assert "include /run/redis/auth.conf" in config
    container = _container(redis, "redis")
    assert container["command"][-1].startswith("printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" > /run/redis/auth.conf")
    assert _env(container)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "qruntime-redis", "key": "password"}
    assert "/data" in {m["mountPath"] for m in container["volumeMounts"]}
    assert [t["metadata"]["name"] for t in redis["spec"]["volumeClaimTemplates"]] == ["data"]


def test_production_runs_no_redis_of_its_own_and_names_the_external_one() -> None:
    assert not _objects("production", "StatefulSet")
    service = _one("production", "Service", "redis")
    assert service["spec"]["type"] == "ExternalName"


# -- autoscaling -----------------------------------------------------------------------------------


def test_dev_has_no_autoscaler_since_a_single_node_has_no_keda() -> None:
    assert not [obj for obj in _render("dev") if obj["apiVersion"].startswith("keda.sh/")]


def test_each_worker_group_scales_on_its_queues_plus_its_running_jobs() -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in _objects("production", "ScaledObject")}
    namespace = _objects("production", "Namespace")[0]["metadata"]["name"]
    workers = _workers("production")
    assert set(scaled) == {w["metadata"]["name"] for w in workers}
    for worker in workers:
        spec = scaled[worker["metadata"]["name"]]["spec"]
        assert "replicas" not in worker["spec"]  # KEDA owns the count; an apply must not reset it
        lists = {t["metadata"]["listName"]: t for t in spec["triggers"] if t["type"] == "redis"}
        assert set(lists) == _worker_queues(worker)
        for trigger in lists.values():
            assert trigger["authenticationRef"]["name"] == "qruntime-redis"
            assert trigger["metadata"]["address"] == f"redis.{namespace}.svc.cluster.local:6379"
        (running,) = [t for t in spec["triggers"] if t["type"] == "prometheus"]
        assert "flower_worker_number_of_currently_executing_tasks" in running["metadata"]["query"]
        assert f'"qruntime@{worker["metadata"]["name"]}-.*"' in running["metadata"]["query"]
        modifiers = spec["advanced"]["scalingModifiers"]
        assert sorted(modifiers["formula"].split(" + ")) == sorted(t["name"] for t in spec["triggers"])
        slots = parse_qruntime_command(_container(worker, "worker")["command"]).concurrency
        assert modifiers["target"] == str(slots)  # a pod per `concurrency` jobs waiting or running
        assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["policies"] == [
            {"type": "Pods", "value": 1, "periodSeconds": 300}]


def test_keda_reads_the_redis_password_from_the_secret_the_pods_use() -> None:
    (auth,) = _objects("production", "TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "qruntime-redis", "key": "password"}]
