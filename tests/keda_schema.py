"""JSON Schemas of the two KEDA kinds deploy/k8s uses, for ``tests/test_k8s.py``.

KEDA's CRDs are not among the Kubernetes schemas ``kubernetes-validate`` ships, so
these are written here from KEDA's ``keda.sh/v1alpha1`` API (2.12 and later, for
``scalingModifiers``), as strictly as the core schemas are checked: an unknown or
misspelt field is an error, and so is a trigger whose metadata the scaler would
not read. They cover the fields these manifests may use, not all of KEDA.
"""

from __future__ import annotations

from typing import Any

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
_INT_STRING = {"type": "string", "pattern": r"^[0-9]+$"}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "namespace": _NAME,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def _object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


def _strict(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


#: KEDA's redis (list) scaler: what its metadata may say (the password comes by authenticationRef).
_REDIS_METADATA = _strict({
    "address": {"type": "string", "pattern": r"^[^:\s]+:[0-9]+$"},
    "databaseIndex": _INT_STRING,
    "listName": {"type": "string", "minLength": 1},
    "listLength": _INT_STRING,
    "activationListLength": _INT_STRING,
    "enableTLS": {"enum": ["true", "false"]},
}, ["address", "listName", "listLength"])
#: KEDA's prometheus scaler.
_PROMETHEUS_METADATA = _strict({
    "serverAddress": {"type": "string", "pattern": r"^https?://"},
    "query": {"type": "string", "minLength": 1},
    "threshold": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    "activationThreshold": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
}, ["serverAddress", "query", "threshold"])


def _trigger(kind: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return _strict({
        "type": {"const": kind},
        "name": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},  # a variable of the scaling formula
        "metadata": metadata,
        "authenticationRef": _strict({"name": _NAME, "kind": {"enum": ["TriggerAuthentication"]}}, ["name"]),
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
    }, ["type", "metadata"])


_SCALING_POLICY = _strict({
    "type": {"enum": ["Pods", "Percent"]},
    "value": {"type": "integer", "minimum": 1},
    "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800},
}, ["type", "value", "periodSeconds"])
_SCALING_RULES = _strict({
    "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
    "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
    "policies": {"type": "array", "items": _SCALING_POLICY, "minItems": 1},
}, [])

SCALED_OBJECT: dict[str, Any] = _object("ScaledObject", _strict({
    "scaleTargetRef": _strict({
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "name": _NAME,
        "envSourceContainerName": {"type": "string"},
    }, ["name"]),
    "pollingInterval": {"type": "integer", "minimum": 1},
    "cooldownPeriod": {"type": "integer", "minimum": 0},
    "initialCooldownPeriod": {"type": "integer", "minimum": 0},
    "idleReplicaCount": {"type": "integer", "minimum": 0},
    "minReplicaCount": {"type": "integer", "minimum": 0},
    "maxReplicaCount": {"type": "integer", "minimum": 1},
    "fallback": _strict({
        "failureThreshold": {"type": "integer", "minimum": 1},
        "replicas": {"type": "integer", "minimum": 0},
    }, ["failureThreshold", "replicas"]),
    "advanced": _strict({
        "restoreToOriginalReplicaCount": {"type": "boolean"},
        "horizontalPodAutoscalerConfig": _strict({
            "name": {"type": "string"},
            "behavior": _strict({"scaleUp": _SCALING_RULES, "scaleDown": _SCALING_RULES}, []),
        }, []),
        "scalingModifiers": _strict({
            "formula": {"type": "string", "minLength": 1},
            "target": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "activationTarget": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "metricType": {"enum": ["AverageValue", "Value"]},
        }, ["formula", "target"]),
    }, []),
    "triggers": {
        "type": "array",
        "minItems": 1,
        "items": {"oneOf": [_trigger("redis", _REDIS_METADATA), _trigger("prometheus", _PROMETHEUS_METADATA)]},
    },
}, ["scaleTargetRef", "triggers"]))

TRIGGER_AUTHENTICATION: dict[str, Any] = _object("TriggerAuthentication", _strict({
    "secretTargetRef": {
        "type": "array",
        "minItems": 1,
        "items": _strict({"parameter": {"type": "string"}, "name": _NAME, "key": {"type": "string"}},
                         ["parameter", "name", "key"]),
    },
}, ["secretTargetRef"]))

#: kind → schema, for every ``keda.sh/v1alpha1`` kind deploy/k8s may hold.
SCHEMAS: dict[str, dict[str, Any]] = {"ScaledObject": SCALED_OBJECT, "TriggerAuthentication": TRIGGER_AUTHENTICATION}
