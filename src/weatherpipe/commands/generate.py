"""`weatherpipe generate`: a synthetic weather CSV in the Kaggle data set's format."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.ui.console import say


def run(
    rows: Annotated[
        int,
        typer.Option(
            "--rows", metavar="N", min=1, help="Number of data rows (Kaggle's set has 1,000,000)."
        ),
    ] = 1_000_000,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            metavar="N",
            help="Random seed; the same seed and --rows give the same file.",
        ),
    ] = 42,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="File to write (replaced atomically). Default: CSV_PATH.",
        ),
    ] = None,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing", help="Keep the file if it exists already (for scripts and Compose)."
        ),
    ] = False,
) -> None:
    """Write a synthetic weather CSV in the Kaggle data set's format.

    The Kaggle prasad22/weather-data header and formats: 10 US cities, times in random order
    over 2024-01-01 … 2024-05-18, values within the original's ranges with a seasonal and
    per-city shift."""
    from weatherpipe import datagen  # NumPy and Arrow are heavy; other commands skip them
    from weatherpipe.ui.progress import activity

    path = out or configure().csv_path
    if if_missing and path.exists():
        say(f"kept {path}: it exists already")
        return
    start = time.monotonic()
    with activity("generating", total=rows, unit="rows") as shown:
        size = datagen.write_csv(path, rows, seed, shown.advance)
    say(
        f"wrote {rows:,} rows ({size / 1e6:.1f} MB) to {path} in "
        f"{time.monotonic() - start:.1f} s (seed {seed})"
    )
