"""The root of weatherpipe's exceptions.

Every error a user can act on derives from `WeatherpipeError`; the CLI prints its message (which
says what to do next) and exits non-zero without a traceback. `TransientError`s may succeed when
retried (a broker restarting); `TerminalError`s will not until something is changed.
"""


class WeatherpipeError(Exception):
    """An error the user can act on; the message says what happened and what to do next."""


class TransientError(WeatherpipeError):
    """Retrying later may succeed without any change."""


class TerminalError(WeatherpipeError):
    """Retrying will fail the same way until the cause is fixed."""


class SettingsError(TerminalError):
    """A setting (environment variable) has an invalid value."""
