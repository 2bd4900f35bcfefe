"""RuntimeProgram and ParameterNamespace print and validate exactly as the seed did."""

from __future__ import annotations

import contextlib
import io

import pytest
import requests

from qruntime.client.program import ParameterNamespace, RuntimeProgram
from qruntime.client.service import RuntimeService
from qruntime.exceptions import IBMQInputValueError
from tests.harness import Stack

#: The seed's own published output for its hello-world program (Qiskit-Partners/qiskit-runtime,
#: tutorials/00_introduction.ipynb), the server having returned the schema keys sorted.
SEED_HELLO_WORLD = """hello-world:
  Name: hello-world
  Description: A sample runtime program.
  Creation date: 2021-07-02T13:45:13Z
  Update date: 2021-07-02T13:45:13Z
  Max execution time: 300
  Input parameters:
    Properties:
        - iterations:
            Description: Number of iterations to run. Each iteration generates a runs a random circuit.
            Minimum: 0
            Type: integer
            Required: True
  Interim results:
    Properties:
        - counts:
            Description: Histogram data of the circuit result.
            Type: object
            Required: False
        - iteration:
            Description: Iteration number.
            Type: integer
            Required: False
  Returns:
    Description: A string that says 'All done!'.
    Type: string"""

RUNTIME_SIMPLE = """runtime-simple:
  Name: runtime-simple
  Description: Simple runtime program used for testing.
  Creation date: {creation_date}
  Update date: {update_date}
  Max execution time: 300
  Input parameters:
    Type: object
    Properties:
        - iterations:
            Description: Number of iterations to run. Each iteration generates and runs a random circuit.
            Type: integer
            Required: True
  Interim results:
    Type: object
    Properties:
        - iteration:
            Description: Iteration number.
            Type: integer
            Required: False
        - counts:
            Description: Histogram data of the circuit result.
            Type: object
            Required: False
  Returns:
    Description: A string that says 'All done!'.
    Type: string"""

RUNTIME_SIMPLE_SUMMARY = """==================================================
runtime-simple:
  Name: runtime-simple
  Description: Simple runtime program used for testing.
"""


def seed_hello_world_json() -> dict:
    return {
        "id": "hello-world", "name": "hello-world", "description": "A sample runtime program.",
        "cost": 300, "creation_date": "2021-07-02T13:45:13Z", "update_date": "2021-07-02T13:45:13Z",
        "is_public": True,
        "spec": {
            "parameters": {"properties": {"iterations": {
                "description": "Number of iterations to run. Each iteration generates a runs a random circuit.",
                "minimum": 0, "type": "integer"}}, "required": ["iterations"]},
            "interim_results": {"properties": {
                "counts": {"description": "Histogram data of the circuit result.", "type": "object"},
                "iteration": {"description": "Iteration number.", "type": "integer"}}},
            "return_values": {"description": "A string that says 'All done!'.", "type": "string"},
        },
    }


def test_str_of_a_program_is_byte_identical_to_the_seeds_published_output() -> None:
    assert str(RuntimeProgram.from_api(seed_hello_world_json())) == SEED_HELLO_WORLD


def test_a_program_without_schemas_prints_none_under_each_heading() -> None:
    text = str(RuntimeProgram("bare", "bare-1", "Nothing declared.", max_execution_time=60))
    assert text.endswith("  Input parameters:\n    none\n  Interim results:\n    none\n  Returns:\n    none")


def test_camel_case_schema_keys_print_in_sentence_case_and_lists_as_python_reprs() -> None:
    program = RuntimeProgram("p", "p", "d", parameters={"properties": {
        "circuits": {"minItems": 1, "type": ["object", "array"]}}})
    assert "            Min items: 1\n            Type: ['object', 'array']\n            Required: False" in str(program)


def test_parameter_namespace_requires_required_values_with_the_seeds_message() -> None:
    namespace = RuntimeProgram.from_api(seed_hello_world_json()).parameters()
    assert namespace.iterations is None
    with pytest.raises(IBMQInputValueError, match=r"^'Param \(iterations\) missing required value!'$"):
        namespace.validate()
    namespace.iterations = 2
    namespace.extra = "allowed"
    namespace.validate()
    assert namespace.to_inputs() == {"iterations": 2, "extra": "allowed"}


def test_parameter_namespace_sends_no_unset_parameters_and_no_private_state() -> None:
    namespace = ParameterNamespace({"properties": {"a": {"type": "integer"}, "b": {}}})
    namespace.a = 1
    assert vars(namespace) == {"a": 1, "b": None}
    assert namespace.to_inputs() == {"a": 1}
    assert namespace.metadata == {"properties": {"a": {"type": "integer"}, "b": {}}}


def test_parameter_namespace_prints_the_seeds_table() -> None:
    namespace = RuntimeProgram.from_api(seed_hello_world_json()).parameters()
    namespace.iterations = 3
    header = "| Name       | Value        | Type         | Required |     Description |"
    row = ("| iterations | 3            | integer     | True     | Number of iterations to run. "
           "Each iteration generates a runs a random circuit. |")
    assert str(namespace) == f"ParameterNamespace (Values):\n{header}\n{'-' * len(header)}\n{row}"


def test_each_call_to_parameters_returns_a_fresh_namespace() -> None:
    program = RuntimeProgram.from_api(seed_hello_world_json())
    first = program.parameters()
    first.iterations = 5
    assert program.parameters().iterations is None


# -- against the live server --------------------------------------------------------------


def test_str_of_runtime_simple_from_the_server_is_the_seed_format(stack: Stack) -> None:
    raw = requests.get(f"{stack.url}/programs/runtime-simple", timeout=30).json()
    program = RuntimeService(url=stack.url).program("runtime-simple")
    expected = RUNTIME_SIMPLE.format(creation_date=raw["creation_date"], update_date=raw["update_date"])
    assert str(program) == expected


def test_pprint_programs_prints_runtime_simple_in_the_seed_format(stack: Stack) -> None:
    service = RuntimeService(url=stack.url)
    ids = [p["id"] for p in requests.get(f"{stack.url}/programs?limit=1000", timeout=30).json()["programs"]]
    index = ids.index("runtime-simple")

    summary = _printed(lambda: service.pprint_programs(limit=1, skip=index))
    assert summary == RUNTIME_SIMPLE_SUMMARY
    raw = requests.get(f"{stack.url}/programs/runtime-simple", timeout=30).json()
    detailed = _printed(lambda: service.pprint_programs(detailed=True, limit=1, skip=index))
    assert detailed == "=" * 50 + "\n" + RUNTIME_SIMPLE.format(
        creation_date=raw["creation_date"], update_date=raw["update_date"]) + "\n"
    everything = _printed(lambda: service.pprint_programs(refresh=True, limit=None))
    assert everything.count("=" * 50 + "\n") == len(ids)
    assert RUNTIME_SIMPLE_SUMMARY in everything
    assert "Max execution time" not in everything


def _printed(action) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        action()
    return buffer.getvalue()
