"""The README's first job, over real HTTP with a real worker, then its deletion."""

from __future__ import annotations

import requests

from tests.harness import Stack, running_stack, wait_for


def test_runtime_simple_completes_with_all_done_and_interim_counts(stack: Stack) -> None:
    job = stack.submit("runtime-simple", {"iterations": 3})
    assert job["status"] == "QUEUED"
    final = stack.wait_status(job["id"])
    assert final["status"] == "COMPLETED"
    assert stack.result_text(job["id"]) == "All done!"
    interim = requests.get(f"{stack.url}/jobs/{job['id']}/interim_results", timeout=10).json()
    assert [m["data"]["iteration"] for m in interim] == [0, 1, 2]
    assert all(sum(m["data"]["counts"].values()) == 1024 for m in interim)
    logs = requests.get(f"{stack.url}/jobs/{job['id']}/logs", timeout=10)
    assert logs.status_code == 200


def test_delete_removes_every_trace_of_a_job_from_redis(stack: Stack) -> None:
    job_id = stack.submit("runtime-simple", {"iterations": 1})["id"]
    stack.wait_status(job_id)
    assert any(job_id in k.decode() for k in stack.redis.scan_iter(match="*", count=1000))
    assert requests.delete(f"{stack.url}/jobs/{job_id}", timeout=30).status_code == 204
    keys_naming_job = [k for k in stack.redis.scan_iter(match="*", count=1000) if job_id in k.decode()]
    assert keys_naming_job == []
    for key in stack.redis.scan_iter(match=f"{stack.settings.namespace}:*", count=1000):
        kind = stack.redis.type(key)
        if kind == b"zset":
            assert stack.redis.zscore(key, job_id) is None, key
        elif kind == b"hash":
            assert not stack.redis.hexists(key, job_id), key
    assert requests.get(f"{stack.url}/jobs/{job_id}", timeout=10).status_code == 404


def test_a_finished_job_is_deleted_whole_once_its_retention_is_over() -> None:
    with running_stack(job_ttl_s=1) as short:
        job_id = short.submit("hello-world", {"iterations": 0})["id"]
        assert short.wait_status(job_id)["status"] == "COMPLETED"
        wait_for(lambda: requests.get(f"{short.url}/jobs/{job_id}", timeout=10).status_code == 404,
                 timeout=30, message="the worker's housekeeping to delete the job")
        assert not [k for k in short.redis.scan_iter(match="*", count=1000) if job_id in k.decode()]
        assert requests.get(f"{short.url}/jobs", timeout=10).json()["count"] == 0
