from __future__ import annotations

import subprocess
import sys

import pytest

from weatherpipe.errors import SettingsError
from weatherpipe.settings import Settings, load_settings, meanings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    # A developer's own .env or exported variables must not change what these tests see.
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "DATABASE_URL",
        "ROTATE_MB",
        "LOCAL_KAFKA",
        "KAFKA_TOPIC",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_seed() -> None:
    s = load_settings()
    assert s.kafka_topic == "weather_data_raw"
    assert s.rotate_mb == 32
    assert s.kafka_bootstrap_servers == "localhost:9092"
    assert s.postgres_db == "weather_data"
    assert s.manages_kafka and s.manages_postgres


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC", "other_topic")
    monkeypatch.setenv("ROTATE_MB", "0.5")
    s = load_settings()
    assert (s.kafka_topic, s.rotate_mb) == ("other_topic", 0.5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ROTATE_MB", "abc"),
        ("ROTATE_MB", "-1"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost:99999"),
        ("DATABASE_URL", "mysql://u@h/db"),
        ("KAFKA_TOPIC", "bad topic!"),
        ("POSTGRES_PORT", "0"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert f"{variable}={value!r}" in str(info.value)


def test_remote_bootstrap_servers_are_not_started() -> None:
    assert not load_settings(kafka_bootstrap_servers="kafka:29092").manages_kafka
    assert load_settings(kafka_bootstrap_servers="127.0.0.1:19092").manages_kafka
    assert not load_settings(local_kafka=False).manages_kafka


def test_database_url_means_external_postgres() -> None:
    assert not load_settings(database_url="postgresql://u:p@db:5432/x").manages_postgres


def test_cli_rejects_invalid_setting_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATE_MB", "lots")
    result = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "platform", "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "ROTATE_MB='lots'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("topic", [".", "..", ".tmp", ".damaged", ".weather"])
def test_a_topic_named_like_a_raw_zone_folder_is_refused(
    monkeypatch: pytest.MonkeyPatch, topic: str
) -> None:
    monkeypatch.setenv("KAFKA_TOPIC", topic)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert f"KAFKA_TOPIC={topic!r}" in message
    assert "must not start with '.'" in message and ".tmp and .damaged" in message


def test_topic_names_with_dots_elsewhere_are_fine() -> None:
    assert load_settings(kafka_topic="weather.raw.v2").kafka_topic == "weather.raw.v2"


def test_every_setting_has_a_meaning() -> None:
    found = meanings()

    assert set(found) == set(Settings.model_fields)
    assert all(found.values())
    assert found["database_url"].startswith("URL of an existing PostgreSQL")
    assert "\n" not in found["consume_workers"]
