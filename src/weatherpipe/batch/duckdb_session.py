"""What the DuckDB engine's two reads (typed and exact) share: the in-memory database, the files
of a run, running a statement over many files with a per-file fallback, and the daily table
both produce."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

from weatherpipe.batch.duckdb_sql import literal
from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.results import COPY_ESCAPES, DailyTable
from weatherpipe.rawzone.listing import RawFile

# Sums are exact decimals (12 places: far below any instrument's resolution); numeric in
# PostgreSQL keeps them exact, so runs can be merged in any order with the same result.
SUM_TYPE = "DECIMAL(38, 12)"

File = TypeVar("File")

# DuckDB's buffers may take 80 % of the machine's memory by default: at 10M lines the typed
# read's table alone passed 500 MiB. Limited, the table spills to a temp folder of its own
# (by default DuckDB would put it in `.tmp` under the current folder), removed on close.
MEMORY_LIMIT = "192MB"

_database: duckdb.DuckDBPyConnection | None = None


@contextmanager
def session(threads: int | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own (temp tables vanish with it) to the process's in-memory DuckDB,
    opened on first use: opening one and loading its JSON reader takes a good part of a small
    incremental run."""
    global _database
    if _database is None:
        spill = Path(tempfile.gettempdir()) / f"weatherpipe-duckdb-{os.getpid()}"
        _database = duckdb.connect(
            ":memory:", config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill)}
        )
    db = _database.cursor()
    try:
        db.execute(f"SET threads = {int(threads)}" if threads else "RESET threads")
        db.execute("SET preserve_insertion_order = false")
        yield db
    finally:
        db.close()


@dataclass(frozen=True)
class Wanted:
    """The files of one aggregation (in the raw zone `base`), the offset ranges counted before
    it, and the connection both reads use."""

    db: duckdb.DuckDBPyConnection
    base: Path
    files: Sequence[RawFile]
    counted: Sequence[OffsetRange]

    def create_table(self) -> None:
        """Create table `wanted`: one row per file, with what its name says (`id` is its
        number in `files`), which both reads join their lines with."""
        self.db.execute(
            "CREATE TEMP TABLE wanted (id INTEGER, filename VARCHAR, rel VARCHAR,"
            " topic VARCHAR, part INTEGER, part_text VARCHAR, first BIGINT, last BIGINT)"
        )
        files, base = self.files, self.base
        # One statement with a list per column: executemany costs a round trip per row.
        self.db.execute(
            "INSERT INTO wanted SELECT unnest(?::INTEGER[]), unnest(?::VARCHAR[]),"
            " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::INTEGER[]),"
            " unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[])",
            [
                list(range(len(files))),
                [str(base / f.path) for f in files],
                [f.path for f in files],
                [f.topic for f in files],
                [f.partition for f in files],
                [str(f.partition) for f in files],
                [f.first_offset for f in files],
                [f.last_offset for f in files],
            ],
        )


def each_file(run: Callable[[list[File]], object], files: Sequence[File]) -> list[File]:
    """Run `run` (one DuckDB statement) on all `files` at once and, should DuckDB refuse, on
    each file alone; returns the files refused alone. One file DuckDB cannot read (a line of
    another shape, bytes that are not UTF-8) fails the whole statement, which then changes
    nothing, so the others are still read in one go each."""
    if not files:
        return []
    try:
        run(list(files))
        return []
    except duckdb.Error:
        pass
    refused = []
    for f in files:
        try:
            run([f])
        except duckdb.Error:
            refused.append(f)
    return refused


def daily_table(db: duckdb.DuckDBPyConnection, rows: str) -> DailyTable:
    """The daily rows `rows` selects (location, day, observations, the four sums, minimum and
    maximum temperature) as PostgreSQL COPY text, in no particular order. DuckDB renders a
    DOUBLE as its shortest round-trip text and a DECIMAL exactly, so nothing is rounded."""
    location = "location"  # the only text column
    for raw, escaped in COPY_ESCAPES:
        location = f"replace({location}, {literal(raw)}, {literal(escaped)})"
    found = db.execute(
        f"""SELECT count(*), string_agg(concat_ws(chr(9), {location}, day, c3, c4, c5, c6, c7,
                                                  c8, c9), chr(10))
            FROM (SELECT c1 AS location, c2 AS day, c3, c4, c5, c6, c7, c8, c9
                  FROM ({rows}) AS r(c1, c2, c3, c4, c5, c6, c7, c8, c9))"""
    ).fetchone()
    assert found is not None
    count, text = found
    return DailyTable((text or "") + ("\n" if count else ""), int(count))
