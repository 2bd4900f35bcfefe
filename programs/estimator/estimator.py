"""Estimator: Qiskit primitives V2 estimator PUBs in, a ``PrimitiveResult`` out.

Runs Aer's ``EstimatorV2`` on the job's backend. With ``precision`` 0 (the
default) expectation values are exact for the backend: exact on the ideal
simulators, the exact noisy value on a device replica. A positive ``precision``
adds Gaussian noise of that standard deviation, as finite shots would.
Circuits are transpiled for the backend and observables follow the layout.

Inputs:
    pubs (list): estimator PUBs, ``[circuit, observables, parameter_values?, precision?]``
        (what ``EstimatorPub`` encodes to); observables as SparsePauliOp, Pauli
        strings or ``{pauli: coeff}`` dicts, or arrays of them.
    precision (float): default precision of PUBs without their own (default 0).
    seed (int): seed of the simulator (and of the precision noise).
    optimization_level (int): transpiler level for the backend (default 1).
    skip_transpilation (bool): run circuits and observables as given (default False).

Returns:
    PrimitiveResult of PubResult; ``result[i].data.evs`` and ``.stds`` are arrays
    shaped like the PUB's broadcast of observables and parameter values.
"""

from qiskit.primitives.containers.estimator_pub import EstimatorPub


def transpiled_pub(pub, backend, optimization_level=1, seed=None):
    """The PUB with its circuit transpiled for ``backend`` and observables laid out to match."""
    circuit = backend.pass_manager(optimization_level, seed).run(pub.circuit)
    observables = pub.observables
    if circuit.layout is not None:
        observables = observables.apply_layout(circuit.layout)
    return EstimatorPub(circuit, observables, pub.parameter_values, pub.precision)


def main(backend, user_messenger, pubs, precision=0.0, seed=None, optimization_level=1,
         skip_transpilation=False):
    """Estimate every PUB on ``backend`` and return the PrimitiveResult."""
    coerced = [EstimatorPub.coerce(tuple(p) if isinstance(p, list) else p, precision) for p in pubs]
    for index, pub in enumerate(coerced):
        if pub.circuit.num_qubits > backend.num_qubits:
            raise ValueError(f"PUB {index} has {pub.circuit.num_qubits} qubits; "
                             f"backend {backend.name} has {backend.num_qubits}.")
    if not skip_transpilation:
        coerced = [transpiled_pub(p, backend, optimization_level, seed) for p in coerced]
    return backend.estimator(seed=seed, default_precision=precision).run(coerced).result()
