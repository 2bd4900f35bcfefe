"""The sandboxed child, seen from outside: how each way a program can end is recorded.

Every test runs a real program in a real worker's forked child (the session
``stack``) and reads the outcome over HTTP: final status, reason, result text and
logs. After each crash the same worker must still run the next job.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import time

import requests

from tests.harness import Stack, running_stack, sandbox_of, wait_for, wait_job_gone

#: Generous bound for a short job on a busy 2-core machine.
JOB_DEADLINE_S = 60.0


def _logs(stack: Stack, job_id: str) -> str:
    response = stack.http.get(f"{stack.url}/jobs/{job_id}/logs", timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def _run(stack: Stack, program_id: str, params: dict | None = None, **fields: object) -> dict:
    job = stack.submit(program_id, params, **fields)
    return stack.wait_status(job["id"], timeout=JOB_DEADLINE_S)


def _assert_worker_still_runs_jobs(stack: Stack) -> None:
    final = _run(stack, "echo", {"still": "alive"})
    assert final["status"] == "COMPLETED", final
    assert json.loads(stack.result_text(final["id"])) == {"still": "alive"}


def test_program_that_raises_fails_with_its_traceback_and_keeps_its_output(stack: Stack) -> None:
    final = _run(stack, "raiser")
    assert final["status"] == "FAILED"
    assert "KeyError" in final["reason"]
    text = stack.result_text(final["id"])
    assert "Traceback (most recent call last)" in text
    assert "KeyError: 'missing-key'" in text
    assert "raiser.py" in text  # the frame of the program's own file
    assert "about to fail" in _logs(stack, final["id"])


def test_os_exit_fails_with_the_exit_code_and_the_worker_lives_on(stack: Stack) -> None:
    final = _run(stack, "exiter", {"code": 3})
    assert final["status"] == "FAILED"
    assert "exited with code 3" in final["reason"]
    assert "exited with code 3" in stack.result_text(final["id"])
    assert "leaving abruptly" in _logs(stack, final["id"])
    _assert_worker_still_runs_jobs(stack)


def test_segfault_fails_naming_the_signal_and_the_worker_lives_on(stack: Stack) -> None:
    final = _run(stack, "segfault")
    assert final["status"] == "FAILED"
    assert "SIGSEGV" in final["reason"]
    assert "segmentation fault" in stack.result_text(final["id"])
    assert "Fatal Python error" in _logs(stack, final["id"])  # faulthandler's dump
    _assert_worker_still_runs_jobs(stack)


def test_memory_hog_fails_with_memory_error_and_the_worker_lives_on(stack: Stack) -> None:
    final = _run(stack, "memhog", {"chunk_mb": 256})
    assert final["status"] == "FAILED"
    assert "MemoryError" in final["reason"]
    assert "MemoryError" in stack.result_text(final["id"])
    _assert_worker_still_runs_jobs(stack)


def test_program_sees_no_qruntime_settings_a_fresh_cwd_and_only_its_pipes(stack: Stack) -> None:
    final = _run(stack, "envreader")
    assert final["status"] == "COMPLETED", final
    seen = json.loads(stack.result_text(final["id"]))
    environ = seen["environ"]
    assert not [name for name in environ if name.startswith("QRT_")]
    assert stack.settings.redis_url not in json.dumps(environ)
    assert environ["QISKIT_IN_PARALLEL"] == "TRUE"
    assert seen["cwd"] == environ["HOME"] == environ["TMPDIR"] == "/job"  # its own scratch
    # Beyond stdin/stdout/stderr only the message pipe is open; the descriptor
    # listdir used to list /proc/self/fd was closed before readlink ran.
    extra = {int(fd): target for fd, target in seen["fd_targets"].items() if int(fd) > 2}
    assert len(extra) == 1 and next(iter(extra.values())).startswith("pipe:"), extra
    assert len(seen["fds"]) - len(seen["fd_targets"]) <= 1, seen


def test_a_program_finds_the_modules_programs_use_imported_and_not_the_ibm_client(stack: Stack) -> None:
    """The zygote imported them once (workers/zygote.py WARM_MODULES): a VQE's first call to
    scipy.optimize costs no import. The IBM client, which no job uses, stays out of every fork."""
    from workers.zygote import WARM_MODULES

    client = "qiskit_ibm_runtime.qiskit_runtime_service"
    final = _run(stack, "envreader", {"modules": [*WARM_MODULES, "qiskit_ibm_runtime.json", client]})
    assert final["status"] == "COMPLETED", final
    loaded = json.loads(stack.result_text(final["id"]))["loaded"]
    assert loaded == [*WARM_MODULES, "qiskit_ibm_runtime.json"]


def test_each_job_starts_in_an_empty_scratch_that_no_later_job_sees(stack: Stack) -> None:
    first = json.loads(stack.result_text(_run(stack, "scratch", {"marker": "first"})["id"]))
    second = json.loads(stack.result_text(_run(stack, "scratch", {"marker": "second"})["id"]))
    assert first["cwd"] == second["cwd"]
    assert "first" not in second["found"] and not [n for n in second["found"] if not n.startswith(".")]


def test_transpiling_in_the_child_after_the_warm_worker_transpiled_does_not_hang(stack: Stack) -> None:
    """DESIGN §3: without QISKIT_IN_PARALLEL=TRUE this deadlocks every time.

    The worker's pool processes transpile during warm-up; runtime-simple
    transpiles again in the forked child. A deadlock shows as a timeout here.
    """
    final = _run(stack, "runtime-simple", {"iterations": 2})
    assert final["status"] == "COMPLETED", final
    assert stack.result_text(final["id"]) == "All done!"


def test_info_log_lines_appear_only_when_the_job_asks_for_info(stack: Stack) -> None:
    at_info = _run(stack, "logger", log_level="INFO")
    at_default = _run(stack, "logger")
    assert at_info["status"] == at_default["status"] == "COMPLETED"
    assert at_default["log_level"] == "WARNING"
    info_logs = _logs(stack, at_info["id"])
    default_logs = _logs(stack, at_default["id"])
    assert "INFO:logger-program:info line from the program" in info_logs
    assert "warning line from the program" in info_logs
    assert "info line from the program" not in default_logs
    assert "WARNING:logger-program:warning line from the program" in default_logs


def _published(stack: Stack, job_id: str) -> dict:
    """The first interim result of a job, once it has one."""
    def first() -> dict | None:
        response = stack.http.get(f"{stack.url}/jobs/{job_id}/interim_results", timeout=30)
        return response.json()[0]["data"] if response.json() else None

    return wait_for(first, timeout=JOB_DEADLINE_S, message=f"job {job_id} to publish")


def test_grandchild_left_behind_by_a_finished_program_is_killed(stack: Stack) -> None:
    job_id = stack.submit("spawner")["id"]
    _published(stack, job_id)
    uid, init = sandbox_of(stack, job_id)
    final = stack.wait_status(job_id, timeout=JOB_DEADLINE_S)
    assert final["status"] == "COMPLETED", final
    assert stack.result_text(job_id) == "left a grandchild behind"
    wait_job_gone(uid, init)


def test_cancel_kills_the_programs_whole_process_group(stack: Stack) -> None:
    job_id = stack.submit("spawner", {"wait": True})["id"]
    _published(stack, job_id)
    uid, init = sandbox_of(stack, job_id)
    response = stack.http.post(f"{stack.url}/jobs/{job_id}/cancel", timeout=60)
    assert response.json()["status"] == "CANCELLED", response.text
    wait_job_gone(uid, init)


def test_program_ignoring_sigterm_is_killed_after_the_grace_period(stack: Stack) -> None:
    job_id = stack.submit("stubborn")["id"]
    _published(stack, job_id)
    uid, init = sandbox_of(stack, job_id)
    response = stack.http.post(f"{stack.url}/jobs/{job_id}/cancel", timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    wait_job_gone(uid, init)
    _assert_worker_still_runs_jobs(stack)


def test_program_cannot_reach_the_job_store_over_the_network(stack: Stack) -> None:
    port = int(stack.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    job_id = stack.submit("netprobe", {"host": "127.0.0.1", "port": port})["id"]
    assert stack.wait_status(job_id)["status"] == "COMPLETED"
    probe = json.loads(stack.result_text(job_id))
    assert probe["connected"] is False, probe
    logs = requests.get(f"{stack.url}/jobs/{job_id}/logs", timeout=10).text
    assert "host's network" not in logs


def test_with_host_networking_a_program_can_connect() -> None:
    with running_stack(job_network="host") as private:
        port = int(private.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
        job_id = private.submit("netprobe", {"host": "127.0.0.1", "port": port})["id"]
        assert private.wait_status(job_id)["status"] == "COMPLETED"
        assert json.loads(private.result_text(job_id))["connected"] is True


def test_a_grandchild_in_its_own_session_without_pipes_is_killed_when_the_job_ends(stack: Stack) -> None:
    job_id = stack.submit("escaper")["id"]
    _published(stack, job_id)
    uid, init = sandbox_of(stack, job_id)
    assert stack.wait_status(job_id, timeout=JOB_DEADLINE_S)["status"] == "COMPLETED"
    wait_job_gone(uid, init)


def _zygote_of(worker_pid: int) -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == worker_pid and b"workers.zygote" in cmdline:
            return int(entry)
    return None


def test_a_zygote_that_dies_is_started_again_and_the_next_job_runs(stack: Stack) -> None:
    worker = stack.workers[0].pid
    zygote = wait_for(lambda: _zygote_of(worker), message="the worker's zygote")
    os.kill(zygote, signal.SIGKILL)
    wait_for(lambda: (z := _zygote_of(worker)) is not None and z != zygote, message="a new zygote")
    _assert_worker_still_runs_jobs(stack)


def _job_cgroup_file(init_pid: int, controller: str, name: str) -> str:
    """A control file of the cgroup the job's process is in, read from the host."""
    for line in open(f"/proc/{init_pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):  # "" is the unified (v2) hierarchy
            return open(f"/sys/fs/cgroup/{controller}{path}/{name}".replace("//", "/")).read().strip()
    raise AssertionError(f"process {init_pid} is in no {controller} cgroup")


def test_a_jobs_processes_together_get_at_most_its_cpu_quota() -> None:
    with running_stack(job_cpus=0.5) as private:
        job_id = private.submit("sleeper", {"seconds": 60})["id"]
        _published(private, job_id)
        _, init = sandbox_of(private, job_id)
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            assert _job_cgroup_file(init, "", "cpu.max") == "50000 100000"
        else:
            assert _job_cgroup_file(init, "cpu", "cpu.cfs_quota_us") == "50000"
            assert _job_cgroup_file(init, "cpu", "cpu.cfs_period_us") == "100000"
        private.http.post(f"{private.url}/jobs/{job_id}/cancel", timeout=30)
        assert private.wait_status(job_id)["status"] == "CANCELLED"


def test_what_a_killed_worker_left_is_removed_when_the_next_worker_starts() -> None:
    """A SIGKILLed worker cannot clean up: its zygote folder and cgroups go when a later worker starts."""
    private = Stack()
    try:
        worker = private.start_worker(concurrency=1)
        zygote = wait_for(lambda: _zygote_of(worker.pid), message="the worker's zygote")
        args = open(f"/proc/{zygote}/cmdline", "rb").read().split(b"\0")
        folder = os.path.dirname(args[args.index(b"--socket") + 1].decode())
        cgroup = args[args.index(b"--cgroup") + 1].decode()
        groups = [path for c in ("pids", "memory", "cpu") for path in glob.glob(f"/sys/fs/cgroup/{c}/**/{cgroup}",
                                                                             recursive=True)]
        assert groups, "the zygote made no cgroup"
        private.kill(worker)
        wait_for(lambda: _zygote_of(worker.pid) is None and not os.path.exists(f"/proc/{zygote}"),
                 message="the killed worker's zygote to be gone")
        assert os.path.isdir(folder) and all(os.path.isdir(g) for g in groups)
        old = time.time() - 3600  # past the age under which a folder may belong to a worker still starting
        os.utime(folder, (old, old))
        private.start_worker(concurrency=1)
        wait_for(lambda: not os.path.exists(folder) and not any(os.path.isdir(g) for g in groups),
                 message="the dead worker's folder and cgroups to be removed")
    finally:
        private.stop()
