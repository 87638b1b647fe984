"""Every progress display of the CLI: one live line on stderr, shown only on a terminal.

It shares the stderr console with the log handler (`ui.logs`), so a log line printed during a
run appears above the live line instead of tearing it. Off a terminal (a pipe, a service's
journal) nothing is drawn: the summary line each command prints at the end is the record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from weatherpipe.ui.console import err

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

Unit = Literal["rows", "bytes"]


class Activity:
    """One running step: its description, and how far it got when its total is known."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def describe(self, description: str) -> None:
        """Replace the description (literal text: markup in it is not interpreted)."""
        self._progress.update(self._task, description=description)

    def advance(self, amount: float) -> None:
        self._progress.advance(self._task, amount)

    def reach(self, completed: float, total: float | None = None) -> None:
        """Set how far it got (and its total, when that changed)."""
        if total is None:
            self._progress.update(self._task, completed=completed)
        else:
            self._progress.update(self._task, completed=completed, total=total)


class Lines:
    """Several live lines at once: one per step running side by side."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def add(self, description: str, total: float | None = None) -> Activity:
        """A new line below the others; a bar with a percentage when `total` is known."""
        return Activity(self._progress, self._progress.add_task(description, total=total))


@contextmanager
def activity(
    description: str, total: float | None = None, unit: Unit | None = None
) -> Iterator[Activity]:
    """A live line while the block runs: a spinner when `total` is None, else a bar with the
    count in `unit`; the time elapsed; gone when the block ends."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress

    described = TextColumn("{task.description}", markup=False)
    columns: list[ProgressColumn]
    if total is None:
        columns = [SpinnerColumn(), described]
    else:
        columns = [described, BarColumn()]
        if unit == "bytes":
            columns.append(DownloadColumn())
        elif unit == "rows":
            columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    console = err()
    with RichProgress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        yield Activity(progress, progress.add_task(description, total=total))


@contextmanager
def live_lines() -> Iterator[Lines]:
    """Live lines while the block runs, each with its description, a bar, its percentage (when
    its total is known) and the time elapsed; gone when the block ends."""
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    console = err()
    with RichProgress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        yield Lines(progress)


class ProduceProgress:
    """The producer's progress (rows handed to Kafka, bytes of the CSV read) on an activity
    whose total is the file's size in bytes."""

    def __init__(self, shown: Activity, label: str = "producing") -> None:
        self.shown, self.label, self.count = shown, label, 0
        self.start = time.monotonic()

    def rows(self, count: int) -> None:
        self.count += count
        rate = self.count / max(time.monotonic() - self.start, 1e-9)
        self.shown.describe(f"{self.label}: {self.count:,} rows, {rate:,.0f} rows/s")

    def position(self, byte_offset: int) -> None:
        self.shown.reach(byte_offset)
