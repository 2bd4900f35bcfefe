"""The backend catalogue: what it lists, who serves it, how jobs route, how fast it transpiles.

One stack for the module, whose only worker serves ``ibmq_montreal``: it runs
montreal jobs (with the device's noise) and never takes ``aer_simulator`` ones,
which stay QUEUED and say why. The in-process tests build every backend the way
a worker does and check the static facts the API serves without qiskit.

Measured on the 2-core dev machine (5-qubit random circuit, depth 4, warm):
``transpile(qc, AerSimulator())`` 87 ms; with the catalogue's cached target
11 ms; ``backend.pass_manager().run(qc)`` 7 ms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrator.backends import CATALOGUE, find_backend, groups, queue_for_group
from qruntime.cli.server import worker_command
from tests.harness import Stack

MONTREAL_WORKER = "montreal-only@test"


@pytest.fixture(scope="module")
def montreal_stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        stack.start_worker(concurrency=1, backends="ibmq_montreal", name=MONTREAL_WORKER)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def bell_circuit():
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def encode(value: object) -> dict:
    """Inputs as the client sends them: RuntimeEncoder JSON, parsed back to a JSON object."""
    from qiskit_ibm_runtime.json import RuntimeEncoder

    return json.loads(json.dumps(value, cls=RuntimeEncoder))


def decode(text: str) -> object:
    from qiskit_ibm_runtime.json import RuntimeDecoder

    return json.loads(text, cls=RuntimeDecoder)


# -- the catalogue over HTTP ------------------------------------------------------------


def test_backends_lists_the_catalogue_with_facts_and_serving_workers(montreal_stack: Stack) -> None:
    body = montreal_stack.http.get(montreal_stack.url + "/backends", timeout=30).json()
    entries = {b["name"]: b for b in body["backends"]}
    assert body["count"] == len(CATALOGUE)
    montreal = entries["ibmq_montreal"]
    assert montreal["num_qubits"] == 27
    assert montreal["noisy"] is True
    assert montreal["coupling_map_size"] == 56
    assert montreal["basis_gates"] == ["cx", "id", "rz", "sx", "x"]
    assert montreal["device"] == "FakeMontrealV2"
    assert montreal["queue"] == "qruntime.ibmq_montreal"
    assert montreal["workers"] == [MONTREAL_WORKER] and montreal["served"] is True
    ideal = entries["aer_simulator"]
    assert ideal["noisy"] is False and ideal["coupling_map_size"] is None
    assert ideal["simulator_method"] == "automatic"
    assert ideal["workers"] == [] and ideal["served"] is False
    assert entries["aer_simulator_matrix_product_state"]["simulator_method"] == "matrix_product_state"


def test_unknown_backend_is_a_400_naming_it(montreal_stack: Stack) -> None:
    body = {"program_id": "hello-world", "backend": "ibmq_nowhere", "params": {"iterations": 1}}
    response = montreal_stack.http.post(montreal_stack.url + "/jobs", data=json.dumps(body), timeout=30)
    assert response.status_code == 400
    assert "ibmq_nowhere" in response.json()["message"]
    assert "ibmq_montreal" in response.json()["message"]  # it lists what exists


def test_backend_too_small_for_the_program_is_a_400_naming_both(montreal_stack: Stack) -> None:
    body = {"program_id": "hello-world", "backend": "ibmq_armonk", "params": {"iterations": 1}}
    response = montreal_stack.http.post(montreal_stack.url + "/jobs", data=json.dumps(body), timeout=30)
    assert response.status_code == 400
    message = response.json()["message"]
    assert "ibmq_armonk" in message and "1 qubits" in message and "hello-world" in message and "5" in message


def test_montreal_worker_runs_montreal_jobs_and_leaves_aer_jobs_queued(montreal_stack: Stack) -> None:
    waiting = montreal_stack.submit("hello-world", {"iterations": 1}, backend="aer_simulator")
    assert "No live worker serves backend aer_simulator" in waiting["waiting_reason"]
    noisy = montreal_stack.submit(
        "sampler", encode({"pubs": [[bell_circuit()]], "shots": 4000, "seed": 11}), backend="ibmq_montreal"
    )
    assert "waiting_reason" not in noisy
    done = montreal_stack.wait_status(noisy["id"], timeout=180)
    assert done["status"] == "COMPLETED", montreal_stack.result_text(noisy["id"])
    counts = decode(montreal_stack.result_text(noisy["id"]))[0].data.meas.get_counts()
    assert counts.get("01", 0) + counts.get("10", 0) > 0  # the replica's noise shows
    assert counts["00"] + counts["11"] > 0.8 * 4000
    still = montreal_stack.job(waiting["id"])
    assert still["status"] == "QUEUED" and "aer_simulator" in still["waiting_reason"]
    listed = montreal_stack.http.get(f"{montreal_stack.url}/jobs", params={"pending": "true"}, timeout=30).json()
    in_list = next(j for j in listed["jobs"] if j["id"] == waiting["id"])
    assert "aer_simulator" in in_list["waiting_reason"]  # the listing says why, too
    response = montreal_stack.http.post(f"{montreal_stack.url}/jobs/{waiting['id']}/cancel", timeout=30)
    assert response.json()["status"] == "CANCELLED"


def test_fake_device_name_is_an_alias_of_the_replica(montreal_stack: Stack) -> None:
    job = montreal_stack.submit("hello-world", {"iterations": 1}, backend="fake_montreal")
    assert job["backend"] == "ibmq_montreal"
    assert montreal_stack.wait_status(job["id"], timeout=180)["status"] == "COMPLETED"


# -- queues -------------------------------------------------------------------------------


def test_worker_subscribes_to_the_queues_of_its_backends_only() -> None:
    command = worker_command(backends="ibmq_montreal, fake_manila")
    queues = command[command.index("--queues") + 1].split(",")
    assert queues == ["qruntime.ibmq_manila", "qruntime.ibmq_montreal"]
    everything = worker_command()
    assert everything[everything.index("--queues") + 1].split(",") == [queue_for_group(g) for g in groups()]


def test_ideal_simulators_share_a_queue_and_each_device_has_its_own() -> None:
    assert find_backend("aer_simulator").queue == find_backend("aer_simulator_statevector").queue
    devices = [info for info in CATALOGUE if info.device]
    assert len({info.queue for info in devices}) == len(devices)
    assert find_backend("ibmq_montreal").device == "FakeMontrealV2"


# -- the backend objects (built in this process, as a worker builds them) ------------------


def test_static_catalogue_matches_the_backends_workers_build() -> None:
    from workers.backends import describe, get_backend

    for info in CATALOGUE:
        facts = describe(get_backend(info.name))
        expected = {key: getattr(info, key) for key in facts}
        if info.device is None:  # Aer lowers ideal qubit counts on hosts with less memory
            expected["num_qubits"] = facts["num_qubits"] = min(facts["num_qubits"], info.num_qubits)
        assert facts == expected, info.name
        assert get_backend(info.name).name == info.name


def test_backend_keeps_its_target_and_transpiles_like_a_fresh_simulator() -> None:
    from qiskit import transpile
    from qiskit.circuit.random import random_circuit
    from qiskit_aer import AerSimulator

    from workers.backends import get_backend

    backend = get_backend("aer_simulator")
    assert backend.target is backend.target
    circuit = random_circuit(5, 4, measure=True, seed=3)
    ours = transpile(circuit, backend, seed_transpiler=5)
    theirs = transpile(circuit, AerSimulator(), seed_transpiler=5)
    assert ours == theirs
    assert backend.pass_manager(1) is backend.pass_manager(1)


@pytest.mark.parametrize("name", ["aer_simulator", "ibmq_montreal"])
def test_seeded_runs_are_reproducible(name: str) -> None:
    from qiskit import transpile

    from workers.backends import get_backend

    backend = get_backend(name)
    circuit = transpile(bell_circuit(), backend, seed_transpiler=1)
    first = backend.run(circuit, shots=500, seed_simulator=1234).result().get_counts()
    second = backend.run(circuit, shots=500, seed_simulator=1234).result().get_counts()
    assert first == second
