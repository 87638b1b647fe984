"""Finished raw files: finding them under RAW_DIR and reading their names back.

Only `RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.ndjson` names count;
the raw zone's own folders (RAW_DIR/.tmp, RAW_DIR/.damaged: every folder whose name starts
with a dot) and anything else are never read. Other `.ndjson` files are listed apart, so a run
can say they were left out rather than report "0 files".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

NAME = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]{1,249})\+(?P<partition>[0-9]{5})"
    r"\+(?P<first>[0-9]{20})\+(?P<last>[0-9]{20})\.ndjson$"
)
_DAY_DIR = re.compile(r"^date=[0-9]{4}-[0-9]{2}-[0-9]{2}$")
LAYOUT: Final = (
    "RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first offset>+<last offset>.ndjson "
    "(partition zero-padded to 5 digits, offsets to 20), as `weatherpipe consume` writes them"
)


@dataclass(frozen=True, order=True)
class RawFile:
    """A finished raw file: `path` relative to RAW_DIR (as recorded in the database)."""

    path: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    size_bytes: int
    mtime_ns: int = 0


@dataclass(frozen=True)
class Listing:
    """What RAW_DIR holds: the finished raw files, sorted by path, and the other `.ndjson`
    files (paths relative to RAW_DIR, sorted), which are never read."""

    files: list[RawFile] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets first..last (inclusive) of one partition, already counted."""

    topic: str
    partition: int
    first: int
    last: int


def parse(relative: str, size_bytes: int = 0, mtime_ns: int = 0) -> RawFile | None:
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
    return RawFile(
        relative, match["topic"], int(match["partition"]), first, last, size_bytes, mtime_ns
    )


def survey(raw_dir: Path) -> Listing:
    """Every `.ndjson` file under `raw_dir` outside folders starting with a dot, sorted into
    finished raw files and the others (missing folder: none of either)."""
    files: list[RawFile] = []
    unrecognised: list[str] = []
    for folder, subfolders, names in os.walk(raw_dir, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if not name.endswith(".ndjson"):
                continue
            path = Path(folder, name)
            relative = path.relative_to(raw_dir).as_posix()
            stat = path.stat()
            raw = parse(relative, stat.st_size, stat.st_mtime_ns)
            if raw is not None:
                files.append(raw)
            else:
                unrecognised.append(relative)
    files.sort()
    unrecognised.sort()
    return Listing(files, unrecognised)


def list_files(raw_dir: Path) -> list[RawFile]:
    """Every finished raw file under `raw_dir`, sorted by path (missing folder: none)."""
    return survey(raw_dir).files


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
