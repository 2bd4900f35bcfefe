"""Live events: publish→SSE-client latency against raw Redis pub/sub, and SSE capacity.

Measured in one run on one private Redis, one worker and one API process
(``qruntime api``: gunicorn + gevent, one worker process):

- ``raw redis pub/sub``: a separate process PUBLISHes time-stamped messages, a
  subscriber here receives them — the floor any Redis-based fan-out sits on.
- ``program → job channel``: the ``stamper`` program publishes N time-stamped
  messages through ``user_messenger``; a plain pub/sub subscriber on the job's
  channel receives them (pipe → supervisor → one Lua XADD+PUBLISH).
- ``program → SSE client``: the same messages as received by one SSE client
  (… → the API's relay → feed → HTTP), and by ``--clients`` SSE clients at once
  (all driven by one selector thread here, so client-side parsing is included):
  with the defaults, one message to 100 streams at 200 messages/s.
- capacity: SSE clients are added in steps on one running job, held by client
  processes of ``--per-process`` raw sockets each (one selector loop per
  process, RLIMIT_NOFILE raised to fit); at each step the API worker process's
  RSS is read and the fan-out latency of the next message to every client is
  measured. The job is then cancelled and every stream must end with ``done``.

Prints tables and writes ``bench/results/stream.json``. Not a test: no assertions.

    python bench/stream.py [--messages 1000] [--interval 0.005] [--clients 100]
                           [--capacity 1000,2500,5000,10000] [--per-process 2500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.events import Event  # noqa: E402
from qruntime.cli.server import GEVENT_CONNECTIONS, raise_open_files_limit  # noqa: E402
from tests.harness import TEST_PROGRAMS_DIR, Stack  # noqa: E402
from tests.sse import SSEEvent, StreamSwarm, read_stream  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BENCH_PROGRAMS = ROOT / "bench" / "programs"

_RAW_PUBLISHER = """
import json, sys, time
import redis
client = redis.Redis.from_url(sys.argv[1])
channel, count, interval = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
time.sleep(0.5)
for i in range(1, count + 1):
    client.publish(channel, json.dumps({"i": i, "t": time.time()}))
    time.sleep(interval)
client.publish(channel, "end")
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p90_ms": pick(0.90) * 1000,
        "p95_ms": pick(0.95) * 1000,
        "p99_ms": pick(0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def sse_latencies(events: list[SSEEvent], published_after: float = 0.0) -> list[float]:
    """Publish→receive delay of each interim event published at or after ``published_after``."""
    out = []
    for event in events:
        if event.event == "interim":
            sent = json.loads(event.data)["t"]
            if sent >= published_after:
                out.append(event.received - sent)
    return out


def bench_raw_pubsub(stack: Stack, count: int, interval: float) -> list[float]:
    channel = stack.store.keys.channel("bench-raw-pubsub")
    pubsub = stack.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    publisher = subprocess.Popen(
        [sys.executable, "-c", _RAW_PUBLISHER, stack.settings.redis_url, channel, str(count), str(interval)]
    )
    latencies = []
    try:
        while True:
            message = pubsub.get_message(timeout=30)
            if message is None:
                if publisher.poll() is not None:
                    break
                continue
            received = time.time()
            if message["data"] == b"end":
                break
            latencies.append(received - json.loads(message["data"])["t"])
    finally:
        publisher.wait(timeout=60)
        pubsub.close()
    return latencies


class ChannelListener:
    """A plain pub/sub subscriber on one job's channel, timing every interim message."""

    def __init__(self, stack: Stack) -> None:
        self._pubsub = stack.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(stack.store.keys.channel_pattern())
        self._keys = stack.store.keys
        self.job_id = ""
        self.latencies: list[float] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            message = self._pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            received = time.time()
            if self._keys.job_id_from_channel(message["channel"].decode()) != self.job_id:
                continue
            event = Event.from_message(message["data"])
            if event.type == "interim":
                self.latencies.append(received - json.loads(event.data)["t"])
            elif event.type == "done":
                self.done.set()
        self._pubsub.close()


def bench_job_latency(stack: Stack, count: int, interval: float, clients: int) -> dict[str, list[float]]:
    """One stamper job followed by a channel subscriber, one SSE client, then ``clients`` SSE clients."""
    listener = ChannelListener(stack)
    job_id = stack.submit("stamper", {"count": count, "interval": interval})["id"]
    listener.job_id = job_id
    one = read_stream(f"{stack.url}/jobs/{job_id}/stream", timeout=600)
    listener.done.wait(60)

    job_id = stack.submit("stamper", {"count": count, "interval": interval})["id"]
    swarm = StreamSwarm(f"{stack.url}/jobs/{job_id}/stream", clients)
    api, me = api_worker_process(stack), psutil.Process()
    api_before, me_before, wall = sum(api.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.monotonic()
    try:
        swarm.connect()
        # Messages published while the clients were still connecting reach the late ones by
        # replay: that is connection time, not fan-out. Count from when every stream is live.
        swarm.run_until(lambda: all(any(e.event == "interim" for e in events) for events in swarm.events), timeout=60)
        live_from = time.time()
        swarm.run_until(swarm.all_closed, timeout=600)
    finally:
        swarm.close()
    wall = time.monotonic() - wall
    cpu = {
        "wall_s": wall,
        "api_cpu_s": sum(api.cpu_times()[:2]) - api_before,
        "client_cpu_s": sum(me.cpu_times()[:2]) - me_before,
    }
    many = [lat for events in swarm.events for lat in sse_latencies(events, published_after=live_from)]
    complete = sum(1 for events in swarm.events if sum(e.event == "interim" for e in events) == count)
    return {
        "channel": listener.latencies,
        "sse_one": sse_latencies(one.events),
        "sse_many": many,
        "sse_many_messages_while_connecting": count - len(many) // max(1, clients),
        "sse_many_complete_clients": complete,
        "sse_many_cpu": cpu,
    }


def api_worker_process(stack: Stack) -> psutil.Process:
    master = psutil.Process(stack.apis[0].pid)
    children = master.children()
    return children[0] if children else master


#: Events a capacity client keeps per stream (older ones are only counted): memory stays flat.
KEEP_EVENTS = 20


def _swarm_process(conn, url: str, count: int) -> None:
    """A client process: hold ``count`` streams on one selector loop, answer the parent's questions."""
    raise_open_files_limit(count + 256)
    swarm = StreamSwarm(url, count)
    swarm.connect(pace=100)
    seen = [0] * count
    while True:
        swarm.pump(0.02)
        for index, events in enumerate(swarm.events):
            if len(events) > KEEP_EVENTS:
                seen[index] += len(events) - KEEP_EVENTS
                del events[:-KEEP_EVENTS]
        while conn.poll():
            command, arg = conn.recv()
            if command == "state":
                latest = [events[-1].int_id if events else 0 for events in swarm.events]
                conn.send({
                    "answered_200": sum(status == 200 for status in swarm.status),
                    "errors": len(swarm.errors),
                    "closed": sum(swarm.closed),
                    "min_latest": min(latest), "max_latest": max(latest),
                    "done_cancelled": sum(
                        1 for events in swarm.events
                        if events and events[-1].event == "done" and json.loads(events[-1].data)["status"] == "CANCELLED"
                    ),
                })
            elif command == "sample":  # the latency of event ``arg`` at every client that has it
                conn.send([e.received - json.loads(e.data)["t"]
                           for events in swarm.events for e in events if e.int_id == arg and e.event == "interim"])
            elif command == "stop":
                swarm.close()
                conn.send(None)
                return


class ClientProcesses:
    """SSE streams held by several client processes (one Python process cannot keep 10,000 up)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._context = multiprocessing.get_context("spawn")
        self._children: list[tuple] = []

    def add(self, count: int, per_process: int) -> None:
        while count > 0:
            share = min(count, per_process)
            parent, child = self._context.Pipe()
            process = self._context.Process(target=_swarm_process, args=(child, self._url, share), daemon=True)
            process.start()
            self._children.append((process, parent))
            count -= share

    def ask(self, command: str, arg: object = None) -> list:
        for _, conn in self._children:
            conn.send((command, arg))
        return [conn.recv() for _, conn in self._children]

    def state(self) -> dict:
        states = self.ask("state")
        total = {key: sum(s[key] for s in states) for key in ("answered_200", "errors", "closed", "done_cancelled")}
        total["min_latest"] = min(s["min_latest"] for s in states)
        total["max_latest"] = max(s["max_latest"] for s in states)
        return total

    def wait(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.state()):
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        for process, conn in self._children:
            try:
                conn.send(("stop", None))
                conn.recv()
            except (EOFError, OSError):
                pass
            process.join(10)
            if process.is_alive():
                process.kill()


def bench_capacity(stack: Stack, steps: list[int], interval: float, per_process: int) -> list[dict]:
    """Add SSE clients in steps on one job publishing every ``interval`` s; read RSS and fan-out."""
    worker = api_worker_process(stack)
    job_id = stack.submit("stamper", {"count": 100_000, "interval": interval})["id"]
    stack.wait_status(job_id, "RUNNING")
    clients = ClientProcesses(f"{stack.url}/jobs/{job_id}/stream")
    baseline_rss = worker.memory_info().rss
    rows = []
    held = 0
    try:
        for target in steps:
            started = time.monotonic()
            clients.add(target - held, per_process)
            held = target
            connected = clients.wait(lambda s, n=target: s["answered_200"] + s["errors"] == n and s["min_latest"] > 0,
                                     timeout=300)
            connect_s = time.monotonic() - started
            # The first event id every client sees after all are connected: its fan-out is the sample.
            mark = clients.state()["max_latest"] + 1
            clients.wait(lambda s, mark=mark: s["min_latest"] >= mark, timeout=60)
            samples = [lat for part in clients.ask("sample", mark) for lat in part]
            state = clients.state()
            rss = worker.memory_info().rss
            row = {
                "clients": target,
                "answered_200": state["answered_200"],
                "errors": state["errors"],
                "all_connected": connected,
                "connect_s": connect_s,
                "api_open_files": worker.num_fds(),
                "rss_mb": rss / 2**20,
                "rss_delta_mb": (rss - baseline_rss) / 2**20,
                "kb_per_client": (rss - baseline_rss) / 1024 / target,
                "fanout": percentiles(samples),
                "fanout_received": len(samples),
            }
            rows.append(row)
            print(f"  {target:6d} clients: {state['answered_200']} answered 200 in {connect_s:.0f} s, "
                  f"RSS {row['rss_mb']:.1f} MB (+{row['kb_per_client']:.1f} KB/client), fan-out p50 "
                  f"{row['fanout'].get('p50_ms', 0):.1f} ms p99 {row['fanout'].get('p99_ms', 0):.1f} ms "
                  f"to {len(samples)} clients", flush=True)
        stack.http.post(f"{stack.url}/jobs/{job_id}/cancel", timeout=60)
        clients.wait(lambda s: s["closed"] == held, timeout=180)
        finished = clients.state()["done_cancelled"]
        rows.append({"after_cancel_streams_ended_with_done_cancelled": finished, "of": held})
        print(f"  cancel: {finished}/{held} streams ended with done CANCELLED", flush=True)
    finally:
        clients.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--capacity", default="1000,2500,5000,10000")
    parser.add_argument("--per-process", type=int, default=2500, help="streams per capacity client process")
    parser.add_argument("--skip-latency", action="store_true", help="only the capacity steps")
    args = parser.parse_args()
    steps = [int(x) for x in args.capacity.split(",") if x.strip()]

    stack = Stack(programs_dirs=os.pathsep.join([str(TEST_PROGRAMS_DIR), str(BENCH_PROGRAMS)]))
    raise_open_files_limit(args.clients + 256)
    try:
        stack.start_worker(concurrency=2)
        stack.start_api()
        stack.wait_status(stack.submit("stamper", {"count": 3, "interval": 0})["id"])  # warm-up
        rows, job = [], None
        if not args.skip_latency:
            raw = bench_raw_pubsub(stack, args.messages, args.interval)
            job = bench_job_latency(stack, args.messages, args.interval, args.clients)
            rows = [
                ("raw_pubsub", "raw redis pub/sub (process→subscriber)", percentiles(raw)),
                ("job_channel", "program publish → job channel (pub/sub)", percentiles(job["channel"])),
                ("sse_one_client", "program publish → 1 SSE client", percentiles(job["sse_one"])),
                ("sse_many_clients", f"program publish → {args.clients} SSE clients", percentiles(job["sse_many"])),
            ]
            print_latency(args, rows, job)
        print("capacity (one API process):", flush=True)
        capacity = bench_capacity(stack, steps, interval=1.0, per_process=args.per_process)
    finally:
        stack.stop()

    if rows:
        print_latency(args, rows, job)
    print(f"\n{'SSE clients':>11} {'HTTP 200':>9} {'RSS MB':>8} {'KB/client':>10} {'fan-out p50':>12} {'p99 ms':>8}")
    for row in capacity:
        if "clients" in row:
            fan = row["fanout"]
            print(f"{row['clients']:11d} {row['answered_200']:9d} {row['rss_mb']:8.1f} {row['kb_per_client']:10.1f} "
                  f"{fan.get('p50_ms', float('nan')):12.1f} {fan.get('p99_ms', float('nan')):8.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "messages": args.messages, "interval_s": args.interval, "cores": os.cpu_count(),
        "gevent_worker_connections": GEVENT_CONNECTIONS,
        "latency": {key: {"path": name, **stats} for key, name, stats in rows},
        "capacity": capacity,
    }
    if job is not None:
        out.update({"sse_many_complete_clients": job["sse_many_complete_clients"], "sse_many_clients": args.clients,
                    "sse_many_cpu": job["sse_many_cpu"],
                    "sse_many_messages_while_connecting": job["sse_many_messages_while_connecting"]})
    (RESULTS / "stream.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'stream.json'}")


def print_latency(args: argparse.Namespace, rows: list, job: dict) -> None:
    print(f"\n{args.messages} messages, {args.interval * 1000:.0f} ms apart "
          f"({1 / args.interval:.0f} messages/s); {os.cpu_count()} cores")
    print(f"{'path':44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>7}")
    for _, name, stats in rows:
        print(f"{name:44} {stats['p50_ms']:8.2f} {stats['p95_ms']:8.2f} {stats['p99_ms']:8.2f} "
              f"{stats['max_ms']:8.2f} {stats['n']:7d}")
    print(f"{job['sse_many_complete_clients']}/{args.clients} SSE clients received all {args.messages} messages; "
          f"the first {job['sse_many_messages_while_connecting']}, published while they connected, are not timed")
    cpu = job["sse_many_cpu"]
    print(f"during the {args.clients}-client run ({cpu['wall_s']:.1f} s): API process CPU {cpu['api_cpu_s']:.1f} s, "
          f"bench client CPU {cpu['client_cpu_s']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
