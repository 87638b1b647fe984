"""Merging an engine's result into PostgreSQL: partial sums, quarantine, processed files and the
run record, all in the caller's ONE transaction.

Incremental: the partial sums are added to the daily rows (new rows inserted). Full: the result
replaces the daily table's content, written as a diff inside the same transaction (insert new
rows, update changed ones, delete vanished ones) rather than by swapping tables: readers never
block and always see either the old or the new content, the writer role needs no DDL rights,
and the run record says exactly how many rows changed. Rows whose values would not change are
never touched (`IS DISTINCT FROM`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from weatherpipe.batch.offset_ranges import OffsetRange
from weatherpipe.batch.results import DailyTable, EngineResult
from weatherpipe.rawzone.listing import RawFile

VALUES = (
    "observations",
    "temperature_sum",
    "humidity_sum",
    "wind_speed_sum",
    "precipitation_sum",
    "temperature_min",
    "temperature_max",
)


@dataclass(frozen=True)
class MergeCounts:
    inserted: int
    updated: int
    unchanged: int
    deleted: int


@dataclass(frozen=True)
class ProcessedFile:
    """A file already merged: its offset range, and its size and modification time then
    (None: recorded before times were)."""

    range: OffsetRange
    size_bytes: int
    mtime_ns: int | None


def processed_files(conn: psycopg.Connection) -> dict[str, ProcessedFile]:
    """The files already merged, by path."""
    rows = conn.execute(
        "SELECT path, topic, partition, first_offset, last_offset, size_bytes, mtime_ns"
        " FROM processed_file"
    ).fetchall()
    return {
        path: ProcessedFile(OffsetRange(topic, part, lo, hi), size, mtime)
        for path, topic, part, lo, hi, size, mtime in rows
    }


def _stage(conn: psycopg.Connection, result: EngineResult) -> None:
    columns = ", ".join(("location", "day", *VALUES))
    conn.execute(
        f"CREATE TEMP TABLE stage_daily ON COMMIT DROP AS SELECT {columns} FROM daily_aggregate"
        " WITH NO DATA"
    )
    with conn.cursor().copy(f"COPY stage_daily ({columns}) FROM STDIN") as copy:
        if isinstance(result.daily, DailyTable):
            copy.write(result.daily.copy_text())
            return
        for part in result.daily:
            copy.write_row(
                (
                    part.location,
                    part.day,
                    part.observations,
                    part.temperature_sum,
                    part.humidity_sum,
                    part.wind_speed_sum,
                    part.precipitation_sum,
                    part.temperature_min,
                    part.temperature_max,
                )
            )


def _upsert(conn: psycopg.Connection, run_id: int, *, replace: bool) -> tuple[int, int]:
    """Merge the staged rows into the daily table, changing only rows whose values change;
    returns how many rows were inserted and updated. One MERGE joins the two tables once,
    where INSERT ... ON CONFLICT probed and locked row by row."""
    if replace:
        new = {c: f"s.{c}" for c in VALUES}
    else:
        new = {
            c: f"d.{c} + s.{c}" for c in VALUES if c not in ("temperature_min", "temperature_max")
        }
        new["temperature_min"] = "LEAST(d.temperature_min, s.temperature_min)"
        new["temperature_max"] = "GREATEST(d.temperature_max, s.temperature_max)"
    sets = ", ".join(f"{c} = {expr}" for c, expr in new.items())
    old_row = ", ".join(f"d.{c}" for c in VALUES)
    new_row = ", ".join(new[c] for c in VALUES)
    columns = ", ".join(("location", "day", *VALUES))
    staged = ", ".join(f"s.{c}" for c in ("location", "day", *VALUES))
    row = conn.execute(
        f"""WITH merged AS (
                MERGE INTO daily_aggregate d
                USING stage_daily s ON s.location = d.location AND s.day = d.day
                WHEN MATCHED AND ({old_row}) IS DISTINCT FROM ({new_row}) THEN
                    UPDATE SET {sets}, run_id = %(run)s
                WHEN NOT MATCHED THEN
                    INSERT ({columns}, run_id) VALUES ({staged}, %(run)s)
                RETURNING merge_action() AS action
            )
            SELECT count(*) FILTER (WHERE action = 'INSERT'),
                   count(*) FILTER (WHERE action = 'UPDATE')
            FROM merged""",
        {"run": run_id},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _quarantine(conn: psycopg.Connection, run_id: int, result: EngineResult) -> None:
    columns = 'run_id, file, line, topic, partition, "offset", reason, field, raw'
    with conn.cursor().copy(f"COPY quarantine ({columns}) FROM STDIN") as copy:
        for q in result.rejected:
            copy.write_row(
                (
                    run_id,
                    q.file,
                    q.line,
                    _storable(q.topic),
                    q.partition,
                    q.offset,
                    q.reason,
                    q.field,
                    _storable(q.raw),
                )
            )


def _storable(text: str | None) -> str | None:
    """`text` as PostgreSQL can store it: text cannot hold NUL characters (a quarantined
    line's own text may, and so may the topic named in it), so each becomes its JSON escape."""
    return None if text is None else text.replace("\x00", "\\u0000")


def _record_files(
    conn: psycopg.Connection, run_id: int, files: Sequence[RawFile], result: EngineResult
) -> None:
    columns = (
        "path, topic, partition, first_offset, last_offset, size_bytes, mtime_ns, lines, run_id"
    )
    with conn.cursor().copy(f"COPY processed_file ({columns}) FROM STDIN") as copy:
        for f in files:
            copy.write_row(
                (
                    f.path,
                    f.topic,
                    f.partition,
                    f.first_offset,
                    f.last_offset,
                    f.size_bytes,
                    f.mtime_ns,
                    result.lines_per_file.get(f.path, 0),
                    run_id,
                )
            )


def merge(
    conn: psycopg.Connection,
    run_id: int,
    files: Sequence[RawFile],
    result: EngineResult,
    *,
    full: bool,
) -> MergeCounts:
    """Write `result` (computed from `files`) into the processed zone, inside the transaction
    the caller holds open; returns how many daily rows were inserted / updated / left
    unchanged / deleted."""
    _stage(conn, result)
    deleted = 0
    if full:
        # Everything is recomputed: the old bookkeeping goes, the new replaces it.
        conn.execute("DELETE FROM quarantine")
        conn.execute("DELETE FROM processed_file")
        cur = conn.execute(
            """DELETE FROM daily_aggregate d WHERE NOT EXISTS (
                   SELECT 1 FROM stage_daily s WHERE s.location = d.location AND s.day = d.day)"""
        )
        deleted = cur.rowcount
    inserted, updated = _upsert(conn, run_id, replace=full)
    _quarantine(conn, run_id, result)
    _record_files(conn, run_id, files, result)
    total = conn.execute("SELECT count(*) FROM daily_aggregate").fetchone()
    unchanged = (total[0] if total else 0) - inserted - updated
    return MergeCounts(inserted, updated, unchanged, deleted)
