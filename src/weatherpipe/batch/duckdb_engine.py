"""The DuckDB engine: reads raw files in parallel, validates with the shared rules, counts each
Kafka record once and aggregates per (location, day), all inside an in-memory DuckDB.

Lines are read with `read_text` and split here (rather than `read_json`) so a corrupt line is
still a row with its file and line number and can be quarantined instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from weatherpipe.batch import rules as r
from weatherpipe.batch.duckdb_sql import Renderer, columns_literal, literal
from weatherpipe.batch.duckdb_typed import BOOLEAN_WORDS, TypedRenderer
from weatherpipe.batch.engine import COPY_ESCAPES, DailyTable, EngineResult, Rejected
from weatherpipe.batch.rawfiles import OffsetRange, RawFile, merged_ranges
from weatherpipe.errors import TerminalError
from weatherpipe.events import Reason

# Sums are exact decimals (12 places: far below any instrument's resolution); numeric in
# PostgreSQL keeps them exact, so runs can be merged in any order with the same result.
SUM_TYPE = "DECIMAL(38, 12)"
_SUMMED = ("temperature_c", "humidity_pct", "wind_speed_kmh", "precipitation_mm")
# A typed file's offsets are checked for uniqueness with a bitmap over its name's range; a
# range wider than this (a compacted topic) is left to the exact path.
MAX_OFFSET_SPAN = 1 << 24


_database: duckdb.DuckDBPyConnection | None = None


@contextmanager
def _session(threads: int | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own (temp tables vanish with it) to the process's in-memory DuckDB,
    opened on first use: opening one and loading its JSON reader takes ~30 ms, a good part of
    a small incremental run."""
    global _database
    if _database is None:
        _database = duckdb.connect(":memory:")
    db = _database.cursor()
    try:
        db.execute(f"SET threads = {int(threads)}" if threads else "RESET threads")
        db.execute("SET preserve_insertion_order = false")
        yield db
    finally:
        db.close()


class EngineError(TerminalError):
    """The engine could not read the raw files."""


class DuckDBEngine:
    """Aggregates raw files with an in-memory DuckDB."""

    name = "duckdb"

    def __init__(
        self, threads: int | None = None, *, typed: bool = True, rules: tuple[r.Rule, ...] = r.RULES
    ) -> None:
        self.threads = threads
        self.typed = typed  # False: every file the exact path (for comparisons)
        self.rules = rules
        self.sql = Renderer(rules)
        self.typed_sql = TypedRenderer(rules)

    def aggregate(
        self, raw_dir: Path, files: Sequence[RawFile], counted: Sequence[OffsetRange]
    ) -> EngineResult:
        """See `Engine.aggregate`.

        Clean files take the typed read (`duckdb_typed`); the others, and any file the typed
        read cannot vouch for, the exact path, which names the rule each bad line breaks. The
        two never share a record: a typed file's records lie in its name's range, no other
        file overlaps it, and should an exact-path record fall into one, everything is redone
        the exact way.
        """
        if not files:
            return EngineResult(daily=[], rejected=[], lines=0, duplicates=0)
        with _session(self.threads) as db:
            base = raw_dir.resolve()
            db.execute(
                "CREATE TEMP TABLE wanted (id INTEGER, filename VARCHAR, rel VARCHAR,"
                " topic VARCHAR, part INTEGER, part_text VARCHAR, first BIGINT, last BIGINT)"
            )
            # One statement with a list per column: executemany costs ~1 ms a row.
            db.execute(
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
            db.execute(
                "CREATE TEMP TABLE typed_daily (location VARCHAR, day DATE, n BIGINT, "
                + ", ".join(f"sum_{m} {SUM_TYPE}" for m in _SUMMED)
                + ", min_t DOUBLE, max_t DOUBLE)"
            )
            typed = self._typed(db, base, files, counted) if self.typed else {}
            if len(typed) == len(files):  # the common case: nothing for the exact path
                return self._typed_result(db, {files[n].path: lines for n, lines in typed.items()})
            clean = {files[n].path for n in typed}
            db.execute("CREATE TEMP TABLE typed_files (rel VARCHAR, lines BIGINT)")
            db.execute(
                "INSERT INTO typed_files SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[])",
                [[files[n].path for n in typed], list(typed.values())],
            )
            self._exact(db, base, [f for f in files if f.path not in clean], counted, files[0])
            if clean and self._collides(db):
                # Rare enough to redo the whole thing the exact way, which dedupes everything.
                exact = DuckDBEngine(self.threads, typed=False, rules=self.rules)
                return exact.aggregate(raw_dir, files, counted)
            result = self._result(db)
            result.fast_files = len(clean)
            return result

    def _exact(
        self,
        db: duckdb.DuckDBPyConnection,
        base: Path,
        files: Sequence[RawFile],
        counted: Sequence[OffsetRange],
        sample: RawFile,
    ) -> None:
        """Validate `files` rule by rule into `checked` and count each record once into
        `firsts` (`sample`: any raw file, for the table's shape)."""
        slow = self._fast(db, base, files, sample)
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

    def _typed(
        self,
        db: duckdb.DuckDBPyConnection,
        base: Path,
        files: Sequence[RawFile],
        counted: Sequence[OffsetRange],
    ) -> dict[int, int]:
        """Aggregate the files the typed read can vouch for into `typed_daily`; returns their
        numbers in `files` with their line counts."""
        candidates = [
            f
            for f in _alone(files, counted)
            if f.last_offset - f.first_offset < MAX_OFFSET_SPAN
            and self.typed_sql.plain_text(f.topic)  # compared as text with each line's topic
        ]
        candidates = self._typed_lines(db, base, _without_words(db, base, candidates))
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
        self._typed_daily(db, None if everything else list(typed))
        # The location is a key: its rules are checked on its few distinct values (the daily
        # rows), and files holding one that breaks them are taken back out.
        db.execute(
            "CREATE TEMP TABLE bad_keys AS SELECT DISTINCT location FROM typed_daily EXCEPT "
            + self.typed_sql.key_check_sql("typed_daily")
        )
        if db.execute("SELECT count(*) FROM bad_keys").fetchall()[0][0]:
            bad = db.execute(
                """SELECT DISTINCT t.id FROM typed_lines t SEMI JOIN bad_keys b
                   ON t.location IS NOT DISTINCT FROM b.location"""
            ).fetchall()
            for (n,) in bad:
                typed.pop(n, None)
            db.execute("DELETE FROM typed_daily")
            self._typed_daily(db, list(typed))
        return typed

    @staticmethod
    def _typed_daily(db: duckdb.DuckDBPyConnection, ids: list[int] | None) -> None:
        """Fill `typed_daily` from the lines of files `ids` in `typed_lines` (None: all)."""
        if ids is not None:
            db.execute("CREATE OR REPLACE TEMP TABLE typed_ids (id INTEGER)")
            db.execute("INSERT INTO typed_ids SELECT unnest(?::INTEGER[])", [ids])
        only = "" if ids is None else " SEMI JOIN typed_ids USING (id)"
        sums = ", ".join(f"sum(m_{m}::{SUM_TYPE})" for m in _SUMMED)
        db.execute(
            f"""INSERT INTO typed_daily
                SELECT location, day, count(*), {sums}, min(m_temperature_c), max(m_temperature_c)
                FROM typed_lines{only} GROUP BY location, day"""
        )

    @staticmethod
    def _typed_result(db: duckdb.DuckDBPyConnection, lines: dict[str, int]) -> EngineResult:
        """The result when every file took the typed read: no rejects, no copies."""
        return EngineResult(
            daily=_daily_table(db, "SELECT * FROM typed_daily"),
            rejected=[],
            lines=sum(lines.values()),
            duplicates=0,
            lines_per_file=lines,
            fast_files=len(lines),
        )

    def _typed_lines(
        self, db: duckdb.DuckDBPyConnection, base: Path, files: list[RawFile]
    ) -> list[RawFile]:
        """Table `typed_lines` from the typed read of `files`; returns the files it could
        read (read_json fails on a line of another shape: a value that is not an object)."""
        if not files:
            return []
        sql = self.typed_sql.lines_sql()
        try:
            db.execute(
                f"CREATE TEMP TABLE typed_lines AS {sql}", [[str(base / f.path) for f in files]]
            )
            return files
        except duckdb.Error:
            pass
        read: list[RawFile] = []
        for f in files:  # find the file(s) it cannot read
            statement = "INSERT INTO typed_lines " if read else "CREATE TEMP TABLE typed_lines AS "
            try:
                db.execute(statement + sql, [[str(base / f.path)]])
                read.append(f)
            except duckdb.Error:
                pass
        return read

    @staticmethod
    def _collides(db: duckdb.DuckDBPyConnection) -> bool:
        """Whether a record read the exact way lies in the range of a file read typed (a
        file edited by hand, with offsets outside its name): then one could count twice."""
        found = db.execute(
            """SELECT count(*) FROM checked c
               JOIN wanted w ON w.rel IN (SELECT rel FROM typed_files)
                   AND c.topic = w.topic AND c.part = w.part AND c.off BETWEEN w.first AND w.last"""
        ).fetchone()
        return bool(found and found[0])

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
        self,
        db: duckdb.DuckDBPyConnection,
        base: Path,
        files: Sequence[RawFile],
        sample: RawFile,
    ) -> list[str]:
        """Create table `checked` from the fast path over `files`; returns the files it could
        not read (a line that is not a JSON object of the expected shape), for the slow path."""
        db.execute(
            "CREATE TEMP TABLE checked AS " + self._checked_sql(slow=False) + " LIMIT 0",
            [[str(base / sample.path)]],
        )
        if not files:
            return []
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
        sums = ", ".join(f"sum(m_{name}::{SUM_TYPE}) AS sum_{name}" for name in _SUMMED)
        resums = ", ".join(f"sum(sum_{name})" for name in _SUMMED)
        daily = _daily_table(
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
        lines = sum(per_file.values())
        # Typed files hold no copies; every copy is among the exact path's lines.
        exact = db.execute("SELECT count(*) FROM checked").fetchone()
        kept = db.execute("SELECT count(*) FROM firsts").fetchone()
        return EngineResult(
            daily=daily,
            rejected=rejected,
            lines=lines,
            duplicates=(exact[0] if exact else 0) - (kept[0] if kept else 0),
            lines_per_file={str(k): int(v) for k, v in per_file.items()},
        )


def _daily_table(db: duckdb.DuckDBPyConnection, rows: str) -> DailyTable:
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


def _without_words(
    db: duckdb.DuckDBPyConnection, base: Path, files: list[RawFile]
) -> list[RawFile]:
    """`files` without those that hold a boolean word anywhere (read as DOUBLE a JSON boolean
    would pass for 1 or 0) and those that are not UTF-8 throughout (read_text fails on them):
    both are for the exact path."""
    sql = "SELECT filename FROM read_text(?) WHERE " + " OR ".join(
        f"contains(content, {literal(w)})" for w in BOOLEAN_WORDS
    )
    try:
        found = db.execute(sql, [[str(base / f.path) for f in files]]).fetchall() if files else []
        skip = {str(row[0]) for row in found}
        return [f for f in files if str(base / f.path) not in skip]
    except duckdb.Error:
        pass
    kept = []
    for f in files:
        try:
            if not db.execute(sql, [[str(base / f.path)]]).fetchall():
                kept.append(f)
        except duckdb.Error:
            pass
    return kept


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
