"""The `weatherpipe` command: one entry point, one small module per subcommand."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from weatherpipe.commands import (
    batch,
    consume,
    dashboard,
    generate,
    import_raw,
    platform,
    produce,
    run,
    serve,
    settings,
)
from weatherpipe.errors import WeatherpipeError

app = typer.Typer(
    name="weatherpipe",
    help=(
        "Weather observations from a CSV through Kafka and an append-only raw zone into "
        "PostgreSQL and a dashboard. Every setting is an environment variable: see "
        "`weatherpipe settings`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(platform.app, name="platform")
app.command("settings")(settings.show)
app.command("generate")(generate.run)
app.command("produce")(produce.run)
app.command("consume")(consume.run)
app.command("batch")(batch.run)
app.command("import-raw")(import_raw.run)
app.command("run")(run.run)
app.command("serve")(serve.run)
app.command("dashboard")(dashboard.run)

err_console = Console(stderr=True)


def main() -> None:
    """Run the CLI; a `WeatherpipeError` becomes a clear message and exit status 1
    (2 for invalid settings, like a usage error)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app()
    except WeatherpipeError as exc:
        from weatherpipe.errors import SettingsError

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(2 if isinstance(exc, SettingsError) else 1)
