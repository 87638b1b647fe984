"""`weatherpipe settings`: every setting, its environment variable and its current value."""

from __future__ import annotations

import json

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from weatherpipe.settings import Settings, load_settings


def show(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
) -> None:
    """List every setting with its environment variable, current value and meaning."""
    current = load_settings()
    values = {
        name.upper(): ("***" if isinstance(v, SecretStr) else v)
        for name, v in current.model_dump().items()
    }
    if as_json:
        typer.echo(json.dumps(values, default=str, indent=2))
        return
    table = Table("variable", "value", "meaning", show_lines=False)
    for name, field in Settings.model_fields.items():
        table.add_row(name.upper(), str(values[name.upper()]), field.description or "")
    Console().print(table)
