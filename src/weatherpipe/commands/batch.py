"""`weatherpipe batch`: aggregate the raw zone into PostgreSQL, once or on a schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from weatherpipe.batch.runner import RunSummary


def run(
    full: bool = typer.Option(
        False,
        "--full",
        help="Recompute everything from the whole raw zone and replace the daily table's "
        "content in one transaction (after a rule change or a repaired raw zone). Default: "
        "only the raw files not processed yet.",
    ),
    every: str | None = typer.Option(
        None,
        "--every",
        metavar="INTERVAL",
        help="Keep running: one run now, then one every INTERVAL (e.g. 15m, 1h, 90s) until "
        "stopped with Ctrl-C or SIGTERM. Runs never overlap; a failed run is logged and "
        "retried at the next tick.",
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        metavar="duckdb|spark",
        help="Engine that reads and aggregates the raw files: duckdb (this machine) or spark "
        "(Apache Spark, needs `weatherpipe[spark]`). Default: BATCH_ENGINE (duckdb).",
    ),
    master: str | None = typer.Option(
        None,
        "--master",
        metavar="URL",
        help="Spark master for --engine spark: local[*], spark://host:7077, yarn, ... "
        "Default: SPARK_MASTER (local[*]).",
    ),
) -> None:
    """Aggregate the new raw files into PostgreSQL, exactly once.

    Reads the finished raw files (RAW_DIR) not processed yet, validates every line (bad ones go
    to the quarantine table with file, line and reason), aggregates per location and day
    (BATCH_ENGINE: DuckDB, or Spark) and merges into PostgreSQL (DATABASE_URL) exactly once; a
    run reports done only once PostgreSQL has it on disk. Creates or updates the schema and the
    batch/dashboard logins first. Prints one summary line per run.

    Warns (above the summary line and in batch_run.warnings) about raw files changed or gone
    since a run counted them and about .ndjson files outside the layout
    RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.ndjson, which are never
    read. Exits 1 when RAW_DIR holds .ndjson files but none in that layout."""
    # Imported here: DuckDB and psycopg are heavy, and every command's start pays for imports.
    from weatherpipe.batch.runner import run_once
    from weatherpipe.flows.schedule import parse_interval, run_every

    settings = configure(batch_engine=engine, spark_master=master)
    if every is None:
        summary = _run_with_progress(lambda step: run_once(settings, full=full, on_step=step))
        say(summary.line())
        return
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
