"""A network namespace joined to the host by one veth link, for partition drills.

:class:`NetNamespace` gives a test a second "host" on this machine: processes
started through :attr:`NetNamespace.wrap` see only the namespace's loopback and
its end of a veth pair, addressed in a private ``/30`` of ``10.231.0.0/16``. A
server on the host that should be reachable from inside listens on
:attr:`NetNamespace.host_address` as well (``LocalRedis(bind=...)``), and
:meth:`NetNamespace.url_from_inside` names it from there.

The prefix is ``nsenter --net=...``, not ``ip netns exec``: the latter also gives
the command a mount namespace with a fresh ``/sys``, which hides
``/sys/fs/cgroup``, so a worker started through it would lose its per-job
cgroups and not be the worker under test.

:meth:`NetNamespace.cut` takes the host end of the link down. Packets either
way are then dropped without a word: the namespace's end keeps its route and
its neighbour entry but has no carrier, so what it sends is discarded by the
veth; what the host sends to it hits a blackhole route put under the link's
own route at setup (without it the host would route the packets out of its
default gateway). Nobody sends a RST or a FIN, so an established TCP connection
just hangs, as across a failed switch. :meth:`NetNamespace.restore` brings the
link back; TCP's retransmissions then deliver what was held up, on the same
connection. (``tc netem loss 100%`` and iptables would do the same, but neither
the netem qdisc nor iptables/nft is available on every CI kernel; ``ip`` is.)

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2, as on the Debian 12 CI host.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import subprocess
import sys
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

#: Where ``ip netns add`` keeps the namespaces' handles.
NETNS_DIR = "/run/netns"
#: Where the namespaces' links are addressed: one /30 each, unlikely to meet a real network.
SUBNET_POOL = ipaddress.ip_network("10.231.0.0/16")
#: Metric of the host's blackhole route under the link's own route (metric 0): used only while cut.
CUT_ROUTE_METRIC = 4231
_sequence = itertools.count()

#: Holds one TCP connection to Redis at ``argv[1]:argv[2]`` and runs stdin's commands on it:
#: ``ping <s>`` sends PING and waits up to s seconds for the reply, ``read <s>`` only waits.
#: Prints one line per command: the reply (``+PONG``), ``timeout``, or the error's class name.
HELD_CONNECTION_PROBE = r"""
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
pending = b""
for line in sys.stdin:
    verb, seconds = line.split()
    if verb == "ping":
        sock.sendall(b"PING\r\n")
    sock.settimeout(float(seconds))
    try:
        while b"\r\n" not in pending:
            chunk = sock.recv(64)
            if not chunk:
                raise ConnectionResetError("closed by the peer")
            pending += chunk
        reply, _, pending = pending.partition(b"\r\n")
        print(reply.decode(), flush=True)
    except TimeoutError:
        print("timeout", flush=True)
    except OSError as exc:
        print(type(exc).__name__, flush=True)
"""


class NetNamespace:
    """A network namespace with a veth link to the host on a private /30; use as a context manager."""

    def __init__(self) -> None:
        sequence = next(_sequence)
        self.name = f"qrt-{os.getpid()}-{sequence}"
        # Interface names hold at most 15 characters: "qrt" + a pid of up to 7 digits + 1 + the sequence.
        self.host_link, self.inner_link = f"qrt{os.getpid()}h{sequence}", f"qrt{os.getpid()}n{sequence}"
        self.subnet = _free_subnet(sequence)
        first, second = list(self.subnet.hosts())
        #: The host's address on the link (servers bind it), and the namespace's.
        self.host_address, self.inner_address = str(first), str(second)

    @property
    def wrap(self) -> list[str]:
        """The prefix that runs a command in the namespace's network, nothing else changed (it execs: same pid)."""
        return ["nsenter", f"--net={NETNS_DIR}/{self.name}", "--"]

    def url_from_inside(self, url: str) -> str:
        """A loopback server's URL (``redis://:pw@127.0.0.1:port/0``) as reached from inside the namespace."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host_address}:{parts.port}"))

    def __enter__(self) -> NetNamespace:
        self.close()  # what a crashed run of a process with this pid may have left behind
        self._ip("netns", "add", self.name)
        try:
            self._ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.inner_link)
            self._ip("link", "set", self.inner_link, "netns", self.name)
            self._ip("addr", "add", f"{self.host_address}/{self.subnet.prefixlen}", "dev", self.host_link)
            self._ip("link", "set", self.host_link, "up")
            self._ip("route", "add", "blackhole", str(self.subnet), "metric", str(CUT_ROUTE_METRIC))
            inside = ["-n", self.name]
            self._ip(*inside, "addr", "add", f"{self.inner_address}/{self.subnet.prefixlen}", "dev", self.inner_link)
            self._ip(*inside, "link", "set", self.inner_link, "up")
            self._ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Remove the link, its fallback route and the namespace (each may be gone already)."""
        # Deleting one end of a veth deletes both; a namespace's own teardown is asynchronous,
        # so the link goes first and at once, before the next test picks an address.
        for args in (("link", "del", self.host_link),
                     ("route", "del", "blackhole", str(self.subnet), "metric", str(CUT_ROUTE_METRIC)),
                     ("netns", "del", self.name)):
            subprocess.run(["ip", *args], capture_output=True, check=False)

    def cut(self) -> None:
        """Drop every packet between the namespace and the host, silently, in both directions."""
        self._ip("link", "set", self.host_link, "down")

    def restore(self) -> None:
        """Bring the link back: held-up TCP connections carry on."""
        self._ip("link", "set", self.host_link, "up")

    def run(self, args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run ``args`` inside the namespace; its output captured as text."""
        return subprocess.run([*self.wrap, *args], capture_output=True, text=True, timeout=timeout)

    def can_ping(self, host: str, port: int, timeout_s: float = 1.0) -> bool:
        """Whether a new Redis connection from inside answers PING within ``timeout_s``."""
        code = ("import redis, sys\n"
                "client = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_timeout=float(sys.argv[3]),\n"
                "                     socket_connect_timeout=float(sys.argv[3]), retry=None)\n"
                "try:\n    sys.exit(0 if client.ping() else 1)\n"
                "except redis.RedisError:\n    sys.exit(1)\n")
        done = self.run([sys.executable, "-c", code, host, str(port), str(timeout_s)], timeout=timeout_s + 30)
        return done.returncode == 0

    def hold_connection(self, host: str, port: int) -> HeldConnection:
        """A TCP connection to Redis held open from inside the namespace (see :data:`HELD_CONNECTION_PROBE`)."""
        process = subprocess.Popen([*self.wrap, sys.executable, "-c", HELD_CONNECTION_PROBE, host, str(port)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return HeldConnection(process)

    def _ip(self, *args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class HeldConnection:
    """One long-lived Redis connection inside a namespace, driven a command at a time."""

    def __init__(self, process: subprocess.Popen) -> None:
        self._process = process

    def ping(self, timeout_s: float) -> str:
        """Send PING on the held connection: ``+PONG``, ``timeout`` or an error's class name."""
        return self._ask(f"ping {timeout_s}")

    def read(self, timeout_s: float) -> str:
        """Wait for a reply still owed on the held connection (a PING sent while cut off)."""
        return self._ask(f"read {timeout_s}")

    def _ask(self, command: str) -> str:
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().strip() or f"probe exited ({self._process.wait()})"

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> HeldConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_subnet(sequence: int) -> ipaddress.IPv4Network:
    """A /30 of :data:`SUBNET_POOL` no address on this host is in, picked from the pid and a sequence."""
    taken = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    used = [ipaddress.ip_interface(word).network for line in taken.splitlines()
            for word in line.split() if "/" in word and word[0].isdigit()]
    subnets = list(SUBNET_POOL.subnets(new_prefix=30))
    start = (os.getpid() * 16 + sequence) % len(subnets)
    for offset in range(len(subnets)):
        candidate = subnets[(start + offset) % len(subnets)]
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise RuntimeError(f"no free /30 left in {SUBNET_POOL}")
