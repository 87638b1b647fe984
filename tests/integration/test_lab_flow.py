"""End to end: `weatherpipe run --no-dashboard` on a 200k-row file with bad rows mixed in.

Every valid CSV row must end up in exactly one raw line, and `daily_weather` must equal an
independent computation straight from the CSV (plain Python, exact decimals)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import as_env
from tests.csv_reference import DAILY, assert_daily_matches
from weatherpipe import datagen
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

ROWS = 200_000
BAD_LINES = [
    "Chicago,2024-02-30 10:00:00,1.0,50.0,0.0,5.0",  # impossible date
    "Dallas,2024-03-01 10:00:00,1.0,140.0,0.0,5.0",  # humidity out of range
    ",2024-03-01 10:00:00,1.0,50.0,0.0,5.0",  # empty location
    "Houston,2024-03-01 10:00:00,abc,50.0,0.0,5.0",  # not numeric
    "Phoenix,2024-03-01 10:00:00,NaN,50.0,0.0,5.0",  # not finite
    "San Jose,2024-03-01 10:00:00,1.0,50.0",  # missing fields
]


@pytest.fixture(scope="module")
def weather_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "weather_data.csv"
    datagen.write_csv(path, ROWS, seed=7)
    with path.open("a") as fh:
        fh.write("\n".join(BAD_LINES) + "\n")
    return path


def run_lab(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`weatherpipe run --no-dashboard` with `env`, as a user starts it."""
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", "run", "--no-dashboard"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_lab_flow_end_to_end(
    platform_settings: Settings,
    fresh_database: str,
    unique_name: Callable[[str], str],
    weather_csv: Path,
    tmp_path: Path,
) -> None:
    topic = unique_name("lab")
    env = as_env(platform_settings)
    env.update(
        CSV_PATH=str(weather_csv),
        RAW_DIR=str(tmp_path / "raw"),
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=unique_name("lab"),
        DATABASE_URL=fresh_database,
    )
    result = run_lab(env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{ROWS + len(BAD_LINES):,} rows read, {ROWS:,} sent" in result.stderr
    assert f"{len(BAD_LINES)} bad rows to {topic}.dlq" in result.stderr

    # Every valid row in exactly one raw line: offsets unique, values as in the CSV. (Not
    # dense: the markers that end the producer's transactions take offsets too.)
    coordinates: Counter[tuple[int, int]] = Counter()
    values: Counter[tuple[str, str]] = Counter()
    for raw_file in (tmp_path / "raw" / topic).glob("date=*/*.ndjson"):
        for line in raw_file.read_text().splitlines():
            record = json.loads(line)
            coordinates[(record["kafka"]["partition"], record["kafka"]["offset"])] += 1
            values[(record["value"]["location"], record["value"]["timestamp"])] += 1
    assert sum(coordinates.values()) == ROWS
    assert max(coordinates.values()) == 1
    with weather_csv.open(newline="") as fh:
        rows = list(csv.reader(fh))[1 : ROWS + 1]
    assert values == Counter((r[0], r[1]) for r in rows)

    # daily_weather equals the independent computation.
    with connect(fresh_database) as conn:
        got = conn.execute(DAILY).fetchall()
    assert_daily_matches(got, weather_csv, skip=BAD_LINES)

    # A second lab run sends nothing again, so nothing is counted twice.
    again = run_lab(env)
    assert again.returncode == 0, again.stderr[-3000:]
    skipped = " ".join(again.stderr.split())
    assert f"skipped: {topic} holds this CSV already: {ROWS + len(BAD_LINES):,} rows" in skipped
    with connect(fresh_database) as conn:
        assert conn.execute(DAILY).fetchall() == got
