"""Program management commands: upload, update, delete-program, publish, unpublish, versions.

They use ``RuntimeService``'s program management methods, so the CLI and the
Python client share one code path and one set of error messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from qruntime.cli.options import connection_options, failure_text


def register(subparsers: argparse._SubParsersAction) -> None:
    common = connection_options()
    upload = subparsers.add_parser("upload", help="upload a program (file, directory or zip/tar)", parents=[common])
    upload.add_argument("path", help="the program's source file, directory, or archive")
    upload.add_argument("--metadata", required=True, help="JSON metadata file (the seed's format)")
    upload.add_argument("--public", action="store_true", help="make it public at once")
    upload.set_defaults(handler=cmd_upload)

    update = subparsers.add_parser("update", help="new code and/or metadata for a program (a new version)",
                                   parents=[common])
    update.add_argument("program_id")
    update.add_argument("path", nargs="?", default=None, help="new source file, directory, or archive")
    update.add_argument("--metadata", default=None, help="JSON metadata file")
    update.add_argument("--name", default=None)
    update.add_argument("--description", default=None)
    update.add_argument("--max-execution-time", type=int, default=None)
    update.set_defaults(handler=cmd_update)

    for name, helptext, handler in [
        ("delete-program", "delete a program and all its versions", cmd_delete),
        ("publish", "make a program public", cmd_publish),
        ("unpublish", "make a program private", cmd_unpublish),
        ("versions", "list a program's versions", cmd_versions),
    ]:
        parser = subparsers.add_parser(name, help=helptext, parents=[common])
        parser.add_argument("program_id")
        parser.set_defaults(handler=handler)


def _service(args: argparse.Namespace) -> Any:
    from qruntime.client.service import RuntimeService

    return RuntimeService(url=args.url, token=args.token)


def _run(args: argparse.Namespace, action) -> int:
    try:
        data, text = action(_service(args))
    except Exception as exc:  # one line per failure, never a traceback
        print(f"qruntime: {failure_text(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    def action(service: Any) -> tuple[Any, str]:
        metadata = json.loads(open(args.metadata).read())
        if args.public:
            metadata["is_public"] = True
        program_id = service.upload_program(args.path, metadata)
        return {"id": program_id}, f"Uploaded {program_id}"

    return _run(args, action)


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
        lines = [f"{'*' if v['current'] else ' '} {v['version']:>4}  {v['created']}  {v['name']}  "
                 f"{v['cost']} s  {v.get('sha256', '')[:12]}" for v in versions]
        return versions, "\n".join(lines)

    return _run(args, action)
