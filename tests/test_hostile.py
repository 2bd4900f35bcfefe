"""Hostile programs, uploaded by a developer, against the sandbox in every supported setup.

Each program in tests/hostile/ tries a way out (secrets, the network, other
processes, the host's files, the kernel) or tries to exhaust the worker
(processes, memory, disk); each test asserts what the program could not do and
that the worker runs the next job afterwards. The module runs three times, one
per setup of tests/setups.py: a root worker, a non-root worker, and a worker
without CAP_SYS_ADMIN whose namespace creation is refused (Docker's default).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Caller, Stack, sandbox_of, wait_for, wait_job_gone
from tests.setups import NONROOT_UID, SETUPS

HOSTILE_DIR = Path(__file__).resolve().parent / "hostile"
JOB_DEADLINE_S = 120.0
#: Small caps, so hitting each is quick; pids and memory far below the machine's.
LIMITS = {"job_disk_mb": 64, "job_pids_max": 64, "job_memory_mb": 3072, "kill_grace_s": 1.0}


class Hostile:
    """A stack in one setup, with a developer who uploaded the hostile programs."""

    def __init__(self, setup: str) -> None:
        self.setup = setup
        self.home = tempfile.mkdtemp(prefix="qrt-hostile-home-")
        self.redis_password = secrets.token_hex(16)  # the store's, as in docker-compose.yml
        self.stack = Stack(auth="on", redis_password=self.redis_password, **LIMITS)
        self.data_dir = self.stack.settings.data_dir
        self.account = Path(self.home) / ".qruntime" / "account.json"
        self.account.parent.mkdir(mode=0o700)
        self.account.write_text(json.dumps({"url": "http://x", "token": self.stack.admin_token}))
        self.account.chmod(0o600)
        if setup == "nonroot":
            for path in (self.home, self.account.parent, self.account, self.data_dir):
                os.chown(path, NONROOT_UID, NONROOT_UID)
        self.worker = self.stack.start_worker(concurrency=2, setup=setup, env={"HOME": self.home})
        self.stack.start_api()
        tokens = self.stack.add_users([("mallory", "developer"), ("alice", "developer")])
        self.tokens = tokens
        self.mallory = Caller(self.stack.url, tokens["mallory"])
        self.alice = Caller(self.stack.url, tokens["alice"])
        self.programs = {name: self.upload(self.mallory, name) for name in
                         ("probe", "forkbomb", "daemons", "diskfill", "memfill", "snoop", "ipc")}
        self.programs["tenant"] = self.upload(self.alice, "tenant")

    def upload(self, caller: Caller, name: str) -> str:
        source = (HOSTILE_DIR / f"{name}.py").read_bytes()
        body = {"name": f"hostile-{name}", "data": base64.b64encode(source).decode(), "cost": 120,
                "description": "hostile"}
        response = caller("POST", "/programs", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def run(self, caller: Caller, name: str, params: dict | None = None, wait: bool = True) -> dict:
        body = {"program_id": self.programs[name], "backend": "aer_simulator", "params": params or {}}
        response = caller("POST", "/jobs", json=body)
        assert response.status_code == 201, response.text
        job = response.json()
        return self.wait(caller, job["id"]) if wait else job

    def wait(self, caller: Caller, job_id: str) -> dict:
        final = {"COMPLETED", "FAILED", "CANCELLED", "CANCELLED - RAN TOO LONG"}
        return wait_for(lambda: (j := caller("GET", f"/jobs/{job_id}").json())["status"] in final and j,
                        timeout=JOB_DEADLINE_S, interval=0.1, message=f"job {job_id} to end")

    def result(self, caller: Caller, job_id: str) -> str:
        return caller("GET", f"/jobs/{job_id}/results").text

    def logs(self, caller: Caller, job_id: str) -> str:
        return caller("GET", f"/jobs/{job_id}/logs").text

    def worker_pids(self) -> list[int]:
        """The worker's main process and its children: pool processes and the zygote."""
        pids = [self.worker.pid]
        for task in os.listdir(f"/proc/{self.worker.pid}/task"):
            pids += [int(p) for p in Path(f"/proc/{self.worker.pid}/task/{task}/children").read_text().split()]
        return pids

    def assert_worker_runs_the_next_job(self) -> None:
        job = self.run(self.mallory, "diskfill", {"where": ".", "chunk_mb": 1})
        assert job["status"] == "COMPLETED", job

    def stop(self) -> None:
        self.stack.stop()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module", params=SETUPS)
def hostile(request: pytest.FixtureRequest) -> Iterator[Hostile]:
    setup = Hostile(request.param)
    try:
        yield setup
    finally:
        setup.stop()


def _host_process_count() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


def _host_ipc_objects() -> set[tuple[str, int]]:
    """System V shared memory segments, message queues and semaphore sets the host's IPC namespace holds."""
    found = set()
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as table:
            next(table)
            found.update((kind, int(line.split()[1])) for line in table)
    return found


def _settled_process_count() -> int:
    """The host's process count once it stops changing (the zygote refilling its ready children)."""
    last = [-1]

    def settled() -> int | None:
        count, previous = _host_process_count(), last[0]
        last[0] = count
        return count if count == previous else None

    return wait_for(settled, timeout=30, interval=0.3, message="the host's process count to settle")


def _layers(hostile: Hostile, job_id: str) -> str:
    return hostile.logs(hostile.mallory, job_id)


def test_a_program_reads_no_secret_and_reaches_nothing_outside_its_job(hostile: Hostile) -> None:
    marker = secrets.token_hex(6)
    params = {
        "files": [str(hostile.account), f"/proc/{hostile.worker.pid}/environ"],
        "dirs": [hostile.home, hostile.data_dir, str(Path(hostile.data_dir) / "workers"),
                 *glob.glob("/tmp/qrt-zygote-*/scratch")],  # where jobs without a mount namespace work
        "worker_pids": hostile.worker_pids(),
        "sockets": glob.glob("/tmp/qrt-zygote-*/zygote.sock"),
        "marker": marker,
    }
    job = hostile.run(hostile.mallory, "probe", params)
    assert job["status"] == "COMPLETED", (job, hostile.logs(hostile.mallory, job["id"]))
    text = hostile.result(hostile.mallory, job["id"])
    report = json.loads(text)

    assert hostile.redis_password not in text and hostile.stack.admin_token not in text
    assert all(v.startswith("error") for v in report["read"].values()), report["read"]
    assert all(v.startswith("error") for v in report["list"].values()), report["list"]
    assert report["uid"] != 0
    for pid, proc in report["worker_proc"].items():
        for probe in ("environ", "mem", "maps", "signal", "ptrace", "setns"):
            assert proc[probe].startswith("error"), (pid, probe, proc)
        assert "redis://" not in proc["cmdline_text"] and "qrt_" not in proc["cmdline_text"]
    assert report["secrets_in_memory"] == [], report["secrets_in_memory"]
    assert all(report["net"][family].startswith("error") for family in ("inet", "inet6", "netlink")), report["net"]
    assert report["net"]["unix"] == "ok"
    assert report["zygote"] and all(v.startswith("error") for v in report["zygote"].values()), report["zygote"]
    for probe in ("unshare_user", "unshare_net", "mount_tmpfs"):
        assert report[probe].startswith("error"), (probe, report[probe])
    assert all(v.startswith("error") for v in report["devices"].values()), report["devices"]

    wait_job_gone(*sandbox_of(hostile.stack, job["id"]))
    left = [path for folder in ("/root", "/etc", "/usr", "/var/tmp", "/dev/shm", "/tmp", "/", hostile.home,
                                hostile.data_dir) if os.path.lexists(path := os.path.join(folder, f"qrt-hostile-{marker}"))]
    assert left == [], left


def test_the_job_log_names_every_sandbox_layer_this_setup_lacks(hostile: Hostile) -> None:
    job = hostile.run(hostile.mallory, "diskfill", {"chunk_mb": 1})
    logs = _layers(hostile, job["id"])
    if hostile.setup == "docker":
        assert "sandbox layer filesystem off" in logs and "sandbox layer pid off" in logs, logs
    elif hostile.setup == "nonroot":
        assert "sandbox layer identity off" in logs and "sandbox layer filesystem" not in logs, logs
    else:
        assert "sandbox layer" not in logs, logs


def test_a_full_disk_is_an_error_the_program_sees(hostile: Hostile) -> None:
    job = hostile.run(hostile.mallory, "diskfill", {"where": ".", "chunk_mb": 8})
    assert job["status"] == "COMPLETED", job
    report = json.loads(hostile.result(hostile.mallory, job["id"]))
    assert report["error"] and ("No space left" in report["error"] or "File too large" in report["error"]), report
    assert report["written"] <= (LIMITS["job_disk_mb"] << 20), report
    hostile.assert_worker_runs_the_next_job()


def test_a_fork_bomb_meets_the_process_limit_and_dies_with_its_job(hostile: Hostile) -> None:
    baseline = _settled_process_count()
    job = hostile.run(hostile.mallory, "forkbomb", {"limit": 5000})
    assert job["status"] == "COMPLETED", job
    report = json.loads(hostile.result(hostile.mallory, job["id"]))
    assert report["error"] and report["started"] < LIMITS["job_pids_max"], report
    wait_job_gone(*sandbox_of(hostile.stack, job["id"]))
    wait_for(lambda: _host_process_count() <= baseline, timeout=30, message="the host's process count to return")
    hostile.assert_worker_runs_the_next_job()


def test_a_chain_of_daemons_is_gone_when_its_job_ends(hostile: Hostile) -> None:
    baseline = _settled_process_count()
    job = hostile.run(hostile.mallory, "daemons", {"depth": 12})
    assert job["status"] == "COMPLETED", job
    wait_job_gone(*sandbox_of(hostile.stack, job["id"]))
    wait_for(lambda: _host_process_count() <= baseline, timeout=30, message="the host's process count to return")
    hostile.assert_worker_runs_the_next_job()


def test_memory_meets_the_job_memory_limit(hostile: Hostile) -> None:
    """With a cgroup the limit holds for all processes together; without, for each (docs/sandbox.md)."""
    probe = hostile.run(hostile.mallory, "diskfill", {"chunk_mb": 1})
    if "sandbox layer resources off" in _layers(hostile, probe["id"]):
        job = hostile.run(hostile.mallory, "memfill", {"processes": 1, "mb_each": LIMITS["job_memory_mb"] + 512})
        assert job["status"] == "FAILED" and "MemoryError" in job["reason"], job
    else:
        job = hostile.run(hostile.mallory, "memfill", {"processes": 4, "mb_each": 1000})
        assert job["status"] == "FAILED" and "memory limit" in job["reason"], job
    hostile.assert_worker_runs_the_next_job()


def test_two_tenants_running_at_once_cannot_see_each_other(hostile: Hostile) -> None:
    prefix = f"TENANT-{secrets.token_hex(4)}"
    holder = hostile.run(hostile.alice, "tenant", {"secret": f"{prefix}-{secrets.token_hex(8)}", "seconds": 60},
                         wait=False)
    wait_for(lambda: hostile.alice("GET", f"/jobs/{holder['id']}/interim_results").json(),
             timeout=JOB_DEADLINE_S, message="the tenant's job to hold its secret")
    _, holder_pid = sandbox_of(hostile.stack, holder["id"])
    snoop = hostile.run(hostile.mallory, "snoop", {"prefix": prefix, "pids": [holder_pid]})
    assert snoop["status"] == "COMPLETED", snoop
    report = json.loads(hostile.result(hostile.mallory, snoop["id"]))
    assert report["found"] == [], report
    for what, outcome in report["reached"].get(str(holder_pid), {}).items():
        assert outcome.startswith("error"), (what, report["reached"])
    assert hostile.alice("GET", f"/jobs/{holder['id']}").json()["status"] == "RUNNING"
    assert hostile.mallory("GET", f"/jobs/{holder['id']}").status_code == 404
    hostile.alice("POST", f"/jobs/{holder['id']}/cancel")
    hostile.wait(hostile.alice, holder["id"])


def test_no_ipc_object_of_a_job_outlives_it(hostile: Hostile) -> None:
    before = _host_ipc_objects()
    job = hostile.run(hostile.mallory, "ipc")
    assert job["status"] == "COMPLETED", job
    made = json.loads(hostile.result(hostile.mallory, job["id"]))
    assert all(isinstance(ident, int) for ident in made.values()), made
    wait_job_gone(*sandbox_of(hostile.stack, job["id"]))
    wait_for(lambda: _host_ipc_objects() <= before, timeout=30, message="the job's IPC objects to be gone")


def test_the_worker_runs_as_its_setup_says(hostile: Hostile) -> None:
    """The three setups are what the suite claims: root; uid 4242 without capabilities; root without
    CAP_SYS_ADMIN under a seccomp filter that refuses namespaces (and so every job's)."""
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{hostile.worker.pid}/status").read_text().splitlines()
                  if ":\t" in line)
    uid, effective, bounding = int(status["Uid"].split()[0]), int(status["CapEff"], 16), int(status["CapBnd"], 16)
    sys_admin = 1 << 21
    if hostile.setup == "root":
        assert uid == 0 and effective & sys_admin
    elif hostile.setup == "nonroot":
        assert uid == NONROOT_UID and effective == 0
    else:
        assert uid == 0 and not effective & sys_admin and not bounding & sys_admin
        assert status["Seccomp"].strip() == "2"
