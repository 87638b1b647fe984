"""`weatherpipe platform up | down | status`: the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from weatherpipe.settings import Settings

app = typer.Typer(
    help=(
        "Start, stop and inspect the local platform: Apache Kafka 4.1 (KRaft, one node, jars "
        "from Maven Central) and an embedded PostgreSQL. Data, logs and pid files live in "
        "STATE_DIR (default .weatherpipe/) and survive restarts. Services the settings point "
        "elsewhere (DATABASE_URL, a remote KAFKA_BOOTSTRAP_SERVERS) are used, never started."
    ),
    short_help="Start, stop and inspect the local Kafka and PostgreSQL.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def up(
    timeout: float | None = typer.Option(
        None,
        metavar="SECONDS",
        help="Seconds to wait for each service to answer (default STARTUP_TIMEOUT).",
    ),
) -> None:
    """Start Kafka and PostgreSQL and wait until they answer.

    Starts what is not running and waits until Kafka answers a metadata request and PostgreSQL
    answers SELECT 1. Running it again is a no-op."""
    from weatherpipe import platform as services
    from weatherpipe.ui.progress import activity

    settings = configure()
    start = time.monotonic()
    with activity("starting Kafka and PostgreSQL"):
        services.up(settings, timeout)
    say(("platform ready", "green"), f" in {time.monotonic() - start:.1f} s")
    _print_status(settings, as_json=False)


@app.command()
def down() -> None:
    """Stop the local services that `up` started.

    Found by their pid files; nothing else is touched. Their data stays in STATE_DIR."""
    from weatherpipe import platform as services
    from weatherpipe.ui.progress import activity

    settings = configure()
    with activity("stopping"):
        stopped = services.down(settings)
    for name, was_running in stopped.items():
        say(f"{name}: {'stopped' if was_running else 'was not running'}")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for scripts)."),
) -> None:
    """Show each service's address and whether it answers.

    A service that does not even accept a TCP connection is reported without loading its
    client library. Exit status 0 when all answer, 1 when one does not (so scripts can wait
    on it)."""
    if not _print_status(configure(), as_json):
        raise typer.Exit(1)


def _print_status(settings: Settings, as_json: bool) -> bool:
    """Print the report; True when every service answers."""
    from weatherpipe import platform as services
    from weatherpipe.redact import masked

    report = services.status(settings).as_dict()
    all_running = all(bool(info["running"]) for info in report.values())
    if as_json:
        typer.echo(masked(json.dumps(report, indent=2)))
        return all_running
    kafka, pg = report["kafka"], report["postgres"]
    for name, info, address in (
        ("kafka", kafka, kafka["bootstrap_servers"]),
        ("postgres", pg, pg["url"]),
    ):
        if info["running"]:
            state = ("running", "green")
        elif info.get("problem"):
            state = ("refuses the login", "red")
        else:
            state = ("not running", "red")
        origin = "local" if info["managed"] else "external"
        pid = f", pid {info['pid']}" if info["pid"] else ""
        say(f"{name:9} ", state, f"  {masked(str(address))}  ({origin}{pid})")
    for info in report.values():
        if info.get("problem"):
            say(masked(str(info["problem"])))
    if any(not info["running"] and not info.get("problem") for info in report.values()):
        say("`weatherpipe platform up` starts the local services.")
    return all_running
