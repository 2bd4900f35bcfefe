"""A real Redis Sentinel deployment on loopback ports, for tests and fault drills.

:class:`SentinelCluster` starts a master, one replica (``replicaof`` the master)
and three sentinels (``redis-server --sentinel``, quorum 2), each on a free port
with its config in a private temporary directory, optionally with passwords:
``password`` on the data nodes (``requirepass`` and ``masterauth``, and the
sentinels' ``sentinel auth-pass``), ``sentinel_password`` on the sentinels
themselves (their ``requirepass``, which they also use with each other).

Every method that changes the deployment returns only once the sentinels and
the data nodes agree on the new roles, polling with a deadline; nothing sleeps
in place of a condition. :meth:`failover` and :meth:`kill_master` return as soon
as every sentinel names the new master and it is one (1-2 s), which is when
clients can reach it; :meth:`wait_settled` waits for the rest (the old master
demoted and synced: some 20 s after a failover, Redis's own pace). Each can be
called again in a loop (``failover`` waits for the rest itself; after
``kill_master``, :meth:`revive` brings the dead node back as a replica).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from qruntime.localredis import free_port, redis_server_binary
from tests.harness import wait_for

MASTER_NAME = "mymaster"
SENTINEL_COUNT = 3
QUORUM = 2
#: How long a master may not answer before a sentinel thinks it down: short, so a drill's
#: failover after a kill takes seconds, not the default 30 s.
DOWN_AFTER_MS = 1000
#: Sentinel's failover-timeout (default 3 min): bounds a stuck failover and how soon a
#: sentinel may try one again for the same master.
FAILOVER_TIMEOUT_MS = 3000
#: Longest a start, a failover or a promotion may take before the cluster is declared broken.
SETTLE_TIMEOUT_S = 30.0
#: Socket timeout of the cluster's own probes: a killed node must not hang a poll.
PROBE_TIMEOUT_S = 1.0
#: Flags a sentinel shows on an instance that is not fully healthy.
BAD_FLAGS = frozenset({"s_down", "o_down", "disconnected", "failover_in_progress", "promoted",
                       "reconf_sent", "reconf_inprog", "force_failover"})

Address = tuple[str, int]


class Node:
    """One ``redis-server`` process (a data node or a sentinel) with its config file."""

    def __init__(self, binary: str, directory: Path, port: int, config: list[str], *, sentinel: bool) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self.sentinel = sentinel
        self.config_lines = config
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> Address:
        return ("127.0.0.1", self.port)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, extra: list[str] | None = None) -> None:
        """Write the config (0600: it may hold passwords) and start the server on it."""
        config = self.directory / "redis.conf"
        config.touch(mode=0o600)
        os.chmod(config, 0o600)
        config.write_text("\n".join([*self.config_lines, *(extra or [])]) + "\n")
        with open(self.directory / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, str(config), *(["--sentinel"] if self.sentinel else [])],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: no goodbye to its clients or replicas, as when its host dies."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


class SentinelCluster:
    """A master, one replica and three sentinels; use as a context manager.

    Attributes:
        url: the ``sentinel://`` URL to give as ``QRT_REDIS_URL`` (master password and db inside).
        master_name: the name the sentinels monitor the master by (``QRT_REDIS_SENTINEL_MASTER``).
    """

    def __init__(self, *, password: str | None = None, sentinel_password: str | None = None,
                 master_name: str = MASTER_NAME) -> None:
        self.password = password
        self.sentinel_password = sentinel_password
        self.master_name = master_name
        self._dir = Path(tempfile.mkdtemp(prefix="qrt-sentinel-"))
        binary = redis_server_binary()
        self.nodes = [self._data_node(binary, self._dir / f"node{i}") for i in range(2)]
        self.sentinels = [Node(binary, self._dir / f"sentinel{i}", free_port(), [], sentinel=True)
                          for i in range(SENTINEL_COUNT)]
        self._clients: dict[tuple[int, bool], redis.Redis] = {}
        auth = f":{password}@" if password else ""
        self.url = ";".join(f"sentinel://{auth}127.0.0.1:{s.port}/0" for s in self.sentinels)

    def settings(self) -> dict[str, Any]:
        """Settings overrides that point qruntime at this cluster (``Stack(**cluster.settings())``)."""
        return {"redis_url": self.url, "redis_sentinel_master": self.master_name,
                "redis_sentinel_password": self.sentinel_password or ""}

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> SentinelCluster:
        try:
            master, replica = self.nodes
            master.start()
            replica.start([f"replicaof 127.0.0.1 {master.port}"])
            wait_for(_quietly(lambda: self.client(master).ping()), timeout=SETTLE_TIMEOUT_S,
                     message="the master to answer")
            for sentinel in self.sentinels:
                sentinel.config_lines = self._sentinel_config(sentinel, master.port)
                sentinel.start()
            if self.wait_settled() != master.address:
                raise RuntimeError("the sentinels chose another master than the one they were told to monitor")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every process and remove every file (configs hold the passwords)."""
        for node in [*self.sentinels, *self.nodes]:
            node.kill()
        for client in self._clients.values():
            client.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SentinelCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the sentinels say -----------------------------------------------------------

    def master_address(self) -> Address:
        """The master's address as the first sentinel that answers gives it."""
        for sentinel in self.sentinels:
            if sentinel.alive:
                try:
                    host, port = self.client(sentinel).sentinel_get_master_addr_by_name(self.master_name)
                    return host, int(port)
                except redis.RedisError:
                    continue
        raise RuntimeError("no sentinel answered")

    def master_node(self) -> Node:
        address = self.master_address()
        return next(node for node in self.nodes if node.address == address)

    def client(self, node: Node) -> redis.Redis:
        """A plain client of one node (for probes: short timeouts, no retries; kept for the cluster's life)."""
        key = (node.port, node.sentinel)
        if key not in self._clients:
            self._clients[key] = redis.Redis(
                *node.address, password=self.sentinel_password if node.sentinel else self.password,
                decode_responses=True, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0))  # redis-py's default retries a dead node for seconds
        return self._clients[key]

    # -- faults -------------------------------------------------------------------------

    def failover(self, timeout: float = SETTLE_TIMEOUT_S) -> Address:
        """SENTINEL FAILOVER, then wait until the roles switched; returns the new master's address.

        First waits until the deployment is at rest (after an earlier failover, until the old
        master has become a synced replica the sentinels trust: some 20 s). Returns once every
        sentinel names the new master with no failover in progress and the new master says it
        is one (about a second). The old master is left as Redis leaves it: still a master,
        taking the writes of clients that have not moved, until the sentinels demote it some
        10 s later; :meth:`wait_settled` waits for that.
        """
        old = self.wait_settled(timeout=timeout)
        wait_for(_quietly(self._ask_for_failover), timeout=timeout, interval=0.05,
                 message="a sentinel to accept SENTINEL FAILOVER")
        return self._wait_switched(old, timeout)

    def kill_master(self, timeout: float = SETTLE_TIMEOUT_S) -> Address:
        """SIGKILL the master and wait until the sentinels promoted the replica; returns its address.

        Takes DOWN_AFTER_MS plus an election and a promotion: 2 to 4 s. The killed node
        stays down (the new master has no replica, so no further failover) until :meth:`revive`.
        """
        old = self.master_node()
        old.kill()
        return self._wait_switched(old.address, timeout)

    def revive(self, timeout: float = SETTLE_TIMEOUT_S) -> None:
        """Restart every killed data node as a replica of the current master and wait until it is at rest."""
        master = self.master_address()
        for node in self.nodes:
            if not node.alive:
                node.start([f"replicaof {master[0]} {master[1]}"])
        self.wait_settled(timeout=timeout)

    # -- waiting on agreement -------------------------------------------------------------

    def wait_settled(self, timeout: float = SETTLE_TIMEOUT_S) -> Address:
        """Wait until the deployment is at rest, and return the master's address.

        At rest: the roles switched as :meth:`_wait_switched` checks, and every other live data
        node is the master's replica with its link up, which every sentinel lists as healthy
        (what a further failover needs).
        """
        found: list[Address] = []

        def at_rest() -> bool:
            found[:] = [self._switched_to(exclude=None)]
            return found[0] is not None and self._replicas_synced(found[0])

        wait_for(_quietly(at_rest), timeout=timeout, interval=0.05,
                 message="the sentinels and the data nodes to agree on a master and its synced replica")
        return found[0]

    def _wait_switched(self, old: Address, timeout: float) -> Address:
        found: list[Address | None] = [None]

        def switched() -> bool:
            found[0] = self._switched_to(exclude=old)
            return found[0] is not None

        wait_for(_quietly(switched), timeout=timeout, interval=0.05,
                 message=f"every sentinel to name a master other than {old} and that node to be one")
        return found[0]

    def _ask_for_failover(self) -> bool:
        try:
            self.client(next(s for s in self.sentinels if s.alive)).sentinel_failover(self.master_name)
        except redis.ResponseError as exc:  # INPROG, NOGOODSLAVE: a replica not yet trusted
            if "INPROG" in str(exc) or "NOGOODSLAVE" in str(exc):
                return False
            raise
        return True

    def _switched_to(self, exclude: Address | None) -> Address | None:
        """The master every live sentinel names (seeing the others, no failover in progress),
        if it is not ``exclude`` and that node says it is a master; else None."""
        named = set()
        live = [s for s in self.sentinels if s.alive]
        for sentinel in live:
            state = self.client(sentinel).sentinel_master(self.master_name)
            if set(state["flags"].split(",")) & BAD_FLAGS or state["num-other-sentinels"] < len(live) - 1:
                return None
            named.add((state["ip"], int(state["port"])))
        if len(named) != 1:
            return None
        master = named.pop()
        node = next((n for n in self.nodes if n.address == master), None)
        if master == exclude or node is None or not node.alive:
            return None
        return master if self.client(node).info("replication")["role"] == "master" else None

    def _replicas_synced(self, master: Address) -> bool:
        replicas = [node for node in self.nodes if node.address != master and node.alive]
        for node in replicas:
            info = self.client(node).info("replication")
            if info["role"] != "slave" or (info["master_host"], int(info["master_port"])) != master \
                    or info["master_link_status"] != "up":
                return False
        wanted = {node.address for node in replicas}
        for sentinel in self.sentinels:
            if sentinel.alive:
                listed = self.client(sentinel).sentinel_slaves(self.master_name)
                healthy = {(r["ip"], int(r["port"])) for r in listed
                           if not set(r["flags"].split(",")) & BAD_FLAGS and r["master-link-status"] == "ok"}
                if not wanted <= healthy:
                    return False
        return True

    # -- configuration ------------------------------------------------------------------

    def _data_node(self, binary: str, directory: Path) -> Node:
        port = free_port()
        lines = [f"port {port}", "bind 127.0.0.1", "protected-mode no", 'save ""', "appendonly no",
                 # replicas sync at once instead of waiting 5 s for more replicas to share a transfer
                 "repl-diskless-sync-delay 0"]
        if self.password:
            lines += [f"requirepass {self.password}", f"masterauth {self.password}"]
        return Node(binary, directory, port, lines, sentinel=False)

    def _sentinel_config(self, sentinel: Node, master_port: int) -> list[str]:
        name = self.master_name
        lines = [
            f"port {sentinel.port}", "bind 127.0.0.1", "protected-mode no", f"dir {sentinel.directory}",
            f"sentinel monitor {name} 127.0.0.1 {master_port} {QUORUM}",
            f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {name} {self.password}")
        if self.sentinel_password:
            lines.append(f"requirepass {self.sentinel_password}")  # also what they log in to each other with
        return lines


def _quietly(condition: Callable[[], bool]) -> Callable[[], bool]:
    """``condition``, with a Redis error (a node mid-restart, a sentinel busy) counting as "not yet"."""
    def probe() -> bool:
        try:
            return condition()
        except (redis.RedisError, OSError):
            return False
    return probe
