"""Offsets a batch run has already counted, as ranges per topic-partition.

Which raw files there are, and the offsets their names hold, come from the raw zone
(`weatherpipe.rawzone.listing`); a run records each file's range here once it is counted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets first..last (inclusive) of one partition, already counted."""

    topic: str
    partition: int
    first: int
    last: int


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
