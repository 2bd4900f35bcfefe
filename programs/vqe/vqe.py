"""VQE: the variational quantum eigensolver, with the optimizer loop beside the backend.

Minimizes ``<ψ(θ)|H|ψ(θ)>`` over the ansatz parameters θ. Every energy is one
call to Aer's ``EstimatorV2`` on the job's backend (transpiled once, then
re-bound per call), so hundreds of evaluations cost no queueing or network
round trips: the point of a runtime program. On the ideal simulators with
``precision`` 0 the energies are exact, so a run is deterministic.

Inputs:
    operator (SparsePauliOp): the Hamiltonian H.
    ansatz (QuantumCircuit): parameterized trial state (default
        ``real_amplitudes(num_qubits, reps=2)``).
    optimizer (str | object): ``COBYLA`` (default), ``SPSA``, ``Nelder-Mead``,
        ``Powell``, ``L-BFGS-B`` or ``SLSQP``; or ``{"name": ..., <options>}``
        (scipy options such as ``tol``, ``rhobeg``; SPSA: ``learning_rate``,
        ``perturbation``, ``calibration_steps``).
    maxiter (int): optimizer iterations (default 100).
    initial_point (list[float]): starting θ (default: uniform in [-π, π] from ``seed``).
    precision (float): estimator precision; 0 (default) means exact expectation values.
    seed (int): seeds the initial point, SPSA and the simulator (default 42).
    optimization_level (int): transpiler level (default 1).

Interim results (one per energy evaluation):
    ``{"iteration": n, "energy": E, "std": σ, "parameters": θ}``.

Checkpoints: each interim result is published with a checkpoint of the
energies so far. A run restarted after its worker was lost replays the
optimizer from the start against those recorded energies (no backend calls, no
messages: the optimizers are deterministic given the values they see) and goes
on live from the first evaluation not recorded. So it resumes where the lost
run stopped, publishes each iteration once, and returns what an uninterrupted
run returns.

Returns:
    ``{"eigenvalue", "optimal_value", "optimal_point", "optimal_parameters",
    "cost_function_evals", "optimizer_evals", "optimizer_time", "history":
    {"energy": [...], "std": [...]}}`` (``optimal_parameters`` maps parameter
    names to values).
"""

import hashlib
import logging
import math
import time

import numpy as np
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from scipy.optimize import minimize as scipy_minimize

#: scipy.optimize.minimize methods accepted, by upper-case name.
SCIPY_METHODS = {m.upper(): m for m in ("COBYLA", "Nelder-Mead", "Powell", "L-BFGS-B", "SLSQP")}
DEFAULT_SEED = 42
#: SPSA's first step length when calibrating its learning rate (Qiskit's default).
SPSA_TARGET_MAGNITUDE = 2 * math.pi / 10


def parse_optimizer(optimizer, maxiter):
    """``(NAME, options)`` from a name or a ``{"name": ...}`` object."""
    options = {}
    if isinstance(optimizer, dict):
        options = dict(optimizer)
        optimizer = options.pop("name", "COBYLA")
    name = str(optimizer).upper()
    if name != "SPSA" and name not in SCIPY_METHODS:
        known = ", ".join(["SPSA", *SCIPY_METHODS.values()])
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {known}.")
    options.setdefault("maxiter", maxiter)
    return name, options


def spsa(fun, x0, rng, maxiter=100, learning_rate=None, perturbation=0.2,
         calibration_steps=10, alpha=0.602, gamma=0.101):
    """Simultaneous-perturbation stochastic approximation (Spall), two evaluations per step.

    Without a ``learning_rate`` it is calibrated like Qiskit's SPSA, so that the
    first step has length about ``SPSA_TARGET_MAGNITUDE``.
    """
    x = np.array(x0, dtype=float)
    if learning_rate is None:
        magnitude = 0.0
        for _ in range(calibration_steps):
            delta = rng.choice([-1.0, 1.0], size=x.size)
            diff = fun(x + perturbation * delta) - fun(x - perturbation * delta)
            magnitude += abs(diff / (2 * perturbation)) / calibration_steps
        learning_rate = SPSA_TARGET_MAGNITUDE / magnitude if magnitude > 0 else SPSA_TARGET_MAGNITUDE
    for k in range(maxiter):
        a_k = learning_rate / (k + 1) ** alpha
        c_k = perturbation / (k + 1) ** gamma
        delta = rng.choice([-1.0, 1.0], size=x.size)
        diff = fun(x + c_k * delta) - fun(x - c_k * delta)
        x = x - a_k * diff / (2 * c_k) * delta
    return x, fun(x), maxiter


def minimize(fun, x0, optimizer="COBYLA", maxiter=100, seed=DEFAULT_SEED):
    """Minimize ``fun`` from ``x0``; returns ``(x, fun(x), iterations)``."""
    name, options = parse_optimizer(optimizer, maxiter)
    if name == "SPSA":
        return spsa(fun, x0, np.random.default_rng(seed), **options)
    tol = options.pop("tol", None)
    result = scipy_minimize(fun, np.asarray(x0, dtype=float), method=SCIPY_METHODS[name], tol=tol,
                            options=options)
    return np.asarray(result.x), float(result.fun), int(getattr(result, "nit", 0) or result.nfev)


def theta_digest(theta):
    """A short fingerprint of a parameter vector: a replay checks it sees the points it recorded."""
    return hashlib.sha256(np.asarray(theta, dtype=float).tobytes()).hexdigest()[:12]


class EnergyEvaluator:
    """``θ → <ψ(θ)|H|ψ(θ)>`` on a backend, with the ansatz transpiled once.

    ``replay`` (a :meth:`checkpoint` of an earlier run): the first evaluations
    return the recorded energies instead of running, and call no callback, as
    long as the optimizer asks for the recorded points.
    """

    def __init__(self, backend, operator, ansatz, precision=0.0, seed=DEFAULT_SEED,
                 optimization_level=1, callback=None, replay=None):
        if ansatz.num_qubits != operator.num_qubits:
            raise ValueError(f"The ansatz has {ansatz.num_qubits} qubits but the operator acts on "
                             f"{operator.num_qubits}.")
        if ansatz.num_qubits > backend.num_qubits:
            raise ValueError(f"The ansatz needs {ansatz.num_qubits} qubits; backend {backend.name} "
                             f"has {backend.num_qubits}.")
        self.circuit = backend.pass_manager(optimization_level, seed).run(ansatz)
        self.observable = operator if self.circuit.layout is None else operator.apply_layout(self.circuit.layout)
        self.estimator = backend.estimator(seed=seed, default_precision=precision)
        self.precision = precision
        self.callback = callback
        self.energies = []
        self.stds = []
        self.digests = []
        self._replay = replay or {"energies": [], "stds": [], "digests": []}

    def checkpoint(self):
        """What a restarted run needs to get back here: every evaluation so far."""
        return {"energies": self.energies, "stds": self.stds, "digests": self.digests}

    def __call__(self, theta):
        n = len(self.energies)
        recorded = self._replay["energies"]
        if n < len(recorded):
            if self._replay["digests"][n] == theta_digest(theta):
                self._record(theta, recorded[n], self._replay["stds"][n])
                return recorded[n]
            logging.getLogger(__name__).warning(
                "the optimizer left the recorded path at evaluation %d; evaluating from here", n + 1)
            self._replay = {"energies": [], "stds": [], "digests": []}
        pub = EstimatorPub.coerce((self.circuit, self.observable, np.asarray(theta, dtype=float)),
                                  self.precision)
        data = self.estimator.run([pub]).result()[0].data
        energy, std = float(np.real(data.evs)), float(data.stds)
        self._record(theta, energy, std)
        if self.callback is not None:
            self.callback(len(self.energies), theta, energy, std)
        return energy

    def _record(self, theta, energy, std):
        self.energies.append(energy)
        self.stds.append(std)
        self.digests.append(theta_digest(theta))


def messenger_checkpoints(user_messenger):
    """``(restored state or None, publish(message, state))`` for any messenger: qruntime's keeps
    checkpoints; one without ``checkpoint`` (the 2021 service's, a test double) just publishes.

    A checkpoint grows with every evaluation; once it is larger than the service keeps
    (``QRT_MAX_CHECKPOINT_BYTES``) the run goes on without saving more, and says so.
    """
    if not callable(getattr(user_messenger, "checkpoint", None)):
        return None, lambda message, state: user_messenger.publish(message)
    saving = True

    def publish(message, state):
        nonlocal saving
        if saving:
            try:
                user_messenger.publish(message, checkpoint=state)
                return
            except ValueError as exc:  # the state is too large; the message itself may still go
                saving = False
                logging.getLogger(__name__).warning("no more checkpoints for this run: %s", exc)
        user_messenger.publish(message)

    return user_messenger.restore(), publish


def default_ansatz(num_qubits):
    from qiskit.circuit.library import real_amplitudes

    return real_amplitudes(num_qubits, reps=2)


def initial_point_for(ansatz, initial_point, seed):
    if initial_point is None:
        return np.random.default_rng(seed).uniform(-math.pi, math.pi, ansatz.num_parameters)
    point = np.asarray(initial_point, dtype=float)
    if point.shape != (ansatz.num_parameters,):
        raise ValueError(f"initial_point has {point.size} values; the ansatz has "
                         f"{ansatz.num_parameters} parameters.")
    return point


def run_vqe(backend, operator, ansatz=None, optimizer="COBYLA", maxiter=100, initial_point=None,
            precision=0.0, seed=DEFAULT_SEED, optimization_level=1, callback=None, replay=None):
    """The whole VQE; ``callback(evaluator, n, θ, energy, std)`` runs after every evaluation
    (not for those ``replay``, an earlier run's checkpoint, supplies)."""
    seed = DEFAULT_SEED if seed is None else seed
    ansatz = default_ansatz(operator.num_qubits) if ansatz is None else ansatz
    x0 = initial_point_for(ansatz, initial_point, seed)
    energy = EnergyEvaluator(backend, operator, ansatz, precision, seed, optimization_level, None, replay)
    if callback is not None:
        energy.callback = lambda *args: callback(energy, *args)
    started = time.perf_counter()
    x, value, iterations = minimize(energy, x0, optimizer, maxiter, seed)
    elapsed = time.perf_counter() - started
    return {
        "eigenvalue": value,
        "optimal_value": value,
        "optimal_point": [float(v) for v in x],
        "optimal_parameters": {p.name: float(v) for p, v in zip(ansatz.parameters, x, strict=True)},
        "cost_function_evals": len(energy.energies),
        "optimizer_evals": iterations,
        "optimizer_time": elapsed,
        "history": {"energy": energy.energies, "std": energy.stds},
    }


def main(backend, user_messenger, operator, ansatz=None, optimizer="COBYLA", maxiter=100,
         initial_point=None, precision=0.0, seed=DEFAULT_SEED, optimization_level=1):
    """Run VQE on ``backend``, publishing every energy evaluation with a checkpoint."""
    restored, publish_with = messenger_checkpoints(user_messenger)

    def publish(evaluator, n, theta, energy, std):
        publish_with({"iteration": n, "energy": energy, "std": std, "parameters": [float(v) for v in theta]},
                     evaluator.checkpoint())

    return run_vqe(backend, operator, ansatz, optimizer, maxiter, initial_point, precision, seed,
                   optimization_level, publish, restored)
