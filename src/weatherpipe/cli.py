"""The `weatherpipe` command: one entry point, one small module per subcommand.

Only typer is imported to build the command tree; each subcommand imports what it needs (Kafka,
DuckDB, PostgreSQL, pydantic-settings, Rich) when it runs, so `--help` and `--version` start in
a fraction of a second.
"""

from __future__ import annotations

import sys

import typer

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
from weatherpipe.errors import SettingsError, WeatherpipeError

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
    # Plain help: text in brackets ("weatherpipe[spark]", "local[*]") is shown as written, not
    # read as Rich markup, and Rich is not imported to print it.
    rich_markup_mode=None,
)
app.add_typer(platform.app, name="platform")
app.command("settings")(settings.show)
app.command("generate")(generate.run)
app.command("produce")(produce.run)
app.command("consume", help=consume.HELP)(consume.run)
app.command("batch", help=batch.HELP)(batch.run)
app.command("import-raw", help=import_raw.HELP)(import_raw.run)
app.command("run")(run.run)
app.command("serve")(serve.run)
app.command("dashboard")(dashboard.run)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"weatherpipe {version('weatherpipe')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    pass


def main() -> None:
    """Run the CLI; a `WeatherpipeError` becomes a clear message and exit status 1
    (2 for invalid settings, like a usage error)."""
    try:
        app(prog_name="weatherpipe")  # also under `python -m weatherpipe`
    except WeatherpipeError as exc:
        from weatherpipe.ui.console import error

        error(str(exc))
        sys.exit(2 if isinstance(exc, SettingsError) else 1)
