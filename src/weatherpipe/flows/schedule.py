"""Schedules: ticks at a fixed interval (`serve`'s jobs, `batch --every`), and running the batch
on them until stopped.

Runs never overlap: a run that takes longer than the interval makes the loop skip the ticks it
missed, and a second batch process on the same database waits on the batch advisory lock (a
scheduled run that finds it taken skips its tick). A failed run is logged and retried at the
next tick; SIGTERM/SIGINT stop the loop after the run in progress.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from weatherpipe.errors import TerminalError, WeatherpipeError
from weatherpipe.signals import stop_on_signals

if TYPE_CHECKING:
    from weatherpipe.batch.runner import RunSummary

log = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class IntervalError(TerminalError):
    """An interval that is not a number with a unit."""


def parse_interval(text: str) -> float:
    """Seconds in `text`: `90`, `90s`, `15m`, `1.5h`, `1d`."""
    match = _INTERVAL.match(text)
    if match is None or float(match[1]) <= 0:
        raise IntervalError(
            f"--every {text!r} is not an interval: write a positive number with a unit s, m, h "
            "or d, e.g. --every 15m."
        )
    return float(match[1]) * _UNIT[match[2] or "s"]


def next_tick(first: float, interval: float, now: float) -> float:
    """The first tick `first + k * interval` (k >= 1) after `now`: ticks stay on the grid and
    the ones missed during a long run are skipped, not caught up."""
    k = max(1, int((now - first) // interval) + 1)
    return first + k * interval


def run_every(
    interval: float,
    run: Callable[[], RunSummary],
    on_done: Callable[[RunSummary], None],
    on_error: Callable[[Exception], None],
    stop: threading.Event | None = None,
) -> None:
    """Call `run` now and then every `interval` seconds until `stop` is set (by SIGTERM or
    SIGINT when `stop` is not given)."""
    stop = stop or stop_on_signals()
    first = time.monotonic()
    while not stop.is_set():
        try:
            on_done(run())
        except WeatherpipeError as exc:
            on_error(exc)
        except Exception as exc:  # a failed run must not end the schedule
            log.exception("batch run failed")
            on_error(exc)
        stop.wait(max(0.0, next_tick(first, interval, time.monotonic()) - time.monotonic()))
