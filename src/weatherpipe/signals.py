"""Stopping on a signal: SIGTERM (a service manager) and SIGINT (Ctrl-C) ask a long-running
loop to finish the work in progress and return, instead of killing it mid-way."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """From now on SIGTERM and SIGINT set `stop` (a new event when not given), which is
    returned for the loop to watch. A repeated signal changes nothing: the work in progress
    still finishes."""
    event = stop or threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if not event.is_set():
            log.warning("%s: stopping after the work in progress", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return event
