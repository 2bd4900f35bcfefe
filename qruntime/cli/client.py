"""Client commands: ``qruntime programs|program|run|follow|jobs|job|result|logs|cancel|delete|backends``.

Every command takes ``--url``/``--token`` (defaults ``QRT_URL``/``QRT_TOKEN``, then
the saved account) and ``--json`` for machine output. They talk to the REST API
through :mod:`qruntime.client.http` and :mod:`qruntime.client.streaming`, which do
not import qiskit, so a command costs an HTTP round trip, not a qiskit import.
Only this module's top level runs for ``qruntime --help``: it imports nothing heavy.
It also registers ``qruntime completion`` (the shell code for argcomplete).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qruntime.cli.options import (
    HelpFormatter,
    add_deprecated_alias,
    connection_options,
    fail,
    failure_text,
    is_client_error,
    local_time,
    print_json,
    print_json_line,
)
from qruntime.client.vocabulary import (
    CANCELLED,
    COMPLETED,
    EVENT_DONE,
    EVENT_INTERIM,
    EVENT_LOG,
    EVENT_STATUS,
    FAILURE_MESSAGES,
    FINAL_STATUSES,
    QUEUED,
    failure_message,
)

if TYPE_CHECKING:
    from qruntime.client.http import ApiClient
    from qruntime.client.streaming import ServerEvent

PROGRESS_WIDTH = 20
#: Keys of an interim result that count iterations, in the order they are looked for.
ITERATION_KEYS = ("iteration", "iter", "step", "epoch")
#: Input names that give the number of iterations a run will make.
TOTAL_KEYS = ("iterations", "maxiter", "max_iterations", "steps", "epochs")
#: Shells ``qruntime completion`` writes code for (argcomplete's).
COMPLETION_SHELLS = ("bash", "zsh")


class CommandError(Exception):
    """Raised by a command to stop with a message and exit status 1."""


def register(subparsers: argparse._SubParsersAction) -> None:
    common = connection_options()

    def add(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common],
                                       formatter_class=HelpFormatter)
        parser.set_defaults(handler=lambda args: _run(handler, args))
        return parser

    def job_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("job_id", metavar="ID", help="the job's id (`qruntime jobs` lists them)")

    programs = add("programs", "list the programs you may run", cmd_programs)
    programs.add_argument("--detailed", action="store_true", help="print every program in full")
    programs.add_argument("--limit", type=int, default=None, help="how many programs at most (default: all)")
    programs.add_argument("--offset", type=int, default=0, help="how many programs to skip first")
    add_deprecated_alias(programs, "--skip", "--offset")

    program = add("program", "show one program's metadata", cmd_program)
    program.add_argument("program_id", metavar="ID", help="the program's id (`qruntime programs` lists them)")

    run = add("run", "run a program", cmd_run)
    run.add_argument("program_id", metavar="ID", help="the program's id (`qruntime programs` lists them)")
    run.add_argument("--input", action="append", default=[], metavar="K=V",
                     help="one input; V is parsed as JSON when it parses, else taken as a string "
                          "(repeatable; default: no inputs)")
    run.add_argument("--inputs", metavar="FILE",
                     help="a JSON object of inputs ('-' for stdin), e.g. written with RuntimeEncoder "
                          "for circuits and operators; --input pairs win over it (default: none)")
    run.add_argument("--backend", default=os.environ.get("QRT_BACKEND"),
                     help="backend to run on (default $QRT_BACKEND; `qruntime backends` lists them)")
    run.add_argument("--version", default=None, metavar="N",
                     help="run this version of the program (default: its current one; "
                          "`qruntime versions ID` lists them)")
    run.add_argument("--log-level", default=None, metavar="LEVEL",
                     help="DEBUG, INFO, WARNING, ERROR or CRITICAL: level of the program's logging kept "
                          "in the job's logs (default: the API's, WARNING)")
    add_deprecated_alias(run, "--loglevel", "--log-level")
    run.add_argument("--max-execution-time", type=int, default=None, metavar="SECONDS",
                     help="stop the job after this long; may only lower the program's own limit "
                          "(default: the program's)")
    run.add_argument("--follow", action="store_true",
                     help="show the job's events as they happen (as `qruntime follow`), then the result")

    jobs = add("jobs", "list your jobs, newest first", cmd_jobs)
    jobs.add_argument("--limit", type=int, default=10, help="how many jobs at most; 0 for all")
    jobs.add_argument("--offset", type=int, default=0, help="how many jobs to skip first")
    add_deprecated_alias(jobs, "--skip", "--offset")
    state = jobs.add_mutually_exclusive_group()
    state.add_argument("--pending", dest="pending", action="store_const", const=True, default=None,
                       help="only queued and running jobs (default: jobs in any state)")
    state.add_argument("--finished", dest="pending", action="store_const", const=False,
                       help="only jobs that have ended")
    jobs.add_argument("--program", default=None, metavar="ID",
                      help="only jobs of this program (default: of every program)")
    jobs.add_argument("--usage", action="store_true",
                      help="add columns of what each job cost: run time, CPU seconds, peak memory")

    job = add("job", "show one job (and why it waits, when it is queued)", cmd_job)
    job_argument(job)

    follow_parser = add("follow", "show a job's events live: status changes, interim results, logs, "
                                  "then its result (from its start; resumes if the connection drops)", cmd_follow)
    job_argument(follow_parser)

    result = add("result", "print a job's result, waiting for the job to end (says on stderr what it waits for)",
                 cmd_result)
    job_argument(result)
    result.add_argument("--no-wait", action="store_true",
                        help="fail at once if the job has not ended (default: wait for it)")

    logs = add("logs", "print a job's logs", cmd_logs)
    job_argument(logs)

    cancel = add("cancel", "cancel a job", cmd_cancel)
    job_argument(cancel)

    delete = add("delete", "delete a job and everything it left", cmd_delete)
    job_argument(delete)

    add("backends", "list the backends, their aliases and the workers serving them", cmd_backends)

    completion = subparsers.add_parser(
        "completion", help="print the shell code that completes qruntime's commands and options",
        description="Print the code that makes your shell complete qruntime's commands and options. "
                    "Add to ~/.bashrc: eval \"$(qruntime completion bash)\" (zsh: ~/.zshrc, with zsh).",
        formatter_class=HelpFormatter)
    completion.add_argument("shell", choices=COMPLETION_SHELLS, help="the shell to complete in")
    completion.set_defaults(handler=cmd_completion)


def _run(handler: Any, args: argparse.Namespace) -> int:
    """Call a command; turn the client's failures into one ``qruntime: <sentence>`` line and exit status 1."""
    try:
        return int(handler(args) or 0)
    except CommandError as exc:
        return fail(str(exc))
    except Exception as exc:
        if not is_client_error(exc):
            raise
        return fail(failure_text(exc))


def _client(args: argparse.Namespace) -> ApiClient:
    from qruntime.client.account import resolve
    from qruntime.client.http import ApiClient

    url, token = resolve(args.url, args.token)
    return ApiClient(url, token)


# -- programs ----------------------------------------------------------------------------


def cmd_programs(args: argparse.Namespace) -> int:
    from qruntime.client.program import RuntimeProgram

    raws = _client(args).programs(limit=args.limit, offset=args.offset)
    if args.json:
        print_json(raws)
        return 0
    for raw in raws:
        program = RuntimeProgram.from_api(_local_dates(raw))
        print("=" * 50)
        if args.detailed:
            print(program)
        else:
            print(f"{program.program_id}:\n  Name: {program.name}\n  Description: {program.description}")
    return 0


def cmd_program(args: argparse.Namespace) -> int:
    from qruntime.client.program import RuntimeProgram

    raw = _client(args).get_program(args.program_id)
    if args.json:
        print_json(raw)
    else:
        print(RuntimeProgram.from_api(_local_dates(raw)))
    return 0


def _local_dates(raw: dict[str, Any]) -> dict[str, Any]:
    """A program as the API sent it, its dates in the user's time zone (for people, not for --json)."""
    return {**raw, **{key: local_time(raw.get(key)) for key in ("creation_date", "update_date") if raw.get(key)}}


# -- run -----------------------------------------------------------------------------------


def parse_inputs(pairs: list[str], inputs_file: str | None) -> dict[str, Any]:
    """Inputs from ``--inputs FILE`` then ``--input K=V`` (later ones win).

    Raises:
        CommandError: a pair has no ``=`` or the file is not a JSON object.
    """
    inputs: dict[str, Any] = {}
    if inputs_file:
        try:
            text = sys.stdin.read() if inputs_file == "-" else open(inputs_file, encoding="utf-8").read()
            loaded = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read inputs from {inputs_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CommandError(f"{inputs_file} must hold a JSON object of inputs, not {type(loaded).__name__}")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--input needs KEY=VALUE, got {pair!r}")
        try:
            inputs[key] = json.loads(value)
        except ValueError:
            inputs[key] = value
    return inputs


def cmd_run(args: argparse.Namespace) -> int:
    if not args.backend:
        raise CommandError("--backend is required (or set QRT_BACKEND); `qruntime backends` lists them")
    inputs = parse_inputs(args.input, args.inputs)
    body: dict[str, Any] = {"program_id": args.program_id, "backend": args.backend, "params": inputs}
    optional = {"version": args.version, "log_level": args.log_level,
                "max_execution_time": args.max_execution_time}
    body.update({key: value for key, value in optional.items() if value is not None})
    client = _client(args)
    job = client.submit_job(body)
    if not args.follow:
        if args.json:
            print_json(job)
        else:
            print(f"job ID: {job['id']}")
        return 0
    if not args.json:
        print(f"job ID: {job['id']}", flush=True)
    return follow(client, job, as_json=args.json)


# -- following a job -------------------------------------------------------------------------


def cmd_follow(args: argparse.Namespace) -> int:
    client = _client(args)
    return follow(client, client.get_job(args.job_id), as_json=args.json)


def follow(client: ApiClient, job: dict[str, Any], as_json: bool) -> int:
    """Print a job's events from its first (status changes and logs on stderr, interim results on
    stdout), then its result; exit 1 unless it completed. ``run --follow`` and ``follow`` share it.

    With ``as_json`` every event is a JSON line ``{"event", "id", "data"}`` on stdout, and the
    result is the last line. A dropped connection resumes where it left off (:mod:`~qruntime.client.streaming`).
    """
    job_id = job["id"]
    progress = Progress(_total_iterations(job.get("params") or {}))

    def show(event: ServerEvent) -> None:
        if as_json:
            if event.type != EVENT_DONE:
                print_json_line({"event": event.type, "id": event.id, "data": _decoded(event.data)})
        elif event.type == EVENT_INTERIM:
            print(progress.line(event.data), flush=True)
        elif event.type == EVENT_STATUS:
            print(f"[status] {_status_line(job, _decoded(event.data))}", file=sys.stderr, flush=True)
        elif event.type == EVENT_LOG:
            record = _decoded(event.data)
            text = record.get("text", "") if isinstance(record, dict) else str(record)
            print(f"[log] {text.rstrip()}", file=sys.stderr, flush=True)

    try:
        status = _watch(client, job_id, after=0, on_event=show)
    except KeyboardInterrupt:
        print(f"\nStopped following job {job_id}; it keeps running "
              f"(`qruntime follow {job_id}` shows it again, `qruntime cancel {job_id}` stops it).",
              file=sys.stderr)
        raise
    return _print_result(client, job_id, status, as_json)


def _watch(client: ApiClient, job_id: str, after: int, on_event: Callable[[ServerEvent], None]) -> str:
    """Pass the job's events after ``after`` to ``on_event`` until it ends; its final status."""
    from qruntime.client.streaming import EventStream

    for event in EventStream(client, job_id, after=after):
        on_event(event)
        if event.type == EVENT_DONE:
            status = (_decoded(event.data) or {}).get("status", "")
            if status in FINAL_STATUSES:
                return status
    # The stream had nothing left to send (the job ended before we asked): ask the job.
    return client.get_job(job_id)["status"]


def _status_line(job: dict[str, Any], data: Any) -> str:
    """``RUNNING at <local time>``; a queued job's waiting reason, a final status's reason."""
    if not isinstance(data, dict):
        return str(data)
    status = data.get("status", "")
    line = f"{status} at {local_time(data.get('at'))}" if data.get("at") else status
    waiting = job.get("waiting_reason") if status == QUEUED else None
    reason = data.get("reason") or waiting
    return f"{line}: {reason}" if reason else line


def _decoded(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def _total_iterations(inputs: dict[str, Any]) -> int | None:
    for key in TOTAL_KEYS:
        value = inputs.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class Progress:
    """Renders interim results; with an iteration count, as a progress bar line."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.seen = 0

    def line(self, data: str) -> str:
        self.seen += 1
        decoded = _decoded(data)
        iteration = None
        if isinstance(decoded, dict):
            iteration = next((decoded[k] for k in ITERATION_KEYS
                              if isinstance(decoded.get(k), int) and not isinstance(decoded.get(k), bool)), None)
        text = data if len(data) <= 200 else data[:197] + "..."
        if iteration is None:
            return f"interim result: {text}"
        done = self.seen if self.total is None else min(self.seen, self.total)
        if self.total:
            filled = round(PROGRESS_WIDTH * done / self.total)
            bar = "#" * filled + "-" * (PROGRESS_WIDTH - filled)
            return f"[{bar}] {done}/{self.total} iteration {iteration}: {text}"
        return f"[{done}] iteration {iteration}: {text}"


def _print_result(client: ApiClient, job_id: str, status: str, as_json: bool) -> int:
    finished, text = client.job_results(job_id)
    failed = status in FAILURE_MESSAGES
    if as_json:
        key = "error" if failed else "result"
        print_json_line({"event": "result", "id": job_id, "status": status, key: _decoded(text)})
    elif failed:
        print(failure_message(job_id, status, text), file=sys.stderr)
    elif status == CANCELLED:
        print(f"Job {job_id} was cancelled.", file=sys.stderr)
    else:
        print(text)
    return 0 if status == COMPLETED else 1


# -- jobs ----------------------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace) -> int:
    limit = args.limit if args.limit and args.limit > 0 else None  # 0 or less: every job
    collected = _client(args).jobs(limit, args.offset, pending=args.pending, program_id=args.program)
    if args.json:
        print_json(collected)
        return 0
    rows = [(j["id"], j["status"], (j.get("program") or {}).get("id", ""), j.get("backend", ""),
             local_time(j.get("created")), *(_usage_columns(j.get("usage")) if args.usage else ())) for j in collected]
    header = ("ID", "STATUS", "PROGRAM", "BACKEND", "CREATED")
    _print_table(header + (("RUN S", "CPU S", "PEAK MIB") if args.usage else ()), rows)
    return 0


def _usage_columns(usage: dict[str, Any] | None) -> tuple[str, str, str]:
    usage = usage or {}

    def shown(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
        return "-" if value is None else f"{value / scale:.{digits}f}"

    return (shown(usage.get("wall_s")), shown(usage.get("cpu_s")),
            shown(usage.get("peak_memory_bytes"), 2**20, 0))


def _print_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


def cmd_job(args: argparse.Namespace) -> int:
    job = _client(args).get_job(args.job_id)
    if args.json:
        print_json(job)
        return 0
    fields = [("ID", job["id"]), ("Status", job["status"]), ("Waiting", job.get("waiting_reason")),
              ("Program", (job.get("program") or {}).get("id", "")), ("Backend", job.get("backend", "")),
              ("Created", local_time(job.get("created"))), ("Started", local_time(job.get("started"))),
              ("Ended", local_time(job.get("ended"))),
              ("Log level", job.get("log_level")), ("Max execution time", job.get("cost")),
              ("Owner", job.get("owner")), ("Attempts", job.get("attempts")), ("Reason", job.get("reason")),
              ("Inputs", json.dumps(job.get("params", {}), ensure_ascii=False)),
              ("Usage", usage_text(job.get("usage")))]
    for name, value in fields:
        if value not in (None, ""):
            print(f"{name + ':':<20}{value}")
    return 0


def usage_text(usage: dict[str, Any] | None) -> str:
    """``queued 0.01 s, ran 2.10 s, CPU 2.00 s, peak 312 MiB, 1.2 KiB of logs`` (what was measured)."""
    if not usage:
        return ""
    parts = []
    for key, label in (("queue_wait_s", "queued"), ("wall_s", "ran"), ("cpu_s", "CPU")):
        if usage.get(key) is not None:
            parts.append(f"{label} {usage[key]:.2f} s")
    if usage.get("peak_memory_bytes") is not None:
        parts.append(f"peak {usage['peak_memory_bytes'] / 2**20:.0f} MiB")
    for key, label in (("interim_bytes", "interim results"), ("log_bytes", "logs")):
        if usage.get(key):
            parts.append(f"{usage[key] / 1024:.1f} KiB of {label}")
    return ", ".join(parts)


def cmd_result(args: argparse.Namespace) -> int:
    client = _client(args)
    job = client.get_job(args.job_id)
    status = job["status"]
    if status not in FINAL_STATUSES:
        if args.no_wait:
            raise CommandError(f"{_waiting_sentence(job, status)} Its result is not ready yet.")
        print(f"{_waiting_sentence(job, status)} Waiting for it to end.", file=sys.stderr, flush=True)

        def say(event: ServerEvent) -> None:
            if event.type == EVENT_STATUS:
                changed = (_decoded(event.data) or {}).get("status", "")
                if changed not in FINAL_STATUSES:
                    print(f"{_waiting_sentence(job, changed)} Waiting for it to end.", file=sys.stderr, flush=True)

        status = _watch(client, args.job_id, after=int(job.get("last_event_id") or 0), on_event=say)
    return _print_result(client, args.job_id, status, args.json)


def _waiting_sentence(job: dict[str, Any], status: str) -> str:
    """``Job X is QUEUED: <why>.`` or ``Job X is RUNNING.``"""
    reason = job.get("waiting_reason") if status == QUEUED and job.get("status") == QUEUED else None
    if reason:
        return f"Job {job['id']} is {status}: {reason.rstrip('.')}."
    if status == QUEUED:
        return f"Job {job['id']} is {status}, waiting for a worker to start it."
    return f"Job {job['id']} is {status}."


def cmd_logs(args: argparse.Namespace) -> int:
    text = _client(args).job_logs(args.job_id)
    if args.json:
        print_json({"id": args.job_id, "logs": text})
    else:
        sys.stdout.write(text)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = _client(args).cancel_job(args.job_id)
    if args.json:
        print_json(job)
    elif job["status"] in FINAL_STATUSES:
        print(f"Job {args.job_id} cancelled ({job['status']}).")
    else:
        print(f"Job {args.job_id} is being cancelled (still {job['status']}).")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _client(args).delete_job(args.job_id)
    if args.json:
        print_json({"id": args.job_id, "deleted": True})
    else:
        print(f"Job {args.job_id} deleted.")
    return 0


# -- backends ------------------------------------------------------------------------------


def cmd_backends(args: argparse.Namespace) -> int:
    backends = _client(args).list_backends()
    if args.json:
        print_json(backends)
        return 0
    rows = [(b["name"], ", ".join(b.get("aliases") or []) or "-", b.get("num_qubits", ""),
             b.get("simulator_method", ""), "yes" if b.get("noisy") else "no",
             ", ".join(b.get("workers") or []) or "-") for b in backends]
    _print_table(("NAME", "ALIASES", "QUBITS", "METHOD", "NOISY", "WORKERS"), rows)
    return 0


# -- shell completion ----------------------------------------------------------------------


def cmd_completion(args: argparse.Namespace) -> int:
    """Print argcomplete's code for ``args.shell``; the entry point (qruntime.__main__) answers it."""
    try:
        import argcomplete
    except ImportError:
        return fail("shell completion needs argcomplete (pip install argcomplete)")
    sys.stdout.write(argcomplete.shellcode(["qruntime"], shell=args.shell))
    return 0
