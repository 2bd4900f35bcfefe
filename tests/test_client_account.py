"""Where the client finds its URL and token, and the header it sends the token in."""

from __future__ import annotations

import http.server
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qruntime.client import account
from qruntime.client.http import ApiClient
from qruntime.client.service import RuntimeService


@pytest.fixture
def account_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "qruntime" / "account.json"
    monkeypatch.setenv("QRT_ACCOUNT_FILE", str(path))
    monkeypatch.delenv("QRT_URL", raising=False)
    monkeypatch.delenv("QRT_TOKEN", raising=False)
    return path


def test_saved_account_is_used_when_nothing_else_is_given(account_file: Path) -> None:
    RuntimeService.save_account("http://saved.example:8000", "saved-token")
    assert stat.S_IMODE(account_file.stat().st_mode) == 0o600
    service = RuntimeService()
    assert service.url == "http://saved.example:8000"
    assert account.resolve() == ("http://saved.example:8000", "saved-token")


def test_accounts_are_saved_per_url_and_the_last_saved_is_the_default(account_file: Path) -> None:
    RuntimeService.save_account("http://one.example", "one")
    RuntimeService.save_account("http://two.example/", "two")
    assert RuntimeService.saved_account() == {"url": "http://two.example", "token": "two"}
    assert RuntimeService.saved_account("http://one.example") == {"url": "http://one.example", "token": "one"}
    assert account.resolve("http://one.example") == ("http://one.example", "one")
    assert account.resolve() == ("http://two.example", "two")
    assert {(a["url"], a["default"]) for a in RuntimeService.saved_accounts()} == {
        ("http://one.example", False), ("http://two.example", True)}
    with pytest.warns(UserWarning, match="overwrite=True"):
        RuntimeService.save_account("http://one.example", "changed")
    assert RuntimeService.saved_account("http://one.example")["token"] == "one"
    RuntimeService.save_account("http://one.example", "changed", overwrite=True)
    assert account.resolve() == ("http://one.example", "changed")
    assert RuntimeService.delete_account("http://one.example")
    assert account.resolve() == ("http://two.example", "two")
    assert RuntimeService.delete_account()
    assert RuntimeService.saved_account() == {}


def test_an_account_file_of_the_first_format_is_read_as_one_account(account_file: Path) -> None:
    account_file.parent.mkdir(parents=True)
    account_file.write_text('{"url": "http://old.example:8000/", "token": "old-token"}')
    assert account.resolve() == ("http://old.example:8000", "old-token")
    RuntimeService.save_account("http://new.example", "new-token")
    assert account.resolve("http://old.example:8000") == ("http://old.example:8000", "old-token")


def test_environment_beats_the_saved_account_and_arguments_beat_both(
        account_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RuntimeService.save_account("http://saved.example", "saved-token")
    monkeypatch.setenv("QRT_URL", "http://env.example")
    monkeypatch.setenv("QRT_TOKEN", "env-token")
    assert account.resolve() == ("http://env.example", "env-token")
    assert account.resolve("http://arg.example", "arg-token") == ("http://arg.example", "arg-token")


def test_a_saved_token_is_never_sent_to_another_server(account_file: Path) -> None:
    RuntimeService.save_account("http://saved.example", "saved-token")
    assert account.resolve("http://other.example") == ("http://other.example", None)
    assert account.resolve("http://saved.example/") == ("http://saved.example", "saved-token")


def test_without_any_configuration_the_local_default_is_used(account_file: Path) -> None:
    assert account.resolve() == (account.DEFAULT_URL, None)


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        _Recorder.seen.append(dict(self.headers))
        body = b'{"backends": [{"name": "aer_simulator"}], "count": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_travels_as_a_bearer_authorization_header(recorder: str) -> None:
    assert [b.name for b in RuntimeService(url=recorder, token="s3cret").backends()] == ["aer_simulator"]
    ApiClient(recorder).list_backends()
    assert _Recorder.seen[0]["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in _Recorder.seen[1]


def test_a_malformed_account_file_is_an_account_error(account_file: Path) -> None:
    from qruntime.exceptions import IBMQAccountError

    account_file.parent.mkdir(parents=True)
    account_file.write_text("[]")
    with pytest.raises(IBMQAccountError, match="not a qruntime account file"):
        RuntimeService()
    account_file.write_text("{not json")
    with pytest.raises(IBMQAccountError, match="Cannot read the saved account"):
        RuntimeService()
