"""The lab flow's batch in a process of its own: DuckDB's buffers and the producer's leftovers
never add up in one process, so each process of the flow stays small (the batch alone peaks
near DuckDB's memory limit plus the interpreter; on top of the producer's heap it did not).

The child runs `run_once` as `weatherpipe batch` would and sends back its steps, its log
records (shown by the parent, above its live line) and its summary or its error. A batch run is
one PostgreSQL transaction, so a child stopped or killed at any moment leaves the processed
zone as it was; the next run redoes the work.

Ctrl-C reaches the whole terminal group: the child ignores SIGINT and stops on the SIGTERM the
parent sends (its run is recorded as failed, its transaction rolled back).
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import queue
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from weatherpipe.errors import TransientError, WeatherpipeError
from weatherpipe.signals import ignore_signals, on_signals
from weatherpipe.ui.logs import set_levels

if TYPE_CHECKING:
    from weatherpipe.batch.runner import RunSummary
    from weatherpipe.settings import Settings

WAIT_SECONDS: Final = 0.2
"""How often the parent looks for a child that died without a word."""
STOP_SECONDS: Final = 60.0
"""How long a stopped child may take to roll back and record its run before it is killed."""


class BatchProcessError(TransientError):
    """The batch process ended without a summary or an error of its own."""


@dataclass(frozen=True)
class _Step:
    text: str


@dataclass(frozen=True)
class _Done:
    summary: RunSummary


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def run_batch(settings: Settings, on_step: Callable[[str], None]) -> RunSummary:
    """`run_once(settings)` in a spawned process; its steps go to `on_step`. Raises what the
    child raised (a `WeatherpipeError` as it was)."""
    context = multiprocessing.get_context("spawn")  # nothing of the parent's heap is inherited
    messages: multiprocessing.Queue[object] = context.Queue()
    process = context.Process(
        target=_batch, args=(settings, messages), name="weatherpipe lab batch"
    )
    process.start()
    try:
        outcome = _wait(process, messages, on_step)
    except BaseException:
        _stop(process)
        raise
    process.join()
    if isinstance(outcome, _Failed):
        raise outcome.error
    return outcome.summary


def _wait(
    process: multiprocessing.process.BaseProcess,
    messages: multiprocessing.Queue[object],
    on_step: Callable[[str], None],
) -> _Done | _Failed:
    while True:
        try:
            message = messages.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            if process.is_alive():
                continue
            try:  # a last message may have arrived as it ended
                message = messages.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                raise BatchProcessError(
                    f"The batch process ended without finishing (exit status "
                    f"{process.exitcode}); nothing of its run was kept. Run `weatherpipe "
                    "batch` (or `weatherpipe run` again)."
                ) from None
        if isinstance(message, logging.LogRecord):
            logging.getLogger(message.name).handle(message)
        elif isinstance(message, _Step):
            on_step(message.text)
        elif isinstance(message, _Done | _Failed):
            return message


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    """One SIGTERM: the child rolls back and records its run as failed; killed if it hangs."""
    if process.is_alive():
        process.terminate()
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def _batch(settings: Settings, messages: multiprocessing.Queue[object]) -> None:
    """The child: one batch run, its log records and steps sent to the parent."""
    ignore_signals((signal.SIGINT,))

    def interrupt(_signum: int) -> None:
        raise KeyboardInterrupt

    on_signals(interrupt, (signal.SIGTERM,))  # once: the clean-up itself is not interrupted
    # Records go to the parent, whose handler shows them above its live line.
    logging.getLogger().addHandler(logging.handlers.QueueHandler(messages))
    set_levels(settings.log_level)
    from weatherpipe.batch.runner import run_once  # in the child: the parent needs no DuckDB

    try:
        summary = run_once(settings, on_step=lambda text: messages.put(_Step(text)))
    except WeatherpipeError as exc:
        messages.put(_Failed(exc))
    except KeyboardInterrupt:
        return
    else:
        messages.put(_Done(summary))
    finally:
        messages.close()
        messages.join_thread()  # every message is through before the process ends
