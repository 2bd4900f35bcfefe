"""Server commands: ``qruntime up|status|down``, ``qruntime api``, ``qruntime worker``.

``up`` runs the whole stack on one machine (API under gunicorn+gevent, Celery
worker(s), and an embedded Redis when ``QRT_REDIS_URL`` is unset) as the
laptop's process manager: a part that exits is restarted (and says so), unless
it keeps crashing; Ctrl-C, SIGTERM or ``qruntime down`` stop all of it.
``status`` and ``down`` find the running ``up`` through its data directory
(:mod:`qruntime.cli.up_state`). ``api`` and ``worker`` run one part each, for
operators who place them on different hosts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from qruntime.cli import up_state
from qruntime.cli.options import add_deprecated_alias

#: How long ``up`` waits for the API to answer /health and a worker to announce itself.
UP_TIMEOUT_S = 120.0
#: How long children get to stop after SIGTERM before they are killed (workers: see _stop_all).
STOP_GRACE_S = 15.0
WORKER_STOP_MARGIN_S = 10.0
#: ``up`` restarts a process that exits, unless it exited this many times within the window.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
SUPERVISE_INTERVAL_S = 0.5
#: How much longer than the children's grace ``qruntime down`` waits for ``up`` to stop.
DOWN_MARGIN_S = 15.0
DEFAULT_PORT = 8000
#: Concurrent connections (mostly SSE streams) one gevent API process holds: 10,000
#: streams measured at ~355 MB RSS (docs/streaming.md), with room for ordinary requests.
GEVENT_CONNECTIONS = 12_000
#: Descriptors an API process needs besides its connections: Redis pool (200), logs, listeners.
API_SPARE_FILES = 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser("up", help="run API, worker(s) and (if needed) Redis on this machine")
    up.add_argument("--host", default=os.environ.get("QRT_HOST", "127.0.0.1"),
                    help="address the API listens on (default $QRT_HOST, else 127.0.0.1: this machine only)")
    up.add_argument("--port", type=int, default=int(os.environ.get("QRT_PORT", DEFAULT_PORT)),
                    help=f"port the API listens on (default $QRT_PORT, else {DEFAULT_PORT})")
    up.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    up.add_argument("--concurrency", type=int, default=2, help="jobs each worker runs at once (default 2)")
    up.add_argument("--backends", default="", help="comma-separated backends the workers serve (default: all)")
    up.add_argument("--flower", type=int, default=0, metavar="PORT",
                    help="also run Flower, Celery's monitor, on this port (needs: pip install flower; "
                         "default: no Flower)")
    up.add_argument("--data-dir", default=str(up_state.default_data_dir()),
                    help="where the embedded Redis keeps its data (default $QRT_DATA_DIR, else ~/.qruntime)")
    up.add_argument("--verbose", action="store_true",
                    help="also print the API's access log and the workers' banner and INFO lines "
                         "(default: warnings and errors only)")
    up.set_defaults(handler=cmd_up)

    status = subparsers.add_parser("status", help="is a qruntime up running here, where, and is it healthy")
    status.add_argument("--data-dir", default=str(up_state.default_data_dir()),
                        help="the data directory of the up to look at (default $QRT_DATA_DIR, else ~/.qruntime)")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(handler=cmd_status)

    down = subparsers.add_parser("down", help="stop the qruntime up running here (as Ctrl-C in its terminal)")
    down.add_argument("--data-dir", default=str(up_state.default_data_dir()),
                      help="the data directory of the up to stop (default $QRT_DATA_DIR, else ~/.qruntime)")
    down.set_defaults(handler=cmd_down)

    api = subparsers.add_parser("api", help="run the REST API (gunicorn + gevent)")
    api.add_argument("--host", default=os.environ.get("QRT_HOST", "127.0.0.1"),
                     help="address to listen on (default $QRT_HOST, else 127.0.0.1: this machine only)")
    api.add_argument("--port", type=int, default=int(os.environ.get("QRT_PORT", DEFAULT_PORT)),
                     help=f"port to listen on (default $QRT_PORT, else {DEFAULT_PORT})")
    api.add_argument("--processes", type=int, default=1, help="gunicorn worker processes (default 1)")
    api.set_defaults(handler=cmd_api)

    worker = subparsers.add_parser("worker", help="run a Celery worker that executes jobs")
    worker.add_argument("--backends", default="", help="comma-separated backend names to serve (default: all)")
    worker.add_argument("--concurrency", type=int, default=2, help="jobs run at once (default 2)")
    worker.add_argument("--name", default="", help="worker node name (default qruntime-<pid>@<host>)")
    worker.add_argument("--log-level", dest="loglevel", default="INFO", metavar="LEVEL",
                        help="the worker's own log level: DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO)")
    add_deprecated_alias(worker, "--loglevel", "--log-level")
    worker.set_defaults(handler=cmd_worker)


def api_command(host: str, port: int, processes: int = 1, *, verbose: bool = True) -> list[str]:
    """Gunicorn serving the API; not ``verbose`` (``qruntime up``'s console): no access log, warnings and up.

    Raises this process's open-files limit first, so the API it starts inherits room
    for :data:`GEVENT_CONNECTIONS` sockets.
    """
    raise_open_files_limit(GEVENT_CONNECTIONS + API_SPARE_FILES)
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gevent",
        "--worker-connections", str(GEVENT_CONNECTIONS),
        "--workers", str(processes),
        "--bind", f"{host}:{port}",
        "--timeout", "120",
        "--graceful-timeout", "10",
        *(["--access-logfile", "-"] if verbose else ["--log-level", "warning"]),
        # The path without its query string: a browser's stream URL may carry ?access_token=.
        "--access-logformat", '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss "%(a)s"',
        "--logger-class", "api.logs.GunicornLogger",  # QRT_LOG_FORMAT, for the app's loggers too
        *_no_control_socket(),
        "--config", "python:orchestrator.gunicorn_conf",
        "api.wsgi:app",
    ]


def raise_open_files_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards the hard limit (never above it); the new soft limit.

    Many systems start processes with a soft limit of 1024 descriptors, far below
    what 10,000 streams need; only the hard limit is a real ceiling (raise it in
    the service manager, e.g. ``LimitNOFILE=`` or ``ulimit -Hn``, or Docker's ``--ulimit nofile=``).
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(f"qruntime: open files are limited to {soft} (hard limit); one API process then holds "
              f"fewer than {GEVENT_CONNECTIONS} connections", file=sys.stderr)
    return soft


def _no_control_socket() -> list[str]:
    """Gunicorn ≥ 27 opens one control socket per user at a fixed path; several APIs on
    one host (tests, ``qruntime up`` beside ``qruntime api``) would fight over it."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def worker_command(backends: str = "", concurrency: int = 2, name: str = "", loglevel: str = "INFO",
                   *, banner: bool = True) -> list[str]:
    """A Celery worker for ``backends``' queues; without ``banner``, Celery does not print its own at start."""
    from orchestrator.backends import find_backend, groups, queue_for_group

    if backends:
        queues = sorted({find_backend(b.strip()).queue for b in backends.split(",") if b.strip()})
    else:
        queues = [queue_for_group(g) for g in groups()]
    return [
        sys.executable, "-m", "celery", "-A", "workers.app", *([] if banner else ["--quiet"]), "worker",
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
    from orchestrator.metrics_files import samples_dir_env

    os.execve(sys.executable, api_command(args.host, args.port, args.processes), samples_dir_env(dict(os.environ)))


def cmd_worker(args: argparse.Namespace) -> int:
    from orchestrator.metrics_files import samples_dir_env
    from orchestrator.settings import Settings

    json_logs = Settings.load().log_format == "json"  # Celery's banner is no JSON line: a collector gets none
    os.execve(sys.executable, worker_command(args.backends, args.concurrency, args.name, args.loglevel,
                                             banner=not json_logs),
              samples_dir_env(dict(os.environ)))


def cmd_up(args: argparse.Namespace) -> int:
    from orchestrator.metrics_files import samples_dir_env
    from qruntime.localredis import LocalRedis

    data_dir = Path(args.data_dir).expanduser()
    env = dict(os.environ)
    try:
        flower_login, flower_note = _take_flower_login(env) if args.flower else ("", "")
        lock = up_state.take_lock(data_dir)
        _check_port_free(args.host, args.port)
    except RuntimeError as exc:
        print(f"qruntime: {exc}", file=sys.stderr, flush=True)
        return 1
    env["QRT_DATA_DIR"] = str(data_dir)  # the workers keep their program caches there too
    url = f"http://{args.host}:{args.port}"
    redis_server = None
    if not env.get("QRT_REDIS_URL"):
        # A fresh password each start: other local users cannot reach the store, and only
        # qruntime's own processes (never a program) have it, in their environment.
        redis_server = LocalRedis(data_dir=data_dir / "redis", prefer_bundled=True,
                                  password=secrets.token_hex(24)).start()
        env["QRT_REDIS_URL"] = redis_server.url
        print(f"qruntime: embedded Redis at {redis_server.address} (data in {data_dir}/redis)", flush=True)
    children = [
        *(Managed(f"worker {index}", worker_command(args.backends, concurrency=args.concurrency,
                                                     name=f"qruntime-{os.getpid()}-{index}@%h",
                                                     loglevel="INFO" if args.verbose else "WARNING",
                                                     banner=args.verbose),
                  samples_dir_env(env), hands_back=True)
          for index in range(args.workers)),
        *([Managed("flower", flower_command(args.host, args.flower), {**env, "FLOWER_BASIC_AUTH": flower_login})]
          if args.flower else []),
        Managed("api", api_command(args.host, args.port, verbose=args.verbose), samples_dir_env(env)),
    ]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    stopping = False
    code = 0

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def save_state() -> None:
        up_state.write_state(data_dir, {
            "pid": os.getpid(), "url": url, "started": started, "redis_url": env["QRT_REDIS_URL"],
            "embedded_redis": redis_server is not None,
            "processes": [{"name": c.name, "pid": c.process.pid if c.process else None,
                           "restarts": len(c.restarts)} for c in children],
        })

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for child in children:
            child.start()
        if args.flower:
            print(f"qruntime: Flower at http://{args.host}:{args.flower} ({flower_note})", flush=True)
        save_state()
        _save_admin_account(env, url)
        _wait_until_up(url, args.workers, [c.process for c in children], lambda: stopping)
        if not stopping:
            print(f"qruntime is up at {url} ({args.workers} worker(s)). Press Ctrl-C (or run qruntime down) "
                  "to stop.", flush=True)
        while not stopping:
            if redis_server is not None and redis_server.exited:
                print(f"qruntime: the embedded Redis exited with code {redis_server.returncode}; "
                      "restarting it (its data is kept).", flush=True)
                redis_server.start()
            for child in children:
                if child.process.poll() is None:
                    continue
                if child.crash_looping():
                    raise RuntimeError(f"{child.name} exited {MAX_RESTARTS} times within {RESTART_WINDOW_S:.0f} s "
                                       f"(last exit code {child.process.returncode}); giving up")
                print(f"qruntime: {child.name} exited with code {child.process.returncode}; restarting it.",
                      flush=True)
                child.start()
                save_state()
            time.sleep(SUPERVISE_INTERVAL_S)
    except RuntimeError as exc:
        print(f"qruntime: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        _stop_all(children)
        if redis_server is not None:
            redis_server.stop()
        up_state.clear_state(data_dir)
        lock.close()
        print("qruntime: stopped.", flush=True)
    return code


@dataclasses.dataclass
class Managed:
    """One process ``up`` keeps running: restarted when it exits, unless it keeps crashing."""

    name: str
    command: list[str]
    env: dict[str, str]
    #: A worker: stopped through its main process, which hands its jobs back (see _stop_all).
    hands_back: bool = False
    process: subprocess.Popen | None = None
    restarts: list[float] = dataclasses.field(default_factory=list)

    def start(self) -> None:
        if self.process is not None:
            self.restarts.append(time.monotonic())
        self.process = subprocess.Popen(self.command, env=self.env, start_new_session=True)

    def crash_looping(self) -> bool:
        recent = [t for t in self.restarts if time.monotonic() - t < RESTART_WINDOW_S]
        return len(recent) >= MAX_RESTARTS


def cmd_status(args: argparse.Namespace) -> int:
    """Say whether an ``up`` runs on the data directory, where, and how healthy it is."""
    data_dir = Path(args.data_dir).expanduser()
    state = up_state.running(data_dir)
    if state is None:
        print(f"qruntime up is not running (data directory {data_dir}).")
        return 3
    health = _health(state.get("url"))
    if args.json:
        public = {k: v for k, v in state.items() if k != "redis_url"}  # the URL holds Redis's password
        print(json.dumps({**public, "health": health}, indent=2, ensure_ascii=False))
    else:
        print(f"qruntime up (pid {state.get('pid')}) at {state.get('url', '?')}, since {state.get('started', '?')}")
        if health.get("status") == "ok":
            print(f"  API ok, Redis ok, {health.get('workers', 0)} worker(s) alive")
        else:
            print(f"  not healthy: {health}")
        for process in state.get("processes", []):
            restarts = f", restarted {process['restarts']} time(s)" if process.get("restarts") else ""
            print(f"  {process['name']}: pid {process['pid']}{restarts}")
    return 0 if health.get("status") == "ok" else 1


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the ``up`` running on the data directory, and wait until it has stopped."""
    data_dir = Path(args.data_dir).expanduser()
    state = up_state.running(data_dir)
    if state is None or not state.get("pid"):
        print(f"qruntime up is not running (data directory {data_dir}); nothing to stop.")
        return 0
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    from orchestrator.settings import Settings

    settings = Settings.load()
    wait_s = settings.shutdown_grace_s + settings.kill_grace_s + WORKER_STOP_MARGIN_S + DOWN_MARGIN_S
    deadline = time.monotonic() + wait_s
    while up_state.running(data_dir) is not None:
        if time.monotonic() > deadline:
            print(f"qruntime: up (pid {pid}) did not stop within {wait_s:.0f} s; it may be stuck "
                  f"(kill -9 {pid} stops it at once).", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"qruntime: stopped the up (pid {pid}) at {state.get('url', '?')}.")
    return 0


def _health(url: str | None) -> dict:
    if not url:
        return {"status": "starting"}
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return json.loads(exc.read())
        except ValueError:
            return {"status": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"status": "unreachable", "error": str(exc)}


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


def _save_admin_account(env: dict[str, str], url: str) -> None:
    """Make sure this machine's account for ``url`` holds a token that works on this store.

    On a store with no users, create ``admin`` and save its token. On one that has
    users (an earlier ``up``, perhaps on another port), reuse a saved token that
    this store knows, saved again under this URL; the URL becomes the default
    service either way, since it is the one just started.
    """
    from orchestrator.accounts import Accounts
    from orchestrator.keys import Keys
    from orchestrator.redisconn import connect
    from orchestrator.settings import Settings
    from qruntime.client import account

    settings = Settings.load(environ=env)
    if settings.auth == "off":
        return
    client = connect(settings)
    try:
        accounts = Accounts(client, Keys(settings.namespace))
        if not accounts.has_users():
            accounts.add_user("admin", "admin")
            secret, _ = accounts.create_token("admin", description="created by qruntime up")
            account.save_account(url, secret, overwrite=True)
            print(f"qruntime: created user 'admin'; its token is saved for {url} in {account.account_path()} "
                  f"(the client and CLI use it). Token, shown once: {secret}", flush=True)
            return
        candidates = [account.load_account(url), *(account.load_account(a["url"]) for a in account.saved_accounts())]
        for saved in candidates:
            token = saved.get("token")
            identity = accounts.authenticate(token) if token else None
            if identity is not None:
                account.save_account(url, token, overwrite=True)
                if saved["url"] != url:
                    print(f"qruntime: the token of {identity.name} saved for {saved['url']} works here too; "
                          f"it is now saved for {url}.", flush=True)
                return
    finally:
        client.close()
    print(f"qruntime: no saved token works on this store; make one beside this up with: qruntime tokens create "
          f"--direct --user admin --save --url {url}", flush=True)


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


def _stop_all(children: list[Managed]) -> None:
    """Stop every child (API first), wait, then SIGKILL stragglers' whole process groups.

    A worker gets SIGTERM in its main process only, and QRT_SHUTDOWN_GRACE_S (plus
    the program kill grace and a margin) to let its jobs finish or hand them back to
    the queue (workers/shutdown.py); a signal to its whole group would kill its pool
    processes at once and lose the jobs. The others get SIGTERM as a group.
    """
    from orchestrator.settings import Settings

    settings = Settings.load()
    worker_wait = settings.shutdown_grace_s + settings.kill_grace_s + WORKER_STOP_MARGIN_S
    running = [c for c in reversed(children) if c.process is not None and c.process.poll() is None]
    for child in running:
        if child.hands_back:
            os.kill(child.process.pid, signal.SIGTERM)
        else:
            os.killpg(child.process.pid, signal.SIGTERM)
    started = time.monotonic()
    for child in running:
        wait = worker_wait if child.hands_back else STOP_GRACE_S
        try:
            child.process.wait(timeout=max(0.1, started + wait - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
