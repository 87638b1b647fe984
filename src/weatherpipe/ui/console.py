"""The two consoles every command writes to, and `say`, the one way to print a message.

Rich is imported on the first print, not at import time: a command's module is imported for
`weatherpipe --help` too, which must start fast.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

Part = str | tuple[str, str]
"""A piece of a message: plain text, or (text, Rich style) for our own styling."""


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    # markup/emoji off: "[/x]" in a path or ":x:" in a CSV header prints as it is. soft_wrap:
    # a long line (a path, a log line) is not cut with newlines when stderr is a file.
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True)


@cache
def err() -> Console:
    """stderr: messages, progress, logs."""
    return _console(stderr=True)


@cache
def out() -> Console:
    """stdout: what a command produces (tables; JSON goes through `typer.echo`)."""
    return _console(stderr=False)


def text(*parts: Part) -> RenderableType:
    """One line made of literal parts; a (text, style) part is styled."""
    from rich.text import Text

    return Text.assemble(*parts)


def say(*parts: Part) -> None:
    """Print one message line to stderr: `say(("done", "green"), f" in {path}")`."""
    err().print(text(*parts))


def error(message: str) -> None:
    """The CLI's error line: `error: <message>`, the message literal and any password masked."""
    from weatherpipe.redact import masked

    say(("error:", "bold red"), " ", masked(message))
