"""The lab flow's batch in a process of its own: DuckDB's buffers and the producer's leftovers
never add up in one process, so each process of the flow stays small (the batch alone peaks
near DuckDB's memory limit plus the interpreter; on top of the producer's heap it did not).

The child is started with the stream: while records are still sent it loads its libraries and
prepares the database, then waits for the word to go, so the batch starts at once when the raw
zone is complete. It runs `run_once` as `weatherpipe batch` would and sends back its steps, its
log records (shown by the parent, above its live line) and its summary or its error. A batch
run is one PostgreSQL transaction, so a child stopped or killed at any moment leaves the
processed zone as it was; the next run redoes the work.

Ctrl-C reaches the whole terminal group: the child ignores SIGINT and stops on the SIGTERM the
parent sends (a run in progress is recorded as failed, its transaction rolled back). A child
whose parent died before the word to go ends.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from weatherpipe.errors import TransientError, WeatherpipeError
from weatherpipe.signals import ignore_signals, ignoring, on_signals
from weatherpipe.ui.logs import set_levels

if TYPE_CHECKING:
    from weatherpipe.batch.runner import RunSummary
    from weatherpipe.settings import Settings

WAIT_SECONDS: Final = 0.2
"""How often the parent looks for a child that died without a word, and the child for a
parent that died."""
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
    error: WeatherpipeError


class BatchProcess:
    """The parent's handle: `start` early, `run` once the raw zone is complete, `stop` always
    (a context manager does it)."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # nothing of the parent's heap
        self._go: multiprocessing.Queue[bool] = context.Queue()
        self._messages: multiprocessing.Queue[object] = context.Queue()
        self._process = context.Process(
            target=_batch,
            args=(settings, self._go, self._messages, os.getpid()),
            name="weatherpipe lab batch",
        )

    def __enter__(self) -> BatchProcess:
        with ignoring((signal.SIGINT,)):  # the child is stopped by its parent, never by Ctrl-C
            self._process.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def run(self, on_step: Callable[[str], None]) -> RunSummary:
        """The batch run: its steps go to `on_step`; raises what the child raised (a
        `WeatherpipeError` as it was)."""
        self._go.put(True)
        outcome = self._wait(on_step)
        self._process.join()
        if isinstance(outcome, _Failed):
            raise outcome.error
        return outcome.summary

    def stop(self) -> None:
        """One SIGTERM to a child still running: a run in progress rolls back and is recorded
        as failed; killed if it hangs."""
        process = self._process
        if process.is_alive():
            process.terminate()
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()

    def _wait(self, on_step: Callable[[str], None]) -> _Done | _Failed:
        while True:
            try:
                message = self._messages.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                if self._process.is_alive():
                    continue
                try:  # a last message may have arrived as it ended
                    message = self._messages.get(timeout=WAIT_SECONDS)
                except queue.Empty:
                    raise BatchProcessError(
                        f"The batch process ended without finishing (exit status "
                        f"{self._process.exitcode}); nothing of its run was kept. Run "
                        "`weatherpipe batch` (or `weatherpipe run` again)."
                    ) from None
            if isinstance(message, logging.LogRecord):
                logging.getLogger(message.name).handle(message)
            elif isinstance(message, _Step):
                on_step(message.text)
            elif isinstance(message, _Done | _Failed):
                return message


def _batch(
    settings: Settings,
    go: multiprocessing.Queue[bool],
    messages: multiprocessing.Queue[object],
    parent: int,
) -> None:
    """The child: prepare, wait for the word, run the batch; report all of it."""
    ignore_signals((signal.SIGINT,))

    def interrupt(_signum: int) -> None:
        raise KeyboardInterrupt

    on_signals(interrupt, (signal.SIGTERM,))  # once: the clean-up itself is not interrupted
    # Records go to the parent, whose handler shows them above its live line.
    logging.getLogger().addHandler(logging.handlers.QueueHandler(messages))
    set_levels(settings.log_level)
    try:
        from weatherpipe.batch.runner import run_once  # here: the parent needs no DuckDB
        from weatherpipe.db.setup import prepare_database

        try:
            prepare_database(settings)
            prepared = True
        except Exception:  # run_once prepares again, and says what is wrong
            prepared = False
        if not _told_to_go(go, parent):
            return
        summary = run_once(
            settings, on_step=lambda text: messages.put(_Step(text)), prepare=not prepared
        )
    except WeatherpipeError as exc:
        messages.put(_Failed(exc))
    except KeyboardInterrupt:
        return
    else:
        messages.put(_Done(summary))
    finally:
        messages.close()
        messages.join_thread()  # every message is through before the process ends


def _told_to_go(go: multiprocessing.Queue[bool], parent: int) -> bool:
    """Wait for the parent's word; False when the parent is gone."""
    while os.getppid() == parent:
        try:
            return go.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            continue
    return False
