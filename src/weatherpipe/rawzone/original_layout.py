"""The original project's raw-zone layout, which `weatherpipe import-raw` reads.

`<root>/<topic>/<YYYY-MM-DD>/chunk-NNNN.ndjson`: a folder per topic and date, the chunks of a
date numbered in the order they were written. Lines have weatherpipe's line format (see
`lines`), but were written at least once: after a restart a line may repeat, and a crash may
leave the last line of a chunk cut short.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from weatherpipe.errors import TerminalError
from weatherpipe.topic_name import is_topic_name

EXPECTED: Final = "<dir>/<topic>/<YYYY-MM-DD>/chunk-NNNN.ndjson"
_DATE: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CHUNK: Final = re.compile(r"^chunk-(?P<number>[0-9]{1,18})\.ndjson$")


class UnreadableChunkError(TerminalError):
    """A chunk could not be read."""

    @classmethod
    def of(cls, path: Path, exc: OSError) -> UnreadableChunkError:
        return cls(
            f"Cannot read {path}: {exc.strerror or exc}. Nothing was written; make it readable "
            "(or move it out of the folder) and run again."
        )


@dataclass(frozen=True, order=True)
class Chunk:
    """One chunk file; chunks sort in the order they were written."""

    topic: str
    date: str
    number: int
    path: Path
    size: int

    @property
    def day(self) -> int:
        """Days since 1970-01-01 of the chunk's date folder."""
        return (dt.date.fromisoformat(self.date) - dt.date(1970, 1, 1)).days


@dataclass(frozen=True)
class Found:
    """The chunks under a root, and the .ndjson files that are not in the layout."""

    chunks: list[Chunk]
    others: list[Path]


def _is_date(name: str) -> bool:
    if not _DATE.match(name):
        return False
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def find_chunks(root: Path) -> Found:
    """Every chunk under `root`, in written order (topic, date, number), and the other
    .ndjson files found under it (weatherpipe's own files not counted: an import may write
    into the very folder it reads)."""
    chunks: list[Chunk] = []
    others: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        parts = here.relative_to(root).parts
        laid_out = len(parts) == 2 and is_topic_name(parts[0]) and _is_date(parts[1])
        for name in sorted(files):
            if not name.endswith(".ndjson"):
                continue
            match = _CHUNK.match(name)
            if laid_out and match:
                path = here / name
                try:
                    size = path.stat().st_size
                except OSError as exc:  # a dangling link
                    raise UnreadableChunkError.of(path, exc) from None
                chunks.append(Chunk(parts[0], parts[1], int(match["number"]), path, size))
            elif not (len(parts) == 2 and parts[1].startswith("date=")):
                others.append(here / name)
    chunks.sort()
    return Found(chunks, others)
