"""`weatherpipe settings`: every setting, its environment variable and its current value."""

from __future__ import annotations

import json

import typer


def show(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
) -> None:
    """List every setting: variable, current value, meaning.

    Passwords are shown as ***, also inside a URL such as DATABASE_URL."""
    from pydantic import SecretStr

    from weatherpipe.commands.startup import configure
    from weatherpipe.redact import MASK, masked
    from weatherpipe.settings import Settings, meanings

    current = configure()
    values: dict[str, object] = {}
    for name, value in current.model_dump().items():
        if isinstance(value, SecretStr):
            value = MASK
        elif isinstance(value, str):
            value = masked(value)
        values[name.upper()] = value
    if as_json:
        typer.echo(json.dumps(values, default=str, indent=2))
        return
    from rich.table import Table

    from weatherpipe.ui.console import out

    table = Table("variable", "value", "meaning", show_lines=False)
    meaning = meanings()
    for name in Settings.model_fields:
        shown = values[name.upper()]
        table.add_row(name.upper(), "" if shown is None else str(shown), meaning.get(name, ""))
    out().print(table)
