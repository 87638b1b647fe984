"""The seam between the batch run and the engine that reads and aggregates raw files.

An engine gets finished raw files and the offset ranges already counted, applies the shared
rules (`weatherpipe.rules`), counts each (topic, partition, offset) once, and returns
per (location, day) partial sums plus the rejected records. It never touches PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol, overload

from weatherpipe.batch.rawfiles import OffsetRange, RawFile


@dataclass(frozen=True)
class DailyPart:
    """Partial sums of the valid records of one location and day."""

    location: str
    day: date
    observations: int
    temperature_sum: Decimal
    humidity_sum: Decimal
    wind_speed_sum: Decimal
    precipitation_sum: Decimal
    temperature_min: float
    temperature_max: float


COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
"""What PostgreSQL's COPY text format escapes in a value: (character, its escape)."""
_UNESCAPE = {escaped: raw for raw, escaped in COPY_ESCAPES}
_ESCAPED = re.compile("|".join(re.escape(escaped) for escaped in _UNESCAPE))


class DailyTable(Sequence[DailyPart]):
    """Daily rows as PostgreSQL COPY text (tab-separated columns in `DailyPart`'s order, one
    row a line, any order), as an engine that aggregates in SQL renders them: they go to
    PostgreSQL as they are, and become `DailyPart`s, ordered by location and day, only when
    someone reads them (building a Python object per value cost ~60 ms for 3,650 rows, a good
    part of a small incremental run)."""

    def __init__(self, text: str, rows: int) -> None:
        self.text = text
        self.rows = rows
        self._parts: list[DailyPart] | None = None

    def copy_text(self) -> bytes:
        return self.text.encode()

    def parts(self) -> list[DailyPart]:
        if self._parts is None:
            # Only "\n" ends a row: a location may hold other line separators of Unicode.
            parts = [_parse(line) for line in self.text.split("\n")[: self.rows]]
            self._parts = sorted(parts, key=lambda p: (p.location, p.day))
        return self._parts

    def __len__(self) -> int:
        return self.rows

    @overload
    def __getitem__(self, index: int) -> DailyPart: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[DailyPart]: ...
    def __getitem__(self, index: int | slice) -> DailyPart | Sequence[DailyPart]:
        return self.parts()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self.parts() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DailyTable({self.parts()!r})"


def _parse(line: str) -> DailyPart:
    location, day, n, t, h, w, p, lo, hi = line.split("\t")
    return DailyPart(
        _ESCAPED.sub(lambda m: _UNESCAPE[m[0]], location),
        date.fromisoformat(day),
        int(n),
        Decimal(t),
        Decimal(h),
        Decimal(w),
        Decimal(p),
        float(lo),
        float(hi),
    )


@dataclass(frozen=True)
class Rejected:
    """A quarantined record: where it is, its Kafka coordinates if readable, and why."""

    file: str
    line: int
    topic: str | None
    partition: int | None
    offset: int | None
    reason: str
    field: str | None
    raw: str


@dataclass
class EngineResult:
    """What an engine found in a set of files."""

    daily: Sequence[DailyPart]
    """A list, or a `DailyTable` (PostgreSQL COPY text) from an engine that renders one."""
    rejected: list[Rejected]
    lines: int
    duplicates: int
    lines_per_file: dict[str, int] = field(default_factory=dict)
    fast_files: int = 0
    """Files an engine could aggregate without checking each rule line by line."""


class Engine(Protocol):
    """Reads raw files and aggregates them; implementations: duckdb (Spark later)."""

    name: str

    def aggregate(
        self, raw_dir: Path, files: Sequence[RawFile], counted: Sequence[OffsetRange]
    ) -> EngineResult:
        """Validate and aggregate `files` (paths relative to `raw_dir`), skipping records whose
        offsets lie in `counted` and counting every other (topic, partition, offset) once."""
        ...
