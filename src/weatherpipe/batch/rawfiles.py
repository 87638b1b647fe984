"""Finished raw files: finding them under RAW_DIR and reading their names back.

Only `RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.ndjson` names count;
temp files (under RAW_DIR/.tmp) and anything else are never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]{1,249})\+(?P<partition>[0-9]{5})"
    r"\+(?P<first>[0-9]{20})\+(?P<last>[0-9]{20})\.ndjson$"
)
_DAY_DIR = re.compile(r"^date=[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True, order=True)
class RawFile:
    """A finished raw file: `path` relative to RAW_DIR (as recorded in the database)."""

    path: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    size_bytes: int


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets first..last (inclusive) of one partition, already counted."""

    topic: str
    partition: int
    first: int
    last: int


def parse(relative: str, size_bytes: int = 0) -> RawFile | None:
    """The file at `relative` (to RAW_DIR), or None when it is not a finished raw file."""
    parts = relative.split("/")
    if len(parts) != 3 or not _DAY_DIR.match(parts[1]):
        return None
    match = NAME.match(parts[2])
    if match is None or match["topic"] != parts[0]:
        return None
    first, last = int(match["first"]), int(match["last"])
    if last < first:
        return None
    return RawFile(relative, match["topic"], int(match["partition"]), first, last, size_bytes)


def list_files(raw_dir: Path) -> list[RawFile]:
    """Every finished raw file under `raw_dir`, sorted by path (missing folder: none)."""
    found = []
    for path in raw_dir.glob("*/date=*/*.ndjson"):
        relative = path.relative_to(raw_dir).as_posix()
        raw = parse(relative, path.stat().st_size)
        if raw is not None:
            found.append(raw)
    found.sort()
    return found


def merged_ranges(ranges: list[OffsetRange]) -> list[OffsetRange]:
    """`ranges` with overlapping and adjacent ones joined: files of one partition usually
    follow each other, so thousands of files shrink to one range per partition."""
    out: list[OffsetRange] = []
    for r in sorted(ranges):
        last = out[-1] if out else None
        if (
            last is not None
            and (last.topic, last.partition) == (r.topic, r.partition)
            and r.first <= last.last + 1
        ):
            out[-1] = OffsetRange(r.topic, r.partition, last.first, max(last.last, r.last))
        else:
            out.append(r)
    return out
