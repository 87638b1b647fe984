"""Normal operation: `weatherpipe serve` runs the consumer, the daily producer and the batch
on their schedules, and one SIGTERM stops the whole tree cleanly without losing a record."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import as_env
from weatherpipe import datagen
from weatherpipe.db.connection import connect
from weatherpipe.ingest import daily_state
from weatherpipe.settings import Settings

pytestmark = pytest.mark.integration


def days_in_table(url: str) -> int:
    try:
        with connect(url) as conn:
            row = conn.execute("SELECT count(DISTINCT day) FROM daily_weather").fetchone()
    except Exception:  # the schema is created by the first batch run
        return 0
    return int(row[0]) if row else 0


def test_serve_runs_the_jobs_on_schedule_and_stops_cleanly(
    platform_settings: Settings,
    fresh_database: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    source = tmp_path / "weather.csv"
    datagen.write_csv(source, 3_000, seed=3)
    topic = unique_name("serve")
    env = as_env(platform_settings)
    env.update(
        CSV_PATH=str(source),
        RAW_DIR=str(tmp_path / "raw"),
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=unique_name("serve"),
        DATABASE_URL=fresh_database,
        ROTATE_SECONDS="1",
    )
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weatherpipe",
            "serve",
            "--produce-every",
            "2s",
            "--batch-every",
            "2s",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while days_in_table(fresh_database) < 3:
            assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
            assert time.monotonic() < deadline, "the batch never showed three days"
            time.sleep(0.5)
        children = psutil.Process(serve.pid).children(recursive=True)
        assert children, "the jobs run as child processes"
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=120)
    assert serve.returncode == 0, err[-3000:]
    assert "stopped cleanly" in err
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)

    # Catch up with what was produced after the consumer stopped, then check every record.
    for args in (["consume", "--until-idle", "3"], ["batch"]):
        subprocess.run(
            [sys.executable, "-m", "weatherpipe", *args], env=env, check=True, capture_output=True
        )
    state = daily_state.load(platform_settings.state_dir / "produce" / f"{topic}.daily.json", topic)
    assert state.last_day is not None and state.days_sent >= 3
    with source.open(newline="") as fh:
        rows = [r for r in list(csv.reader(fh))[1:] if r[1][:10] <= state.last_day.isoformat()]
    offsets: Counter[tuple[int, int]] = Counter()
    for raw_file in (tmp_path / "raw" / topic).glob("date=*/*.ndjson"):
        for line in raw_file.read_text().splitlines():
            kafka = json.loads(line)["kafka"]
            offsets[(kafka["partition"], kafka["offset"])] += 1
    assert sum(offsets.values()) == len(rows)  # every row of every day sent, exactly once
    assert set(offsets.values()) == {1}
    assert days_in_table(fresh_database) == state.days_sent
