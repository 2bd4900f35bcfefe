"""The worker's program cache: private to the worker, checked before every use."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.keys import Keys
from orchestrator.program_files import describe
from orchestrator.program_store import ProgramStore
from orchestrator.redisconn import connect
from orchestrator.settings import BUILTIN_PROGRAMS_DIR, Settings
from qruntime.localredis import LocalRedis
from workers.program_cache import ProgramCache

SOURCE = b"def main(backend, user_messenger, **kwargs):\n    return 'cached'\n"


@pytest.fixture(scope="module")
def store() -> Iterator[ProgramStore]:
    with LocalRedis() as server:
        client = connect(Settings.load({"redis_url": server.url}, environ={}))
        yield ProgramStore(client, Keys("qrt-cache-test"))
        client.close()


def _upload(store: ProgramStore) -> object:
    name = f"cached-{os.urandom(4).hex()}"
    return store.create(owner="dev", metadata={"name": name, "max_execution_time": 60, "description": "x"},
                        data=SOURCE, files=describe(SOURCE, name))


def test_an_uploaded_version_is_unpacked_once_into_a_folder_only_the_worker_may_enter(
        store: ProgramStore, tmp_path: Path) -> None:
    cache = ProgramCache(store, tmp_path / "worker", "qrt")
    program = _upload(store)
    files = cache.files(program, [])
    assert (files.root / files.entry).read_bytes() == SOURCE
    assert files.host_path is None
    assert stat.S_IMODE(os.stat(tmp_path / "worker").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(files.root / files.entry).st_mode) == 0o444  # nobody may change it
    assert cache.files(program, []).root == files.root


def test_a_cached_version_changed_on_disk_is_unpacked_again_before_use(store: ProgramStore, tmp_path: Path) -> None:
    cache = ProgramCache(store, tmp_path / "worker", "qrt")
    program = _upload(store)
    files = cache.files(program, [])
    entry = files.root / files.entry
    os.chmod(entry, 0o644)
    entry.write_bytes(SOURCE + b"import os; os.system('evil')\n")
    again = cache.files(program, [])
    assert (again.root / again.entry).read_bytes() == SOURCE


def test_a_version_whose_data_does_not_match_its_sha256_is_refused(store: ProgramStore, tmp_path: Path) -> None:
    import dataclasses

    from orchestrator.errors import RequestError

    cache = ProgramCache(store, tmp_path / "worker", "qrt")
    program = dataclasses.replace(_upload(store), sha256="0" * 64)
    with pytest.raises(RequestError, match="does not match its sha256"):
        cache.files(program, [])


def test_a_builtin_is_handed_as_its_programs_folder_so_it_can_read_its_siblings(
        store: ProgramStore, tmp_path: Path) -> None:
    from orchestrator.programs import ProgramRegistry

    cache = ProgramCache(store, tmp_path / "worker", "qrt")
    qaoa = ProgramRegistry([BUILTIN_PROGRAMS_DIR]).get("qaoa")
    files = cache.files(qaoa, [BUILTIN_PROGRAMS_DIR])
    assert files.root == BUILTIN_PROGRAMS_DIR.resolve()
    assert files.entry == "qaoa/qaoa.py" and (files.root / "vqe" / "vqe.py").exists()
