"""Daily rows travel from DuckDB to PostgreSQL as COPY text: locations with tabs, newlines,
backslashes or other line separators, and sums and extremes of any magnitude, must arrive
exactly as DuckDB computed them, and read back into the same `DailyPart`s."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from weatherpipe.batch.duckdb_session import daily_table
from weatherpipe.batch.merge import merge
from weatherpipe.batch.results import DailyPart, DailyTable, EngineResult
from weatherpipe.db.connection import connect
from weatherpipe.db.migrate import migrate

pytestmark = pytest.mark.integration

ODD_PLACES = [
    "Chicago",
    "Tab\there",
    "New\nline",
    "Back\\slash",
    "Line\u2028sep",
    "Ünïcödé",
    "a\\tb",
]


def computed() -> tuple[DailyTable, list[DailyPart]]:
    """The same rows as a DailyTable and as DuckDB's own Python values."""
    rows = """SELECT location, DATE '2024-03-01' + i::INTEGER AS day, (i + 1)::BIGINT AS n,
                     (i * 1234.567890123456)::DECIMAL(38, 12), (-i / 3)::DECIMAL(38, 12),
                     0.000000000001::DECIMAL(38, 12), 12345678901234567890.5::DECIMAL(38, 12),
                     -i * 1.1e-7::DOUBLE, i * 0.1::DOUBLE + 1e15
              FROM unnest(?::VARCHAR[]) WITH ORDINALITY AS t(location, i)"""
    with duckdb.connect() as db:
        db.execute(f"CREATE TABLE rows AS {rows}", [ODD_PLACES])
        table = daily_table(db, "SELECT * FROM rows")
        expected = [
            DailyPart(*row)
            for row in db.execute("SELECT * FROM rows ORDER BY location, day").fetchall()
        ]
    return table, expected


def test_copy_text_reads_back_into_the_same_rows() -> None:
    table, expected = computed()
    assert len(table) == len(ODD_PLACES)
    assert table.parts() == expected
    assert table == expected and table[1] == expected[1]
    assert table.copy_text().count(b"\n") == len(ODD_PLACES)  # one line a row, nothing split


def test_postgres_receives_exactly_the_computed_rows(fresh_database: str) -> None:
    migrate(fresh_database)
    table, expected = computed()
    with connect(fresh_database) as conn:
        run = conn.execute(
            "INSERT INTO batch_run (engine, mode) VALUES ('duckdb', 'full') RETURNING id"
        ).fetchone()
        assert run is not None
        result = EngineResult(daily=table, rejected=[], lines=0, duplicates=0)
        with conn.transaction():
            counts = merge(conn, run[0], [], result, full=True)
        stored = conn.execute(
            """SELECT location, day, observations, temperature_sum, humidity_sum, wind_speed_sum,
                      precipitation_sum, temperature_min, temperature_max
               FROM daily_aggregate ORDER BY convert_to(location, 'UTF8'), day"""
        ).fetchall()
    assert counts.inserted == len(ODD_PLACES)
    assert [DailyPart(*row) for row in stored] == expected
    # The values really are of the kinds named above (a test of the test data).
    assert {p.location for p in expected} == set(ODD_PLACES)
    assert max(p.precipitation_sum for p in expected) == Decimal("12345678901234567890.5")
    assert min(p.day for p in expected) == date(2024, 3, 2)
