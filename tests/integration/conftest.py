"""Fixtures of the integration tests that drive the dashboard's pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import streamlit as st

from tests.conftest import settings_variables
from weatherpipe.settings import Settings


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
