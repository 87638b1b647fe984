"""What the raw zone still lacks of a topic: per partition, the records from where a consumer
would resume (after the highest stored offset; without a file, the group's committed offset)
up to the partition's end offset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Gap:
    """Offsets `first` up to (not including) `end` of `partition` are not stored."""

    partition: int
    first: int
    end: int

    @property
    def records(self) -> int:
        return self.end - self.first

    def describe(self, holder: str | None) -> str:
        """E.g. "partition 2: 500 records (offsets 1000-1499), held by host-1a2b-0 at
        127.0.0.1"."""
        held = f"held by {holder}" if holder else "held by no member"
        return (
            f"partition {self.partition}: {self.records:,} records "
            f"(offsets {self.first}-{self.end - 1}), {held}"
        )


def gaps(
    watermarks: Mapping[int, tuple[int, int]],
    stored: Mapping[int, int],
    committed: Mapping[int, int],
) -> list[Gap]:
    """The records the raw zone lacks, by partition.

    `watermarks`: `{partition: (first offset, end offset)}` of the topic; `stored`: the highest
    offset in the files of each partition that has one; `committed`: the group's offset of
    partitions without a file. Records the topic no longer holds (below its first offset)
    cannot be stored and do not count.
    """
    found = []
    for partition, (low, high) in sorted(watermarks.items()):
        resume = stored[partition] + 1 if partition in stored else committed.get(partition, low)
        start = max(resume, low)
        if high > start:
            found.append(Gap(partition, start, high))
    return found
