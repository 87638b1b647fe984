"""The typed read of the DuckDB engine: files it can vouch for line by line are aggregated
straight into `typed_daily`, at close to the speed of a bare `read_json ... GROUP BY`.

What it vouches for, and why that is enough, is written in `duckdb_typed` (the SQL). Here the
files are chosen, read, judged per file and aggregated; a file it cannot vouch for is left to
the exact read (`duckdb_exact_read`), which names the rule each bad line breaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from weatherpipe import rules as r
from weatherpipe.batch.duckdb_session import SUM_TYPE, Wanted, daily_table, each_file
from weatherpipe.batch.duckdb_sql import literal
from weatherpipe.batch.duckdb_typed import BOOLEAN_WORDS, TypedRenderer
from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.results import SUMMED, EngineResult
from weatherpipe.rawzone.listing import RawFile

# A file's offsets are checked for uniqueness with a bitmap over its name's range; a range
# wider than this (a compacted topic) is left to the exact read.
MAX_OFFSET_SPAN = 1 << 24


class TypedRead:
    """Reads the files it can vouch for into the table `typed_daily`."""

    def __init__(self, rules: tuple[r.Rule, ...] = r.RULES) -> None:
        self.sql = TypedRenderer(rules)

    @staticmethod
    def create_daily(db: duckdb.DuckDBPyConnection) -> None:
        """Create the empty table `typed_daily` (the exact read's result adds it in)."""
        db.execute(
            "CREATE TEMP TABLE typed_daily (location VARCHAR, day DATE, n BIGINT, "
            + ", ".join(f"sum_{m} {SUM_TYPE}" for m in SUMMED)
            + ", min_t DOUBLE, max_t DOUBLE)"
        )

    def read(self, wanted: Wanted) -> dict[int, int]:
        """Aggregate the files this read can vouch for into `typed_daily`; returns their
        numbers in `wanted.files` (the `id` of table `wanted`) with their line counts."""
        db, base = wanted.db, wanted.base
        candidates = [
            f
            for f in _alone(wanted.files, wanted.counted)
            if f.last_offset - f.first_offset < MAX_OFFSET_SPAN
            and self.sql.plain_text(f.topic)  # compared as text with each line's topic
        ]
        candidates = self._lines(db, base, _without_words(db, base, candidates))
        if not candidates:
            return {}
        span = max(f.last_offset - f.first_offset + 1 for f in candidates)
        vouched = "t.ok AND t.off BETWEEN w.first AND w.last"
        verdicts = db.execute(
            f"""SELECT t.id, count(*) AS lines,
                       count(*) FILTER (WHERE {vouched}) AS vouched,
                       bit_count(bitstring_agg(
                           CASE WHEN {vouched} THEN t.off - w.first END, 0, {span - 1}))
                           AS distinct_offsets
                FROM typed_lines t JOIN wanted w USING (id) GROUP BY t.id"""
        ).fetchall()
        typed = {n: lines for n, lines, ok, distinct in verdicts if lines == ok == distinct}
        if not typed:
            return {}
        everything = len(typed) == len(verdicts)
        self._daily(db, None if everything else list(typed))
        # The location is a key: its rules are checked on its few distinct values (the daily
        # rows), and files holding one that breaks them are taken back out.
        db.execute(
            "CREATE TEMP TABLE bad_keys AS SELECT DISTINCT location FROM typed_daily EXCEPT "
            + self.sql.key_check_sql("typed_daily")
        )
        if db.execute("SELECT count(*) FROM bad_keys").fetchall()[0][0]:
            bad = db.execute(
                """SELECT DISTINCT t.id FROM typed_lines t SEMI JOIN bad_keys b
                   ON t.location IS NOT DISTINCT FROM b.location"""
            ).fetchall()
            for (n,) in bad:
                typed.pop(n, None)
            db.execute("DELETE FROM typed_daily")
            self._daily(db, list(typed))
        return typed

    @staticmethod
    def result(db: duckdb.DuckDBPyConnection, lines: dict[str, int]) -> EngineResult:
        """The result when every file took the typed read: no rejects, no copies."""
        return EngineResult(
            daily=daily_table(db, "SELECT * FROM typed_daily"),
            rejected=[],
            lines=sum(lines.values()),
            duplicates=0,
            lines_per_file=lines,
            typed_files=len(lines),
        )

    @staticmethod
    def _daily(db: duckdb.DuckDBPyConnection, ids: list[int] | None) -> None:
        """Fill `typed_daily` from the lines of files `ids` in `typed_lines` (None: all)."""
        if ids is not None:
            db.execute("CREATE OR REPLACE TEMP TABLE typed_ids (id INTEGER)")
            db.execute("INSERT INTO typed_ids SELECT unnest(?::INTEGER[])", [ids])
        only = "" if ids is None else " SEMI JOIN typed_ids USING (id)"
        sums = ", ".join(f"sum(m_{m}::{SUM_TYPE})" for m in SUMMED)
        db.execute(
            f"""INSERT INTO typed_daily
                SELECT location, day, count(*), {sums}, min(m_temperature_c), max(m_temperature_c)
                FROM typed_lines{only} GROUP BY location, day"""
        )

    def _lines(
        self, db: duckdb.DuckDBPyConnection, base: Path, files: list[RawFile]
    ) -> list[RawFile]:
        """Table `typed_lines` from the typed read of `files`; returns the files it could
        read (read_json fails on a line of another shape: a value that is not an object)."""
        sql = self.sql.lines_sql()
        into = ["CREATE TEMP TABLE typed_lines AS "]

        def read(part: list[RawFile]) -> None:
            db.execute(into[0] + sql, [[str(base / f.path) for f in part]])
            into[0] = "INSERT INTO typed_lines "  # the table exists from the first success on

        refused = {f.path for f in each_file(read, files)}
        return [f for f in files if f.path not in refused]


def _without_words(
    db: duckdb.DuckDBPyConnection, base: Path, files: list[RawFile]
) -> list[RawFile]:
    """`files` without those that hold a boolean word anywhere (read as DOUBLE a JSON boolean
    would pass for 1 or 0) and those that are not UTF-8 throughout (read_text fails on them):
    both are for the exact read."""
    sql = "SELECT filename FROM read_text(?) WHERE " + " OR ".join(
        f"contains(content, {literal(w)})" for w in BOOLEAN_WORDS
    )
    worded: set[str] = set()

    def scan(part: list[RawFile]) -> None:
        found = db.execute(sql, [[str(base / f.path) for f in part]]).fetchall()
        worded.update(str(row[0]) for row in found)

    refused = {f.path for f in each_file(scan, files)}
    return [f for f in files if f.path not in refused and str(base / f.path) not in worded]


def _alone(files: Sequence[RawFile], counted: Sequence[OffsetRange]) -> list[RawFile]:
    """The files whose offset range overlaps no other file's and nothing counted before: only
    these can be read typed (their records cannot have a second copy elsewhere)."""
    ranges = sorted(
        [(f.topic, f.partition, f.first_offset, f.last_offset, f.path) for f in files]
        + [(c.topic, c.partition, c.first, c.last, "") for c in counted]
    )
    shared: set[str] = set()
    reach: dict[tuple[str, int], tuple[int, str]] = {}  # furthest last offset so far, and whose
    for topic, partition, first, last, path in ranges:
        key = (topic, partition)
        seen = reach.get(key)
        if seen is not None and first <= seen[0]:
            shared.update(p for p in (path, seen[1]) if p)
        if seen is None or last > seen[0]:
            reach[key] = (last, path)
    return [f for f in files if f.path not in shared]
