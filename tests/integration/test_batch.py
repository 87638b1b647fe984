"""`weatherpipe batch` against the real local PostgreSQL: results equal an independent
computation, incremental rounds equal one full run, and every defect is quarantined."""

from __future__ import annotations

import math
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.batch_reference import compute
from tests.rawzone_files import Record, Undecodable, event, write_file
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

TOPIC = "weather_data_raw"
PLACES = ["Chicago", "San Diego", "Berlin", "Dallas", "Phoenix"]


def random_event(rng: random.Random) -> dict[str, Any]:
    day = rng.randint(1, 4)
    return event(
        rng.choice(PLACES),
        f"2024-03-{day:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
        round(rng.uniform(-20, 40), rng.choice([1, 2, 6])),
        round(rng.uniform(0, 100), 2),
        round(rng.uniform(0, 20), 3),
        round(rng.uniform(0, 80), 1),
    )


def write_round(raw: Path, rng: random.Random, next_offset: dict[int, int], n: int) -> None:
    """Per partition one file of `n` new records; partition 0's file also re-delivers the last
    three records of its previous file (same offsets), as a consumer might after a crash."""
    for partition in range(3):
        first = next_offset[partition]
        records = [Record(partition, first + i, random_event(rng), key="x") for i in range(n)]
        if partition == 0 and first > 0:
            redelivered = [Record(0, first - 3 + i, {"location": "Nowhere"}) for i in range(3)]
            records = redelivered + records
        write_file(raw, TOPIC, records)
        next_offset[partition] = first + n


def daily_weather(url: str) -> dict[tuple[str, date], dict[str, float]]:
    with connect(url) as conn:
        cur = conn.execute("SELECT * FROM daily_weather")
        names = [d.name for d in cur.description or []]
        return {
            (row[0], row[1]): dict(zip(names[2:], row[2:], strict=True)) for row in cur.fetchall()
        }


def snapshot(url: str) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT location, day, observations, temperature_sum, humidity_sum, wind_speed_sum,"
            " precipitation_sum, temperature_min, temperature_max, xmin::text"
            " FROM daily_aggregate ORDER BY location, day"
        ).fetchall()


def last_run(url: str) -> dict[str, Any]:
    with connect(url) as conn:
        cur = conn.execute("SELECT * FROM batch_run ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        assert row is not None
        return dict(zip([d.name for d in cur.description or []], row, strict=True))


def assert_matches_reference(url: str, raw: Path) -> None:
    expected = compute(raw).daily
    actual = daily_weather(url)
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert got["observations"] == want["observations"], key
        for column, value in want.items():
            assert math.isclose(got[column], value, rel_tol=1e-9, abs_tol=1e-9), (key, column)


def test_daily_weather_equals_an_independent_computation(settings: Settings) -> None:
    rng = random.Random(7)
    offsets = {0: 0, 1: 0, 2: 0}
    for _ in range(2):
        write_round(settings.raw_dir, rng, offsets, 400)
    summary = run_once(settings)
    assert summary.files == 6
    assert summary.duplicates == 3
    assert summary.rejected == 0
    assert summary.lines == 6 * 400 + 3
    assert_matches_reference(settings.database_url or "", settings.raw_dir)


def test_three_rounds_equal_one_full_run_and_an_idle_run_changes_nothing(
    settings: Settings,
) -> None:
    url = settings.database_url or ""
    rng = random.Random(11)
    offsets = {0: 0, 1: 0, 2: 0}
    for _ in range(3):
        write_round(settings.raw_dir, rng, offsets, 300)
        run_once(settings)
        assert last_run(url)["status"] == "succeeded"
    assert_matches_reference(url, settings.raw_dir)
    before = snapshot(url)

    idle = run_once(settings)
    record = last_run(url)
    assert (record["files"], record["lines"], record["rows_inserted"], record["rows_updated"]) == (
        0,
        0,
        0,
        0,
    )
    assert record["rows_unchanged"] == len(before) == idle.rows.unchanged
    assert snapshot(url) == before  # xmin included: no row was even rewritten

    full = run_once(settings, full=True)
    record = last_run(url)
    assert record["mode"] == "full"
    assert record["files"] == 9
    assert (full.rows.inserted, full.rows.updated, full.rows.deleted) == (0, 0, 0)
    assert full.rows.unchanged == len(before)
    assert snapshot(url) == before


def test_every_kind_of_defect_is_quarantined_and_good_lines_counted(settings: Settings) -> None:
    url = settings.database_url or ""
    good = event("Chicago", "2024-03-01 14:05:09", 3.1, 71.2, 0.4, 18.9)
    bad: list[tuple[Any, str, str | None]] = [
        (Undecodable("{not json"), "invalid_json", None),
        (Undecodable("gA==", "not_utf8"), "not_utf8", None),
        ([1, 2], "not_an_object", None),
        ("just text", "not_an_object", None),
        ({**good, "location": None}, "missing_field", "location"),
        ({k: v for k, v in good.items() if k != "humidity_pct"}, "missing_field", "humidity_pct"),
        ({**good, "wind_speed_kmh": ""}, "missing_field", "wind_speed_kmh"),
        ({**good, "location": 42}, "missing_field", "location"),
        ({**good, "location": "   "}, "empty_location", "location"),
        ({**good, "location": "x" * 101}, "location_too_long", "location"),
        ({**good, "timestamp": "2024-02-30 10:00:00"}, "bad_timestamp", "timestamp"),
        ({**good, "timestamp": "yesterday"}, "bad_timestamp", "timestamp"),
        ({**good, "timestamp": " 2024-03-01 10:00:00"}, "bad_timestamp", "timestamp"),
        ({**good, "temperature_c": "warm"}, "not_numeric", "temperature_c"),
        ({**good, "temperature_c": True}, "not_numeric", "temperature_c"),
        ({**good, "precipitation_mm": {"mm": 1}}, "not_numeric", "precipitation_mm"),
        ({**good, "temperature_c": math.nan}, "not_finite", "temperature_c"),
        ({**good, "humidity_pct": math.inf}, "not_finite", "humidity_pct"),
        ({**good, "wind_speed_kmh": "-Infinity"}, "not_finite", "wind_speed_kmh"),
        ({**good, "temperature_c": 1e400}, "not_finite", "temperature_c"),
        ({**good, "humidity_pct": 100.5}, "out_of_range", "humidity_pct"),
        ({**good, "precipitation_mm": -0.1}, "out_of_range", "precipitation_mm"),
        ({**good, "temperature_c": -90.01}, "out_of_range", "temperature_c"),
    ]
    # Good lines between the bad ones, some edge values that are valid.
    records = []
    expected_rejects = []
    offset = 0
    for value, reason, field in bad:
        records.append(Record(0, offset, {**good, "temperature_c": -90.0}))
        records.append(Record(0, offset + 1, value))
        expected_rejects.append((offset + 2, 0, offset + 1, reason, field))
        offset += 2
    records.append(Record(0, offset, {**good, "temperature_c": "12.5", "humidity_pct": 100}))
    corrupt = ["{truncated", '{"kafka": {"topic": "t"}, "value": {}}', "[1]"]
    path = write_file(settings.raw_dir, TOPIC, records, corrupt)
    n = len(records)
    expected_rejects += [
        (n + 1, None, None, "invalid_json", None),
        (n + 2, None, None, "missing_field", "kafka.partition"),
        (n + 3, None, None, "invalid_json", None),
    ]

    summary = run_once(settings)
    assert summary.lines == n + 3
    assert summary.rejected == len(expected_rejects)
    rel = path.relative_to(settings.raw_dir).as_posix()
    with connect(url) as conn:
        rows = conn.execute(
            'SELECT file, line, partition, "offset", reason, field, raw FROM quarantine'
            " ORDER BY line"
        ).fetchall()
    assert {r[0] for r in rows} == {rel}
    assert [r[1:6] for r in rows] == expected_rejects
    assert rows[-3][6] == "{truncated"
    reference = compute(settings.raw_dir)
    assert [(line, reason, field) for _, line, reason, field in reference.rejected] == [
        (r[0], r[3], r[4]) for r in expected_rejects
    ]
    weather = daily_weather(url)
    assert list(weather) == [("Chicago", date(2024, 3, 1))]
    assert weather[("Chicago", date(2024, 3, 1))]["observations"] == len(bad) + 1
    assert weather[("Chicago", date(2024, 3, 1))]["min_temperature_c"] == -90.0
    assert weather[("Chicago", date(2024, 3, 1))]["max_temperature_c"] == 12.5
    assert_matches_reference(url, settings.raw_dir)
