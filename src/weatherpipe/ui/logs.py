"""Where log records go: weatherpipe's own at LOG_LEVEL, the libraries' only when asked.

On a terminal the handler is Rich's, on the stderr console the progress displays use, so a log
line lands above a live progress line instead of through it. Elsewhere (a pipe, a service's
journal) it is a plain one-line format that tools can parse. Every record passes the password
masker first.
"""

from __future__ import annotations

import logging
import sys

from weatherpipe.redact import masked
from weatherpipe.ui.console import err

LIBRARIES = ("weatherpipe.kafka.client", "py4j", "streamlit", "uvicorn", "urllib3", "asyncio")
"""Loggers of the libraries under weatherpipe (librdkafka's lines come through
weatherpipe.kafka.client): they retry what they warn about, so below LOG_LEVEL=DEBUG only their
errors are shown."""

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _MaskPasswords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = masked(message)
        if safe != message:
            record.msg, record.args = safe, None
        return True


def library_level(level: str) -> str:
    """The level of the libraries' loggers for a LOG_LEVEL."""
    return "DEBUG" if level == "DEBUG" else "ERROR"


def configure_logging(level: str) -> None:
    """Send log records at `level` and above to stderr; idempotent (a second call only
    changes the level)."""
    root = logging.getLogger()
    if not any(getattr(h, "weatherpipe", False) for h in root.handlers):
        handler = _handler()
        handler.weatherpipe = True  # type: ignore[attr-defined]
        handler.addFilter(_MaskPasswords())
        root.addHandler(handler)
    set_levels(level)


def set_levels(level: str) -> None:
    """LOG_LEVEL for the root and weatherpipe's loggers, `library_level` for the libraries'
    (also in a child process whose records its parent shows)."""
    logging.getLogger().setLevel(level)
    logging.getLogger("weatherpipe").setLevel(level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(library_level(level))


def _handler() -> logging.Handler:
    console = err()
    if not console.is_terminal:
        plain = logging.StreamHandler(sys.stderr)
        plain.setFormatter(logging.Formatter(PLAIN_FORMAT))
        return plain
    from rich.logging import RichHandler

    rich = RichHandler(console=console, show_path=False, markup=False, rich_tracebacks=False)
    rich.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return rich
