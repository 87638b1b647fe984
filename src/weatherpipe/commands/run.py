"""`weatherpipe run`: the whole lab flow in one command, then the dashboard."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from weatherpipe.platform import Started
    from weatherpipe.settings import Settings


Dashboard = Annotated[
    bool,
    typer.Option(
        "--dashboard/--no-dashboard",
        help="After the batch, serve the dashboard until Ctrl-C (default), or exit.",
    ),
]
Port = Annotated[
    int | None,
    typer.Option(
        "--port", metavar="PORT", help="Port of the dashboard (default DASHBOARD_PORT, 8501)."
    ),
]
Rows = Annotated[
    int,
    typer.Option(
        "--rows",
        metavar="N",
        min=1,
        help="Rows to generate when CSV_PATH does not exist.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the generated data set.")]
ProduceAgain = Annotated[
    bool,
    typer.Option(
        "--produce-again",
        help="Send the CSV even when the topic already holds records (by default a rerun "
        "skips producing, so the same rows are not sent and counted twice; an interrupted "
        "send is resumed instead).",
    ),
]
AsJson = Annotated[
    bool,
    typer.Option("--json", help="Also print the stage summary as one JSON object on stdout."),
]


def run(
    dashboard: Dashboard = True,
    port: Port = None,
    rows: Rows = 1_000_000,
    seed: Seed = 42,
    produce_again: ProduceAgain = False,
    as_json: AsJson = False,
) -> None:
    """The whole lab flow, then the dashboard.

    The seed's lab flow: start the platform, generate the data set if CSV_PATH does not exist,
    produce every row while a consumer process stores them in the raw zone (it stops as soon as
    the raw zone holds every record the producer delivered), run the batch, print a summary
    (records and seconds per stage), then serve the dashboard. Interrupted at any moment, the
    next run finishes the work: nothing is sent, stored or counted twice. Ctrl-C stops what
    this command started; after --no-dashboard the platform is left running for you to look."""
    from weatherpipe.flows.lab import LabFlow  # heavy; imported when the command runs
    from weatherpipe.signals import interrupt_on

    settings = configure()
    # A service manager or `kill` stops us with SIGTERM: take the same path as Ctrl-C, so the
    # dashboard and the services this command started are stopped too.
    interrupt_on((signal.SIGTERM,))
    flow = LabFlow(settings, rows=rows, seed=seed, produce_again=produce_again)
    try:
        result = flow.run()
        result.show()
        if as_json:
            typer.echo(json.dumps(result.as_dict()))
        if dashboard:
            serve_dashboard(settings, port or settings.dashboard_port)
    except KeyboardInterrupt:
        say(("interrupted", "yellow"))
        _stop_started(settings, flow.started)
        raise typer.Exit(130) from None
    if dashboard:
        _stop_started(settings, flow.started)
    else:
        say("The platform keeps running; `weatherpipe platform down` stops it.")


def _stop_started(settings: Settings, started: Started) -> None:
    """Stop the local services this command started (and only those)."""
    from weatherpipe import platform

    for name, stopped in platform.down(settings, started).items():
        if stopped:
            say(f"stopped {name}")


def serve_dashboard(settings: Settings, port: int) -> None:
    """Serve the dashboard in a child process until Ctrl-C; print its URL once it answers."""
    from weatherpipe.platform.processes import require_free_port, wait_until_ready

    require_free_port(port, "The dashboard", "choose another one with --port")
    child = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "dashboard", "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://localhost:{port}"
    try:
        wait_until_ready(
            "The dashboard",
            lambda: _answers(f"http://127.0.0.1:{port}/_stcore/health"),
            lambda: child.poll() is None,
            settings.startup_timeout,
            [],
        )
        say(("dashboard:", "bold green"), f" {url}  (Ctrl-C stops it)")
        child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(30)


def _answers(url: str) -> bool:
    import urllib.request  # here: http.client and ssl would slow every command's start

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
