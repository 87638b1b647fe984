"""What an engine returns: the daily partial sums, the rejected records and the counts of a run,
and the error it raises when it cannot read the raw files. Shared by every engine, the merge and
the run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final, overload

from weatherpipe.errors import TerminalError

SUMMED: Final = ("temperature_c", "humidity_pct", "wind_speed_kmh", "precipitation_mm")
"""The measures an engine sums per location and day, in `DailyPart`'s order of sums."""


class EngineError(TerminalError):
    """The engine could not read the raw files."""


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
    typed_files: int = 0
    """Files the typed read took: aggregated without checking each rule line by line."""
