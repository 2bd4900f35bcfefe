"""The seed's test program: run random circuits and report each one's counts.

Each iteration builds a random 5-qubit circuit, runs it on the job's backend and
publishes ``{"iteration": i, "counts": {...}}`` as an interim result. The final
result is the string ``All done!``.
"""

from qiskit import transpile
from qiskit.circuit.random import random_circuit


def prepare_circuits(backend):
    """A random 5-qubit circuit with measurements, transpiled for ``backend``."""
    circuit = random_circuit(num_qubits=5, depth=4, measure=True)
    return transpile(circuit, backend)


def main(backend, user_messenger, **kwargs):
    """Run ``iterations`` random circuits, publishing each one's counts."""
    iterations = kwargs.pop("iterations", 5)
    for it in range(iterations):
        qc = prepare_circuits(backend)
        result = backend.run(qc).result()
        user_messenger.publish({"iteration": it, "counts": result.get_counts()})
    return "All done!"
