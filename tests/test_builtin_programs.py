"""The built-in quantum programs, run as jobs by a real worker, checked against exact numbers.

One stack for the module with a worker serving the ideal simulators (``aer``
group). Inputs travel the way a client sends them (RuntimeEncoder JSON) and
results are decoded with RuntimeDecoder, so the wire format is part of each test.
The noisy side (sampler on ``ibmq_montreal``) is in tests/test_backends.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import numpy as np
import pytest

from tests.hamiltonians import H2_TERMS
from tests.harness import Stack

#: Chemical accuracy, in hartree.
CHEMICAL_ACCURACY_HA = 1.6e-3
#: Deviations beyond this many standard deviations count as wrong, not as shot noise.
NOISE_SIGMAS = 5
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def aer_stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        stack.start_worker(concurrency=2, backends="aer_simulator")
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def encode(value: object) -> dict:
    from qiskit_ibm_runtime.json import RuntimeEncoder

    return json.loads(json.dumps(value, cls=RuntimeEncoder))


def run(stack: Stack, program: str, params: dict, backend: str = "aer_simulator") -> tuple[dict, object]:
    """Submit, wait, and return (final job JSON, decoded result); fails on anything but COMPLETED."""
    from qiskit_ibm_runtime.json import RuntimeDecoder

    job = stack.submit(program, encode(params), backend=backend)
    final = stack.wait_status(job["id"], timeout=JOB_TIMEOUT_S)
    text = stack.result_text(job["id"])
    assert final["status"] == "COMPLETED", text
    return final, json.loads(text, cls=RuntimeDecoder)


def bell_circuit():
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def test_vqe_reaches_the_h2_ground_energy_within_chemical_accuracy(aer_stack: Stack) -> None:
    from qiskit.quantum_info import SparsePauliOp

    hamiltonian = SparsePauliOp.from_list(H2_TERMS)
    exact = float(np.linalg.eigvalsh(hamiltonian.to_matrix()).min())
    job, result = run(aer_stack, "vqe", {"operator": hamiltonian, "optimizer": "COBYLA", "maxiter": 200})
    assert abs(result["eigenvalue"] - exact) < CHEMICAL_ACCURACY_HA
    assert min(result["history"]["energy"]) == pytest.approx(result["eigenvalue"], abs=CHEMICAL_ACCURACY_HA)
    interim = aer_stack.http.get(f"{aer_stack.url}/jobs/{job['id']}/interim_results", timeout=30).json()
    assert len(interim) == result["cost_function_evals"]  # one interim result per energy evaluation
    assert [m["data"]["iteration"] for m in interim] == list(range(1, len(interim) + 1))
    assert interim[-1]["data"]["energy"] == result["history"]["energy"][-1]


def test_sampler_on_the_ideal_simulator_gives_only_00_and_11_for_a_bell_circuit(aer_stack: Stack) -> None:
    _, result = run(aer_stack, "sampler", {"pubs": [[bell_circuit()]], "shots": 4000, "seed": 5})
    counts = result[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 4000
    assert abs(counts["00"] - 2000) < NOISE_SIGMAS * np.sqrt(4000 * 0.25)


def test_estimator_matches_statevector_expectation_values_within_shot_noise(aer_stack: Stack) -> None:
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter
    from qiskit.quantum_info import SparsePauliOp, Statevector

    theta = Parameter("θ")
    circuit = QuantumCircuit(3)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit.rx(0.4, 2)
    circuit.cz(1, 2)
    observables = [SparsePauliOp("ZZI"), SparsePauliOp(["XIX", "IYZ"], [0.5, 1.5]), SparsePauliOp("IIZ")]
    values = [0.3, 1.2]
    precision = 0.01
    pubs = [[circuit, [[o] for o in observables], [[v] for v in values], precision], [circuit, observables[0], [0.3]]]
    _, result = run(aer_stack, "estimator", {"pubs": pubs, "seed": 9})
    noisy, exact = result[0].data, result[1].data
    assert noisy.evs.shape == (3, 2)
    for i, observable in enumerate(observables):
        for j, value in enumerate(values):
            expected = Statevector(circuit.assign_parameters([value])).expectation_value(observable).real
            assert abs(noisy.evs[i, j] - expected) < NOISE_SIGMAS * noisy.stds[i, j]
    expected = Statevector(circuit.assign_parameters([0.3])).expectation_value(observables[0]).real
    assert float(exact.evs) == pytest.approx(expected, abs=1e-9)  # precision 0: exact


def test_qaoa_finds_the_max_cut_of_a_small_graph(aer_stack: Stack) -> None:
    graph = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 0], [0, 2], [1, 3, 2.0]]
    best_cut = 0.0
    for bits in itertools.product([0, 1], repeat=5):
        best_cut = max(best_cut, sum(e[2] if len(e) > 2 else 1.0 for e in graph if bits[e[0]] != bits[e[1]]))
    _, result = run(aer_stack, "qaoa", {"graph": graph, "reps": 2, "seed": 7, "shots": 2048})
    assignment = result["assignment"]
    cut = sum(e[2] if len(e) > 2 else 1.0 for e in graph if assignment[e[0]] != assignment[e[1]])
    assert cut == best_cut == result["cut_value"]
    assert result["best_bitstring"] == "".join(str(b) for b in reversed(assignment))
    assert result["energy"] < 0 and len(result["history"]["energy"]) == result["cost_function_evals"]


def test_circuit_runner_returns_a_result_that_decodes_and_repeats_with_a_seed(aer_stack: Stack) -> None:
    from qiskit import QuantumCircuit
    from qiskit.result import Result

    ghz = QuantumCircuit(3)
    ghz.h(0)
    ghz.cx(0, 1)
    ghz.cx(1, 2)
    ghz.measure_all()
    params = {"circuits": [bell_circuit(), ghz], "shots": 300, "seed_simulator": 21, "seed_transpiler": 3}
    _, first = run(aer_stack, "circuit-runner", params)
    _, second = run(aer_stack, "circuit-runner", params)
    assert isinstance(first, Result) and first.success
    assert set(first.get_counts(0)) == {"00", "11"} and set(first.get_counts(1)) == {"000", "111"}
    assert first.get_counts() == second.get_counts()


def test_quantum_kernel_matches_statevector_fidelities(aer_stack: Stack) -> None:
    from qiskit.circuit.library import zz_feature_map
    from qiskit.quantum_info import Statevector

    x_train = np.array([[0.1, 0.2], [0.5, 1.1], [1.3, 0.4]])
    x_test = np.array([[0.9, 0.9]])
    _, result = run(aer_stack, "quantum-kernel", {"x_train": x_train, "x_test": x_test})
    feature_map = zz_feature_map(2, reps=2)
    states = [Statevector(feature_map.assign_parameters(x)) for x in [*x_train, *x_test]]

    def fidelity(a: Statevector, b: Statevector) -> float:
        return abs(np.vdot(a.data, b.data)) ** 2

    expected_train = np.array([[fidelity(a, b) for b in states[:3]] for a in states[:3]])
    expected_test = np.array([[fidelity(states[3], b) for b in states[:3]]])
    np.testing.assert_allclose(result["kernel_train"], expected_train, atol=1e-9)
    np.testing.assert_allclose(result["kernel_test"], expected_test, atol=1e-9)


def test_builtin_programs_publish_their_parameters_and_reject_bad_inputs(aer_stack: Stack) -> None:
    for name in ("circuit-runner", "sampler", "estimator", "vqe", "qaoa", "quantum-kernel"):
        program = aer_stack.http.get(f"{aer_stack.url}/programs/{name}", timeout=30).json()
        assert program["spec"]["parameters"]["type"] == "object", name
        assert program["spec"]["backend_requirements"]["min_num_qubits"] >= 1, name
    body = {"program_id": "vqe", "backend": "aer_simulator", "params": {"optimizer": "COBYLA"}}
    response = aer_stack.http.post(aer_stack.url + "/jobs", data=json.dumps(body), timeout=30)
    assert response.status_code == 400 and "operator" in response.json()["message"]
    body = {"program_id": "qaoa", "backend": "ibmq_armonk", "params": {"graph": [[0, 1]]}}
    response = aer_stack.http.post(aer_stack.url + "/jobs", data=json.dumps(body), timeout=30)
    assert response.status_code == 400 and "ibmq_armonk" in response.json()["message"]
