"""The backend catalogue as the API sees it: names, queues and static facts, no qiskit.

Workers build the actual simulators (``workers/backends.py``); the API only needs
to know which names exist, their size and gate set (to check a program's
``backend_requirements`` and to answer ``GET /backends``) and which Celery queue
serves them. The facts below are what the worker's simulators report on this
qiskit-aer / qiskit-ibm-runtime version, written down once so the API never
imports qiskit; ``tests/test_backends.py`` builds every backend and checks them.

Backends are grouped, one Celery queue per group, so a worker subscribes to the
groups it sits next to (``qruntime worker --backends ibmq_montreal``). The ideal
simulators share the ``aer`` group; each device replica is its own group, as a
real device would be its own site.
"""

from __future__ import annotations

import dataclasses

from orchestrator.errors import RequestError

QUEUE_PREFIX = "qruntime"

#: Gates every IBM device replica below accepts (the Falcon/Canary basis).
_IBM_BASIS = ("cx", "id", "rz", "sx", "x")
#: Gates Aer's automatic and statevector methods accept (control flow and save/set
#: instructions left out: they are not what "basis gates" means to a user).
_AER_BASIS = (
    "ccx", "ccz", "cp", "crx", "cry", "crz", "cswap", "csx", "cu", "cu1", "cu2", "cu3",
    "cx", "cy", "cz", "ecr", "h", "id", "mcp", "mcphase", "mcr", "mcrx", "mcry", "mcrz",
    "mcswap", "mcsx", "mcu", "mcu1", "mcu2", "mcu3", "mcx", "mcx_gray", "mcy", "mcz", "p",
    "pauli", "r", "rx", "rxx", "ry", "ryy", "rz", "rzx", "rzz", "s", "sdg", "swap", "sx",
    "sxdg", "t", "tdg", "u", "u1", "u2", "u3", "x", "y", "z",
)
#: Gates Aer's matrix-product-state method accepts.
_MPS_BASIS = (
    "ccx", "cp", "cswap", "csx", "cx", "cy", "cz", "ecr", "h", "id", "p", "pauli", "r",
    "rx", "rxx", "ry", "ryy", "rz", "rzx", "rzz", "s", "sdg", "swap", "sx", "sxdg", "t",
    "tdg", "u", "u1", "u2", "u3", "x", "y", "z",
)


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """What the API knows about a backend without building it.

    Attributes:
        name: the name jobs use (``options.backend_name``).
        group: backends of one group share one Celery queue.
        num_qubits: qubits the backend offers (for ``min_num_qubits`` checks).
        simulator_method: Aer's simulation method.
        basis_gates: gates circuits are transpiled to.
        coupling_map_size: directed edges of the coupling map; ``None`` = all-to-all.
        noisy: whether runs include a device noise model.
        device: the ``qiskit_ibm_runtime.fake_provider`` class replicated, if any.
        aliases: other names accepted for it (e.g. the fake backend's own name).
    """

    name: str
    group: str
    num_qubits: int
    simulator_method: str
    basis_gates: tuple[str, ...]
    coupling_map_size: int | None = None
    noisy: bool = False
    device: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def queue(self) -> str:
        return queue_for_group(self.group)



def _device(name: str, fake_class: str, num_qubits: int, edges: int) -> BackendInfo:
    fake_name = "fake_" + name.split("_", 1)[1]
    basis = _IBM_BASIS if num_qubits > 1 else tuple(g for g in _IBM_BASIS if g != "cx")
    return BackendInfo(
        name, name, num_qubits, "automatic", basis, coupling_map_size=edges,
        noisy=True, device=fake_class, aliases=(fake_name,),
    )


#: Every backend a worker can build. Qubit counts of the ideal simulators are what
#: Aer accepts with this machine's memory (it lowers them on smaller hosts).
CATALOGUE: tuple[BackendInfo, ...] = (
    BackendInfo("aer_simulator", "aer", 30, "automatic", _AER_BASIS, aliases=("ibmq_qasm_simulator",)),
    BackendInfo("aer_simulator_statevector", "aer", 30, "statevector", _AER_BASIS),
    BackendInfo("aer_simulator_matrix_product_state", "aer", 63, "matrix_product_state", _MPS_BASIS),
    _device("ibmq_armonk", "FakeArmonkV2", 1, 0),
    _device("ibmq_manila", "FakeManilaV2", 5, 8),
    _device("ibm_lagos", "FakeLagosV2", 7, 12),
    _device("ibmq_guadalupe", "FakeGuadalupeV2", 16, 32),
    _device("ibmq_toronto", "FakeTorontoV2", 27, 56),
    _device("ibmq_montreal", "FakeMontrealV2", 27, 56),
)


def queue_for_group(group: str) -> str:
    return f"{QUEUE_PREFIX}.{group}"


def find_backend(name: str) -> BackendInfo:
    """The catalogue entry for ``name`` (or one of its aliases).

    Raises:
        RequestError: no backend has that name.
    """
    for info in CATALOGUE:
        if name == info.name or name in info.aliases:
            return info
    known = ", ".join(info.name for info in CATALOGUE)
    raise RequestError(f"Unknown backend {name!r}. Known backends: {known}.")


def groups() -> list[str]:
    return sorted({info.group for info in CATALOGUE})


def backends_for_queues(queues: list[str]) -> list[BackendInfo]:
    """The catalogue entries a worker consuming ``queues`` serves."""
    wanted = set(queues)
    return [info for info in CATALOGUE if info.queue in wanted]
