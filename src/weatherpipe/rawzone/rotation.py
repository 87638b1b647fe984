"""When a raw file is finished, and a count of why each one was.

A file is finished when the next record belongs to another UTC date, when it has passed
ROTATE_MB, when it is older than ROTATE_SECONDS (so data shows up at low traffic), and when
the process shuts down or loses the partition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class RotationReason(StrEnum):
    """Why a file was finished."""

    DATE = "date"
    SIZE = "size"
    AGE = "age"
    SHUTDOWN = "shutdown"
    REVOKE = "revoke"


@dataclass(frozen=True)
class RotationPolicy:
    """The size and age limits of one raw file.

    The sink checks size and date on every record, so it compares `size >= max_bytes` and the
    record's day with the file's day inline; the age is checked between batches (`expired`).
    """

    max_bytes: int
    max_age_seconds: float

    @classmethod
    def from_limits(cls, rotate_mb: float, rotate_seconds: float) -> RotationPolicy:
        """A policy from ROTATE_MB (MiB) and ROTATE_SECONDS."""
        if rotate_mb <= 0 or rotate_seconds <= 0:
            raise ValueError("rotate_mb and rotate_seconds must be positive")
        return cls(max(1, int(rotate_mb * 1024 * 1024)), rotate_seconds)

    def expired(self, opened_at: float, now: float) -> bool:
        """Whether a file opened at `opened_at` (monotonic seconds) is older than the limit."""
        return now - opened_at >= self.max_age_seconds


@dataclass
class RotationCounter:
    """How many files were finished for each reason."""

    counts: Counter[RotationReason] = field(default_factory=Counter)

    def add(self, reason: RotationReason) -> None:
        """Count one finished file."""
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        """Files finished in all."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """Every reason with its count (zero included), in a stable order."""
        return {reason.value: self.counts[reason] for reason in RotationReason}
