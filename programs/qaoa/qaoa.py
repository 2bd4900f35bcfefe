"""QAOA: the quantum approximate optimization algorithm for max-cut or any diagonal cost.

Builds the cost operator (from a weighted graph's max-cut, or given as a
SparsePauliOp of Z terms), optimizes the ``qaoa_ansatz`` angles with the
estimator on the job's backend (the loop runs beside the backend, as in the
``vqe`` program, whose optimizers it shares), then samples the optimized
circuit and reports the best bitstring it saw.

Inputs:
    graph (list): edges ``[u, v]`` or ``[u, v, weight]`` (nodes 0..n-1); or
    operator (SparsePauliOp): a cost of Z/I Pauli terms to minimize (one of the two).
    reps (int): QAOA layers p (default 2).
    optimizer (str | object), maxiter (int): as for ``vqe`` (default COBYLA, 100).
    initial_point (list[float]): starting angles (β…, γ…) (default: uniform in [0, π] from ``seed``).
    shots (int): samples of the optimized circuit (default 1024).
    precision (float): estimator precision, 0 (default) = exact expectation values.
    seed (int): seeds the initial point, optimizer and simulator (default 42).

Interim results (one per cost evaluation):
    ``{"iteration": n, "energy": E, "parameters": angles}``, each with a
    checkpoint: a restarted run resumes after the last one, as ``vqe`` does.

Returns:
    ``{"best_bitstring", "best_value", "assignment", "cut_value", "energy",
    "optimal_point", "cost_function_evals", "history": {"energy": [...]},
    "counts"}``. Bitstrings are in Qiskit order (qubit 0 rightmost);
    ``assignment[i]`` is node/variable i's bit; ``best_value`` is the cost of the
    best bitstring; ``cut_value`` (graph input only) is its cut weight = -cost.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
from qiskit.quantum_info import SparsePauliOp

DEFAULT_SEED = 42


def _vqe_module():
    """The sibling ``vqe`` program, for its optimizers and energy evaluator."""
    path = Path(__file__).resolve().parent.parent / "vqe" / "vqe.py"
    spec = importlib.util.spec_from_file_location("_qruntime_builtin_vqe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def maxcut_operator(graph):
    """``Σ w/2 (Z_u Z_v − I)`` over the edges: its value on a bitstring is minus the cut weight."""
    edges = [(int(e[0]), int(e[1]), float(e[2]) if len(e) > 2 else 1.0) for e in graph]
    if not edges:
        raise ValueError("The graph has no edges.")
    if any(u == v or u < 0 or v < 0 for u, v, _ in edges):
        raise ValueError("Edges join two distinct nodes numbered from 0.")
    num_nodes = max(max(u, v) for u, v, _ in edges) + 1
    terms = [("ZZ", [u, v], w / 2) for u, v, w in edges]
    terms.append(("", [], -sum(w for _, _, w in edges) / 2))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_nodes).simplify()


def classical_value(operator, bits):
    """The cost of the assignment ``bits`` (bits[i] for qubit i) under a diagonal operator."""
    spins = 1 - 2 * np.asarray(bits)
    value = 0.0
    for pauli, coeff in zip(operator.paulis, operator.coeffs, strict=True):
        value += float(np.real(coeff)) * float(np.prod(spins[pauli.z]))
    return value


def main(backend, user_messenger, graph=None, operator=None, reps=2, optimizer="COBYLA",
         maxiter=100, initial_point=None, shots=1024, precision=0.0, seed=DEFAULT_SEED):
    """Optimize the QAOA angles on ``backend``, then sample the best bitstring."""
    from qiskit.circuit.library import qaoa_ansatz

    if (graph is None) == (operator is None):
        raise ValueError("Give exactly one of 'graph' (edge list) or 'operator' (SparsePauliOp).")
    cost = maxcut_operator(graph) if graph is not None else operator
    if any(p.x.any() for p in cost.paulis):
        raise ValueError("The cost operator must be diagonal (only Z and I terms).")
    seed = DEFAULT_SEED if seed is None else seed
    vqe = _vqe_module()
    ansatz = qaoa_ansatz(cost, reps=reps)
    if initial_point is None:
        initial_point = np.random.default_rng(seed).uniform(0, math.pi, ansatz.num_parameters)

    restored, publish_with = vqe.messenger_checkpoints(user_messenger)

    def publish(n, theta, energy, std):
        publish_with({"iteration": n, "energy": energy, "parameters": [float(v) for v in theta]},
                     evaluator.checkpoint())

    evaluator = vqe.EnergyEvaluator(backend, cost, ansatz, precision, seed, 1, publish, restored)
    x0 = vqe.initial_point_for(ansatz, initial_point, seed)
    x, energy, _ = vqe.minimize(evaluator, x0, optimizer, maxiter, seed)

    measured = ansatz.assign_parameters(x)
    measured.measure_all()
    isa = backend.pass_manager(1, seed).run(measured)
    counts = backend.sampler(seed=seed).run([isa], shots=shots).result()[0].data.meas.get_counts()
    n = cost.num_qubits
    scored = {b: classical_value(cost, [int(b[n - 1 - i]) for i in range(n)]) for b in counts}
    best = min(scored, key=lambda b: (scored[b], -counts[b]))
    assignment = [int(best[n - 1 - i]) for i in range(n)]
    return {
        "best_bitstring": best,
        "best_value": scored[best],
        "assignment": assignment,
        "cut_value": -scored[best] if graph is not None else None,
        "energy": energy,
        "optimal_point": [float(v) for v in x],
        "cost_function_evals": len(evaluator.energies),
        "history": {"energy": evaluator.energies},
        "counts": counts,
    }
