"""`weatherpipe import-raw`: move a raw zone of the original project's layout into RAW_DIR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from weatherpipe.commands.startup import configure
from weatherpipe.rawzone.naming import PATH_TEMPLATE
from weatherpipe.ui.console import say

if TYPE_CHECKING:
    from weatherpipe.rawzone.importer import ImportSummary
    from weatherpipe.ui.progress import Activity

# Lines set aside that the summary shows (all of them are in the quarantine file).
_SHOWN = 5

HELP: Final = f"""Add the original project's raw zone to RAW_DIR, exactly once.

    Adds the records of a raw zone in the original project's layout to weatherpipe's raw zone
    ({PATH_TEMPLATE}). The source is only read.

    Every line's Kafka envelope is checked with the batch's rules; a line without one (not
    JSON, cut short by a crash, no topic/partition/offset) is listed with its file, line and
    reason in RAW_DIR/.import/quarantine.jsonl. Copies of one (topic, partition, offset), as an
    at-least-once writer leaves them, are imported once. Records the raw zone holds already
    are left out, so an interrupted import is finished, and a repeated one adds nothing, by
    running the same command again. Run `weatherpipe batch` afterwards."""


def run(
    source: Annotated[
        Path,
        typer.Argument(
            help="The original's raw zone: the folder its RAW_ROOT pointed at, holding "
            "<topic>/<YYYY-MM-DD>/chunk-NNNN.ndjson.",
            metavar="DIR",
            show_default=False,
        ),
    ],
    raw_dir: Annotated[
        Path | None,
        typer.Option("--raw-dir", help="weatherpipe's raw zone to add to (default RAW_DIR)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
) -> None:
    """Add the original project's raw zone to RAW_DIR (the command's help is `HELP`)."""
    # Imported here: numpy and the raw-zone modules are heavy, and every command pays for them.
    from weatherpipe.rawzone.importer import import_raw
    from weatherpipe.rawzone.rotation import RotationPolicy
    from weatherpipe.ui.progress import live_lines

    settings = configure()
    target = raw_dir or settings.raw_dir
    policy = RotationPolicy.from_limits(settings.rotate_mb, settings.rotate_seconds)
    try:
        with live_lines() as lines:
            shown: dict[str, Activity] = {}

            def progress(step: str, done: int, total: int) -> None:
                if step not in shown:
                    shown[step] = lines.add(step, total)
                shown[step].reach(done, total)

            summary = import_raw(source, target, policy.max_bytes, progress)
    except KeyboardInterrupt:
        say(
            ("interrupted:", "yellow"),
            " the files written so far are complete; run the same command again to add "
            "the rest (nothing is added twice).",
        )
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    _print_summary(summary)


def _print_summary(s: ImportSummary) -> None:
    set_aside = sum(s.set_aside.values())
    say(
        ("imported", "green"),
        f" {s.written:,} records in {s.files:,} files into "
        f"{s.raw_dir} in {s.seconds:.1f} s: read {s.lines:,} lines of "
        f"{s.chunks:,} chunks ({s.bytes / 1_048_576:,.1f} MiB); {s.repeats:,} repeated "
        f"lines dropped, {s.already_stored:,} records already in the raw zone, "
        f"{set_aside:,} lines set aside",
    )
    if set_aside:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(s.set_aside.items()))
        say(
            f"set aside: {reasons}; each one with file, line and reason in "
            f"{s.quarantine_file} ({s.newly_listed:,} listed now, the others "
            "by an earlier import)"
        )
        for entry in s.examples[:_SHOWN]:
            field = f" ({entry.field})" if entry.field else ""
            say(f"  {entry.file}:{entry.line}: {entry.reason}{field}")
    for p in s.partitions:
        gaps = (
            f"; {p.missing:,} offsets between them are missing from the source" if p.missing else ""
        )
        say(
            f"  {p.topic}[{p.partition}]: offsets {p.lowest:,}..{p.highest:,} in the source"
            f"{gaps}; {p.written:,} written; `weatherpipe consume` resumes at {p.resumes_at:,}"
        )
    if s.other_files:
        say(
            (
                f"{s.other_files:,} .ndjson files under {s.source} are not in "
                "the original's layout and were not read.",
                "yellow",
            )
        )
    if s.written:
        say("next: `weatherpipe batch` adds them to PostgreSQL.")
