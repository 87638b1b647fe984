"""A CSV row that is not sent to the main topic, and why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Reject:
    """A quarantined row: where it is, what it says, and which rule it broke."""

    line: int
    """Physical line number in the file (1-based, the header is line 1)."""
    raw: str
    """The line's text without its line end (undecodable bytes shown as U+FFFD)."""
    reason: str
    """A `weatherpipe.events.Reason` code."""
    field: str | None
    """The event field concerned, if the reason concerns one field."""
    detail: str
    """What is wrong, for a human."""
    day: dt.date | None = None
    """The event day, where the row's timestamp is readable (daily mode sends it that day)."""
