"""The simulators a worker hands to programs, built once per worker process.

Building a backend (and, for device replicas, its noise model) is costly, so each
worker process builds the ones it serves once and every job it forks inherits
them warm. Names and groups come from ``orchestrator.backends``.
"""

from __future__ import annotations

import functools
from typing import Any

from orchestrator.backends import BackendInfo, find_backend


@functools.cache
def get_backend(name: str) -> Any:
    """The backend object for a catalogue name (or alias), built on first use."""
    info = find_backend(name)
    return _build(info)


def _build(info: BackendInfo) -> Any:
    from qiskit_aer import AerSimulator

    backend = AerSimulator(method=info.simulator_method)
    backend.name = info.name
    return backend


def warm_up(names: list[str]) -> None:
    """Build the backends and exercise transpile once, so the first job starts warm.

    Transpiling in the parent is safe only because QISKIT_IN_PARALLEL=TRUE is set
    before qiskit is imported (see workers/__init__.py); without it every child
    that transpiles after the fork deadlocks.
    """
    from qiskit import QuantumCircuit, transpile

    for name in names:
        backend = get_backend(name)
        circuit = QuantumCircuit(2)
        circuit.h(0)
        circuit.cx(0, 1)
        circuit.measure_all()
        transpile(circuit, backend)
