"""Coming from the original project, against the real local PostgreSQL: its raw zone imported
with `weatherpipe import-raw`, aggregated by the batch, read through its own table's name and
columns by the dashboard login; results equal an independent computation from the source."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import original_rawzone
from tests.batch_reference import check, compute
from tests.conftest import as_env
from weatherpipe.batch.runner import run_once
from weatherpipe.db.connection import connect
from weatherpipe.db.roles import reader_url
from weatherpipe.events import MEASURES, TIMESTAMP_FORMAT
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

# The original dashboard's query, as it was.
ORIGINAL_QUERY = (
    "SELECT day, location, avg_temperature_c, avg_humidity_pct, sum_precipitation_mm, "
    "avg_wind_speed_kmh FROM daily_weather_aggregates ORDER BY day"
)


def import_raw(settings: Settings, source: Path) -> subprocess.CompletedProcess[str]:
    """`weatherpipe import-raw SOURCE` as a user runs it, the original's names in its
    environment."""
    env = as_env(settings)
    env["RAW_ROOT"] = env.pop("RAW_DIR")
    done = subprocess.run(
        [sys.executable, "-m", "weatherpipe", "import-raw", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    done.stderr = " ".join(done.stderr.split())  # however the terminal wraps it
    return done


def expected_from_source(zone: original_rawzone.OriginalZone) -> dict[tuple[str, date], Any]:
    """Per (location, day): count, averages and precipitation total of the source's distinct
    records whose values are valid, computed here from the records themselves."""
    groups: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for record in zone.records.values():
        line = {"kafka": {"topic": record.topic, "partition": record.partition,
                          "offset": record.offset}, "value": record.value}  # fmt: skip
        if check(line) is None:
            day = datetime.strptime(record.value["timestamp"], TIMESTAMP_FORMAT).date()
            groups[(record.value["location"], day)].append(record.value)
    out = {}
    for key, values in groups.items():
        n = len(values)
        sums = {m.field: math.fsum(v[m.field] for v in values) for m in MEASURES}
        out[key] = {
            "observations": n,
            "avg_temperature_c": sums["temperature_c"] / n,
            "avg_humidity_pct": sums["humidity_pct"] / n,
            "avg_wind_speed_kmh": sums["wind_speed_kmh"] / n,
            "total_precipitation_mm": sums["precipitation_mm"],
        }
    return out


def table(url: str, sql: str) -> dict[tuple[str, date], dict[str, Any]]:
    with connect(url) as conn:
        cur = conn.execute(sql)
        names = [d.name for d in cur.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return {(r.pop("location"), r.pop("day")): r for r in rows}


def assert_close(actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> None:
    assert actual.keys() == expected.keys()
    for key, values in expected.items():
        for name, value in values.items():
            assert actual[key][name] == pytest.approx(value, rel=1e-12, abs=1e-12), (key, name)


def test_an_imported_raw_zone_gives_the_same_figures_in_both_tables(
    settings: Settings, tmp_path: Path
) -> None:
    zone = original_rawzone.write(tmp_path / "seed", per_partition=500, bad_values=5)
    assert zone.repeated_lines and zone.truncated and zone.not_json  # the defects are there
    done = import_raw(settings, zone.root)
    assert done.returncode == 0, done.stderr
    assert f"imported {len(zone.records):,} records" in done.stderr
    assert f"{zone.repeated_lines:,} repeated lines dropped" in done.stderr
    assert "truncated_line" in done.stderr and "invalid_json" in done.stderr

    summary = run_once(settings)
    assert summary.rejected == 5  # the bad values, quarantined by the batch
    assert summary.duplicates == 0  # the import dropped every repeat
    expected = expected_from_source(zone)
    url = settings.database_url
    assert url is not None
    daily = table(
        url,
        "SELECT location, day, observations, avg_temperature_c, avg_humidity_pct,"
        " avg_wind_speed_kmh, total_precipitation_mm FROM daily_weather",
    )
    assert_close(daily, expected)
    # An independent reading of the imported raw zone agrees too.
    reference = compute(settings.raw_dir)
    assert_close(daily, {k: {n: v[n] for n in expected[k]} for k, v in reference.daily.items()})
    original = table(
        url,
        "SELECT location, day, observations, avg_temperature_c, avg_humidity_pct,"
        " avg_wind_speed_kmh, sum_precipitation_mm AS total_precipitation_mm"
        " FROM daily_weather_aggregates",
    )
    assert_close(original, expected)
    with connect(url) as conn:
        reasons = conn.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall()
    assert reasons == [("out_of_range", 5)]

    # A second import adds nothing; the batch then finds no new file.
    files = sorted(p.name for p in settings.raw_dir.rglob("*.ndjson"))
    again = import_raw(settings, zone.root)
    assert again.returncode == 0, again.stderr
    assert "imported 0 records in 0 files" in again.stderr
    assert f"{len(zone.records):,} records already in the raw zone" in again.stderr
    assert sorted(p.name for p in settings.raw_dir.rglob("*.ndjson")) == files
    assert run_once(settings).files == 0
    assert table(url, "SELECT location, day, observations FROM daily_weather") == {
        k: {"observations": v["observations"]} for k, v in expected.items()
    }


def test_the_original_dashboard_query_runs_as_the_dashboard_login(
    settings: Settings, tmp_path: Path
) -> None:
    zone = original_rawzone.write(tmp_path / "seed", per_partition=200)
    assert import_raw(settings, zone.root).returncode == 0
    run_once(settings)
    with connect(reader_url(settings)) as conn:
        rows = conn.execute(ORIGINAL_QUERY).fetchall()
        user = conn.execute("SELECT current_user").fetchone()
    assert user == (settings.dashboard_db_user,)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # ORDER BY day holds
    url = settings.database_url
    assert url is not None
    with connect(url) as conn:
        ours = conn.execute(
            "SELECT day, location, avg_temperature_c, avg_humidity_pct, total_precipitation_mm,"
            " avg_wind_speed_kmh FROM daily_weather"
        ).fetchall()
    assert len(rows) == len(ours) > 10
    assert sorted(rows) == sorted(ours)  # the same values, exactly


def test_the_view_is_read_only_for_the_dashboard_login(settings: Settings) -> None:
    run_once(settings)  # creates the schema and the logins
    with connect(reader_url(settings)) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'daily_weather_aggregates' ORDER BY ordinal_position"
        ).fetchall()
        assert conn.execute(ORIGINAL_QUERY).fetchall() == []
    assert columns == [
        ("day", "date"),
        ("location", "text"),
        ("avg_temperature_c", "double precision"),
        ("avg_humidity_pct", "double precision"),
        ("sum_precipitation_mm", "double precision"),
        ("avg_wind_speed_kmh", "double precision"),
        ("observations", "bigint"),
    ]
    with connect(reader_url(settings)) as conn, pytest.raises(psycopg.errors.DatabaseError):
        conn.execute("DELETE FROM daily_weather_aggregates")
