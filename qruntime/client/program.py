"""``RuntimeProgram`` (a program's metadata, printed in the seed's format) and
``ParameterNamespace`` (its inputs, with the seed's required-value check).

The exceptions (which import qiskit) are imported where raised, so the CLI can
print programs without loading qiskit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

INDENT = " "


class RuntimeProgram:
    """Metadata of one runtime program, as ``GET /programs/{id}`` describes it.

    ``str(program)`` is byte-identical to the seed's layout; ``parameters()`` gives a
    fresh :class:`ParameterNamespace` to fill in and pass to ``run``.
    """

    def __init__(self, program_name: str, program_id: str, description: str,
                 parameters: dict | None = None, return_values: dict | None = None,
                 interim_results: dict | None = None, max_execution_time: int = 0,
                 backend_requirements: dict | None = None, creation_date: str = "",
                 update_date: str = "", is_public: bool = False, data: str = "",
                 refresher: Callable[[str], dict[str, Any]] | None = None) -> None:
        self._name = program_name
        self._id = program_id
        self._description = description
        self._parameters = parameters or {}
        self._return_values = return_values or {}
        self._interim_results = interim_results or {}
        self._max_execution_time = max_execution_time
        self._backend_requirements = backend_requirements or {}
        self._creation_date = creation_date
        self._update_date = update_date
        self._is_public = is_public
        self._data = data
        self._refresher = refresher

    @classmethod
    def from_api(cls, raw: dict[str, Any],
                 refresher: Callable[[str], dict[str, Any]] | None = None) -> RuntimeProgram:
        """Build from the API's program JSON (``cost`` is the max execution time)."""
        program = cls(raw.get("name", raw.get("id", "")), raw.get("id", ""), "", refresher=refresher)
        program._load(raw)
        return program

    def _load(self, raw: dict[str, Any]) -> None:
        spec = raw.get("spec") or {}
        self._name = raw.get("name", self._name)
        self._id = raw.get("id", self._id)
        self._description = raw.get("description", "")
        self._max_execution_time = raw.get("cost", 0)
        self._creation_date = raw.get("creation_date", "")
        self._update_date = raw.get("update_date", "")
        self._is_public = raw.get("is_public", False)
        self._data = raw.get("data", "")
        self._backend_requirements = spec.get("backend_requirements", {})
        self._parameters = spec.get("parameters", {})
        self._return_values = spec.get("return_values", {})
        self._interim_results = spec.get("interim_results", {})

    def _refresh(self) -> None:
        if self._refresher is not None:
            self._load(self._refresher(self._id))

    def __str__(self) -> str:
        lines = [
            f"{self.program_id}:",
            f"  Name: {self.name}",
            f"  Description: {self.description}",
            f"  Creation date: {self.creation_date}",
            f"  Update date: {self.update_date}",
            f"  Max execution time: {self.max_execution_time}",
        ]
        for title, schema in (("Input parameters", self._parameters),
                              ("Interim results", self._interim_results),
                              ("Returns", self._return_values)):
            lines.append(f"  {title}:")
            lines.extend(_schema_lines(schema) if schema else [INDENT * 4 + "none"])
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RuntimeProgram {self.program_id!r}>"

    def to_dict(self) -> dict[str, Any]:
        """The metadata as a dict (``parameters`` is the JSON schema, so this serializes)."""
        return {
            "program_id": self.program_id,
            "name": self.name,
            "description": self.description,
            "max_execution_time": self.max_execution_time,
            "backend_requirements": self.backend_requirements,
            "parameters": self._parameters,
            "return_values": self.return_values,
            "interim_results": self.interim_results,
            "is_public": self.is_public,
        }

    def parameters(self) -> ParameterNamespace:
        """A new namespace of this program's inputs, all unset."""
        return ParameterNamespace(self._parameters)

    @property
    def program_id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def return_values(self) -> dict:
        return self._return_values

    @property
    def interim_results(self) -> dict:
        return self._interim_results

    @property
    def max_execution_time(self) -> int:
        """Seconds after which a job of this program is stopped."""
        return self._max_execution_time

    @property
    def backend_requirements(self) -> dict:
        return self._backend_requirements

    @property
    def creation_date(self) -> str:
        return self._creation_date

    @property
    def update_date(self) -> str:
        return self._update_date

    @property
    def is_public(self) -> bool:
        return self._is_public

    @property
    def data(self) -> str:
        """The program's source text; only its authors may read it.

        Raises:
            IBMQNotAuthorizedError: the server does not show the source to this caller.
        """
        if not self._data:
            self._refresh()
            if not self._data:
                from qruntime.exceptions import IBMQNotAuthorizedError

                raise IBMQNotAuthorizedError("Only program authors are authorized to retrieve program data")
        return self._data


def _schema_lines(schema: dict[str, Any]) -> list[str]:
    """The seed's rendering of one JSON schema: description, type, then each property."""
    lines = []
    if "description" in schema:
        lines.append(f"{INDENT * 4}Description: {schema['description']}")
    if "type" in schema:
        lines.append(f"{INDENT * 4}Type: {schema['type']}")
    if "properties" in schema:
        lines.append(f"{INDENT * 4}Properties:")
        required = schema.get("required", [])
        for name, details in schema["properties"].items():
            lines.append(f"{INDENT * 8}- {name}:")
            lines.extend(f"{INDENT * 12}{sentence_case(key)}: {value}" for key, value in details.items())
            lines.append(f"{INDENT * 12}Required: {name in required}")
    return lines


def sentence_case(camel: str) -> str:
    """``minItems`` → ``Min items``: a space before each capital, then sentence case."""
    spaced = re.sub("([A-Z])", r" \1", camel)
    return spaced[:1].upper() + spaced[1:].lower()


class ParameterNamespace(SimpleNamespace):
    """A program's inputs as attributes (tab-completable), checked by :meth:`validate`.

    Every declared parameter starts as ``None``. Extra attributes are allowed.
    Only the parameter values live in ``vars()``; the schema is kept in slots.
    """

    __slots__ = ("_metadata", "_properties")

    def __init__(self, parameters: dict[str, Any]) -> None:
        super().__init__()
        self._metadata = parameters
        self._properties: dict[str, dict] = dict(parameters.get("properties", {}))
        for name in self._properties:
            setattr(self, name, None)

    @property
    def metadata(self) -> dict[str, Any]:
        """The program's parameter schema, as the server described it."""
        return self._metadata

    def validate(self) -> None:
        """Check that every required parameter has a value (types are not checked).

        Raises:
            IBMQInputValueError: a required parameter is still ``None``.
        """
        required = self._metadata.get("required", [])
        for name in self._properties:
            if getattr(self, name, None) is None and name in required:
                from qruntime.exceptions import IBMQInputValueError

                raise IBMQInputValueError(f"Param ({name}) missing required value!")

    def to_inputs(self) -> dict[str, Any]:
        """The values to send: every attribute set, unset declared parameters left out.

        (The seed sent unset parameters as ``None``, overriding the program's defaults.)
        """
        return {name: value for name, value in vars(self).items()
                if not (value is None and name in self._properties)}

    def __str__(self) -> str:
        header = "| {:10.10} | {:12.12} | {:12.12} | {:8.8} | {:>15} |".format(
            "Name", "Value", "Type", "Required", "Description")
        required = self._metadata.get("required", [])
        rows = [
            "| {:10.10} | {:12.12} | {:12.12}| {:8.8} | {:>15} |".format(
                name, str(getattr(self, name, "None")), str(details.get("type", "None")),
                str(name in required), str(details.get("description", "None")))
            for name, details in self._properties.items()
        ]
        return "ParameterNamespace (Values):\n{}\n{}\n{}".format(header, "-" * len(header), "\n".join(rows))
