"""`weatherpipe batch`: aggregate the raw zone into PostgreSQL, once or on a schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Final

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.rawzone.naming import PATH_TEMPLATE
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from weatherpipe.batch.runner import RunSummary
    from weatherpipe.settings import Settings

HELP: Final = f"""Aggregate the new raw files into PostgreSQL, exactly once.

    Reads the finished raw files (RAW_DIR) not processed yet, validates every line (bad ones go
    to the quarantine table with file, line and reason), aggregates per location and day
    (BATCH_ENGINE: DuckDB, or Spark) and merges into PostgreSQL (DATABASE_URL) exactly once; a
    run reports done only once PostgreSQL has it on disk. Creates or updates the schema and the
    batch/dashboard logins first. Prints one summary line per run.

    Warns (above the summary line and in batch_run.warnings) about raw files changed or gone
    since a run counted them and about .ndjson files outside the layout
    {PATH_TEMPLATE}, which are never read. Exits 1 when RAW_DIR holds .ndjson files but none in
    that layout."""


Full = Annotated[
    bool,
    typer.Option(
        "--full",
        help="Recompute everything from the whole raw zone and replace the daily table's "
        "content in one transaction (after a rule change or a repaired raw zone). Default: "
        "only the raw files not processed yet.",
    ),
]
Every = Annotated[
    str | None,
    typer.Option(
        "--every",
        metavar="INTERVAL",
        help="Keep running: one run now, then one every INTERVAL (e.g. 15m, 1h, 90s) until "
        "stopped with Ctrl-C or SIGTERM. Runs never overlap; a failed run is logged and "
        "retried at the next tick.",
    ),
]
Engine = Annotated[
    str | None,
    typer.Option(
        "--engine",
        metavar="duckdb|spark",
        help="Engine that reads and aggregates the raw files: duckdb (this machine) or spark "
        "(Apache Spark, needs `weatherpipe[spark]`). Default: BATCH_ENGINE (duckdb).",
    ),
]
Master = Annotated[
    str | None,
    typer.Option(
        "--master",
        metavar="URL",
        help="Spark master for --engine spark: local[*], spark://host:7077, yarn, ... "
        "Default: SPARK_MASTER (local[*]).",
    ),
]


def run(
    full: Full = False,
    every: Every = None,
    engine: Engine = None,
    master: Master = None,
) -> None:
    """Aggregate the new raw files into PostgreSQL, exactly once (the command's help is `HELP`)."""
    # Imported here: DuckDB and psycopg are heavy, and every command's start pays for imports.
    from weatherpipe.batch.runner import run_once

    settings = configure(batch_engine=engine, spark_master=master)
    if every is None:
        summary = _run_with_progress(lambda step: run_once(settings, full=full, on_step=step))
        say(summary.line())
        return
    _run_every(settings, every, full)


def _run_every(settings: Settings, every: str, full: bool) -> None:
    """One run now, then one every `every` until stopped; a failed run is retried."""
    from weatherpipe.batch.runner import run_once
    from weatherpipe.flows.schedule import parse_interval, run_every

    interval = parse_interval(every)
    say(f"running the batch every {every}; stop with Ctrl-C")
    prepared = False  # the schema and logins: once, and again after a failed run

    def scheduled(step: Callable[[str], None]) -> RunSummary:
        nonlocal prepared
        try:
            summary = run_once(settings, full=full, lock_wait=0, on_step=step, prepare=not prepared)
        except BaseException:
            prepared = False
            raise
        prepared = True
        return summary

    run_every(
        interval,
        lambda: _run_with_progress(scheduled),
        on_done=lambda s: say(s.line()),
        on_error=lambda exc: say(
            ("batch run failed:", "bold red"), f" {exc} (retrying at the next tick)"
        ),
    )


def _run_with_progress(work: Callable[[Callable[[str], None]], RunSummary]) -> RunSummary:
    from weatherpipe.ui.progress import activity

    with activity("starting") as shown:
        return work(shown.describe)
