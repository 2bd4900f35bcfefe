"""Settings: defaults, then QRT_* environment, then explicit overrides; bad values refused."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.settings import BUILTIN_PROGRAMS_DIR, Settings


def test_defaults_apply_without_environment() -> None:
    settings = Settings.load(environ={})
    assert settings == Settings()
    assert settings.namespace == "qrt"
    assert settings.broker == settings.redis_url  # the broker defaults to the store's Redis


def test_environment_overrides_defaults_with_the_right_types() -> None:
    settings = Settings.load(environ={
        "QRT_REDIS_URL": "redis://example:6380/2",
        "QRT_MAX_ATTEMPTS": "5",
        "QRT_HEARTBEAT_INTERVAL_S": "0.25",
        "QRT_NAMESPACE": "tenant",
        "QRT_BROKER_URL": "redis://broker:6379/1",
        "UNRELATED": "ignored",
    })
    assert settings.redis_url == "redis://example:6380/2"
    assert settings.max_attempts == 5 and isinstance(settings.max_attempts, int)
    assert settings.heartbeat_interval_s == 0.25
    assert settings.namespace == "tenant"
    assert settings.broker == "redis://broker:6379/1"


def test_empty_environment_variable_means_default() -> None:
    assert Settings.load(environ={"QRT_MAX_ATTEMPTS": ""}).max_attempts == Settings().max_attempts


def test_explicit_overrides_beat_the_environment() -> None:
    environ = {"QRT_MAX_ATTEMPTS": "5", "QRT_NAMESPACE": "from-env"}
    settings = Settings.load({"max_attempts": 7, "QRT_NAMESPACE": "from-config"}, environ=environ)
    assert settings.max_attempts == 7
    assert settings.namespace == "from-config"
    assert Settings.load({"max_attempts": "9"}, environ=environ).max_attempts == 9


@pytest.mark.parametrize(
    ("name", "raw"),
    [("QRT_MAX_ATTEMPTS", "two"), ("QRT_HEARTBEAT_INTERVAL_S", "fast"), ("QRT_MAX_PAYLOAD_BYTES", "1.5e6"),
     ("QRT_JOB_TTL_S", "30d")],
)
def test_malformed_environment_value_raises_configuration_error_naming_it(name: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.load(environ={name: raw})
    assert name in caught.value.message and repr(raw) in caught.value.message


def test_malformed_override_value_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="QRT_MAX_ATTEMPTS"):
        Settings.load({"max_attempts": "many"}, environ={})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Unknown setting 'no_such_thing'"):
        Settings.load({"no_such_thing": 1}, environ={})


def test_as_env_round_trips_through_load() -> None:
    original = Settings.load({"max_attempts": 4, "kill_grace_s": 0.5, "programs_dirs": "/a:/b"}, environ={})
    env = original.as_env()
    assert all(name.startswith("QRT_") for name in env)
    assert Settings.load(environ=env) == original


def test_program_paths_put_the_builtins_first() -> None:
    settings = Settings.load({"programs_dirs": "/x:/y"}, environ={})
    assert [str(p) for p in settings.program_paths] == [str(BUILTIN_PROGRAMS_DIR), "/x", "/y"]


def test_every_setting_has_a_default() -> None:
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(Settings))


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"QRT_JOB_MEMORY_MB": "-1"}, "QRT_JOB_MEMORY_MB=-1 must not be negative"),
        ({"QRT_MAX_ATTEMPTS": "0"}, "QRT_MAX_ATTEMPTS=0 must be at least 1"),
        ({"QRT_HEARTBEAT_INTERVAL_S": "5", "QRT_HEARTBEAT_STALE_S": "5"}, "must be longer than"),
        ({"QRT_AUTH": "maybe"}, "QRT_AUTH='maybe' must be 'on' or 'off'"),
        ({"QRT_JOB_PIDS_MAX": "3"}, "QRT_JOB_PIDS_MAX=3 must be at least 8"),
        ({"QRT_JOB_UID_BASE": "0"}, "QRT_JOB_UID_BASE=0 must leave room"),
    ],
)
def test_out_of_range_values_raise_configuration_error(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.load(environ=environ)
    assert fragment in caught.value.message
