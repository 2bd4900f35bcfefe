"""Quantum kernel: fidelity kernel matrices of a feature map over data.

``K[i, j] = |<φ(x_i)|φ(x_j)>|²`` for the feature map's states φ(x). Without
``shots`` (ideal simulators only) the entries are exact, from statevectors; with
``shots`` each entry is estimated on the job's backend as the probability of
measuring all zeros after ``U(x_j)† U(x_i)`` (the compute-uncompute method), so
a device replica's noise shows up in the kernel. The matrices feed any kernel
method (e.g. ``sklearn.svm.SVC(kernel="precomputed")``).

Inputs:
    x_train (array n×d): training points.
    x_test (array m×d): test points (optional).
    feature_map (QuantumCircuit): d parameters, bound in order (default
        ``zz_feature_map(d, reps=2)``).
    shots (int): estimate entries by sampling (required on noisy backends).
    seed (int): simulator seed.

Interim results: ``{"kernel": "train", "shape": [n, n]}`` once the training
kernel is done, published with it as a checkpoint: a run restarted after its
worker was lost computes only the test kernel.

Returns:
    ``{"kernel_train": n×n ndarray, "kernel_test": m×n ndarray or None}``.
"""

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import Statevector


def _exact_states(feature_map, points):
    return [Statevector(feature_map.assign_parameters(x)).data for x in points]


def _exact_kernel(rows, cols):
    return np.abs(np.conj(np.array(rows)) @ np.array(cols).T) ** 2


def _sampled_kernel(backend, feature_map, rows, cols, shots, seed, symmetric):
    """Compute-uncompute estimates: P(0…0) of U(row)† U(col)… on ``backend``, transpiled once."""
    d = feature_map.num_parameters
    a, b = ParameterVector("a", d), ParameterVector("b", d)
    circuit = QuantumCircuit(feature_map.num_qubits)
    circuit.compose(feature_map.assign_parameters(a), inplace=True)
    circuit.compose(feature_map.assign_parameters(b).inverse(), inplace=True)
    circuit.measure_all()
    isa = backend.pass_manager(1, seed).run(circuit)
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or j > i]
    kernel = np.eye(len(rows)) if symmetric else np.zeros((len(rows), len(cols)))
    if not pairs:
        return kernel
    values = np.array([np.concatenate([rows[i], cols[j]]) for i, j in pairs])
    bindings = {tuple([*a, *b]): values}
    result = backend.sampler(seed=seed).run([(isa, bindings)], shots=shots).result()[0]
    bits = result.data.meas
    zeros = "0" * bits.num_bits
    for k, (i, j) in enumerate(pairs):
        counts = bits[k].get_counts()
        kernel[i, j] = counts.get(zeros, 0) / shots
        if symmetric:
            kernel[j, i] = kernel[i, j]
    return kernel


def main(backend, user_messenger, x_train, x_test=None, feature_map=None, shots=None, seed=None):
    """Return the train (and test) kernel matrices."""
    from qiskit.circuit.library import zz_feature_map

    x_train = np.atleast_2d(np.asarray(x_train, dtype=float))
    x_test = None if x_test is None else np.atleast_2d(np.asarray(x_test, dtype=float))
    if feature_map is None:
        feature_map = zz_feature_map(x_train.shape[1], reps=2)
    for name, data in (("x_train", x_train), ("x_test", x_test)):
        if data is not None and data.shape[1] != feature_map.num_parameters:
            raise ValueError(f"{name} has {data.shape[1]} features; the feature map has "
                             f"{feature_map.num_parameters} parameters.")
    if feature_map.num_qubits > backend.num_qubits:
        raise ValueError(f"The feature map needs {feature_map.num_qubits} qubits; backend "
                         f"{backend.name} has {backend.num_qubits}.")
    noisy = backend.options.noise_model is not None
    if shots is None and noisy:
        raise ValueError(f"Backend {backend.name} is noisy: give 'shots' to estimate the kernel.")
    checkpoints = callable(getattr(user_messenger, "checkpoint", None))  # the 2021 service had none
    restored = user_messenger.restore() if checkpoints else None
    if restored is not None:
        kernel_train = np.asarray(restored["kernel_train"], dtype=float)
    else:
        if shots is None:
            train_states = _exact_states(feature_map, x_train)
            kernel_train = _exact_kernel(train_states, train_states)
        else:
            kernel_train = _sampled_kernel(backend, feature_map, x_train, x_train, shots, seed, True)
        progress = {"kernel": "train", "shape": list(kernel_train.shape)}
        if checkpoints:
            user_messenger.publish(progress, checkpoint={"kernel_train": kernel_train})
        else:
            user_messenger.publish(progress)
    if x_test is None:
        kernel_test = None
    elif shots is None:
        kernel_test = _exact_kernel(_exact_states(feature_map, x_test), _exact_states(feature_map, x_train))
    else:
        kernel_test = _sampled_kernel(backend, feature_map, x_test, x_train, shots, seed, False)
    return {"kernel_train": kernel_train, "kernel_test": kernel_test}
