"""Every signal handler of the project: SIGTERM (a service manager, `kill`) and SIGINT (Ctrl-C)
ask a long-running job to finish the work in progress and return, instead of killing it
mid-way; what a repeated signal means is chosen per job (`Repeat`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Literal

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)

Repeat = Literal["ignore", "again", "default", "interrupt"]
"""What a signal does after the first: `ignore` nothing (the work in progress still finishes),
`again` calls the action again, `default` the signal's default action (termination: "now"),
`interrupt` raises KeyboardInterrupt."""

Restore = Callable[[], None]


def on_signals(
    action: Callable[[int], None],
    signals: tuple[int, ...] = STOP_SIGNALS,
    repeat: Repeat = "ignore",
) -> Restore:
    """From now on the first of `signals` calls `action(signum)`; a later one does what
    `repeat` says. Returns the function that puts the previous handlers back."""
    previous = {signum: signal.getsignal(signum) for signum in signals}
    fired = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if not fired.is_set():
            fired.set()
            if repeat == "default":
                signal.signal(signum, signal.SIG_DFL)
            action(signum)
        elif repeat == "again":
            action(signum)
        elif repeat == "interrupt":
            raise KeyboardInterrupt

    for signum in signals:
        signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


@contextmanager
def signals_handled(
    action: Callable[[int], None],
    signals: tuple[int, ...] = STOP_SIGNALS,
    repeat: Repeat = "ignore",
) -> Iterator[None]:
    """`on_signals` while the block runs; the previous handlers afterwards."""
    restore = on_signals(action, signals, repeat)
    try:
        yield
    finally:
        restore()


def stop_on_signals(
    stop: threading.Event | None = None, signals: tuple[int, ...] = STOP_SIGNALS
) -> threading.Event:
    """From now on `signals` set `stop` (a new event when not given), which is returned for the
    loop to watch. A repeated signal changes nothing: the work in progress still finishes."""
    event = stop or threading.Event()

    def request(signum: int) -> None:
        log.warning("%s: stopping after the work in progress", signal.Signals(signum).name)
        event.set()

    on_signals(request, signals)
    return event


@contextmanager
def stop_requested(
    signals: tuple[int, ...] = (signal.SIGINT,), repeat: Repeat = "interrupt"
) -> Iterator[Callable[[], bool]]:
    """While the block runs, the first of `signals` only asks the job to stop after its current
    step (the yielded function tells whether it was asked), so what was accepted is flushed and
    reported; by default a second one aborts at once (KeyboardInterrupt)."""
    requested = threading.Event()
    with signals_handled(lambda _signum: requested.set(), signals, repeat):
        yield requested.is_set


def interrupt_on(signals: tuple[int, ...]) -> Restore:
    """From now on `signals` raise KeyboardInterrupt, as Ctrl-C does: the same clean-up path."""

    def interrupt(_signum: int) -> None:
        raise KeyboardInterrupt

    return on_signals(interrupt, signals, repeat="again")


@contextmanager
def ignoring(signals: tuple[int, ...]) -> Iterator[None]:
    """`signals` do nothing while the block runs. A process started meanwhile begins with them
    ignored (Python keeps an inherited SIG_IGN for SIGINT), so a Ctrl-C during its start-up
    does not end it with a traceback before it installs handlers of its own."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore_signals(signals: tuple[int, ...]) -> None:
    """From now on `signals` do nothing in this process (its parent forwards what it means)."""
    for signum in signals:
        signal.signal(signum, signal.SIG_IGN)
