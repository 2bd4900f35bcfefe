"""The partition host of tests/netns.py: a worker runs inside it, and ``cut`` really cuts.

"Really" means what a failed switch does: an established connection is not
reset, it just stops answering, and carries on (same TCP connection) once the
link is back; new connections from inside time out; the host itself keeps its
Redis.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import redis

from qruntime.localredis import LocalRedis
from tests.harness import Stack
from tests.netns import NetNamespace

#: How long a PING may take before the other side counts as unreachable.
PING_TIMEOUT_S = 1.0
#: Bound on TCP's retransmission delivering a PING held up by a short cut.
RETRANSMIT_WAIT_S = 15.0

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip")


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    with NetNamespace() as namespace:
        yield namespace


@pytest.fixture
def linked_redis(namespace: NetNamespace) -> Iterator[LocalRedis]:
    """A Redis on the host's loopback and on the host end of the namespace's link."""
    with LocalRedis(bind=("127.0.0.1", namespace.host_address)) as server:
        yield server


def test_a_worker_inside_the_namespace_runs_a_job_to_completed(namespace: NetNamespace,
                                                                linked_redis: LocalRedis) -> None:
    stack = Stack(redis_url=linked_redis.url)
    try:
        stack.start_worker(concurrency=1, wrap=namespace.wrap,
                           env={"QRT_REDIS_URL": namespace.url_from_inside(linked_redis.url)})
        stack.start_api()
        job_id = stack.submit("echo", {"across": "the link"})["id"]
        assert stack.wait_status(job_id)["status"] == "COMPLETED", stack.logs()[-3000:]
        assert stack.result_text(job_id) == '{"across": "the link"}'
        # The worker's connections come from inside, over the link, not from the host.
        peers = {client["addr"].rsplit(":", 1)[0] for client in stack.redis.client_list()}
        assert namespace.inner_address in peers, peers
        # Only the network changed: the worker sees the host's cgroups, so its jobs keep theirs.
        inside = namespace.run(["ls", "/sys/fs/cgroup"]).stdout.split()
        assert sorted(inside) == sorted(os.listdir("/sys/fs/cgroup")), inside
    finally:
        stack.stop()


def test_cut_silences_the_link_both_ways_while_the_host_keeps_redis_and_restore_resumes_it(
        namespace: NetNamespace, linked_redis: LocalRedis) -> None:
    address, port = namespace.host_address, linked_redis.port
    host = redis.Redis.from_url(linked_redis.url, socket_timeout=PING_TIMEOUT_S)
    with namespace.hold_connection(address, port) as held:
        assert held.ping(PING_TIMEOUT_S) == "+PONG"
        assert namespace.can_ping(address, port, PING_TIMEOUT_S)
        namespace.cut()
        assert held.ping(PING_TIMEOUT_S) == "timeout"  # not reset: no answer at all
        assert not namespace.can_ping(address, port, PING_TIMEOUT_S)
        assert host.ping()
        assert redis.Redis(host=address, port=port, socket_timeout=PING_TIMEOUT_S).ping()
        namespace.restore()
        # The PING sent while cut off was held up, not lost: TCP delivers it on the same connection.
        assert held.read(RETRANSMIT_WAIT_S) == "+PONG"
        assert held.ping(PING_TIMEOUT_S) == "+PONG"
        assert namespace.can_ping(address, port, PING_TIMEOUT_S)
