"""Saved credentials: where the client finds the API URL and token when not given.

The seed kept them in ``~/.qiskit/qiskitrc`` via ``IBMQ.save_account``; qruntime
keeps a small JSON file, ``~/.qruntime/account.json`` (``QRT_ACCOUNT_FILE``
overrides the path), readable only by its owner because it holds a token.
Resolution order: explicit arguments, then ``QRT_URL``/``QRT_TOKEN``, then this
file, then the local default that ``qruntime up`` listens on.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
ACCOUNT_FILE_ENV = "QRT_ACCOUNT_FILE"
#: Owner read/write only: the file holds a bearer token.
ACCOUNT_FILE_MODE = 0o600


def account_path() -> Path:
    override = os.environ.get(ACCOUNT_FILE_ENV)
    return Path(override) if override else Path.home() / ".qruntime" / "account.json"


def save_account(url: str, token: str | None = None, overwrite: bool = False) -> Path | None:
    """Write ``url`` and ``token`` to the account file.

    Like the seed's ``IBMQ.save_account``, an existing file is kept (with a
    warning) unless ``overwrite`` is true.

    Returns:
        The path written, or None when an existing account was kept.
    """
    path = account_path()
    if path.exists() and not overwrite:
        warnings.warn(f"An account is already saved in {path}. Set overwrite=True to overwrite it.",
                      stacklevel=3)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"url": url, "token": token}, indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ACCOUNT_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, ACCOUNT_FILE_MODE)
    return path


def load_account() -> dict[str, str | None]:
    """The saved ``{"url", "token"}``, or an empty dict when none is saved.

    Raises:
        IBMQAccountError: the file exists but is not a saved account.
    """
    path = account_path()
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        from qruntime.exceptions import IBMQAccountError

        raise IBMQAccountError(f"Cannot read the saved account {path}: {exc}") from None
    if not isinstance(saved, dict):
        from qruntime.exceptions import IBMQAccountError

        raise IBMQAccountError(f"The saved account {path} is not a JSON object; save it again.")
    return {"url": saved.get("url"), "token": saved.get("token")}


def delete_account() -> bool:
    """Remove the saved account; True if there was one."""
    try:
        account_path().unlink()
    except FileNotFoundError:
        return False
    return True


def resolve(url: str | None = None, token: str | None = None) -> tuple[str, str | None]:
    """The URL and token to use: arguments, then environment, then the saved account.

    A saved token is only used with the saved URL, so it is never sent to a
    different server named by an argument or ``QRT_URL``.
    """
    saved = load_account() if not url and not os.environ.get("QRT_URL") or token is None else {}
    url = url or os.environ.get("QRT_URL") or saved.get("url") or DEFAULT_URL
    if token is None:
        token = os.environ.get("QRT_TOKEN") or None
        if token is None and saved.get("url") and _same_url(saved["url"], url):
            token = saved.get("token") or None
    return url, token


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")
