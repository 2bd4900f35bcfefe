"""Admin commands: ``qruntime users ...`` and ``qruntime tokens ...``.

They talk to the REST API with the caller's token (``--url``/``QRT_URL``,
``--token``/``QRT_TOKEN`` or the saved account). ``--direct`` talks to Redis
instead (``QRT_REDIS_URL``), which is how the first admin of a fresh deployment
is made when no token exists yet (``qruntime up`` does it by itself).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import TYPE_CHECKING, Any

from qruntime.cli import up_state
from qruntime.cli.options import connection_options, failure_text, local_time, print_json
from qruntime.client.vocabulary import ROLE_USER, ROLES

if TYPE_CHECKING:
    from qruntime.client.http import ApiClient


def register(subparsers: argparse._SubParsersAction) -> None:
    common = connection_options()
    users = subparsers.add_parser("users", help="manage users (admins)")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_sub.add_parser("add", help="add a user and print a first token for them", parents=[common])
    add.add_argument("name", help="the new user's name")
    add.add_argument("--role", choices=ROLES, default=ROLE_USER,
                     help=f"what they may do: {', '.join(ROLES)} (default {ROLE_USER})")
    _common(add)
    add.set_defaults(handler=cmd_users_add)
    listing = users_sub.add_parser("list", help="list users", parents=[common])
    _common(listing)
    listing.set_defaults(handler=cmd_users_list)
    role = users_sub.add_parser("set-role", help="change a user's role", parents=[common])
    role.add_argument("name", help="the user's name")
    role.add_argument("role", choices=ROLES, help=f"the new role: {', '.join(ROLES)}")
    _common(role)
    role.set_defaults(handler=cmd_users_set_role)
    remove = users_sub.add_parser("remove", help="remove a user and revoke their tokens", parents=[common])
    remove.add_argument("name", help="the user's name")
    _common(remove)
    remove.set_defaults(handler=cmd_users_remove)

    tokens = subparsers.add_parser("tokens", help="create, list and revoke bearer tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    create = tokens_sub.add_parser("create", help="create a token (printed once)", parents=[common])
    create.add_argument("--user", default=None, help="whose token (admins only; default: yourself)")
    create.add_argument("--expires-in", type=float, default=None, metavar="SECONDS",
                        help="the token stops working after this long (default: never)")
    create.add_argument("--description", default="",
                        help="what the token is for, shown by tokens list (default: none)")
    create.add_argument("--save", action="store_true", help="save it as this machine's account")
    _common(create)
    create.set_defaults(handler=cmd_tokens_create)
    tlist = tokens_sub.add_parser("list", help="list tokens (ids, never secrets)", parents=[common])
    tlist.add_argument("--user", default=None, help="whose tokens (admins only; default: your own)")
    _common(tlist)
    tlist.set_defaults(handler=cmd_tokens_list)
    show = tokens_sub.add_parser("show", help="print the saved account's token (for curl: $(qruntime tokens show))")
    show.set_defaults(handler=cmd_tokens_show)
    revoke = tokens_sub.add_parser("revoke", help="revoke a token by id (stops working at once)", parents=[common])
    revoke.add_argument("token_id", help="the token's id, as tokens list shows it")
    _common(revoke)
    revoke.set_defaults(handler=cmd_tokens_revoke)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--direct", action="store_true",
                        help="write to Redis instead of the API (QRT_REDIS_URL, else a running qruntime up's)")


def _api(args: argparse.Namespace) -> ApiClient:
    """The API, with the caller's credentials."""
    from qruntime.client.account import resolve
    from qruntime.client.http import ApiClient

    return ApiClient(*resolve(args.url, args.token))


def _accounts():
    from orchestrator.accounts import Accounts
    from orchestrator.keys import Keys
    from orchestrator.redisconn import connect
    from orchestrator.settings import Settings

    overrides = {}
    if not os.environ.get("QRT_REDIS_URL"):
        # The embedded Redis of a running `qruntime up` has a random port and password; its
        # state file (readable by this user only) says where.
        state = up_state.running(up_state.default_data_dir())
        if state is None or not state.get("redis_url"):
            raise RuntimeError("--direct needs the store: set QRT_REDIS_URL, or run this beside a running "
                               f"`qruntime up` (none runs on {up_state.default_data_dir()}; QRT_DATA_DIR names "
                               "another data directory)")
        overrides["redis_url"] = state["redis_url"]
    settings = Settings.load(overrides)
    return Accounts(connect(settings), Keys(settings.namespace))


def _run(action) -> int:
    try:
        action()
    except Exception as exc:  # every failure is a one-line message, not a traceback
        print(f"qruntime: {failure_text(exc)}", file=sys.stderr)
        return 1
    return 0


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print_json(data)
    else:
        print(text)


def cmd_users_add(args: argparse.Namespace) -> int:
    def action() -> None:
        if args.direct:
            accounts = _accounts()
            user = accounts.add_user(args.name, args.role)
            secret, info = accounts.create_token(args.name, description="first token")
            token = {**dataclasses.asdict(info), "token": secret}
        else:
            api = _api(args)
            user = api.add_user(args.name, args.role)
            token = api.create_token(args.name, description="first token")
        _print(args, {"user": user, "token": token},
               f"Added {user['name']} ({user['role']}). Their token (shown once):\n{token['token']}")

    return _run(action)


def cmd_users_list(args: argparse.Namespace) -> int:
    def action() -> None:
        users = _accounts().list_users() if args.direct else _api(args).list_users()
        _print(args, users, "\n".join(f"{u['name']:24} {u['role']:10} {local_time(u['created'])}" for u in users))

    return _run(action)


def cmd_users_set_role(args: argparse.Namespace) -> int:
    def action() -> None:
        if args.direct:
            user = _accounts().set_role(args.name, args.role)
        else:
            user = _api(args).set_user_role(args.name, args.role)
        _print(args, user, f"{user['name']} is now {user['role']}.")

    return _run(action)


def cmd_users_remove(args: argparse.Namespace) -> int:
    def action() -> None:
        if args.direct:
            _accounts().remove_user(args.name)
        else:
            _api(args).remove_user(args.name)
        _print(args, {"removed": args.name}, f"Removed {args.name}; their tokens are revoked.")

    return _run(action)


def cmd_tokens_create(args: argparse.Namespace) -> int:
    def action() -> None:
        if args.direct:
            if not args.user:
                raise ValueError("--direct needs --user NAME")
            secret, info = _accounts().create_token(args.user, expires_in_s=args.expires_in,
                                                     description=args.description)
            state = up_state.running(up_state.default_data_dir()) or {}
            token, url = {**dataclasses.asdict(info), "token": secret}, args.url or state.get("url")
        else:
            api = _api(args)
            token = api.create_token(args.user, args.expires_in, args.description)
            url = api.url
        if args.save:
            from qruntime.client.account import save_account

            if not url:
                raise ValueError("--save needs --url (or QRT_URL) to know which server the token is for")
            save_account(url, token["token"], overwrite=True)
        _print(args, token, f"Token {token['id']} for {token['user']} (shown once):\n{token['token']}")

    return _run(action)


def cmd_tokens_list(args: argparse.Namespace) -> int:
    def action() -> None:
        if args.direct:
            tokens = [dataclasses.asdict(t) for t in _accounts().list_tokens(args.user)]
        else:
            tokens = _api(args).list_tokens(args.user)
        lines = [f"{t['id']:14} {t['user']:20} {local_time(t['created']):25} "
                 f"{'expires ' + local_time(t['expires_at']) if t['expires_at'] else 'no expiry':33} "
                 f"{t['description']}" for t in tokens]
        _print(args, tokens, "\n".join(lines) or "No tokens.")

    return _run(action)


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    def action() -> None:
        if args.direct:
            _accounts().revoke(args.token_id)
        else:
            _api(args).revoke_token(args.token_id)
        _print(args, {"revoked": args.token_id}, f"Revoked token {args.token_id}.")

    return _run(action)


def cmd_tokens_show(args: argparse.Namespace) -> int:
    from qruntime.client.account import account_path, load_account

    token = load_account().get("token")
    if not token:
        print(f"qruntime: no token is saved in {account_path()}", file=sys.stderr)
        return 1
    print(token)
    return 0
