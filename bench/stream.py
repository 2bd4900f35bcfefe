"""Live events: publish→SSE-client latency against raw Redis pub/sub, and SSE capacity.

Measured in one run on one private Redis, one worker and one API process
(``qruntime api``: gunicorn + gevent, one worker process):

- ``raw redis pub/sub``: a separate process PUBLISHes time-stamped messages, a
  subscriber here receives them — the floor any Redis-based fan-out sits on.
- ``program → job channel``: the ``stamper`` program publishes N time-stamped
  messages through ``user_messenger``; a plain pub/sub subscriber on the job's
  channel receives them (pipe → supervisor → one Lua XADD+PUBLISH).
- ``program → SSE client``: the same messages as received by one SSE client
  (… → the API's relay → mailbox → HTTP), and by ``--clients`` SSE clients at once
  (all driven by one selector thread here, so client-side parsing is included).
- capacity: SSE clients are added in steps on one running job; at each step the
  API worker process's RSS is read and the fan-out latency of the next message
  to every client is measured.

Prints tables and writes ``bench/results/stream.json``. Not a test: no assertions.

    python bench/stream.py [--messages 1000] [--interval 0.005] [--clients 100]
                           [--capacity 250,500,1000,1500,1950]
"""

from __future__ import annotations

import argparse
import json
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
from qruntime.cli.server import GEVENT_CONNECTIONS  # noqa: E402
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
        "p99_ms": pick(0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def sse_latencies(events: list[SSEEvent]) -> list[float]:
    out = []
    for event in events:
        if event.event == "interim":
            out.append(event.received - json.loads(event.data)["t"])
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
        swarm.run_until(swarm.all_closed, timeout=600)
    finally:
        swarm.close()
    wall = time.monotonic() - wall
    cpu = {
        "wall_s": wall,
        "api_cpu_s": sum(api.cpu_times()[:2]) - api_before,
        "client_cpu_s": sum(me.cpu_times()[:2]) - me_before,
    }
    many = [lat for events in swarm.events for lat in sse_latencies(events)]
    complete = sum(1 for events in swarm.events if sum(e.event == "interim" for e in events) == count)
    return {
        "channel": listener.latencies,
        "sse_one": sse_latencies(one.events),
        "sse_many": many,
        "sse_many_complete_clients": complete,
        "sse_many_cpu": cpu,
    }


def api_worker_process(stack: Stack) -> psutil.Process:
    master = psutil.Process(stack.apis[0].pid)
    children = master.children()
    return children[0] if children else master


def latest(swarms: list[StreamSwarm]) -> list[int]:
    """The last event id each client of every swarm has received (0: none yet)."""
    return [events[-1].int_id if events else 0 for swarm in swarms for events in swarm.events]


def pump_all(swarms: list[StreamSwarm], condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        for swarm in swarms:
            swarm.pump(0.01)
    return True


def bench_capacity(stack: Stack, steps: list[int], interval: float) -> list[dict]:
    """Add SSE clients in steps on one job publishing every ``interval`` s; read RSS and fan-out."""
    worker = api_worker_process(stack)
    job_id = stack.submit("stamper", {"count": 100_000, "interval": interval})["id"]
    stack.wait_status(job_id, "RUNNING")
    url = f"{stack.url}/jobs/{job_id}/stream"
    baseline_rss = worker.memory_info().rss
    rows = []
    swarms: list[StreamSwarm] = []
    held = 0
    try:
        for target in steps:
            swarm = StreamSwarm(url, target - held)
            swarm.connect(pace=100)
            swarms.append(swarm)
            held = target

            connected = pump_all(swarms, lambda: all(i > 0 for i in latest(swarms)), timeout=120)
            # The first event id every client sees after all are connected: its fan-out is the sample.
            mark = max(latest(swarms))
            pump_all(swarms, lambda mark=mark: all(i > mark for i in latest(swarms)), timeout=60)
            samples = []
            for s in swarms:
                for events in s.events:
                    after = [e for e in events if e.int_id == mark + 1 and e.event == "interim"]
                    if after:
                        samples.append(after[0].received - json.loads(after[0].data)["t"])
            open_ok = sum(st == 200 for s in swarms for st in s.status)
            errors = sum(len(s.errors) for s in swarms)
            rss = worker.memory_info().rss
            row = {
                "clients": target,
                "answered_200": open_ok,
                "errors": errors,
                "all_connected": connected,
                "rss_mb": rss / 2**20,
                "rss_delta_mb": (rss - baseline_rss) / 2**20,
                "kb_per_client": (rss - baseline_rss) / 1024 / target,
                "fanout": percentiles(samples),
                "fanout_received": len(samples),
            }
            rows.append(row)
            print(f"  {target:5d} clients: {open_ok} answered 200, RSS {row['rss_mb']:.1f} MB "
                  f"(+{row['kb_per_client']:.1f} KB/client), fan-out p50 {row['fanout'].get('p50_ms', 0):.1f} ms "
                  f"p99 {row['fanout'].get('p99_ms', 0):.1f} ms to {len(samples)} clients", flush=True)
        stack.http.post(f"{stack.url}/jobs/{job_id}/cancel", timeout=60)
        ended = lambda: all(all(s.closed) for s in swarms)  # noqa: E731
        deadline = time.monotonic() + 120
        while not ended() and time.monotonic() < deadline:
            for s in swarms:
                s.pump(0.05)
        finished = sum(
            1 for s in swarms for events in s.events
            if events and events[-1].event == "done" and json.loads(events[-1].data)["status"] == "CANCELLED"
        )
        rows.append({"after_cancel_streams_ended_with_done_cancelled": finished, "of": held})
        print(f"  cancel: {finished}/{held} streams ended with done CANCELLED", flush=True)
    finally:
        for s in swarms:
            s.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--capacity", default="250,500,1000,1500,1950")
    args = parser.parse_args()
    steps = [int(x) for x in args.capacity.split(",") if x.strip()]

    stack = Stack(programs_dirs=os.pathsep.join([str(TEST_PROGRAMS_DIR), str(BENCH_PROGRAMS)]))
    try:
        stack.start_worker(concurrency=2)
        stack.start_api()
        stack.wait_status(stack.submit("stamper", {"count": 3, "interval": 0})["id"])  # warm-up
        raw = bench_raw_pubsub(stack, args.messages, args.interval)
        job = bench_job_latency(stack, args.messages, args.interval, args.clients)
        print("capacity (one API process):", flush=True)
        capacity = bench_capacity(stack, steps, interval=1.0)
    finally:
        stack.stop()

    rows = [
        ("raw_pubsub", "raw redis pub/sub (process→subscriber)", percentiles(raw)),
        ("job_channel", "program publish → job channel (pub/sub)", percentiles(job["channel"])),
        ("sse_one_client", "program publish → 1 SSE client", percentiles(job["sse_one"])),
        ("sse_many_clients", f"program publish → {args.clients} SSE clients", percentiles(job["sse_many"])),
    ]
    print(f"\n{args.messages} messages, {args.interval * 1000:.0f} ms apart; {os.cpu_count()} cores")
    print(f"{'path':44} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>7}")
    for _, name, stats in rows:
        print(f"{name:44} {stats['p50_ms']:8.2f} {stats['p90_ms']:8.2f} {stats['p99_ms']:8.2f} "
              f"{stats['max_ms']:8.2f} {stats['n']:7d}")
    print(f"{job['sse_many_complete_clients']}/{args.clients} SSE clients received all {args.messages} messages")
    cpu = job["sse_many_cpu"]
    print(f"during the {args.clients}-client run ({cpu['wall_s']:.1f} s): API process CPU {cpu['api_cpu_s']:.1f} s, "
          f"bench client CPU {cpu['client_cpu_s']:.1f} s")
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
        "sse_many_complete_clients": job["sse_many_complete_clients"], "sse_many_clients": args.clients,
        "sse_many_cpu": job["sse_many_cpu"],
        "capacity": capacity,
    }
    (RESULTS / "stream.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'stream.json'}")


if __name__ == "__main__":
    main()
