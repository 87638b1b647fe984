"""The exact read of the DuckDB engine: every rule evaluated on every line (`duckdb_sql`), so a
rejected record is quarantined with its file, line number and the rule it breaks.

A file is read first as whole JSON objects (`read_json`, one vectorised parse); a file with a
line of another shape, or with a rejected line (which needs its line number), is then read as
numbered lines (`read_text`, split here), where any line, even corrupt, is a row of its own.
Then each Kafka record is counted once (`firsts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from weatherpipe import rules as r
from weatherpipe.batch.duckdb_session import SUM_TYPE, Wanted, daily_table, each_file
from weatherpipe.batch.duckdb_sql import Renderer, columns_literal, literal
from weatherpipe.batch.offset_ranges import OffsetRange, merged_ranges
from weatherpipe.batch.results import SUMMED, EngineError, EngineResult, Rejected
from weatherpipe.events import Reason
from weatherpipe.rawzone.listing import RawFile


class ExactRead:
    """Reads files rule by rule into the table `checked`, and each record once into `firsts`."""

    def __init__(self, rules: tuple[r.Rule, ...] = r.RULES) -> None:
        self.sql = Renderer(rules)

    def read(self, wanted: Wanted, files: Sequence[RawFile]) -> None:
        """Validate `files` (some of `wanted.files`, maybe none) rule by rule into `checked`
        and count each record once into `firsts`."""
        db, base = wanted.db, wanted.base
        by_line = self._objects(db, base, files, sample=wanted.files[0])
        db.execute(
            "CREATE TEMP TABLE rejecting_files AS SELECT DISTINCT rel FROM checked"
            " WHERE reason IS NOT NULL"
        )
        # Rejected records need their line numbers: their files are read as lines too.
        db.execute("DELETE FROM checked WHERE rel IN (SELECT rel FROM rejecting_files)")
        by_line += [str(row[0]) for row in db.execute("SELECT rel FROM rejecting_files").fetchall()]
        if by_line:
            self._lines(db, base, by_line)
        _dedupe(db, merged_ranges(list(wanted.counted)))

    def _objects(
        self,
        db: duckdb.DuckDBPyConnection,
        base: Path,
        files: Sequence[RawFile],
        sample: RawFile,
    ) -> list[str]:
        """Create table `checked` (`sample`: any raw file, for its shape) from `files` read as
        whole JSON objects; returns the files read_json refused (a line that is not a JSON
        object of the expected shape)."""
        sql = self._checked_sql(by_line=False)
        db.execute("CREATE TEMP TABLE checked AS " + sql + " LIMIT 0", [[str(base / sample.path)]])
        refused = each_file(
            lambda part: db.execute(
                "INSERT INTO checked " + sql, [[str(base / f.path) for f in part]]
            ),
            files,
        )
        return [f.path for f in refused]

    def _lines(self, db: duckdb.DuckDBPyConnection, base: Path, rels: list[str]) -> None:
        """Add `rels` read as numbered lines to `checked`. A file that is not UTF-8 throughout
        (edited by hand) is split here instead: its undecodable lines are rejected as not_utf8,
        the others checked as usual."""
        sql = "INSERT INTO checked " + self._checked_sql(by_line=True)
        refused = each_file(lambda part: db.execute(sql, [[str(base / rel) for rel in part]]), rels)
        if not refused:
            return
        db.execute("CREATE TEMP TABLE py_lines (rel VARCHAR, lineno BIGINT, line VARCHAR)")
        readable = []
        for rel in refused:
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
            db.execute("INSERT INTO checked " + self._checked_sql(by_line=True, from_table=True))

    def _checked_sql(self, *, by_line: bool, from_table: bool = False) -> str:
        """The rows of `checked` from the files `?` (`wanted` rows), read as whole JSON objects
        or `by_line`; `from_table`: from the lines in `py_lines` instead."""
        q = self.sql
        topic, part, off = q.columns(r.TOPIC), q.columns(r.PARTITION), q.columns(r.OFFSET)
        measures = ", ".join(f"{q.number(p)} AS m_{name}" for name, p in r.MEASURE_PATHS.items())
        if by_line:
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
            columns = columns_literal(q.read_json_columns())
            head = f"""
            WITH fragments AS (
                SELECT w.rel, NULL::BIGINT AS lineno, NULL::VARCHAR AS line, 'OBJECT' AS jt,
                       {q.read_json_fragments("x")}
                FROM read_json(?, format = 'newline_delimited', records = true,
                               columns = {columns}, filename = true) x
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
    def result(db: duckdb.DuckDBPyConnection) -> EngineResult:
        """The result of the exact read's `firsts` together with the typed read's files
        (`typed_daily`, `typed_files`)."""
        sums = ", ".join(f"sum(m_{name}::{SUM_TYPE}) AS sum_{name}" for name in SUMMED)
        resums = ", ".join(f"sum(sum_{name})" for name in SUMMED)
        daily = daily_table(
            db,
            f"""WITH parts AS (
                        SELECT location, day, count(*) AS n, {sums},
                               min(m_temperature_c) AS min_t, max(m_temperature_c) AS max_t
                        FROM firsts WHERE reason IS NULL GROUP BY location, day
                        UNION ALL BY NAME
                        SELECT * FROM typed_daily
                    )
                    SELECT location, day, sum(n)::BIGINT, {resums}, min(min_t), max(max_t)
                    FROM parts GROUP BY location, day""",
        )
        rejected = [
            Rejected(*row)
            for row in db.execute(
                """SELECT rel, lineno, topic, part, off, reason, field, line
                   FROM firsts WHERE reason IS NOT NULL ORDER BY rel, lineno"""
            ).fetchall()
        ]
        per_file = dict(
            db.execute(
                "SELECT rel, count(*) FROM checked GROUP BY rel"
                " UNION ALL SELECT rel, lines FROM typed_files"
            ).fetchall()
        )
        # Typed files hold no copies; every copy is among the exact read's lines.
        exact = db.execute("SELECT count(*) FROM checked").fetchone()
        kept = db.execute("SELECT count(*) FROM firsts").fetchone()
        return EngineResult(
            daily=daily,
            rejected=rejected,
            lines=sum(per_file.values()),
            duplicates=(exact[0] if exact else 0) - (kept[0] if kept else 0),
            lines_per_file={str(k): int(v) for k, v in per_file.items()},
        )


def _dedupe(db: duckdb.DuckDBPyConnection, counted: Sequence[OffsetRange]) -> None:
    """Create `firsts`: each record once, the first copy by (file, line), none of those counted
    before. Copies are rare, so the (sorting) window only sees offsets that occur twice, and
    without any, `firsts` is a view on `checked`. Lines without Kafka coordinates cannot repeat
    and are kept. The ranges counted before are few after joining (about one per partition), so
    they are inlined as a filter."""
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
