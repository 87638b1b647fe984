"""The seam between the batch run and the engine that reads and aggregates raw files.

An engine gets finished raw files and the offset ranges already counted, applies the shared
rules (`weatherpipe.batch.rules`), counts each (topic, partition, offset) once, and returns
per (location, day) partial sums plus the rejected records. It never touches PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

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

    daily: list[DailyPart]
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
