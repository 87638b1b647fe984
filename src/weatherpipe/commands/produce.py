"""`weatherpipe produce`: the weather CSV to Kafka, bad rows to the dead-letter topic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say


def run(
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            metavar="FILE",
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
) -> None:
    """Send the CSV to Kafka, bad rows to the dead-letter topic.

    Each row becomes a JSON event (key: the location) on KAFKA_TOPIC; the topic (KAFKA_PARTITIONS,
    KAFKA_REPLICATION_FACTOR) and its dead-letter topic `<topic>.dlq` are created if missing. A
    bad row goes to the dead-letter topic with its line number, raw text and reason; the run
    goes on. A run that was interrupted (Ctrl-C, a crash, failed deliveries) is resumed by the
    next run of the same file (and day): it sends only the rows that did not reach Kafka; until
    then, another run to the same topic refuses to start. Exit status: 0 when every row was
    acknowledged (on the topic or the dead-letter topic), 1 when some were not, 130 after
    Ctrl-C (which first flushes and reports what was accepted)."""
    # Imported here: Arrow and the Kafka client are heavy, other commands don't need them.
    from weatherpipe.ingest.csv_to_topic import produce_all, produce_daily
    from weatherpipe.signals import stop_requested
    from weatherpipe.ui.progress import ProduceProgress, activity

    settings = configure()
    source = csv or settings.csv_path
    size = source.stat().st_size if source.is_file() else None
    with stop_requested() as stop, activity("producing", total=size, unit="bytes") as shown:
        produce = produce_daily if daily else produce_all
        summary = produce(settings, source, ProduceProgress(shown), stop)
    for error in summary.errors:
        say(("delivery error:", "red"), f" {error}")
    say((summary.line(), "green" if summary.ok else "red"))
    if summary.interrupted:
        raise typer.Exit(130)
    if not summary.ok:
        raise typer.Exit(1)
