"""Every Redis key and channel is built by orchestrator/keys.py, under the namespace."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from orchestrator.keys import INDEX_STATES, Keys

SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: Builders that return something other than one key name, checked separately.
NOT_KEY_BUILDERS = {"job_id_from_channel", "owner_scope", "job_keys", "index"}


def _key_builders(keys: Keys) -> list[tuple[str, str]]:
    """(name, result) for every public builder, called with placeholder arguments."""
    built = []
    for name, method in inspect.getmembers(keys, callable):
        if name.startswith("_") or name in NOT_KEY_BUILDERS:
            continue
        params = inspect.signature(method).parameters
        built.append((name, method(*(f"arg{i}" for i in range(len(params))))))
    return built


@pytest.mark.parametrize("namespace", ["qrt", "tenant-7"])
def test_every_key_builder_is_under_the_namespace(namespace: str) -> None:
    keys = Keys(namespace)
    built = _key_builders(keys)
    assert len(built) >= 10  # job, result, events, channel, control, running, workers, ...
    for name, key in built:
        assert key.startswith(f"{namespace}:"), (name, key)
    for state in INDEX_STATES:
        for program in (None, "prog"):
            assert keys.index("all", state, program).startswith(f"{namespace}:idx:")
            assert keys.index(Keys.owner_scope("alice"), state, program).startswith(f"{namespace}:idx:")
    assert all(k.startswith(f"{namespace}:job:") for k in keys.job_keys("abc"))


def test_job_keys_lists_the_record_result_event_log_and_checkpoint() -> None:
    keys = Keys("ns")
    assert keys.job_keys("j1") == [keys.job("j1"), keys.result("j1"), keys.events("j1"), keys.checkpoint("j1")]


def test_two_namespaces_share_no_key() -> None:
    first = {key for _, key in _key_builders(Keys("one"))}
    second = {key for _, key in _key_builders(Keys("two"))}
    assert first.isdisjoint(second)


def test_channel_names_round_trip_to_job_ids() -> None:
    keys = Keys("qrt")
    channel = keys.channel("abcdefghij2345672345")
    assert keys.job_id_from_channel(channel) == "abcdefghij2345672345"
    pattern = re.escape(keys.channel_pattern()).replace(r"\*", ".*")
    assert re.fullmatch(pattern, channel)


def test_unknown_index_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown index state"):
        Keys().index("all", "sometimes")


def test_index_pattern_matches_every_index_key() -> None:
    keys = Keys("qrt")
    pattern = re.escape(keys.index_pattern()).replace(r"\*", ".*")
    for state in INDEX_STATES:
        assert re.fullmatch(pattern, keys.index("all", state, "prog"))
        assert re.fullmatch(pattern, keys.index(Keys.owner_scope("bob"), state))


def test_no_module_but_keys_spells_a_namespaced_key() -> None:
    """STYLE habit 2: key names are built in one place (tests may scan with a literal)."""
    offenders = []
    for directory in ("orchestrator", "workers", "api", "qruntime"):
        for path in (SOURCE_ROOT / directory).rglob("*.py"):
            if path.name == "keys.py" and directory == "orchestrator":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "namespace}:" in line or re.search(r"[\"']qrt:", line):
                    offenders.append(f"{path.relative_to(SOURCE_ROOT)}:{number}: {line.strip()}")
    assert offenders == []
