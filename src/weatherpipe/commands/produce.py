"""`weatherpipe produce`: the weather CSV to Kafka, bad rows to the dead-letter topic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

CsvOption = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        metavar="FILE",
        help="The weather CSV (Kaggle prasad22/weather-data format). Default: CSV_PATH.",
    ),
]
DailyOption = Annotated[
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
]
AgainOption = Annotated[
    bool,
    typer.Option(
        "--again",
        help=(
            "Send the CSV even though the topic holds it already (the same content, sent "
            "in full before): every row a second time. Only with --all."
        ),
    ),
]
AbandonOption = Annotated[
    bool,
    typer.Option(
        "--abandon-interrupted",
        help=(
            "Give up the interrupted run of another file (or day) that waits to be "
            "resumed: the rows it did not deliver are never sent. Then run this one."
        ),
    ),
]


def run(
    csv: CsvOption = None,
    daily: DailyOption = False,
    again: AgainOption = False,
    abandon: AbandonOption = False,
) -> None:
    """Send the CSV to Kafka, bad rows to the dead-letter topic.

    Each row becomes a JSON event (key: `<location>|<day>`) on KAFKA_TOPIC; the topic
    (KAFKA_PARTITIONS, KAFKA_REPLICATION_FACTOR) and its dead-letter topic `<topic>.dlq` are
    created if missing. A bad row goes to the dead-letter topic with its line number, raw text
    and reason; the run goes on. The ledger `<topic>.ledger` records which data sets the topic
    holds: a second run of the same content to the same topic refuses (unless --again), and two
    runs at once cannot both send. A run that was interrupted (Ctrl-C, a crash, a failed
    transaction) is resumed by the next run of the same file (and day): it sends only the rows
    that did not reach Kafka; until then, another run to the same topic refuses to start. Exit
    status: 0 when every row was committed (on the topic or the dead-letter topic), 1 when some
    were not or the run was refused, 130 after Ctrl-C (which first commits and reports what was
    handed over)."""
    # Imported here: Arrow and the Kafka client are heavy, other commands don't need them.
    from weatherpipe.ingest.csv_to_topic import produce_all, produce_daily
    from weatherpipe.signals import stop_requested
    from weatherpipe.ui.progress import ProduceProgress, activity

    if again and daily:
        raise typer.BadParameter(
            "--again applies to --all; --daily sends each day once (delete the daily state "
            "file, PRODUCE_DAILY_STATE, to start again from the first day)",
            param_hint="--again",
        )
    settings = configure()
    source = csv or settings.csv_path
    size = source.stat().st_size if source.is_file() else None
    with stop_requested() as stop, activity("producing", total=size, unit="bytes") as shown:
        sink = ProduceProgress(shown)
        if daily:
            summary = produce_daily(settings, source, sink, stop, abandon=abandon)
        else:
            summary = produce_all(settings, source, sink, stop, again=again, abandon=abandon)
    for error in summary.errors:
        say(("delivery error:", "red"), f" {error}")
    say((summary.line(), "green" if summary.ok else "red"))
    if summary.interrupted:
        raise typer.Exit(130)
    if not summary.ok:
        raise typer.Exit(1)
