"""`weatherpipe serve`: normal operation — consumer, daily producer and batch in one tree."""

from __future__ import annotations

from typing import Annotated

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

JOBS = ("consume", "produce", "batch")


def run(
    produce_every: Annotated[
        str,
        typer.Option(
            "--produce-every",
            metavar="INTERVAL",
            help="How often `produce --daily` sends the next event day (e.g. 24h, 1h, 30s).",
        ),
    ] = "24h",
    batch_every: Annotated[
        str,
        typer.Option(
            "--batch-every", metavar="INTERVAL", help="How often the batch runs (e.g. 15m)."
        ),
    ] = "15m",
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="JOB",
            help="Run only these jobs (repeatable): consume, produce, batch. Default: all three.",
        ),
    ] = None,
) -> None:
    """Run consumer, daily producer and batch continuously.

    The seed's normal operation: the consumer stores every record as it arrives,
    `produce --daily` sends the next day of CSV_PATH on its schedule, and the batch aggregates
    the new raw files on its own. A job that fails is logged; the consumer is restarted,
    scheduled jobs run again at their next tick. SIGTERM or Ctrl-C stops every job cleanly (the
    consumer finishes and commits its files) and exits 0."""
    from weatherpipe.flows.schedule import parse_interval
    from weatherpipe.flows.supervisor import Job, Supervisor
    from weatherpipe.signals import stop_on_signals

    configure()  # invalid settings stop here, before any child starts
    wanted = only or list(JOBS)
    unknown = sorted(set(wanted) - set(JOBS))
    if unknown:
        raise typer.BadParameter(f"unknown job(s) {unknown}; choose from {list(JOBS)}")
    jobs = {
        "consume": Job("consumer", ["consume"]),
        "produce": Job("daily producer", ["produce", "--daily"], parse_interval(produce_every)),
        "batch": Job("batch", ["batch"], parse_interval(batch_every)),
    }
    supervisor = Supervisor([jobs[name] for name in JOBS if name in wanted], say=say)
    stop_on_signals(supervisor.stop)
    say(
        f"serving: {', '.join(j.name for j in supervisor.jobs)} "
        f"(produce every {produce_every}, batch every {batch_every}); stop with Ctrl-C"
    )
    supervisor.run()
    runs = ", ".join(f"{j.name}: {j.runs} runs, {j.failures} failed" for j in supervisor.jobs)
    say(f"stopped cleanly ({runs})")
