"""Program management commands: upload, update, delete-program, publish, unpublish, versions.

They use ``RuntimeService``'s program management methods, so the CLI and the
Python client share one code path and one set of error messages.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from qruntime.cli.options import (
    HelpFormatter,
    connection_options,
    fail,
    failure_text,
    local_time,
    print_json,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    common = connection_options()

    def add(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common],
                                       formatter_class=HelpFormatter)
        parser.set_defaults(handler=handler)
        return parser

    upload = add("upload", "upload a program (file, directory or zip/tar)", cmd_upload)
    upload.add_argument("path", help="the program's source file, directory, or archive")
    upload.add_argument("--metadata", required=True, metavar="FILE",
                        help="JSON metadata file (the seed's format; required, no default)")
    upload.add_argument("--public", action="store_true", help="make it public at once (default: private)")

    update = add("update", "new code and/or metadata for a program (a new version)", cmd_update)
    update.add_argument("program_id", metavar="ID", help="the program's id")
    update.add_argument("path", nargs="?", default=None,
                        help="new source file, directory, or archive (default: keep the code)")
    update.add_argument("--metadata", default=None, metavar="FILE",
                        help="JSON metadata file (default: keep the metadata)")
    update.add_argument("--name", default=None, help="a new name (default: keep it)")
    update.add_argument("--description", default=None, help="a new description (default: keep it)")
    update.add_argument("--max-execution-time", type=int, default=None, metavar="SECONDS",
                        help="a new time limit per job (default: keep it)")

    for name, helptext, handler in [
        ("delete-program", "delete a program and all its versions", cmd_delete),
        ("publish", "make a program public", cmd_publish),
        ("unpublish", "make a program private", cmd_unpublish),
        ("versions", "list a program's versions (* marks the current one)", cmd_versions),
    ]:
        parser = add(name, helptext, handler)
        parser.add_argument("program_id", metavar="ID", help="the program's id")


def _service(args: argparse.Namespace) -> Any:
    from qruntime.client.service import RuntimeService

    return RuntimeService(url=args.url, token=args.token)


def _run(args: argparse.Namespace, action) -> int:
    try:
        data, text = action(_service(args))
    except Exception as exc:  # one line per failure, never a traceback
        return fail(failure_text(exc))
    if args.json:
        print_json(data)
    else:
        print(text)
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        metadata = _read_metadata(args.metadata)
        if args.public:
            metadata["is_public"] = True
        program_id = service.upload_program(args.path, metadata)
        return {"id": program_id}, f"Uploaded {program_id}"

    return _run(args, action)


def _read_metadata(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read metadata from {path}: {exc}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} must hold a JSON object of metadata, not {type(metadata).__name__}")
    return metadata


def cmd_update(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        service.update_program(args.program_id, data=args.path, metadata=args.metadata, name=args.name,
                               description=args.description, max_execution_time=args.max_execution_time)
        versions = service.program_versions(args.program_id)
        current = next(v["version"] for v in versions if v["current"])
        return {"id": args.program_id, "version": current}, f"Updated {args.program_id}: now version {current}"

    return _run(args, action)


def cmd_delete(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        service.delete_program(args.program_id)
        return {"deleted": args.program_id}, f"Deleted {args.program_id}"

    return _run(args, action)


def cmd_publish(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        service.set_program_visibility(args.program_id, True)
        return {"id": args.program_id, "is_public": True}, f"{args.program_id} is now public"

    return _run(args, action)


def cmd_unpublish(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        service.set_program_visibility(args.program_id, False)
        return {"id": args.program_id, "is_public": False}, f"{args.program_id} is now private"

    return _run(args, action)


def cmd_versions(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        versions = service.program_versions(args.program_id)
        lines = [f"{'*' if v['current'] else ' '} {v['version']:>4}  {local_time(v['created'])}  {v['name']}  "
                 f"{v['cost']} s  {v.get('sha256', '')[:12]}" for v in versions]
        return versions, "\n".join(lines)

    return _run(args, action)
