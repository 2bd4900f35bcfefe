"""``RuntimeBackend``: a backend as the client sees it, a name plus the catalogue facts.

Programs get real Aer backends on the worker; the client only needs to name
one. ``name`` is a string that can also be called, so both the Qiskit 2.x
spelling (``backend.name``) and the seed's BackendV1 spelling
(``backend.name()``) work in code written for the seed.
"""

from __future__ import annotations

from typing import Any


class BackendName(str):
    """A ``str`` that returns itself when called (``backend.name()`` in seed code)."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


class RuntimeBackend:
    """One entry of ``GET /backends``.

    Attributes:
        name: the backend's name (callable, for seed code).
        num_qubits: how many qubits it simulates (None if unknown).
        details: the whole catalogue entry (``simulator_method``, ``noisy``, ``workers`` …).
    """

    def __init__(self, name: str, details: dict[str, Any] | None = None) -> None:
        self.name = BackendName(name)
        self.details = dict(details or {"name": name})
        self.num_qubits: int | None = self.details.get("num_qubits")

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> RuntimeBackend:
        return cls(raw["name"], raw)

    def matches(self, name: str) -> bool:
        """True for the backend's name or one of its aliases."""
        return name == self.name or name in self.details.get("aliases", ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuntimeBackend) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("RuntimeBackend", str(self.name)))

    def __repr__(self) -> str:
        return f"<RuntimeBackend('{self.name}')>"
