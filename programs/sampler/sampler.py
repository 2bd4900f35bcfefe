"""Sampler: Qiskit primitives V2 sampler PUBs in, a ``PrimitiveResult`` out.

Runs Aer's ``SamplerV2`` on the job's backend (its method and, for device
replicas such as ``ibmq_montreal``, its noise model), so a Bell circuit gives
only ``00``/``11`` on ``aer_simulator`` and some ``01``/``10`` on a replica.

Inputs:
    pubs (list): sampler PUBs, each a circuit or ``[circuit, parameter_values?, shots?]``
        (what ``SamplerPub`` encodes to). Circuits need classical registers.
    shots (int): shots of PUBs that do not set their own (default 1024).
    seed (int): simulator seed; the same seed gives the same bitstrings.
    optimization_level (int): transpiler level for the backend (default 1).
    skip_transpilation (bool): run the circuits as given (default False).

Returns:
    PrimitiveResult of SamplerPubResult, one per PUB; ``result[i].data.<creg>``
    is a ``BitArray`` (``get_counts()``), as from any Qiskit SamplerV2.
"""

from qiskit.primitives.containers.sampler_pub import SamplerPub


def _transpiled(pub, backend, optimization_level, seed):
    """The PUB with its circuit transpiled for ``backend`` (parameters and registers kept)."""
    circuit = backend.pass_manager(optimization_level, seed).run(pub.circuit)
    return SamplerPub(circuit, pub.parameter_values, pub.shots)


def main(backend, user_messenger, pubs, shots=1024, seed=None, optimization_level=1,
         skip_transpilation=False):
    """Sample every PUB on ``backend`` and return the PrimitiveResult."""
    coerced = [SamplerPub.coerce(tuple(p) if isinstance(p, list) else p, shots) for p in pubs]
    for index, pub in enumerate(coerced):
        if pub.circuit.num_qubits > backend.num_qubits:
            raise ValueError(f"PUB {index} has {pub.circuit.num_qubits} qubits; "
                             f"backend {backend.name} has {backend.num_qubits}.")
    if not skip_transpilation:
        coerced = [_transpiled(p, backend, optimization_level, seed) for p in coerced]
    return backend.sampler(seed=seed, default_shots=shots).run(coerced).result()
