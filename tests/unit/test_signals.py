"""The one signal helper: what the first signal and a repeated one do, and that the previous
handlers come back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from weatherpipe.signals import (
    ignoring,
    interrupt_on,
    on_signals,
    signals_handled,
    stop_on_signals,
    stop_requested,
)


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)  # handled in the main thread before kill returns to Python


def test_the_first_signal_calls_the_action_and_a_repeat_is_ignored() -> None:
    calls: list[int] = []
    with signals_handled(calls.append, (signal.SIGUSR1,)):
        send(signal.SIGUSR1)
        send(signal.SIGUSR1)
    assert calls == [signal.SIGUSR1]


def test_again_calls_the_action_on_every_signal() -> None:
    calls: list[int] = []
    with signals_handled(calls.append, (signal.SIGUSR1, signal.SIGUSR2), repeat="again"):
        send(signal.SIGUSR1)
        send(signal.SIGUSR2)
        send(signal.SIGUSR1)
    assert calls == [signal.SIGUSR1, signal.SIGUSR2, signal.SIGUSR1]


def test_default_gives_the_signal_its_default_action_after_the_first() -> None:
    calls: list[int] = []
    restore = on_signals(calls.append, (signal.SIGUSR1,), repeat="default")
    try:
        send(signal.SIGUSR1)
        assert calls == [signal.SIGUSR1]
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    finally:
        restore()


def test_the_previous_handlers_come_back() -> None:
    def mine(_signum: int, _frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGUSR1, mine)
    try:
        with signals_handled(lambda _s: None, (signal.SIGUSR1,)):
            assert signal.getsignal(signal.SIGUSR1) is not mine
        assert signal.getsignal(signal.SIGUSR1) is mine
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_stop_requested_asks_once_and_a_second_signal_interrupts() -> None:
    with stop_requested((signal.SIGUSR1,)) as stop:
        assert not stop()
        send(signal.SIGUSR1)
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGUSR1)


def test_stop_on_signals_sets_the_event() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        event = stop_on_signals(threading.Event(), (signal.SIGUSR1,))
        assert not event.is_set()
        send(signal.SIGUSR1)
        assert event.is_set()
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_interrupt_on_takes_the_ctrl_c_path() -> None:
    restore = interrupt_on((signal.SIGUSR1,))
    try:
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGUSR1)
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGUSR1)
    finally:
        restore()


def test_a_process_started_while_sigint_is_ignored_begins_with_it_ignored() -> None:
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    # Whatever ran before in this process may have set its own (Spark does): that one is back.
    before = signal.getsignal(signal.SIGINT)
    with ignoring((signal.SIGINT,)):
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        inside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert inside.stdout.strip() == "True"
    # A child inherits "ignored" but never a Python handler.
    assert outside.stdout.strip() == str(before is signal.SIG_IGN)
    assert signal.getsignal(signal.SIGINT) is before
