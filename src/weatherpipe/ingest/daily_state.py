"""Where `produce --daily` stopped: the last event day it sent, in a small JSON file.

Written atomically (temp file, fsync, rename, fsync of the folder), and only after every record
of the day was acknowledged, so a crash leaves either the old or the new state, never half.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from weatherpipe.durable import write_atomically
from weatherpipe.errors import TerminalError


@dataclass(frozen=True)
class DailyState:
    """The last event day sent to `topic` (None before the first daily run)."""

    topic: str
    last_day: dt.date | None = None
    days_sent: int = 0


def load(path: Path, topic: str) -> DailyState:
    """The state in `path`, or a fresh one if the file does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        last = data["last_day"]
        return DailyState(
            topic=str(data["topic"]),
            last_day=dt.date.fromisoformat(last) if last else None,
            days_sent=int(data["days_sent"]),
        )
    except FileNotFoundError:
        return DailyState(topic)
    except (ValueError, KeyError, TypeError) as exc:
        raise TerminalError(
            f"{path}: the daily producer state is unreadable ({exc}). It holds the last day "
            "sent; fix it, or delete it to start again from the first day."
        ) from exc


def save(path: Path, state: DailyState) -> None:
    """Replace `path` with `state` atomically."""
    text = json.dumps(
        {
            "topic": state.topic,
            "last_day": state.last_day.isoformat() if state.last_day else None,
            "days_sent": state.days_sent,
            "updated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        indent=2,
    )
    write_atomically(path, text + "\n")
