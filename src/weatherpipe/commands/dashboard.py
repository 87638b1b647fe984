"""`weatherpipe dashboard`: serve the Streamlit dashboard."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def run(
    port: int | None = typer.Option(
        None,
        "--port",
        metavar="PORT",
        help="Port to serve on (default DASHBOARD_PORT, 8501).",
        min=1,
        max=65535,
    ),
    address: str = typer.Option(
        "localhost",
        "--address",
        metavar="HOST",
        help="Address to listen on; 0.0.0.0 to reach it from others.",
    ),
) -> None:
    """Serve the Streamlit dashboard at http://localhost:PORT.

    Pages: the weather (KPIs, charts, map, CSV download), the pipeline (batch runs, raw zone,
    consumer lag, quarantine) and Kafka (topics, offsets, last messages). It reads PostgreSQL
    with the SELECT-only login and Kafka with the current settings; stop it with Ctrl+C."""
    from weatherpipe.platform.processes import require_free_port
    from weatherpipe.ui.logs import library_level

    settings = configure()
    chosen = port if port is not None else settings.dashboard_port
    # Streamlit's own message for a taken port names neither the owner nor the way out.
    require_free_port(
        chosen, "The dashboard", "choose another port with --port <port> or DASHBOARD_PORT=<port>"
    )
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    command = _streamlit(chosen, address, library_level(settings.log_level).lower())
    say(f"dashboard: http://{address}:{chosen}  (Ctrl+C stops it)")
    # Streamlit replaces this process, so a signal to this PID (Ctrl+C, a service manager's
    # SIGTERM) reaches the server itself and no orphaned server is left behind.
    os.execve(sys.executable, command, env)


def _streamlit(port: int, address: str, log_level: str) -> list[str]:
    """The command line of a headless Streamlit server of the dashboard."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--theme.base",
        "light",
        "--client.toolbarMode",
        "viewer",
        # A served dashboard's code does not change while it runs; Streamlit's watcher would
        # walk every loaded module for each new browser session (about half the server's work
        # of a page load) to rerun on edits no one makes.
        "--server.fileWatcherType",
        "none",
        # An error no page handled shows as a generic message; its traceback (server paths
        # included) goes only to this terminal.
        "--client.showErrorDetails",
        "none",
        # Streamlit logs through its own set-up; it follows LOG_LEVEL as the other libraries do.
        "--logger.level",
        log_level,
    ]
