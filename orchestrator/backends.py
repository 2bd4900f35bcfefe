"""The backend catalogue as the API sees it: names, queues and sizes, no qiskit.

Workers build the actual simulators (``workers/backends.py``); the API only needs
to know which names exist, how many qubits they have (to check a program's
``backend_requirements``) and which Celery queue serves them. Backends are
grouped: one queue per group, so a worker subscribes to the groups it sits next to.
"""

from __future__ import annotations

import dataclasses

from orchestrator.errors import RequestError

QUEUE_PREFIX = "qruntime"


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """What the API knows about a backend without building it."""

    name: str
    group: str
    num_qubits: int
    simulator_method: str
    noisy: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def queue(self) -> str:
        return queue_for_group(self.group)

    def to_api(self) -> dict[str, object]:
        return {
            "name": self.name,
            "group": self.group,
            "queue": self.queue,
            "num_qubits": self.num_qubits,
            "simulator_method": self.simulator_method,
            "noisy": self.noisy,
            "aliases": list(self.aliases),
        }


#: Aer's ideal simulators; the qubit count is what an automatic-method simulator accepts.
CATALOGUE: tuple[BackendInfo, ...] = (
    BackendInfo("aer_simulator", "aer", 30, "automatic", aliases=("ibmq_qasm_simulator",)),
    BackendInfo("aer_simulator_statevector", "aer", 30, "statevector"),
    BackendInfo("aer_simulator_matrix_product_state", "aer", 63, "matrix_product_state"),
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
