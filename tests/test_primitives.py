"""Remote primitives: Qiskit code written against ``qiskit.primitives`` runs unchanged on qruntime.

The same function is run with Qiskit's reference primitives (StatevectorSampler /
StatevectorEstimator) and with ``qruntime.Sampler`` / ``qruntime.Estimator``
pointed at the session stack; the answers must agree (exactly for expectation
values, in support for samples). On ``ibmq_montreal`` the sampler shows the
replica's noise.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import (
    BaseEstimatorV2,
    BasePrimitiveJob,
    BaseSamplerV2,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.quantum_info import SparsePauliOp

import qruntime
from qruntime.client.service import RuntimeService
from tests.harness import Stack


@pytest.fixture
def service(stack: Stack) -> RuntimeService:
    return RuntimeService(url=stack.url)


def bell_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def user_code(sampler: BaseSamplerV2, estimator: BaseEstimatorV2) -> tuple[dict, np.ndarray]:
    """Ordinary primitives code: knows nothing about qruntime."""
    counts = sampler.run([bell_circuit()], shots=1000).result()[0].data.meas.get_counts()
    theta = Parameter("θ")
    ansatz = QuantumCircuit(2)
    ansatz.ry(theta, 0)
    ansatz.cx(0, 1)
    observables = [[SparsePauliOp("ZZ")], [SparsePauliOp(["XX", "IZ"], [0.5, 2.0])]]
    evs = estimator.run([(ansatz, observables, [[0.2], [1.1]])]).result()[0].data.evs
    return counts, evs


def test_qiskit_primitives_code_runs_unchanged_on_qruntime(service: RuntimeService) -> None:
    reference_counts, reference_evs = user_code(StatevectorSampler(seed=3), StatevectorEstimator())
    sampler = qruntime.Sampler(backend="aer_simulator", service=service, options={"seed": 3})
    estimator = qruntime.Estimator(backend="aer_simulator", service=service)
    assert isinstance(sampler, BaseSamplerV2) and isinstance(estimator, BaseEstimatorV2)
    counts, evs = user_code(sampler, estimator)
    assert set(counts) == set(reference_counts) == {"00", "11"}
    assert sum(counts.values()) == 1000
    np.testing.assert_allclose(evs, reference_evs, atol=1e-9)


def test_remote_sampler_job_is_a_primitive_job_and_shows_device_noise(service: RuntimeService) -> None:
    sampler = qruntime.Sampler(backend="ibmq_montreal", service=service, options={"seed": 8})
    job = sampler.run([bell_circuit()], shots=4000)
    assert isinstance(job, BasePrimitiveJob) and job.job_id()
    counts = job.result(timeout=240)[0].data.meas.get_counts()
    assert job.done() and job.in_final_state()
    assert counts.get("01", 0) + counts.get("10", 0) > 0
    assert counts["00"] + counts["11"] > 0.8 * 4000
