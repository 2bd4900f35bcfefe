"""The simulators a worker hands to programs, built once per worker and reused.

Building a backend is costly (a device replica's noise model takes up to 0.6 s),
so the worker's main process builds the ones it serves before Celery forks its
pool, and every job's child inherits them warm. Names, groups and static facts
come from ``orchestrator.backends``.

The backend is a :class:`CatalogueSimulator`, an ``AerSimulator`` that keeps its
``Target``. Plain ``AerSimulator.target`` rebuilds a ``Target`` on every access,
and ``transpile(qc, backend)`` reads it hundreds of times: a 5-qubit random
circuit took 81-87 ms to transpile for the ideal simulator, 11-12 ms with the
cached target, and 7 ms with a reused pass manager (``backend.pass_manager()``);
``bench/vqe.py`` measures it again. ``backend.run(..., seed_simulator=n)`` is
Aer's own and reproducible. ``backend.sampler()`` and
``backend.estimator()`` give Aer's V2 primitives running on this very backend
(its noise model and method), which the built-in programs use.
"""

from __future__ import annotations

import functools
from typing import Any

from orchestrator.backends import BackendInfo, find_backend

#: Optimization level ``backend.pass_manager()`` uses unless told otherwise (transpile's default).
DEFAULT_OPTIMIZATION_LEVEL = 2
#: Instructions left out when a backend's "basis gates" are listed.
_NOT_GATES = frozenset({
    "measure", "delay", "reset", "barrier", "store", "kraus", "roerror", "qerror_loc",
    "quantum_channel", "superop", "initialize", "diagonal", "multiplexer", "unitary",
    "break_loop", "continue_loop",
})


def _simulator_class() -> type:
    """Define the AerSimulator subclass lazily, so importing this module stays cheap."""
    from qiskit_aer import AerSimulator

    class CatalogueSimulator(AerSimulator):
        """An AerSimulator that caches its Target and pass managers (see module docstring)."""

        @property
        def target(self) -> Any:
            cached = self.__dict__.get("_qrt_target")
            if cached is None:
                cached = super().target
                self.__dict__["_qrt_target"] = cached
            return cached

        def set_option(self, key: str, value: Any) -> None:
            # Method, noise model and custom instructions change the target: forget it.
            self.__dict__.pop("_qrt_target", None)
            self.__dict__.pop("_qrt_pass_managers", None)
            super().set_option(key, value)

        def pass_manager(self, optimization_level: int = DEFAULT_OPTIMIZATION_LEVEL,
                         seed_transpiler: int | None = None) -> Any:
            """A preset pass manager for this backend, built once per (level, seed)."""
            from qiskit.transpiler import generate_preset_pass_manager

            cache = self.__dict__.setdefault("_qrt_pass_managers", {})
            key = (optimization_level, seed_transpiler)
            if key not in cache:
                cache[key] = generate_preset_pass_manager(
                    optimization_level=optimization_level, backend=self, seed_transpiler=seed_transpiler
                )
            return cache[key]

        def sampler(self, *, seed: int | None = None, default_shots: int = 1024) -> Any:
            """Aer's SamplerV2 running on this backend (noise model included)."""
            from qiskit_aer.primitives import SamplerV2

            return SamplerV2.from_backend(self, seed=seed, default_shots=default_shots)

        def estimator(self, *, seed: int | None = None, default_precision: float = 0.0) -> Any:
            """Aer's EstimatorV2 on this backend; precision 0 means exact expectation values."""
            from qiskit_aer.primitives import EstimatorV2

            run_options = {} if seed is None else {"seed_simulator": seed}
            return EstimatorV2.from_backend(
                self, options={"default_precision": default_precision, "run_options": run_options}
            )

    return CatalogueSimulator


@functools.cache
def simulator_class() -> type:
    """The (one) CatalogueSimulator class."""
    return _simulator_class()


def get_backend(name: str) -> Any:
    """The backend object for a catalogue name (or alias), built on first use in this process."""
    return _build(find_backend(name))


@functools.cache
def _build(info: BackendInfo) -> Any:
    cls = simulator_class()
    if info.device is None:
        backend = cls(method=info.simulator_method)
    else:
        from qiskit_ibm_runtime import fake_provider

        backend = cls.from_backend(getattr(fake_provider, info.device)())
    backend.name = info.name
    return backend


def describe(backend: Any) -> dict[str, Any]:
    """The static facts of a built backend, in ``BackendInfo`` terms (to check the catalogue)."""
    from qiskit.circuit.controlflow import CONTROL_FLOW_OP_NAMES

    target = backend.target
    gates = sorted(
        n for n in target.operation_names
        if n not in _NOT_GATES and n not in CONTROL_FLOW_OP_NAMES and not n.startswith(("save_", "set_"))
    )
    coupling = backend.coupling_map
    noise = backend.options.noise_model
    return {
        "num_qubits": backend.num_qubits,
        "basis_gates": tuple(gates),
        "coupling_map_size": None if coupling is None else len(coupling.get_edges()),
        "simulator_method": backend.options.method,
        "noisy": noise is not None and not noise.is_ideal(),
    }


def build_all(names: list[str]) -> None:
    """Build backends without running anything (safe in the worker's main process before the fork)."""
    for name in names:
        get_backend(name)


def warm_up(names: list[str]) -> None:
    """Build the backends and exercise transpile once, so the first job starts warm.

    Transpiling in the parent is safe only because QISKIT_IN_PARALLEL=TRUE is set
    before qiskit is imported (see workers/__init__.py); without it every child
    that transpiles after the fork deadlocks.
    """
    from qiskit import QuantumCircuit, transpile

    for name in names:
        backend = get_backend(name)
        circuit = QuantumCircuit(min(2, backend.num_qubits))
        circuit.h(0)
        if circuit.num_qubits > 1:
            circuit.cx(0, 1)
        circuit.measure_all()
        transpile(circuit, backend)
        backend.pass_manager()
