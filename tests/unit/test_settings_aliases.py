"""The original project's setting names PG_DSN and RAW_ROOT, read as DATABASE_URL and RAW_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from weatherpipe.errors import SettingsError
from weatherpipe.settings import load_settings

NAMES = ("DATABASE_URL", "PG_DSN", "RAW_DIR", "RAW_ROOT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A developer's own .env or exported variables must not change what these tests see.
    monkeypatch.chdir(tmp_path)
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_original_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_DSN", "postgresql://seed:pw@db:5432/weather")
    monkeypatch.setenv("RAW_ROOT", "/srv/raw")
    s = load_settings()
    assert s.database_url == "postgresql://seed:pw@db:5432/weather"
    assert s.raw_dir == Path("/srv/raw")


def test_the_original_names_are_read_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PG_DSN=postgresql://u@h/w\nRAW_ROOT=old/raw\n")
    s = load_settings()
    assert (s.database_url, s.raw_dir) == ("postgresql://u@h/w", Path("old/raw"))


def test_both_names_with_one_value_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAW_DIR", "data/raw")
    monkeypatch.setenv("RAW_ROOT", "./data/raw")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/w")
    monkeypatch.setenv("PG_DSN", "postgresql://u@h/w")
    s = load_settings()
    assert (s.raw_dir, s.database_url) == (Path("data/raw"), "postgresql://u@h/w")


@pytest.mark.parametrize(
    ("ours", "theirs", "ours_value", "theirs_value"),
    [
        ("DATABASE_URL", "PG_DSN", "postgresql://u@h/new", "postgresql://u@h/old"),
        ("RAW_DIR", "RAW_ROOT", "data/raw", "/raw"),
    ],
)
def test_both_names_with_different_values_are_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch, ours: str, theirs: str, ours_value: str, theirs_value: str
) -> None:
    monkeypatch.setenv(ours, ours_value)
    monkeypatch.setenv(theirs, theirs_value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert f"{ours}={ours_value!r}" in message
    assert f"{theirs}={theirs_value!r}" in message
    assert "Unset one of them" in message


def test_a_conflict_between_environment_and_dotenv_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("PG_DSN=postgresql://u@h/old\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/new")
    with pytest.raises(SettingsError, match="PG_DSN='postgresql://u@h/old'"):
        load_settings()


def test_an_explicit_override_wins_over_the_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAW_ROOT", "/raw")
    assert load_settings(raw_dir=Path("elsewhere")).raw_dir == Path("elsewhere")


def test_a_bad_value_under_the_original_name_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_DSN", "host=db dbname=weather")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "PG_DSN" in message
    assert "postgresql://" in message
    assert "key=value DSN" in message
