"""RuntimeService against a live stack: the seed README's example, programs, jobs, backends."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import requests
from qiskit.providers import JobStatus

from qruntime.client import http as http_module
from qruntime.client.job import RuntimeJob
from qruntime.client.program import RuntimeProgram
from qruntime.client.service import RuntimeService
from qruntime.exceptions import (
    IBMQInputValueError,
    QiskitBackendNotFoundError,
    RequestsApiError,
    RuntimeJobNotFound,
    RuntimeProgramNotFound,
)
from tests.harness import Stack, wait_for

#: The seed README's example; only the line that obtains ``provider`` differs
#: (it was ``IBMQ.load_account()`` + ``IBMQ.get_provider(hub=..., group=..., project=...)``),
#: and the program is the seed's test program under its real name.
README_EXAMPLE = """
from qruntime import RuntimeService
provider = RuntimeService()
provider.runtime.pprint_programs()
print(provider.runtime.program('runtime-simple'))

def interim_result_callback(job_id, interim_result):
    print(f"interim result: {interim_result}")

backend = provider.get_backend('ibmq_qasm_simulator')
program_inputs = {
    'iterations': 3
}
options = {'backend_name': backend.name()}
job = provider.runtime.run(program_id="runtime-simple",
                           options=options,
                           inputs=program_inputs,
                           callback=interim_result_callback
                          )
print(f"job ID: {job.job_id()}")
result = job.result()
print(result)
provider.runtime.delete_job(job.job_id())
"""


@pytest.fixture
def service(stack: Stack) -> RuntimeService:
    return RuntimeService(url=stack.url)


def test_the_seed_readme_example_runs_with_only_the_service_line_changed(stack: Stack, tmp_path) -> None:
    env = {**os.environ, "QRT_URL": stack.url, "QRT_ACCOUNT_FILE": str(tmp_path / "none.json")}
    env.pop("QRT_TOKEN", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(README_EXAMPLE)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    raw = requests.get(f"{stack.url}/programs/runtime-simple", timeout=30).json()
    program_text = str(RuntimeProgram.from_api(raw))
    summary, _, rest = out.partition(program_text + "\n")
    # pprint_programs lists the first page (the seed's limit of 20; the test stack serves more programs).
    entries = re.findall(r"={50}\n([\w.-]+):\n  Name: \1\n", summary)
    assert len(entries) == 20, summary
    lines = rest.splitlines()
    assert lines[0].startswith("job ID: ")
    assert [line.split("'counts'")[0] for line in lines[1:4]] == [
        f"interim result: {{'iteration': {i}, " for i in range(3)]
    assert lines[4:] == ["All done!"]
    job_id = lines[0].removeprefix("job ID: ")
    assert requests.get(f"{stack.url}/jobs/{job_id}", timeout=30).status_code == 404


def test_programs_are_cached_until_refresh_and_sliced_by_limit_and_skip(service: RuntimeService,
                                                                        stack: Stack) -> None:
    ids = [p["id"] for p in requests.get(f"{stack.url}/programs?limit=1000", timeout=30).json()["programs"]]
    assert [p.program_id for p in service.programs(limit=None)] == ids
    assert [p.program_id for p in service.programs()] == ids[:20]
    assert [p.program_id for p in service.programs(limit=2, skip=1)] == ids[1:3]
    assert service.programs(refresh=True, limit=None, skip=len(ids)) == []


def test_listing_programs_walks_every_page(service: RuntimeService, stack: Stack,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "PAGE_SIZE", 3)
    total = requests.get(f"{stack.url}/programs?limit=1000", timeout=30).json()["count"]
    assert total > 3
    assert len(service.programs(refresh=True, limit=None)) == total


def test_program_fetches_one_program_and_a_cached_program_does_not_hide_the_rest(
        service: RuntimeService) -> None:
    program = service.program("runtime-simple")
    assert program.name == "runtime-simple"
    assert program.max_execution_time == 300
    assert program.backend_requirements == {"min_num_qubits": 5}
    assert service.program("runtime-simple") is program
    assert service.program("runtime-simple", refresh=True) is not program
    assert len(service.programs()) > 1


def test_an_unknown_program_raises_runtime_program_not_found(service: RuntimeService) -> None:
    with pytest.raises(RuntimeProgramNotFound) as caught:
        service.program("no-such-program")
    assert caught.value.message == "Program not found: no-such-program"


def test_run_validates_options_before_sending_anything(service: RuntimeService) -> None:
    with pytest.raises(IBMQInputValueError, match="backend_name"):
        service.run("echo", options={}, inputs={})
    with pytest.raises(TypeError):
        service.run("echo", options={"backend_name": "aer_simulator", "bogus": 1}, inputs={})
    with pytest.raises(IBMQInputValueError, match="missing required value"):
        service.run("runtime-simple", options={"backend_name": "aer_simulator"},
                    inputs=service.program("runtime-simple").parameters())


def test_run_on_an_unknown_backend_raises_backend_not_found(service: RuntimeService) -> None:
    with pytest.raises(QiskitBackendNotFoundError, match="no_such_backend"):
        service.run("echo", options={"backend_name": "no_such_backend"}, inputs={})


def test_run_of_an_unknown_program_is_a_requests_api_error(service: RuntimeService) -> None:
    with pytest.raises(RequestsApiError) as caught:
        service.run("no-such-program", options={"backend_name": "aer_simulator"}, inputs={})
    assert caught.value.status_code == 404


def test_run_takes_a_parameter_namespace_and_sends_only_set_values(service: RuntimeService) -> None:
    inputs = RuntimeProgram("echo", "echo", "", parameters={"properties": {"a": {}, "b": {}}}).parameters()
    inputs.a = [1, 2]
    job = service.run("echo", options={"backend_name": "aer_simulator", "log_level": "INFO"}, inputs=inputs)
    assert job.result(timeout=60) == {"a": [1, 2]}
    assert job.inputs == {"a": [1, 2]}


def test_job_returns_a_job_with_its_decoded_inputs(service: RuntimeService, stack: Stack) -> None:
    submitted = stack.submit("echo", {"z": {"__type__": "complex", "__value__": [1, 2]}})
    job = service.job(submitted["id"])
    assert isinstance(job, RuntimeJob)
    assert job.job_id() == submitted["id"]
    assert job.program_id == "echo"
    assert job.inputs == {"z": 1 + 2j}
    assert job.result(timeout=60) == {"z": 1 + 2j}


def test_an_unknown_job_raises_runtime_job_not_found(service: RuntimeService) -> None:
    with pytest.raises(RuntimeJobNotFound) as caught:
        service.job("no-such-job")
    assert caught.value.message == "Job not found: no-such-job"
    with pytest.raises(RuntimeJobNotFound):
        service.delete_job("no-such-job")


def test_delete_job_removes_a_running_job(service: RuntimeService) -> None:
    job = service.run("holder", options={"backend_name": "aer_simulator"}, inputs={})
    wait_for(lambda: job.status() is JobStatus.RUNNING, message="holder to run")
    service.delete_job(job.job_id())
    with pytest.raises(RuntimeJobNotFound):
        service.job(job.job_id())


def test_jobs_pages_through_the_listing_with_limit_skip_pending_and_program(
        service: RuntimeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "PAGE_SIZE", 2)
    options = {"backend_name": "aer_simulator"}
    mine = [service.run("echo", options=options, inputs={"n": n}) for n in range(5)]
    for job in mine:
        job.wait_for_final_state(timeout=60)
    running = service.run("holder", options=options, inputs={})
    try:
        wait_for(lambda: running.status() is JobStatus.RUNNING, message="holder to run")
        echo_jobs = [j.job_id() for j in service.jobs(limit=None, program_id="echo")]
        assert echo_jobs[:5] == [j.job_id() for j in reversed(mine)]
        assert [j.job_id() for j in service.jobs(limit=3, program_id="echo")] == echo_jobs[:3]
        assert [j.job_id() for j in service.jobs(limit=3, skip=2, program_id="echo")] == echo_jobs[2:5]
        assert service.jobs(limit=None, skip=len(echo_jobs) + 5, program_id="echo") == []
        everything = [j.job_id() for j in service.jobs(limit=None)]
        assert [j.job_id() for j in service.jobs()] == everything[:10]

        pending = service.jobs(limit=None, pending=True)
        assert running.job_id() in [j.job_id() for j in pending]
        assert all(j.status() in (JobStatus.QUEUED, JobStatus.RUNNING) for j in pending)
        finished = [j.job_id() for j in service.jobs(limit=None, pending=False)]
        assert running.job_id() not in finished
        assert {j.job_id() for j in mine} <= set(finished)
    finally:
        running.cancel()


def test_backends_lists_the_catalogue_by_name(service: RuntimeService) -> None:
    names = [b.name for b in service.backends()]
    assert "aer_simulator" in names
    backend = service.get_backend("ibmq_qasm_simulator")
    assert backend.name == "aer_simulator" and backend.name() == "aer_simulator"
    assert backend.num_qubits and backend.num_qubits >= 5
    with pytest.raises(QiskitBackendNotFoundError):
        service.get_backend("no_such_backend")
