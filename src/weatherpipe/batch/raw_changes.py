"""What a batch run reports about the raw zone without failing: raw files changed or gone after
a run counted them, and `.ndjson` files outside the raw zone's layout, which are never read.

Raw files are append-only and never rewritten, so a processed file whose size or modification
time differs from what its run recorded was changed behind the pipeline's back. Its records
stay counted as they were; nothing is quarantined or recounted silently: the warning says so,
and `weatherpipe batch --full` recounts everything from what the raw zone holds now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

from weatherpipe.batch.merge import ProcessedFile
from weatherpipe.rawzone.listing import RawFile
from weatherpipe.rawzone.naming import LAYOUT

# How many paths a warning names; the count says how many there are.
EXAMPLES: Final = 3


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _change(path: str, then: ProcessedFile, now: RawFile) -> str | None:
    """How the file at `path` differs from when it was counted, or None."""
    parts = []
    if now.size_bytes != then.size_bytes:
        parts.append(f"{then.size_bytes:,} -> {now.size_bytes:,} bytes")
    if then.mtime_ns is not None and now.mtime_ns != then.mtime_ns:
        parts.append(f"modified {_time(now.mtime_ns)}")
    return f"{path} ({', '.join(parts)})" if parts else None


def _examples(items: Sequence[str]) -> str:
    shown = "; ".join(items[:EXAMPLES])
    more = len(items) - EXAMPLES
    return shown + (f"; and {more:,} more" if more > 0 else "")


def changed_files(processed: Mapping[str, ProcessedFile], present: Sequence[RawFile]) -> list[str]:
    """Warnings for processed files that changed or are gone (none when all are as counted)."""
    here = {f.path: f for f in present}
    changed = sorted(
        change
        for path, then in processed.items()
        if path in here and (change := _change(path, then, here[path])) is not None
    )
    gone = sorted(path for path in processed if path not in here)
    warnings = []
    if changed:
        warnings.append(
            f"{len(changed):,} raw file(s) changed after a batch run counted them: "
            f"{_examples(changed)}. Their records stay counted as they were read; raw files "
            "are append-only, so find out what wrote to RAW_DIR, and if the change was meant "
            "(a repaired file), run `weatherpipe batch --full` to recount everything."
        )
    if gone:
        warnings.append(
            f"{len(gone):,} raw file(s) counted by an earlier batch run are gone from RAW_DIR: "
            f"{_examples(gone)}. Their records stay counted. If they were moved away on purpose "
            "(the consumer sets a file whose content disagrees with its name aside into "
            "RAW_DIR/.damaged and stores its records again), run `weatherpipe batch --full` "
            "once the consumer has caught up, to recount from what RAW_DIR holds."
        )
    return warnings


def unrecognised_files(paths: Sequence[str]) -> str:
    """The warning for `.ndjson` files outside the layout (relative to RAW_DIR)."""
    return (
        f"{len(paths):,} .ndjson file(s) in RAW_DIR are not in the raw zone's layout and were "
        f"not read: {_examples(paths)}. Expected: {LAYOUT}; point RAW_DIR at the consumer's "
        "raw zone, or move files that do not belong there elsewhere. A raw zone of the "
        "original project (<topic>/<YYYY-MM-DD>/chunk-NNNN.ndjson) is added with "
        "`weatherpipe import-raw <folder>`."
    )
