"""`weatherpipe batch` on a raw zone changed behind its back: a processed file edited or gone
is reported by the next run (summary and batch_run) without crashing it or quarantining
anything; .ndjson files outside the layout are counted and shown the expected layout, and a
raw zone holding nothing else fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.batch_reference import compute
from tests.conftest import as_env, changed
from tests.integration.test_batch import assert_matches_reference, daily_weather
from tests.rawzone_files import Record, event, line_for, write_file
from weatherpipe.db.connection import connect
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration

TOPIC = "weather_data_raw"


@pytest.fixture
def settings(platform_settings: Settings, fresh_database: str, tmp_path: Path) -> Settings:
    return changed(platform_settings, database_url=fresh_database, raw_dir=tmp_path)


def records(partition: int, first: int, count: int) -> list[Record]:
    return [
        Record(
            partition,
            first + n,
            event("Chicago", f"2024-03-0{1 + n % 3} 10:00:00", n % 30, 50, 0.5, 10),
        )
        for n in range(count)
    ]


def batch(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", "batch", *args],
        env=as_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    assert settings.database_url is not None
    with connect(settings.database_url) as conn:
        return conn.execute(sql).fetchall()


def test_a_processed_file_changed_or_gone_is_reported_by_every_next_run(
    settings: Settings,
) -> None:
    raw = settings.raw_dir
    first = write_file(raw, TOPIC, records(0, 0, 30))
    second = write_file(raw, TOPIC, records(1, 0, 20))
    assert batch(settings).returncode == 0
    counted = daily_weather(str(settings.database_url))

    # A record appended by hand to a file already counted, another file removed.
    with first.open("a", encoding="utf-8") as handle:
        handle.write(line_for(TOPIC, records(0, 30, 1)[0]) + "\n")
    second.unlink()
    for _ in range(2):  # reported again until someone acts
        run = batch(settings)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        text = " ".join(run.stderr.split())
        unwrapped = "".join(run.stderr.split())
        assert "WARNING" in text and "2 warning(s), see above" in text, run.stderr
        assert "1 raw file(s) changed after a batch run counted them" in text
        assert "".join(first.relative_to(raw).as_posix().split()) in unwrapped
        assert "1 raw file(s) counted by an earlier batch run are gone from RAW_DIR" in text
        assert "run `weatherpipe batch --full`" in text
        ((status, warnings),) = query(
            settings, "SELECT status, warnings FROM batch_run ORDER BY id DESC LIMIT 1"
        )
        assert status == "succeeded" and len(warnings) == 2
        assert warnings[0].startswith("1 raw file(s) changed after a batch run counted them: ")
        assert first.relative_to(raw).as_posix() in warnings[0]
        assert second.relative_to(raw).as_posix() in warnings[1]
        assert daily_weather(str(settings.database_url)) == counted  # nothing counted twice
        assert query(settings, "SELECT count(*) FROM quarantine") == [(0,)]

    # The full run recounts what is there now, and the warnings stop.
    full = batch(settings, "--full")
    assert full.returncode == 0, full.stderr
    assert "warning" not in full.stderr.lower()
    assert_matches_reference(str(settings.database_url), raw)
    assert sum(row["observations"] for row in compute(raw).daily.values()) == 31
    quiet = batch(settings)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr.lower(), quiet.stderr


def write_chunks(raw: Path, count: int) -> list[str]:
    """Files in another layout (topic/date/chunk-NNNN.ndjson), as another tool might write."""
    names = []
    for n in range(count):
        path = raw / TOPIC / "2024-03-01" / f"chunk-{n:04d}.ndjson"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(line_for(TOPIC, r) + "\n" for r in records(0, n * 10, 10)), encoding="utf-8"
        )
        names.append(path.relative_to(raw).as_posix())
    return names


def test_a_raw_zone_of_only_unrecognised_files_fails_the_run_naming_the_layout(
    settings: Settings,
) -> None:
    write_chunks(settings.raw_dir, 3)
    run = batch(settings)
    text = " ".join(run.stderr.split())
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "error: Nothing to process: 3 .ndjson file(s) in RAW_DIR are not in the raw zone's" in (
        text
    )
    assert f"{TOPIC}/2024-03-01/chunk-0000.ndjson" in "".join(run.stderr.split())
    assert "Expected: RAW_DIR/<topic>/date=YYYY-MM-DD/<topic>+<partition>+" in text
    ((status, error),) = query(settings, "SELECT status, error FROM batch_run")
    assert status == "failed" and error.startswith("Nothing to process: 3 .ndjson file(s)")
    assert query(settings, "SELECT count(*) FROM daily_aggregate") == [(0,)]


def test_unrecognised_files_beside_the_raw_zone_are_counted_and_left_unread(
    settings: Settings,
) -> None:
    write_file(settings.raw_dir, TOPIC, records(0, 0, 12))
    write_chunks(settings.raw_dir, 2)
    run = batch(settings)
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stderr.split())
    assert "2 .ndjson file(s) in RAW_DIR are not in the raw zone's layout" in text
    assert "1 files" in text and "12 lines" in text and "1 warning(s), see above" in text
    assert query(settings, "SELECT sum(observations) FROM daily_weather") == [(12,)]
    ((warnings,),) = query(settings, "SELECT warnings FROM batch_run")
    assert len(warnings) == 1 and "Expected: RAW_DIR/<topic>/date=" in warnings[0]
