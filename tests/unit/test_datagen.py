"""The synthetic data set: format, determinism, ranges and realistic differences."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from weatherpipe import datagen
from weatherpipe.events import CSV_COLUMNS
from weatherpipe.ingest.csv_reader import read_blocks, split_fields
from weatherpipe.ingest.validate import validate

ROWS = 30_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "weather.csv"
    datagen.write_csv(path, ROWS, seed=7)
    return path


def test_header_and_row_count(sample: Path) -> None:
    lines = sample.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == ROWS + 1


def test_formats_are_the_kaggle_ones(sample: Path) -> None:
    number = re.compile(r"^-?\d+\.\d{1,2}$")
    with sample.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    for location, when, *values in rows[:2000]:
        assert location in {c.city for c in datagen.CITIES}
        assert dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
        assert all(number.match(v) for v in values), values


def test_every_generated_row_is_valid(sample: Path) -> None:
    valid = rejects = 0
    for block in read_blocks(sample):
        rows, wrong = split_fields(block)
        good, bad = validate(rows)
        valid, rejects = valid + len(good), rejects + len(wrong) + len(bad)
    assert (valid, rejects) == (ROWS, 0)


def test_same_seed_same_file_other_seed_other_file(tmp_path: Path, sample: Path) -> None:
    again, other = tmp_path / "again.csv", tmp_path / "other.csv"
    datagen.write_csv(again, ROWS, seed=7)
    datagen.write_csv(other, ROWS, seed=8)
    assert again.read_bytes() == sample.read_bytes()
    assert other.read_bytes() != sample.read_bytes()


def test_ranges_spread_and_order(sample: Path) -> None:
    row = duckdb.sql(
        f"""SELECT count(DISTINCT Location), min(Date_Time), max(Date_Time),
                   min(Temperature_C), max(Temperature_C), min(Humidity_pct), max(Humidity_pct),
                   min(Precipitation_mm), max(Precipitation_mm), min(Wind_Speed_kmh),
                   max(Wind_Speed_kmh)
            FROM read_csv('{sample}', all_varchar=false)"""
    ).fetchall()[0]
    cities, first, last, *bounds = row
    assert cities == 10
    assert first.date() == dt.date(2024, 1, 1) and last.date() == dt.date(2024, 5, 18)
    lows_highs = [
        datagen.TEMPERATURE_RANGE,
        datagen.HUMIDITY_RANGE,
        datagen.PRECIPITATION_RANGE,
        datagen.WIND_RANGE,
    ]
    for (low, high), (found_low, found_high) in zip(
        lows_highs, zip(bounds[::2], bounds[1::2], strict=True), strict=True
    ):
        assert low <= found_low < found_high <= high
    times = duckdb.sql(f"SELECT Date_Time FROM '{sample}'").fetchall()
    assert times != sorted(times), "rows must be in random order like the original"


def test_seasons_and_cities_differ(sample: Path) -> None:
    by_city = dict(
        duckdb.sql(f"SELECT Location, avg(Humidity_pct) FROM '{sample}' GROUP BY 1").fetchall()
    )
    assert by_city["Phoenix"] + 20 < by_city["Houston"]
    by_month = dict(
        duckdb.sql(
            f"SELECT month(Date_Time), avg(Temperature_C) FROM '{sample}' GROUP BY 1"
        ).fetchall()
    )
    assert by_month[1] + 5 < by_month[5]
