"""Step 2 of an import: which records to write, and into which files.

Per topic-partition: the records sorted by offset; of each offset the first copy read (copies
from at-least-once restarts are dropped, as the batch drops them); offsets that a file of the
raw zone already holds left out (the files own the offsets, as for the consumer); the rest cut
into files where the offsets have a gap, the UTC date changes, or a file passes ROTATE_MB.

Files hold runs of consecutive offsets, so an offset missing from the original's raw zone stays
free: were it found later, a new import could still add it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from weatherpipe.rawzone.import_scan import Int64s, Spots


@dataclass(frozen=True)
class PlannedFile:
    """One file to write: positions (into the partition's `Spots`) of its records, in order."""

    day: int
    first_offset: int
    last_offset: int
    records: Int64s


@dataclass
class PartitionPlan:
    """What an import does with one topic-partition."""

    topic: str
    partition: int
    distinct: int  # distinct offsets in the source
    repeats: Int64s  # positions of the copies dropped
    firsts_of_repeats: Int64s  # for each, the position of the copy kept
    already_stored: int  # distinct offsets a raw-zone file holds already
    stored_positions: Int64s  # their positions (some are compared with the stored records)
    files: list[PlannedFile]
    lowest: int  # lowest and highest offset in the source
    highest: int

    @property
    def to_write(self) -> int:
        return sum(len(f.records) for f in self.files)

    @property
    def missing(self) -> int:
        """Offsets between the lowest and the highest that the source does not hold."""
        return self.highest - self.lowest + 1 - self.distinct


def _covered(offsets: Int64s, ranges: Iterable[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    """Which of the (sorted) `offsets` lie in one of the inclusive `ranges`."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    if not merged:
        return np.zeros(len(offsets), dtype=bool)
    lows = np.array([m[0] for m in merged], dtype=np.int64)
    highs = np.array([m[1] for m in merged], dtype=np.int64)
    at = np.searchsorted(lows, offsets, side="right") - 1
    return (at >= 0) & (offsets <= highs[np.maximum(at, 0)])


def plan_partition(
    topic: str,
    partition: int,
    spots: Spots,
    stored: Iterable[tuple[int, int]],
    max_bytes: int,
) -> PartitionPlan:
    """The plan for one topic-partition; `stored`: offset ranges of its files in the raw zone."""
    columns = spots.columns
    offsets, days, sizes = columns.offsets, columns.days, columns.lengths + 1  # + the newline
    order = np.argsort(offsets, kind="stable")  # stable: copies stay in the order read
    by_offset = offsets[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = by_offset[1:] != by_offset[:-1]
    # For every position in offset order, the position of its offset's first copy.
    first_index = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    kept = order[first]
    fresh_mask = ~_covered(offsets[kept], stored)
    fresh = kept[fresh_mask]
    return PartitionPlan(
        topic=topic,
        partition=partition,
        distinct=len(kept),
        repeats=order[~first],
        firsts_of_repeats=order[first_index[~first]],
        already_stored=int(len(kept) - len(fresh)),
        stored_positions=kept[~fresh_mask],
        files=list(_cut(fresh, offsets, days, sizes, max_bytes)),
        lowest=int(by_offset[0]),
        highest=int(by_offset[-1]),
    )


def _cut(
    fresh: Int64s, offsets: Int64s, days: Int64s, sizes: Int64s, max_bytes: int
) -> Iterable[PlannedFile]:
    """Files of consecutive offsets and one UTC day, each finished after the record that takes
    it to `max_bytes` or more (as the consumer rotates)."""
    if len(fresh) == 0:
        return
    offs, ds, ends = offsets[fresh], days[fresh], np.cumsum(sizes[fresh])
    breaks = np.flatnonzero((np.diff(offs) != 1) | (np.diff(ds) != 0)) + 1
    bounds = [0, *breaks.tolist(), len(fresh)]
    for begin, end in pairwise(bounds):
        at = begin
        while at < end:
            before = int(ends[at - 1]) if at else 0
            # The first record at which the file reaches max_bytes ends it.
            stop = int(np.searchsorted(ends[at:end], before + max_bytes, side="left")) + at + 1
            stop = min(stop, end)
            yield PlannedFile(
                day=int(ds[at]),
                first_offset=int(offs[at]),
                last_offset=int(offs[stop - 1]),
                records=fresh[at:stop],
            )
            at = stop
