"""Fixtures of the integration tests that drive the dashboard's pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from weatherpipe.settings import Settings


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], None]:
    """Make the pages (which read the environment) see `settings`."""

    def apply(settings: Settings) -> None:
        for name, value in settings.model_dump().items():
            key = name.upper()
            if value is None:
                monkeypatch.delenv(key, raising=False)
            elif hasattr(value, "get_secret_value"):
                monkeypatch.setenv(key, value.get_secret_value())
            else:
                monkeypatch.setenv(
                    key, str(value).lower() if isinstance(value, bool) else str(value)
                )

    return apply
