"""qruntime: a self-hosted Qiskit Runtime.

This package is what users import: the client (``RuntimeService``, ``RuntimeJob``,
``RuntimeProgram``, the remote primitives ``Sampler`` and ``Estimator``) and the
``qruntime`` command line. It never imports the server packages, and ``import
qruntime`` stays light: the client classes (which need qiskit) are loaded on
first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name → module that defines it, loaded on first attribute access (PEP 562).
_LAZY = {
    "RuntimeService": "qruntime.client.service",
    "RuntimeJob": "qruntime.client.job",
    "RuntimeProgram": "qruntime.client.program",
    "ParameterNamespace": "qruntime.client.program",
    "ResultDecoder": "qruntime.client.decoder",
    "RuntimeOptions": "qruntime.client.options",
    "RuntimeBackend": "qruntime.client.backend",
    "Sampler": "qruntime.client.primitives",
    "Estimator": "qruntime.client.primitives",
    "exceptions": "qruntime.exceptions",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'qruntime' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "exceptions" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
