"""Fixtures of the integration tests: settings on a database of the test's own, and the
environment the dashboard's pages read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st

from tests.conftest import changed, settings_variables
from weatherpipe.settings import Settings


@pytest.fixture
def settings(platform_settings: Settings, fresh_database: str, tmp_path: Path) -> Settings:
    """The session's platform with a database of this test's own and the raw zone in
    tmp_path/raw; a one-off batch waits at most 60 s for another run's lock."""
    return changed(
        platform_settings, database_url=fresh_database, raw_dir=tmp_path / "raw", batch_lock_wait=60
    )


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], None]:
    """Make the pages (which read the environment) see `settings`, with nothing cached from
    an earlier test (Streamlit's caches live as long as the process: a topic list cached by
    one test would hide the topic the next one creates)."""

    def apply(settings: Settings) -> None:
        st.cache_data.clear()
        for key, text in settings_variables(settings).items():
            if text is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, text)

    return apply
