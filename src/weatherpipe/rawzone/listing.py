"""The finished files of the raw zone, as they lie on disk: every reader lists them here.

A file counts only when its path relative to RAW_DIR parses back (`naming.parse_relative_path`):
`<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.ndjson`. Folders whose name starts
with a dot (RAW_DIR/.tmp, RAW_DIR/.damaged) are never looked into. `survey` also names the other
`.ndjson` files, so a batch run can say they were left out rather than report "0 files".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from weatherpipe.rawzone import naming


@dataclass(frozen=True, order=True)
class RawFile:
    """A finished raw file: `path` relative to RAW_DIR (as the batch records it), the date
    folder and name parts it was parsed from, its size and modification time."""

    path: str
    date: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    size_bytes: int
    mtime_ns: int

    @property
    def name(self) -> naming.RawFileName:
        """The parts of the file's name."""
        return naming.RawFileName(self.topic, self.partition, self.first_offset, self.last_offset)

    @property
    def lines(self) -> int:
        """One line per offset of the range in the name."""
        return self.last_offset - self.first_offset + 1

    def location(self, raw_dir: Path) -> Path:
        """The file's full path under `raw_dir`."""
        return raw_dir / self.path


@dataclass(frozen=True)
class Listing:
    """What RAW_DIR holds: the finished raw files, sorted by path, and the other `.ndjson`
    files (paths relative to RAW_DIR, sorted), which are never read."""

    files: list[RawFile] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)


def _walk(folder: str, relative: str, found: Listing) -> None:
    """Add the `.ndjson` files under `folder` (which is `relative` to RAW_DIR, "" or ending in
    "/") to `found`, skipping folders whose name starts with a dot; like `os.walk` with links
    followed, a folder that cannot be read is passed over."""
    try:
        entries = os.scandir(folder)
    except OSError:
        return
    with entries:
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not name.startswith("."):
                    _walk(entry.path, f"{relative}{name}/", found)
                continue
            if not name.endswith(naming.SUFFIX):
                continue
            path = relative + name
            parsed = naming.parse_relative_path(path)
            if parsed is None:
                found.unrecognised.append(path)
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                if os.path.lexists(entry.path):
                    raise  # a link to nothing: not ours to hide
                # Set aside into RAW_DIR/.damaged by a consumer since the folder was read.
                continue
            parts = parsed.name
            found.files.append(
                RawFile(
                    path,
                    parsed.date,
                    parts.topic,
                    parts.partition,
                    parts.first_offset,
                    parts.last_offset,
                    stat.st_size,
                    stat.st_mtime_ns,
                )
            )


def _survey(folder: Path, relative: str) -> Listing:
    found = Listing()
    _walk(str(folder), relative, found)
    found.files.sort(key=attrgetter("path"))  # paths are unique: the same order, cheaper
    found.unrecognised.sort()
    return found


def survey(raw_dir: Path) -> Listing:
    """Every `.ndjson` file under `raw_dir` outside folders starting with a dot, sorted into
    finished raw files and the others (missing folder: none of either)."""
    return _survey(raw_dir, "")


def list_files(raw_dir: Path) -> list[RawFile]:
    """Every finished raw file under `raw_dir`, of every topic, sorted by path (missing
    folder: none)."""
    return survey(raw_dir).files


def topic_files(raw_dir: Path, topic: str) -> list[RawFile]:
    """Every finished file of `topic`, sorted by path (no topic folder: none)."""
    return _survey(naming.topic_dir(raw_dir, topic), f"{topic}/").files
