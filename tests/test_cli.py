"""The client commands of ``qruntime``, run as a user runs them, against a live stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qruntime.cli.client import CommandError, Progress, parse_inputs
from tests.harness import Stack

#: Modules that must not load for ``qruntime --help`` (slow) or in the client (server side).
HEAVY = ("qiskit", "qiskit_ibm_runtime", "qiskit_aer", "requests", "flask", "celery")
SERVER = ("flask", "celery", "api", "workers", "orchestrator", "gunicorn", "gevent")


def qruntime(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QRT_URL": stack.url}
    env.pop("QRT_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "qruntime", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=180)


def loaded_after(code: str, prefixes: tuple[str, ...]) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(prefixes)!r})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().replace("'", '"'))


def test_help_and_command_registration_import_nothing_heavy() -> None:
    assert loaded_after("from qruntime.cli import build_parser; build_parser()", HEAVY) == []
    assert loaded_after("import qruntime", HEAVY) == []


def test_the_client_imports_no_server_package() -> None:
    code = ("import qruntime\nqruntime.RuntimeService, qruntime.RuntimeJob, qruntime.exceptions\n"
            "import qruntime.cli.client, qruntime.client.streaming")
    assert loaded_after(code, SERVER) == []


def test_help_lists_the_client_commands() -> None:
    done = subprocess.run([sys.executable, "-m", "qruntime", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    for command in ("programs", "program", "run", "jobs", "job", "result", "logs", "cancel", "delete",
                    "backends"):
        assert f"\n    {command} " in done.stdout


def test_inputs_parse_as_json_when_they_parse_else_as_strings(tmp_path: Path) -> None:
    file = tmp_path / "inputs.json"
    file.write_text('{"a": 1, "b": "from file"}')
    assert parse_inputs(["b=2", "c=[1, 2]", "d=hello", "e=", "f=a=b"], str(file)) == {
        "a": 1, "b": 2, "c": [1, 2], "d": "hello", "e": "", "f": "a=b"}
    with pytest.raises(CommandError, match="KEY=VALUE"):
        parse_inputs(["novalue"], None)
    file.write_text("[1]")
    with pytest.raises(CommandError, match="JSON object"):
        parse_inputs([], str(file))


def test_progress_shows_a_bar_when_interim_results_count_iterations() -> None:
    progress = Progress(total=4)
    assert progress.line('{"iteration": 0}') == '[#####---------------] 1/4 iteration 0: {"iteration": 0}'
    assert Progress(total=None).line('{"x": 1}') == 'interim result: {"x": 1}'


def test_run_follow_shows_each_interim_result_then_the_result(stack: Stack) -> None:
    done = qruntime(stack, "run", "runtime-simple", "--input", "iterations=5", "--backend", "aer_simulator",
                    "--follow")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("job ID: ")
    assert [line.split(": {")[0] for line in lines[1:6]] == [
        f"[{'#' * (4 * i)}{'-' * (20 - 4 * i)}] {i}/5 iteration {i - 1}" for i in range(1, 6)]
    assert lines[6:] == ["All done!"]


def test_run_then_job_result_logs_jobs_and_delete(stack: Stack, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text('{"from_file": true}')
    done = qruntime(stack, "run", "echo", "--inputs", str(inputs), "--input", "n=3", "--input", "s=text",
                    "--backend", "aer_simulator", "--json")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]

    result = qruntime(stack, "result", job_id, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"event": "result", "id": job_id, "status": "COMPLETED",
                                         "result": {"from_file": True, "n": 3, "s": "text"}}
    shown = qruntime(stack, "job", job_id)
    assert "Status:             COMPLETED" in shown.stdout
    assert json.loads(qruntime(stack, "job", job_id, "--json").stdout)["params"] == {
        "from_file": True, "n": 3, "s": "text"}
    assert qruntime(stack, "logs", job_id).returncode == 0

    listed = json.loads(qruntime(stack, "jobs", "--program", "echo", "--finished", "--limit", "50",
                                 "--json").stdout)
    assert job_id in [j["id"] for j in listed]
    assert all(j["program"]["id"] == "echo" and j["status"] == "COMPLETED" for j in listed)
    table = qruntime(stack, "jobs", "--limit", "50").stdout.splitlines()
    assert table[0].split() == ["ID", "STATUS", "PROGRAM", "BACKEND", "CREATED"]
    assert any(line.startswith(job_id) for line in table[1:])

    deleted = qruntime(stack, "delete", job_id)
    assert deleted.stdout == f"Job {job_id} deleted.\n"
    missing = qruntime(stack, "job", job_id)
    assert missing.returncode == 1
    assert missing.stderr == f"error: Job not found: {job_id}\n"


def test_cancel_stops_a_running_job_and_pending_lists_it_until_then(stack: Stack) -> None:
    job_id = qruntime(stack, "run", "holder", "--backend", "aer_simulator").stdout.split()[-1]
    pending = json.loads(qruntime(stack, "jobs", "--pending", "--limit", "100", "--json").stdout)
    assert job_id in [j["id"] for j in pending]
    done = qruntime(stack, "cancel", job_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Job {job_id} cancelled (CANCELLED).\n"
    again = qruntime(stack, "cancel", job_id)
    assert again.returncode == 1 and "cannot be cancelled" in again.stderr


def test_a_failed_job_prints_the_seeds_error_message_and_exits_1(stack: Stack) -> None:
    done = qruntime(stack, "run", "raiser", "--backend", "aer_simulator", "--follow")
    assert done.returncode == 1
    job_id = done.stdout.splitlines()[0].removeprefix("job ID: ")
    assert f"Job {job_id} has failed:\nTraceback" in done.stderr
    assert "KeyError" in done.stderr
    assert "interim result: " in done.stdout


def test_programs_program_and_backends(stack: Stack) -> None:
    programs = qruntime(stack, "programs")
    assert ("==================================================\nruntime-simple:\n  Name: runtime-simple\n"
            "  Description: Simple runtime program used for testing.\n") in programs.stdout
    detailed = qruntime(stack, "program", "runtime-simple")
    assert detailed.stdout.startswith("runtime-simple:\n  Name: runtime-simple\n")
    assert "  Max execution time: 300\n" in detailed.stdout
    assert json.loads(qruntime(stack, "program", "runtime-simple", "--json").stdout)["cost"] == 300
    missing = qruntime(stack, "program", "nope")
    assert (missing.returncode, missing.stderr) == (1, "error: Program not found: nope\n")
    backends = qruntime(stack, "backends").stdout.splitlines()
    assert backends[0].split() == ["NAME", "QUBITS", "METHOD", "NOISY", "WORKERS"]
    assert "aer_simulator" in [b["name"] for b in json.loads(qruntime(stack, "backends", "--json").stdout)]


def test_run_needs_a_backend_and_an_unreachable_api_is_one_line(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QRT_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "qruntime", "run", "echo", "--url", stack.url],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("error: --backend is required")
    unknown = qruntime(stack, "run", "echo", "--backend", "no_such_backend")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: Unknown backend 'no_such_backend'")
    assert unknown.stderr.count("\n") == 1  # one line, no traceback
    down = subprocess.run([sys.executable, "-m", "qruntime", "jobs", "--url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 1
    assert down.stderr.startswith("error: Cannot reach the qruntime API at http://127.0.0.1:9")
