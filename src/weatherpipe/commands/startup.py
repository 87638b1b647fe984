"""What every command does first: read and validate the settings, then set up logging by them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weatherpipe.settings import Settings


def configure(**overrides: object) -> Settings:
    """The settings (command-line `overrides` win; None means "not given"), with LOG_LEVEL
    applied. An invalid value raises `SettingsError` naming the variable."""
    # Imported here: pydantic-settings is a good part of the start-up time, and
    # `weatherpipe --help` does not need it.
    from weatherpipe.settings import load_settings
    from weatherpipe.ui.logs import configure_logging

    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level)
    return settings
