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
from weatherpipe.batch.duckdb_sql import Renderer, literal
from weatherpipe.batch.engine import DailyPart, EngineResult, Rejected
from weatherpipe.batch.rawfiles import OffsetRange, RawFile, merged_ranges
from weatherpipe.errors import TerminalError
from weatherpipe.events import Reason

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
            slow = self._fast(db, base, files)
            db.execute(
                "CREATE TEMP TABLE slow_files AS SELECT DISTINCT rel FROM checked"
                " WHERE reason IS NOT NULL"
            )
            # Rejected records need their line numbers: their files go the slow path too.
            db.execute("DELETE FROM checked WHERE rel IN (SELECT rel FROM slow_files)")
            slow += [str(row[0]) for row in db.execute("SELECT rel FROM slow_files").fetchall()]
            if slow:
                self._slow(db, base, slow)
            self._dedupe(db, merged_ranges(list(counted)))
            return self._result(db)

    def _slow(self, db: duckdb.DuckDBPyConnection, base: Path, slow: list[str]) -> None:
        """Add the line-numbered reading of `slow` files to `checked`. A file that is not UTF-8
        throughout (edited by hand) is split here instead: its undecodable lines are rejected
        as not_utf8, the others checked as usual."""
        try:
            db.execute(
                "INSERT INTO checked " + self._checked_sql(slow=True),
                [[str(base / rel) for rel in slow]],
            )
            return
        except duckdb.Error:
            pass
        db.execute("CREATE TEMP TABLE py_lines (rel VARCHAR, lineno BIGINT, line VARCHAR)")
        readable = []
        for rel in slow:
            try:
                db.execute(
                    "INSERT INTO checked " + self._checked_sql(slow=True), [[str(base / rel)]]
                )
                continue
            except duckdb.Error:
                pass
            try:
                data = (base / rel).read_bytes()
            except OSError as exc:
                raise EngineError(
                    f"Cannot read raw file {base / rel}: {exc}. Fix its permissions (the batch "
                    "only reads) and run again; nothing was written."
                ) from exc
            for number, raw in enumerate(data.split(b"\n"), start=1):
                try:
                    readable.append((rel, number, raw.decode("utf-8")))
                except UnicodeDecodeError:
                    db.execute(
                        "INSERT INTO checked (rel, lineno, line, reason) VALUES (?, ?, ?, ?)",
                        [rel, number, raw.decode("utf-8", "backslashreplace"), Reason.NOT_UTF8],
                    )
        if readable:
            db.executemany("INSERT INTO py_lines VALUES (?, ?, ?)", readable)
            db.execute("INSERT INTO checked " + self._checked_sql(slow=True, from_table=True))

    def _fast(
        self, db: duckdb.DuckDBPyConnection, base: Path, files: Sequence[RawFile]
    ) -> list[str]:
        """Create table `checked` from the fast path over `files`; returns the files it could
        not read (a line that is not a JSON object of the expected shape), for the slow path."""
        db.execute(
            "CREATE TEMP TABLE checked AS " + self._checked_sql(slow=False) + " LIMIT 0",
            [[str(base / files[0].path)]],
        )
        try:
            db.execute(
                "INSERT INTO checked " + self._checked_sql(slow=False),
                [[str(base / f.path) for f in files]],
            )
            return []
        except duckdb.Error:
            pass
        # Some file has a line of another shape: find which, one file at a time.
        slow = []
        for f in files:
            try:
                db.execute(
                    "INSERT INTO checked " + self._checked_sql(slow=False), [[str(base / f.path)]]
                )
            except duckdb.Error:
                slow.append(f.path)
        return slow

    def _checked_sql(self, *, slow: bool, from_table: bool = False) -> str:
        q = self.sql
        topic, part, off = q.columns(r.TOPIC), q.columns(r.PARTITION), q.columns(r.OFFSET)
        measures = ", ".join(f"{q.number(p)} AS m_{name}" for name, p in r.MEASURE_PATHS.items())
        if slow:
            lines = (
                "lines AS (SELECT rel, line, lineno FROM py_lines)"
                if from_table
                else """texts AS (
                SELECT w.rel, string_split(t.content, chr(10)) AS ls
                FROM read_text(?) t JOIN wanted w USING (filename)
            ), lines AS (
                SELECT rel, unnest(ls) AS line, generate_subscripts(ls, 1) AS lineno FROM texts
            )"""
            )
            head = f"""
            WITH {lines}, parsed AS (
                SELECT rel, lineno, line, j, json_type(j) AS jt
                FROM (SELECT *, CASE WHEN json_valid(line) THEN line::JSON END AS j FROM lines)
                WHERE line <> ''
            ), listed AS (
                SELECT rel, lineno, line, jt, {q.fragments()} FROM parsed
            ), fragments AS (
                SELECT rel, lineno, line, jt, {q.unpacked()} FROM listed
            )"""
        else:
            columns = ", ".join(
                f"{literal(k)}: {literal(v)}" for k, v in q.read_json_columns().items()
            )
            head = f"""
            WITH fragments AS (
                SELECT w.rel, NULL::BIGINT AS lineno, NULL::VARCHAR AS line, 'OBJECT' AS jt,
                       {q.read_json_fragments("x")}
                FROM read_json(?, format = 'newline_delimited', records = true,
                               columns = {{{columns}}}, filename = true) x
                JOIN wanted w USING (filename)
            )"""
        return f"""{head}, typed AS (
            SELECT *, {q.typed()} FROM fragments
        ), numbered AS (
            SELECT *, {q.numbers()} FROM typed
        ), judged AS (
            SELECT *, {q.rule_number()} AS rule_no FROM numbered
        )
        SELECT rel, lineno, line,
               {q.reason("rule_no")} AS reason,
               {q.field("rule_no")} AS field,
               CASE WHEN {topic.type} = 'VARCHAR' THEN {topic.text} END AS topic,
               TRY_CAST(CASE WHEN {part.type} = 'NUMBER' THEN {part.text} END AS INTEGER) AS part,
               TRY_CAST(CASE WHEN {off.type} = 'NUMBER' THEN {off.text} END AS BIGINT) AS off,
               {q.location()} AS location,
               {q.day()} AS day,
               {measures}
        FROM judged
        """

    @staticmethod
    def _dedupe(db: duckdb.DuckDBPyConnection, counted: Sequence[OffsetRange]) -> None:
        """Create `firsts`: each record once, the first copy by (file, line), none of those
        counted before. Copies are rare, so the (sorting) window only sees offsets that occur
        twice, and without any, `firsts` is a view on `checked`. Lines without Kafka coordinates
        cannot repeat and are kept. The ranges counted before are few after joining (about one
        per partition), so they are inlined as a filter."""
        has_key = "topic IS NOT NULL AND part IS NOT NULL AND off IS NOT NULL"
        old = " OR ".join(
            f"(topic = {literal(x.topic)} AND part = {x.partition} "
            f"AND off BETWEEN {x.first} AND {x.last})"
            for x in counted
        )
        fresh = "SELECT * FROM checked" + (f" WHERE NOT coalesce({old}, false)" if old else "")
        db.execute(
            f"""CREATE TEMP TABLE repeated AS SELECT topic, part, off FROM ({fresh})
                WHERE {has_key} GROUP BY topic, part, off HAVING count(*) > 1"""
        )
        some = db.execute("SELECT count(*) FROM repeated").fetchone()
        if not some or some[0] == 0:
            db.execute(f"CREATE TEMP VIEW firsts AS {fresh}")
            return
        db.execute(
            f"""CREATE TEMP TABLE firsts AS
            WITH fresh AS ({fresh})
            SELECT * FROM fresh f ANTI JOIN repeated d
                ON d.topic = f.topic AND d.part = f.part AND d.off = f.off
            UNION ALL
            SELECT * EXCLUDE (rn) FROM (
                SELECT f.*, row_number() OVER (
                    PARTITION BY f.topic, f.part, f.off ORDER BY f.rel, f.lineno) AS rn
                FROM fresh f SEMI JOIN repeated d
                    ON d.topic = f.topic AND d.part = f.part AND d.off = f.off
            ) WHERE rn = 1"""
        )

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
