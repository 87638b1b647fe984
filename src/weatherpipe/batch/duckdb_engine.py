"""The DuckDB engine: reads raw files in parallel, validates with the shared rules, counts each
Kafka record once and aggregates per (location, day), all inside an in-memory DuckDB.

It has two reads. The typed read (`duckdb_typed_read`) aggregates the files it can vouch for at
close to the speed of a bare `read_json ... GROUP BY`; the exact read (`duckdb_exact_read`)
takes every other file and evaluates every rule on every line, so a bad line is quarantined
with its file, line number and reason instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from weatherpipe import rules as r
from weatherpipe.batch.duckdb_exact_read import ExactRead
from weatherpipe.batch.duckdb_session import Wanted, session
from weatherpipe.batch.duckdb_typed_read import TypedRead
from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.results import EngineResult
from weatherpipe.rawzone.listing import RawFile


class DuckDBEngine:
    """Aggregates raw files with an in-memory DuckDB."""

    name = "duckdb"

    def __init__(
        self, threads: int | None = None, *, typed: bool = True, rules: tuple[r.Rule, ...] = r.RULES
    ) -> None:
        self.threads = threads
        self.typed = typed  # False: every file the exact read (for comparisons)
        self.rules = rules
        self.typed_read = TypedRead(rules)
        self.exact_read = ExactRead(rules)

    def aggregate(
        self, raw_dir: Path, files: Sequence[RawFile], counted: Sequence[OffsetRange]
    ) -> EngineResult:
        """See `Engine.aggregate`.

        Clean files take the typed read; the others, and any file the typed read cannot vouch
        for, the exact read, which names the rule each bad line breaks. The two never share a
        record: a typed file's records lie in its name's range, no other file overlaps it, and
        should a record of the exact read fall into one, the exact read redoes everything.
        """
        if not files:
            return EngineResult(daily=[], rejected=[], lines=0, duplicates=0)
        with session(self.threads) as db:
            wanted = Wanted(db, raw_dir.resolve(), files, counted)
            wanted.create_table()
            self.typed_read.create_daily(db)
            typed = self.typed_read.read(wanted) if self.typed else {}
            if len(typed) == len(files):  # the common case: nothing for the exact read
                return self.typed_read.result(
                    db, {files[n].path: lines for n, lines in typed.items()}
                )
            clean = {files[n].path for n in typed}
            db.execute("CREATE TEMP TABLE typed_files (rel VARCHAR, lines BIGINT)")
            db.execute(
                "INSERT INTO typed_files SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[])",
                [[files[n].path for n in typed], list(typed.values())],
            )
            self.exact_read.read(wanted, [f for f in files if f.path not in clean])
            if clean and self._collides(db):
                # Rare enough to redo everything with the exact read, which dedupes all of it.
                exact = DuckDBEngine(self.threads, typed=False, rules=self.rules)
                return exact.aggregate(raw_dir, files, counted)
            result = self.exact_read.result(db)
            result.typed_files = len(clean)
            return result

    @staticmethod
    def _collides(db: duckdb.DuckDBPyConnection) -> bool:
        """Whether a record of the exact read lies in the range of a file of the typed read (a
        file edited by hand, with offsets outside its name): then one could count twice."""
        found = db.execute(
            """SELECT count(*) FROM checked c
               JOIN wanted w ON w.rel IN (SELECT rel FROM typed_files)
                   AND c.topic = w.topic AND c.part = w.part AND c.off BETWEEN w.first AND w.last"""
        ).fetchone()
        return bool(found and found[0])
