"""The DuckDB engine: reads raw files in parallel, validates with the shared rules, counts each
Kafka record once and aggregates per (location, day), all inside an in-memory DuckDB.

Lines are read with `read_text` and split here (rather than `read_json`) so a corrupt line is
still a row with its file and line number and can be quarantined instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from weatherpipe.batch import rules as r
from weatherpipe.batch.duckdb_sql import Renderer
from weatherpipe.batch.engine import DailyPart, EngineResult, Rejected
from weatherpipe.batch.rawfiles import OffsetRange, RawFile, merged_ranges
from weatherpipe.errors import TerminalError

# Sums are exact decimals (12 places: far below any instrument's resolution); numeric in
# PostgreSQL keeps them exact, so runs can be merged in any order with the same result.
SUM_TYPE = "DECIMAL(38, 12)"


class EngineError(TerminalError):
    """The engine could not read the raw files."""


class DuckDBEngine:
    """Aggregates raw files with an in-memory DuckDB."""

    name = "duckdb"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self.sql = Renderer()

    def aggregate(
        self, raw_dir: Path, files: Sequence[RawFile], counted: Sequence[OffsetRange]
    ) -> EngineResult:
        """See `Engine.aggregate`."""
        if not files:
            return EngineResult(daily=[], rejected=[], lines=0, duplicates=0)
        with duckdb.connect(":memory:") as db:
            if self.threads:
                db.execute(f"SET threads = {int(self.threads)}")
            db.execute("SET preserve_insertion_order = false")
            base = raw_dir.resolve()
            db.execute("CREATE TEMP TABLE wanted (filename VARCHAR, rel VARCHAR)")
            db.executemany(
                "INSERT INTO wanted VALUES (?, ?)", [(str(base / f.path), f.path) for f in files]
            )
            db.execute(
                "CREATE TEMP TABLE counted (topic VARCHAR, part INTEGER, lo BIGINT, hi BIGINT)"
            )
            ranges = merged_ranges(list(counted))
            if ranges:
                db.executemany(
                    "INSERT INTO counted VALUES (?, ?, ?, ?)",
                    [(x.topic, x.partition, x.first, x.last) for x in ranges],
                )
            try:
                db.execute(self._checked_sql(), [[str(base / f.path) for f in files]])
            except duckdb.Error as exc:
                raise EngineError(
                    f"DuckDB could not read the raw files under {raw_dir}: {exc}. Check that "
                    "the files are readable (and UTF-8 text); nothing was written."
                ) from exc
            db.execute(self._first_sql())
            return self._result(db)

    def _checked_sql(self) -> str:
        q = self.sql
        topic, part, off = q.columns(r.TOPIC), q.columns(r.PARTITION), q.columns(r.OFFSET)
        measures = ", ".join(f"{q.number(p)} AS m_{name}" for name, p in r.MEASURE_PATHS.items())
        return f"""
        CREATE TEMP TABLE checked AS
        WITH texts AS (
            SELECT w.rel, string_split(t.content, chr(10)) AS ls
            FROM read_text(?) t JOIN wanted w USING (filename)
        ), lines AS (
            SELECT rel, unnest(ls) AS line, generate_subscripts(ls, 1) AS lineno FROM texts
        ), parsed AS (
            SELECT rel, lineno, line, j, json_type(j) AS jt
            FROM (SELECT *, CASE WHEN json_valid(line) THEN line::JSON END AS j FROM lines)
            WHERE line <> ''
        ), fragments AS (
            SELECT rel, lineno, line, jt, {q.fragments()} FROM parsed
        ), unpacked AS (
            SELECT rel, lineno, line, jt, {q.unpacked()} FROM fragments
        ), numbered AS (
            SELECT *, {q.numbers()} FROM unpacked
        )
        SELECT rel, lineno, line,
               {q.reason()} AS reason,
               {q.field()} AS field,
               CASE WHEN {topic.type} = 'VARCHAR' THEN {topic.text} END AS topic,
               CASE WHEN {part.type} IN ('BIGINT', 'UBIGINT')
                    THEN TRY_CAST({part.text} AS INTEGER) END AS part,
               CASE WHEN {off.type} IN ('BIGINT', 'UBIGINT')
                    THEN TRY_CAST({off.text} AS BIGINT) END AS off,
               {q.location()} AS location,
               {q.day()} AS day,
               {measures}
        FROM numbered
        """

    @staticmethod
    def _first_sql() -> str:
        # A record counts once: the first copy by (file, line) among those not counted before;
        # lines without Kafka coordinates cannot repeat and are kept as they are.
        return """
        CREATE TEMP TABLE firsts AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT c.*, row_number() OVER (
                PARTITION BY c.topic, c.part, c.off ORDER BY c.rel, c.lineno) AS rn
            FROM checked c
            WHERE c.topic IS NOT NULL AND c.part IS NOT NULL AND c.off IS NOT NULL
              AND NOT EXISTS (
                SELECT 1 FROM counted k
                WHERE k.topic = c.topic AND k.part = c.part AND c.off BETWEEN k.lo AND k.hi)
        ) WHERE rn = 1
        UNION ALL
        SELECT * FROM checked WHERE topic IS NULL OR part IS NULL OR off IS NULL
        """

    @staticmethod
    def _result(db: duckdb.DuckDBPyConnection) -> EngineResult:
        sums = ", ".join(
            f"sum(m_{name}::{SUM_TYPE})"
            for name in ("temperature_c", "humidity_pct", "wind_speed_kmh", "precipitation_mm")
        )
        daily = [
            DailyPart(*row)
            for row in db.execute(
                f"""SELECT location, day, count(*), {sums},
                           min(m_temperature_c), max(m_temperature_c)
                    FROM firsts WHERE reason IS NULL GROUP BY location, day
                    ORDER BY location, day"""
            ).fetchall()
        ]
        rejected = [
            Rejected(*row)
            for row in db.execute(
                """SELECT rel, lineno, topic, part, off, reason, field, line
                   FROM firsts WHERE reason IS NOT NULL ORDER BY rel, lineno"""
            ).fetchall()
        ]
        per_file = dict(db.execute("SELECT rel, count(*) FROM checked GROUP BY rel").fetchall())
        lines = sum(per_file.values())
        kept = db.execute("SELECT count(*) FROM firsts").fetchone()
        return EngineResult(
            daily=daily,
            rejected=rejected,
            lines=lines,
            duplicates=lines - (kept[0] if kept else 0),
            lines_per_file={str(k): int(v) for k, v in per_file.items()},
        )
