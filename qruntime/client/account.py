"""Saved credentials: where the client finds the API URL and token when not given.

The seed kept one account in ``~/.qiskit/qiskitrc`` via ``IBMQ.save_account``;
qruntime keeps a small JSON file, ``~/.qruntime/account.json``
(``QRT_ACCOUNT_FILE`` overrides the path), readable only by its owner because it
holds tokens. It holds one token per service URL, so several services (two
``qruntime up`` on different ports, a shared server) live side by side, and
names the *default* URL::

    {"default": "http://127.0.0.1:8000",
     "accounts": {"http://127.0.0.1:8000": {"token": "qrt_…"}, "https://q.example": {"token": "qrt_…"}}}

(A file in the first format, ``{"url", "token"}``, is read as one account.)

Resolution: the URL is the argument, else ``QRT_URL``, else the saved default,
else the local default that ``qruntime up`` listens on; the token is the
argument, else ``QRT_TOKEN``, else the token saved *for that URL*, so a token is
never sent to a server it was not saved for.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
ACCOUNT_FILE_ENV = "QRT_ACCOUNT_FILE"
#: Owner read/write only: the file holds bearer tokens.
ACCOUNT_FILE_MODE = 0o600


def account_path() -> Path:
    override = os.environ.get(ACCOUNT_FILE_ENV)
    return Path(override) if override else Path.home() / ".qruntime" / "account.json"


def save_account(url: str, token: str | None = None, overwrite: bool = False, *,
                 make_default: bool = True) -> Path | None:
    """Save ``token`` for ``url`` (and make ``url`` the default, unless ``make_default`` is false).

    Like the seed's ``IBMQ.save_account``, an account already saved for ``url`` is
    kept (with a warning) unless ``overwrite`` is true. Accounts for other URLs
    are never touched.

    Returns:
        The path written, or None when an existing account was kept.
    """
    url = normalize_url(url)
    saved = _read()
    if url in saved["accounts"] and not overwrite:
        warnings.warn(f"An account for {url} is already saved in {account_path()}. "
                      "Set overwrite=True to overwrite it.", stacklevel=3)
        return None
    saved["accounts"][url] = {"token": token}
    if make_default or not saved["default"]:
        saved["default"] = url
    return _write(saved)


def load_account(url: str | None = None) -> dict[str, str | None]:
    """The saved ``{"url", "token"}`` for ``url`` (default: the default account); empty if none.

    Raises:
        IBMQAccountError: the file exists but is not a saved account.
    """
    saved = _read()
    url = normalize_url(url) if url else saved["default"]
    if not url or url not in saved["accounts"]:
        return {}
    return {"url": url, "token": saved["accounts"][url].get("token")}


def saved_accounts() -> list[dict[str, Any]]:
    """Every saved account as ``{"url", "default", "has_token"}`` (never the tokens)."""
    saved = _read()
    return [{"url": url, "default": url == saved["default"], "has_token": bool(entry.get("token"))}
            for url, entry in saved["accounts"].items()]


def delete_account(url: str | None = None) -> bool:
    """Forget the account for ``url``, or (without one) every saved account; True if there was one."""
    if url is None:
        try:
            account_path().unlink()
        except FileNotFoundError:
            return False
        return True
    url = normalize_url(url)
    saved = _read()
    if saved["accounts"].pop(url, None) is None:
        return False
    if saved["default"] == url:
        saved["default"] = next(iter(saved["accounts"]), None)
    _write(saved)
    return True


def resolve(url: str | None = None, token: str | None = None) -> tuple[str, str | None]:
    """The URL and token to use (see the module docstring for the order)."""
    if not url and not os.environ.get("QRT_URL"):
        url = load_account().get("url") or DEFAULT_URL
    url = normalize_url(url or os.environ["QRT_URL"])
    if token is None:
        token = os.environ.get("QRT_TOKEN") or load_account(url).get("token") or None
    return url, token


def normalize_url(url: str) -> str:
    """One spelling per service: no trailing slash."""
    return url.strip().rstrip("/")


def no_token_message(url: str) -> str:
    """What to tell a caller who sent no token to a service that needs one."""
    return (
        f"No token for {url}, which needs one. Ask its admin for a token "
        f"(qruntime tokens create --user NAME), then save it: qruntime login {url} --token TOKEN "
        "(or set QRT_TOKEN, or pass token=...). On this machine, qruntime up saves the admin's "
        "token for its own URL, and qruntime tokens create --direct --user NAME works beside it."
    )


def _read() -> dict[str, Any]:
    path = account_path()
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {"default": None, "accounts": {}}
    except (OSError, ValueError) as exc:
        from qruntime.exceptions import IBMQAccountError

        raise IBMQAccountError(f"Cannot read the saved account {path}: {exc}") from None
    if isinstance(saved, dict) and "accounts" not in saved and isinstance(saved.get("url"), str):
        url = normalize_url(saved["url"])  # the first format: one account
        return {"default": url, "accounts": {url: {"token": saved.get("token")}}}
    if not (isinstance(saved, dict) and isinstance(saved.get("accounts"), dict)
            and all(isinstance(v, dict) for v in saved["accounts"].values())):
        from qruntime.exceptions import IBMQAccountError

        raise IBMQAccountError(f"The saved account {path} is not a qruntime account file; save it again.")
    return {"default": saved.get("default"), "accounts": saved["accounts"]}


def _write(saved: dict[str, Any]) -> Path:
    path = account_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ACCOUNT_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(saved, indent=2) + "\n")
    os.replace(scratch, path)
    return path
