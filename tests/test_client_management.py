"""Program management through the Python client and the CLI, with auth on.

The seed's methods and messages: ``upload_program``, ``update_program``,
``delete_program``, ``set_program_visibility``, ``program.data`` for authors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from qruntime.client.service import RuntimeService
from qruntime.exceptions import (
    IBMQInputValueError,
    IBMQNotAuthorizedError,
    QiskitRuntimeError,
    RuntimeDuplicateProgramError,
    RuntimeProgramNotFound,
)
from tests.harness import Stack

MAIN = '''
from words import shout


def main(backend, user_messenger, word="hi", **kwargs):
    user_messenger.publish({"heard": word})
    with open(__file__.replace("main.py", "greeting.txt")) as handle:
        greeting = handle.read().strip()
    return shout(greeting + " " + word)
'''
METADATA = {"name": "shouter", "description": "Shouts a word.", "max_execution_time": 60,
            "spec": {"parameters": {"type": "object", "properties": {"word": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    stack = Stack(auth="on")
    try:
        stack.start_worker(concurrency=2)
        stack.start_api()
        tokens = stack.add_users([("dev", "developer"), ("user", "user")])
        folder = tmp_path_factory.mktemp("shouter")
        (folder / "main.py").write_text(MAIN)
        (folder / "words.py").write_text("def shout(text):\n    return text.upper() + '!'\n")
        (folder / "greeting.txt").write_text("hello\n")
        yield {"stack": stack, "tokens": tokens, "folder": folder,
               "dev": RuntimeService(url=stack.url, token=tokens["dev"]),
               "user": RuntimeService(url=stack.url, token=tokens["user"])}
    finally:
        stack.stop()


def test_a_developer_uploads_a_directory_a_user_runs_it_and_only_the_author_reads_it(env: dict) -> None:
    dev, user = env["dev"], env["user"]
    program_id = dev.upload_program(env["folder"], {**METADATA, "is_public": True})
    received = []
    job = user.run(program_id, options={"backend_name": "aer_simulator"}, inputs={"word": "there"},
                   callback=lambda job_id, message: received.append(message))
    assert job.result(timeout=60) == "HELLO THERE!"
    assert received == [{"heard": "there"}]
    with pytest.raises(IBMQNotAuthorizedError, match="Only program authors"):
        user.program(program_id).data  # noqa: B018
    assert "UEsDB" in dev.program(program_id, refresh=True).data  # base64 of the zip
    with pytest.raises(RuntimeDuplicateProgramError, match="Program with the same name already exists."):
        dev.upload_program(env["folder"], METADATA)

    (env["folder"] / "greeting.txt").write_text("goodbye\n")
    dev.update_program(program_id, data=env["folder"], description="Shouts louder.")
    assert [v["version"] for v in dev.program_versions(program_id)] == ["1", "2", "3"]
    assert dev.program(program_id, refresh=True).description == "Shouts louder."
    assert user.run(program_id, options={"backend_name": "aer_simulator"},
                    inputs={"word": "now"}).result(timeout=60) == "GOODBYE NOW!"
    old = user.run(program_id, options={"backend_name": "aer_simulator", "version": "1"}, inputs={"word": "then"})
    assert old.result(timeout=60) == "HELLO THEN!"

    dev.set_program_visibility(program_id, False)
    with pytest.raises(RuntimeProgramNotFound):
        user.program(program_id, refresh=True)
    dev.delete_program(program_id)
    with pytest.raises(RuntimeProgramNotFound):
        dev.program(program_id, refresh=True)
    with pytest.raises(RuntimeProgramNotFound):
        dev.delete_program(program_id)


def test_source_text_uploads_and_reads_back_unchanged(env: dict) -> None:
    source = "def main(backend, user_messenger, **kwargs):\n    return 'plain'\n"
    program_id = env["dev"].upload_program(source, {**METADATA, "name": "plain"})
    assert env["dev"].program(program_id).data == source


def test_the_seed_errors_for_bad_uploads(env: dict) -> None:
    dev, user = env["dev"], env["user"]
    with pytest.raises(IBMQNotAuthorizedError, match="You are not authorized to upload programs."):
        user.upload_program(env["folder"], {**METADATA, "name": "not-mine"})
    for missing in ("name", "description", "max_execution_time"):
        metadata = {k: v for k, v in METADATA.items() if k != missing}
        with pytest.raises(IBMQInputValueError, match=f"{missing} is a required metadata field."):
            dev.upload_program(env["folder"], metadata)
    with pytest.raises(QiskitRuntimeError, match="Failed to create program: .*ceiling"):
        dev.upload_program(env["folder"], {**METADATA, "name": "too-long", "max_execution_time": 10**8})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dev.update_program("anything")
    assert "No update is made." in str(caught[0].message)


def test_metadata_file_paths_work_like_the_seed(env: dict, tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps({**METADATA, "name": "from-file", "version": "1.0", "parameters": []}))
    program_id = env["dev"].upload_program(str(env["folder"] / "main.py"), str(path))
    program = env["dev"].program(program_id)
    assert program.name == "from-file" and program.max_execution_time == 60


def test_the_cli_uploads_updates_publishes_and_deletes(env: dict, tmp_path: Path) -> None:
    stack = env["stack"]
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({**METADATA, "name": "cli-shouter"}))
    base = {**os.environ, "QRT_URL": stack.url, "QRT_TOKEN": env["tokens"]["dev"],
            "QRT_ACCOUNT_FILE": str(tmp_path / "none.json")}

    def qruntime(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
        environ = {**base, "QRT_TOKEN": token} if token else base
        return subprocess.run([sys.executable, "-m", "qruntime", *args], env=environ, capture_output=True,
                              text=True, timeout=60)

    uploaded = qruntime("upload", str(env["folder"]), "--metadata", str(metadata), "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    program_id = json.loads(uploaded.stdout)["id"]
    assert qruntime("program", program_id, token=env["tokens"]["user"]).returncode != 0
    assert qruntime("publish", program_id).returncode == 0
    assert program_id in qruntime("program", program_id, token=env["tokens"]["user"]).stdout
    updated = qruntime("update", program_id, "--description", "Shouts via the CLI.")
    assert updated.returncode == 0 and "version 2" in updated.stdout
    versions = qruntime("versions", program_id, "--json")
    assert [v["version"] for v in json.loads(versions.stdout)] == ["1", "2"]
    assert qruntime("unpublish", program_id).returncode == 0
    refused = qruntime("delete-program", program_id, token=env["tokens"]["user"])
    assert refused.returncode == 1 and "Program not found" in refused.stderr
    assert qruntime("delete-program", program_id).returncode == 0
    assert "Program not found" in qruntime("delete-program", program_id).stderr
