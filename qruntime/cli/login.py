"""Account commands: ``qruntime login URL``, ``qruntime logout [URL]``, ``qruntime accounts``.

``login`` checks the token against the service (``GET /me``) before saving it,
so a typo is refused instead of saved, then makes that service the default for
the CLI and for ``RuntimeService()``. Tokens are saved per URL
(:mod:`qruntime.client.account`); ``accounts`` lists them without the tokens.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from qruntime.cli.options import failure_text


def register(subparsers: argparse._SubParsersAction) -> None:
    login = subparsers.add_parser("login", help="check a token against a service and save it for that URL")
    login.add_argument("url", metavar="URL", help="the service's base URL, e.g. http://127.0.0.1:8000")
    login.add_argument("--token", default=None,
                       help="the bearer token (default: asked for, without echo, so it stays out of shell history)")
    login.add_argument("--no-default", dest="make_default", action="store_false",
                       help="save it without making this URL the default service")
    login.set_defaults(handler=cmd_login)

    logout = subparsers.add_parser("logout", help="forget the token saved for a URL")
    logout.add_argument("url", metavar="URL", nargs="?", default=None,
                        help="the service's URL (default: the default service)")
    logout.set_defaults(handler=cmd_logout)

    accounts = subparsers.add_parser("accounts", help="list the services a token is saved for")
    accounts.add_argument("--json", action="store_true", help="print JSON")
    accounts.set_defaults(handler=cmd_accounts)


def cmd_login(args: argparse.Namespace) -> int:
    from qruntime.client.account import account_path, normalize_url, save_account
    from qruntime.client.http import ApiClient

    url = normalize_url(args.url)
    token = args.token if args.token is not None else getpass.getpass(f"Token for {url}: ")
    if not token.strip():
        print("qruntime: no token given; nothing saved.", file=sys.stderr)
        return 1
    try:
        me = ApiClient(url, token.strip()).me()
    except Exception as exc:  # noqa: BLE001 - every failure is one line, and nothing is saved
        print(f"qruntime: not saved: {failure_text(exc)}", file=sys.stderr)
        return 1
    save_account(url, token.strip(), overwrite=True, make_default=args.make_default)
    default = " (the default service)" if args.make_default else ""
    print(f"Logged in to {url} as {me['name']} ({me['role']}); saved in {account_path()}{default}.")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from qruntime.client.account import delete_account, load_account

    url = args.url or load_account().get("url")
    if not url or not delete_account(url):
        print(f"qruntime: no account is saved for {url or 'a default service'}.", file=sys.stderr)
        return 1
    print(f"Forgot the token for {url}.")
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    from qruntime.client.account import account_path, saved_accounts

    accounts = saved_accounts()
    if args.json:
        print(json.dumps(accounts, indent=2, ensure_ascii=False))
    elif not accounts:
        print(f"No account is saved in {account_path()}; save one with qruntime login URL.")
    else:
        for entry in accounts:
            marks = [m for m, on in (("default", entry["default"]), ("no token", not entry["has_token"])) if on]
            print(f"{entry['url']}{'  (' + ', '.join(marks) + ')' if marks else ''}")
    return 0
