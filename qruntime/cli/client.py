"""Client commands: ``qruntime programs|program|run|jobs|job|result|logs|cancel|delete|backends``.

Every command takes ``--url``/``--token`` (defaults ``QRT_URL``/``QRT_TOKEN``, then
the saved account) and ``--json`` for machine output. They talk to the REST API
through :mod:`qruntime.client.http` and :mod:`qruntime.client.streaming`, which do
not import qiskit, so a command costs an HTTP round trip, not a qiskit import.
Only this module's top level runs for ``qruntime --help``: it imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from qruntime.cli.options import connection_options, failure_text, is_client_error
from qruntime.client.vocabulary import (
    CANCELLED,
    COMPLETED,
    EVENT_DONE,
    EVENT_INTERIM,
    EVENT_LOG,
    FAILURE_MESSAGES,
    FINAL_STATUSES,
    failure_message,
)

if TYPE_CHECKING:
    from qruntime.client.http import ApiClient

PROGRESS_WIDTH = 20
#: Keys of an interim result that count iterations, in the order they are looked for.
ITERATION_KEYS = ("iteration", "iter", "step", "epoch")
#: Input names that give the number of iterations a run will make.
TOTAL_KEYS = ("iterations", "maxiter", "max_iterations", "steps", "epochs")


class CommandError(Exception):
    """Raised by a command to stop with a message and exit status 1."""


def register(subparsers: argparse._SubParsersAction) -> None:
    common = connection_options()

    def add(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, parents=[common])
        parser.set_defaults(handler=lambda args: _run(handler, args))
        return parser

    programs = add("programs", "list the programs you may run", cmd_programs)
    programs.add_argument("--detailed", action="store_true", help="print every program in full")
    programs.add_argument("--limit", type=int, default=None)
    programs.add_argument("--skip", type=int, default=0)

    program = add("program", "show one program's metadata", cmd_program)
    program.add_argument("program_id", metavar="ID")

    run = add("run", "run a program", cmd_run)
    run.add_argument("program_id", metavar="ID")
    run.add_argument("--input", action="append", default=[], metavar="K=V",
                     help="one input; V is parsed as JSON when it parses, else taken as a string")
    run.add_argument("--inputs", metavar="FILE", help="a JSON object of inputs ('-' for stdin)")
    run.add_argument("--backend", default=os.environ.get("QRT_BACKEND"),
                     help="backend to run on (default $QRT_BACKEND)")
    run.add_argument("--log-level", default=None, help="program log level (DEBUG … CRITICAL)")
    run.add_argument("--follow", action="store_true",
                     help="show interim results as they arrive, then the result")

    jobs = add("jobs", "list your jobs, newest first", cmd_jobs)
    jobs.add_argument("--limit", type=int, default=10)
    jobs.add_argument("--skip", type=int, default=0)
    state = jobs.add_mutually_exclusive_group()
    state.add_argument("--pending", dest="pending", action="store_const", const=True, default=None,
                       help="only queued and running jobs")
    state.add_argument("--finished", dest="pending", action="store_const", const=False,
                       help="only jobs that have ended")
    jobs.add_argument("--program", default=None, metavar="ID", help="only jobs of this program")

    job = add("job", "show one job", cmd_job)
    job.add_argument("job_id", metavar="ID")

    result = add("result", "print a job's result (waits for the job to end)", cmd_result)
    result.add_argument("job_id", metavar="ID")
    result.add_argument("--no-wait", action="store_true", help="fail at once if the job is still running")

    logs = add("logs", "print a job's logs", cmd_logs)
    logs.add_argument("job_id", metavar="ID")

    cancel = add("cancel", "cancel a job", cmd_cancel)
    cancel.add_argument("job_id", metavar="ID")

    delete = add("delete", "delete a job and everything it left", cmd_delete)
    delete.add_argument("job_id", metavar="ID")

    add("backends", "list the backends", cmd_backends)


def _run(handler: Any, args: argparse.Namespace) -> int:
    """Call a command; turn API errors into one line on stderr and exit status 1."""
    try:
        return int(handler(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not is_client_error(exc):
            raise
        print(f"error: {failure_text(exc)}", file=sys.stderr)
        return 1


def _client(args: argparse.Namespace) -> ApiClient:
    from qruntime.client.account import resolve
    from qruntime.client.http import ApiClient

    url, token = resolve(args.url, args.token)
    return ApiClient(url, token)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# -- programs ----------------------------------------------------------------------------


def cmd_programs(args: argparse.Namespace) -> int:
    from qruntime.client.program import RuntimeProgram

    raws = _client(args).programs(limit=args.limit, offset=args.skip)
    if args.json:
        _print_json(raws)
        return 0
    for raw in raws:
        program = RuntimeProgram.from_api(raw)
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
        _print_json(raw)
    else:
        print(RuntimeProgram.from_api(raw))
    return 0


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
    if args.log_level:
        body["log_level"] = args.log_level
    client = _client(args)
    job = client.submit_job(body)
    if not args.follow:
        if args.json:
            _print_json(job)
        else:
            print(f"job ID: {job['id']}")
        return 0
    if not args.json:
        print(f"job ID: {job['id']}", flush=True)
    try:
        return follow(client, job["id"], inputs, as_json=args.json)
    except KeyboardInterrupt:
        print(f"\nStopped following job {job['id']}; it keeps running "
              f"(`qruntime result {job['id']}` waits for it, `qruntime cancel {job['id']}` stops it).",
              file=sys.stderr)
        raise


def follow(client: ApiClient, job_id: str, inputs: dict[str, Any], as_json: bool) -> int:
    """Print a job's interim results as they arrive, then its result; exit 1 if it failed."""
    from qruntime.client.streaming import EventStream

    progress = Progress(_total_iterations(inputs))
    final_status = ""
    for event in EventStream(client, job_id):
        if event.type == EVENT_INTERIM:
            if as_json:
                print(json.dumps({"event": "interim", "id": event.id, "data": json.loads(event.data)}), flush=True)
            else:
                print(progress.line(event.data), flush=True)
        elif event.type == EVENT_LOG and not as_json:
            record = json.loads(event.data)
            text = record.get("text", "") if isinstance(record, dict) else str(record)
            print(f"[log] {text.rstrip()}", file=sys.stderr, flush=True)
        elif event.type == EVENT_DONE:
            final_status = json.loads(event.data).get("status", "")
    return _print_result(client, job_id, final_status or client.get_job(job_id)["status"], as_json)


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
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = data
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
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        key = "error" if failed else "result"
        print(json.dumps({"event": "result", "id": job_id, "status": status, key: value}), flush=True)
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
    collected = _client(args).jobs(limit, args.skip, pending=args.pending, program_id=args.program)
    if args.json:
        _print_json(collected)
        return 0
    rows = [(j["id"], j["status"], (j.get("program") or {}).get("id", ""), j.get("backend", ""),
             j.get("created") or "") for j in collected]
    _print_table(("ID", "STATUS", "PROGRAM", "BACKEND", "CREATED"), rows)
    return 0


def _print_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


def cmd_job(args: argparse.Namespace) -> int:
    job = _client(args).get_job(args.job_id)
    if args.json:
        _print_json(job)
        return 0
    fields = [("ID", job["id"]), ("Status", job["status"]),
              ("Program", (job.get("program") or {}).get("id", "")), ("Backend", job.get("backend", "")),
              ("Created", job.get("created")), ("Started", job.get("started")), ("Ended", job.get("ended")),
              ("Log level", job.get("log_level")), ("Max execution time", job.get("cost")),
              ("Owner", job.get("owner")), ("Attempts", job.get("attempts")), ("Reason", job.get("reason")),
              ("Inputs", json.dumps(job.get("params", {})))]
    for name, value in fields:
        if value not in (None, ""):
            print(f"{name + ':':<20}{value}")
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    from qruntime.client.streaming import EventStream

    client = _client(args)
    job = client.get_job(args.job_id)
    status = job["status"]
    if status not in FINAL_STATUSES:
        if args.no_wait:
            raise CommandError(f"Job {args.job_id} is {status}; its result is not ready yet")
        for event in EventStream(client, args.job_id, after=int(job.get("last_event_id") or 0)):
            if event.type == EVENT_DONE:
                status = json.loads(event.data).get("status", "")
        status = status if status in FINAL_STATUSES else client.get_job(args.job_id)["status"]
    return _print_result(client, args.job_id, status, args.json)


def cmd_logs(args: argparse.Namespace) -> int:
    text = _client(args).job_logs(args.job_id)
    if args.json:
        _print_json({"id": args.job_id, "logs": text})
    else:
        sys.stdout.write(text)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = _client(args).cancel_job(args.job_id)
    if args.json:
        _print_json(job)
    elif job["status"] in FINAL_STATUSES:
        print(f"Job {args.job_id} cancelled ({job['status']}).")
    else:
        print(f"Job {args.job_id} is being cancelled (still {job['status']}).")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _client(args).delete_job(args.job_id)
    if args.json:
        _print_json({"id": args.job_id, "deleted": True})
    else:
        print(f"Job {args.job_id} deleted.")
    return 0


# -- backends ------------------------------------------------------------------------------


def cmd_backends(args: argparse.Namespace) -> int:
    backends = _client(args).list_backends()
    if args.json:
        _print_json(backends)
        return 0
    rows = [(b["name"], b.get("num_qubits", ""), b.get("simulator_method", ""),
             "yes" if b.get("noisy") else "no", ", ".join(b.get("workers") or []) or "-") for b in backends]
    _print_table(("NAME", "QUBITS", "METHOD", "NOISY", "WORKERS"), rows)
    return 0
