"""Whether a raw file's content agrees with its name: checked before a file is published, and
again on a partition's newest file when the partition is taken over.

Lines are only ever appended, so a file holding every byte that was written to it, whose last
line is whole and carries the partition and last offset of its name, holds exactly the records
the name claims. Anything else (a write cut short by a full disk, a file edited by hand) means
the name cannot be trusted to say where the partition resumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from weatherpipe.rawzone.lines import coordinates

_CHUNK: Final = 64 * 1024


def last_line(path: Path) -> bytes:
    """The last line of the file at `path`, its newline included if it has one (b"" when the
    file is empty). Reads backwards from the end, so only the last line is read."""
    with path.open("rb") as fh:
        position = fh.seek(0, os.SEEK_END)
        chunks: list[bytes] = []
        while position > 0:
            step = min(_CHUNK, position)
            position -= step
            fh.seek(position)
            chunk = fh.read(step)
            # The file's final newline ends the last line; the one before it starts it.
            search_end = len(chunk) - 1 if not chunks else len(chunk)
            cut = chunk.rfind(b"\n", 0, search_end)
            if cut >= 0:
                chunks.append(chunk[cut + 1 :])
                break
            chunks.append(chunk)
        return b"".join(reversed(chunks))


def disagreement(
    path: Path, partition: int, last_offset: int, size: int | None = None
) -> str | None:
    """Why the file at `path` does not hold what its name says (its partition and last offset
    and, when known, the `size` in bytes written to it), or None when it does."""
    if size is not None:
        actual = path.stat().st_size
        if actual != size:
            return f"it holds {actual:,} bytes where {size:,} were written"
    line = last_line(path)
    if not line:
        return "it is empty"
    if not line.endswith(b"\n"):
        return "its last line is cut off (no newline at its end)"
    found = coordinates(line[:-1])
    if found is None:
        return "its last line is not a whole raw-zone record"
    if found != (partition, last_offset):
        return (
            f"its last line is partition {found[0]} offset {found[1]}, where the name says "
            f"partition {partition} offset {last_offset}"
        )
    return None
