"""Circuit runner: circuits in, a qiskit ``Result`` out (the seed's circuit-runner).

Transpiles the circuits for the job's backend and runs them with the given run
options. The result is encoded as a qiskit ``Result`` (RuntimeEncoder tag
``Result``), so clients decoding with ``RuntimeDecoder`` get a ``Result`` back;
``result.get_counts()`` works as with any backend. With ``seed_simulator`` (and
``seed_transpiler``) runs are reproducible.

Inputs:
    circuits (QuantumCircuit | list[QuantumCircuit]): what to run.
    shots (int): shots per circuit (default 1024).
    seed_simulator (int): simulator seed.
    seed_transpiler (int): transpiler seed.
    optimization_level (int): 0-3 (default 1).
    initial_layout (list[int]), layout_method, routing_method, translation_method (str):
        passed to ``transpile``.
    skip_transpilation (bool): run the circuits as given (default False).
    memory (bool): also return per-shot bitstrings.
    Seed-era options with no meaning on a simulator (``init_qubits``,
    ``rep_delay``, ``measurement_error_mitigation``, ``use_measure_esp``) are
    accepted and ignored, with a log line.

Returns:
    qiskit.result.Result.
"""

import logging

from qiskit import QuantumCircuit, transpile

logger = logging.getLogger(__name__)

#: Seed options a simulator cannot honour; accepted so seed clients keep working.
IGNORED_OPTIONS = ("init_qubits", "rep_delay", "measurement_error_mitigation", "use_measure_esp")
TRANSPILE_OPTIONS = ("initial_layout", "layout_method", "routing_method", "translation_method")


def main(backend, user_messenger, circuits, shots=1024, seed_simulator=None, seed_transpiler=None,
         optimization_level=1, skip_transpilation=False, memory=False, transpiler_options=None,
         **run_options):
    """Transpile and run ``circuits`` on ``backend``; return the Result."""
    circuits = [circuits] if isinstance(circuits, QuantumCircuit) else list(circuits)
    for name in IGNORED_OPTIONS:
        if run_options.pop(name, None) is not None:
            logger.info("option %s has no effect on a simulator; ignored", name)
    custom = {k: run_options.pop(k) for k in TRANSPILE_OPTIONS if run_options.get(k) is not None}
    custom.update(transpiler_options or {})
    if not skip_transpilation:
        if custom:
            circuits = transpile(circuits, backend, optimization_level=optimization_level,
                                 seed_transpiler=seed_transpiler, **custom)
        else:
            circuits = backend.pass_manager(optimization_level, seed_transpiler).run(circuits)
    job = backend.run(circuits, shots=shots, seed_simulator=seed_simulator, memory=memory, **run_options)
    return job.result()
