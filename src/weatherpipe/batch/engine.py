"""The seam between the batch run and the engine that reads and aggregates raw files.

An engine gets finished raw files and the offset ranges already counted, applies the shared
rules (`weatherpipe.rules`), counts each (topic, partition, offset) once, and returns
per (location, day) partial sums plus the rejected records (`results`). It never touches
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.results import EngineResult
from weatherpipe.rawzone.listing import RawFile


class Engine(Protocol):
    """Reads raw files and aggregates them; implementations: `DuckDBEngine`, `SparkEngine`."""

    name: str

    def aggregate(
        self, raw_dir: Path, files: Sequence[RawFile], counted: Sequence[OffsetRange]
    ) -> EngineResult:
        """Validate and aggregate `files` (paths relative to `raw_dir`), skipping records whose
        offsets lie in `counted` and counting every other (topic, partition, offset) once."""
        ...
