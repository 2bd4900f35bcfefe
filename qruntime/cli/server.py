"""Server commands: ``qruntime up``, ``qruntime api``, ``qruntime worker``.

``up`` runs the whole stack on one machine (API under gunicorn+gevent, Celery
worker(s), and an embedded Redis when ``QRT_REDIS_URL`` is unset) and stops all
of it on Ctrl-C or SIGTERM. ``api`` and ``worker`` run one part each, for
operators who place them on different hosts.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

#: How long ``up`` waits for the API to answer /health and a worker to announce itself.
UP_TIMEOUT_S = 120.0
#: How long children get to stop after SIGTERM before they are killed.
STOP_GRACE_S = 15.0
#: In the data directory: held (flock) by the running `qruntime up`, holding its pid.
UP_LOCK_FILE = "up.lock"
DEFAULT_PORT = 8000
#: Concurrent SSE streams one gevent API process holds.
GEVENT_CONNECTIONS = 2000


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser("up", help="run API, worker(s) and (if needed) Redis on this machine")
    up.add_argument("--host", default=os.environ.get("QRT_HOST", "127.0.0.1"))
    up.add_argument("--port", type=int, default=int(os.environ.get("QRT_PORT", DEFAULT_PORT)))
    up.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    up.add_argument("--concurrency", type=int, default=2, help="jobs each worker runs at once (default 2)")
    up.add_argument("--backends", default="", help="comma-separated backends the workers serve (default: all)")
    up.add_argument("--flower", type=int, default=0, metavar="PORT",
                    help="also run Flower, Celery's monitor, on this port (needs: pip install flower)")
    up.add_argument("--data-dir", default=os.environ.get("QRT_DATA_DIR", str(Path.home() / ".qruntime")),
                    help="where the embedded Redis keeps its data (default ~/.qruntime)")
    up.set_defaults(handler=cmd_up)

    api = subparsers.add_parser("api", help="run the REST API (gunicorn + gevent)")
    api.add_argument("--host", default=os.environ.get("QRT_HOST", "127.0.0.1"))
    api.add_argument("--port", type=int, default=int(os.environ.get("QRT_PORT", DEFAULT_PORT)))
    api.add_argument("--processes", type=int, default=1, help="gunicorn worker processes")
    api.set_defaults(handler=cmd_api)

    worker = subparsers.add_parser("worker", help="run a Celery worker that executes jobs")
    worker.add_argument("--backends", default="", help="comma-separated backend names to serve (default: all)")
    worker.add_argument("--concurrency", type=int, default=2, help="jobs run at once (default 2)")
    worker.add_argument("--name", default="", help="worker node name (default qruntime-<pid>@<host>)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=cmd_worker)


def api_command(host: str, port: int, processes: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gevent",
        "--worker-connections", str(GEVENT_CONNECTIONS),
        "--workers", str(processes),
        "--bind", f"{host}:{port}",
        "--timeout", "120",
        "--graceful-timeout", "10",
        "--access-logfile", "-",
        # The path without its query string: a browser's stream URL may carry ?access_token=.
        "--access-logformat", '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss "%(a)s"',
        *_no_control_socket(),
        "api.wsgi:app",
    ]


def _no_control_socket() -> list[str]:
    """Gunicorn ≥ 27 opens one control socket per user at a fixed path; several APIs on
    one host (tests, ``qruntime up`` beside ``qruntime api``) would fight over it."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def worker_command(backends: str = "", concurrency: int = 2, name: str = "", loglevel: str = "INFO") -> list[str]:
    from orchestrator.backends import find_backend, groups, queue_for_group

    if backends:
        queues = sorted({find_backend(b.strip()).queue for b in backends.split(",") if b.strip()})
    else:
        queues = [queue_for_group(g) for g in groups()]
    return [
        sys.executable, "-m", "celery", "-A", "workers.app", "worker",
        "--pool", "prefork",
        "--concurrency", str(concurrency),
        "--queues", ",".join(queues),
        "--hostname", name or f"qruntime-{os.getpid()}@%h",
        "--loglevel", loglevel,
        "--without-mingle",
        "--without-gossip",
    ]


def flower_command(host: str, port: int) -> list[str]:
    """Flower watching the workers' Celery app (its broker is QRT_REDIS_URL)."""
    return [sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            f"--address={host}", f"--port={port}"]


def _take_flower_login(env: dict[str, str]) -> tuple[str, str]:
    """Flower's login (QRT_FLOWER_BASIC_AUTH, else one made for this run) and how to tell it.

    It is taken out of ``env``: the other processes of ``up`` do not get it. Flower reads
    it as FLOWER_BASIC_AUTH, so it is never in an argv that ``ps`` shows other users.

    Raises:
        RuntimeError: the setting is not ``user:password[,user:password...]``.
    """
    from orchestrator.errors import ConfigurationError
    from orchestrator.settings import Settings

    login = env.pop("QRT_FLOWER_BASIC_AUTH", "")
    try:
        Settings.load({"flower_basic_auth": login}, environ={})
    except ConfigurationError as exc:
        raise RuntimeError(str(exc)) from None
    if login:
        return login, "login from QRT_FLOWER_BASIC_AUTH"
    login = f"admin:{secrets.token_hex(16)}"
    return login, f"login {login}, made for this run; set QRT_FLOWER_BASIC_AUTH to choose one"


def cmd_api(args: argparse.Namespace) -> int:
    os.execv(sys.executable, api_command(args.host, args.port, args.processes))


def cmd_worker(args: argparse.Namespace) -> int:
    os.execv(sys.executable, worker_command(args.backends, args.concurrency, args.name, args.loglevel))


def cmd_up(args: argparse.Namespace) -> int:
    from qruntime.localredis import LocalRedis

    env = dict(os.environ)
    try:
        flower_login, flower_note = _take_flower_login(env) if args.flower else ("", "")
        lock = _lock_data_dir(Path(args.data_dir))
        _check_port_free(args.host, args.port)
    except RuntimeError as exc:
        print(f"qruntime: {exc}", file=sys.stderr, flush=True)
        return 1
    env["QRT_DATA_DIR"] = args.data_dir  # the workers keep their program caches there too
    redis_server = None
    if not env.get("QRT_REDIS_URL"):
        # A fresh password each start: other local users cannot reach the store, and only
        # qruntime's own processes (never a program) have it, in their environment.
        redis_server = LocalRedis(data_dir=Path(args.data_dir) / "redis", prefer_bundled=True,
                                  password=secrets.token_hex(24)).start()
        env["QRT_REDIS_URL"] = redis_server.url
        print(f"qruntime: embedded Redis at {redis_server.address} (data in {args.data_dir}/redis)", flush=True)
    children: list[subprocess.Popen] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for index in range(args.workers):
            cmd = worker_command(args.backends, concurrency=args.concurrency,
                                 name=f"qruntime-{os.getpid()}-{index}@%h")
            children.append(subprocess.Popen(cmd, env=env, start_new_session=True))
        if args.flower:
            children.append(subprocess.Popen(flower_command(args.host, args.flower),
                                             env={**env, "FLOWER_BASIC_AUTH": flower_login},
                                             start_new_session=True))
            print(f"qruntime: Flower at http://{args.host}:{args.flower} ({flower_note})", flush=True)
        children.append(subprocess.Popen(api_command(args.host, args.port), env=env, start_new_session=True))
        url = f"http://{args.host}:{args.port}"
        _bootstrap_admin(env, url)
        _wait_until_up(url, args.workers, children, lambda: stopping)
        if not stopping:
            print(f"qruntime is up at {url} ({args.workers} worker(s)). Press Ctrl-C to stop.", flush=True)
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    print(f"qruntime: {child.args[2:5]} exited with code {child.returncode}; stopping.", flush=True)
                    stopping = True
            time.sleep(0.5)
    except RuntimeError as exc:
        print(f"qruntime: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        _stop_all(children)
        if redis_server is not None:
            redis_server.stop()
        lock.close()
        print("qruntime: stopped.", flush=True)
    return 0


def _lock_data_dir(data_dir: Path):  # noqa: ANN202 - the open lock file, held until we stop
    """Refuse a second ``qruntime up`` on the same data directory (its Redis data, its workers' caches)."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(data_dir / UP_LOCK_FILE, "a+")  # noqa: SIM115 - held for the life of this process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RuntimeError(f"another qruntime up (pid {holder}) is using {data_dir}; stop it first "
                           "(Ctrl-C in its terminal), or give this one its own --data-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on, instead of reporting its service as ours."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server will
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {host}:{port} ({exc.strerror}): another service, or another "
                               "qruntime up, has it; choose a free one with --port") from None


def _bootstrap_admin(env: dict[str, str], url: str) -> None:
    """On a store with no users, create ``admin`` and save its token as this machine's account."""
    from orchestrator.accounts import Accounts
    from orchestrator.keys import Keys
    from orchestrator.redisconn import connect
    from orchestrator.settings import Settings
    from qruntime.client.account import account_path, save_account

    settings = Settings.load(environ=env)
    if settings.auth == "off":
        return
    client = connect(settings)
    try:
        accounts = Accounts(client, Keys(settings.namespace))
        if accounts.has_users():
            return
        accounts.add_user("admin", "admin")
        secret, _ = accounts.create_token("admin", description="created by qruntime up")
    finally:
        client.close()
    save_account(url, secret, overwrite=True)
    print(f"qruntime: created user 'admin'; its token is saved in {account_path()} "
          f"(the client and CLI use it). Token, shown once: {secret}", flush=True)


def _wait_until_up(url: str, workers: int, children: list[subprocess.Popen], stopping) -> None:
    import json

    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline and not stopping():
        for child in children:
            if child.poll() is not None:
                raise RuntimeError(f"{' '.join(child.args[2:5])} exited with code {child.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if json.load(response).get("workers", 0) >= workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    if not stopping():
        raise RuntimeError(f"the service did not come up at {url} within {UP_TIMEOUT_S:.0f} s")


def _stop_all(children: list[subprocess.Popen]) -> None:
    """SIGTERM every child's process group (API first), wait, then SIGKILL stragglers."""
    for child in reversed(children):
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
