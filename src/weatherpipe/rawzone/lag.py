"""What the raw zone still lacks of a topic: per partition, the records from where a consumer
would resume (after the highest stored offset; without a file, the group's committed offset)
up to the partition's end offset.

Offsets only bound it: the producer writes in transactions, and the marker that ends one takes
an offset of each partition it wrote to (the records of an aborted one take offsets too and
are never read). A partition whose end lies one offset after its last stored record holds no
record more. So the gaps that offsets show are read back (`confirmed`, `missing_records`):
what counts is whether a reader of committed records finds a record in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from weatherpipe.kafka.readback import OffsetSpan, committed_records
from weatherpipe.kafka.security import KafkaConnection
from weatherpipe.rawzone.recovery import highest_offsets


@dataclass(frozen=True)
class Gap:
    """Offsets `first` up to (not including) `end` of `partition` are not stored."""

    partition: int
    first: int
    end: int

    @property
    def records(self) -> int:
        """At most this many records (some offsets may be transaction markers)."""
        return self.end - self.first

    def describe(self, holder: str | None) -> str:
        """E.g. "partition 2: up to 500 records (offsets 1000-1499), held by host-1a2b-0 at
        127.0.0.1"."""
        held = f"held by {holder}" if holder else "held by no member"
        return (
            f"partition {self.partition}: up to {self.records:,} records "
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


def confirmed(kafka: KafkaConnection, topic: str, found: list[Gap], timeout: float) -> list[Gap]:
    """The gaps of `found` that hold a committed record, each from its first one: a gap of
    transaction markers only is no gap. Reads at most one record of each."""
    firsts = committed_records(
        kafka, topic, [OffsetSpan(g.partition, g.first, g.end) for g in found], timeout, limit=1
    )
    return [replace(g, first=f.first) for g, f in zip(found, firsts, strict=True) if f is not None]


def missing_records(
    kafka: KafkaConnection, raw_dir: Path, topic: str, ends: Mapping[int, int], timeout: float
) -> int:
    """How many committed records of `topic` below `ends` (partition -> end offset) lie beyond
    the raw zone's highest stored offset of their partition; read back, not subtracted."""
    stored = highest_offsets(raw_dir, topic)
    ranges = [OffsetSpan(p, stored.get(p, -1) + 1, end) for p, end in sorted(ends.items())]
    found = committed_records(kafka, topic, [r for r in ranges if r.first < r.end], timeout)
    return sum(f.count for f in found if f is not None)
