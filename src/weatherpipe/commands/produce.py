"""`weatherpipe produce`: the weather CSV to Kafka, bad rows to the dead-letter topic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from weatherpipe.settings import load_settings

console = Console(stderr=True)


class _Bar:
    """Progress on the terminal: bytes of the file read, rows handed to Kafka, rows/s."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task, self.count = progress, task, 0
        self.start = time.monotonic()

    def rows(self, count: int) -> None:
        self.count += count
        rate = self.count / max(time.monotonic() - self.start, 1e-9)
        self.progress.update(self.task, rows=self.count, rate=f"{rate:,.0f} rows/s")

    def position(self, byte_offset: int) -> None:
        self.progress.update(self.task, completed=byte_offset)


def run(
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="The weather CSV (Kaggle prasad22/weather-data format). Default: CSV_PATH.",
        ),
    ] = None,
    daily: Annotated[
        bool,
        typer.Option(
            "--daily/--all",
            help=(
                "--all (default, lab mode): send every row. --daily (normal operation): send the "
                "next event day not sent yet and remember it in the state file "
                "(PRODUCE_DAILY_STATE), so a daily scheduler can call it; a rerun never sends a "
                "day twice."
            ),
        ),
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help=(
                "Send the CSV even though the topic holds it already (the same content, sent "
                "in full before): every row a second time. Only with --all."
            ),
        ),
    ] = False,
    abandon: Annotated[
        bool,
        typer.Option(
            "--abandon-interrupted",
            help=(
                "Give up the interrupted run of another file (or day) that waits to be "
                "resumed: the rows it did not deliver are never sent. Then run this one."
            ),
        ),
    ] = False,
) -> None:
    """Send each CSV row as a JSON event (key: the location) to KAFKA_TOPIC, creating the topic
    (KAFKA_PARTITIONS, KAFKA_REPLICATION_FACTOR), its dead-letter topic `<topic>.dlq` and its
    ledger `<topic>.ledger` if missing. A bad row goes to the dead-letter topic with its line
    number, raw text and reason; the run goes on. Each data set (the file's content) is sent
    once: a second run of the same content to the same topic refuses (unless --again), two runs
    at once cannot both send (on one machine the second stops at once; on several, the later
    one takes over and the earlier one stops). A run that was interrupted (Ctrl-C, a crash, a
    failed transaction) is resumed by the next run of the same file (and day): it sends only
    the rows that did not reach Kafka; until then, another run to the same topic refuses to
    start. Exit status: 0 when every row was committed (on the topic or the dead-letter
    topic), 1 when some were not or the run was refused, 130 after Ctrl-C (which first commits
    and reports what was handed over)."""
    # Imported here: Arrow and the Kafka client are heavy, other commands don't need them.
    from weatherpipe.ingest.produce import produce_all, produce_daily, stop_on_interrupt

    if again and daily:
        raise typer.BadParameter(
            "--again applies to --all; --daily sends each day once (delete the daily state "
            "file, PRODUCE_DAILY_STATE, to start again from the first day)",
            param_hint="--again",
        )
    settings = load_settings()
    source = csv or settings.csv_path
    with (
        stop_on_interrupt() as stop,
        Progress(
            TextColumn("producing"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress,
    ):
        size = source.stat().st_size if source.exists() else None
        bar = _Bar(progress, progress.add_task("produce", total=size, rows=0, rate=""))
        if daily:
            summary = produce_daily(settings, source, bar, stop, abandon=abandon)
        else:
            summary = produce_all(settings, source, bar, stop, again=again, abandon=abandon)
    for error in summary.errors:
        console.print(f"[red]delivery error:[/] {escape(error)}", highlight=False)
    style = "green" if summary.ok else "red"
    console.print(f"[{style}]{escape(summary.line())}[/]", highlight=False, soft_wrap=True)
    if summary.interrupted:
        raise typer.Exit(130)
    if not summary.ok:
        raise typer.Exit(1)
