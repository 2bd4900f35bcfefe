"""The client commands of ``qruntime``, run as a user runs them, against a live stack."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qruntime.cli.client import CommandError, Progress, parse_inputs
from tests.harness import Stack

#: Modules that must not load for ``qruntime --help`` (slow) or in the client (server side).
HEAVY = ("qiskit", "qiskit_ibm_runtime", "qiskit_aer", "requests", "flask", "celery")
SERVER = ("flask", "celery", "api", "workers", "orchestrator", "gunicorn", "gevent")


def qruntime(stack: Stack, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
             binary: bool = False) -> subprocess.CompletedProcess:
    environment = {**os.environ, "QRT_URL": stack.url, **(env or {})}
    environment.pop("QRT_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "qruntime", *args], env=environment, input=stdin,
                          capture_output=True, text=not binary, timeout=180)


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
    assert missing.stderr == f"qruntime: Job not found: {job_id}\n"


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
    assert (missing.returncode, missing.stderr) == (1, "qruntime: Program not found: nope\n")
    backends = qruntime(stack, "backends").stdout.splitlines()
    assert backends[0].split() == ["NAME", "ALIASES", "QUBITS", "METHOD", "NOISY", "WORKERS"]
    assert "aer_simulator" in [b["name"] for b in json.loads(qruntime(stack, "backends", "--json").stdout)]


def test_run_needs_a_backend_and_an_unreachable_api_is_one_line(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QRT_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "qruntime", "run", "echo", "--url", stack.url],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("qruntime: --backend is required")
    unknown = qruntime(stack, "run", "echo", "--backend", "no_such_backend")
    assert unknown.returncode == 1 and unknown.stderr.startswith("qruntime: Unknown backend 'no_such_backend'")
    assert unknown.stderr.count("\n") == 1  # one line, no traceback
    down = subprocess.run([sys.executable, "-m", "qruntime", "jobs", "--url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 1
    assert down.stderr.startswith("qruntime: Cannot reach the qruntime API at http://127.0.0.1:9")


# -- the first hour (issue 14): one error format, API names, dates, UTF-8, follow, versions --------

#: A time zone with a half-hour offset and no daylight saving, as a POSIX TZ string (no tzdata needed).
INDIA = ("IST-5:30", timezone(timedelta(hours=5, minutes=30)))
ONE_ERROR_LINE = re.compile(r"qruntime: \S[^\n]*\n")


def local(value: str | float, zone: timezone = INDIA[1]) -> str:
    """What the CLI should print for an API time: ISO 8601 in the user's zone, to the second."""
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, timezone.utc)
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(zone).isoformat(timespec="seconds")


def test_every_command_group_fails_with_one_qruntime_line_and_exit_1(stack: Stack, tmp_path: Path) -> None:
    env = {"QRT_ACCOUNT_FILE": str(tmp_path / "account.json")}
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    failing = {
        "client": qruntime(stack, "job", "j-missing", env=env),
        "client run": qruntime(stack, "run", "echo", "--backend", "no_such_backend", env=env),
        "client result": qruntime(stack, "result", "j-missing", env=env),
        "client follow": qruntime(stack, "follow", "j-missing", env=env),
        "publishing": qruntime(stack, "delete-program", "nope", env=env),
        "publishing upload": qruntime(stack, "upload", str(tmp_path), "--metadata", str(tmp_path / "none.json"),
                                      env=env),
        "admin": qruntime(stack, "users", "set-role", "nobody", "user", env=env),
        "login": qruntime(stack, "logout", "http://127.0.0.1:9", env=env),
        "server": qruntime(stack, "up", "--port", str(busy.getsockname()[1]), "--data-dir", str(tmp_path / "up"),
                           env=env),
    }
    busy.close()
    for group, done in failing.items():
        assert done.returncode == 1, (group, done.stdout, done.stderr)
        assert ONE_ERROR_LINE.fullmatch(done.stderr), (group, done.stderr)
        assert "error:" not in done.stderr and " url: " not in done.stderr, (group, done.stderr)
    assert failing["client"].stderr == "qruntime: Job not found: j-missing\n"
    assert failing["publishing"].stderr == "qruntime: Program not found: nope\n"


def test_job_lists_details_versions_users_and_tokens_show_times_in_the_users_time_zone(
        stack: Stack, tmp_path: Path) -> None:
    env = {"TZ": INDIA[0]}
    job = stack.submit("echo", {"n": 1})
    stack.wait_status(job["id"])
    job = stack.job(job["id"])
    shown = qruntime(stack, "job", job["id"], env=env).stdout
    for field in ("created", "started", "ended"):
        assert f"{field.capitalize() + ':':<20}{local(job[field])}\n" in shown
    row = next(line for line in qruntime(stack, "jobs", "--limit", "0", env=env).stdout.splitlines()
               if line.startswith(job["id"]))
    assert row.split()[-1] == local(job["created"])

    program_id = _upload(stack, tmp_path, "timed", 'def main(backend, user_messenger, **kw):\n    return 1\n')
    versions = qruntime(stack, "versions", program_id, env=env)
    assert versions.returncode == 0, versions.stderr
    created = json.loads(qruntime(stack, "versions", program_id, "--json").stdout)[0]["created"]
    assert f"   1  {local(created)}  timed" in versions.stdout

    stack.add_users([("tz-user", "user")])
    _, info = stack.accounts.create_token("tz-user", expires_in_s=3600, description="expiring")
    tokens = qruntime(stack, "tokens", "list", "--user", "tz-user", env=env).stdout
    line = next(line for line in tokens.splitlines() if "expiring" in line)
    assert local(info.created) in line and f"expires {local(info.expires_at)}" in line
    users = qruntime(stack, "users", "list", env=env).stdout
    created_user = next(u for u in json.loads(qruntime(stack, "users", "list", "--json").stdout)
                        if u["name"] == "tz-user")["created"]
    assert any(line.split() == ["tz-user", "user", local(created_user)] for line in users.splitlines())


def test_json_output_is_utf8_with_non_ascii_characters_as_themselves(stack: Stack) -> None:
    done = qruntime(stack, "run", "echo", "--input", "greeting=héllo ✓ 量子", "--backend", "aer_simulator",
                    "--json", env={"PYTHONIOENCODING": "ascii"}, binary=True)
    assert done.returncode == 0, done.stderr
    assert "héllo ✓ 量子".encode() in done.stdout and b"\\u" not in done.stdout
    job_id = json.loads(done.stdout)["id"]
    stack.wait_status(job_id)
    for args in (("job", job_id), ("jobs", "--limit", "0"), ("result", job_id), ("follow", job_id)):
        shown = qruntime(stack, *args, "--json", env={"PYTHONIOENCODING": "ascii"}, binary=True)
        assert shown.returncode == 0, (args, shown.stderr)
        assert "héllo ✓ 量子".encode() in shown.stdout and b"\\u" not in shown.stdout, args


def test_backends_lists_each_backends_aliases(stack: Stack) -> None:
    rows = [line.split() for line in qruntime(stack, "backends").stdout.splitlines()]
    assert rows[0][:2] == ["NAME", "ALIASES"]
    assert next(row for row in rows if row[0] == "aer_simulator")[1] == "ibmq_qasm_simulator"


def test_options_are_named_as_the_apis_and_old_spellings_stay_as_hidden_aliases(stack: Stack) -> None:
    for _ in range(3):
        stack.submit("echo", {})
    everything = [j["id"] for j in json.loads(qruntime(stack, "jobs", "--limit", "0", "--json").stdout)]
    by_offset = qruntime(stack, "jobs", "--limit", "2", "--offset", "1", "--json")
    assert [j["id"] for j in json.loads(by_offset.stdout)] == everything[1:3]
    by_skip = qruntime(stack, "jobs", "--limit", "2", "--skip", "1", "--json")
    assert [j["id"] for j in json.loads(by_skip.stdout)] == everything[1:3]
    assert by_skip.stderr == "qruntime: --skip is deprecated; use --offset\n"
    programs = json.loads(qruntime(stack, "programs", "--offset", "1", "--limit", "1", "--json").stdout)
    assert programs == json.loads(qruntime(stack, "programs", "--json").stdout)[1:2]
    ran = qruntime(stack, "run", "echo", "--backend", "aer_simulator", "--loglevel", "info",
                   "--max-execution-time", "30", "--json")
    assert (json.loads(ran.stdout)["log_level"], json.loads(ran.stdout)["cost"]) == ("INFO", 30)
    assert ran.stderr == "qruntime: --loglevel is deprecated; use --log-level\n"
    assert "--skip" not in qruntime(stack, "jobs", "--help").stdout


def test_run_version_runs_an_old_version_of_a_program(stack: Stack, tmp_path: Path) -> None:
    program_id = _upload(stack, tmp_path, "versioned", 'def main(backend, user_messenger, **kw):\n    return "v1"\n')
    second = tmp_path / "versioned_v2.py"
    second.write_text('def main(backend, user_messenger, **kw):\n    return "v2"\n')
    updated = qruntime(stack, "update", program_id, str(second))
    assert updated.stdout == f"Updated {program_id}: now version 2\n", updated.stderr
    current = qruntime(stack, "run", program_id, "--backend", "aer_simulator", "--follow")
    old = qruntime(stack, "run", program_id, "--version", "1", "--backend", "aer_simulator", "--follow")
    assert current.stdout.splitlines()[-1] == "v2", current.stderr
    assert old.stdout.splitlines()[-1] == "v1", old.stderr
    job_id = old.stdout.splitlines()[0].removeprefix("job ID: ")
    assert stack.job(job_id)["program"] == {"id": program_id, "version": "1"}


def test_follow_replays_a_finished_jobs_status_changes_interim_results_and_logs_then_its_result(
        stack: Stack) -> None:
    job = stack.submit("speaker", {"interim": [{"iteration": 0}, {"iteration": 1}], "returns": "spoken",
                                   "iterations": 2})
    stack.wait_status(job["id"])
    done = qruntime(stack, "follow", job["id"], env={"TZ": INDIA[0]})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['[##########----------] 1/2 iteration 0: {"iteration": 0}',
                                        '[####################] 2/2 iteration 1: {"iteration": 1}', "spoken"]
    finished = stack.job(job["id"])
    status_lines = [line for line in done.stderr.splitlines() if line.startswith("[status] ")]
    assert status_lines == ["[status] QUEUED at " + local(finished["created"]),
                            "[status] RUNNING at " + local(finished["started"]),
                            "[status] COMPLETED at " + local(finished["ended"])]
    program_logs = [line for line in done.stderr.splitlines()  # without the worker's own sandbox line
                    if line.startswith("[log] ") and not line.startswith("[log] qruntime: ")]
    assert sorted(program_logs) == sorted([  # stdout and logging are separate pipes: no order between them
        "[log] printed line", "[log] WARNING:speaker:warning record", "[log] ERROR:speaker:error record"])

    as_json = [json.loads(line) for line in qruntime(stack, "follow", job["id"], "--json").stdout.splitlines()]
    assert [record["event"] for record in as_json if record["event"] != "log"] == [
        "status", "status", "interim", "interim", "status", "result"]
    assert "WARNING:speaker:warning record\n" in [record["data"]["text"] for record in as_json if record["event"] == "log"]
    assert as_json[-1] == {"event": "result", "id": job["id"], "status": "COMPLETED", "result": "spoken"}


def _upload(stack: Stack, tmp_path: Path, name: str, source: str) -> str:
    program = tmp_path / f"{name}.py"
    program.write_text(source)
    metadata = tmp_path / f"{name}.json"
    metadata.write_text(json.dumps({"name": name, "description": f"{name} for the CLI tests",
                                    "max_execution_time": 60}))
    uploaded = qruntime(stack, "upload", str(program), "--metadata", str(metadata), "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    return json.loads(uploaded.stdout)["id"]
