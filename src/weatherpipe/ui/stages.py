"""How a flow reports its stages: one line as each stage ends, and a table at the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from weatherpipe.ui.console import err, say


@dataclass
class StageSummary:
    """One stage of a flow: what it did with how many records, and how long it took."""

    name: str
    seconds: float
    records: str
    set_aside: str = ""
    started: float = 0.0
    """Seconds after the flow started that the stage began (stages may overlap)."""


def stage_done(stage: StageSummary) -> None:
    """The line printed when a stage ends: `✓ produce: … (4.2 s)`."""
    say(
        ("✓", "green"),
        f" {stage.name}: {stage.records}"
        + (f"; {stage.set_aside}" if stage.set_aside else "")
        + f" ({stage.seconds:.1f} s)",
    )


def stage_table(title: str, stages: Sequence[StageSummary], total_seconds: float) -> None:
    """The summary table of a flow on stderr; `total_seconds` is the wall time, which is less
    than the sum of the stages' times when stages overlapped."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    table.add_column("records")
    table.add_column("set aside")
    table.add_column("seconds", justify="right")
    for stage in stages:
        table.add_row(stage.name, stage.records, stage.set_aside, f"{stage.seconds:.1f}")
    table.add_row("total", "", "", f"{total_seconds:.1f}", style="bold")
    err().print(table)
